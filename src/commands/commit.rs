//! `box commit` and `box export`: a container's changes as a new image, its root
//! filesystem as a tarball (`storage::layer` writes both, inside the container's user
//! namespace through `monitor::cp_ns`).
use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;

use anyhow::{Context, Result, bail};

use crate::cli::Ctx;
use crate::cli::args::{CommitArgs, ExportArgs};
use crate::container::{Containers, Record, Status};
use crate::monitor::cp_ns;
use crate::monitor::{freezer, status};
use crate::spec::Driver;
use crate::storage::layer::{self, CommitOptions, Digests, Mode, Options};
use crate::storage::{Store, unique};

fn containers(ctx: &Ctx) -> Result<Containers> {
    ctx.paths.ensure()?;
    Ok(Containers::open(&ctx.paths)?)
}

/// `--timestamp`, else SOURCE_DATE_EPOCH.
pub(crate) fn timestamp(arg: Option<u64>) -> Result<Option<u64>> {
    if arg.is_some() {
        return Ok(arg);
    }
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .map(Some)
            .with_context(|| format!("SOURCE_DATE_EPOCH={v:?} is not a number of seconds")),
        _ => Ok(None),
    }
}

/// A layer-writer error as a `monitor` one (it crosses the namespace helper's pipe).
fn failed(e: layer::Error) -> crate::monitor::Error {
    crate::monitor::Error::Failed(e.to_string())
}

/// Write the container's upper directory as a gzip layer into `out`.
pub(crate) fn write_upper(rec: &Record, out: File, ts: Option<u64>) -> Result<Digests> {
    if rec.config.spec.rootfs.driver == Driver::Vfs {
        bail!(
            "container {} uses the vfs storage driver, which keeps no record of its changes: commit and diff need overlay or fuse-overlayfs",
            rec.config.name
        );
    }
    cp_ns::write_upper(rec, out, ts, &[])
        .with_context(|| format!("reading the changes of container {}", rec.config.name))
}

/// Removes a file of ours unless disarmed.
struct Cleanup(Option<std::path::PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

pub fn commit(ctx: &Ctx, args: CommitArgs) -> Result<u8> {
    let c = containers(ctx)?;
    let rec = c.find(&args.container)?;
    let ts = timestamp(args.timestamp)?;
    let store = Store::open(&ctx.paths)?;
    let base = store.get_image(&rec.config.image_id).with_context(|| {
        format!(
            "the image of container {} ({}) is no longer in the store: pull it again to commit",
            rec.config.name, rec.config.image_name
        )
    })?;
    let opts = CommitOptions {
        changes: args.change,
        message: args.message,
        author: args.author,
        created_by: rec.config.command.join(" "),
        timestamp: ts,
        name: args.image,
    };
    let blob = store.tmp_path(&format!("commit-{}", unique()));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&blob)
        .with_context(|| format!("create {}", blob.display()))?;
    // Removes the blob on failure (commit_image moves it into the store).
    let _guard = Cleanup(Some(blob.clone()));
    // Paused only when asked and possible, as podman rootless (no error without the
    // freezer).
    let st = status::observe(&rec);
    let paused = args.pause == Some(true)
        && st.status == Status::Running
        && freezer::freeze(&rec, &st).is_ok();
    let written = write_upper(&rec, file, ts);
    if paused {
        let _ = freezer::thaw(&rec, &st);
    }
    let written = written?;
    let warn = |w: &str| eprintln!("box: warning: {w}");
    let image = layer::commit_image(&store, &base, blob, &written, &opts, &warn)?;
    let _ = args.quiet; // nothing but the id is printed either way
    println!("{}", image.id);
    Ok(0)
}

pub fn export(ctx: &Ctx, args: ExportArgs) -> Result<u8> {
    if args.output.is_none() && io::stdout().is_terminal() {
        bail!("refusing to write a tar archive to a terminal: use -o FILE or redirect stdout");
    }
    let c = containers(ctx)?;
    let rec = c.find(&args.container)?;
    // -o FILE: written beside it under a temporary name, renamed when complete.
    let (out, tmp): (File, Option<std::path::PathBuf>) = match &args.output {
        Some(p) => {
            let name = p.file_name().context("-o names no file")?;
            let mut tmp_name = std::ffi::OsString::from(".");
            tmp_name.push(name);
            tmp_name.push(format!(".box-{}", unique()));
            let tmp = p.with_file_name(tmp_name);
            let f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .open(&tmp)
                .with_context(|| format!("create {}", tmp.display()))?;
            (f, Some(tmp))
        }
        None => {
            let fd = io::stdout()
                .as_fd()
                .try_clone_to_owned()
                .context("stdout")?;
            (File::from(fd), None)
        }
    };
    let _guard = Cleanup(tmp.clone());
    cp_ns::in_root(&ctx.paths, &rec, |root| {
        let opts = Options {
            mode: Mode::Export,
            timestamp: None,
        };
        let w = io::BufWriter::with_capacity(256 * 1024, out);
        let mut w = layer::write_tree(root, w, &opts).map_err(failed)?;
        w.flush()?;
        Ok(String::new())
    })
    .with_context(|| format!("exporting container {}", rec.config.name))?;
    if let (Some(tmp), Some(dest)) = (&tmp, &args.output) {
        std::fs::rename(tmp, dest).with_context(|| format!("write {}", dest.display()))?;
    }
    Ok(0)
}
