//! A deterministic simulated network for driving [`Device`]s (in the spirit of quinn-proto's
//! test `Pair`, generalised to N devices).
//!
//! ```text
//!   app flows ─handle_packet─▶ Device ─poll_transmit─▶ links ─handle_datagram─▶ Device
//!   (numbered IPv4 packets)      ▲ handle_timeout        │ latency, jitter, loss,
//!                                └──── fake clock ◀──────┘ reordering, duplication,
//!                                                          NAT rebinding, a tap
//! ```
//!
//! Nothing here sleeps or reads a clock: [`Sim::run_until`] always jumps the shared clock to the
//! next thing that can happen (a datagram arrives, a device's `poll_timeout`, a flow's next
//! send), so hours of protocol time take seconds. Every source of randomness (keys, the
//! devices' RNGs, the network's loss and delay draws) is a `ChaCha8Rng` derived from the
//! simulation seed, so a run is reproducible bit for bit.
//!
//! Applications send real IPv4 packets (a 20-byte header with version, total length, source,
//! destination and checksum, since the core checks the inner source against the sender's
//! allowed IPs) whose payload names a [`Flow`] and a sequence number, so the receiving side
//! can tell lost, duplicated, reordered and misrouted packets apart.

// Shared by tests/sim.rs and examples/sim_demo.rs; neither uses every helper.
#![allow(dead_code)]

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use ferrowg_proto::crypto::{RustCrypto, SecretKey};
use ferrowg_proto::{
    Device, DropReason, Event, Incoming, Instant, Outgoing, PeerConfig, PeerId,
    TRANSPORT_HEADER_SIZE,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

mod app;
use app::Received;
pub use app::{app_packet, parse_app, AppKind, Flow, SendResult};

/// Index of a node in [`Sim::nodes`].
pub type NodeId = usize;
/// Index of a flow in [`Sim::flows`].
pub type FlowId = usize;

/// Wall-clock time the devices' TAI64N timestamps start from (2023-11-14).
const UNIX_START_NANOS: u64 = 1_700_000_000_000_000_000;
/// Steps the loop may take without the clock moving before it is declared a livelock.
const MAX_STEPS_PER_INSTANT: u32 = 1_000_000;

/// An instant `secs` seconds after the epoch (fractions allowed).
pub fn at(secs: f64) -> Instant {
    Instant::from_nanos((secs * 1e9).round() as u64)
}

/// Seconds since the epoch, for printing and comparing.
pub fn secs(t: Instant) -> f64 {
    t.as_nanos() as f64 / 1e9
}

/// `ms` milliseconds.
pub fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// The behaviour of one direction of a link.
#[derive(Debug, Clone, Copy)]
pub struct Link {
    /// Base one-way delay.
    pub latency: Duration,
    /// Extra delay drawn uniformly from `[0, jitter)` for every datagram.
    pub jitter: Duration,
    /// Probability that a datagram is lost.
    pub loss: f64,
    /// Probability that a datagram is delivered twice (each copy delayed independently).
    pub duplicate: f64,
    /// Probability that a datagram is held back by up to `reorder_delay` more.
    pub reorder: f64,
    /// Largest extra delay of a reordered datagram.
    pub reorder_delay: Duration,
}

impl Link {
    /// A perfect link with a fixed one-way `latency`.
    pub fn clean(latency: Duration) -> Self {
        Link {
            latency,
            jitter: Duration::ZERO,
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::ZERO,
        }
    }

    fn delay(&self, rng: &mut ChaCha8Rng) -> Duration {
        let mut d = self.latency;
        if !self.jitter.is_zero() {
            d += self.jitter.mul_f64(rng.gen::<f64>());
        }
        if self.reorder > 0.0 && rng.gen_bool(self.reorder) {
            d += self.reorder_delay.mul_f64(rng.gen::<f64>());
        }
        d
    }
}

/// What the tap decides for a datagram about to enter the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tap {
    /// Let it through (subject to the link's loss, delay, …).
    Pass,
    /// Lose it.
    Drop,
    /// Take it off the network and keep it in [`Sim::held`] for the test to inject later.
    Hold,
    /// Let it through and keep a copy in [`Sim::held`] (for replays).
    Capture,
    /// Let it through, this much later than the link would.
    Delay(Duration),
}

/// The tap: decides the fate of each datagram a node sends (see [`Sim::tap`]).
pub type TapFn = Box<dyn FnMut(&SentRecord) -> Tap>;

