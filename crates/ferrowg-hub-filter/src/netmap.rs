//! 1:1 prefix translation, as iptables NETMAP does: two sites that both use 192.168.1.0/24 are
//! reached through distinct mapped prefixes (site A's 192.168.1.0/24 as 10.201.1.0/24). The
//! host bits are kept, the network bits replaced.
//!
//! Toward the site the destination is rewritten (mapped → real), from the site the source (real
//! → mapped). The IPv4 header checksum and the checksums that cover a pseudo-header (TCP, UDP,
//! UDP-Lite, DCCP, ICMPv6) are updated incrementally (RFC 1624); a UDP checksum of 0 (none)
//! stays 0, and a UDP checksum that becomes 0 is sent as 0xffff (RFC 768). ICMPv4 has no
//! pseudo-header. Later fragments carry no transport header: only the IPv4 header checksum
//! changes (the transport checksum, in the first fragment, covers the whole datagram).
//!
//! Not translated: the packet quoted inside an ICMP error (so a "packet too big" from inside a
//! mapped site names the real address), and IPv6 packets with a routing header with segments
//! left (their pseudo-header uses the final destination), which are refused.

use std::net::IpAddr;

use ferrowg_policy::Prefix;

use crate::csum;
use crate::packet::{self, proto, Kind, ParseError};

/// Why a map could not be made or a packet not translated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NetmapError {
    /// The two prefixes are of different IP families.
    Family,
    /// The two prefixes have different lengths.
    Length,
    /// The packet is not a readable IP packet.
    Malformed(ParseError),
    /// An IPv6 packet with a routing header that has segments left.
    RoutingHeader,
}

/// A 1:1 map between a site's real prefix and the prefix the hub shows for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Netmap {
    real: Prefix,
    mapped: Prefix,
}

/// Which address of a packet to translate.
#[derive(Debug, Clone, Copy)]
enum Field {
    Src,
    Dst,
}

impl Netmap {
    /// The map between `real` and `mapped`, which must be of one family and one length.
    pub fn new(real: Prefix, mapped: Prefix) -> Result<Netmap, NetmapError> {
        if real.addr().is_ipv4() != mapped.addr().is_ipv4() {
            return Err(NetmapError::Family);
        }
        if real.prefix_len() != mapped.prefix_len() {
            return Err(NetmapError::Length);
        }
        Ok(Netmap { real, mapped })
    }

    /// The site's own prefix.
    pub fn real(&self) -> Prefix {
        self.real
    }

    /// The prefix the hub shows for the site.
    pub fn mapped(&self) -> Prefix {
        self.mapped
    }

    /// Toward the site: a destination inside the mapped prefix becomes the real address.
    /// Returns whether the packet changed.
    pub fn to_site(&self, packet: &mut [u8]) -> Result<bool, NetmapError> {
        translate(packet, Field::Dst, self.mapped, self.real)
    }

    /// From the site: a source inside the real prefix becomes the mapped address. Returns
    /// whether the packet changed.
    pub fn from_site(&self, packet: &mut [u8]) -> Result<bool, NetmapError> {
        translate(packet, Field::Src, self.real, self.mapped)
    }

    /// The address `addr` of the real prefix as the hub shows it, if inside.
    pub fn map_addr(&self, addr: IpAddr) -> Option<IpAddr> {
        swap_prefix(addr, self.real, self.mapped)
    }

    /// The real address of the mapped address `addr`, if inside.
    pub fn unmap_addr(&self, addr: IpAddr) -> Option<IpAddr> {
        swap_prefix(addr, self.mapped, self.real)
    }
}

/// `addr` with `from`'s network bits replaced by `to`'s, if `addr` is inside `from`.
fn swap_prefix(addr: IpAddr, from: Prefix, to: Prefix) -> Option<IpAddr> {
    if !from.contains(addr) || addr.is_ipv4() != to.addr().is_ipv4() {
        return None;
    }
    Some(match (addr, to.addr()) {
        (IpAddr::V4(a), IpAddr::V4(t)) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(from.prefix_len()))
                .unwrap_or(0);
            IpAddr::V4((u32::from(a) & !mask | u32::from(t) & mask).into())
        }
        (IpAddr::V6(a), IpAddr::V6(t)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(from.prefix_len()))
                .unwrap_or(0);
            IpAddr::V6((u128::from(a) & !mask | u128::from(t) & mask).into())
        }
        _ => return None,
    })
}

/// The offset of the checksum covering a pseudo-header in the transport header of `proto`.
fn pseudo_checksum_offset(proto: u8, v6: bool) -> Option<usize> {
    match proto {
        proto::TCP => Some(16),
        proto::UDP | proto::UDPLITE | proto::DCCP => Some(6),
        proto::ICMPV6 if v6 => Some(2),
        _ => None,
    }
}

/// Rewrites `field` of `packet` from inside `from` to inside `to`.
fn translate(
    packet: &mut [u8],
    field: Field,
    from: Prefix,
    to: Prefix,
) -> Result<bool, NetmapError> {
    let p = packet::parse(packet).map_err(NetmapError::Malformed)?;
    let old = match field {
        Field::Src => p.flow.src,
        Field::Dst => p.flow.dst,
    };
    let Some(new) = swap_prefix(old, from, to) else {
        return Ok(false);
    };
    if p.routed {
        return Err(NetmapError::RoutingHeader);
    }
    let mut old_b = [0u8; 16];
    let mut new_b = [0u8; 16];
    let (at, len) = match (old, new, field) {
        (IpAddr::V4(o), IpAddr::V4(n), _) => {
            old_b[..4].copy_from_slice(&o.octets());
            new_b[..4].copy_from_slice(&n.octets());
            (if matches!(field, Field::Src) { 12 } else { 16 }, 4)
        }
        (IpAddr::V6(o), IpAddr::V6(n), _) => {
            old_b = o.octets();
            new_b = n.octets();
            (if matches!(field, Field::Src) { 8 } else { 24 }, 16)
        }
        _ => return Ok(false),
    };
    let (old_b, new_b) = (&old_b[..len], &new_b[..len]);
    let v6 = old.is_ipv6();
    if !v6 {
        update_at(packet, 10, old_b, new_b, false);
    }
    if p.kind != Kind::LaterFragment {
        if let Some(off) = pseudo_checksum_offset(p.flow.proto, v6) {
            let udp = p.flow.proto == proto::UDP;
            update_at(packet, p.l4_offset + off, old_b, new_b, udp);
        }
    }
    if let Some(dst) = packet.get_mut(at..at + new_b.len()) {
        dst.copy_from_slice(new_b);
    }
    Ok(true)
}

/// Updates the checksum at `at` for `old` becoming `new`; `udp`: 0 means none and stays, a
/// result of 0 is written 0xffff.
fn update_at(packet: &mut [u8], at: usize, old: &[u8], new: &[u8], udp: bool) {
    let Some(field) = packet.get_mut(at..at + 2) else {
        return;
    };
    let c = u16::from_be_bytes([field[0], field[1]]);
    if udp && c == 0 {
        return;
    }
    let mut n = csum::update(c, old, new);
    if udp && n == 0 {
        n = 0xffff;
    }
    field.copy_from_slice(&n.to_be_bytes());
}

#[cfg(test)]
mod tests;
