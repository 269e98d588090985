//! End-to-end tests of the offload data path (TUN TSO/USO split, UDP GSO/GRO, TUN GRO
//! coalescing): real TCP and UDP transfers through a tunnel between two network namespaces,
//! verified byte for byte by the receiving application, with the kernels' checksum error
//! counters required to stay at zero (a segment with a bad checksum is dropped by the receiving
//! kernel and counted there, so zero means the kernel accepted every segment we built).
//!
//! ```text
//!   netns A: ferrowg                           netns B: ferrowg | wireguard-go
//!   <ifA> 10.201.N.1/24  fd01:0:N::1/64         <ifB> 10.201.N.2/24  fd01:0:N::2/64   (MTU 1420)
//!      |  UDP 10.198.N.1:51820                      |  UDP 10.198.N.2:51820
//!   veth ---------------------------------------------- veth
//! ```
//!
//! Every transfer runs both ways, over IPv4 and IPv6, with odd sizes: bulk TCP (kernel TSO
//! super-packets), TCP with `TCP_NODELAY` and odd write sizes (PSH, short segments), UDP sent
//! with `UDP_SEGMENT` (USO super-packets) and as single datagrams of odd sizes. Drops are
//! counted (UDP receive buffers, TUN queues, ferrowg's own counters) and printed as a report;
//! they are not asserted, since on a loaded machine a UDP burst may overrun a receiver, which
//! the UDP test answers by resending (and counting) the burst.
//!
//! Needs root; `FERROWG_SKIP_ROOT_TESTS=1` skips. Namespaces, daemons and key files are
//! removed on drop. No test depends on timing beyond bounded waits.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use ferrowg_testkit::{require_root, require_tool, run, wait_for, Netns};

static COUNTER: AtomicU32 = AtomicU32::new(0);
const WG_PORT: u16 = 51820;
const MTU: usize = 1420;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Impl {
    Ferrowg,
    /// ferrowg with `--no-offload`: the plain TUN path.
    FerrowgPlain,
    WireguardGo,
}

/// A userspace WireGuard process in a namespace; terminated on drop.
struct Daemon {
    child: Option<Child>,
    iface: String,
    log: PathBuf,
    kind: Impl,
}

impl Daemon {
    fn start(ns: &Netns, kind: Impl, iface: &str) -> Daemon {
        let log = std::env::temp_dir().join(format!("{iface}.log"));
        let logf = File::create(&log).expect("log file");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &ns.name]);
        match kind {
            Impl::WireguardGo => {
                cmd.args(["wireguard-go", "-f", iface])
                    .env("LOG_LEVEL", "error");
            }
            Impl::Ferrowg | Impl::FerrowgPlain => {
                cmd.args([env!("CARGO_BIN_EXE_ferrowg"), "daemon", "--foreground"])
                    .env("RUST_LOG", "info");
                if kind == Impl::FerrowgPlain {
                    cmd.arg("--no-offload");
                }
                cmd.arg(iface);
            }
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(logf.try_clone().expect("log"))
            .stderr(logf)
            .spawn()
            .expect("start daemon");
        let d = Daemon {
            child: Some(child),
            iface: iface.to_string(),
            log,
            kind,
        };
        let sock = PathBuf::from(format!("/var/run/wireguard/{iface}.sock"));
        let up = wait_for(Duration::from_secs(20), || sock.exists());
        assert!(up.is_some(), "timed out; {}", d.log_text());
        d
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops the daemon (SIGTERM, then SIGKILL) and returns its log.
    fn stop(&mut self) -> String {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").arg(c.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if matches!(c.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        let text = self.log_text();
        let _ = std::fs::remove_file(&self.log);
        let _ = std::fs::remove_file(format!("/var/run/wireguard/{}.sock", self.iface));
        text
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let log = self.stop();
        if std::thread::panicking() {
            eprintln!("--- log of {} ({:?}) ---\n{log}", self.iface, self.kind);
        }
    }
}

/// Two namespaces joined by a veth pair, a WireGuard interface in each. Field order is drop
/// order: daemons before namespaces.
struct Tunnel {
    a: Daemon,
    b: Daemon,
    ns_a: Netns,
    ns_b: Netns,
    n: u32,
}

