//! `storm`: many real peers handshaking with one target as fast as it answers, for the
//! handshakes per second a hub sustains (bench/hub.sh). Each peer is a `ferrowg_proto::Device`
//! with its own key, made from `--seed` (so `storm-keys` prints the same public keys for the
//! hub to admit first). With `--sources N` the peers spread over N sockets bound to N
//! consecutive addresses from `--bind` on (a target under load limits handshakes per source
//! address, as the kernel does, so a storm from one address measures that limit); answers find
//! their peer by the receiver index they carry.
//!
//! A peer handshakes again as soon as its session is up and [`PEER_INTERVAL`] has passed since
//! its last initiation. The protocol lets a peer initiate once
//! per REKEY_TIMEOUT, so each peer's clock jumps ahead by REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER_MAX
//! before it initiates (its wall clock re-tied to real time: timestamps stay real and rising).
//! A cookie reply is answered at once the same way; a peer without an answer for
//! [`RETRY_AFTER`] initiates again. Counted: handshakes completed, initiations sent, cookie
//! replies, over `--duration`.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferrowg_proto::crypto::{clamp, RustCrypto, SecretKey, StaticKey};
use ferrowg_proto::messages::{
    MESSAGE_HANDSHAKE_COOKIE, MESSAGE_HANDSHAKE_INITIATION, MESSAGE_HANDSHAKE_RESPONSE,
    REKEY_TIMEOUT, REKEY_TIMEOUT_JITTER_MAX,
};
use ferrowg_proto::{Device, Event, PeerConfig, PeerId};
use ferrowg_sys::{RecvMeta, UdpSocket, BATCH_MAX};
use rand_chacha::ChaCha20Rng;
use rand_core::{OsRng, RngCore, SeedableRng};

use crate::args::Options;

/// A peer without an answer for this long initiates again.
const RETRY_AFTER: Duration = Duration::from_millis(500);
/// The shortest time between two initiations of one peer: a target accepts at most one per
/// 20 ms from a peer (the kernel's INITIATIONS_PER_SECOND), and the timestamps of two
/// initiations must lie in different 2^24 ns slots to rise.
const PEER_INTERVAL: Duration = Duration::from_millis(35);
/// Where each peer's clock starts.
const CLOCK_BASE: Duration = Duration::from_secs(1000);

/// The private keys of the storm's peers: `n` keys from `seed`.
pub fn keys(n: u32, seed: u64) -> Vec<SecretKey> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let mut k = [0u8; 32];
            rng.fill_bytes(&mut k);
            SecretKey::from_bytes(clamp(k))
        })
        .collect()
}

/// The public keys of [`keys`], one base64 key per line.
pub fn public_keys(o: &Options) -> String {
    keys(o.peers, o.seed)
        .iter()
        .map(|k| ferrowg_keys::key::PublicKey::from_bytes(k.public_key()).to_base64() + "\n")
        .collect()
}

/// What the storm did.
#[derive(Debug, Default)]
pub struct Report {
    /// Handshakes completed.
    pub handshakes: u64,
    /// Initiations sent.
    pub initiations: u64,
    /// Cookie replies received.
    pub cookie_replies: u64,
    /// How long it ran.
    pub elapsed: Duration,
}

impl Report {
    /// One line of `key=value` figures.
    pub fn line(&self, o: &Options) -> String {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        format!(
            "mode=storm target={} peers={} seconds={:.2} handshakes={} handshakes_per_s={:.0} initiations={} cookie_replies={}",
            o.target,
            o.peers,
            secs,
            self.handshakes,
            self.handshakes as f64 / secs,
            self.initiations,
            self.cookie_replies,
        )
    }
}

/// One peer of the storm (and of the fleet).
pub(crate) struct Peer {
    pub(crate) dev: Device,
    pub(crate) id: PeerId,
    /// Clock jumps so far.
    pub(crate) jumped: Duration,
    /// When it last initiated.
    pub(crate) asked: Instant,
    /// The sender index of its latest initiation.
    pub(crate) index: Option<u32>,
    /// Its session is up: it initiates again at `asked` + [`PEER_INTERVAL`].
    pub(crate) done: bool,
}

