//! WireGuard keys: the 32-byte values of X25519 private and public keys and of preshared keys,
//! their two text encodings and their generation.
//!
//! - Base64 (RFC 4648 with padding, always 44 characters ending in `=`) is what wg(8) prints and
//!   what configuration files hold. Decoding is canonical: a final character whose two low bits
//!   are not zero is rejected, like wg's `key_from_base64`.
//! - Hex (64 characters) is what the cross-platform userspace interface (UAPI) carries. We write
//!   lowercase and accept either case, like wg and wireguard-go.
//!
//! Both decoders run in constant time over valid input, as wg's `encoding.c` does, because they
//! are fed private keys. Only when the input turns out to be malformed is it scanned a second
//! time, in variable time, to say exactly what is wrong with it.
//!
//! Secret keys ([`PrivateKey`], [`PresharedKey`]) are zeroed on drop, compared in constant time
//! and never printed by `Debug`.

use core::fmt;
use core::hash::{Hash, Hasher};

use rand_core::{CryptoRng, RngCore};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Length of every WireGuard key in bytes.
pub const KEY_LEN: usize = 32;
/// Length of a key in base64, padding included.
pub const KEY_LEN_BASE64: usize = 44;
/// Length of a key in hex.
pub const KEY_LEN_HEX: usize = 64;

/// Why a key could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The base64 text does not have exactly [`KEY_LEN_BASE64`] characters.
    #[error("expected {KEY_LEN_BASE64} base64 characters, found {len}")]
    Base64Length {
        /// Length of the input in bytes.
        len: usize,
    },
    /// The 44th character is not the `=` padding.
    #[error("the last character must be '='")]
    Base64Padding,
    /// A character outside the base64 alphabet, at a zero-based position.
    #[error("invalid base64 character at position {pos}")]
    Base64Char {
        /// Zero-based byte offset of the first bad character.
        pos: usize,
    },
    /// The 43rd character carries bits that a 32-byte key cannot have (non-canonical encoding).
    #[error("the last base64 character before '=' has non-zero padding bits")]
    Base64NonCanonical,
    /// The hex text does not have exactly [`KEY_LEN_HEX`] characters.
    #[error("expected {KEY_LEN_HEX} hex characters, found {len}")]
    HexLength {
        /// Length of the input in bytes.
        len: usize,
    },
    /// A character that is not a hex digit, at a zero-based position.
    #[error("invalid hex character at position {pos}")]
    HexChar {
        /// Zero-based byte offset of the first bad character.
        pos: usize,
    },
}

/// Why `wg pubkey`-style input was refused; the messages are wg's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyInputError {
    /// Fewer than 44 characters, or not a valid base64 key.
    #[error("Key is not the correct length or format")]
    Format,
    /// Something other than white space after the key.
    #[error("Trailing characters found after key")]
    Trailing,
}

/// 32 raw key bytes, zeroed when dropped. Equality is constant-time and `Debug` hides the bytes,
/// because a `Key` may hold a secret; [`PublicKey`] is the type to use for public values.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Key([u8; KEY_LEN]);

impl Key {
    /// Wraps raw bytes.
    pub const fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The all-zero key, which UAPI and wg(8) use to mean "no key".
    pub const fn zero() -> Self {
        Self([0; KEY_LEN])
    }

    /// Whether every byte is zero, in constant time.
    pub fn is_zero(&self) -> bool {
        bool::from(self.0.ct_eq(&[0u8; KEY_LEN]))
    }
}

impl ConstantTimeEq for Key {
    fn ct_eq(&self, other: &Self) -> subtle::Choice {
        self.0.ct_eq(&other.0)
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        bool::from(self.ct_eq(other))
    }
}

impl Eq for Key {}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

/// An X25519 private key (the interface's static secret). Zeroed on drop; `Debug` prints nothing
/// of it.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct PrivateKey(Key);

impl PrivateKey {
    /// The underlying key.
    pub const fn as_key(&self) -> &Key {
        &self.0
    }

