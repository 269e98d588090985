//! The flow key of an IPv4 or IPv6 packet, read by a total parser: any bytes give a [`Packet`]
//! or a [`ParseError`], never a panic, and the work is bounded by [`MAX_EXT_HEADERS`].
//!
//! What is read: the addresses, the transport protocol (after IPv6 extension headers:
//! hop-by-hop, routing, fragment, destination options, AH), the ports of TCP, UDP, UDP-Lite,
//! SCTP and DCCP, the TCP flags, the identifier of ICMP/ICMPv6 echo messages, and for ICMP
//! errors the flow of the packet they quote. Fragments (RFC 791, RFC 8200 §4.5): a first
//! fragment is read like a whole packet and must hold its transport header (RFC 7112); a later
//! fragment has no transport header and is [`Kind::LaterFragment`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IP protocol numbers (IANA "Assigned Internet Protocol Numbers") the parser knows.
pub mod proto {
    /// IPv6 hop-by-hop options (RFC 8200 §4.3).
    pub const HOPOPT: u8 = 0;
    /// ICMP for IPv4 (RFC 792).
    pub const ICMP: u8 = 1;
    /// TCP (RFC 9293).
    pub const TCP: u8 = 6;
    /// UDP (RFC 768).
    pub const UDP: u8 = 17;
    /// DCCP (RFC 4340).
    pub const DCCP: u8 = 33;
    /// IPv6 routing header (RFC 8200 §4.4).
    pub const ROUTING: u8 = 43;
    /// IPv6 fragment header (RFC 8200 §4.5).
    pub const FRAGMENT: u8 = 44;
    /// Authentication header (RFC 4302).
    pub const AH: u8 = 51;
    /// ICMPv6 (RFC 4443).
    pub const ICMPV6: u8 = 58;
    /// IPv6 destination options (RFC 8200 §4.6).
    pub const DSTOPTS: u8 = 60;
    /// SCTP (RFC 9260).
    pub const SCTP: u8 = 132;
    /// UDP-Lite (RFC 3828).
    pub const UDPLITE: u8 = 136;
}

/// The most IPv6 extension headers walked before the packet is refused.
pub const MAX_EXT_HEADERS: usize = 8;

/// TCP flag FIN.
pub const TCP_FIN: u8 = 0x01;
/// TCP flag SYN.
pub const TCP_SYN: u8 = 0x02;
/// TCP flag RST.
pub const TCP_RST: u8 = 0x04;
/// TCP flag ACK.
pub const TCP_ACK: u8 = 0x10;

/// Why a packet was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// Shorter than a header it announces, or than its own length field.
    Truncated,
    /// The IP version is neither 4 nor 6.
    Version,
    /// An IPv4 header length below 20 bytes or beyond the total length.
    HeaderLength,
    /// More than [`MAX_EXT_HEADERS`] IPv6 extension headers.
    TooManyExtensionHeaders,
    /// Two IPv6 fragment headers, or hop-by-hop options not first.
    ExtensionHeaderOrder,
    /// A fragment too short or too early to hold its transport header where it must
    /// (RFC 1858, RFC 7112), or a TCP fragment at offset 8 bytes.
    TinyFragment,
    /// An ICMP error whose quoted packet is unreadable or of the other IP version.
    Quoted,
}

/// One side's address and port of a flow, and the protocol: what the flow table keys on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    /// The IP protocol number (IPv6: the last next-header value).
    pub proto: u8,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port; the identifier for ICMP echo messages; 0 for protocols without ports.
    pub src_port: u16,
    /// Destination port; the identifier for ICMP echo messages; 0 for protocols without ports.
    pub dst_port: u16,
}

/// What the transport header says, as far as the filter cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// TCP with its flags byte ([`TCP_SYN`], [`TCP_ACK`], [`TCP_FIN`], [`TCP_RST`]).
    Tcp {
        /// Byte 13 of the TCP header.
        flags: u8,
    },
    /// UDP, UDP-Lite, SCTP or DCCP: ports and nothing else.
    Ports,
    /// An ICMP or ICMPv6 echo request; the identifier is in both ports of the flow.
    EchoRequest,
    /// An ICMP or ICMPv6 echo reply; the identifier is in both ports of the flow.
    EchoReply,
    /// An ICMP error (destination unreachable, packet too big, time exceeded, parameter
    /// problem, source quench) about the packet `quoted`, as that packet was sent.
    IcmpError {
        /// The flow of the quoted packet.
        quoted: Flow,
    },
    /// Any other ICMP message.
    IcmpOther,
    /// A protocol without ports, or ICMP inside an ICMP error's quote.
    Opaque,
    /// A fragment other than the first: no transport header.
    LaterFragment,
}

/// Fragmentation of a packet that is a fragment (an IPv6 atomic fragment is not one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment {
    /// The identification (16 bits in IPv4, 32 in IPv6).
    pub id: u32,
    /// The offset in units of 8 bytes.
    pub offset: u16,
    /// Whether more fragments follow.
    pub more: bool,
}

