//! The hub's [`Forwarding`] policy: a packet from device A to device B passes when the
//! [`View`]'s policy lets A open the flow, or it belongs to a flow already open between them
//! (`ferrowg_hub_filter`). Both devices must be in the directory (a revoked device is not);
//! with no policy set, nothing passes between devices.
//!
//! An end of the packet is the device itself, with its tag, when the packet's address is the
//! device's own; otherwise it is a site behind the device, which the policy names by prefix.

use std::net::SocketAddr;
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ferrowg_daemon::Forwarding;
use ferrowg_hub_filter::{Counters, Filter, Side, Verdict};
use ferrowg_policy::Compiled;
use ferrowg_proto::device::{ip_destination, ip_length_and_source};

use crate::directory::Member;
use crate::view::View;

/// The forwarding decision of the hub's interface.
pub struct HubForwarding {
    view: Arc<View>,
    /// Where the senders of datagrams for unknown sessions go ([`crate::takeover`]).
    takeover: SyncSender<SocketAddr>,
    /// The flow table and the policy it was last given.
    filter: Mutex<Filter>,
    /// The clock of the flow table (seconds since this value was made).
    start: Instant,
}

impl HubForwarding {
    /// Decides with what `view` holds; senders of datagrams for sessions the interface does
    /// not have go to `takeover`.
    pub(crate) fn new(view: Arc<View>, takeover: SyncSender<SocketAddr>) -> HubForwarding {
        HubForwarding {
            view,
            takeover,
            filter: Mutex::new(Filter::new(Arc::new(Compiled::default()))),
            start: Instant::now(),
        }
    }

    /// The filter's counters (drops by reason).
    pub fn counters(&self) -> Counters {
        self.lock().counters()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Filter> {
        self.filter.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Forwarding for HubForwarding {
    fn unknown_session(&self, from: SocketAddr) {
        // Full: dropped; the device sends again.
        let _ = self.takeover.try_send(from);
    }

    fn allow(&self, from: &[u8; 32], to: &[u8; 32], packet: &mut [u8]) -> bool {
        let policy = self.view.policy();
        let Some(policy) = policy.as_ref() else {
            return false;
        };
        let directory = self.view.directory();
        let (Some(a), Some(b)) = (directory.get(from), directory.get(to)) else {
            return false;
        };
        let (Some((_, src)), Some(dst)) = (ip_length_and_source(packet), ip_destination(packet))
        else {
            return false;
        };
        let (a_tag, b_tag) = (a.tag.as_deref(), b.tag.as_deref());
        let src_side = side(a, src, a_tag.as_slice());
        let dst_side = side(b, dst, b_tag.as_slice());
        let now = self.start.elapsed().as_secs();
        let mut filter = self.lock();
        if !Arc::ptr_eq(filter.policy(), policy) {
            filter.set_policy(policy.clone());
        }
        filter.check(now, packet, &src_side, &dst_side) == Verdict::Forward
    }
}

/// The end of a packet at address `addr` of device `m` with `tags` (its tag, or none while
/// pending): the device when the address is its own, a site behind it otherwise.
fn side<'a>(m: &'a Member, addr: std::net::IpAddr, tags: &'a [&'a str]) -> Side<'a> {
    if !m.owns(addr) {
        return Side::default();
    }
    Side {
        device: Some(&m.name),
        tags,
    }
}
