//! Network interfaces by name: index, MTU, transmit queue length and up/down, through `ioctl`s
//! on a control socket (`SIOCGIFINDEX`, `SIOCGIFMTU`/`SIOCSIFMTU`,
//! `SIOCGIFTXQLEN`/`SIOCSIFTXQLEN`, `SIOCGIFFLAGS`/`SIOCSIFFLAGS`), plus the `ifreq` name
//! handling that the TUN code shares.
//!
//! The ioctls act in the network namespace of the calling thread (the control socket is created
//! there). That is where a TUN device lives unless it was moved with `ip link set netns`.
//! Addresses and routes are not set here: that is netlink's job, and the daemon (like
//! `wg-quick`) runs `ip` for it.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::error::{Error, Result};
use crate::fd::cvt;

/// The longest interface name Linux accepts, in bytes (`IFNAMSIZ - 1`).
pub const MAX_NAME_LEN: usize = libc::IFNAMSIZ - 1;

/// Checks `name` the way the kernel's `dev_valid_name()` does, so that a bad name is reported
/// as such instead of as an opaque `EINVAL`. `%d` (for "first free number") is allowed.
pub(crate) fn validate_name(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        Some("empty")
    } else if name.len() > MAX_NAME_LEN {
        Some("longer than 15 bytes")
    } else if name == "." || name == ".." {
        Some("`.` and `..` are reserved")
    } else if name
        .bytes()
        .any(|b| b == 0 || b == b'/' || b == b':' || b.is_ascii_whitespace())
    {
        Some("contains NUL, `/`, `:` or whitespace")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidInterfaceName {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// A zeroed `ifreq` carrying `name`, which must have passed [`validate_name`].
pub(crate) fn ifreq_for(name: &str) -> Result<libc::ifreq> {
    validate_name(name)?;
    // SAFETY: `ifreq` is a C struct of integers, byte arrays, pointers and a union of such; the
    // all-zero bit pattern is a valid value of it (an empty name and a zero payload).
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    // validate_name() bounded the length to IFNAMSIZ - 1, so the NUL terminator stays in place.
    for (dst, src) in ifr.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    Ok(ifr)
}

/// The name the kernel left in `ifr.ifr_name` (e.g. after resolving `tun%d`).
pub(crate) fn name_of(ifr: &libc::ifreq) -> String {
    let bytes: Vec<u8> = ifr
        .ifr_name
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A datagram socket to issue interface ioctls through; closed when dropped.
fn control_socket() -> Result<OwnedFd> {
    // SAFETY: plain socket(2) call with constant arguments; it allocates nothing we must free
    // except the returned descriptor, which is owned right below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    let fd = cvt(fd).map_err(|e| Error::os("socket(AF_INET, SOCK_DGRAM)", e))?;
    // SAFETY: `fd` was just returned by socket(2), is valid and owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Issues the interface ioctl `request` for `ifr` on a fresh control socket.
fn ifreq_ioctl(request: libc::c_ulong, op: &'static str, ifr: &mut libc::ifreq) -> Result<()> {
    let sock = control_socket()?;
    // SAFETY: every SIOC[GS]IF* request used in this module takes a pointer to a `struct ifreq`,
    // which `ifr` is (valid and writable for the call, name NUL-terminated).
    let ret = unsafe { libc::ioctl(sock.as_raw_fd(), request as _, ifr as *mut libc::ifreq) };
    cvt(ret).map(drop).map_err(|e| Error::os(op, e))
}

/// The interface index of `name` (`SIOCGIFINDEX`); fails with `ENODEV` if there is none.
pub fn index(name: &str) -> Result<u32> {
    let mut ifr = ifreq_for(name)?;
    ifreq_ioctl(libc::SIOCGIFINDEX, "ioctl(SIOCGIFINDEX)", &mut ifr)?;
    // SAFETY: SIOCGIFINDEX filled the `ifru_ifindex` member of the union.
    let index = unsafe { ifr.ifr_ifru.ifru_ifindex };
    // Interface indices are positive.
    Ok(index as u32)
}

/// True if an interface called `name` exists in this network namespace.
pub fn exists(name: &str) -> Result<bool> {
    match index(name) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The MTU of `name` (`SIOCGIFMTU`).
pub fn mtu(name: &str) -> Result<u32> {
    let mut ifr = ifreq_for(name)?;
    ifreq_ioctl(libc::SIOCGIFMTU, "ioctl(SIOCGIFMTU)", &mut ifr)?;
    // SAFETY: SIOCGIFMTU filled the `ifru_mtu` member of the union.
    let mtu = unsafe { ifr.ifr_ifru.ifru_mtu };
    // An MTU is never negative.
    Ok(mtu as u32)
}

/// Sets the MTU of `name` (`SIOCSIFMTU`; needs `CAP_NET_ADMIN`). The kernel checks the range
/// (for TUN: 68 to 65535) and fails with `EINVAL` outside it.
pub fn set_mtu(name: &str, mtu: u32) -> Result<()> {
    let mut ifr = ifreq_for(name)?;
    // Values above i32::MAX are out of every device's range; let the kernel say EINVAL.
    ifr.ifr_ifru.ifru_mtu = i32::try_from(mtu).unwrap_or(-1);
    ifreq_ioctl(libc::SIOCSIFMTU, "ioctl(SIOCSIFMTU)", &mut ifr)
}

/// The transmit queue length of `name` (`SIOCGIFTXQLEN`): for a TUN device, how many packets
/// the kernel holds for the reader before it drops (`tx_dropped`).
pub fn tx_queue_len(name: &str) -> Result<u32> {
    let mut ifr = ifreq_for(name)?;
    ifreq_ioctl(libc::SIOCGIFTXQLEN, "ioctl(SIOCGIFTXQLEN)", &mut ifr)?;
    // SAFETY: SIOCGIFTXQLEN filled `ifr_qlen`, the int at the start of the union, which
    // libc names `ifru_metric` (all int members share offset 0).
    let len = unsafe { ifr.ifr_ifru.ifru_metric };
    Ok(len.max(0) as u32)
}

/// Sets the transmit queue length of `name` (`SIOCSIFTXQLEN`; needs `CAP_NET_ADMIN`).
pub fn set_tx_queue_len(name: &str, len: u32) -> Result<()> {
    let mut ifr = ifreq_for(name)?;
    // `ifr_qlen` is the int at the start of the union (see tx_queue_len).
    ifr.ifr_ifru.ifru_metric = i32::try_from(len).unwrap_or(i32::MAX);
    ifreq_ioctl(libc::SIOCSIFTXQLEN, "ioctl(SIOCSIFTXQLEN)", &mut ifr)
}

/// Brings `name` up or down (`SIOCSIFFLAGS` with `IFF_UP`; needs `CAP_NET_ADMIN`).
pub fn set_up(name: &str, up: bool) -> Result<()> {
    let mut ifr = ifreq_for(name)?;
    ifreq_ioctl(libc::SIOCGIFFLAGS, "ioctl(SIOCGIFFLAGS)", &mut ifr)?;
    // SAFETY: SIOCGIFFLAGS filled the `ifru_flags` member of the union.
    let flags = unsafe { ifr.ifr_ifru.ifru_flags };
    // IFF_UP is 0x1, which fits in the c_short flags field.
    let up_flag = libc::IFF_UP as libc::c_short;
    ifr.ifr_ifru.ifru_flags = if up {
        flags | up_flag
    } else {
        flags & !up_flag
    };
    ifreq_ioctl(libc::SIOCSIFFLAGS, "ioctl(SIOCSIFFLAGS)", &mut ifr)
}

/// True if `name` is administratively up (`IFF_UP`).
pub fn is_up(name: &str) -> Result<bool> {
    let mut ifr = ifreq_for(name)?;
    ifreq_ioctl(libc::SIOCGIFFLAGS, "ioctl(SIOCGIFFLAGS)", &mut ifr)?;
    // SAFETY: SIOCGIFFLAGS filled the `ifru_flags` member of the union.
    let flags = unsafe { ifr.ifr_ifru.ifru_flags };
    Ok(flags & libc::IFF_UP as libc::c_short != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_like_the_kernel_does() {
        for good in ["wg0", "tun%d", "a", "fwg-123456789ab"] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a:b",
            "a b",
            "tab\t",
            "nul\0",
            "sixteen_bytes_xx",
        ] {
            let err = validate_name(bad).unwrap_err();
            assert!(
                matches!(err, Error::InvalidInterfaceName { .. }),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn ifreq_name_round_trips() {
        let ifr = ifreq_for("fwg%d").unwrap();
        assert_eq!(name_of(&ifr), "fwg%d");
        let ifr = ifreq_for("fifteen_bytes_x").unwrap();
        assert_eq!(ifr.ifr_name[MAX_NAME_LEN], 0);
        assert_eq!(name_of(&ifr), "fifteen_bytes_x");
    }

    #[test]
    fn loopback_is_visible_without_privileges() {
        assert_eq!(index("lo").unwrap(), 1);
        assert!(exists("lo").unwrap());
        assert!(mtu("lo").unwrap() >= 1280);
        assert!(!exists("fwg-nonexistent").unwrap());
        let err = mtu("fwg-nonexistent").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENODEV));
    }
}
