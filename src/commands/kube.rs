//! `box kube play|down|generate` and `box play kube`: flags and output. The YAML is read
//! into a plan by `crate::kube` (everything checked first); each pod is then made as
//! `box pod create` makes one, each container as `box create --pod` does (its flags built
//! from the plan and parsed by box's own command line, so both paths are one), and on any
//! failure everything made so far is removed again.
use std::io::Read;

use anyhow::{Context, Result, bail};
use clap::Parser;

use crate::cli::Ctx;
use crate::cli::args::{Cli, Command, ContainerOpts};
use crate::cli::args_kube::{KubeCommand, KubeDownArgs, KubePlayArgs};
use crate::container::Containers;
use crate::kube::{ContainerPlan, Play, PodPlan};
use crate::pod::{Pod, Pods, Share};
use crate::volume::Volumes;

pub fn kube(ctx: &Ctx, command: KubeCommand) -> Result<u8> {
    match command {
        KubeCommand::Play(a) => play(ctx, a),
        KubeCommand::Down(a) => down(ctx, a),
        KubeCommand::Generate(a) => super::generate::kube(ctx, a),
    }
}

fn read_input(file: &str) -> Result<String> {
    if file == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("cannot read the YAML from stdin")?;
        return Ok(s);
    }
    std::fs::read_to_string(file).with_context(|| format!("cannot read {file}"))
}

fn plan_of(file: &str) -> Result<Play> {
    let text = read_input(file)?;
    crate::kube::parse(&text).with_context(|| file.to_string())
}

pub fn down(ctx: &Ctx, args: KubeDownArgs) -> Result<u8> {
    let plan = plan_of(&args.file)?;
    let removed = take_down(ctx, &plan)?;
    if !removed.is_empty() {
        println!("Pods stopped:");
        for id in &removed {
            println!("{id}");
        }
        println!("Pods removed:");
        for id in &removed {
            println!("{id}");
        }
    }
    Ok(0)
}

