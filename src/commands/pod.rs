//! `box pod ...` and what `run`/`create --pod` and `start` need of pods: flags and output.
//! What a pod is lives in `crate::pod`; its infra container is an ordinary container record
//! (box's pause program, `run::pause`), created here and started before any member.
use std::io::Write;
use std::time::SystemTime;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::table::{self, align_tabs, columns};
use crate::cli::Ctx;
use crate::cli::args_pod::{
    PodCommand, PodCreateArgs, PodExistsArgs, PodInspectArgs, PodKillArgs, PodLogsArgs,
    PodPruneArgs, PodPsArgs, PodRmArgs, PodStopArgs, PodTopArgs, PodsArgs,
};
use crate::container::{Config, Containers, Record, State, Status};
use crate::monitor::stop::is_paused;
use crate::monitor::{self, status};
use crate::paths::Paths;
use crate::pod::{Pod, Pods, Share};
use crate::spec::{PodLink, Spec};
use crate::template::{self, Format};
use crate::units;

pub fn pod(ctx: &Ctx, command: PodCommand) -> Result<u8> {
    match command {
        PodCommand::Create(a) => create(ctx, *a),
        PodCommand::Start(a) => start(ctx, a),
        PodCommand::Stop(a) => stop(ctx, a),
        PodCommand::Restart(a) => restart(ctx, a),
        PodCommand::Rm(a) => rm(ctx, a),
        PodCommand::Ps(a) => ps(ctx, a),
        PodCommand::Inspect(a) => inspect(ctx, a),
        PodCommand::Exists(a) => exists(ctx, a),
        PodCommand::Kill(a) => kill(ctx, a),
        PodCommand::Pause(a) => pause(ctx, a, true),
        PodCommand::Unpause(a) => pause(ctx, a, false),
        PodCommand::Top(a) => top(ctx, a),
        PodCommand::Logs(a) => logs(ctx, a),
        PodCommand::Prune(a) => prune(ctx, a),
    }
}

fn open(ctx: &Ctx) -> Result<(Pods, Containers)> {
    ctx.paths.ensure()?;
    Ok((Pods::open(&ctx.paths)?, Containers::open(&ctx.paths)?))
}

/// What `box pod create` (and `run --pod new:NAME`) asks for.
pub struct NewPod<'a> {
    pub name: Option<&'a str>,
    pub publish: &'a [String],
    pub network: Option<&'a str>,
    pub hostname: Option<&'a str>,
    pub share: Share,
    pub infra: bool,
    pub labels: crate::spec::Labels,
    /// The pod cgroup's limits (none: `Limits::default()`).
    pub limits: crate::cgroup::Limits,
    /// `--infra-image` and `--infra-command`: an infra container from an image.
    pub infra_image: Option<&'a str>,
    pub infra_command: Option<&'a str>,
    /// `--infra-name`.
    pub infra_name: Option<&'a str>,
}

/// `--infra-image`: what the infra container runs instead of box's pause program.
struct InfraImage {
    reference: String,
    id: String,
    rootfs: crate::spec::Rootfs,
    args: Vec<String>,
    env: Vec<String>,
    cwd: String,
}

impl InfraImage {
    fn resolve(ctx: &Ctx, reference: &str, command: Option<&str>) -> Result<InfraImage> {
        // As any container's (`box run`'s own resolution), with the default id mapping.
        let maps = crate::userns::IdMaps::for_current_user(crate::userns::Mode::default())?;
        let super::run::ContainerImage {
            image,
            rootfs,
            defaults,
            ..
        } = super::run::container_image(
            ctx,
            reference,
            crate::storage::pull::Policy::Missing,
            &crate::storage::pull::Options::default(),
            &super::pull::Output::new(false, ctx.global.log_level),
            &maps,
            false,
        )
        .with_context(|| format!("--infra-image {reference}"))?;
        let command = match command {
            Some(c) if c.trim_start().starts_with('[') => serde_json::from_str::<Vec<String>>(c)
                .map_err(|e| {
                    anyhow::anyhow!("--infra-command {c:?}: not a JSON array of strings: {e}")
                })?,
            Some(c) => c.split_whitespace().map(str::to_string).collect(),
            None => Vec::new(),
        };
        let args = if command.is_empty() {
            crate::spec::command(None, &[], &defaults)?
        } else {
            command
        };
        if args.is_empty() {
            bail!(
                "--infra-image {reference}: the image has no entrypoint or command: give --infra-command"
            );
        }
        Ok(InfraImage {
            reference: reference.to_string(),
            id: image.id.clone(),
            rootfs,
            args,
            env: defaults.env,
            cwd: if defaults.working_dir.is_empty() {
                "/".into()
            } else {
                defaults.working_dir
            },
        })
    }
}

