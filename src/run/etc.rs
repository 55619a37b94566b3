//! The files box provides in the container's /etc: hostname, hosts, resolv.conf. They
//! live in the container's `userdata/` dir and are bind-mounted (read-write, as docker
//! does) over the image's. Their contents come from the network module, which knows the
//! addresses the container gets.
use std::path::Path;

use crate::network;
use crate::spec::Spec;

/// Write `userdata/{hostname,hosts,resolv.conf}`. A container that joins another's
/// network (`joined`) starts from that container's hosts and resolv.conf.
pub fn write_userdata(
    userdata: &Path,
    spec: &Spec,
    plan: &network::Plan,
    hostname: &str,
    name: &str,
    joined: Option<&network::JoinTarget>,
) -> std::io::Result<()> {
    std::fs::create_dir_all(userdata)?;
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let (hosts, resolv) = match joined {
        None => (
            network::hosts_file(plan, hostname, name, &spec.add_hosts),
            network::resolv_conf(plan, &host_resolv, &spec.dns),
        ),
        Some(target) => {
            let theirs = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
            let resolv = if spec.dns.is_empty() {
                theirs(&target.resolv_conf)
            } else {
                network::resolv_conf(plan, &host_resolv, &spec.dns)
            };
            let hosts =
                network::joined_hosts_file(&theirs(&target.hosts), hostname, name, &spec.add_hosts);
            (hosts, resolv)
        }
    };
    for (file, contents) in [
        ("hostname", format!("{hostname}\n")),
        ("hosts", hosts),
        ("resolv.conf", resolv),
    ] {
        let path = userdata.join(file);
        // Rewritten in place (not renamed): a running container's bind mount keeps
        // pointing at the same inode.
        if std::fs::read_to_string(&path).ok().as_deref() != Some(contents.as_str()) {
            match std::fs::write(&path, &contents) {
                // A keep-id container made it its root's (see `rootfs::mount_etc_files`):
                // not ours to write any more, but ours to replace.
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                    std::fs::remove_file(&path)?;
                    std::fs::write(&path, &contents)?;
                }
                r => r?,
            }
        }
    }
    Ok(())
}
