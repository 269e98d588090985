//! Points in time as the store keeps them: whole seconds since the Unix epoch. Every operation
//! takes the current time from its caller (the hub reads the clock once per request), so tests
//! can move time without a global clock.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixTime(pub i64);

impl UnixTime {
    /// The system clock now (0 if the clock is before 1970, `i64::MAX` past year 292e9).
    pub fn now() -> Self {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Self(i64::try_from(secs).unwrap_or(i64::MAX))
    }

    /// This time plus `secs` seconds, saturating.
    pub fn plus(self, secs: i64) -> Self {
        Self(self.0.saturating_add(secs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plus_saturates() {
        assert_eq!(UnixTime(5).plus(3), UnixTime(8));
        assert_eq!(UnixTime(i64::MAX).plus(1), UnixTime(i64::MAX));
        assert!(UnixTime::now() > UnixTime(1_600_000_000));
    }
}
