//! TLS for the hub's API: the self-signed certificate `init` makes, the pin that enrolment
//! tokens and the admin command line carry instead of a certificate authority, the server's
//! rustls configuration, and a client configuration that accepts exactly the pinned
//! certificate.
//!
//! The pin is `sha256:` followed by the SHA-256 of the certificate's DER encoding in unpadded
//! base64url (43 characters), as in RFC 7469's pins but of the whole certificate: the hub's
//! certificate is self-signed and never renewed by a CA, so pinning the certificate is as
//! strong as pinning its key and simpler to check. The client compares in constant time and
//! still verifies the handshake signature with the certificate's key, so only the holder of
//! the pinned certificate's private key can complete a connection. Host names are not checked:
//! the pin alone names the server. The certificate is valid from 1975 to 4096 (rcgen's
//! default): a pinned certificate has no expiry cliff.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{aws_lc_rs, verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, ServerConfig, SignatureScheme,
};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// The text before the digest in a pin.
pub const PIN_PREFIX: &str = "sha256:";

/// The ALPN protocol the API speaks (HTTP/1.1 only).
const ALPN: &[u8] = b"http/1.1";

/// Why TLS material could not be made or loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// Generating the certificate failed.
    #[error("generating the TLS certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// A certificate or key file could not be read or holds no usable PEM item.
    #[error("{path}: {what}")]
    Pem {
        /// The file.
        path: String,
        /// What is wrong.
        what: String,
    },
    /// rustls refused the configuration (a key that does not match the certificate).
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// The SHA-256 digest of a certificate's DER encoding. `Display` and `FromStr` use the form
/// `sha256:BASE64URL` (43 characters, no padding).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pin([u8; 32]);

/// Why a pin did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "a TLS pin is `sha256:` followed by 43 base64url characters (the SHA-256 of the certificate)"
)]
pub struct PinError;

impl Pin {
    /// The pin of the certificate whose DER encoding is `cert_der`.
    pub fn of(cert_der: &[u8]) -> Pin {
        Pin(Sha256::digest(cert_der).into())
    }

    /// Whether `cert_der` is the pinned certificate, compared in constant time.
    pub fn matches(&self, cert_der: &[u8]) -> bool {
        let digest: [u8; 32] = Sha256::digest(cert_der).into();
        digest.ct_eq(&self.0).into()
    }

    /// The digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// The pin of `cert_der` as text: `sha256:` + unpadded base64url of its SHA-256.
pub fn pin(cert_der: &[u8]) -> String {
    Pin::of(cert_der).to_string()
}

impl fmt::Display for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PIN_PREFIX}{}", URL_SAFE_NO_PAD.encode(self.0))
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pin({self})")
    }
}

impl FromStr for Pin {
    type Err = PinError;

    fn from_str(text: &str) -> Result<Pin, PinError> {
        let b64 = text.strip_prefix(PIN_PREFIX).ok_or(PinError)?;
        if b64.len() != 43 {
            return Err(PinError);
        }
        let bytes = URL_SAFE_NO_PAD.decode(b64).map_err(|_| PinError)?;
        let digest: [u8; 32] = bytes.try_into().map_err(|_| PinError)?;
        Ok(Pin(digest))
    }
}

/// A new self-signed certificate (ECDSA P-256) for the names and addresses in `sans` (each an
/// IP address or a DNS name); returns the certificate's PEM and DER and the key's PEM.
pub fn generate(sans: &[String]) -> Result<(String, Vec<u8>, Zeroizing<String>), TlsError> {
    let mut params = rcgen::CertificateParams::new(sans.to_vec())?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "ferrowg hub");
    let key = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    let key_pem = Zeroizing::new(key.serialize_pem());
    Ok((cert.pem(), cert.der().to_vec(), key_pem))
}

/// The names a new certificate is issued for: `localhost`, 127.0.0.1, ::1, then `extra` (the
/// endpoint's host, the API's listening address, `--api-san` values), without duplicates and
/// without unspecified addresses.
pub fn subject_alt_names<'a>(extra: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    for name in extra {
        let name = name.trim_start_matches('[').trim_end_matches(']');
        let unspecified = name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_unspecified());
        if !name.is_empty() && !unspecified && !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
    }
    names
}

/// The crypto provider of every TLS configuration here: aws-lc-rs.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(aws_lc_rs::default_provider())
}

/// The first certificate in the PEM file at `path`, as DER.
pub fn read_cert(path: &Path) -> Result<CertificateDer<'static>, TlsError> {
    CertificateDer::from_pem_file(path).map_err(|e| pem_error(path, e))
}

fn pem_error(path: &Path, e: rustls::pki_types::pem::Error) -> TlsError {
    TlsError::Pem {
        path: path.display().to_string(),
        what: e.to_string(),
    }
}

/// The server configuration from the certificate and key files `init` wrote (TLS 1.2 and 1.3,
/// HTTP/1.1 by ALPN, no client certificates).
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = vec![read_cert(cert)?];
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| pem_error(key, e))?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(Arc::new(config))
}

/// A client configuration that accepts exactly the certificate `pin` names.
pub fn client_config(pin: Pin) -> Result<ClientConfig, TlsError> {
    let provider = provider();
    let verifier = Arc::new(PinnedVerifier {
        pin,
        provider: Arc::clone(&provider),
    });
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(config)
}

/// The error a connection to a server whose certificate is not the pinned one fails with.
#[derive(Debug, thiserror::Error)]
#[error("the server's TLS certificate is not the pinned one (pin {expected}, server's {found})")]
pub struct PinMismatch {
    /// The pin the client expected.
    pub expected: Pin,
    /// The pin of the certificate the server presented.
    pub found: Pin,
}

/// Accepts a server certificate if and only if its SHA-256 equals the pin.
#[derive(Debug)]
struct PinnedVerifier {
    pin: Pin,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.pin.matches(end_entity) {
            return Ok(ServerCertVerified::assertion());
        }
        let mismatch = PinMismatch {
            expected: self.pin,
            found: Pin::of(end_entity),
        };
        Err(rustls::Error::InvalidCertificate(CertificateError::Other(
            rustls::OtherError(Arc::new(mismatch)),
        )))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.provider.signature_verification_algorithms;
        verify_tls12_signature(message, cert, dss, algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.provider.signature_verification_algorithms;
        verify_tls13_signature(message, cert, dss, algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_round_trips_and_matches_only_its_certificate() {
        let (_, der, _) = generate(&subject_alt_names(["hub.example.com"])).unwrap();
        let (_, other, _) = generate(&subject_alt_names([])).unwrap();
        let text = pin(&der);
        assert!(text.starts_with("sha256:") && text.len() == 7 + 43);
        let p: Pin = text.parse().unwrap();
        assert!(p.matches(&der));
        assert!(!p.matches(&other));
        assert_eq!(p.to_string(), text);
        for bad in [
            "",
            "sha256:",
            &text[..text.len() - 1],
            &text[1..],
            "sha1:abc",
        ] {
            assert_eq!(bad.parse::<Pin>(), Err(PinError), "{bad}");
        }
    }

    #[test]
    fn sans_skip_duplicates_and_unspecified() {
        let names = subject_alt_names(["localhost", "0.0.0.0", "[::]", "10.0.0.1", "[fd00::1]"]);
        assert_eq!(
            names,
            ["localhost", "127.0.0.1", "::1", "10.0.0.1", "fd00::1"]
        );
    }
}