/// Record a pod and its infra container (nothing is left of either on failure).
pub fn create_pod(ctx: &Ctx, new: &NewPod) -> Result<Pod> {
    if !new.infra && (!new.publish.is_empty() || new.network.is_some()) {
        bail!(
            "-p and --network belong to the pod's infra container: leave out --infra=false to publish ports or choose a network"
        );
    }
    if !new.infra && !new.limits.is_empty() {
        bail!(
            "--memory, --cpus and --cpuset-cpus apply to the pod's cgroup, which its infra container holds: leave out --infra=false"
        );
    }
    if !new.limits.is_empty()
        && crate::cgroup::detect().hierarchy != crate::cgroup::Hierarchy::Unified
    {
        // (Delegation itself is checked when the infra starts, where box's cgroup is known.)
        bail!(
            "--memory, --cpus and --cpuset-cpus of a pod need cgroup v2 with delegated controllers; this host has none (boot with systemd.unified_cgroup_hierarchy=1)"
        );
    }
    if !new.infra && (new.infra_image.is_some() || new.infra_name.is_some()) {
        bail!(
            "--infra-image and --infra-name describe the infra container: leave out --infra=false"
        );
    }
    if let Some(n) = new.network
        && n.starts_with("container:")
    {
        bail!("invalid --network {n:?} for a pod: use default, pasta, slirp4netns, none or host");
    }
    // A pod on a user network: its infra container is on it (its containers join the
    // infra's namespace), ports forwarded by a pasta of its own.
    let user_network = super::network::user_network(ctx, new.network)?;
    // The plan first: a bad or taken port fails before anything is recorded.
    let plan = if new.infra {
        let network = match &user_network {
            Some(_) if new.publish.is_empty() => Some("none".to_string()),
            Some(_) => Some("pasta".to_string()),
            None => new.network.map(str::to_string),
        };
        let mut plan = crate::network::Plan::new(
            &crate::network::Opts {
                network,
                publish: new.publish.to_vec(),
                ..Default::default()
            },
            &[],
        )?;
        if user_network.is_some() && !new.publish.is_empty() {
            plan.mode = crate::network::Mode::Forward;
        }
        Some(plan)
    } else {
        None
    };
    // The image before anything is recorded (a pull may take a while, or fail).
    let infra_image = match new.infra_image {
        Some(r) if new.infra => Some(InfraImage::resolve(ctx, r, new.infra_command)?),
        _ => None,
    };
    let (pods, containers) = open(ctx)?;
    let _lock = pods.lock()?;
    let mut pod = pods.create_locked(new.name, |id, name| Pod {
        id: id.to_string(),
        name: name.to_string(),
        created: units::now_rfc3339(),
        hostname: new.hostname.unwrap_or(name).to_string(),
        labels: new.labels.clone(),
        share: if new.infra {
            new.share
        } else {
            Share::default()
        },
        infra_id: None,
        publish: new.publish.to_vec(),
        network: new.network.map(str::to_string),
    })?;
    if let Some(plan) = plan {
        let made = create_infra(
            &containers,
            &pod,
            plan,
            user_network,
            &new.limits,
            infra_image.as_ref(),
            new.infra_name,
        )
        .and_then(|infra| {
            pod.infra_id = Some(infra.id().to_string());
            pods.write(&pod).map_err(|e| {
                let _ = containers.remove(&infra);
                e.into()
            })
        });
        if let Err(e) = made {
            let _ = pods.remove_locked(&pod);
            return Err(e.context(format!("cannot create the pod {}", pod.name)));
        }
    }
    crate::events::pod(&ctx.paths, "create", &pod.id, &pod.name);
    Ok(pod)
}

