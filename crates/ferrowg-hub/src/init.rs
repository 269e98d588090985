//! `ferrowg hub init`: a new data directory (see [`crate::paths`]) with the hub's WireGuard key
//! (a new key file, or the public key of a key in a PKCS#11 token), a self-signed certificate
//! for the API, the store initialised with the endpoint and the pools, the first admin token
//! (write scope, no expiry) and `hub.json`.
//!
//! Every input is checked and the token key opened before anything is written; a directory
//! that exists and is not empty is refused. Files holding secrets are created with mode 0600
//! (never widened first and narrowed after).

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ferrowg_hub_store::ipnet::{Ipv4Net, Ipv6Net};
use ferrowg_hub_store::{HubSettings, HubStore, Pools, Scope, SqlStore, UnixTime};
use ferrowg_keys::key::{PrivateKey, PublicKey};
use ferrowg_keys::keyfile::{write_private_file, write_private_key};
use ferrowg_keys::pkcs11::{Pkcs11Key, Pkcs11Uri};
use zeroize::Zeroizing;

use crate::paths::{dial_url, host_of, DataDir, HubFile, DEFAULT_API_PORT};
use crate::tls::{self, Pin};

/// What `init` is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitOptions {
    /// The data directory (created, or an existing empty one).
    pub data: PathBuf,
    /// Where devices reach the hub's WireGuard: `HOST:PORT`.
    pub endpoint: String,
    /// The IPv4 pool.
    pub pool4: Ipv4Net,
    /// The IPv6 pool, if any.
    pub pool6: Option<Ipv6Net>,
    /// A `pkcs11:` URI naming the hub's key in a token (`pin-source=` for its PIN; `pin-value=`
    /// is refused); `None`: a new key file.
    pub pkcs11: Option<String>,
    /// The API's listening address; default `0.0.0.0:8443`.
    pub api: Option<SocketAddr>,
    /// How old a device's key may grow, in seconds, before the device rotates it; `None`: no
    /// schedule.
    pub rotate_after: Option<u64>,
    /// The PostgreSQL database (`postgres://…`) to keep the store in, recorded in the data
    /// directory; `None`: SQLite in the data directory.
    pub database: Option<String>,
    /// The API URL tokens carry; default `https://` + the endpoint's host + the API port.
    pub api_url: Option<String>,
    /// More names or addresses for the certificate.
    pub api_sans: Vec<String>,
}

/// What `init` made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitReport {
    /// The hub's WireGuard public key (base64).
    pub public_key: String,
    /// The settings written to `hub.json`.
    pub hub_file: HubFile,
    /// The data directory.
    pub data: PathBuf,
}

/// Why `init` failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InitError {
    /// The directory exists and is not empty.
    #[error("{}: exists and is not empty; `hub init` makes a new hub in a new or empty directory", .0.display())]
    NotEmpty(PathBuf),
    /// An option is refused.
    #[error("{0}")]
    Invalid(String),
    /// The hub's key could not be made or opened.
    #[error("{0}")]
    Key(String),
    /// A file could not be written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// The certificate could not be made.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The store refused.
    #[error("store: {0}")]
    Store(#[from] ferrowg_hub_store::StoreError),
}

/// The hub's key: a new private key for a file, or a key in a token.
enum HubKey {
    File(PrivateKey),
    Token(Box<Pkcs11Uri>, PublicKey),
}

/// Runs `hub init` (see the module documentation).
pub async fn init(opts: &InitOptions) -> Result<InitReport, InitError> {
    ferrowg_hub_store::validate::endpoint(&opts.endpoint)
        .map_err(|e| InitError::Invalid(format!("--endpoint {:?}: {e}", opts.endpoint)))?;
    if let Some(url) = &opts.database {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(InitError::Invalid(
                "--database: a postgres:// URL (without it the store is DIR/hub.db)".into(),
            ));
        }
    }
    let pools = Pools::new(opts.pool4, opts.pool6)
        .map_err(|e| InitError::Invalid(format!("--pool/--pool6: {e}")))?;
    let hub_file = hub_file_for(opts)?;
    let key = hub_key(opts.pkcs11.as_deref()).await?;
    let public = match &key {
        HubKey::File(k) => k.public_key(),
        HubKey::Token(_, p) => *p,
    };
    let dir = DataDir::new(&opts.data);
    make_dir(dir.root())?;
    write_key(&dir, &key)?;
    let sans = certificate_names(opts, &hub_file);
    let pin = write_tls(&dir, &sans)?;
    let hub_file = HubFile {
        pin: pin.to_string(),
        ..hub_file
    };
    if let Some(url) = &opts.database {
        write_secret(&dir.database_file(), format!("{url}\n").as_bytes())?;
    }
    let store = SqlStore::open_in(dir.root(), opts.database.as_deref()).await?;
    let now = UnixTime::now();
    let settings = HubSettings {
        endpoint: opts.endpoint.clone(),
        pools,
        public_key: *public.as_bytes(),
        created_at: now,
        rotate_after: opts.rotate_after,
    };
    store.init(&settings).await?;
    let (_, credential) = store
        .create_admin_token(Scope::Write, "hub init", None, now)
        .await?;
    store.close().await;
    let text = Zeroizing::new(format!("{credential}\n"));
    write_secret(&dir.admin_token(), text.as_bytes())?;
    let json = serde_json::to_string_pretty(&hub_file).unwrap_or_default() + "\n";
    write_new(&dir.hub_file(), json.as_bytes(), 0o644)?;
    Ok(InitReport {
        public_key: public.to_base64(),
        hub_file,
        data: opts.data.clone(),
    })
}

