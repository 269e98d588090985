//! WireGuard configuration as wg(8), wg-quick(8) and the userspace API spell it: one home for
//! each piece of that grammar, shared by configuration files, `wg set` arguments and the UAPI
//! socket, and by both ends of the socket (the daemon and the command line).
//!
//! - [`grammar`]: numbers, ports, fwmarks, keepalive intervals and white space.
//! - [`addr`]: IP prefixes and endpoints as wg(8), the UAPI and glibc spell them.
//! - [`config`]: wg(8) and wg-quick(8) configuration files.
//! - [`uapi`]: the cross-platform userspace interface (`/var/run/wireguard/<iface>.sock`): its
//!   socket path, requests, replies and errnos.
//!
//! Everything here works on strings, byte slices and `BufRead`ers; nothing does I/O of its own.

pub mod addr;
pub mod config;
pub mod grammar;
pub mod uapi;
