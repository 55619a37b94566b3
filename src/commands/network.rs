//! `box network ...` (records in `crate::usernet`), and what `run --network NAME` needs: the
//! holder of the shared namespace started before a container on a user network and
//! removed after the last one. `network connect|disconnect` change a container's networks
//! (a running one's at once).
use std::io::Write;
use std::os::fd::AsFd;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::table::{self, align_tabs, columns};
use crate::cli::Ctx;
use crate::cli::args_network::{
    NetworkCommand, NetworkConnectArgs, NetworkCreateArgs, NetworkDisconnectArgs,
    NetworkExistsArgs, NetworkInspectArgs, NetworkLsArgs, NetworkPruneArgs, NetworkRmArgs,
};
use crate::template::{self, Format};
use crate::usernet::{Network, Networks, NewNetwork};

pub fn network(ctx: &Ctx, command: NetworkCommand) -> Result<u8> {
    match command {
        NetworkCommand::Create(a) => create(ctx, a),
        NetworkCommand::Ls(a) => ls(ctx, a),
        NetworkCommand::Inspect(a) => inspect(ctx, a),
        NetworkCommand::Rm(a) => rm(ctx, a),
        NetworkCommand::Prune(a) => prune(ctx, a),
        NetworkCommand::Exists(a) => exists(ctx, a),
        NetworkCommand::Connect(a) => connect(ctx, &a),
        NetworkCommand::Disconnect(a) => disconnect(ctx, &a),
    }
}

/// `run/create --network` (repeated): the user networks named, or none for one network
/// mode. Modes cannot be combined with anything.
pub fn user_networks(ctx: &Ctx, networks: &[String]) -> Result<Vec<String>> {
    if networks.len() > 1 {
        if let Some(m) = networks.iter().find(|n| is_mode(n)) {
            bail!(
                "--network {m} cannot be combined with other --network options: only user networks can be"
            );
        }
        let mut seen = std::collections::BTreeSet::new();
        for n in networks {
            if !seen.insert(n) {
                bail!("--network {n} is given twice");
            }
        }
    }
    let mut out = Vec::new();
    for n in networks {
        if let Some(net) = user_network(ctx, Some(n))? {
            out.push(net);
        }
    }
    Ok(out)
}

/// `run/create --network NAME`: the user network NAME (None for a network mode).
pub fn user_network(ctx: &Ctx, network: Option<&str>) -> Result<Option<String>> {
    let Some(n) = network else { return Ok(None) };
    if is_mode(n) {
        return Ok(None);
    }
    match Networks::at(&ctx.paths).get(n) {
        Ok(net) => {
            crate::usernet::check_tools()?;
            Ok(Some(net.name))
        }
        Err(crate::usernet::Error::NotFound(_)) => bail!(
            "unknown network {n:?}: use default, pasta, slirp4netns, none, host, container:NAME or a network (box network ls)"
        ),
        Err(e) => Err(e.into()),
    }
}

/// `--network-alias`, `--ip` and `--ip6`: only with a user network; an address must be a
/// host address of its subnet other than the gateway (whether it is free is seen at start).
pub fn check_addressing(
    ctx: &Ctx,
    network: Option<&str>,
    opts: &crate::cli::args::ContainerOpts,
) -> Result<Option<std::net::Ipv4Addr>> {
    let Some(n) = network else {
        if !opts.network_alias.is_empty() || opts.ip.is_some() || opts.ip6.is_some() {
            bail!(
                "--network-alias, --ip and --ip6 need a user network: add --network NAME (box network ls)"
            );
        }
        return Ok(None);
    };
    for a in &opts.network_alias {
        if !crate::container::is_docker_name(a, 253) {
            bail!("invalid --network-alias {a:?}: use letters, digits, '_', '.' and '-'");
        }
    }
    let Some(ip) = &opts.ip else { return Ok(None) };
    let net = Networks::at(&ctx.paths).get(n)?;
    Ok(Some(net.check_address(ip)?))
}