/// `hub.json` without its pin (the certificate is made later).
fn hub_file_for(opts: &InitOptions) -> Result<HubFile, InitError> {
    let listen = opts
        .api
        .unwrap_or_else(|| SocketAddr::from((Ipv4Addr::UNSPECIFIED, DEFAULT_API_PORT)));
    let public_api = match &opts.api_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => {
            let host = host_of(&opts.endpoint).ok_or_else(|| {
                InitError::Invalid(format!("--endpoint {:?}: not HOST:PORT", opts.endpoint))
            })?;
            format!("https://{host}:{}", listen.port())
        }
    };
    crate::token::check_api(&public_api).map_err(|_| {
        InitError::Invalid(format!(
            "--api-url {public_api:?}: not an https://HOST:PORT URL"
        ))
    })?;
    Ok(HubFile {
        listen,
        api: dial_url(listen),
        public_api,
        pin: String::new(),
    })
}

/// The hub's key: opened in its token (in a blocking thread: the module may be slow), or new.
async fn hub_key(pkcs11: Option<&str>) -> Result<HubKey, InitError> {
    let Some(text) = pkcs11 else {
        let key = PrivateKey::generate()
            .map_err(|e| InitError::Key(format!("generating the hub's key: {e}")))?;
        return Ok(HubKey::File(key));
    };
    let mut uri = Pkcs11Uri::parse(text)
        .map_err(|e| InitError::Invalid(format!("--pkcs11: invalid PKCS#11 URI: {e}")))?;
    if uri.has_pin_value() {
        return Err(InitError::Invalid(
            "--pkcs11: pin-value= is not accepted (it would be stored in the data directory and \
             is visible in /proc/PID/cmdline): put the PIN in a file only you can read and give \
             pin-source=file:/path/to/pin"
                .into(),
        ));
    }
    if let Ok(cwd) = std::env::current_dir() {
        uri.absolutize(&cwd);
    }
    let opened = uri.clone();
    let public = tokio::task::spawn_blocking(move || Pkcs11Key::open(&opened).map(|k| k.public()))
        .await
        .map_err(|e| InitError::Key(format!("PKCS#11: {e}")))?
        .map_err(|e| InitError::Key(format!("PKCS#11 private key: {e}")))?;
    Ok(HubKey::Token(Box::new(uri), public))
}

/// Creates `dir` with mode 0700, or takes an existing empty directory (and makes it 0700).
fn make_dir(dir: &Path) -> Result<(), InitError> {
    let io = |source| InitError::Io {
        path: dir.to_owned(),
        source,
    };
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(InitError::NotEmpty(dir.to_owned()));
            }
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io),
        Err(e) => Err(io(e)),
    }
}

/// Writes `hub.key` or `hub.key-uri`.
fn write_key(dir: &DataDir, key: &HubKey) -> Result<(), InitError> {
    let io = |path: PathBuf| {
        move |e: ferrowg_keys::keyfile::KeyFileError| InitError::Io {
            path,
            source: std::io::Error::other(e.to_string()),
        }
    };
    match key {
        HubKey::File(k) => write_private_key(&dir.key(), k).map_err(io(dir.key())),
        HubKey::Token(uri, _) => {
            let text = format!("{}\n", uri.to_uri_string(false));
            write_private_file(&dir.key_uri(), text.as_bytes()).map_err(io(dir.key_uri()))
        }
    }
}

/// The certificate's names: the endpoint's host, the listening address, the public API's
/// host, and `--api-san`.
fn certificate_names(opts: &InitOptions, file: &HubFile) -> Vec<String> {
    let listen_ip = file.listen.ip().to_string();
    let public_host = file
        .public_api
        .strip_prefix("https://")
        .and_then(host_of)
        .unwrap_or("");
    let extra = host_of(&opts.endpoint)
        .into_iter()
        .chain([listen_ip.as_str(), public_host])
        .chain(opts.api_sans.iter().map(String::as_str));
    tls::subject_alt_names(extra)
}

/// Writes `tls.crt` and `tls.key`; returns the certificate's pin.
fn write_tls(dir: &DataDir, sans: &[String]) -> Result<Pin, InitError> {
    let (cert_pem, cert_der, key_pem) = tls::generate(sans)?;
    write_secret(&dir.tls_key(), key_pem.as_bytes())?;
    write_new(&dir.tls_cert(), cert_pem.as_bytes(), 0o644)?;
    Ok(Pin::of(&cert_der))
}

/// Writes a file that holds a secret: mode 0600 from its creation.
fn write_secret(path: &Path, data: &[u8]) -> Result<(), InitError> {
    write_new(path, data, 0o600)
}

/// Creates `path` (it must not exist) with `mode`, writes `data` and syncs it.
fn write_new(path: &Path, data: &[u8], mode: u32) -> Result<(), InitError> {
    let io = |source| InitError::Io {
        path: path.to_owned(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(io)?;
    f.write_all(data).and_then(|()| f.sync_all()).map_err(io)
}
