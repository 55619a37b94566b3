//! Named volumes in the per-user store.
use anyhow::{Result, bail};

use crate::cli::Ctx;
use crate::cli::args::{ForceArgs, VolumeLsArgs, VolumeNameArgs, VolumeNamesArgs, VolumeRmArgs};
use crate::container::Containers;
use crate::template::{self, Format};
use crate::volume::Volumes;

fn volumes(ctx: &Ctx) -> Result<Volumes> {
    ctx.paths.ensure()?;
    Ok(Volumes::open(&ctx.paths)?)
}

/// Names of the containers whose mounts use volume `name`.
pub fn users(ctx: &Ctx, name: &str) -> Result<Vec<String>> {
    let recs = Containers::open(&ctx.paths)?.list()?;
    Ok(Volumes::at(&ctx.paths.volumes())
        .mounted_by(name, &recs)
        .into_iter()
        .map(|r| r.name().to_string())
        .collect())
}

pub fn create(ctx: &Ctx, args: VolumeNameArgs) -> Result<u8> {
    let v = volumes(ctx)?.create(args.name.as_deref(), Default::default())?;
    crate::events::volume(&ctx.paths, "create", &v.name);
    println!("{}", v.name);
    Ok(0)
}

pub fn ls(ctx: &Ctx, args: VolumeLsArgs) -> Result<u8> {
    let all = volumes(ctx)?.list()?;
    if args.quiet {
        for v in &all {
            println!("{}", v.name);
        }
        return Ok(0);
    }
    match Format::from_arg(args.format.as_deref()) {
        Format::Json => println!("{}", serde_json::to_string_pretty(&all)?),
        Format::Template { source, table } => {
            let t = template::Template::parse(&source)?;
            if table {
                println!("{}", template::table_header(&source));
            }
            for v in &all {
                println!("{}", t.render(&serde_json::to_value(v)?)?);
            }
        }
        Format::Table => {
            let mut rows = vec![vec!["DRIVER".to_string(), "VOLUME NAME".to_string()]];
            for v in &all {
                rows.push(vec![v.driver.clone(), v.name.clone()]);
            }
            super::table::print(&rows);
        }
    }
    Ok(0)
}

pub fn rm(ctx: &Ctx, args: VolumeRmArgs) -> Result<u8> {
    let v = volumes(ctx)?;
    super::each_name(&args.names, |name| {
        v.get(name)?;
        let users = users(ctx, name)?;
        if !users.is_empty() {
            if !args.force {
                bail!(crate::volume::Error::InUse {
                    name: name.clone(),
                    container: users.join(", "),
                });
            }
            let c = Containers::open(&ctx.paths)?;
            for u in users {
                let rec = c.find(&u)?;
                super::rm::remove_container(
                    ctx,
                    &c,
                    &rec,
                    super::rm::Removal {
                        force: true,
                        ..Default::default()
                    },
                )?;
            }
        }
        v.remove(&ctx.paths.data, name)?;
        crate::events::volume(&ctx.paths, "remove", name);
        println!("{name}");
        Ok(())
    })
}

pub fn inspect(ctx: &Ctx, args: VolumeNamesArgs) -> Result<u8> {
    let v = volumes(ctx)?;
    let mut out = Vec::new();
    for name in &args.names {
        out.push(v.get(name)?);
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(0)
}

/// Remove every volume no container uses; returns the names and bytes freed.
pub fn prune_volumes(ctx: &Ctx) -> Result<(Vec<String>, u64)> {
    let v = volumes(ctx)?;
    let mut removed = Vec::new();
    let mut freed = 0;
    for vol in v.list()? {
        if !users(ctx, &vol.name)?.is_empty() {
            continue;
        }
        let size = v.size(&vol.name);
        v.remove(&ctx.paths.data, &vol.name)?;
        crate::events::volume(&ctx.paths, "prune", &vol.name);
        freed += size;
        removed.push(vol.name);
    }
    Ok((removed, freed))
}

pub fn prune(ctx: &Ctx, args: ForceArgs) -> Result<u8> {
    if !args.force
        && !super::image::confirm(
            "WARNING! This will remove all volumes not used by at least one container.\nAre you sure you want to continue?",
            "box volume prune",
        )?
    {
        return Ok(0);
    }
    let (removed, freed) = prune_volumes(ctx)?;
    for n in removed {
        println!("{n}");
    }
    println!("Total reclaimed space: {}", crate::units::human_size(freed));
    Ok(0)
}
