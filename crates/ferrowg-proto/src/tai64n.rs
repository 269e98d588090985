//! TAI64N timestamps, as carried (encrypted) in handshake initiations.
//!
//! The initiator sends the current time as a TAI64N label (<https://cr.yp.to/libtai/tai64.html>;
//! whitepaper §5.1 and §5.4.2): 12 bytes, the big-endian 64-bit TAI64 label of the second
//! (2^62 + 10 + Unix seconds, the 10 being the TAI − UTC offset of 1970 that WireGuard, like
//! libtai's convention, adds as a constant) followed by the big-endian 32-bit nanoseconds.
//! The responder rejects an initiation whose timestamp is not strictly greater than the
//! greatest it has accepted from that peer, which stops replays of old initiations.
//!
//! To avoid leaking a precise clock reading, the nanoseconds are rounded down to a multiple of
//! 2^24 ns (about 16.8 ms), as the Linux kernel (`tai64n_now` in `noise.c`: the power of two
//! at or below 1 s / `INITIATIONS_PER_SECOND`) and wireguard-go (`whitenerMask`) do. Two
//! initiations within the same 16.8 ms slot thus carry equal timestamps, and the second is
//! rejected. That costs nothing: the kernel accepts at most `INITIATIONS_PER_SECOND` = 50
//! initiations a second from one peer (one per 20 ms), and an initiator sends at most one per
//! `REKEY_TIMEOUT`.

/// Length of an encoded timestamp (the kernel's `NOISE_TIMESTAMP_LEN`).
pub const TAI64N_LEN: usize = 12;

/// The TAI64 label of the Unix epoch: 2^62 + 10 (wireguard-go's `base`).
const TAI64_BASE: u64 = 0x4000_0000_0000_000a;

/// The nanoseconds are rounded down to a multiple of this (2^24 ns): wireguard-go's
/// `whitenerMask` + 1, the kernel's `rounddown_pow_of_two(NSEC_PER_SEC / INITIATIONS_PER_SECOND)`.
const WHITENER_GRANULARITY_NS: u32 = 1 << 24;

/// Nanoseconds in a second.
const NSEC_PER_SEC: u64 = 1_000_000_000;

/// A 12-byte TAI64N timestamp, compared as big-endian bytes.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Tai64N([u8; TAI64N_LEN]);

impl Tai64N {
    /// All zero bytes: earlier than any timestamp [`from_unix_nanos`](Self::from_unix_nanos)
    /// produces. The "greatest timestamp seen" of a peer that has not initiated yet.
    pub const ZERO: Tai64N = Tai64N([0; TAI64N_LEN]);

    /// The timestamp for `unix_nanos` nanoseconds since 1970-01-01 00:00:00 UTC, with the
    /// nanoseconds rounded down to a multiple of 2^24.
    pub fn from_unix_nanos(unix_nanos: u64) -> Self {
        let secs = unix_nanos / NSEC_PER_SEC;
        // The remainder is below 10^9 < 2^32, so the cast is lossless.
        let nanos = (unix_nanos % NSEC_PER_SEC) as u32;
        let nanos = nanos - nanos % WHITENER_GRANULARITY_NS;
        // No overflow: secs < 2^64 / 10^9 < 2^35, far below 2^64 - TAI64_BASE.
        let label = TAI64_BASE + secs;
        let mut bytes = [0u8; TAI64N_LEN];
        bytes[..8].copy_from_slice(&label.to_be_bytes());
        bytes[8..].copy_from_slice(&nanos.to_be_bytes());
        Tai64N(bytes)
    }

    /// A timestamp as received, e.g. decrypted from an initiation. Any 12 bytes are accepted;
    /// they are only ever compared.
    pub const fn from_bytes(bytes: [u8; TAI64N_LEN]) -> Self {
        Tai64N(bytes)
    }

    /// The 12 bytes to encrypt into an initiation.
    pub const fn as_bytes(&self) -> &[u8; TAI64N_LEN] {
        &self.0
    }

