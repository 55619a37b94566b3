//! What the host offers: helper programs, default routes, interface addresses, sysctls.
//! Read-only: nothing here sends a packet.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use super::ports::{Protocol, port_is_free};

/// The facts a plan depends on; faked in unit tests.
pub(crate) trait HostFacts {
    fn is_root(&self) -> bool;
    /// `net.ipv4.ip_unprivileged_port_start`.
    fn unprivileged_port_start(&self) -> u16;
    /// A program in `$PATH`.
    fn find_program(&self, name: &str) -> Option<PathBuf>;
    /// Whether pasta can find a template interface (a default route, IPv4 or IPv6).
    fn has_default_route(&self) -> bool;
    /// Whether `port` can be bound now on `ip` (every address when `None`) for each protocol.
    fn port_free(&self, ip: Option<IpAddr>, port: u16, protocols: &[Protocol]) -> bool;
}

/// The real host.
pub(crate) struct RealHost;

impl HostFacts for RealHost {
    fn is_root(&self) -> bool {
        nix::unistd::geteuid().is_root()
    }

    fn unprivileged_port_start(&self) -> u16 {
        read_unprivileged_port_start()
    }

    fn find_program(&self, name: &str) -> Option<PathBuf> {
        find_in_path(name, std::env::var_os("PATH").as_deref())
    }

    fn has_default_route(&self) -> bool {
        default_route_v4().is_some() || has_default_route_v6()
    }

    fn port_free(&self, ip: Option<IpAddr>, port: u16, protocols: &[Protocol]) -> bool {
        port_is_free(ip, port, protocols)
    }
}

/// The sysctl, or 1024 (the kernel default) when it cannot be read.
pub(crate) fn read_unprivileged_port_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1024)
}

const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin";

/// `name` in the colon-separated `path` (the usual default when `$PATH` is unset).
pub(crate) fn find_in_path(name: &str, path: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = path.unwrap_or(std::ffi::OsStr::new(DEFAULT_PATH));
    std::env::split_paths(path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// The IPv4 default route with the lowest metric: (interface, gateway).
pub(crate) fn default_route_v4() -> Option<(String, Ipv4Addr)> {
    let text = std::fs::read_to_string("/proc/net/route").ok()?;
    parse_route_v4(&text)
}

fn has_default_route_v6() -> bool {
    std::fs::read_to_string("/proc/net/ipv6_route").is_ok_and(|t| has_default_v6(&t))
}

/// Parse `/proc/net/route`: hex fields in the kernel's byte order.
pub(crate) fn parse_route_v4(text: &str) -> Option<(String, Ipv4Addr)> {
    const RTF_UP: u32 = 0x1;
    const RTF_GATEWAY: u32 = 0x2;
    let mut best: Option<(u32, String, Ipv4Addr)> = None;
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 {
            continue;
        }
        let hex = |s: &str| u32::from_str_radix(s, 16).ok();
        let (Some(dest), Some(gw), Some(flags), Some(metric), Some(mask)) = (
            hex(f[1]),
            hex(f[2]),
            hex(f[3]),
            f[6].parse::<u32>().ok(),
            hex(f[7]),
        ) else {
            continue;
        };
        if dest != 0 || mask != 0 || flags & RTF_UP == 0 || flags & RTF_GATEWAY == 0 {
            continue;
        }
        // The field is the in-memory (network order) address printed as a native integer.
        let gw = Ipv4Addr::from(gw.to_ne_bytes());
        if best.as_ref().is_none_or(|(m, _, _)| metric < *m) {
            best = Some((metric, f[0].to_string(), gw));
        }
    }
    best.map(|(_, iface, gw)| (iface, gw))
}

/// `/proc/net/ipv6_route`: destination `::/0` on a non-loopback interface.
pub(crate) fn has_default_v6(text: &str) -> bool {
    text.lines().any(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        f.len() >= 10
            && f[0] == "00000000000000000000000000000000"
            && f[1] == "00"
            && f[9] != "lo"
            // RTF_REJECT routes (unreachable) do not count.
            && u32::from_str_radix(f[8], 16).is_ok_and(|flags| flags & 0x0200 == 0)
    })
}

/// The first IPv4 address and prefix length of `iface`.
pub(crate) fn iface_v4(iface: &str) -> Option<(Ipv4Addr, u8)> {
    let addrs = nix::ifaddrs::getifaddrs().ok()?;
    for a in addrs {
        if a.interface_name != iface {
            continue;
        }
        let Some(ip) = a.address.as_ref().and_then(|s| s.as_sockaddr_in()) else {
            continue;
        };
        let prefix = a
            .netmask
            .as_ref()
            .and_then(|s| s.as_sockaddr_in())
            .map(|m| u32::from(m.ip()).count_ones() as u8)
            .unwrap_or(32);
        return Some((ip.ip(), prefix));
    }
    None
}

/// The first global IPv6 address of `iface`.
pub(crate) fn iface_v6(iface: &str) -> Option<(Ipv6Addr, u8)> {
    let addrs = nix::ifaddrs::getifaddrs().ok()?;
    for a in addrs {
        if a.interface_name != iface {
            continue;
        }
        let Some(ip) = a.address.as_ref().and_then(|s| s.as_sockaddr_in6()) else {
            continue;
        };
        let ip = ip.ip();
        if ip.is_loopback() || ip.segments()[0] & 0xffc0 == 0xfe80 {
            continue;
        }
        let prefix = a
            .netmask
            .as_ref()
            .and_then(|s| s.as_sockaddr_in6())
            .map(|m| u128::from(m.ip()).count_ones() as u8)
            .unwrap_or(128);
        return Some((ip, prefix));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTE: &str =
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth1\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
";

    #[test]
    fn default_route_lowest_metric() {
        let (iface, gw) = parse_route_v4(ROUTE).unwrap();
        assert_eq!(iface, "eth0");
        if cfg!(target_endian = "little") {
            assert_eq!(gw, Ipv4Addr::new(192, 0, 2, 1));
        }
    }

    #[test]
    fn no_default_route() {
        let only_link =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
";
        assert_eq!(parse_route_v4(only_link), None);
        assert_eq!(parse_route_v4(""), None);
    }

    #[test]
    fn default_route_v6() {
        let yes = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000001 00000000 00000003     eth0\n";
        let reject = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n";
        assert!(has_default_v6(yes));
        assert!(!has_default_v6(reject));
        assert!(!has_default_v6(""));
    }

    #[test]
    fn path_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("helper");
        std::fs::write(&exe, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o644)).unwrap();
        let path = std::ffi::OsString::from(format!("/nonexistent::{}", dir.path().display()));
        assert_eq!(find_in_path("helper", Some(&path)), None, "not executable");
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find_in_path("helper", Some(&path)), Some(exe));
        assert_eq!(find_in_path("nothere", Some(&path)), None);
    }
}
