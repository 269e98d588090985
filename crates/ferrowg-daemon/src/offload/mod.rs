//! TUN offloads in userspace: cutting the kernel's TSO/USO super-packets into MTU-sized IP
//! packets before encryption ([`gso`]), and gluing decrypted TCP/UDP packets of one flow back
//! into super-packets before they are written to the TUN device ([`gro`]).
//!
//! With `IFF_VNET_HDR` and `TUNSETOFFLOAD`, every TUN read starts with a `virtio_net_hdr`
//! ([`VirtioNetHdr`]) that says whether the packet is a super-packet (`gso_type`, `gso_size`)
//! and whether its transport checksum is only partial (`NEEDS_CSUM`: the field holds the
//! pseudo-header sum, the rest is left to "hardware"); writes may carry the same. This is what
//! the kernel's `skb_gso_segment` and `dev_gro_receive` do on a real NIC, and what
//! wireguard-go's `tun/offload_linux.go` does for its TUN device; the rules for which packets
//! may be coalesced follow Linux's `tcp_gro_receive` as wireguard-go applies them.
//!
//! Everything here is pure and allocation-free per packet: byte slices in, byte slices out (the
//! coalescer refers to packets where they lie and hands out the pieces of each frame).
//! Checksums are the Internet checksum of RFC 1071 with the pseudo-headers of RFC 9293 §3.1
//! (TCP), RFC 768 (UDP) and RFC 8200 §8.1 (IPv6).
//!
//! [`VirtioNetHdr`]: ferrowg_sys::VirtioNetHdr

pub mod gro;
pub mod gso;

pub use gro::Coalescer;
pub use gso::{complete_checksum, GsoSplit};

/// A packet (or datagram) where it lies in the caller's buffers: `bufs[buf][start..start + len]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketRef {
    /// Which buffer.
    pub buf: usize,
    /// Where it starts in that buffer.
    pub start: usize,
    /// Its length.
    pub len: usize,
}

impl PacketRef {
    /// The packet's bytes, if it lies within `bufs` (the caller's promise; checked anyway).
    pub fn get<'a, B: AsRef<[u8]>>(&self, bufs: &'a [B]) -> Option<&'a [u8]> {
        bufs.get(self.buf)?
            .as_ref()
            .get(self.start..self.start.checked_add(self.len)?)
    }

    /// The packet's bytes, writable, if it lies within `bufs`.
    pub(crate) fn get_mut<'a, B: AsMut<[u8]>>(&self, bufs: &'a mut [B]) -> Option<&'a mut [u8]> {
        bufs.get_mut(self.buf)?
            .as_mut()
            .get_mut(self.start..self.start.checked_add(self.len)?)
    }
}

/// `IPPROTO_TCP`.
pub const PROTO_TCP: u8 = 6;
/// `IPPROTO_UDP`.
pub const PROTO_UDP: u8 = 17;

/// Offset of the TCP sequence number in the TCP header.
const TCP_SEQ: usize = 4;
/// Offset of the acknowledgment number.
const TCP_ACK: usize = 8;
/// Offset of the data offset (header length in 32-bit words, high nibble).
const TCP_DATA_OFFSET: usize = 12;
/// Offset of the flags byte (CWR ECE URG ACK PSH RST SYN FIN).
const TCP_FLAGS: usize = 13;
/// Offset of the TCP checksum (`csum_offset` for TCP).
const TCP_CSUM: usize = 16;
/// Offset of the UDP length field.
const UDP_LEN: usize = 4;
/// Offset of the UDP checksum (`csum_offset` for UDP).
const UDP_CSUM: usize = 6;
/// UDP header length.
const UDP_HDR_LEN: usize = 8;
/// IPv6 fixed header length.
const IPV6_HDR_LEN: usize = 40;

/// TCP flag bits.
const TCP_FIN: u8 = 0x01;
const TCP_PSH: u8 = 0x08;
const TCP_ACK_FLAG: u8 = 0x10;
const TCP_CWR: u8 = 0x80;

/// Why a TUN packet could not be split (the packet is dropped and counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OffloadError {
    /// The virtio-net header names a GSO type this module does not know.
    #[error("unknown GSO type {0:#x}")]
    UnknownGsoType(u8),
    /// The IP version does not match the GSO type, or is neither 4 nor 6.
    #[error("IP version does not match the GSO type")]
    IpVersion,
    /// The packet is shorter than its headers say.
    #[error("packet too short for its headers")]
    Truncated,
    /// `csum_start`/`csum_offset` point outside the packet or to the wrong protocol.
    #[error("bad checksum offsets in the virtio-net header")]
    ChecksumOffsets,
    /// `gso_size` is 0.
    #[error("GSO size 0")]
    GsoSize,
    /// The output buffer cannot hold one segment.
    #[error("output buffer too small for a segment")]
    BufferTooSmall,
}