/// A datagram on the simulated network.
#[derive(Debug, Clone)]
pub struct Datagram {
    /// The sender's apparent address (after NAT).
    pub src: SocketAddr,
    /// The destination address.
    pub dst: SocketAddr,
    /// The payload.
    pub bytes: Vec<u8>,
    /// When it was sent.
    pub sent: Instant,
}

/// A summary of every datagram a node sent, in order.
#[derive(Debug, Clone, Copy)]
pub struct SentRecord {
    /// When it was sent.
    pub time: Instant,
    /// The sending node.
    pub from: NodeId,
    /// Its apparent source address.
    pub src: SocketAddr,
    /// Its destination.
    pub dst: SocketAddr,
    /// WireGuard message type (1–4).
    pub kind: u8,
    /// Datagram length.
    pub len: usize,
    /// `sender_index` of handshake initiations and responses, else 0.
    pub sender_index: u32,
    /// `receiver_index` of responses, cookie replies and transport data, else 0.
    pub receiver_index: u32,
    /// `counter` of transport data, else 0.
    pub counter: u64,
}

impl SentRecord {
    fn new(time: Instant, from: NodeId, src: SocketAddr, dst: SocketAddr, b: &[u8]) -> Self {
        let le32 = |at: usize| {
            b.get(at..at + 4)
                .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        };
        let kind = b.first().copied().unwrap_or(0);
        let (sender_index, receiver_index, counter) = match kind {
            1 => (le32(4), 0, 0),
            2 => (le32(4), le32(8), 0),
            3 => (0, le32(4), 0),
            4 => {
                let mut c = [0u8; 8];
                c.copy_from_slice(&b[8..16]);
                (0, le32(4), u64::from_le_bytes(c))
            }
            _ => (0, 0, 0),
        };
        SentRecord {
            time,
            from,
            src,
            dst,
            kind,
            len: b.len(),
            sender_index,
            receiver_index,
            counter,
        }
    }

    /// A handshake initiation.
    pub fn is_initiation(&self) -> bool {
        self.kind == 1
    }

    /// An empty transport message.
    pub fn is_keepalive(&self) -> bool {
        self.kind == 4 && self.len == 32
    }

    /// Transport data carrying a packet.
    pub fn is_data(&self) -> bool {
        self.kind == 4 && self.len > 32
    }
}

/// One line of the optional timeline ([`Sim::tracing`]).
#[derive(Debug, Clone, Copy)]
pub enum Trace {
    /// A node sent a datagram.
    Sent(SentRecord),
    /// A node's device reported an event.
    Event(Instant, NodeId, Event),
    /// An application packet reached a node's application.
    App(Instant, NodeId, AppKind, FlowId, u64),
}

/// One datagram in flight, ordered by arrival time then by sending order.
struct InFlight {
    at: Instant,
    seq: u64,
    d: Datagram,
}

impl PartialEq for InFlight {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for InFlight {
    // Reversed: BinaryHeap is a max-heap and we want the earliest arrival on top.
    fn cmp(&self, o: &Self) -> Ordering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

/// Network-wide counters.
#[derive(Debug, Clone, Default)]
pub struct NetStats {
    /// Datagrams handed to the network.
    pub sent: u64,
    /// Datagrams handed to a device.
    pub delivered: u64,
    /// Lost by a link's loss probability.
    pub lost: u64,
    /// Extra copies made by a link's duplication probability.
    pub duplicated: u64,
    /// Dropped or held by the tap.
    pub tapped: u64,
    /// Arrived at a node that is down.
    pub blackholed: u64,
    /// Addressed to an address no node holds.
    pub unrouted: u64,
}

/// A simulated host: a device, its address, and what it saw.
pub struct Node {
    /// A name for messages.
    pub name: String,
    /// The protocol core under test.
    pub dev: Device,
    /// The address its datagrams currently appear to come from.
    pub addr: SocketAddr,
    /// Earlier addresses that still reach it (NAT mappings that did not expire).
    pub old_addrs: Vec<SocketAddr>,
    /// Its address inside the tunnel.
    pub tunnel_ip: Ipv4Addr,
    /// When false the host is gone: datagrams to it are lost, it runs no timers, sends nothing.
    pub up: bool,
    /// Routes packets for other tunnel addresses back into the tunnel (a hub).
    pub forwarding: bool,
    /// Every event the device reported, with its time.
    pub events: Vec<(Instant, Event)>,
    /// Handshake messages the device accepted: (time, message type).
    pub handshakes_accepted: Vec<(Instant, u8)>,
    /// Authenticated keepalives received.
    pub keepalives_received: u64,
    /// Datagrams the device dropped: (time, reason).
    pub drops_in: Vec<(Instant, DropReason)>,
    /// Packets forwarded as a hub.
    pub forwarded: u64,
    /// Decrypted packets that belong to no flow.
    pub stray_packets: u64,
    /// Calls of `handle_timeout` (the loop calls it whenever `poll_timeout` has passed).
    pub wakeups: u64,
}

impl Node {
    /// Number of events matching `f`.
    pub fn count_events(&self, f: impl Fn(&Event) -> bool) -> usize {
        self.events.iter().filter(|(_, e)| f(e)).count()
    }

