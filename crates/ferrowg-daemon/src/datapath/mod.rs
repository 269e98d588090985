//! The daemon's data path: TUN → encrypt → UDP (`tx.rs`, `seal.rs`), UDP → decrypt → TUN (`rx.rs`), the
//! threads that run them ([`Queue`]), forwarding between peers for the hub (`forward.rs`), the protocol timers ([`run_timers`]) and the handshake
//! worker ([`run_handshakes`]), which runs every static-key DH off the state lock.
//!
//! Each TUN queue has two data-path threads, and neither is tied to a direction: both wait on
//! one readiness queue ([`ferrowg_sys::Poller`]) holding the TUN queue and the UDP socket, and
//! whichever is free takes whichever became readable. Under load that is one thread per
//! direction; at low load it is the thread that just sent a request that receives its answer
//! (epoll wakes the most recent waiter first), on the CPU it just ran on, instead of a second
//! thread that last ran elsewhere and whose CPU may have to be woken first. While traffic stays
//! light, both threads also keep to one CPU, and spread again under load (`placement.rs`).
//!
//! Each stage works in batches: one batched read, one lock of the shared state for
//! the whole batch, one batched write. Buffers are allocated once per thread; packets are
//! encrypted and decrypted in place, so nothing is allocated per packet on the steady path.
//! Handshake messages and packets that waited for a session come out of `poll_transmit`
//! (`outbox.rs`).
//!
//! With the TUN device's virtio-net header ([`open_tun`]), the kernel hands over TCP/UDP
//! super-packets of up to 64 KiB, which are cut into MTU-sized packets ([`offload::gso`]),
//! encrypted back to back and sent with UDP GSO; received datagrams (UDP GRO) are decrypted and
//! glued back into super-packets ([`offload::gro`]) before the TUN write.
//!
//! This module holds what every stage agrees on: batch and buffer sizes, the readiness
//! tokens and how often blocked threads look at the shutdown flag.
//!
//! [`offload::gso`]: crate::offload::gso
//! [`offload::gro`]: crate::offload::gro

mod forward;
mod handshake_queue;
mod handshakes;
mod outbox;
mod placement;
mod queue;
mod rx;
mod seal;
mod shared;
mod spans;
mod stats;
mod timers;
mod tun;
mod tx;

pub use forward::Forwarding;
pub use handshake_queue::MAX_QUEUED_HANDSHAKES;
pub use handshakes::{run_handshakes, WorkerOnlyKey};
pub use queue::Queue;
pub use rx::{Drained, Receiver};
pub use shared::Shared;
pub use stats::DatapathStats;
pub use timers::run_timers;
pub use tun::{open_tun, OpenTun, TUN_TX_QUEUE_LEN};
pub use tx::Sender;

use std::time::Duration;

use ferrowg_proto::TRANSPORT_HEADER_SIZE;

/// Reads or datagrams per batch (wireguard-go and the kernel's GRO use 64–128).
pub const BATCH: usize = 64;
/// Room for the largest IP packet a TUN device delivers plus WireGuard framing and padding.
const BUF_SIZE: usize = TRANSPORT_HEADER_SIZE + 65535 + 64;
/// How often blocked threads (data path and UAPI accept) look at the shutdown flag.
pub(crate) const POLL: Duration = Duration::from_millis(250);

/// The token of a queue's TUN descriptor in its readiness queue.
const TUN_TOKEN: u64 = 0;
/// The token of the UDP socket in a queue's readiness queue.
const UDP_TOKEN: u64 = 1;
