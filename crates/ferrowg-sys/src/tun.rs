//! Linux TUN devices: create or attach by name (`IFF_TUN | IFF_NO_PI`, optionally
//! `IFF_MULTI_QUEUE` with one descriptor per queue and `IFF_VNET_HDR`), and move IP packets through
//! them one at a time or in batches.
//!
//! Every queue descriptor is nonblocking. A batch read waits (with `ppoll`, bounded by the
//! caller's timeout so the daemon can notice shutdown) for the first packet and then keeps calling
//! `read(2)` until the queue is empty or the batch is full: this is the plain-mode counterpart of
//! wireguard-go's `Read(bufs, sizes, offset)`. With `IFF_VNET_HDR` the same calls move raw frames
//! that start with a [`VirtioNetHdr`]; splitting kernel GSO super-packets and coalescing for GRO
//! builds on that and lives above this crate.
//!
//! Deletion of the interface (`ip link del`) detaches every queue: `poll` then reports `POLLERR`
//! and `read`/`write` fail with `EBADFD`, which is returned as [`Error::InterfaceGone`].
//!
//! Why `libc` and not the `tun-rs` crate: plain TUN is four ioctls, and owning them keeps the
//! public types ours, the error mapping exact (`EBADFD` → `InterfaceGone`), and the dependency tree
//! to `libc`. tun-rs's extra value is its GSO split/GRO coalesce code, which needs the
//! virtio-net header this module already exposes; it can be adopted for that step alone.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::fd::{self, cvt, Deadline, Interest};
use crate::netdev;
use crate::vnet::Offload;

/// The clone device every TUN descriptor is opened from.
const CLONE_DEVICE: &str = "/dev/net/tun";

/// The most queues a multi-queue TUN device can have (the kernel's `MAX_TAP_QUEUES`).
pub const MAX_QUEUES: usize = 256;

/// How to create (or attach to) a TUN device: the argument of [`Tun::open`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TunConfig {
    name: String,
    queues: usize,
    vnet_hdr: bool,
}

impl TunConfig {
    /// A single-queue, plain (no virtio-net header) TUN device called `name`. If no such device
    /// exists it is created; if a persistent one does, it is attached to. A `%d` in the name is
    /// replaced by the kernel with the first free number (`"wg%d"` → `"wg0"`).
    pub fn new(name: impl Into<String>) -> Self {
        TunConfig {
            name: name.into(),
            queues: 1,
            vnet_hdr: false,
        }
    }

    /// Opens `queues` descriptors, one per queue. More than one sets `IFF_MULTI_QUEUE`: the kernel
    /// then spreads outgoing flows over the queues so that one thread per queue can read. Clamped
    /// to `1..=`[`MAX_QUEUES`].
    pub fn queues(mut self, queues: usize) -> Self {
        self.queues = queues.clamp(1, MAX_QUEUES);
        self
    }

    /// Sets `IFF_VNET_HDR`: every packet read or written starts with a [`VirtioNetHdr`] of
    /// [`VIRTIO_NET_HDR_LEN`] bytes. Needed for [`Tun::set_offload`] (TSO/USO).
    ///
    /// [`VirtioNetHdr`]: crate::VirtioNetHdr
    /// [`VIRTIO_NET_HDR_LEN`]: crate::VIRTIO_NET_HDR_LEN
    pub fn vnet_hdr(mut self, on: bool) -> Self {
        self.vnet_hdr = on;
        self
    }

    /// The `ifr_flags` for `TUNSETIFF`.
    fn flags(&self) -> libc::c_short {
        let mut flags = libc::IFF_TUN | libc::IFF_NO_PI;
        if self.queues > 1 {
            flags |= libc::IFF_MULTI_QUEUE;
        }
        if self.vnet_hdr {
            flags |= libc::IFF_VNET_HDR;
        }
        // All these flags are below 0x8000, so they fit the kernel's `short ifr_flags`.
        flags as libc::c_short
    }
}