impl Tunnel {
    fn new(kind_a: Impl, kind_b: Impl) -> Tunnel {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst) + 1;
        let tag = format!("{}o{n}", std::process::id() % 100_000);
        let ns_a = Netns::new("offa");
        let ns_b = Netns::new("offb");
        let (va, vb) = (format!("fv{tag}a"), format!("fv{tag}b"));
        run(&format!("ip link add {va} type veth peer name {vb}"));
        run(&format!("ip link set {va} netns {}", ns_a.name));
        run(&format!("ip link set {vb} netns {}", ns_b.name));
        ns_a.run(&format!("ip addr add 10.198.{n}.1/24 dev {va}"));
        ns_b.run(&format!("ip addr add 10.198.{n}.2/24 dev {vb}"));
        ns_a.run(&format!("ip link set {va} up"));
        ns_b.run(&format!("ip link set {vb} up"));
        let a = Daemon::start(&ns_a, kind_a, &format!("fw{tag}a"));
        let b = Daemon::start(&ns_b, kind_b, &format!("fw{tag}b"));
        let t = Tunnel {
            a,
            b,
            ns_a,
            ns_b,
            n,
        };
        let genkey = || run("wg genkey").trim().to_string();
        let pubkey = |k: &str| run(&format!("echo {k} | wg pubkey")).trim().to_string();
        let (ka, kb) = (genkey(), genkey());
        let (pa, pb) = (pubkey(&ka), pubkey(&kb));
        for (ns, d, key, peer, me, other) in [
            (&t.ns_a, &t.a, &ka, &pb, 1, 2),
            (&t.ns_b, &t.b, &kb, &pa, 2, 1),
        ] {
            let keyfile = std::env::temp_dir().join(format!("{}.key", d.iface));
            std::fs::write(&keyfile, key).expect("key file");
            ns.run(&format!(
                "wg set {} private-key {} listen-port {WG_PORT} peer {peer} \
                 allowed-ips 10.201.{n}.{other}/32,fd01:0:{n}::{other}/128 \
                 endpoint 10.198.{n}.{other}:{WG_PORT}",
                d.iface,
                keyfile.display()
            ));
            let _ = std::fs::remove_file(&keyfile);
            ns.run(&format!("ip addr add 10.201.{n}.{me}/24 dev {}", d.iface));
            ns.run(&format!(
                "ip addr add fd01:0:{n}::{me}/64 nodad dev {}",
                d.iface
            ));
            ns.run(&format!("ip link set {} mtu {MTU} up", d.iface));
        }
        let ping = format!("ping -c1 -W1 10.201.{n}.2");
        let up = wait_for(Duration::from_secs(20), || {
            Command::new("ip")
                .args(["netns", "exec", &t.ns_a.name, "sh", "-c", &ping])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        assert!(
            up.is_some(),
            "timed out; no handshake\n{}\n{}",
            t.a.log_text(),
            t.b.log_text()
        );
        t
    }

    fn addr(&self, side: u8, v6: bool) -> IpAddr {
        let n = self.n;
        if v6 {
            format!("fd01:0:{n}::{side}").parse().unwrap()
        } else {
            format!("10.201.{n}.{side}").parse().unwrap()
        }
    }

    /// (sender namespace, receiver namespace, receiver address, sender address).
    fn way(&self, a_to_b: bool, v6: bool) -> (&Netns, &Netns, IpAddr, IpAddr) {
        if a_to_b {
            (&self.ns_a, &self.ns_b, self.addr(2, v6), self.addr(1, v6))
        } else {
            (&self.ns_b, &self.ns_a, self.addr(1, v6), self.addr(2, v6))
        }
    }
}

/// A deterministic byte stream (xorshift), so the receiver can check every byte.
struct Stream(u64);

impl Stream {
    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            *b = self.0 as u8;
        }
    }
}