/// Adds `data` to an unfolded one's-complement sum (RFC 1071) kept in network byte order. A
/// trailing odd byte counts as the high byte of a 16-bit word.
///
/// The bytes are summed as native-order 32-bit words into 64 bits, which cannot overflow below
/// 16 GiB and which vectorises ([`ferrowg_simd::csum::sum_words`], with AVX-512 or AVX2 where the
/// CPU has them); the one's-complement sum does not depend on byte order (RFC 1071 §2 B), so
/// the folded native sum is byte-swapped into network order at the end.
pub fn checksum_add(data: &[u8], initial: u64) -> u64 {
    let mut sum = ferrowg_simd::csum::sum_words(data);
    let rest = &data[data.len() / 4 * 4..];
    let mut tail = [0u8; 4];
    tail[..rest.len()].copy_from_slice(rest);
    sum += u64::from(u32::from_ne_bytes(tail));
    let (s, carry) = initial.overflowing_add(u64::from(u16::from_be(checksum_fold(sum))));
    s + u64::from(carry)
}

/// Folds an unfolded sum to 16 bits (not inverted).
pub fn checksum_fold(mut acc: u64) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    // The loop leaves at most 16 bits.
    acc as u16
}

/// The finished checksum of `data` over `initial`: folded and inverted.
pub fn checksum(data: &[u8], initial: u64) -> u16 {
    !checksum_fold(checksum_add(data, initial))
}

