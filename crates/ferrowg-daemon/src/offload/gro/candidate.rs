//! What a packet offers the coalescer ([`Candidate`]): its flow, its header lengths, and
//! whether it may join or start a super-packet at all, read from its own headers (IPv4 without
//! options or fragments, IPv6 without extension headers, TCP with ACK or ACK|PSH and a payload,
//! UDP with a checksum where USO is on); and the checks a packet must pass against the first
//! packet of the super-packet it would join.

use crate::offload::{
    be16, be32, checksum, pseudo_header, IPV6_HDR_LEN, PROTO_TCP, PROTO_UDP, TCP_ACK_FLAG,
    TCP_DATA_OFFSET, TCP_FLAGS, TCP_PSH, TCP_SEQ, UDP_CSUM, UDP_HDR_LEN,
};

/// The flow of a packet that may be coalesced, and what must match to coalesce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Flow {
    pub(super) v6: bool,
    pub(super) proto: u8,
    /// Source and destination address (IPv4: the first 8 bytes).
    pub(super) addrs: [u8; 32],
    /// Source and destination port.
    pub(super) ports: [u8; 4],
}

/// What a parsed candidate packet brings.
pub(super) struct Candidate {
    pub(super) flow: Flow,
    pub(super) ip_len: usize,
    pub(super) l4_len: usize,
    pub(super) payload: usize,
    pub(super) seq: u32,
    /// May join or start a super-packet (else it goes alone and closes its flow's item).
    pub(super) mergeable: bool,
    /// TCP with PSH: it may end a super-packet but nothing may follow it.
    pub(super) psh: bool,
}

/// Parses a TCP or UDP packet whose IP header has no options or extension headers; `None`
/// for anything else (it goes out alone).
pub(super) fn parse(p: &[u8], udp_allowed: bool) -> Option<Candidate> {
    let v6 = match p.first()? >> 4 {
        4 => false,
        6 => true,
        _ => return None,
    };
    let mut addrs = [0u8; 32];
    let (ip_len, proto, mut mergeable) = if v6 {
        if p.len() < IPV6_HDR_LEN || usize::from(be16(p, 4)) + IPV6_HDR_LEN != p.len() {
            return None;
        }
        addrs.copy_from_slice(&p[8..40]);
        (IPV6_HDR_LEN, p[6], true)
    } else {
        if p.len() < 20 || p[0] & 0x0f != 5 || usize::from(be16(p, 2)) != p.len() {
            return None;
        }
        addrs[..8].copy_from_slice(&p[12..20]);
        // More fragments, or a fragment offset: never merge.
        let fragment = be16(p, 6) & 0x3fff != 0;
        (20, p[9], !fragment)
    };
    let mut psh = false;
    let (l4_len, seq) = match proto {
        PROTO_TCP => {
            let off = usize::from(*p.get(ip_len + TCP_DATA_OFFSET)? >> 4) * 4;
            if off < 20 || p.len() < ip_len + off {
                return None;
            }
            let flags = p[ip_len + TCP_FLAGS];
            mergeable &= flags == TCP_ACK_FLAG || flags == TCP_ACK_FLAG | TCP_PSH;
            psh = flags & TCP_PSH != 0;
            (off, be32(p, ip_len + TCP_SEQ))
        }
        PROTO_UDP => {
            if p.len() < ip_len + UDP_HDR_LEN {
                return None;
            }
            // IPv4 UDP without a checksum cannot be given one silently.
            mergeable &= udp_allowed && be16(p, ip_len + UDP_CSUM) != 0;
            (UDP_HDR_LEN, 0)
        }
        _ => return None,
    };
    let payload = p.len() - ip_len - l4_len;
    mergeable &= payload > 0;
    let mut ports = [0u8; 4];
    ports.copy_from_slice(&p[ip_len..ip_len + 4]);
    Some(Candidate {
        flow: Flow {
            v6,
            proto,
            addrs,
            ports,
        },
        ip_len,
        l4_len,
        payload,
        seq,
        mergeable,
        psh,
    })
}

/// TOS/traffic class, TTL/hop limit, the IPv6 flow label and the IPv4 DF/reserved bits agree
/// (Linux's `ipv6_gro_receive` also requires the whole first word to match: a super-packet has
/// one flow label).
pub(super) fn ip_fields_match(a: &[u8], b: &[u8], v6: bool) -> bool {
    if v6 {
        a[..4] == b[..4] && a[7] == b[7]
    } else {
        a[1] == b[1] && a[6] >> 5 == b[6] >> 5 && a[8] == b[8]
    }
}

/// The transport checksum of a whole packet is right.
pub(super) fn transport_checksum_ok(p: &[u8], v6: bool, proto: u8, ip: usize) -> bool {
    checksum(&p[ip..], pseudo_header(p, v6, proto, p.len() - ip)) == 0
}
