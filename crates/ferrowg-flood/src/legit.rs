//! The legitimate peer: a `ferrowg_proto::Device` with a real key that handshakes with the
//! target once and times it, from its first initiation to the session (the response consumed),
//! cookie round trip included.
//!
//! A cookie reply is answered at once. The device rate-limits initiations to one per
//! REKEY_TIMEOUT and retries when its retransmit timer fires (after REKEY_TIMEOUT plus up to
//! REKEY_TIMEOUT_JITTER_MAX), as stock peers do; to measure the target's side of the cookie
//! path and not that timer, the clock this peer gives its device jumps ahead by
//! REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER_MAX when a cookie reply arrives, and the timer is run at
//! once. The device's wall clock (`set_clock`) is re-tied to real time at the jump, so the
//! handshake timestamps stay real.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferrowg_keys::keyfile::read_private_key;
use ferrowg_proto::crypto::{RustCrypto, SecretKey};
use ferrowg_proto::messages::{
    MESSAGE_HANDSHAKE_COOKIE, MESSAGE_HANDSHAKE_INITIATION, REKEY_TIMEOUT, REKEY_TIMEOUT_JITTER_MAX,
};
use ferrowg_proto::{Device, Event, Incoming, PeerConfig, PeerId};
use ferrowg_sys::{RecvMeta, UdpSocket, BATCH_MAX};
use rand_chacha::ChaCha20Rng;
use rand_core::{OsRng, SeedableRng};

use crate::args::Options;

/// Where the device's clock starts (any non-zero instant).
const CLOCK_BASE: Duration = Duration::from_secs(1000);
/// The longest wait for a datagram between two looks at the clock and the timers.
const POLL: Duration = Duration::from_millis(20);

/// What the handshake did.
#[derive(Debug, Default)]
pub struct Report {
    /// From the first initiation to the session; `None` if it did not complete in time.
    pub total: Option<Duration>,
    /// When the first cookie reply arrived, if one did.
    pub cookie_at: Option<Duration>,
    /// Initiations sent.
    pub initiations: u32,
    /// Cookie replies received.
    pub cookie_replies: u32,
}

impl Report {
    /// One line of `key=value` figures.
    pub fn line(&self, o: &Options) -> String {
        let ms = |d: Option<Duration>| {
            d.map_or("-".to_string(), |d| format!("{:.2}", d.as_secs_f64() * 1e3))
        };
        format!(
            "mode=legit target={} handshake={} total_ms={} cookie={} cookie_ms={} cookie_replies={} initiations={}",
            o.target,
            if self.total.is_some() { "ok" } else { "timeout" },
            ms(self.total),
            if self.cookie_replies > 0 { "yes" } else { "no" },
            ms(self.cookie_at),
            self.cookie_replies,
            self.initiations,
        )
    }
}

/// The device's clock: real elapsed time plus the jumps made at cookie replies.
struct Clock {
    start: Instant,
    jumped: Duration,
}

impl Clock {
    fn now(&self) -> ferrowg_proto::Instant {
        let d = CLOCK_BASE + self.start.elapsed() + self.jumped;
        ferrowg_proto::Instant::from_nanos(d.as_nanos() as u64)
    }
}

fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The peer: its device, socket and clock.
struct Peer {
    dev: Device,
    id: PeerId,
    sock: UdpSocket,
    clock: Clock,
    report: Report,
    done: bool,
}

impl Peer {
    fn new(o: &Options) -> Result<Peer, String> {
        let path = o.key_file.as_ref().ok_or("legit needs --key-file")?;
        let key = read_private_key(path).map_err(|e| e.to_string())?;
        Peer::with_key(SecretKey::from_bytes(*key.as_bytes()), o)
    }

    fn with_key(secret: SecretKey, o: &Options) -> Result<Peer, String> {
        let rng = ChaCha20Rng::from_rng(OsRng).map_err(|e| format!("getrandom: {e}"))?;
        let mut dev = Device::new(Box::new(secret), Box::new(RustCrypto), Box::new(rng));
        let clock = Clock {
            start: Instant::now(),
            jumped: Duration::ZERO,
        };
        dev.set_clock(clock.now(), unix_nanos());
        let cfg = PeerConfig {
            endpoint: Some(o.target),
            ..PeerConfig::default()
        };
        let id = dev
            .add_peer(o.target_key, cfg, clock.now())
            .map_err(|e| format!("add peer: {e:?}"))?;
        let sock = UdpSocket::bind_addr(o.bind).map_err(|e| format!("bind {}: {e}", o.bind))?;
        Ok(Peer {
            dev,
            id,
            sock,
            clock,
            report: Report::default(),
            done: false,
        })
    }

    /// Sends what the device queued and notes the events.
    fn flush(&mut self, t0: Instant) -> Result<(), String> {
        let mut buf = [0u8; 2048];
        while let Some(t) = self.dev.poll_transmit(&mut buf) {
            if buf[0] == MESSAGE_HANDSHAKE_INITIATION {
                self.report.initiations += 1;
            }
            send(&self.sock, &buf[..t.len], t.endpoint)?;
        }
        while let Some(e) = self.dev.poll_event() {
            if let Event::HandshakeCompleted { peer, .. } = e {
                if peer == self.id && !self.done {
                    self.done = true;
                    self.report.total = Some(t0.elapsed());
                }
            }
        }
        Ok(())
    }

