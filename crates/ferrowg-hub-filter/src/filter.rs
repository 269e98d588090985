//! The filter the hub asks about each packet it would forward from one device to another: the
//! policy decides who may open a flow, the flow table lets the flow's packets through in both
//! directions afterwards.
//!
//! Rules, per packet (after [`crate::packet::parse`]; a packet it refuses is dropped as
//! [`DropReason::Malformed`]):
//!
//! - A packet of a tracked flow is forwarded, from either end, and advances the flow's state.
//!   If the policy changed since the flow was last allowed, the flow is checked again first
//!   (one [`Compiled::allows`] call, on the flow's next packet); a flow the policy no longer
//!   allows is removed and the packet is judged as a new one.
//! - A packet of no tracked flow is forwarded if the policy lets its source open a flow to its
//!   destination for its protocol and destination port, and then tracked; else dropped as
//!   [`DropReason::Policy`]. TCP is picked up mid-stream (a non-SYN packet may open a flow, so
//!   a hub restart does not cut connections the policy allows). A TCP RST, an ICMP echo reply
//!   and ICMP messages other than echo and errors are forwarded if allowed but never open a
//!   flow.
//! - The responder of a flow cannot turn it round: a TCP SYN (without ACK) or an echo request
//!   from the responder is judged as the responder opening a flow of its own.
//! - An ICMP error is forwarded if the packet it quotes belongs to a tracked flow opened or
//!   answered by the error's destination (so that "packet too big" reaches the sender);
//!   otherwise it is judged as a new ICMP packet, never tracked.
//! - Fragments: a first fragment is judged like a whole packet; when forwarded it lets the
//!   later fragments of the same packet (protocol, addresses, identification) through for
//!   [`crate::Timeouts::fragment`] seconds. A later fragment without a forwarded first
//!   fragment is dropped as [`DropReason::Fragment`], so later fragments that overtake their
//!   first fragment are lost.

use std::sync::{Arc, Mutex, MutexGuard};

use ferrowg_policy::{Compiled, Proto, Subject};

use crate::flows::{FlowKey, FlowTable, State, Timeouts, DEFAULT_CAPACITY};
use crate::packet::{self, Flow, Kind, Packet, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN};

/// Expired entries removed per packet at most (so that reaping is O(1) per packet).
const REAP_PER_PACKET: usize = 4;

/// One end of a packet as the hub knows it: the device it comes from or goes to. The address
/// is the packet's own.
#[derive(Debug, Clone, Copy, Default)]
pub struct Side<'a> {
    /// The enrolled device; `None` for an address that is not a device's own (a site).
    pub device: Option<&'a str>,
    /// The device's tags, `tag:` included.
    pub tags: &'a [&'a str],
}

/// What to do with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Encrypt it to the destination device.
    Forward,
    /// Drop it, for this reason.
    Drop(DropReason),
}

/// Why a packet was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropReason {
    /// The policy does not let the source open this flow.
    Policy,
    /// The packet is not a readable IPv4 or IPv6 packet ([`crate::ParseError`]).
    Malformed,
    /// A later fragment whose first fragment was not forwarded.
    Fragment,
}

/// What the filter did, since it was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Packets forwarded.
    pub forwarded: u64,
    /// Flows opened (entries added, fragment entries included).
    pub flows_opened: u64,
    /// Packets dropped as [`DropReason::Policy`].
    pub dropped_policy: u64,
    /// Packets dropped as [`DropReason::Malformed`].
    pub dropped_malformed: u64,
    /// Packets dropped as [`DropReason::Fragment`].
    pub dropped_fragment: u64,
    /// Flows removed because a policy change no longer allows them.
    pub flows_cut: u64,
    /// Flows removed after their timeout.
    pub flows_expired: u64,
    /// Flows removed to make room in a full table.
    pub flows_evicted: u64,
}

/// How a [`Filter`] is sized and timed.
#[derive(Debug, Clone, Copy)]
pub struct FilterConfig {
    /// The most flows tracked (default [`DEFAULT_CAPACITY`]).
    pub capacity: usize,
    /// Timeouts per flow state.
    pub timeouts: Timeouts,
}

