//! `ferrowg up`, `down` and `strip`: wg-quick(8)'s behaviour on the same files.
//!
//! Like wg-quick, every system change is an `ip`/`resolvconf`/`sysctl` command, printed as
//! `[#] command` on standard error before it runs, so a user can see (and reproduce) exactly
//! what happened. The interface itself is a ferrowg daemon started in the background.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{client, invalid_subcommand, usage, wg, CliError};
use ferrowg_conf::config::{self, Config, Dialect, Table};
use ferrowg_conf::uapi::valid_iface_name;
use ferrowg_keys::keyfile::write_private_file;
use zeroize::Zeroizing;

/// `ferrowg up`, `down` and `strip`.
pub fn command(cmd: &str, args: &[&str]) -> Result<(), CliError> {
    match (cmd, args) {
        ("strip", [target]) => strip(target),
        ("up", [target]) => up(target),
        ("down", [target]) => down(target),
        ("up" | "down", _) => Err(usage(
            "Usage: ferrowg [ up | down ] [ CONFIG_FILE | INTERFACE ]",
        )),
        _ => Err(invalid_subcommand(cmd)),
    }
}

/// `ferrowg strip CONFIG_FILE|INTERFACE`: the file without the wg-quick keys, as
/// `wg-quick strip` prints it.
fn strip(target: &str) -> Result<(), CliError> {
    let qf_path = if valid_iface_name(target) && !target.contains('.') {
        format!("/etc/wireguard/{target}.conf")
    } else {
        target.to_string()
    };
    let input = std::fs::read(&qf_path).map_err(|e| CliError::new(format!("`{qf_path}': {e}")))?;
    let stripped = config::strip(&qf_path, &input).map_err(|e| CliError::new(e.to_string()))?;
    std::io::stdout()
        .write_all(&stripped)
        .map_err(|e| CliError::new(e.to_string()))
}

/// A wg-quick configuration resolved to its interface name and path.
pub struct QuickFile {
    /// Interface name (the file's base name without `.conf`).
    pub iface: String,
    /// The file.
    pub path: PathBuf,
    /// Its contents.
    pub config: Config,
}

/// Resolves `CONFIG|IFACE` as wg-quick does: a bare name means `/etc/wireguard/NAME.conf`.
pub fn locate(arg: &str) -> Result<QuickFile, CliError> {
    let is_name = !arg.contains('/') && !arg.ends_with(".conf") && valid_iface_name(arg);
    let path = if is_name {
        PathBuf::from(format!("/etc/wireguard/{arg}.conf"))
    } else {
        PathBuf::from(arg)
    };
    let base = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".conf"))
        .ok_or_else(|| {
            CliError::new("The config file must be a valid interface name, followed by .conf")
        })?;
    if !valid_iface_name(base) {
        return Err(CliError::new(format!(
            "`{base}' is not a valid interface name"
        )));
    }
    let text = path.to_string_lossy().into_owned();
    if !path.exists() {
        return Err(CliError::new(format!("`{text}' does not exist")));
    }
    let config = wg::read_config(&text, Dialect::WgQuick)?;
    Ok(QuickFile {
        iface: base.to_string(),
        path,
        config,
    })
}

/// Runs a command like wg-quick's `cmd`: echoes it, fails on a non-zero exit.
fn cmd(line: &str) -> Result<(), CliError> {
    eprintln!("[#] {line}");
    let st = Command::new("sh")
        .arg("-c")
        .arg(line)
        .status()
        .map_err(|e| CliError::new(format!("{line}: {e}")))?;
    if st.success() {
        Ok(())
    } else {
        Err(CliError::new(format!("`{line}' failed ({st})")))
    }
}

