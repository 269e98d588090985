//! The data path's own counters ([`DatapathStats`]): one value, shared by reference with
//! everything that counts into it (the stages, and the AEAD for its vector batches), and read
//! once for the log when the daemon stops.

use std::sync::atomic::{AtomicU64, Ordering};

/// Packets the data path itself dropped (the protocol core counts its own drops), so that a
/// test or an operator can tell "none lost here" from "lost somewhere"; and, marked as such,
/// how often the faster paths ran.
#[derive(Debug, Default)]
pub struct DatapathStats {
    /// TUN reads that could not be split (bad virtio-net header) or did not fit the buffers.
    pub tun_read_errors: AtomicU64,
    /// Packets (or super-packets) the TUN device refused or that timed out on write.
    pub tun_write_errors: AtomicU64,
    /// Datagrams that could not be sent.
    pub udp_send_errors: AtomicU64,
    /// Datagrams received truncated (larger than the receive buffer).
    pub udp_truncated: AtomicU64,
    /// Handshake messages dropped because the handshake worker's queue was full.
    pub handshakes_dropped: AtomicU64,
    /// Packets between two peers that the interface's forwarding policy refused.
    pub forward_denied: AtomicU64,
    /// Not drops: packets forwarded from one peer to another ([`super::forward`]).
    pub forwarded: AtomicU64,
    /// Not drops: TUN reads that were TSO/USO super-packets and were split.
    pub gso_reads: AtomicU64,
    /// Not drops: coalesced super-packets written to the TUN device.
    pub gro_writes: AtomicU64,
    /// Not drops: TUN reads sent by the receiving stage right after its TUN write
    /// ([`Sender::reply`](super::Sender::reply)).
    pub replies: AtomicU64,
    /// Not drops: datagrams sealed in vector lanes ([`crate::crypto`]).
    pub vector_sealed: AtomicU64,
    /// Not drops: datagrams opened (verified or not) in vector lanes.
    pub vector_opened: AtomicU64,
}

impl DatapathStats {
    /// Adds `n` to `counter` (one of this value's fields).
    pub fn count(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// A one-line summary for the log.
    pub fn summary(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "tun read errors {}, tun write errors {}, udp send errors {}, udp truncated {}, \
             handshakes over the queue {}, refused by the forwarding policy {} (forwarded {}, super-packets split {}, coalesced {}, replies from the receiving stage {}, \
             datagrams sealed in vector lanes {}, opened in vector lanes {})",
            get(&self.tun_read_errors),
            get(&self.tun_write_errors),
            get(&self.udp_send_errors),
            get(&self.udp_truncated),
            get(&self.handshakes_dropped),
            get(&self.forward_denied),
            get(&self.forwarded),
            get(&self.gso_reads),
            get(&self.gro_writes),
            get(&self.replies),
            get(&self.vector_sealed),
            get(&self.vector_opened),
        )
    }
}
