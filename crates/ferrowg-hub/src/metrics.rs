//! The hub's metrics, on their own listener (`hub serve --metrics`, loopback by default): the
//! hub interface's metrics ([`ferrowg_metrics::interface`], peers named after their devices),
//! plus enrolments and the devices known and online.

use std::fmt;
use std::sync::Arc;

use ferrowg_daemon::Handle;
use ferrowg_hub_dataplane::View;
use ferrowg_metrics::interface::{InterfaceCollector, PeerNames};
use ferrowg_metrics::prometheus_client::collector::Collector;
use ferrowg_metrics::prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use ferrowg_metrics::prometheus_client::metrics::gauge::ConstGauge;
use ferrowg_metrics::prometheus_client::metrics::MetricType;
use ferrowg_metrics::prometheus_client::registry::Registry;

use crate::api::ApiCounters;
use crate::heartbeat::interface_counts;

/// The hub's metrics port when `--metrics` is not given (prometheus_wireguard_exporter's).
pub const DEFAULT_METRICS: &str = "127.0.0.1:9586";

/// Device names by public key, from the forwarding directory.
struct DeviceNames(Arc<View>);

impl PeerNames for DeviceNames {
    fn name(&self, key: &[u8; 32]) -> Option<String> {
        self.0.directory().get(key).map(|m| m.name.clone())
    }
}

/// Devices known (pending or active) and online, read at every scrape.
struct Devices {
    handle: Handle,
    view: Arc<View>,
}

impl fmt::Debug for Devices {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Devices").finish_non_exhaustive()
    }
}

impl Collector for Devices {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let online = interface_counts(&self.handle, &self.view).devices_online;
        let directory = self.view.directory();
        let gauges = [
            (
                "ferrowg_hub_devices_online",
                "Devices whose latest handshake is at most 180 s old",
                usize::try_from(online).unwrap_or(usize::MAX),
            ),
            (
                "ferrowg_hub_devices",
                "Devices that are not revoked (pending or active)",
                directory.devices(),
            ),
        ];
        for (name, help, value) in gauges {
            let family = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
            ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX)).encode(family)?;
        }
        Ok(())
    }
}

/// The registry `hub serve` exposes for interface `iface`.
pub fn registry(iface: &str, handle: &Handle, view: &Arc<View>, api: &ApiCounters) -> Registry {
    let mut r = Registry::default();
    let names: Arc<dyn PeerNames> = Arc::new(DeviceNames(view.clone()));
    let interface = InterfaceCollector::new(iface, handle.clone(), Some(names));
    r.register_collector(Box::new(interface));
    r.register_collector(Box::new(Devices {
        handle: handle.clone(),
        view: view.clone(),
    }));
    r.register(
        "ferrowg_hub_enrolments",
        "Devices enrolled with a token since the hub started",
        api.enrolments.clone(),
    );
    r
}
