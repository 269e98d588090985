//! The initiation flood: 148-byte handshake initiations with random contents and either a
//! correct mac1 for the target's public key (each costs the target a DH with its static key,
//! or a cookie reply when it is under load) or a random one (each costs one hash), paced at a
//! fixed rate in `sendmmsg` batches every millisecond from one or more source ports, until the
//! duration or the count runs out or a stop file appears.
//!
//! Whatever the target answers (cookie replies, responses) is read and counted, so the report
//! also says whether the target went into cookie mode.

use std::path::Path;
use std::time::{Duration, Instant};

use ferrowg_proto::cookie::CookieMaker;
use ferrowg_proto::messages::{
    mac1_offset, write_header, HANDSHAKE_INITIATION_SIZE, MAC_LEN, MESSAGE_HANDSHAKE_COOKIE,
    MESSAGE_HANDSHAKE_INITIATION, MESSAGE_HANDSHAKE_RESPONSE,
};
use ferrowg_sys::{RecvMeta, Transmit, UdpSocket, BATCH_MAX};
use rand_chacha::ChaCha8Rng;
use rand_core::{OsRng, RngCore, SeedableRng};

use crate::args::{Mode, Options};

/// How often a batch goes out.
const TICK: Duration = Duration::from_millis(1);
/// A generator that fell further behind than this (descheduled) skips what it missed instead of
/// bursting it out.
const MAX_CATCH_UP: Duration = Duration::from_millis(50);
/// Send buffer asked for on each source socket.
const SEND_BUFFER: usize = 4 << 20;

/// What a flood did.
#[derive(Debug, Default)]
pub struct Report {
    /// Initiations the kernel accepted.
    pub sent: u64,
    /// Initiations dropped because a send buffer was full.
    pub not_sent: u64,
    /// Initiations skipped because the generator was descheduled for longer than
    /// [`MAX_CATCH_UP`].
    pub skipped: u64,
    /// Wall time from the first batch to the end.
    pub elapsed: Duration,
    /// Cookie replies received.
    pub cookie_replies: u64,
    /// Handshake responses received.
    pub responses: u64,
    /// Other datagrams received.
    pub other_replies: u64,
}

impl Report {
    /// One line of `key=value` figures.
    pub fn line(&self, o: &Options) -> String {
        let secs = self.elapsed.as_secs_f64();
        format!(
            "mode={} target={} sources={} rate_asked={} seconds={secs:.3} sent={} rate={:.0} \
             not_sent={} skipped={} cookie_replies={} responses={} other_replies={}",
            o.mode.name(),
            o.target,
            o.sources,
            o.rate,
            self.sent,
            self.sent as f64 / secs.max(1e-9),
            self.not_sent,
            self.skipped,
            self.cookie_replies,
            self.responses,
            self.other_replies,
        )
    }
}

/// Builds initiations.
struct Forge {
    rng: ChaCha8Rng,
    /// Computes mac1 for the target (valid-mac1 mode only).
    macs: Option<CookieMaker>,
}

impl Forge {
    fn new(o: &Options) -> Result<Forge, String> {
        let rng = ChaCha8Rng::from_rng(OsRng).map_err(|e| format!("getrandom: {e}"))?;
        let macs = (o.mode == Mode::ValidMac1).then(|| CookieMaker::new(&o.target_key));
        Ok(Forge { rng, macs })
    }

    /// Random sender index, ephemeral, encrypted static and timestamp; mac1 correct or random;
    /// mac2 zero (no cookie), as a sender under no cookie obligation sends it.
    fn fill(&mut self, pkt: &mut [u8; HANDSHAKE_INITIATION_SIZE]) {
        self.rng.fill_bytes(&mut pkt[4..]);
        write_header(pkt, MESSAGE_HANDSHAKE_INITIATION);
        match &mut self.macs {
            Some(m) => m.add_macs(pkt, ferrowg_proto::Instant::ZERO),
            None => pkt[mac1_offset(HANDSHAKE_INITIATION_SIZE) + MAC_LEN..].fill(0),
        }
    }
}

/// Opens the source sockets: consecutive ports from `o.bind`'s (or the kernel's choice).
fn open_sockets(o: &Options) -> Result<Vec<UdpSocket>, String> {
    (0..o.sources)
        .map(|i| {
            let mut addr = o.bind;
            if addr.port() != 0 {
                addr.set_port(addr.port() + i);
            }
            let s = UdpSocket::bind_addr(addr).map_err(|e| format!("bind {addr}: {e}"))?;
            // Best effort: without CAP_NET_ADMIN the kernel caps the size.
            let _ = s.set_buffer_sizes(SEND_BUFFER);
            Ok(s)
        })
        .collect()
}

