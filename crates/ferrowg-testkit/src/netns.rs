//! Network namespaces for tests, and the unique names that keep parallel tests and runs apart.
//!
//! A [`Netns`] is created with `lo` up and deleted on drop, also when the test fails; so are
//! the processes started in it ([`Netns::spawn`]: their logs are printed when the test fails)
//! and the UAPI sockets of the interfaces it owns ([`Netns::own_iface`]). Code runs inside it
//! either as a shell command (`ip netns exec`) or on a thread that has entered it
//! ([`Netns::run_in`]), so cargo's other test threads stay where they are.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::fake_daemon::socket_path;
use crate::process::{run, sh, wait_for};
use crate::root::require_root;

/// A number unique within this test process.
pub fn unique() -> u32 {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    COUNTER.fetch_add(1, Ordering::SeqCst)
}

/// A unique interface name (at most 15 bytes): `fw<pid mod 10^5><tag><n>`.
pub fn iface_name(tag: &str) -> String {
    let name = format!("fw{}{tag}{}", std::process::id() % 100_000, unique());
    assert!(name.len() <= 15, "interface name too long: {name}");
    name
}

/// A process started in a namespace, with the file its output goes to.
struct Spawned {
    child: Child,
    log: PathBuf,
}

/// A network namespace that deletes itself (and kills what runs inside) on drop.
pub struct Netns {
    /// Its name under `/run/netns`.
    pub name: String,
    file: File,
    children: Vec<Spawned>,
    /// Interfaces whose UAPI sockets to remove on drop.
    ifaces: Vec<String>,
}

impl Netns {
    /// Creates `fwt-<pid>-<tag>-<n>` with `lo` up.
    pub fn new(tag: &str) -> Netns {
        let name = format!("fwt-{}-{tag}-{}", std::process::id(), unique());
        // A namespace left by an earlier run that died with the same pid.
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        run(&format!("ip netns add {name}"));
        let file = match ferrowg_sys::netns::open(format!("/run/netns/{name}")) {
            Ok(f) => f,
            Err(e) => {
                let _ = Command::new("ip").args(["netns", "del", &name]).output();
                panic!("open netns {name}: {e}");
            }
        };
        let ns = Netns {
            name,
            file,
            children: Vec::new(),
            ifaces: Vec::new(),
        };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// [`Netns::new`] for a root-only test: `None` when [`require_root`] says to skip.
    pub fn for_test(tag: &str) -> Option<Netns> {
        require_root().then(|| Netns::new(tag))
    }

    /// Runs `ip -n <ns> args…` (no shell) and panics with its standard error if it fails.
    pub fn ip(&self, args: &[&str]) {
        let out = Command::new("ip")
            .args(["-n", &self.name])
            .args(args)
            .output()
            .expect("run ip(8)");
        assert!(
            out.status.success(),
            "ip -n {} {}: {}",
            self.name,
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The command line that runs `cmd` (a shell command) in this namespace.
    pub fn wrap(&self, cmd: &str) -> String {
        format!(
            "ip netns exec {} sh -c '{}'",
            self.name,
            cmd.replace('\'', "'\\''")
        )
    }

    /// Runs `cmd` inside the namespace (panics on failure); returns its standard output.
    pub fn run(&self, cmd: &str) -> String {
        run(&self.wrap(cmd))
    }

    /// Runs `cmd` inside the namespace, returning the raw output.
    pub fn sh(&self, cmd: &str) -> Output {
        sh(&self.wrap(cmd))
    }

    /// Marks `iface` as created in this namespace: its UAPI socket is removed on drop.
    pub fn own_iface(&mut self, iface: &str) {
        self.ifaces.push(iface.to_string());
    }

    /// Starts a long-running process inside the namespace (killed on drop) and returns its pid.
    /// Its output goes to a log file, printed if the test fails.
    pub fn spawn(&mut self, program: &str, args: &[&str], envs: &[(&str, &str)]) -> u32 {
        let mut c = Command::new("ip");
        // `ip netns exec` execs the program: the child's pid is the program's.
        c.args(["netns", "exec", &self.name, program])
            .args(args)
            .stdin(Stdio::null());
        for (k, v) in envs {
            c.env(k, v);
        }
        let log = std::env::temp_dir().join(format!("{}-{}.log", self.name, self.children.len()));
        let f = File::create(&log).expect("log file");
        c.stdout(Stdio::from(f.try_clone().expect("dup")))
            .stderr(Stdio::from(f));
        let child = c.spawn().unwrap_or_else(|e| panic!("spawn {program}: {e}"));
        let pid = child.id();
        self.children.push(Spawned { child, log });
        pid
    }

    /// Whether the process `pid` started by [`Netns::spawn`] is still running.
    pub fn alive(&mut self, pid: u32) -> bool {
        self.children
            .iter_mut()
            .find(|s| s.child.id() == pid)
            .is_some_and(|s| matches!(s.child.try_wait(), Ok(None)))
    }

    /// Sends SIGKILL to the process `pid` started by [`Netns::spawn`] and reaps it.
    pub fn kill9(&mut self, pid: u32) {
        let s = self
            .children
            .iter_mut()
            .find(|s| s.child.id() == pid)
            .expect("not our child");
        s.child.kill().expect("kill -9");
        s.child.wait().expect("wait");
    }

    /// The last lines of the log of every process started here.
    pub fn logs(&self) -> String {
        let mut s = String::new();
        for sp in &self.children {
            let text = std::fs::read_to_string(&sp.log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(60).collect();
            s += &format!(
                "--- pid {} ({}), last lines:\n",
                sp.child.id(),
                sp.log.display()
            );
            for l in tail.iter().rev() {
                s += l;
                s.push('\n');
            }
        }
        s
    }

    /// Runs `f` on a thread inside this namespace (sockets it creates live here).
    pub fn run_in<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        ferrowg_sys::netns::run_in(&self.file, f).expect("enter netns")
    }

    /// Starts `f` on a thread inside this namespace and returns at once.
    pub fn spawn_thread<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> std::thread::JoinHandle<T> {
        let file = self.file.try_clone().expect("dup netns file");
        std::thread::spawn(move || ferrowg_sys::netns::run_in(&file, f).expect("enter netns"))
    }

    /// Stops every process in the namespace: SIGTERM (daemons clean up), then SIGKILL.
    pub fn kill_all(&mut self) {
        let pids = format!("ip netns pids {}", self.name);
        let _ = sh(&format!("{pids} | xargs -r kill -TERM"));
        wait_for(Duration::from_secs(3), || {
            sh(&pids).stdout.iter().all(|b| b.is_ascii_whitespace())
        });
        let _ = sh(&format!("{pids} | xargs -r kill -9"));
        for sp in &mut self.children {
            let _ = sp.child.kill();
            let _ = sp.child.wait();
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.kill_all();
        if std::thread::panicking() && !self.children.is_empty() {
            eprintln!("=== logs of namespace {} ===\n{}", self.name, self.logs());
        }
        if std::env::var_os("FERROWG_E2E_KEEP_LOGS").is_none() {
            for sp in &self.children {
                let _ = std::fs::remove_file(&sp.log);
            }
        }
        let out = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
        if !matches!(&out, Ok(o) if o.status.success()) {
            eprintln!("warning: could not delete netns {}: {out:?}", self.name);
        }
        for i in &self.ifaces {
            let _ = std::fs::remove_file(socket_path(i));
        }
    }
}
