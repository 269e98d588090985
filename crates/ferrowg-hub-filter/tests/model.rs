//! The filter against a reference model: random packets between a few devices and a site,
//! random time steps across every timeout, and policy changes, judged by the filter and by a
//! plain model (a list of flows searched linearly, the policy evaluated grant by grant with
//! `Policy::allows_reference`). Every verdict must agree.

use std::net::IpAddr;
use std::sync::Arc;

use ferrowg_hub_filter::build;
use ferrowg_hub_filter::packet::{proto, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN};
use ferrowg_hub_filter::{DropReason, Filter, Side, Timeouts, Verdict};
use ferrowg_policy::{Policy, Proto, Subject};

const POLICIES: [&str; 2] = [
    r#"{
      "tagOwners": { "tag:a": [], "tag:b": [] },
      "groups": { "group:solo": ["d3"] },
      "hosts": { "site": "10.201.1.0/24" },
      "grants": [
        { "src": ["tag:a"], "dst": ["tag:b"], "ip": ["tcp:443", "udp:5683", "icmp"] },
        { "src": ["tag:b"], "dst": ["site"], "ip": ["*"] },
        { "src": ["d3"], "dst": ["*"], "ip": ["udp:1-2"] },
      ],
    }"#,
    r#"{
      "tagOwners": { "tag:a": [], "tag:b": [] },
      "grants": [
        { "src": ["tag:a"], "dst": ["tag:b"], "ip": ["tcp:443"] },
        { "src": ["tag:b"], "dst": ["tag:a"], "ip": ["udp:5683", "icmp"] },
      ],
    }"#,
];

/// A device (or the site) of the test: its side and address.
struct Dev {
    side: Side<'static>,
    addr: IpAddr,
}

fn devices() -> Vec<Dev> {
    let d = |name: Option<&'static str>, tags: &'static [&'static str], addr: &str| Dev {
        side: Side { device: name, tags },
        addr: addr.parse().unwrap(),
    };
    vec![
        d(Some("d1"), &["tag:a"], "10.64.0.1"),
        d(Some("d2"), &["tag:b"], "10.64.0.2"),
        d(Some("d3"), &["tag:a", "tag:b"], "10.64.0.3"),
        d(None, &[], "10.201.1.9"),
    ]
}

/// What the model knows of a packet.
#[derive(Clone, Copy, Debug)]
enum What {
    Tcp(u8),
    Udp,
    Echo { request: bool },
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum St {
    Opening,
    Established,
    Closing,
    Closed,
    Unreplied,
    Assured,
    Echo,
}

struct MFlow {
    proto: u8,
    ends: [(IpAddr, u16); 2],
    /// Index in `ends` of the opener.
    opener: usize,
    state: St,
    fin: [bool; 2],
    last: u64,
    generation: u64,
}

struct Model {
    policy: Policy,
    generation: u64,
    flows: Vec<MFlow>,
    t: Timeouts,
}

fn timeout(t: &Timeouts, s: St) -> u64 {
    match s {
        St::Opening => t.tcp_opening,
        St::Established => t.tcp_established,
        St::Closing => t.tcp_closing,
        St::Closed => t.tcp_closed,
        St::Unreplied => t.unreplied,
        St::Assured => t.assured,
        St::Echo => t.echo,
    }
}

/// One packet: protocol number, ends, kind.
struct Pkt {
    proto: u8,
    src: (IpAddr, u16),
    dst: (IpAddr, u16),
    what: What,
}

impl Model {
    fn allows(&self, p: &Pkt, s: &Side, d: &Side) -> bool {
        let (ss, ds) = (subject(s, p.src.0), subject(d, p.dst.0));
        self.policy
            .allows_reference(&ss, &ds, Proto::from_number(p.proto), p.dst.1)
    }

    fn judge(&mut self, now: u64, p: &Pkt, s: &Side, d: &Side) -> bool {
        let t = self.t;
        self.flows
            .retain(|f| now < f.last.saturating_add(timeout(&t, f.state)));
        let found = self.flows.iter().position(|f| {
            f.proto == p.proto && (f.ends == [p.src, p.dst] || f.ends == [p.dst, p.src])
        });
        if let Some(i) = found {
            let from_opener = self.flows[i].ends[self.flows[i].opener] == p.src;
            if self.flows[i].generation != self.generation {
                let opened = if from_opener {
                    self.allows(p, s, d)
                } else {
                    let rev = Pkt {
                        proto: p.proto,
                        src: p.dst,
                        dst: p.src,
                        what: p.what,
                    };
                    self.allows(&rev, d, s)
                };
                if !opened {
                    self.flows.remove(i);
                    return self.open(now, p, s, d);
                }
                self.flows[i].generation = self.generation;
            }
            match (p.what, from_opener) {
                (What::Tcp(f), false) if f & (TCP_SYN | TCP_ACK) == TCP_SYN => {
                    if !self.allows(p, s, d) {
                        return false;
                    }
                    self.flows.remove(i);
                    return self.open(now, p, s, d);
                }
                (What::Echo { request: true }, false) | (What::Echo { request: false }, true) => {
                    return self.allows(p, s, d)
                }
                _ => {}
            }
            advance(&mut self.flows[i], p.what, from_opener, now);
            return true;
        }
        self.open(now, p, s, d)
    }