/// The record of the holder of user networks' shared namespace: box's pause program with
/// pasta (see `usernet`), marked as the infra container of no pod.
pub fn create_holder(
    containers: &Containers,
    name: &str,
    network: crate::network::Plan,
) -> Result<Record> {
    let spec = Spec {
        args: vec!["box-pause".into()],
        cwd: "/".into(),
        hostname: name.to_string(),
        network,
        no_new_privileges: true,
        pod: Some(PodLink {
            id: name.to_string(),
            infra: true,
            uts: false,
            ipc: false,
            limits: None,
        }),
        ..Default::default()
    };
    Ok(containers.create(Some(name), |id, name| Config {
        id: id.to_string(),
        name: name.to_string(),
        image: String::new(),
        image_name: String::new(),
        image_id: String::new(),
        created: units::now_rfc3339(),
        command: spec.args.clone(),
        // It goes with the last container on a user network (`network::release_holder`).
        autoremove: true,
        labels: Default::default(),
        spec,
    })?)
}

/// The infra container's record: box's pause program (or `--infra-image`'s command on
/// that image's root), the pod's network and host name.
fn create_infra(
    containers: &Containers,
    pod: &Pod,
    network: crate::network::Plan,
    user_network: Option<String>,
    limits: &crate::cgroup::Limits,
    image: Option<&InfraImage>,
    name: Option<&str>,
) -> Result<Record> {
    let spec = Spec {
        args: image.map_or_else(|| vec!["box-pause".into()], |i| i.args.clone()),
        env: image.map(|i| i.env.clone()).unwrap_or_default(),
        rootfs: image.map(|i| i.rootfs.clone()).unwrap_or_default(),
        cwd: image.map_or_else(|| "/".into(), |i| i.cwd.clone()),
        hostname: pod.hostname.clone(),
        network,
        publish: pod.publish.clone(),
        no_new_privileges: true,
        pod: Some(PodLink {
            id: pod.id.clone(),
            infra: true,
            uts: false,
            ipc: false,
            limits: (!limits.is_empty()).then(|| limits.clone()),
        }),
        // On a user network the pod is found by its name.
        network_aliases: user_network.iter().map(|_| pod.name.clone()).collect(),
        networks: user_network.into_iter().collect(),
        ..Default::default()
    };
    Ok(containers.create(
        Some(
            name.map_or_else(|| Pod::infra_name(&pod.id), str::to_string)
                .as_str(),
        ),
        |id, name| Config {
            id: id.to_string(),
            name: name.to_string(),
            image: image.map(|i| i.reference.clone()).unwrap_or_default(),
            image_name: image.map(|i| i.reference.clone()).unwrap_or_default(),
            image_id: image.map(|i| i.id.clone()).unwrap_or_default(),
            created: units::now_rfc3339(),
            command: spec.args.clone(),
            autoremove: false,
            labels: Default::default(),
            spec,
        },
    )?)
}

fn create(ctx: &Ctx, args: PodCreateArgs) -> Result<u8> {
    let share = Share::parse(&args.share)?;
    let pod = create_pod(
        ctx,
        &NewPod {
            name: args.name.as_deref().or(args.pod_name.as_deref()),
            publish: &args.publish,
            network: args.network.as_deref(),
            hostname: args.hostname.as_deref(),
            share,
            infra: args.infra,
            labels: crate::spec::labels(&args.label)?,
            limits: crate::cgroup::Limits::parse(&crate::cgroup::LimitFlags {
                memory: args.memory.clone(),
                cpus: args.cpus,
                cpuset_cpus: args.cpuset_cpus.clone(),
                ..Default::default()
            })?,
            infra_image: args.infra_image.as_deref(),
            infra_command: args.infra_command.as_deref(),
            infra_name: args.infra_name.as_deref(),
        },
    )?;
    if !args.quiet {
        println!("{}", pod.id);
    }
    Ok(0)
}

/// How a container created with `--pod` joins its pod.
pub struct Joining {
    pub pod: Pod,
    /// The `--network` the container gets (`container:INFRA-ID`), when the pod shares it.
    pub network: Option<String>,
    pub link: PodLink,
    /// The pod was made for this container (`new:NAME`): removed again if it fails.
    pub fresh: bool,
}

