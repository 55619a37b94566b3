//! `box inspect`: containers, images and volumes as JSON or through a template.
use std::collections::BTreeMap;

use anyhow::{Result, bail};
use serde_json::{Value, json};

use crate::cli::Ctx;
use crate::cli::args::{InspectArgs, InspectType};
use crate::container::{Containers, Record, State, Status};
use crate::monitor::{self, status};
use crate::run::Mount;

/// docker-like `inspect` JSON of a container.
pub fn container_json(ctx: &Ctx, rec: &Record, st: &State) -> Value {
    let cfg = &rec.config;
    let spec = &cfg.spec;
    let running = st.status == Status::Running;
    let paused = running && rec.run_dir.join("paused").exists();
    // podman: a container being stopped is `stopping`, no longer running.
    let stopping = crate::monitor::stop::is_stopping(rec, st);
    let running = running && !stopping;
    let (entrypoint, cmd) = (Value::Null, json!(spec.args));
    let binds: Vec<String> = spec
        .mounts
        .iter()
        .filter_map(|m| match m {
            Mount::Bind {
                source,
                target,
                readonly,
            } => Some(format!(
                "{}:{}{}",
                source.display(),
                target,
                if *readonly { ":ro" } else { "" }
            )),
            Mount::Tmpfs { .. } => None,
        })
        .collect();
    let volumes_root = ctx.paths.volumes();
    let mounts: Vec<Value> = spec
        .mounts
        .iter()
        .map(|m| match m {
            Mount::Bind {
                source,
                target,
                readonly,
            } => {
                let volume = source
                    .strip_prefix(&volumes_root)
                    .ok()
                    .and_then(|p| p.components().next())
                    .map(|c| c.as_os_str().to_string_lossy().into_owned());
                json!({
                    "Type": if volume.is_some() { "volume" } else { "bind" },
                    "Name": volume.unwrap_or_default(),
                    "Source": source,
                    "Destination": target,
                    "Mode": if *readonly { "ro" } else { "" },
                    "RW": !readonly,
                    "Propagation": "rprivate",
                })
            }
            Mount::Tmpfs { target, options } => json!({
                "Type": "tmpfs",
                "Source": "",
                "Destination": target,
                "Mode": options.join(","),
                "RW": !options.iter().any(|o| o == "ro"),
                "Propagation": "",
            }),
        })
        .chain(spec.settings.image_mounts.iter().map(|im| {
            json!({
                "Type": "image",
                "Source": im.image,
                "Destination": im.target,
                "Mode": if im.rw { "" } else { "ro" },
                "RW": im.rw,
                "Propagation": "",
            })
        }))
        .collect();
    // Ports as resolved at create time (random host ports, ranges, -P), not the raw -p text.
    let mut network = crate::network::inspect(&spec.network, None);
    if !spec.networks.is_empty() {
        user_networks(ctx, rec, &mut network);
    }
    let port_bindings = network["Ports"].clone();
    // docker's HostConfig fields, from the limits (--cpus is a quota over the default
    // period; any other period shows as CpuQuota/CpuPeriod).
    let l = &spec.limits;
    let memory = l.memory.unwrap_or(0);
    let memory_swap: i64 = match (l.memory, l.swap) {
        (_, Some(crate::cgroup::Swap::Unlimited)) => -1,
        (Some(m), Some(crate::cgroup::Swap::Bytes(s))) => (m + s) as i64,
        _ => 0,
    };
    let (nano_cpus, cpu_quota, cpu_period) = match l.cpu_max {
        Some(crate::cgroup::CpuMax {
            quota: Some(q),
            period: crate::cgroup::DEFAULT_CPU_PERIOD,
        }) => (q as i64 * 10_000, 0, 0),
        Some(crate::cgroup::CpuMax { quota, period }) => {
            (0, quota.map_or(-1, |q| q as i64), period as i64)
        }
        None => (0, 0, 0),
    };
    let pids_limit: i64 = match l.pids {
        crate::cgroup::Pids::Default => 0,
        crate::cgroup::Pids::Unlimited => -1,
        crate::cgroup::Pids::Max(n) => n as i64,
    };
    let policy = monitor::restart_policy(rec);
    let info = monitor::read_info(rec);
    let network_mode = match spec.network_arg() {
        _ if !spec.networks.is_empty() => spec.networks.join(","),
        m if m.is_empty() => "default".to_string(),
        m => m,
    };
    let hostname = if spec.hostname.is_empty() {
        rec.short_id().to_string()
    } else {
        spec.hostname.clone()
    };
    let exit_code = match st.status {
        Status::Exited => st.exit_code.unwrap_or(status::LOST_EXIT_CODE),
        _ => st.exit_code.unwrap_or(0),
    };
    let upper = rec.upper_dir();
    let lower: Vec<String> = spec
        .rootfs
        .layers
        .iter()
        .rev()
        .map(|p| p.display().to_string())
        .collect();
    let host_config = json!({
        "Binds": binds,
        "NetworkMode": network_mode,
        "PortBindings": port_bindings,
        "RestartPolicy": {"Name": policy.name(), "MaximumRetryCount": policy.max_retries()},
        "AutoRemove": cfg.autoremove,
        "CapAdd": Value::Null,
        "CapDrop": Value::Null,
        "Capabilities": spec.caps,
        "Dns": spec.dns,
        "ExtraHosts": spec.add_hosts,
        "Privileged": spec.privileged,
        "ReadonlyRootfs": spec.read_only,
        "SecurityOpt": security_opts(spec),
        "Tmpfs": spec.mounts.iter().filter_map(|m| match m {
            Mount::Tmpfs { target, options } => Some((target.clone(), options.join(","))),
            _ => None,
        }).collect::<BTreeMap<_, _>>(),
        "UsernsMode": spec.userns.name(),
        "Init": spec.init,
        "Memory": memory,
        "MemorySwap": memory_swap,
        "NanoCpus": nano_cpus,
        "CpuWeight": l.cpu_weight.unwrap_or(0),
        "CpuQuota": cpu_quota,
        "CpuPeriod": cpu_period,
        "CpusetCpus": l.cpuset_cpus.clone().unwrap_or_default(),
        "PidsLimit": pids_limit,
    });
    let health = crate::monitor::health::read(rec);
    let mut host_config = host_config;
    settings_into(&mut host_config, &spec.settings);
    json!({
        "Id": rec.id(),
        "Created": cfg.created,
        "Path": spec.args.first().cloned().unwrap_or_default(),
        "Args": spec.args.iter().skip(1).collect::<Vec<_>>(),
        "State": {
            "Status": if stopping {
                "stopping".to_string()
            } else if paused {
                "paused".to_string()
            } else {
                st.status.to_string()
            },
            "Running": running,
            "Paused": paused,
            "Restarting": false,
            "OOMKilled": false,
            "Dead": false,
            "Pid": if st.status == Status::Running { st.pid.unwrap_or(0) } else { 0 },
            "ExitCode": exit_code,
            "Error": st.error.clone().unwrap_or_default(),
            "StartedAt": st.started_at.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
            "FinishedAt": st.finished_at.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
            // docker's name, and podman 4's older one beside it.
            "Health": health,
            "Healthcheck": health,
        },
        "Image": cfg.image_id,
        "ImageName": cfg.image_name,
        "Name": rec.name(),
        "RestartCount": info.restart_count,
        "Driver": match spec.rootfs.driver {
            crate::run::Driver::Overlay => "overlay",
            crate::run::Driver::FuseOverlayfs => "fuse-overlayfs",
            crate::run::Driver::Vfs => "vfs",
        },
        "LogPath": rec.log_path(),
        "HostnamePath": rec.userdata_dir().join("hostname"),
        "HostsPath": rec.userdata_dir().join("hosts"),
        "ResolvConfPath": rec.userdata_dir().join("resolv.conf"),
        "Mounts": mounts,
        "GraphDriver": {
            "Name": match spec.rootfs.driver {
                crate::run::Driver::Vfs => "vfs",
                _ => "overlay",
            },
            "Data": {
                "LowerDir": lower.join(":"),
                "UpperDir": upper,
                "WorkDir": rec.work_dir(),
                "MergedDir": rec.merged_dir(),
            },
        },
        "Config": {
            "Hostname": hostname,
            "User": spec.user,
            "Tty": spec.tty,
            "OpenStdin": spec.interactive,
            "Env": spec.env,
            "Cmd": cmd,
            "Entrypoint": entrypoint,
            "Image": cfg.image,
            "WorkingDir": spec.cwd,
            "Labels": cfg.labels,
            "StopSignal": spec.stop_signal.clone().unwrap_or_else(|| "SIGTERM".into()),
            "StopTimeout": spec.stop_timeout.unwrap_or(10),
            "Healthcheck": spec.healthcheck,
            "HealthcheckOnFailureAction": spec.health_on_failure.name(),
            "Annotations": spec.settings.annotations,
            "Timezone": spec.settings.timezone.clone().unwrap_or_default(),
            "Umask": format!("{:04o}", spec.settings.umask.unwrap_or(0o022)),
            "Timeout": spec.settings.timeout.unwrap_or(0),
        },
        "HostConfig": host_config,
        "NetworkSettings": network,
    })
}

