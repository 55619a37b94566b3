//! `--squash` and `--layers=false`: the layers above `base` merged into one. Each layer
//! directory (overlay format: 0/0 character-device whiteouts, opaque directories) is
//! applied in order onto an empty directory of ours under the store's tmp/, as root of
//! the store's user namespace (owners stay the container's ids); that directory is then
//! written as one layer, whiteouts included, exactly as an upper directory is.
use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::state::State;
use crate::monitor::cp_ns::{self, Userns};
use crate::paths::Paths;
use crate::storage::layer::{self, Digests};
use crate::storage::whiteout::{is_opaque, set_opaque};
use crate::storage::{LayerBlob, Store, archive, unique};

pub(crate) fn squash(
    paths: &Paths,
    store: &Store,
    st: &State,
    base: usize,
    timestamp: Option<u64>,
) -> Result<State, String> {
    let above: Vec<PathBuf> = st.diff_ids[base..]
        .iter()
        .map(|d| store.layer_diff(d))
        .collect();
    let work = store.tmp_path(&format!("squash-{}", unique()));
    fs::create_dir(&work).map_err(|e| format!("create {}: {e}", work.display()))?;
    let (blob, file) = super::run_step::blob_file(store)?;
    let w = work.clone();
    let answer = cp_ns::in_userns(Userns::Store, move || {
        let fail = |m: String| crate::monitor::Error::Failed(m);
        for l in &above {
            apply(l, &w).map_err(|e| fail(format!("merging {}: {e}", l.display())))?;
        }
        let dir: OwnedFd = fs::File::open(&w).map_err(|e| fail(e.to_string()))?.into();
        let opts = layer::Options {
            mode: layer::Mode::Layer,
            timestamp,
        };
        let d = layer::write_layer(dir.as_fd(), file, &opts).map_err(|e| fail(e.to_string()))?;
        serde_json::to_string(&d).map_err(|e| fail(e.to_string()))
    });
    let _ = crate::storage::remove::remove_trees(paths.data.as_path(), std::slice::from_ref(&work));
    let answer = match answer {
        Ok(a) => a,
        Err(e) => {
            let _ = fs::remove_file(&blob);
            return Err(crate::exit::error_line(&e));
        }
    };
    let d: Digests = serde_json::from_str(&answer).map_err(|e| e.to_string())?;
    let warn = |w: &str| eprintln!("box: warning: {w}");
    let stored = archive::ingest_layers(store, vec![(blob, Some(d.diff_id.clone()))], &warn)
        .map_err(|e| e.to_string())?;
    let (diff_id, blob) = stored
        .into_iter()
        .next()
        .ok_or("the layer was not stored")?;
    let mut out = st.clone();
    out.diff_ids.truncate(base);
    out.layers.truncate(base);
    out.push_layer(
        diff_id,
        LayerBlob {
            media_type: super::OCI_GZIP.into(),
            ..blob
        },
    );
    // One history entry with a layer for the merged one: the last of those above `base`.
    let mut history: Vec<Value> = out.config["history"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let with_layer: Vec<usize> = history
        .iter()
        .enumerate()
        .filter(|(_, h)| h["empty_layer"] != json!(true))
        .map(|(i, _)| i)
        .collect();
    if with_layer.len() > base + 1 {
        for &i in &with_layer[base..with_layer.len() - 1] {
            history[i]["empty_layer"] = json!(true);
        }
    }
    out.config["history"] = Value::Array(history);
    Ok(out)
}

/// Apply the overlay-format layer `src` onto `dst`.
fn apply(src: &Path, dst: &Path) -> std::io::Result<()> {
    let mut names: Vec<_> = fs::read_dir(src)?.collect::<Result<Vec<_>, _>>()?;
    names.sort_by_key(|e| e.file_name());
    for e in names {
        let s = e.path();
        let d = dst.join(e.file_name());
        let md = fs::symlink_metadata(&s)?;
        let ft = md.file_type();
        let existing = fs::symlink_metadata(&d).ok();
        let remove = |d: &Path| -> std::io::Result<()> {
            match fs::symlink_metadata(d) {
                Ok(m) if m.is_dir() => fs::remove_dir_all(d),
                Ok(_) => fs::remove_file(d),
                Err(_) => Ok(()),
            }
        };
        if ft.is_char_device() && md.rdev() == 0 {
            remove(&d)?;
            nix::sys::stat::mknod(
                &d,
                nix::sys::stat::SFlag::S_IFCHR,
                nix::sys::stat::Mode::empty(),
                0,
            )
            .map_err(std::io::Error::from)?;
        } else if ft.is_dir() {
            let opaque = is_opaque(&s);
            if opaque || !existing.as_ref().is_some_and(|m| m.is_dir()) {
                remove(&d)?;
                fs::create_dir(&d)?;
            }
            if opaque {
                set_opaque(fs::File::open(&d)?)?;
            }
            apply(&s, &d)?;
            meta(&d, &md)?;
        } else if ft.is_symlink() {
            remove(&d)?;
            std::os::unix::fs::symlink(fs::read_link(&s)?, &d)?;
            std::os::unix::fs::lchown(&d, Some(md.uid()), Some(md.gid()))?;
        } else if ft.is_file() {
            remove(&d)?;
            fs::copy(&s, &d)?;
            meta(&d, &md)?;
        }
    }
    Ok(())
}

fn meta(d: &Path, md: &fs::Metadata) -> std::io::Result<()> {
    std::os::unix::fs::chown(d, Some(md.uid()), Some(md.gid()))?;
    fs::set_permissions(d, fs::Permissions::from_mode(md.mode() & 0o7777))?;
    let t = nix::sys::time::TimeSpec::new(md.mtime(), md.mtime_nsec());
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        d,
        &t,
        &t,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .map_err(std::io::Error::from)
}