    /// A new random private key from `rng`, clamped exactly like `wg genkey` (RFC 7748 §5:
    /// clear the three low bits of the first byte, clear the top bit and set bit 254).
    pub fn generate_from<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        Self(draw_from(rng, true))
    }

    /// A new random private key from the operating system's generator (getrandom(2)).
    pub fn generate() -> Result<Self, rand_core::Error> {
        draw_key(true, |b| rand_core::OsRng.try_fill_bytes(b)).map(Self)
    }

    /// The key with RFC 7748 clamping applied, as the kernel and wireguard-go store a private
    /// key they are given (so `get` reports it clamped).
    pub fn clamped(&self) -> Self {
        let mut bytes = *self.as_bytes();
        clamp(&mut bytes);
        let key = Self::from_bytes(bytes);
        bytes.zeroize();
        key
    }

    /// The matching public key: X25519(clamp(self), 9), like `wg pubkey`.
    pub fn public_key(&self) -> PublicKey {
        let secret = x25519_dalek::StaticSecret::from(*self.as_bytes());
        PublicKey(x25519_dalek::PublicKey::from(&secret).to_bytes())
    }

    /// Reads a key the way `wg pubkey` reads standard input: exactly 44 base64 characters
    /// first, then nothing but white space or NUL bytes.
    pub fn from_base64_input(input: &[u8]) -> Result<Self, KeyInputError> {
        if input.len() < KEY_LEN_BASE64 {
            return Err(KeyInputError::Format);
        }
        let (text, rest) = input.split_at(KEY_LEN_BASE64);
        if !rest
            .iter()
            .all(|&c| c == 0 || matches!(c, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r'))
        {
            return Err(KeyInputError::Trailing);
        }
        decode_base64(text)
            .map(Self::from_bytes)
            .map_err(|_| KeyInputError::Format)
    }
}

/// A symmetric preshared key mixed into the handshake (the `psk` token of Noise_IKpsk2). Zeroed on
/// drop; `Debug` prints nothing of it.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct PresharedKey(Key);

impl PresharedKey {
    /// 32 random bytes from `rng`, unclamped, like `wg genpsk`.
    pub fn generate_from<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        Self(draw_from(rng, false))
    }

    /// 32 random bytes from the operating system's generator.
    pub fn generate() -> Result<Self, rand_core::Error> {
        draw_key(false, |b| rand_core::OsRng.try_fill_bytes(b)).map(Self)
    }
}

/// An X25519 public key: a peer's identity. Public, so it is `Copy`, hashable, ordered by its
/// bytes (wg's `syncconf` sorts peers with `memcmp`) and printed in base64 by `Debug`.
#[derive(Clone, Copy, PartialOrd, Ord)]
pub struct PublicKey([u8; KEY_LEN]);

impl PublicKey {
    /// Wraps raw bytes.
    pub const fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        bool::from(self.0.ct_eq(&other.0))
    }
}

impl Eq for PublicKey {}

impl Hash for PublicKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_base64())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

/// What the two secret key types share: raw bytes in and out, the all-zero "no key" value, and
/// a `Debug` that prints nothing of the key.
macro_rules! secret_key {
    ($($ty:ident),+) => {$(
        impl $ty {
            /// Wraps raw bytes as they are (a private key is not clamped here: X25519 clamps
            /// when it uses the key).
            pub const fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
                Self(Key::from_bytes(bytes))
            }

            /// The raw bytes.
            pub const fn as_bytes(&self) -> &[u8; KEY_LEN] {
                self.0.as_bytes()
            }

            /// Whether this is the all-zero "no key" value.
            pub fn is_zero(&self) -> bool {
                self.0.is_zero()
            }

            /// The key, or `None` for the all-zero value, which every wg surface (files,
            /// `wg set`, the UAPI) reads as "no key".
            pub fn nonzero(self) -> Option<Self> {
                (!self.is_zero()).then_some(self)
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($ty), "(<redacted>)"))
            }
        }
    )+};
}

