//! The command line of `wg-flood`: a mode, then `--name value` options, every value checked and
//! bounded here (rates, durations, counts) so that no run can go on without limit.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use ferrowg_keys::key::PublicKey;

/// The longest flood or handshake wait one run may ask for.
pub const MAX_DURATION: Duration = Duration::from_secs(3600);
/// The highest rate accepted, initiations per second.
pub const MAX_RATE: u32 = 2_000_000;
/// The most peers of one storm.
pub const MAX_STORM_PEERS: u32 = 10_000;
/// The most source sockets (ports) of one flood.
pub const MAX_SOURCES: u16 = 256;

/// The usage text.
pub const USAGE: &str = "\
usage: wg-flood valid-mac1|junk --target ADDR:PORT --target-key BASE64 [--rate N] [--duration S]
                [--count N] [--bind IP] [--src-port P] [--sources N] [--stop-file PATH]
       wg-flood legit --target ADDR:PORT --target-key BASE64 --key-file PATH [--bind IP[:PORT]]
                [--timeout S]
       wg-flood storm|storm-keys --target ADDR:PORT --target-key BASE64 [--peers N] [--seed S]
                [--duration S] [--bind IP]
       wg-flood fleet --target ADDR:PORT --target-key BASE64 --addresses FILE [--peers N]
                [--seed S] [--rate N] [--duration S] [--timeout S] [--bind IP] [--sources N]

valid-mac1  handshake initiations (148 bytes, type 1) with random sender index, ephemeral and
            encrypted fields and a correct mac1 for --target-key; mac2 zero
junk        the same with a random mac1
legit       a real peer (private key in --key-file, mode 0600) that handshakes with the target
            and reports the time from its first initiation to the session; a cookie reply is
            answered at once (no REKEY_TIMEOUT wait)
storm       --peers real peers (keys from --seed) handshaking again as soon as each session is
            up, for --duration; prints the handshakes per second completed
storm-keys  prints the public keys of those peers, one per line (for the target to admit)
fleet       --peers devices (keys from --seed, admitted by the hub; IPv4 addresses, line i for
            device i, in --addresses FILE) all handshake at once (time until all are up, within
            --timeout), then send --rate UDP packets per second to each other at random through
            the hub for --duration; prints the packets delivered per second

--rate N        initiations per second, sent in batches every millisecond (default 20000)
--duration S    seconds to flood (default 10, at most 3600; decimals allowed)
--count N       stop after N initiations (default: no limit but the duration)
--bind IP       source address (default: any, of the target's family); legit also IP:PORT
--src-port P    first source port; with --sources N, ports P..P+N-1 (default 0: the kernel's)
--sources N     source sockets, used in turn (default 1, at most 256)
--stop-file P   stop early once file P exists (looked at every millisecond)
--timeout S     legit: give up after S seconds (default 10, at most 3600)
--peers N       storm: peers (default 100, at most 10000)
--seed S        storm: the seed their keys are made from (default 1)
--addresses F   fleet: the devices' addresses

Prints one line of key=value figures on standard output.";

/// What to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Initiations with a correct mac1.
    ValidMac1,
    /// Initiations with a random mac1.
    Junk,
    /// One timed handshake as a real peer.
    Legit,
    /// Many real peers handshaking as fast as the target answers.
    Storm,
    /// The public keys of the storm's peers.
    StormKeys,
    /// Many simulated devices talking to each other through a hub.
    Fleet,
}

impl Mode {
    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Mode::ValidMac1 => "valid-mac1",
            Mode::Junk => "junk",
            Mode::Legit => "legit",
            Mode::Storm => "storm",
            Mode::StormKeys => "storm-keys",
            Mode::Fleet => "fleet",
        }
    }
}

/// Everything the command line says.
#[derive(Debug, Clone)]
pub struct Options {
    /// The mode.
    pub mode: Mode,
    /// The WireGuard endpoint under test.
    pub target: SocketAddr,
    /// Its static public key (mac1 is keyed with it).
    pub target_key: [u8; 32],
    /// Initiations per second.
    pub rate: u32,
    /// How long to flood.
    pub duration: Duration,
    /// Most initiations to send.
    pub count: Option<u64>,
    /// Source address (and, for legit, port).
    pub bind: SocketAddr,
    /// Source sockets of a flood.
    pub sources: u16,
    /// The legitimate peer's private-key file.
    pub key_file: Option<PathBuf>,
    /// A flood stops early once this file exists.
    pub stop_file: Option<PathBuf>,
    /// How long the legitimate peer waits for its session.
    pub timeout: Duration,
    /// Peers of a storm.
    pub peers: u32,
    /// The seed of the storm's keys.
    pub seed: u64,
    /// Fleet: the file of the devices' addresses, one per line.
    pub addresses: Option<PathBuf>,
}