const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends `total` bytes over TCP in writes of the sizes in `writes` (cycled); with `nodelay`,
/// each write tends to become its own (PSH) segment. The receiver compares every byte.
fn tcp_transfer(t: &Tunnel, a_to_b: bool, v6: bool, total: usize, writes: &[usize], nodelay: bool) {
    let (tx_ns, rx_ns, dst, _) = t.way(a_to_b, v6);
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    let server = rx_ns.spawn_thread(move || -> Result<usize, String> {
        let l = TcpListener::bind((dst, 0)).map_err(|e| e.to_string())?;
        port_tx.send(l.local_addr().unwrap().port()).unwrap();
        l.set_nonblocking(true).unwrap();
        let deadline = Instant::now() + IO_TIMEOUT;
        let mut s = loop {
            match l.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err(e) => return Err(format!("accept: {e}")),
            }
        };
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let mut want = Stream(0x9e37_79b9_7f4a_7c15);
        let (mut got, mut buf, mut exp) = (0usize, vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
        loop {
            let k = s
                .read(&mut buf)
                .map_err(|e| format!("read at {got}: {e}"))?;
            if k == 0 {
                return Ok(got);
            }
            want.fill(&mut exp[..k]);
            if let Some(i) = (0..k).find(|&i| buf[i] != exp[i]) {
                return Err(format!("byte {} differs", got + i));
            }
            got += k;
        }
    });
    let port = port_rx.recv_timeout(IO_TIMEOUT).expect("server port");
    let writes = writes.to_vec();
    let client = tx_ns.spawn_thread(move || -> Result<(), String> {
        let mut s = TcpStream::connect_timeout(&SocketAddr::new(dst, port), IO_TIMEOUT)
            .map_err(|e| format!("connect: {e}"))?;
        s.set_nodelay(nodelay).unwrap();
        s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        let mut gen = Stream(0x9e37_79b9_7f4a_7c15);
        let mut buf = vec![0u8; writes.iter().copied().max().unwrap_or(1)];
        let (mut sent, mut i) = (0, 0);
        while sent < total {
            let k = writes[i % writes.len()].min(total - sent);
            gen.fill(&mut buf[..k]);
            s.write_all(&buf[..k])
                .map_err(|e| format!("write at {sent}: {e}"))?;
            sent += k;
            i += 1;
        }
        s.shutdown(std::net::Shutdown::Write)
            .map_err(|e| e.to_string())
    });
    let c = client.join().expect("client thread");
    let r = server.join().expect("server thread");
    c.unwrap_or_else(|e| panic!("TCP sender ({}): {e}", way_name(a_to_b, v6)));
    let got = r.unwrap_or_else(|e| panic!("TCP receiver ({}): {e}", way_name(a_to_b, v6)));
    assert_eq!(
        got,
        total,
        "TCP {} delivered {got} of {total}",
        way_name(a_to_b, v6)
    );
}

fn way_name(a_to_b: bool, v6: bool) -> String {
    format!(
        "{} IPv{}",
        if a_to_b { "A->B" } else { "B->A" },
        if v6 { 6 } else { 4 }
    )
}

