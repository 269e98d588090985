//! The ferrowg hub's WireGuard side. The hub runs the daemon's data path in its own process
//! ([`ferrowg_daemon::start`]) on one interface, with:
//! - its peers kept in step with the store by the sync loop (`sync.rs`, `peers.rs`);
//! - packets between devices forwarded inside the process under the policy
//!   (`forwarding.rs`, reading the [`View`] the sync loop publishes): the kernel's `ip_forward`
//!   plays no part;
//! - packets for the hub host and beyond written to the interface as on any ferrowg interface;
//! - devices that had their sessions with another hub node handshaken with at once
//!   (`takeover.rs`).

mod directory;
mod forwarding;
mod peers;
mod sync;
mod takeover;
mod view;

pub use directory::{Directory, Member};
pub use forwarding::HubForwarding;
pub use peers::{allowed_ips, endpoints, plan, wanted, PeerTable};
pub use sync::{Sync, SyncError, ROUND, STATS_EVERY};
pub use takeover::Takeover;
pub use view::View;

use std::net::IpAddr;
use std::process::Command;
use std::sync::Arc;

use ferrowg_conf::uapi::{InterfaceOp, SetRequest};
use ferrowg_daemon::{DaemonError, Handle, Running, Tuning};
use ferrowg_keys::key::PrivateKey;
use ferrowg_keys::pkcs11::Pkcs11Uri;

/// The hub's WireGuard private key.
pub enum HubKey {
    /// A key held in memory (read from the hub's key file).
    File(PrivateKey),
    /// An X25519 key in a PKCS#11 token; the hub asks the token for each DH.
    Token(Box<Pkcs11Uri>),
}

/// How the hub's interface is set up.
pub struct InterfaceSpec {
    /// The interface's name.
    pub iface: String,
    /// Its key.
    pub key: HubKey,
    /// The UDP port devices send to.
    pub listen_port: u16,
    /// The hub's own addresses, with the pools' prefix lengths (`10.64.0.1/16`).
    pub addresses: Vec<(IpAddr, u8)>,
    /// The interface's MTU.
    pub mtu: u32,
}

/// Why the data plane could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The daemon could not start.
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    /// The interface refused its key or port.
    #[error("the interface refused its key or listen port: {0}")]
    Refused(ferrowg_conf::uapi::Errno),
    /// An address or link setting failed.
    #[error("cannot set up interface {iface}: {what}")]
    Link {
        /// The interface.
        iface: String,
        /// What failed.
        what: String,
    },
}

/// Starts the hub's interface: the daemon with the hub's forwarding policy reading `view`, its
/// key and port set, its addresses added and the link up. The caller runs [`Sync`] on the
/// returned handle, spawns the [`Takeover`], and waits on the [`Running`] daemon.
pub fn start(
    spec: &InterfaceSpec,
    view: Arc<View>,
) -> Result<(Running, Handle, Takeover), StartError> {
    let (to_takeover, takeover) = takeover::channel();
    let forwarding = Arc::new(HubForwarding::new(view, to_takeover));
    let running = ferrowg_daemon::start(&spec.iface, &Tuning::default(), Some(forwarding))?;
    let handle = running.handle();
    let key = match &spec.key {
        HubKey::File(k) => InterfaceOp::PrivateKey(Some(k.clone())),
        HubKey::Token(uri) => InterfaceOp::PrivateKeyUri(uri.clone()),
    };
    let req = SetRequest {
        interface: vec![key, InterfaceOp::ListenPort(spec.listen_port)],
        peers: Vec::new(),
    };
    handle.set(&req).map_err(StartError::Refused)?;
    link_up(spec)?;
    Ok((running, handle, takeover))
}

/// Adds the interface's addresses, sets its MTU and brings it up (with `ip(8)`, as wg-quick).
fn link_up(spec: &InterfaceSpec) -> Result<(), StartError> {
    let iface = spec.iface.as_str();
    for (addr, len) in &spec.addresses {
        let family = if addr.is_ipv4() { "-4" } else { "-6" };
        ip(
            iface,
            &[
                family,
                "address",
                "add",
                &format!("{addr}/{len}"),
                "dev",
                iface,
            ],
        )?;
    }
    let mtu = spec.mtu.to_string();
    ip(iface, &["link", "set", "mtu", &mtu, "up", "dev", iface])
}

fn ip(iface: &str, args: &[&str]) -> Result<(), StartError> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| StartError::Link {
            iface: iface.into(),
            what: format!("cannot run ip: {e}"),
        })?;
    if out.status.success() {
        return Ok(());
    }
    Err(StartError::Link {
        iface: iface.into(),
        what: format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    })
}
