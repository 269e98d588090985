//! Conversion between `std::net::SocketAddr` and the kernel's `sockaddr_in`/`sockaddr_in6`.
//!
//! A dual-stack socket sees IPv4 peers as v4-mapped IPv6 addresses (`::ffff:192.0.2.1`) and must
//! be given IPv4 destinations in that form. The daemon should only ever see plain IPv4 addresses
//! for IPv4 peers (an endpoint is compared and printed by `wg show`), so the mapping is undone on
//! receive and done on send here.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// Room for either address family; what `recvmmsg` writes a source address into.
#[derive(Clone, Copy)]
#[repr(C)]
pub(crate) union RawSockAddr {
    v4: libc::sockaddr_in,
    v6: libc::sockaddr_in6,
}

impl RawSockAddr {
    /// An all-zero address (family `AF_UNSPEC`), to be filled by the kernel.
    pub(crate) fn zeroed() -> Self {
        // SAFETY: both members are plain C structs of integers and byte arrays, for which all-zero
        // bytes are a valid value.
        unsafe { std::mem::zeroed() }
    }

    /// The size to pass as `msg_namelen` when the kernel fills the address in.
    pub(crate) const CAPACITY: libc::socklen_t = size_of::<RawSockAddr>() as libc::socklen_t;

    /// Encodes `addr` for a socket of family `family` (`AF_INET` or `AF_INET6`), mapping IPv4 to
    /// v4-mapped IPv6 on an IPv6 socket and v4-mapped IPv6 back to IPv4 on an IPv4 socket.
    /// `None` if the socket cannot reach `addr` (IPv6 on an IPv4 socket).
    pub(crate) fn encode(addr: SocketAddr, family: libc::c_int) -> Option<(Self, libc::socklen_t)> {
        if family == libc::AF_INET6 {
            let v6 = match addr {
                SocketAddr::V6(v6) => v6,
                SocketAddr::V4(v4) => SocketAddrV6::new(v4.ip().to_ipv6_mapped(), v4.port(), 0, 0),
            };
            let raw = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: v6.port().to_be(),
                sin6_flowinfo: v6.flowinfo().to_be(),
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.ip().octets(),
                },
                sin6_scope_id: v6.scope_id(),
            };
            Some((
                RawSockAddr { v6: raw },
                size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            ))
        } else {
            let v4 = match canonical(addr) {
                SocketAddr::V4(v4) => v4,
                SocketAddr::V6(_) => return None,
            };
            let raw = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*v4.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            Some((
                RawSockAddr { v4: raw },
                size_of::<libc::sockaddr_in>() as libc::socklen_t,
            ))
        }
    }

    /// Decodes an address the kernel wrote (`len` bytes valid), undoing v4 mapping.
    /// `None` for an unknown family or a short length.
    pub(crate) fn decode(&self, len: libc::socklen_t) -> Option<SocketAddr> {
        let len = len as usize;
        // SAFETY: both members start with the `sa_family_t` family field (the common initial
        // sequence of every sockaddr), and the union is always fully initialised (zeroed or
        // written by the kernel), so reading the family through either member is defined.
        let family = libc::c_int::from(unsafe { self.v4.sin_family });
        if family == libc::AF_INET && len >= size_of::<libc::sockaddr_in>() {
            // SAFETY: the kernel said the address is AF_INET and wrote at least its size.
            let sin = unsafe { self.v4 };
            let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(sin.sin_port),
            )))
        } else if family == libc::AF_INET6 && len >= size_of::<libc::sockaddr_in6>() {
            // SAFETY: the kernel said the address is AF_INET6 and wrote at least its size.
            let sin6 = unsafe { self.v6 };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            let port = u16::from_be(sin6.sin6_port);
            let v6 = SocketAddrV6::new(
                ip,
                port,
                u32::from_be(sin6.sin6_flowinfo),
                sin6.sin6_scope_id,
            );
            Some(canonical(SocketAddr::V6(v6)))
        } else {
            None
        }
    }

    /// A pointer to hand to the kernel as `msg_name`.
    pub(crate) fn as_mut_ptr(&mut self) -> *mut libc::c_void {
        (self as *mut Self).cast()
    }
}

/// `addr` with a v4-mapped IPv6 address (`::ffff:a.b.c.d`) turned into plain IPv4; other
/// addresses unchanged.
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::V4(SocketAddrV4::new(v4, v6.port())),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(addr: SocketAddr, family: libc::c_int) -> Option<SocketAddr> {
        let (raw, len) = RawSockAddr::encode(addr, family)?;
        raw.decode(len)
    }

    #[test]
    fn v4_mapped_addresses_become_plain_v4() {
        let mapped: SocketAddr = "[::ffff:192.0.2.7]:51820".parse().unwrap();
        assert_eq!(canonical(mapped), "192.0.2.7:51820".parse().unwrap());
        let v6: SocketAddr = "[2001:db8::1]:1".parse().unwrap();
        assert_eq!(canonical(v6), v6);
        // ::7 is IPv4-compatible, not v4-mapped: it stays IPv6.
        let compat: SocketAddr = "[::7]:1".parse().unwrap();
        assert_eq!(canonical(compat), compat);
    }

    #[test]
    fn encode_decode_for_each_socket_family() {
        let v4: SocketAddr = "198.51.100.2:9".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::2]:65535".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:198.51.100.2]:9".parse().unwrap();
        // On a dual-stack socket v4 goes out v4-mapped and comes back as plain v4.
        assert_eq!(round_trip(v4, libc::AF_INET6), Some(v4));
        assert_eq!(round_trip(v6, libc::AF_INET6), Some(v6));
        // On an IPv4 socket a v4-mapped destination is usable, a real IPv6 one is not.
        assert_eq!(round_trip(v4, libc::AF_INET), Some(v4));
        assert_eq!(round_trip(mapped, libc::AF_INET), Some(v4));
        assert!(RawSockAddr::encode(v6, libc::AF_INET).is_none());
    }

    #[test]
    fn ports_are_network_order() {
        let (raw, _) = RawSockAddr::encode("1.2.3.4:258".parse().unwrap(), libc::AF_INET).unwrap();
        // SAFETY: encode() for AF_INET wrote the v4 member.
        let sin = unsafe { raw.v4 };
        assert_eq!(sin.sin_port.to_ne_bytes(), [1, 2]);
        assert_eq!(sin.sin_addr.s_addr.to_ne_bytes(), [1, 2, 3, 4]);
    }

    #[test]
    fn unknown_family_or_short_length_decodes_to_none() {
        assert_eq!(RawSockAddr::zeroed().decode(RawSockAddr::CAPACITY), None);
        let (raw, _) = RawSockAddr::encode("[::1]:5".parse().unwrap(), libc::AF_INET6).unwrap();
        assert_eq!(raw.decode(8), None);
    }
}