    /// Times of the events matching `f`.
    pub fn event_times(&self, f: impl Fn(&Event) -> bool) -> Vec<Instant> {
        self.events
            .iter()
            .filter(|(_, e)| f(e))
            .map(|(t, _)| *t)
            .collect()
    }

    /// Times the device derived a new session: a handshake response consumed (initiator) or
    /// an initiation answered (responder).
    pub fn sessions_derived(&self) -> Vec<Instant> {
        self.handshakes_accepted
            .iter()
            .filter(|(_, k)| *k == 1 || *k == 2)
            .map(|(t, _)| *t)
            .collect()
    }
}

/// The simulated world.
pub struct Sim {
    /// The shared fake clock.
    pub now: Instant,
    /// The hosts.
    pub nodes: Vec<Node>,
    /// The application flows.
    pub flows: Vec<Flow>,
    /// The link used between nodes that have no [`Sim::set_link`].
    pub default_link: Link,
    links: HashMap<(NodeId, NodeId), Link>,
    seed: u64,
    net_rng: ChaCha8Rng,
    in_flight: BinaryHeap<InFlight>,
    next_seq: u64,
    /// Every datagram sent by a node, in order.
    pub log: Vec<SentRecord>,
    /// Sees every datagram a node sends before the link does.
    pub tap: Option<TapFn>,
    /// Datagrams the tap took off the network.
    pub held: Vec<Datagram>,
    /// Datagrams to addresses no node holds (such as an attacker's).
    pub unrouted: Vec<Datagram>,
    /// Network counters.
    pub net: NetStats,
    /// Record [`Sim::trace`].
    pub tracing: bool,
    /// Datagrams, events and deliveries in the order they happened (when tracing).
    pub trace: Vec<Trace>,
    buf: Vec<u8>,
    same_instant_steps: u32,
}

impl Sim {
    /// An empty world whose randomness all derives from `seed`.
    pub fn new(seed: u64, default_link: Link) -> Self {
        Sim {
            now: Instant::ZERO,
            nodes: Vec::new(),
            flows: Vec::new(),
            default_link,
            links: HashMap::new(),
            seed,
            net_rng: ChaCha8Rng::seed_from_u64(seed),
            in_flight: BinaryHeap::new(),
            next_seq: 0,
            log: Vec::new(),
            tap: None,
            held: Vec::new(),
            unrouted: Vec::new(),
            net: NetStats::default(),
            tracing: false,
            trace: Vec::new(),
            buf: vec![0; 65536 + 64],
            same_instant_steps: 0,
        }
    }

    fn derived_rng(&self, purpose: u64, index: usize) -> ChaCha8Rng {
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&self.seed.to_le_bytes());
        seed[8..16].copy_from_slice(&purpose.to_le_bytes());
        seed[16..24].copy_from_slice(&(index as u64).to_le_bytes());
        ChaCha8Rng::from_seed(seed)
    }

    // ----- building the world --------------------------------------------------------------

    /// Adds a host with a fresh static key, reachable at `addr` (e.g. "192.0.2.1:51820"),
    /// whose tunnel address is `tunnel_ip`.
    pub fn add_node(&mut self, name: &str, addr: &str, tunnel_ip: &str) -> NodeId {
        let id = self.nodes.len();
        let key = SecretKey::generate(&mut self.derived_rng(1, id));
        let rng = self.derived_rng(2, id);
        let mut dev = Device::new(Box::new(key), Box::new(RustCrypto), Box::new(rng));
        dev.set_clock(self.now, UNIX_START_NANOS + self.now.as_nanos());
        self.nodes.push(Node {
            name: name.to_string(),
            dev,
            addr: addr.parse().expect("node address"),
            old_addrs: Vec::new(),
            tunnel_ip: tunnel_ip.parse().expect("tunnel address"),
            up: true,
            forwarding: false,
            events: Vec::new(),
            handshakes_accepted: Vec::new(),
            keepalives_received: 0,
            drops_in: Vec::new(),
            forwarded: 0,
            stray_packets: 0,
            wakeups: 0,
        });
        id
    }

