//! The wg-quick configuration of a hub's device, the one text both ends write: the hub for a
//! device that made its own key (`hub device add`: without `PrivateKey`, which stays on the
//! device; a comment says where it goes), and `ferrowg enroll` on the device (with it: the key
//! itself or the `pkcs11:` URI). A comment names the hub's device API inside the tunnel
//! ([`HUB_API_COMMENT`]), where `ferrowg key rotate` announces a new key; wg-quick ignores it.

use zeroize::Zeroizing;

use crate::api::types::EnrollResponse;

/// The comment line of a device's configuration that names the hub's device API.
pub const HUB_API_COMMENT: &str = "# ferrowg-hub-device-api: ";

/// The wg-quick text for the device `r` describes, with `private_key` (the value after
/// `PrivateKey =`) when the device writes it.
pub fn render(r: &EnrollResponse, private_key: Option<&str>) -> Zeroizing<String> {
    let mut s = Zeroizing::new(String::new());
    s.push_str(&format!(
        "# ferrowg hub: device {} ({} until its first handshake).\n",
        r.device,
        match r.state {
            crate::api::types::DeviceState::Pending => "pending",
            crate::api::types::DeviceState::Active => "active",
            crate::api::types::DeviceState::Revoked => "revoked",
        }
    ));
    if let Some(api) = &r.device_api {
        s.push_str(&format!("{HUB_API_COMMENT}{api}\n"));
    }
    s.push_str("[Interface]\n");
    match private_key {
        Some(k) => s.push_str(&format!("PrivateKey = {k}\n")),
        None => s.push_str(
            "# PrivateKey = <the device's own private key: the content of its key file, or with\n\
             #              ferrowg a pkcs11: URI; the hub never sees it>\n",
        ),
    }
    s.push_str(&format!("Address = {}\n", r.addresses.join(", ")));
    s.push_str("\n[Peer]\n");
    s.push_str(&format!("PublicKey = {}\n", r.hub_public_key));
    s.push_str(&format!("Endpoint = {}\n", r.endpoint));
    s.push_str(&format!("AllowedIPs = {}\n", r.allowed_ips.join(", ")));
    s.push_str(&format!(
        "PersistentKeepalive = {}\n",
        r.persistent_keepalive
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::types::DeviceState;

    #[test]
    fn renders_without_private_key() {
        let r = EnrollResponse {
            device: "phone".into(),
            addresses: vec!["10.64.0.2/32".into(), "fd64::2/128".into()],
            hub_public_key: "HUB=".into(),
            endpoint: "hub.example.com:51820".into(),
            allowed_ips: vec!["10.64.0.0/16".into(), "fd64::/64".into()],
            persistent_keepalive: 25,
            state: DeviceState::Pending,
            routes: vec![],
            device_api: None,
        };
        let text = render(&r, None);
        assert!(text.contains("Address = 10.64.0.2/32, fd64::2/128\n"));
        assert!(text.contains("AllowedIPs = 10.64.0.0/16, fd64::/64\n"));
        assert!(text.contains("Endpoint = hub.example.com:51820\n"));
        assert!(!text.lines().any(|l| l.starts_with("PrivateKey")));
        assert!(text.contains("# PrivateKey = "));
    }
}