/// `--ip6`: a host address of the (first) user network's IPv6 subnet, its gateway aside.
pub fn check_ip6(
    ctx: &Ctx,
    network: Option<&str>,
    ip6: Option<&str>,
) -> Result<Option<std::net::Ipv6Addr>> {
    let (Some(n), Some(ip)) = (network, ip6) else {
        return Ok(None);
    };
    Ok(Some(Networks::at(&ctx.paths).get(n)?.check_address6(ip)?))
}

fn is_mode(n: &str) -> bool {
    [
        "default",
        "private",
        "bridge",
        "pasta",
        "slirp4netns",
        "none",
        "host",
    ]
    .contains(&n)
        || n.starts_with("container:")
        // The helpers with their options (pasta:OPTS, slirp4netns:OPTS).
        || n.starts_with("pasta:")
        || n.starts_with("slirp4netns:")
}

/// Before a container on user networks starts: the holder of the shared network namespace
/// runs (created and started now if not). The guard returned says the holder is in use:
/// keep it until the container is gone, then give it to [`release_holder`].
pub fn ensure_holder(ctx: &Ctx, spec: &crate::spec::Spec) -> Result<Option<crate::lock::FileLock>> {
    if spec.networks.is_empty() {
        return Ok(None);
    }
    let user = crate::usernet::holder_user(&ctx.paths)?;
    let _lock = crate::usernet::holder_lock(&ctx.paths)?;
    let c = super::containers(ctx)?;
    let found = match c.find(crate::usernet::HOLDER) {
        // The last container's holder, killed and going by itself (`release`): once its
        // supervisor (and a monitor, for one an older box started) is gone, so is its
        // record.
        Ok(rec) if crate::monitor::stop_mark(&rec).exists() => {
            crate::monitor::stop::wait_not_running(&rec, std::time::Duration::from_secs(5));
            crate::monitor::stop::wait_monitor_gone(&rec, std::time::Duration::from_secs(5));
            c.find(crate::usernet::HOLDER)
        }
        found => found,
    };
    let rec = match found {
        Ok(rec) => rec,
        Err(crate::container::Error::NotFound(_)) => {
            let plan = crate::network::Plan::new(&crate::network::Opts::default(), &[])?;
            super::pod::create_holder(&c, crate::usernet::HOLDER, plan)?
        }
        Err(e) => return Err(e.into()),
    };
    if crate::monitor::status::observe(&rec).status != crate::container::Status::Running {
        crate::monitor::start_unmonitored(&ctx.paths, &rec)
            .context("cannot start the holder of the user networks' namespace")?;
    }
    Ok(Some(user))
}

/// The holder's name when it exists with no container on a user network running.
pub fn idle_holder(ctx: &Ctx) -> Option<String> {
    let c = super::containers(ctx).ok()?;
    let rec = c.find(crate::usernet::HOLDER).ok()?;
    let unused = crate::usernet::holder_unused(&ctx.paths).ok()??;
    let idle = crate::usernet::leases_in_use(&ctx.paths) == 0;
    drop(unused);
    idle.then(|| rec.name().to_string())
}

/// `system check --repair`: an idle holder goes.
pub fn stop_idle_holder(ctx: &Ctx) -> Result<()> {
    release(ctx)
}

/// After a container on user networks exited (`guard` from [`ensure_holder`]): with no
/// container left on any, and none starting, the holder goes (stopped and removed).
pub fn release_holder(ctx: &Ctx, guard: Option<crate::lock::FileLock>) -> Result<()> {
    let Some(guard) = guard else { return Ok(()) };
    drop(guard);
    release(ctx)
}

