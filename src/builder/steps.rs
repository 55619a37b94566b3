//! The steps that make layers: WORKDIR (when the directory is missing), RUN (through
//! `run_step`) and COPY/ADD (through `copy`), each through the builder's cache.
use std::os::fd::AsFd;
use std::path::PathBuf;

use serde_json::json;

use super::Error;
use super::copy::{self, Entries, Request, Root};
use super::exec::{Builder, StageCtx};
use super::run_step::{self, Outcome};
use super::state::State;
use super::view::{ImageProbe, ImageView};
use crate::build::parse::{self, Command, CopyArgs, Instruction, Source};
use crate::build::plan;
use crate::storage::{LayerBlob, archive};

use super::OCI_GZIP;

impl Builder<'_> {
    pub(super) fn workdir(
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
                    .write_entries(&s, context.as_fd(), Root::Context, &entries)
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
    /// The directories above the entries come with the metadata the image `s` gives them
    /// (looked up as root of the store's user namespace).
    fn write_entries(
        &self,
        s: &State,
        root: std::os::fd::BorrowedFd,
        how: Root,
        entries: &Entries,
    ) -> Result<(PathBuf, crate::storage::layer::Digests), String> {
        let mut entries = entries.clone();
        let need = copy::missing_parents(&entries);
        if !need.is_empty() {
            let layers = ImageView::new(&self.store, s).layers().to_vec();
            let answer =
                crate::monitor::cp_ns::in_userns(crate::monitor::cp_ns::Userns::Store, || {
                    serde_json::to_string(&super::view::lookup_meta(&layers, &need))
                        .map_err(|e| crate::monitor::Error::Failed(e.to_string()))
                })
                .map_err(|e| {
                    format!(
                        "reading the image's directories: {}",
                        crate::exit::error_line(&e)
                    )
                })?;
            let meta = serde_json::from_str(&answer).map_err(|e| e.to_string())?;
            copy::complete_parents(&mut entries, &meta);
        }
        let (blob, file) = run_step::blob_file(&self.store)?;
        match copy::write(root, how, &entries, file, self.opts.timestamp) {
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

    pub(super) fn run(
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

    pub(super) fn copy(
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
                        .write_entries(s, context.as_fd(), Root::Context, &entries)
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
                let target_layers = view.layers().to_vec();
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
                        // In the user namespace already: the image's directories as root.
                        let need = copy::missing_parents(&entries);
                        let meta = super::view::lookup_meta(&target_layers, &need);
                        copy::complete_parents(&mut entries, &meta);
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
}