/// `NetworkSettings.Networks` of a container on user networks: each network's address (while
/// it runs), gateway and aliases; `IPAddress` and `Gateway` are the first network's.
fn user_networks(ctx: &Ctx, rec: &Record, network: &mut Value) {
    let spec = &rec.config.spec;
    let nets = crate::usernet::Networks::at(&ctx.paths);
    let mut map = serde_json::Map::new();
    for (i, name) in spec.networks.iter().enumerate() {
        let net = nets.get(name).ok();
        // IPAddress & co. are IPv4's (an IPv6-only network has none).
        let sub = net
            .as_ref()
            .and_then(|n| n.subnets.iter().find(|s| !s.subnet.contains(':')));
        let ip = crate::usernet::address_of(&ctx.paths, name, rec.id())
            .map(|ip| ip.to_string())
            .unwrap_or_default();
        let prefix: u8 = sub
            .and_then(|s| s.subnet.split_once('/'))
            .and_then(|(_, l)| l.parse().ok())
            .unwrap_or(0);
        let gateway = sub.map(|s| s.gateway.clone()).unwrap_or_default();
        let ip6 = crate::usernet::address6_of(&ctx.paths, name, rec.id())
            .map(|ip| ip.to_string())
            .unwrap_or_default();
        let sub6 = net.as_ref().and_then(|n| n.subnet6());
        let prefix6 = sub6.filter(|_| !ip6.is_empty()).map_or(0, |((_, l), _)| l);
        let gateway6 = sub6.map(|(_, g)| g.to_string()).unwrap_or_default();
        let mut aliases = vec![rec.name().to_string()];
        aliases.extend(spec.network_aliases.iter().cloned());
        let opts = spec.settings.per_network.get(name);
        if let Some(o) = opts {
            aliases.extend(o.aliases.iter().cloned());
        }
        // `--mac-address` (netavark picks one otherwise, which box does not record).
        let mac = opts.and_then(|o| o.mac.clone()).unwrap_or_default();
        if i == 0 {
            network["IPAddress"] = json!(ip);
            network["IPPrefixLen"] = json!(if ip.is_empty() { 0 } else { prefix });
            network["Gateway"] = json!(gateway);
            network["GlobalIPv6Address"] = json!(ip6);
            network["GlobalIPv6PrefixLen"] = json!(prefix6);
            network["IPv6Gateway"] = json!(gateway6);
            network["MacAddress"] = json!(mac);
        }
        map.insert(
            name.clone(),
            json!({
                "NetworkID": net.map(|n| n.id).unwrap_or_default(),
                "IPAddress": ip,
                "IPPrefixLen": prefix,
                "Gateway": gateway,
                "GlobalIPv6Address": ip6,
                "GlobalIPv6PrefixLen": prefix6,
                "IPv6Gateway": gateway6,
                "MacAddress": mac,
                "Aliases": aliases,
            }),
        );
    }
    network["NetworkMode"] = json!(spec.networks.join(","));
    network["Networks"] = Value::Object(map);
}

