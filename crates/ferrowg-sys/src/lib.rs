//! What the ferrowg daemon needs from Linux for a fast data path: the system calls behind TUN
//! devices, UDP sockets, namespaces and CPU placement. With `ferrowg-simd` (the vector code) it is
//! one of the two crates allowed `unsafe`; every block says why it is sound in a `// SAFETY:`
//! comment.
//!
//! - [`Tun`]/[`TunQueue`] (`tun.rs`): TUN devices, single- or multi-queue, with batch reads and
//!   writes, MTU and up/down, and a distinct [`Error::InterfaceGone`] once the interface is
//!   deleted. [`VirtioNetHdr`] and [`Offload`] (`vnet.rs`) prepare for TSO/USO.
//! - [`UdpSocket`] (`udp.rs`, `batch.rs`): a dual-stack UDP socket with forced large buffers,
//!   fwmark, receive-drop counting, `recvmmsg`/`sendmmsg` batches, UDP GRO and GSO.
//! - [`Poller`] (`poll.rs`): one epoll queue for several threads, one-shot and last-in-first-out,
//!   so the free thread with the warmest cache takes the next readable descriptor.
//! - [`PageBuf`] (`mem.rs`): packet buffers in anonymous mappings, resident only once written.
//! - [`cpu`]: the current CPU, and pinning a thread to one.
//! - [`netdev`]: interface index/MTU/up by name; [`netns`]: move a thread into a network
//!   namespace; [`process`]: root and capability checks.
//! - [`creds`]: the umask around a bind, the effective uid, and the uid of a Unix socket's peer
//!   (`SO_PEERCRED`); [`clock`]: `CLOCK_BOOTTIME`, which counts time suspended.
//!
//! Everything is nonblocking underneath; every call that waits takes a timeout
//! (`Option<Duration>`, `None` = forever) so an I/O thread can poll its shutdown flag, and
//! signals (`EINTR`) are retried, never returned.
//!
//! Supported: Linux only (x86-64 and other glibc targets; ioctl numbers come from `libc`).
//! Not here: addresses and routes (netlink; the daemon runs `ip`), GSO splitting and GRO
//! coalescing of TUN packets (built on [`VirtioNetHdr`] above this crate), `IP_PKTINFO` source
//! pinning, `SO_REUSEPORT` socket fan-out.

#[cfg(not(target_os = "linux"))]
compile_error!("ferrowg-sys supports Linux only");

mod batch;
pub mod clock;
pub mod cpu;
pub mod creds;
mod error;
mod fd;
mod mem;
pub mod netdev;
pub mod netns;
mod poll;
pub mod process;
mod sockaddr;
mod tun;
mod udp;
mod vnet;

pub use batch::{RecvMeta, Transmit, BATCH_MAX, GSO_MAX_SEGMENTS};
pub use error::{Error, Result};
pub use fd::wait_readable;
pub use mem::PageBuf;
pub use poll::Poller;
pub use sockaddr::canonical;
pub use tun::{Tun, TunConfig, TunQueue, MAX_QUEUES};
pub use udp::{BufferSizes, UdpSocket, DEFAULT_BUFFER_SIZE};
pub use vnet::{
    Offload, VirtioNetHdr, VIRTIO_NET_HDR_F_DATA_VALID, VIRTIO_NET_HDR_F_NEEDS_CSUM,
    VIRTIO_NET_HDR_GSO_ECN, VIRTIO_NET_HDR_GSO_NONE, VIRTIO_NET_HDR_GSO_TCPV4,
    VIRTIO_NET_HDR_GSO_TCPV6, VIRTIO_NET_HDR_GSO_UDP_L4, VIRTIO_NET_HDR_LEN,
};

#[cfg(test)]
mod tests {
    /// The daemon shares sockets and queues between its I/O threads.
    #[test]
    fn handles_are_send_and_sync() {
        fn shareable<T: Send + Sync>() {}
        shareable::<crate::UdpSocket>();
        shareable::<crate::TunQueue>();
        shareable::<crate::Tun>();
        shareable::<crate::Poller>();
        shareable::<crate::Error>();
    }
}