secret_key!(PrivateKey, PresharedKey);

/// The two text forms of a key type that is made from and viewed as `[u8; KEY_LEN]`: base64
/// (wg(8), configuration files) and hex (UAPI), both through the constant-time codecs below.
macro_rules! text_forms {
    ($($ty:ident),+) => {$(
        impl $ty {
            /// Decodes the 44-character base64 form used by wg(8) and configuration files.
            pub fn from_base64(text: &str) -> Result<Self, KeyError> {
                decode_base64(text.as_bytes()).map(Self::from_bytes)
            }

            /// Encodes as 44 characters of base64, like `wg genkey` and `wg show`.
            pub fn to_base64(&self) -> String {
                encode_base64(self.as_bytes())
            }

            /// Decodes the 64-character hex form used on the UAPI socket (either case).
            pub fn from_hex(text: &str) -> Result<Self, KeyError> {
                decode_hex(text.as_bytes()).map(Self::from_bytes)
            }

            /// Encodes as 64 lowercase hex characters, as UAPI expects.
            pub fn to_hex(&self) -> String {
                encode_hex(self.as_bytes())
            }
        }
    )+};
}

text_forms!(Key, PrivateKey, PresharedKey, PublicKey);

/// A key of the 32 bytes `fill` draws, clamped (RFC 7748 §5) when `clamped`; the bytes on the
/// stack are zeroed whether or not `fill` succeeds.
fn draw_key<E>(
    clamped: bool,
    fill: impl FnOnce(&mut [u8; KEY_LEN]) -> Result<(), E>,
) -> Result<Key, E> {
    let mut bytes = [0u8; KEY_LEN];
    let filled = fill(&mut bytes);
    if clamped {
        clamp(&mut bytes);
    }
    let key = Key::from_bytes(bytes);
    bytes.zeroize();
    filled.map(|()| key)
}

/// [`draw_key`] from a generator that cannot fail.
fn draw_from<R: RngCore + CryptoRng>(rng: &mut R, clamped: bool) -> Key {
    let drawn = draw_key(clamped, |b| {
        rng.fill_bytes(b);
        Ok::<(), core::convert::Infallible>(())
    });
    match drawn {
        Ok(key) => key,
        Err(never) => match never {},
    }
}

/// RFC 7748 §5 clamping, as `curve25519_clamp_secret` in wg.
fn clamp(bytes: &mut [u8; KEY_LEN]) {
    bytes[0] &= 248;
    bytes[31] = (bytes[31] & 127) | 64;
}

// ---- base64 -----------------------------------------------------------------------------------

/// Maps a 6-bit value to its base64 character without a table lookup indexed by the secret.
fn b64_char(v: u8) -> u8 {
    let v = i16::from(v);
    // Offsets between the contiguous ranges A-Z, a-z, 0-9, '+', '/' selected with masks
    // computed from sign bits (the arithmetic of wg's encode_base64).
    let c = v + i16::from(b'A') + (((25 - v) >> 8) & 6)
        - (((51 - v) >> 8) & 75)
        - (((61 - v) >> 8) & 15)
        + (((62 - v) >> 8) & 3);
    // Invariant: v < 64, so c is one of the 64 alphabet characters.
    c as u8
}

/// Decodes one base64 character to 0..=63, or -1 when it is not in the alphabet; branch-free.
fn b64_value(c: u8) -> i32 {
    let c = i32::from(c);
    let in_range = |lo: i32, hi: i32| ((lo - 1 - c) & (c - (hi + 1))) >> 8;
    -1 + (in_range(i32::from(b'A'), i32::from(b'Z')) & (c - 64))
        + (in_range(i32::from(b'a'), i32::from(b'z')) & (c - 70))
        + (in_range(i32::from(b'0'), i32::from(b'9')) & (c + 5))
        + (in_range(i32::from(b'+'), i32::from(b'+')) & 63)
        + (in_range(i32::from(b'/'), i32::from(b'/')) & 64)
}

