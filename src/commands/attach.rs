//! `box attach`: a running detached container's output as it is written (its log, from
//! now on) until it exits; box then exits as the container did. Signals box receives are
//! forwarded to the container (`--sig-proxy`, podman's default). A detached container's
//! stdin is /dev/null, so there is nothing to attach it to.
use std::io::Write;
use std::os::fd::AsFd;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use super::containers;
use crate::cli::Ctx;
use crate::cli::args::AttachArgs;
use crate::container::Status;
use crate::monitor::{self, log, status};

const PROXIED: &[Signal] = &[
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

pub fn attach(ctx: &Ctx, args: AttachArgs) -> Result<u8> {
    let c = containers(ctx)?;
    let rec = if args.latest {
        super::latest(&c, |r| !r.config.spec.is_infra())?
            .context("no containers: --latest has nothing to attach to")?
    } else {
        c.find(args.container.as_deref().unwrap_or_default())?
    };
    if status::observe(&rec).status != Status::Running {
        bail!(
            "container {} is not running: you can only attach to running containers (box start --attach {} starts and attaches)",
            rec.name(),
            rec.name()
        );
    }
    let driver = rec.config.spec.settings.log.driver;
    if !driver.keeps_log() {
        bail!(
            "container {} uses the {} log driver: there is no output to attach to (create it with --log-driver k8s-file)",
            rec.name(),
            driver.name()
        );
    }
    let signals = if args.sig_proxy {
        let mut set = SigSet::empty();
        for s in PROXIED {
            set.add(*s);
        }
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None).context("block signals")?;
        Some(SignalFd::with_flags(
            &set,
            SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC,
        )?)
    } else {
        None
    };
    let mut follower = log::Follower::at_end(&rec.log_path());
    let opts = log::ReadOptions::default();
    let mut at_start = [true, true];
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    let mut gone_polls = 0;
    loop {
        let recs = follower.poll()?;
        let got = !recs.is_empty();
        for r in recs {
            if log::print_record(&r, &opts, &mut at_start, &mut out, &mut err).is_err() {
                return Ok(0); // our reader went away
            }
        }
        let _ = out.flush();
        if let Some(fd) = &signals {
            while let Ok(Some(info)) = fd.read_signal() {
                let _ = monitor::stop::kill(&rec, info.ssi_signo as i32);
            }
        }
        if got {
            continue;
        }
        let running =
            status::observe(&rec).status == Status::Running || monitor::monitor_alive(&rec);
        if !running {
            // The monitor has written its last lines: one more read, then the status.
            gone_polls += 1;
            if gone_polls > 2 {
                break;
            }
        }
        wait_a_little(signals.as_ref());
    }
    if !rec.dir.join("config.json").exists() {
        return Ok(0); // removed meanwhile (run --rm): nothing records how it ended
    }
    let code = monitor::stop::wait_for(&rec, &[], Duration::from_millis(20))?;
    Ok(code.clamp(0, 255) as u8)
}

/// Sleep up to 50 ms, waking for a signal to forward.
fn wait_a_little(signals: Option<&SignalFd>) {
    match signals {
        Some(fd) => {
            let mut fds = [nix::poll::PollFd::new(
                fd.as_fd(),
                nix::poll::PollFlags::POLLIN,
            )];
            let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(50u16));
        }
        None => std::thread::sleep(Duration::from_millis(50)),
    }
}
