//! The inner loop of the Internet checksum (RFC 1071): the sum of a buffer's 32-bit words,
//! compiled for AVX-512 or AVX2 when the CPU has them.
//!
//! The daemon checksums every TCP/UDP segment it makes from a TSO/USO super-packet and every
//! segment it coalesces for GRO, so the loop runs over every byte of bulk traffic. Built for
//! baseline x86-64 (SSE2) it adds 8 bytes per step; the same Rust code compiled with wider
//! vectors adds 32 or 64 bytes per step. Calling code compiled for a CPU feature checked at run
//! time needs `unsafe`.

/// The sum of the native-endian 32-bit words of `data` (its first `data.len() / 4 * 4` bytes;
/// the caller adds the rest). It cannot overflow below 16 GiB.
pub fn sum_words(data: &[u8]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512bw") {
            // SAFETY: the CPU has AVX-512F/BW, the only features `sum_avx512` is compiled for.
            return unsafe { sum_avx512(data) };
        }
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, the only feature `sum_avx2` is compiled for.
            return unsafe { sum_avx2(data) };
        }
    }
    sum_portable(data)
}

#[inline(always)]
fn sum_portable(data: &[u8]) -> u64 {
    data.chunks_exact(4)
        .map(|w| u64::from(u32::from_ne_bytes([w[0], w[1], w[2], w[3]])))
        .sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
fn sum_avx512(data: &[u8]) -> u64 {
    sum_portable(data)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn sum_avx2(data: &[u8]) -> u64 {
    sum_portable(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every path (the one this CPU takes and the portable one) at every length up to 300 and
    /// every start offset mod 64, against a plain loop, over all-0xff words (the largest sums).
    #[test]
    fn equals_a_plain_loop() {
        let mut data = vec![0xffu8; 400];
        for (i, b) in data.iter_mut().enumerate().skip(200) {
            *b = (i * 131 % 251) as u8;
        }
        for start in 0..64 {
            for len in 0..=300 {
                let d = &data[start..start + len];
                let mut want = 0u64;
                for w in d.chunks_exact(4) {
                    want += u64::from(u32::from_ne_bytes(w.try_into().unwrap()));
                }
                assert_eq!(sum_words(d), want, "start {start} len {len}");
                assert_eq!(sum_portable(d), want, "start {start} len {len}");
            }
        }
    }
}