impl Default for FilterConfig {
    fn default() -> FilterConfig {
        FilterConfig {
            capacity: DEFAULT_CAPACITY,
            timeouts: Timeouts::default(),
        }
    }
}

/// The hub's packet filter: a policy and a flow table. Sans-IO: the caller passes the time.
#[derive(Debug)]
pub struct Filter {
    policy: Arc<Compiled>,
    /// Bumped by every policy change; flows remember the generation they were allowed under.
    generation: u64,
    flows: FlowTable,
    counters: Counters,
}

impl Filter {
    /// A filter with `policy` and the default configuration.
    pub fn new(policy: Arc<Compiled>) -> Filter {
        Filter::with_config(policy, FilterConfig::default())
    }

    /// A filter with `policy` and `config`.
    pub fn with_config(policy: Arc<Compiled>, config: FilterConfig) -> Filter {
        Filter {
            policy,
            generation: 1,
            flows: FlowTable::new(config.capacity, config.timeouts),
            counters: Counters::default(),
        }
    }

    /// Replaces the policy. Tracked flows are checked against it on their next packet.
    pub fn set_policy(&mut self, policy: Arc<Compiled>) {
        self.policy = policy;
        self.revalidate();
    }

    /// Has every tracked flow checked again on its next packet: call it when what the policy
    /// sees changed without a new policy (a device's tags, a device revoked).
    pub fn revalidate(&mut self) {
        self.generation += 1;
    }

    /// The policy in force.
    pub fn policy(&self) -> &Arc<Compiled> {
        &self.policy
    }

    /// What the filter did so far.
    pub fn counters(&self) -> Counters {
        Counters {
            flows_expired: self.flows.expired,
            flows_evicted: self.flows.evicted,
            ..self.counters
        }
    }

    /// How many flows (and fragment entries) are tracked.
    pub fn flow_count(&self) -> usize {
        self.flows.len()
    }

    /// Judges `packet` (an IP packet, as decrypted from the source device) going from the
    /// device `src` to the device `dst`, at `now` seconds of a monotonic clock, and tracks its
    /// flow. O(1) per packet on any input; allocates only when the flow table grows.
    pub fn check(&mut self, now: u64, packet: &[u8], src: &Side, dst: &Side) -> Verdict {
        self.flows.expire(now, REAP_PER_PACKET);
        let verdict = match packet::parse(packet) {
            Err(_) => Verdict::Drop(DropReason::Malformed),
            Ok(p) => self.judge(now, &p, src, dst),
        };
        let c = &mut self.counters;
        match verdict {
            Verdict::Forward => c.forwarded += 1,
            Verdict::Drop(DropReason::Policy) => c.dropped_policy += 1,
            Verdict::Drop(DropReason::Malformed) => c.dropped_malformed += 1,
            Verdict::Drop(DropReason::Fragment) => c.dropped_fragment += 1,
        }
        verdict
    }

    /// The verdict on a parsed packet.
    fn judge(&mut self, now: u64, p: &Packet, src: &Side, dst: &Side) -> Verdict {
        let verdict = match p.kind {
            Kind::LaterFragment => return self.later_fragment(now, p),
            Kind::IcmpError { quoted } => self.icmp_error(now, p, &quoted, src, dst),
            _ => self.flow_packet(now, p, src, dst),
        };
        if let (Verdict::Forward, Some(frag)) = (verdict, p.fragment) {
            let f = p.flow;
            self.track_fragment(now, FlowKey::fragment(f.proto, f.src, f.dst, frag.id));
        }
        verdict
    }

    /// A later fragment passes if its first fragment did.
    fn later_fragment(&mut self, now: u64, p: &Packet) -> Verdict {
        let id = p.fragment.map_or(0, |f| f.id);
        let key = FlowKey::fragment(p.flow.proto, p.flow.src, p.flow.dst, id);
        match self.flows.get(&key, now) {
            Some(i) if self.flows.entry(i).map(|e| e.generation) == Some(self.generation) => {
                self.flows.touch(i, now, State::Fragment);
                Verdict::Forward
            }
            Some(i) => {
                self.flows.remove(i);
                Verdict::Drop(DropReason::Fragment)
            }
            None => Verdict::Drop(DropReason::Fragment),
        }
    }

