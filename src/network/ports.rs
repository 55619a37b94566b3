//! `-p/--publish` and `-P/--publish-all`: parsing, random host ports, privileged-port checks.
//!
//! Accepted forms (docker's and podman's):
//! `CPORT`, `HPORT:CPORT`, `IP:HPORT:CPORT`, `IP::CPORT`, `[IP]:HPORT:CPORT`, each port may
//! be a range `A-B`, and each spec may end in `/tcp`, `/udp` or `/tcp,udp`. An empty or `0`
//! host port means "a free port chosen now"; a host range with one container port means "the
//! first free port of that range".
use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};

use serde::{Deserialize, Serialize};

use super::{Error, HostFacts};

const USAGE: &str =
    "use [IP:][HOSTPORT:]CONTAINERPORT[/tcp|udp], e.g. 8080:80 or 127.0.0.1:8080:80/tcp";

/// A transport protocol a port can be published for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One published port: connections to `host_ip:host_port` on the host reach
/// `container_port` inside the container. Ranges are expanded to one mapping per port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortMapping {
    /// The host address to bind; `None` binds every address (IPv4 and IPv6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: Protocol,
}

impl PortMapping {
    /// `0.0.0.0` when every address is bound, as docker and podman print it.
    pub fn host_ip_string(&self) -> String {
        match self.host_ip {
            Some(ip) => ip.to_string(),
            None => "0.0.0.0".into(),
        }
    }

    /// `127.0.0.1:8080`, `[::1]:8080`, `0.0.0.0:8080`.
    pub fn host_endpoint(&self) -> String {
        match self.host_ip {
            Some(IpAddr::V6(ip)) => format!("[{ip}]:{}", self.host_port),
            _ => format!("{}:{}", self.host_ip_string(), self.host_port),
        }
    }
}

impl fmt::Display for PortMapping {
    /// `80/tcp -> 127.0.0.1:8080`, the `box port` line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} -> {}",
            self.container_port,
            self.protocol,
            self.host_endpoint()
        )
    }
}

/// Host ports as written by the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HostPorts {
    /// Empty or 0: free ports chosen at plan time.
    Any,
    /// One port or a range, inclusive.
    Range(u16, u16),
}

/// One `-p` spec or one exposed port, parsed but not yet given host ports.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Request {
    host_ip: Option<IpAddr>,
    host: HostPorts,
    container: (u16, u16),
    protocols: Vec<Protocol>,
}

fn invalid(spec: &str, why: impl Into<String>) -> Error {
    Error::InvalidPublish {
        spec: spec.to_string(),
        why: why.into(),
        usage: USAGE,
    }
}

fn parse_protocols(spec: &str, s: &str) -> Result<Vec<Protocol>, Error> {
    let mut out = Vec::new();
    for p in s.split(',') {
        let proto = match p.trim().to_ascii_lowercase().as_str() {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            "sctp" => {
                return Err(invalid(
                    spec,
                    "sctp cannot be published by pasta or slirp4netns",
                ));
            }
            "" => return Err(invalid(spec, "empty protocol")),
            other => return Err(invalid(spec, format!("unknown protocol {other:?}"))),
        };
        if !out.contains(&proto) {
            out.push(proto);
        }
    }
    Ok(out)
}

/// `80` or `8000-8010`; `allow_zero` for host ports (0 = any).
fn parse_range(spec: &str, s: &str, what: &str, allow_zero: bool) -> Result<(u16, u16), Error> {
    let port = |p: &str| -> Result<u16, Error> {
        let p = p.trim();
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(spec, format!("{what} {s:?} is not a port number")));
        }
        let n: u32 = p
            .parse()
            .map_err(|_| invalid(spec, format!("{what} {s:?} is not a port number")))?;
        if n > 65535 {
            return Err(invalid(spec, format!("{what} {n} is above 65535")));
        }
        if n == 0 && !allow_zero {
            return Err(invalid(spec, format!("{what} cannot be 0")));
        }
        Ok(n as u16)
    };
    match s.split_once('-') {
        None => {
            let p = port(s)?;
            Ok((p, p))
        }
        Some((a, b)) => {
            let (a, b) = (port(a)?, port(b)?);
            if a == 0 || b == 0 {
                return Err(invalid(spec, format!("{what} range {s:?} contains 0")));
            }
            if a > b {
                return Err(invalid(
                    spec,
                    format!("{what} range {s:?} ends before it starts"),
                ));
            }
            Ok((a, b))
        }
    }
}