/// `--pod NAME|new:NAME` of `run`/`create`: the pod (made now for `new:`, with the
/// container's `-p`) and how the container joins it. Flags that the pod owns are refused.
pub fn joining(ctx: &Ctx, opts: &crate::cli::args::ContainerOpts, arg: &str) -> Result<Joining> {
    if opts.network.len() > 1 {
        bail!("--pod takes one --network (the pod's): give only one");
    }
    let (pod, fresh) = match arg.strip_prefix("new:") {
        Some(name) => (
            create_pod(
                ctx,
                &NewPod {
                    name: Some(name),
                    publish: &opts.publish,
                    network: opts.network.first().map(String::as_str),
                    hostname: None,
                    share: Share::DEFAULT,
                    infra: true,
                    labels: Default::default(),
                    limits: Default::default(),
                    infra_image: None,
                    infra_command: None,
                    infra_name: None,
                },
            )?,
            true,
        ),
        None => (Pods::open(&ctx.paths)?.find(arg)?, false),
    };
    let undo = |e: anyhow::Error| {
        if fresh {
            let _ = remove_pod(ctx, &pod, true, None);
        }
        e
    };
    let share = pod.share;
    let infra = pod.infra_id.clone();
    if infra.is_some() && share.net {
        if !fresh && (!opts.network.is_empty() || !opts.publish.is_empty() || opts.publish_all) {
            return Err(undo(anyhow::anyhow!(
                "--network and -p belong to the pod {}: its containers share its network (set them with box pod create --network/-p)",
                pod.name
            )));
        }
        if opts.userns != "auto" {
            return Err(undo(anyhow::anyhow!(
                "--userns {} cannot be used with --pod {}: a pod's containers share its infra container's user namespace",
                opts.userns,
                pod.name
            )));
        }
        if share.uts && opts.hostname.is_some() {
            return Err(undo(anyhow::anyhow!(
                "--hostname cannot be used with --pod {}: its containers share the pod's host name (box pod create --hostname)",
                pod.name
            )));
        }
    }
    let joins = infra.is_some() && share.net;
    Ok(Joining {
        network: infra
            .as_ref()
            .filter(|_| joins)
            .map(|id| format!("container:{id}")),
        link: PodLink {
            id: pod.id.clone(),
            infra: false,
            uts: joins && share.uts,
            ipc: joins && share.ipc,
            limits: None,
        },
        pod,
        fresh,
    })
}

/// Before a pod's member starts: its infra container runs (started now if not). Members
/// started at once start it once (the pod's start lock).
pub fn ensure_infra(paths: &Paths, spec: &Spec) -> Result<()> {
    let Some(link) = spec.pod.as_ref().filter(|l| !l.infra) else {
        return Ok(());
    };
    let pods = Pods::open(paths)?;
    let pod = pods
        .load(&link.id)
        .with_context(|| "the container's pod is gone: remove the container")?;
    let Some(infra_id) = &pod.infra_id else {
        return Ok(());
    };
    let _lock = pods.start_lock(&pod)?;
    let infra = Containers::open(paths)?
        .load(infra_id)
        .with_context(|| format!("the infra container of pod {}", pod.name))?;
    if status::observe(&infra).status != Status::Running {
        monitor::start_detached(paths, &infra)
            .with_context(|| format!("cannot start the infra container of pod {}", pod.name))?;
    }
    Ok(())
}

/// The pods `args` name (all with `--all`).
fn targets(pods: &Pods, names: &[String], all: bool, ignore: bool) -> Result<Vec<Result<Pod>>> {
    if all {
        return Ok(pods.list()?.into_iter().map(Ok).collect());
    }
    let mut out = Vec::new();
    for n in names {
        match pods.find(n) {
            Ok(p) => out.push(Ok(p)),
            Err(crate::pod::Error::NotFound(_)) if ignore => {}
            Err(e) => out.push(Err(e.into())),
        }
    }
    Ok(out)
}

/// Run `f` on each pod; the failures reported as `commands::report` does.
fn each_pod(
    pods: &Pods,
    names: &[String],
    all: bool,
    ignore: bool,
    mut f: impl FnMut(&Pod) -> Result<()>,
) -> Result<u8> {
    let failed = targets(pods, names, all, ignore)?
        .into_iter()
        .filter_map(|p| p.and_then(|p| f(&p)).err())
        .collect();
    super::report(failed)
}

