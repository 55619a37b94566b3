//! `box diff`: what a container (or an image's top layer) added, changed and deleted.
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::cli::Ctx;
use crate::cli::args::{DiffArgs, DiffFormat};
use crate::container::Containers;
use crate::monitor::cp_ns::{self, Userns};
use crate::spec::Driver;
use crate::storage::Store;
use crate::storage::layer::{self, Change, ChangeKind};

/// The changes of the tree `upper` over `lowers`, read in `userns`.
fn read_changes(userns: Userns<'_>, upper: PathBuf, lowers: &[PathBuf]) -> Result<Vec<Change>> {
    let answer = cp_ns::in_userns(userns, || {
        let dir: OwnedFd = File::open(&upper)
            .map_err(|e| crate::monitor::Error::Failed(format!("open {}: {e}", upper.display())))?
            .into();
        let changes = layer::changes(dir.as_fd(), lowers)
            .map_err(|e| crate::monitor::Error::Failed(e.to_string()))?;
        serde_json::to_string(&changes).map_err(|e| crate::monitor::Error::Failed(e.to_string()))
    })?;
    Ok(serde_json::from_str(&answer)?)
}

/// What `box diff` looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// A container, else an image (`box diff`).
    Any,
    Container,
    Image,
}

pub fn diff(ctx: &Ctx, args: DiffArgs, scope: Scope) -> Result<u8> {
    ctx.paths.ensure()?;
    let c = Containers::open(&ctx.paths)?;
    let found = match scope {
        Scope::Image => Err(crate::container::Error::NotFound(args.target.clone())),
        _ => c.find(&args.target),
    };
    let changes = match found {
        Ok(rec) => {
            let spec = &rec.config.spec;
            if spec.rootfs.driver == Driver::Vfs {
                bail!(
                    "container {} uses the vfs storage driver, which keeps no record of its changes: diff needs overlay or fuse-overlayfs",
                    rec.config.name
                );
            }
            let upper = rec.upper_dir();
            if !upper.is_dir() {
                Vec::new()
            } else {
                read_changes(Userns::Container(&rec), upper, &spec.rootfs.layers).with_context(
                    || format!("reading the changes of container {}", rec.config.name),
                )?
            }
        }
        Err(e @ crate::container::Error::NotFound(_)) if scope == Scope::Container => {
            return Err(e.into());
        }
        Err(crate::container::Error::NotFound(_)) => {
            let store = Store::open(&ctx.paths)?;
            let image = store
                .find_image(&args.target)?
                .with_context(|| match scope {
                    Scope::Image => format!("image not found: {}", args.target),
                    _ => format!("no such container or image: {}", args.target),
                })?;
            let Some((top, below)) = image.diff_ids.split_last() else {
                bail!("image {} has no layers", args.target);
            };
            let lowers: Vec<PathBuf> = below.iter().map(|d| store.layer_diff(d)).collect();
            let _lock = store.lock_shared()?;
            read_changes(Userns::Store, store.layer_diff(top), &lowers)
                .with_context(|| format!("reading the top layer of image {}", args.target))?
        }
        Err(e) => return Err(e.into()),
    };
    match args.format {
        DiffFormat::Text => {
            let mut out = String::new();
            for ch in &changes {
                out.push_str(&format!("{} {}\n", ch.kind.letter(), ch.path));
            }
            super::image::emit(&out);
        }
        DiffFormat::Json => {
            let of = |k: ChangeKind| -> Vec<&str> {
                changes
                    .iter()
                    .filter(|c| c.kind == k)
                    .map(|c| c.path.as_str())
                    .collect()
            };
            let mut v = json!({});
            for (key, kind) in [
                ("changed", ChangeKind::Changed),
                ("added", ChangeKind::Added),
                ("deleted", ChangeKind::Deleted),
            ] {
                let list = of(kind);
                if !list.is_empty() {
                    v[key] = json!(list);
                }
            }
            super::image::emit(&format!("{}\n", serde_json::to_string_pretty(&v)?));
        }
    }
    Ok(0)
}
