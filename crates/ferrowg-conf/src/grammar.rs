//! The scalar values of wg's grammar: numbers, ports, fwmarks, keepalive intervals, and wg's
//! white space. Each rule is written once here and used by every surface that follows it: wg(8)
//! and wg-quick(8) files ([`crate::config`]), the arguments of `wg set`, and both ends of the
//! UAPI socket ([`crate::uapi`]). Addresses, prefixes and endpoints are in [`crate::addr`],
//! which builds on these.
//!
//! Where the surfaces differ by their specification, each rule has its own function:
//!
//! | value | wg(8) files and `wg set` | UAPI (wireguard-go) |
//! |---|---|---|
//! | numbers | [`decimal`] (`strtoul` after a digit check) | [`decimal`] (`strconv.ParseUint`, base 10): the same rule |
//! | listen port | [`port`] | [`port`] |
//! | fwmark | [`fwmark`]: `off`, decimal or `0x` hex | [`decimal`] |
//! | keepalive | [`keepalive`]: `off` or decimal | [`decimal`] |
//! | keys | base64 (`ferrowg_keys::key`, `from_base64`) | hex (`from_hex`) |
//! | prefixes | [`AllowedIp::parse_config_list`], [`AllowedIp::parse_config`] | [`AllowedIp::parse_uapi`] |
//! | endpoints | [`Endpoint::parse_config`] | [`parse_uapi_endpoint`] |
//!
//! [`AllowedIp::parse_config_list`]: crate::addr::AllowedIp::parse_config_list
//! [`AllowedIp::parse_config`]: crate::addr::AllowedIp::parse_config
//! [`AllowedIp::parse_uapi`]: crate::addr::AllowedIp::parse_uapi
//! [`Endpoint::parse_config`]: crate::addr::Endpoint::parse_config
//! [`parse_uapi_endpoint`]: crate::addr::parse_uapi_endpoint

/// An unsigned decimal: ASCII digits only (leading zeros allowed, no sign, no white space)
/// whose value fits `T`.
///
/// This is one rule under two names: wg(8)'s `strtoul` behind a first-digit check with nothing
/// left over, and Go's `strconv.ParseUint(value, 10, bits)` that wireguard-go applies to UAPI
/// numbers. Files, `wg set` arguments, UAPI requests and UAPI replies all use it.
pub fn decimal<T: TryFrom<u64>>(text: &str) -> Option<T> {
    if text.is_empty() || !text.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let digits = text.trim_start_matches('0');
    if digits.is_empty() {
        return T::try_from(0).ok();
    }
    // u64::MAX has 20 digits; longer text cannot fit (and must not reach `parse`'s overflow).
    if digits.len() > 20 {
        return None;
    }
    T::try_from(digits.parse::<u64>().ok()?).ok()
}

/// A UDP port: [`decimal`] up to 65535. Used for `ListenPort`, `wg set … listen-port`, UAPI
/// `listen_port=` and the port of every endpoint (wg(8) would also look up service names in
/// /etc/services; ferrowg does not).
pub fn port(text: &str) -> Option<u16> {
    decimal(text)
}

/// `parse_fwmark` of wg(8), for `FwMark` and `wg set … fwmark`: `off` (any case) for 0, a
/// [`decimal`], or `0x` (lowercase) followed by hexadecimal digits, at most 32 bits. The UAPI's
/// `fwmark=` is plain [`decimal`], as wireguard-go reads it.
pub fn fwmark(text: &str) -> Option<u32> {
    if text.eq_ignore_ascii_case("off") {
        return Some(0);
    }
    let Some(hex) = text.strip_prefix("0x").filter(|h| !h.is_empty()) else {
        return decimal(text);
    };
    if !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let digits = hex.trim_start_matches('0');
    if digits.len() > 8 {
        return None;
    }
    if digits.is_empty() {
        return Some(0);
    }
    u32::from_str_radix(digits, 16).ok()
}

/// `parse_persistent_keepalive` of wg(8), for `PersistentKeepalive` and `wg set …
/// persistent-keepalive`: `off` (any case) for 0, or a [`decimal`] up to 65535. The UAPI's
/// `persistent_keepalive_interval=` is plain [`decimal`].
pub fn keepalive(text: &str) -> Option<u16> {
    if text.eq_ignore_ascii_case("off") {
        Some(0)
    } else {
        decimal(text)
    }
}

/// `char_is_space` of wg(8)'s ctype.h: the six ASCII white-space characters.
pub fn is_wg_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// The text without any [`is_wg_space`] character, as wg(8) reads a configuration line and the
/// `allowed-ips` argument of `wg set`.
pub fn strip_wg_spaces(text: &str) -> String {
    text.chars()
        .filter(|&c| !(c.is_ascii() && is_wg_space(c as u8)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_digits_only() {
        assert_eq!(decimal::<u16>("00080"), Some(80));
        assert_eq!(decimal::<u16>("0"), Some(0));
        assert_eq!(decimal::<u16>("65535"), Some(65535));
        assert_eq!(decimal::<u64>("18446744073709551615"), Some(u64::MAX));
        assert_eq!(
            decimal::<u64>(&format!("{}1", "0".repeat(100))),
            Some(1),
            "leading zeros do not count"
        );
        for bad in [
            "",
            "+1",
            "-1",
            " 1",
            "1 ",
            "0x10",
            "1_000",
            "65536",
            "18446744073709551616",
            "99999999999999999999999999",
        ] {
            assert_eq!(decimal::<u16>(bad), None, "{bad}");
        }
        assert_eq!(decimal::<u64>("18446744073709551616"), None);
    }

    #[test]
    fn fwmarks_follow_wg() {
        assert_eq!(fwmark("off"), Some(0));
        assert_eq!(fwmark("OFF"), Some(0));
        assert_eq!(fwmark("0"), Some(0));
        assert_eq!(fwmark("0x0"), Some(0));
        assert_eq!(fwmark("0x1f"), Some(0x1f));
        assert_eq!(fwmark("0xFFFFFFFF"), Some(u32::MAX));
        assert_eq!(fwmark("0x0000000001"), Some(1));
        assert_eq!(fwmark("4294967295"), Some(u32::MAX));
        for bad in [
            "",
            "0x",
            "0X1f",
            "0x1g",
            "0x-1",
            "0x+1",
            "4294967296",
            "0x100000000",
            "+1",
            "x1",
            "on",
        ] {
            assert_eq!(fwmark(bad), None, "{bad}");
        }
    }

    #[test]
    fn keepalives_follow_wg() {
        assert_eq!(keepalive("Off"), Some(0));
        assert_eq!(keepalive("025"), Some(25));
        assert_eq!(keepalive("65535"), Some(65535));
        for bad in ["", "65536", "+1", "-1", "1s"] {
            assert_eq!(keepalive(bad), None, "{bad}");
        }
    }

    #[test]
    fn wg_spaces_are_the_six_ascii_ones() {
        assert_eq!(strip_wg_spaces(" a\tb\r\n\x0b\x0cc "), "abc");
        assert_eq!(strip_wg_spaces("a\u{a0}b"), "a\u{a0}b");
    }
}
