//! The WireGuard UDP socket: one nonblocking socket for both IPv4 and IPv6 (dual-stack
//! `AF_INET6` with `IPV6_V6ONLY=0`, or IPv4 only where the host has no IPv6), and its options:
//! large buffers, fwmark, receive-drop counting (`SO_RXQ_OVFL`) and UDP GRO.
//!
//! Batched I/O (`recvmmsg`/`sendmmsg`, UDP GSO) is in `batch.rs`.
//!
//! Buffers are set from the program with `SO_RCVBUFFORCE`/`SO_SNDBUFFORCE`, which ignore the
//! `net.core.[rw]mem_max` limits but need `CAP_NET_ADMIN`; without it the plain options are used
//! and the kernel caps them. The sysctls are read-only inside a network namespace, so the
//! forced options are the only way there.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::fd::{self, cvt, getsockopt_int, setsockopt_int, Deadline, Interest};
use crate::sockaddr::RawSockAddr;

/// The buffer size the daemon should ask for: 8 MiB each way, enough to ride out a scheduling
/// hiccup at several Gbit/s.
pub const DEFAULT_BUFFER_SIZE: usize = 8 << 20;

/// Receive and send buffer sizes as the kernel reports them (`SO_RCVBUF`/`SO_SNDBUF`). Linux
/// reports twice the requested value, the other half being its bookkeeping allowance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferSizes {
    /// Receive buffer, bytes.
    pub recv: usize,
    /// Send buffer, bytes.
    pub send: usize,
}

/// A nonblocking UDP socket bound to a port, for WireGuard's encrypted traffic.
#[derive(Debug)]
pub struct UdpSocket {
    pub(crate) fd: OwnedFd,
    /// `AF_INET6` (dual-stack or IPv6-only) or `AF_INET`.
    pub(crate) family: libc::c_int,
    local: SocketAddr,
    dual_stack: bool,
    /// The kernel's receive-queue drop count as of the last datagram that reported it.
    pub(crate) rx_dropped: AtomicU32,
}

