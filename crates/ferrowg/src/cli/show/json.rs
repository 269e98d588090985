//! `ferrowg show --json`: the JSON rendering of interfaces ([`json`]). It follows the schema of wireguard-tools' `contrib/json/wg-json`:
//! ```text
//! { "<interface>": {
//!     "privateKey": "<base64>",        only if set and secrets are requested
//!     "publicKey": "<base64>",         only if a private key is set
//!     "listenPort": <u16>,             only if non-zero
//!     "fwmark": <u32>,                 only if non-zero
//!     "peers": { "<public key base64>": {
//!         "presharedKey": "<base64>",  only if set and secrets are requested
//!         "endpoint": "<ip:port>",     only if known (printed as in `wg show`)
//!         "latestHandshake": <u64>,    seconds since the epoch, only if non-zero
//!         "transferRx": <u64>,         only if non-zero
//!         "transferTx": <u64>,         only if non-zero
//!         "persistentKeepalive": <u16>, only if non-zero
//!         "allowedIps": [ "<ip/cidr>", … ]   always, possibly empty
//!     }, … } }, … }
//! ```
//! Interfaces and peers keep their order; the document is indented with two spaces and ends with
//! a newline.

use serde::ser::{Serialize, SerializeMap, Serializer};

use ferrowg_conf::addr::Ntop;
use ferrowg_conf::uapi::DeviceState;

/// The JSON rendering of `devices` (schema in the module documentation). Private and preshared
/// keys are included only with `include_secrets`.
pub fn json(devices: &[(&str, &DeviceState)], include_secrets: bool) -> String {
    let doc = OrderedMap(
        devices
            .iter()
            .map(|(name, state)| ((*name).to_owned(), JsonDevice::new(state, include_secrets)))
            .collect(),
    );
    // Serializing plain strings, numbers and maps cannot fail.
    let mut out = serde_json::to_string_pretty(&doc).unwrap_or_default();
    out.push('\n');
    out
}

/// A JSON object whose keys keep insertion order.
struct OrderedMap<V>(Vec<(String, V)>);

impl<V: Serialize> Serialize for OrderedMap<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonDevice {
    #[serde(skip_serializing_if = "Option::is_none")]
    private_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    public_key: Option<String>,
    #[serde(skip_serializing_if = "is_zero")]
    listen_port: u64,
    #[serde(skip_serializing_if = "is_zero")]
    fwmark: u64,
    peers: OrderedMap<JsonPeer>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonPeer {
    #[serde(skip_serializing_if = "Option::is_none")]
    preshared_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    endpoint: Option<String>,
    #[serde(skip_serializing_if = "is_zero")]
    latest_handshake: u64,
    #[serde(skip_serializing_if = "is_zero")]
    transfer_rx: u64,
    #[serde(skip_serializing_if = "is_zero")]
    transfer_tx: u64,
    #[serde(skip_serializing_if = "is_zero")]
    persistent_keepalive: u64,
    allowed_ips: Vec<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl JsonDevice {
    fn new(state: &DeviceState, secrets: bool) -> Self {
        let peers = state
            .peers
            .iter()
            .map(|p| {
                let peer = JsonPeer {
                    preshared_key: p
                        .preshared_key
                        .as_ref()
                        .filter(|_| secrets)
                        .map(|k| k.to_base64()),
                    endpoint: p.endpoint.map(|e| Ntop(e).to_string()),
                    latest_handshake: p.last_handshake_time_sec,
                    transfer_rx: p.rx_bytes,
                    transfer_tx: p.tx_bytes,
                    persistent_keepalive: p.persistent_keepalive_interval.into(),
                    allowed_ips: p
                        .allowed_ips
                        .iter()
                        .map(|ip| ip.ntop().to_string())
                        .collect(),
                };
                (p.public_key.to_base64(), peer)
            })
            .collect();
        Self {
            private_key: state
                .private_key
                .as_ref()
                .filter(|_| secrets)
                .map(|k| k.to_base64()),
            public_key: state.public_key().map(|k| k.to_base64()),
            listen_port: state.listen_port.into(),
            fwmark: state.fwmark.into(),
            peers: OrderedMap(peers),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{pk, state, NOW, SK};
    use super::*;

    #[test]
    fn json_schema() {
        let s = state();
        let v: serde_json::Value = serde_json::from_str(&json(&[("wg0", &s)], false)).unwrap();
        let dev = &v["wg0"];
        assert!(dev.get("privateKey").is_none());
        assert_eq!(dev["publicKey"], s.public_key().unwrap().to_base64());
        assert_eq!(dev["listenPort"], 51820);
        assert_eq!(dev["fwmark"], 0xca6c);
        let peer = &dev["peers"][pk(1).to_base64()];
        assert!(peer.get("presharedKey").is_none());
        assert_eq!(peer["endpoint"], "192.0.2.1:51820");
        assert_eq!(peer["latestHandshake"], NOW - 65);
        assert_eq!(peer["transferRx"], 1263);
        assert_eq!(peer["transferTx"], 4_781_506);
        assert_eq!(peer["persistentKeepalive"], 25);
        assert_eq!(
            peer["allowedIps"],
            serde_json::json!(["10.0.0.0/24", "fd00::/64"])
        );
        let quiet = &dev["peers"][pk(3).to_base64()];
        assert_eq!(quiet.as_object().unwrap().len(), 1);
        let with = json(&[("wg0", &s)], true);
        assert!(with.contains(SK) && with.ends_with("}\n"));
        // Peers keep the daemon's order.
        let order: Vec<usize> = [1u8, 3, 4]
            .iter()
            .map(|&b| with.find(&pk(b).to_base64()).unwrap())
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]));
    }
}