pub(crate) fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// A peer's clock: real time since `start` plus its jumps.
pub(crate) fn clock(start: Instant, jumped: Duration) -> ferrowg_proto::Instant {
    let d = CLOCK_BASE + start.elapsed() + jumped;
    ferrowg_proto::Instant::from_nanos(d.as_nanos() as u64)
}

impl Peer {
    pub(crate) fn new(key: SecretKey, o: &Options, start: Instant) -> Result<Peer, String> {
        let rng = ChaCha20Rng::from_rng(OsRng).map_err(|e| format!("getrandom: {e}"))?;
        let mut dev = Device::new(Box::new(key), Box::new(RustCrypto), Box::new(rng));
        dev.set_clock(clock(start, Duration::ZERO), unix_nanos());
        let cfg = PeerConfig {
            endpoint: Some(o.target),
            ..PeerConfig::default()
        };
        let id = dev
            .add_peer(o.target_key, cfg, clock(start, Duration::ZERO))
            .map_err(|e| format!("add peer: {e:?}"))?;
        Ok(Peer {
            dev,
            id,
            jumped: Duration::ZERO,
            asked: start,
            index: None,
            done: false,
        })
    }

    pub(crate) fn now(&self, start: Instant) -> ferrowg_proto::Instant {
        clock(start, self.jumped)
    }

    /// Jumps the clock past the initiation rate limit and initiates.
    pub(crate) fn initiate(&mut self, start: Instant) {
        self.jumped += REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER_MAX;
        let now = self.now(start);
        self.dev.set_clock(now, unix_nanos());
        self.dev.handle_timeout(now);
        self.dev.initiate_handshake(self.id, now);
        self.asked = Instant::now();
        self.done = false;
    }

    /// Whether it is time to initiate: its session is up and the interval has passed, or no
    /// answer came.
    fn due(&self) -> bool {
        let since = self.asked.elapsed();
        (self.done && since >= PEER_INTERVAL) || since >= RETRY_AFTER
    }
}

/// The sender index of an initiation, or the receiver index of a response or cookie reply.
pub(crate) fn index_of(d: &[u8]) -> Option<u32> {
    let at = match *d.first()? {
        MESSAGE_HANDSHAKE_INITIATION => 4,
        MESSAGE_HANDSHAKE_RESPONSE => 8,
        MESSAGE_HANDSHAKE_COOKIE => 4,
        _ => return None,
    };
    Some(u32::from_le_bytes(d.get(at..at + 4)?.try_into().ok()?))
}

/// Runs the storm against `o.target` for `o.duration`.
pub fn run(o: &Options) -> Result<Report, String> {
    let start = Instant::now();
    let mut peers = keys(o.peers, o.seed)
        .into_iter()
        .map(|k| Peer::new(k, o, start))
        .collect::<Result<Vec<_>, _>>()?;
    let socks = sockets(o)?;
    let mut by_index: HashMap<u32, usize> = HashMap::new();
    let mut report = Report::default();
    let mut bufs = vec![[0u8; 2048]; BATCH_MAX.min(64)];
    let mut meta = vec![RecvMeta::default(); bufs.len()];
    let mut out = [0u8; 2048];
    let t0 = Instant::now();
    for p in peers.iter_mut() {
        p.initiate(start);
    }
    while t0.elapsed() < o.duration {
        for (i, p) in peers.iter_mut().enumerate() {
            if p.due() {
                p.initiate(start);
            }
            let sock = &socks[i % socks.len()];
            report.add(flush(p, i, sock, &mut out, &mut by_index)?);
        }
        let mut got = 0;
        for sock in &socks {
            let n = sock
                .recv_batch(&mut bufs, &mut meta, Some(Duration::ZERO))
                .map_err(|e| format!("receive: {e}"))?;
            got += n;
            for (b, m) in bufs[..n].iter_mut().zip(&meta[..n]) {
                let d = &mut b[..m.len];
                let Some(&i) = index_of(d).and_then(|x| by_index.get(&x)) else {
                    continue;
                };
                let p = &mut peers[i];
                if d[0] == MESSAGE_HANDSHAKE_COOKIE {
                    report.cookie_replies += 1;
                    // Answered with mac2 once the interval allows.
                    p.done = true;
                }
                p.dev.handle_datagram(p.now(start), m.src, d);
                report.add(flush(p, i, sock, &mut out, &mut by_index)?);
            }
        }
        if got == 0 {
            std::thread::sleep(Duration::from_micros(500));
        }
    }
    report.elapsed = t0.elapsed();
    Ok(report)
}

