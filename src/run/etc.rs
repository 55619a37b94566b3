//! The files box provides in the container's /etc: hostname, hosts, resolv.conf. They
//! live in the container's `userdata/` dir and are bind-mounted (read-write, as docker
//! does) over the image's.
use std::net::IpAddr;
use std::path::Path;

use super::spec::Spec;

/// Write `userdata/{hostname,hosts,resolv.conf}`. `dns` are extra nameservers the network
/// helper provides (used when the host has only loopback ones).
pub fn write_userdata(
    userdata: &Path,
    spec: &Spec,
    hostname: &str,
    name: &str,
    dns: &[String],
) -> std::io::Result<()> {
    std::fs::create_dir_all(userdata)?;
    let hosts_file = hosts(hostname, name, &spec.add_hosts);
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let resolv = resolv_conf(&host_resolv, &spec.dns, dns);
    for (file, contents) in [
        ("hostname", format!("{hostname}\n")),
        ("hosts", hosts_file),
        ("resolv.conf", resolv),
    ] {
        let path = userdata.join(file);
        // Rewritten in place (not renamed): a running container's bind mount keeps
        // pointing at the same inode.
        if std::fs::read_to_string(&path).ok().as_deref() != Some(contents.as_str()) {
            std::fs::write(&path, contents)?;
        }
    }
    Ok(())
}

fn hosts(hostname: &str, name: &str, add: &[String]) -> String {
    let mut s = String::from(
        "127.0.0.1\tlocalhost localhost.localdomain\n::1\tlocalhost ip6-localhost ip6-loopback\n",
    );
    for a in add {
        if let Some((host, ip)) = a.split_once(':') {
            s.push_str(&format!("{ip}\t{host}\n"));
        }
    }
    if hostname == name {
        s.push_str(&format!("127.0.0.1\t{hostname}\n"));
    } else {
        s.push_str(&format!("127.0.0.1\t{hostname} {name}\n"));
    }
    s
}

/// The host's search/options lines and its non-loopback nameservers; `--dns` replaces the
/// nameservers; `fallback` are used when none remain.
pub fn resolv_conf(host: &str, dns_flag: &[String], fallback: &[String]) -> String {
    let mut out = String::new();
    let mut servers: Vec<String> = Vec::new();
    for line in host.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                if let Some(ip) = words.next() {
                    let loopback = ip
                        .split('%')
                        .next()
                        .and_then(|a| a.parse::<IpAddr>().ok())
                        .is_some_and(|a| a.is_loopback());
                    if !loopback {
                        servers.push(ip.to_string());
                    }
                }
            }
            Some("search") | Some("domain") | Some("options") => {
                out.push_str(line.trim());
                out.push('\n');
            }
            _ => {}
        }
    }
    if !dns_flag.is_empty() {
        servers = dns_flag.to_vec();
    }
    if servers.is_empty() {
        servers = fallback.to_vec();
    }
    for s in servers {
        out.push_str(&format!("nameserver {s}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_drops_loopback_and_honours_dns() {
        let host = "# generated\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch example.com\noptions edns0\n";
        assert_eq!(
            resolv_conf(host, &[], &[]),
            "search example.com\noptions edns0\nnameserver 10.0.0.2\n"
        );
        assert_eq!(
            resolv_conf(host, &["1.1.1.1".into()], &[]),
            "search example.com\noptions edns0\nnameserver 1.1.1.1\n"
        );
        assert_eq!(
            resolv_conf("nameserver 127.0.0.1\n", &[], &["10.0.2.3".into()]),
            "nameserver 10.0.2.3\n"
        );
    }

    #[test]
    fn hosts_has_localhost_hostname_and_extras() {
        let h = hosts("abc123", "web", &["db:10.1.1.1".into()]);
        assert!(h.contains("127.0.0.1\tlocalhost"));
        assert!(h.contains("10.1.1.1\tdb\n"));
        assert!(h.ends_with("127.0.0.1\tabc123 web\n"));
    }
}