    /// Whether `self` is strictly later than `other`, comparing the 12 bytes as one big-endian
    /// number (wireguard-go's `Timestamp.After`; the kernel's `memcmp(...) > 0`).
    pub fn is_after(&self, other: &Tai64N) -> bool {
        // Arrays compare lexicographically, which for bytes is big-endian numeric order.
        self.0 > other.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nanoseconds since the Unix epoch of `secs` seconds and `nanos` nanoseconds.
    fn unix(secs: u64, nanos: u64) -> u64 {
        secs * NSEC_PER_SEC + nanos
    }

    #[test]
    fn unix_epoch() {
        let t = Tai64N::from_unix_nanos(0);
        assert_eq!(t.as_bytes(), &[0x40, 0, 0, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0]);
    }

    #[test]
    fn worked_example_is_whitened() {
        // 1_700_000_000 s = 0x6553_f100; 123_456_789 ns = 0x075b_cd15, whitened to
        // 0x0700_0000 = 7 * 2^24 = 117_440_512 ns.
        let t = Tai64N::from_unix_nanos(unix(1_700_000_000, 123_456_789));
        assert_eq!(
            t.as_bytes(),
            &[0x40, 0, 0, 0, 0x65, 0x53, 0xf1, 0x0a, 0x07, 0, 0, 0]
        );
        assert_eq!(t, Tai64N::from_unix_nanos(unix(1_700_000_000, 117_440_512)));
    }

    #[test]
    fn whitening_boundaries() {
        let nanos_of = |n: u64| {
            let b = *Tai64N::from_unix_nanos(unix(1, n)).as_bytes();
            u32::from_be_bytes([b[8], b[9], b[10], b[11]])
        };
        assert_eq!(nanos_of(0), 0);
        assert_eq!(nanos_of(16_777_215), 0);
        assert_eq!(nanos_of(16_777_216), 0x0100_0000);
        assert_eq!(nanos_of(33_554_431), 0x0100_0000);
        // 999_999_999 = 0x3b9a_c9ff → 59 * 2^24 = 989_855_744.
        assert_eq!(nanos_of(999_999_999), 0x3b00_0000);
        assert_eq!(nanos_of(999_999_999), 989_855_744);
    }

    #[test]
    fn end_of_u64_nanoseconds() {
        // u64::MAX ns = 18_446_744_073 s + 709_551_615 ns; 18_446_744_073 = 0x4_4b82_fa09.
        // 709_551_615 = 0x2a4a_e5ff → 0x2a00_0000.
        let t = Tai64N::from_unix_nanos(u64::MAX);
        assert_eq!(
            t.as_bytes(),
            &[0x40, 0, 0, 0x04, 0x4b, 0x82, 0xfa, 0x13, 0x2a, 0, 0, 0]
        );
    }

    #[test]
    fn zero_and_default() {
        assert_eq!(Tai64N::default(), Tai64N::ZERO);
        assert_eq!(Tai64N::ZERO.as_bytes(), &[0; 12]);
        assert!(Tai64N::from_unix_nanos(0).is_after(&Tai64N::ZERO));
        assert!(!Tai64N::ZERO.is_after(&Tai64N::ZERO));
    }

    #[test]
    fn bytes_round_trip() {
        let bytes = [0x40, 0, 0, 0, 0x65, 0x53, 0xf1, 0x0a, 0x07, 0, 0, 0];
        let t = Tai64N::from_bytes(bytes);
        assert_eq!(t.as_bytes(), &bytes);
        assert_eq!(t, Tai64N::from_unix_nanos(unix(1_700_000_000, 123_456_789)));
    }

    #[test]
    fn is_after_is_strict() {
        let a = Tai64N::from_unix_nanos(unix(100, 0));
        let b = Tai64N::from_unix_nanos(unix(100, 20_000_000));
        assert!(b.is_after(&a));
        assert!(!a.is_after(&b));
        assert!(!a.is_after(&a));
    }

    #[test]
    fn same_whitening_slot_is_not_after() {
        let a = Tai64N::from_unix_nanos(unix(100, 16_777_216));
        let b = Tai64N::from_unix_nanos(unix(100, 33_554_431));
        assert_eq!(a, b);
        assert!(!b.is_after(&a));
    }

    #[test]
    fn seconds_dominate_nanoseconds() {
        let late_in_second = Tai64N::from_unix_nanos(unix(100, 999_999_999));
        let next_second = Tai64N::from_unix_nanos(unix(101, 0));
        assert!(next_second.is_after(&late_in_second));
        assert!(!late_in_second.is_after(&next_second));
    }

    /// Comparison is on the whole big-endian number, not on any single byte or field.
    #[test]
    fn compares_as_big_endian_bytes() {
        let lo = Tai64N::from_bytes([0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff]);
        let hi = Tai64N::from_bytes([0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0]);
        assert!(hi.is_after(&lo));
        assert!(!lo.is_after(&hi));
        let hi_last = Tai64N::from_bytes([0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xfe]);
        assert!(lo.is_after(&hi_last));
    }

    #[test]
    fn monotonic_in_time_across_slots() {
        let mut prev = Tai64N::ZERO;
        for step in 0..2_000u64 {
            let t = Tai64N::from_unix_nanos(1_600_000_000 * NSEC_PER_SEC + step * 16_777_216);
            assert!(t.is_after(&prev), "step {step}");
            prev = t;
        }
    }
}
