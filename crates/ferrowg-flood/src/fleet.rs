//! `fleet`: thousands of simulated devices in one process, each a `ferrowg_proto::Device` with
//! its own key (from `--seed`, the keys `storm-keys` prints for the hub to admit), talking to
//! each other through a hub (bench/hub-scale.sh, issue #19).
//!
//! 1. Up: every device initiates at once, as after a hub restart; a device without a session
//!    tries again after REKEY_TIMEOUT and a jitter ([`retry_after`]), with the cookie of a
//!    cookie reply; reported: the time until every device has a session, and the cookie replies
//!    that kept the storm orderly.
//! 2. After [`SETTLE`], traffic for `--duration`: IPv4 UDP packets of [`PAYLOAD`] bytes from a random device to
//!    another random device (addresses from `--addresses`, line `i` for device `i`), `--rate`
//!    per second in all; reported: packets sent and delivered (decrypted by the destination
//!    device, from the right source), per second.
//!
//! Devices share `--sources` sockets; answers find their device by the index they carry.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use ferrowg_proto::messages::{
    MESSAGE_HANDSHAKE_COOKIE, REKEY_TIMEOUT, REKEY_TIMEOUT_JITTER_MAX, TRANSPORT_HEADER_SIZE,
};
use ferrowg_proto::{Incoming, Outgoing};
use ferrowg_sys::{RecvMeta, UdpSocket, BATCH_MAX};
use rand_core::{OsRng, RngCore};

use crate::args::Options;
use crate::storm::{flush, index_of, keys, sockets, Peer};

/// A device without a session initiates again after REKEY_TIMEOUT and a random jitter of up to
/// REKEY_TIMEOUT_JITTER_MAX, as a WireGuard device does (a cookie reply is kept for that next
/// initiation); a faster retry would make a loaded hub's late responses miss their initiation.
fn retry_after() -> Duration {
    REKEY_TIMEOUT
        + Duration::from_millis(
            u64::from(OsRng.next_u32()) % (REKEY_TIMEOUT_JITTER_MAX.as_millis() as u64 + 1),
        )
}
/// Between coming up and the traffic: a hub makes a pending device active (its group's rules
/// apply) at its sync round after the device's first handshake, once a second.
const SETTLE: Duration = Duration::from_secs(2);
/// The UDP payload of a test packet.
pub const PAYLOAD: usize = 64;
/// IPv4 + UDP headers.
const HEADERS: usize = 28;

/// What the fleet did.
#[derive(Debug, Default)]
pub struct Report {
    /// Devices with a session at the end of the up phase.
    pub up: u32,
    /// Seconds until every device had a session (or the timeout).
    pub up_seconds: f64,
    /// Initiations sent in the up phase.
    pub initiations: u64,
    /// Cookie replies received in the up phase.
    pub cookie_replies: u64,
    /// Test packets sent.
    pub sent: u64,
    /// Test packets delivered to their destination device.
    pub delivered: u64,
    /// Seconds of traffic.
    pub traffic_seconds: f64,
}

impl Report {
    /// One line of `key=value` figures.
    pub fn line(&self, o: &Options) -> String {
        let per = |n: u64, s: f64| n as f64 / s.max(1e-9);
        format!(
            "mode=fleet target={} peers={} up={} up_seconds={:.2} up_handshakes_per_s={:.0} \
             initiations={} cookie_replies={} sent={} delivered={} delivered_per_s={:.0} \
             traffic_seconds={:.2}",
            o.target,
            o.peers,
            self.up,
            self.up_seconds,
            per(u64::from(self.up), self.up_seconds),
            self.initiations,
            self.cookie_replies,
            self.sent,
            self.delivered,
            per(self.delivered, self.traffic_seconds),
            self.traffic_seconds,
        )
    }
}

