//! ferrowg: a userspace WireGuard daemon and a wg(8)/wg-quick(8) compatible command-line tool.
//!
//! This crate is the command line ([`cli`]); the parts it drives live in their own crates:
//! `ferrowg-daemon` (the device runtime), `ferrowg-conf` (configuration files and the UAPI),
//! `ferrowg-keys` (keys, key files and PKCS#11 tokens) and `ferrowg-proto` (the protocol).

pub mod cli;
