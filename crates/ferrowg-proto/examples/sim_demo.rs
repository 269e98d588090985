//! Two ferrowg devices talking over a simulated network, narrated.
//!
//! Runs the protocol core with no sockets and no clock (the simulator of tests/sim/mod.rs
//! jumps a fake clock from event to event) and prints the handshake, a ping-like exchange in
//! both directions, a rekey after REKEY_AFTER_TIME, and the counters at the end.
//!
//! ```text
//! cargo run -p ferrowg-proto --example sim_demo
//! ```

#[path = "../tests/sim/mod.rs"]
mod net;

use ferrowg_proto::messages::REKEY_AFTER_TIME;
use ferrowg_proto::{DropReason, Event, PeerId};

use net::{at, ms, secs, AppKind, FlowId, Link, NodeId, SentRecord, Sim, Trace};

/// Which part of the timeline to print.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Detail {
    /// Every datagram, event and delivery.
    All,
    /// Handshake messages and events only; data is summarised.
    Handshakes,
}

fn main() {
    let mut sim = Sim::new(1, Link::clean(ms(15)));
    sim.tracing = true;
    let alice = sim.add_node("alice", "192.0.2.1:51820", "10.0.0.1");
    let bob = sim.add_node("bob", "198.51.100.2:51820", "10.0.0.2");
    let (bob_at_alice, alice_at_bob) = sim.connect(alice, bob);
    introduce(&sim, [alice, bob]);
    let pings = Pings {
        ab: ping_flow(&mut sim, alice, bob, "10.0.0.1", "10.0.0.2"),
        ba: ping_flow(&mut sim, bob, alice, "10.0.0.2", "10.0.0.1"),
    };
    let cursor = handshake(&mut sim, &pings);
    let cursor = data(&mut sim, &pings, cursor);
    rekey(&mut sim, &pings, cursor, alice, bob);

    println!("\n== 4. counters");
    for (n, peer) in [(alice, bob_at_alice), (bob, alice_at_bob)] {
        print_counters(&sim, n, peer);
    }
    print_totals(&sim, &pings);
}

/// The two ping flows: alice to bob and back.
struct Pings {
    ab: FlowId,
    ba: FlowId,
}

/// A flow from node `from` to node `to` whose packets are answered (a ping).
fn ping_flow(sim: &mut Sim, from: NodeId, to: NodeId, src: &str, dst: &str) -> FlowId {
    let f = sim.add_manual_flow(from, to, src.parse().unwrap(), dst.parse().unwrap());
    sim.flows[f].echo = true;
    f
}

/// Prints the setting and the nodes.
fn introduce(sim: &Sim, nodes: [NodeId; 2]) {
    println!("ferrowg-proto simulation: two devices, a 15 ms link, a fake clock, seed 1");
    println!("(no sockets, no sleeping: the clock jumps from one event to the next)\n");
    for n in nodes {
        let node = &sim.nodes[n];
        println!(
            "  {:<5}  endpoint {:<20} tunnel {:<9} public key {}",
            node.name,
            node.addr.to_string(),
            node.tunnel_ip.to_string(),
            short_hex(&node.dev.public_key())
        );
    }
}

/// Part 1: the first ping waits for a handshake. Returns where the printed timeline ends.
fn handshake(sim: &mut Sim, pings: &Pings) -> usize {
    println!("\n== 1. handshake: alice pings bob; no session yet, so the ping waits for one");
    let res = sim.send(pings.ab);
    println!("  t=   0.000 s  alice: handle_packet(ping #0 to 10.0.0.2) -> {res:?}");
    sim.run_until(at(0.5));
    print_trace(sim, 0, Detail::All)
}

/// Part 2: pings both ways on the session, with their round trips.
fn data(sim: &mut Sim, pings: &Pings, cursor: usize) -> usize {
    println!("\n== 2. data: three pings each way, one per second");
    for i in 0..3 {
        sim.run_until(at(1.0 + f64::from(i)));
        sim.send(pings.ab);
        sim.run_until(at(1.5 + f64::from(i)));
        sim.send(pings.ba);
    }
    sim.run_until(at(5.0));
    let cursor = print_trace(sim, cursor, Detail::All);
    for f in [pings.ab, pings.ba] {
        let flow = &sim.flows[f];
        let rtts: Vec<String> = flow
            .sent
            .iter()
            .zip(&flow.replies)
            .filter_map(|((sent, _), reply)| {
                reply.map(|r| format!("{:.0} ms", secs(r) * 1e3 - secs(*sent) * 1e3))
            })
            .collect();
        println!(
            "  {} -> {}: {} pings, {} replies, round trips {}",
            sim.nodes[flow.from].name,
            sim.nodes[flow.to].name,
            flow.sent_count(),
            rtts.len(),
            rtts.join(", ")
        );
    }
    // Nothing happens while the tunnel is idle except the passive keepalive (10 s).
    cursor
}

/// Part 3: a ping every 10 s until the session is old enough to be replaced.
fn rekey(sim: &mut Sim, pings: &Pings, cursor: usize, alice: NodeId, bob: NodeId) {
    println!(
        "\n== 3. rekey: a ping every 10 s. The initiator's first send on a session older than\n   \
         REKEY_AFTER_TIME ({} s) starts a new handshake; traffic goes on meanwhile",
        REKEY_AFTER_TIME.as_secs()
    );
    let rekey_from = sim.now;
    let mut t = 10.0;
    while t <= 140.0 {
        sim.run_until(at(t));
        sim.send(pings.ab);
        t += 10.0;
    }
    sim.run_until(at(141.0));
    print_trace(sim, cursor, Detail::Handshakes);
    // The first data each side sent on the new session.
    let responses = sim.sent_by(bob, |r| r.kind == 2 && r.time > rekey_from);
    let Some(resp) = responses.first() else {
        return;
    };
    for (n, index) in [(alice, resp.sender_index), (bob, resp.receiver_index)] {
        if let Some(r) = sim
            .sent_by(n, |r| r.is_data() && r.receiver_index == index)
            .first()
        {
            println!(
                "  t={:>8.3} s  {:<5} sends its first data on the new session: {}",
                secs(r.time),
                sim.nodes[n].name,
                describe(r)
            );
        }
    }
}