    /// Makes `other` a peer of `node`, routing `allowed` (e.g. "10.0.0.0/24") to it.
    /// `endpoint` says whether `node` knows where `other` is.
    pub fn add_peer(
        &mut self,
        node: NodeId,
        other: NodeId,
        allowed: &[&str],
        endpoint: bool,
        persistent_keepalive: Option<u16>,
    ) -> PeerId {
        let cfg = PeerConfig {
            preshared_key: None,
            endpoint: endpoint.then_some(self.nodes[other].addr),
            persistent_keepalive,
        };
        let key = self.nodes[other].dev.public_key();
        let now = self.now;
        let dev = &mut self.nodes[node].dev;
        let id = dev.add_peer(key, cfg, now).expect("add_peer");
        for prefix in allowed {
            let (ip, cidr) = prefix.split_once('/').expect("prefix with /");
            let ip: IpAddr = ip.parse().expect("prefix address");
            dev.add_allowed_ip(id, ip, cidr.parse().expect("prefix length"))
                .expect("add_allowed_ip");
        }
        self.drain(node);
        id
    }

    /// Makes `a` and `b` peers of each other, each routing the other's tunnel address (/32)
    /// and knowing its endpoint. Returns (b's id at a, a's id at b).
    pub fn connect(&mut self, a: NodeId, b: NodeId) -> (PeerId, PeerId) {
        let a_ip = format!("{}/32", self.nodes[a].tunnel_ip);
        let b_ip = format!("{}/32", self.nodes[b].tunnel_ip);
        let ab = self.add_peer(a, b, &[&b_ip], true, None);
        let ba = self.add_peer(b, a, &[&a_ip], true, None);
        (ab, ba)
    }

    /// Sets the link between `a` and `b`, both directions.
    pub fn set_link(&mut self, a: NodeId, b: NodeId, link: Link) {
        self.links.insert((a, b), link);
        self.links.insert((b, a), link);
    }

    /// NAT rebinding: `node`'s datagrams now come from `addr`. With `keep_old` the old
    /// mapping still delivers to it; otherwise datagrams to the old address are lost.
    pub fn rebind(&mut self, node: NodeId, addr: &str, keep_old: bool) {
        let n = &mut self.nodes[node];
        let old = std::mem::replace(&mut n.addr, addr.parse().expect("address"));
        if keep_old {
            n.old_addrs.push(old);
        }
    }

    /// A flow of `size`-byte packets from `from` to `to`'s tunnel address, one every
    /// `interval` from `start` until `until`.
    pub fn add_flow(
        &mut self,
        from: NodeId,
        to: NodeId,
        start: Instant,
        interval: Duration,
        until: Option<Instant>,
    ) -> FlowId {
        let (src, dst) = (self.nodes[from].tunnel_ip, self.nodes[to].tunnel_ip);
        let f = self.add_manual_flow(from, to, src, dst);
        self.flows[f].interval = Some(interval);
        self.flows[f].next = Some(start.max(self.now));
        self.flows[f].until = until;
        f
    }

    /// A flow the test sends by hand with [`Sim::send`]; `src`/`dst` are the inner addresses.
    pub fn add_manual_flow(
        &mut self,
        from: NodeId,
        to: NodeId,
        src: Ipv4Addr,
        dst: Ipv4Addr,
    ) -> FlowId {
        self.flows
            .push(Flow::new(self.flows.len(), from, to, src, dst));
        self.flows.len() - 1
    }

    /// Stops a flow's scheduled sends.
    pub fn stop_flow(&mut self, f: FlowId) {
        self.flows[f].next = None;
    }

    // ----- the event loop ------------------------------------------------------------------

    /// The earliest instant at which something happens, if anything is pending.
    pub fn next_event(&self) -> Option<Instant> {
        let arrivals = self.in_flight.peek().map(|f| f.at);
        let timers = self
            .nodes
            .iter()
            .filter(|n| n.up)
            .filter_map(|n| n.dev.poll_timeout());
        let sends = self.flows.iter().filter_map(|f| f.next);
        arrivals
            .into_iter()
            .chain(timers)
            .chain(sends)
            .min()
            .map(|t| t.max(self.now))
    }

