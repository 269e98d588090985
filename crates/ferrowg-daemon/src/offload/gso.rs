//! Segmentation of TUN reads: a TCP (TSO) or UDP (USO) super-packet from the kernel becomes
//! `gso_size`-payload IP packets, each complete with lengths and checksums, as Linux's
//! `tcp_gso_segment`/`__udp_gso_segment` would have made them; and the partial checksum of an
//! ordinary packet (`NEEDS_CSUM`) is completed.
//!
//! Per segment: IPv4 total length, ID (+1 per segment) and header checksum, or the IPv6 payload
//! length; the TCP sequence number (+`gso_size` per segment), FIN and PSH only on the last
//! segment and CWR only on the first; the UDP length; and the full transport checksum over the
//! pseudo-header. The kernel's `hdr_len` is not trusted (it can span the whole first packet on
//! the forwarding path, as wireguard-go notes): the header length is read from the packet.

use ferrowg_sys::{
    VirtioNetHdr, VIRTIO_NET_HDR_GSO_ECN, VIRTIO_NET_HDR_GSO_TCPV4, VIRTIO_NET_HDR_GSO_TCPV6,
    VIRTIO_NET_HDR_GSO_UDP_L4,
};

use super::{
    be16, be32, checksum, pseudo_header, put16, put32, set_ipv4_checksum, OffloadError,
    IPV6_HDR_LEN, PROTO_TCP, PROTO_UDP, TCP_CSUM, TCP_CWR, TCP_DATA_OFFSET, TCP_FIN, TCP_FLAGS,
    TCP_PSH, TCP_SEQ, UDP_CSUM, UDP_HDR_LEN, UDP_LEN,
};

/// Completes the partial transport checksum of a non-GSO packet whose header has `NEEDS_CSUM`:
/// the field at `csum_start + csum_offset` holds the pseudo-header sum, to which the sum of
/// everything from `csum_start` on is added (what `skb_checksum_help` does).
pub fn complete_checksum(hdr: &VirtioNetHdr, packet: &mut [u8]) -> Result<(), OffloadError> {
    let start = usize::from(hdr.csum_start);
    let at = start + usize::from(hdr.csum_offset);
    if at + 2 > packet.len() {
        return Err(OffloadError::ChecksumOffsets);
    }
    let initial = be16(packet, at);
    put16(packet, at, 0);
    let c = checksum(&packet[start..], u64::from(initial));
    // As the kernel does: a computed 0 is sent as 0xffff (the same value in one's complement,
    // and for UDP 0 would mean "no checksum").
    put16(packet, at, if c == 0 { 0xffff } else { c });
    Ok(())
}

/// A super-packet being cut into segments: validated once by [`GsoSplit::new`], then each
/// [`next_into`](GsoSplit::next_into) writes the next segment into a caller buffer.
#[derive(Debug)]
pub struct GsoSplit<'a> {
    packet: &'a [u8],
    v6: bool,
    tcp: bool,
    /// IP header length (`csum_start`).
    ip_len: usize,
    /// IP + transport header length.
    hdr_len: usize,
    gso_size: usize,
    /// Offset of the next segment's payload in `packet`.
    next: usize,
    /// Index of the next segment.
    index: usize,
}

