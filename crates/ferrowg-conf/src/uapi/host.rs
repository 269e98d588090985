//! Host-name endpoints on the UAPI: the extension key that carries the name a peer's endpoint
//! was resolved from, so that the daemon can resolve it again when handshakes fail, and the
//! `get=1` line by which a ferrowg daemon announces the extensions it understands. The command
//! line sends the extension only to a daemon that announces it: wireguard-go answers an
//! unknown key with EINVAL after applying the lines before it.

use super::{PeerOp, SetRequest};

/// The UAPI peer key (in `set=1`, and in the `get=1` reply after `endpoint=`) that carries the
/// host name and port a peer's endpoint was given as (`ferrowg_endpoint_host=vpn.example:51820`),
/// at most [`MAX_HOST_NAME`](crate::addr::MAX_HOST_NAME) bytes of name. In a request it follows
/// the `endpoint=` line it belongs to; an `endpoint=` line alone forgets the name. wg(8)
/// ignores unknown keys in `get` replies.
pub const UAPI_KEY_ENDPOINT_HOST: &str = "ferrowg_endpoint_host";
/// The `get=1` interface key whose value lists, comma-separated, the ferrowg extensions of
/// `set=1` that the daemon understands ([`FEATURE_ENDPOINT_HOST`],
/// [`FEATURE_KEEP_SESSIONS`](super::FEATURE_KEEP_SESSIONS)).
pub const UAPI_KEY_FEATURES: &str = "ferrowg_features";
/// The feature name of [`UAPI_KEY_ENDPOINT_HOST`] in [`UAPI_KEY_FEATURES`].
pub const FEATURE_ENDPOINT_HOST: &str = "endpoint_host";

/// Whether the raw `get=1` reply `reply` announces `feature` in its [`UAPI_KEY_FEATURES`] line
/// (an interface line, so only lines before the first peer count).
pub fn announces(reply: &[u8], feature: &str) -> bool {
    let prefix = UAPI_KEY_FEATURES.as_bytes();
    reply
        .split(|&b| b == b'\n')
        .take_while(|line| !line.is_empty() && !line.starts_with(b"public_key="))
        .filter_map(|line| line.strip_prefix(prefix)?.strip_prefix(b"="))
        .any(|list| list.split(|&b| b == b',').any(|f| f == feature.as_bytes()))
}

impl SetRequest {
    /// Whether any peer operation is a [`PeerOp::EndpointHost`].
    pub fn has_endpoint_hosts(&self) -> bool {
        self.peers
            .iter()
            .any(|p| p.ops.iter().any(|o| matches!(o, PeerOp::EndpointHost(_))))
    }

    /// Drops every [`PeerOp::EndpointHost`]: what is left is the request wg(8) would send.
    pub fn remove_endpoint_hosts(&mut self) {
        for peer in &mut self.peers {
            peer.ops.retain(|o| !matches!(o, PeerOp::EndpointHost(_)));
        }
    }
}

#[cfg(test)]
mod tests {
    //! How host names travel through the UAPI.
    use super::*;
    use crate::addr::{HostEndpoint, MAX_HOST_NAME};
    use crate::uapi::reply::{parse_get_response, write_get_response_ext};
    use crate::uapi::request::{parse_set, SetErrorKind};
    use crate::uapi::{DeviceState, Errno, Limits, PeerSet, PeerState};
    use ferrowg_keys::key::PublicKey;

    const PK1: &str = "1111111111111111111111111111111111111111111111111111111111111111";

    fn set(body: &str) -> Result<SetRequest, crate::uapi::request::SetError> {
        parse_set(body.as_bytes(), &Limits::default())
    }

