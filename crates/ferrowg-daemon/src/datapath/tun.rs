//! Opening the interface's TUN device: with a virtio-net header and TCP/UDP segmentation
//! offloads when the kernel and the [`Tuning`](crate::Tuning) allow, plain packets otherwise.

use ferrowg_sys::{Offload, Tun, TunConfig};

use crate::error::{os, DaemonError, OsCause};

/// Transmit queue length given to the TUN device (packets).
pub const TUN_TX_QUEUE_LEN: u32 = 4096;

/// An open TUN device and the offloads in force on it.
#[derive(Debug)]
pub struct OpenTun {
    /// The device.
    pub tun: Tun,
    /// What the kernel accepted (all off for a plain device).
    pub offload: Offload,
}

/// Opens TUN device `iface`. With `offload`, it gets a virtio-net header and TCP/UDP
/// segmentation offloads, so that the kernel hands over 64 KiB super-packets; if the kernel
/// refuses, or without `offload`, it is a plain device.
pub fn open_tun(iface: &str, offload: bool) -> Result<OpenTun, DaemonError> {
    let opened = open_device(iface, offload).map_err(|e| match OsCause::of(&e) {
        OsCause::Privilege => DaemonError::Privilege {
            iface: iface.to_string(),
            source: e,
        },
        OsCause::NoDevice => DaemonError::NoTun(e),
        OsCause::Other => os(format!("cannot create TUN device {iface}"), e),
    })?;
    // The queue between the kernel and our reader: at the default 500 packets, a burst from a
    // fast UDP sender overflows it (tx_dropped) whenever the reading thread waits a scheduler
    // tick for a CPU. It holds a few tens of milliseconds of a saturated link's full-size
    // packets (TCP never queues that much: TCP small queues bound each socket).
    if let Err(e) = ferrowg_sys::netdev::set_tx_queue_len(iface, TUN_TX_QUEUE_LEN) {
        log::warn!("{iface}: cannot set the transmit queue length: {e}");
    }
    Ok(opened)
}

fn open_device(iface: &str, offload: bool) -> ferrowg_sys::Result<OpenTun> {
    let plain = || {
        Ok(OpenTun {
            tun: Tun::open(&TunConfig::new(iface))?,
            offload: Offload::default(),
        })
    };
    if !offload {
        return plain();
    }
    let offloaded = Tun::open(&TunConfig::new(iface).vnet_hdr(true)).and_then(|tun| {
        tun.set_offload(Offload::ALL)
            .map(|offload| OpenTun { tun, offload })
    });
    match offloaded {
        Ok(opened) => Ok(opened),
        // Permission and missing-device errors are the same either way: report them.
        Err(e) if OsCause::of(&e) != OsCause::Other => Err(e),
        Err(e) => {
            log::warn!("{iface}: TUN offloads unavailable ({e}); using plain packets");
            plain()
        }
    }
}
