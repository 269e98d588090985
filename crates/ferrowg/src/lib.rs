//! ferrowg: a userspace WireGuard daemon and a wg(8)/wg-quick(8) compatible command-line tool.
//!
//! This library holds the parts of the binary that do no I/O of their own (they work on
//! strings, byte slices and `BufRead`ers), so that they can be tested against the stock tools:
//!
//! - [`key`]: private, public and preshared keys, base64 and hex, generation.
//! - [`addr`]: IP prefixes and endpoints as wg(8), UAPI and glibc spell them.
//! - [`config`]: wg(8) and wg-quick(8) configuration files.
//! - [`uapi`]: the cross-platform userspace interface (`/var/run/wireguard/<iface>.sock`).
//! - [`show`]: `wg show` output, and its JSON counterpart.
//!
//! And the parts that talk to the system:
//!
//! - [`daemon`]: the userspace WireGuard daemon (TUN + UDP + UAPI socket).
//! - [`wgctl`]: the UAPI client and the wg(8) commands built on it.
//! - [`quick`]: wg-quick(8)'s `up` and `down`.
//! - [`pkcs11`]: static keys in PKCS#11 tokens (the private key never in memory).
//! - [`keycmd`]: `genkey --pkcs11`, `pubkey --pkcs11`, `key rotate`, private key files.
//! - [`cli`]: the command line.

pub mod addr;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod key;
pub mod keycmd;
pub mod pkcs11;
pub mod quick;
pub mod show;
pub mod uapi;
pub mod wgctl;
