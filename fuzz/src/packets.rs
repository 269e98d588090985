//! An independent oracle for the offload targets: the Internet checksum of RFC 1071 summed
//! 16 bits at a time (not the vectorised code under test), the verdict a receiving kernel
//! gives an IPv4/IPv6 TCP/UDP packet, a fixer that makes arbitrary bytes into such a packet,
//! and the loop that feeds packets to the coalescer under test ([`coalesce_all`]).

use std::io::IoSlice;

use ferrowg_daemon::offload::{Coalescer, PacketRef};

/// The one's-complement sum of `data` as 16-bit big-endian words (an odd last byte is the
/// high byte), folded, over `initial`.
pub fn sum16(data: &[u8], initial: u64) -> u16 {
    let mut s = initial;
    for w in data.chunks(2) {
        s += u64::from(w[0]) << 8 | u64::from(*w.get(1).unwrap_or(&0));
    }
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// The IP header length, transport protocol and IP version-6 flag of a packet whose transport
/// header follows a plain IPv4 header (any IHL) or the fixed IPv6 header; `None` otherwise.
pub fn layout(p: &[u8]) -> Option<(usize, u8, bool)> {
    match p.first()? >> 4 {
        4 if p.len() >= 20 => {
            let ihl = usize::from(p[0] & 0x0f) * 4;
            (ihl >= 20 && p.len() >= ihl).then_some((ihl, p[9], false))
        }
        6 if p.len() >= 40 => Some((40, p[6], true)),
        _ => None,
    }
}

/// The unfolded pseudo-header sum (RFC 9293 §3.1, RFC 768, RFC 8200 §8.1).
pub fn pseudo(p: &[u8], v6: bool, proto: u8, l4_len: usize) -> u64 {
    let addrs = if v6 { &p[8..40] } else { &p[12..20] };
    u64::from(sum16(addrs, 0)) + u64::from(proto) + l4_len as u64
}

/// True if the transport checksum of `p` (from `ip` on) is right.
pub fn transport_ok(p: &[u8], v6: bool, proto: u8, ip: usize) -> bool {
    sum16(&p[ip..], pseudo(p, v6, proto, p.len() - ip)) == 0xffff
}

/// True if lengths and every checksum of an IP packet are what a receiving kernel checks.
pub fn verify(p: &[u8]) -> Result<(), &'static str> {
    let (ip, proto, v6) = layout(p).ok_or("not IPv4/IPv6")?;
    if v6 {
        if usize::from(u16::from_be_bytes([p[4], p[5]])) + 40 != p.len() {
            return Err("IPv6 payload length");
        }
    } else {
        if usize::from(u16::from_be_bytes([p[2], p[3]])) != p.len() {
            return Err("IPv4 total length");
        }
        if sum16(&p[..ip], 0) != 0xffff {
            return Err("IPv4 header checksum");
        }
    }
    if proto == 17
        && (p.len() < ip + 8
            || usize::from(u16::from_be_bytes([p[ip + 4], p[ip + 5]])) != p.len() - ip)
    {
        return Err("UDP length");
    }
    if !transport_ok(p, v6, proto, ip) {
        return Err("transport checksum");
    }
    Ok(())
}

/// Makes `p` a well-formed TCP (`tcp`) or UDP packet of its own length where it can: sets the
/// version, protocol, lengths, and both checksums. Too-short or too-long bytes are left alone.
pub fn fix(p: &mut [u8], v6: bool, tcp: bool) {
    let ip = if v6 { 40 } else { 20 };
    let l4 = if tcp { 20 } else { 8 };
    if p.len() < ip + l4 || p.len() > 65535 {
        return;
    }
    let proto = if tcp { 6 } else { 17 };
    if v6 {
        p[0] = 0x60 | (p[0] & 0x0f);
        p[6] = proto;
        let n = (p.len() - 40) as u16;
        p[4..6].copy_from_slice(&n.to_be_bytes());
    } else {
        p[0] = 0x45;
        p[9] = proto;
        let n = p.len() as u16;
        p[2..4].copy_from_slice(&n.to_be_bytes());
        p[10..12].copy_from_slice(&[0, 0]);
        let c = !sum16(&p[..20], 0);
        p[10..12].copy_from_slice(&c.to_be_bytes());
    }
    let (at, len) = if tcp {
        // A data offset that fits the packet, options included.
        let max = ((p.len() - ip) / 4).min(15) as u8;
        let off = (p[ip + 12] >> 4).clamp(5, max.max(5));
        p[ip + 12] = off << 4 | (p[ip + 12] & 0x0f);
        (ip + 16, p.len() - ip)
    } else {
        let n = (p.len() - ip) as u16;
        p[ip + 4..ip + 6].copy_from_slice(&n.to_be_bytes());
        (ip + 6, p.len() - ip)
    };
    p[at..at + 2].copy_from_slice(&[0, 0]);
    let c = !sum16(&p[ip..], pseudo(p, v6, proto, len));
    let c = if c == 0 { 0xffff } else { c };
    p[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

/// Feeds every packet of `bufs` (one packet per buffer, the whole buffer) to `gro` in order,
/// flushing into `write` whenever it refuses one (an empty coalescer must take it), and flushes
/// what is left at the end.
pub fn coalesce_all(
    gro: &mut Coalescer,
    bufs: &mut [Vec<u8>],
    mut write: impl FnMut(&[IoSlice<'_>]) -> bool,
) {
    for i in 0..bufs.len() {
        let p = PacketRef {
            buf: i,
            start: 0,
            len: bufs[i].len(),
        };
        if !gro.push(bufs, p) {
            gro.flush(bufs, &mut write);
            assert!(gro.push(bufs, p), "an empty coalescer takes a packet");
        }
    }
    gro.flush(bufs, &mut write);
}
