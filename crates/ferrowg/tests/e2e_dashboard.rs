//! End-to-end (issue #19, "Web dashboard"): the hub's dashboard driven in a real browser,
//! Debian's headless Chromium through chromium-driver (WebDriver, fantoccini).
//!
//! A hub (`ferrowg hub init` + `hub serve`) runs in a namespace of its own, and so do
//! chromedriver and the Chromium it starts, so the browser reaches the hub's API on the hub's
//! veth address; the test reaches chromedriver through a TCP forwarder whose listener is on the
//! root namespace's loopback and whose connections are made inside the hub's namespace (no
//! change to the root namespace's network). A device namespace joined to the hub's by a veth
//! enrols with `ferrowg enroll`.
//!
//! The flow, each step a check that fails the test (with the page's text) and a screenshot in
//! `target/dashboard-screenshots/NN-step.png`: the login page refuses a wrong token and
//! accepts the data directory's admin token; a token of group `sensors` is created with its QR
//! code; the device enrols with it and the devices page shows it online; the groups page counts
//! it (1 device, 1 online, beside a pending device of another group) and its group's link
//! lists only that group's devices; its page revokes it
//! (with the in-page confirmation) and shows it revoked, the devices page no longer online,
//! and the command line agrees; the policy page shows an invalid policy's error at its line;
//! the nodes page lists this one healthy node. Every wait is bounded.
//!
//! Needs root (namespaces, TUN devices) and chromium + chromedriver; without root it fails
//! unless FERROWG_SKIP_ROOT_TESTS=1. Everything it made is removed on every exit path.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use ferrowg_testkit::{iface_name, require_root, require_tool, sh, text, wait_for, Netns, TempDir};
use serde_json::{json, Value};

/// The hub's address on the veth, where the browser and the device reach its API.
const HUB_IP: &str = "10.77.0.1";
/// The device's address on the veth.
const DEV_IP: &str = "10.77.0.2";
/// The API port.
const API_PORT: u16 = 8443;
/// The hub's address inside the tunnel (the first host of the pool).
const HUB_TUNNEL_IP: &str = "10.64.0.1";
/// chromedriver's port inside the hub's namespace.
const DRIVER_PORT: u16 = 9515;
/// The enrolled device's name.
const DEVICE: &str = "dash-sensor";
/// The longest any one wait in the browser lasts.
const WAIT: Duration = Duration::from_secs(30);

/// What the test made: dropped in field order, so the forwarder stops, then the namespaces
/// (their processes, Chromium included, killed; UAPI sockets removed), then the files.
struct Env {
    forward: Forward,
    hub: Netns,
    dev: Netns,
    tmp: TempDir,
    ferrowg: &'static str,
    data: PathBuf,
    dev_iface: String,
}

impl Env {
    /// Runs `ferrowg ARGS` (a shell fragment) in the hub's namespace; panics unless it succeeds.
    fn hub_cli(&self, args: &str) -> String {
        self.hub.run(&format!("{} hub {args}", self.ferrowg))
    }

    /// The hub's view of the test device (`hub device list --json`).
    fn cli_device(&self) -> Value {
        let list = self.hub_cli(&format!(
            "device list --data {} --json",
            self.data.display()
        ));
        let list: Value = serde_json::from_str(&list).expect("device list --json is JSON");
        list.as_array()
            .and_then(|a| a.iter().find(|d| d["name"] == DEVICE))
            .cloned()
            .unwrap_or_else(|| panic!("{DEVICE} is not in `hub device list`: {list}"))
    }
}

