//! `box quadlet` and the systemd user generator (box invoked as `box-user-generator`):
//! finds `.container`, `.volume`, `.image`, `.network`, `.pod` and `.kube` files and writes the units `systemd::quadlet` makes of them.
//!
//! Where the files are, first found wins for a name: `$BOX_QUADLET_UNIT_DIRS` (colon
//! separated) if set, else `$XDG_CONFIG_HOME/box/systemd/` (the config dir),
//! `/etc/box/systemd/users/$UID/`, `/etc/box/systemd/users/`.
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::cli::Ctx;
use crate::cli::args::QuadletArgs;
use crate::systemd::quadlet::{self, Options, Source};

/// The argv[0] that makes box the generator.
pub const GENERATOR_NAME: &str = "box-user-generator";

/// Kinds Quadlet has that box does not translate yet.
const OTHER_KINDS: &[&str] = &["build"];

pub fn quadlet(ctx: &Ctx, args: QuadletArgs) -> Result<u8> {
    let out = match (&args.output_dir, args.dryrun) {
        (_, true) => None,
        (Some(d), false) => Some(d.clone()),
        (None, false) => {
            bail!("give --dryrun, or the directory to write the units to: see 'box quadlet --help'")
        }
    };
    let mut global_args = Vec::new();
    if let Some(r) = &ctx.global.root {
        global_args.extend(["--root".to_string(), r.display().to_string()]);
    }
    if let Some(r) = &ctx.global.runroot {
        global_args.extend(["--runroot".to_string(), r.display().to_string()]);
    }
    let failed = generate(
        &unit_dirs(Some(&ctx.paths.config)),
        out.as_deref(),
        global_args,
    )?;
    if failed > 0 {
        bail!("{failed} unit file(s) could not be translated (see above)");
    }
    Ok(0)
}

/// When box runs as `box-user-generator NORMAL_DIR [EARLY_DIR LATE_DIR]`: write the units
/// into NORMAL_DIR; the exit code. None for any other name.
pub fn as_generator() -> Option<ExitCode> {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let name = Path::new(argv.first()?)
        .file_name()?
        .to_string_lossy()
        .into_owned();
    if name != GENERATOR_NAME {
        return None;
    }
    let Some(dir) = argv.get(1) else {
        eprintln!("{GENERATOR_NAME}: usage: {GENERATOR_NAME} NORMAL_DIR [EARLY_DIR LATE_DIR]");
        return Some(ExitCode::from(1));
    };
    let config = crate::paths::Paths::resolve(None, None)
        .ok()
        .map(|p| p.config);
    // A store named in the environment is the units' store too, as for `box quadlet`.
    let mut global_args = Vec::new();
    for (var, flag) in [("BOX_ROOT", "--root"), ("BOX_RUNROOT", "--runroot")] {
        if let Some(v) = std::env::var_os(var).filter(|v| !v.is_empty()) {
            global_args.extend([flag.to_string(), v.to_string_lossy().into_owned()]);
        }
    }
    match generate(
        &unit_dirs(config.as_deref()),
        Some(Path::new(dir)),
        global_args,
    ) {
        Ok(_) => Some(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("{GENERATOR_NAME}: {e:#}");
            Some(ExitCode::from(1))
        }
    }
}

fn unit_dirs(config: Option<&Path>) -> Vec<PathBuf> {
    if let Some(v) = std::env::var_os("BOX_QUADLET_UNIT_DIRS").filter(|v| !v.is_empty()) {
        return std::env::split_paths(&v).collect();
    }
    let uid = nix::unistd::getuid();
    let mut dirs: Vec<PathBuf> = config.map(|c| c.join("systemd")).into_iter().collect();
    dirs.push(PathBuf::from(format!("/etc/box/systemd/users/{uid}")));
    dirs.push(PathBuf::from("/etc/box/systemd/users"));
    dirs
}

/// Translate every unit file in `dirs` (a name found twice: the first); print (`out` None)
/// or write the units. Warnings and per-file errors go to stderr; returns how many files
/// failed.
fn generate(dirs: &[PathBuf], out: Option<&Path>, global_args: Vec<String>) -> Result<usize> {
    let mut files: std::collections::BTreeMap<String, PathBuf> = Default::default();
    for d in dirs {
        let Ok(rd) = std::fs::read_dir(d) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if e.path().is_file() {
                files.entry(name).or_insert_with(|| e.path());
            }
        }
    }
    // What the files beside each other name: volumes, images, networks, pods.
    let names_of = |ext: &str, f: fn(&Source) -> Result<Option<String>, String>| {
        let mut m = std::collections::BTreeMap::new();
        for (name, path) in files.iter().filter(|(n, _)| n.ends_with(ext)) {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let shown = path.display().to_string();
            let src = Source {
                path: &shown,
                name,
                text: &text,
            };
            if let Ok(Some(v)) = f(&src) {
                m.insert(name.clone(), v);
            }
        }
        m
    };
    let mut pod_members: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (name, pod) in names_of(".container", quadlet::container_pod) {
        let base = name.trim_end_matches(".container");
        pod_members
            .entry(pod)
            .or_default()
            .push(format!("{base}.service"));
    }
    let opts = Options {
        box_path: std::env::current_exe()?.display().to_string(),
        global_args,
        volume_names: names_of(".volume", |s| quadlet::volume_name(s).map(Some)),
        image_names: names_of(".image", quadlet::image_name),
        network_names: names_of(".network", |s| quadlet::network_name(s).map(Some)),
        pod_names: names_of(".pod", |s| quadlet::pod_name(s).map(Some)),
        pod_members,
    };
    let mut failed = 0;
    for (name, path) in &files {
        let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
        if OTHER_KINDS.contains(&ext) {
            eprintln!(
                "box: warning: {}: .{ext} units are not supported by box yet: skipped",
                path.display()
            );
            continue;
        }
        if !matches!(
            ext,
            "container" | "volume" | "image" | "network" | "pod" | "kube"
        ) {
            continue;
        }
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("box: {}: {e}", path.display());
                failed += 1;
                continue;
            }
        };
        let shown = path.display().to_string();
        let src = Source {
            path: &shown,
            name,
            text: &text,
        };
        let made = match ext {
            "volume" => quadlet::volume(&src, &opts),
            "image" => quadlet::image(&src, &opts),
            "network" => quadlet::network(&src, &opts),
            "pod" => quadlet::pod(&src, &opts),
            "kube" => quadlet::kube(&src, &opts),
            _ => quadlet::container(&src, &opts),
        };
        let g = match made {
            Ok(g) => g,
            Err(e) => {
                eprintln!("box: {e}");
                failed += 1;
                continue;
            }
        };
        for w in &g.warnings {
            eprintln!("box: warning: {w}");
        }
        match out {
            None => print!("---{}---\n{}\n", g.unit_name, g.text),
            Some(dir) => write_unit(dir, &g.unit_name, &g.text)?,
        }
    }
    Ok(failed)
}

/// Write `dir/name` whole (a temporary file, then a rename).
fn write_unit(dir: &Path, name: &str, text: &str) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, dir.join(name)).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })?;
    Ok(())
}