fn parse_ip(spec: &str, s: &str) -> Result<Option<IpAddr>, Error> {
    if s.is_empty() {
        return Ok(None);
    }
    let ip: IpAddr = s.parse().map_err(|_| {
        invalid(
            spec,
            format!("{s:?} is not an IP address (host names are not accepted)"),
        )
    })?;
    if ip.is_multicast() {
        return Err(invalid(spec, format!("{ip} is a multicast address")));
    }
    // 0.0.0.0 and :: mean "every address", like no address at all.
    Ok(if ip.is_unspecified() { None } else { Some(ip) })
}

/// Parse one `-p` value.
fn parse_publish(spec: &str) -> Result<Request, Error> {
    if spec.trim() != spec || spec.is_empty() {
        return Err(invalid(spec, "empty or surrounded by spaces"));
    }
    let (body, protocols) = match spec.rsplit_once('/') {
        Some((body, proto)) => (body, parse_protocols(spec, proto)?),
        None => (spec, vec![Protocol::Tcp]),
    };
    // Split off an IP: `[v6]:rest`, or `a:b:c` with a v4 address in front.
    let (ip, rest): (Option<IpAddr>, &str) = if let Some(after) = body.strip_prefix('[') {
        let (addr, tail) = after
            .split_once(']')
            .ok_or_else(|| invalid(spec, "missing ']' after the IPv6 address"))?;
        let tail = tail
            .strip_prefix(':')
            .ok_or_else(|| invalid(spec, "expected ':' after the IPv6 address"))?;
        // An IPv4 address in brackets is taken too, as podman does.
        let ip = parse_ip(spec, addr)?;
        // `[::1]:CPORT` makes no sense; the host port part must be there (possibly empty).
        if !tail.contains(':') {
            return Err(invalid(
                spec,
                "an address needs a host port part: IP:HOSTPORT:CONTAINERPORT or IP::CONTAINERPORT",
            ));
        }
        (ip, tail)
    } else {
        let parts: Vec<&str> = body.split(':').collect();
        match parts.len() {
            1 | 2 => (None, body),
            3 => {
                let ip = parse_ip(spec, parts[0])?;
                (ip, &body[parts[0].len() + 1..])
            }
            _ => {
                return Err(invalid(
                    spec,
                    "too many ':' (write IPv6 addresses in brackets: [::1]:8080:80)",
                ));
            }
        }
    };
    let (host, container) = match rest.split_once(':') {
        None => (
            HostPorts::Any,
            parse_range(spec, rest, "container port", false)?,
        ),
        Some((h, c)) => {
            let container = parse_range(spec, c, "container port", false)?;
            let host = if h.is_empty() {
                HostPorts::Any
            } else {
                match parse_range(spec, h, "host port", true)? {
                    (0, 0) => HostPorts::Any,
                    (a, b) => HostPorts::Range(a, b),
                }
            };
            (host, container)
        }
    };
    if let HostPorts::Range(a, b) = host {
        let (hl, cl) = (b - a, container.1 - container.0);
        if hl != cl && cl != 0 {
            return Err(invalid(
                spec,
                format!(
                    "the host range has {} ports and the container range {}: they must be the same size",
                    hl as u32 + 1,
                    cl as u32 + 1
                ),
            ));
        }
    }
    Ok(Request {
        host_ip: ip,
        host,
        container,
        protocols,
    })
}

