//! Why a packet was dropped.
//!
//! Everything the network sends that the core does not accept ends as one [`DropReason`]:
//! counted in [`DropCounters`], returned to the caller for logging, never answered and never a
//! panic. Caller mistakes (a buffer too small) are reasons too, named as such.

use core::fmt;

use crate::messages::ParseError;

/// Why a datagram from the network or a packet from the OS was not processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// Too short for a WireGuard header.
    TooShort,
    /// Unknown message type or non-zero reserved bytes.
    UnknownType,
    /// The length does not fit the message type.
    BadLength,
    /// mac1 did not verify.
    InvalidMac1,
    /// Under load and without a valid mac2: a cookie reply was sent instead.
    CookieSent,
    /// Under load, the source exceeded its handshake rate.
    RateLimited,
    /// The initiation's static key is not one of our peers.
    UnknownPeer,
    /// A handshake field did not decrypt.
    HandshakeDecryptFailed,
    /// An initiation replayed an old timestamp.
    StaleTimestamp,
    /// Initiations from one peer came faster than 50 per second.
    InitiationFlood,
    /// A response or cookie reply that matches nothing we sent.
    UnexpectedMessage,
    /// A receiver index that names no session.
    UnknownIndex,
    /// The keypair is older than REJECT_AFTER_TIME or used up.
    ExpiredKeypair,
    /// Transport data did not authenticate.
    DecryptFailed,
    /// A counter already received or too far behind the window.
    Replay,
    /// The decrypted packet is not a valid IPv4 or IPv6 packet.
    InvalidIpPacket,
    /// The decrypted packet's source is not in the sender's allowed IPs.
    NotAllowedSource,
    /// No peer's allowed IPs contain the destination.
    NoRoute,
    /// The peer has no known endpoint.
    NoEndpoint,
    /// The static key could not perform a DH (e.g. the token is gone).
    KeyUnavailable,
    /// A low-order public key was involved.
    LowOrderPoint,
    /// The staging queue of the peer was full.
    QueueFull,
    /// Queued for a session that never came: the handshake gave up after REKEY_ATTEMPT_TIME.
    HandshakeTimeout,
    /// Caller error: the buffer cannot hold the result.
    BufferTooSmall,
}

impl DropReason {
    /// Number of variants (for counter arrays).
    pub const COUNT: usize = 24;

    /// Every variant, in declaration order.
    pub const ALL: [DropReason; Self::COUNT] = [
        DropReason::TooShort,
        DropReason::UnknownType,
        DropReason::BadLength,
        DropReason::InvalidMac1,
        DropReason::CookieSent,
        DropReason::RateLimited,
        DropReason::UnknownPeer,
        DropReason::HandshakeDecryptFailed,
        DropReason::StaleTimestamp,
        DropReason::InitiationFlood,
        DropReason::UnexpectedMessage,
        DropReason::UnknownIndex,
        DropReason::ExpiredKeypair,
        DropReason::DecryptFailed,
        DropReason::Replay,
        DropReason::InvalidIpPacket,
        DropReason::NotAllowedSource,
        DropReason::NoRoute,
        DropReason::NoEndpoint,
        DropReason::KeyUnavailable,
        DropReason::LowOrderPoint,
        DropReason::QueueFull,
        DropReason::HandshakeTimeout,
        DropReason::BufferTooSmall,
    ];

    fn index(self) -> usize {
        // Invariant: ALL lists every variant, so the position exists.
        Self::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }

    /// A short stable name for logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::TooShort => "too_short",
            DropReason::UnknownType => "unknown_type",
            DropReason::BadLength => "bad_length",
            DropReason::InvalidMac1 => "invalid_mac1",
            DropReason::CookieSent => "cookie_sent",
            DropReason::RateLimited => "rate_limited",
            DropReason::UnknownPeer => "unknown_peer",
            DropReason::HandshakeDecryptFailed => "handshake_decrypt_failed",
            DropReason::StaleTimestamp => "stale_timestamp",
            DropReason::InitiationFlood => "initiation_flood",
            DropReason::UnexpectedMessage => "unexpected_message",
            DropReason::UnknownIndex => "unknown_index",
            DropReason::ExpiredKeypair => "expired_keypair",
            DropReason::DecryptFailed => "decrypt_failed",
            DropReason::Replay => "replay",
            DropReason::InvalidIpPacket => "invalid_ip_packet",
            DropReason::NotAllowedSource => "not_allowed_source",
            DropReason::NoRoute => "no_route",
            DropReason::NoEndpoint => "no_endpoint",
            DropReason::KeyUnavailable => "key_unavailable",
            DropReason::LowOrderPoint => "low_order_point",
            DropReason::QueueFull => "queue_full",
            DropReason::HandshakeTimeout => "handshake_timeout",
            DropReason::BufferTooSmall => "buffer_too_small",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(feature = "std")]
impl std::error::Error for DropReason {}

impl From<ParseError> for DropReason {
    fn from(e: ParseError) -> Self {
        match e {
            ParseError::TooShort => DropReason::TooShort,
            ParseError::UnknownType => DropReason::UnknownType,
            ParseError::BadLength => DropReason::BadLength,
        }
    }
}

/// How many packets were dropped for each reason.
#[derive(Debug, Clone, Default)]
pub struct DropCounters([u64; DropReason::COUNT]);

impl DropCounters {
    /// Counts one drop.
    pub fn count(&mut self, r: DropReason) {
        let c = &mut self.0[r.index()];
        *c = c.saturating_add(1);
    }
    /// Drops counted for `r`.
    pub fn get(&self, r: DropReason) -> u64 {
        self.0[r.index()]
    }
    /// All non-zero counters.
    pub fn iter(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL
            .iter()
            .map(|r| (*r, self.get(*r)))
            .filter(|(_, n)| *n > 0)
    }
    /// Sum of all counters.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

/// A configuration call was refused; the device is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The peer's public key is the device's own.
    OwnPublicKey,
    /// The device already holds [`crate::messages::MAX_PEERS`] peers.
    TooManyPeers,
    /// No peer has this id.
    NoSuchPeer,
    /// A prefix length beyond 32 (IPv4) or 128 (IPv6).
    InvalidPrefix,
    /// A rate-limiter capacity of 0 or above `RATELIMITER_MAX_CAPACITY`.
    InvalidCapacity,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConfigError::OwnPublicKey => "peer public key equals the interface's own",
            ConfigError::TooManyPeers => "too many peers",
            ConfigError::NoSuchPeer => "no such peer",
            ConfigError::InvalidPrefix => "invalid prefix length",
            ConfigError::InvalidCapacity => "rate-limiter capacity out of range",
        })
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_cover_every_reason() {
        let mut c = DropCounters::default();
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
            for _ in 0..=i {
                c.count(*r);
            }
        }
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(c.get(*r), i as u64 + 1, "{r}");
        }
        let mut names: alloc::vec::Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), DropReason::COUNT);
    }
}