pub(super) fn start_pod(ctx: &Ctx, c: &Containers, pod: &Pod) -> Result<()> {
    for rec in crate::pod::members(c, pod)? {
        if status::observe(&rec).status == Status::Running {
            continue;
        }
        if rec.config.spec.is_infra() {
            ensure_infra_of(ctx, pod)?;
        } else {
            monitor::start_detached(&ctx.paths, &rec)?;
        }
    }
    Ok(())
}

fn ensure_infra_of(ctx: &Ctx, pod: &Pod) -> Result<()> {
    ensure_infra(
        &ctx.paths,
        &Spec {
            pod: Some(PodLink {
                id: pod.id.clone(),
                ..Default::default()
            }),
            ..Default::default()
        },
    )
}

fn start(ctx: &Ctx, args: PodsArgs) -> Result<u8> {
    let (pods, c) = open(ctx)?;
    each_pod(&pods, &args.pods, args.all, false, |pod| {
        start_pod(ctx, &c, pod)?;
        crate::events::pod(&ctx.paths, "start", &pod.id, &pod.name);
        println!("{}", pod.id);
        Ok(())
    })
}

/// Stop the members, then the infra container.
fn stop_pod(c: &Containers, pod: &Pod, time: Option<u64>) -> Result<()> {
    let mut members = crate::pod::members(c, pod)?;
    members.reverse();
    for rec in members {
        if status::observe(&rec).status == Status::Running {
            super::stop::stop_one(&rec, time)?;
        }
    }
    Ok(())
}

fn stop(ctx: &Ctx, args: PodStopArgs) -> Result<u8> {
    let (pods, c) = open(ctx)?;
    each_pod(&pods, &args.pods, args.all, args.ignore, |pod| {
        stop_pod(&c, pod, args.time)?;
        crate::events::pod(&ctx.paths, "stop", &pod.id, &pod.name);
        println!("{}", pod.id);
        Ok(())
    })
}

fn restart(ctx: &Ctx, args: PodsArgs) -> Result<u8> {
    let (pods, c) = open(ctx)?;
    each_pod(&pods, &args.pods, args.all, false, |pod| {
        stop_pod(&c, pod, None)?;
        start_pod(ctx, &c, pod)?;
        crate::events::pod(&ctx.paths, "restart", &pod.id, &pod.name);
        println!("{}", pod.id);
        Ok(())
    })
}

/// Remove a pod: its containers (running ones only with `force`), the infra container
/// last, then the record.
pub fn remove_pod(ctx: &Ctx, pod: &Pod, force: bool, time: Option<u64>) -> Result<()> {
    let (pods, c) = open(ctx)?;
    let _lock = pods.lock()?;
    let members = crate::pod::members(&c, pod)?;
    if !force {
        let running: Vec<&str> = members
            .iter()
            .filter(|r| status::observe(r).status == Status::Running)
            .map(|r| r.name())
            .collect();
        if !running.is_empty() {
            return Err(super::with_code(
                super::RM_IN_USE,
                &anyhow::anyhow!(
                    "pod {} has running containers ({}): stop it first (box pod stop {}) or remove it with its containers: box pod rm -f {}",
                    pod.name,
                    running.join(", "),
                    pod.name,
                    pod.name
                ),
            ));
        }
    }
    let how = super::rm::Removal {
        force: true,
        time,
        volumes: false,
    };
    // Members first (newest first), the infra container (which they joined) last.
    for rec in members.iter().rev() {
        super::rm::remove_container(ctx, &c, rec, how)?;
    }
    pods.remove_locked(pod)?;
    crate::events::pod(&ctx.paths, "remove", &pod.id, &pod.name);
    // The pod's ports are free once its helper has gone (it is killed, not waited for):
    // a pod made again right away (kube play --replace) needs them.
    if let Some(infra) = members.iter().find(|r| r.config.spec.is_infra()) {
        let plan = &infra.config.spec.network;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !plan.ports_released() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    Ok(())
}

fn rm(ctx: &Ctx, args: PodRmArgs) -> Result<u8> {
    let (pods, _) = open(ctx)?;
    let ignore = args.ignore || args.force;
    // As each_pod, with podman's status 1 for a pod that does not exist.
    let failed = targets(&pods, &args.pods, args.all, ignore)?
        .into_iter()
        .filter_map(|p| {
            p.map_err(super::missing_is_1)
                .and_then(|pod| {
                    remove_pod(ctx, &pod, args.force, args.time)?;
                    println!("{}", pod.id);
                    Ok(())
                })
                .err()
        })
        .collect();
    super::report(failed)
}

/// podman's pod status from its containers' (the infra container's included).
fn pod_status(states: &[(&Record, State)]) -> &'static str {
    let n = states.len();
    if n == 0 {
        return "Created";
    }
    let count =
        |f: &dyn Fn(&Record, &State) -> bool| states.iter().filter(|(r, s)| f(r, s)).count();
    let paused = count(&|r, s| is_paused(r, s));
    let running = count(&|r, s| s.status == Status::Running && !is_paused(r, s));
    let created = count(&|_, s| s.status == Status::Created);
    if running == n {
        "Running"
    } else if paused == n {
        "Paused"
    } else if created == n {
        "Created"
    } else if running == 0 && paused == 0 {
        "Exited"
    } else {
        "Degraded"
    }
}

