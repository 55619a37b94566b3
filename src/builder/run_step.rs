//! RUN: a temporary box container made from the stage's layers runs the command in the
//! foreground (box's own runtime: the same user namespace mapping, capabilities, seccomp
//! filter and network as `box run`); its upper directory becomes the step's layer, as
//! `box commit` makes one; the container is removed whatever happens.
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use crate::container::{Config, Containers, Record};
use crate::monitor::cp_ns;
use crate::paths::Paths;
use crate::spec::{Driver, Mount, Rootfs, Spec};
use crate::storage::layer::Digests;
use crate::storage::{Store, unique};

/// What one RUN runs, and where.
pub(crate) struct Step {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub user: String,
    pub cwd: String,
    pub network: Option<String>,
    /// (host file, absolute target) bound read-only for this step only.
    pub secrets: Vec<(PathBuf, String)>,
    /// The stage's layer dirs, bottom to top.
    pub layers: Vec<PathBuf>,
    /// The state id, recorded as the container's image.
    pub image_id: String,
}

/// How a RUN ended.
pub(crate) enum Outcome {
    /// Exited 0: the layer blob (a file of ours under the store's tmp/) and its digests.
    Layer(PathBuf, Digests),
    /// Exited with this status.
    Failed(u8),
}

/// Removes the temporary container (and its files) when dropped.
struct Temporary<'a> {
    paths: &'a Paths,
    containers: Containers,
    rec: Option<Record>,
}

impl Drop for Temporary<'_> {
    fn drop(&mut self) {
        if let Some(rec) = self.rec.take() {
            let _ =
                crate::run::remove_container_files(&self.containers, &rec, &self.paths.data, false);
        }
    }
}

/// A container record (never started by itself) for `spec`'s root filesystem.
pub(crate) fn temporary_spec(layers: Vec<PathBuf>, driver: Driver) -> Spec {
    Spec {
        args: vec!["/bin/true".into()],
        cwd: "/".into(),
        userns: crate::userns::Mode::Auto,
        caps: crate::run::security::cap_set(&[], &[]).unwrap_or_default(),
        rootfs: Rootfs { driver, layers },
        network: crate::network::Plan {
            mode: crate::network::Mode::None,
            ports: Vec::new(),
        },
        ..Spec::default()
    }
}

/// Record a hidden build container; removed when the guard drops.
fn record<'a>(paths: &'a Paths, spec: Spec, image_id: &str) -> Result<Temporary<'a>, String> {
    let containers = Containers::open(paths).map_err(|e| e.to_string())?;
    let name = format!("{}{}", super::stale::PREFIX, unique());
    let labels = [(
        super::stale::BUILDER_LABEL.to_string(),
        super::stale::builder_id(),
    )]
    .into();
    let rec = containers
        .create(Some(&name), |id, name| Config {
            id: id.to_string(),
            name: name.to_string(),
            image: image_id.to_string(),
            image_name: image_id.to_string(),
            image_id: format!("sha256:{image_id}"),
            created: crate::units::now_rfc3339(),
            command: spec.args.clone(),
            autoremove: false,
            labels,
            spec,
        })
        .map_err(|e| format!("cannot create the build container: {e}"))?;
    Ok(Temporary {
        paths,
        containers,
        rec: Some(rec),
    })
}

/// Run `work` with the merged root of a temporary container made of `layers`, in its
/// user namespace (COPY --from reads another stage or image there).
pub(crate) fn in_layers(
    paths: &Paths,
    layers: Vec<PathBuf>,
    driver: Driver,
    work: impl FnOnce(std::os::fd::BorrowedFd) -> crate::monitor::Result<String>,
) -> Result<String, String> {
    let tmp = record(paths, temporary_spec(layers, driver), "copy-source")?;
    let rec = tmp.rec.as_ref().expect("recorded");
    cp_ns::in_root(paths, rec, work).map_err(|e| crate::exit::error_line(&e))
}

/// Run the step; stdout of the command goes to `stdout_to` (box's stdout, or its stderr
/// under `--quiet`).
pub(crate) fn run(
    paths: &Paths,
    store: &Store,
    driver: Driver,
    step: &Step,
    timestamp: Option<u64>,
    quiet: bool,
) -> Result<Outcome, String> {
    let net = crate::network::Plan::new(
        &crate::network::Opts {
            network: step.network.clone(),
            ..Default::default()
        },
        &[],
    )
    .map_err(|e| format!("--network: {e}"))?;
    let mut spec = temporary_spec(step.layers.clone(), driver);
    spec.args = step.args.clone();
    spec.env = step.env.clone();
    spec.user = step.user.clone();
    spec.cwd = step.cwd.clone();
    spec.network = net;
    spec.mounts = step
        .secrets
        .iter()
        .map(|(src, target)| Mount::Bind {
            source: src.clone(),
            target: target.clone(),
            readonly: true,
        })
        .collect();
    let tmp = record(paths, spec, &step.image_id)?;
    let rec = tmp.rec.as_ref().expect("recorded");
    let code = {
        // --quiet: the command's output goes to stderr, so stdout holds only the id.
        let _swap = quiet.then(StdoutToStderr::new);
        crate::run::start_container(
            paths,
            rec,
            &crate::run::StartOptions {
                attach: true,
                interactive: false,
                debug: false,
            },
        )
        .map_err(|e| e.to_string())?
    };
    if code != 0 {
        return Ok(Outcome::Failed(code));
    }
    let blob = store.tmp_path(&format!("build-{}", unique()));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&blob)
        .map_err(|e| format!("create {}: {e}", blob.display()))?;
    let targets: Vec<String> = step.secrets.iter().map(|(_, t)| t.clone()).collect();
    match cp_ns::write_upper(rec, file, timestamp, &targets) {
        Ok(d) => Ok(Outcome::Layer(blob, d)),
        Err(e) => {
            let _ = std::fs::remove_file(&blob);
            Err(format!("reading the step's changes: {e}"))
        }
    }
}

/// fd 1 pointed at fd 2 until dropped (single-threaded: nothing else writes meanwhile).
struct StdoutToStderr(Option<std::os::fd::OwnedFd>);

impl StdoutToStderr {
    fn new() -> StdoutToStderr {
        use std::io::Write;
        let _ = std::io::stdout().flush();
        let saved = nix::unistd::dup(std::io::stdout()).ok();
        // SAFETY: dup2 on the process's own standard descriptors.
        unsafe { libc::dup2(std::io::stderr().as_raw_fd(), 1) };
        StdoutToStderr(saved)
    }
}

impl Drop for StdoutToStderr {
    fn drop(&mut self) {
        if let Some(fd) = self.0.take() {
            // SAFETY: restores fd 1 from our saved copy.
            unsafe { libc::dup2(fd.as_raw_fd(), 1) };
        }
    }
}

/// A file of ours for a layer blob.
pub(crate) fn blob_file(store: &Store) -> Result<(PathBuf, File), String> {
    let blob = store.tmp_path(&format!("build-{}", unique()));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&blob)
        .map_err(|e| format!("create {}: {e}", blob.display()))?;
    Ok((blob, file))
}
