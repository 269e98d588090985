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

/// The checksum `csum` of data in which the bytes `old` became `new` (same even length):
/// `HC' = ~(~HC + ~m + m')`. Round trip exact unless `csum` is 0xffff, which no sender
/// computes (it needs all-zero data); that one comes back as 0x0000, the same value in one's
/// complement.
pub fn update(csum: u16, old: &[u8], new: &[u8]) -> u16 {
    let mut acc = u64::from(!csum);
    for w in old.chunks_exact(2) {
        acc += u64::from(!u16::from_be_bytes([w[0], w[1]]));
    }
    acc = sum(new, acc);
    !fold(acc)
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

    #[test]
    fn update_matches_recomputation() {
        let mut data =
            *b"\x45\x00\x00\x54\x12\x34\x40\x00\x40\x01\x00\x00\x0a\x00\x00\x01\x0a\x00\x00\x02";
        let c = !fold(sum(&data, 0));
        let old = [10, 0, 0, 2];
        let new = [192, 168, 7, 9];
        data[16..20].copy_from_slice(&new);
        let full = !fold(sum(&data, 0));
        assert_eq!(update(c, &old, &new), full);
        assert_eq!(update(update(c, &old, &new), &new, &old), c);
    }
}
