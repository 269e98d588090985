//! The split data path: encryption and decryption done without the [`Device`].
//!
//! [`Device::prepare_packet`] and [`Device::begin_datagram`] do the bookkeeping under the
//! caller's lock and hand out a [`SealJob`] or an [`OpenJob`]: the session key (shared, so the
//! device may replace the session meanwhile), the counter, and where the message lies in the
//! caller's buffer. Jobs run on any thread, one by one or in batches ([`seal_batch`],
//! [`open_batch`]) that give each run of jobs under one key to the backend at once.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::SocketAddr;

use super::handshake::HandshakeJob;
#[cfg(doc)]
use super::state::Device;
use super::state::Incoming;
use crate::crypto::AeadMessage;
use crate::error::DropReason;
use crate::keypair::SharedKey;
use crate::messages::{TRANSPORT_HEADER_SIZE, TRANSPORT_OVERHEAD};
use crate::peer::PeerId;

/// Outcome of [`Device::prepare_packet`].
#[derive(Debug)]
pub enum Prepared {
    /// The header and padding are written; [`SealJob::seal`] finishes the datagram.
    Seal {
        /// The peer it goes to.
        peer: PeerId,
        /// Where to send it.
        endpoint: SocketAddr,
        /// The encryption left to do.
        job: SealJob,
    },
    /// No session yet: the packet was copied to the peer's queue and a handshake started.
    Queued {
        /// The peer.
        peer: PeerId,
    },
    /// The packet was dropped.
    Dropped(DropReason),
}

/// The encryption of one transport datagram, done without the [`Device`]: it holds the session
/// key (shared, so the device may replace the session meanwhile) and the counter the device
/// assigned.
pub struct SealJob {
    pub(super) key: SharedKey,
    pub(super) counter: u64,
    /// Length of the padded plaintext.
    pub(super) padded: usize,
}

impl SealJob {
    /// Encrypts the padded packet at `buf[TRANSPORT_HEADER_SIZE..]` in place and appends the
    /// tag; `buf` is the buffer given to [`Device::prepare_packet`]. Returns the datagram length.
    /// A buffer shorter than [`SealJob::len`] is left alone and 0 returned.
    pub fn seal(&self, buf: &mut [u8]) -> usize {
        let Some(m) = self.message(buf) else {
            return 0;
        };
        *m.tag = self.key.seal(m.counter, m.body);
        self.len()
    }

    /// The datagram length.
    pub fn len(&self) -> usize {
        TRANSPORT_OVERHEAD + self.padded
    }

    /// The message [`SealJob::seal`] would seal in `buf`, for a batch ([`seal_batch`]); `None`
    /// if `buf` is shorter than [`SealJob::len`].
    fn message<'b>(&self, buf: &'b mut [u8]) -> Option<AeadMessage<'b>> {
        let dgram = buf.get_mut(TRANSPORT_HEADER_SIZE..self.len())?;
        let (body, tag) = dgram.split_at_mut(self.padded);
        Some(AeadMessage {
            counter: self.counter,
            body,
            tag: tag.try_into().ok()?,
            ok: false,
        })
    }

    /// Never true: a datagram has at least a header and a tag.
    pub fn is_empty(&self) -> bool {
        false
    }
}

impl core::fmt::Debug for SealJob {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "SealJob {{ counter: {}, len: {} }}",
            self.counter,
            self.len()
        )
    }
}

/// Outcome of [`Device::begin_datagram`].
#[derive(Debug)]
pub enum Begin {
    /// Fully handled (handshake, cookie reply or drop), as by [`Device::handle_datagram`].
    Done(Incoming),
    /// Transport data: decrypt with [`OpenJob::open`], then call [`Device::finish_datagram`].
    Open(OpenJob),
    /// An admitted handshake message, only with [`Device::set_static_dh_offloaded`]: run
    /// [`HandshakeJob::compute`], then call [`Device::finish_handshake`].
    Handshake(HandshakeJob),
}