/// FNV-1a, to seal each UDP datagram's contents.
fn fnv(data: &[u8]) -> u32 {
    data.iter().fold(0x811c_9dc5u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// Datagram `idx` of burst `burst` (of `count`), `size` bytes: header, stream bytes, FNV.
fn datagram(burst: u32, idx: u16, count: u16, size: usize) -> Vec<u8> {
    let mut d = vec![0u8; size];
    d[..4].copy_from_slice(&burst.to_be_bytes());
    d[4..6].copy_from_slice(&idx.to_be_bytes());
    d[6..8].copy_from_slice(&count.to_be_bytes());
    Stream(u64::from(burst) << 16 | u64::from(idx) | 1).fill(&mut d[8..size - 4]);
    let h = fnv(&d[..size - 4]);
    d[size - 4..].copy_from_slice(&h.to_be_bytes());
    d
}

/// What the UDP test saw.
#[derive(Debug, Default)]
struct UdpOutcome {
    datagrams: usize,
    resends: usize,
}

/// Sends bursts of UDP datagrams of odd sizes; bursts of equal sizes go out with
/// `UDP_SEGMENT` (one USO super-packet per burst on the TUN device). The receiver checks each
/// datagram's FNV and acknowledges a burst once all of it arrived; a burst not acknowledged
/// within a second is sent again (and counted).
fn udp_transfer(t: &Tunnel, a_to_b: bool, v6: bool) -> UdpOutcome {
    let (tx_ns, rx_ns, dst, src) = t.way(a_to_b, v6);
    let max = MTU - if v6 { 48 } else { 28 };
    // (datagram size, count, send with GSO)
    let plan: Vec<(usize, u16, bool)> = vec![
        (max, 40, true),
        (1001, 33, true),
        (max, 1, false),
        (13, 50, true),
        (777, 5, false),
        (12, 3, false),
        (max - 1, 64, true),
        (555, 17, false),
    ];
    let bursts = plan.len() as u32;
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    let receiver = rx_ns.spawn_thread(move || -> Result<(), String> {
        let s = UdpSocket::bind((dst, 0)).map_err(|e| e.to_string())?;
        port_tx.send(s.local_addr().unwrap().port()).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut seen: Vec<Vec<bool>> = vec![Vec::new(); bursts as usize];
        let mut done = 0;
        let deadline = Instant::now() + IO_TIMEOUT * 2;
        let mut buf = [0u8; 65536];
        while done < bursts && Instant::now() < deadline {
            let (k, from) = match s.recv_from(&mut buf) {
                Ok(r) => r,
                Err(_) => continue,
            };
            let d = &buf[..k];
            if k < 12 || fnv(&d[..k - 4]).to_be_bytes() != d[k - 4..] {
                return Err(format!("corrupt datagram of {k} bytes"));
            }
            let burst = u32::from_be_bytes(d[..4].try_into().unwrap());
            let idx = usize::from(u16::from_be_bytes([d[4], d[5]]));
            let count = usize::from(u16::from_be_bytes([d[6], d[7]]));
            let Some(b) = seen.get_mut(burst as usize) else {
                return Err(format!("unknown burst {burst}"));
            };
            if b.is_empty() {
                b.resize(count, false);
            }
            if idx >= b.len() {
                return Err(format!("index {idx} out of {count}"));
            }
            let was_complete = b.iter().all(|&x| x);
            b[idx] = true;
            if b.iter().all(|&x| x) {
                if !was_complete {
                    done += 1;
                }
                let _ = s.send_to(&burst.to_be_bytes(), from);
            }
        }
        if done < bursts {
            return Err(format!("only {done} of {bursts} bursts arrived"));
        }
        Ok(())
    });
    let port = port_rx.recv_timeout(IO_TIMEOUT).expect("receiver port");
    let sender = tx_ns.spawn_thread(move || -> Result<UdpOutcome, String> {
        let s = ferrowg_sys::UdpSocket::bind_addr(SocketAddr::new(src, 0))
            .map_err(|e| e.to_string())?;
        // The acks come back to the same socket: read them through a std view of a clone of
        // its descriptor.
        let acks = UdpSocket::from(std::os::fd::AsFd::as_fd(&s).try_clone_to_owned().unwrap());
        acks.set_nonblocking(false).unwrap();
        acks.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let to = SocketAddr::new(dst, port);
        let mut out = UdpOutcome::default();
        for (burst, &(size, count, gso)) in plan.iter().enumerate() {
            let burst = burst as u32;
            let dgrams: Vec<Vec<u8>> = (0..count)
                .map(|i| datagram(burst, i, count, size))
                .collect();
            out.datagrams += dgrams.len();
            let mut tries = 0;
            loop {
                if gso {
                    let whole: Vec<u8> = dgrams.concat();
                    // At most 64 KiB per GSO send.
                    for chunk in whole.chunks(size * (65000 / size).min(64)) {
                        send_retry(|| s.send_gso(chunk, size as u16, to))?;
                    }
                } else {
                    for d in &dgrams {
                        send_retry(|| s.send_to(d, to))?;
                    }
                }
                let mut ack = [0u8; 4];
                let acked = loop {
                    match acks.recv(&mut ack) {
                        Ok(4) if u32::from_be_bytes(ack) == burst => break true,
                        Ok(_) => continue,
                        Err(_) => break false,
                    }
                };
                if acked {
                    break;
                }
                tries += 1;
                out.resends += 1;
                if tries > 10 {
                    return Err(format!("burst {burst} never acknowledged"));
                }
            }
        }
        Ok(out)
    });
    let out = sender.join().expect("sender thread");
    let r = receiver.join().expect("receiver thread");
    let out = out.unwrap_or_else(|e| panic!("UDP sender ({}): {e}", way_name(a_to_b, v6)));
    r.unwrap_or_else(|e| panic!("UDP receiver ({}): {e}", way_name(a_to_b, v6)));
    out
}

/// Retries a nonblocking send that found the buffer full, for a bounded time.
fn send_retry(mut f: impl FnMut() -> ferrowg_sys::Result<()>) -> Result<(), String> {
    let deadline = Instant::now() + IO_TIMEOUT;
    loop {
        match f() {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1))
            }
            Err(e) => return Err(format!("send: {e}")),
        }
    }
}

