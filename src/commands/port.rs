//! `box port`: containers' published ports, as podman prints them: every mapping
//! (`80/tcp -> 0.0.0.0:8080`), or the host side of one container port (`0.0.0.0:8080`);
//! `--all` prefixes each line with the container's short id.
use anyhow::{Result, bail};

use super::containers;
use crate::cli::Ctx;
use crate::cli::args::PortArgs;
use crate::container::{Record, Status};
use crate::network::{PortMapping, Protocol};

pub fn port(ctx: &Ctx, args: PortArgs) -> Result<u8> {
    let c = containers(ctx)?;
    let (recs, wanted, prefix): (Vec<Record>, Option<&String>, bool) = if args.all || args.latest {
        if args.args.len() > 1 {
            bail!(
                "with --all or --latest give no container, only the port to look up: box port {} PORT[/PROTO]",
                if args.all { "-a" } else { "-l" }
            );
        }
        // Infra containers count where they hold a pod's ports.
        let keep =
            |r: &Record| !r.config.spec.is_infra() || !r.config.spec.network.ports.is_empty();
        let recs = if args.latest {
            match super::latest(&c, keep)? {
                Some(rec) => vec![rec],
                None => bail!("no containers to look up: create one first"),
            }
        } else {
            // podman: the running ones.
            let mut recs = c.list()?;
            recs.retain(|r| {
                keep(r) && crate::monitor::status::observe(r).status == Status::Running
            });
            recs
        };
        (recs, args.args.first(), args.all)
    } else {
        let Some(name) = args.args.first() else {
            bail!("give a container (box port CONTAINER [PORT]) or --all");
        };
        (vec![c.find(name)?], args.args.get(1), false)
    };
    let wanted = wanted.map(|w| parse(w)).transpose()?;
    let mut out = String::new();
    for rec in &recs {
        let lead = if prefix {
            format!("{}\t", &rec.id()[..12])
        } else {
            String::new()
        };
        let mut ports: Vec<&PortMapping> = rec.config.spec.network.ports.iter().collect();
        ports.sort_by_key(|m| (m.container_port, m.protocol, m.host_port));
        match wanted {
            None => {
                for m in ports {
                    out.push_str(&format!("{lead}{m}\n"));
                }
            }
            Some((port, proto)) => {
                let found: Vec<&&PortMapping> = ports
                    .iter()
                    .filter(|m| m.container_port == port && m.protocol == proto)
                    .collect();
                if found.is_empty() {
                    bail!(
                        "container {} publishes no port {port}/{}: see box port {}",
                        rec.name(),
                        proto.as_str(),
                        rec.name()
                    );
                }
                for m in found {
                    out.push_str(&format!("{lead}{}\n", m.host_endpoint()));
                }
            }
        }
    }
    super::image::emit(&out);
    Ok(0)
}

/// `80`, `80/tcp`, `53/udp`.
fn parse(s: &str) -> Result<(u16, Protocol)> {
    let (port, proto) = s.split_once('/').unwrap_or((s, "tcp"));
    let proto = match proto {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        _ => bail!("invalid port {s:?}: use PORT or PORT/tcp or PORT/udp"),
    };
    let port = port
        .parse::<u16>()
        .map_err(|_| anyhow::anyhow!("invalid port {s:?}: use PORT or PORT/tcp or PORT/udp"))?;
    Ok((port, proto))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_parse_as_podman_takes_them() {
        assert_eq!(parse("80").unwrap(), (80, Protocol::Tcp));
        assert_eq!(parse("53/udp").unwrap(), (53, Protocol::Udp));
        assert!(parse("80/sctp").is_err());
        assert!(parse("x").is_err());
    }
}