/// Parse one image `ExposedPorts` key: `80/tcp`, `53/udp`, `8080`, `8000-8010/tcp`.
fn parse_exposed(key: &str) -> Result<Request, Error> {
    let bad = |why: String| Error::InvalidExposedPort {
        port: key.to_string(),
        why,
    };
    let (port, proto) = key.rsplit_once('/').unwrap_or((key, "tcp"));
    let protocols = match proto.to_ascii_lowercase().as_str() {
        "tcp" => vec![Protocol::Tcp],
        "udp" => vec![Protocol::Udp],
        other => return Err(bad(format!("unsupported protocol {other:?}"))),
    };
    let container = parse_range(key, port, "port", false).map_err(|e| bad(e.to_string()))?;
    Ok(Request {
        host_ip: None,
        host: HostPorts::Any,
        container,
        protocols,
    })
}

fn bind_addr(ip: Option<IpAddr>, port: u16) -> SocketAddr {
    SocketAddr::new(ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)), port)
}

/// Whether `port` can be bound right now on `ip` for every protocol.
pub(super) fn port_is_free(ip: Option<IpAddr>, port: u16, protocols: &[Protocol]) -> bool {
    let addrs: Vec<SocketAddr> = match ip {
        Some(ip) => vec![SocketAddr::new(ip, port)],
        // Every address: pasta binds both families, so check both (when IPv6 exists). One at
        // a time: a dual-stack [::] socket would collide with our own 0.0.0.0 probe.
        None => vec![
            bind_addr(None, port),
            SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
        ],
    };
    for addr in addrs {
        // tcp and udp do not collide: hold them together to test the same number for both.
        let mut held = Vec::new();
        for proto in protocols {
            let ok = match proto {
                Protocol::Tcp => TcpListener::bind(addr).map(|l| held.push(Held::Tcp(l))),
                Protocol::Udp => UdpSocket::bind(addr).map(|s| held.push(Held::Udp(s))),
            };
            match ok {
                Ok(()) => {}
                // No IPv6 on this host: the IPv4 check is enough.
                Err(e) if addr.is_ipv6() && ip.is_none() && is_no_family(&e) => {}
                Err(_) => return false,
            }
        }
    }
    true
}

#[allow(dead_code)]
enum Held {
    Tcp(TcpListener),
    Udp(UdpSocket),
}

fn is_no_family(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EAFNOSUPPORT) | Some(libc::EADDRNOTAVAIL)
    )
}

/// A port the kernel considers free for every protocol: bind port 0 for the first protocol,
/// then check the others on the same number. The sockets are closed before the helper binds.
fn random_port(spec: &str, ip: Option<IpAddr>, protocols: &[Protocol]) -> Result<u16, Error> {
    let addr = bind_addr(ip, 0);
    for _ in 0..64 {
        let port = match protocols[0] {
            Protocol::Tcp => TcpListener::bind(addr).and_then(|l| l.local_addr()),
            Protocol::Udp => UdpSocket::bind(addr).and_then(|s| s.local_addr()),
        }
        .map_err(|e| Error::RandomPort {
            spec: spec.to_string(),
            source: e,
        })?
        .port();
        if port_is_free(ip, port, protocols) {
            return Ok(port);
        }
    }
    Err(Error::RandomPort {
        spec: spec.to_string(),
        source: std::io::Error::other("no port free for every protocol after 64 tries"),
    })
}