/// An open TUN device: its name and index, and one [`TunQueue`] per queue.
///
/// The interface exists as long as a queue is open (unless it was made persistent elsewhere).
/// Device-wide settings (MTU, up/down, offloads) are here; packets move through the queues.
#[derive(Debug)]
pub struct Tun {
    name: Arc<str>,
    index: u32,
    vnet_hdr: bool,
    queues: Vec<TunQueue>,
}

impl Tun {
    /// Creates or attaches to the TUN device described by `config` (needs `CAP_NET_ADMIN` to
    /// create). The device is created in the calling thread's network namespace and starts down
    /// with the kernel's default MTU (1500).
    pub fn open(config: &TunConfig) -> Result<Tun> {
        netdev::validate_name(&config.name)?;
        let mut name = config.name.clone();
        let mut queues = Vec::with_capacity(config.queues);
        for _ in 0..config.queues {
            let (fd, actual) = attach(&name, config.flags())?;
            // The first TUNSETIFF resolved any `%d`; the other queues attach to that exact name.
            name = actual;
            queues.push(fd);
        }
        let name: Arc<str> = name.into();
        let index = netdev::index(&name)?;
        let queues = queues
            .into_iter()
            .map(|fd| TunQueue {
                fd,
                name: Arc::clone(&name),
                vnet_hdr: config.vnet_hdr,
                truncated: AtomicU64::new(0),
            })
            .collect();
        Ok(Tun {
            name,
            index,
            vnet_hdr: config.vnet_hdr,
            queues,
        })
    }

    /// The interface name (with any `%d` resolved).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The interface index, as of opening.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// True if the device was opened with [`TunConfig::vnet_hdr`].
    pub fn has_vnet_hdr(&self) -> bool {
        self.vnet_hdr
    }

    /// The queues, in the order they were opened (at least one).
    pub fn queues(&self) -> &[TunQueue] {
        &self.queues
    }

    /// Gives up the device handle and returns the queues, e.g. to move one into each I/O thread.
    /// The interface lives on until the last queue is dropped.
    pub fn into_queues(self) -> Vec<TunQueue> {
        self.queues
    }

    /// The current MTU (`SIOCGIFMTU`).
    pub fn mtu(&self) -> Result<u32> {
        netdev::mtu(&self.name)
    }

    /// Sets the MTU (`SIOCSIFMTU`). For WireGuard over a 1500-byte path this is 1420.
    pub fn set_mtu(&self, mtu: u32) -> Result<()> {
        netdev::set_mtu(&self.name, mtu)
    }

    /// Brings the interface up or down (`IFF_UP`).
    pub fn set_up(&self, up: bool) -> Result<()> {
        netdev::set_up(&self.name, up)
    }

    /// Turns on the offloads in `offload` (`TUNSETOFFLOAD`) and returns the ones in force: USO is
    /// dropped on kernels older than 6.2, which reject it. `Offload::default()` turns them all
    /// off. Requires [`TunConfig::vnet_hdr`] ([`Error::InvalidArgument`] otherwise): the kernel
    /// would accept offloads without it, but then nothing tells a reader how to split the 64 KiB
    /// super-packets it hands over.
    pub fn set_offload(&self, offload: Offload) -> Result<Offload> {
        if !self.vnet_hdr && offload != Offload::default() {
            return Err(Error::InvalidArgument {
                reason: "TUN offloads need a device opened with a virtio-net header",
            });
        }
        let queue = self.primary();
        match queue.ioctl_value(
            libc::TUNSETOFFLOAD,
            offload.tun_flags(),
            "ioctl(TUNSETOFFLOAD)",
        ) {
            Err(e) if offload.uso && e.raw_os_error() == Some(libc::EINVAL) => {
                let fallback = Offload {
                    uso: false,
                    ..offload
                };
                queue.ioctl_value(
                    libc::TUNSETOFFLOAD,
                    fallback.tun_flags(),
                    "ioctl(TUNSETOFFLOAD)",
                )?;
                Ok(fallback)
            }
            other => other.map(|()| offload),
        }
    }