/// The counters of one namespace that say whether a packet was lost or refused.
#[derive(Debug, Default, Clone, PartialEq)]
struct Counters {
    /// Tcp/Udp/Udp6 InCsumErrors and Ip InHdrErrors: must stay zero.
    csum_errors: u64,
    /// Drops of the WireGuard UDP socket (receive buffer full).
    wg_socket_drops: u64,
    /// All UDP receive-buffer errors in the namespace (includes the test's own sockets).
    udp_rcvbuf_errors: u64,
    /// The WireGuard interface's rx_dropped (packets written by the daemon that the kernel
    /// dropped) and tx_dropped (packets the kernel could not queue for the daemon to read).
    tun_drops: (u64, u64),
}

fn counters(ns: &Netns, iface: &str) -> Counters {
    let snmp = ns.run("cat /proc/net/snmp /proc/net/snmp6");
    let field = |table: &str, name: &str| -> u64 {
        let mut lines = snmp.lines().filter(|l| l.starts_with(&format!("{table}:")));
        let (Some(h), Some(v)) = (lines.next(), lines.next()) else {
            return 0;
        };
        h.split_whitespace()
            .zip(v.split_whitespace())
            .find(|(k, _)| *k == name)
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0)
    };
    let snmp6 = |name: &str| -> u64 {
        snmp.lines()
            .find_map(|l| {
                let mut it = l.split_whitespace();
                (it.next() == Some(name)).then(|| it.next()?.parse().ok())?
            })
            .unwrap_or(0)
    };
    let csum_errors = field("Tcp", "InCsumErrors")
        + field("Udp", "InCsumErrors")
        + field("Ip", "InHdrErrors")
        + snmp6("Udp6InCsumErrors")
        + snmp6("Ip6InHdrErrors");
    let udp_rcvbuf_errors = field("Udp", "RcvbufErrors") + snmp6("Udp6RcvbufErrors");
    let port = format!(":{WG_PORT:04X} ");
    let wg_socket_drops = ns
        .run("cat /proc/net/udp /proc/net/udp6")
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|a| format!("{a} ").ends_with(&port))
        })
        .filter_map(|l| l.split_whitespace().last()?.parse::<u64>().ok())
        .sum();
    let stat = |s: &str| -> u64 {
        ns.run(&format!("cat /sys/class/net/{iface}/statistics/{s}"))
            .trim()
            .parse()
            .unwrap_or(0)
    };
    Counters {
        csum_errors,
        wg_socket_drops,
        udp_rcvbuf_errors,
        tun_drops: (stat("rx_dropped"), stat("tx_dropped")),
    }
}