/// Namespaces, the hub, chromedriver in the hub's namespace and the forwarder to it.
fn setup() -> Env {
    let ferrowg = env!("CARGO_BIN_EXE_ferrowg");
    let tmp = TempDir::new();
    let mut hub = Netns::new("dhub");
    let mut dev = Netns::new("ddev");
    let (veth_hub, veth_dev) = (iface_name("vh"), iface_name("vd"));
    sh_ok(&format!(
        "ip link add {veth_hub} netns {} type veth peer name {veth_dev} netns {}",
        hub.name, dev.name
    ));
    hub.ip(&["addr", "add", &format!("{HUB_IP}/24"), "dev", &veth_hub]);
    hub.ip(&["link", "set", &veth_hub, "up"]);
    dev.ip(&["addr", "add", &format!("{DEV_IP}/24"), "dev", &veth_dev]);
    dev.ip(&["link", "set", &veth_dev, "up"]);

    let data = tmp.0.join("hub");
    hub.run(&format!(
        "{ferrowg} hub init --data {} --endpoint {HUB_IP}:51820 --api {HUB_IP}:{API_PORT} \
         --pool 10.64.0.0/16",
        data.display()
    ));
    let hub_iface = iface_name("h");
    hub.own_iface(&hub_iface);
    let data_arg = data.to_str().expect("UTF-8 path");
    hub.spawn(
        ferrowg,
        &["hub", "serve", "--data", data_arg, "--iface", &hub_iface],
        &[],
    );
    let dev_iface = iface_name("d");
    dev.own_iface(&dev_iface);
    let up = wait_for(Duration::from_secs(20), || {
        hub.sh(&format!("{ferrowg} hub device list --data {data_arg}"))
            .status
            .success()
    });
    assert!(up.is_some(), "the hub did not start:\n{}", hub.logs());

    let port = DRIVER_PORT.to_string();
    hub.spawn("chromedriver", &[&format!("--port={port}")], &[]);
    let forward = Forward::start(&hub, DRIVER_PORT);
    let env = Env {
        forward,
        hub,
        dev,
        tmp,
        ferrowg,
        data,
        dev_iface,
    };
    let ready = wait_for(Duration::from_secs(20), || env.forward.reaches_driver());
    assert!(
        ready.is_some(),
        "chromedriver did not start:\n{}",
        env.hub.logs()
    );
    env
}

/// Runs a shell command in the root namespace; panics with its output unless it succeeds.
fn sh_ok(cmd: &str) {
    let out = sh(cmd);
    assert!(out.status.success(), "{cmd}: {}", text(&out));
}

/// A TCP forwarder: a listener on the root namespace's loopback (a free port) whose every
/// connection is joined to `127.0.0.1:PORT` inside a namespace. Stops accepting on drop.
struct Forward {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Forward {
    /// Starts the forwarder to `port` inside `ns`.
    fn start(ns: &Netns, port: u16) -> Forward {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind forwarder");
        let local = listener.local_addr().expect("forwarder address").port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        // The accepting thread lives in the namespace: the connections it makes are made there,
        // while its listener, made here, stays in the root namespace.
        ns.spawn_thread(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                match TcpStream::connect((Ipv4Addr::LOCALHOST, port)) {
                    Ok(upstream) => splice(conn, upstream),
                    Err(_) => drop(conn),
                }
            }
        });
        Forward { port: local, stop }
    }

    /// The WebDriver URL.
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Whether chromedriver answers `/status` through the forwarder.
    fn reaches_driver(&self) -> bool {
        let Ok(mut s) = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let req = "GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
        if s.write_all(req.as_bytes()).is_err() {
            return false;
        }
        // The status line is enough (chromedriver may keep the connection open).
        let mut reply = [0u8; 12];
        s.read_exact(&mut reply).is_ok() && &reply == b"HTTP/1.1 200"
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accepting thread, which then sees `stop`.
        let _ = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port));
    }
}

/// Copies both ways between `a` and `b` on two threads until either side closes.
fn splice(a: TcpStream, b: TcpStream) {
    let (Ok(a2), Ok(b2)) = (a.try_clone(), b.try_clone()) else {
        return;
    };
    for (mut from, mut to) in [(a, b2), (b, a2)] {
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut from, &mut to);
            let _ = to.shutdown(std::net::Shutdown::Both);
        });
    }
}

