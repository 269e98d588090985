//! The TUN offloads, both ways: a super-packet with an arbitrary virtio-net header is cut by
//! [`GsoSplit`] (what a local program's TSO/USO send becomes), the segments are coalesced
//! again by the [`Coalescer`] (what the receive path does with decrypted packets) and every
//! coalesced frame is cut again.
//!
//! Checked: no panic; [`GsoSplit::segments`] and [`GsoSplit::max_segment_len`] hold; every
//! segment has correct lengths and checksums (an independent 16-bit oracle); the payloads of
//! the segments are the super-packet's payload in order; and coalescing then cutting again
//! gives back exactly the segments, byte for byte.
#![no_main]

use std::io::IoSlice;

use ferrowg_daemon::offload::{Coalescer, GsoSplit};
use ferrowg_fuzz::packets::{coalesce_all, fix, pseudo, sum16};
use ferrowg_sys::{
    VirtioNetHdr, VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_ECN, VIRTIO_NET_HDR_GSO_TCPV4,
    VIRTIO_NET_HDR_GSO_TCPV6, VIRTIO_NET_HDR_GSO_UDP_L4,
};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    /// Build a consistent header and fix the packet's lengths and checksums first.
    consistent: bool,
    v6: bool,
    tcp: bool,
    ecn: bool,
    gso_size: u16,
    /// Used as they are when not `consistent`.
    gso_type: u8,
    csum_start: u16,
    csum_offset: u16,
    packet: Vec<u8>,
}

/// Cuts `packet` into segments, checking each; `None` if the header is refused.
fn split(hdr: &VirtioNetHdr, packet: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut s = GsoSplit::new(hdr, packet).ok()?;
    let (n, max) = (s.segments(), s.max_segment_len());
    assert!(n >= 1 && max <= packet.len());
    let mut out = Vec::new();
    let mut buf = vec![0u8; max];
    while let Some(len) = s.next_into(&mut buf).expect("buffer of max_segment_len") {
        assert!(len <= max);
        out.push(buf[..len].to_vec());
        assert!(out.len() <= n, "more segments than announced");
    }
    assert_eq!(out.len(), n);
    Some(out)
}

fuzz_target!(|inp: Input| {
    let mut packet = inp.packet;
    let hdr = if inp.consistent {
        fix(&mut packet, inp.v6, inp.tcp);
        let gso_type = match (inp.tcp, inp.v6) {
            (true, false) => VIRTIO_NET_HDR_GSO_TCPV4,
            (true, true) => VIRTIO_NET_HDR_GSO_TCPV6,
            _ => VIRTIO_NET_HDR_GSO_UDP_L4,
        };
        VirtioNetHdr {
            flags: VIRTIO_NET_HDR_F_NEEDS_CSUM,
            gso_type: gso_type | if inp.ecn { VIRTIO_NET_HDR_GSO_ECN } else { 0 },
            hdr_len: 0,
            gso_size: inp.gso_size.max(1),
            csum_start: if inp.v6 { 40 } else { 20 },
            csum_offset: if inp.tcp { 16 } else { 6 },
        }
    } else {
        VirtioNetHdr {
            flags: VIRTIO_NET_HDR_F_NEEDS_CSUM,
            gso_type: inp.gso_type,
            hdr_len: 0,
            gso_size: inp.gso_size,
            csum_start: inp.csum_start,
            csum_offset: inp.csum_offset,
        }
    };
    let Some(segs) = split(&hdr, &packet) else {
        return;
    };
    let ip = usize::from(hdr.csum_start);
    let v6 = packet[0] >> 4 == 6;
    let tcp = hdr.csum_offset == 16;
    let proto = if tcp { 6 } else { 17 };
    let l4 = if tcp {
        usize::from(packet[ip + 12] >> 4) * 4
    } else {
        8
    };
    let hl = ip + l4;
    let mut payload = Vec::new();
    for s in &segs {
        // Lengths and checksums as the receiver checks them.
        if v6 {
            assert_eq!(usize::from(u16::from_be_bytes([s[4], s[5]])) + 40, s.len());
        } else {
            assert_eq!(usize::from(u16::from_be_bytes([s[2], s[3]])), s.len());
            assert_eq!(sum16(&s[..ip], 0), 0xffff, "IPv4 header checksum");
        }
        if !tcp {
            assert_eq!(
                usize::from(u16::from_be_bytes([s[ip + 4], s[ip + 5]])),
                s.len() - ip
            );
        }
        assert_eq!(
            sum16(&s[ip..], pseudo(s, v6, proto, s.len() - ip)),
            0xffff,
            "transport checksum"
        );
        assert!(s.len() - hl <= usize::from(hdr.gso_size));
        payload.extend_from_slice(&s[hl..]);
    }
    assert_eq!(payload, packet[hl..], "payload not conserved");

    // Coalesce the segments as the receive path would, then cut each frame again.
    let mut bufs = segs.clone();
    let mut gro = Coalescer::new(8, true);
    let mut frames: Vec<Vec<u8>> = Vec::new();
    let mut collect = |pieces: &[IoSlice<'_>]| {
        let hdr = VirtioNetHdr::parse(&pieces[0]).expect("header first");
        let frame: Vec<u8> = pieces[1..].iter().flat_map(|p| p.iter().copied()).collect();
        if hdr.is_gso() {
            frames.extend(split(&hdr, &frame).expect("coalesced frame splits"));
        } else {
            assert_eq!(
                hdr,
                VirtioNetHdr::default(),
                "a lone packet has an empty header"
            );
            frames.push(frame);
        }
        true
    };
    coalesce_all(&mut gro, &mut bufs, &mut collect);
    assert_eq!(frames.len(), segs.len());
    for (i, (got, want)) in frames.iter().zip(&segs).enumerate() {
        assert_eq!(got, want, "segment {i} changed by coalescing");
    }
});
