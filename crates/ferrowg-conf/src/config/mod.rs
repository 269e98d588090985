//! Configuration files: the wg(8) format (`wg setconf`, `wg showconf`) and the wg-quick(8)
//! superset that adds `Address`, `DNS`, `MTU`, `Table`, `PreUp`/`PostUp`/`PreDown`/`PostDown`
//! and `SaveConfig` to `[Interface]`.
//!
//! - [`parse`] reads either dialect into a [`Config`], with errors that name the file, the line
//!   and the field (`wg0.conf:7: AllowedIPs: "10.0.0.0/33" is not a valid prefix`).
//! - [`showconf`] prints a [`DeviceState`](crate::uapi::DeviceState) exactly as `wg showconf` does; [`Config::to_wg_conf`]
//!   and [`Config::to_quick_conf`] print a parsed configuration back.
//! - [`strip`] is `wg-quick strip`: the file without the wg-quick keys.
//! - [`SetRequest::from_config`](crate::uapi::SetRequest::from_config) builds the UAPI request
//!   that wg(8)'s `setconf`, `addconf` and `syncconf` ([`ConfMode`]) send for a file.
//!
//! The per-line rules are wg's `config.c` for wg keys (comments start at `#`, all whitespace is
//! removed, keys and section names are case-insensitive, later values replace earlier ones,
//! `AllowedIPs` accumulate) and wg-quick's `parse_options` for its own keys (only inside a
//! section whose header is exactly `[Interface]`, case-insensitively; key and value trimmed;
//! hook commands keep their `#`).

mod error;
mod parse;
mod quick;
mod setconf;
mod syntax;
mod write;

pub use error::{ConfigError, ConfigErrorKind, Section};
pub use parse::parse;
pub use setconf::ConfMode;
pub use write::{showconf, strip};

use core::fmt;
use std::net::IpAddr;

use crate::addr::{AllowedIp, Endpoint};
use ferrowg_keys::key::{PresharedKey, PrivateKey, PublicKey};

/// Which keys a file may contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// wg(8): `setconf`, `addconf`, `syncconf`. wg-quick keys are unknown keys.
    Wg,
    /// wg-quick(8): the wg keys plus the wg-quick `[Interface]` keys.
    WgQuick,
}

/// A parsed configuration file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// The `[Interface]` section (empty when the file has none).
    pub interface: Interface,
    /// The `[Peer]` sections, in file order.
    pub peers: Vec<Peer>,
}

/// The `[Interface]` keys. `None` means "not in the file", which matters for `addconf`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Interface {
    /// `PrivateKey` given as a key.
    pub private_key: Option<PrivateKey>,
    /// `PrivateKey` given as a PKCS#11 URI (ferrowg's extension: the key stays in a token).
    /// At most one of `private_key` and `private_key_uri` is set: the later line wins.
    pub private_key_uri: Option<ferrowg_keys::pkcs11::Pkcs11Uri>,
    /// `ListenPort`.
    pub listen_port: Option<u16>,
    /// `FwMark`; `Some(0)` for `off`.
    pub fwmark: Option<u32>,
    /// The wg-quick keys (always empty in the wg dialect).
    pub quick: QuickInterface,
}

/// The wg-quick(8) additions to `[Interface]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuickInterface {
    /// `Address`: every address of every `Address` line, in order.
    pub addresses: Vec<Address>,
    /// `DNS` entries that are IP addresses: the name servers.
    pub dns: Vec<IpAddr>,
    /// `DNS` entries that are not IP addresses: the search domains.
    pub dns_search: Vec<String>,
    /// `MTU`; `None` means computed from the routes.
    pub mtu: Option<u32>,
    /// `Table`; `None` means the default (`auto`).
    pub table: Option<Table>,
    /// `PreUp` commands, in order (`%i` is not expanded here).
    pub pre_up: Vec<String>,
    /// `PostUp` commands.
    pub post_up: Vec<String>,
    /// `PreDown` commands.
    pub pre_down: Vec<String>,
    /// `PostDown` commands.
    pub post_down: Vec<String>,
    /// `SaveConfig`.
    pub save_config: bool,
}

impl QuickInterface {
    /// The hook commands under their keys, in wg-quick's order: `PreUp`, `PostUp`, `PreDown`,
    /// `PostDown`.
    pub fn hooks(&self) -> [(&'static str, &[String]); 4] {
        [
            ("PreUp", &self.pre_up),
            ("PostUp", &self.post_up),
            ("PreDown", &self.pre_down),
            ("PostDown", &self.post_down),
        ]
    }
}

/// An interface address for `ip address add`: the prefix length is optional.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Address {
    /// The address.
    pub addr: IpAddr,
    /// The prefix length, when given.
    pub cidr: Option<u8>,
}

/// wg-quick's `Table`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Table {
    /// `off`: add no routes.
    Off,
    /// `auto`: the main table, or a new one (with policy rules) for default routes.
    Auto,
    /// A numeric table id.
    Id(u32),
    /// A table name from `/etc/iproute2/rt_tables`.
    Name(String),
}

/// As a file spells it: `off`, `auto`, the number or the name.
impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Off => f.write_str("off"),
            Self::Auto => f.write_str("auto"),
            Self::Id(id) => id.fmt(f),
            Self::Name(name) => f.write_str(name),
        }
    }
}

/// A `[Peer]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// `PublicKey` (mandatory).
    pub public_key: PublicKey,
    /// `PresharedKey`.
    pub preshared_key: Option<PresharedKey>,
    /// `AllowedIPs`, all lines together, host bits as written.
    pub allowed_ips: Vec<AllowedIp>,
    /// `Endpoint`, unresolved.
    pub endpoint: Option<Endpoint>,
    /// `PersistentKeepalive`; `Some(0)` for `off`.
    pub persistent_keepalive: Option<u16>,
}

impl Peer {
    /// A peer with only its public key.
    pub fn new(public_key: PublicKey) -> Self {
        Self {
            public_key,
            preshared_key: None,
            allowed_ips: Vec::new(),
            endpoint: None,
            persistent_keepalive: None,
        }
    }
}