    /// Runs every event up to and including `end`, then sets the clock to `end`.
    pub fn run_until(&mut self, end: Instant) {
        while let Some(t) = self.next_event().filter(|t| *t <= end) {
            if t == self.now {
                self.same_instant_steps += 1;
                assert!(
                    self.same_instant_steps < MAX_STEPS_PER_INSTANT,
                    "livelock at {:.3} s",
                    secs(t)
                );
            } else {
                self.same_instant_steps = 0;
            }
            self.now = t;
            self.step();
        }
        self.now = self.now.max(end);
    }

    /// Runs for `d` of simulated time.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        self.run_until(end);
    }

    /// Processes everything due at `self.now`: arrivals, timers, then application sends.
    fn step(&mut self) {
        let now = self.now;
        while self.in_flight.peek().is_some_and(|f| f.at <= now) {
            // Invariant: peek just returned Some.
            let f = self.in_flight.pop().expect("peeked");
            self.deliver(f.d);
        }
        for i in 0..self.nodes.len() {
            let n = &mut self.nodes[i];
            if n.up && n.dev.poll_timeout().is_some_and(|t| t <= now) {
                n.dev.handle_timeout(now);
                n.wakeups += 1;
                self.drain(i);
            }
        }
        for f in 0..self.flows.len() {
            while self.flows[f].next.is_some_and(|t| t <= now) {
                self.send(f);
                let flow = &mut self.flows[f];
                let next = flow.next.zip(flow.interval).map(|(t, i)| t + i);
                flow.next = next.filter(|t| flow.until.is_none_or(|u| *t < u));
            }
        }
    }

    /// Moves the node's pending datagrams onto the network and records its events.
    fn drain(&mut self, i: NodeId) {
        let now = self.now;
        let n = &mut self.nodes[i];
        while let Some(e) = n.dev.poll_event() {
            n.events.push((now, e));
            if self.tracing {
                self.trace.push(Trace::Event(now, i, e));
            }
        }
        loop {
            let n = &mut self.nodes[i];
            let Some(t) = n.dev.poll_transmit(&mut self.buf) else {
                break;
            };
            let bytes = self.buf[..t.len].to_vec();
            self.transmit(i, t.endpoint, bytes);
        }
    }

    /// The node that receives datagrams sent to `addr`.
    pub fn node_at(&self, addr: SocketAddr) -> Option<NodeId> {
        self.nodes
            .iter()
            .position(|n| n.addr == addr || n.old_addrs.contains(&addr))
    }

    /// Puts a datagram from node `from` on the network.
    fn transmit(&mut self, from: NodeId, dst: SocketAddr, bytes: Vec<u8>) {
        if !self.nodes[from].up {
            return;
        }
        let src = self.nodes[from].addr;
        let rec = SentRecord::new(self.now, from, src, dst, &bytes);
        self.log.push(rec);
        if self.tracing {
            self.trace.push(Trace::Sent(rec));
        }
        self.net.sent += 1;
        let d = Datagram {
            src,
            dst,
            bytes,
            sent: self.now,
        };
        let mut extra = Duration::ZERO;
        if let Some(tap) = self.tap.as_mut() {
            match tap(&rec) {
                Tap::Pass => {}
                Tap::Drop => {
                    self.net.tapped += 1;
                    return;
                }
                Tap::Hold => {
                    self.net.tapped += 1;
                    self.held.push(d);
                    return;
                }
                Tap::Capture => self.held.push(d.clone()),
                Tap::Delay(by) => extra = by,
            }
        }
        let link = self
            .node_at(dst)
            .and_then(|to| self.links.get(&(from, to)))
            .copied()
            .unwrap_or(self.default_link);
        if link.loss > 0.0 && self.net_rng.gen_bool(link.loss) {
            self.net.lost += 1;
            return;
        }
        if link.duplicate > 0.0 && self.net_rng.gen_bool(link.duplicate) {
            self.net.duplicated += 1;
            let delay = link.delay(&mut self.net_rng) + extra;
            self.schedule(self.now + delay, d.clone());
        }
        let delay = link.delay(&mut self.net_rng) + extra;
        self.schedule(self.now + delay, d);
    }

    fn schedule(&mut self, at: Instant, d: Datagram) {
        self.next_seq += 1;
        self.in_flight.push(InFlight {
            at,
            seq: self.next_seq,
            d,
        });
    }