    /// Lets the later fragments of a forwarded first fragment through.
    fn track_fragment(&mut self, now: u64, key: FlowKey) {
        let i = match self.flows.get(&key, now) {
            Some(i) => {
                self.flows.touch(i, now, State::Fragment);
                i
            }
            None => {
                self.counters.flows_opened += 1;
                self.flows.insert(key, now, State::Fragment, true)
            }
        };
        if let Some(e) = self.flows.entry_mut(i) {
            e.generation = self.generation;
        }
    }

    /// An ICMP error: related to a tracked flow of its destination, or a new ICMP packet.
    fn icmp_error(&mut self, now: u64, p: &Packet, q: &Flow, src: &Side, dst: &Side) -> Verdict {
        if q.src == p.flow.dst {
            let (key, _) = FlowKey::flow(q.proto, q.src, q.src_port, q.dst, q.dst_port);
            if let Some(i) = self.flows.get(&key, now) {
                if self.flows.entry(i).map(|e| e.generation) == Some(self.generation) {
                    return Verdict::Forward;
                }
            }
        }
        self.stateless(p, src, dst)
    }

    /// Forwards `p` if the policy lets its source open it, without tracking it.
    fn stateless(&self, p: &Packet, src: &Side, dst: &Side) -> Verdict {
        match self.allows(&p.flow, src, dst) {
            true => Verdict::Forward,
            false => Verdict::Drop(DropReason::Policy),
        }
    }

    /// Whether the policy lets the `src` end of `flow` open it (to its destination port).
    fn allows(&self, flow: &Flow, src: &Side, dst: &Side) -> bool {
        let s = Subject {
            device: src.device,
            tags: src.tags,
            addr: flow.src,
        };
        let d = Subject {
            device: dst.device,
            tags: dst.tags,
            addr: flow.dst,
        };
        self.policy
            .allows(&s, &d, Proto::from_number(flow.proto), flow.dst_port)
    }

    /// A packet with ports (or none): of a tracked flow, or a new one.
    fn flow_packet(&mut self, now: u64, p: &Packet, src: &Side, dst: &Side) -> Verdict {
        let f = &p.flow;
        let (key, src_is_a) = FlowKey::flow(f.proto, f.src, f.src_port, f.dst, f.dst_port);
        let Some(i) = self.flows.get(&key, now) else {
            return self.open(now, p, key, src_is_a, src, dst);
        };
        let Some(e) = self.flows.entry(i) else {
            return self.open(now, p, key, src_is_a, src, dst);
        };
        let from_opener = e.opener_a == src_is_a;
        if e.generation != self.generation {
            if !self.still_allowed(p, from_opener, src, dst) {
                self.flows.remove(i);
                self.counters.flows_cut += 1;
                return self.open(now, p, key, src_is_a, src, dst);
            }
            if let Some(e) = self.flows.entry_mut(i) {
                e.generation = self.generation;
            }
        }
        match (p.kind, from_opener) {
            (Kind::Tcp { flags }, false) if flags & (TCP_SYN | TCP_ACK) == TCP_SYN => {
                // The responder opens a connection of its own on the same ports.
                if !self.allows(&p.flow, src, dst) {
                    return Verdict::Drop(DropReason::Policy);
                }
                self.flows.remove(i);
                self.open(now, p, key, src_is_a, src, dst)
            }
            (Kind::EchoRequest, false) | (Kind::EchoReply, true) => self.stateless(p, src, dst),
            _ => {
                self.advance(now, i, p.kind, from_opener);
                Verdict::Forward
            }
        }
    }

