//! `box push` / `box image push`: the flags and the progress display of `storage::push`.
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, Result};
use indicatif::ProgressBar;

use super::pull::Output;
use crate::cli::Ctx;
use crate::cli::args::{LayerCompression, ManifestFormat, PushArgs};
use crate::storage::push::{self, BlobDone, BlobProgress, Event, Progress};
use crate::units::human_size;

pub fn push(ctx: &Ctx, args: PushArgs) -> Result<u8> {
    let opts = push::Options {
        tls_verify: args.tls_verify,
        format: args.format.map(|f| match f {
            ManifestFormat::Oci => push::Format::Oci,
            ManifestFormat::V2s2 | ManifestFormat::Docker => push::Format::V2s2,
        }),
        compression: args.compression_format.map(|c| match c {
            LayerCompression::Gzip => push::LayerCompression::Gzip,
            LayerCompression::Zstd => push::LayerCompression::Zstd,
        }),
    };
    let out = Output::new(args.quiet, ctx.global.log_level);
    let pushed = push::push(
        &ctx.paths,
        &args.image,
        args.destination.as_deref(),
        &opts,
        &out,
    )?;
    out.clear();
    let dest = args.destination.as_deref().unwrap_or(&args.image);
    crate::events::image(&ctx.paths, "push", "", dest);
    if let Some(path) = &args.digestfile {
        write_digestfile(path, &pushed.digest)?;
    }
    Ok(0)
}

/// Write the digest to `path` whole or not at all: a temporary file beside it, renamed.
fn write_digestfile(path: &Path, digest: &str) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "digest".into());
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let res = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(digest.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.with_context(|| format!("cannot write the digest to {}", path.display()))
}

/// Push progress shows where pull progress does (`pull::Output`): bars on a TTY, plain
/// lines otherwise, nothing with -q.
impl Progress for Output {
    fn event(&self, event: Event<'_>) {
        match event {
            // on a TTY only: an error must stay the one line of a plain stderr
            Event::Pushing(r) if self.bars() => self.line(&format!("Pushing to {r}...")),
            Event::Pushing(_) => {}
            Event::WritingManifest => self.line("Writing manifest to image destination"),
        }
    }

    fn blob(&self, config: bool, name: &str, size: u64) -> Box<dyn BlobProgress> {
        let kind = if config { "config" } else { "blob" };
        let pb = self.transfer_bar(name, size);
        Box::new(Bar {
            pb,
            plain: self.plain(),
            kind,
            name: Mutex::new(name.to_string()),
            size: Mutex::new(size),
            started: Mutex::new(None),
        })
    }
}

/// One blob's progress.
struct Bar {
    pb: Option<ProgressBar>,
    plain: bool,
    kind: &'static str,
    name: Mutex<String>,
    size: Mutex<u64>,
    /// When its first bytes went (or its recompression began).
    started: Mutex<Option<Instant>>,
}

impl Bar {
    fn start(&self) {
        self.started
            .lock()
            .unwrap()
            .get_or_insert_with(Instant::now);
    }
}

impl BlobProgress for Bar {
    fn recompressed(&self, name: &str, size: u64) {
        self.start();
        let old = std::mem::replace(&mut *self.name.lock().unwrap(), name.to_string());
        *self.size.lock().unwrap() = size;
        if let Some(pb) = &self.pb {
            pb.set_length(size);
            pb.set_prefix(name.to_string());
        } else if self.plain {
            eprintln!("Recompressed blob {old} as {name}");
        }
    }

    fn position(&self, n: u64) {
        self.start();
        if let Some(pb) = &self.pb {
            if pb.position() == 0 {
                pb.set_message("Pushing");
            }
            pb.set_position(n);
        }
    }

    fn done(&self, how: BlobDone<'_>) {
        let msg = match how {
            BlobDone::Exists => "skipped: already exists".to_string(),
            BlobDone::Mounted(from) => format!("mounted from {from}"),
            BlobDone::Uploaded { chunks } => format!(
                "done ({}{}, {:.1}s)",
                human_size(*self.size.lock().unwrap()),
                if chunks > 1 {
                    format!(" in {chunks} chunks")
                } else {
                    String::new()
                },
                self.started
                    .lock()
                    .unwrap()
                    .map_or(0.0, |t| t.elapsed().as_secs_f64())
            ),
        };
        if let Some(pb) = &self.pb {
            pb.set_message(msg);
            pb.finish();
        } else if self.plain {
            eprintln!("Copying {} {} {msg}", self.kind, self.name.lock().unwrap());
        }
    }

    fn failed(&self) {
        if let Some(pb) = &self.pb {
            pb.abandon_with_message("Failed");
        }
    }
}
