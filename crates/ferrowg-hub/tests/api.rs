//! The API end to end over real HTTPS on loopback: init, tokens, enrolment, listing,
//! revocation, token exhaustion, admin authentication and scopes, the pin, the policy's checks
//! and auto-approval, admin-added devices, the rotation schedule, problem documents and body
//! limits; the dashboard's additions: device pages (filters, sorts, totals, bad parameters),
//! policy checks that store nothing, the hub nodes' heartbeats, rotation requests.

mod support;

use std::time::Duration;

use ferrowg_hub::api::types::{
    AddDeviceRequest, CreateTokenRequest, DeviceListParams, DeviceSortKey, DeviceState, Expiry,
    SettingsUpdate, SortDirection, StatusFilter,
};
use ferrowg_hub::tls::{self, Pin};
use ferrowg_hub::{client, heartbeat, token, Client, ClientError};
use ferrowg_hub_store::{Scope, UnixTime};
use support::{random_key, Hub};

fn token_request(group: &str, uses: u32) -> CreateTokenRequest {
    CreateTokenRequest {
        group: group.into(),
        uses,
        expires: Some(Expiry::Text("1h".into())),
    }
}

/// The problem a call failed with (panics on success or another error).
fn problem<T: std::fmt::Debug>(r: Result<T, ClientError>) -> ferrowg_hub::types::Problem {
    match r {
        Err(ClientError::Problem(p)) => p,
        other => panic!("expected a problem, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrol_list_revoke_and_exhaust() {
    let hub = Hub::start().await;
    let admin = hub.admin();
    let created = admin
        .create_token(&token_request("sensor", 1))
        .await
        .unwrap();
    assert_eq!(created.info.uses_left, Some(1));
    let tok = token::parse(&created.token).unwrap();
    assert_eq!(tok.api(), format!("https://{}", hub.addr));
    let settings = hub.store().settings().await.unwrap();
    assert_eq!(tok.hub_key().as_bytes(), &settings.public_key);

    // Changes poke the data path; drain the permit the token creation left.
    let changed = hub.state.changed.clone();
    tokio::time::timeout(Duration::from_secs(5), changed.notified())
        .await
        .expect("token creation notified");

    let key = random_key();
    let enrolled = client::enroll(&tok, "dev-a", &key, &[]).await.unwrap();
    assert_eq!(enrolled.addresses, ["10.64.0.2/32", "fd64::2/128"]);
    assert_eq!(enrolled.allowed_ips, ["10.64.0.0/16", "fd64::/64"]);
    assert_eq!(enrolled.endpoint, "127.0.0.1:51820");
    assert_eq!(enrolled.persistent_keepalive, 25);
    assert_eq!(enrolled.state, DeviceState::Pending);
    tokio::time::timeout(Duration::from_secs(5), changed.notified())
        .await
        .expect("enrolment notified");

    let devices = admin.list_devices().await.unwrap();
    assert_eq!(devices.len(), 1);
    let d = &devices[0];
    assert_eq!((d.name.as_str(), d.group.as_str()), ("dev-a", "sensor"));
    assert_eq!(d.state, DeviceState::Pending);
    assert_eq!(d.addresses, enrolled.addresses);
    assert!(!d.online);
    assert_eq!(
        d.public_key,
        ferrowg_keys::key::PublicKey::from_bytes(key).to_base64()
    );

    // A token with one use is refused the second time.
    let again = client::enroll(&tok, "dev-b", &random_key(), &[]).await;
    let p = problem(again);
    assert_eq!(p.status, 410, "{p}");
    assert_eq!(p.kind, "urn:ferrowg:problem:token-exhausted");

    let revoked = admin.revoke_device("dev-a").await.unwrap();
    assert_eq!(revoked.state, DeviceState::Revoked);
    assert_eq!(
        admin.device("dev-a").await.unwrap().state,
        DeviceState::Revoked
    );
    let missing = problem(admin.device("nope").await);
    assert_eq!(missing.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolment_errors_are_problems() {
    let hub = Hub::start().await;
    let admin = hub.admin();
    let created = admin
        .create_token(&token_request("sensor", 0))
        .await
        .unwrap();
    assert_eq!(created.info.uses_left, None, "0 uses is unlimited");
    let tok = token::parse(&created.token).unwrap();
    let key = random_key();
    client::enroll(&tok, "dev-a", &key, &[]).await.unwrap();
    // The name, then the key, is taken.
    let p = problem(client::enroll(&tok, "dev-a", &random_key(), &[]).await);
    assert_eq!(
        (p.status, p.kind.as_str()),
        (409, "urn:ferrowg:problem:name-taken")
    );
    let p = problem(client::enroll(&tok, "dev-b", &key, &[]).await);
    assert_eq!(p.status, 409);
    // A wrong secret for an existing token, and an unknown token, look the same.
    let forged = format!("{}.{}", tok.secret().id(), "ab".repeat(32));
    let unknown = format!("{}.{}", "cd".repeat(8), "ab".repeat(32));
    for secret in [forged, unknown] {
        let req = ferrowg_hub::types::EnrollRequest {
            token_secret: secret,
            name: "dev-c".into(),
            public_key: ferrowg_keys::key::PublicKey::from_bytes(random_key()).to_base64(),
            advertise_routes: vec![],
        };
        let p = problem(admin.enroll(&req).await);
        assert_eq!(
            (p.status, p.kind.as_str()),
            (401, "urn:ferrowg:problem:token-invalid")
        );
    }
    // Malformed input is a 422 naming the field.
    let p = problem(client::enroll(&tok, "Bad_Name", &random_key(), &[]).await);
    assert_eq!(p.status, 422);
    assert!(p.detail.contains("device name"), "{p}");
    // A revoked token is refused; its device stays.
    admin.revoke_token(tok.secret().id()).await.unwrap();
    let p = problem(client::enroll(&tok, "dev-d", &random_key(), &[]).await);
    assert_eq!(p.status, 401);
    assert_eq!(admin.list_devices().await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_authentication_scopes_and_pin() {
    let hub = Hub::start().await;
    // An unknown admin token: 401 as application/problem+json with WWW-Authenticate.
    let file = hub.data.read_hub_file().unwrap();
    let tls = tls::client_config(file.pin().unwrap()).unwrap();
    let raw = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .build()
        .unwrap();
    let bogus = format!("{}.{}", "12".repeat(8), "34".repeat(32));
    let response = raw
        .get(format!("{}/api/v1/devices", file.api))
        .bearer_auth(&bogus)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(headers["www-authenticate"], "Bearer");
    let p: ferrowg_hub::types::Problem = response.json().await.unwrap();
    assert_eq!((p.status, p.title.as_str()), (401, "Unauthorized"));
    assert_eq!(
        problem(hub.client_with(&bogus).list_devices().await).status,
        401
    );
    let none = Client::new(&file.api, file.pin().unwrap(), None).unwrap();
    assert_eq!(problem(none.list_tokens().await).status, 401);

    // A read-scope token reads but does not write.
    let (_, read) = hub
        .store()
        .create_admin_token(Scope::Read, "ci", None, UnixTime::now())
        .await
        .unwrap();
    let reader = hub.client_with(&read.to_string());
    assert!(reader.list_devices().await.unwrap().is_empty());
    let p = problem(reader.create_token(&token_request("x", 1)).await);
    assert_eq!(p.status, 403);

    // A client with another pin does not talk to this hub.
    let (_, other_der, _) = tls::generate(&tls::subject_alt_names([])).unwrap();
    let token = std::fs::read_to_string(hub.data.admin_token()).unwrap();
    let wrong = Client::new(&file.api, Pin::of(&other_der), Some(token.trim())).unwrap();
    match wrong.list_devices().await {
        Err(ClientError::PinMismatch { message, .. }) => {
            assert!(message.contains(&file.pin), "{message}");
        }
        other => panic!("expected a pin mismatch, got {other:?}"),
    }

    // Unknown paths and oversized bodies are problems too.
    let response = raw
        .get(format!("{}/api/v1/nothing", file.api))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let big = format!(
        "{{\"token_secret\":\"{}\",\"name\":\"x\",\"public_key\":\"x\"}}",
        "a".repeat(20_000)
    );
    let response = raw
        .post(format!("{}/api/v1/enroll", file.api))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    // The served OpenAPI document is the generated one.
    let served = hub.admin().openapi().await.unwrap();
    let generated: serde_json::Value =
        serde_json::from_str(&ferrowg_hub::api::openapi_json(&ferrowg_hub::api::openapi()))
            .unwrap();
    assert_eq!(served, generated);
}

const POLICY: &str = r#"{
  "tagOwners": { "tag:sensor": [], "tag:collector": [], "tag:router": [] },
  "grants": [{ "src": ["tag:sensor"], "dst": ["tag:collector"], "ip": ["tcp:443"] }],
  "autoApprovers": { "routes": { "192.168.0.0/16": ["tag:router"] } },
  "tests": [{ "src": "tag:sensor", "accept": ["tag:collector:443"], "deny": ["tag:collector:80"] }],
}"#;

const FAILING: &str = r#"{
  "tagOwners": { "tag:sensor": [], "tag:collector": [] },
  "grants": [{ "src": ["tag:sensor"], "dst": ["tag:collector"], "ip": ["tcp:443"] }],
  "tests": [
    { "src": "tag:sensor",
      "accept": ["tag:collector:22"] },
  ],
}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_checks_and_auto_approval() {
    let hub = Hub::start().await;
    let admin = hub.admin();
    assert_eq!(problem(admin.policy().await).status, 404);
    let v1 = admin.set_policy(POLICY).await.unwrap();
    assert_eq!(v1.version, 1);

    // A failing test refuses the policy, naming the test's line; the policy is unchanged.
    let p = problem(admin.set_policy(FAILING).await);
    assert_eq!(p.status, 422);
    assert_eq!(p.kind, "urn:ferrowg:problem:policy-test-failed");
    assert_eq!(p.line, Some(6), "{p}");
    // An unknown key is refused with its line and name.
    let p = problem(admin.set_policy("{\n  \"acls\": [],\n}").await);
    assert_eq!(
        (p.status, p.line, p.key.as_deref()),
        (422, Some(2), Some("acls"))
    );
    let current = admin.policy().await.unwrap();
    assert_eq!((current.version, current.text.as_str()), (1, POLICY));

    // autoApprovers approves a router's route inside 192.168.0.0/16, not one outside it.
    let created = admin
        .create_token(&token_request("router", 1))
        .await
        .unwrap();
    let tok = token::parse(&created.token).unwrap();
    let routes = [
        "192.168.1.0/24".parse().unwrap(),
        "10.99.0.0/24".parse().unwrap(),
    ];
    let r = client::enroll(&tok, "gw-1", &random_key(), &routes)
        .await
        .unwrap();
    let approved: Vec<(String, bool)> = r
        .routes
        .iter()
        .map(|r| (r.prefix.clone(), r.approved))
        .collect();
    assert_eq!(
        approved,
        [
            ("10.99.0.0/24".into(), false),
            ("192.168.1.0/24".into(), true)
        ]
    );
    // The approved route is routed to the hub by the other devices.
    let added = admin
        .add_device(&AddDeviceRequest {
            name: "phone".into(),
            public_key: ferrowg_keys::key::PublicKey::from_bytes(random_key()).to_base64(),
            group: "collector".into(),
            routes: vec![],
        })
        .await
        .unwrap();
    assert_eq!(added.device.addresses, ["10.64.0.3/32", "fd64::3/128"]);
    let hub_key =
        ferrowg_keys::key::PublicKey::from_bytes(hub.store().settings().await.unwrap().public_key);
    let config = &added.config;
    assert!(
        config.contains(&format!("PublicKey = {}\n", hub_key.to_base64())),
        "{config}"
    );
    assert!(config.contains("Address = 10.64.0.3/32, fd64::3/128\n"));
    assert!(config.contains("AllowedIPs = 10.64.0.0/16, fd64::/64, 192.168.1.0/24\n"));
    assert!(!config.lines().any(|l| l.starts_with("PrivateKey")));
    // An admin approves the other route.
    let prefix = "10.99.0.0/24".parse().unwrap();
    let d = admin
        .set_route_approval("gw-1", &prefix, true, None)
        .await
        .unwrap();
    assert!(d.routes.iter().all(|r| r.approved));
    // A site route reached through a mapped prefix; other devices route the mapped one.
    let site = "192.168.1.0/24".parse().unwrap();
    let mapped = "10.201.1.0/24".parse().unwrap();
    let d = admin
        .set_route_approval("gw-1", &site, true, Some(&mapped))
        .await
        .unwrap();
    let r = d
        .routes
        .iter()
        .find(|r| r.prefix == "192.168.1.0/24")
        .unwrap();
    assert_eq!(r.mapped.as_deref(), Some("10.201.1.0/24"));
    let req = AddDeviceRequest {
        name: "phone-2".into(),
        public_key: ferrowg_keys::key::PublicKey::from_bytes([77; 32]).to_base64(),
        group: "ops".into(),
        routes: vec![],
    };
    let config = admin.add_device(&req).await.unwrap().config;
    assert!(config.contains("10.201.1.0/24"), "{config}");
    assert!(!config.contains("192.168.1.0/24"), "{config}");
    // A mapped prefix of another length, or inside the pool, is refused and changes nothing.
    for bad in ["10.201.0.0/16", "10.64.200.0/24"] {
        let r = admin
            .set_route_approval("gw-1", &site, true, Some(&bad.parse().unwrap()))
            .await;
        assert!(r.is_err(), "{bad}");
    }
    let d = admin.device("gw-1").await.unwrap();
    let r = d
        .routes
        .iter()
        .find(|r| r.prefix == "192.168.1.0/24")
        .unwrap();
    assert_eq!(r.mapped.as_deref(), Some("10.201.1.0/24"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_schedule_is_a_setting_and_marks_devices_due() {
    let hub = Hub::start().await;
    let admin = hub.admin();
    let s = admin.settings().await.unwrap();
    assert_eq!(s.rotate_after, Some(90 * 24 * 3600));
    assert_eq!(s.pool4, "10.64.0.0/16");
    let added = admin
        .add_device(&AddDeviceRequest {
            name: "meter".into(),
            public_key: ferrowg_keys::key::PublicKey::from_bytes(random_key()).to_base64(),
            group: "sensor".into(),
            routes: vec![],
        })
        .await
        .unwrap();
    assert!(!added.device.rotation_due);
    assert!(added.device.key_since <= UnixTime::now().0);

    // Values out of range or not durations: 422, nothing changed.
    for bad in [
        Expiry::Seconds(0),
        Expiry::Text("soon".into()),
        Expiry::Text("101000d".into()),
    ] {
        let req = SettingsUpdate {
            rotate_after: Some(bad),
        };
        let p = problem(admin.update_settings(&req).await);
        assert_eq!(p.status, 422, "{p:?}");
        assert!(p.detail.contains("rotate_after"), "{p:?}");
        assert_eq!(admin.settings().await.unwrap(), s);
    }
    // A read-scope token cannot change it.
    let (_, read) = hub
        .store()
        .create_admin_token(Scope::Read, "ci", None, UnixTime::now())
        .await
        .unwrap();
    let one_second = SettingsUpdate {
        rotate_after: Some(Expiry::Seconds(1)),
    };
    let reader = hub.client_with(&read.to_string());
    assert_eq!(
        problem(reader.update_settings(&one_second).await).status,
        403
    );
    assert_eq!(reader.settings().await.unwrap(), s);

    // One second: the device is due a moment later, and still listed as it was otherwise.
    let changed = admin.update_settings(&one_second).await.unwrap();
    assert_eq!(changed.rotate_after, Some(1));
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let d = admin.device("meter").await.unwrap();
    assert!(d.rotation_due);
    assert_eq!(d.state, DeviceState::Pending);
    // `never`: no schedule, never due.
    let never = SettingsUpdate {
        rotate_after: Some(Expiry::Text("never".into())),
    };
    assert_eq!(
        admin.update_settings(&never).await.unwrap().rotate_after,
        None
    );
    assert!(!admin.device("meter").await.unwrap().rotation_due);
}

/// A raw HTTPS client for the hub (pinned), and the admin token: for requests the typed
/// client cannot make (malformed query strings) and for headers.
fn raw_client(hub: &Hub) -> (reqwest::Client, String, String) {
    let file = hub.data.read_hub_file().unwrap();
    let tls = tls::client_config(file.pin().unwrap()).unwrap();
    let raw = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .build()
        .unwrap();
    let token = std::fs::read_to_string(hub.data.admin_token()).unwrap();
    (raw, file.api, token.trim().to_owned())
}

fn add_request(name: &str, group: &str, key: [u8; 32]) -> AddDeviceRequest {
    AddDeviceRequest {
        name: name.into(),
        public_key: ferrowg_keys::key::PublicKey::from_bytes(key).to_base64(),
        group: group.into(),
        routes: vec![],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_list_pages_filters_sorts_and_counts() {
    let hub = Hub::start().await;
    let admin = hub.admin();
    let store = hub.store();
    let now = UnixTime::now();
    let mut keys = Vec::new();
    for (name, group) in [
        ("cam-1", "cams"),
        ("cam-2", "cams"),
        ("gw", "routers"),
        ("old", "cams"),
        ("spare", "routers"),
    ] {
        let key = random_key();
        admin
            .add_device(&add_request(name, group, key))
            .await
            .unwrap();
        keys.push(key);
    }
    // cam-1 and old online (old then revoked), cam-2 offline, gw and spare pending.
    let ep = |p: u16| Some(std::net::SocketAddr::from(([192, 0, 2, 1], p)));
    store.record_handshake(&keys[0], now, ep(2)).await.unwrap();
    store
        .record_handshake(&keys[1], UnixTime(now.0 - 1000), ep(1))
        .await
        .unwrap();
    store.record_handshake(&keys[3], now, ep(3)).await.unwrap();
    admin.revoke_device("old").await.unwrap();

    let names = |devices: &[ferrowg_hub::types::DeviceInfo]| -> Vec<String> {
        devices.iter().map(|d| d.name.clone()).collect()
    };
    // No parameters: every device by name, and the total.
    let all = admin.list_devices().await.unwrap();
    assert_eq!(names(&all), ["cam-1", "cam-2", "gw", "old", "spare"]);
    let (every, total) = admin
        .list_devices_page(&DeviceListParams::default())
        .await
        .unwrap();
    assert_eq!((every, total), (all.clone(), 5));
    let old = all.iter().find(|d| d.name == "old").unwrap();
    assert!(!old.online, "a revoked device is never online");

    let cases: [(DeviceListParams, &[&str], u64); 6] = [
        (
            DeviceListParams {
                limit: Some(2),
                offset: Some(1),
                ..Default::default()
            },
            &["cam-2", "gw"],
            5,
        ),
        (
            DeviceListParams {
                q: Some("CAM".into()),
                ..Default::default()
            },
            &["cam-1", "cam-2", "old"],
            3,
        ),
        (
            DeviceListParams {
                q: Some("192.0.2.1:2".into()),
                ..Default::default()
            },
            &["cam-1"],
            1,
        ),
        (
            DeviceListParams {
                status: Some(StatusFilter::Online),
                ..Default::default()
            },
            &["cam-1"],
            1,
        ),
        (
            DeviceListParams {
                group: Some("routers".into()),
                status: Some(StatusFilter::Pending),
                order: Some(SortDirection::Desc),
                ..Default::default()
            },
            &["spare", "gw"],
            2,
        ),
        (
            DeviceListParams {
                sort: Some(DeviceSortKey::LastHandshake),
                order: Some(SortDirection::Desc),
                limit: Some(3),
                ..Default::default()
            },
            &["cam-1", "old", "cam-2"],
            5,
        ),
    ];
    for (params, want, want_total) in cases {
        let (page, total) = admin.list_devices_page(&params).await.unwrap();
        assert_eq!(names(&page), want, "{params:?}");
        assert_eq!(total, want_total, "{params:?}");
    }

    // A bad parameter is a 422 problem naming it, and nothing else.
    let (raw, api, token) = raw_client(&hub);
    for (query, named) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("offset=-1", "offset"),
        ("sort=name%20desc", "sort"),
        ("order=random", "order"),
        ("status=asleep", "status"),
        ("page=2", "page"),
        ("q=a&q=b", "q"),
    ] {
        let r = raw
            .get(format!("{api}/api/v1/devices?{query}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422, "{query}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        assert!(r.headers().get("x-total-count").is_none(), "{query}");
        let p: ferrowg_hub::types::Problem = r.json().await.unwrap();
        assert!(p.detail.contains(named), "{query}: {p}");
    }
    // Without parameters the header is there too.
    let r = raw
        .get(format!("{api}/api/v1/devices"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-total-count"], "5");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_check_runs_the_tests_and_stores_nothing() {
    let hub = Hub::start().await;
    let admin = hub.admin();
    assert_eq!(admin.check_policy(POLICY).await.unwrap().tests, 1);
    assert_eq!(problem(admin.policy().await).status, 404, "nothing stored");
    let v1 = admin.set_policy(POLICY).await.unwrap();
    let seq = hub.store().event_seq().await.unwrap();

    // Refusals are those of PUT: the failing test's line, the unknown key's line and name.
    let p = problem(admin.check_policy(FAILING).await);
    assert_eq!(
        (p.status, p.kind.as_str(), p.line),
        (422, "urn:ferrowg:problem:policy-test-failed", Some(6))
    );
    let p = problem(admin.check_policy("{\n  \"acls\": [],\n}").await);
    assert_eq!(
        (p.status, p.line, p.key.as_deref()),
        (422, Some(2), Some("acls"))
    );
    // A read-scope token may check, not store; a passing check stores nothing either.
    let (_, read) = hub
        .store()
        .create_admin_token(Scope::Read, "ci", None, UnixTime::now())
        .await
        .unwrap();
    let reader = hub.client_with(&read.to_string());
    let other = POLICY.replace("tcp:443", "tcp:443,8443");
    assert_eq!(reader.check_policy(&other).await.unwrap().tests, 1);
    assert_eq!(problem(reader.set_policy(&other).await).status, 403);
    assert_eq!(admin.policy().await.unwrap(), v1);
    let seq_after = hub.store().event_seq().await.unwrap();
    assert_eq!(seq_after, seq + 1, "only the admin token was recorded");
    // The JSON form of the body is accepted as by PUT.
    let (raw, api, token) = raw_client(&hub);
    let r = raw
        .post(format!("{api}/api/v1/policy/check"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "text": POLICY }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body, serde_json::json!({ "tests": 1 }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_are_listed_after_a_heartbeat() {
    let hub = Hub::start().await;
    let admin = hub.admin();
    assert!(admin.nodes().await.unwrap().is_empty());
    let seq = hub.store().event_seq().await.unwrap();
    let started_at = UnixTime(UnixTime::now().0 - 60);
    let identity = heartbeat::Identity {
        name: "hub-b".into(),
        api: "127.0.0.1:8443".into(),
        started_at,
    };
    let counts = || heartbeat::Counts {
        devices_online: 3,
        handshakes: 7,
    };
    let beat = tokio::spawn(heartbeat::run(
        hub.store(),
        identity,
        counts,
        Duration::from_millis(100),
    ));
    // A node that stopped beating a minute ago.
    let stale = ferrowg_hub_store::HubNode {
        name: "hub-a".into(),
        api: "127.0.0.2:8443".into(),
        version: "0.0.9".into(),
        started_at,
        last_seen: UnixTime(UnixTime::now().0 - 60),
        devices_online: 0,
        handshakes: 1,
    };
    hub.store().heartbeat(&stale).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let nodes = loop {
        let nodes = admin.nodes().await.unwrap();
        if nodes.len() == 2 || std::time::Instant::now() > deadline {
            break nodes;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    beat.abort();
    let listed: Vec<(&str, bool)> = nodes.iter().map(|n| (n.name.as_str(), n.healthy)).collect();
    assert_eq!(listed, [("hub-a", false), ("hub-b", true)]);
    let b = &nodes[1];
    assert_eq!(
        (b.api.as_str(), b.version.as_str(), b.started_at),
        ("127.0.0.1:8443", env!("CARGO_PKG_VERSION"), started_at.0)
    );
    assert_eq!((b.devices_online, b.handshakes), (3, 7));
    assert!(b.last_seen >= UnixTime::now().0 - 5);
    assert_eq!(
        hub.store().event_seq().await.unwrap(),
        seq,
        "heartbeats make no event"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_heartbeat_is_retried_and_does_not_stop() {
    let dir = tempfile::tempdir().unwrap();
    let store = ferrowg_hub_store::SqlStore::open(dir.path()).await.unwrap();
    store.close().await;
    let store: std::sync::Arc<dyn ferrowg_hub_store::HubStore> = std::sync::Arc::new(store);
    let beats = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = beats.clone();
    let identity = heartbeat::Identity {
        name: "n".into(),
        api: "127.0.0.1:1".into(),
        started_at: UnixTime::now(),
    };
    let task = tokio::spawn(heartbeat::run(
        store.clone(),
        identity,
        move || {
            counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            heartbeat::Counts::default()
        },
        Duration::from_millis(20),
    ));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while beats.load(std::sync::atomic::Ordering::Relaxed) < 3
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(store.list_nodes().await.is_err(), "the database is away");
    assert!(
        beats.load(std::sync::atomic::Ordering::Relaxed) >= 3,
        "retried"
    );
    assert!(!task.is_finished(), "the heartbeat task runs on");
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_marks_the_device_due_until_its_rotation_completes() {
    let hub = Hub::start().await;
    let admin = hub.admin();
    let key = random_key();
    let added = admin
        .add_device(&add_request("meter", "sensor", key))
        .await
        .unwrap();
    assert!(!added.device.rotation_due, "the schedule is 90 days");
    let rotated = admin.rotate_device("meter").await.unwrap();
    assert!(rotated.rotation_due);
    assert!(admin.device("meter").await.unwrap().rotation_due);
    let listed = admin.list_devices().await.unwrap();
    assert!(listed[0].rotation_due);
    // The device announces a next key, then shakes hands with it: the rotation is complete.
    let next = random_key();
    let store = hub.store();
    store
        .begin_rotation("meter", &next, UnixTime::now())
        .await
        .unwrap();
    assert!(admin.device("meter").await.unwrap().rotation_due, "not yet");
    store
        .record_handshake(&next, UnixTime::now(), None)
        .await
        .unwrap();
    let done = admin.device("meter").await.unwrap();
    assert!(!done.rotation_due);
    assert_eq!(
        done.public_key,
        ferrowg_keys::key::PublicKey::from_bytes(next).to_base64()
    );

    let p = problem(admin.rotate_device("nope").await);
    assert_eq!(p.status, 404);
    admin.revoke_device("meter").await.unwrap();
    let p = problem(admin.rotate_device("meter").await);
    assert_eq!(
        (p.status, p.kind.as_str()),
        (409, "urn:ferrowg:problem:device-revoked")
    );
    let (_, read) = hub
        .store()
        .create_admin_token(Scope::Read, "ci", None, UnixTime::now())
        .await
        .unwrap();
    let reader = hub.client_with(&read.to_string());
    assert_eq!(problem(reader.rotate_device("meter").await).status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_count_devices_by_status_and_usable_tokens() {
    let hub = Hub::start().await;
    let admin = hub.admin();
    let (raw, api, token) = raw_client(&hub);
    let groups = |bearer: String| {
        let req = raw.get(format!("{api}/api/v1/groups")).bearer_auth(bearer);
        async move {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<serde_json::Value>().await.unwrap())
        }
    };
    assert_eq!(groups(token.clone()).await, (200, serde_json::json!([])));
    let mut keys = Vec::new();
    for (name, group) in [("cam-1", "cams"), ("cam-2", "cams"), ("old", "cams")] {
        let key = random_key();
        admin
            .add_device(&add_request(name, group, key))
            .await
            .unwrap();
        keys.push(key);
    }
    let now = UnixTime::now();
    hub.store()
        .record_handshake(&keys[0], now, None)
        .await
        .unwrap();
    admin.revoke_device("old").await.unwrap();
    admin
        .create_token(&token_request("spare", 2))
        .await
        .unwrap();
    let used = admin.create_token(&token_request("cams", 1)).await.unwrap();
    admin.revoke_token(&used.info.id).await.unwrap();
    // Read scope suffices; the groups come ordered by name, token-only groups included.
    let (_, read) = hub
        .store()
        .create_admin_token(Scope::Read, "ci", None, now)
        .await
        .unwrap();
    let want = serde_json::json!([
        {"name": "cams", "devices": 2, "online": 1, "pending": 1, "revoked": 1, "tokens": 0},
        {"name": "spare", "devices": 0, "online": 0, "pending": 0, "revoked": 0, "tokens": 1},
    ]);
    assert_eq!(groups(read.to_string()).await, (200, want));
    assert_eq!(groups("nope.nope".into()).await.0, 401);
}
