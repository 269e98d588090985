//! One readiness queue (`epoll`) shared by several threads, so that whichever thread is free
//! takes the next descriptor that became readable.
//!
//! Two properties of Linux's epoll make this the right tool for a data path with one thread per
//! direction that should become one thread while the load is low:
//! - every descriptor is registered *one-shot*: once an event for it is handed to one thread,
//!   the descriptor is disarmed until that thread [`rearm`](Poller::rearm)s it, so no two threads
//!   ever work on the same descriptor and nobody is woken for work already taken;
//! - threads waiting in `epoll_wait` are woken last-in, first-out: the thread that went back to
//!   waiting most recently (whose CPU and caches are warm) takes the next event. The thread that
//!   just sent a request is thus the one that receives its answer.
//!
//! Readiness is level-triggered: re-arming a descriptor that is still readable reports it again
//! at once, so data that arrives between the last read and the re-arm is never missed.

use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::fd::{cvt, Deadline};

/// Events of an armed descriptor: readable, once.
const ARMED: u32 = (libc::EPOLLIN | libc::EPOLLONESHOT) as u32;
/// Events of a disarmed one: none (errors and hang-ups are reported regardless, once).
const DISARMED: u32 = libc::EPOLLONESHOT as u32;

/// An epoll instance whose descriptors each carry a caller-chosen token.
#[derive(Debug)]
pub struct Poller {
    epfd: OwnedFd,
}

impl Poller {
    /// A new, empty readiness queue.
    pub fn new() -> Result<Poller> {
        // SAFETY: epoll_create1 takes no pointers; it returns a new descriptor or -1.
        let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })
            .map_err(|e| Error::os("epoll_create1", e))?;
        // SAFETY: `fd` was just returned by epoll_create1, so it is open and owned by nobody else.
        let epfd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Poller { epfd })
    }

    /// Registers `fd` for readability, armed, reporting `token`. Errors (`EEXIST`, …) leave the
    /// queue as it was.
    pub fn add(&self, fd: impl AsFd, token: u64) -> Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, token, ARMED, "epoll_ctl(ADD)")
    }

    /// Arms `fd` again after its event was taken; reported at once if it is still readable.
    pub fn rearm(&self, fd: impl AsFd, token: u64) -> Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, token, ARMED, "epoll_ctl(MOD)")
    }

    /// Keeps `fd` registered but wakes nobody for it until it is [`rearm`](Self::rearm)ed: for a
    /// thread about to cause data on `fd` that it will read itself.
    pub fn disarm(&self, fd: impl AsFd, token: u64) -> Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, token, DISARMED, "epoll_ctl(MOD)")
    }

    /// Stops watching `fd` (closing it does so as well).
    pub fn remove(&self, fd: impl AsFd) -> Result<()> {
        self.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0, "epoll_ctl(DEL)")
    }

    fn ctl(
        &self,
        op: libc::c_int,
        fd: impl AsFd,
        token: u64,
        events: u32,
        what: &'static str,
    ) -> Result<()> {
        let mut ev = libc::epoll_event { events, u64: token };
        // SAFETY: `epfd` is our open epoll descriptor and `fd` a live one borrowed for the call;
        // `ev` is a valid epoll_event that lives across the call (the kernel copies it; DEL
        // ignores it).
        let ret =
            unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), op, fd.as_fd().as_raw_fd(), &mut ev) };
        cvt(ret).map(drop).map_err(|e| Error::os(what, e))
    }

    /// Waits at most `timeout` (`None`: forever) for one armed descriptor to become readable
    /// (or to report an error or hang-up, which the next read then shows) and returns its token;
    /// `Ok(None)` on timeout. The descriptor is disarmed until [`rearm`](Self::rearm)ed.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<Option<u64>> {
        let deadline = Deadline::after(timeout);
        loop {
            let ms = match deadline.remaining() {
                None => -1,
                // Round up, so a short wait is not a busy loop of zero-millisecond waits.
                Some(d) => libc::c_int::try_from(d.as_nanos().div_ceil(1_000_000))
                    .unwrap_or(libc::c_int::MAX),
            };
            let mut ev = libc::epoll_event { events: 0, u64: 0 };
            // SAFETY: `epfd` is our open epoll descriptor and `ev` room for exactly the one event
            // we ask for (maxevents = 1); it lives across the call.
            let ret = unsafe { libc::epoll_wait(self.epfd.as_raw_fd(), &mut ev, 1, ms) };
            match cvt(ret) {
                Ok(0) => return Ok(None),
                Ok(_) => return Ok(Some(ev.u64)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::os("epoll_wait", e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::sync::{Arc, Barrier};

    fn pair() -> (UdpSocket, UdpSocket) {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        a.connect(b.local_addr().unwrap()).unwrap();
        (a, b)
    }

    #[test]
    fn reports_the_readable_descriptor_once_until_rearmed() {
        let p = Poller::new().unwrap();
        let (a1, b1) = pair();
        let (a2, b2) = pair();
        p.add(&b1, 1).unwrap();
        p.add(&b2, 2).unwrap();
        assert_eq!(p.wait(Some(Duration::ZERO)).unwrap(), None);
        a1.send(b"x").unwrap();
        assert_eq!(p.wait(Some(Duration::from_secs(5))).unwrap(), Some(1));
        // Disarmed: still readable, but not reported again.
        assert_eq!(p.wait(Some(Duration::from_millis(20))).unwrap(), None);
        // Level-triggered re-arm: the unread datagram is reported at once.
        p.rearm(&b1, 1).unwrap();
        assert_eq!(p.wait(Some(Duration::ZERO)).unwrap(), Some(1));
        let mut buf = [0u8; 8];
        assert_eq!(b1.recv(&mut buf).unwrap(), 1);
        p.rearm(&b1, 1).unwrap();
        assert_eq!(p.wait(Some(Duration::from_millis(20))).unwrap(), None);
        // Removed: a datagram is no longer reported.
        p.remove(&b1).unwrap();
        a1.send(b"y").unwrap();
        assert_eq!(p.wait(Some(Duration::from_millis(20))).unwrap(), None);
        assert!(p.rearm(&b1, 1).is_err(), "no longer registered");
        // Disarmed by hand: a datagram wakes nobody until the re-arm reports it.
        p.disarm(&b2, 2).unwrap();
        a2.send(b"z").unwrap();
        assert_eq!(p.wait(Some(Duration::from_millis(20))).unwrap(), None);
        p.rearm(&b2, 2).unwrap();
        assert_eq!(p.wait(Some(Duration::ZERO)).unwrap(), Some(2));
        assert!(p.add(&b2, 2).is_err(), "already registered");
    }

    #[test]
    fn one_event_wakes_one_of_several_waiting_threads() {
        let p = Arc::new(Poller::new().unwrap());
        let (a, b) = pair();
        p.add(&b, 7).unwrap();
        let start = Arc::new(Barrier::new(3));
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let (p, start) = (p.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    p.wait(Some(Duration::from_millis(500))).unwrap()
                })
            })
            .collect();
        start.wait();
        std::thread::sleep(Duration::from_millis(50));
        a.send(b"x").unwrap();
        let got: Vec<_> = waiters.into_iter().map(|w| w.join().unwrap()).collect();
        assert_eq!(got.iter().filter(|t| **t == Some(7)).count(), 1, "{got:?}");
        assert_eq!(got.iter().filter(|t| t.is_none()).count(), 1, "{got:?}");
    }
}