    /// Fails with [`Error::InterfaceGone`] if the interface has been deleted.
    pub fn check_attached(&self) -> Result<()> {
        self.primary().check_attached()
    }

    fn primary(&self) -> &TunQueue {
        // Tun::open() pushes one queue per configured queue, and TunConfig keeps that at >= 1.
        &self.queues[0]
    }
}

/// Opens the clone device and attaches it to `name` with `flags`; returns the descriptor and the
/// interface name the kernel chose.
fn attach(name: &str, flags: libc::c_short) -> Result<(OwnedFd, String)> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(CLONE_DEVICE)
        .map_err(|e| Error::os("open(/dev/net/tun)", e))?;
    let fd = OwnedFd::from(file);
    let mut ifr = netdev::ifreq_for(name)?;
    ifr.ifr_ifru.ifru_flags = flags;
    // SAFETY: TUNSETIFF takes a pointer to a `struct ifreq`; `ifr` is valid, writable and
    // NUL-terminated for the duration of the call, and `fd` is an open /dev/net/tun descriptor.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF as _, &mut ifr) };
    cvt(ret).map_err(|e| Error::os("ioctl(TUNSETIFF)", e))?;
    Ok((fd, netdev::name_of(&ifr)))
}

/// True for the errors with which the TUN driver says "this queue has no device any more".
fn is_gone_errno(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::EBADFD) | Some(libc::ENODEV))
}

/// One queue of a TUN device: a nonblocking descriptor that reads and writes IP packets.
///
/// All methods take `&self`, so a queue can be shared between a reading and a writing thread.
#[derive(Debug)]
pub struct TunQueue {
    fd: OwnedFd,
    name: Arc<str>,
    vnet_hdr: bool,
    truncated: AtomicU64,
}

impl TunQueue {
    /// The name of the interface this queue belongs to.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// True if packets on this queue carry a virtio-net header.
    pub fn has_vnet_hdr(&self) -> bool {
        self.vnet_hdr
    }

    /// How many packets were dropped so far because they did not fit the buffer given for them.
    pub fn truncated(&self) -> u64 {
        self.truncated.load(Ordering::Relaxed)
    }

    /// Reads one packet into `buf`, waiting at most `timeout` (`None`: forever) for it.
    /// Returns its length, or `None` on timeout.
    pub fn read(&self, buf: &mut [u8], timeout: Option<Duration>) -> Result<Option<usize>> {
        let mut size = [0];
        let n = self.read_batch(&mut [buf], &mut size, timeout)?;
        Ok((n == 1).then_some(size[0]))
    }

    /// Reads up to `min(bufs.len(), sizes.len())` packets: waits at most `timeout` (`None`:
    /// forever) for the first, then takes whatever else is already queued. Packet `i` lands in
    /// `bufs[i]` with its length in `sizes[i]`. Returns the number of packets, 0 on timeout.
    ///
    /// Size each buffer at least one byte longer than the largest packet: the MTU (plus
    /// [`VIRTIO_NET_HDR_LEN`] with a virtio-net header, or 64 KiB when TSO/USO are on). A packet
    /// that fills its buffer may have been cut; it is dropped and counted in
    /// [`truncated`](Self::truncated).
    ///
    /// [`VIRTIO_NET_HDR_LEN`]: crate::VIRTIO_NET_HDR_LEN
    pub fn read_batch<B: AsMut<[u8]>>(
        &self,
        bufs: &mut [B],
        sizes: &mut [usize],
        timeout: Option<Duration>,
    ) -> Result<usize> {
        self.read_batch_at(bufs, 0, sizes, timeout)
    }