/// Parses `args` (without the program name).
pub fn parse(args: &[String]) -> Result<Options, String> {
    let mode = match args.first().map(String::as_str) {
        Some("valid-mac1") => Mode::ValidMac1,
        Some("junk") => Mode::Junk,
        Some("legit") => Mode::Legit,
        Some("storm") => Mode::Storm,
        Some("storm-keys") => Mode::StormKeys,
        Some("fleet") => Mode::Fleet,
        Some(other) => return Err(format!("unknown mode `{other}`")),
        None => return Err("no mode given".into()),
    };
    let mut target = None;
    let mut target_key = None;
    let mut o = Options {
        mode,
        target: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        target_key: [0; 32],
        rate: 20_000,
        duration: Duration::from_secs(10),
        count: None,
        bind: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        sources: 1,
        key_file: None,
        stop_file: None,
        timeout: Duration::from_secs(10),
        peers: 100,
        seed: 1,
        addresses: None,
    };
    let mut bind = None;
    let mut src_port = 0u16;
    let mut rest = args[1..].iter();
    while let Some(name) = rest.next() {
        let value = rest.next().ok_or_else(|| format!("{name} needs a value"))?;
        let bad = |what: &str| format!("{name} {value}: {what}");
        match name.as_str() {
            "--target" => target = Some(value.parse().map_err(|_| bad("not ADDR:PORT"))?),
            "--target-key" => {
                let k = PublicKey::from_base64(value).map_err(|_| bad("not a base64 key"))?;
                target_key = Some(*k.as_bytes());
            }
            "--rate" => o.rate = bounded(value, 1, MAX_RATE.into()).map_err(|e| bad(&e))? as u32,
            "--duration" => o.duration = seconds(value).map_err(|e| bad(&e))?,
            "--timeout" => o.timeout = seconds(value).map_err(|e| bad(&e))?,
            "--count" => o.count = Some(bounded(value, 1, u64::MAX).map_err(|e| bad(&e))?),
            "--bind" => bind = Some(bind_addr(value).ok_or_else(|| bad("not IP or IP:PORT"))?),
            "--src-port" => {
                src_port = bounded(value, 0, u16::MAX.into()).map_err(|e| bad(&e))? as u16
            }
            "--sources" => {
                o.sources = bounded(value, 1, MAX_SOURCES.into()).map_err(|e| bad(&e))? as u16
            }
            "--key-file" => o.key_file = Some(PathBuf::from(value)),
            "--peers" => {
                o.peers = bounded(value, 1, MAX_STORM_PEERS.into()).map_err(|e| bad(&e))? as u32
            }
            "--seed" => o.seed = bounded(value, 0, u64::MAX).map_err(|e| bad(&e))?,
            "--stop-file" => o.stop_file = Some(PathBuf::from(value)),
            "--addresses" => o.addresses = Some(PathBuf::from(value)),
            _ => return Err(format!("unknown option {name}")),
        }
    }
    o.target = target.ok_or("--target is required")?;
    o.target_key = target_key.ok_or("--target-key is required")?;
    let any: IpAddr = match o.target {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    o.bind = bind.unwrap_or(SocketAddr::new(any, 0));
    if src_port != 0 {
        if u32::from(src_port) + u32::from(o.sources) > 65_536 {
            return Err(format!(
                "--src-port {src_port} + --sources {} passes port 65535",
                o.sources
            ));
        }
        o.bind.set_port(src_port);
    }
    if o.bind.is_ipv4() != o.target.is_ipv4() {
        return Err("--bind and --target are of different address families".into());
    }
    if mode == Mode::Fleet && o.addresses.is_none() {
        return Err("fleet needs --addresses".into());
    }
    if mode == Mode::Legit && o.key_file.is_none() {
        return Err("legit needs --key-file".into());
    }
    Ok(o)
}

/// An integer in `lo..=hi`.
fn bounded(s: &str, lo: u64, hi: u64) -> Result<u64, String> {
    let v: u64 = s.parse().map_err(|_| "not a number".to_string())?;
    if v < lo || v > hi {
        return Err(format!("must be {lo}..={hi}"));
    }
    Ok(v)
}

/// Seconds, decimals allowed, more than 0 and at most [`MAX_DURATION`].
fn seconds(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| "not a number of seconds".to_string())?;
    if !(v > 0.0 && v <= MAX_DURATION.as_secs_f64()) {
        return Err(format!(
            "must be more than 0 and at most {}",
            MAX_DURATION.as_secs()
        ));
    }
    Ok(Duration::from_secs_f64(v))
}

/// `IP` (port 0) or `IP:PORT`.
fn bind_addr(s: &str) -> Option<SocketAddr> {
    s.parse::<SocketAddr>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    const KEY: &str = "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=";

    #[test]
    fn flood_options_and_defaults() {
        let o = parse(&args(&format!(
            "valid-mac1 --target 192.0.2.1:51820 --target-key {KEY} --rate 30000 --duration 2.5 \
             --bind 192.0.2.9 --src-port 40000 --sources 4"
        )))
        .expect("parse");
        assert_eq!(o.mode, Mode::ValidMac1);
        assert_eq!(o.rate, 30_000);
        assert_eq!(o.duration, Duration::from_millis(2500));
        assert_eq!(o.bind, "192.0.2.9:40000".parse().unwrap());
        assert_eq!(o.sources, 4);
        let o = parse(&args(&format!("junk --target [::1]:1 --target-key {KEY}"))).unwrap();
        assert_eq!(o.bind, "[::]:0".parse().unwrap());
        assert_eq!((o.rate, o.duration), (20_000, Duration::from_secs(10)));
    }

    #[test]
    fn bounds_and_missing_values_are_refused() {
        let base = format!("junk --target 192.0.2.1:1 --target-key {KEY}");
        for extra in [
            "--duration 0",
            "--duration 3601",
            "--rate 0",
            "--rate 2000001",
            "--sources 0",
            "--sources 257",
            "--src-port 65535 --sources 2",
            "--bind ::1",
            "--rate",
            "--bogus 1",
        ] {
            assert!(parse(&args(&format!("{base} {extra}"))).is_err(), "{extra}");
        }
        assert!(parse(&args("junk --target 192.0.2.1:1")).is_err());
        assert!(parse(&args(&format!(
            "legit --target 192.0.2.1:1 --target-key {KEY}"
        )))
        .is_err());
        assert!(parse(&args("flood")).is_err());
    }
}