/// Turn requests into mappings: choose free host ports, expand ranges.
fn allocate(
    spec: &str,
    req: &Request,
    taken: &[PortMapping],
    out: &mut Vec<PortMapping>,
    host: &dyn HostFacts,
) -> Result<(), Error> {
    let (c0, c1) = req.container;
    match req.host {
        HostPorts::Range(h0, h1) if h1 - h0 == c1 - c0 => {
            for (i, cport) in (c0..=c1).enumerate() {
                let host_port = h0 + i as u16;
                if !host.port_free(req.host_ip, host_port, &req.protocols) {
                    return Err(Error::PortInUse {
                        spec: spec.to_string(),
                        port: host_port,
                    });
                }
                for &protocol in &req.protocols {
                    out.push(PortMapping {
                        host_ip: req.host_ip,
                        host_port,
                        container_port: cport,
                        protocol,
                    });
                }
            }
        }
        HostPorts::Range(h0, h1) => {
            // A host range for one container port: the first free port in it.
            let used = |p: u16| {
                taken.iter().chain(out.iter()).any(|m| {
                    m.host_port == p
                        && req.protocols.contains(&m.protocol)
                        && ips_overlap(m.host_ip, req.host_ip)
                })
            };
            let port = (h0..=h1)
                .find(|&p| !used(p) && host.port_free(req.host_ip, p, &req.protocols))
                .ok_or_else(|| Error::RangeExhausted {
                    spec: spec.to_string(),
                })?;
            for &protocol in &req.protocols {
                out.push(PortMapping {
                    host_ip: req.host_ip,
                    host_port: port,
                    container_port: c0,
                    protocol,
                });
            }
        }
        HostPorts::Any => {
            for cport in c0..=c1 {
                let port = random_port(spec, req.host_ip, &req.protocols)?;
                for &protocol in &req.protocols {
                    out.push(PortMapping {
                        host_ip: req.host_ip,
                        host_port: port,
                        container_port: cport,
                        protocol,
                    });
                }
            }
        }
    }
    Ok(())
}

/// Two bind addresses conflict when equal or when either is "every address".
fn ips_overlap(a: Option<IpAddr>, b: Option<IpAddr>) -> bool {
    match (a, b) {
        (None, _) | (_, None) => true,
        (Some(a), Some(b)) => a == b,
    }
}

/// Every published port of a container: `-p` specs first, then (with `-P`) each exposed port
/// that `-p` did not already publish. Checks duplicates and privileged host ports.
pub(super) fn plan_ports(
    publish: &[String],
    publish_all: bool,
    exposed: &[String],
    host: &dyn HostFacts,
) -> Result<Vec<PortMapping>, Error> {
    let mut out: Vec<PortMapping> = Vec::new();
    for spec in publish {
        let req = parse_publish(spec)?;
        // Explicit host ports first: this is where the privileged-port error belongs.
        if let HostPorts::Range(h0, _) = req.host {
            check_privileged(spec, h0, host)?;
        }
        let mut new = Vec::new();
        allocate(spec, &req, &out, &mut new, host)?;
        for m in &new {
            if let Some(dup) = out.iter().find(|o| {
                o.protocol == m.protocol
                    && o.host_port == m.host_port
                    && ips_overlap(o.host_ip, m.host_ip)
            }) {
                return Err(Error::DuplicatePort {
                    port: format!("{}/{}", dup.host_port, dup.protocol),
                });
            }
        }
        out.extend(new);
    }
    if publish_all {
        let mut reqs: BTreeMap<(u16, Protocol), Request> = BTreeMap::new();
        for key in exposed {
            let req = parse_exposed(key)?;
            for port in req.container.0..=req.container.1 {
                for &proto in &req.protocols {
                    reqs.entry((port, proto)).or_insert_with(|| Request {
                        host_ip: None,
                        host: HostPorts::Any,
                        container: (port, port),
                        protocols: vec![proto],
                    });
                }
            }
        }
        for ((port, proto), req) in reqs {
            let already = out
                .iter()
                .any(|m| m.container_port == port && m.protocol == proto);
            if !already {
                let spec = format!("{port}/{proto}");
                let mut new = Vec::new();
                allocate(&spec, &req, &out, &mut new, host)?;
                out.extend(new);
            }
        }
    }
    Ok(out)
}