/// Runs a command silently and returns its standard output.
fn output(line: &str) -> String {
    Command::new("sh")
        .arg("-c")
        .arg(line)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

fn hooks(list: &[String], iface: &str) -> Result<(), CliError> {
    for h in list {
        cmd(&h.replace("%i", iface))?;
    }
    Ok(())
}

fn is_v6(a: &IpAddr) -> bool {
    matches!(a, IpAddr::V6(_))
}

/// `ferrowg up`.
pub fn up(arg: &str) -> Result<(), CliError> {
    let qf = locate(arg)?;
    if let Some(warning) = world_accessible(&qf.path) {
        eprintln!("{warning}");
    }
    let iface = qf.iface.as_str();
    if Path::new(&format!("/sys/class/net/{iface}")).exists() {
        return Err(CliError::new(format!("`{iface}' already exists")));
    }
    let q = &qf.config.interface.quick;
    hooks(&q.pre_up, iface)?;
    eprintln!("[#] ferrowg daemon {iface}");
    super::daemon::spawn_detached(iface)?;
    let result = up_configure(&qf);
    if result.is_err() {
        let _ = Command::new("ip")
            .args(["link", "delete", "dev", iface])
            .status();
    }
    result
}

/// wg-quick's warning for a configuration others may read: the file (symbolic links
/// resolved) and its directory both grant others some access.
fn world_accessible(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let real = std::fs::canonicalize(path).ok()?;
    let mode = |p: &Path| std::fs::metadata(p).map(|m| m.permissions().mode());
    let (file, dir) = (mode(&real).ok()?, mode(real.parent()?).ok()?);
    (file & dir & 0o007 != 0).then(|| format!("Warning: `{}' is world accessible", real.display()))
}

fn up_configure(qf: &QuickFile) -> Result<(), CliError> {
    let iface = qf.iface.as_str();
    let q = &qf.config.interface.quick;
    eprintln!("[#] ferrowg setconf {iface} /dev/fd/63");
    wg::apply_config(iface, &qf.config, "setconf")?;
    for a in &q.addresses {
        let fam = if is_v6(&a.addr) { "-6" } else { "-4" };
        let text = match a.cidr {
            Some(c) => format!("{}/{c}", a.addr),
            None => a.addr.to_string(),
        };
        cmd(&format!("ip {fam} address add {text} dev {iface}"))?;
    }
    let mtu = match q.mtu {
        Some(m) => m,
        None => auto_mtu(qf),
    };
    cmd(&format!("ip link set mtu {mtu} up dev {iface}"))?;
    if !q.dns.is_empty() || !q.dns_search.is_empty() {
        set_dns(iface, &q.dns, &q.dns_search)?;
    }
    add_routes(qf)?;
    hooks(&q.post_up, iface)
}

/// wg-quick's MTU: the largest MTU of the devices that route to the endpoints (else of the
/// default route's device), minus 80 and at least 1280; 1420 when nothing is known.
fn auto_mtu(qf: &QuickFile) -> u32 {
    let mut best = 0u32;
    let dev_mtu = |route: &str| -> Option<u32> {
        let dev = route
            .split_whitespace()
            .skip_while(|w| *w != "dev")
            .nth(1)?;
        output(&format!("ip link show dev {dev}"))
            .split_whitespace()
            .skip_while(|w| *w != "mtu")
            .nth(1)?
            .parse()
            .ok()
    };
    for p in &qf.config.peers {
        if let Some(ferrowg_conf::addr::Endpoint::Addr(a)) = &p.endpoint {
            if let Some(m) = dev_mtu(&output(&format!("ip route get {}", a.ip()))) {
                best = best.max(m);
            }
        }
    }
    if best == 0 {
        if let Some(m) = dev_mtu(&output("ip route show default")) {
            best = m;
        }
    }
    if best == 0 {
        1420
    } else {
        best.saturating_sub(80).max(1280)
    }
}

fn resolvconf_prefix() -> String {
    std::fs::read_to_string("/etc/resolvconf/interface-order")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.trim_start().starts_with("tun"))
                .map(|_| "tun.".to_string())
        })
        .unwrap_or_default()
}

