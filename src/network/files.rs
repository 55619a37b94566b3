//! The container's /etc/resolv.conf and /etc/hosts.
use std::fmt::Write as _;
use std::net::IpAddr;

use super::{Error, Mode, Plan};

/// The host's resolv.conf, the parts a container needs.
#[derive(Debug, Default, PartialEq, Eq)]
struct HostResolv {
    nameservers: Vec<IpAddr>,
    search: Vec<String>,
    options: Vec<String>,
}

fn parse_resolv(text: &str) -> HostResolv {
    let mut r = HostResolv::default();
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or("").trim();
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                // `fe80::1%eth0`: the scope names a host interface, useless in a container.
                if let Some(ip) = words.next().and_then(|w| w.parse::<IpAddr>().ok()) {
                    r.nameservers.push(ip);
                }
            }
            // The last of `search` and `domain` wins (resolv.conf(5)).
            Some("search") | Some("domain") => r.search = words.map(str::to_string).collect(),
            Some("options") => r.options.extend(words.map(str::to_string)),
            _ => {}
        }
    }
    r
}

fn is_local_only(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => ip.is_loopback() || ip.is_link_local(),
        IpAddr::V6(ip) => ip.is_loopback() || ip.segments()[0] & 0xffc0 == 0xfe80,
    }
}

/// Parse `--dns` values; invalid ones are an error (checked at plan time).
pub(super) fn parse_dns(dns: &[String]) -> Result<Vec<IpAddr>, Error> {
    dns.iter()
        .map(|d| {
            d.trim()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .map_err(|_| Error::InvalidDns(d.clone()))
        })
        .collect()
}

/// /etc/resolv.conf for the container.
///
/// Nameservers: `--dns` when given; else the helper's DNS forwarder (pasta: the
/// `--dns-forward` address box passes, slirp4netns: 10.0.2.3), which reaches the host's first
/// resolver even when that is a loopback one (systemd-resolved, dnsmasq); with `--network
/// host` the host's own resolvers; with `none` or `container:` the host's resolvers that are
/// not loopback. The host's `search` and `options` lines are kept.
///
/// pasta's forwarder rewrites the source of every DNS answer from the host's resolver to the
/// forwarder address, so with pasta the host's resolvers cannot be listed directly: the
/// resolver would drop those answers.
pub fn resolv_conf(plan: &Plan, host_resolv: &str, dns: &[String]) -> String {
    let host = parse_resolv(host_resolv);
    let servers: Vec<IpAddr> = if !dns.is_empty() {
        parse_dns(dns).unwrap_or_else(|_| {
            // Plans validate --dns; keep what parses if a caller did not.
            dns.iter().filter_map(|d| d.trim().parse().ok()).collect()
        })
    } else {
        match &plan.mode {
            Mode::Pasta | Mode::Slirp4netns => plan.dns_forwarder().into_iter().collect(),
            Mode::Host => host.nameservers.clone(),
            Mode::None | Mode::Container(_) | Mode::Forward => host
                .nameservers
                .iter()
                .copied()
                .filter(|ip| !is_local_only(ip))
                .collect(),
        }
    };
    let mut out = String::new();
    if !host.search.is_empty() {
        let _ = writeln!(out, "search {}", host.search.join(" "));
    }
    for ip in servers {
        let _ = writeln!(out, "nameserver {ip}");
    }
    if !host.options.is_empty() {
        let _ = writeln!(out, "options {}", host.options.join(" "));
    }
    out
}

/// What an `--add-host` name points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AddHostTarget {
    Ip(IpAddr),
    /// `host-gateway`: the host as the container sees it.
    HostGateway,
}

/// `NAME:IP`, `NAME1;NAME2:IP`, `NAME:[v6]`, `NAME:host-gateway`.
pub(super) fn parse_add_host(s: &str) -> Result<(Vec<String>, AddHostTarget), Error> {
    let bad = || Error::InvalidAddHost(s.to_string());
    let (names, target) = s.split_once(':').ok_or_else(bad)?;
    let names: Vec<String> = names.split(';').map(|n| n.trim().to_string()).collect();
    let valid_name = |n: &str| {
        !n.is_empty()
            && n.len() <= 253
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
    };
    if !names.iter().all(|n| valid_name(n)) {
        return Err(bad());
    }
    let target = target.trim();
    let target = if target == "host-gateway" {
        AddHostTarget::HostGateway
    } else {
        let ip = target.trim_start_matches('[').trim_end_matches(']');
        AddHostTarget::Ip(ip.parse().map_err(|_| bad())?)
    };
    Ok((names, target))
}

