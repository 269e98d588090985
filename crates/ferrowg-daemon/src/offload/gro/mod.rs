//! Coalescing of decrypted packets before they go to the TUN device (receive offload): runs of
//! TCP segments of one flow, or same-sized UDP datagrams of one flow, become one super-packet
//! with a virtio-net header (`gso_type`, `gso_size`, `NEEDS_CSUM` with the pseudo-header sum
//! in the checksum field), which the kernel takes in one `write(2)` as if a NIC's GRO had built
//! it. Every other packet goes out alone behind an all-zero header.
//!
//! A TCP segment joins the flow's open super-packet only if (Linux `tcp_gro_receive`, as
//! wireguard-go's `tcpPacketsCanCoalesce` applies it): same addresses, ports and ACK number;
//! same TOS/traffic class, TTL/hop limit, IPv6 flow label and IPv4 DF bit; same TCP header
//! length and options; flags ACK or ACK|PSH and a payload; its sequence number follows the last
//! one; its payload is no larger than the first (`gso_size`), and nothing follows a shorter
//! segment or one with PSH (the first included); the result stays within 64 KiB. UDP: same
//! addresses, ports and IP fields, non-zero checksum, same size except a shorter last datagram.
//! IPv4 with options or fragments and IPv6 with extension headers are never coalesced. Because
//! the kernel will compute a new checksum for the whole super-packet, every packet's own
//! checksum is verified before it is merged, so a corrupt packet is never laundered.
//!
//! Order: each packet is compared only with the newest item of its flow (among the last
//! [`WINDOW`] items); if it cannot join, it starts a new item, which closes the old one. So a
//! flow's packets leave in the order they arrived.
//!
//! Nothing is copied: the coalescer keeps references to the packets where they lie (the
//! receive buffers, after decryption in place). A frame is written with one `writev(2)`: its
//! virtio-net header, the first packet (whose headers are fixed up in place), then the payload
//! of each packet appended to it.

use std::io::IoSlice;

use ferrowg_sys::{
    VirtioNetHdr, VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4, VIRTIO_NET_HDR_GSO_TCPV6,
    VIRTIO_NET_HDR_GSO_UDP_L4,
};

mod candidate;

use candidate::{ip_fields_match, parse, transport_checksum_ok, Candidate, Flow};

use super::{
    be32, checksum_fold, pseudo_header, put16, set_ipv4_checksum, PacketRef, IPV6_HDR_LEN,
    PROTO_TCP, TCP_ACK, TCP_CSUM, TCP_FLAGS, TCP_PSH, UDP_CSUM, UDP_LEN,
};

/// Largest IP packet, and so largest super-packet.
const MAX_IP_LEN: usize = 65535;
/// Most segments in one super-packet (the kernel's `UDP_MAX_SEGMENTS` on older kernels; TCP
/// allows more, but 64 segments already fill 64 KiB at a 1 KiB MSS).
const MAX_SEGMENTS: u16 = 64;
/// How many of the newest items a packet is compared against.
pub const WINDOW: usize = 16;

/// One output frame under construction: its first packet, and the payloads appended to it.
#[derive(Clone, Copy, Debug)]
struct Item {
    /// The first packet, whose headers become the super-packet's.
    head: PacketRef,
    /// Bytes of the whole IP packet the frame will carry.
    len: usize,
    /// The flow, if the packet is TCP or UDP.
    flow: Option<Flow>,
    /// Nothing more may be appended.
    closed: bool,
    /// IP header length (20 or 40).
    ip_len: usize,
    /// Transport header length.
    l4_len: usize,
    /// Payload bytes of the first segment.
    gso_size: usize,
    /// Segments so far.
    segments: u16,
    /// TCP: the sequence number the next segment must have.
    next_seq: u32,
    /// The first packet's checksum has been verified (done before the first merge).
    verified: bool,
    /// An appended TCP segment carried PSH: the super-packet gets it.
    psh: bool,
    /// First and last appended payload in `Coalescer::tails` (`NONE` if there is none).
    first_tail: u32,
    last_tail: u32,
}

/// The payload of a packet appended to an item, and the next one of the same item.
#[derive(Clone, Copy, Debug)]
struct Tail {
    payload: PacketRef,
    next: u32,
}