fn release(ctx: &Ctx) -> Result<()> {
    let _lock = crate::usernet::holder_lock(&ctx.paths)?;
    let Some(_unused) = crate::usernet::holder_unused(&ctx.paths)? else {
        return Ok(()); // another container runs or starts on a user network
    };
    if crate::usernet::leases_in_use(&ctx.paths) > 0 {
        return Ok(());
    }
    let c = super::containers(ctx)?;
    if let Ok(rec) = c.find(crate::usernet::HOLDER) {
        // Nothing is plugged in any more: aardvark-dns and the teardowns still running go
        // first, while the holder goes (they only lived in its namespace).
        crate::usernet::abandon_teardowns();
        crate::usernet::stop_dns(&ctx.paths);
        let st = crate::monitor::status::observe(&rec);
        if rec.config.autoremove && st.status == crate::container::Status::Running {
            // It goes by itself: killed, its supervisor retires its record (waited for: no
            // `ps -a` after the last container shows it) and exits.
            crate::monitor::stop::force(&rec, &st)?;
        } else {
            // Stopped without being retired (its supervisor was killed), or one an older
            // box made: removed here.
            super::rm::remove_container(
                ctx,
                &c,
                &rec,
                super::rm::Removal {
                    force: true,
                    time: Some(2),
                    volumes: false,
                },
            )?;
        }
    }
    Ok(())
}

/// `network connect|disconnect`: a container on user networks gets one more or one less
/// (at least one stays). A running one is plugged in or out at once (`usernet::connect`),
/// its resolv.conf gaining or losing the network's DNS server; a stopped one from its next
/// start.
fn connect(ctx: &Ctx, a: &NetworkConnectArgs) -> Result<u8> {
    change(ctx, &a.network, &a.container, Change::Connect(a))
}

fn disconnect(ctx: &Ctx, a: &NetworkDisconnectArgs) -> Result<u8> {
    change(ctx, &a.network, &a.container, Change::Disconnect(a.force))
}

enum Change<'a> {
    Connect(&'a NetworkConnectArgs),
    Disconnect(bool),
}

