//! Who is who on the hub's interface, for the forwarding decision: each peer's public key
//! names a device, its tags (`tag:GROUP`) and whether it is still pending. Rebuilt by the sync
//! loop from the store and swapped in whole; the data path only reads it.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use ferrowg_hub_store::{Device, DeviceState};

/// One device as the forwarding decision sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The device's name.
    pub name: String,
    /// Its tag, `tag:GROUP`, once active; none while pending (its group's rules do not apply
    /// until a handshake proved that it holds its key).
    pub tag: Option<String>,
    /// Its own addresses (a packet from or to another address is a site's, behind it).
    pub addresses: Vec<IpAddr>,
}

impl Member {
    /// Whether `addr` is one of the device's own addresses.
    pub fn owns(&self, addr: IpAddr) -> bool {
        self.addresses.contains(&addr)
    }
}

/// Members by public key (current and, during a rotation, next).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directory {
    members: HashMap<[u8; 32], Member>,
    /// The current key of the device last heard from at each endpoint.
    endpoints: HashMap<SocketAddr, [u8; 32]>,
}

impl Directory {
    /// The directory of `devices` (revoked ones are left out).
    pub fn new(devices: &[Device]) -> Directory {
        let mut members = HashMap::new();
        let mut endpoints = HashMap::new();
        for d in devices.iter().filter(|d| d.state != DeviceState::Revoked) {
            if let Some(e) = d.endpoint {
                endpoints.insert(e, d.public_key);
            }
            let m = Member {
                name: d.name.clone(),
                tag: (d.state == DeviceState::Active).then(|| format!("tag:{}", d.group)),
                addresses: std::iter::once(IpAddr::V4(d.ipv4))
                    .chain(d.ipv6.map(IpAddr::V6))
                    .collect(),
            };
            if let Some(next) = d.next_public_key {
                members.insert(next, m.clone());
            }
            members.insert(d.public_key, m);
        }
        Directory { members, endpoints }
    }

    /// The current key of the device the hub last heard from at `endpoint`.
    pub fn key_at(&self, endpoint: SocketAddr) -> Option<[u8; 32]> {
        self.endpoints.get(&endpoint).copied()
    }

    /// The member holding `key`.
    pub fn get(&self, key: &[u8; 32]) -> Option<&Member> {
        self.members.get(key)
    }

    /// How many devices it knows (a device rotating its key is one device under two keys).
    pub fn devices(&self) -> usize {
        let mut names: Vec<&str> = self.members.values().map(|m| m.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        names.len()
    }

    /// How many keys it knows.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether it knows no key.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}