/// The pings and the network's datagrams, counted.
fn print_totals(sim: &Sim, pings: &Pings) {
    let f = &sim.flows[pings.ab];
    let back = &sim.flows[pings.ba];
    println!(
        "  pings alice -> bob: {} sent, {} delivered, {} replies; bob -> alice: {} sent, {} \
         delivered",
        f.sent_count(),
        f.delivered_count(),
        f.replies.iter().filter(|r| r.is_some()).count(),
        back.sent_count(),
        back.delivered_count()
    );
    let n = &sim.net;
    println!(
        "  network: {} datagrams sent, {} delivered, {} lost; simulated {:.0} s",
        n.sent,
        n.delivered,
        n.lost,
        secs(sim.now)
    );
}

/// Prints the timeline from `from` on; returns where it stopped.
fn print_trace(sim: &Sim, from: usize, detail: Detail) -> usize {
    let mut data = 0;
    for item in &sim.trace[from..] {
        match item {
            Trace::Sent(r) if detail == Detail::Handshakes && r.is_data() => data += 1,
            Trace::App(..) if detail == Detail::Handshakes => {}
            Trace::Sent(r) => println!(
                "  t={:>8.3} s  {:<5} -> {:<5}  {}",
                secs(r.time),
                sim.nodes[r.from].name,
                sim.node_at(r.dst)
                    .map_or("?", |n| sim.nodes[n].name.as_str()),
                describe(r)
            ),
            Trace::Event(t, n, e) => println!(
                "  t={:>8.3} s  {:<5} event: {}",
                secs(*t),
                sim.nodes[*n].name,
                describe_event(sim, *n, e)
            ),
            Trace::App(t, n, kind, f, seq) => println!(
                "  t={:>8.3} s  {:<5} app: {} #{seq} from {}",
                secs(*t),
                sim.nodes[*n].name,
                match kind {
                    AppKind::Data => "ping",
                    AppKind::Reply => "pong",
                },
                match kind {
                    AppKind::Data => sim.flows[*f].src,
                    AppKind::Reply => sim.flows[*f].dst,
                }
            ),
        }
    }
    if data > 0 {
        println!("  (and {data} transport data datagrams carrying pings and pongs)");
    }
    sim.trace.len()
}

fn describe(r: &SentRecord) -> String {
    match r.kind {
        1 => format!(
            "handshake initiation {:>3} bytes  sender_index {:#010x}",
            r.len, r.sender_index
        ),
        2 => format!(
            "handshake response   {:>3} bytes  sender_index {:#010x} receiver_index {:#010x}",
            r.len, r.sender_index, r.receiver_index
        ),
        3 => format!("cookie reply {} bytes", r.len),
        4 if r.is_keepalive() => format!(
            "keepalive             {:>3} bytes  receiver_index {:#010x} counter {}",
            r.len, r.receiver_index, r.counter
        ),
        _ => format!(
            "transport data       {:>3} bytes  receiver_index {:#010x} counter {}",
            r.len, r.receiver_index, r.counter
        ),
    }
}

/// `e`, reported by node `n`, in words.
fn describe_event(sim: &Sim, n: usize, e: &Event) -> String {
    // The name of the node whose public key the peer has.
    let name = |p: &PeerId| {
        let key = sim.nodes[n].dev.peer_info(*p).map(|i| i.public_key);
        sim.nodes
            .iter()
            .find(|m| Some(m.dev.public_key()) == key)
            .map_or_else(|| format!("peer {}", p.as_u32()), |m| m.name.clone())
    };
    match e {
        Event::HandshakeCompleted {
            peer,
            initiator: true,
        } => format!("handshake completed with {} (we initiated)", name(peer)),
        Event::HandshakeCompleted { peer, .. } => format!(
            "handshake completed with {} (we responded; its first packet confirmed the keys)",
            name(peer)
        ),
        Event::EndpointChanged { peer, endpoint } => format!("{} is at {endpoint}", name(peer)),
        other => format!("{other:?}"),
    }
}

fn print_counters(sim: &Sim, n: usize, peer: PeerId) {
    let node = &sim.nodes[n];
    let s = node.dev.stats();
    let info = node.dev.peer_info(peer).expect("peer exists");
    let drops: Vec<String> = s
        .drops
        .iter()
        .map(|(r, c): (DropReason, u64)| format!("{r} {c}"))
        .collect();
    println!(
        "  {:<5} initiations sent {}, responses sent {}, handshakes completed {}, peer tx {} B \
         rx {} B, last handshake at {:.3} s, drops: {}",
        node.name,
        s.initiations_sent,
        s.responses_sent,
        node.count_events(|e| matches!(e, Event::HandshakeCompleted { .. })),
        info.tx_bytes,
        info.rx_bytes,
        info.last_handshake.map_or(f64::NAN, secs),
        if drops.is_empty() {
            "none".to_string()
        } else {
            drops.join(", ")
        }
    );
}

fn short_hex(k: &[u8; 32]) -> String {
    let hex: String = k.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}…{}", &hex[..8], &hex[56..])
}
