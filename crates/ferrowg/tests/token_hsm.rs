//! PKCS#11 keys on a real token (SoftHSM2, initialised by each test): generation and the
//! protection attributes, DH equal to software X25519, errors that say what is wrong, the
//! token going away and coming back, and the handshake rate with a token key.
//!
//! No root needed; SoftHSM2 must be installed (a missing SoftHSM fails the tests).

mod token;

use std::time::{Duration, Instant};

use ferrowg_conf::uapi::Errno;
use ferrowg_keys::pkcs11::{manage as tok, Pkcs11Error, Pkcs11Key, Pkcs11Uri};
use ferrowg_proto::crypto::{self, KeyError, RingCrypto, SecretKey, StaticKey};
use ferrowg_proto::{Device, PeerConfig};
use token::{in_process, in_process_exclusive, process_token, TestToken, MODULE};

fn uri(s: &str) -> Pkcs11Uri {
    Pkcs11Uri::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn b64(k: &[u8; 32]) -> String {
    ferrowg_keys::key::PublicKey::from_bytes(*k).to_base64()
}

#[test]
fn generated_key_is_sensitive_and_never_extractable() {
    let t = process_token();
    // Exclusive: no other in-process session may hold a stale view of the store meanwhile.
    let _g = in_process_exclusive();
    let u = t.uri("generated");
    let public = t.ferrowg_ok(&["genkey", "--pkcs11", &u]);
    assert_eq!(public.len(), 44, "{public}");
    assert_eq!(t.ferrowg_ok(&["pubkey", "--pkcs11", &u]), public);

    // Read back in this process (the key was made by another process). SoftHSM notices objects
    // that another process wrote when it next rescans its store, which another test's session
    // in this process can delay: retry a few times (bounded).
    let mut tries = 0;
    let a = loop {
        match tok::key_attributes(&uri(&u)) {
            Ok(a) => break a,
            Err(e) if tries < 10 => {
                eprintln!("attributes not visible yet ({e:?}), retrying");
                tries += 1;
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("attributes: {e:?}"),
        }
    };
    eprintln!("attributes of the generated key: {a:?}");
    assert_eq!(a.sensitive, Some(true), "CKA_SENSITIVE");
    assert_eq!(a.extractable, Some(false), "CKA_EXTRACTABLE");
    assert_eq!(a.always_sensitive, Some(true), "CKA_ALWAYS_SENSITIVE");
    assert_eq!(a.never_extractable, Some(true), "CKA_NEVER_EXTRACTABLE");
    assert_eq!(a.local, Some(true), "CKA_LOCAL");
    assert!(a.value_read.is_err(), "CKA_VALUE must not be readable");
    // SoftHSM 2.6 spells X25519 as an Edwards key with curve25519 parameters.
    assert_eq!(a.key_type, "CKK_EC_EDWARDS");

    let key = Pkcs11Key::open(&uri(&u)).expect("open");
    assert_eq!(b64(&key.public_key()), public);
    // The same key through the CLI's description.
    let info = t.ferrowg_ok(&["key", "info", "--pkcs11", &u]);
    assert!(
        info.contains("sensitive: true") && info.contains("extractable: false"),
        "{info}"
    );
    assert!(info.contains("private value: not readable"), "{info}");

    // A second genkey on the same label is refused.
    let again = t.ferrowg(&["genkey", "--pkcs11", &u]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already has an object"));
}

#[test]
fn token_dh_equals_software_x25519() {
    let t = process_token();
    let _g = in_process();
    // Keys as `wg genkey` makes them, and unclamped ones (the token clamps, as X25519 does).
    let secrets: Vec<[u8; 32]> = vec![
        crypto::clamp([0x11; 32]),
        crypto::clamp(core::array::from_fn(|i| (i * 7 + 3) as u8)),
        [0xff; 32],
        core::array::from_fn(|i| (255 - i) as u8),
    ];
    let peers: Vec<[u8; 32]> = (1..=5u8)
        .map(|s| crypto::x25519_public(&crypto::clamp([s; 32])))
        .collect();
    for (i, sk) in secrets.iter().enumerate() {
        let u = uri(&t.uri(&format!("imported{i}")));
        let public = tok::import(&u, sk).expect("import");
        assert_eq!(public, crypto::x25519_public(sk), "public key of key {i}");
        let key = Pkcs11Key::open(&u).expect("open");
        let soft = SecretKey::from_bytes(*sk);
        assert_eq!(key.public_key(), soft.public_key());
        for (j, p) in peers.iter().enumerate() {
            let hw = key.dh(p).expect("token DH");
            let sw = soft.dh(p).expect("software DH");
            assert_eq!(*hw, *sw, "key {i}, peer {j}");
        }
        // A low-order point: the token's result (or refusal) becomes LowOrderPoint.
        assert_eq!(key.dh(&[0u8; 32]).err(), Some(KeyError::LowOrderPoint));
        let mut one = [0u8; 32];
        one[0] = 1;
        assert_eq!(key.dh(&one).err(), Some(KeyError::LowOrderPoint));
        // The key still works afterwards (a low-order point is not a token failure).
        assert!(key.is_connected());
        // The imported key is as protected as a generated one.
        let a = tok::key_attributes(&u).expect("attributes");
        assert_eq!((a.sensitive, a.extractable), (Some(true), Some(false)));
        assert!(a.value_read.is_err());
    }
}

#[test]
fn key_import_through_the_cli() {
    let t = TestToken::new("imp");
    let u = t.uri("from-wg");
    let sk = ferrowg_keys::key::PrivateKey::from_bytes(crypto::clamp([0x42; 32]));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ferrowg"))
        .args(["key", "import", "--pkcs11", &u])
        .env("SOFTHSM2_CONF", &t.conf)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{}\n", sk.to_base64()).as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let printed = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(printed, sk.public_key().to_base64());
    assert_eq!(t.ferrowg_ok(&["pubkey", "--pkcs11", &u]), printed);
}

/// Which error a case expects.
type Check = fn(&Pkcs11Error) -> bool;

#[test]
fn open_errors_say_which_part_is_wrong() {
    let t = process_token();
    let _g = in_process();
    t.ferrowg_ok(&["genkey", "--pkcs11", &t.uri("errors")]);
    let m = format!("module-path={MODULE}");
    let cases: Vec<(String, Check, &str)> = vec![
        (
            t.uri_with_query("errors", &format!("{m}&pin-value=0000")),
            |e| matches!(e, Pkcs11Error::WrongPin { .. }),
            "wrong PIN",
        ),
        (
            t.uri_with_query(
                "errors",
                "module-path=/usr/lib/no-such-pkcs11.so&pin-value=1234",
            ),
            |e| matches!(e, Pkcs11Error::ModuleLoad { .. }),
            "no-such-pkcs11.so: cannot be loaded",
        ),
        (
            t.uri_with_query("missing", &format!("{m}&pin-value=1234")),
            |e| matches!(e, Pkcs11Error::NoObject { no_pin: false, .. }),
            "has no private key with object=\"missing\"",
        ),
        (
            format!("pkcs11:token=no-such-token;object=errors?{m}&pin-value=1234"),
            |e| matches!(e, Pkcs11Error::NoToken { .. }),
            "no PKCS#11 token matches token=\"no-such-token\"",
        ),
        (
            t.uri_with_query("errors", &m),
            |e| matches!(e, Pkcs11Error::NoObject { no_pin: true, .. }),
            "no PIN was given",
        ),
        (
            t.uri_with_query("errors", &format!("{m}&pin-source=file:/nonexistent/pin")),
            |e| matches!(e, Pkcs11Error::PinSource { .. }),
            "cannot read the PIN from /nonexistent/pin",
        ),
        (
            format!("pkcs11:token={};object=errors", t.label),
            |e| matches!(e, Pkcs11Error::NoModule),
            "names no module",
        ),
    ];
    // The CLI refuses pin-value= (it would show in /proc/PID/cmdline): it reads the same
    // PINs from files.
    let pins = ferrowg_testkit::TempDir::new();
    let cli_uri = |text: &str| -> String {
        let Some((head, rest)) = text.split_once("pin-value=") else {
            return text.to_string();
        };
        let (pin, tail) = rest.split_at(rest.find('&').unwrap_or(rest.len()));
        let name = if pin == "1234" {
            "right-pin"
        } else {
            "wrong-pin"
        };
        let file = pins.write(name, &format!("{pin}\n"));
        format!("{head}pin-source=file:{}{tail}", file.display())
    };
    let mut errnos = Vec::new();
    for (i, (text, is, says)) in cases.iter().enumerate() {
        // The CLI (a fresh process, as `ferrowg set` and `up` are) prints the cause.
        let out = t.ferrowg(&["pubkey", "--pkcs11", &cli_uri(text)]);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{text}: {stderr}");
        assert!(
            !stderr.contains("0000") && !stderr.contains("1234"),
            "PIN shown: {stderr}"
        );
        if i == 0 || i == 4 {
            // PKCS#11 login is per process and token: while another test of this process
            // is logged in to the token, a second login is not checked (CKR_USER_ALREADY_
            // LOGGED_IN) and private objects are visible without one, so the wrong and the
            // missing PIN are only tested in a fresh process.
            errnos.push(
                Errno::of_token_error(&Pkcs11Error::WrongPin {
                    token: String::new(),
                })
                .0,
            );
            continue;
        }
        let e = Pkcs11Key::open(&uri(text)).expect_err(text);
        assert!(is(&e), "{text}: {e:?}");
        let msg = e.to_string();
        assert!(msg.contains(says), "{text}: {msg}");
        errnos.push(Errno::of_token_error(&e).0);
    }
    // Module, PIN, object and token failures have distinct UAPI errnos.
    let distinct: std::collections::BTreeSet<i32> = errnos[..4].iter().copied().collect();
    assert_eq!(distinct.len(), 4, "{errnos:?}");
}

#[test]
fn token_away_then_back() {
    let t = process_token();
    let _g = in_process_exclusive();
    let _ = env_logger::builder()
        .is_test(true)
        .filter_level(log::LevelFilter::Debug)
        .try_init();
    let u = uri(&t.uri("away"));
    tok::generate(&u).expect("generate");
    let key = Pkcs11Key::open(&u).expect("open");
    let peer = crypto::x25519_public(&crypto::clamp([9; 32]));
    let good = key.dh(&peer).expect("DH with the token present");

    t.take_away();
    let failed_at = Instant::now();
    assert_eq!(
        key.dh(&peer).err(),
        Some(KeyError::Unavailable),
        "token gone"
    );
    assert!(!key.is_connected());
    // While it is away, calls fail fast (the backoff spares the token and the daemon).
    let t0 = Instant::now();
    for _ in 0..100 {
        assert_eq!(key.dh(&peer).err(), Some(KeyError::Unavailable));
    }
    let per_call = t0.elapsed() / 100;
    eprintln!("refused DH while away: {per_call:?} per call");
    // Away for a while: reconnection attempts (with the module reinitialised) keep failing.
    while failed_at.elapsed() < Duration::from_millis(1500) {
        assert_eq!(key.dh(&peer).err(), Some(KeyError::Unavailable));
        std::thread::sleep(Duration::from_millis(50));
    }

    t.bring_back();
    let back = Instant::now();
    let mut again = None;
    while back.elapsed() < Duration::from_secs(10) {
        if let Ok(s) = key.dh(&peer) {
            again = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let again = again.expect("DH works again after the token returned");
    assert_eq!(*again, *good);
    eprintln!(
        "token away for {:?}; DH again {:?} after it returned",
        back - failed_at,
        back.elapsed()
    );
    assert!(key.is_connected());
}

/// One full handshake between two in-process devices (initiation, response, keepalive).
fn handshake(
    a: &mut Device,
    b: &mut Device,
    peer_of_a: ferrowg_proto::PeerId,
    now: ferrowg_proto::Instant,
) {
    let mut wire = vec![0u8; 256];
    ferrowg_testkit::exchange_handshake(a, b, peer_of_a, now, &mut wire);
    a.poll_transmit(&mut wire).expect("keepalive");
    while a.poll_event().is_some() || b.poll_event().is_some() {}
}

/// CPU time this thread has used (ns), from `/proc/thread-self/schedstat`: rates per CPU
/// second do not depend on how busy the (shared) machine is.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// A rate measured both ways: per wall-clock second and per CPU second of this thread (the
/// token, SoftHSM, runs in this thread too).
#[derive(Clone, Copy)]
struct Rate {
    wall: f64,
    cpu: f64,
}

impl Rate {
    fn measure(dur: Duration, mut op: impl FnMut()) -> Rate {
        let (start, cpu0) = (Instant::now(), cpu_ns());
        let mut n = 0u32;
        while start.elapsed() < dur {
            op();
            n += 1;
        }
        let cpu = (cpu_ns() - cpu0) as f64 / 1e9;
        Rate {
            wall: f64::from(n) / start.elapsed().as_secs_f64(),
            cpu: f64::from(n) / cpu.max(1e-9),
        }
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:7.0}/s wall, {:7.0}/s per CPU second",
            self.wall, self.cpu
        )
    }
}

/// Handshakes per second for `a` ↔ `b` over `dur` (both sides' work in this one thread).
fn rate(a_key: Box<dyn StaticKey>, b_key: Box<dyn StaticKey>, dur: Duration) -> Rate {
    use ferrowg_proto::rand_core::OsRng;
    let mut now = ferrowg_proto::Instant::from_secs(1);
    let mut a = Device::new(a_key, Box::new(RingCrypto), Box::new(OsRng));
    let mut b = Device::new(b_key, Box::new(RingCrypto), Box::new(OsRng));
    a.set_clock(now, 1_700_000_000_000_000_000);
    b.set_clock(now, 1_700_000_000_000_000_000);
    let cfg = PeerConfig {
        endpoint: Some(ferrowg_testkit::B_ENDPOINT.parse().unwrap()),
        ..PeerConfig::default()
    };
    let pa = a.add_peer(b.public_key(), cfg, now).unwrap();
    b.add_peer(a.public_key(), PeerConfig::default(), now)
        .unwrap();
    Rate::measure(dur, || {
        now = now + Duration::from_secs(6);
        handshake(&mut a, &mut b, pa, now);
    })
}

/// Not a timing assertion: prints handshakes/s with the static key in the token and in
/// memory (the token side once the initiator, once the responder). Dev profile numbers; the
/// per-CPU-second figures are the ones to compare on a shared machine.
#[test]
fn handshake_rate_token_vs_memory() {
    let t = process_token();
    let _g = in_process();
    let u = uri(&t.uri("rate"));
    tok::generate(&u).expect("generate");
    let mem = |s: u8| Box::new(SecretKey::from_bytes(crypto::clamp([s; 32]))) as Box<dyn StaticKey>;
    let tokkey = || Box::new(Pkcs11Key::open(&u).expect("open")) as Box<dyn StaticKey>;
    let dur = Duration::from_millis(
        std::env::var("FERROWG_BENCH_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1500),
    );
    let memory = rate(mem(1), mem(2), dur);
    let token_initiator = rate(tokkey(), mem(2), dur);
    let token_responder = rate(mem(1), tokkey(), dur);
    // One static-key DH alone, in the token and in memory.
    let key = Pkcs11Key::open(&u).expect("open");
    let soft = SecretKey::from_bytes(crypto::clamp([1; 32]));
    let peer = crypto::x25519_public(&crypto::clamp([3; 32]));
    let token_dh = Rate::measure(dur, || drop(key.dh(&peer).expect("DH")));
    let memory_dh = Rate::measure(dur, || drop(soft.dh(&peer).expect("DH")));
    println!("handshakes, both sides in this thread (ring AEAD, dalek X25519):");
    println!("  memory key <-> memory key:            {memory}");
    println!("  token key (initiator) <-> memory key: {token_initiator}");
    println!("  memory key <-> token key (responder): {token_responder}");
    println!(
        "  token/memory per CPU second: initiator {:.2}, responder {:.2}",
        token_initiator.cpu / memory.cpu,
        token_responder.cpu / memory.cpu
    );
    println!("static-key DH alone:");
    println!("  token (C_DeriveKey + read + destroy): {token_dh}");
    println!("  memory (x25519-dalek):                {memory_dh}");
    assert!(memory.wall > 0.0 && token_initiator.wall > 0.0 && token_responder.wall > 0.0);
}