fn change(ctx: &Ctx, network: &str, container: &str, how: Change) -> Result<u8> {
    let net = Networks::at(&ctx.paths).get(network)?;
    let c = super::containers(ctx)?;
    let mut rec = c.find(container)?;
    let spec = &rec.config.spec;
    let on = &spec.networks;
    if on.is_empty() {
        let mode = match spec.network_container() {
            Some(t) => format!("container:{t}"),
            None => spec.network_arg(),
        };
        bail!(
            "container {}'s network mode {mode:?} is not supported: invalid network mode (only a container on user networks can be connected: recreate it with --network {})",
            rec.name(),
            net.name
        );
    }
    let add = matches!(how, Change::Connect(_));
    let has = on.contains(&net.name);
    match (add, has) {
        (true, true) => bail!(
            "container {} is already on network {}",
            rec.name(),
            net.name
        ),
        (false, false) => bail!("container {} is not on network {}", rec.name(), net.name),
        (false, true) if on.len() == 1 => bail!(
            "network {} is container {}'s only network: remove the container or recreate it",
            net.name,
            rec.name()
        ),
        _ => {}
    }
    let mut opts = crate::spec::NetworkOpts::default();
    if let Change::Connect(a) = how {
        for alias in &a.alias {
            if !crate::container::is_docker_name(alias, 253) {
                bail!("invalid --alias {alias:?}: use letters, digits, '_', '.' and '-'");
            }
        }
        opts.aliases = a.alias.clone();
        opts.ip =
            a.ip.as_deref()
                .map(|ip| net.check_address(ip))
                .transpose()?;
        opts.ip6 = a
            .ip6
            .as_deref()
            .map(|ip| net.check_address6(ip))
            .transpose()?;
    }
    // A running container: plugged in or out first (nothing changes when that fails).
    let mut plugged = None;
    let mut running_plug = None;
    if crate::monitor::status::observe(&rec).status == crate::container::Status::Running {
        let holder = crate::network::join_target(&ctx.paths, crate::usernet::HOLDER)?;
        let it = crate::network::join_target(&ctx.paths, rec.id())?;
        let running = running_of(&holder, &it, &rec);
        match how {
            Change::Connect(_) => {
                let want = crate::usernet::Want {
                    network: net.name.clone(),
                    ip: opts.ip,
                    ip6: opts.ip6,
                    aliases: opts.aliases.clone(),
                    mac: opts.mac.clone(),
                };
                let plug =
                    crate::usernet::connect(&ctx.paths, &running, &want, &spec.network_aliases)?;
                plugged = Some(plug);
                running_plug = Some((holder, it));
            }
            Change::Disconnect(force) => {
                let plug = crate::usernet::disconnect(&ctx.paths, &running, &net.name, force)?;
                plugged = Some(plug);
            }
        }
    }
    let name = net.name.clone();
    let updated = c.update_spec(&mut rec, |spec| {
        if add {
            if spec.networks.contains(&name) {
                return; // a concurrent connect of the same network
            }
            spec.networks.push(name.clone());
            if opts != crate::spec::NetworkOpts::default() {
                spec.settings.per_network.insert(name, opts);
            }
        } else {
            // `--ip` is the first network's address.
            if spec.networks.first() == Some(&name) {
                spec.ip = None;
            }
            spec.networks.retain(|n| *n != name);
            spec.settings.per_network.remove(&name);
        }
    });
    if let Err(e) = updated {
        // Not recorded: the network it was just plugged into goes again.
        if let Some((holder, it)) = running_plug {
            let running = running_of(&holder, &it, &rec);
            let _ = crate::usernet::disconnect(&ctx.paths, &running, &net.name, true);
        }
        return Err(e.into());
    }
    if let Some(plug) = plugged {
        // Its DNS server on the network and its own names at its addresses there:
        // appended (as podman) or taken out.
        let dir = rec.userdata_dir();
        let spec = &rec.config.spec;
        let hostname = if spec.hostname.is_empty() {
            rec.short_id()
        } else {
            &spec.hostname
        };
        let names = format!("{hostname} {}", rec.name());
        let done = nameserver(
            &dir.join("resolv.conf"),
            &plug.network.subnets[0].gateway,
            add,
        )
        .and_then(|()| own_hosts(&dir.join("hosts"), &plug, &names, add));
        if let Err(e) = done {
            eprintln!("box: warning: {e:#}");
        }
    }
    let what = if add { "connect" } else { "disconnect" };
    crate::events::network(&ctx.paths, what, &net.name, rec.id());
    Ok(0)
}

/// Add (at the end) or remove the lines of `plug`'s addresses in a running container's
/// /etc/hosts, rewritten in place.
fn own_hosts(
    path: &std::path::Path,
    plug: &crate::usernet::Plug,
    names: &str,
    add: bool,
) -> Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let ips: Vec<String> = plug.ips().map(|ip| ip.to_string()).collect();
    let ours = |l: &str| {
        l.split_whitespace()
            .next()
            .is_some_and(|f| ips.iter().any(|i| i == f))
    };
    let mut new: String = text
        .lines()
        .filter(|l| !ours(l))
        .map(|l| format!("{l}\n"))
        .collect();
    if add {
        for ip in &ips {
            new.push_str(&format!("{ip}\t{names}\n"));
        }
    }
    std::fs::write(path, new).with_context(|| format!("cannot write {}", path.display()))
}

/// Add (as podman, at the end) or remove `nameserver IP` in a running container's
/// resolv.conf, rewritten in place: it is bind-mounted as it is.
fn nameserver(path: &std::path::Path, ip: &str, add: bool) -> Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let line = format!("nameserver {ip}");
    let has = text.lines().any(|l| l.trim() == line);
    let new = match (add, has) {
        (true, false) => format!(
            "{text}{}{line}\n",
            if text.ends_with('\n') || text.is_empty() {
                ""
            } else {
                "\n"
            }
        ),
        (false, true) => text
            .lines()
            .filter(|l| l.trim() != line)
            .map(|l| format!("{l}\n"))
            .collect(),
        _ => return Ok(()),
    };
    std::fs::write(path, new).with_context(|| format!("cannot write {}", path.display()))
}