/// Where screenshots go: `target/dashboard-screenshots` (the target directory cargo uses).
fn screenshot_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR has a parent")
        .join("dashboard-screenshots");
    std::fs::create_dir_all(&dir).expect("create the screenshot directory");
    // Screenshots of an earlier run would mix with this run's.
    for entry in std::fs::read_dir(&dir).expect("read the screenshot directory") {
        let path = entry.expect("directory entry").path();
        if path.extension().is_some_and(|e| e == "png") {
            std::fs::remove_file(&path).expect("remove an old screenshot");
        }
    }
    dir
}

/// The browser session and the screenshots it has taken.
struct Browser {
    client: Client,
    dir: PathBuf,
    shots: u32,
}

impl Browser {
    /// A new headless Chromium session through chromedriver at `url`.
    async fn connect(url: &str, profile: &std::path::Path) -> Browser {
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1280,800",
            &format!("--user-data-dir={}", profile.display()),
        ];
        let caps = json!({
            "acceptInsecureCerts": true,
            "goog:chromeOptions": { "binary": "/usr/bin/chromium", "args": args },
        });
        let Value::Object(caps) = caps else {
            unreachable!()
        };
        let client = ClientBuilder::rustls()
            .expect("rustls connector")
            .capabilities(caps)
            .connect(url)
            .await
            .unwrap_or_else(|e| panic!("WebDriver session through {url}: {e}"));
        let b = Browser {
            client,
            dir: screenshot_dir(),
            shots: 0,
        };
        // --window-size sizes the window; the page (and so each screenshot) is 1280x800 once
        // the window's own frame is added.
        let frame = b
            .js("return [window.outerWidth - window.innerWidth, window.outerHeight - window.innerHeight];", vec![])
            .await;
        let extra = |i: usize| u32::try_from(frame[i].as_u64().unwrap_or(0)).unwrap_or(0);
        b.client
            .set_window_size(1280 + extra(0), 800 + extra(1))
            .await
            .expect("set the window size");
        b
    }

    /// Saves a screenshot as `NN-step.png`.
    async fn shot(&mut self, step: &str) {
        self.shots += 1;
        let png = self.client.screenshot().await.expect("screenshot");
        let path = self.dir.join(format!("{:02}-{step}.png", self.shots));
        std::fs::write(&path, png).expect("write screenshot");
        eprintln!("screenshot: {}", path.display());
    }

    /// Runs `script` (a function body) and returns its value.
    async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// The page's URL and visible text, for failure messages.
    async fn page(&self) -> String {
        let v = self
            .js(
                "return location.href + '\\n' + (document.body ? document.body.innerText : '')",
                vec![],
            )
            .await;
        v.as_str().unwrap_or_default().to_owned()
    }

    /// Polls `script` (a function body returning a boolean) until it returns true; fails
    /// after [`WAIT`] with `what` and the page's text (a screenshot of it is saved too).
    async fn wait(&mut self, what: &str, script: &str, args: Vec<Value>) {
        let start = Instant::now();
        loop {
            if self.client.execute(script, args.clone()).await.ok() == Some(Value::Bool(true)) {
                return;
            }
            if start.elapsed() >= WAIT {
                self.shot("failed").await;
                panic!(
                    "timed out after {WAIT:?} waiting until {what}; the page:\n{}",
                    self.page().await
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until an element matches `css` and is displayed.
    async fn wait_shown(&mut self, css: &str) {
        let script = "const e = document.querySelector(arguments[0]); \
                      return !!e && e.getClientRects().length > 0;";
        self.wait(&format!("{css} is shown"), script, vec![json!(css)])
            .await;
    }

    /// The attribute `attr` of the first element matching `css` (`null` if none).
    async fn attr(&self, css: &str, attr: &str) -> Value {
        let script = "const e = document.querySelector(arguments[0]); \
                      return e ? e.getAttribute(arguments[1]) : null;";
        self.js(script, vec![json!(css), json!(attr)]).await
    }

    /// Waits until `css`'s attribute `attr` is `value`.
    async fn wait_attr(&mut self, css: &str, attr: &str, value: &str) {
        let script = "const e = document.querySelector(arguments[0]); \
                      return !!e && e.getAttribute(arguments[1]) === arguments[2];";
        let what = format!("{css} has {attr}=\"{value}\"");
        self.wait(&what, script, vec![json!(css), json!(attr), json!(value)])
            .await;
    }

    /// The trimmed text of the first element matching `css` (empty if none).
    async fn text(&self, css: &str) -> String {
        let script = "const e = document.querySelector(arguments[0]); \
                      return e ? (e.innerText || e.value || e.textContent || '') : '';";
        let v = self.js(script, vec![json!(css)]).await;
        v.as_str().unwrap_or_default().trim().to_owned()
    }

    /// Waits for `css` to be shown and clicks it (again if the page replaced it meanwhile).
    async fn click(&mut self, css: &str) {
        self.wait_shown(css).await;
        let mut last = None;
        for _ in 0..5 {
            match self.client.find(Locator::Css(css)).await {
                Ok(e) => match e.click().await {
                    Ok(()) => return,
                    Err(err) => last = Some(err.to_string()),
                },
                Err(err) => last = Some(err.to_string()),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!(
            "cannot click {css}: {last:?}; the page:\n{}",
            self.page().await
        );
    }

    /// Replaces the content of the input `css` with `value`, typed.
    async fn fill(&mut self, css: &str, value: &str) {
        self.wait_shown(css).await;
        let e = self.client.find(Locator::Css(css)).await.expect(css);
        e.clear()
            .await
            .unwrap_or_else(|err| panic!("clear {css}: {err}"));
        e.send_keys(value)
            .await
            .unwrap_or_else(|err| panic!("type into {css}: {err}"));
    }
}

#[test]
fn dashboard_in_a_browser_enrols_sees_online_revokes() {
    if !require_root() {
        return;
    }
    for tool in ["chromium", "chromedriver", "ping"] {
        require_tool(tool);
    }
    let env = setup();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(flow(&env));
}

/// The whole browser flow.
async fn flow(env: &Env) {
    let profile = env.tmp.0.join("chromium-profile");
    let mut b = Browser::connect(&env.forward.url(), &profile).await;
    login(&mut b, env).await;
    let token = create_token(&mut b).await;
    enrol_and_see_online(&mut b, env, &token).await;
    groups(&mut b, env).await;
    revoke(&mut b, env).await;
    policy_error(&mut b).await;
    nodes(&mut b).await;
    b.client.close().await.expect("close the session");
}

/// The login page: a wrong token is refused, the admin token logs in.
async fn login(b: &mut Browser, env: &Env) {
    let base = format!("https://{HUB_IP}:{API_PORT}/");
    b.client.goto(&base).await.expect("open the dashboard");
    b.wait_shown("#login-token").await;
    b.shot("login").await;

    b.fill("#login-token", "0123456789abcdef.wrong-secret")
        .await;
    b.click("#login-submit").await;
    b.wait(
        "#login-error shows a message",
        "const e = document.querySelector('#login-error'); \
         return !!e && e.getClientRects().length > 0 && e.textContent.trim() !== '';",
        vec![],
    )
    .await;
    b.shot("login-wrong-token").await;
    let url = b.client.current_url().await.expect("URL");
    assert!(
        url.fragment().is_none_or(|f| f == "/login"),
        "a wrong token left the login page for {url}; the page:\n{}",
        b.page().await
    );
    let shown = b
        .js(
            "const e = document.querySelector('#nav-devices'); \
             return !!e && e.getClientRects().length > 0;",
            vec![],
        )
        .await;
    assert!(
        shown == json!(false),
        "the navigation shows after a wrong token; the page:\n{}",
        b.page().await
    );

    let admin = std::fs::read_to_string(env.data.join("admin.token")).expect("admin.token");
    b.fill("#login-token", admin.trim()).await;
    b.click("#login-submit").await;
    b.wait_shown("#nav-devices").await;
    b.wait_shown("#devices-table").await;
    b.shot("logged-in-devices").await;
}

/// The tokens page: a token of group `sensors`, one use, expiring in an hour, with its QR code.
async fn create_token(b: &mut Browser) -> String {
    b.click("#nav-tokens").await;
    b.fill("#token-group", "sensors").await;
    b.fill("#token-uses", "1").await;
    b.fill("#token-expires", "1h").await;
    b.click("#token-create").await;
    b.wait(
        "#token-value shows the new token",
        "const e = document.querySelector('#token-value'); \
         return !!e && (e.value || e.textContent).trim() !== '';",
        vec![],
    )
    .await;
    // The QR code: an <img> whose data: URL decoded to an image.
    b.wait(
        "#token-qr is a decoded image",
        "const e = document.querySelector('#token-qr'); \
         return !!e && e.tagName === 'IMG' && e.complete && e.naturalWidth > 0 \
           && e.getAttribute('src').startsWith('data:image/svg+xml;base64,');",
        vec![],
    )
    .await;
    b.shot("token-created").await;
    let token = b.text("#token-value").await;
    assert!(
        !token.is_empty() && !token.contains(char::is_whitespace),
        "#token-value is not a token: {token:?}"
    );
    token
}

/// Enrols the device with `token` in its namespace and waits for the devices page to show it
/// online.
async fn enrol_and_see_online(b: &mut Browser, env: &Env, token: &str) {
    let config = env.tmp.0.join("device");
    let out = env.dev.sh(&format!(
        "{} enroll '{token}' --iface {} --name {DEVICE} --config-dir {}",
        env.ferrowg,
        env.dev_iface,
        config.display()
    ));
    assert!(out.status.success(), "ferrowg enroll: {}", text(&out));
    // Traffic to the hub through the tunnel makes the handshake.
    let ping = format!("ping -c 1 -W 1 {HUB_TUNNEL_IP}");
    let reached = wait_for(Duration::from_secs(15), || {
        env.dev.sh(&ping).status.success()
    });
    assert!(
        reached.is_some(),
        "the device cannot ping the hub through the tunnel:\n{}",
        env.hub.logs()
    );

    b.click("#nav-devices").await;
    let row = format!("tr[data-device=\"{DEVICE}\"]");
    b.wait_attr(&format!("{row} td.status"), "data-status", "online")
        .await;
    let status = b.text(&format!("{row} td.status")).await;
    assert_eq!(status, "online", "the status cell's text");
    b.shot("device-online").await;
}

/// A device of another group, added by key and never online: the groups page and the group's
/// device list must tell it apart from the test device.
const OTHER_DEVICE: &str = "cam-1";

/// The groups page counts the online device in `sensors` (beside a pending device of group
/// `cameras`), and the group's link opens the devices page filtered by that group.
async fn groups(b: &mut Browser, env: &Env) {
    env.hub_cli(&format!(
        "device add {OTHER_DEVICE} --group cameras --data {} \
         --public-key \"$({ferrowg} genkey | {ferrowg} pubkey)\" >/dev/null",
        env.data.display(),
        ferrowg = env.ferrowg
    ));
    b.click("#nav-groups").await;
    let row = "#groups-table tr[data-group=\"sensors\"]";
    b.wait(
        "the sensors group shows 1 device, 1 online",
        "const r = document.querySelector(arguments[0]); \
         return !!r && r.querySelector('td.devices').textContent === '1' \
           && r.querySelector('td.online').textContent === '1';",
        vec![json!(row)],
    )
    .await;
    b.wait(
        "the cameras group shows 1 device, 1 pending, 0 online",
        "const r = document.querySelector('#groups-table tr[data-group=\"cameras\"]'); \
         return !!r && r.querySelector('td.devices').textContent === '1' \
           && r.querySelector('td.pending').textContent === '1' \
           && r.querySelector('td.online').textContent === '0';",
        vec![],
    )
    .await;
    b.shot("groups").await;

    b.click(&format!("{row} a")).await;
    b.wait(
        "the devices page lists only the sensors group",
        "const rows = document.querySelectorAll('#devices-table tbody tr'); \
         return location.hash.startsWith('#/devices') && rows.length === 1 \
           && rows[0].getAttribute('data-device') === arguments[0] \
           && document.querySelector('#devices-group').value === 'sensors';",
        vec![json!(DEVICE)],
    )
    .await;
    b.shot("group-devices").await;
}

/// Revokes the device from its page and checks the page, the list and the command line.
async fn revoke(b: &mut Browser, env: &Env) {
    let row = format!("tr[data-device=\"{DEVICE}\"]");
    b.click(&format!("{row} a[href=\"#/devices/{DEVICE}\"]"))
        .await;
    b.wait(
        "#device-name names the device",
        "const e = document.querySelector('#device-name'); \
         return !!e && e.textContent.trim() === arguments[0];",
        vec![json!(DEVICE)],
    )
    .await;
    b.wait_attr("#device-status", "data-status", "online").await;
    b.shot("device-page").await;

    b.click("#device-revoke").await;
    b.wait_shown("#confirm-yes").await;
    b.shot("revoke-confirm").await;
    b.click("#confirm-yes").await;
    b.wait_attr("#device-status", "data-status", "revoked")
        .await;
    assert_eq!(
        b.text("#device-status").await,
        "revoked",
        "#device-status text"
    );
    b.shot("device-revoked").await;

    b.click("#nav-devices").await;
    b.wait_attr(&format!("{row} td.status"), "data-status", "revoked")
        .await;
    b.shot("devices-after-revoke").await;

    let device = env.cli_device();
    assert_eq!(device["state"], "revoked", "the hub's record: {device}");
    assert_eq!(device["online"], false, "the hub's record: {device}");
    // The data plane agrees: the revoked device no longer reaches the hub.
    let out = env.dev.sh(&format!("ping -c 2 -W 1 {HUB_TUNNEL_IP}"));
    assert!(
        !out.status.success(),
        "the revoked device still pings the hub"
    );
}

/// The policy page: an invalid policy is checked and its error shown at its line.
async fn policy_error(b: &mut Browser) {
    b.click("#nav-policy").await;
    b.fill("#policy-text", INVALID_POLICY).await;
    b.click("#policy-check").await;
    b.wait_shown("#policy-error").await;
    b.shot("policy-error").await;
    let line = b.attr("#policy-error", "data-line").await;
    assert_eq!(
        line,
        json!(INVALID_POLICY_LINE.to_string()),
        "#policy-error's line; the page:\n{}",
        b.page().await
    );
    b.wait_shown(".gutter .line-error").await;
    assert_eq!(
        b.text(".gutter .line-error").await,
        INVALID_POLICY_LINE.to_string(),
        "the gutter marks the error's line"
    );
}

/// A policy whose grant names an unknown group, on line [`INVALID_POLICY_LINE`].
const INVALID_POLICY: &str = r#"{
  "tagOwners": { "tag:sensors": [] },
  "grants": [
    { "src": ["tag:sensors"], "dst": ["tag:sensors"], "ip": ["icmp"] },
    { "src": ["tag:sensors"], "dst": ["tag:nowhere"], "ip": ["*"] },
  ],
}
"#;
/// The line of [`INVALID_POLICY`]'s error.
const INVALID_POLICY_LINE: u32 = 5;

/// The nodes page: this one hub node, healthy.
async fn nodes(b: &mut Browser) {
    b.click("#nav-nodes").await;
    b.wait(
        "#nodes-table lists one node",
        "return document.querySelectorAll('#nodes-table tr[data-node]').length === 1;",
        vec![],
    )
    .await;
    b.wait_attr("#nodes-table tr[data-node]", "data-health", "ok")
        .await;
    b.shot("nodes").await;
}