/// podman's HostConfig fields for the spec's `Settings`.
fn settings_into(host_config: &mut Value, s: &crate::spec::Settings) {
    let h = &mut host_config.as_object_mut().expect("an object");
    let limit = |v: Option<u64>| v.map(|n| n as i64).unwrap_or(-1);
    h.insert(
        "Ulimits".into(),
        json!(
            s.ulimits
                .iter()
                .map(|u| json!({
                    "Name": format!("RLIMIT_{}", u.name.to_ascii_uppercase()),
                    "Soft": limit(u.soft),
                    "Hard": limit(u.hard),
                }))
                .collect::<Vec<_>>()
        ),
    );
    h.insert("ShmSize".into(), json!(s.shm_size.unwrap_or(64 << 20)));
    h.insert("Sysctls".into(), json!(s.sysctls));
    h.insert(
        "GroupAdd".into(),
        json!(if s.keep_groups {
            vec!["keep-groups".to_string()]
        } else {
            s.group_add.clone()
        }),
    );
    h.insert(
        "LogConfig".into(),
        json!({
            "Type": s.log.driver.name(),
            "Path": s.log.path.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
            "Size": s.log.max_size.map(crate::units::human_size).unwrap_or_else(|| "0B".into()),
        }),
    );
    h.insert(
        "CgroupnsMode".into(),
        json!(if s.host_cgroupns { "host" } else { "private" }),
    );
    // podman's names: CgroupMode is the cgroup namespace's, Cgroups the --cgroups mode.
    h.insert(
        "CgroupMode".into(),
        json!(if s.host_cgroupns { "host" } else { "private" }),
    );
    h.insert(
        "Cgroups".into(),
        json!(match s.cgroups {
            _ if s.no_cgroup => "disabled",
            crate::cgroup::Mode::Enabled => "default",
            m => m.name(),
        }),
    );
}

