//! The receive offload on arbitrary decrypted packets: the [`Coalescer`] gets packets of
//! several flows, well-formed or not (a peer chooses what it tunnels), some built as the next
//! segment of the previous packet so that runs do form, some with a bad checksum.
//!
//! Checked: no panic; a frame without GSO is one input packet, unchanged; a coalesced frame
//! cuts ([`GsoSplit`]) into segments that each have correct lengths and checksums and each
//! match an input packet up to what GRO may rewrite (IPv4 ID and header checksum, TCP
//! window, urgent pointer and checksum) and that input's own transport checksum was right (a
//! corrupt packet is never laundered); every input packet comes out exactly once.
#![no_main]

use std::io::IoSlice;

use ferrowg_daemon::offload::{Coalescer, GsoSplit};
use ferrowg_fuzz::packets::{coalesce_all, fix, layout, transport_ok, verify};
use ferrowg_sys::VirtioNetHdr;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
enum Pkt {
    /// Bytes as given, or made well-formed (`fixed`) for IPv4/IPv6 and TCP/UDP.
    Fresh {
        fixed: bool,
        v6: bool,
        tcp: bool,
        bytes: Vec<u8>,
    },
    /// The previous packet's headers with the TCP sequence number advanced past its payload,
    /// this much payload, and one byte flipped (after the checksums were set, when `late`).
    Next {
        payload: u16,
        flip: Option<(u16, u8)>,
        late: bool,
    },
}

/// The packet with the fields GRO may rewrite cleared.
fn normalize(p: &[u8]) -> Vec<u8> {
    let mut n = p.to_vec();
    if let Some((ip, proto, v6)) = layout(p) {
        if !v6 {
            n[4..6].fill(0);
            n[10..12].fill(0);
        }
        if proto == 6 && p.len() >= ip + 20 {
            n[ip + 14..ip + 20].fill(0);
        }
    }
    n
}

fuzz_target!(|input: (bool, Vec<Pkt>)| {
    let (udp, pkts) = input;
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    for pk in pkts.into_iter().take(256) {
        let p = match pk {
            Pkt::Fresh {
                fixed,
                v6,
                tcp,
                mut bytes,
            } => {
                bytes.truncate(65535);
                if fixed {
                    fix(&mut bytes, v6, tcp);
                }
                bytes
            }
            Pkt::Next {
                payload,
                flip,
                late,
            } => {
                let Some(prev) = inputs.last() else { continue };
                let Some((ip, proto, v6)) = layout(prev) else {
                    continue;
                };
                let l4 = match proto {
                    6 if prev.len() >= ip + 20 && prev[ip + 12] >> 4 >= 5 => {
                        usize::from(prev[ip + 12] >> 4) * 4
                    }
                    17 => 8,
                    _ => continue,
                };
                if prev.len() < ip + l4 || ip != if v6 { 40 } else { 20 } {
                    continue;
                }
                let mut p = prev[..ip + l4].to_vec();
                if proto == 6 {
                    let seq = u32::from_be_bytes(prev[ip + 4..ip + 8].try_into().unwrap());
                    let seq = seq.wrapping_add((prev.len() - ip - l4) as u32);
                    p[ip + 4..ip + 8].copy_from_slice(&seq.to_be_bytes());
                }
                p.extend((0..usize::from(payload) % 1500).map(|i| i as u8 ^ payload as u8));
                let flip_at = |p: &mut Vec<u8>| {
                    if let Some((at, x)) = flip {
                        let n = p.len();
                        p[usize::from(at) % n] ^= x;
                    }
                };
                if !late {
                    flip_at(&mut p);
                }
                fix(&mut p, v6, proto == 6);
                if late {
                    flip_at(&mut p);
                }
                p
            }
        };
        inputs.push(p);
    }

    let mut bufs = inputs.clone();
    let mut gro = Coalescer::new(16, udp);
    let mut lone: Vec<Vec<u8>> = Vec::new();
    let mut merged: Vec<Vec<u8>> = Vec::new();
    let mut collect = |pieces: &[IoSlice<'_>]| {
        let hdr = VirtioNetHdr::parse(&pieces[0]).expect("header first");
        let frame: Vec<u8> = pieces[1..].iter().flat_map(|p| p.iter().copied()).collect();
        if hdr.is_gso() {
            let mut s = GsoSplit::new(&hdr, &frame).expect("coalesced frame splits");
            let mut buf = vec![0u8; s.max_segment_len()];
            while let Some(len) = s.next_into(&mut buf).expect("buffer") {
                merged.push(buf[..len].to_vec());
            }
        } else {
            assert_eq!(hdr, VirtioNetHdr::default());
            lone.push(frame);
        }
        true
    };
    coalesce_all(&mut gro, &mut bufs, &mut collect);

    // Match outputs to inputs.
    let mut left: Vec<Option<&Vec<u8>>> = inputs.iter().map(Some).collect();
    for f in &lone {
        let i = left
            .iter()
            .position(|l| l.is_some_and(|x| x == f))
            .expect("a lone frame is an input packet, unchanged");
        left[i] = None;
    }
    for s in &merged {
        verify(s).unwrap_or_else(|e| panic!("coalesced segment: {e}"));
        let n = normalize(s);
        let i = left
            .iter()
            .position(|l| l.is_some_and(|x| normalize(x) == n))
            .unwrap_or_else(|| panic!("segment {s:02x?} matches no input"));
        let x = left[i].take().expect("present");
        let (ip, proto, v6) = layout(x).expect("an IP packet");
        assert!(
            transport_ok(x, v6, proto, ip),
            "a packet with a bad checksum was merged"
        );
    }
    assert!(left.iter().all(Option::is_none), "input packets lost");
});
