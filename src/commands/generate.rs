//! `box generate systemd|kube`.
use anyhow::Result;

use crate::cli::Ctx;
use crate::cli::args::{GenerateKubeArgs, GenerateSystemdArgs};

/// A systemd user unit for a recorded container (see `systemd::unit`), on stdout.
pub fn systemd(ctx: &Ctx, args: GenerateSystemdArgs) -> Result<u8> {
    ctx.paths.ensure()?;
    let containers = crate::container::Containers::open(&ctx.paths)?;
    let rec = match containers.find(&args.container) {
        Err(crate::container::Error::NotFound(_)) => {
            // A pod: its unit and one per container.
            if let Ok(pod) = crate::pod::Pods::open(&ctx.paths)?.find(&args.container) {
                return systemd_pod(ctx, &args, &containers, &pod);
            }
            containers.find(&args.container)?
        }
        r => r?,
    };
    let config = &rec.config;
    // The image's own environment is not repeated as -e in the unit.
    let image_env = crate::storage::Store::open(&ctx.paths)
        .ok()
        .and_then(|s| {
            s.find_image(config.image_id.trim_start_matches("sha256:"))
                .ok()
                .flatten()
        })
        .and_then(|i| i.config.config().as_ref().and_then(|c| c.env().clone()))
        .unwrap_or_default();
    let box_path = std::env::current_exe()?;
    let mut global_args = Vec::new();
    if let Some(r) = &ctx.global.root {
        global_args.extend(["--root".to_string(), r.display().to_string()]);
    }
    if let Some(r) = &ctx.global.runroot {
        global_args.extend(["--runroot".to_string(), r.display().to_string()]);
    }
    // A driver other than the best one was chosen (or needed) at create: again so.
    let driver = config.spec.rootfs.driver;
    if args.new && driver != crate::spec::Driver::Overlay {
        global_args.extend(["--storage-driver".to_string(), driver.name().to_string()]);
    }
    let opts = crate::systemd::unit::UnitOptions {
        new: args.new,
        use_name: args.name,
        restart: &args.restart_policy,
        stop_timeout: args.time,
        box_path: &box_path,
        global_args,
        image_env: &image_env,
        volumes: &ctx.paths.volumes(),
    };
    let (_, text) = crate::systemd::unit::render(config, &opts)
        .map_err(|m| anyhow::Error::new(crate::exit::Coded::new(crate::exit::BOX_ERROR, m)))?;
    print!("{text}");
    Ok(0)
}

/// `generate systemd POD`: the pod's unit (its infra container in the foreground), then
/// each container's, bound to it.
fn systemd_pod(
    ctx: &Ctx,
    args: &GenerateSystemdArgs,
    containers: &crate::container::Containers,
    pod: &crate::pod::Pod,
) -> Result<u8> {
    if args.new {
        anyhow::bail!(
            "box generate systemd --new {}: not supported for pods yet; generate without --new (units for the existing pod)",
            pod.name
        );
    }
    let members = crate::pod::members(containers, pod)?;
    let Some(infra) = members.iter().find(|r| r.config.spec.is_infra()) else {
        anyhow::bail!(
            "pod {} has no infra container: generate units for its containers one by one",
            pod.name
        );
    };
    let box_path = std::env::current_exe()?;
    let mut global_args = Vec::new();
    if let Some(r) = &ctx.global.root {
        global_args.extend(["--root".to_string(), r.display().to_string()]);
    }
    if let Some(r) = &ctx.global.runroot {
        global_args.extend(["--runroot".to_string(), r.display().to_string()]);
    }
    let opts = crate::systemd::unit::UnitOptions {
        new: false,
        use_name: args.name,
        restart: &args.restart_policy,
        stop_timeout: args.time,
        box_path: &box_path,
        global_args,
        image_env: &[],
        volumes: &ctx.paths.volumes(),
    };
    let coded = |m: String| anyhow::Error::new(crate::exit::Coded::new(crate::exit::BOX_ERROR, m));
    let mut units = Vec::new();
    for rec in members.iter().filter(|r| !r.config.spec.is_infra()) {
        units.push(crate::systemd::unit::render(&rec.config, &opts).map_err(coded)?);
    }
    let names: Vec<String> = units.iter().map(|(n, _)| n.clone()).collect();
    let infra_ident = if args.name { infra.name() } else { infra.id() };
    let (pod_unit, pod_text) =
        crate::systemd::unit::render_pod(&pod.name, infra_ident, &names, &opts).map_err(coded)?;
    print!("{pod_text}");
    for (_, text) in &units {
        print!("\n{}", crate::systemd::unit::bind_to_pod(text, &pod_unit));
    }
    Ok(0)
}

/// A Kubernetes Pod with the given containers (see `monitor::kube` for the mapping).
pub fn kube(ctx: &Ctx, args: GenerateKubeArgs) -> Result<u8> {
    ctx.paths.ensure()?;
    let containers = crate::container::Containers::open(&ctx.paths)?;
    // One name that is no container but a pod: the pod with all its containers.
    if let [name] = args.containers.as_slice()
        && matches!(
            containers.find(name),
            Err(crate::container::Error::NotFound(_))
        )
        && let Ok(pod) = crate::pod::Pods::open(&ctx.paths)?.find(name)
    {
        let members = crate::pod::members(&containers, &pod)?;
        let infra = members.iter().find(|r| r.config.spec.is_infra());
        let recs: Vec<_> = members
            .iter()
            .filter(|r| !r.config.spec.is_infra())
            .cloned()
            .collect();
        if recs.is_empty() {
            anyhow::bail!(
                "pod {} has no containers to generate: add one with box run --pod {}",
                pod.name,
                pod.name
            );
        }
        let extras = crate::monitor::kube::PodExtras {
            hostname: pod.share.uts.then(|| pod.hostname.clone()),
            ports: infra
                .map(|r| r.config.spec.network.ports.clone())
                .unwrap_or_default(),
            host_network: infra.is_some_and(|r| r.config.spec.host_network()),
            labels: pod.labels.clone(),
        };
        let value =
            crate::monitor::kube::pod_named(&pod.name, &extras, &recs, &ctx.paths.volumes());
        print!("{}", crate::monitor::kube::to_yaml(&value));
        return Ok(0);
    }
    let recs = args
        .containers
        .iter()
        .map(|n| containers.find(n))
        .collect::<Result<Vec<_>, _>>()?;
    let pod = crate::monitor::kube::pod(&recs, &ctx.paths.volumes());
    print!("{}", crate::monitor::kube::to_yaml(&pod));
    Ok(0)
}