impl UdpSocket {
    /// Binds `port` on all addresses, IPv4 and IPv6, with one dual-stack socket; falls back to an
    /// IPv4-only socket if the host has no IPv6. Port 0 lets the kernel choose; see
    /// [`port`](Self::port).
    pub fn bind(port: u16) -> Result<UdpSocket> {
        let any6 = SocketAddr::from((Ipv6Addr::UNSPECIFIED, port));
        match UdpSocket::open(any6, false) {
            Err(e) if is_ipv6_unavailable(&e) => {
                UdpSocket::open(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)), true)
            }
            other => other,
        }
    }

    /// Binds exactly `addr`, in its own family only (an IPv6 address gets `IPV6_V6ONLY=1`).
    pub fn bind_addr(addr: SocketAddr) -> Result<UdpSocket> {
        UdpSocket::open(addr, true)
    }

    fn open(addr: SocketAddr, v6_only: bool) -> Result<UdpSocket> {
        let family = if addr.is_ipv6() {
            libc::AF_INET6
        } else {
            libc::AF_INET
        };
        let kind = libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
        // SAFETY: plain socket(2) call with constant arguments; the only resource it creates is
        // the returned descriptor, owned right below.
        let raw = unsafe { libc::socket(family, kind, libc::IPPROTO_UDP) };
        let raw = cvt(raw).map_err(|e| Error::os("socket(SOCK_DGRAM)", e))?;
        // SAFETY: `raw` was just returned by socket(2), is valid and owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };

        if family == libc::AF_INET6 {
            setsockopt_int(
                fd.as_fd(),
                libc::IPPROTO_IPV6,
                libc::IPV6_V6ONLY,
                v6_only.into(),
            )
            .map_err(|e| Error::os("setsockopt(IPV6_V6ONLY)", e))?;
        }
        // Ask for the drop counter on every datagram (sent only once drops happened).
        setsockopt_int(fd.as_fd(), libc::SOL_SOCKET, libc::SO_RXQ_OVFL, 1)
            .map_err(|e| Error::os("setsockopt(SO_RXQ_OVFL)", e))?;

        // encode() only fails for IPv6 on an AF_INET socket; the family was chosen from `addr`.
        let (sa, len) =
            RawSockAddr::encode(addr, family).ok_or(Error::AddressFamily { addr, local: addr })?;
        // SAFETY: `sa` holds a valid sockaddr of `len` bytes for this socket's family and lives
        // until after the call.
        let ret = unsafe { libc::bind(fd.as_raw_fd(), (&sa as *const RawSockAddr).cast(), len) };
        cvt(ret).map_err(|e| Error::os("bind", e))?;

        let local = local_addr(fd.as_fd())?;
        Ok(UdpSocket {
            fd,
            family,
            local,
            dual_stack: family == libc::AF_INET6 && !v6_only,
            rx_dropped: AtomicU32::new(0),
        })
    }

    /// The bound address (`[::]:port` for a dual-stack socket).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The bound port (the kernel's choice if 0 was asked for).
    pub fn port(&self) -> u16 {
        self.local.port()
    }

    /// True if the socket reaches both IPv4 and IPv6 peers.
    pub fn is_dual_stack(&self) -> bool {
        self.dual_stack
    }

    /// Sets both buffers to `bytes` (see [`DEFAULT_BUFFER_SIZE`]), forcing past the sysctl limits
    /// when allowed, and returns the sizes now in force.
    pub fn set_buffer_sizes(&self, bytes: usize) -> Result<BufferSizes> {
        let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
        self.set_buffer(
            libc::SO_RCVBUFFORCE,
            libc::SO_RCVBUF,
            value,
            "setsockopt(SO_RCVBUF)",
        )?;
        self.set_buffer(
            libc::SO_SNDBUFFORCE,
            libc::SO_SNDBUF,
            value,
            "setsockopt(SO_SNDBUF)",
        )?;
        self.buffer_sizes()
    }

    fn set_buffer(
        &self,
        forced: libc::c_int,
        plain: libc::c_int,
        value: libc::c_int,
        op: &'static str,
    ) -> Result<()> {
        match setsockopt_int(self.fd.as_fd(), libc::SOL_SOCKET, forced, value) {
            // Without CAP_NET_ADMIN: take what the sysctl allows.
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
                setsockopt_int(self.fd.as_fd(), libc::SOL_SOCKET, plain, value)
                    .map_err(|e| Error::os(op, e))
            }
            other => other.map_err(|e| Error::os(op, e)),
        }
    }

    /// The receive and send buffer sizes in force.
    pub fn buffer_sizes(&self) -> Result<BufferSizes> {
        let get = |name, op| {
            getsockopt_int(self.fd.as_fd(), libc::SOL_SOCKET, name)
                // Buffer sizes are never negative.
                .map(|v| v as usize)
                .map_err(|e| Error::os(op, e))
        };
        Ok(BufferSizes {
            recv: get(libc::SO_RCVBUF, "getsockopt(SO_RCVBUF)")?,
            send: get(libc::SO_SNDBUF, "getsockopt(SO_SNDBUF)")?,
        })
    }

    /// Sets the fwmark of outgoing packets (`SO_MARK`; needs `CAP_NET_ADMIN`), for policy routing
    /// that keeps the tunnel's own packets out of the tunnel. 0 clears it.
    pub fn set_mark(&self, mark: u32) -> Result<()> {
        // SO_MARK takes the 32 bits as an int; reinterpreting the bits is intended.
        setsockopt_int(
            self.fd.as_fd(),
            libc::SOL_SOCKET,
            libc::SO_MARK,
            mark as libc::c_int,
        )
        .map_err(|e| Error::os("setsockopt(SO_MARK)", e))
    }

    /// The fwmark in force.
    pub fn mark(&self) -> Result<u32> {
        getsockopt_int(self.fd.as_fd(), libc::SOL_SOCKET, libc::SO_MARK)
            .map(|v| v as u32)
            .map_err(|e| Error::os("getsockopt(SO_MARK)", e))
    }

    /// Turns UDP GRO on or off (`UDP_GRO`, Linux 5.0+). With it on, a buffer passed to
    /// `recv_batch` can receive several same-sized datagrams from one sender glued together;
    /// [`RecvMeta::stride`](crate::RecvMeta) then gives the size of each. Buffers should be
    /// 64 KiB to benefit.
    pub fn set_gro(&self, on: bool) -> Result<()> {
        setsockopt_int(self.fd.as_fd(), libc::SOL_UDP, libc::UDP_GRO, on.into())
            .map_err(|e| Error::os("setsockopt(UDP_GRO)", e))
    }

    /// How many datagrams the kernel has dropped so far because the receive buffer was full, as
    /// reported with the last datagram received (`SO_RXQ_OVFL`). It can only be learned from
    /// datagrams, so it lags until the next one arrives.
    pub fn rx_dropped(&self) -> u32 {
        self.rx_dropped.load(Ordering::Relaxed)
    }

    /// Waits until a datagram can be read, at most `timeout` (`None`: forever); `Ok(false)` on
    /// timeout.
    pub fn wait_readable(&self, timeout: Option<Duration>) -> Result<bool> {
        self.wait(Interest::Read, Deadline::after(timeout))
    }

    /// Waits until a datagram can be sent, at most `timeout` (`None`: forever).
    pub fn wait_writable(&self, timeout: Option<Duration>) -> Result<bool> {
        self.wait(Interest::Write, Deadline::after(timeout))
    }

    /// `dst` as this socket's `sendmmsg` wants it; `None` if the socket cannot reach it (IPv6 on
    /// an IPv4 socket, IPv4 on an IPv6-only socket).
    pub(crate) fn encode_dst(&self, dst: SocketAddr) -> Option<(RawSockAddr, libc::socklen_t)> {
        let is_v4 = matches!(crate::canonical(dst), SocketAddr::V4(_));
        if is_v4 && self.family == libc::AF_INET6 && !self.dual_stack {
            return None;
        }
        RawSockAddr::encode(dst, self.family)
    }

    pub(crate) fn wait(&self, interest: Interest, deadline: Deadline) -> Result<bool> {
        fd::wait(self.fd.as_fd(), interest, deadline).map_err(|e| Error::os("ppoll(udp)", e))
    }
}