fn encode_base64(key: &[u8; KEY_LEN]) -> String {
    let mut out = String::with_capacity(KEY_LEN_BASE64);
    let mut push_group = |a: u8, b: u8, c: u8| {
        for v in [
            a >> 2,
            ((a << 4) | (b >> 4)) & 63,
            ((b << 2) | (c >> 6)) & 63,
            c & 63,
        ] {
            out.push(char::from(b64_char(v)));
        }
    };
    for chunk in key.chunks_exact(3) {
        push_group(chunk[0], chunk[1], chunk[2]);
    }
    push_group(key[30], key[31], 0);
    out.pop();
    out.push('=');
    out
}

fn decode_base64(text: &[u8]) -> Result<[u8; KEY_LEN], KeyError> {
    if text.len() != KEY_LEN_BASE64 {
        return Err(KeyError::Base64Length { len: text.len() });
    }
    if text[KEY_LEN_BASE64 - 1] != b'=' {
        return Err(KeyError::Base64Padding);
    }
    let mut key = [0u8; KEY_LEN];
    let mut bad: i32 = 0;
    let mut group = |chars: [u8; 4]| -> i32 {
        let mut val: i32 = 0;
        for (i, &c) in chars.iter().enumerate() {
            let v = b64_value(c);
            bad |= v;
            val |= (v & 63) << (18 - 6 * i);
        }
        val
    };
    for i in 0..KEY_LEN / 3 {
        let val = group([
            text[i * 4],
            text[i * 4 + 1],
            text[i * 4 + 2],
            text[i * 4 + 3],
        ]);
        key[i * 3] = (val >> 16) as u8;
        key[i * 3 + 1] = (val >> 8) as u8;
        key[i * 3 + 2] = val as u8;
    }
    let val = group([text[40], text[41], text[42], b'A']);
    key[30] = (val >> 16) as u8;
    key[31] = (val >> 8) as u8;
    let non_canonical = val & 0xff;
    if ((bad >> 31) | non_canonical) == 0 {
        return Ok(key);
    }
    key.zeroize();
    // Malformed input: now say where, in variable time.
    if let Some(pos) = text[..KEY_LEN_BASE64 - 1]
        .iter()
        .position(|&c| b64_value(c) < 0)
    {
        return Err(KeyError::Base64Char { pos });
    }
    Err(KeyError::Base64NonCanonical)
}

// ---- hex --------------------------------------------------------------------------------------

/// A nibble as a lowercase hex digit, branch-free (wg's key_to_hex arithmetic).
fn hex_char(n: u8) -> u8 {
    let n = u32::from(n);
    // 87 + n is 'a'..'f' for n >= 10; for n < 10 subtract 39 to land on '0'..'9'.
    87u32
        .wrapping_add(n)
        .wrapping_add((n.wrapping_sub(10) >> 8) & !38) as u8
}

/// Decodes a hex digit of either case to 0..=15, or -1; branch-free (wg's key_from_hex).
fn hex_value(c: u8) -> i32 {
    let c = i32::from(c);
    let num = c ^ 48;
    let num_ok = (num - 10) >> 8;
    let alpha = (c & !32) - 55;
    let alpha_ok = ((alpha - 10) ^ (alpha - 16)) >> 8;
    ((num_ok & num) | (alpha_ok & alpha)) | !(num_ok | alpha_ok)
}

fn encode_hex(key: &[u8; KEY_LEN]) -> String {
    let mut out = String::with_capacity(KEY_LEN_HEX);
    for &b in key {
        out.push(char::from(hex_char(b >> 4)));
        out.push(char::from(hex_char(b & 15)));
    }
    out
}

