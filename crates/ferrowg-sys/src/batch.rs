//! Batched UDP I/O: `recvmmsg` with each datagram's length, source address, GRO stride and the
//! kernel's drop counter (`SO_RXQ_OVFL`), and `sendmmsg` to a destination per datagram with an
//! optional UDP GSO segment size (`UDP_SEGMENT`) per datagram.
//!
//! Up to [`BATCH_MAX`] datagrams go through one system call. The message headers, address and
//! control buffers for them (about 22 KiB) are allocated and zeroed once per thread and reused,
//! so a call touches only the entries it uses: nothing is allocated or cleared per batch, a
//! one-datagram call stays within a few cache lines, and the socket can be used from several
//! threads at once.

use std::cell::Cell;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::ptr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::fd::{cvt, Deadline, Interest};
use crate::sockaddr::RawSockAddr;
use crate::udp::UdpSocket;

/// The most datagrams moved by one `recvmmsg`/`sendmmsg` (wireguard-go's `IdealBatchSize`).
/// Larger batches are split into several calls (send) or cut short (receive).
pub const BATCH_MAX: usize = 128;

/// The most segments the kernel accepts in one UDP GSO send (`UDP_MAX_SEGMENTS` of the oldest
/// kernels with GSO; newer ones allow 128).
pub const GSO_MAX_SEGMENTS: usize = 64;

/// Control-message room per datagram: `SO_RXQ_OVFL` (u32) and `UDP_GRO` (int) on receive,
/// `UDP_SEGMENT` (u16) on send; each takes `CMSG_SPACE(4)` = 24 bytes on 64-bit Linux.
const CMSG_CAP: usize = 64;

/// A control-message buffer, aligned for `struct cmsghdr`.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct CmsgBuf([u8; CMSG_CAP]);

/// What `recv_batch` learned about one datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecvMeta {
    /// Bytes written to the buffer.
    pub len: usize,
    /// The sender, with a v4-mapped IPv6 address turned into plain IPv4.
    pub src: SocketAddr,
    /// With GRO on, the size of each of the datagrams glued together in the buffer (the last may
    /// be shorter); otherwise equal to `len`.
    pub stride: usize,
    /// The datagram was larger than the buffer and was cut to `len` bytes.
    pub truncated: bool,
}

impl Default for RecvMeta {
    fn default() -> Self {
        RecvMeta {
            len: 0,
            src: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
            stride: 0,
            truncated: false,
        }
    }
}

/// One datagram (or, with a segment size, one GSO super-datagram) for [`UdpSocket::send_batch`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Transmit<'a> {
    /// Where to send it. IPv4 destinations work on a dual-stack socket.
    pub dst: SocketAddr,
    /// The payload.
    pub contents: &'a [u8],
    /// If set, the kernel cuts `contents` into datagrams of this size (the last may be shorter),
    /// all to `dst` (`UDP_SEGMENT`). At most [`GSO_MAX_SEGMENTS`] segments.
    pub segment_size: Option<u16>,
}

impl<'a> Transmit<'a> {
    /// One datagram of `contents` to `dst`.
    pub fn new(dst: SocketAddr, contents: &'a [u8]) -> Self {
        Transmit {
            dst,
            contents,
            segment_size: None,
        }
    }

    /// `contents` cut by the kernel into datagrams of `segment_size` bytes (UDP GSO).
    pub fn with_segment_size(mut self, segment_size: u16) -> Self {
        self.segment_size = Some(segment_size);
        self
    }
}

/// Scratch space for one `recvmmsg`/`sendmmsg` at a time: the message headers point into the
/// other arrays, so it must not move between filling and the system call. Each call fills in
/// every field the kernel reads for the entries it uses ([`Scratch::prepare`]), so what an
/// earlier call left behind does not matter.
struct Scratch {
    hdrs: [libc::mmsghdr; BATCH_MAX],
    iovs: [libc::iovec; BATCH_MAX],
    addrs: [RawSockAddr; BATCH_MAX],
    cmsgs: [CmsgBuf; BATCH_MAX],
}

impl Scratch {
    fn new() -> Self {
        // SAFETY: every member is an array of C structs made of integers, raw pointers and byte
        // arrays (or a union of such), for which all-zero bytes are valid (null pointers,
        // zero lengths, AF_UNSPEC addresses).
        unsafe { std::mem::zeroed() }
    }