    fn open(&mut self, now: u64, p: &Pkt, s: &Side, d: &Side) -> bool {
        if !self.allows(p, s, d) {
            return false;
        }
        let state = match p.what {
            What::Tcp(f) if f & TCP_RST != 0 => return true,
            What::Echo { request: false } => return true,
            What::Tcp(_) => St::Opening,
            What::Udp => St::Unreplied,
            What::Echo { request: true } => St::Echo,
        };
        let mut f = MFlow {
            proto: p.proto,
            ends: [p.src, p.dst],
            opener: 0,
            state,
            fin: [false; 2],
            last: now,
            generation: self.generation,
        };
        advance(&mut f, p.what, true, now);
        self.flows.push(f);
        true
    }
}

/// The policy's view of one end.
fn subject<'a>(side: &Side<'a>, addr: IpAddr) -> Subject<'a> {
    Subject {
        device: side.device,
        tags: side.tags,
        addr,
    }
}

fn advance(f: &mut MFlow, what: What, from_opener: bool, now: u64) {
    f.last = f.last.max(now);
    let me = usize::from(!from_opener);
    match what {
        What::Tcp(flags) => {
            let syn = flags & (TCP_SYN | TCP_ACK) == TCP_SYN;
            if f.state == St::Closed && from_opener && syn {
                f.fin = [false; 2];
            }
            if flags & TCP_FIN != 0 {
                f.fin[me] = true;
            }
            f.state = if flags & TCP_RST != 0 || (f.fin[0] && f.fin[1]) {
                St::Closed
            } else if f.fin[0] || f.fin[1] {
                St::Closing
            } else if f.state == St::Closed && from_opener && syn {
                St::Opening
            } else if f.state == St::Opening && !from_opener {
                St::Established
            } else {
                f.state
            };
        }
        _ if f.state == St::Unreplied && !from_opener => f.state = St::Assured,
        _ => {}
    }
}

/// xorshift64*.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn random_packet(rng: &mut Rng, devs: &[Dev]) -> (usize, usize, Pkt) {
    let s = rng.below(devs.len() as u64) as usize;
    let d = (s + 1 + rng.below(devs.len() as u64 - 1) as usize) % devs.len();
    let ports = [1u16, 2, 443, 5683, 40000];
    let mut port = || ports[rng.below(ports.len() as u64) as usize];
    let (sp, dp) = (port(), port());
    let flags = [
        TCP_SYN,
        TCP_SYN | TCP_ACK,
        TCP_ACK,
        TCP_FIN | TCP_ACK,
        TCP_RST,
    ];
    let (proto, what, sp, dp) = match rng.below(3) {
        0 => (proto::TCP, What::Tcp(flags[rng.below(5) as usize]), sp, dp),
        1 => (proto::UDP, What::Udp, sp, dp),
        _ => {
            let id = rng.below(3) as u16;
            (
                proto::ICMP,
                What::Echo {
                    request: rng.below(2) == 0,
                },
                id,
                id,
            )
        }
    };
    let pkt = Pkt {
        proto,
        src: (devs[s].addr, sp),
        dst: (devs[d].addr, dp),
        what,
    };
    (s, d, pkt)
}

fn bytes(p: &Pkt) -> Vec<u8> {
    let l4 = match p.what {
        What::Tcp(f) => build::tcp(p.src.1, p.dst.1, f, b""),
        What::Udp => build::udp(p.src.1, p.dst.1, b"x"),
        What::Echo { request } => build::echo(false, request, p.src.1, 0),
    };
    build::ip(p.src.0, p.dst.0, p.proto, &[], &l4)
}

#[test]
fn the_filter_agrees_with_the_model() {
    let devs = devices();
    let compiled: Vec<_> = POLICIES
        .iter()
        .map(|t| Arc::new(Policy::parse(t).unwrap().compile()))
        .collect();
    for seed in 1..=20u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut filter = Filter::new(Arc::clone(&compiled[0]));
        let mut model = Model {
            policy: Policy::parse(POLICIES[0]).unwrap(),
            generation: 0,
            flows: Vec::new(),
            t: Timeouts::default(),
        };
        let (mut now, mut which, mut forwarded) = (0u64, 0usize, 0);
        for step in 0..3000 {
            now += match rng.below(100) {
                0 => 4000,
                1..=2 => 200,
                3..=5 => 35,
                6..=10 => 12,
                _ => rng.below(3),
            };
            if rng.below(200) == 0 {
                which = 1 - which;
                filter.set_policy(Arc::clone(&compiled[which]));
                model.policy = Policy::parse(POLICIES[which]).unwrap();
                model.generation += 1;
            }
            let (s, d, p) = random_packet(&mut rng, &devs);
            let got = filter.check(now, &bytes(&p), &devs[s].side, &devs[d].side);
            let want = match model.judge(now, &p, &devs[s].side, &devs[d].side) {
                true => Verdict::Forward,
                false => Verdict::Drop(DropReason::Policy),
            };
            assert_eq!(
                got, want,
                "seed {seed} step {step} at {now}: {:?} {:?} -> {:?}",
                p.what, p.src, p.dst
            );
            forwarded += usize::from(got == Verdict::Forward);
        }
        // The walk reaches both verdicts often.
        assert!(
            forwarded > 300 && forwarded < 2700,
            "seed {seed}: {forwarded}"
        );
    }
}
