//! The daemon's receive path as the data-path threads drive it: a batch of datagrams is begun
//! on the device ([`Device::begin_datagram`]), decrypted together without it
//! ([`open_batch`]), then finished ([`Device::finish_datagram`]) in an order the input picks,
//! with other work on the device (a new handshake, timers) allowed between begin and finish.
//!
//! Each batch mixes raw bytes, genuine transport datagrams from the honest peer (some
//! repeated), and genuine ones with bytes flipped. Checked: no panic; raw bytes never open;
//! an altered datagram never opens or becomes a packet; no datagram is accepted twice (replay);
//! every packet delivered is exactly what the peer sealed; a clean batch (only distinct,
//! unaltered datagrams, nothing in between) is delivered whole in any finishing order; the
//! output queues stay bounded; and afterwards the honest pair still gets data through.
#![no_main]

use std::collections::HashSet;
use std::time::Duration;

use ferrowg_fuzz::{ipv4, Pair, A_EP, A_TUN, B_TUN, MAX_QUEUED_TRANSMITS};
use ferrowg_proto::{open_batch, Begin, Incoming, TRANSPORT_HEADER_SIZE};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
enum Item {
    /// Raw bytes.
    Raw(Vec<u8>),
    /// A fresh genuine datagram carrying an IP packet of this length (20..=1400).
    Genuine(u16),
    /// A copy of the n-th datagram of this batch (a replay within the batch).
    Again(u8),
    /// A fresh genuine datagram with `(position, xor)` applied (a non-zero xor alters it).
    Altered(u16, Vec<(u16, u8)>),
}

#[derive(Debug, Arbitrary)]
enum Between {
    Nothing,
    /// Time passes and the timers run (may expire the session under the jobs).
    Advance(u16),
    /// A new handshake completes (the session the jobs refer to is replaced).
    Rehandshake,
}

#[derive(Debug, Arbitrary)]
struct Batch {
    items: Vec<Item>,
    /// Finishing order: a rotation and a reversal of the begun jobs.
    rotate: u8,
    reverse: bool,
    between: Between,
}

/// A datagram and what it is.
struct Dgram {
    bytes: Vec<u8>,
    /// The plaintext A sealed, when the datagram is genuine and unaltered.
    plain: Option<Vec<u8>>,
    /// Raw bytes: they must never open.
    raw: bool,
}

fn packet(len: u16, salt: u32) -> Vec<u8> {
    let mut p = ipv4(A_TUN, B_TUN, usize::from(len).clamp(20, 1400));
    for (i, b) in p.iter_mut().enumerate().skip(20) {
        *b = (i as u32).wrapping_mul(31).wrapping_add(salt) as u8;
    }
    p
}

