//! `box pull`: the flags and the progress display of `storage::pull` (which `box run` and
//! `create` reach through `storage::pull::ensure`).
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Result;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::Ctx;
use crate::cli::args::{LogLevel, PullArgs, PullPolicy};
use crate::storage::pull::{self, Event, LayerEvent, LayerProgress, Progress};

pub fn pull(ctx: &Ctx, args: PullArgs) -> Result<u8> {
    let out = Output::new(args.pull.quiet, ctx.global.log_level);
    let opts = pull::Options {
        platform: args.pull.platform,
        tls_verify: args.pull.tls_verify,
    };
    let image = pull::pull(&ctx.paths, &args.image, &opts, &out)?;
    println!("{}", image.id);
    Ok(0)
}

impl From<PullPolicy> for pull::Policy {
    fn from(p: PullPolicy) -> pull::Policy {
        match p {
            PullPolicy::Missing => pull::Policy::Missing,
            PullPolicy::Always => pull::Policy::Always,
            PullPolicy::Never => pull::Policy::Never,
            PullPolicy::Newer => pull::Policy::Newer,
        }
    }
}

/// Where pull progress goes: bars on a TTY, plain lines otherwise, nothing with -q.
pub struct Output {
    quiet: bool,
    mp: Option<MultiProgress>,
    debug: bool,
}

impl Output {
    pub fn new(quiet: bool, level: LogLevel) -> Output {
        let tty = std::io::stderr().is_terminal() && std::env::var_os("BOX_NO_PROGRESS").is_none();
        let mp = (!quiet && tty)
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10)));
        Output {
            quiet,
            mp,
            debug: level >= LogLevel::Debug,
        }
    }

    /// A status line (shown on a TTY and in plain mode).
    pub fn line(&self, s: &str) {
        if self.quiet {
            return;
        }
        match &self.mp {
            Some(mp) => {
                let _ = mp.println(s);
            }
            None => eprintln!("{s}"),
        }
    }

    pub fn warn(&self, s: &str) {
        if self.quiet {
            return;
        }
        let msg = format!("box: warning: {s}");
        match &self.mp {
            Some(mp) => {
                let _ = mp.println(msg);
            }
            None => eprintln!("{msg}"),
        }
    }

    pub fn debug(&self, s: &str) {
        if self.debug {
            let msg = format!("box: debug: {s}");
            match &self.mp {
                Some(mp) => {
                    let _ = mp.println(msg);
                }
                None => eprintln!("{msg}"),
            }
        }
    }

    /// A transfer's bar on a TTY (`name` as its prefix, bytes and rate), else None.
    pub(super) fn transfer_bar(&self, name: &str, total: u64) -> Option<ProgressBar> {
        let pb = self.mp.as_ref()?.add(ProgressBar::new(total));
        pb.set_style(
            ProgressStyle::with_template(
                "{prefix:.bold} {wide_msg} [{bar:25.cyan/blue}] {bytes:>9}/{total_bytes:<9} {binary_bytes_per_sec:>11}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        pb.set_prefix(name.to_string());
        pb.set_message("Waiting");
        Some(pb)
    }

    /// Whether progress is shown as bars (stderr is a terminal, not -q).
    pub(super) fn bars(&self) -> bool {
        self.mp.is_some()
    }

    /// Whether progress is shown as plain lines (not a terminal, not -q).
    pub(super) fn plain(&self) -> bool {
        !self.quiet && self.mp.is_none()
    }

    /// Remove the bars from the terminal.
    pub(super) fn clear(&self) {
        if let Some(mp) = &self.mp {
            let _ = mp.clear();
        }
    }

    pub fn bar(&self, name: &str, total: u64) -> Bar {
        let pb = self.transfer_bar(name, total);
        if pb.is_none() && self.plain() {
            eprintln!("Copying blob {name}");
        }
        Bar {
            plain: pb.is_none() && self.plain(),
            pb,
            name: name.to_string(),
            total,
            last: Arc::new(Mutex::new(Instant::now())),
        }
    }
}

/// One layer's progress.
pub struct Bar {
    pb: Option<ProgressBar>,
    name: String,
    /// The blob's size.
    total: u64,
    plain: bool,
    last: Arc<Mutex<Instant>>,
}

impl Bar {
    pub fn inc(&self, n: u64) {
        if let Some(pb) = &self.pb {
            pb.inc(n);
        }
    }
    pub fn set_position(&self, n: u64) {
        if let Some(pb) = &self.pb {
            pb.set_position(n);
        }
    }
    pub fn message(&self, m: &str) {
        if let Some(pb) = &self.pb {
            if m == "Extracting" {
                // The download is over: stop showing a (decaying) rate.
                pb.set_style(
                    ProgressStyle::with_template(
                        "{prefix:.bold} {wide_msg} [{bar:25.cyan/blue}] {total_bytes:>9}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
            }
            pb.set_message(m.to_string());
        } else if self.plain && m == "Extracting" {
            let mut last = self.last.lock().unwrap();
            *last = Instant::now();
            eprintln!("Extracting {}", self.name);
        }
    }
    pub fn done(&self, m: &str) {
        if let Some(pb) = &self.pb {
            pb.set_message(m.to_string());
            pb.finish();
        } else if self.plain {
            let took = self.last.lock().unwrap().elapsed();
            if m == "Already exists" {
                eprintln!("Copying blob {} skipped: already exists", self.name);
            } else {
                eprintln!("Extracted {} ({:.1}s)", self.name, took.as_secs_f64());
            }
        }
    }
    pub fn fail(&self) {
        if let Some(pb) = &self.pb {
            pb.abandon_with_message("Failed");
        }
    }
}

impl Progress for Output {
    fn event(&self, event: Event<'_>) {
        match event {
            Event::Resolving(r) => self.line(&format!("Trying to pull {r}...")),
            Event::LayerExists(l) => {
                self.line(&format!("Copying blob {l} skipped: already exists"))
            }
            Event::LayerStoredElsewhere(l) => {
                self.line(&format!("Copying blob {l} done by another box process"))
            }
            Event::WritingManifest => self.line("Writing manifest to image destination"),
            Event::Warning(w) => self.warn(w),
            Event::Debug(d) => self.debug(d),
        }
    }

    fn layer(&self, name: &str, size: u64) -> Box<dyn LayerProgress> {
        Box::new(self.bar(name, size))
    }
}

impl LayerProgress for Bar {
    fn advance(&self, bytes: u64) {
        self.inc(bytes);
    }

    fn event(&self, event: LayerEvent) {
        match event {
            LayerEvent::Downloading => self.message("Downloading"),
            LayerEvent::BlobPresent => self.set_position(self.total),
            LayerEvent::Downloaded { elapsed } => {
                // Bars say it on a TTY.
                if self.plain {
                    eprintln!(
                        "Copying blob {} done ({}, {:.1}s)",
                        self.name,
                        crate::units::human_size(self.total),
                        elapsed.as_secs_f64()
                    );
                }
            }
            LayerEvent::Extracting => self.message("Extracting"),
            LayerEvent::Extracted => self.done("Extracted"),
            LayerEvent::AlreadyExists => self.done("Already exists"),
            LayerEvent::Busy => self.done("Waiting for another box process"),
            LayerEvent::Failed => self.fail(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_output_is_silent_when_quiet() {
        let o = Output::new(true, LogLevel::Warn);
        let b = o.bar("abc", 10);
        b.inc(5);
        b.done("Pull complete");
    }
}