impl<'a> GsoSplit<'a> {
    /// Checks `packet` (the IP packet after the virtio-net header `hdr`, which must have
    /// [`is_gso`](VirtioNetHdr::is_gso)) against its header.
    pub fn new(hdr: &VirtioNetHdr, packet: &'a [u8]) -> Result<Self, OffloadError> {
        let gso_type = hdr.gso_type & !VIRTIO_NET_HDR_GSO_ECN;
        let version = packet.first().map(|b| b >> 4);
        let (v6, tcp) = match (gso_type, version) {
            (VIRTIO_NET_HDR_GSO_TCPV4, Some(4)) => (false, true),
            (VIRTIO_NET_HDR_GSO_TCPV6, Some(6)) => (true, true),
            (VIRTIO_NET_HDR_GSO_UDP_L4, Some(4)) => (false, false),
            (VIRTIO_NET_HDR_GSO_UDP_L4, Some(6)) => (true, false),
            (
                VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_TCPV6 | VIRTIO_NET_HDR_GSO_UDP_L4,
                _,
            ) => return Err(OffloadError::IpVersion),
            (t, _) => return Err(OffloadError::UnknownGsoType(t)),
        };
        let ip_len = usize::from(hdr.csum_start);
        let proto = if tcp { PROTO_TCP } else { PROTO_UDP };
        if v6 {
            // With extension headers (csum_start > 40) the transport protocol is further in.
            if packet.len() < IPV6_HDR_LEN
                || ip_len < IPV6_HDR_LEN
                || (ip_len == IPV6_HDR_LEN && packet[6] != proto)
            {
                return Err(OffloadError::ChecksumOffsets);
            }
        } else if packet.len() < 20
            || ip_len != usize::from(packet[0] & 0x0f) * 4
            || ip_len < 20
            || packet[9] != proto
        {
            return Err(OffloadError::ChecksumOffsets);
        }
        let want_offset = if tcp { TCP_CSUM } else { UDP_CSUM };
        if usize::from(hdr.csum_offset) != want_offset {
            return Err(OffloadError::ChecksumOffsets);
        }
        let l4_len = if tcp {
            let off = packet
                .get(ip_len + TCP_DATA_OFFSET)
                .ok_or(OffloadError::Truncated)?;
            usize::from(off >> 4) * 4
        } else {
            UDP_HDR_LEN
        };
        if l4_len < 20 && tcp {
            return Err(OffloadError::Truncated);
        }
        let hdr_len = ip_len + l4_len;
        if packet.len() < hdr_len {
            return Err(OffloadError::Truncated);
        }
        if hdr.gso_size == 0 {
            return Err(OffloadError::GsoSize);
        }
        Ok(GsoSplit {
            packet,
            v6,
            tcp,
            ip_len,
            hdr_len,
            gso_size: usize::from(hdr.gso_size),
            next: hdr_len,
            index: 0,
        })
    }

    /// How many segments the packet makes (at least one).
    pub fn segments(&self) -> usize {
        (self.packet.len() - self.hdr_len)
            .div_ceil(self.gso_size)
            .max(1)
    }

    /// The largest segment: headers plus `gso_size` payload bytes (or less if the packet is
    /// shorter). Output buffers must hold this much.
    pub fn max_segment_len(&self) -> usize {
        self.hdr_len + self.gso_size.min(self.packet.len() - self.hdr_len)
    }