    /// Whether the policy still lets the opener of the flow of `p` open it; `p` comes from
    /// the opener if `from_opener`.
    fn still_allowed(&self, p: &Packet, from_opener: bool, src: &Side, dst: &Side) -> bool {
        let f = p.flow;
        match from_opener {
            true => self.allows(&f, src, dst),
            false => {
                let opened = Flow {
                    proto: f.proto,
                    src: f.dst,
                    dst: f.src,
                    src_port: f.dst_port,
                    dst_port: f.src_port,
                };
                self.allows(&opened, dst, src)
            }
        }
    }

    /// A packet of no tracked flow: forwarded if the policy allows, tracked if it may open.
    fn open(
        &mut self,
        now: u64,
        p: &Packet,
        key: FlowKey,
        src_is_a: bool,
        src: &Side,
        dst: &Side,
    ) -> Verdict {
        if !self.allows(&p.flow, src, dst) {
            return Verdict::Drop(DropReason::Policy);
        }
        let state = match p.kind {
            Kind::Tcp { flags } if flags & TCP_RST != 0 => return Verdict::Forward,
            Kind::Tcp { .. } => State::TcpOpening,
            Kind::EchoRequest => State::Echo,
            Kind::Ports | Kind::Opaque => State::Unreplied,
            Kind::EchoReply | Kind::IcmpOther | Kind::IcmpError { .. } | Kind::LaterFragment => {
                return Verdict::Forward
            }
        };
        let i = self.flows.insert(key, now, state, src_is_a);
        self.counters.flows_opened += 1;
        if let Some(e) = self.flows.entry_mut(i) {
            e.generation = self.generation;
        }
        self.advance(now, i, p.kind, true);
        Verdict::Forward
    }

    /// Moves the flow at `i` on by one packet of `kind`.
    fn advance(&mut self, now: u64, i: u32, kind: Kind, from_opener: bool) {
        let Some(e) = self.flows.entry_mut(i) else {
            return;
        };
        let state = match (kind, e.state) {
            (Kind::Tcp { flags }, state) => {
                let syn = flags & (TCP_SYN | TCP_ACK) == TCP_SYN;
                if state == State::TcpClosed && from_opener && syn {
                    // The opener reuses the ports of a closed connection.
                    e.fin_opener = false;
                    e.fin_responder = false;
                }
                if flags & TCP_FIN != 0 {
                    match from_opener {
                        true => e.fin_opener = true,
                        false => e.fin_responder = true,
                    }
                }
                if flags & TCP_RST != 0 || (e.fin_opener && e.fin_responder) {
                    State::TcpClosed
                } else if e.fin_opener || e.fin_responder {
                    State::TcpClosing
                } else if state == State::TcpClosed && from_opener && syn {
                    State::TcpOpening
                } else if state == State::TcpOpening && !from_opener {
                    State::TcpEstablished
                } else {
                    state
                }
            }
            (_, State::Unreplied) if !from_opener => State::Assured,
            (_, state) => state,
        };
        self.flows.touch(i, now, state);
    }
}

/// A [`Filter`] shared by the data path's threads: one lock, taken per packet by
/// [`SharedFilter::check`] or once per batch by [`SharedFilter::lock`].
#[derive(Debug)]
pub struct SharedFilter {
    inner: Mutex<Filter>,
}

impl SharedFilter {
    /// Shares `filter`.
    pub fn new(filter: Filter) -> SharedFilter {
        SharedFilter {
            inner: Mutex::new(filter),
        }
    }

    /// The filter, locked (a lock poisoned by a panicking holder is taken over: the filter's
    /// state is valid between any two of its calls).
    pub fn lock(&self) -> MutexGuard<'_, Filter> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// [`Filter::check`] under the lock.
    pub fn check(&self, now: u64, packet: &[u8], src: &Side, dst: &Side) -> Verdict {
        self.lock().check(now, packet, src, dst)
    }

    /// [`Filter::set_policy`] under the lock.
    pub fn set_policy(&self, policy: Arc<Compiled>) {
        self.lock().set_policy(policy);
    }

    /// [`Filter::revalidate`] under the lock.
    pub fn revalidate(&self) {
        self.lock().revalidate();
    }

    /// [`Filter::counters`] under the lock.
    pub fn counters(&self) -> Counters {
        self.lock().counters()
    }
}

#[cfg(test)]
mod tests;
