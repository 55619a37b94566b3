//! The build loop: each needed stage in file order, each instruction through the cache.
use std::collections::HashMap;
use std::os::fd::OwnedFd;

use serde_json::{Value, json};

use super::cache::{self, Cache};
use super::state::{self, State};
use super::{Built, Error, Format, Options, Progress};
use crate::build::expand::expand_instruction;
use crate::build::ignore::Ignore;
use crate::build::parse::{self, Containerfile, Instruction, Kind};
use crate::build::plan::{self, Base, Plan, Platform};
use crate::paths::Paths;
use crate::spec::Driver;
use crate::storage::{LayerBlob, Store, archive, names, pull};

use super::OCI_GZIP;
const DOCKER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// What a stage knows besides its image config.
pub(super) struct StageCtx {
    /// ARGs declared in the stage with their values (first wins).
    pub(super) args: Vec<(String, String)>,
    pub(super) shell: Vec<String>,
    /// CMD given in this stage (ENTRYPOINT then keeps it).
    pub(super) cmd_set: bool,
    /// The state's layer count when the stage began (`--layers=false` squashes above).
    pub(super) base_layers: usize,
}

pub(super) struct Builder<'a> {
    pub(super) paths: &'a Paths,
    pub(super) opts: &'a Options,
    pub(super) progress: &'a dyn Progress,
    pub(super) store: Store,
    pub(super) file: Containerfile,
    pub(super) plan: Plan,
    pub(super) ignore: Ignore,
    pub(super) context: OwnedFd,
    pub(super) driver: Option<Driver>,
    pub(super) done: HashMap<usize, State>,
    /// The step of the current stage, and its number of steps.
    pub(super) step: usize,
    pub(super) total: usize,
    pub(super) last_stage: bool,
    /// `[i/n] ` before each STEP line of a multi-stage build.
    pub(super) stage_tag: String,
    pub(super) host: Platform,
    /// Per stage: the layers of its base (what `--squash` keeps).
    pub(super) base_layers: HashMap<usize, usize>,
}

/// Build the image `opts` describes.
pub fn build(paths: &Paths, opts: &Options, progress: &dyn Progress) -> Result<Built, Error> {
    let file = parse::parse(&opts.file_text, &opts.file_name)?;
    for w in &file.warnings {
        eprintln!("box: warning: {w}");
    }
    let host = Platform::host();
    if let Some(p) = &opts.platform {
        check_platform(p, &host).map_err(Error::Invalid)?;
    }
    for t in &opts.tags {
        names::local(t).map_err(|e| Error::Invalid(format!("-t {t}: {e}")))?;
    }
    let plan = plan::plan(&file, &opts.build_args, opts.target.as_deref(), &host)?;
    for &si in &plan.needed {
        let s = &plan.stages[si];
        if let Some(p) = &s.platform {
            check_platform(p, &host).map_err(|m| at(&file.file, s.from.line, m))?;
        }
    }
    // What a killed build left behind.
    super::stale::remove_stale(paths);
    let ignore = Ignore::load(&opts.context)?;
    let context = std::fs::File::open(&opts.context)
        .and_then(|f| {
            if f.metadata()?.is_dir() {
                Ok(f)
            } else {
                Err(std::io::Error::from_raw_os_error(libc::ENOTDIR))
            }
        })
        .map_err(|e| {
            Error::Invalid(format!(
                "the build context {}: {e}: give a directory",
                opts.context.display()
            ))
        })?;
    paths.ensure().map_err(|e| Error::Invalid(e.to_string()))?;
    let store = Store::open(paths).map_err(|e| Error::Invalid(e.to_string()))?;
    let total = 0;
    let mut b = Builder {
        paths,
        opts,
        progress,
        store,
        file,
        plan,
        ignore,
        context: context.into(),
        driver: None,
        done: HashMap::new(),
        step: 0,
        total,
        last_stage: false,
        stage_tag: String::new(),
        host,
        base_layers: HashMap::new(),
    };
    let needed = b.plan.needed.clone();
    for (n, &si) in needed.iter().enumerate() {
        if needed.len() > 1 {
            b.stage_tag = format!("[{}/{}] ", n + 1, needed.len());
        }
        b.stage(si)?;
    }
    warn_unused_args(&b.file, &b.opts.build_args);
    let target = b.plan.target;
    let state = b.done.remove(&target).expect("the target stage was built");
    b.commit(state)
}