/// End of a list of tails.
const NONE: u32 = u32::MAX;

/// Builds the frames for one batch of TUN writes from packets that stay in the caller's
/// buffers. The item list is allocated once, in [`Coalescer::new`].
pub struct Coalescer {
    items: Vec<Item>,
    tails: Vec<Tail>,
    capacity: usize,
    udp: bool,
}

impl Coalescer {
    /// Room for `capacity` output frames per batch. `udp`: coalesce UDP too (the device was
    /// given USO, Linux 6.2+).
    pub fn new(capacity: usize, udp: bool) -> Self {
        let capacity = capacity.max(1);
        Coalescer {
            items: Vec::with_capacity(capacity),
            tails: Vec::with_capacity(capacity * usize::from(MAX_SEGMENTS)),
            capacity,
            udp,
        }
    }

    /// True if no packet is waiting.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// True if the next packet might not fit: flush first.
    pub fn is_full(&self) -> bool {
        self.items.len() == self.capacity
    }

    /// Adds the decrypted IP packet `p` of `bufs`. Returns false (and takes nothing) if
    /// [`is_full`]; [`flush`] and retry. The packet must stay where it is, unchanged, until the
    /// next [`flush`].
    ///
    /// [`is_full`]: Self::is_full
    /// [`flush`]: Self::flush
    pub fn push<B: AsRef<[u8]>>(&mut self, bufs: &[B], p: PacketRef) -> bool {
        let Some(packet) = p.get(bufs).filter(|pk| pk.len() <= MAX_IP_LEN) else {
            // Cannot happen for a packet that came through WireGuard; not ours to judge.
            return true;
        };
        let cand = parse(packet, self.udp);
        if let Some(c) = &cand {
            if self.try_append(bufs, c, p, packet) {
                return true;
            }
        }
        if self.is_full() {
            return false;
        }
        let mut item = Item {
            head: p,
            len: packet.len(),
            flow: None,
            closed: true,
            ip_len: 0,
            l4_len: 0,
            gso_size: 0,
            segments: 1,
            next_seq: 0,
            verified: false,
            psh: false,
            first_tail: NONE,
            last_tail: NONE,
        };
        if let Some(c) = cand {
            item.flow = Some(c.flow);
            item.closed = !c.mergeable || c.psh;
            item.ip_len = c.ip_len;
            item.l4_len = c.l4_len;
            item.gso_size = c.payload;
            item.next_seq = c.seq.wrapping_add(c.payload as u32);
        }
        self.items.push(item);
        true
    }

    /// Appends `packet` (that is, `p`) to its flow's newest item if the rules allow.
    fn try_append<B: AsRef<[u8]>>(
        &mut self,
        bufs: &[B],
        c: &Candidate,
        p: PacketRef,
        packet: &[u8],
    ) -> bool {
        let start = self.items.len().saturating_sub(WINDOW);
        let Some(idx) = (start..self.items.len())
            .rev()
            .find(|&i| matches!(&self.items[i].flow, Some(f) if *f == c.flow))
        else {
            return false;
        };
        let item = self.items[idx];
        if item.closed || !c.mergeable {
            return false;
        }
        let Some(head) = item.head.get(bufs) else {
            return false;
        };
        let tcp = c.flow.proto == PROTO_TCP;
        if c.l4_len != item.l4_len
            || c.payload > item.gso_size
            || item.len + c.payload > MAX_IP_LEN
            || item.segments >= MAX_SEGMENTS
            || self.tails.len() >= NONE as usize
            || !ip_fields_match(head, packet, c.flow.v6)
        {
            return false;
        }
        let (ip, hl) = (c.ip_len, c.ip_len + c.l4_len);
        if tcp
            && (c.seq != item.next_seq
                || be32(head, ip + TCP_ACK) != be32(packet, ip + TCP_ACK)
                || head[ip + 20..hl] != packet[ip + 20..hl])
        {
            return false;
        }
        if !item.verified && !transport_checksum_ok(head, c.flow.v6, c.flow.proto, ip) {
            self.items[idx].closed = true;
            return false;
        }
        if !transport_checksum_ok(packet, c.flow.v6, c.flow.proto, ip) {
            return false;
        }
        let tail = self.tails.len() as u32;
        self.tails.push(Tail {
            payload: PacketRef {
                buf: p.buf,
                start: p.start + hl,
                len: p.len - hl,
            },
            next: NONE,
        });
        let it = &mut self.items[idx];
        match it.last_tail {
            NONE => it.first_tail = tail,
            last => self.tails[last as usize].next = tail,
        }
        it.last_tail = tail;
        it.len += c.payload;
        it.segments += 1;
        it.verified = true;
        it.next_seq = c.seq.wrapping_add(c.payload as u32);
        it.psh |= c.psh;
        // Nothing may follow a short segment, or a segment with PSH.
        it.closed = c.payload < it.gso_size || c.psh;
        true
    }

