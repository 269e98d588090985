//! The flow table: connection tracking lite, bounded, O(1) per packet on any input.
//!
//! A flow is keyed by protocol and both (address, port) ends, ordered so that both directions
//! find one entry ([`FlowKey::flow`]); the entry remembers which end opened it. Each entry is in
//! one of a fixed number of states, each with its own timeout ([`Timeouts`]), and sits in the
//! recency list of its state: within one list, least recently seen is first to expire, so the
//! expired entries are always at the heads. Per packet the table reaps at most a few expired
//! heads; when full it evicts the head that expires first, preferring transitory states
//! (unreplied, opening, closing) to established ones, as Linux conntrack's early drop does.
//! The hash is SipHash keyed at random per table (std `RandomState`), since peers choose the
//! ports and addresses. The table never holds more than its capacity.

use std::collections::HashMap;
use std::hash::RandomState;
use std::net::IpAddr;

/// No entry: the end of a recency list.
const NIL: u32 = u32::MAX;

/// The default capacity of a flow table.
pub const DEFAULT_CAPACITY: usize = 65_536;

/// A flow's key: protocol and both ends, the lower end first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct FlowKey {
    a: u128,
    b: u128,
    port_a: u16,
    port_b: u16,
    proto: u8,
    /// 4 or 6 for flows; 4 | 0x80 or 6 | 0x80 for fragment entries.
    tag: u8,
}

/// The 128 bits of an address and its family.
fn bits(addr: IpAddr) -> (u128, u8) {
    match addr {
        IpAddr::V4(a) => (u128::from(u32::from(a)), 4),
        IpAddr::V6(a) => (u128::from(a), 6),
    }
}

impl FlowKey {
    /// The key of the flow between (`src`, `src_port`) and (`dst`, `dst_port`), and whether
    /// `src` is its end `a`.
    pub(crate) fn flow(
        proto: u8,
        src: IpAddr,
        src_port: u16,
        dst: IpAddr,
        dst_port: u16,
    ) -> (FlowKey, bool) {
        let ((s, tag), (d, _)) = (bits(src), bits(dst));
        let src_is_a = (s, src_port) <= (d, dst_port);
        let ((a, port_a), (b, port_b)) = match src_is_a {
            true => ((s, src_port), (d, dst_port)),
            false => ((d, dst_port), (s, src_port)),
        };
        let key = FlowKey {
            a,
            b,
            port_a,
            port_b,
            proto,
            tag,
        };
        (key, src_is_a)
    }

    /// The key that lets the later fragments of packet `id` from `src` to `dst` through.
    pub(crate) fn fragment(proto: u8, src: IpAddr, dst: IpAddr, id: u32) -> FlowKey {
        let ((a, tag), (b, _)) = (bits(src), bits(dst));
        FlowKey {
            a,
            b,
            port_a: (id >> 16) as u16,
            port_b: id as u16,
            proto,
            tag: tag | 0x80,
        }
    }
}

/// The state of a flow; each has its timeout and its recency list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// TCP, nothing seen from the responder yet.
    TcpOpening,
    /// TCP, both ends have sent.
    TcpEstablished,
    /// TCP, a FIN from one end.
    TcpClosing,
    /// TCP, FIN from both ends or a RST.
    TcpClosed,
    /// UDP and other protocols, nothing seen from the responder yet.
    Unreplied,
    /// UDP and other protocols, both ends have sent.
    Assured,
    /// An ICMP echo exchange.
    Echo,
    /// The later fragments of one forwarded first fragment.
    Fragment,
}

/// How many states there are.
const STATES: usize = 8;

impl State {
    /// Every state, in index order.
    const ALL: [State; STATES] = [
        State::TcpOpening,
        State::TcpEstablished,
        State::TcpClosing,
        State::TcpClosed,
        State::Unreplied,
        State::Assured,
        State::Echo,
        State::Fragment,
    ];

    /// The index of this state's recency list.
    fn index(self) -> usize {
        self as usize
    }

    /// Whether the state is evicted before established ones when the table is full.
    fn transitory(self) -> bool {
        !matches!(self, State::TcpEstablished | State::Assured)
    }
}

