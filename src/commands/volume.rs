//! Named volumes in the per-user store.
use anyhow::{Result, bail};

use crate::cli::Ctx;
use crate::cli::args::{ForceArgs, VolumeLsArgs, VolumeRmArgs};
use crate::cli::args_run::{
    VolumeCreateArgs, VolumeExportArgs, VolumeImportArgs, VolumeInspectArgs,
};
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

pub fn create(ctx: &Ctx, args: VolumeCreateArgs) -> Result<u8> {
    let labels = crate::spec::labels(&args.label)?;
    let mut options = std::collections::BTreeMap::new();
    for o in &args.opt {
        let (k, v) = o
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("-o {o}: use KEY=VALUE (type=, device= or o=)"))?;
        match (k, v) {
            ("type", "tmpfs" | "bind" | "none" | "") | ("o", _) => {}
            ("type", other) => bail!(
                "-o type={other}: a rootless volume can be type=tmpfs, type=bind or type=none"
            ),
            ("device", d) => {
                if !std::path::Path::new(d).is_absolute() {
                    bail!("-o device={d}: give an absolute host path");
                }
            }
            _ => bail!("-o {o}: unsupported: use type=, device= or o="),
        }
        options.insert(k.to_string(), v.to_string());
    }
    let bind = options.get("type").map(String::as_str) == Some("bind")
        || options
            .get("o")
            .is_some_and(|o| o.split(',').any(|x| x == "bind" || x == "rbind"));
    if bind {
        let Some(device) = options.get("device") else {
            bail!("-o type=bind needs -o device=DIR (the host directory)");
        };
        if !std::path::Path::new(device).is_dir() {
            bail!("-o device={device}: no such directory");
        }
    }
    let vols = volumes(ctx)?;
    if args.ignore
        && let Some(name) = &args.name
        && vols.get(name).is_ok()
    {
        println!("{name}");
        return Ok(0);
    }
    let v = vols.create_with(args.name.as_deref(), labels, options)?;
    crate::events::volume(&ctx.paths, "create", &v.name);
    println!("{}", v.name);
    Ok(0)
}

/// Whether volume `v` passes one `volume ls --filter KEY=VALUE` (podman's keys).
fn volume_filter(ctx: &Ctx, v: &crate::volume::Volume, filter: &str) -> Result<bool> {
    let (k, value) = filter
        .split_once('=')
        .ok_or_else(|| anyhow::anyhow!("invalid filter {filter:?}: use KEY=VALUE"))?;
    Ok(match k {
        "name" => v.name.contains(value),
        "driver" => v.driver == value,
        "label" => match value.split_once('=') {
            Some((lk, lv)) => v.labels.get(lk).is_some_and(|x| x == lv),
            None => v.labels.contains_key(value),
        },
        "dangling" => {
            let unused = users(ctx, &v.name)?.is_empty();
            match value {
                "true" | "1" => unused,
                "false" | "0" => !unused,
                _ => bail!("invalid filter dangling={value}: use true or false"),
            }
        }
        "opt" => match value.split_once('=') {
            Some((ok, ov)) => v.options.get(ok).is_some_and(|x| x == ov),
            None => v.options.contains_key(value),
        },
        other => bail!("unknown filter {other:?}: use name, label, driver, dangling or opt"),
    })
}