fn create(ctx: &Ctx, a: NetworkCreateArgs) -> Result<u8> {
    ctx.paths.ensure()?;
    let made = Networks::at(&ctx.paths).create(&NewNetwork {
        name: a.name,
        driver: a.driver,
        subnets: a.subnet,
        gateways: a.gateway,
        ipv6: a.ipv6,
        internal: a.internal,
        disable_dns: a.disable_dns,
        ip_range: a.ip_range,
        labels: crate::spec::labels(&a.label)?,
    });
    let net = match made {
        // --ignore, as podman: the existing network is kept as it is.
        Err(crate::usernet::Error::Exists(name)) if a.ignore => {
            println!("{name}");
            return Ok(0);
        }
        r => r?,
    };
    crate::events::network(&ctx.paths, "create", &net.name, "");
    println!("{}", net.name);
    Ok(0)
}

fn object(n: &Network) -> Value {
    let mut v = serde_json::to_value(n).unwrap_or(Value::Null);
    // ls templates: podman's field names.
    if let Value::Object(m) = &mut v {
        m.insert("Name".into(), json!(n.name));
        m.insert("ID".into(), json!(crate::container::short_id(&n.id)));
        m.insert("Driver".into(), json!(n.driver));
        m.insert(
            "Subnets".into(),
            json!(
                n.subnets
                    .iter()
                    .map(|s| s.subnet.clone())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        );
        m.insert("Internal".into(), json!(n.internal));
        m.insert("IPv6Enabled".into(), json!(n.ipv6_enabled));
        m.insert("DNSEnabled".into(), json!(n.dns_enabled));
        m.insert("NetworkInterface".into(), json!(n.network_interface));
    }
    v
}

fn matches(n: &Network, filter: &str) -> Result<bool> {
    let (k, v) = filter
        .split_once('=')
        .with_context(|| format!("invalid filter {filter:?}: use KEY=VALUE"))?;
    Ok(match k {
        "name" => n.name.contains(v),
        "id" => n.id.starts_with(v),
        "driver" => n.driver == v,
        "label" => match v.split_once('=') {
            Some((lk, lv)) => n.labels.get(lk).is_some_and(|x| x == lv),
            None => n.labels.contains_key(v),
        },
        other => bail!("unknown filter {other:?}: use name, id, driver or label"),
    })
}

fn ls(ctx: &Ctx, a: NetworkLsArgs) -> Result<u8> {
    let mut nets = Vec::new();
    for n in Networks::at(&ctx.paths).list()? {
        let mut keep = true;
        for f in &a.filter {
            keep &= matches(&n, f)?;
        }
        if keep {
            nets.push(n);
        }
    }
    let mut out = std::io::stdout().lock();
    if a.quiet {
        for n in &nets {
            writeln!(out, "{}", n.name)?;
        }
        return Ok(0);
    }
    match Format::from_arg(a.format.as_deref()) {
        Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&nets)?)?,
        Format::Template { source, table } => {
            let t = template::Template::parse(&source)?;
            let mut lines = Vec::new();
            if table {
                lines.push(template::table_header(&source));
            }
            for n in &nets {
                lines.push(t.render(&object(n))?);
            }
            if table {
                write!(out, "{}", align_tabs(&lines))?;
            } else {
                for l in lines {
                    writeln!(out, "{l}")?;
                }
            }
        }
        Format::Table => {
            let mut t = vec![table::header(&["NETWORK ID", "NAME", "DRIVER", "SUBNETS"])];
            for n in &nets {
                let o = object(n);
                let s = |k: &str| o[k].as_str().unwrap_or("").to_string();
                t.push(vec![s("ID"), s("Name"), s("Driver"), s("Subnets")]);
            }
            write!(out, "{}", columns(&t))?;
        }
    }
    Ok(0)
}

