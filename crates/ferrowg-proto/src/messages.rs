//! Wire formats and protocol constants (whitepaper §5.4, §6).
//!
//! Every message WireGuard puts on the wire is laid out here, with its exact size, together with
//! every protocol constant, so that a reader can hold this file against the whitepaper. Parsing is
//! "parse, don't validate": [`Message::parse`] checks type and length once and returns a typed view
//! whose accessors cannot fail.

use core::time::Duration;

/// Message type of a handshake initiation.
pub const MESSAGE_HANDSHAKE_INITIATION: u8 = 1;
/// Message type of a handshake response.
pub const MESSAGE_HANDSHAKE_RESPONSE: u8 = 2;
/// Message type of a cookie reply.
pub const MESSAGE_HANDSHAKE_COOKIE: u8 = 3;
/// Message type of transport data.
pub const MESSAGE_TRANSPORT_DATA: u8 = 4;

/// Size of a handshake initiation.
pub const HANDSHAKE_INITIATION_SIZE: usize = 148;
/// Size of a handshake response.
pub const HANDSHAKE_RESPONSE_SIZE: usize = 92;
/// Size of a cookie reply.
pub const COOKIE_REPLY_SIZE: usize = 64;
/// Header of a transport data message: type, reserved, receiver_index, counter.
pub const TRANSPORT_HEADER_SIZE: usize = 16;
/// Poly1305 tag size.
pub const AEAD_TAG_SIZE: usize = 16;
/// Smallest transport data message: a keepalive (header + tag of an empty payload).
pub const TRANSPORT_MIN_SIZE: usize = TRANSPORT_HEADER_SIZE + AEAD_TAG_SIZE;
/// Transport overhead: header plus tag (padding comes on top).
pub const TRANSPORT_OVERHEAD: usize = TRANSPORT_HEADER_SIZE + AEAD_TAG_SIZE;
/// Plaintext is zero-padded to a multiple of this.
pub const MESSAGE_PADDING_MULTIPLE: usize = 16;
/// Largest datagram the core accepts or produces (a 64 KiB IP packet plus overhead).
pub const MAX_DATAGRAM_SIZE: usize = 65535 + TRANSPORT_OVERHEAD;

/// Size of an X25519 key.
pub const KEY_LEN: usize = 32;
/// Size of a MAC (keyed BLAKE2s-128).
pub const MAC_LEN: usize = 16;
/// Size of a TAI64N timestamp.
pub const TIMESTAMP_LEN: usize = 12;
/// Size of a cookie.
pub const COOKIE_LEN: usize = 16;
/// Size of an XChaCha20 nonce.
pub const COOKIE_NONCE_LEN: usize = 24;

/// Noise protocol name: `Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s`.
pub const CONSTRUCTION: &[u8] = b"Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
/// Protocol identifier mixed into the handshake hash.
pub const IDENTIFIER: &[u8] = b"WireGuard v1 zx2c4 Jason@zx2c4.com";
/// Label of the mac1 key.
pub const LABEL_MAC1: &[u8] = b"mac1----";
/// Label of the cookie key.
pub const LABEL_COOKIE: &[u8] = b"cookie--";

/// Send a new handshake after this many messages on one keypair.
pub const REKEY_AFTER_MESSAGES: u64 = 1 << 60;
/// Never use a keypair for more than this many messages.
pub const REJECT_AFTER_MESSAGES: u64 = u64::MAX - (1 << 13);
/// Initiate a new handshake when the current keypair is this old and we send.
pub const REKEY_AFTER_TIME: Duration = Duration::from_secs(120);
/// Never use a keypair older than this.
pub const REJECT_AFTER_TIME: Duration = Duration::from_secs(180);
/// Give up retrying a handshake after this long.
pub const REKEY_ATTEMPT_TIME: Duration = Duration::from_secs(90);
/// Retry an unanswered handshake initiation after this long (plus jitter).
pub const REKEY_TIMEOUT: Duration = Duration::from_secs(5);
/// Upper bound of the random jitter added to each retry.
pub const REKEY_TIMEOUT_JITTER_MAX: Duration = Duration::from_millis(334);
/// Passive keepalive delay.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// Lifetime of a cookie and rotation period of the cookie secret.
pub const COOKIE_REFRESH_TIME: Duration = Duration::from_secs(120);
/// Minimum interval between two accepted initiations from one peer (kernel: 1 s / 50).
pub const INITIATIONS_PER_SECOND_INTERVAL: Duration = Duration::from_millis(20);
/// Packets kept per peer while no session exists (the kernel's MAX_STAGED_PACKETS).
pub const MAX_STAGED_PACKETS: usize = 128;
/// Largest number of peers a device holds.
pub const MAX_PEERS: usize = 1 << 20;