/// The decryption of one transport datagram, done without the [`Device`].
pub struct OpenJob {
    pub(super) key: SharedKey,
    pub(super) peer: PeerId,
    /// The receiver index of the session.
    pub(super) index: u32,
    pub(super) counter: u64,
}

impl OpenJob {
    /// Decrypts the transport datagram `buf` (the buffer given to [`Device::begin_datagram`])
    /// in place; false if it does not authenticate.
    pub fn open(&self, buf: &mut [u8]) -> bool {
        self.message(buf)
            .is_some_and(|m| self.key.open(m.counter, m.body, m.tag).is_ok())
    }

    /// The peer the datagram claims to come from (authenticated only once opened).
    pub fn peer(&self) -> PeerId {
        self.peer
    }

    /// The message [`OpenJob::open`] would open in `buf`, for a batch ([`open_batch`]).
    fn message<'b>(&self, buf: &'b mut [u8]) -> Option<AeadMessage<'b>> {
        let body_len = buf.len().checked_sub(TRANSPORT_OVERHEAD)?;
        let (body, tag) = buf.get_mut(TRANSPORT_HEADER_SIZE..)?.split_at_mut(body_len);
        Some(AeadMessage {
            counter: self.counter,
            body,
            tag: tag.try_into().ok()?,
            ok: false,
        })
    }
}

impl core::fmt::Debug for OpenJob {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "OpenJob {{ peer: {:?}, counter: {} }}",
            self.peer, self.counter
        )
    }
}

/// Seals many datagrams, as [`SealJob::seal`] on each would, but hands each run of jobs under
/// the same session key to the backend at once ([`AeadKey::seal_batch`]), so a backend that
/// interleaves messages can. Each item is a job and the buffer it was prepared in; a buffer
/// shorter than the job's [`SealJob::len`] is skipped (left alone), as by [`SealJob::seal`].
///
/// [`AeadKey::seal_batch`]: crate::crypto::AeadKey::seal_batch
pub fn seal_batch<'a, 'b>(jobs: impl IntoIterator<Item = (&'a SealJob, &'b mut [u8])>) {
    let mut run: Vec<AeadMessage<'b>> = Vec::new();
    let mut key: Option<&'a SharedKey> = None;
    for (job, buf) in jobs {
        let Some(m) = job.message(buf) else {
            continue;
        };
        if let Some(k) = key.filter(|k| !Arc::ptr_eq(k, &job.key)) {
            k.seal_batch(&mut run);
            run.clear();
        }
        key = Some(&job.key);
        run.push(m);
    }
    if let Some(k) = key {
        k.seal_batch(&mut run);
    }
}

/// Opens many datagrams, as [`OpenJob::open`] on each would, handing each run of jobs under
/// the same session key to the backend at once ([`AeadKey::open_batch`]). Each item is a job,
/// the datagram it came with, and where to write whether it authenticated.
///
/// [`AeadKey::open_batch`]: crate::crypto::AeadKey::open_batch
pub fn open_batch<'a, 'b>(
    jobs: impl IntoIterator<Item = (&'a OpenJob, &'b mut [u8], &'b mut bool)>,
) {
    let mut run: Vec<AeadMessage<'b>> = Vec::new();
    let mut oks: Vec<&'b mut bool> = Vec::new();
    let mut key: Option<&'a SharedKey> = None;
    let flush = |k: &SharedKey, run: &mut Vec<AeadMessage<'b>>, oks: &mut Vec<&'b mut bool>| {
        k.open_batch(run);
        for (m, ok) in run.drain(..).zip(oks.drain(..)) {
            *ok = m.ok;
        }
    };
    for (job, buf, ok) in jobs {
        *ok = false;
        let Some(m) = job.message(buf) else {
            continue;
        };
        if let Some(k) = key.filter(|k| !Arc::ptr_eq(k, &job.key)) {
            flush(k, &mut run, &mut oks);
        }
        key = Some(&job.key);
        run.push(m);
        oks.push(ok);
    }
    if let Some(k) = key {
        flush(k, &mut run, &mut oks);
    }
}