fn decode_hex(text: &[u8]) -> Result<[u8; KEY_LEN], KeyError> {
    if text.len() != KEY_LEN_HEX {
        return Err(KeyError::HexLength { len: text.len() });
    }
    let mut key = [0u8; KEY_LEN];
    let mut bad: i32 = 0;
    for (i, pair) in text.chunks_exact(2).enumerate() {
        let hi = hex_value(pair[0]);
        let lo = hex_value(pair[1]);
        bad |= hi | lo;
        key[i] = ((hi << 4) | (lo & 15)) as u8;
    }
    if bad >= 0 {
        return Ok(key);
    }
    key.zeroize();
    let pos = text.iter().position(|&c| hex_value(c) < 0).unwrap_or(0);
    Err(KeyError::HexChar { pos })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic "RNG" for tests: counts up from a seed.
    struct CountingRng(u8);

    impl RngCore for CountingRng {
        fn next_u32(&mut self) -> u32 {
            rand_core::impls::next_u32_via_fill(self)
        }
        fn next_u64(&mut self) -> u64 {
            rand_core::impls::next_u64_via_fill(self)
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            for b in dest {
                *b = self.0;
                self.0 = self.0.wrapping_add(1);
            }
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }
    impl CryptoRng for CountingRng {}

    #[test]
    fn rfc7748_public_key_vector() {
        // RFC 7748 §6.1, Alice.
        let sk = PrivateKey::from_hex(
            "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
        )
        .unwrap();
        assert_eq!(
            sk.public_key().to_hex(),
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
        );
    }

    #[test]
    fn base64_matches_known_encoding() {
        // `printf '\x00...\x1f' | base64`
        let bytes: [u8; 32] = core::array::from_fn(|i| i as u8);
        let text = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        assert_eq!(PublicKey::from_bytes(bytes).to_base64(), text);
        assert_eq!(PublicKey::from_base64(text).unwrap().as_bytes(), &bytes);
        let all = [0xffu8; 32];
        let text = "//////////////////////////////////////////8=";
        assert_eq!(PublicKey::from_bytes(all).to_base64(), text);
        assert_eq!(PublicKey::from_base64(text).unwrap().as_bytes(), &all);
    }

    #[test]
    fn base64_round_trips_every_byte_value_in_every_position() {
        for start in 0..=255u8 {
            let bytes: [u8; 32] =
                core::array::from_fn(|i| start.wrapping_add((i as u8).wrapping_mul(37)));
            let key = Key::from_bytes(bytes);
            assert_eq!(Key::from_base64(&key.to_base64()).unwrap(), key);
            assert_eq!(Key::from_hex(&key.to_hex()).unwrap(), key);
        }
    }

    #[test]
    fn base64_errors_are_precise() {
        assert_eq!(
            Key::from_base64("abc"),
            Err(KeyError::Base64Length { len: 3 })
        );
        let good = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        let no_pad = good.replace('=', "A");
        assert_eq!(Key::from_base64(&no_pad), Err(KeyError::Base64Padding));
        let mut bad = good.as_bytes().to_vec();
        bad[7] = b'*';
        let bad = String::from_utf8(bad).unwrap();
        assert_eq!(Key::from_base64(&bad), Err(KeyError::Base64Char { pos: 7 }));
        // '8' is 60 = 0b111100: the low two bits are the padding bits, 'h' (33) has bit 0 set.
        let non_canonical = good.replace("Hh8=", "Hh9=");
        assert_eq!(
            Key::from_base64(&non_canonical),
            Err(KeyError::Base64NonCanonical)
        );
        // URL-safe alphabet is not accepted, like wg.
        let url = "__________________________________________8=";
        assert_eq!(Key::from_base64(url), Err(KeyError::Base64Char { pos: 0 }));
        // '=' inside the body is a bad character.
        let inner = good.replacen('A', "=", 1);
        assert_eq!(
            Key::from_base64(&inner),
            Err(KeyError::Base64Char { pos: 0 })
        );
    }

    #[test]
    fn hex_is_lowercase_out_and_either_case_in() {
        let bytes: [u8; 32] =
            core::array::from_fn(|i| (i as u8).wrapping_mul(8).wrapping_add(0xa0));
        let key = Key::from_bytes(bytes);
        let hex = key.to_hex();
        assert_eq!(&hex[..8], "a0a8b0b8");
        assert!(hex
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
        assert_eq!(Key::from_hex(&hex.to_uppercase()).unwrap(), key);
    }

    #[test]
    fn hex_errors_are_precise() {
        assert_eq!(Key::from_hex(""), Err(KeyError::HexLength { len: 0 }));
        assert_eq!(
            Key::from_hex(&"0".repeat(63)),
            Err(KeyError::HexLength { len: 63 })
        );
        let mut s = "0".repeat(64);
        s.replace_range(9..10, "g");
        assert_eq!(Key::from_hex(&s), Err(KeyError::HexChar { pos: 9 }));
        for c in ["/", ":", "@", "G", "`", "g", " "] {
            let mut s = "0".repeat(64);
            s.replace_range(0..1, c);
            assert_eq!(Key::from_hex(&s), Err(KeyError::HexChar { pos: 0 }), "{c}");
        }
    }

    #[test]
    fn generated_private_keys_are_clamped() {
        let mut rng = CountingRng(0xff);
        for _ in 0..64 {
            let k = PrivateKey::generate_from(&mut rng);
            assert_eq!(k.as_bytes()[0] & 7, 0);
            assert_eq!(k.as_bytes()[31] & 0xc0, 0x40);
        }
        let k = PrivateKey::generate().unwrap();
        assert_eq!(k.clamped(), k);
        assert_eq!(
            PrivateKey::from_bytes([0xff; 32]).clamped().as_bytes()[0],
            0xf8
        );
        assert_eq!(k.as_bytes()[0] & 7, 0);
        assert_eq!(k.as_bytes()[31] & 0xc0, 0x40);
        assert_ne!(PrivateKey::generate().unwrap(), k);
    }

    #[test]
    fn generated_psks_are_not_clamped() {
        let mut rng = CountingRng(0xff);
        let k = PresharedKey::generate_from(&mut rng);
        assert_eq!(k.as_bytes()[0], 0xff);
        assert_eq!(k.as_bytes()[31], 30);
        assert!(!PresharedKey::generate().unwrap().is_zero());
    }

    #[test]
    fn secrets_do_not_leak_through_debug() {
        let sk = PrivateKey::from_bytes([0x41; 32]);
        let psk = PresharedKey::from_bytes([0x41; 32]);
        for s in [
            format!("{sk:?}"),
            format!("{psk:?}"),
            format!("{:?}", sk.as_key()),
        ] {
            assert!(!s.contains("QUFB") && !s.contains("4141"), "{s}");
        }
        let pk = PublicKey::from_bytes([0x41; 32]);
        assert!(format!("{pk:?}").contains("QUFB"));
    }

    #[test]
    fn pubkey_input_rules_follow_wg() {
        let k = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        assert!(PrivateKey::from_base64_input(k.as_bytes()).is_ok());
        assert!(PrivateKey::from_base64_input(format!("{k}\n \t\r\0\n").as_bytes()).is_ok());
        assert_eq!(
            PrivateKey::from_base64_input(format!(" {k}").as_bytes()).unwrap_err(),
            KeyInputError::Trailing
        );
        assert_eq!(
            PrivateKey::from_base64_input(format!("{k}x").as_bytes()).unwrap_err(),
            KeyInputError::Trailing
        );
        assert_eq!(
            PrivateKey::from_base64_input(b"abc").unwrap_err(),
            KeyInputError::Format
        );
    }

    #[test]
    fn equality_and_zero() {
        assert!(Key::zero().is_zero());
        assert!(!Key::from_bytes([
            0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0
        ])
        .is_zero());
        assert_eq!(
            PublicKey::from_bytes([3; 32]),
            PublicKey::from_bytes([3; 32])
        );
        assert_ne!(
            PublicKey::from_bytes([3; 32]),
            PublicKey::from_bytes([4; 32])
        );
        assert!(PublicKey::from_bytes([3; 32]) < PublicKey::from_bytes([4; 32]));
    }
}
