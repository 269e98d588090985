//! The virtio-net header that precedes every packet on a TUN device opened with `IFF_VNET_HDR`
//! (`struct virtio_net_hdr`, include/uapi/linux/virtio_net.h), and the offload switches of
//! `TUNSETOFFLOAD` (include/uapi/linux/if_tun.h).
//!
//! With offloads on, the kernel hands the TUN reader TCP/UDP "super-packets" of up to 64 KiB that
//! it would otherwise have segmented, described by this header (`gso_type`, `gso_size`), and
//! accepts the same from the writer. That lets a userspace WireGuard move many MTU-sized packets
//! per system call. Splitting and coalescing them is the data path's job; this module only
//! parses and builds the header.
//!
//! The header is in the host's byte order: that is what the TUN driver uses unless
//! `TUNSETVNETLE`/`TUNSETVNETBE` says otherwise, and this crate never sets those.

/// Size of the virtio-net header on a TUN device (`sizeof(struct virtio_net_hdr)`, the default
/// `TUNSETVNETHDRSZ`).
pub const VIRTIO_NET_HDR_LEN: usize = 10;

/// `flags`: the checksum at `csum_start + csum_offset` is partial and must be completed.
pub const VIRTIO_NET_HDR_F_NEEDS_CSUM: u8 = 1;
/// `flags`: the checksum was already verified.
pub const VIRTIO_NET_HDR_F_DATA_VALID: u8 = 2;

/// `gso_type`: an ordinary packet.
pub const VIRTIO_NET_HDR_GSO_NONE: u8 = 0;
/// `gso_type`: an IPv4 TCP super-packet to be cut into `gso_size` segments.
pub const VIRTIO_NET_HDR_GSO_TCPV4: u8 = 1;
/// `gso_type`: an IPv6 TCP super-packet.
pub const VIRTIO_NET_HDR_GSO_TCPV6: u8 = 4;
/// `gso_type`: a UDP super-packet (USO; IPv4 or IPv6, by the IP header).
pub const VIRTIO_NET_HDR_GSO_UDP_L4: u8 = 5;
/// `gso_type` bit: the TCP segments carry ECN (CWR must be handled).
pub const VIRTIO_NET_HDR_GSO_ECN: u8 = 0x80;

/// A parsed virtio-net header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VirtioNetHdr {
    /// `VIRTIO_NET_HDR_F_*` bits.
    pub flags: u8,
    /// `VIRTIO_NET_HDR_GSO_*`.
    pub gso_type: u8,
    /// Length of the headers (IP + transport) in front of the payload to segment.
    pub hdr_len: u16,
    /// Payload bytes per segment.
    pub gso_size: u16,
    /// Where checksumming starts (the transport header), with `NEEDS_CSUM`.
    pub csum_start: u16,
    /// Offset of the checksum field from `csum_start`, with `NEEDS_CSUM`.
    pub csum_offset: u16,
}

impl VirtioNetHdr {
    /// Reads a header from the first [`VIRTIO_NET_HDR_LEN`] bytes of `buf`; `None` if shorter.
    pub fn parse(buf: &[u8]) -> Option<Self> {
        let b: &[u8; VIRTIO_NET_HDR_LEN] = buf.get(..VIRTIO_NET_HDR_LEN)?.try_into().ok()?;
        let u16_at = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
        Some(VirtioNetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u16_at(2),
            gso_size: u16_at(4),
            csum_start: u16_at(6),
            csum_offset: u16_at(8),
        })
    }

    /// The header's wire form, to put in front of a packet written to the TUN device.
    pub fn to_bytes(&self) -> [u8; VIRTIO_NET_HDR_LEN] {
        let mut b = [0u8; VIRTIO_NET_HDR_LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_ne_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_ne_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_ne_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_ne_bytes());
        b
    }

    /// True if the packet is a GSO super-packet (to be split before encryption).
    pub fn is_gso(&self) -> bool {
        self.gso_type & !VIRTIO_NET_HDR_GSO_ECN != VIRTIO_NET_HDR_GSO_NONE
    }

    /// True if the transport checksum is partial and must be completed.
    pub fn needs_csum(&self) -> bool {
        self.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM != 0
    }
}

/// Which offloads a TUN device with a virtio-net header offers the kernel (`TUNSETOFFLOAD`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Offload {
    /// Accept packets with a partial checksum (`TUN_F_CSUM`). Implied by `tso` and `uso`.
    pub checksum: bool,
    /// TCP segmentation offload for IPv4 and IPv6 (`TUN_F_TSO4 | TUN_F_TSO6`).
    pub tso: bool,
    /// UDP segmentation offload for IPv4 and IPv6 (`TUN_F_USO4 | TUN_F_USO6`, Linux 6.2+).
    pub uso: bool,
}

impl Offload {
    /// Everything: checksum, TSO and USO — what wireguard-go asks for.
    pub const ALL: Offload = Offload {
        checksum: true,
        tso: true,
        uso: true,
    };

    /// The `TUN_F_*` bits for `TUNSETOFFLOAD`. The kernel ignores TSO/USO without `TUN_F_CSUM`,
    /// so either of them sets it.
    pub(crate) fn tun_flags(self) -> libc::c_ulong {
        let mut flags = 0;
        if self.checksum || self.tso || self.uso {
            flags |= libc::TUN_F_CSUM;
        }
        if self.tso {
            flags |= libc::TUN_F_TSO4 | libc::TUN_F_TSO6;
        }
        if self.uso {
            flags |= libc::TUN_F_USO4 | libc::TUN_F_USO6;
        }
        libc::c_ulong::from(flags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let hdr = VirtioNetHdr {
            flags: VIRTIO_NET_HDR_F_NEEDS_CSUM,
            gso_type: VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN,
            hdr_len: 52,
            gso_size: 1448,
            csum_start: 20,
            csum_offset: 16,
        };
        let bytes = hdr.to_bytes();
        assert_eq!(VirtioNetHdr::parse(&bytes), Some(hdr));
        assert!(hdr.is_gso() && hdr.needs_csum());
        assert_eq!(VirtioNetHdr::parse(&bytes[..9]), None);
        let plain = VirtioNetHdr::default();
        assert!(!plain.is_gso() && !plain.needs_csum());
        assert_eq!(plain.to_bytes(), [0; VIRTIO_NET_HDR_LEN]);
    }

    #[test]
    fn offload_flags() {
        assert_eq!(Offload::default().tun_flags(), 0);
        let tso = Offload {
            tso: true,
            ..Offload::default()
        };
        let want = libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6;
        assert_eq!(tso.tun_flags(), libc::c_ulong::from(want));
        assert_eq!(Offload::ALL.tun_flags(), 0x01 | 0x02 | 0x04 | 0x20 | 0x40);
    }
}