fn check_privileged(spec: &str, port: u16, host: &dyn HostFacts) -> Result<(), Error> {
    if host.is_root() {
        return Ok(());
    }
    let start = host.unprivileged_port_start();
    if port < start {
        return Err(Error::PrivilegedPort {
            spec: spec.to_string(),
            port,
            start,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::tests::FakeHost;

    fn req(spec: &str) -> Request {
        parse_publish(spec).unwrap_or_else(|e| panic!("{spec}: {e}"))
    }

    fn err(spec: &str) -> String {
        match parse_publish(spec) {
            Ok(r) => panic!("{spec} parsed as {r:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn v4(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn container_port_only() {
        assert_eq!(
            req("80"),
            Request {
                host_ip: None,
                host: HostPorts::Any,
                container: (80, 80),
                protocols: vec![Protocol::Tcp]
            }
        );
    }

    #[test]
    fn host_and_container() {
        let r = req("8080:80");
        assert_eq!(r.host, HostPorts::Range(8080, 8080));
        assert_eq!(r.container, (80, 80));
        assert_eq!(r.host_ip, None);
        assert_eq!(r.protocols, vec![Protocol::Tcp]);
    }

    #[test]
    fn ip_host_container_proto() {
        let r = req("127.0.0.1:18080:80/udp");
        assert_eq!(r.host_ip, v4("127.0.0.1"));
        assert_eq!(r.host, HostPorts::Range(18080, 18080));
        assert_eq!(r.container, (80, 80));
        assert_eq!(r.protocols, vec![Protocol::Udp]);
    }

    #[test]
    fn ip_with_empty_host_port_is_random() {
        let r = req("127.0.0.1::80");
        assert_eq!(r.host_ip, v4("127.0.0.1"));
        assert_eq!(r.host, HostPorts::Any);
        let r = req(":80");
        assert_eq!(r.host, HostPorts::Any);
        let r = req("0:80");
        assert_eq!(r.host, HostPorts::Any);
    }

    #[test]
    fn unspecified_ip_means_every_address() {
        assert_eq!(req("0.0.0.0:8080:80").host_ip, None);
        assert_eq!(req("[::]:8080:80").host_ip, None);
    }

    #[test]
    fn ipv6_in_brackets() {
        let r = req("[::1]:8080:80/tcp");
        assert_eq!(r.host_ip, Some("::1".parse().unwrap()));
        assert_eq!(r.host, HostPorts::Range(8080, 8080));
        let r = req("[fd00::2]::53/udp");
        assert_eq!(r.host, HostPorts::Any);
        assert_eq!(r.protocols, vec![Protocol::Udp]);
    }

    #[test]
    fn ranges() {
        let r = req("8000-8001:80-81");
        assert_eq!(r.host, HostPorts::Range(8000, 8001));
        assert_eq!(r.container, (80, 81));
        let r = req("80-82");
        assert_eq!(r.container, (80, 82));
        assert_eq!(r.host, HostPorts::Any);
        // A host range for one container port is allowed: the first free one is used.
        let r = req("9000-9010:80");
        assert_eq!(r.host, HostPorts::Range(9000, 9010));
    }

    #[test]
    fn protocol_lists_and_case() {
        assert_eq!(
            req("53:53/tcp,udp").protocols,
            vec![Protocol::Tcp, Protocol::Udp]
        );
        assert_eq!(req("53/UDP").protocols, vec![Protocol::Udp]);
        assert_eq!(req("53/tcp,tcp").protocols, vec![Protocol::Tcp]);
    }

    #[test]
    fn rejects_bad_specs() {
        assert!(err("").contains("empty"));
        assert!(err(" 80").contains("spaces"));
        assert!(err("80/sctp").contains("sctp"));
        assert!(err("80/icmp").contains("unknown protocol"));
        assert!(err("80/").contains("empty protocol"));
        assert!(err("http").contains("not a port number"));
        assert!(err("8080:http").contains("not a port number"));
        assert!(err("0").contains("cannot be 0"));
        assert!(err("8080:0").contains("cannot be 0"));
        assert!(err("70000:80").contains("above 65535"));
        assert!(err("8080:65536").contains("above 65535"));
        assert!(err("81-80").contains("ends before"));
        assert!(err("8000-8002:80-81").contains("same size"));
        assert!(err("8000:80-81").contains("same size"));
        assert!(err("localhost:8080:80").contains("not an IP address"));
        assert!(err("::1:8080:80").contains("brackets"));
        assert!(err("[::1:8080:80").contains("missing ']'"));
        assert!(err("[::1]8080:80").contains("expected ':'"));
        // podman takes an IPv4 address in brackets.
        let r = parse_publish("[127.0.0.1]:8080:80").unwrap();
        assert_eq!(r.host_ip, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(r.host, HostPorts::Range(8080, 8080));
        assert!(err("[::1]:80").contains("host port part"));
        assert!(err("224.0.0.1:8080:80").contains("multicast"));
        assert!(err("1:2:3:4").contains("too many"));
        assert!(err("-80").contains("not a port number"));
        assert!(err("+80").contains("not a port number"));
        assert!(err("0-1:80").contains("contains 0"));
        // Every error tells the syntax.
        assert!(err("x").contains("[IP:][HOSTPORT:]CONTAINERPORT"));
    }

    #[test]
    fn exposed_ports() {
        let r = parse_exposed("80/tcp").unwrap();
        assert_eq!((r.container, r.protocols), ((80, 80), vec![Protocol::Tcp]));
        let r = parse_exposed("53/udp").unwrap();
        assert_eq!(r.protocols, vec![Protocol::Udp]);
        let r = parse_exposed("8080").unwrap();
        assert_eq!(r.protocols, vec![Protocol::Tcp]);
        let r = parse_exposed("7000-7001/tcp").unwrap();
        assert_eq!(r.container, (7000, 7001));
        assert!(parse_exposed("80/sctp").is_err());
        assert!(parse_exposed("x/tcp").is_err());
    }

    fn plan(publish: &[&str], all: bool, exposed: &[&str]) -> Result<Vec<PortMapping>, Error> {
        let publish: Vec<String> = publish.iter().map(|s| s.to_string()).collect();
        let exposed: Vec<String> = exposed.iter().map(|s| s.to_string()).collect();
        plan_ports(&publish, all, &exposed, &FakeHost::default())
    }

    #[test]
    fn explicit_mappings_expand_ranges() {
        let m = plan(&["127.0.0.1:18000-18001:80-81/tcp,udp"], false, &[]).unwrap();
        let got: Vec<(u16, u16, Protocol)> = m
            .iter()
            .map(|m| (m.host_port, m.container_port, m.protocol))
            .collect();
        assert_eq!(
            got,
            vec![
                (18000, 80, Protocol::Tcp),
                (18000, 80, Protocol::Udp),
                (18001, 81, Protocol::Tcp),
                (18001, 81, Protocol::Udp),
            ]
        );
        assert!(m.iter().all(|m| m.host_ip == v4("127.0.0.1")));
    }

    #[test]
    fn random_host_ports_are_free_and_distinct() {
        let m = plan(&["127.0.0.1::80", "127.0.0.1::81/tcp,udp"], false, &[]).unwrap();
        assert_eq!(m.len(), 3);
        assert!(m.iter().all(|m| m.host_port != 0));
        assert_ne!(m[0].host_port, m[1].host_port);
        // tcp and udp of one spec share the host port.
        assert_eq!(m[1].host_port, m[2].host_port);
        assert_eq!(m[2].protocol, Protocol::Udp);
        // The chosen port is really free now (our probe sockets are closed).
        TcpListener::bind(("127.0.0.1", m[0].host_port)).unwrap();
    }

    #[test]
    fn host_range_for_one_port_takes_the_first_free() {
        let busy = |ports: &'static [u16]| FakeHost {
            busy: ports,
            ..FakeHost::default()
        };
        let with = |spec: &str, host: &FakeHost| plan_ports(&[spec.to_string()], false, &[], host);
        let m = with("127.0.0.1:18000-18001:80", &busy(&[18000])).unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].host_port, 18001);
        // A fixed host port that is in use is an error now, not when the helper starts.
        let e = with("127.0.0.1:18000:80", &busy(&[18000]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("already in use"), "{e}");
        // Every port of the range busy: no free one.
        let e = with("127.0.0.1:18000-18001:80", &busy(&[18000, 18001]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no free port"), "{e}");
    }

    #[test]
    fn the_real_probe_sees_a_bound_port() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let p = l.local_addr().unwrap().port();
        assert!(!port_is_free(v4("127.0.0.1"), p, &[Protocol::Tcp]));
        drop(l);
    }

    #[test]
    fn duplicate_host_ports_are_rejected() {
        let e = plan(&["8080:80", "8080:81"], false, &[]).unwrap_err();
        assert!(e.to_string().contains("8080/tcp"), "{e}");
        let e = plan(&["127.0.0.1:8080:80", "8080:81"], false, &[]).unwrap_err();
        assert!(e.to_string().contains("published twice"), "{e}");
        // Different protocols or different addresses are fine.
        plan(&["8080:80/tcp", "8080:80/udp"], false, &[]).unwrap();
        plan(&["127.0.0.1:8080:80", "127.0.0.2:8080:80"], false, &[]).unwrap();
        // One container port on two host ports is fine.
        plan(&["8080:80", "8081:80"], false, &[]).unwrap();
    }

    #[test]
    fn publish_all_adds_exposed_ports_not_already_published() {
        let m = plan(&["18080:80"], true, &["80/tcp", "443/tcp", "53/udp"]).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!((m[0].host_port, m[0].container_port), (18080, 80));
        let rest: Vec<(u16, Protocol)> = m[1..]
            .iter()
            .map(|m| (m.container_port, m.protocol))
            .collect();
        assert_eq!(rest, vec![(53, Protocol::Udp), (443, Protocol::Tcp)]);
        assert!(
            m[1..]
                .iter()
                .all(|m| m.host_port >= 1024 && m.host_ip.is_none())
        );
        // Without -P the exposed ports are ignored.
        assert_eq!(plan(&[], false, &["80/tcp"]).unwrap().len(), 0);
        // Bad image metadata is an error only when -P uses it.
        assert!(plan(&[], true, &["80/sctp"]).is_err());
    }

    #[test]
    fn privileged_ports_name_the_sysctl() {
        let host = FakeHost {
            root: false,
            unprivileged_port_start: 1024,
            ..FakeHost::default()
        };
        let e = plan_ports(&["80:80".into()], false, &[], &host).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("net.ipv4.ip_unprivileged_port_start"), "{msg}");
        assert!(msg.contains("80"), "{msg}");
        // Ranges are checked at their start.
        assert!(plan_ports(&["1000-1030:80-110".into()], false, &[], &host).is_err());
        // Root may, and so may anyone when the sysctl allows it.
        let root = FakeHost { root: true, ..host };
        plan_ports(&["80:80".into()], false, &[], &root).unwrap();
        let low = FakeHost {
            unprivileged_port_start: 80,
            ..host
        };
        plan_ports(&["80:80".into()], false, &[], &low).unwrap();
        // Random ports are never privileged.
        plan_ports(&["80".into()], false, &[], &host).unwrap();
    }

    #[test]
    fn display_for_box_port() {
        let m = PortMapping {
            host_ip: v4("127.0.0.1"),
            host_port: 18080,
            container_port: 80,
            protocol: Protocol::Tcp,
        };
        assert_eq!(m.to_string(), "80/tcp -> 127.0.0.1:18080");
        let m = PortMapping {
            host_ip: None,
            protocol: Protocol::Udp,
            ..m
        };
        assert_eq!(m.to_string(), "80/udp -> 0.0.0.0:18080");
        let m = PortMapping {
            host_ip: Some("::1".parse().unwrap()),
            ..m
        };
        assert_eq!(m.to_string(), "80/udp -> [::1]:18080");
    }
}