/// One pod as `pod ps` templates and JSON see it (podman's keys).
fn ps_object(c: &Containers, pod: &Pod, now: SystemTime, no_trunc: bool) -> Result<Value> {
    let members = crate::pod::members(c, pod)?;
    let states: Vec<(&Record, State)> = members.iter().map(|r| (r, status::observe(r))).collect();
    let created = units::parse_rfc3339(&pod.created);
    let id = |s: &str| -> String {
        if no_trunc {
            s.to_string()
        } else {
            crate::container::short_id(s).to_string()
        }
    };
    let containers: Vec<Value> = states
        .iter()
        .map(|(r, s)| {
            json!({
                "Id": r.id(),
                "Names": r.name(),
                "Status": if is_paused(r, s) { "paused".to_string() } else { s.status.to_string() },
            })
        })
        .collect();
    Ok(json!({
        "Id": id(&pod.id),
        "Name": pod.name,
        "Status": pod_status(&states),
        "Created": pod.created,
        "CreatedAt": created.map(|t| units::ago(t, now)).unwrap_or_default(),
        "InfraId": pod.infra_id.as_deref().map(id).unwrap_or_default(),
        "NumberOfContainers": members.len(),
        "Labels": pod.labels,
        "Containers": containers,
        "ContainerNames": members.iter().filter(|r| !r.config.spec.is_infra()).map(|r| r.name()).collect::<Vec<_>>().join(","),
    }))
}

fn matches(pod: &Pod, obj: &Value, filter: &str) -> Result<bool> {
    let (key, value) = filter
        .split_once('=')
        .with_context(|| format!("invalid filter {filter:?}: use KEY=VALUE"))?;
    Ok(match key {
        "name" => pod.name.contains(value),
        "id" => pod.id.starts_with(value),
        "label" => match value.split_once('=') {
            Some((k, v)) => pod.labels.get(k).is_some_and(|x| x == v),
            None => pod.labels.contains_key(value),
        },
        "status" => obj["Status"]
            .as_str()
            .is_some_and(|s| s.eq_ignore_ascii_case(value)),
        other => bail!("unknown filter {other:?}: use name, id, label or status"),
    })
}

fn ps(ctx: &Ctx, args: PodPsArgs) -> Result<u8> {
    let (pods, c) = open(ctx)?;
    let now = SystemTime::now();
    let mut rows = Vec::new();
    for pod in pods.list()? {
        let obj = ps_object(&c, &pod, now, args.no_trunc)?;
        let mut keep = true;
        for f in &args.filter {
            keep &= matches(&pod, &obj, f)?;
        }
        if keep {
            rows.push(obj);
        }
    }
    rows.reverse(); // newest first, as podman lists them
    let mut out = std::io::stdout().lock();
    if args.quiet {
        for o in &rows {
            writeln!(out, "{}", o["Id"].as_str().unwrap_or(""))?;
        }
        return Ok(0);
    }
    match Format::from_arg(args.format.as_deref()) {
        Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?,
        Format::Template { source, table } => {
            let t = template::Template::parse(&source)?;
            let mut lines = Vec::new();
            if table {
                lines.push(template::table_header(&source));
            }
            for o in &rows {
                lines.push(t.render(o)?);
            }
            if table {
                write!(out, "{}", align_tabs(&lines))?;
            } else {
                for l in lines {
                    writeln!(out, "{l}")?;
                }
            }
        }
        Format::Table => {
            let mut header = vec!["POD ID", "NAME", "STATUS", "CREATED", "INFRA ID"];
            if args.ctr_names {
                header.push("NAMES");
            }
            header.push("# OF CONTAINERS");
            let mut t = vec![table::header(&header)];
            for o in &rows {
                let s = |k: &str| o[k].as_str().unwrap_or("").to_string();
                let mut row = vec![
                    s("Id"),
                    s("Name"),
                    s("Status"),
                    s("CreatedAt"),
                    s("InfraId"),
                ];
                if args.ctr_names {
                    row.push(s("ContainerNames"));
                }
                row.push(o["NumberOfContainers"].to_string());
                t.push(row);
            }
            write!(out, "{}", columns(&t))?;
        }
    }
    Ok(0)
}

