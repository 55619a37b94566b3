//! `box network ...`: user networks' records (`crate::usernet`). Containers cannot join a
//! user network yet: `run --network NAME`, `network connect` and `disconnect` say so.
use std::io::Write;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::table::{self, align_tabs, columns};
use crate::cli::Ctx;
use crate::cli::args_network::{
    NetworkCommand, NetworkConnectArgs, NetworkCreateArgs, NetworkExistsArgs, NetworkInspectArgs,
    NetworkLsArgs, NetworkPruneArgs, NetworkRmArgs,
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
        NetworkCommand::Connect(a) | NetworkCommand::Disconnect(a) => not_yet(ctx, &a),
    }
}

/// The one refusal for containers on user networks.
pub fn joining_not_supported(name: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "network {name}: containers cannot join user networks yet (box keeps their records only); use a pod (box pod create, run --pod) for containers that talk over localhost"
    )
}

/// `run/create --network NAME` with a NAME that is no network mode: a user network, which
/// cannot be joined yet, or nothing at all.
pub fn check_run_network(ctx: &Ctx, network: Option<&str>) -> Result<()> {
    let Some(n) = network else { return Ok(()) };
    let modes = [
        "default",
        "private",
        "bridge",
        "pasta",
        "slirp4netns",
        "none",
        "host",
    ];
    if modes.contains(&n) || n.starts_with("container:") {
        return Ok(());
    }
    match Networks::at(&ctx.paths).get(n) {
        Ok(net) => Err(joining_not_supported(&net.name)),
        Err(crate::usernet::Error::NotFound(_)) => bail!(
            "unknown network {n:?}: use default, pasta, slirp4netns, none, host, container:NAME or a network (box network ls)"
        ),
        Err(e) => Err(e.into()),
    }
}

fn not_yet(ctx: &Ctx, a: &NetworkConnectArgs) -> Result<u8> {
    let net = Networks::at(&ctx.paths).get(&a.network)?;
    super::containers(ctx)?.find(&a.container)?;
    Err(joining_not_supported(&net.name))
}

fn create(ctx: &Ctx, a: NetworkCreateArgs) -> Result<u8> {
    ctx.paths.ensure()?;
    let net = Networks::at(&ctx.paths).create(&NewNetwork {
        name: a.name,
        driver: a.driver,
        subnet: a.subnet,
        gateway: a.gateway,
        internal: a.internal,
        labels: crate::spec::labels(&a.label)?,
    })?;
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

fn rm(ctx: &Ctx, a: NetworkRmArgs) -> Result<u8> {
    let nets = Networks::at(&ctx.paths);
    // No container can be on a user network yet, so none is ever in use.
    super::each_name(&a.networks, |name| {
        let net = nets.get(name)?;
        nets.remove(&net.name)?;
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
    let nets = Networks::at(&ctx.paths);
    for n in nets.list()? {
        nets.remove(&n.name)?;
        println!("{}", n.name);
    }
    Ok(0)
}

fn exists(ctx: &Ctx, a: NetworkExistsArgs) -> Result<u8> {
    match Networks::at(&ctx.paths).get(&a.network) {
        Ok(_) => Ok(0),
        Err(crate::usernet::Error::NotFound(_)) => Ok(1),
        Err(e) => Err(e.into()),
    }
}
