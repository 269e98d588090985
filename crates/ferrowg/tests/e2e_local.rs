//! End-to-end: what a local user who is neither root nor the daemon's user can do to a running
//! `ferrowg daemon` through its UAPI socket (issue #17, item 4): nothing.
//!
//! - The socket is mode 0600 from the moment it exists, even for a daemon started with umask
//!   000. Where strace is installed, the daemon runs under it with every chmod delayed by half
//!   a second, so a socket bound with the caller's umask and fixed by a later chmod is seen
//!   wide open by the watcher.
//! - A connection from uid 65534 (`nobody`, given `CAP_DAC_OVERRIDE` so that it gets past the
//!   file mode, as it would in the window of a chmod after bind) is closed unanswered: `wg show`
//!   and `wg set` fail, the state is unchanged, the daemon logs the uid. Root is still served.
//! - A PKCS#11 module in a world-writable directory is refused by the daemon and by the CLI
//!   with a message naming the directory, and never loaded: the module's constructor, which
//!   would leave a marker file, does not run.
//!
//! Each daemon runs in a namespace of its own (removed with whatever runs inside it on drop);
//! every wait is bounded. Needs root, wg, setpriv; without root fails unless
//! FERROWG_SKIP_ROOT_TESTS=1.

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use ferrowg_testkit::*;

/// How long a daemon may take to start.
const LIMIT: Duration = Duration::from_secs(20);

/// `setpriv` running a command as uid/gid 65534 with no groups; with `bypass`, also with
/// `CAP_DAC_OVERRIDE`, so file modes do not stop it and only the daemon's check can.
fn as_nobody(bypass: bool, cmd: &str) -> std::process::Output {
    let caps = if bypass {
        "--inh-caps=+dac_override --ambient-caps=+dac_override "
    } else {
        ""
    };
    sh(&format!(
        "setpriv --reuid=65534 --regid=65534 --clear-groups {caps}{cmd}"
    ))
}

/// Starts `ferrowg daemon --foreground IFACE` in `ns`, after the shell commands `setup` and
/// run by `wrapper` (a command prefix), and waits until its socket answers.
fn start(ns: &mut Netns, iface: &str, setup: &str, wrapper: &str) {
    ns.own_iface(iface);
    let line = format!(
        "{setup} exec {wrapper} {} daemon --foreground {iface}",
        fwg()
    );
    ns.spawn("sh", &["-c", &line], &[("RUST_LOG", "info")]);
    let up = wait_for(LIMIT, || UnixStream::connect(socket_path(iface)).is_ok());
    assert!(
        up.is_some(),
        "daemon for {iface} did not start\n{}",
        ns.logs()
    );
}

/// One UAPI exchange as root: the daemon's reply, through its empty line.
fn uapi(iface: &str, request: &str) -> String {
    let mut s = UnixStream::connect(socket_path(iface)).expect("connect");
    s.set_read_timeout(Some(LIMIT)).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut reply = Vec::new();
    let mut byte = [0u8; 1];
    while !reply.ends_with(b"\n\n") {
        match s.read(&mut byte) {
            Ok(1) => reply.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&reply).into_owned()
}

#[test]
fn the_socket_is_private_from_the_moment_it_exists() {
    let Some(mut ns) = Netns::for_test("lsock") else {
        return;
    };
    let iface = iface_name("s");
    let sock = socket_path(&iface);
    // The first mode the socket file is seen with.
    let watcher = {
        let sock = sock.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            while start.elapsed() < LIMIT {
                if let Ok(m) = std::fs::symlink_metadata(&sock) {
                    return Some(m.mode() & 0o7777);
                }
                std::thread::yield_now();
            }
            None
        })
    };
    let delay_chmod = if tool_exists("strace") {
        "strace -f -qq -o /dev/null -e trace=chmod,fchmodat,fchmod \
         -e inject=chmod,fchmodat,fchmod:delay_enter=500000"
    } else {
        ""
    };
    start(&mut ns, &iface, "umask 000;", delay_chmod);
    let first = watcher.join().unwrap();
    assert_eq!(
        first,
        Some(0o600),
        "the socket's first mode (daemon started with umask 000)\n{}",
        ns.logs()
    );
    let now = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o7777;
    assert_eq!(now, 0o600);
    // Root is served.
    assert!(uapi(&iface, "get=1\n\n").ends_with("errno=0\n\n"));
}