/// Seconds a flow lives after its last packet, per state. The defaults follow Linux
/// conntrack's, shortened where an IoT fleet would otherwise pin entries for days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// [`State::TcpOpening`]: 120 s (conntrack `SYN_SENT`).
    pub tcp_opening: u64,
    /// [`State::TcpEstablished`]: 3600 s (conntrack: 5 days).
    pub tcp_established: u64,
    /// [`State::TcpClosing`]: 120 s (conntrack `FIN_WAIT`).
    pub tcp_closing: u64,
    /// [`State::TcpClosed`]: 10 s (conntrack `CLOSE`).
    pub tcp_closed: u64,
    /// [`State::Unreplied`]: 30 s (conntrack UDP unreplied).
    pub unreplied: u64,
    /// [`State::Assured`]: 180 s (conntrack UDP stream: 120 s).
    pub assured: u64,
    /// [`State::Echo`]: 30 s (conntrack ICMP).
    pub echo: u64,
    /// [`State::Fragment`]: 30 s (Linux `ipfrag_time`).
    pub fragment: u64,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            tcp_opening: 120,
            tcp_established: 3600,
            tcp_closing: 120,
            tcp_closed: 10,
            unreplied: 30,
            assured: 180,
            echo: 30,
            fragment: 30,
        }
    }
}

impl Timeouts {
    /// The timeout of `state`.
    pub fn of(&self, state: State) -> u64 {
        match state {
            State::TcpOpening => self.tcp_opening,
            State::TcpEstablished => self.tcp_established,
            State::TcpClosing => self.tcp_closing,
            State::TcpClosed => self.tcp_closed,
            State::Unreplied => self.unreplied,
            State::Assured => self.assured,
            State::Echo => self.echo,
            State::Fragment => self.fragment,
        }
    }
}

/// One tracked flow.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) key: FlowKey,
    pub(crate) state: State,
    /// Whether end `a` of the key opened the flow.
    pub(crate) opener_a: bool,
    /// FIN seen from the opener / from the responder.
    pub(crate) fin_opener: bool,
    pub(crate) fin_responder: bool,
    /// The policy generation the flow was last allowed under.
    pub(crate) generation: u64,
    /// The time of the last packet.
    last: u64,
    prev: u32,
    next: u32,
}

/// A recency list: oldest at `head`.
#[derive(Debug, Clone, Copy)]
struct List {
    head: u32,
    tail: u32,
}

/// The bounded flow table.
#[derive(Debug)]
pub(crate) struct FlowTable {
    map: HashMap<FlowKey, u32, RandomState>,
    slots: Vec<Entry>,
    free: Vec<u32>,
    lists: [List; STATES],
    capacity: usize,
    timeouts: Timeouts,
    /// Entries removed because they expired / to make room.
    pub(crate) expired: u64,
    pub(crate) evicted: u64,
}

impl FlowTable {
    /// An empty table of at most `capacity` entries (at least 1, at most 2^32 - 2). Memory
    /// grows with use up to that bound.
    pub(crate) fn new(capacity: usize, timeouts: Timeouts) -> FlowTable {
        FlowTable {
            map: HashMap::with_hasher(RandomState::new()),
            slots: Vec::new(),
            free: Vec::new(),
            lists: [List {
                head: NIL,
                tail: NIL,
            }; STATES],
            capacity: capacity.clamp(1, (NIL - 1) as usize),
            timeouts,
            expired: 0,
            evicted: 0,
        }
    }

    /// How many entries the table holds.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// The entry at `i` (an index [`FlowTable::get`] or [`FlowTable::insert`] returned).
    pub(crate) fn entry(&self, i: u32) -> Option<&Entry> {
        self.slots.get(i as usize)
    }

    /// The entry at `i`, to change its flags and generation.
    pub(crate) fn entry_mut(&mut self, i: u32) -> Option<&mut Entry> {
        self.slots.get_mut(i as usize)
    }

    /// Whether the entry at `i` has expired at `now`.
    fn is_expired(&self, i: u32, now: u64) -> bool {
        self.entry(i).is_some_and(|e| {
            let ttl = self.timeouts.of(e.state);
            now >= e.last.saturating_add(ttl)
        })
    }

