//! Prometheus metrics of a ferrowg interface, and the `/metrics` listener that `ferrowg
//! daemon --metrics` and `ferrowg hub serve` share.
//!
//! - [`interface::InterfaceCollector`] reads a running interface at every scrape
//!   ([`ferrowg_daemon::Handle::observe`]): per-peer bytes and latest handshake in the names
//!   prometheus_wireguard_exporter made familiar (`wireguard_sent_bytes_total`,
//!   `wireguard_received_bytes_total`, `wireguard_latest_handshake_seconds`, labelled
//!   `interface`, `public_key`, `allowed_ips` and, where known, `friendly_name`), handshakes
//!   initiated, completed and failed, cookies sent, and packets dropped by reason.
//! - [`serve`] answers `GET /metrics` in the OpenMetrics text format, which Prometheus reads.
//!
//! Nothing secret is exported: public keys, addresses and counters only.

pub mod interface;
pub mod serve;

pub use prometheus_client;