/// `pod inspect`: podman's keys.
fn inspect_object(c: &Containers, pod: &Pod) -> Result<Value> {
    let members = crate::pod::members(c, pod)?;
    let states: Vec<(&Record, State)> = members.iter().map(|r| (r, status::observe(r))).collect();
    let infra = members.iter().find(|r| r.config.spec.is_infra());
    let ports: Value = infra
        .map(|r| {
            let mut m = serde_json::Map::new();
            for p in &r.config.spec.network.ports {
                let key = format!("{}/{}", p.container_port, p.protocol);
                let entry = m.entry(key).or_insert_with(|| json!([]));
                if let Some(a) = entry.as_array_mut() {
                    a.push(json!({"HostIp": p.host_ip.map(|i| i.to_string()).unwrap_or_default(), "HostPort": p.host_port.to_string()}));
                }
            }
            Value::Object(m)
        })
        .unwrap_or(json!({}));
    Ok(json!({
        "Id": pod.id,
        "Name": pod.name,
        "Created": pod.created,
        "State": pod_status(&states),
        "Hostname": pod.hostname,
        "Labels": pod.labels,
        "CreateInfra": pod.infra_id.is_some(),
        "InfraContainerId": pod.infra_id.clone().unwrap_or_default(),
        "InfraConfig": {
            "PortBindings": ports,
            "HostNetwork": infra.is_some_and(|r| r.config.spec.host_network()),
            "NetworkMode": infra.map(|r| r.config.spec.network_arg()).unwrap_or_default(),
        },
        "SharedNamespaces": pod.share.names(),
        "NumContainers": members.len(),
        "Containers": states.iter().map(|(r, s)| json!({
            "Id": r.id(),
            "Name": r.name(),
            "State": if is_paused(r, s) { "paused".to_string() } else { s.status.to_string() },
        })).collect::<Vec<_>>(),
    }))
}

fn inspect(ctx: &Ctx, args: PodInspectArgs) -> Result<u8> {
    let (pods, c) = open(ctx)?;
    let mut objs = Vec::new();
    for name in &args.pods {
        objs.push(inspect_object(&c, &pods.find(name)?)?);
    }
    let mut out = std::io::stdout().lock();
    match args.format.as_deref() {
        None | Some("json") => {
            // podman prints one pod as an object.
            if objs.len() == 1 {
                writeln!(out, "{}", serde_json::to_string_pretty(&objs[0])?)?;
            } else {
                writeln!(out, "{}", serde_json::to_string_pretty(&objs)?)?;
            }
        }
        Some(f) => {
            let t = template::Template::parse(&f.replace("\\t", "\t").replace("\\n", "\n"))?;
            for o in &objs {
                writeln!(out, "{}", t.render(o)?)?;
            }
        }
    }
    Ok(0)
}

fn exists(ctx: &Ctx, args: PodExistsArgs) -> Result<u8> {
    let (pods, _) = open(ctx)?;
    match pods.find(&args.pod) {
        Ok(_) => Ok(0),
        Err(crate::pod::Error::NotFound(_)) => Ok(1),
        Err(e) => Err(e.into()),
    }
}

fn kill(ctx: &Ctx, args: PodKillArgs) -> Result<u8> {
    let sig = crate::cli::args::parse_signal(&args.signal).map_err(|e| anyhow::anyhow!(e))?;
    let (pods, c) = open(ctx)?;
    each_pod(&pods, &args.pods, args.all, false, |pod| {
        let mut members = crate::pod::members(&c, pod)?;
        members.reverse();
        let mut any = false;
        for rec in &members {
            any |= monitor::stop::kill(rec, sig as i32)?;
        }
        if !any {
            bail!("pod {} has no running containers", pod.name);
        }
        crate::events::pod(&ctx.paths, "kill", &pod.id, &pod.name);
        println!("{}", pod.id);
        Ok(())
    })
}