    #[test]
    fn set_carries_the_name_after_the_endpoint_and_writes_it_back() {
        let body = format!(
            "public_key={PK1}\nendpoint=10.0.0.1:51820\n{UAPI_KEY_ENDPOINT_HOST}=vpn.example.test:51820\n"
        );
        let req = set(&body).unwrap();
        let host = HostEndpoint::parse("vpn.example.test:51820").unwrap();
        assert_eq!(
            req.peers[0].ops,
            vec![
                PeerOp::Endpoint("10.0.0.1:51820".parse().unwrap()),
                PeerOp::EndpointHost(host),
            ]
        );
        let text = req.to_uapi();
        assert!(text.ends_with("\nferrowg_endpoint_host=vpn.example.test:51820\n\n"));
        assert_eq!(set(text.strip_prefix("set=1\n").unwrap()).unwrap(), req);
        assert!(req.has_endpoint_hosts());
        let mut plain = req.clone();
        plain.remove_endpoint_hosts();
        assert!(!plain.has_endpoint_hosts());
        assert!(!plain.to_uapi().contains("ferrowg_"), "{}", plain.to_uapi());
    }

    #[test]
    fn bad_names_are_einval() {
        let long = format!("{}.test", "a".repeat(MAX_HOST_NAME));
        for value in [
            "10.0.0.1:5".to_string(),
            "[fd00::1]:5".into(),
            "name".into(),
            "name:65536".into(),
            "a b:5".into(),
            String::new(),
            format!("{long}:5"),
        ] {
            let e = set(&format!(
                "public_key={PK1}\n{UAPI_KEY_ENDPOINT_HOST}={value}\n"
            ))
            .unwrap_err();
            assert_eq!(e.errno(), Errno::EINVAL, "{value:?}");
            assert!(
                matches!(e.kind, SetErrorKind::InvalidValue { .. }),
                "{value:?}"
            );
        }
        // Only a peer key.
        let e = set(&format!("{UAPI_KEY_ENDPOINT_HOST}=x.test:5\n")).unwrap_err();
        assert_eq!(e.errno(), Errno::EINVAL);
    }

    #[test]
    fn get_reply_has_the_name_after_the_endpoint_and_the_features_line() {
        let mut peer = PeerState::new(PublicKey::from_bytes([1; 32]));
        peer.endpoint = Some("10.0.0.1:51820".parse().unwrap());
        peer.endpoint_host = HostEndpoint::parse("vpn.example.test:51820");
        let state = DeviceState {
            listen_port: 5,
            peers: vec![peer, PeerState::new(PublicKey::from_bytes([2; 32]))],
            ..DeviceState::default()
        };
        let ext = [(UAPI_KEY_FEATURES, FEATURE_ENDPOINT_HOST.to_string())];
        let text = write_get_response_ext(&state, &ext);
        assert!(text.contains(
            "endpoint=10.0.0.1:51820\nferrowg_endpoint_host=vpn.example.test:51820\n\
             last_handshake_time_sec=0\n"
        ));
        assert_eq!(text.matches(UAPI_KEY_ENDPOINT_HOST).count(), 1, "{text}");
        assert_eq!(parse_get_response(text.as_bytes()).unwrap(), state);
        assert!(announces(text.as_bytes(), FEATURE_ENDPOINT_HOST));
        assert!(!announces(text.as_bytes(), "endpoint"));
        // A malformed name in a reply is refused like any malformed known key.
        let bad = text.replace("vpn.example.test:51820", "10.9.9.9:1");
        assert!(parse_get_response(bad.as_bytes()).is_err());
    }

    #[test]
    fn only_the_interface_part_announces() {
        let yes = b"listen_port=1\nferrowg_features=x,endpoint_host\nerrno=0\n\n";
        assert!(announces(yes, FEATURE_ENDPOINT_HOST));
        let no = b"listen_port=1\nerrno=0\n\n";
        assert!(!announces(no, FEATURE_ENDPOINT_HOST));
        let late = format!("public_key={PK1}\nferrowg_features=endpoint_host\nerrno=0\n\n");
        assert!(!announces(late.as_bytes(), FEATURE_ENDPOINT_HOST));
        assert!(!announces(
            b"ferrowg_features=endpoint_hostx\n\n",
            FEATURE_ENDPOINT_HOST
        ));
        let unused = PeerSet {
            public_key: PublicKey::from_bytes([1; 32]),
            ops: Vec::new(),
        };
        assert!(!SetRequest {
            interface: Vec::new(),
            peers: vec![unused]
        }
        .has_endpoint_hosts());
    }
}
