//! The Internet checksum (RFC 1071): the full sum, for building and verifying packets, and the
//! incremental update when a field changes (RFC 1624, equation 3).

/// The one's complement sum of `data` as big-endian 16-bit words (an odd last byte padded with
/// zero), added to `sum`, not folded.
pub fn sum(data: &[u8], mut sum: u64) -> u64 {
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        sum += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        sum += u64::from(*last) << 8;
    }
    sum
}

/// `sum` folded to 16 bits with end-around carry.
pub fn fold(mut sum: u64) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The pseudo-header sum of TCP, UDP and ICMPv6 over IPv4 (RFC 768) or IPv6 (RFC 8200 §8.1):
/// addresses, protocol and transport length.
pub fn pseudo_header(src: &[u8], dst: &[u8], proto: u8, len: usize) -> u64 {
    let s = sum(dst, sum(src, 0));
    s + u64::from(proto) + (len as u64 & 0xffff) + ((len as u64) >> 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&data, 0)), 0xddf2);
    }
}