/// Floods `o.target` as `o` says, until the duration or the count runs out.
pub fn run(o: &Options) -> Result<Report, String> {
    let sockets = open_sockets(o)?;
    let mut forge = Forge::new(o)?;
    let mut pkts = vec![[0u8; HANDSHAKE_INITIATION_SIZE]; BATCH_MAX];
    let mut rx = Receiver::new();
    let mut r = Report::default();
    let limit = o.count.unwrap_or(u64::MAX);
    let catch_up = (f64::from(o.rate) * MAX_CATCH_UP.as_secs_f64()).ceil() as u64;
    let start = Instant::now();
    let end = start + o.duration;
    let mut offered = 0u64;
    let mut next_socket = 0usize;
    let mut next_tick = start;
    loop {
        let now = Instant::now();
        if now >= end || offered >= limit || o.stop_file.as_deref().is_some_and(Path::exists) {
            break;
        }
        let due = ((now - start).as_secs_f64() * f64::from(o.rate)) as u64;
        let due = due.min(limit);
        if due > offered + catch_up {
            r.skipped += due - offered - catch_up;
            offered = due - catch_up;
        }
        while offered < due {
            let n = ((due - offered) as usize).min(BATCH_MAX);
            for p in &mut pkts[..n] {
                forge.fill(p);
            }
            let sock = &sockets[next_socket % sockets.len()];
            next_socket = next_socket.wrapping_add(1);
            let msgs: Vec<Transmit<'_>> = pkts[..n]
                .iter()
                .map(|p| Transmit::new(o.target, p))
                .collect();
            let sent = sock
                .send_batch(&msgs, Some(Duration::ZERO))
                .map_err(|e| format!("sendmmsg to {}: {e}", o.target))?;
            r.sent += sent as u64;
            r.not_sent += (n - sent) as u64;
            offered += n as u64;
        }
        for s in &sockets {
            rx.drain(s, &mut r);
        }
        next_tick += TICK;
        let now = Instant::now();
        if next_tick > now {
            std::thread::sleep(next_tick - now);
        } else {
            next_tick = now;
        }
    }
    r.elapsed = start.elapsed();
    // Answers to the last batches.
    std::thread::sleep(Duration::from_millis(20));
    for s in &sockets {
        rx.drain(s, &mut r);
    }
    Ok(r)
}

/// Reads and counts what the target sends back.
struct Receiver {
    bufs: Vec<[u8; 256]>,
    meta: Vec<RecvMeta>,
}

impl Receiver {
    fn new() -> Self {
        Receiver {
            bufs: vec![[0u8; 256]; BATCH_MAX],
            meta: vec![RecvMeta::default(); BATCH_MAX],
        }
    }

    /// Counts every datagram queued on `s` (a bounded number of batches per call).
    fn drain(&mut self, s: &UdpSocket, r: &mut Report) {
        for _ in 0..64 {
            let n = match s.recv_batch(&mut self.bufs, &mut self.meta, Some(Duration::ZERO)) {
                Ok(n) => n,
                Err(_) => return,
            };
            for (b, m) in self.bufs[..n].iter().zip(&self.meta[..n]) {
                match (m.len > 0).then(|| b[0]) {
                    Some(MESSAGE_HANDSHAKE_COOKIE) => r.cookie_replies += 1,
                    Some(MESSAGE_HANDSHAKE_RESPONSE) => r.responses += 1,
                    _ => r.other_replies += 1,
                }
            }
            if n < self.bufs.len() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrowg_proto::crypto::hash;
    use ferrowg_proto::crypto::mac;
    use ferrowg_proto::messages::LABEL_MAC1;

    fn options(mode: Mode) -> Options {
        let args: Vec<String> = [
            mode.name(),
            "--target",
            "127.0.0.1:9",
            "--target-key",
            "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        crate::args::parse(&args).expect("options")
    }

    fn mac1_ok(o: &Options, p: &[u8]) -> bool {
        let key = hash(&[LABEL_MAC1, &o.target_key]);
        let m1 = mac1_offset(p.len());
        mac(&key, &[&p[..m1]])[..] == p[m1..m1 + MAC_LEN]
    }

    #[test]
    fn initiations_have_the_right_shape_and_mac1() {
        for mode in [Mode::ValidMac1, Mode::Junk] {
            let o = options(mode);
            let mut f = Forge::new(&o).unwrap();
            let (mut a, mut b) = ([0u8; 148], [0u8; 148]);
            f.fill(&mut a);
            f.fill(&mut b);
            for p in [&a, &b] {
                assert_eq!(p[..4], [1, 0, 0, 0]);
                assert_eq!(p[132..], [0u8; 16], "mac2 is zero");
                assert_eq!(mac1_ok(&o, p), mode == Mode::ValidMac1, "{mode:?}");
            }
            // Sender index, ephemeral and encrypted fields differ from one packet to the next.
            assert_ne!(a[4..8], b[4..8]);
            assert_ne!(a[8..40], b[8..40]);
            assert_ne!(a[40..116], b[40..116]);
            let msg = ferrowg_proto::messages::Message::parse(&a);
            assert!(matches!(
                msg,
                Ok(ferrowg_proto::messages::Message::Initiation(_))
            ));
        }
    }
}