/// Runs every transfer both ways over IPv4 and IPv6, checks the checksum counters, and prints
/// the drop report.
fn run_all(kind_a: Impl, kind_b: Impl, udp: bool) {
    if !require_root() {
        return;
    }
    if kind_b == Impl::WireguardGo {
        require_tool("wireguard-go");
    }
    let mut t = Tunnel::new(kind_a, kind_b);
    // ferrowg deepens its TUN queue (the kernel's default is 500 packets).
    let qlen = t
        .ns_a
        .run(&format!("cat /sys/class/net/{}/tx_queue_len", t.a.iface));
    assert_eq!(qlen.trim(), "4096", "TUN transmit queue length of A");
    let mut udp_report = Vec::new();
    for v6 in [false, true] {
        for a_to_b in [true, false] {
            // Bulk: the kernel hands over TSO super-packets; an odd total.
            tcp_transfer(&t, a_to_b, v6, (6 << 20) + 12_345, &[256 * 1024 + 3], false);
            // Odd writes with NODELAY: short segments, PSH everywhere.
            tcp_transfer(
                &t,
                a_to_b,
                v6,
                300_001,
                &[1, 17, 1000, 1379, 4096, 9001, 333],
                true,
            );
            if udp {
                let o = udp_transfer(&t, a_to_b, v6);
                udp_report.push(format!("{}: {o:?}", way_name(a_to_b, v6)));
            }
        }
    }
    let ca = counters(&t.ns_a, &t.a.iface);
    let cb = counters(&t.ns_b, &t.b.iface);
    let log_a = t.a.stop();
    let log_b = t.b.stop();
    let ours = |log: &str| {
        log.lines()
            .find(|l| l.contains("data-path drops"))
            .map(|l| l.split("data-path drops: ").nth(1).unwrap_or(l).to_string())
            .unwrap_or_else(|| "n/a".into())
    };
    eprintln!(
        "offload e2e report ({kind_a:?} A <-> {kind_b:?} B)\n  A: {ca:?}\n     own: {}\n  B: \
         {cb:?}\n     own: {}\n  UDP: {}",
        ours(&log_a),
        ours(&log_b),
        udp_report.join("; ")
    );
    assert_eq!(ca.csum_errors, 0, "checksum errors in A\n{log_a}");
    assert_eq!(cb.csum_errors, 0, "checksum errors in B\n{log_b}");
    // A is always ferrowg with offloads: it dropped nothing itself, and the offload paths
    // really ran (the kernel handed over super-packets, and runs were coalesced).
    assert!(
        log_a.contains("data-path drops: tun read errors 0, tun write errors 0"),
        "ferrowg A dropped packets itself:\n{log_a}"
    );
    assert!(
        !log_a.contains("super-packets split 0,") && !log_a.contains("coalesced 0,"),
        "offload paths not exercised in A:\n{log_a}"
    );
    // B with `--no-offload` ran the plain path: no super-packets to split or runs to coalesce.
    if kind_b == Impl::FerrowgPlain {
        assert!(
            log_b.contains("super-packets split 0, coalesced 0,"),
            "ferrowg B ran with offloads despite --no-offload:\n{log_b}"
        );
    }
    // A's receiving stage wrote B's data to the TUN device and sent the ACKs the kernel made
    // during those writes itself (all in order: the transfers above check their bytes).
    assert!(
        !log_a.contains("replies from the receiving stage 0,"),
        "the receiving stage never sent a reply in A:\n{log_a}"
    );
    // On a CPU with AVX-512 IFMA (the start-up line names the backend), bulk transfers seal
    // and open GSO/GRO batches in vector lanes; the bytes above checked that they did it right.
    if log_a.contains("AVX-512 IFMA (batches)") {
        assert!(
            !log_a.contains("sealed in vector lanes 0,")
                && !log_a.contains("opened in vector lanes 0)"),
            "the vector AEAD never ran in A:\n{log_a}"
        );
    }
    // ferrowg seals on a thread of its own when it has more than two CPUs.
    let many_cpus = std::thread::available_parallelism().is_ok_and(|n| n.get() > 2);
    assert_eq!(
        log_a.contains("sealing thread of its own"),
        kind_a == Impl::Ferrowg && many_cpus,
        "sealing thread use in A:\n{log_a}"
    );
}

#[test]
fn ferrowg_to_ferrowg_tcp_udp_v4_v6() {
    run_all(Impl::Ferrowg, Impl::Ferrowg, true);
}

#[test]
fn ferrowg_to_wireguard_go_tcp_udp_v4_v6() {
    run_all(Impl::Ferrowg, Impl::WireguardGo, true);
}

#[test]
fn ferrowg_offload_to_ferrowg_plain_tcp_udp_v4_v6() {
    run_all(Impl::Ferrowg, Impl::FerrowgPlain, true);
}