/// /etc/hosts for the container: `--add-host` entries first (they win), localhost, the host
/// as `host.containers.internal` (and `host.docker.internal`), then the container's own
/// address with its hostname and name.
pub fn hosts_file(
    plan: &Plan,
    hostname: &str,
    container_name: &str,
    add_hosts: &[String],
) -> String {
    let mut out = String::new();
    let host_address = plan.host_address();
    add_host_lines(&mut out, add_hosts, host_address);
    out.push_str("127.0.0.1\tlocalhost localhost.localdomain localhost4 localhost4.localdomain4\n");
    out.push_str("::1\tlocalhost localhost.localdomain localhost6 localhost6.localdomain6\n");
    if let Some(ip) = host_address {
        let _ = writeln!(out, "{ip}\thost.containers.internal host.docker.internal");
    }
    let names = own_names(hostname, container_name);
    if !names.is_empty() {
        let ip = plan
            .container_address()
            .map(|(ip, _)| ip)
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
        let _ = writeln!(out, "{ip}\t{}", names.join(" "));
    }
    out
}

/// /etc/hosts for a container that joins another's network (`--network container:`): its
/// `--add-host` entries, then the other container's file as it is, then the joiner's own
/// names on the loopback (the address they share is the other container's).
pub fn joined_hosts_file(
    theirs: &str,
    hostname: &str,
    container_name: &str,
    add_hosts: &[String],
) -> String {
    let mut out = String::new();
    // host-gateway is refused for this mode when the plan is made.
    add_host_lines(&mut out, add_hosts, None);
    out.push_str(theirs);
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    let known = |n: &str| {
        theirs.lines().any(|l| {
            let l = l.split('#').next().unwrap_or("");
            l.split_whitespace().skip(1).any(|w| w == n)
        })
    };
    let names: Vec<&str> = own_names(hostname, container_name)
        .into_iter()
        .filter(|n| !known(n))
        .collect();
    if !names.is_empty() {
        let _ = writeln!(out, "127.0.0.1\t{}", names.join(" "));
    }
    out
}

/// `--add-host` lines; `host-gateway` entries need the host's address.
fn add_host_lines(out: &mut String, add_hosts: &[String], host_address: Option<IpAddr>) {
    for entry in add_hosts {
        let Ok((names, target)) = parse_add_host(entry) else {
            continue;
        };
        let ip = match target {
            AddHostTarget::Ip(ip) => ip,
            AddHostTarget::HostGateway => match host_address {
                Some(ip) => ip,
                None => continue,
            },
        };
        let _ = writeln!(out, "{ip}\t{}", names.join(" "));
    }
}

