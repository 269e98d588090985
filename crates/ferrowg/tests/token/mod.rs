//! SoftHSM2 tokens for the PKCS#11 tests (`tests/token_*.rs`), initialised by the tests.
//!
//! ```text
//!   /tmp/ferrowg-hsm-<pid>/<label>/softhsm2.conf    SOFTHSM2_CONF of one token
//!                                 /tokens/<uuid>/   SoftHSM's file store (one token)
//!                                 /pin              its user PIN (mode 0600)
//! ```
//!
//! Each token has a SoftHSM store of its own: SoftHSM 2.6 fails `C_GetSlotList` with
//! `CKR_GENERAL_ERROR` in every process that has seen a token whose directory later vanished,
//! so tokens that are deleted or taken away must not share a store with anything else.
//! Daemons and CLI commands get a token's store through `SOFTHSM2_CONF` ([`TestToken::env`]).
//!
//! In-process use of the library reads `SOFTHSM2_CONF` once per process, so one token per
//! test process ([`process_token`]) serves it; tests that use it in-process hold
//! [`in_process`] (shared), and a test that takes that token away holds it exclusively.
//! Stores of finished test processes are removed at the next run.
#![allow(dead_code, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Debian's SoftHSM2 module.
pub const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// The user PIN of every test token.
pub const PIN: &str = "1234";
/// The security officer PIN of every test token.
pub const SO_PIN: &str = "5678";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The directory of this process's token stores.
fn base_dir() -> &'static Path {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    BASE.get_or_init(|| {
        assert!(
            Path::new(MODULE).exists(),
            "SoftHSM2 is not installed ({MODULE})"
        );
        remove_stale_dirs();
        let dir = std::env::temp_dir().join(format!("ferrowg-hsm-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create token base dir");
        dir
    })
}

/// Removes the token stores of earlier test processes that are gone.
fn remove_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name
            .strip_prefix("ferrowg-hsm-")
            .and_then(|p| p.parse::<u32>().ok())
        {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

/// The token this process uses in-process (through the library), with `SOFTHSM2_CONF`
/// exported for it. Never deleted while the process runs.
pub fn process_token() -> &'static TestToken {
    static TOKEN: OnceLock<TestToken> = OnceLock::new();
    TOKEN.get_or_init(|| {
        let t = TestToken::new("proc");
        // Set once, before any thread of this process loads the module.
        std::env::set_var("SOFTHSM2_CONF", &t.conf);
        t
    })
}

static IN_PROCESS: RwLock<()> = RwLock::new(());

/// Held (shared) by tests that use [`process_token`] in-process.
pub fn in_process() -> RwLockReadGuard<'static, ()> {
    IN_PROCESS.read().unwrap_or_else(|e| e.into_inner())
}

/// Held by a test that takes [`process_token`] away (no other in-process test runs then).
pub fn in_process_exclusive() -> RwLockWriteGuard<'static, ()> {
    IN_PROCESS.write().unwrap_or_else(|e| e.into_inner())
}

/// A token with a SoftHSM store of its own, removed on drop.
pub struct TestToken {
    pub label: String,
    /// Its `SOFTHSM2_CONF`.
    pub conf: PathBuf,
    pub pin_file: PathBuf,
    root: PathBuf,
    dir: PathBuf,
    away: Mutex<bool>,
}

impl TestToken {
    /// Initialises a new token `fw<pid><tag><n>` with the user PIN [`PIN`].
    pub fn new(tag: &str) -> TestToken {
        let label = format!(
            "fw{}{tag}{}",
            std::process::id() % 100_000,
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let root = base_dir().join(&label);
        std::fs::create_dir_all(root.join("tokens")).expect("create token store");
        let conf = root.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                root.join("tokens").display()
            ),
        )
        .expect("write softhsm2.conf");
        let out = Command::new("softhsm2-util")
            .args([
                "--init-token",
                "--free",
                "--label",
                &label,
                "--so-pin",
                SO_PIN,
                "--pin",
                PIN,
            ])
            .env("SOFTHSM2_CONF", &conf)
            .output()
            .expect("run softhsm2-util");
        assert!(
            out.status.success(),
            "softhsm2-util --init-token failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dir = std::fs::read_dir(root.join("tokens"))
            .expect("token store")
            .flatten()
            .map(|e| e.path())
            .next()
            .expect("token directory");
        let pin_file = root.join("pin");
        ferrowg_keys::keyfile::write_private_file(&pin_file, format!("{PIN}\n").as_bytes())
            .expect("write the PIN file");
        TestToken {
            label,
            conf,
            pin_file,
            root,
            dir,
            away: Mutex::new(false),
        }
    }

    /// `SOFTHSM2_CONF=…` for a shell command line.
    pub fn env(&self) -> String {
        format!("SOFTHSM2_CONF={}", self.conf.display())
    }

    /// The URI of `object` in this token, PIN from the pin file.
    pub fn uri(&self, object: &str) -> String {
        format!(
            "pkcs11:token={};object={object}?module-path={MODULE}&pin-source=file:{}",
            self.label,
            self.pin_file.display()
        )
    }

    /// The URI of `object` with an explicit query part (module, PIN).
    pub fn uri_with_query(&self, object: &str, query: &str) -> String {
        format!("pkcs11:token={};object={object}?{query}", self.label)
    }

    /// The token's directory in SoftHSM's store.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Takes the token away, as if unplugged: its files disappear from where SoftHSM keeps
    /// them (the directory is renamed out of the store).
    pub fn take_away(&self) {
        let mut away = self.away.lock().unwrap_or_else(|e| e.into_inner());
        if !*away {
            std::fs::rename(&self.dir, self.root.join("away")).expect("move token away");
            *away = true;
        }
    }

    /// Puts the token back where it was.
    pub fn bring_back(&self) {
        let mut away = self.away.lock().unwrap_or_else(|e| e.into_inner());
        if *away {
            std::fs::rename(self.root.join("away"), &self.dir).expect("bring token back");
            *away = false;
        }
    }

    /// Runs the ferrowg CLI with this token's store.
    pub fn ferrowg(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_ferrowg"))
            .args(args)
            .env("SOFTHSM2_CONF", &self.conf)
            .output()
            .expect("run ferrowg")
    }

    /// [`TestToken::ferrowg`], panicking unless it succeeds; returns the trimmed stdout.
    pub fn ferrowg_ok(&self, args: &[&str]) -> String {
        let out = self.ferrowg(args);
        assert!(
            out.status.success(),
            "ferrowg {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for TestToken {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