/// A parsed packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    /// Protocol, addresses and ports.
    pub flow: Flow,
    /// The transport header's meaning.
    pub kind: Kind,
    /// Set if the packet is a fragment.
    pub fragment: Option<Fragment>,
    /// Where the transport header starts.
    pub l4_offset: usize,
    /// Where the packet ends (IPv4 total length, IPv6 40 + payload length): bytes beyond are
    /// link padding.
    pub end: usize,
    /// An IPv6 routing header with segments left: the destination field is not the final one.
    pub routed: bool,
}

/// The IP header's part of a [`Packet`].
struct Ip {
    proto: u8,
    src: IpAddr,
    dst: IpAddr,
    fragment: Option<Fragment>,
    l4_offset: usize,
    end: usize,
    routed: bool,
}

/// Reads `buf` as an IP packet.
pub fn parse(buf: &[u8]) -> Result<Packet, ParseError> {
    let ip = ip_header(buf, false)?;
    let l4 = buf.get(ip.l4_offset..ip.end).ok_or(ParseError::Truncated)?;
    let (kind, src_port, dst_port) = transport(&ip, l4, false)?;
    Ok(Packet {
        flow: Flow {
            proto: ip.proto,
            src: ip.src,
            dst: ip.dst,
            src_port,
            dst_port,
        },
        kind,
        fragment: ip.fragment,
        l4_offset: ip.l4_offset,
        end: ip.end,
        routed: ip.routed,
    })
}

/// The byte at `i`.
fn u8_at(b: &[u8], i: usize) -> Result<u8, ParseError> {
    b.get(i).copied().ok_or(ParseError::Truncated)
}

/// The big-endian u16 at `i`.
fn u16_at(b: &[u8], i: usize) -> Result<u16, ParseError> {
    Ok(u16::from_be_bytes([u8_at(b, i)?, u8_at(b, i + 1)?]))
}

/// The `N` bytes at `i`.
fn array_at<const N: usize>(b: &[u8], i: usize) -> Result<[u8; N], ParseError> {
    b.get(i..i + N)
        .and_then(|s| s.try_into().ok())
        .ok_or(ParseError::Truncated)
}

/// Reads the IP header (and IPv6 extension headers). A `quoted` packet (inside an ICMP error)
/// may be cut short of its length fields.
fn ip_header(buf: &[u8], quoted: bool) -> Result<Ip, ParseError> {
    match u8_at(buf, 0)? >> 4 {
        4 => ipv4_header(buf, quoted),
        6 => ipv6_header(buf, quoted),
        _ => Err(ParseError::Version),
    }
}

/// The end of a packet whose length fields say `end`.
fn packet_end(buf: &[u8], end: usize, quoted: bool) -> Result<usize, ParseError> {
    match end <= buf.len() {
        true => Ok(end),
        false if quoted => Ok(buf.len()),
        false => Err(ParseError::Truncated),
    }
}

