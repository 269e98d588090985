//! End-to-end: session keys leave no trace in the daemon's memory once their keypair is gone
//! (issue #17, item 6; the kernel frees keypairs with `kfree_sensitive`).
//!
//! `ferrowg daemon` runs in a namespace of its own; its one peer is a ferrowg-proto `Device`
//! inside this test (feature `test-export-keys`, so the test knows the session keys), talking
//! UDP over the namespace's loopback and pinging the daemon's tunnel address, so every
//! session's keys are used in both directions and the daemon confirms each new keypair. The
//! test reads every readable mapping of the daemon (`/proc/PID/maps`, `/proc/PID/mem`) and
//! looks for the 32 raw bytes of each key:
//!
//! - control: the keys of the live session are found (the scan sees where keys are kept);
//! - after three more handshakes (the test peer initiating) the first two sessions' keys are
//!   gone from the daemon's keypair slots, and found nowhere; the live ones still are;
//! - after `ferrowg set … peer … remove`, no key of any session is found.
//!
//! Needs root; without it fails unless FERROWG_SKIP_ROOT_TESTS=1. Every wait is bounded.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::os::unix::fs::FileExt;
use std::time::Duration;

use ferrowg_keys::key::PublicKey;
use ferrowg_proto::crypto::{clamp, RustCrypto, SecretKey};
use ferrowg_proto::{Device, Incoming, Instant, Outgoing, PeerConfig, PeerId};
use ferrowg_proto::{Transmit, TRANSPORT_HEADER_SIZE as HEADER};
use ferrowg_testkit::*;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The daemon's UDP port inside its namespace.
const DAEMON_PORT: u16 = 51820;
/// The daemon's tunnel address, and the test peer's.
const DAEMON_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
/// How long one handshake or ping may take.
const LIMIT: Duration = Duration::from_secs(5);
/// Pause before each initiation, above the responder's limit of one initiation per peer every
/// 20 ms (`INITIATIONS_PER_SECOND`).
const INITIATION_GAP: Duration = Duration::from_millis(30);

/// The daemon, in a namespace that kills it and goes away on drop.
struct Daemon {
    ns: Netns,
    iface: String,
    pid: u32,
    public: [u8; 32],
    _dir: TempDir,
}

/// Starts `ferrowg daemon --aead=AEAD` with one peer (`peer_public`, allowed IP [`PEER_IP`])
/// and the tunnel address [`DAEMON_IP`]/24.
fn start_daemon(mut ns: Netns, aead: &str, peer_public: &[u8; 32]) -> Daemon {
    let iface = iface_name("m");
    let pid = start_ferrowg(&mut ns, &iface, &[&format!("--aead={aead}")], &[]);
    let keys = genkeys();
    let dir = TempDir::new();
    let key_file = dir.write("private.key", &keys.private);
    let peer = PublicKey::from_bytes(*peer_public).to_base64();
    ns.run(&format!(
        "{} set {iface} private-key {} listen-port {DAEMON_PORT} peer {peer} allowed-ips {PEER_IP}/32",
        fwg(),
        key_file.display()
    ));
    ns.ip(&["addr", "add", &format!("{DAEMON_IP}/24"), "dev", &iface]);
    ns.ip(&["link", "set", &iface, "up"]);
    let public = *PublicKey::from_base64(keys.public.trim())
        .expect("public key")
        .as_bytes();
    Daemon {
        ns,
        iface,
        pid,
        public,
        _dir: dir,
    }
}

/// The daemon's peer: a protocol device on a UDP socket in the daemon's namespace, with a clock
/// of its own that jumps past REKEY_TIMEOUT before each initiation (its own limit of one
/// initiation per peer every 5 s) and so also gives each initiation a greater timestamp.
struct TestPeer {
    dev: Device,
    peer: PeerId,
    sock: UdpSocket,
    now: Instant,
    buf: Vec<u8>,
}

impl TestPeer {
    fn new(ns: &Netns, key: SecretKey, daemon_public: [u8; 32], rng: ChaCha8Rng) -> TestPeer {
        let sock = ns.run_in(|| UdpSocket::bind("127.0.0.1:0").expect("bind"));
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let mut dev = Device::new(Box::new(key), Box::new(RustCrypto), Box::new(rng));
        let now = Instant::from_secs(1);
        dev.set_clock(now, unix_now() * 1_000_000_000);
        let cfg = PeerConfig {
            endpoint: Some(SocketAddr::from((Ipv4Addr::LOCALHOST, DAEMON_PORT))),
            ..PeerConfig::default()
        };
        let peer = dev.add_peer(daemon_public, cfg, now).expect("add peer");
        dev.add_allowed_ip(peer, IpAddr::V4(DAEMON_IP), 32)
            .expect("allowed ip");
        TestPeer {
            dev,
            peer,
            sock,
            now,
            buf: vec![0u8; 2048],
        }
    }