fn set_dns(iface: &str, dns: &[IpAddr], search: &[String]) -> Result<(), CliError> {
    if output("command -v resolvconf").trim().is_empty() {
        return Err(CliError::new(
            "DNS is set in the config, but resolvconf is not installed: install openresolv or \
             resolvconf, or remove the DNS line",
        ));
    }
    let mut body = String::new();
    for d in dns {
        body += &format!("nameserver {d}\n");
    }
    if !search.is_empty() {
        body += &format!("search {}\n", search.join(" "));
    }
    let line = format!("resolvconf -a {}{iface} -m 0 -x", resolvconf_prefix());
    eprintln!("[#] {line}");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(&line)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| CliError::new(format!("{line}: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(body.as_bytes());
    }
    let st = child.wait().map_err(|e| CliError::new(e.to_string()))?;
    if !st.success() {
        return Err(CliError::new(format!("`{line}' failed")));
    }
    Ok(())
}

fn table_of(qf: &QuickFile) -> Table {
    qf.config
        .interface
        .quick
        .table
        .clone()
        .unwrap_or(Table::Auto)
}

fn add_routes(qf: &QuickFile) -> Result<(), CliError> {
    let iface = qf.iface.as_str();
    let table = table_of(qf);
    if table == Table::Off {
        return Ok(());
    }
    let mut prefixes: Vec<_> = qf
        .config
        .peers
        .iter()
        .flat_map(|p| p.allowed_ips.iter().map(|a| a.masked()))
        .collect();
    // Longest prefixes first, as wg-quick sorts them.
    prefixes.sort_by_key(|p| std::cmp::Reverse(p.cidr));
    prefixes.dedup();
    for p in prefixes {
        let fam = if is_v6(&p.addr) { "-6" } else { "-4" };
        let text = format!("{}/{}", p.addr, p.cidr);
        match &table {
            Table::Id(_) | Table::Name(_) => cmd(&format!(
                "ip {fam} route add {text} dev {iface} table {table}"
            ))?,
            _ if p.cidr == 0 => add_default(iface, fam, &text)?,
            _ => {
                let existing = output(&format!("ip {fam} route show dev {iface} match {text}"));
                if existing.trim().is_empty() {
                    cmd(&format!("ip {fam} route add {text} dev {iface}"))?;
                }
            }
        }
    }
    Ok(())
}

/// wg-quick's default-route handling: route everything through a separate table selected by
/// a policy rule for packets without the interface's fwmark, so the tunnel's own UDP packets
/// (which carry the fwmark) still use the main table.
fn add_default(iface: &str, fam: &str, prefix: &str) -> Result<(), CliError> {
    let state = client::get(iface)?;
    let table = if state.fwmark != 0 {
        state.fwmark
    } else {
        let mut t = 51820u32;
        while !output(&format!("ip -4 route show table {t}"))
            .trim()
            .is_empty()
            || !output(&format!("ip -6 route show table {t}"))
                .trim()
                .is_empty()
        {
            t += 1;
        }
        eprintln!("[#] ferrowg set {iface} fwmark {t}");
        let req = ferrowg_conf::uapi::SetRequest {
            interface: vec![ferrowg_conf::uapi::InterfaceOp::FwMark(t)],
            peers: Vec::new(),
        };
        client::set(iface, &req)?;
        t
    };
    cmd(&format!(
        "ip {fam} rule add not fwmark {table} table {table}"
    ))?;
    cmd(&format!(
        "ip {fam} rule add table main suppress_prefixlength 0"
    ))?;
    cmd(&format!(
        "ip {fam} route add {prefix} dev {iface} table {table}"
    ))?;
    if fam == "-4" {
        cmd("sysctl -q net.ipv4.conf.all.src_valid_mark=1")?;
    }
    Ok(())
}

/// `ferrowg down`.
pub fn down(arg: &str) -> Result<(), CliError> {
    let qf = locate(arg)?;
    let iface = qf.iface.as_str();
    if !ferrowg_conf::uapi::socket_path(iface).exists() {
        return Err(CliError::new(format!(
            "`{iface}' is not a WireGuard interface"
        )));
    }
    let q = &qf.config.interface.quick;
    hooks(&q.pre_down, iface)?;
    if q.save_config {
        save_config(&qf)?;
    }
    let fwmark = client::get(iface).map(|s| s.fwmark).unwrap_or(0);
    cmd(&format!("ip link delete dev {iface}"))?;
    if fwmark != 0 {
        for fam in ["-4", "-6"] {
            while output(&format!("ip {fam} rule show")).contains(&format!("lookup {fwmark}")) {
                cmd(&format!("ip {fam} rule delete table {fwmark}"))?;
            }
            while output(&format!("ip {fam} rule show"))
                .contains("from all lookup main suppress_prefixlength 0")
            {
                cmd(&format!(
                    "ip {fam} rule delete table main suppress_prefixlength 0"
                ))?;
            }
        }
    }
    if !q.dns.is_empty() || !q.dns_search.is_empty() {
        let _ = cmd(&format!("resolvconf -d {}{iface} -f", resolvconf_prefix()));
    }
    // Wait (bounded) for the daemon to notice and remove its socket.
    for _ in 0..100 {
        if !ferrowg_conf::uapi::socket_path(iface).exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    hooks(&q.post_down, iface)
}

/// Writes the running configuration back to the file, keeping the wg-quick keys.
fn save_config(qf: &QuickFile) -> Result<(), CliError> {
    let iface = qf.iface.as_str();
    let state = client::get(iface)?;
    let mut text = String::from("[Interface]\n");
    let addrs = output(&format!("ip -all address show dev {iface}"));
    for line in addrs.lines() {
        let mut w = line.split_whitespace();
        if let (Some(kind), Some(addr)) = (w.next(), w.next()) {
            if kind == "inet" || kind == "inet6" {
                text += &format!("Address = {addr}\n");
            }
        }
    }
    let q = &qf.config.interface.quick;
    if !q.dns.is_empty() || !q.dns_search.is_empty() {
        let mut all: Vec<String> = q.dns.iter().map(|d| d.to_string()).collect();
        all.extend(q.dns_search.iter().cloned());
        text += &format!("DNS = {}\n", all.join(", "));
    }
    if let Some(m) = q.mtu {
        text += &format!("MTU = {m}\n");
    }
    if let Some(t) = &q.table {
        text += &format!("Table = {t}\n");
    }
    // wg-quick's order: SaveConfig before the hooks.
    text += "SaveConfig = true\n";
    for (k, list) in q.hooks() {
        for c in list {
            text += &format!("{k} = {c}\n");
        }
    }
    // With a token key, `PrivateKey = pkcs11:…` (ferrowg's showconf keeps it). The key (or
    // the URI with its PIN) is appended into room reserved first, so no copy is left behind
    // by a reallocation, and both buffers are wiped.
    let conf = Zeroizing::new(super::wg::showconf(iface, &state, Some(&qf.config)));
    let conf = conf.strip_prefix("[Interface]\n").unwrap_or(&conf);
    let mut all = Zeroizing::new(String::with_capacity(text.len() + conf.len()));
    all.push_str(&text);
    all.push_str(conf);
    eprintln!("[#] saving configuration to {}", qf.path.display());
    Ok(write_private_file(&qf.path, all.as_bytes())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn world_accessible_configurations_are_flagged_as_wg_quick_does() {
        let dir = std::env::temp_dir().join(format!("ferrowg-quick-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let file = dir.join("wg0.conf");
        std::fs::write(&file, "[Interface]\n").unwrap();
        let set = |p: &Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
        };
        set(&dir, 0o755);
        set(&file, 0o644);
        let real = std::fs::canonicalize(&file).unwrap();
        assert_eq!(
            world_accessible(&file),
            Some(format!("Warning: `{}' is world accessible", real.display()))
        );
        set(&file, 0o600);
        assert_eq!(world_accessible(&file), None);
        // wg-quick's rule: others need some access to the file and to its directory.
        set(&file, 0o644);
        set(&dir, 0o700);
        assert_eq!(world_accessible(&file), None);
        set(&dir, 0o755);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
