//! Pure computation for ferrowg's data path, compiled for the vector units of the CPU it runs on
//! (checked at run time, with a portable fallback): no I/O, no operating system, testable
//! anywhere.
//!
//! - [`aead16`]: ChaCha20-Poly1305 for up to 16 datagrams under one key at once, with AVX-512
//!   and IFMA.
//! - [`csum`]: the Internet checksum's word sum, with AVX-512 or AVX2.
//! - [`wipe`]: [`wipe::WipeOnDrop`], which zeroes a value's bytes after dropping it, for key
//!   types that do not wipe themselves (ring's).
//!
//! `unsafe` here is limited to calling code compiled for a CPU feature that was detected at run
//! time, to vector loads and stores, and to overwriting a dropped value's bytes; every block
//! says why it is sound in a `// SAFETY:` line.

pub mod aead16;
pub mod csum;
pub mod wipe;