    /// Sends whatever the device has queued.
    fn flush(&mut self) {
        while let Some(Transmit { endpoint, len }) = self.dev.poll_transmit(&mut self.buf) {
            self.sock.send_to(&self.buf[..len], endpoint).expect("send");
        }
    }

    /// Receives and handles datagrams until `done` says so; panics after [`LIMIT`].
    fn pump(&mut self, what: &str, mut done: impl FnMut(Incoming, &[u8]) -> bool) {
        let start = std::time::Instant::now();
        let mut rx = vec![0u8; 2048];
        loop {
            self.flush();
            assert!(start.elapsed() < LIMIT, "no {what} within {LIMIT:?}");
            let Ok((n, src)) = self.sock.recv_from(&mut rx) else {
                continue;
            };
            let r = self.dev.handle_datagram(self.now, src, &mut rx[..n]);
            if done(r, &rx[HEADER..n]) {
                self.flush();
                return;
            }
        }
    }

    /// A complete handshake, initiated by this end.
    fn handshake(&mut self) {
        std::thread::sleep(INITIATION_GAP);
        self.now = self.now + Duration::from_secs(6);
        self.dev.initiate_handshake(self.peer, self.now);
        self.pump("handshake response", |r, _| r == Incoming::Handshake);
    }

    /// A ping to the daemon's address and its reply: data both ways on the current session
    /// (which also confirms it at the daemon, the responder).
    fn ping(&mut self, seq: u16) {
        let request = echo_request(seq);
        self.buf[HEADER..][..request.len()].copy_from_slice(&request);
        match self
            .dev
            .handle_packet(self.now, &mut self.buf, request.len())
        {
            Outgoing::Send { endpoint, len, .. } => {
                self.sock.send_to(&self.buf[..len], endpoint).expect("send");
            }
            other => panic!("ping {seq} not sent: {other:?}"),
        }
        self.pump("echo reply", |r, p| {
            matches!(r, Incoming::Packet { .. }) && is_echo_reply(p, seq)
        });
    }

    /// The send and receive keys of the current session.
    fn current_keys(&self) -> Vec<[u8; 32]> {
        let keys = self.dev.export_session_keys(self.peer);
        // Previous (if any) first, then current: the current pair is last (no `next` slot on
        // the initiator).
        assert!(keys.len() >= 2, "no session keys exported");
        keys[keys.len() - 2..].to_vec()
    }
}

/// The Internet checksum of `b`.
fn checksum(b: &[u8]) -> u16 {
    let mut sum: u32 = b
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An ICMP echo request from [`PEER_IP`] to [`DAEMON_IP`] with sequence number `seq`.
fn echo_request(seq: u16) -> Vec<u8> {
    let mut p = vec![0u8; 20 + 8 + 32];
    let len = p.len() as u16;
    p[0] = 0x45;
    p[2..4].copy_from_slice(&len.to_be_bytes());
    p[8] = 64;
    p[9] = 1;
    p[12..16].copy_from_slice(&PEER_IP.octets());
    p[16..20].copy_from_slice(&DAEMON_IP.octets());
    let c = checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p[20] = 8;
    p[24..26].copy_from_slice(&0x4d53u16.to_be_bytes());
    p[26..28].copy_from_slice(&seq.to_be_bytes());
    let c = checksum(&p[20..]);
    p[22..24].copy_from_slice(&c.to_be_bytes());
    p
}

/// Whether the IP packet `p` is the echo reply to [`echo_request`]`(seq)`.
fn is_echo_reply(p: &[u8], seq: u16) -> bool {
    p.len() >= 28 && p[9] == 1 && p[20] == 0 && p[26..28] == seq.to_be_bytes()
}

/// Where in the memory of process `pid` each of `keys` occurs (its first occurrence: the
/// mapping's line of `/proc/PID/maps` and the address), or `None` where it does not. Reads
/// every readable mapping; mappings the kernel refuses to read (`[vvar]`) are skipped.
fn scan(pid: u32, keys: &[[u8; 32]]) -> Vec<Option<String>> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).expect("read maps");
    let mem = File::open(format!("/proc/{pid}/mem")).expect("open mem");
    let finders: Vec<_> = keys.iter().map(memchr::memmem::Finder::new).collect();
    let mut found = vec![None; keys.len()];
    let mut chunk = vec![0u8; 1 << 20];
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
            continue;
        };
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (u64::from_str_radix(start, 16), u64::from_str_radix(end, 16))
        else {
            continue;
        };
        if !perms.starts_with('r') {
            continue;
        }
        // Chunks overlap by 31 bytes so that a key across a chunk boundary is seen.
        let mut at = start;
        while at < end {
            let n = chunk.len().min((end - at) as usize);
            let Ok(got) = mem.read_at(&mut chunk[..n], at) else {
                break;
            };
            if got == 0 {
                break;
            }
            for (i, f) in finders.iter().enumerate() {
                if found[i].is_none() {
                    if let Some(off) = f.find(&chunk[..got]) {
                        found[i] = Some(format!("{line} at {:#x}", at + off as u64));
                    }
                }
            }
            if at + got as u64 >= end {
                break;
            }
            at += got.saturating_sub(31).max(1) as u64;
        }
    }
    found
}