    /// Writes the next segment to the start of `out` and returns its length, or `None` after
    /// the last one. `out` must hold [`max_segment_len`](Self::max_segment_len) bytes.
    pub fn next_into(&mut self, out: &mut [u8]) -> Result<Option<usize>, OffloadError> {
        let p = self.packet;
        // A super-packet without payload still makes one (header-only) segment.
        if self.next >= p.len() && !(self.index == 0 && self.next == p.len()) {
            return Ok(None);
        }
        let end = (self.next + self.gso_size).min(p.len());
        let data_len = end - self.next;
        let total = self.hdr_len + data_len;
        if out.len() < total {
            return Err(OffloadError::BufferTooSmall);
        }
        let (ip, i, last) = (self.ip_len, self.index, end == p.len());
        out[..self.hdr_len].copy_from_slice(&p[..self.hdr_len]);
        out[self.hdr_len..total].copy_from_slice(&p[self.next..end]);
        let out = &mut out[..total];
        if self.v6 {
            // Payload length excludes only the fixed header (extension headers count).
            put16(out, 4, (total - IPV6_HDR_LEN) as u16);
        } else {
            put16(out, 2, total as u16);
            // Linux gives each segment the next ID (the kernel's `inet_gso_segment`).
            put16(out, 4, be16(p, 4).wrapping_add(i as u16));
            set_ipv4_checksum(&mut out[..ip]);
        }
        let (proto, csum_at) = if self.tcp {
            let seq = be32(p, ip + TCP_SEQ).wrapping_add((i * self.gso_size) as u32);
            put32(out, ip + TCP_SEQ, seq);
            if !last {
                out[ip + TCP_FLAGS] &= !(TCP_FIN | TCP_PSH);
            }
            if i > 0 {
                out[ip + TCP_FLAGS] &= !TCP_CWR;
            }
            (PROTO_TCP, ip + TCP_CSUM)
        } else {
            put16(out, ip + UDP_LEN, (total - ip) as u16);
            (PROTO_UDP, ip + UDP_CSUM)
        };
        put16(out, csum_at, 0);
        let c = checksum(&out[ip..], pseudo_header(out, self.v6, proto, total - ip));
        put16(out, csum_at, if c == 0 { 0xffff } else { c });
        self.next = end.max(self.next + 1);
        self.index += 1;
        Ok(Some(total))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testpkt::{payload, verify, Rng, Spec};
    use super::super::{pseudo_header, TCP_ACK_FLAG};
    use super::*;
    use ferrowg_sys::VIRTIO_NET_HDR_F_NEEDS_CSUM;

    /// The virtio-net header and packet the kernel would hand over for `spec` with `data`:
    /// one big packet whose transport checksum field holds only the pseudo-header sum.
    fn super_packet(spec: &Spec, data: &[u8], gso_size: u16) -> (VirtioNetHdr, Vec<u8>) {
        let mut p = spec.build(data);
        let ip = spec.ip_hdr_len();
        let at = ip
            + if spec.proto == PROTO_TCP {
                TCP_CSUM
            } else {
                UDP_CSUM
            };
        let partial = checksum_fold_not(pseudo_header(&p, spec.v6, spec.proto, p.len() - ip));
        put16(&mut p, at, partial);
        let gso_type = match (spec.proto, spec.v6) {
            (PROTO_TCP, false) => VIRTIO_NET_HDR_GSO_TCPV4,
            (PROTO_TCP, true) => VIRTIO_NET_HDR_GSO_TCPV6,
            _ => VIRTIO_NET_HDR_GSO_UDP_L4,
        };
        let hdr = VirtioNetHdr {
            flags: VIRTIO_NET_HDR_F_NEEDS_CSUM,
            gso_type,
            // Deliberately wrong, as on the forwarding path: must not be trusted.
            hdr_len: 1234,
            gso_size,
            csum_start: ip as u16,
            csum_offset: at as u16 - ip as u16,
        };
        (hdr, p)
    }

    fn checksum_fold_not(s: u64) -> u16 {
        super::super::checksum_fold(s)
    }

    fn split_all(hdr: &VirtioNetHdr, p: &[u8]) -> Vec<Vec<u8>> {
        let mut s = GsoSplit::new(hdr, p).unwrap();
        let n = s.segments();
        let mut out = Vec::new();
        let mut buf = vec![0u8; s.max_segment_len()];
        while let Some(len) = s.next_into(&mut buf).unwrap() {
            out.push(buf[..len].to_vec());
        }
        assert_eq!(out.len(), n);
        out
    }

    #[test]
    fn tcp_segments_v4_v6_odd_sizes_with_options() {
        for v6 in [false, true] {
            for (len, mss) in [
                (1, 1000),
                (1448, 1448),
                (4000, 1448),
                (65000 - 60, 1380),
                (7, 3),
            ] {
                let mut spec = Spec::tcp(v6);
                spec.tcp_options = vec![1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]; // NOP NOP TS
                spec.flags = TCP_ACK_FLAG | TCP_PSH | TCP_FIN | TCP_CWR;
                spec.seq = u32::MAX - 2000; // wraps
                let data = payload(len, 3);
                let (hdr, p) = super_packet(&spec, &data, mss);
                let segs = split_all(&hdr, &p);
                assert_eq!(segs.len(), len.div_ceil(usize::from(mss)));
                let ip = spec.ip_hdr_len();
                let hl = ip + spec.l4_hdr_len();
                let mut joined = Vec::new();
                for (i, s) in segs.iter().enumerate() {
                    verify(s);
                    let last = i + 1 == segs.len();
                    let want = if last {
                        len - i * usize::from(mss)
                    } else {
                        usize::from(mss)
                    };
                    assert_eq!(s.len() - hl, want, "segment {i} payload");
                    let seq = spec.seq.wrapping_add((i * usize::from(mss)) as u32);
                    assert_eq!(be32(s, ip + TCP_SEQ), seq);
                    let flags = s[ip + TCP_FLAGS];
                    assert_eq!(
                        flags & (TCP_PSH | TCP_FIN) != 0,
                        last,
                        "PSH/FIN on last only"
                    );
                    assert_eq!(flags & TCP_CWR != 0, i == 0, "CWR on first only");
                    assert_eq!(flags & TCP_ACK_FLAG, TCP_ACK_FLAG);
                    assert_eq!(&s[ip + 20..hl], &spec.tcp_options[..], "options copied");
                    if !v6 {
                        assert_eq!(be16(s, 4), 0x1234u16.wrapping_add(i as u16), "IPv4 ID");
                        assert_eq!(s[6], 0x40, "DF kept");
                    }
                    joined.extend_from_slice(&s[hl..]);
                }
                assert_eq!(joined, data);
            }
        }
    }

    #[test]
    fn udp_segments_v4_v6_last_shorter() {
        for v6 in [false, true] {
            for (len, size) in [(1200, 1200), (5000, 1200), (3, 1), (65000, 1472)] {
                let spec = Spec::udp(v6);
                let data = payload(len, 9);
                let (hdr, p) = super_packet(&spec, &data, size);
                let segs = split_all(&hdr, &p);
                assert_eq!(segs.len(), len.div_ceil(usize::from(size)));
                let hl = spec.ip_hdr_len() + 8;
                let mut joined = Vec::new();
                for s in &segs {
                    verify(s);
                    joined.extend_from_slice(&s[hl..]);
                }
                assert_eq!(joined, data);
            }
        }
    }

    #[test]
    fn ecn_bit_is_ignored_and_header_only_packet_makes_one_segment() {
        let spec = Spec::tcp(false);
        let (mut hdr, p) = super_packet(&spec, &[], 1000);
        hdr.gso_type |= VIRTIO_NET_HDR_GSO_ECN;
        let segs = split_all(&hdr, &p);
        assert_eq!(segs.len(), 1);
        verify(&segs[0]);
    }

    #[test]
    fn bad_headers_are_rejected() {
        let spec = Spec::tcp(false);
        let (hdr, p) = super_packet(&spec, &payload(3000, 0), 1000);
        let cases = [
            (VIRTIO_NET_HDR_GSO_TCPV6, 1000, OffloadError::IpVersion),
            (
                VIRTIO_NET_HDR_GSO_UDP_L4,
                1000,
                OffloadError::ChecksumOffsets,
            ),
            (hdr.gso_type, 0, OffloadError::GsoSize),
            (3, 1000, OffloadError::UnknownGsoType(3)),
        ];
        for (gso_type, gso_size, want) in cases {
            let bad = VirtioNetHdr {
                gso_type,
                gso_size,
                ..hdr
            };
            assert_eq!(GsoSplit::new(&bad, &p).unwrap_err(), want);
        }
        assert_eq!(
            GsoSplit::new(&hdr, &p[..30]).unwrap_err(),
            OffloadError::Truncated
        );
        let mut s = GsoSplit::new(&hdr, &p).unwrap();
        assert_eq!(
            s.next_into(&mut [0u8; 100]),
            Err(OffloadError::BufferTooSmall)
        );
    }

    #[test]
    fn needs_csum_is_completed() {
        for spec in [
            Spec::tcp(false),
            Spec::tcp(true),
            Spec::udp(false),
            Spec::udp(true),
        ] {
            for len in [0, 1, 2, 3, 1001] {
                let data = payload(len, 5);
                let good = spec.build(&data);
                let (mut hdr, mut p) = super_packet(&spec, &data, 1400);
                hdr.gso_type = 0;
                complete_checksum(&hdr, &mut p).unwrap();
                verify(&p);
                assert_eq!(p, good);
                let beyond = VirtioNetHdr {
                    csum_start: p.len() as u16,
                    ..hdr
                };
                assert!(complete_checksum(&beyond, &mut p).is_err());
            }
        }
    }

    /// Headers and packets from valid super-packets with random damage (a field of the
    /// virtio-net header replaced, bytes of the packet flipped, the packet cut short): splitting
    /// and completing checksums never panic; when a split is accepted, every segment fits
    /// `max_segment_len` and there are exactly `segments()` of them.
    #[test]
    fn damaged_headers_and_packets_never_panic() {
        let mut r = Rng::new(0x2545_f491_4f6c_dd1d);
        let mut rng = |n: usize| r.below(n);
        for _ in 0..3000 {
            let v6 = rng(2) == 1;
            let spec = if rng(2) == 1 {
                Spec::tcp(v6)
            } else {
                Spec::udp(v6)
            };
            let data = payload(rng(5000), rng(256) as u8);
            let (mut hdr, mut p) = super_packet(&spec, &data, 1 + rng(1500) as u16);
            for _ in 0..1 + rng(3) {
                let v = rng(1 << 16) as u16;
                match rng(8) {
                    0 => hdr.gso_type = v as u8,
                    1 => hdr.gso_size = v % 2000,
                    2 => hdr.hdr_len = v % 200,
                    3 => hdr.csum_start = v % 100,
                    4 => hdr.csum_offset = v % 40,
                    5 => p.truncate(rng(p.len() + 1)),
                    _ => {
                        if !p.is_empty() {
                            let i = rng(p.len().min(80));
                            p[i] = v as u8;
                        }
                    }
                }
            }
            let _ = complete_checksum(&hdr, &mut p.clone());
            let Ok(mut split) = GsoSplit::new(&hdr, &p) else {
                continue;
            };
            let (n, max) = (split.segments(), split.max_segment_len());
            let mut buf = vec![0u8; max];
            let mut count = 0;
            while let Some(len) = split.next_into(&mut buf).unwrap() {
                assert!(len <= max);
                count += 1;
            }
            assert_eq!(count, n, "segments announced and made");
        }
    }
}
