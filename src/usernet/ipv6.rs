//! IPv6 on user networks: a network may have one IPv6 subnet beside its IPv4 one (dual
//! stack, `network create --ipv6` or a second `--subnet`); without one given, `--ipv6` picks
//! a random unique local `fdXX:XXXX:XXXX:XXXX::/64` as podman does. Containers lease an
//! address of it too (`--ip6`, else the first free one); aardvark-dns answers AAAA for them.
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};

use super::{Error, Network};

/// An IPv6 CIDR: network address and prefix length.
pub(super) fn parse_cidr6(s: &str) -> Result<(Ipv6Addr, u8), Error> {
    let bad = |why: &str| Error::BadSubnet(s.to_string(), why.to_string());
    let (ip, len) = s
        .split_once('/')
        .ok_or_else(|| bad("use an IPv6 CIDR such as fd00:1:2:3::/64"))?;
    let ip: Ipv6Addr = ip
        .parse()
        .map_err(|_| bad("use an IPv6 CIDR such as fd00:1:2:3::/64"))?;
    let len: u8 = len
        .parse()
        .map_err(|_| bad("the prefix length is not a number"))?;
    if !(8..=120).contains(&len) {
        return Err(bad(
            "the prefix length of an IPv6 subnet must be between 8 and 120",
        ));
    }
    if u128::from(ip) & !mask6(len) != 0 {
        return Err(bad(&format!(
            "host bits are set: did you mean {}/{len}?",
            Ipv6Addr::from(u128::from(ip) & mask6(len))
        )));
    }
    Ok((ip, len))
}

pub(super) fn mask6(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - len)
    }
}

pub(super) fn overlaps6(a: (Ipv6Addr, u8), b: (Ipv6Addr, u8)) -> bool {
    let m = mask6(a.1.min(b.1));
    u128::from(a.0) & m == u128::from(b.0) & m
}

/// Whether `ip` is a host address of `(net, len)` (not the subnet's own address).
pub(super) fn is_host6(ip: Ipv6Addr, (net, len): (Ipv6Addr, u8)) -> bool {
    overlaps6((ip, 128), (net, len)) && u128::from(ip) & !mask6(len) != 0
}

/// A random unique local /64 (`fd` and 56 random bits), as podman picks.
pub(super) fn random_ula() -> (Ipv6Addr, u8) {
    let id = crate::container::random_id();
    let bits = u64::from_str_radix(&id[..14], 16).unwrap_or(0);
    let prefix = (0xfdu64 << 56) | bits;
    (Ipv6Addr::from(u128::from(prefix) << 64), 64)
}

impl Network {
    /// Its IPv6 subnet, parsed, with its gateway.
    pub fn subnet6(&self) -> Option<((Ipv6Addr, u8), Ipv6Addr)> {
        self.subnets.iter().find_map(|s| {
            let c = parse_cidr6(&s.subnet).ok()?;
            Some((c, s.gateway.parse().ok()?))
        })
    }

    /// `--ip6`: a host address of the network's IPv6 subnet, not its gateway.
    pub fn check_address6(&self, ip: &str) -> Result<Ipv6Addr, Error> {
        let bad = |why: String| Error::BadAddress {
            ip: ip.to_string(),
            why,
        };
        let addr: Ipv6Addr = ip.parse().map_err(|_| bad("not an IPv6 address".into()))?;
        let Some((sub, gateway)) = self.subnet6() else {
            return Err(bad(format!(
                "network {} has no IPv6 subnet (box network create --ipv6)",
                self.name
            )));
        };
        if !is_host6(addr, sub) {
            return Err(bad(format!(
                "not a host address of network {}'s subnet {}/{}",
                self.name, sub.0, sub.1
            )));
        }
        if addr == gateway {
            return Err(bad(format!("it is network {}'s gateway", self.name)));
        }
        Ok(addr)
    }
}

/// The IPv6 address container `id` holds on `network` while it runs.
pub fn address6_of(paths: &crate::paths::Paths, network: &str, id: &str) -> Option<Ipv6Addr> {
    super::attach::address_in(paths, network, id)
}

/// How many addresses of an IPv6 subnet are tried (it has more than a network needs).
const TRIES: u128 = 1 << 16;

/// Lease an address of `network`'s IPv6 subnet (if it has one) in its lease directory
/// `ldir`: `want` (`--ip6`), else the first free one; the lease file says `stamp`.
pub(super) fn lease6(
    ldir: &Path,
    network: &Network,
    want: Option<Ipv6Addr>,
    stamp: &str,
) -> Result<Option<(Ipv6Addr, PathBuf)>, Error> {
    let Some(((net, len), gateway)) = network.subnet6() else {
        return Ok(None);
    };
    let size = if len <= 112 {
        TRIES
    } else {
        1u128 << (128 - len)
    };
    let candidates: Box<dyn Iterator<Item = Ipv6Addr>> = match want {
        Some(w) => Box::new(std::iter::once(w)),
        None => Box::new(
            (1..size)
                .map(move |h| Ipv6Addr::from(u128::from(net) + h))
                .filter(move |ip| *ip != gateway),
        ),
    };
    super::attach::claim(ldir, network, candidates, want.is_some(), stamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_and_ulas() {
        assert_eq!(
            parse_cidr6("fd00:1::/64").unwrap(),
            ("fd00:1::".parse().unwrap(), 64)
        );
        for bad in ["fd00::1/64", "fd00::", "10.0.0.0/24", "fd00::/128"] {
            assert!(parse_cidr6(bad).is_err(), "{bad}");
        }
        let (a, len) = random_ula();
        assert_eq!(len, 64);
        assert_eq!(a.segments()[0] >> 8, 0xfd);
        assert_eq!(u128::from(a) & !mask6(64), 0);
        let n = ("fd00:1::".parse().unwrap(), 64);
        assert!(overlaps6(n, ("fd00::".parse().unwrap(), 16)));
        assert!(!overlaps6(n, ("fd00:2::".parse().unwrap(), 64)));
        assert!(is_host6("fd00:1::5".parse().unwrap(), n));
        assert!(!is_host6("fd00:1::".parse().unwrap(), n));
    }
}
