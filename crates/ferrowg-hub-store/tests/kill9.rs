//! `kill -9` during an enrolment burst loses nothing the store acknowledged.
//!
//! The test re-runs its own binary as a child (`FERROWG_KILL9_CHILD=DIR`, only the `child`
//! test) that enrols devices in a loop and prints `ACK NAME` after each enrolment returned,
//! i.e. after its commit. The parent reads the acknowledgements, sends SIGKILL mid-burst, then
//! reopens the database: it must open cleanly, pass `PRAGMA integrity_check`, and hold every
//! acknowledged device.

mod support;

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use ferrowg_hub_store::{Enrolment, HubStore, NewToken, SqlStore};

use support::{key, T0};

const CHILD_ENV: &str = "FERROWG_KILL9_CHILD";
/// The PostgreSQL database the child uses (absent: the SQLite file in the directory).
const URL_ENV: &str = "FERROWG_KILL9_DATABASE";
/// Acknowledgements the parent waits for before it kills the child.
const KILL_AFTER: usize = 40;
/// The child stops by itself after this many enrolments.
const CHILD_MAX: u32 = 20_000;
/// The longest the parent waits for one acknowledgement.
const ACK_WAIT: Duration = Duration::from_secs(60);

/// The child's work: enrol until killed (or `CHILD_MAX`), acknowledging each after it returned.
#[tokio::test]
async fn child() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return; // Only runs as the parent's child.
    };
    let url = std::env::var(URL_ENV).ok();
    let store = SqlStore::open_in(Path::new(&dir), url.as_deref())
        .await
        .unwrap();
    let (_, cred) = store
        .create_token(
            &NewToken {
                group: "burst".into(),
                uses: None,
                expires_at: None,
            },
            T0,
        )
        .await
        .unwrap();
    let mut out = std::io::stdout().lock();
    for i in 0..CHILD_MAX {
        let enrolment = Enrolment {
            name: format!("burst-{i}"),
            public_key: key(i),
            routes: vec![],
        };
        let device = store.redeem(&cred, &enrolment, T0).await.unwrap();
        writeln!(out, "ACK {} {}", device.name, device.ipv4).unwrap();
        out.flush().unwrap();
    }
}

#[tokio::test]
async fn kill_9_during_enrolments_loses_nothing_acknowledged() {
    let t = support::store().await;
    t.store.close().await;
    let mut child = Command::new(std::env::current_exe().unwrap());
    if let Some(url) = &t.url {
        child.env(URL_ENV, url);
    }
    let mut child = child
        .args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, t.dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // libtest prints `test child ... ` without a newline before the test runs, so the
            // first acknowledgement shares its line.
            if let Some((_, ack)) = line.split_once("ACK ") {
                if tx.send(ack.to_owned()).is_err() {
                    break;
                }
            }
        }
    });
    let mut acked = vec![];
    while acked.len() < KILL_AFTER {
        match rx.recv_timeout(ACK_WAIT) {
            Ok(ack) => acked.push(ack),
            Err(e) => {
                let _ = child.kill();
                panic!("child stopped acknowledging after {}: {e}", acked.len());
            }
        }
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child was killed, not finished");
    // Acknowledgements already in the pipe when the child died count too.
    reader.join().unwrap();
    acked.extend(rx.try_iter());

    let store = t.reopen().await;
    assert!(store.integrity_ok().await.unwrap());
    let stored = store.list_devices().await.unwrap();
    let stored: HashSet<String> = stored
        .iter()
        .map(|d| format!("{} {}", d.name, d.ipv4))
        .collect();
    let missing: Vec<&String> = acked.iter().filter(|a| !stored.contains(*a)).collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    // The child enrols one at a time: at most the one in flight was stored unacknowledged.
    assert!(
        stored.len() <= acked.len() + 1,
        "devices nobody enrolled: {} acknowledged, {} stored: {:?}",
        acked.len(),
        stored.len(),
        stored
            .iter()
            .filter(|s| !acked.contains(*s))
            .collect::<Vec<_>>()
    );
    eprintln!(
        "killed after {} acknowledged enrolments; {} devices stored",
        acked.len(),
        stored.len()
    );
}
