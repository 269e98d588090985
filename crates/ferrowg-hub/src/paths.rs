//! The hub's data directory: which file holds what, and `hub.json`, the non-secret settings the
//! command line and `serve` need before they can reach the store.
//!
//! ```text
//! DIR/                 mode 0700
//!   hub.db             the store (ferrowg-hub-store's SQLite file, with -wal and -shm beside it)
//!   hub.key            the hub's WireGuard private key, base64 (mode 0600)   } one of the two
//!   hub.key-uri        a pkcs11: URI naming the key in a token (no PIN value) }
//!   tls.crt            the API's self-signed certificate (PEM)
//!   tls.key            its private key (PEM, mode 0600)
//!   admin.token        the admin credential with write scope (mode 0600)
//!   hub.json           HubFile: listening address, API URLs, TLS pin
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::tls::Pin;

/// The API's default port.
pub const DEFAULT_API_PORT: u16 = 8443;

/// Largest `hub.json` read, in bytes.
const MAX_HUB_FILE: u64 = 64 * 1024;

/// The files of one data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// The data directory at `root`.
    pub fn new(root: impl Into<PathBuf>) -> DataDir {
        DataDir { root: root.into() }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The store's database file.
    pub fn db(&self) -> PathBuf {
        self.root.join(ferrowg_hub_store::DB_FILE)
    }

    /// The hub's WireGuard private key file (absent when the key is in a PKCS#11 token).
    pub fn key(&self) -> PathBuf {
        self.root.join("hub.key")
    }

    /// The file holding the `pkcs11:` URI of the hub's key (absent for a key file).
    pub fn key_uri(&self) -> PathBuf {
        self.root.join("hub.key-uri")
    }

    /// The API's certificate (PEM).
    pub fn tls_cert(&self) -> PathBuf {
        self.root.join("tls.crt")
    }

    /// The API certificate's private key (PEM).
    pub fn tls_key(&self) -> PathBuf {
        self.root.join("tls.key")
    }

    /// The admin credential `init` created (write scope, no expiry).
    pub fn admin_token(&self) -> PathBuf {
        self.root.join("admin.token")
    }

    /// The URL of the PostgreSQL database the hub uses (readable by root only: it may hold a
    /// password); absent when the hub uses the SQLite file in this directory.
    pub fn database_file(&self) -> PathBuf {
        self.root.join("database.url")
    }

    /// The PostgreSQL database `init --database` recorded, if any.
    pub fn database_url(&self) -> Result<Option<String>, String> {
        let path = self.database_file();
        if !path.exists() {
            return Ok(None);
        }
        let text =
            read_bounded(&path, MAX_HUB_FILE).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Some(text.trim().to_owned()))
    }

    /// The non-secret settings ([`HubFile`]).
    pub fn hub_file(&self) -> PathBuf {
        self.root.join("hub.json")
    }

    /// Reads and checks `hub.json`.
    pub fn read_hub_file(&self) -> Result<HubFile, String> {
        let path = self.hub_file();
        let shown = path.display();
        let text = read_bounded(&path, MAX_HUB_FILE).map_err(|e| format!("{shown}: {e}"))?;
        let file: HubFile =
            serde_json::from_str(&text).map_err(|e| format!("{shown}: not a hub file: {e}"))?;
        file.pin
            .parse::<Pin>()
            .map_err(|e| format!("{shown}: pin: {e}"))?;
        Ok(file)
    }
}

/// `hub.json`: what `serve` listens on and what clients need to reach the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubFile {
    /// The address `serve` listens on unless `--api` says otherwise (`0.0.0.0:8443` by default).
    pub listen: SocketAddr,
    /// The URL the admin command line dials on this host: `https://` and the listening address,
    /// with loopback for an unspecified address (`https://127.0.0.1:8443`).
    pub api: String,
    /// The URL enrolment tokens carry, for devices: `https://` + the endpoint's host + the API
    /// port, unless `init --api-url` set another.
    pub public_api: String,
    /// The API certificate's pin (see [`crate::tls`]).
    pub pin: String,
}

impl HubFile {
    /// The parsed pin (checked when the file was read).
    pub fn pin(&self) -> Result<Pin, String> {
        self.pin
            .parse()
            .map_err(|e: crate::tls::PinError| e.to_string())
    }
}

/// The URL to dial for a listening address: unspecified addresses become loopback.
pub fn dial_url(listen: SocketAddr) -> String {
    let ip = match listen.ip() {
        IpAddr::V4(a) if a.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(a) if a.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("https://{}", SocketAddr::new(ip, listen.port()))
}

/// The host part of `HOST:PORT` or `[V6]:PORT` (brackets kept), or `None` without a port.
pub fn host_of(endpoint: &str) -> Option<&str> {
    let (host, port) = endpoint.rsplit_once(':')?;
    (!host.is_empty() && port.parse::<u16>().is_ok()).then_some(host)
}

/// The port of `HOST:PORT` or `[V6]:PORT`.
pub fn port_of(endpoint: &str) -> Option<u16> {
    let (host, port) = endpoint.rsplit_once(':')?;
    if host.is_empty() {
        return None;
    }
    port.parse().ok()
}

/// Reads at most `limit` bytes of UTF-8 text from `path`.
pub(crate) fn read_bounded(path: &Path, limit: u64) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > limit {
        return Err(format!("larger than {limit} bytes"));
    }
    String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dial_urls_and_hosts() {
        assert_eq!(
            dial_url("0.0.0.0:8443".parse().unwrap()),
            "https://127.0.0.1:8443"
        );
        assert_eq!(dial_url("[::]:1".parse().unwrap()), "https://[::1]:1");
        assert_eq!(
            dial_url("10.0.0.1:9".parse().unwrap()),
            "https://10.0.0.1:9"
        );
        assert_eq!(host_of("hub.example.com:51820"), Some("hub.example.com"));
        assert_eq!(host_of("[2001:db8::1]:51820"), Some("[2001:db8::1]"));
        assert_eq!(host_of("hub"), None);
        assert_eq!(host_of(":1"), None);
    }
}