fn inspect(ctx: &Ctx, a: NetworkInspectArgs) -> Result<u8> {
    let nets = Networks::at(&ctx.paths);
    let mut all = Vec::new();
    for n in &a.networks {
        all.push(nets.get(n)?);
    }
    let mut out = std::io::stdout().lock();
    match &a.format {
        None => writeln!(out, "{}", serde_json::to_string_pretty(&all)?)?,
        Some(f) => {
            let t = template::Template::parse(&f.replace("\\t", "\t").replace("\\n", "\n"))?;
            for n in &all {
                writeln!(out, "{}", t.render(&object(n))?)?;
            }
        }
    }
    Ok(0)
}

/// The containers on network `name`.
fn users(ctx: &Ctx, name: &str) -> Result<Vec<crate::container::Record>> {
    Ok(super::containers(ctx)?
        .list()?
        .into_iter()
        .filter(|r| r.config.spec.networks.iter().any(|n| n == name))
        .collect())
}

fn rm(ctx: &Ctx, a: NetworkRmArgs) -> Result<u8> {
    let nets = Networks::at(&ctx.paths);
    let c = super::containers(ctx)?;
    super::each_name(&a.networks, |name| {
        let net = match nets.get(name) {
            Ok(net) => net,
            // podman: with -f a network that does not exist is not an error.
            Err(crate::usernet::Error::NotFound(_)) if a.force => return Ok(()),
            Err(e) => return Err(super::missing_is_1(e.into())),
        };
        let users = users(ctx, &net.name)?;
        if !users.is_empty() && !a.force {
            let names: Vec<&str> = users.iter().map(|r| r.name()).collect();
            return Err(super::with_code(
                super::RM_IN_USE,
                &anyhow::anyhow!(
                    "network {} is used by container(s) {}: remove them first, or all with box network rm -f {}",
                    net.name,
                    names.join(", "),
                    net.name
                ),
            ));
        }
        for rec in &users {
            super::rm::remove_container(
                ctx,
                &c,
                rec,
                super::rm::Removal {
                    force: true,
                    time: None,
                    volumes: false,
                },
            )?;
        }
        if !users.is_empty() {
            let _ = release(ctx);
        }
        nets.remove(&net.name)?;
        crate::events::network(&ctx.paths, "remove", &net.name, "");
        println!("{}", net.name);
        Ok(())
    })
}

fn prune(ctx: &Ctx, a: NetworkPruneArgs) -> Result<u8> {
    if !a.force
        && !super::image::confirm(
            "WARNING! This will remove all networks not used by at least one container.\nAre you sure you want to continue?",
            "box network prune",
        )?
    {
        return Ok(0);
    }
    for name in prune_networks(ctx)? {
        println!("{name}");
    }
    Ok(0)
}

/// Remove every network no container is on; their names (for `system prune` too).
pub fn prune_networks(ctx: &Ctx) -> Result<Vec<String>> {
    let nets = Networks::at(&ctx.paths);
    let mut removed = Vec::new();
    for n in nets.list()? {
        if !users(ctx, &n.name)?.is_empty() {
            continue;
        }
        nets.remove(&n.name)?;
        crate::events::network(&ctx.paths, "remove", &n.name, "");
        removed.push(n.name);
    }
    Ok(removed)
}

fn exists(ctx: &Ctx, a: NetworkExistsArgs) -> Result<u8> {
    match Networks::at(&ctx.paths).get(&a.network) {
        Ok(_) => Ok(0),
        Err(crate::usernet::Error::NotFound(_)) => Ok(1),
        Err(e) => Err(e.into()),
    }
}

/// A running container `rec` (namespaces `it`) and the holder's, for `usernet::connect`.
fn running_of<'a>(
    holder: &'a crate::network::JoinTarget,
    it: &'a crate::network::JoinTarget,
    rec: &'a crate::container::Record,
) -> crate::usernet::Running<'a> {
    crate::usernet::Running {
        holder_userns: holder.userns.as_fd(),
        holder_netns: holder.netns.as_fd(),
        netns: it.netns.as_fd(),
        id: rec.id(),
        name: rec.name(),
    }
}
