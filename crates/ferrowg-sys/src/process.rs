//! Facts about the running process that the daemon checks before touching the network:
//! whether it runs as root and whether it holds the capabilities it needs. Nothing here forks,
//! daemonizes or handles signals (the daemon uses `signal-hook` for those).

use std::io;

/// `CAP_NET_ADMIN`: create TUN devices, set MTUs, `SO_MARK`, `SO_RCVBUFFORCE`.
pub const CAP_NET_ADMIN: u32 = 12;
/// `CAP_NET_BIND_SERVICE`: bind UDP ports below 1024.
pub const CAP_NET_BIND_SERVICE: u32 = 10;

/// True if the effective user id is 0.
pub fn is_root() -> bool {
    // SAFETY: geteuid(2) takes no arguments, always succeeds and touches no memory of ours.
    unsafe { libc::geteuid() == 0 }
}

/// True if capability number `cap` (e.g. [`CAP_NET_ADMIN`]) is in the process's effective set,
/// read from `CapEff` in `/proc/self/status`. This is the right check for a daemon started by
/// systemd with `AmbientCapabilities=` instead of as root.
pub fn has_capability(cap: u32) -> io::Result<bool> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let mask = parse_cap_eff(&status).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "no CapEff line in /proc/self/status",
        )
    })?;
    Ok(cap < 64 && mask & (1u64 << cap) != 0)
}

/// The `CapEff:` bit mask of a `/proc/<pid>/status` text.
fn parse_cap_eff(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(line.trim(), 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_eff_is_parsed() {
        let status = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t0000000000001000\nCapBnd:\t1\n";
        assert_eq!(parse_cap_eff(status), Some(1 << CAP_NET_ADMIN));
        assert_eq!(parse_cap_eff("Name:\tx\n"), None);
    }

    #[test]
    fn root_has_net_admin() {
        // Root without CAP_NET_ADMIN exists (a capability-dropping container), the reverse
        // needs file capabilities; only the first direction is a safe assertion.
        if !is_root() {
            return;
        }
        let has = has_capability(CAP_NET_ADMIN).unwrap();
        let ours = parse_cap_eff(&std::fs::read_to_string("/proc/self/status").unwrap());
        assert_eq!(has, ours.unwrap() & (1 << CAP_NET_ADMIN) != 0);
    }
}