/// podman's warning for `--build-arg`s no ARG line declares.
fn warn_unused_args(file: &Containerfile, build_args: &std::collections::BTreeMap<String, String>) {
    let declared: std::collections::BTreeSet<&str> = file
        .instructions
        .iter()
        .filter_map(|i| match &i.kind {
            Kind::Arg(defs) => Some(defs.iter().map(|d| d.name.as_str())),
            _ => None,
        })
        .flatten()
        .collect();
    let unused: Vec<&str> = build_args
        .keys()
        .map(String::as_str)
        .filter(|k| !declared.contains(k) && !plan::is_predefined_arg(k))
        .collect();
    if !unused.is_empty() {
        eprintln!(
            "box: warning: one or more build args were not consumed: [{}]",
            unused.join(" ")
        );
    }
}

pub(super) fn at(file: &str, line: usize, msg: impl Into<String>) -> Error {
    Error::At {
        file: file.to_string(),
        line,
        msg: msg.into(),
    }
}

fn check_platform(p: &str, host: &Platform) -> Result<(), String> {
    let want = p.trim().to_ascii_lowercase();
    let parts: Vec<&str> = want.split('/').collect();
    let (os, arch) = match parts.as_slice() {
        [os, arch, ..] => (*os, *arch),
        [arch] => ("linux", *arch),
        _ => ("", ""),
    };
    let arch = match arch {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    if os == host.os && arch == host.arch {
        Ok(())
    } else {
        Err(format!(
            "--platform {p}: box builds only for this host's platform ({host}); build on a {p} machine"
        ))
    }
}

impl Builder<'_> {
    pub(super) fn say(&self, text: &str) {
        self.progress.line(text);
    }

    pub(super) fn err(&self, inst: &Instruction, msg: impl Into<String>) -> Error {
        at(&self.file.file, inst.line, msg)
    }

    pub(super) fn driver(&mut self) -> Result<Driver, String> {
        if let Some(d) = self.driver {
            return Ok(d);
        }
        let maps = crate::userns::IdMaps::for_current_user(crate::userns::Mode::Auto)
            .map_err(|e| e.to_string())?;
        let probe = crate::driver::probe(&self.paths.runtime, &maps).map_err(|e| e.to_string())?;
        let d = probe.choose(self.opts.driver).map_err(|e| e.to_string())?;
        if d == Driver::Vfs {
            return Err(
                "RUN needs the overlay or fuse-overlayfs storage driver (vfs keeps no record of a step's changes): see box info"
                    .into(),
            );
        }
        self.driver = Some(d);
        Ok(d)
    }

    /// The target's last step: its id is shown after COMMIT only, as podman does.
    fn is_last_step(&self) -> bool {
        self.last_stage && self.step == self.total
    }

    fn step_line(&mut self, inst: &Instruction) {
        self.step += 1;
        let text = format!(
            "{}STEP {}/{}: {}",
            self.stage_tag, self.step, self.total, inst.original
        );
        self.say(&text);
    }

    fn stage(&mut self, si: usize) -> Result<(), Error> {
        let stage = self.plan.stages[si].clone();
        // As buildah: steps are numbered per stage.
        self.step = 0;
        self.total = stage.instructions.len() + 1;
        self.last_stage = si == self.plan.target;
        self.step_line(&stage.from);
        let mut st = match &stage.base {
            Base::Scratch => State::scratch(&self.host.arch),
            Base::Stage(i) => self
                .done
                .get(i)
                .cloned()
                .ok_or_else(|| self.err(&stage.from, format!("stage {i} was not built")))?,
            Base::Image(name) => self
                .base_image(name, stage.platform.as_deref())
                .map_err(|m| self.err(&stage.from, m))?,
        };
        // The base image's ONBUILD triggers run first (then the result has none), as
        // docker runs them.
        let mut triggers: Vec<String> = Vec::new();
        if !matches!(stage.base, Base::Stage(_)) && st.get("OnBuild").is_array() {
            triggers = st
                .get("OnBuild")
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t.as_str().map(String::from))
                .collect();
            st.cfg()["OnBuild"] = Value::Null;
        }
        let shell = st
            .get("Shell")
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect::<Vec<_>>()
            })
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
        self.base_layers.insert(si, st.diff_ids.len());
        let mut ctx = StageCtx {
            args: Vec::new(),
            shell,
            cmd_set: false,
            base_layers: st.diff_ids.len(),
        };
        for t in &triggers {
            let parsed = parse::parse(t, &self.file.file).map_err(|e| {
                self.err(&stage.from, format!("the base image's ONBUILD {t:?}: {e}"))
            })?;
            for i in parsed.instructions {
                if matches!(i.kind, Kind::From { .. } | Kind::Onbuild { .. }) {
                    return Err(self.err(
                        &stage.from,
                        format!(
                            "the base image's ONBUILD {t:?}: FROM and ONBUILD cannot be triggers"
                        ),
                    ));
                }
                // Errors name the FROM line that ran the trigger.
                let i = Instruction {
                    line: stage.from.line,
                    end_line: stage.from.line,
                    ..i
                };
                self.say(&format!("--> ONBUILD {}", i.original));
                self.instruction(&mut st, &mut ctx, &i)?;
            }
        }
        for inst in &stage.instructions {
            self.step_line(inst);
            self.instruction(&mut st, &mut ctx, inst)?;
        }
        if !self.opts.layers && st.diff_ids.len() > ctx.base_layers + 1 {
            st = super::squash::squash(
                self.paths,
                &self.store,
                &st,
                ctx.base_layers,
                self.opts.timestamp,
            )
            .map_err(|m| self.err(&stage.from, format!("--layers=false: {m}")))?;
        }
        self.done.insert(si, st);
        Ok(())
    }

    /// The state of image `name` (pulled per --pull).
    pub(super) fn base_image(&self, name: &str, platform: Option<&str>) -> Result<State, String> {
        let image = pull::ensure(
            self.paths,
            name,
            self.opts.pull,
            &pull::Options {
                platform: platform.map(String::from).or(self.opts.platform.clone()),
                tls_verify: None,
            },
            self.progress.pull(),
        )
        .map_err(|e| e.to_string())?;
        if image.layers.len() != image.diff_ids.len() {
            return Err(format!(
                "image {name} has no layer blobs in the store (imported by an older box?): pull it again"
            ));
        }
        let blob = self
            .store
            .blob_path(&format!("sha256:{}", image.id))
            .map_err(|e| e.to_string())?;
        let config: Value = std::fs::read(&blob)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_else(|| serde_json::to_value(&image.config).unwrap_or(json!({})));
        Ok(State {
            config,
            diff_ids: image.diff_ids.clone(),
            layers: image.layers.clone(),
        })
    }

    /// Variables for expansion: the config's Env over the stage's ARGs.
    fn vars(st: &State, ctx: &StageCtx) -> Vec<(String, String)> {
        let mut v = st.env();
        v.extend(ctx.args.iter().cloned());
        v
    }

    /// Run one step through the cache: `make` builds the new state on a miss.
    pub(super) fn cached(
        &mut self,
        st: &mut State,
        text: &str,
        args: &[(String, String)],
        content: &str,
        make: impl FnOnce(&mut Self, &State) -> Result<State, Error>,
    ) -> Result<(), Error> {
        let key = cache::key(st, text, args, content);
        // --layers=false builds every step again, as buildah does.
        if !self.opts.no_cache
            && self.opts.layers
            && let Some(hit) = Cache::open(&self.store).get(&key)
        {
            let id = hit.id();
            self.say(&format!("--> Using cache {id}"));
            // As podman: the last step's id is shown once, after COMMIT.
            if !self.is_last_step() {
                self.say(&format!("--> {}", &id[..11]));
            }
            *st = hit;
            return Ok(());
        }
        let new = make(self, st)?;
        Cache::open(&self.store).put(&key, &new);
        if !self.is_last_step() {
            self.say(&format!("--> {}", &new.id()[..11]));
        }
        *st = new;
        Ok(())
    }

    fn instruction(
        &mut self,
        st: &mut State,
        ctx: &mut StageCtx,
        inst: &Instruction,
    ) -> Result<(), Error> {
        let file = self.file.file.clone();
        let vars = Self::vars(st, ctx);
        let ex = expand_instruction(inst, self.file.escape, &vars, &file)?;
        let ts = self.opts.timestamp;
        // The ARGs a step depends on (docker's `|N K=V` prefix and the cache key).
        let args: Vec<(String, String)> = ctx.args.clone();
        let nop = |text: &str| format!("/bin/sh -c #(nop) {text}");
        let meta = |this: &mut Self,
                    st: &mut State,
                    text: String,
                    f: &dyn Fn(&mut State)|
         -> Result<(), Error> {
            this.cached(st, &text, &args, "", |_, s| {
                let mut s = s.clone();
                f(&mut s);
                s.history(&nop(&text), true, ts);
                Ok(s)
            })
        };
        match &ex.kind {
            Kind::From { .. } => unreachable!("the plan splits stages at FROM"),
            Kind::Arg(defs) => {
                for d in defs {
                    let global = self
                        .plan
                        .global_args
                        .iter()
                        .find(|(k, _)| *k == d.name)
                        .map(|(_, v)| v.clone());
                    let value = self
                        .opts
                        .build_args
                        .get(&d.name)
                        .cloned()
                        .or_else(|| d.default.clone())
                        .or(global);
                    ctx.args.retain(|(k, _)| *k != d.name);
                    if let Some(v) = value {
                        ctx.args.insert(0, (d.name.clone(), v));
                    }
                }
                Ok(())
            }
            Kind::Env(kvs) => {
                let text = format!(
                    "ENV {}",
                    kvs.iter()
                        .map(|kv| format!("{}={}", kv.key, kv.value))
                        .collect::<Vec<_>>()
                        .join(" ")
                );
                let kvs = kvs.clone();
                meta(self, st, text, &|s| {
                    for kv in &kvs {
                        s.set_env(&kv.key, &kv.value);
                    }
                })
            }
            Kind::Label(kvs) => {
                let text = format!(
                    "LABEL {}",
                    kvs.iter()
                        .map(|kv| format!("{}={}", kv.key, kv.value))
                        .collect::<Vec<_>>()
                        .join(" ")
                );
                let kvs = kvs.clone();
                meta(self, st, text, &|s| {
                    for kv in &kvs {
                        s.set_in("Labels", &kv.key, json!(kv.value));
                    }
                })
            }
            Kind::Maintainer(m) => {
                let m = m.clone();
                meta(self, st, format!("MAINTAINER {m}"), &|s| {
                    s.config["author"] = json!(m)
                })
            }
            Kind::Expose(ports) => {
                let ports: Vec<String> = ports
                    .iter()
                    .map(|p| {
                        if p.contains('/') {
                            p.to_ascii_lowercase()
                        } else {
                            format!("{p}/tcp")
                        }
                    })
                    .collect();
                let text = format!("EXPOSE {}", ports.join(" "));
                meta(self, st, text, &|s| {
                    for p in &ports {
                        s.set_in("ExposedPorts", p, json!({}));
                    }
                })
            }
            Kind::Volume(vols) => {
                let vols = vols.clone();
                let text = format!(
                    "VOLUME {}",
                    serde_json::to_string(&vols).unwrap_or_default()
                );
                meta(self, st, text, &|s| {
                    for v in &vols {
                        s.set_in("Volumes", v, json!({}));
                    }
                })
            }
            Kind::User(u) => {
                let u = u.clone();
                meta(self, st, format!("USER {u}"), &|s| {
                    s.cfg()["User"] = json!(u)
                })
            }
            Kind::StopSignal(sig) => {
                let sig = sig.clone();
                meta(self, st, format!("STOPSIGNAL {sig}"), &|s| {
                    s.cfg()["StopSignal"] = json!(sig)
                })
            }
            Kind::Shell(sh) => {
                ctx.shell = sh.clone();
                let sh = sh.clone();
                let text = format!("SHELL {}", serde_json::to_string(&sh).unwrap_or_default());
                meta(self, st, text, &|s| s.cfg()["Shell"] = json!(sh))
            }
            Kind::Cmd(c) => {
                ctx.cmd_set = true;
                let list = state::command_list(c, &ctx.shell);
                let text = format!("CMD {}", serde_json::to_string(&list).unwrap_or_default());
                meta(self, st, text, &|s| s.cfg()["Cmd"] = json!(list))
            }
            Kind::Entrypoint(c) => {
                let list = state::command_list(c, &ctx.shell);
                let keep_cmd = ctx.cmd_set;
                let text = format!(
                    "ENTRYPOINT {}",
                    serde_json::to_string(&list).unwrap_or_default()
                );
                meta(self, st, text, &|s| {
                    s.cfg()["Entrypoint"] = json!(list);
                    if !keep_cmd {
                        // docker: an ENTRYPOINT resets the base image's CMD.
                        s.cfg()["Cmd"] = Value::Null;
                    }
                })
            }
            Kind::Healthcheck(h) => {
                let hc = state::healthcheck(h, &ctx.shell);
                let text = format!("HEALTHCHECK {}", inst.original.trim_start()[11..].trim());
                meta(self, st, text, &|s| s.cfg()["Healthcheck"] = hc.clone())
            }
            Kind::Onbuild { expression, .. } => {
                let e = expression.clone();
                meta(self, st, format!("ONBUILD {e}"), &|s| {
                    let mut list = s.get("OnBuild").as_array().cloned().unwrap_or_default();
                    list.push(json!(e));
                    s.cfg()["OnBuild"] = Value::Array(list);
                })
            }
            Kind::Workdir(w) => self.workdir(st, &args, w, inst),
            Kind::Run(run) => self.run(st, ctx, &args, run, inst),
            Kind::Copy(c) => self.copy(st, &args, c, inst, false),
            Kind::Add(c) => self.copy(st, &args, c, inst, true),
        }
    }

    fn commit(&mut self, mut st: State) -> Result<Built, Error> {
        for (k, v) in &self.opts.labels {
            st.set_in("Labels", k, json!(v));
        }
        if self.opts.squash {
            let base = self.squash_base();
            if st.diff_ids.len() > base + 1 {
                st = super::squash::squash(self.paths, &self.store, &st, base, self.opts.timestamp)
                    .map_err(|m| Error::Invalid(format!("--squash: {m}")))?;
            }
        }
        let mut names = Vec::new();
        for t in &self.opts.tags {
            names.push(names::local(t).map_err(|e| Error::Invalid(format!("-t {t}: {e}")))?);
        }
        let shown = names.first().cloned().unwrap_or_default();
        self.say(format!("COMMIT {shown}").trim_end());
        let (layers, manifest) = match self.opts.format {
            Format::Oci => {
                let layers: Vec<LayerBlob> = st
                    .layers
                    .iter()
                    .map(|l| LayerBlob {
                        media_type: if l.media_type == DOCKER_GZIP {
                            OCI_GZIP.into()
                        } else {
                            l.media_type.clone()
                        },
                        ..l.clone()
                    })
                    .collect();
                (layers, None)
            }
            Format::Docker => {
                let layers: Vec<LayerBlob> = st
                    .layers
                    .iter()
                    .map(|l| LayerBlob {
                        media_type: if l.media_type == OCI_GZIP {
                            DOCKER_GZIP.into()
                        } else {
                            l.media_type.clone()
                        },
                        ..l.clone()
                    })
                    .collect();
                let config =
                    serde_json::to_vec(&st.config).map_err(|e| Error::Invalid(e.to_string()))?;
                let id = {
                    use sha2::Digest;
                    hex::encode(sha2::Sha256::digest(&config))
                };
                let m = json!({
                    "schemaVersion": 2,
                    "mediaType": DOCKER_MANIFEST,
                    "config": {"mediaType": DOCKER_CONFIG, "digest": format!("sha256:{id}"), "size": config.len()},
                    "layers": layers.iter().map(|l| json!({"mediaType": l.media_type, "digest": l.digest, "size": l.size})).collect::<Vec<_>>(),
                });
                let mb = serde_json::to_vec(&m).map_err(|e| Error::Invalid(e.to_string()))?;
                let d = {
                    use sha2::Digest;
                    format!("sha256:{}", hex::encode(sha2::Sha256::digest(&mb)))
                };
                self.store
                    .put_blob(&d, &mb)
                    .map_err(|e| Error::Invalid(e.to_string()))?;
                (layers, Some((d, DOCKER_MANIFEST.to_string())))
            }
        };
        let image = archive::store_image(
            &self.store,
            &st.config,
            st.diff_ids.clone(),
            layers,
            manifest,
            &names,
        )
        .map_err(|e| Error::Invalid(format!("storing the image: {e}")))?;
        self.say(&format!("--> {}", &image.id[..11]));
        for n in &names {
            self.say(&format!("Successfully tagged {n}"));
        }
        Ok(Built { image, names })
    }

    /// Layers of the target stage's base image (what --squash keeps).
    fn squash_base(&self) -> usize {
        let mut i = self.plan.target;
        loop {
            match &self.plan.stages[i].base {
                Base::Stage(b) => i = *b,
                Base::Scratch => return 0,
                Base::Image(_) => {
                    // The count the base had: the first layer-producing step of the
                    // target's chain is recorded after it; count history entries instead.
                    return self.base_layers.get(&i).copied().unwrap_or(0);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_hosts_platform() {
        let host = Platform {
            os: "linux".into(),
            arch: "amd64".into(),
            variant: String::new(),
        };
        assert!(check_platform("linux/amd64", &host).is_ok());
        assert!(check_platform("linux/x86_64", &host).is_ok());
        let e = check_platform("linux/arm64", &host).unwrap_err();
        assert!(
            e.contains("only for this host's platform (linux/amd64)"),
            "{e}"
        );
    }
}