/// True if binding failed because the host has no IPv6 (disabled or not built).
fn is_ipv6_unavailable(err: &Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EAFNOSUPPORT) | Some(libc::EPROTONOSUPPORT) | Some(libc::EADDRNOTAVAIL)
    )
}

/// `getsockname(2)`.
fn local_addr(fd: BorrowedFd<'_>) -> Result<SocketAddr> {
    let mut sa = RawSockAddr::zeroed();
    let mut len = RawSockAddr::CAPACITY;
    // SAFETY: `sa` is writable storage of `len` bytes, and `len` is writable; the kernel writes
    // at most `len` bytes and updates `len`.
    let ret = unsafe { libc::getsockname(fd.as_raw_fd(), sa.as_mut_ptr().cast(), &mut len) };
    cvt(ret).map_err(|e| Error::os("getsockname", e))?;
    sa.decode(len).ok_or(Error::os(
        "getsockname",
        std::io::Error::from_raw_os_error(libc::EAFNOSUPPORT),
    ))
}

impl AsFd for UdpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_any_port_is_dual_stack_and_reports_the_port() {
        let sock = UdpSocket::bind(0).unwrap();
        assert_ne!(sock.port(), 0);
        if sock.is_dual_stack() {
            assert_eq!(sock.local_addr().ip(), Ipv6Addr::UNSPECIFIED);
        }
    }

    #[test]
    fn bind_addr_is_single_family() {
        let v4 = UdpSocket::bind_addr("127.0.0.1:0".parse().unwrap()).unwrap();
        assert!(!v4.is_dual_stack());
        assert_eq!(v4.local_addr().ip(), Ipv4Addr::LOCALHOST);
        assert_ne!(v4.port(), 0);
    }

    #[test]
    fn buffers_grow_at_least_within_the_sysctl_limit() {
        let sock = UdpSocket::bind_addr("127.0.0.1:0".parse().unwrap()).unwrap();
        let before = sock.buffer_sizes().unwrap();
        let after = sock.set_buffer_sizes(DEFAULT_BUFFER_SIZE).unwrap();
        assert!(
            after.recv >= before.recv.min(DEFAULT_BUFFER_SIZE),
            "{before:?} -> {after:?}"
        );
    }

    #[test]
    fn gro_can_be_switched() {
        let sock = UdpSocket::bind_addr("127.0.0.1:0".parse().unwrap()).unwrap();
        sock.set_gro(true).unwrap();
        sock.set_gro(false).unwrap();
    }

    #[test]
    fn wait_times_out_without_traffic() {
        let sock = UdpSocket::bind_addr("127.0.0.1:0".parse().unwrap()).unwrap();
        assert!(!sock.wait_readable(Some(Duration::from_millis(10))).unwrap());
        assert!(sock.wait_writable(Some(Duration::from_secs(1))).unwrap());
    }
}
