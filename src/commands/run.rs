//! `box run` and `box create`.
//!
//! Both resolve the image (pulling it per `--pull`), decide the container's `Spec` with
//! docker's override rules, and record the container (`container::Containers::create`).
//! `run` then starts it attached (`run::start_container`) and returns its exit code.
use anyhow::{Context, Result, bail};

use super::pod::Joining;
use super::pull;
use crate::cli::Ctx;
use crate::cli::args::{ContainerOpts, CreateArgs, LogLevel, RunArgs};
use crate::container::{Config, Containers, Record};
use crate::run::{Rootfs, StartOptions, Watcher};
use crate::spec::ImageDefaults;
use crate::storage::{self, Store};
use crate::units as time;
use crate::userns::{self, IdMaps};

pub fn run(ctx: &Ctx, args: RunArgs) -> Result<u8> {
    if args.detach {
        // Detached: a monitor (`crate::monitor`) starts and supervises it; print the id
        // once the command runs (or fail with 125/126/127 when it cannot start).
        let (rec, _) = create_record_watched(ctx, &args.container, args.rm, false, true)?;
        crate::monitor::start_detached(&ctx.paths, &rec)?;
        println!("{}", rec.id());
        return Ok(0);
    }
    if args.container.tty && !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        // podman's warning: a terminal without one to read from.
        eprintln!(
            "box: warning: the input device is not a TTY: --tty and --interactive might not work properly"
        );
    }
    // With --rm the cleanup watcher exists before the record does (see run::cleanup).
    let (rec, watcher) = create_record_watched(ctx, &args.container, args.rm, args.rm, true)?;
    // Held while the container runs: the user networks' holder stays meanwhile.
    let holder = match super::network::ensure_holder(ctx, &rec.config.spec) {
        Ok(h) => h,
        Err(e) => {
            if let Some(w) = watcher {
                w.release();
            }
            return Err(e);
        }
    };
    super::start::start_required(ctx, &rec)?;
    let opts = StartOptions {
        attach: true,
        interactive: false,
        debug: ctx.global.log_level >= LogLevel::Debug,
    };
    crate::events::container(&ctx.paths, &rec, "attach");
    let code = match watcher {
        Some(w) => crate::run::start_watched(&ctx.paths, &rec, &opts, w),
        None => crate::run::start_container(&ctx.paths, &rec, &opts),
    };
    let _ = super::network::release_holder(ctx, holder);
    Ok(code?)
}

pub fn create(ctx: &Ctx, args: CreateArgs) -> Result<u8> {
    let rec = create_record(ctx, &args.container, false)?;
    println!("{}", rec.id());
    Ok(0)
}

/// A container's image: in the store (pulled per `policy`), its root filesystem (its
/// layers and the storage driver for `maps`) and its defaults, docker's HEALTHCHECK among
/// them.
pub(super) struct ContainerImage {
    pub image: storage::Image,
    pub store: Store,
    pub rootfs: Rootfs,
    pub defaults: ImageDefaults,
}