/// The storm's sockets: `o.sources` of them, on consecutive addresses from `o.bind`.
pub(crate) fn sockets(o: &Options) -> Result<Vec<UdpSocket>, String> {
    (0..o.sources)
        .map(|j| {
            let ip = match o.bind.ip() {
                std::net::IpAddr::V4(a) => {
                    std::net::IpAddr::V4((u32::from(a).wrapping_add(u32::from(j))).into())
                }
                std::net::IpAddr::V6(a) => {
                    std::net::IpAddr::V6((u128::from(a).wrapping_add(u128::from(j))).into())
                }
            };
            let at = std::net::SocketAddr::new(ip, o.bind.port());
            UdpSocket::bind_addr(at).map_err(|e| format!("bind {at}: {e}"))
        })
        .collect()
}

/// What one [`flush`] saw.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Flushed {
    /// Handshakes the peer completed.
    pub(crate) handshakes: u64,
    /// Initiations it sent.
    pub(crate) initiations: u64,
}

/// Sends what peer `i` queued (noting its initiations' indices) and counts its completed
/// handshakes.
pub(crate) fn flush(
    p: &mut Peer,
    i: usize,
    sock: &UdpSocket,
    out: &mut [u8],
    by_index: &mut HashMap<u32, usize>,
) -> Result<Flushed, String> {
    let mut f = Flushed::default();
    while let Some(e) = p.dev.poll_event() {
        if matches!(e, Event::HandshakeCompleted { .. }) {
            f.handshakes += 1;
            p.done = true;
        }
    }
    while let Some(t) = p.dev.poll_transmit(out) {
        let d = &out[..t.len];
        if d[0] == MESSAGE_HANDSHAKE_INITIATION {
            f.initiations += 1;
            // One index per peer in the map: its latest initiation's.
            if let Some(old) = p.index.take() {
                by_index.remove(&old);
            }
            if let Some(x) = index_of(d) {
                by_index.insert(x, i);
                p.index = Some(x);
            }
        }
        let msg = [ferrowg_sys::Transmit::new(t.endpoint, d)];
        sock.send_batch(&msg, Some(Duration::from_millis(100)))
            .map_err(|e| format!("send to {}: {e}", t.endpoint))?;
    }
    Ok(f)
}

impl Report {
    fn add(&mut self, f: Flushed) {
        self.handshakes += f.handshakes;
        self.initiations += f.initiations;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_seed_and_answers_find_their_initiation() {
        let a: Vec<[u8; 32]> = keys(3, 7).iter().map(|k| k.public_key()).collect();
        let b: Vec<[u8; 32]> = keys(3, 7).iter().map(|k| k.public_key()).collect();
        let c: Vec<[u8; 32]> = keys(3, 8).iter().map(|k| k.public_key()).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a[0], a[1]);
        // The initiation's sender index is where the response and the cookie reply carry it.
        let mut init = [0u8; 148];
        init[0] = MESSAGE_HANDSHAKE_INITIATION;
        init[4..8].copy_from_slice(&0xdead_beef_u32.to_le_bytes());
        let mut resp = [0u8; 92];
        resp[0] = MESSAGE_HANDSHAKE_RESPONSE;
        resp[8..12].copy_from_slice(&0xdead_beef_u32.to_le_bytes());
        let mut cookie = [0u8; 64];
        cookie[0] = MESSAGE_HANDSHAKE_COOKIE;
        cookie[4..8].copy_from_slice(&0xdead_beef_u32.to_le_bytes());
        for d in [&init[..], &resp[..], &cookie[..]] {
            assert_eq!(index_of(d), Some(0xdead_beef));
        }
        assert_eq!(index_of(&[4, 0, 0]), None);
        assert_eq!(index_of(&[2, 0, 0, 0, 1]), None);
        assert_eq!(index_of(&[]), None);
    }
}