    /// The live entry of `key`; an expired one is removed and not returned.
    pub(crate) fn get(&mut self, key: &FlowKey, now: u64) -> Option<u32> {
        let i = *self.map.get(key)?;
        if self.is_expired(i, now) {
            self.remove(i);
            self.expired += 1;
            return None;
        }
        Some(i)
    }

    /// Marks the entry at `i` as seen at `now`, in `state`.
    pub(crate) fn touch(&mut self, i: u32, now: u64, state: State) {
        self.unlink(i);
        if let Some(e) = self.slots.get_mut(i as usize) {
            e.last = e.last.max(now);
            e.state = state;
        }
        self.link_tail(i);
    }

    /// Adds a flow for `key` (which must not be in the table), making room first if the table
    /// is full; returns its index.
    pub(crate) fn insert(&mut self, key: FlowKey, now: u64, state: State, opener_a: bool) -> u32 {
        self.expire(now, 1);
        if self.map.len() >= self.capacity {
            if let Some(victim) = self.victim() {
                self.remove(victim);
                self.evicted += 1;
            }
        }
        let entry = Entry {
            key,
            state,
            opener_a,
            fin_opener: false,
            fin_responder: false,
            generation: 0,
            last: now,
            prev: NIL,
            next: NIL,
        };
        let i = match self.free.pop() {
            Some(i) => {
                if let Some(slot) = self.slots.get_mut(i as usize) {
                    *slot = entry;
                }
                i
            }
            None => {
                self.slots.push(entry);
                (self.slots.len() - 1) as u32
            }
        };
        self.map.insert(key, i);
        self.link_tail(i);
        i
    }

    /// Removes the entry at `i`.
    pub(crate) fn remove(&mut self, i: u32) {
        let Some(key) = self.entry(i).map(|e| e.key) else {
            return;
        };
        if self.map.get(&key) != Some(&i) {
            return;
        }
        self.unlink(i);
        self.map.remove(&key);
        self.free.push(i);
    }

    /// Removes up to `budget` expired entries; returns how many.
    pub(crate) fn expire(&mut self, now: u64, budget: usize) -> usize {
        let mut done = 0;
        for state in State::ALL {
            while done < budget {
                let head = self.lists[state.index()].head;
                if head == NIL || !self.is_expired(head, now) {
                    break;
                }
                self.remove(head);
                self.expired += 1;
                done += 1;
            }
        }
        done
    }

    /// The entry to evict from a full table: of the lists' heads, the one expiring first,
    /// transitory states before established ones.
    fn victim(&self) -> Option<u32> {
        let deadline = |i: u32| {
            self.entry(i)
                .map(|e| e.last.saturating_add(self.timeouts.of(e.state)))
        };
        let pick = |transitory: bool| {
            State::ALL
                .iter()
                .filter(|s| s.transitory() == transitory)
                .map(|s| self.lists[s.index()].head)
                .filter(|&h| h != NIL)
                .min_by_key(|&h| deadline(h))
        };
        pick(true).or_else(|| pick(false))
    }

    /// Takes `i` out of its state's list.
    fn unlink(&mut self, i: u32) {
        let Some(e) = self.entry(i) else { return };
        let (prev, next, list) = (e.prev, e.next, e.state.index());
        match self.slots.get_mut(prev as usize) {
            Some(p) => p.next = next,
            None => self.lists[list].head = next,
        }
        match self.slots.get_mut(next as usize) {
            Some(n) => n.prev = prev,
            None => self.lists[list].tail = prev,
        }
        if let Some(e) = self.slots.get_mut(i as usize) {
            e.prev = NIL;
            e.next = NIL;
        }
    }

    /// Appends `i` to its state's list.
    fn link_tail(&mut self, i: u32) {
        let Some(list) = self.entry(i).map(|e| e.state.index()) else {
            return;
        };
        let tail = self.lists[list].tail;
        if let Some(e) = self.slots.get_mut(i as usize) {
            e.prev = tail;
            e.next = NIL;
        }
        match self.slots.get_mut(tail as usize) {
            Some(t) => t.next = i,
            None => self.lists[list].head = i,
        }
        self.lists[list].tail = i;
    }
}

#[cfg(test)]
mod tests;