/// Byte offset of mac1 in a message of `len` bytes (mac1 and mac2 are its last 32 bytes).
pub const fn mac1_offset(len: usize) -> usize {
    len - 2 * MAC_LEN
}

/// Byte offset of mac2 in a message of `len` bytes.
pub const fn mac2_offset(len: usize) -> usize {
    len - MAC_LEN
}

fn le32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn arr<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[at..at + N]);
    a
}

/// A datagram classified by type, with its length checked.
#[derive(Debug, Clone, Copy)]
pub enum Message<'a> {
    /// Type 1.
    Initiation(Initiation<'a>),
    /// Type 2.
    Response(Response<'a>),
    /// Type 3.
    CookieReply(CookieReply<'a>),
    /// Type 4.
    Transport(Transport<'a>),
}

/// Why a datagram is not a WireGuard message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Empty or shorter than the 4-byte header.
    TooShort,
    /// The type byte is not 1–4 or the reserved bytes are not zero.
    UnknownType,
    /// The length does not match the type.
    BadLength,
}

impl<'a> Message<'a> {
    /// Classifies `datagram`. Total: every input gives a message or a reason.
    pub fn parse(datagram: &'a [u8]) -> Result<Message<'a>, ParseError> {
        if datagram.len() < 4 {
            return Err(ParseError::TooShort);
        }
        if datagram[1..4] != [0, 0, 0] {
            return Err(ParseError::UnknownType);
        }
        let len = datagram.len();
        match datagram[0] {
            MESSAGE_HANDSHAKE_INITIATION if len == HANDSHAKE_INITIATION_SIZE => {
                Ok(Message::Initiation(Initiation(datagram)))
            }
            MESSAGE_HANDSHAKE_RESPONSE if len == HANDSHAKE_RESPONSE_SIZE => {
                Ok(Message::Response(Response(datagram)))
            }
            MESSAGE_HANDSHAKE_COOKIE if len == COOKIE_REPLY_SIZE => {
                Ok(Message::CookieReply(CookieReply(datagram)))
            }
            MESSAGE_TRANSPORT_DATA if len >= TRANSPORT_MIN_SIZE => {
                Ok(Message::Transport(Transport(datagram)))
            }
            1..=4 => Err(ParseError::BadLength),
            _ => Err(ParseError::UnknownType),
        }
    }
}

/// A handshake initiation (148 bytes, length checked).
#[derive(Debug, Clone, Copy)]
pub struct Initiation<'a>(&'a [u8]);

impl<'a> Initiation<'a> {
    /// The whole message.
    pub fn bytes(&self) -> &'a [u8] {
        self.0
    }
    /// `sender_index`.
    pub fn sender_index(&self) -> u32 {
        le32(self.0, 4)
    }
    /// `unencrypted_ephemeral`.
    pub fn unencrypted_ephemeral(&self) -> [u8; 32] {
        arr(self.0, 8)
    }
    /// `encrypted_static` (32 + 16 bytes).
    pub fn encrypted_static(&self) -> [u8; 48] {
        arr(self.0, 40)
    }
    /// `encrypted_timestamp` (12 + 16 bytes).
    pub fn encrypted_timestamp(&self) -> [u8; 28] {
        arr(self.0, 88)
    }
}

/// A handshake response (92 bytes, length checked).
#[derive(Debug, Clone, Copy)]
pub struct Response<'a>(&'a [u8]);

impl<'a> Response<'a> {
    /// The whole message.
    pub fn bytes(&self) -> &'a [u8] {
        self.0
    }
    /// `sender_index`.
    pub fn sender_index(&self) -> u32 {
        le32(self.0, 4)
    }
    /// `receiver_index`.
    pub fn receiver_index(&self) -> u32 {
        le32(self.0, 8)
    }
    /// `unencrypted_ephemeral`.
    pub fn unencrypted_ephemeral(&self) -> [u8; 32] {
        arr(self.0, 12)
    }
    /// `encrypted_nothing` (the 16-byte tag).
    pub fn encrypted_nothing(&self) -> [u8; 16] {
        arr(self.0, 44)
    }
}

/// A cookie reply (64 bytes, length checked).
#[derive(Debug, Clone, Copy)]
pub struct CookieReply<'a>(&'a [u8]);