fuzz_target!(|batches: Vec<Batch>| {
    let mut p = Pair::established();
    // Counters B accepted: (receiver index, counter) of transport data.
    let mut accepted: HashSet<[u8; 12]> = HashSet::new();
    let mut salt = 0u32;
    for batch in batches.iter().take(16) {
        let mut dgrams: Vec<Dgram> = Vec::new();
        for item in batch.items.iter().take(64) {
            salt = salt.wrapping_add(1);
            let d = match item {
                Item::Raw(b) => Dgram {
                    bytes: b.clone(),
                    plain: None,
                    raw: true,
                },
                Item::Genuine(len) => {
                    let ip = packet(*len, salt);
                    match p.seal_a(&ip) {
                        Some(bytes) => Dgram {
                            bytes,
                            plain: Some(ip),
                            raw: false,
                        },
                        None => continue,
                    }
                }
                Item::Again(n) => match dgrams.get(usize::from(*n)) {
                    Some(d) => Dgram {
                        bytes: d.bytes.clone(),
                        plain: d.plain.clone(),
                        raw: d.raw,
                    },
                    None => continue,
                },
                Item::Altered(len, flips) => {
                    let ip = packet(*len, salt);
                    let Some(sealed) = p.seal_a(&ip) else {
                        continue;
                    };
                    let mut bytes = sealed.clone();
                    let n = bytes.len();
                    for &(at, x) in flips.iter().take(8) {
                        bytes[usize::from(at) % n] ^= x;
                    }
                    // Flips may cancel out: what counts is whether the bytes changed.
                    let same = bytes == sealed;
                    Dgram {
                        bytes,
                        plain: same.then_some(ip),
                        raw: false,
                    }
                }
            };
            dgrams.push(d);
        }
        let clean = matches!(batch.between, Between::Nothing)
            && dgrams.iter().all(|d| d.plain.is_some())
            && dgrams
                .iter()
                .map(|d| d.bytes[4..16].to_vec())
                .collect::<HashSet<_>>()
                .len()
                == dgrams.len();

        // Begin every datagram under the "lock".
        let mut bufs: Vec<Vec<u8>> = dgrams.iter().map(|d| d.bytes.clone()).collect();
        let mut jobs = Vec::new();
        for (i, buf) in bufs.iter_mut().enumerate() {
            match p.b.begin_datagram(p.now, A_EP, buf) {
                Begin::Open(job) => jobs.push((i, job)),
                Begin::Handshake(_) => panic!("a handshake job without offloaded DHs"),
                Begin::Done(r) => {
                    assert!(!clean, "clean datagram {i} not opened: {r:?}");
                    if let Incoming::Packet { .. } = r {
                        panic!("a packet without an open job");
                    }
                }
            }
        }
        match batch.between {
            Between::Nothing => {}
            Between::Advance(ms) => {
                p.advance(Duration::from_millis(u64::from(ms) * 8));
                p.pump();
            }
            Between::Rehandshake => {
                p.advance(Duration::from_secs(6));
                p.a.initiate_handshake(p.a_peer, p.now);
                p.pump();
            }
        }

        // Decrypt without the device, in one batch.
        let mut oks = vec![false; jobs.len()];
        {
            let mut slots: Vec<Option<&mut Vec<u8>>> = bufs.iter_mut().map(Some).collect();
            let mut items = Vec::new();
            for ((i, job), ok) in jobs.iter().zip(oks.iter_mut()) {
                let buf = slots[*i].take().expect("one job per buffer");
                items.push((job, buf.as_mut_slice(), ok));
            }
            open_batch(items);
        }
        for ((i, _), ok) in jobs.iter().zip(&oks) {
            let d = &dgrams[*i];
            if d.raw || d.plain.is_none() {
                assert!(!ok, "datagram {i} opened though raw or altered");
            }
        }

        // Finish in the chosen order.
        let mut order: Vec<usize> = (0..jobs.len()).collect();
        if !order.is_empty() {
            let r = usize::from(batch.rotate) % order.len();
            order.rotate_left(r);
        }
        if batch.reverse {
            order.reverse();
        }
        let mut jobs: Vec<Option<_>> = jobs.into_iter().map(Some).collect();
        for j in order {
            let (i, job) = jobs[j].take().expect("finished once");
            let ok = oks[j];
            let key: [u8; 12] = dgrams[i].bytes[4..16].try_into().expect("transport header");
            let r = p.b.finish_datagram(p.now, A_EP, &mut bufs[i], job, ok);
            match r {
                Incoming::Packet { len, .. } => {
                    let plain = dgrams[i]
                        .plain
                        .as_ref()
                        .expect("only genuine data is delivered");
                    assert_eq!(len, plain.len());
                    assert_eq!(&bufs[i][TRANSPORT_HEADER_SIZE..][..len], &plain[..]);
                    assert!(accepted.insert(key), "datagram {i} accepted twice");
                }
                Incoming::Keepalive { .. } => panic!("data datagram {i} finished as keepalive"),
                other => assert!(!clean, "clean datagram {i} refused: {other:?}"),
            }
        }
        assert!(p.a.pending_transmits() <= MAX_QUEUED_TRANSMITS);
        assert!(p.b.pending_transmits() <= MAX_QUEUED_TRANSMITS);
    }
    let recovered = (0..40).any(|_| {
        p.advance(Duration::from_secs(1));
        p.pump();
        p.data_flows()
    });
    assert!(recovered, "session did not recover");
});