/// Resolve `reference` for a container running with `maps`. `shifted`: its ids are not
/// the ones the image was stored with (`--userns=keep-id`, `--uidmap` as a user), so only
/// fuse-overlayfs can show the files with their owners (no chown-copy of the image).
pub(super) fn container_image(
    ctx: &Ctx,
    reference: &str,
    policy: storage::pull::Policy,
    options: &storage::pull::Options,
    output: &pull::Output,
    maps: &IdMaps,
    shifted: bool,
) -> Result<ContainerImage> {
    let image = storage::pull::ensure(&ctx.paths, reference, policy, options, output)?;
    crate::run::trace("image resolved");
    let store = Store::open(&ctx.paths)?;
    let layers = image.layer_dirs(&store);
    let probe = crate::driver::probe(&ctx.paths.runtime, maps)?;
    let driver = if shifted {
        probe
            .choose(Some(crate::spec::Driver::FuseOverlayfs))
            .context("--userns=keep-id needs fuse-overlayfs")?
    } else {
        probe.choose(ctx.global.storage_driver.map(Into::into))?
    };
    crate::run::trace("id maps and storage driver");
    let mut defaults = ImageDefaults::from_oci(image.config.config().as_ref());
    // HEALTHCHECK is docker's, beyond the OCI fields: read from the stored config blob.
    defaults.healthcheck = store
        .blob_path(&image.digest_id())
        .ok()
        .and_then(|p| std::fs::read(p).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .and_then(|v| crate::spec::health::Healthcheck::from_image_config(&v));
    Ok(ContainerImage {
        image,
        store,
        rootfs: Rootfs { driver, layers },
        defaults,
    })
}

/// Resolve the image, build the spec and write the container's record.
pub fn create_record(ctx: &Ctx, opts: &ContainerOpts, autoremove: bool) -> Result<Record> {
    Ok(create_record_watched(ctx, opts, autoremove, false, false)?.0)
}

/// `create_record`, with (`watch`) a cleanup watcher forked before the record is written
/// (and, `starting`, a pod's infra container started first)
/// and told its id first thing.
fn create_record_watched(
    ctx: &Ctx,
    opts: &ContainerOpts,
    autoremove: bool,
    watch: bool,
    starting: bool,
) -> Result<(Record, Option<Watcher>)> {
    if ctx.global.log_level >= LogLevel::Debug {
        crate::run::enable_trace();
    }
    if let Some(f) = &opts.extra.cidfile
        && f.exists()
    {
        // podman's rule: never overwrite another container's id file.
        bail!(
            "container id file {} exists: make sure no other container uses it, or remove it",
            f.display()
        );
    }
    for r in &opts.extra.requires {
        Containers::open(&ctx.paths)?
            .find(r)
            .with_context(|| format!("--requires {r}"))?;
    }
    ctx.paths.ensure()?;
    let mode = userns::Mode::parse(crate::commands::container_spec::userns_mode(&opts.userns))
        .unwrap_or_default();
    crate::commands::container_spec::check_subid_names(&opts.extra)?;
    let (uidmap, gidmap) = crate::commands::container_spec::requested_idmaps(opts)?;
    let custom = !uidmap.is_empty() || !gidmap.is_empty();
    let maps = if custom {
        IdMaps::custom(&uidmap, &gidmap)?
    } else {
        IdMaps::for_current_user(mode)?
    };
    let keep_id = mode == userns::Mode::KeepId && !maps.root;
    let ContainerImage {
        image,
        store,
        rootfs: Rootfs { driver, layers },
        defaults,
    } = container_image(
        ctx,
        &opts.image,
        opts.pull.into(),
        &storage::pull::Options {
            platform: opts.platform.clone(),
            tls_verify: None,
        },
        &pull::Output::new(opts.quiet, ctx.global.log_level),
        &maps,
        keep_id || (custom && !maps.root),
    )?;
    let image_config = image.config.config().as_ref();
    let exposed: Vec<String> = image_config
        .and_then(|c| c.exposed_ports().clone())
        .unwrap_or_default();
    let user_networks = super::network::user_networks(ctx, &opts.network)?;
    let user_network = user_networks.first().cloned();
    let ip = super::network::check_addressing(ctx, user_network.as_deref(), opts)?;
    let ip6 = super::network::check_ip6(ctx, user_network.as_deref(), opts.ip6.as_deref())?;
    let mac = match (&opts.mac_address, &user_network) {
        (None, _) => None,
        (Some(m), Some(_)) => Some(crate::usernet::parse_mac(m)?),
        (Some(m), None) => bail!(
            "--mac-address {m} needs a user network: add --network NAME (the default network's interface copies the host's)"
        ),
    };
    if let Some(n) = &user_network {
        if opts.pod.is_some() {
            anyhow::bail!(
                "--network {n} cannot be used with --pod: a pod's containers share its network"
            );
        }
        if opts.userns != "auto" {
            anyhow::bail!(
                "--userns {} cannot be used with --network {n}: containers on user networks share one user namespace",
                opts.userns
            );
        }
    }
    // --pod: the pod (made now for new:NAME) gives the network, uts and ipc to join.
    let joining = match &opts.pod {
        Some(arg) => Some(super::pod::joining(ctx, opts, arg)?),
        None => None,
    };
    let fresh_pod = FreshPod {
        ctx,
        pod: joining.as_ref().filter(|j| j.fresh).map(|j| j.pod.clone()),
    };
    let in_pod_net = joining.as_ref().is_some_and(|j| j.network.is_some());
    let asked_ports = (!opts.publish.is_empty() || opts.publish_all) && !in_pod_net;
    let net = crate::network::Plan::new(
        &crate::network::Opts {
            network: match &joining {
                Some(Joining {
                    network: Some(n), ..
                }) => Some(n.clone()),
                // On user networks: no helper of its own (netavark plugs it in), except
                // pasta forwarding its published ports (made Mode::Forward below).
                _ if user_network.is_some() && asked_ports => Some("pasta".into()),
                _ if user_network.is_some() => Some("none".into()),
                _ => crate::commands::container_spec::network_mode(
                    opts.network.first().map(String::as_str),
                ),
            },
            publish: if in_pod_net {
                Vec::new()
            } else {
                opts.publish.clone()
            },
            publish_all: opts.publish_all && !in_pod_net,
            dns: opts.dns.clone(),
            add_host: opts.add_host.clone(),
        },
        &exposed,
    )
    .map_err(|e| match e {
        // podman's exit code for a host port that is taken: the command cannot be invoked.
        crate::network::Error::PortInUse { .. } => anyhow::Error::new(crate::exit::Coded::new(
            crate::exit::CANNOT_INVOKE,
            e.to_string(),
        )),
        e => e.into(),
    })?;
    let mut net = net;
    if user_network.is_some() && asked_ports {
        net.mode = crate::network::Mode::Forward;
    }
    if asked_ports && net.mode.discards_ports() {
        eprintln!(
            "box: warning: port mappings have been discarded: --network {} publishes no ports",
            net.mode
        );
    }
    if let crate::network::Mode::Container(name) = &net.mode {
        // It has to run only when this one starts; it has to exist now.
        Containers::open(&ctx.paths)?
            .find(name)
            .with_context(|| format!("--network container:{name}"))?;
    }
    // Anonymous volumes made for this container go again if it is never recorded.
    let anonymous = AnonymousVolumes {
        paths: &ctx.paths,
        names: std::cell::RefCell::new(Vec::new()),
    };
    let spec = crate::commands::container_spec::build(
        opts,
        &defaults,
        Rootfs { driver, layers },
        net,
        &|name| anonymous.resolve(name).map_err(|e| e.to_string()),
        &|k| std::env::var(k).ok(),
    )?;
    let mut spec = spec;
    spec.networks = user_networks;
    spec.network_aliases = opts.network_alias.clone();
    spec.ip = ip;
    if let (Some(ip6), Some(first)) = (ip6, spec.networks.first()) {
        let o = spec.settings.per_network.entry(first.clone()).or_default();
        o.ip6 = Some(ip6);
    }
    if let (Some(mac), Some(first)) = (mac, spec.networks.first()) {
        let o = spec.settings.per_network.entry(first.clone()).or_default();
        o.mac = Some(mac);
    }
    if let Some(j) = &joining {
        if in_pod_net {
            spec.publish.clear();
        }
        if j.link.uts {
            spec.hostname = j.pod.hostname.clone();
        }
        spec.pod = Some(j.link.clone());
    }
    tmpfs_volumes(ctx, &mut spec)?;
    // --mount type=image: the images must be in the store; their layers are recorded.
    for im in spec.settings.image_mounts.iter_mut() {
        let other = store.find_image(&im.image)?.with_context(|| {
            format!(
                "--mount type=image,src={}: no such image: pull it first",
                im.image
            )
        })?;
        im.layers = other.layer_dirs(&store);
    }
    if keep_id && opts.user.is_none() {
        // As podman: keep-id runs as your own uid and gid unless -u says otherwise.
        let (u, g) = crate::commands::container_spec::keep_id_ids(&opts.userns).unwrap_or((
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        ));
        spec.user = format!("{u}:{g}");
    }
    // Numeric ids outside the mapping fail now (names are resolved at start).
    crate::run::user::check_numeric(&spec.user, &maps).map_err(|e| {
        anyhow::anyhow!(if opts.user.is_some() {
            format!("--user {}: {e}", spec.user)
        } else {
            format!("the image's User {}: {e}", spec.user)
        })
    })?;
    let mut labels = crate::commands::container_spec::labels(opts)?;
    // Created by a systemd unit (box quadlet's and generate systemd's set it): say which,
    // for box auto-update.
    if let Ok(unit) = std::env::var(super::auto_update::UNIT_LABEL)
        && !unit.is_empty()
    {
        labels.insert(super::auto_update::UNIT_LABEL.to_string(), unit);
    }
    // The name the user gave (as the store knows it), not whichever came first.
    let image_name = image
        .name_given(&opts.image)
        .or_else(|| image.names.first().cloned())
        .unwrap_or_else(|| image.digest_id());
    if starting {
        // A pod's member starts once its infra container runs; a container on user
        // networks once their holder does.
        super::pod::ensure_infra(&ctx.paths, &spec)?;
        drop(super::network::ensure_holder(ctx, &spec)?);
    }
    let containers = Containers::open(&ctx.paths)?;
    let watcher = if watch {
        Some(Watcher::spawn(&containers)?)
    } else {
        None
    };
    let mut adopted = Ok(());
    let rec = containers
        .create(opts.name.as_deref(), |id, name| {
            if let Some(w) = &watcher {
                adopted = w.adopt(id, autoremove);
            }
            Config {
                id: id.to_string(),
                name: name.to_string(),
                image: opts.image.clone(),
                image_name,
                image_id: image.digest_id(),
                created: time::now_rfc3339(),
                command: spec.args.clone(),
                autoremove,
                labels,
                spec,
            }
        })
        .context("cannot create the container")?;
    // Recorded: its anonymous volumes are the container's now (rm -v, --rm), and a pod
    // made for it stays.
    anonymous.names.borrow_mut().clear();
    std::mem::forget(fresh_pod);
    adopted?;
    crate::events::container(&ctx.paths, &rec, "create");
    if let Some(f) = &opts.extra.cidfile
        && let Err(e) = write_cidfile(f, rec.id())
    {
        // Nothing half-made stays: the container goes again.
        let _ = crate::commands::rm::remove_container(
            ctx,
            &containers,
            &rec,
            crate::commands::rm::Removal {
                volumes: true,
                ..Default::default()
            },
        );
        return Err(e);
    }
    crate::run::trace("container recorded");
    Ok((rec, watcher))
}

/// A pod `--pod new:NAME` made, removed again when the container is not recorded.
struct FreshPod<'a> {
    ctx: &'a Ctx,
    pod: Option<crate::pod::Pod>,
}

