//! The build loop: each needed stage in file order, each instruction through the cache.
use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use serde_json::{Value, json};

use super::cache::{self, Cache};
use super::copy::{self, Entries, Request, Root};
use super::run_step::{self, Outcome};
use super::state::{self, State};
use super::{Built, Error, Format, Options, Progress};
use crate::build::expand::expand_instruction;
use crate::build::ignore::Ignore;
use crate::build::parse::{self, Command, Containerfile, CopyArgs, Instruction, Kind, Source};
use crate::build::plan::{self, Base, Plan, Platform};
use crate::paths::Paths;
use crate::spec::Driver;
use crate::storage::{LayerBlob, Store, archive, names, pull};

const OCI_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const DOCKER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// What a stage knows besides its image config.
struct StageCtx {
    /// ARGs declared in the stage with their values (first wins).
    args: Vec<(String, String)>,
    shell: Vec<String>,
    /// CMD given in this stage (ENTRYPOINT then keeps it).
    cmd_set: bool,
    /// The state's layer count when the stage began (`--layers=false` squashes above).
    base_layers: usize,
}

struct Builder<'a> {
    paths: &'a Paths,
    opts: &'a Options,
    progress: &'a dyn Progress,
    store: Store,
    file: Containerfile,
    plan: Plan,
    ignore: Ignore,
    context: OwnedFd,
    driver: Option<Driver>,
    done: HashMap<usize, State>,
    /// The step of the current stage, and its number of steps.
    step: usize,
    total: usize,
    last_stage: bool,
    /// `[i/n] ` before each STEP line of a multi-stage build.
    stage_tag: String,
    host: Platform,
    /// Per stage: the layers of its base (what `--squash` keeps).
    base_layers: HashMap<usize, usize>,
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
    let target = b.plan.target;
    let state = b.done.remove(&target).expect("the target stage was built");
    b.commit(state)
}