    /// Writes every frame, in order, through `write` (which gets the pieces of one frame: a
    /// virtio-net header followed by an IP packet, for one `writev`; it returns false to stop),
    /// then forgets every packet. The headers of each frame's first packet are rewritten in
    /// place in `bufs`.
    pub fn flush<B: AsRef<[u8]> + AsMut<[u8]>>(
        &mut self,
        bufs: &mut [B],
        mut write: impl FnMut(&[IoSlice<'_>]) -> bool,
    ) {
        let empty = IoSlice::new(&[]);
        for item in &self.items {
            // A super-packet's first packet takes the headers of the whole before it is written.
            let hdr = match item.head.get_mut(bufs) {
                Some(head) if item.segments > 1 => finish_super_packet(item, head),
                Some(_) => VirtioNetHdr::default(),
                None => continue,
            }
            .to_bytes();
            let bufs = &*bufs;
            let Some(head) = item.head.get(bufs) else {
                continue;
            };
            let mut iov = [empty; 2 + MAX_SEGMENTS as usize];
            iov[0] = IoSlice::new(&hdr);
            iov[1] = IoSlice::new(head);
            let mut n = 2;
            let mut t = item.first_tail;
            while let Some(tail) = self.tails.get(t as usize) {
                if let (Some(slot), Some(payload)) = (iov.get_mut(n), tail.payload.get(bufs)) {
                    *slot = IoSlice::new(payload);
                    n += 1;
                }
                t = tail.next;
            }
            if !write(&iov[..n]) {
                break;
            }
        }
        self.items.clear();
        self.tails.clear();
    }
}

/// Fixes the lengths of a coalesced packet in its first packet `p` (whose headers it keeps)
/// and puts the pseudo-header sum in its checksum field; returns its virtio-net header.
fn finish_super_packet(item: &Item, p: &mut [u8]) -> VirtioNetHdr {
    let Some(flow) = item.flow else {
        return VirtioNetHdr::default();
    };
    let ip = item.ip_len;
    let total = item.len;
    let l4_total = total - ip;
    if flow.v6 {
        put16(p, 4, (total - IPV6_HDR_LEN) as u16);
    } else {
        put16(p, 2, total as u16);
        set_ipv4_checksum(&mut p[..ip]);
    }
    let (gso_type, csum_offset) = match (flow.proto, flow.v6) {
        (PROTO_TCP, false) => (VIRTIO_NET_HDR_GSO_TCPV4, TCP_CSUM),
        (PROTO_TCP, true) => (VIRTIO_NET_HDR_GSO_TCPV6, TCP_CSUM),
        _ => {
            put16(p, ip + UDP_LEN, l4_total as u16);
            (VIRTIO_NET_HDR_GSO_UDP_L4, UDP_CSUM)
        }
    };
    if item.psh {
        p[ip + TCP_FLAGS] |= TCP_PSH;
    }
    let partial = checksum_fold(pseudo_header(p, flow.v6, flow.proto, l4_total));
    put16(p, ip + csum_offset, partial);
    VirtioNetHdr {
        flags: VIRTIO_NET_HDR_F_NEEDS_CSUM,
        gso_type,
        hdr_len: (ip + item.l4_len) as u16,
        gso_size: item.gso_size as u16,
        csum_start: ip as u16,
        csum_offset: csum_offset as u16,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testpkt::{payload, verify, Rng, Spec};
    use super::super::{GsoSplit, TCP_FIN};
    use super::*;
    use ferrowg_sys::VIRTIO_NET_HDR_LEN;

    /// A coalescer fed the way the receive path feeds it: each packet is copied into one of
    /// three buffers, several to a buffer, each behind a 16-byte gap (where its WireGuard header
    /// was), and referred to there.
    struct Tc {
        c: Coalescer,
        bufs: Vec<Vec<u8>>,
        pushed: usize,
    }

    impl Tc {
        fn new(capacity: usize, udp: bool) -> Self {
            Tc {
                c: Coalescer::new(capacity, udp),
                bufs: vec![Vec::new(); 3],
                pushed: 0,
            }
        }

        fn push(&mut self, packet: &[u8]) -> bool {
            let buf = self.pushed % self.bufs.len();
            self.pushed += 1;
            let b = &mut self.bufs[buf];
            b.extend_from_slice(&[0xee; 16]);
            let start = b.len();
            b.extend_from_slice(packet);
            let p = PacketRef {
                buf,
                start,
                len: packet.len(),
            };
            self.c.push(&self.bufs, p)
        }

        fn is_full(&self) -> bool {
            self.c.is_full()
        }

        /// The frames as `writev` would gather them.
        fn frames(&mut self) -> Vec<Vec<u8>> {
            let mut frames = Vec::new();
            self.c.flush(&mut self.bufs, |iov| {
                frames.push(iov.iter().flat_map(|s| s.iter().copied()).collect());
                true
            });
            assert!(self.c.is_empty());
            frames
        }
    }

    /// What the kernel would see: frames written, super-packets split again (as the kernel's
    /// GSO does on the receive path), each checked for lengths and checksums.
    fn written(c: &mut Tc) -> Vec<(VirtioNetHdr, Vec<Vec<u8>>)> {
        c.frames()
            .into_iter()
            .map(|f| {
                let hdr = VirtioNetHdr::parse(&f).unwrap();
                let p = &f[VIRTIO_NET_HDR_LEN..];
                let segs = if hdr.is_gso() {
                    let mut s = GsoSplit::new(&hdr, p).unwrap();
                    let mut buf = vec![0u8; 65536];
                    let mut v = Vec::new();
                    while let Some(n) = s.next_into(&mut buf).unwrap() {
                        v.push(buf[..n].to_vec());
                    }
                    v
                } else {
                    assert_eq!(hdr, VirtioNetHdr::default());
                    vec![p.to_vec()]
                };
                for s in &segs {
                    verify(s);
                }
                (hdr, segs)
            })
            .collect()
    }

    /// A TCP flow's consecutive segments of the given payload sizes.
    fn tcp_run(spec: &Spec, sizes: &[usize]) -> Vec<Vec<u8>> {
        let mut s = spec.clone();
        sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let p = s.build(&payload(n, i as u8));
                s.seq = s.seq.wrapping_add(n as u32);
                s.ip_id = s.ip_id.wrapping_add(1);
                p
            })
            .collect()
    }

    #[test]
    fn tcp_run_coalesces_and_resegments_to_the_same_packets() {
        for v6 in [false, true] {
            let mut spec = Spec::tcp(v6);
            spec.tcp_options = vec![1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 3];
            spec.seq = u32::MAX - 3000;
            let pkts = tcp_run(&spec, &[1380, 1380, 1380, 1380, 777]);
            let mut c = Tc::new(8, true);
            for p in &pkts {
                assert!(c.push(p));
            }
            let out = written(&mut c);
            assert_eq!(out.len(), 1);
            let (hdr, segs) = &out[0];
            assert_eq!(hdr.gso_size, 1380);
            assert_eq!(hdr.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
            let ip = spec.ip_hdr_len();
            assert_eq!(usize::from(hdr.csum_start), ip);
            assert_eq!(usize::from(hdr.hdr_len), ip + 32);
            assert_eq!(segs.len(), 5);
            for (s, p) in segs.iter().zip(&pkts) {
                // Same packets again, except the IPv4 ID (re-derived from the first).
                assert_eq!(s[ip..], p[ip..]);
            }
        }
    }

    #[test]
    fn psh_ends_a_run_and_short_segment_ends_a_run() {
        let spec = Spec::tcp(false);
        let mut pkts = tcp_run(&spec, &[1000, 1000, 1000, 1000, 500, 1000]);
        // Packet 1 carries PSH: it may end the first run; packet 2 starts another.
        pkts[1] = {
            let mut s = spec.clone();
            s.seq += 1000;
            s.flags |= TCP_PSH;
            s.build(&payload(1000, 1))
        };
        let mut c = Tc::new(8, true);
        for p in &pkts {
            assert!(c.push(p));
        }
        let out = written(&mut c);
        let counts: Vec<usize> = out.iter().map(|(_, s)| s.len()).collect();
        assert_eq!(counts, [2, 3, 1]);
        assert_ne!(
            out[0].1[1][20 + TCP_FLAGS] & TCP_PSH,
            0,
            "PSH on the merged tail"
        );
    }

    #[test]
    fn psh_on_the_first_segment_and_another_flow_label_end_a_run() {
        // A first segment with PSH goes alone: Linux flushes it at once, and a merged PSH
        // would move to the end of the super-packet.
        let spec = Spec::tcp(false);
        let mut pkts = tcp_run(&spec, &[1000, 1000, 1000]);
        let mut first = spec.clone();
        first.flags |= TCP_PSH;
        pkts[0] = first.build(&payload(1000, 0));
        let mut c = Tc::new(8, true);
        for p in &pkts {
            assert!(c.push(p));
        }
        let counts: Vec<usize> = written(&mut c).iter().map(|(_, s)| s.len()).collect();
        assert_eq!(counts, [1, 2]);
        // An IPv6 packet with another flow label (which no checksum covers) joins nothing, and
        // nothing joins it.
        let pkts = tcp_run(&Spec::tcp(true), &[1000, 1000, 1000]);
        let mut relabeled = pkts[1].clone();
        relabeled[3] ^= 0x01;
        let mut c = Tc::new(8, true);
        for p in [&pkts[0], &relabeled, &pkts[2]] {
            assert!(c.push(p));
        }
        let out = written(&mut c);
        assert_eq!(out.len(), 3);
        assert_eq!(out[1].1, [relabeled]);
    }

    #[test]
    fn mismatches_do_not_coalesce() {
        let spec = Spec::tcp(false);
        let base = tcp_run(&spec, &[1000, 1000]);
        let mut variants = Vec::new();
        // Gap in sequence numbers.
        let mut s = spec.clone();
        s.seq += 1001;
        variants.push(s.build(&payload(1000, 1)));
        // Different ACK, TTL, TOS, options length, flags (FIN).
        let changes: [fn(&mut Spec); 5] = [
            |s: &mut Spec| s.ack += 1,
            |s: &mut Spec| s.ttl -= 1,
            |s: &mut Spec| s.tos = 4,
            |s: &mut Spec| s.tcp_options = vec![1, 1, 1, 1],
            |s: &mut Spec| s.flags |= TCP_FIN,
        ];
        for f in changes {
            let mut s = spec.clone();
            s.seq += 1000;
            f(&mut s);
            variants.push(s.build(&payload(1000, 1)));
        }
        // Larger than the first segment.
        let mut s = spec.clone();
        s.seq += 1000;
        variants.push(s.build(&payload(1001, 1)));
        // Bad checksum.
        let mut bad = base[1].clone();
        let n = bad.len();
        bad[n - 1] ^= 0xff;
        variants.push(bad);
        for v in &variants {
            let mut c = Tc::new(4, true);
            assert!(c.push(&base[0]) && c.push(v));
            let frames = c.frames();
            assert_eq!(frames.len(), 2);
            assert_eq!(
                &frames[0][VIRTIO_NET_HDR_LEN..],
                &base[0][..],
                "first untouched"
            );
            assert_eq!(&frames[1][VIRTIO_NET_HDR_LEN..], &v[..], "second untouched");
            assert!(frames.iter().all(|f| f[..VIRTIO_NET_HDR_LEN] == [0; 10]));
        }
        // A corrupt first packet is not merged into either.
        let mut c = Tc::new(4, true);
        let mut bad = base[0].clone();
        bad[40] ^= 1;
        assert!(c.push(&bad) && c.push(&base[1]));
        assert_eq!(c.frames().len(), 2);
    }

    #[test]
    fn interleaved_flows_keep_per_flow_order() {
        let a = Spec::tcp(false);
        let mut b = Spec::tcp(true);
        b.src_port = 1;
        let ra = tcp_run(&a, &[1200; 6]);
        let rb = tcp_run(&b, &[1100; 6]);
        let mut c = Tc::new(8, true);
        // An ICMP-ish packet that is neither TCP nor UDP, a pure ACK of flow a in the middle.
        let mut other = a.build(&[]);
        other[9] = 1;
        let mut ack = a.clone();
        ack.seq += 3 * 1200;
        let pure_ack = ack.build(&[]);
        let mut order = Vec::new();
        for i in 0..6 {
            order.push(&ra[i]);
            order.push(&rb[i]);
            if i == 2 {
                order.push(&pure_ack);
                order.push(&other);
            }
        }
        for p in &order {
            assert!(c.push(p));
        }
        let frames = c.frames();
        // a[0..3], b[0..6], ack, other, a[3..6]
        assert_eq!(frames.len(), 5);
        let segs = |f: &Vec<u8>| VirtioNetHdr::parse(f).map_or(0, |h| h.gso_size);
        assert_eq!(segs(&frames[0]), 1200);
        assert_eq!(segs(&frames[1]), 1100);
        assert_eq!(&frames[2][VIRTIO_NET_HDR_LEN..], &pure_ack[..]);
        assert_eq!(segs(&frames[4]), 1200);
    }

    #[test]
    fn udp_coalesces_only_when_allowed_and_same_size() {
        for v6 in [false, true] {
            let spec = Spec::udp(v6);
            let pkts: Vec<Vec<u8>> = [1200, 1200, 1200, 31, 1200]
                .iter()
                .enumerate()
                .map(|(i, &n)| spec.build(&payload(n, i as u8)))
                .collect();
            let mut c = Tc::new(8, true);
            for p in &pkts {
                assert!(c.push(p));
            }
            let out = written(&mut c);
            let counts: Vec<usize> = out.iter().map(|(_, s)| s.len()).collect();
            assert_eq!(counts, [4, 1]);
            assert_eq!(out[0].0.gso_type, VIRTIO_NET_HDR_GSO_UDP_L4);
            let ip = spec.ip_hdr_len();
            assert_eq!(out[0].1[3][ip..], pkts[3][ip..]);
            let mut c = Tc::new(8, false);
            for p in &pkts {
                assert!(c.push(p));
            }
            assert_eq!(written(&mut c).len(), 5);
        }
        // IPv4 UDP without a checksum goes alone.
        let mut p = Spec::udp(false).build(&payload(100, 0));
        put16(&mut p, 20 + UDP_CSUM, 0);
        let mut c = Tc::new(8, true);
        assert!(c.push(&p) && c.push(&p));
        assert_eq!(c.frames().len(), 2);
    }

    #[test]
    fn size_and_capacity_limits() {
        let spec = Spec::tcp(false);
        // 60 x 1400 bytes exceed 64 KiB: two frames.
        let pkts = tcp_run(&spec, &[1400; 60]);
        let mut c = Tc::new(8, true);
        for p in &pkts {
            assert!(c.push(p));
        }
        let out = written(&mut c);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].1.len() + out[1].1.len(), 60);
        // Full: push refuses a packet that needs a new frame, accepts one that merges.
        let mut c = Tc::new(1, true);
        assert!(c.push(&pkts[0]));
        assert!(c.is_full());
        assert!(c.push(&pkts[1]));
        let mut other = spec.clone();
        other.src_port = 9;
        assert!(!c.push(&other.build(&[1])));
    }