impl Drop for FreshPod<'_> {
    fn drop(&mut self) {
        if let Some(pod) = &self.pod {
            let _ = super::pod::remove_pod(self.ctx, pod, true, None);
        }
    }
}

/// Volumes created with `-o type=tmpfs`: each container gets a fresh tmpfs there (with
/// the volume's `o=` options), as nothing can be mounted on the host without root.
fn tmpfs_volumes(ctx: &Ctx, spec: &mut crate::spec::Spec) -> Result<()> {
    let vols = crate::volume::Volumes::open(&ctx.paths)?;
    for m in spec.mounts.iter_mut() {
        let crate::spec::Mount::Bind {
            source,
            target,
            readonly,
        } = m
        else {
            continue;
        };
        let Some(v) = vols.name_at(source).and_then(|n| vols.get(&n).ok()) else {
            continue;
        };
        if v.options.get("type").map(String::as_str) != Some("tmpfs") {
            continue;
        }
        let mut opts: Vec<String> = v
            .options
            .get("o")
            .map(|o| {
                o.split(',')
                    .filter(|x| !x.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        if *readonly {
            opts.push("ro".into());
        }
        *m = crate::spec::tmpfs_mount(&format!("{target}:{}", opts.join(",")))
            .with_context(|| format!("volume {}", v.name))?;
    }
    Ok(())
}

/// `--cidfile`: the id, in a file that must not exist yet (created exclusively).
fn write_cidfile(path: &std::path::Path, id: &str) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("--cidfile {}", path.display()))?;
    f.write_all(id.as_bytes())
        .with_context(|| format!("--cidfile {}", path.display()))?;
    Ok(())
}

/// The volumes `-v` names or creates while a container is being made; the anonymous ones
/// are removed again when the container is not recorded after all.
struct AnonymousVolumes<'a> {
    paths: &'a crate::paths::Paths,
    names: std::cell::RefCell<Vec<String>>,
}

impl AnonymousVolumes<'_> {
    fn resolve(&self, name: Option<&str>) -> Result<std::path::PathBuf, crate::volume::Error> {
        let vols = crate::volume::Volumes::open(self.paths)?;
        match name {
            Some(n) => vols.resolve_or_create(n),
            None => {
                let (name, dir) = vols.create_anonymous()?;
                self.names.borrow_mut().push(name);
                Ok(dir)
            }
        }
    }
}

impl Drop for AnonymousVolumes<'_> {
    fn drop(&mut self) {
        let Ok(vols) = crate::volume::Volumes::open(self.paths) else {
            return;
        };
        for name in self.names.borrow().iter() {
            let _ = vols.remove_unused_fresh(name);
        }
    }
}
