//! `box build` and `box image build`: the flags turned into `builder::Options`, the
//! progress lines (podman's `STEP n/m:`, `--> id`, `COMMIT`), `--iidfile`, and the exit
//! code (a failed RUN's own status, as podman; else 125).
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::pull;
use crate::builder::{self, Format, Secret};
use crate::cli::Ctx;
use crate::cli::args::PullPolicy;
use crate::cli::args_build::{BuildArgs, BuildFormat};
use crate::exit::Coded;

struct Output {
    quiet: bool,
    pull: pull::Output,
}

impl builder::Progress for Output {
    fn line(&self, text: &str) {
        if !self.quiet {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{text}");
            let _ = out.flush();
        }
    }

    fn pull(&self) -> &dyn crate::storage::pull::Progress {
        &self.pull
    }
}

/// `-f`, else `Containerfile` then `Dockerfile` in the context: (text, name for errors).
fn containerfile(file: Option<&Path>, context: &Path) -> Result<(String, String)> {
    match file {
        Some(p) if p == Path::new("-") => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading the Containerfile from stdin")?;
            Ok((text, "stdin".into()))
        }
        Some(p) => {
            // As podman: a relative -f not found here is looked for in the context.
            let in_context = context.join(p);
            let p = if p.is_relative() && !p.exists() && in_context.exists() {
                in_context.as_path()
            } else {
                p
            };
            let text = std::fs::read_to_string(p).with_context(|| {
                format!("cannot read the Containerfile {}: check -f", p.display())
            })?;
            Ok((text, p.display().to_string()))
        }
        None => {
            for name in ["Containerfile", "Dockerfile"] {
                match std::fs::read_to_string(context.join(name)) {
                    Ok(text) => return Ok((text, name.to_string())),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => bail!("cannot read {}: {e}", context.join(name).display()),
                }
            }
            bail!(
                "no Containerfile or Dockerfile in the build context {}: add one or give it with -f",
                context.display()
            )
        }
    }
}

fn build_args(args: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for a in args {
        match a.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                out.insert(k.to_string(), v.to_string());
            }
            Some(_) => bail!("--build-arg {a:?}: use KEY=VALUE or KEY"),
            None => {
                // KEY alone: from the environment, left unset when it is not there.
                if let Ok(v) = std::env::var(a) {
                    out.insert(a.clone(), v);
                }
            }
        }
    }
    Ok(out)
}

/// Files written for `--secret id=ID,env=VAR`, removed when the build ends.
struct EnvSecrets(Vec<PathBuf>);

impl Drop for EnvSecrets {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// `--secret id=ID,src=FILE` or `id=ID,env=VAR` (the variable's value, in a 0600 file of
/// the runtime directory for the build's length).
fn secrets(ctx: &Ctx, args: &[String], written: &mut EnvSecrets) -> Result<Vec<Secret>> {
    let usage = |s: &str| anyhow::anyhow!("--secret {s:?}: use id=ID,src=FILE or id=ID,env=VAR");
    let mut out = Vec::new();
    for s in args {
        let mut id = None;
        let mut src = None;
        let mut env = None;
        for part in s.split(',') {
            match part.split_once('=') {
                Some(("id", v)) => id = Some(v.to_string()),
                Some(("src" | "source", v)) => src = Some(PathBuf::from(v)),
                Some(("env", v)) => env = Some(v.to_string()),
                Some(("type", "file" | "env")) => {}
                _ => return Err(usage(s)),
            }
        }
        let Some(id) = id else {
            return Err(usage(s));
        };
        if id.is_empty() || id.contains('/') {
            bail!("--secret {s:?}: the id names a file in /run/secrets: no '/' in it");
        }
        let src = match (src, env) {
            (Some(src), None) => {
                let src = std::fs::canonicalize(&src)
                    .with_context(|| format!("--secret {s:?}: cannot find {}", src.display()))?;
                if !src.is_file() {
                    bail!("--secret {s:?}: {} is not a file", src.display());
                }
                src
            }
            (None, Some(var)) => {
                let value = std::env::var(&var)
                    .with_context(|| format!("--secret {s:?}: ${var} is not set"))?;
                ctx.paths.ensure()?;
                let path = ctx
                    .paths
                    .runtime
                    .join(format!("build-secret-{}", crate::storage::unique()));
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .with_context(|| format!("create {}", path.display()))?;
                written.0.push(path.clone());
                f.write_all(value.as_bytes())?;
                path
            }
            _ => return Err(usage(s)),
        };
        out.push(Secret { id, src });
    }
    Ok(out)
}

pub fn build(ctx: &Ctx, args: BuildArgs) -> Result<u8> {
    let (file_text, file_name) = containerfile(args.file.as_deref(), &args.context)?;
    let labels = crate::spec::labels(&args.label)?.into_iter().collect();
    let mut env_secrets = EnvSecrets(Vec::new());
    let network = match args.network.as_deref() {
        None | Some("default") => None,
        Some(n @ ("none" | "host" | "pasta" | "slirp4netns")) => Some(n.to_string()),
        Some(n) => bail!("--network {n}: use default, none, host, pasta or slirp4netns"),
    };
    let opts = builder::Options {
        context: args.context.clone(),
        file_text,
        file_name,
        build_args: build_args(&args.build_arg)?,
        target: args.target.clone(),
        tags: args.tag.clone(),
        no_cache: args.no_cache,
        pull: PullPolicy::from(args.pull).into(),
        labels,
        network,
        secrets: secrets(ctx, &args.secret, &mut env_secrets)?,
        format: match args.format {
            BuildFormat::Oci => Format::Oci,
            BuildFormat::Docker => Format::Docker,
        },
        timestamp: super::commit::timestamp(args.timestamp)?,
        layers: args.layers,
        squash: args.squash,
        platform: args.platform.clone(),
        driver: ctx.global.storage_driver.map(Into::into),
        quiet_output: args.quiet,
    };
    let _ = (args.rm, args.force_rm);
    let out = Output {
        quiet: args.quiet,
        pull: pull::Output::new(args.quiet, ctx.global.log_level),
    };
    let built = match builder::build(&ctx.paths, &opts, &out) {
        Ok(b) => b,
        Err(e) => {
            let code = e.exit_code();
            return Err(anyhow::Error::new(Coded::new(code, e.to_string())));
        }
    };
    if let Some(p) = &args.iidfile {
        std::fs::write(p, format!("sha256:{}", built.image.id))
            .with_context(|| format!("--iidfile {}", p.display()))?;
    }
    println!("{}", built.image.id);
    Ok(0)
}