/// The unfolded pseudo-header sum of an IP packet for `proto` with `l4_len` transport bytes;
/// `packet` starts with its IP header (source and destination are read from it).
fn pseudo_header(packet: &[u8], v6: bool, proto: u8, l4_len: usize) -> u64 {
    let addrs = if v6 { &packet[8..40] } else { &packet[12..20] };
    checksum_add(addrs, u64::from(proto) + l4_len as u64)
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

/// Recomputes the IPv4 header checksum of `hdr` (the whole IPv4 header, options included).
fn set_ipv4_checksum(hdr: &mut [u8]) {
    put16(hdr, 10, 0);
    let c = checksum(hdr, 0);
    put16(hdr, 10, c);
}

#[cfg(test)]
pub(crate) mod testpkt {
    //! Hand-built IPv4/IPv6 TCP/UDP packets with correct checksums, a verifier, and a seeded
    //! generator for the randomised tests, for the unit tests of `gso` and `gro`.

    use rand_chacha::rand_core::{RngCore, SeedableRng};

    use super::*;

    /// A deterministic generator (the same cases on every run).
    pub struct Rng(rand_chacha::ChaCha8Rng);

    impl Rng {
        pub fn new(seed: u64) -> Rng {
            Rng(rand_chacha::ChaCha8Rng::seed_from_u64(seed))
        }

        /// A number below `n` (> 0).
        pub fn below(&mut self, n: usize) -> usize {
            (self.0.next_u64() % n as u64) as usize
        }

        pub fn next(&mut self) -> u64 {
            self.0.next_u64()
        }
    }

    /// What to build.
    #[derive(Clone, Debug)]
    pub struct Spec {
        pub v6: bool,
        pub proto: u8,
        pub seq: u32,
        pub ack: u32,
        pub flags: u8,
        pub tcp_options: Vec<u8>,
        pub ip_id: u16,
        pub ttl: u8,
        pub tos: u8,
        pub src_port: u16,
        pub dst_port: u16,
    }

    impl Spec {
        pub fn tcp(v6: bool) -> Spec {
            Spec {
                v6,
                proto: PROTO_TCP,
                seq: 1000,
                ack: 77,
                flags: TCP_ACK_FLAG,
                tcp_options: Vec::new(),
                ip_id: 0x1234,
                ttl: 64,
                tos: 0,
                src_port: 40000,
                dst_port: 5201,
            }
        }

        pub fn udp(v6: bool) -> Spec {
            Spec {
                proto: PROTO_UDP,
                ..Spec::tcp(v6)
            }
        }

        pub fn l4_hdr_len(&self) -> usize {
            if self.proto == PROTO_TCP {
                20 + self.tcp_options.len()
            } else {
                UDP_HDR_LEN
            }
        }

        pub fn ip_hdr_len(&self) -> usize {
            if self.v6 {
                IPV6_HDR_LEN
            } else {
                20
            }
        }

        /// A complete packet with `payload`, checksums correct.
        pub fn build(&self, payload: &[u8]) -> Vec<u8> {
            let ip = self.ip_hdr_len();
            let l4 = self.l4_hdr_len();
            let total = ip + l4 + payload.len();
            let mut p = vec![0u8; total];
            if self.v6 {
                p[0] = 0x60 | (self.tos >> 4);
                p[1] = self.tos << 4;
                put16(&mut p, 4, (total - ip) as u16);
                p[6] = self.proto;
                p[7] = self.ttl;
                p[8..24].copy_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
                p[24..40].copy_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
            } else {
                p[0] = 0x45;
                p[1] = self.tos;
                put16(&mut p, 2, total as u16);
                put16(&mut p, 4, self.ip_id);
                p[6] = 0x40; // DF
                p[8] = self.ttl;
                p[9] = self.proto;
                p[12..16].copy_from_slice(&[10, 0, 0, 1]);
                p[16..20].copy_from_slice(&[10, 0, 0, 2]);
                set_ipv4_checksum(&mut p[..20]);
            }
            put16(&mut p, ip, self.src_port);
            put16(&mut p, ip + 2, self.dst_port);
            if self.proto == PROTO_TCP {
                put32(&mut p, ip + TCP_SEQ, self.seq);
                put32(&mut p, ip + TCP_ACK, self.ack);
                p[ip + TCP_DATA_OFFSET] = ((l4 / 4) as u8) << 4;
                p[ip + TCP_FLAGS] = self.flags;
                put16(&mut p, ip + 14, 65000);
                p[ip + 20..ip + l4].copy_from_slice(&self.tcp_options);
            } else {
                put16(&mut p, ip + UDP_LEN, (total - ip) as u16);
            }
            p[ip + l4..].copy_from_slice(payload);
            let at = ip
                + if self.proto == PROTO_TCP {
                    TCP_CSUM
                } else {
                    UDP_CSUM
                };
            let sum = pseudo_header(&p, self.v6, self.proto, total - ip);
            let c = checksum(&p[ip..], sum);
            put16(&mut p, at, if c == 0 { 0xffff } else { c });
            p
        }
    }

    /// A payload of `len` bytes that differs from position to position.
    pub fn payload(len: usize, salt: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(salt))
            .collect()
    }

    /// Checks lengths and every checksum of an IP packet as a receiving kernel would.
    pub fn verify(p: &[u8]) {
        let v6 = p[0] >> 4 == 6;
        let (ip, proto, l4_len) = if v6 {
            assert_eq!(
                usize::from(be16(p, 4)) + IPV6_HDR_LEN,
                p.len(),
                "IPv6 length"
            );
            (IPV6_HDR_LEN, p[6], p.len() - IPV6_HDR_LEN)
        } else {
            let ihl = usize::from(p[0] & 0x0f) * 4;
            assert_eq!(usize::from(be16(p, 2)), p.len(), "IPv4 total length");
            assert_eq!(checksum(&p[..ihl], 0), 0, "IPv4 header checksum");
            (ihl, p[9], p.len() - ihl)
        };
        if proto == PROTO_UDP {
            assert_eq!(usize::from(be16(p, ip + UDP_LEN)), l4_len, "UDP length");
        }
        let sum = pseudo_header(p, v6, proto, l4_len);
        assert_eq!(checksum(&p[ip..], sum), 0, "transport checksum");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (folded).
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum_fold(checksum_add(&data, 0)), 0xddf2);
        // Same with the data split oddly and in other lengths.
        assert_eq!(checksum_fold(checksum_add(&data[..7], 0)), 0xddf2 - 0xf7);
        assert_eq!(checksum_fold(checksum_add(&data[..3], 0)), 0xf201);
    }

    #[test]
    fn sum_matches_a_naive_16_bit_sum() {
        // Every length up to 200 at every start offset modulo 8 (the sum reads 4-byte words),
        // for several fillings, including all-0xff (sums that fold to 0xffff).
        let bufs = [
            testpkt::payload(208, 0xa5),
            testpkt::payload(208, 0x3c),
            vec![0xff; 208],
        ];
        for (seed, buf) in bufs.iter().enumerate() {
            for off in 0..8 {
                for len in 0..200 {
                    let data = &buf[off..off + len];
                    let mut naive: u64 = 0x1_2345;
                    for w in data.chunks(2) {
                        naive += u64::from(w[0]) << 8 | u64::from(*w.get(1).unwrap_or(&0));
                    }
                    assert_eq!(
                        checksum_fold(checksum_add(data, 0x1_2345)),
                        checksum_fold(naive),
                        "buffer {seed} offset {off} len {len}"
                    );
                }
            }
        }
        // A chained sum near the top of u64 keeps its end-around carry.
        assert_eq!(
            checksum_fold(checksum_add(&[0xff, 0xff], u64::MAX - 1)),
            checksum_fold(checksum_fold(u64::MAX - 1) as u64 + 0xffff)
        );
    }

    #[test]
    fn built_packets_verify() {
        for v6 in [false, true] {
            testpkt::verify(&testpkt::Spec::tcp(v6).build(&testpkt::payload(999, 1)));
            testpkt::verify(&testpkt::Spec::udp(v6).build(&testpkt::payload(1, 2)));
        }
    }
}
