//! Arbitrary datagrams into a device that has a peer and an established session.
//!
//! The input is a flag byte (bit 0: B is under load) and then records `op, len (2 bytes LE),
//! payload`. Raw payloads go to B as they are; other ops take a genuine message (transport
//! data, an initiation, a response), XOR the payload over it (longer payloads extend it) and
//! deliver that, so the fuzzer starts past mac1 and the AEADs; one op advances the clock and
//! runs the timers. Checked: no panic, raw bytes are always dropped, the output queue stays
//! bounded, and afterwards the two honest devices get data through again.
#![no_main]

use std::time::Duration;

use ferrowg_fuzz::{ipv4, Pair, A_EP, A_TUN, B_EP, B_TUN, MAX_QUEUED_TRANSMITS};
use ferrowg_proto::cookie::CookieMaker;
use ferrowg_proto::Incoming;
use libfuzzer_sys::fuzz_target;

fn xor_into(msg: &mut Vec<u8>, payload: &[u8]) {
    for (i, b) in payload.iter().enumerate() {
        match msg.get_mut(i) {
            Some(m) => *m ^= b,
            None => msg.push(*b),
        }
    }
}

fn take(p: &mut ferrowg_proto::Device) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 2048];
    let t = p.poll_transmit(&mut buf)?;
    buf.truncate(t.len);
    Some(buf)
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let mut p = Pair::established();
    p.b.set_under_load(flags & 1 != 0);
    while rest.len() >= 3 {
        let op = rest[0];
        let len = usize::from(u16::from_le_bytes([rest[1], rest[2]])).min(2048);
        let payload = &rest[3..(3 + len).min(rest.len())];
        rest = &rest[(3 + len).min(rest.len())..];
        match op % 5 {
            0 => {
                let mut m = payload.to_vec();
                let r = p.b.handle_datagram(p.now, A_EP, &mut m);
                assert!(
                    matches!(r, Incoming::Dropped(_)),
                    "raw bytes accepted: {r:?}"
                );
            }
            1 => {
                if let Some(mut m) = p.seal_a(&ipv4(A_TUN, B_TUN, 64)) {
                    xor_into(&mut m, payload);
                    p.b.handle_datagram(p.now, A_EP, &mut m);
                }
            }
            2 => {
                p.advance(Duration::from_secs(6));
                p.a.initiate_handshake(p.a_peer, p.now);
                if let Some(mut m) = take(&mut p.a) {
                    xor_into(&mut m, payload);
                    if op & 0x80 != 0 && m.len() >= 32 {
                        CookieMaker::new(&p.b_pub).add_macs(&mut m, p.now);
                    }
                    p.b.handle_datagram(p.now, A_EP, &mut m);
                }
            }
            3 => {
                p.advance(Duration::from_secs(6));
                p.a.initiate_handshake(p.a_peer, p.now);
                if let Some(mut init) = take(&mut p.a) {
                    p.b.handle_datagram(p.now, A_EP, &mut init);
                    while let Some(mut m) = take(&mut p.b) {
                        xor_into(&mut m, payload);
                        p.a.handle_datagram(p.now, B_EP, &mut m);
                    }
                }
            }
            _ => {
                let ms = match payload {
                    [lo, hi, ..] => u64::from(u16::from_le_bytes([*lo, *hi])),
                    [lo] => u64::from(*lo),
                    [] => 1000,
                };
                p.advance(Duration::from_millis(ms));
                p.pump();
            }
        }
        assert!(p.a.pending_transmits() <= MAX_QUEUED_TRANSMITS);
        assert!(p.b.pending_transmits() <= MAX_QUEUED_TRANSMITS);
    }
    // Liveness: whatever came before, the honest pair recovers within a few retries.
    p.b.set_under_load(false);
    let recovered = (0..40).any(|_| {
        p.advance(Duration::from_secs(1));
        p.pump();
        p.data_flows()
    });
    assert!(recovered, "session did not recover");
});