pub fn ls(ctx: &Ctx, args: VolumeLsArgs) -> Result<u8> {
    let mut all = Vec::new();
    for v in volumes(ctx)?.list()? {
        let mut keep = true;
        for f in &args.filter {
            keep &= volume_filter(ctx, &v, f)?;
        }
        if keep {
            all.push(v);
        }
    }
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
    let names: Vec<String> = if args.all {
        v.list()?.into_iter().map(|x| x.name).collect()
    } else {
        args.names.clone()
    };
    super::each_name(&names, |name| {
        match v.get(name) {
            Ok(_) => {}
            // podman: with -f a volume that does not exist is not an error.
            Err(crate::volume::Error::NotFound(_)) if args.force => return Ok(()),
            Err(e) => return Err(super::missing_is_1(e.into())),
        }
        let users = users(ctx, name)?;
        if !users.is_empty() {
            if !args.force {
                return Err(super::with_code(
                    super::RM_IN_USE,
                    &crate::volume::Error::InUse {
                        name: name.clone(),
                        container: users.join(", "),
                    }
                    .into(),
                ));
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

pub fn inspect(ctx: &Ctx, args: VolumeInspectArgs) -> Result<u8> {
    let v = volumes(ctx)?;
    let mut out = Vec::new();
    if args.all {
        out = v.list()?;
    }
    for name in &args.names {
        out.push(v.get(name)?);
    }
    match Format::from_arg(args.format.as_deref()) {
        Format::Template { source, .. } => {
            let t = template::Template::parse(&source)?;
            for vol in &out {
                println!("{}", t.render(&serde_json::to_value(vol)?)?);
            }
        }
        _ => println!("{}", serde_json::to_string_pretty(&out)?),
    }
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

/// tar in box's user namespace (as `box unshare` runs commands), so files owned by the
/// container's ids are read, and written back, with their owners.
fn tar_in_userns(
    ctx: &Ctx,
    args: &[&std::ffi::OsStr],
    stdin: std::process::Stdio,
    stdout: std::process::Stdio,
) -> Result<()> {
    let tar = crate::userns::tool_path("tar")
        .ok_or_else(|| anyhow::anyhow!("tar is not installed: apt install tar"))?;
    let maps = crate::userns::IdMaps::for_current_user(crate::userns::Mode::Auto)?;
    let mut cmd = crate::userns::helper_command(&[std::ffi::OsStr::new("unshare"), "--".as_ref()]);
    cmd.arg(&tar)
        .args(args)
        .env("BOX_ROOT", &ctx.paths.data)
        .env("BOX_RUNROOT", &ctx.paths.runtime)
        .stdin(stdin)
        .stdout(stdout);
    let status = crate::userns::spawn_helper(&maps, cmd)?.wait()?;
    if !status.success() {
        bail!("tar failed ({status})");
    }
    Ok(())
}

pub fn export(ctx: &Ctx, args: VolumeExportArgs) -> Result<u8> {
    let v = volumes(ctx)?.get(&args.name)?;
    let out = match &args.output {
        Some(path) => {
            // Written beside, renamed into place when complete.
            let tmp = path.with_extension("box-tmp");
            let f = std::fs::File::create(&tmp)
                .map_err(|e| anyhow::anyhow!("-o {}: {e}", path.display()))?;
            let r = tar_in_userns(
                ctx,
                &[
                    "--numeric-owner".as_ref(),
                    "-C".as_ref(),
                    v.mountpoint.as_os_str(),
                    "-cf".as_ref(),
                    "-".as_ref(),
                    ".".as_ref(),
                ],
                std::process::Stdio::null(),
                f.into(),
            );
            if let Err(e) = r {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
            std::fs::rename(&tmp, path)?;
            return Ok(0);
        }
        None => std::process::Stdio::inherit(),
    };
    tar_in_userns(
        ctx,
        &[
            "--numeric-owner".as_ref(),
            "-C".as_ref(),
            v.mountpoint.as_os_str(),
            "-cf".as_ref(),
            "-".as_ref(),
            ".".as_ref(),
        ],
        std::process::Stdio::null(),
        out,
    )?;
    Ok(0)
}

pub fn import(ctx: &Ctx, args: VolumeImportArgs) -> Result<u8> {
    let v = volumes(ctx)?.get(&args.name)?;
    let input = if args.source == "-" {
        std::process::Stdio::inherit()
    } else {
        std::fs::File::open(&args.source)
            .map_err(|e| anyhow::anyhow!("{}: {e}", args.source))?
            .into()
    };
    let maps = crate::userns::IdMaps::for_current_user(crate::userns::Mode::Auto)?;
    let mut cmd = crate::userns::helper_command(&[
        std::ffi::OsStr::new("volume-import"),
        v.mountpoint.as_os_str(),
    ]);
    cmd.env("BOX_ROOT", &ctx.paths.data)
        .env("BOX_RUNROOT", &ctx.paths.runtime)
        .stdin(input);
    let status = crate::userns::spawn_helper(&maps, cmd)?.wait()?;
    if !status.success() {
        bail!("cannot import {} into volume {}", args.source, args.name);
    }
    Ok(0)
}