    /// One datagram from the network; a cookie reply makes the device retry at once.
    fn receive(&mut self, buf: &mut [u8], src: SocketAddr, t0: Instant) {
        let cookie = buf.first() == Some(&MESSAGE_HANDSHAKE_COOKIE);
        let res = self.dev.handle_datagram(self.clock.now(), src, buf);
        if cookie && res == Incoming::Handshake {
            self.report.cookie_replies += 1;
            self.report.cookie_at.get_or_insert(t0.elapsed());
            self.clock.jumped += REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER_MAX;
            self.dev.set_clock(self.clock.now(), unix_nanos());
            self.dev.handle_timeout(self.clock.now());
            // The retransmit timer may not be armed (e.g. a reply to an earlier initiation).
            if self.dev.pending_transmits() == 0 {
                self.dev.initiate_handshake(self.id, self.clock.now());
            }
        }
    }
}

fn send(sock: &UdpSocket, data: &[u8], dst: SocketAddr) -> Result<(), String> {
    let msg = [ferrowg_sys::Transmit::new(dst, data)];
    match sock.send_batch(&msg, Some(Duration::from_millis(100))) {
        Ok(1) => Ok(()),
        Ok(_) => Err(format!("send to {dst}: send buffer full")),
        Err(e) => Err(format!("send to {dst}: {e}")),
    }
}

/// Handshakes with `o.target` once, waiting at most `o.timeout`.
pub fn run(o: &Options) -> Result<Report, String> {
    let mut p = Peer::new(o)?;
    let mut bufs = vec![[0u8; 2048]; BATCH_MAX.min(16)];
    let mut meta = vec![RecvMeta::default(); bufs.len()];
    let t0 = Instant::now();
    p.dev.initiate_handshake(p.id, p.clock.now());
    p.flush(t0)?;
    while !p.done && t0.elapsed() < o.timeout {
        let wait = o.timeout.saturating_sub(t0.elapsed()).min(POLL);
        let n = p
            .sock
            .recv_batch(&mut bufs, &mut meta, Some(wait))
            .map_err(|e| format!("receive: {e}"))?;
        for (b, m) in bufs[..n].iter_mut().zip(&meta[..n]) {
            if m.src == o.target && !m.truncated {
                p.receive(&mut b[..m.len], m.src, t0);
            }
        }
        p.dev.handle_timeout(p.clock.now());
        p.flush(t0)?;
    }
    // The keepalive that confirms the session to the target went out in the last flush.
    Ok(p.report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrowg_proto::crypto::x25519_public;
    use ferrowg_proto::messages::MESSAGE_HANDSHAKE_RESPONSE;

    /// The target: a device under load (every initiation without mac2 gets a cookie reply).
    fn target(key: [u8; 32], peer_public: [u8; 32]) -> Device {
        let rng = ChaCha20Rng::seed_from_u64(7);
        let mut d = Device::new(
            Box::new(SecretKey::from_bytes(key)),
            Box::new(RustCrypto),
            Box::new(rng),
        );
        let now = ferrowg_proto::Instant::from_secs(1);
        d.set_clock(now, unix_nanos());
        d.add_peer(peer_public, PeerConfig::default(), now)
            .expect("peer");
        d.set_under_load(true);
        d
    }

    #[test]
    fn a_cookie_reply_is_answered_at_once_and_the_session_follows() {
        let (tk, lk) = ([0x21u8; 32], [0x42u8; 32]);
        let args: Vec<String> = [
            "legit",
            "--target",
            "127.0.0.1:9",
            "--target-key",
            &ferrowg_keys::key::PublicKey::from_bytes(x25519_public(&tk)).to_base64(),
            "--key-file",
            "/nonexistent",
            "--bind",
            "127.0.0.1:0",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let o = crate::args::parse(&args).expect("options");
        let mut t = target(tk, x25519_public(&lk));
        let mut p = Peer::with_key(SecretKey::from_bytes(lk), &o).expect("peer");
        let src: SocketAddr = "127.0.0.2:40000".parse().unwrap();
        let t0 = Instant::now();
        let mut buf = [0u8; 256];
        p.dev.initiate_handshake(p.id, p.clock.now());
        let mut kinds = Vec::new();
        // Initiation -> cookie reply -> initiation with mac2 -> response: four messages, all
        // within a millisecond of real time, no waiting for a retry timer.
        for _ in 0..2 {
            let tx = p
                .dev
                .poll_transmit(&mut buf)
                .expect("an initiation goes out");
            assert_eq!(buf[0], MESSAGE_HANDSHAKE_INITIATION);
            let tnow = ferrowg_proto::Instant::from_secs(2);
            t.handle_datagram(tnow, src, &mut buf[..tx.len]);
            let tx = t.poll_transmit(&mut buf).expect("the target answers");
            kinds.push(buf[0]);
            p.receive(&mut buf[..tx.len], o.target, t0);
            if p.dev.pending_transmits() == 0 {
                break;
            }
        }
        assert_eq!(
            kinds,
            [MESSAGE_HANDSHAKE_COOKIE, MESSAGE_HANDSHAKE_RESPONSE]
        );
        p.flush(t0).ok();
        assert!(p.done, "the session is established");
        assert_eq!(p.report.cookie_replies, 1);
        assert!(p.report.cookie_at.is_some());
    }
}