fn at(file: &str, line: usize, msg: impl Into<String>) -> Error {
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
    fn say(&self, text: &str) {
        self.progress.line(text);
    }

    fn err(&self, inst: &Instruction, msg: impl Into<String>) -> Error {
        at(&self.file.file, inst.line, msg)
    }

    fn driver(&mut self) -> Result<Driver, String> {
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
    fn base_image(&self, name: &str, platform: Option<&str>) -> Result<State, String> {
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
    fn cached(
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

    fn workdir(
        &mut self,
        st: &mut State,
        args: &[(String, String)],
        w: &str,
        inst: &Instruction,
    ) -> Result<(), Error> {
        let cur = st.str_of("WorkingDir");
        let dir = crate::spec::clean_path(&if w.starts_with('/') {
            w.to_string()
        } else {
            format!("{}/{w}", if cur.is_empty() { "/" } else { &cur })
        });
        let ts = self.opts.timestamp;
        let text = format!("WORKDIR {dir}");
        let view = ImageView::new(&self.store, st);
        let rel = view.resolve(dir.trim_start_matches('/'));
        let missing = !rel.is_empty() && !view.exists(&rel);
        let context = self
            .context
            .try_clone()
            .map_err(|e| self.err(inst, e.to_string()))?;
        self.cached(st, &text, args, "", |this, s| {
            let mut s = s.clone();
            s.cfg()["WorkingDir"] = json!(dir);
            if missing {
                let mut entries = Entries::new();
                let mut p = String::new();
                for c in rel.split('/') {
                    p = if p.is_empty() {
                        c.to_string()
                    } else {
                        format!("{p}/{c}")
                    };
                    if !view.exists(&p) {
                        entries.insert(p.clone(), copy::dir_entry(0o755, (0, 0), ts.unwrap_or(0)));
                    }
                }
                let (blob, d) = this
                    .write_entries(context.as_fd(), Root::Context, &entries)
                    .map_err(|m| this.err(inst, m))?;
                this.add_layer(&mut s, blob, d)
                    .map_err(|m| this.err(inst, m))?;
                s.history(&format!("/bin/sh -c #(nop) {text}"), false, ts);
            } else {
                s.history(&format!("/bin/sh -c #(nop) {text}"), true, ts);
            }
            Ok(s)
        })
    }

    /// Write `entries` as a layer blob under the store's tmp/.
    fn write_entries(
        &self,
        root: std::os::fd::BorrowedFd,
        how: Root,
        entries: &Entries,
    ) -> Result<(PathBuf, crate::storage::layer::Digests), String> {
        let (blob, file) = run_step::blob_file(&self.store)?;
        match copy::write(root, how, entries, file, self.opts.timestamp) {
            Ok(d) => Ok((blob, d)),
            Err(e) => {
                let _ = std::fs::remove_file(&blob);
                Err(e)
            }
        }
    }

    /// Store a layer blob (unpacked once, diff_id checked) and add it to the state.
    fn add_layer(
        &self,
        s: &mut State,
        blob: PathBuf,
        d: crate::storage::layer::Digests,
    ) -> Result<(), String> {
        let warn = |w: &str| eprintln!("box: warning: {w}");
        let stored =
            archive::ingest_layers(&self.store, vec![(blob, Some(d.diff_id.clone()))], &warn)
                .map_err(|e| e.to_string())?;
        let Some((diff_id, blob)) = stored.into_iter().next() else {
            return Err("the layer was not stored".into());
        };
        s.push_layer(
            diff_id,
            LayerBlob {
                media_type: OCI_GZIP.into(),
                ..blob
            },
        );
        Ok(())
    }

    fn run(
        &mut self,
        st: &mut State,
        ctx: &StageCtx,
        args: &[(String, String)],
        run: &parse::Run,
        inst: &Instruction,
    ) -> Result<(), Error> {
        let argv = match &run.command {
            Command::Exec(v) => v.clone(),
            Command::Shell(s) => {
                let mut v = ctx.shell.clone();
                v.push(heredoc_script(s, &inst.heredocs));
                v
            }
        };
        if argv.is_empty() {
            return Err(self.err(inst, "RUN needs a command"));
        }
        let mut secrets = Vec::new();
        for m in &run.mounts {
            let (target, src) = self.secret_mount(m).map_err(|e| self.err(inst, e))?;
            if let Some(src) = src {
                secrets.push((src, target));
            }
        }
        if !run.devices.is_empty() {
            return Err(self.err(inst, "RUN --device is not supported by box build"));
        }
        if let Some(s) = &run.security
            && s != "sandbox"
        {
            return Err(self.err(
                inst,
                format!("RUN --security={s} is not supported by box build"),
            ));
        }
        let mut created_by = argv.join(" ");
        let shown_args: Vec<&(String, String)> = args
            .iter()
            .filter(|(k, _)| !plan::PROXY_ARGS.contains(&k.as_str()))
            .collect();
        if !shown_args.is_empty() {
            let mut sorted = shown_args.clone();
            sorted.sort();
            created_by = format!(
                "|{} {} {created_by}",
                sorted.len(),
                sorted
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
        // The environment: the image's Env, then the ARGs it does not set, then the
        // proxy build args (never recorded).
        let mut env: Vec<String> = st.env().iter().map(|(k, v)| format!("{k}={v}")).collect();
        let has = |env: &Vec<String>, k: &str| env.iter().any(|e| e.split('=').next() == Some(k));
        for (k, v) in args {
            if !has(&env, k) {
                env.push(format!("{k}={v}"));
            }
        }
        for p in plan::PROXY_ARGS {
            if let Some(v) = self.opts.build_args.get(*p)
                && !has(&env, p)
            {
                env.push(format!("{p}={v}"));
            }
        }
        let network = run.network.clone().or(self.opts.network.clone());
        let step_text = inst.original.clone();
        let key_text = format!("{created_by}\n{:?}\n{:?}", inst.heredocs, run.mounts);
        self.cached(st, &key_text, args, "", |this, s| {
            let driver = this.driver().map_err(|m| this.err(inst, m))?;
            let cwd = s.str_of("WorkingDir");
            let step = run_step::Step {
                args: argv.clone(),
                env: env.clone(),
                user: s.str_of("User"),
                cwd: if cwd.is_empty() { "/".into() } else { cwd },
                network: network.clone(),
                secrets: secrets.clone(),
                layers: s
                    .diff_ids
                    .iter()
                    .map(|d| this.store.layer_diff(d))
                    .collect(),
                image_id: s.id(),
            };
            let quiet = this.opts.quiet_output;
            let out = run_step::run(
                this.paths,
                &this.store,
                driver,
                &step,
                this.opts.timestamp,
                quiet,
            )
            .map_err(|m| this.err(inst, m))?;
            match out {
                Outcome::Failed(code) => Err(Error::RunFailed {
                    file: this.file.file.clone(),
                    line: inst.line,
                    step: step_text.clone(),
                    code,
                }),
                Outcome::Layer(blob, d) => {
                    let mut s = s.clone();
                    this.add_layer(&mut s, blob, d)
                        .map_err(|m| this.err(inst, m))?;
                    s.history(&created_by, false, this.opts.timestamp);
                    Ok(s)
                }
            }
        })
    }

    /// `--mount=type=secret,id=ID[,target=PATH][,required=BOOL]`: (target, host file).
    fn secret_mount(&self, m: &str) -> Result<(String, Option<PathBuf>), String> {
        let mut kind = "bind";
        let mut id = None;
        let mut target = None;
        let mut required = false;
        for part in m.split(',') {
            let (k, v) = part.split_once('=').unwrap_or((part, "true"));
            match k.trim().to_ascii_lowercase().as_str() {
                "type" => kind = v.trim(),
                "id" => id = Some(v.trim().to_string()),
                "target" | "dst" | "destination" => target = Some(v.trim().to_string()),
                "required" => required = v.trim() == "true",
                _ => {}
            }
        }
        if kind != "secret" {
            return Err(format!(
                "RUN --mount=type={kind} is not supported by box build yet (only type=secret)"
            ));
        }
        let id = id
            .or_else(|| {
                target
                    .as_ref()
                    .and_then(|t| t.rsplit('/').next().map(String::from))
            })
            .ok_or("RUN --mount=type=secret needs id=ID")?;
        let target = target.unwrap_or_else(|| format!("/run/secrets/{id}"));
        match self.opts.secrets.iter().find(|s| s.id == id) {
            Some(s) => Ok((target, Some(s.src.clone()))),
            None if required => Err(format!(
                "secret {id:?} is required: pass it with --secret id={id},src=FILE"
            )),
            None => Ok((target, None)),
        }
    }

    fn copy(
        &mut self,
        st: &mut State,
        args: &[(String, String)],
        c: &CopyArgs,
        inst: &Instruction,
        add: bool,
    ) -> Result<(), Error> {
        let what = if add { "ADD" } else { "COPY" };
        if c.parents || !c.exclude.is_empty() {
            let flag = if c.parents { "--parents" } else { "--exclude" };
            return Err(self.err(
                inst,
                format!(
                    "{what} {flag} is not supported by box build yet: list the sources instead"
                ),
            ));
        }
        if add && c.checksum.is_some() {
            return Err(self.err(inst, "ADD --checksum is not supported by box build yet"));
        }
        let wd = st.str_of("WorkingDir");
        let dest = if c.dest.starts_with('/') {
            c.dest.clone()
        } else {
            let base = if wd.is_empty() { "/".to_string() } else { wd };
            let mut d = format!("{}/{}", base.trim_end_matches('/'), c.dest);
            if c.dest == "." || c.dest.ends_with('/') {
                d.push('/');
            }
            d
        };
        let view = ImageView::new(&self.store, st);
        // The destination as the image resolves it (a symlinked /bin stays a symlink).
        let resolved = view.resolve(dest.trim_matches('/'));
        let dest = format!(
            "/{resolved}{}",
            if dest.ends_with('/') || dest.ends_with("/.") {
                "/"
            } else {
                ""
            }
        );
        let owner = match &c.chown {
            Some(o) => Some(
                view.owner(o)
                    .map_err(|m| self.err(inst, format!("--chown={o}: {m}")))?,
            ),
            None => None,
        };
        let chmod = match &c.chmod {
            Some(m) => Some(
                u32::from_str_radix(m, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| {
                        self.err(
                            inst,
                            format!("--chmod={m}: give an octal mode such as 0755"),
                        )
                    })?,
            ),
            None => None,
        };
        let mut paths: Vec<String> = Vec::new();
        let mut heredocs: Vec<(String, Vec<u8>)> = Vec::new();
        let mut urls: Vec<String> = Vec::new();
        for s in &c.sources {
            match s {
                Source::Path(p)
                    if add && (p.starts_with("http://") || p.starts_with("https://")) =>
                {
                    urls.push(p.clone())
                }
                Source::Path(p) if p.starts_with("git@") || p.ends_with(".git") && add => {
                    return Err(self.err(
                        inst,
                        format!("ADD {p}: git sources are not supported by box build"),
                    ));
                }
                Source::Path(p) => paths.push(p.clone()),
                Source::Heredoc(h) => {
                    heredocs.push((h.name.clone(), h.content.clone().into_bytes()))
                }
            }
        }
        let ts = self.opts.timestamp;
        let text_sources: Vec<String> = c
            .sources
            .iter()
            .map(|s| match s {
                Source::Path(p) => p.clone(),
                Source::Heredoc(h) => format!("<<{}", h.name),
            })
            .collect();
        let mut extra = Entries::new();
        let now = ts.unwrap_or_else(crate::storage::now_secs);
        let into_dir = dest.ends_with('/') || c.sources.len() > 1 || view.is_dir(&resolved);
        for (name, content) in heredocs {
            let target = if into_dir {
                format!("{}/{name}", resolved)
            } else {
                resolved.clone()
            };
            extra.insert(
                target.trim_start_matches('/').to_string(),
                copy::bytes_entry(
                    content,
                    chmod.unwrap_or(0o644),
                    owner.unwrap_or((0, 0)),
                    now,
                ),
            );
        }
        for u in &urls {
            let content = download(u).map_err(|m| self.err(inst, format!("ADD {u}: {m}")))?;
            let name = u
                .split(['?', '#'])
                .next()
                .unwrap_or(u)
                .rsplit('/')
                .next()
                .filter(|n| !n.is_empty())
                .unwrap_or("index.html")
                .to_string();
            let target = if into_dir {
                format!("{resolved}/{name}")
            } else {
                resolved.clone()
            };
            extra.insert(
                target.trim_start_matches('/').to_string(),
                copy::bytes_entry(content, chmod.unwrap_or(0o600), owner.unwrap_or((0, 0)), 0),
            );
        }
        // Heredoc and URL entries go into the digest by content.
        let extra_digest = {
            use sha2::Digest;
            let mut h = sha2::Sha256::new();
            for (p, e) in &extra {
                h.update(p.as_bytes());
                if let copy::Data::Bytes(b) = &e.data {
                    h.update(sha2::Sha256::digest(b));
                }
            }
            hex::encode(h.finalize())
        };
        let created_by = format!(
            "/bin/sh -c #(nop) {what} {}{}{} {}",
            c.chown
                .as_ref()
                .map(|o| format!("--chown={o} "))
                .unwrap_or_default(),
            c.chmod
                .as_ref()
                .map(|m| format!("--chmod={m} "))
                .unwrap_or_default(),
            text_sources.join(" "),
            dest
        );
        let exists = |p: &str| view.exists(p);
        let is_dir = |p: &str| view.is_dir(p);
        match &c.from {
            None => {
                let req = Request {
                    sources: &paths,
                    dest: &dest,
                    is_dir_in_image: &is_dir,
                    exists_in_image: &exists,
                    chown: owner,
                    chmod,
                    extract: add,
                    ignore: Some(&self.ignore),
                    root: Root::Context,
                    root_name: "the build context",
                };
                let (mut entries, digest) = if paths.is_empty() {
                    (Entries::new(), String::new())
                } else {
                    copy::collect(self.context.as_fd(), &req)
                        .map_err(|m| self.err(inst, format!("{what} {m}")))?
                };
                for (p, e) in extra {
                    entries.insert(p, e);
                }
                let context = self
                    .context
                    .try_clone()
                    .map_err(|e| self.err(inst, e.to_string()))?;
                let content = format!("{digest}{extra_digest}");
                self.cached(st, &created_by, args, &content, |this, s| {
                    let (blob, d) = this
                        .write_entries(context.as_fd(), Root::Context, &entries)
                        .map_err(|m| this.err(inst, m))?;
                    let mut s = s.clone();
                    this.add_layer(&mut s, blob, d)
                        .map_err(|m| this.err(inst, m))?;
                    s.history(&created_by, false, this.opts.timestamp);
                    Ok(s)
                })
            }
            Some(from) => {
                let source = self.copy_source(from, inst)?;
                let content = format!("{}{extra_digest}", source.id());
                let layers: Vec<PathBuf> = source
                    .diff_ids
                    .iter()
                    .map(|d| self.store.layer_diff(d))
                    .collect();
                // Paths in the source are absolute in its root.
                let paths: Vec<String> = paths
                    .iter()
                    .map(|p| p.trim_start_matches('/').to_string())
                    .collect();
                let exists_list: Vec<String> = Vec::new();
                let _ = exists_list;
                let probe = ImageProbe::capture(&view, &dest, &paths);
                self.cached(st, &created_by, args, &content, |this, s| {
                    let driver = this.driver().map_err(|m| this.err(inst, m))?;
                    let (blob, file) =
                        run_step::blob_file(&this.store).map_err(|m| this.err(inst, m))?;
                    let from_name = format!("stage or image {from:?}");
                    let answer = run_step::in_layers(this.paths, layers, driver, |root| {
                        let exists = |p: &str| probe.exists(p);
                        let is_dir = |p: &str| probe.is_dir(p);
                        let req = Request {
                            sources: &paths,
                            dest: &dest,
                            is_dir_in_image: &is_dir,
                            exists_in_image: &exists,
                            chown: owner,
                            chmod,
                            extract: false,
                            ignore: None,
                            root: Root::Image,
                            root_name: &from_name,
                        };
                        let fail = |m: String| crate::monitor::Error::Failed(m);
                        let (mut entries, _) = copy::collect(root, &req).map_err(fail)?;
                        for (p, e) in &extra {
                            entries.insert(p.clone(), e.clone());
                        }
                        let d = copy::write(root, Root::Image, &entries, file, ts).map_err(fail)?;
                        serde_json::to_string(&d).map_err(|e| fail(e.to_string()))
                    });
                    let answer = match answer {
                        Ok(a) => a,
                        Err(m) => {
                            let _ = std::fs::remove_file(&blob);
                            return Err(this.err(inst, format!("{what} --from={from}: {m}")));
                        }
                    };
                    let d: crate::storage::layer::Digests =
                        serde_json::from_str(&answer).map_err(|e| this.err(inst, e.to_string()))?;
                    let mut s = s.clone();
                    this.add_layer(&mut s, blob, d)
                        .map_err(|m| this.err(inst, m))?;
                    s.history(&created_by, false, this.opts.timestamp);
                    Ok(s)
                })
            }
        }
    }

    /// The state `COPY --from=` reads: an earlier stage, else an image (pulled per --pull).
    fn copy_source(&mut self, from: &str, inst: &Instruction) -> Result<State, Error> {
        let stage = self
            .plan
            .stages
            .iter()
            .position(|s| s.name.as_deref() == Some(from.to_ascii_lowercase().as_str()))
            .or_else(|| {
                from.parse::<usize>()
                    .ok()
                    .filter(|i| *i < self.plan.stages.len())
            });
        match stage {
            Some(i) => self.done.get(&i).cloned().ok_or_else(|| {
                self.err(
                    inst,
                    format!("COPY --from={from}: that stage is not built before this one"),
                )
            }),
            None => self
                .base_image(from, None)
                .map_err(|m| self.err(inst, format!("COPY --from={from}: {m}"))),
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

/// A shell-form RUN with heredocs as the shell gets it: a lone `<<EOF` runs the body as
/// the script; otherwise the bodies follow the command line, as a shell script would
/// have them.
fn heredoc_script(cmd: &str, heredocs: &[parse::Heredoc]) -> String {
    if heredocs.is_empty() {
        return cmd.to_string();
    }
    if heredocs.len() == 1 {
        let t = cmd.trim();
        let marker = t
            .strip_prefix("<<")
            .map(|r| r.trim_start_matches('-').trim().trim_matches(['"', '\'']));
        if marker == Some(heredocs[0].name.as_str()) {
            return heredocs[0].content.clone();
        }
    }
    let mut s = cmd.to_string();
    s.push('\n');
    for h in heredocs {
        s.push_str(&h.content);
        s.push_str(&h.name);
        s.push('\n');
    }
    s
}

/// ADD of a URL: fetched once, with a short timeout.
fn download(url: &str) -> Result<Vec<u8>, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(30)))
        .timeout_connect(Some(std::time::Duration::from_secs(10)))
        .build()
        .into();
    let mut resp = agent
        .get(url)
        .call()
        .map_err(|e| format!("cannot download it ({e}): is the network reachable from this host? copy the file into the context and use COPY instead"))?;
    resp.body_mut()
        .with_config()
        .limit(4 << 30)
        .read_to_vec()
        .map_err(|e| format!("cannot download it: {e}"))
}

/// Lookups in a state's layers, as the merged root shows them (top layer first;
/// whiteouts hide what is below). Read on the host: a path box cannot read counts as
/// missing.
pub(crate) struct ImageView {
    layers: Vec<PathBuf>,
}

impl ImageView {
    fn new(store: &Store, st: &State) -> ImageView {
        ImageView {
            layers: st
                .diff_ids
                .iter()
                .rev()
                .map(|d| store.layer_diff(d))
                .collect(),
        }
    }

    /// The metadata of `rel` in the merged view, without following a last symlink.
    fn lstat(&self, rel: &str) -> Option<std::fs::Metadata> {
        use std::os::unix::fs::FileTypeExt;
        if rel.is_empty() {
            return None;
        }
        for l in &self.layers {
            // A whiteout of the path or of a parent hides everything below.
            let mut hidden = false;
            let mut p = PathBuf::new();
            for c in rel.split('/') {
                p.push(c);
                if let Ok(m) = std::fs::symlink_metadata(l.join(&p))
                    && m.file_type().is_char_device()
                    && {
                        use std::os::unix::fs::MetadataExt;
                        m.rdev() == 0
                    }
                {
                    hidden = true;
                    break;
                }
            }
            if hidden {
                return None;
            }
            if let Ok(m) = std::fs::symlink_metadata(l.join(rel)) {
                return Some(m);
            }
        }
        None
    }

    pub fn exists(&self, rel: &str) -> bool {
        rel.is_empty() || self.lstat(rel).is_some()
    }

    pub fn is_dir(&self, rel: &str) -> bool {
        let rel = self.resolve(rel.trim_matches('/'));
        rel.is_empty() || self.lstat(&rel).is_some_and(|m| m.is_dir())
    }

    /// `rel` with every symlink on the way resolved inside the image (at most 40).
    pub fn resolve(&self, rel: &str) -> String {
        let mut todo: Vec<String> = rel
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .rev()
            .map(String::from)
            .collect();
        let mut out: Vec<String> = Vec::new();
        let mut links = 0;
        while let Some(c) = todo.pop() {
            if c == ".." {
                out.pop();
                continue;
            }
            out.push(c);
            let p = out.join("/");
            let target = self
                .lstat(&p)
                .filter(|m| m.file_type().is_symlink())
                .and_then(|_| {
                    self.layers
                        .iter()
                        .find_map(|l| std::fs::read_link(l.join(&p)).ok())
                });
            if let Some(t) = target
                && links < 40
            {
                links += 1;
                out.pop();
                let t = t.to_string_lossy().into_owned();
                if t.starts_with('/') {
                    out.clear();
                }
                for part in t.split('/').filter(|c| !c.is_empty() && *c != ".").rev() {
                    todo.push(part.to_string());
                }
            }
        }
        out.join("/")
    }

    /// `--chown` as numbers: names looked up in the image's /etc/passwd and /etc/group.
    pub fn owner(&self, spec: &str) -> Result<(u64, u64), String> {
        let (u, g) = match spec.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (spec, None),
        };
        let file = |name: &str| -> String {
            let rel = self.resolve(&format!("etc/{name}"));
            self.layers
                .iter()
                .find_map(|l| std::fs::read_to_string(l.join(&rel)).ok())
                .unwrap_or_default()
        };
        let lookup = |table: &str, name: &str| -> Option<(u64, u64)> {
            file(table).lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.first() == Some(&name) && f.len() > 3).then(|| {
                    (
                        f[2].parse().unwrap_or(0),
                        f.get(3).and_then(|g| g.parse().ok()).unwrap_or(0),
                    )
                })
            })
        };
        let (uid, primary) = match u.parse::<u64>() {
            Ok(n) => (n, lookup_by_uid(&file("passwd"), n).unwrap_or(n)),
            Err(_) => lookup("passwd", u)
                .ok_or_else(|| format!("no user {u:?} in the image's /etc/passwd: use a number"))?,
        };
        let gid = match g {
            None => {
                if u.parse::<u64>().is_ok() {
                    uid
                } else {
                    primary
                }
            }
            Some(g) => match g.parse::<u64>() {
                Ok(n) => n,
                Err(_) => {
                    let groups = file("group");
                    groups
                        .lines()
                        .find_map(|l| {
                            let f: Vec<&str> = l.split(':').collect();
                            (f.first() == Some(&g) && f.len() > 2)
                                .then(|| f[2].parse().ok())
                                .flatten()
                        })
                        .ok_or_else(|| {
                            format!("no group {g:?} in the image's /etc/group: use a number")
                        })?
                }
            },
        };
        Ok((uid, gid))
    }
}

fn lookup_by_uid(passwd: &str, uid: u64) -> Option<u64> {
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 3 && f[2].parse::<u64>().ok() == Some(uid))
            .then(|| f[3].parse().ok())
            .flatten()
    })
}