    /// Makes `bytes` arrive at `dst` from `src` at `when` (not before now), bypassing links and
    /// tap: for replays, forgeries and floods.
    pub fn inject(&mut self, when: Instant, src: SocketAddr, dst: SocketAddr, bytes: Vec<u8>) {
        let d = Datagram {
            src,
            dst,
            bytes,
            sent: when,
        };
        self.schedule(when.max(self.now), d);
    }

    /// Hands a datagram to the device it is addressed to.
    fn deliver(&mut self, d: Datagram) {
        let Some(to) = self.node_at(d.dst) else {
            self.net.unrouted += 1;
            self.unrouted.push(d);
            return;
        };
        if !self.nodes[to].up {
            self.net.blackholed += 1;
            return;
        }
        self.net.delivered += 1;
        let now = self.now;
        let mut buf = d.bytes;
        let kind = buf.first().copied().unwrap_or(0);
        let n = &mut self.nodes[to];
        match n.dev.handle_datagram(now, d.src, &mut buf) {
            Incoming::Packet { len, .. } => {
                let pkt = buf[TRANSPORT_HEADER_SIZE..TRANSPORT_HEADER_SIZE + len].to_vec();
                self.drain(to);
                self.receive_ip(to, &pkt);
            }
            Incoming::Keepalive { .. } => n.keepalives_received += 1,
            Incoming::Handshake => n.handshakes_accepted.push((now, kind)),
            Incoming::Dropped(r) => n.drops_in.push((now, r)),
        }
        self.drain(to);
    }

    // ----- the application layer -----------------------------------------------------------

    /// Sends the next packet of flow `f` now.
    pub fn send(&mut self, f: FlowId) -> SendResult {
        let flow = &self.flows[f];
        let seq = flow.sent.len() as u64;
        let pkt = app_packet(flow.src, flow.dst, flow.size, AppKind::Data, f, seq);
        let from = flow.from;
        let res = self.send_ip(from, &pkt);
        let now = self.now;
        let flow = &mut self.flows[f];
        flow.sent.push((now, res));
        flow.delivered.push(None);
        flow.replies.push(None);
        res
    }

    /// Hands an IP packet to `node`'s device, as the OS would.
    pub fn send_ip(&mut self, node: NodeId, pkt: &[u8]) -> SendResult {
        let len = pkt.len();
        // Header, packet, up to 15 bytes of padding, tag.
        let mut buf = vec![0u8; TRANSPORT_HEADER_SIZE + len + 15 + 16];
        buf[TRANSPORT_HEADER_SIZE..TRANSPORT_HEADER_SIZE + len].copy_from_slice(pkt);
        let now = self.now;
        let res = match self.nodes[node].dev.handle_packet(now, &mut buf, len) {
            Outgoing::Send { endpoint, len, .. } => {
                buf.truncate(len);
                self.transmit(node, endpoint, buf);
                SendResult::Sent
            }
            Outgoing::Queued { .. } => SendResult::Queued,
            Outgoing::Dropped(r) => SendResult::Dropped(r),
        };
        self.drain(node);
        res
    }

    /// A decrypted IP packet reached `node`'s OS.
    fn receive_ip(&mut self, node: NodeId, pkt: &[u8]) {
        let n = &mut self.nodes[node];
        let dst = Ipv4Addr::new(pkt[16], pkt[17], pkt[18], pkt[19]);
        if dst != n.tunnel_ip && n.forwarding {
            n.forwarded += 1;
            self.send_ip(node, pkt);
            return;
        }
        let Some((kind, f, seq)) = parse_app(pkt) else {
            n.stray_packets += 1;
            return;
        };
        let now = self.now;
        if self.tracing {
            self.trace.push(Trace::App(now, node, kind, f, seq));
        }
        let Some(flow) = self.flows.get_mut(f) else {
            self.nodes[node].stray_packets += 1;
            return;
        };
        match flow.record(node, kind, seq, now) {
            Received::Stray => self.nodes[node].stray_packets += 1,
            Received::Echo(reply) => {
                self.send_ip(node, &reply);
            }
            Received::Counted => {}
        }
    }

    // ----- observations --------------------------------------------------------------------

    /// Datagrams node `from` sent that match `f`.
    pub fn sent_by(&self, from: NodeId, f: impl Fn(&SentRecord) -> bool) -> Vec<SentRecord> {
        self.log
            .iter()
            .filter(|r| r.from == from && f(r))
            .copied()
            .collect()
    }

    /// Total events of kind `f` over all nodes.
    pub fn count_events(&self, f: impl Fn(&Event) -> bool + Copy) -> usize {
        self.nodes.iter().map(|n| n.count_events(f)).sum()
    }
}