    /// An IP packet with the IPv4 ID and header checksum blanked (segmentation re-derives them).
    fn normalized(p: &[u8]) -> Vec<u8> {
        let mut p = p.to_vec();
        if p.len() >= 20 && p[0] >> 4 == 4 {
            p[4..6].fill(0);
            p[10..12].fill(0);
        }
        p
    }

    /// Random batches: up to four TCP and UDP flows over IPv4 and IPv6, runs of one size with
    /// shorter packets and PSH here and there, some packets with a bit flipped, cut short or
    /// replaced by junk, through a coalescer small enough to fill up midway (flushed and
    /// retried, as the receive path does). Nothing panics; every super-packet splits into
    /// packets that a kernel accepts; and the packets that come out are exactly those that went
    /// in (but for the IPv4 ID), a damaged one untouched and alone, each flow in its order.
    #[test]
    fn random_batches_come_out_as_they_went_in() {
        let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
        for round in 0..400 {
            let mut flows: Vec<Spec> = (0..1 + rng.below(4))
                .map(|f| {
                    let v6 = rng.below(2) == 1;
                    let mut s = if rng.below(3) == 0 {
                        Spec::udp(v6)
                    } else {
                        Spec::tcp(v6)
                    };
                    s.src_port = 1000 + f as u16;
                    s.seq = rng.next() as u32;
                    s
                })
                .collect();
            let size = 1 + rng.below(1400);
            // (packet, flow of an intact packet)
            let mut input: Vec<(Vec<u8>, Option<usize>)> = Vec::new();
            for _ in 0..1 + rng.below(100) {
                let f = rng.below(flows.len());
                let len = if rng.below(6) == 0 {
                    rng.below(size + 1)
                } else {
                    size
                };
                let s = &mut flows[f];
                let psh = s.proto == PROTO_TCP && rng.below(8) == 0;
                if psh {
                    s.flags |= TCP_PSH;
                }
                let mut p = s.build(&payload(len, rng.next() as u8));
                s.flags &= !TCP_PSH;
                s.seq = s.seq.wrapping_add(len as u32);
                s.ip_id = s.ip_id.wrapping_add(1);
                let intact = match rng.below(16) {
                    0 => {
                        let i = rng.below(p.len());
                        p[i] ^= 1 << rng.below(8);
                        false
                    }
                    1 => {
                        p.truncate(rng.below(p.len()));
                        false
                    }
                    2 => {
                        p = (0..rng.below(80)).map(|_| rng.next() as u8).collect();
                        false
                    }
                    _ => true,
                };
                input.push((p, intact.then_some(f)));
            }

            let mut c = Tc::new(1 + rng.below(6), rng.below(4) != 0);
            let mut frames = Vec::new();
            for (p, _) in &input {
                if !c.push(p) {
                    frames.extend(c.frames());
                    assert!(
                        c.push(p),
                        "round {round}: an empty coalescer refused a packet"
                    );
                }
            }
            frames.extend(c.frames());

            let mut output = Vec::new();
            for f in &frames {
                let hdr = VirtioNetHdr::parse(f).unwrap();
                let p = &f[VIRTIO_NET_HDR_LEN..];
                if !hdr.is_gso() {
                    assert_eq!(hdr, VirtioNetHdr::default());
                    output.push(p.to_vec());
                    continue;
                }
                let mut split = GsoSplit::new(&hdr, p).unwrap();
                let mut buf = vec![0u8; 65536];
                while let Some(n) = split.next_into(&mut buf).unwrap() {
                    verify(&buf[..n]);
                    output.push(buf[..n].to_vec());
                }
            }
            assert_eq!(
                output.len(),
                input.len(),
                "round {round}: packets in and out"
            );
            // Where each input packet came out (the first unused equal one).
            let outs: Vec<Vec<u8>> = output.iter().map(|p| normalized(p)).collect();
            let mut used = vec![false; outs.len()];
            let mut last_at = vec![None::<usize>; flows.len()];
            for (i, (p, flow)) in input.iter().enumerate() {
                let want = normalized(p);
                let at = (0..outs.len())
                    .find(|&j| !used[j] && outs[j] == want)
                    .unwrap_or_else(|| panic!("round {round}: input {i} did not come out"));
                used[at] = true;
                if let Some(f) = *flow {
                    assert!(
                        last_at[f].is_none_or(|l| l < at),
                        "round {round}: flow {f} out of order at input {i}"
                    );
                    last_at[f] = Some(at);
                }
            }
        }
    }
}