/// RFC 791 §3.1.
fn ipv4_header(buf: &[u8], quoted: bool) -> Result<Ip, ParseError> {
    let h: [u8; 20] = array_at(buf, 0)?;
    let ihl = usize::from(h[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
    if ihl < 20 || total < ihl {
        return Err(ParseError::HeaderLength);
    }
    let end = packet_end(buf, total, quoted)?;
    if ihl > end {
        return Err(ParseError::Truncated);
    }
    let flags = u16::from_be_bytes([h[6], h[7]]);
    let (offset, more) = (flags & 0x1fff, flags & 0x2000 != 0);
    let fragment = (offset != 0 || more).then_some(Fragment {
        id: u32::from(u16::from_be_bytes([h[4], h[5]])),
        offset,
        more,
    });
    Ok(Ip {
        proto: h[9],
        src: IpAddr::V4(Ipv4Addr::new(h[12], h[13], h[14], h[15])),
        dst: IpAddr::V4(Ipv4Addr::new(h[16], h[17], h[18], h[19])),
        fragment,
        l4_offset: ihl,
        end,
        routed: false,
    })
}

/// RFC 8200 §3 and §4: the fixed header, then at most [`MAX_EXT_HEADERS`] extension headers.
fn ipv6_header(buf: &[u8], quoted: bool) -> Result<Ip, ParseError> {
    let h: [u8; 40] = array_at(buf, 0)?;
    let end = packet_end(
        buf,
        40 + usize::from(u16::from_be_bytes([h[4], h[5]])),
        quoted,
    )?;
    let src: [u8; 16] = array_at(&h, 8)?;
    let dst: [u8; 16] = array_at(&h, 24)?;
    let mut ip = Ip {
        proto: h[6],
        src: IpAddr::V6(Ipv6Addr::from(src)),
        dst: IpAddr::V6(Ipv6Addr::from(dst)),
        fragment: None,
        l4_offset: 40,
        end,
        routed: false,
    };
    let mut seen_fragment = false;
    for walked in 0..=MAX_EXT_HEADERS {
        let at = ip.l4_offset;
        let len = match ip.proto {
            proto::HOPOPT | proto::ROUTING | proto::DSTOPTS | proto::AH | proto::FRAGMENT
                if walked == MAX_EXT_HEADERS =>
            {
                return Err(ParseError::TooManyExtensionHeaders)
            }
            proto::HOPOPT if at != 40 => return Err(ParseError::ExtensionHeaderOrder),
            proto::HOPOPT | proto::DSTOPTS => (usize::from(u8_at(buf, at + 1)?) + 1) * 8,
            proto::ROUTING => {
                ip.routed |= u8_at(buf, at + 3)? != 0;
                (usize::from(u8_at(buf, at + 1)?) + 1) * 8
            }
            proto::AH => (usize::from(u8_at(buf, at + 1)?) + 2) * 4,
            proto::FRAGMENT if seen_fragment => return Err(ParseError::ExtensionHeaderOrder),
            proto::FRAGMENT => {
                seen_fragment = true;
                let f: [u8; 8] = array_at(buf, at)?;
                let word = u16::from_be_bytes([f[2], f[3]]);
                let (offset, more) = (word >> 3, word & 1 != 0);
                if offset != 0 || more {
                    ip.fragment = Some(Fragment {
                        id: u32::from_be_bytes([f[4], f[5], f[6], f[7]]),
                        offset,
                        more,
                    });
                }
                8
            }
            _ => return Ok(ip),
        };
        ip.proto = u8_at(buf, at)?;
        ip.l4_offset = at + len;
        if ip.l4_offset > end {
            return Err(ParseError::Truncated);
        }
        if ip.fragment.is_some_and(|f| f.offset != 0) {
            // A later fragment: what follows is payload, not headers.
            return Ok(ip);
        }
    }
    Err(ParseError::TooManyExtensionHeaders)
}

/// Reads the transport header `l4`: the kind and the two ports. A quoted transport header
/// needs only its first bytes (ICMPv4 errors quote 8).
fn transport(ip: &Ip, l4: &[u8], quoted: bool) -> Result<(Kind, u16, u16), ParseError> {
    if ip.fragment.is_some_and(|f| f.offset != 0) {
        if ip.proto == proto::TCP && ip.fragment.is_some_and(|f| f.offset == 1) {
            return Err(ParseError::TinyFragment);
        }
        return Ok((Kind::LaterFragment, 0, 0));
    }
    let short = |e: ParseError| match (e, ip.fragment.is_some()) {
        (ParseError::Truncated, true) => ParseError::TinyFragment,
        (e, _) => e,
    };
    let need = |n: usize| match l4.len() >= n {
        true => Ok(()),
        false => Err(short(ParseError::Truncated)),
    };
    let ports = || Ok((u16_at(l4, 0)?, u16_at(l4, 2)?));
    let icmp = matches!(
        (ip.proto, ip.src),
        (proto::ICMP, IpAddr::V4(_)) | (proto::ICMPV6, IpAddr::V6(_))
    );
    match ip.proto {
        proto::TCP => {
            need(if quoted { 4 } else { 20 })?;
            let (s, d) = ports()?;
            Ok((
                Kind::Tcp {
                    flags: *l4.get(13).unwrap_or(&0),
                },
                s,
                d,
            ))
        }
        proto::UDP | proto::UDPLITE | proto::SCTP | proto::DCCP => {
            need(match (quoted, ip.proto) {
                (true, _) => 4,
                (false, proto::UDP | proto::UDPLITE) => 8,
                (false, _) => 12,
            })?;
            let (s, d) = ports()?;
            Ok((Kind::Ports, s, d))
        }
        _ if icmp => icmp_message(ip, l4, quoted).map_err(short),
        _ => Ok((Kind::Opaque, 0, 0)),
    }
}

/// Reads an ICMP (RFC 792) or ICMPv6 (RFC 4443) message.
fn icmp_message(ip: &Ip, l4: &[u8], quoted: bool) -> Result<(Kind, u16, u16), ParseError> {
    let v4 = ip.src.is_ipv4();
    let typ = u8_at(l4, 0)?;
    let (request, reply, error) = match v4 {
        true => (typ == 8, typ == 0, matches!(typ, 3 | 4 | 11 | 12)),
        false => (typ == 128, typ == 129, matches!(typ, 1..=4)),
    };
    if request || reply {
        let id = u16_at(l4, 4)?;
        let kind = if request {
            Kind::EchoRequest
        } else {
            Kind::EchoReply
        };
        return Ok((kind, id, id));
    }
    if quoted {
        return Ok((Kind::Opaque, 0, 0));
    }
    if !error {
        u16_at(l4, 2)?;
        return Ok((Kind::IcmpOther, 0, 0));
    }
    let inner = l4.get(8..).ok_or(ParseError::Truncated)?;
    let q = ip_header(inner, true).map_err(|_| ParseError::Quoted)?;
    if q.src.is_ipv4() != v4 {
        return Err(ParseError::Quoted);
    }
    let q_l4 = inner.get(q.l4_offset..q.end).ok_or(ParseError::Quoted)?;
    let (_, src_port, dst_port) = transport(&q, q_l4, true).map_err(|_| ParseError::Quoted)?;
    let quoted = Flow {
        proto: q.proto,
        src: q.src,
        dst: q.dst,
        src_port,
        dst_port,
    };
    Ok((Kind::IcmpError { quoted }, 0, 0))
}

#[cfg(test)]
mod tests;
