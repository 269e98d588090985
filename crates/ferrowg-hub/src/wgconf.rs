//! The wg-quick configuration the hub hands out for a device that made its own key (`hub device
//! add`): everything but `PrivateKey`, which stays on the device; a comment line says where it
//! goes.

use crate::api::types::EnrollResponse;

/// The wg-quick text for the device `r` describes.
pub fn render(r: &EnrollResponse) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "# ferrowg hub: device {} ({} until its first handshake).\n",
        r.device,
        match r.state {
            crate::api::types::DeviceState::Pending => "pending",
            crate::api::types::DeviceState::Active => "active",
            crate::api::types::DeviceState::Revoked => "revoked",
        }
    ));
    s.push_str("[Interface]\n");
    s.push_str(
        "# PrivateKey = <the device's own private key: the content of its key file, or with\n\
         #              ferrowg a pkcs11: URI; the hub never sees it>\n",
    );
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
        let text = render(&r);
        assert!(text.contains("Address = 10.64.0.2/32, fd64::2/128\n"));
        assert!(text.contains("AllowedIPs = 10.64.0.0/16, fd64::/64\n"));
        assert!(text.contains("Endpoint = hub.example.com:51820\n"));
        assert!(!text.lines().any(|l| l.starts_with("PrivateKey")));
        assert!(text.contains("# PrivateKey = "));
    }
}