/// Asserts that every one of `keys` is (`present`) or is not in the memory of process `pid`.
fn assert_in_memory(pid: u32, keys: &[[u8; 32]], present: bool, what: &str) {
    let found = scan(pid, keys);
    let wrong: Vec<String> = found
        .iter()
        .enumerate()
        .filter(|(_, f)| f.is_some() != present)
        .map(|(i, f)| format!("key {i}: {}", f.as_deref().unwrap_or("not found")))
        .collect();
    let want = if present { "found" } else { "absent" };
    assert!(
        wrong.is_empty(),
        "{what}: {} of {} keys not {want}:\n{}",
        wrong.len(),
        keys.len(),
        wrong.join("\n")
    );
    eprintln!("{what}: all {} keys {want}", keys.len());
}

/// The daemon with its default backend: where the CPU has AVX-512 IFMA, each session key is
/// the vector code's copy plus ring's key; elsewhere ring's key alone.
#[test]
fn expired_session_keys_are_wiped_from_daemon_memory() {
    expired_keys_are_wiped("auto");
}

/// The daemon with ring's keys alone.
#[test]
fn expired_session_keys_are_wiped_from_daemon_memory_ring_only() {
    expired_keys_are_wiped("ring");
}

/// Runs the sessions described at the top against a daemon started with `--aead=AEAD`.
fn expired_keys_are_wiped(aead: &str) {
    let Some(ns) = Netns::for_test("mem") else {
        return;
    };
    let mut rng = ChaCha8Rng::seed_from_u64(unix_now() ^ u64::from(std::process::id()));
    let mut private = [0u8; 32];
    rng.fill_bytes(&mut private);
    let key = SecretKey::from_bytes(clamp(private));
    let daemon = start_daemon(
        ns,
        aead,
        &ferrowg_proto::crypto::StaticKey::public_key(&key),
    );
    let mut peer = TestPeer::new(&daemon.ns, key, daemon.public, rng);

    // Session 1, used both ways; its keys are where the daemon keeps them.
    peer.handshake();
    peer.ping(1);
    let mut sessions = vec![peer.current_keys()];
    assert_in_memory(daemon.pid, &sessions[0], true, "live session 1 (control)");

    // Three more sessions, each confirmed by a ping: the daemon drops sessions 1 and 2.
    for seq in 2..=4 {
        peer.handshake();
        peer.ping(seq);
        sessions.push(peer.current_keys());
    }
    let expired: Vec<[u8; 32]> = sessions[..2].concat();
    let live: Vec<[u8; 32]> = sessions[2..].concat();
    assert_in_memory(
        daemon.pid,
        &expired,
        false,
        "sessions 1-2 after three rekeys",
    );
    assert_in_memory(daemon.pid, &live, true, "live sessions 3-4 (control)");

    // Removing the peer drops the rest.
    let public = PublicKey::from_bytes(peer.dev.public_key()).to_base64();
    daemon.ns.run(&format!(
        "{} set {} peer {public} remove",
        fwg(),
        daemon.iface
    ));
    let all: Vec<[u8; 32]> = sessions.concat();
    assert_in_memory(daemon.pid, &all, false, "every session after peer removal");
}
