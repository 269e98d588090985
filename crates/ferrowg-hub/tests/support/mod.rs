//! A hub for the API tests, on the database backend `FERROWG_TEST_DATABASE` selects: `init` in
//! a temporary directory, the API served over HTTPS on an
//! ephemeral loopback port, an admin client from the directory's `hub.json` and `admin.token`.
//! The server stops when the [`Hub`] is dropped.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use ferrowg_hub::api::ApiState;
use ferrowg_hub::init::{init, InitOptions};
use ferrowg_hub::serve::{load, serve_api};
use ferrowg_hub::{Client, DataDir};
use ferrowg_testkit::postgres::{self, TestBackend};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A running hub.
pub struct Hub {
    pub dir: tempfile::TempDir,
    pub data: DataDir,
    pub addr: SocketAddr,
    pub state: ApiState,
    stop: Option<oneshot::Sender<()>>,
}

impl Hub {
    /// Initialises a hub (endpoint 127.0.0.1:51820, pools 10.64.0.0/16 and fd64::/64) and
    /// serves its API on 127.0.0.1 at a free port.
    pub async fn start() -> Hub {
        let dir = tempfile::tempdir().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let data = DataDir::new(dir.path().join("hub"));
        let opts = InitOptions {
            data: data.root().to_owned(),
            endpoint: "127.0.0.1:51820".into(),
            pool4: "10.64.0.0/16".parse().unwrap(),
            pool6: Some("fd64::/64".parse().unwrap()),
            pkcs11: None,
            api: Some(addr),
            api_url: None,
            api_sans: vec![],
            rotate_after: Some(ferrowg_hub_store::settings::DEFAULT_ROTATE_AFTER),
            database: match postgres::backend() {
                TestBackend::Postgres => Some(postgres::database_url()),
                TestBackend::Sqlite => None,
            },
        };
        init(&opts).await.expect("init");
        let (state, tls, listen) = load(&data, None).await.expect("load");
        assert_eq!(listen, addr);
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = state.clone();
        tokio::spawn(async move {
            serve_api(serving, listener, tls, async {
                let _ = stopped.await;
            })
            .await;
        });
        Hub {
            dir,
            data,
            addr,
            state,
            stop: Some(stop),
        }
    }

    /// The admin client (`--data DIR`'s view: hub.json's address and pin, admin.token).
    pub fn admin(&self) -> Client {
        let file = self.data.read_hub_file().unwrap();
        let token = std::fs::read_to_string(self.data.admin_token()).unwrap();
        Client::new(&file.api, file.pin().unwrap(), Some(token.trim())).unwrap()
    }

    /// A client with `token` as admin credential.
    pub fn client_with(&self, token: &str) -> Client {
        let file = self.data.read_hub_file().unwrap();
        Client::new(&file.api, file.pin().unwrap(), Some(token)).unwrap()
    }

    /// The store behind the API.
    pub fn store(&self) -> Arc<dyn ferrowg_hub_store::HubStore> {
        Arc::clone(&self.state.store)
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A random WireGuard public key (of a fresh private key).
pub fn random_key() -> [u8; 32] {
    *ferrowg_keys::key::PrivateKey::generate()
        .unwrap()
        .public_key()
        .as_bytes()
}