/// The container's host name, its first label, and its name, once each.
fn own_names<'a>(hostname: &'a str, container_name: &'a str) -> Vec<&'a str> {
    let mut names: Vec<&str> = Vec::new();
    for n in [
        hostname,
        hostname.split('.').next().unwrap_or(""),
        container_name,
    ] {
        if !n.is_empty() && !names.contains(&n) {
            names.push(n);
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::Plan;

    const HOST: &str = "# generated\nsearch example.internal corp.internal\nnameserver 127.0.0.53\nnameserver 10.255.255.53 # primary\nnameserver fe80::1%eth0\noptions edns0 trust-ad\n";

    fn plan(mode: Mode) -> Plan {
        Plan {
            mode,
            ports: vec![],
        }
    }

    #[test]
    fn parses_host_resolv() {
        let r = parse_resolv(HOST);
        assert_eq!(
            r.nameservers,
            vec![
                "127.0.0.53".parse::<IpAddr>().unwrap(),
                "10.255.255.53".parse().unwrap()
            ]
        );
        assert_eq!(r.search, vec!["example.internal", "corp.internal"]);
        assert_eq!(r.options, vec!["edns0", "trust-ad"]);
        assert_eq!(
            parse_resolv("domain a\nsearch b c\n").search,
            vec!["b", "c"]
        );
        assert_eq!(parse_resolv("search b c\ndomain a\n").search, vec!["a"]);
    }

    #[test]
    fn pasta_uses_its_forwarder() {
        let out = resolv_conf(&plan(Mode::Pasta), HOST, &[]);
        assert_eq!(
            out,
            "search example.internal corp.internal\nnameserver 169.254.1.1\noptions edns0 trust-ad\n"
        );
    }

    #[test]
    fn slirp_uses_its_dns() {
        let out = resolv_conf(&plan(Mode::Slirp4netns), "nameserver 10.1.1.1\n", &[]);
        assert_eq!(out, "nameserver 10.0.2.3\n");
    }

    #[test]
    fn dns_flag_overrides() {
        let dns = vec!["192.0.2.53".to_string(), "2001:db8::53".to_string()];
        let out = resolv_conf(&plan(Mode::Pasta), HOST, &dns);
        assert!(out.contains("nameserver 192.0.2.53\nnameserver 2001:db8::53\n"));
        assert!(!out.contains("169.254.1.1"));
        assert!(parse_dns(&["not-an-ip".into()]).is_err());
        assert!(parse_dns(&["[::1]".into()]).is_ok());
    }

    #[test]
    fn host_mode_copies_and_none_drops_loopback() {
        let out = resolv_conf(&plan(Mode::Host), HOST, &[]);
        assert!(out.contains("nameserver 127.0.0.53\nnameserver 10.255.255.53\n"));
        let out = resolv_conf(&plan(Mode::None), HOST, &[]);
        assert!(!out.contains("127.0.0.53"));
        assert!(out.contains("nameserver 10.255.255.53\n"));
    }

    #[test]
    fn add_host_syntax() {
        let (n, t) = parse_add_host("db:10.0.0.5").unwrap();
        assert_eq!(
            (n, t),
            (
                vec!["db".to_string()],
                AddHostTarget::Ip("10.0.0.5".parse().unwrap())
            )
        );
        let (n, t) = parse_add_host("a;b.example:[2001:db8::1]").unwrap();
        assert_eq!(n, vec!["a", "b.example"]);
        assert_eq!(t, AddHostTarget::Ip("2001:db8::1".parse().unwrap()));
        let (_, t) = parse_add_host("v6:2001:db8::1").unwrap();
        assert_eq!(t, AddHostTarget::Ip("2001:db8::1".parse().unwrap()));
        assert_eq!(
            parse_add_host("gw:host-gateway").unwrap().1,
            AddHostTarget::HostGateway
        );
        for bad in [
            "db",
            "db:",
            ":1.2.3.4",
            "db:not-ip",
            "d b:1.2.3.4",
            "db;:1.2.3.4",
        ] {
            assert!(parse_add_host(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hosts_for_slirp() {
        let out = hosts_file(
            &plan(Mode::Slirp4netns),
            "web.example",
            "web1",
            &["db:10.0.0.5".into(), "gw:host-gateway".into()],
        );
        assert_eq!(
            out,
            "10.0.0.5\tdb\n\
             10.0.2.2\tgw\n\
             127.0.0.1\tlocalhost localhost.localdomain localhost4 localhost4.localdomain4\n\
             ::1\tlocalhost localhost.localdomain localhost6 localhost6.localdomain6\n\
             10.0.2.2\thost.containers.internal host.docker.internal\n\
             10.0.2.100\tweb.example web web1\n"
        );
    }

    #[test]
    fn hosts_for_none_has_no_host_entry() {
        let out = hosts_file(&plan(Mode::None), "abc", "abc", &[]);
        assert!(!out.contains("host.containers.internal"));
        assert!(out.ends_with("127.0.0.1\tabc\n"), "{out}");
    }

    #[test]
    fn hosts_for_pasta_maps_the_host_to_the_gateway() {
        let p = plan(Mode::Pasta);
        let out = hosts_file(&p, "h", "n", &[]);
        match (p.host_address(), p.container_address()) {
            (Some(gw), Some((ip, _))) => {
                assert!(
                    out.contains(&format!("{gw}\thost.containers.internal")),
                    "{out}"
                );
                assert!(out.contains(&format!("{ip}\th n\n")), "{out}");
            }
            // A host without a default route: no host entry to write.
            _ => assert!(!out.contains("host.containers.internal")),
        }
    }

    #[test]
    fn joined_hosts_keep_theirs_and_add_own_names() {
        let theirs = "127.0.0.1\tlocalhost\n10.0.2.100\tabc123 web\n";
        let out = joined_hosts_file(theirs, "def456", "client", &["db:192.0.2.5".into()]);
        assert_eq!(
            out,
            "192.0.2.5\tdb\n127.0.0.1\tlocalhost\n10.0.2.100\tabc123 web\n127.0.0.1\tdef456 client\n"
        );
        // Names the other file has already are not repeated; a missing file still works.
        let out = joined_hosts_file(theirs, "web", "web", &[]);
        assert_eq!(out, theirs);
        assert_eq!(joined_hosts_file("", "h", "n", &[]), "127.0.0.1\th n\n");
    }
}