    /// Runs `f` with this thread's scratch space, made on first use. The space is taken out of
    /// its slot for the call and put back after, so a nested call (there is none) or one while
    /// the thread exits would find the slot empty and use a fresh one.
    fn with<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
        thread_local! {
            static SCRATCH: Cell<Option<Box<Scratch>>> = const { Cell::new(None) };
        }
        let mut s = SCRATCH
            .try_with(Cell::take)
            .ok()
            .flatten()
            .unwrap_or_else(|| Box::new(Scratch::new()));
        let r = f(&mut s);
        // Fails only while the thread exits: the space is then freed.
        let _ = SCRATCH.try_with(|slot| slot.set(Some(s)));
        r
    }

    /// Points message `i` at `buf`, at address slot `i` (`name_len` bytes valid) and at control
    /// slot `i` (`control_len` bytes); clears what the kernel wrote there last time.
    fn prepare(&mut self, i: usize, buf: *mut u8, len: usize, name_len: u32, control_len: usize) {
        self.iovs[i] = libc::iovec {
            iov_base: buf.cast(),
            iov_len: len,
        };
        let hdr = &mut self.hdrs[i].msg_hdr;
        hdr.msg_name = self.addrs[i].as_mut_ptr();
        hdr.msg_namelen = name_len;
        hdr.msg_iov = &mut self.iovs[i];
        hdr.msg_iovlen = 1;
        hdr.msg_control = if control_len == 0 {
            ptr::null_mut()
        } else {
            self.cmsgs[i].0.as_mut_ptr().cast()
        };
        hdr.msg_controllen = control_len as _;
        hdr.msg_flags = 0;
        self.hdrs[i].msg_len = 0;
    }
}

/// `CMSG_SPACE(len)`: the room a control message with `len` data bytes takes.
fn cmsg_space(len: usize) -> usize {
    // SAFETY: CMSG_SPACE is a pure size computation (`unsafe` in libc by declaration only);
    // callers pass small constants, so the u32 conversion is exact.
    unsafe { libc::CMSG_SPACE(len as u32) as usize }
}

/// `CMSG_LEN(len)`: the `cmsg_len` of a control message with `len` data bytes.
fn cmsg_len(len: usize) -> usize {
    // SAFETY: as for cmsg_space(), a pure size computation on a small constant.
    unsafe { libc::CMSG_LEN(len as u32) as usize }
}

/// Reads the control messages of one received datagram: (GRO segment size, drop counter).
fn parse_cmsgs(hdr: &libc::msghdr) -> (Option<usize>, Option<u32>) {
    let mut gro = None;
    let mut drops = None;
    // SAFETY: `hdr.msg_control` is null or points to a CmsgBuf of this call's Scratch, and the
    // kernel set `msg_controllen` to the bytes it wrote there; CMSG_FIRSTHDR only reads `hdr`.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(hdr) };
    while !cmsg.is_null() {
        // SAFETY: CMSG_FIRSTHDR/CMSG_NXTHDR return null or a pointer to a whole, aligned
        // `cmsghdr` inside the control buffer.
        let c = unsafe { &*cmsg };
        if c.cmsg_len as usize >= cmsg_len(size_of::<u32>()) {
            // SAFETY: the message is at least CMSG_LEN(4) bytes, so 4 data bytes follow the
            // header inside the buffer; read_unaligned copes with any alignment.
            let value = unsafe { ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<u32>()) };
            match (c.cmsg_level, c.cmsg_type) {
                (libc::SOL_SOCKET, libc::SO_RXQ_OVFL) => drops = Some(value),
                (libc::SOL_UDP, libc::UDP_GRO) => gro = Some(value as usize),
                _ => {}
            }
        }
        // SAFETY: `cmsg` came from CMSG_FIRSTHDR/CMSG_NXTHDR on this same `hdr`.
        cmsg = unsafe { libc::CMSG_NXTHDR(hdr, cmsg) };
    }
    (gro, drops)
}