    /// [`read_batch`](Self::read_batch) with each packet landing at offset `at` of its buffer
    /// (room for headers in front of it); `sizes` count from `at`. Every buffer must be longer
    /// than `at` (`InvalidArgument` otherwise, before anything is read: the kernel would consume
    /// a packet into an empty buffer without saying how long it was).
    pub fn read_batch_at<B: AsMut<[u8]>>(
        &self,
        bufs: &mut [B],
        at: usize,
        sizes: &mut [usize],
        timeout: Option<Duration>,
    ) -> Result<usize> {
        let max = bufs.len().min(sizes.len());
        if max == 0 {
            return Ok(0);
        }
        if bufs[..max].iter_mut().any(|b| b.as_mut().len() <= at) {
            return Err(Error::InvalidArgument {
                reason: "a read buffer has no room past its offset",
            });
        }
        let deadline = Deadline::after(timeout);
        // The first packet: wait for it, within the deadline.
        loop {
            match self.read_one(bufs[0].as_mut().get_mut(at..).unwrap_or_default()) {
                Ok(Some(n)) => {
                    sizes[0] = n;
                    break;
                }
                // A dropped oversize packet: there may be more behind it.
                Ok(None) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Nothing queued: with no time left (a zero timeout), no need to ask poll.
                    if deadline.remaining() == Some(Duration::ZERO)
                        || !self.wait(Interest::Read, deadline)?
                    {
                        return Ok(0);
                    }
                }
                Err(e) => return Err(self.error("read(tun)", e)),
            }
        }
        // The rest: only what is already there. An error here is left for the next call to
        // report (a gone interface keeps failing), so the packets already read are not lost.
        let mut count = 1;
        while count < max {
            match self.read_one(bufs[count].as_mut().get_mut(at..).unwrap_or_default()) {
                Ok(Some(n)) => {
                    sizes[count] = n;
                    count += 1;
                }
                Ok(None) => continue,
                Err(_) => break,
            }
        }
        Ok(count)
    }

    /// One nonblocking `read(2)`; `Ok(None)` if the packet was larger than `buf` (and dropped).
    fn read_one(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let n = fd::read(self.fd.as_fd(), buf)?;
        // A packet that does not fit is cut to the buffer: depending on the kernel, read(2)
        // then returns the full length (older) or what it copied (6.18 here), so a read that
        // fills the whole buffer is taken as cut. Hence the one byte of slack asked of callers.
        if n >= buf.len() {
            self.truncated.fetch_add(1, Ordering::Relaxed);
            return Ok(None);
        }
        Ok(Some(n))
    }

    /// Writes one packet (an IPv4 or IPv6 packet, preceded by a virtio-net header if the device
    /// has one) without waiting: if the device cannot take it right now (rare: the TUN driver
    /// queues into the stack), the error has kind `WouldBlock`. The kernel rejects a packet
    /// whose first nibble is neither 4 nor 6 with `EINVAL`.
    pub fn write(&self, packet: &[u8]) -> Result<()> {
        match self.write_batch(&[packet], Some(Duration::ZERO))? {
            1 => Ok(()),
            _ => Err(Error::os("write(tun)", io::ErrorKind::WouldBlock.into())),
        }
    }

    /// Writes `packets` in order, waiting at most `timeout` (`None`: forever) each time the
    /// queue is full. Returns how many were written, like `write(2)` returns bytes: fewer than
    /// `packets.len()` if a wait timed out, or if packet `n` failed after `n > 0` were written; the
    /// error is then reported by the next call, which starts at that packet.
    pub fn write_batch<B: AsRef<[u8]>>(
        &self,
        packets: &[B],
        timeout: Option<Duration>,
    ) -> Result<usize> {
        // Set when the queue is first full: most calls never wait, nor read the clock.
        let mut deadline = None;
        let mut written = 0;
        while let Some(packet) = packets.get(written) {
            match fd::write(self.fd.as_fd(), packet.as_ref()) {
                Ok(_) => written += 1,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let deadline = *deadline.get_or_insert_with(|| Deadline::after(timeout));
                    if !self.wait(Interest::Write, deadline)? {
                        break;
                    }
                }
                Err(_) if written > 0 => break,
                Err(e) => return Err(self.error("write(tun)", e)),
            }
        }
        Ok(written)
    }

    /// Writes one packet gathered from `parts` (`writev(2)`: e.g. a virtio-net header and the
    /// pieces of a super-packet that lie in different buffers), waiting at most `timeout`
    /// (`None`: forever) while the queue is full. `Ok(false)` if the wait timed out.
    pub fn write_vectored(
        &self,
        parts: &[io::IoSlice<'_>],
        timeout: Option<Duration>,
    ) -> Result<bool> {
        // Set when the queue is first full: most calls never wait, nor read the clock.
        let mut deadline = None;
        loop {
            match fd::writev(self.fd.as_fd(), parts) {
                Ok(_) => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let deadline = *deadline.get_or_insert_with(|| Deadline::after(timeout));
                    if !self.wait(Interest::Write, deadline)? {
                        return Ok(false);
                    }
                }
                Err(e) => return Err(self.error("writev(tun)", e)),
            }
        }
    }

    /// Fails with [`Error::InterfaceGone`] if the interface was deleted or this queue detached
    /// (`TUNGETIFF` fails with `EBADFD` once there is no device behind the descriptor).
    pub fn check_attached(&self) -> Result<()> {
        let mut ifr = netdev::ifreq_for("x")?;
        // SAFETY: TUNGETIFF takes a pointer to a `struct ifreq` that it fills; `ifr` is valid and
        // writable for the call.
        let ret = unsafe { libc::ioctl(self.fd.as_raw_fd(), libc::TUNGETIFF as _, &mut ifr) };
        cvt(ret)
            .map(drop)
            .map_err(|e| self.error("ioctl(TUNGETIFF)", e))
    }

    /// An ioctl on this queue whose argument is passed by value (e.g. `TUNSETOFFLOAD`).
    fn ioctl_value(
        &self,
        request: libc::Ioctl,
        arg: libc::c_ulong,
        op: &'static str,
    ) -> Result<()> {
        // SAFETY: the requests passed here take an integer argument by value, not a pointer, so
        // the kernel reads no memory of ours.
        let ret = unsafe { libc::ioctl(self.fd.as_raw_fd(), request as _, arg) };
        cvt(ret).map(drop).map_err(|e| self.error(op, e))
    }

    fn wait(&self, interest: Interest, deadline: Deadline) -> Result<bool> {
        fd::wait(self.fd.as_fd(), interest, deadline).map_err(|e| self.error("ppoll(tun)", e))
    }

    /// Maps an OS error of `op`, recognising a deleted interface.
    fn error(&self, op: &'static str, err: io::Error) -> Error {
        if is_gone_errno(&err) {
            Error::InterfaceGone {
                name: self.name.to_string(),
            }
        } else {
            Error::os(op, err)
        }
    }
}

