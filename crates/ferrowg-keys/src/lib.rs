//! WireGuard keys as ferrowg holds them, for every part that needs one (the daemon, the command
//! line, and the hub to come), without going through either:
//!
//! - [`key`]: private, public and preshared keys, base64 and hex, generation; zeroed on drop and
//!   compared in constant time.
//! - [`keyfile`]: the one reader and writer of secret key files (strict permissions, bounded,
//!   zeroed).
//! - [`pkcs11`]: static keys in PKCS#11 tokens (the private key never in memory): RFC 7512
//!   URIs, the token plumbing, key management, and the provider the protocol core calls for
//!   its static DHs.

pub mod key;
pub mod keyfile;
pub mod pkcs11;