fn pause(ctx: &Ctx, args: PodsArgs, freeze: bool) -> Result<u8> {
    let (pods, c) = open(ctx)?;
    each_pod(&pods, &args.pods, args.all, false, |pod| {
        for rec in crate::pod::members(&c, pod)? {
            let st = status::observe(&rec);
            if freeze && st.status == Status::Running && !is_paused(&rec, &st) {
                monitor::freezer::freeze(&rec, &st)?;
            } else if !freeze && is_paused(&rec, &st) {
                monitor::freezer::thaw(&rec, &st)?;
            }
        }
        let what = if freeze { "pause" } else { "unpause" };
        crate::events::pod(&ctx.paths, what, &pod.id, &pod.name);
        println!("{}", pod.id);
        Ok(())
    })
}

fn top(ctx: &Ctx, args: PodTopArgs) -> Result<u8> {
    let (pods, c) = open(ctx)?;
    let pod = pods.find(&args.pod)?;
    let mut t = vec![table::header(&[
        "USER",
        "PID",
        "PPID",
        "HOST PID",
        "ELAPSED",
        "TIME",
        "COMMAND",
        "CONTAINER",
    ])];
    let mut any = false;
    for rec in crate::pod::members(&c, &pod)? {
        let st = status::observe(&rec);
        let (Status::Running, Some(pid)) = (st.status, st.pid) else {
            continue;
        };
        any = true;
        for p in monitor::top::processes(pid)? {
            t.push(vec![
                p.user,
                p.pid.to_string(),
                p.ppid.to_string(),
                p.host_pid.to_string(),
                p.elapsed,
                p.time,
                p.command,
                rec.name().to_string(),
            ]);
        }
    }
    if !any {
        bail!("pod {} is not running", pod.name);
    }
    table::print(&t);
    Ok(0)
}

fn logs(ctx: &Ctx, args: PodLogsArgs) -> Result<u8> {
    let (pods, c) = open(ctx)?;
    let pod = pods.find(&args.pod)?;
    let members: Vec<Record> = crate::pod::members(&c, &pod)?
        .into_iter()
        .filter(|r| !r.config.spec.is_infra())
        .collect();
    let chosen: Vec<&Record> = match &args.container {
        Some(name) => {
            let rec = c.find(name)?;
            match members.iter().find(|m| m.id() == rec.id()) {
                Some(m) => vec![m],
                None => bail!("container {} is not in pod {}", rec.name(), pod.name),
            }
        }
        None => members.iter().collect(),
    };
    for rec in chosen {
        if !monitor::has_log(rec) {
            continue;
        }
        super::logs::logs(
            ctx,
            crate::cli::args::LogsArgs {
                follow: args.follow,
                tail: args.tail,
                since: None,
                until: None,
                timestamps: args.timestamps,
                names: false,
                latest: false,
                containers: vec![rec.id().to_string()],
            },
        )?;
    }
    Ok(0)
}

fn prune(ctx: &Ctx, args: PodPruneArgs) -> Result<u8> {
    if !args.force
        && !super::image::confirm(
            "WARNING! This will remove all stopped/exited pods.\nAre you sure you want to continue?",
            "box pod prune",
        )?
    {
        return Ok(0);
    }
    for id in prune_pods(ctx)? {
        println!("{id}");
    }
    Ok(0)
}

/// Remove every pod none of whose containers runs; their ids (for `system prune` too).
pub fn prune_pods(ctx: &Ctx) -> Result<Vec<String>> {
    let (pods, c) = open(ctx)?;
    let mut removed = Vec::new();
    for pod in pods.list()? {
        let running = crate::pod::members(&c, &pod)?
            .iter()
            .any(|r| status::observe(r).status == Status::Running);
        if running {
            continue;
        }
        match remove_pod(ctx, &pod, false, None) {
            Ok(()) => removed.push(pod.id),
            Err(e) => eprintln!("box: {}", crate::exit::one_line(&e)),
        }
    }
    Ok(removed)
}