impl AsFd for TunQueue {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_flags() {
        let plain = TunConfig::new("wg0");
        assert_eq!(
            plain.flags() as libc::c_int,
            libc::IFF_TUN | libc::IFF_NO_PI
        );
        let mq = TunConfig::new("wg0").queues(4).vnet_hdr(true);
        let want = libc::IFF_TUN | libc::IFF_NO_PI | libc::IFF_MULTI_QUEUE | libc::IFF_VNET_HDR;
        assert_eq!(mq.flags() as libc::c_int, want);
        assert_eq!(TunConfig::new("x").queues(0).queues, 1);
        assert_eq!(TunConfig::new("x").queues(10_000).queues, MAX_QUEUES);
    }

    #[test]
    fn bad_name_is_rejected_before_any_syscall() {
        let err = Tun::open(&TunConfig::new("way-too-long-for-linux")).unwrap_err();
        assert!(matches!(err, Error::InvalidInterfaceName { .. }), "{err}");
    }

    #[test]
    fn gone_errnos() {
        assert!(is_gone_errno(&io::Error::from_raw_os_error(libc::EBADFD)));
        assert!(is_gone_errno(&io::Error::from_raw_os_error(libc::ENODEV)));
        assert!(!is_gone_errno(&io::Error::from_raw_os_error(libc::EINVAL)));
    }
}