impl<'a> CookieReply<'a> {
    /// `receiver_index`.
    pub fn receiver_index(&self) -> u32 {
        le32(self.0, 4)
    }
    /// `nonce`.
    pub fn nonce(&self) -> [u8; 24] {
        arr(self.0, 8)
    }
    /// `encrypted_cookie` (16 + 16 bytes).
    pub fn encrypted_cookie(&self) -> [u8; 32] {
        arr(self.0, 32)
    }
}

/// A transport data message (at least 32 bytes, length checked).
#[derive(Debug, Clone, Copy)]
pub struct Transport<'a>(&'a [u8]);

impl<'a> Transport<'a> {
    /// `receiver_index`.
    pub fn receiver_index(&self) -> u32 {
        le32(self.0, 4)
    }
    /// `counter`.
    pub fn counter(&self) -> u64 {
        u64::from_le_bytes(arr(self.0, 8))
    }
    /// Length of the encrypted packet including its tag.
    pub fn ciphertext_len(&self) -> usize {
        self.0.len() - TRANSPORT_HEADER_SIZE
    }
}

/// Writes the 4-byte header (type + three reserved zeros).
pub fn write_header(out: &mut [u8], message_type: u8) {
    out[0] = message_type;
    out[1..4].fill(0);
}

/// Writes a transport header into `out[..16]`.
pub fn write_transport_header(out: &mut [u8], receiver_index: u32, counter: u64) {
    write_header(out, MESSAGE_TRANSPORT_DATA);
    out[4..8].copy_from_slice(&receiver_index.to_le_bytes());
    out[8..16].copy_from_slice(&counter.to_le_bytes());
}

/// Plaintext length after zero padding to 16 bytes, capped at `mtu` (whitepaper §5.4.6).
pub fn padded_len(len: usize, mtu: usize) -> usize {
    let padded = len.div_ceil(MESSAGE_PADDING_MULTIPLE) * MESSAGE_PADDING_MULTIPLE;
    if len > mtu {
        len
    } else {
        padded.min(mtu).max(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_checks_type_and_length() {
        assert_eq!(Message::parse(&[]).unwrap_err(), ParseError::TooShort);
        assert_eq!(
            Message::parse(&[1, 0, 0]).unwrap_err(),
            ParseError::TooShort
        );
        assert!(matches!(
            Message::parse(&[1u8; 148]),
            Err(ParseError::UnknownType)
        ));
        let mut m = [0u8; 148];
        m[0] = 1;
        assert!(matches!(Message::parse(&m), Ok(Message::Initiation(_))));
        assert_eq!(
            Message::parse(&m[..147]).unwrap_err(),
            ParseError::BadLength
        );
        m[0] = 2;
        assert_eq!(Message::parse(&m).unwrap_err(), ParseError::BadLength);
        assert!(matches!(Message::parse(&m[..92]), Ok(Message::Response(_))));
        m[0] = 3;
        assert!(matches!(
            Message::parse(&m[..64]),
            Ok(Message::CookieReply(_))
        ));
        m[0] = 4;
        assert!(matches!(
            Message::parse(&m[..32]),
            Ok(Message::Transport(_))
        ));
        assert_eq!(Message::parse(&m[..31]).unwrap_err(), ParseError::BadLength);
        m[0] = 5;
        assert_eq!(Message::parse(&m).unwrap_err(), ParseError::UnknownType);
    }

    #[test]
    fn fields_are_little_endian() {
        let mut m = [0u8; 92];
        m[0] = 2;
        m[4..8].copy_from_slice(&0x11223344u32.to_le_bytes());
        m[8..12].copy_from_slice(&0xaabbccddu32.to_le_bytes());
        let Ok(Message::Response(r)) = Message::parse(&m) else {
            panic!("response")
        };
        assert_eq!(r.sender_index(), 0x11223344);
        assert_eq!(r.receiver_index(), 0xaabbccdd);
        let mut t = [0u8; 40];
        write_transport_header(&mut t, 7, 0x0102030405060708);
        assert_eq!(&t[..16], &[4, 0, 0, 0, 7, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1]);
    }

    #[test]
    fn padding() {
        assert_eq!(padded_len(0, 1420), 0);
        assert_eq!(padded_len(1, 1420), 16);
        assert_eq!(padded_len(16, 1420), 16);
        assert_eq!(padded_len(1419, 1420), 1420);
        assert_eq!(padded_len(1420, 1420), 1420);
        assert_eq!(padded_len(1500, 1420), 1500);
    }
}
