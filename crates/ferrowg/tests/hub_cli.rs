//! `ferrowg hub …` as users script it, through the built binary: `init`, `serve` in the
//! background on a free loopback port, `token create` (prints one token), `device add` (prints
//! a wg-quick config without PrivateKey), `device list --json`, `policy test`, and an admin
//! command with `--hub URL --admin-token-file F --pin PIN` instead of `--data`. No root, no
//! namespaces: the API only. The server is killed at the end, also when the test fails.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_ferrowg");

/// Kills the server when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Removes a directory when dropped.
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn hub(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("hub")
        .args(args)
        .output()
        .expect("run ferrowg")
}

/// Runs `ferrowg hub ARGS`, expecting success; returns standard output.
fn ok(args: &[&str]) -> String {
    let out = hub(args);
    assert!(
        out.status.success(),
        "ferrowg hub {}: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("address").port()
}

/// Starts `ferrowg hub serve --data DIR` and waits (at most 30 s) for its "listening" line.
fn serve(data: &Path) -> Server {
    let child = Command::new(BIN)
        .args(["hub", "serve", "--metrics", "off", "--data"])
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ferrowg hub serve");
    let mut server = Server(child);
    let stdout = server.0.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("serve did not report its address within 30 s");
    assert!(line.starts_with("API listening on "), "{line:?}");
    server
}

#[test]
fn init_serve_token_device_list() {
    let tmp = std::env::temp_dir().join(format!("ferrowg-hub-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let _cleanup = RemoveOnDrop(tmp.clone());
    let data = tmp.join("hub");
    let data_s = data.to_str().expect("UTF-8 path");
    let api = format!("127.0.0.1:{}", free_port());
    let init = ok(&[
        "init",
        "--data",
        data_s,
        "--endpoint",
        "127.0.0.1:51820",
        "--pool",
        "10.64.0.0/16",
        "--pool6",
        "fd64::/64",
        "--api",
        &api,
    ]);
    assert!(init.contains("WireGuard public key: "), "{init}");
    // A second init in the same directory is refused.
    let again = hub(&[
        "init",
        "--data",
        data_s,
        "--endpoint",
        "h:1",
        "--pool",
        "10.0.0.0/24",
    ]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));

    let _server = serve(&data);
    let token = ok(&["token", "create", "--data", data_s, "--group", "sensor"]);
    assert_eq!(token.lines().count(), 1, "{token}");
    assert!(token.starts_with("fwg1."), "{token}");

    let key = "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=";
    let config = ok(&[
        "device",
        "add",
        "phone",
        "--data",
        data_s,
        "--public-key",
        key,
        "--group",
        "mobile",
    ]);
    assert!(config.contains("[Interface]\n"), "{config}");
    assert!(
        config.contains("Address = 10.64.0.2/32, fd64::2/128\n"),
        "{config}"
    );
    assert!(config.contains("Endpoint = 127.0.0.1:51820\n"), "{config}");
    assert!(
        !config.lines().any(|l| l.starts_with("PrivateKey")),
        "{config}"
    );

    let listed = ok(&["device", "list", "--data", data_s, "--json"]);
    let devices: serde_json::Value = serde_json::from_str(&listed).expect("JSON");
    let d = &devices[0];
    assert_eq!(devices.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(d["name"], "phone");
    assert_eq!(d["group"], "mobile");
    assert_eq!(d["public_key"], key);
    assert_eq!(d["online"], false);
    assert_eq!(d["state"], "pending");
    assert_eq!(d["addresses"][0], "10.64.0.2/32");
    for field in ["last_handshake", "endpoint", "rx_bytes", "tx_bytes"] {
        assert!(d.get(field).is_some(), "{field} missing: {listed}");
    }

    // The same hub reached as from elsewhere: URL, token file and pin.
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("hub.json")).expect("hub.json"))
            .expect("JSON");
    let url = file["api"].as_str().expect("api");
    let pin = file["pin"].as_str().expect("pin");
    let token_file = data.join("admin.token");
    let table = ok(&[
        "device",
        "list",
        "--hub",
        url,
        "--pin",
        pin,
        "--admin-token-file",
        token_file.to_str().expect("UTF-8 path"),
    ]);
    assert!(table.starts_with("NAME"), "{table}");
    assert!(table.contains("phone"), "{table}");

    // Offline policy check.
    let policy = tmp.join("policy.hujson");
    std::fs::write(
        &policy,
        "{ \"tagOwners\": { \"tag:a\": [] }, \"grants\": [{ \"src\": [\"tag:a\"], \"dst\": [\"tag:a\"], \"ip\": [\"*\"] }] }",
    )
    .expect("write policy");
    let tested = ok(&["policy", "test", policy.to_str().expect("UTF-8 path")]);
    assert!(tested.contains("policy valid"), "{tested}");
    ok(&[
        "policy",
        "set",
        "--data",
        data_s,
        policy.to_str().expect("UTF-8 path"),
    ]);
}
