//! The application layer of the simulator: numbered IPv4 packets in flows, and what became of
//! each one (delivered, lost, duplicated, reordered, misrouted, answered).

use std::net::Ipv4Addr;
use std::time::Duration;

use ferrowg_proto::{DropReason, Instant};

use super::{FlowId, NodeId};

/// Marks the payload of a simulated application packet.
const MAGIC: [u8; 4] = *b"fwsm";
/// IPv4 header length.
const IPV4_HEADER: usize = 20;
/// Application payload: magic, kind, flow, sequence number.
const APP_PAYLOAD: usize = 4 + 1 + 4 + 8;

/// What happened to one application packet at the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendResult {
    /// Encrypted and sent at once.
    Sent,
    /// Queued while a handshake runs.
    Queued,
    /// Refused by the device.
    Dropped(DropReason),
}

/// A stream of numbered application packets from one node to a tunnel address.
#[derive(Debug, Clone)]
pub struct Flow {
    /// Its index in `Sim::flows`, carried in every packet.
    pub id: FlowId,
    /// Sending node.
    pub from: NodeId,
    /// The node that should receive it.
    pub to: NodeId,
    /// Inner source address (normally the sender's tunnel address).
    pub src: Ipv4Addr,
    /// Inner destination address.
    pub dst: Ipv4Addr,
    /// IP packet size in bytes.
    pub size: usize,
    /// Sending period; `None` for a flow the test sends by hand.
    pub interval: Option<Duration>,
    /// The next scheduled send.
    pub next: Option<Instant>,
    /// No scheduled sends at or after this instant.
    pub until: Option<Instant>,
    /// The receiver answers every packet (a ping).
    pub echo: bool,
    /// Per sequence number: when it was sent and how the device took it.
    pub sent: Vec<(Instant, SendResult)>,
    /// Per sequence number: when it first reached the application at `to`.
    pub delivered: Vec<Option<Instant>>,
    /// Per sequence number: when the echo reply came back.
    pub replies: Vec<Option<Instant>>,
    /// Deliveries of a sequence number already delivered.
    pub duplicates: u64,
    /// Deliveries below the greatest sequence number delivered so far.
    pub reordered: u64,
    /// Deliveries at a node other than `to`.
    pub misdelivered: u64,
    max_delivered: Option<u64>,
}

/// What a delivery did to a flow's records.
pub(super) enum Received {
    /// Counted (delivered, duplicate, misdelivered, or a reply).
    Counted,
    /// Counted; the receiver answers with this echo reply.
    Echo(Vec<u8>),
    /// Not a packet of this flow.
    Stray,
}

impl Flow {
    /// A flow from `from` to `to` with inner addresses `src` → `dst`, sent by hand.
    pub fn new(id: FlowId, from: NodeId, to: NodeId, src: Ipv4Addr, dst: Ipv4Addr) -> Self {
        Flow {
            id,
            from,
            to,
            src,
            dst,
            size: 64,
            interval: None,
            next: None,
            until: None,
            echo: false,
            sent: Vec::new(),
            delivered: Vec::new(),
            replies: Vec::new(),
            duplicates: 0,
            reordered: 0,
            misdelivered: 0,
            max_delivered: None,
        }
    }

    /// Records that packet `seq` of this flow (whose id is in the packet) reached `node`.
    pub(super) fn record(
        &mut self,
        node: NodeId,
        kind: AppKind,
        seq: u64,
        now: Instant,
    ) -> Received {
        let ix = seq as usize;
        if ix >= self.sent.len() {
            return Received::Stray;
        }
        match kind {
            AppKind::Data if node != self.to => self.misdelivered += 1,
            AppKind::Data if self.delivered[ix].is_some() => self.duplicates += 1,
            AppKind::Data => {
                self.delivered[ix] = Some(now);
                if self.max_delivered.is_some_and(|m| seq < m) {
                    self.reordered += 1;
                }
                self.max_delivered = self.max_delivered.max(Some(seq));
                if self.echo {
                    let reply =
                        app_packet(self.dst, self.src, self.size, AppKind::Reply, self.id, seq);
                    return Received::Echo(reply);
                }
            }
            AppKind::Reply => {
                if node == self.from && self.replies[ix].is_none() {
                    self.replies[ix] = Some(now);
                }
            }
        }
        Received::Counted
    }

    /// Packets the application handed to the device.
    pub fn sent_count(&self) -> usize {
        self.sent.len()
    }

    /// Packets that reached the application at the other end.
    pub fn delivered_count(&self) -> usize {
        self.delivered.iter().filter(|d| d.is_some()).count()
    }

    /// Sequence numbers never delivered.
    pub fn lost(&self) -> Vec<u64> {
        (0..self.sent.len() as u64)
            .filter(|s| self.delivered[*s as usize].is_none())
            .collect()
    }

    /// Delivered fraction of the packets sent in `[from, to)`.
    pub fn delivered_fraction_between(&self, from: Instant, to: Instant) -> f64 {
        let (mut n, mut ok) = (0u64, 0u64);
        for (s, (t, _)) in self.sent.iter().enumerate() {
            if *t >= from && *t < to {
                n += 1;
                ok += u64::from(self.delivered[s].is_some());
            }
        }
        if n == 0 {
            1.0
        } else {
            ok as f64 / n as f64
        }
    }
}

/// What a simulated application packet is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppKind {
    /// A numbered data packet (or an echo request).
    Data,
    /// The answer to an echo request.
    Reply,
}

/// An IPv4 packet of `size` bytes (at least 37) from `src` to `dst` whose payload names flow
/// `flow` and sequence number `seq`.
pub fn app_packet(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    size: usize,
    kind: AppKind,
    flow: FlowId,
    seq: u64,
) -> Vec<u8> {
    let size = size.max(IPV4_HEADER + APP_PAYLOAD);
    let mut p = vec![0u8; size];
    p[0] = 0x45; // version 4, IHL 5
    p[2..4].copy_from_slice(&(size as u16).to_be_bytes());
    p[8] = 64; // TTL
    p[9] = 253; // protocol: RFC 3692 experimentation
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    let sum = ipv4_checksum(&p[..IPV4_HEADER]);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    let b = &mut p[IPV4_HEADER..];
    b[..4].copy_from_slice(&MAGIC);
    b[4] = match kind {
        AppKind::Data => 0,
        AppKind::Reply => 1,
    };
    b[5..9].copy_from_slice(&(flow as u32).to_be_bytes());
    b[9..17].copy_from_slice(&seq.to_be_bytes());
    p
}

/// The one's-complement header checksum of RFC 791.
fn ipv4_checksum(h: &[u8]) -> u16 {
    let mut sum: u32 = h
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The kind, flow and sequence number of a simulated application packet.
pub fn parse_app(p: &[u8]) -> Option<(AppKind, FlowId, u64)> {
    if p.len() < IPV4_HEADER + APP_PAYLOAD || p[0] != 0x45 || ipv4_checksum(&p[..20]) != 0 {
        return None;
    }
    let b = &p[IPV4_HEADER..];
    if b[..4] != MAGIC {
        return None;
    }
    let kind = match b[4] {
        0 => AppKind::Data,
        1 => AppKind::Reply,
        _ => return None,
    };
    let flow = u32::from_be_bytes([b[5], b[6], b[7], b[8]]) as usize;
    let mut s = [0u8; 8];
    s.copy_from_slice(&b[9..17]);
    Some((kind, flow, u64::from_be_bytes(s)))
}