impl UdpSocket {
    /// Receives up to `min(bufs.len(), meta.len(), BATCH_MAX)` datagrams with one `recvmmsg`:
    /// waits at most `timeout` (`None`: forever) for the first, then takes what is queued.
    /// Datagram `i` lands in `bufs[i]`, described by `meta[i]`. Returns the count, 0 on timeout.
    pub fn recv_batch<B: AsMut<[u8]>>(
        &self,
        bufs: &mut [B],
        meta: &mut [RecvMeta],
        timeout: Option<Duration>,
    ) -> Result<usize> {
        let deadline = Deadline::after(timeout);
        loop {
            match self.recv_once(bufs, meta) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Nothing queued: with no time left (a zero timeout), no need to ask poll.
                    if deadline.remaining() == Some(Duration::ZERO)
                        || !self.wait(Interest::Read, deadline)?
                    {
                        return Ok(0);
                    }
                }
                other => return other.map_err(|e| Error::os("recvmmsg", e)),
            }
        }
    }

    fn recv_once<B: AsMut<[u8]>>(
        &self,
        bufs: &mut [B],
        meta: &mut [RecvMeta],
    ) -> io::Result<usize> {
        Scratch::with(|s| self.recv_into(s, bufs, meta))
    }

    fn recv_into<B: AsMut<[u8]>>(
        &self,
        s: &mut Scratch,
        bufs: &mut [B],
        meta: &mut [RecvMeta],
    ) -> io::Result<usize> {
        let n = bufs.len().min(meta.len()).min(BATCH_MAX);
        if n == 0 {
            return Ok(0);
        }
        for (i, buf) in bufs[..n].iter_mut().enumerate() {
            let buf = buf.as_mut();
            s.prepare(
                i,
                buf.as_mut_ptr(),
                buf.len(),
                RawSockAddr::CAPACITY,
                CMSG_CAP,
            );
        }
        // SAFETY: the first `n` headers of `s` point at `n` distinct caller buffers (valid and
        // writable for their lengths, borrowed mutably for this call) and at address and control
        // slots inside `s`, which does not move until the call returns; no timeout is passed.
        let ret = unsafe {
            libc::recvmmsg(
                self.fd.as_raw_fd(),
                s.hdrs.as_mut_ptr(),
                n as libc::c_uint,
                libc::MSG_DONTWAIT,
                ptr::null_mut(),
            )
        };
        let got = cvt(ret)? as usize;
        let mut dropped = None;
        for (i, m) in meta[..got].iter_mut().enumerate() {
            let hdr = &s.hdrs[i].msg_hdr;
            let (stride, drops) = parse_cmsgs(hdr);
            let len = s.hdrs[i].msg_len as usize;
            *m = RecvMeta {
                len,
                // Only AF_INET/AF_INET6 senders exist on a UDP socket; unspecified otherwise.
                src: s.addrs[i]
                    .decode(hdr.msg_namelen)
                    .unwrap_or(RecvMeta::default().src),
                stride: stride.unwrap_or(len),
                truncated: hdr.msg_flags & libc::MSG_TRUNC != 0,
            };
            dropped = drops.or(dropped);
        }
        if let Some(d) = dropped {
            // The counter only grows (modulo wrap-around after 4 billion drops).
            self.rx_dropped.fetch_max(d, Ordering::Relaxed);
        }
        Ok(got)
    }

    /// Sends `msgs` in order with as few `sendmmsg` calls as possible, waiting at most `timeout`
    /// (`None`: forever) each time the send buffer is full.
    ///
    /// Returns how many were sent, like `write(2)` returns bytes: fewer than `msgs.len()` if a
    /// wait timed out, or if message `n` failed after `n > 0` were sent; the error is then
    /// reported by the next call, which starts at that message. A data path that must not stall
    /// on one bad destination skips it on error and carries on.
    pub fn send_batch(&self, msgs: &[Transmit<'_>], timeout: Option<Duration>) -> Result<usize> {
        // Set at the first full send buffer: most calls never wait, nor read the clock.
        let mut deadline = None;
        let mut sent = 0;
        while sent < msgs.len() {
            match self.send_once(&msgs[sent..]) {
                // sendmmsg sends at least one message or fails; never spin on a zero.
                Ok(0) => break,
                Ok(n) => sent += n,
                Err(SendError::Os(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    let deadline = *deadline.get_or_insert_with(|| Deadline::after(timeout));
                    if !self.wait(Interest::Write, deadline)? {
                        break;
                    }
                }
                Err(_) if sent > 0 => break,
                Err(SendError::Os(e)) => return Err(Error::os("sendmmsg", e)),
                Err(SendError::Family(addr)) => {
                    return Err(Error::AddressFamily {
                        addr,
                        local: self.local_addr(),
                    })
                }
            }
        }
        Ok(sent)
    }

    /// Sends one datagram to `dst` without waiting: a full send buffer is an error of kind
    /// `WouldBlock` (drop the packet, as a full NIC queue would, or wait and retry).
    pub fn send_to(&self, buf: &[u8], dst: SocketAddr) -> Result<()> {
        self.send_one(Transmit::new(dst, buf))
    }

    /// Sends `buf` to `dst` as datagrams of `segment_size` bytes with one system call (UDP GSO),
    /// without waiting, like [`send_to`](Self::send_to).
    pub fn send_gso(&self, buf: &[u8], segment_size: u16, dst: SocketAddr) -> Result<()> {
        self.send_one(Transmit::new(dst, buf).with_segment_size(segment_size))
    }

    fn send_one(&self, msg: Transmit<'_>) -> Result<()> {
        match self.send_batch(&[msg], Some(Duration::ZERO))? {
            1 => Ok(()),
            _ => Err(Error::os("sendmmsg", io::ErrorKind::WouldBlock.into())),
        }
    }

    /// One `sendmmsg` of up to BATCH_MAX leading messages; stops before the first destination
    /// this socket cannot reach (reporting it if it is the first).
    fn send_once(&self, msgs: &[Transmit<'_>]) -> Result<usize, SendError> {
        Scratch::with(|s| self.send_from(s, msgs))
    }

    fn send_from(&self, s: &mut Scratch, msgs: &[Transmit<'_>]) -> Result<usize, SendError> {
        let mut n = 0;
        for (i, msg) in msgs.iter().take(BATCH_MAX).enumerate() {
            let Some((addr, addr_len)) = self.encode_dst(msg.dst) else {
                if i == 0 {
                    return Err(SendError::Family(msg.dst));
                }
                break;
            };
            s.addrs[i] = addr;
            let control_len = match msg.segment_size {
                Some(_) => cmsg_space(size_of::<u16>()),
                None => 0,
            };
            // sendmmsg only reads through iov_base; the *mut is what iovec's type demands.
            let base = msg.contents.as_ptr().cast_mut();
            s.prepare(i, base, msg.contents.len(), addr_len, control_len);
            if let Some(size) = msg.segment_size {
                write_segment_cmsg(&s.hdrs[i].msg_hdr, size);
            }
            n = i + 1;
        }
        // SAFETY: the first `n` headers of `s` point at `n` caller buffers (valid for reads of
        // their lengths for this call; the kernel does not write through them), and at address
        // and control slots inside `s`, which does not move until the call returns.
        let ret = unsafe {
            libc::sendmmsg(
                self.fd.as_raw_fd(),
                s.hdrs.as_mut_ptr(),
                n as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        cvt(ret).map(|sent| sent as usize).map_err(SendError::Os)
    }
}

/// Writes the `UDP_SEGMENT` control message into the control buffer of `hdr`, which must have
/// room for `CMSG_SPACE(2)` bytes.
fn write_segment_cmsg(hdr: &libc::msghdr, segment_size: u16) {
    // SAFETY: `hdr.msg_control` points to a CmsgBuf (aligned, CMSG_CAP bytes) and
    // `msg_controllen` is CMSG_SPACE(2) <= CMSG_CAP, so the first header lies in the buffer.
    let cmsg = unsafe { libc::CMSG_FIRSTHDR(hdr) };
    debug_assert!(!cmsg.is_null());
    // SAFETY: `cmsg` points to an aligned `cmsghdr` within the buffer (see above), and its data
    // area of CMSG_LEN(2) - sizeof(cmsghdr) = 2 bytes lies within CMSG_SPACE(2) as well.
    unsafe {
        (*cmsg).cmsg_level = libc::SOL_UDP;
        (*cmsg).cmsg_type = libc::UDP_SEGMENT;
        (*cmsg).cmsg_len = cmsg_len(size_of::<u16>()) as _;
        ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u16>(), segment_size);
    }
}

/// Why one `sendmmsg` did not happen.
enum SendError {
    /// The first destination is of a family this socket cannot reach.
    Family(SocketAddr),
    /// The system call failed.
    Os(io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const WAIT: Option<Duration> = Some(Duration::from_secs(5));

    #[test]
    fn batch_round_trip_over_v4_loopback() {
        let a = UdpSocket::bind_addr("127.0.0.1:0".parse().unwrap()).unwrap();
        let b = UdpSocket::bind_addr("127.0.0.1:0".parse().unwrap()).unwrap();
        let payloads: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i; 100 + usize::from(i)]).collect();
        let msgs: Vec<Transmit<'_>> = payloads
            .iter()
            .map(|p| Transmit::new(b.local_addr(), p))
            .collect();
        assert_eq!(a.send_batch(&msgs, WAIT).unwrap(), 8);

        let mut bufs = vec![vec![0u8; 2048]; 16];
        let mut meta = vec![RecvMeta::default(); 16];
        let mut got = 0;
        while got < 8 {
            let n = b
                .recv_batch(&mut bufs[got..], &mut meta[got..], WAIT)
                .unwrap();
            assert_ne!(n, 0, "timed out");
            got += n;
        }
        for (i, m) in meta[..8].iter().enumerate() {
            assert_eq!(m.src, a.local_addr());
            assert_eq!(m.len, payloads[i].len());
            assert_eq!(m.stride, m.len);
            assert!(!m.truncated);
            assert_eq!(&bufs[i][..m.len], &payloads[i][..]);
        }
    }

    #[test]
    fn recv_times_out_with_zero() {
        let a = UdpSocket::bind_addr("127.0.0.1:0".parse().unwrap()).unwrap();
        let mut bufs = [[0u8; 64]; 2];
        let mut meta = [RecvMeta::default(); 2];
        assert_eq!(
            a.recv_batch(&mut bufs, &mut meta, Some(Duration::from_millis(10)))
                .unwrap(),
            0
        );
    }

    #[test]
    fn truncation_is_flagged() {
        let a = UdpSocket::bind_addr("127.0.0.1:0".parse().unwrap()).unwrap();
        a.send_to(&[7u8; 100], a.local_addr()).unwrap();
        let mut bufs = [[0u8; 10]];
        let mut meta = [RecvMeta::default()];
        assert_eq!(a.recv_batch(&mut bufs, &mut meta, WAIT).unwrap(), 1);
        assert!(meta[0].truncated);
        assert_eq!(meta[0].len, 10);
    }

    /// The thread's scratch space is reused: nothing from one call (a truncation flag, a GSO
    /// control message, a longer batch) shows in the next.
    #[test]
    fn reused_scratch_keeps_no_state_between_calls() {
        let a = UdpSocket::bind_addr("127.0.0.1:0".parse().unwrap()).unwrap();
        let b = UdpSocket::bind_addr("127.0.0.1:0".parse().unwrap()).unwrap();
        let seg = [5u8; 300];
        let msgs = [
            Transmit::new(b.local_addr(), &seg[..100]).with_segment_size(50),
            Transmit::new(b.local_addr(), &seg[..70]),
            Transmit::new(b.local_addr(), &seg[..20]),
        ];
        assert_eq!(a.send_batch(&msgs, WAIT).unwrap(), 3);
        // No segment size this time: must arrive as one datagram of 80 bytes.
        assert_eq!(
            a.send_batch(&[Transmit::new(b.local_addr(), &seg[..80])], WAIT)
                .unwrap(),
            1
        );
        let mut got = Vec::new();
        let mut meta = [RecvMeta::default(); 8];
        while got.len() < 5 {
            // A 60-byte buffer truncates the 70- and 80-byte datagrams, not the others.
            let mut bufs = vec![[0u8; 60]; 8];
            let n = b.recv_batch(&mut bufs, &mut meta, WAIT).unwrap();
            assert_ne!(n, 0, "timed out");
            got.extend(meta[..n].iter().map(|m| (m.len, m.truncated)));
        }
        assert_eq!(
            got,
            [
                (50, false),
                (50, false),
                (60, true),
                (20, false),
                (60, true)
            ]
        );
    }

    #[test]
    fn ipv6_destination_on_ipv4_socket_is_a_family_error() {
        let a = UdpSocket::bind_addr("127.0.0.1:0".parse().unwrap()).unwrap();
        let err = a
            .send_to(b"x", "[2001:db8::1]:1".parse().unwrap())
            .unwrap_err();
        assert!(matches!(err, Error::AddressFamily { .. }), "{err}");
        // A v4-mapped destination is fine on an IPv4 socket.
        let mapped = SocketAddr::from((Ipv4Addr::LOCALHOST.to_ipv6_mapped(), a.port()));
        a.send_to(b"x", mapped).unwrap();
    }

    #[test]
    fn batch_stops_before_an_unreachable_family() {
        let a = UdpSocket::bind_addr("127.0.0.1:0".parse().unwrap()).unwrap();
        let good = Transmit::new(a.local_addr(), b"ok");
        let bad = Transmit::new("[2001:db8::1]:1".parse().unwrap(), b"no");
        assert_eq!(a.send_batch(&[good, good, bad, good], WAIT).unwrap(), 2);
        assert!(a.send_batch(&[bad, good], WAIT).is_err());
    }
}