fn security_opts(spec: &crate::run::Spec) -> Vec<String> {
    let mut v = Vec::new();
    if spec.no_new_privileges {
        v.push("no-new-privileges".to_string());
    }
    match &spec.seccomp {
        crate::run::Seccomp::Unconfined => v.push("seccomp=unconfined".to_string()),
        crate::run::Seccomp::Profile { path, .. } => v.push(format!("seccomp={path}")),
        crate::run::Seccomp::Default => {}
    }
    v
}

fn find_container(ctx: &Ctx, name: &str, size: bool) -> Result<Option<Value>> {
    ctx.paths.ensure()?;
    let c = Containers::open(&ctx.paths)?;
    match c.find(name) {
        Ok(rec) => {
            let st = status::observe(&rec);
            let mut v = container_json(ctx, &rec, &st);
            if size {
                // podman's --size: the writable layer, and it with the image.
                let rw = if rec.config.spec.rootfs.driver == crate::run::Driver::Vfs {
                    crate::storage::usage::disk_usage(&rec.rootfs_dir())
                } else {
                    crate::storage::usage::disk_usage(&rec.upper_dir())
                };
                let image = crate::storage::Store::open(&ctx.paths)
                    .ok()
                    .and_then(|s| s.find_image(&rec.config.image_id).ok().flatten())
                    .map(|i| i.size)
                    .unwrap_or(0);
                v["SizeRw"] = json!(rw);
                v["SizeRootFs"] = json!(rw + image);
            }
            Ok(Some(v))
        }
        Err(crate::container::Error::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn find_image(ctx: &Ctx, name: &str) -> Result<Option<Value>> {
    let store = crate::storage::Store::open(&ctx.paths)?;
    match store.find_image(name) {
        Ok(Some(img)) => {
            // The stored config blob keeps Healthcheck, OnBuild and Shell.
            let raw = store
                .blob_path(&img.digest_id())
                .ok()
                .and_then(|p| std::fs::read(p).ok())
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
            Ok(Some(crate::storage::inspect_image(&img, raw.as_ref())))
        }
        Ok(None) | Err(crate::storage::Error::NotFound(_)) => Ok(None),
        Err(crate::storage::Error::InvalidName { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn find_volume(ctx: &Ctx, name: &str) -> Result<Option<Value>> {
    let v = crate::volume::Volumes::open(&ctx.paths)?;
    match v.get(name) {
        Ok(vol) => Ok(Some(serde_json::to_value(vol)?)),
        Err(crate::volume::Error::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

pub fn inspect(ctx: &Ctx, args: InspectArgs) -> Result<u8> {
    let template = match &args.format {
        Some(f) if f != "json" => Some(crate::template::Template::parse(
            &f.replace("\\t", "\t").replace("\\n", "\n"),
        )?),
        _ => None,
    };
    let mut found = Vec::new();
    let mut missing: Option<String> = None;
    for name in &args.names {
        let v = match args.kind {
            Some(InspectType::Container) => find_container(ctx, name, args.size)?,
            Some(InspectType::Image) => find_image(ctx, name)?,
            Some(InspectType::Volume) => find_volume(ctx, name)?,
            None => match find_container(ctx, name, args.size)? {
                Some(v) => Some(v),
                None => match find_image(ctx, name)? {
                    Some(v) => Some(v),
                    None => find_volume(ctx, name)?,
                },
            },
        };
        match v {
            Some(v) => found.push(v),
            None => {
                let what = match args.kind {
                    Some(InspectType::Container) => "container",
                    Some(InspectType::Image) => "image",
                    Some(InspectType::Volume) => "volume",
                    None => "object",
                };
                let msg = format!("no such {what}: {name}");
                if let Some(prev) = missing.replace(msg) {
                    eprintln!("box: {prev}");
                }
            }
        }
    }
    match &template {
        Some(t) => {
            for v in &found {
                println!("{}", t.render(v)?);
            }
        }
        None => println!("{}", serde_json::to_string_pretty(&found)?),
    }
    if let Some(m) = missing {
        bail!(m);
    }
    Ok(0)
}