#[test]
fn other_users_get_nothing_and_change_nothing() {
    let Some(mut ns) = Netns::for_test("luid") else {
        return;
    };
    require_tool("wg");
    require_tool("setpriv");
    let iface = iface_name("u");
    start(&mut ns, &iface, "", "");
    wg(&["set", &iface, "listen-port", "41234"], &[]);

    // Stopped by the file mode (0600, owned by root).
    let out = as_nobody(false, &format!("wg show {iface}"));
    assert!(!out.status.success(), "{}", text(&out));
    // Past the file mode: stopped by the daemon's check of the peer's uid.
    let out = as_nobody(true, &format!("wg show {iface}"));
    assert!(!out.status.success(), "nobody was answered: {}", text(&out));
    assert!(out.stdout.is_empty(), "{}", text(&out));
    let out = as_nobody(true, &format!("wg set {iface} listen-port 41999"));
    assert!(!out.status.success(), "nobody set the port: {}", text(&out));
    // And with the UAPI text itself: the connection ends with no byte of reply.
    if tool_exists("python3") {
        let raw = as_nobody(
            true,
            &format!(
                // Closed unanswered, the connection may end in a reset or a broken pipe.
                "python3 -c 'import socket, contextlib; s=socket.socket(socket.AF_UNIX); \
                 s.connect(\"{}\"); r=b\"\"\n\
                 with contextlib.suppress(ConnectionError): s.sendall(b\"get=1\\n\\n\"); \
                 r=s.recv(4096)\n\
                 print(len(r))'",
                socket_path(&iface).display()
            ),
        );
        assert_eq!(text_out(&raw), "0", "{}", text(&raw));
    }

    // The state is unchanged and root is still served.
    let port = wg(&["show", &iface, "listen-port"], &[]);
    assert_eq!(port.trim(), "41234");
    let reply = uapi(&iface, "get=1\n\n");
    assert!(reply.contains("listen_port=41234"), "{reply}");
    let logs = ns.logs();
    assert!(
        logs.contains("refused a connection from uid 65534"),
        "no warning naming the uid:\n{logs}"
    );
}

fn text_out(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A shared library whose constructor creates `marker`: loading it leaves the file.
fn marker_module(dir: &Path, marker: &Path) -> std::path::PathBuf {
    let src = dir.join("evil.c");
    std::fs::write(
        &src,
        format!(
            "#include <fcntl.h>\n__attribute__((constructor)) static void f(void) {{ \
             creat(\"{}\", 0600); }}\n",
            marker.display()
        ),
    )
    .unwrap();
    let so = dir.join("evil.so");
    if tool_exists("cc") {
        run(&format!(
            "cc -shared -fPIC -o {} {}",
            so.display(),
            src.display()
        ));
    } else {
        // Not a library: loading it would fail with the loader's error instead.
        std::fs::write(&so, b"not a library").unwrap();
    }
    std::fs::set_permissions(&so, std::fs::Permissions::from_mode(0o755)).unwrap();
    so
}

#[test]
fn modules_in_world_writable_directories_are_never_loaded() {
    let Some(mut ns) = Netns::for_test("lmod") else {
        return;
    };
    let tmp = TempDir::new();
    let open = tmp.0.join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let marker = tmp.0.join("loaded");
    let so = marker_module(&open, &marker);
    let uri = format!("pkcs11:object=k?module-path={}", so.display());

    // The CLI refuses it before asking the daemon.
    let out = sh(&format!("{} pubkey --pkcs11 '{uri}'", fwg()));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        err.contains(&format!("{}", open.display())) && err.contains("not loaded"),
        "{err}"
    );

    // The daemon refuses it when a request names it.
    let iface = iface_name("m");
    start(&mut ns, &iface, "", "");
    let reply = uapi(&iface, &format!("set=1\nferrowg_private_key_uri={uri}\n\n"));
    assert!(
        reply.starts_with("errno=") && reply != "errno=0\n\n",
        "{reply}"
    );
    assert!(!uapi(&iface, "get=1\n\n").contains("ferrowg_private_key_uri"));
    let logs = ns.logs();
    assert!(logs.contains(&format!("{}", open.display())), "{logs}");
    assert!(!marker.exists(), "the module was loaded");
}