/// The devices' addresses: line `i` of `text` is device `i`'s IPv4 address (with or without a
/// `/32`); exactly `n` lines.
pub fn addresses(text: &str, n: u32) -> Result<Vec<Ipv4Addr>, String> {
    let list: Vec<Ipv4Addr> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            let a = l.trim().trim_end_matches("/32");
            a.parse()
                .map_err(|_| format!("--addresses line {}: {a:?} is not an IPv4 address", i + 1))
        })
        .collect::<Result<_, _>>()?;
    if list.len() != n as usize {
        return Err(format!(
            "--addresses has {} addresses for {n} peers",
            list.len()
        ));
    }
    Ok(list)
}

/// An IPv4 UDP packet of [`PAYLOAD`] bytes from `src` to `dst`, at `buf[at..]`; its length.
fn packet(buf: &mut [u8], at: usize, src: Ipv4Addr, dst: Ipv4Addr, seq: u64) -> usize {
    let len = HEADERS + PAYLOAD;
    let p = &mut buf[at..at + len];
    p.fill(0);
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    let mut sum: u32 = p[..20]
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    p[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    p[20..22].copy_from_slice(&40000u16.to_be_bytes());
    p[22..24].copy_from_slice(&40001u16.to_be_bytes());
    p[24..26].copy_from_slice(&((8 + PAYLOAD) as u16).to_be_bytes());
    p[28..36].copy_from_slice(&seq.to_be_bytes());
    len
}

/// Runs the fleet against the hub at `o.target`.
pub fn run(o: &Options, addrs: &[Ipv4Addr]) -> Result<Report, String> {
    let start = Instant::now();
    let mut peers = keys(o.peers, o.seed)
        .into_iter()
        .map(|k| Peer::new(k, o, start))
        .collect::<Result<Vec<_>, _>>()?;
    for p in peers.iter_mut() {
        p.dev
            .add_allowed_ip(p.id, Ipv4Addr::UNSPECIFIED.into(), 0)
            .map_err(|e| format!("allowed IPs: {e:?}"))?;
    }
    let socks = sockets(o)?;
    let mut io = Io {
        socks,
        by_index: HashMap::new(),
        bufs: vec![[0u8; 2048]; BATCH_MAX.min(64)],
        meta: vec![RecvMeta::default(); BATCH_MAX.min(64)],
        out: [0u8; 2048],
    };
    let mut report = Report::default();
    let t0 = Instant::now();
    let mut retry: Vec<Duration> = Vec::with_capacity(peers.len());
    for p in peers.iter_mut() {
        p.initiate(start);
        retry.push(retry_after());
    }
    // Up.
    let mut up = 0u32;
    while up < o.peers && t0.elapsed() < o.timeout {
        for (i, p) in peers.iter_mut().enumerate() {
            if !p.done && p.asked.elapsed() >= retry[i] {
                p.initiate(start);
                retry[i] = retry_after();
            }
            let f = io.flush(p, i)?;
            report.initiations += f.initiations;
        }
        let r = io.receive(&mut peers, start)?;
        report.cookie_replies += r.cookies;
        report.initiations += r.flushed.initiations;
        up = peers.iter().filter(|p| p.done).count() as u32;
        if r.datagrams == 0 {
            std::thread::sleep(Duration::from_micros(500));
        }
    }
    report.up = up;
    report.up_seconds = t0.elapsed().as_secs_f64();
    let settle = Instant::now();
    while settle.elapsed() < SETTLE {
        if io.receive(&mut peers, start)?.datagrams == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    // Traffic.
    let t1 = Instant::now();
    let mut rng = OsRng;
    let mut buf = [0u8; 2048];
    while t1.elapsed() < o.duration && peers.len() > 1 {
        let due = (t1.elapsed().as_secs_f64() * f64::from(o.rate)) as u64;
        while report.sent < due {
            let i = (rng.next_u32() % o.peers) as usize;
            let mut j = (rng.next_u32() % (o.peers - 1)) as usize;
            if j >= i {
                j += 1;
            }
            let len = packet(
                &mut buf,
                TRANSPORT_HEADER_SIZE,
                addrs[i],
                addrs[j],
                report.sent,
            );
            let p = &mut peers[i];
            let now = p.now(start);
            if let Outgoing::Send { endpoint, len, .. } = p.dev.handle_packet(now, &mut buf, len) {
                let msg = [ferrowg_sys::Transmit::new(endpoint, &buf[..len])];
                io.sock(i)
                    .send_batch(&msg, Some(Duration::from_millis(100)))
                    .map_err(|e| format!("send to {endpoint}: {e}"))?;
            }
            io.flush(p, i)?;
            report.sent += 1;
        }
        let r = io.receive(&mut peers, start)?;
        report.delivered += r.delivered;
        if r.datagrams == 0 {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    // What is still on its way.
    let drain = Instant::now();
    while drain.elapsed() < Duration::from_millis(300) {
        report.delivered += io.receive(&mut peers, start)?.delivered;
    }
    report.traffic_seconds = t1.elapsed().as_secs_f64();
    Ok(report)
}

/// The sockets and buffers of the fleet.
struct Io {
    socks: Vec<UdpSocket>,
    by_index: HashMap<u32, usize>,
    bufs: Vec<[u8; 2048]>,
    meta: Vec<RecvMeta>,
    out: [u8; 2048],
}

/// What one [`Io::receive`] saw.
#[derive(Default)]
struct Received {
    datagrams: usize,
    cookies: u64,
    delivered: u64,
    flushed: crate::storm::Flushed,
}

impl Io {
    fn sock(&self, i: usize) -> &UdpSocket {
        &self.socks[i % self.socks.len()]
    }

    /// [`flush`] for device `i` on its socket.
    fn flush(&mut self, p: &mut Peer, i: usize) -> Result<crate::storm::Flushed, String> {
        let sock = &self.socks[i % self.socks.len()];
        flush(p, i, sock, &mut self.out, &mut self.by_index)
    }

    /// Hands every waiting datagram to its device.
    fn receive(&mut self, peers: &mut [Peer], start: Instant) -> Result<Received, String> {
        let mut r = Received::default();
        for s in 0..self.socks.len() {
            let n = self.socks[s]
                .recv_batch(&mut self.bufs, &mut self.meta, Some(Duration::ZERO))
                .map_err(|e| format!("receive: {e}"))?;
            r.datagrams += n;
            for k in 0..n {
                let m = self.meta[k];
                let d = &mut self.bufs[k][..m.len];
                let index = match d.first() {
                    Some(4) => d
                        .get(4..8)
                        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                    _ => index_of(d),
                };
                let Some(&i) = index.and_then(|x| self.by_index.get(&x)) else {
                    continue;
                };
                let p = &mut peers[i];
                if d[0] == MESSAGE_HANDSHAKE_COOKIE {
                    r.cookies += 1;
                }
                if let Incoming::Packet { .. } = p.dev.handle_datagram(p.now(start), m.src, d) {
                    r.delivered += 1;
                }
                let f = flush(p, i, &self.socks[s], &mut self.out, &mut self.by_index)?;
                r.flushed.initiations += f.initiations;
            }
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_packets() {
        let a = addresses("10.64.0.2/32\n10.64.0.3\n\n", 2).unwrap();
        assert_eq!(
            a,
            [Ipv4Addr::new(10, 64, 0, 2), Ipv4Addr::new(10, 64, 0, 3)]
        );
        assert!(addresses("10.64.0.2\n", 2).is_err());
        assert!(addresses("nope\n", 1).is_err());
        let mut buf = [0u8; 200];
        let len = packet(&mut buf, 16, a[0], a[1], 7);
        assert_eq!(len, 92);
        let ip = &buf[16..16 + len];
        let sum: u32 = ip[..20]
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
            .sum();
        assert_eq!((sum & 0xffff) + (sum >> 16), 0xffff, "header checksum");
        assert_eq!(ferrowg_proto::device::ip_destination(ip), Some(a[1].into()));
    }
}