/// Remove the plan's pods (with their containers) and emptyDir volumes; returns the ids
/// of the pods removed. PersistentVolumeClaims are kept, as Kubernetes keeps them.
fn take_down(ctx: &Ctx, plan: &Play) -> Result<Vec<String>> {
    ctx.paths.ensure()?;
    let pods = Pods::open(&ctx.paths)?;
    let volumes = Volumes::open(&ctx.paths)?;
    let mut removed = Vec::new();
    for p in &plan.pods {
        match pods.find(&p.name) {
            Ok(pod) => {
                super::pod::remove_pod(ctx, &pod, true, None)?;
                removed.push(pod.id);
            }
            Err(crate::pod::Error::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        for v in &p.shared_volumes {
            match volumes.remove(&ctx.paths.data, v) {
                Ok(()) | Err(crate::volume::Error::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(removed)
}

pub fn play(ctx: &Ctx, args: KubePlayArgs) -> Result<u8> {
    let plan = plan_of(&args.file)?;
    if args.down {
        return down(
            ctx,
            KubeDownArgs {
                file: args.file.clone(),
            },
        );
    }
    ctx.paths.ensure()?;
    if args.replace {
        take_down(ctx, &plan)?;
    }
    check_names(ctx, &plan)?;
    let mut made = Made::default();
    let result = make_all(ctx, &plan, args.start, args.network.as_deref(), &mut made);
    if let Err(e) = result {
        made.undo(ctx);
        return Err(e);
    }
    for (pod, containers) in &made.pods {
        println!("Pod:\n{}\nContainer:", pod.id);
        for c in containers {
            println!("{c}");
        }
        println!();
    }
    Ok(0)
}

/// Clashes with what exists, found before anything is made.
fn check_names(ctx: &Ctx, plan: &Play) -> Result<()> {
    let pods = Pods::open(&ctx.paths)?;
    let containers = Containers::open(&ctx.paths)?;
    let mut seen = std::collections::BTreeSet::new();
    for p in &plan.pods {
        if !seen.insert(p.name.clone()) {
            bail!(
                "line {}: the pod {} is in the YAML twice: give each its own name",
                p.line,
                p.name
            );
        }
        if pods.find(&p.name).is_ok() {
            bail!(
                "line {}: a pod named {} exists already: remove it (box kube down FILE) or play with --replace",
                p.line,
                p.name
            );
        }
        for c in &p.containers {
            let name = container_name(p, c);
            if !crate::container::is_docker_name(&name, 253) {
                bail!(
                    "line {}: container {}: {name:?} is not a valid container name",
                    p.line,
                    c.name
                );
            }
            if !seen.insert(format!("/{name}")) {
                bail!(
                    "line {}: pod {} has two containers named {}",
                    p.line,
                    p.name,
                    c.name
                );
            }
            if containers.find(&name).is_ok() {
                bail!(
                    "line {}: a container named {name} exists already: remove it (box rm -f {name}) or play with --replace",
                    p.line
                );
            }
        }
    }
    Ok(())
}

/// podman's name for a played container: `<pod>-<container>`.
fn container_name(pod: &PodPlan, c: &ContainerPlan) -> String {
    format!("{}-{}", pod.name, c.name)
}

/// What a play made so far (undone, newest first, on failure).
#[derive(Default)]
struct Made {
    volumes: Vec<String>,
    pods: Vec<(Pod, Vec<String>)>,
}

impl Made {
    fn undo(&self, ctx: &Ctx) {
        for (pod, _) in self.pods.iter().rev() {
            let _ = super::pod::remove_pod(ctx, pod, true, None);
        }
        if let Ok(vols) = Volumes::open(&ctx.paths) {
            for v in self.volumes.iter().rev() {
                let _ = vols.remove(&ctx.paths.data, v);
            }
        }
    }
}

fn make_all(
    ctx: &Ctx,
    plan: &Play,
    start: bool,
    network: Option<&str>,
    made: &mut Made,
) -> Result<()> {
    let volumes = Volumes::open(&ctx.paths)?;
    let shared = plan.pods.iter().flat_map(|p| p.shared_volumes.iter());
    for name in plan.claims.iter().chain(shared) {
        match volumes.create(Some(name), Default::default()) {
            Ok(_) => made.volumes.push(name.clone()),
            // A claim that exists is used as it is.
            Err(crate::volume::Error::Exists(_)) => {}
            Err(e) => return Err(e).with_context(|| format!("volume {name}")),
        }
    }
    for p in &plan.pods {
        for dir in &p.create_dirs {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("pod {}: cannot create the hostPath {dir}", p.name))?;
        }
        for file in &p.create_files {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(file)
                .with_context(|| format!("pod {}: cannot create the hostPath {file}", p.name))?;
        }
        let pod = super::pod::create_pod(
            ctx,
            &super::pod::NewPod {
                name: Some(&p.name),
                publish: &p.publish,
                network: if p.host_network {
                    Some("host")
                } else {
                    network
                },
                hostname: p.hostname.as_deref(),
                share: Share::DEFAULT,
                infra: true,
                labels: p.labels.clone(),
                limits: Default::default(),
                infra_image: None,
                infra_command: None,
                infra_name: None,
            },
        )
        .with_context(|| format!("line {}: pod {}", p.line, p.name))?;
        made.pods.push((pod.clone(), Vec::new()));
        for c in &p.containers {
            let opts = container_opts(&pod, p, c)?;
            let rec = super::run::create_record(ctx, &opts, false)
                .with_context(|| format!("line {}: container {}", p.line, c.name))?;
            if let Some(last) = made.pods.last_mut() {
                last.1.push(rec.id().to_string());
            }
        }
    }
    if start {
        let containers = Containers::open(&ctx.paths)?;
        for (pod, _) in &made.pods {
            super::pod::start_pod(ctx, &containers, pod)
                .with_context(|| format!("cannot start the pod {}", pod.name))?;
        }
    }
    Ok(())
}

/// The `box create` command line for a planned container, parsed by box's own parser.
fn container_opts(pod: &Pod, p: &PodPlan, c: &ContainerPlan) -> Result<ContainerOpts> {
    let mut argv: Vec<String> = vec![
        "box".into(),
        "create".into(),
        "--quiet".into(),
        format!("--pod={}", pod.id),
        format!("--name={}", container_name(p, c)),
        format!("--restart={}", p.restart),
    ];
    let mut flag = |name: &str, value: &str| argv.push(format!("--{name}={value}"));
    for e in &c.env {
        flag("env", e);
    }
    if let Some(w) = &c.working_dir {
        flag("workdir", w);
    }
    if let Some(u) = &c.user {
        flag("user", u);
    }
    for cap in &c.cap_add {
        flag("cap-add", cap);
    }
    for cap in &c.cap_drop {
        flag("cap-drop", cap);
    }
    for v in &c.volumes {
        flag("volume", v);
    }
    for t in &c.tmpfs {
        flag("tmpfs", t);
    }
    if let Some(m) = c.memory {
        flag("memory", &m.to_string());
    }
    if let Some(cpus) = c.cpus {
        flag("cpus", &cpus.to_string());
    }
    if c.no_new_privileges {
        flag("security-opt", "no-new-privileges");
    }
    for (k, v) in &p.annotations {
        flag("annotation", &format!("{k}={v}"));
    }
    for (k, v) in &p.sysctls {
        flag("sysctl", &format!("{k}={v}"));
    }
    if let Some(cmd) = &c.command {
        flag("entrypoint", &serde_json::to_string(cmd)?);
    }
    for (on, name) in [
        (c.read_only, "--read-only"),
        (c.privileged, "--privileged"),
        (c.tty, "--tty"),
        (c.stdin, "--interactive"),
    ] {
        if on {
            argv.push(name.into());
        }
    }
    argv.push(c.image.clone());
    argv.extend(c.args.iter().cloned());
    let cli = Cli::try_parse_from(&argv).map_err(|e| {
        anyhow::anyhow!(
            "line {}: container {}: {}",
            p.line,
            c.name,
            e.to_string().lines().next().unwrap_or("invalid settings")
        )
    })?;
    match cli.command {
        Command::Create(a) => Ok(a.container),
        _ => bail!(
            "line {}: container {}: not a create command",
            p.line,
            c.name
        ),
    }
}