/// What `COPY --from` needs to know of the image being built, captured before the work
/// moves into another process.
struct ImageProbe {
    known: HashMap<String, (bool, bool)>,
}

impl ImageProbe {
    fn capture(view: &ImageView, dest: &str, _sources: &[String]) -> ImageProbe {
        let mut known = HashMap::new();
        let mut p = dest.trim_matches('/').to_string();
        loop {
            let e = view.exists(&p);
            known.insert(p.clone(), (e, e && view.is_dir(&p)));
            match p.rfind('/') {
                Some(i) => p.truncate(i),
                None => break,
            }
        }
        ImageProbe { known }
    }

    fn exists(&self, p: &str) -> bool {
        self.known.get(p).is_some_and(|k| k.0)
    }

    fn is_dir(&self, p: &str) -> bool {
        self.known.get(p).is_some_and(|k| k.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heredoc(name: &str, content: &str) -> parse::Heredoc {
        parse::Heredoc {
            name: name.into(),
            content: content.into(),
            expand: true,
            chomp: false,
            fd: 0,
        }
    }

    #[test]
    fn heredocs_become_the_script() {
        // A lone heredoc is the script; otherwise the bodies follow the command line.
        assert_eq!(
            heredoc_script("<<EOF", &[heredoc("EOF", "echo hi\n")]),
            "echo hi\n"
        );
        assert_eq!(
            heredoc_script("<<-'EOF'", &[heredoc("EOF", "echo hi\n")]),
            "echo hi\n"
        );
        assert_eq!(
            heredoc_script("cat <<A > /a", &[heredoc("A", "x\n")]),
            "cat <<A > /a\nx\nA\n"
        );
        assert_eq!(heredoc_script("echo", &[]), "echo");
    }

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
