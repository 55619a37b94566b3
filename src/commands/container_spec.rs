//! The one translation from `box run`/`box create`'s flags (`cli::args::ContainerOpts`)
//! to a container's `Spec`, with docker's rules for what the image says and what the
//! user typed. Lower layers only ever see the spec and their own option structs.
use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow, bail};

use crate::cli::args::ContainerOpts;
use crate::cli::args_run::RunExtraOpts;
use crate::run::security;
use crate::spec::{
    self, ImageDefaults, Mount, RestartPolicy, Rootfs, Seccomp, Settings, Spec, clean_path,
};

/// Build the spec. `host_env` looks up the caller's environment (for `-e KEY`); `volume`
/// gives the host directory of a named volume (creating it on first use), or of a new
/// anonymous one for `None`.
pub fn build(
    opts: &ContainerOpts,
    image: &ImageDefaults,
    rootfs: Rootfs,
    net: crate::network::Plan,
    volume: &dyn Fn(Option<&str>) -> Result<PathBuf, String>,
    host_env: &dyn Fn(&str) -> Option<String>,
) -> Result<Spec> {
    let args = spec::command(opts.entrypoint.as_deref(), &opts.command, image)?;
    let mut host_env_keys = Vec::new();
    let env = if opts.extra.env_host {
        // --env-host: the host's environment over the image's, under --env-file and -e.
        let mut base = image.env.clone();
        let host: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
        base.extend(host.iter().cloned());
        let env = spec::environment(&base, &opts.env_file, &opts.env, host_env)?;
        // The keys that kept the host's value (a unit repeats --env-host, not them).
        let kept: std::collections::HashSet<&String> = env.iter().collect();
        host_env_keys = host
            .iter()
            .filter(|e| kept.contains(e))
            .filter_map(|e| e.split_once('=').map(|(k, _)| k.to_string()))
            .collect();
        env
    } else {
        spec::environment(&image.env, &opts.env_file, &opts.env, host_env)?
    };
    let cwd = match &opts.workdir {
        Some(w) if !w.starts_with('/') => {
            bail!("the working directory {w:?} is invalid: it needs to be an absolute path");
        }
        Some(w) => clean_path(w),
        None if image.working_dir.is_empty() => "/".to_string(),
        None => clean_path(&format!("/{}", image.working_dir)),
    };
    let user = opts.user.clone().unwrap_or_else(|| image.user.clone());
    // Validated now so that `box create` fails, not the later start.
    let limits = crate::cgroup::Limits::parse(&limit_flags(opts))?;
    let mut mounts = Vec::new();
    let mut chown_targets = Vec::new();
    let mut overlay_targets = Vec::new();
    let mut idmap_mounts = Vec::new();
    for given in &opts.volume {
        // podman's `U` option: chown the source to the container's user at start.
        let (v, chown) = strip_option(given, "U");
        // podman's `O`: an overlay on the source, its changes thrown away.
        let (v, overlay) = strip_option(&v, "O");
        // `idmap[=uids=..;gids=..]`: the source mounted idmapped (the container's mapping,
        // or the one given).
        let (v, idmap) = take_option_value(&v, "idmap");
        let idmap = match idmap {
            Some(value) => {
                Some(spec::IdmapMount::parse("", &value).map_err(|e| anyhow!("-v {given}: {e}"))?)
            }
            None => None,
        };
        if idmap.is_some() && overlay {
            bail!("-v {given}: idmap and O cannot be combined: leave one out");
        }
        if idmap.is_some() {
            // Before a named volume is made: rootless, the kernel refuses at once.
            crate::run::idmap::probe(
                &format!("-v {given}"),
                Path::new(v.split(':').next().unwrap_or("/")),
            )?;
        }
        let m = spec::volume_mount(&v, volume)?;
        if chown {
            chown_targets.push(m.target().to_string());
        }
        if overlay {
            overlay_targets.push(m.target().to_string());
        }
        if let Some(mut idmap) = idmap {
            idmap.target = m.target().to_string();
            idmap_mounts.push(idmap);
        }
        mounts.push(m);
    }
    for t in &opts.tmpfs {
        mounts.push(spec::tmpfs_mount(t)?);
    }
    let mut image_mounts = Vec::new();
    for m in &opts.extra.mount {
        if let Some(im) = image_mount(m)? {
            image_mounts.push(im);
            continue;
        }
        let (mnt, idmap) = mount_flag(m, volume)?;
        if let Some(mut idmap) = idmap {
            idmap.target = mnt.target().to_string();
            idmap_mounts.push(idmap);
        }
        mounts.push(mnt);
    }
    for d in &opts.extra.device {
        mounts.push(device(d)?);
    }
    // --read-only: writable scratch places where none is mounted (podman's
    // --read-only-tmpfs, on by default).
    if opts.read_only && opts.read_only_tmpfs {
        for dst in spec::READ_ONLY_TMPFS {
            if !mounts.iter().any(|m| m.target() == *dst) {
                mounts.push(spec::tmpfs_mount(&format!("{dst}:rw,nosuid,nodev"))?);
            }
        }
    }
    // The image's VOLUMEs that no -v or --tmpfs covers, as docker does.
    for path in &image.volumes {
        let target = clean_path(&format!("/{path}"));
        let covered = mounts.iter().any(|m| m.target() == target);
        if !covered && target != "/" {
            let source = volume(None).map_err(|e| anyhow!("the image's VOLUME {path}: {e}"))?;
            mounts.push(Mount::Bind {
                source,
                target,
                readonly: false,
            });
        }
    }
    let mut no_new_privileges = false;
    let mut seccomp = Seccomp::Default;
    for o in &opts.security_opt {
        let (k, v) = o.split_once(['=', ':']).unwrap_or((o.as_str(), ""));
        match (k, v) {
            ("no-new-privileges", "" | "true") => no_new_privileges = true,
            ("no-new-privileges", "false") => no_new_privileges = false,
            ("seccomp", "unconfined") => seccomp = Seccomp::Unconfined,
            ("seccomp", path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    anyhow!("--security-opt {o}: cannot read the seccomp profile {path}: {e}")
                })?;
                seccomp = Seccomp::Profile {
                    path: std::fs::canonicalize(path)
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|_| path.to_string()),
                    text,
                };
            }
            ("label" | "apparmor", _) => {} // no SELinux/AppArmor in rootless box: accepted, ignored
            _ => {
                bail!(
                    "unknown --security-opt {o:?}: use no-new-privileges, seccomp=unconfined or seccomp=PROFILE.json"
                );
            }
        }
    }
    let caps = if opts.privileged {
        seccomp = Seccomp::Unconfined;
        security::all_cap_names()
    } else {
        security::cap_set(&opts.cap_add, &opts.cap_drop)?
    };
    // A profile that does not compile fails `box create`, not the later start.
    if let Seccomp::Profile { text, .. } = &seccomp {
        crate::run::seccomp_profile::compile(
            text,
            &crate::run::seccomp_profile::Target {
                caps: &caps,
                kernel: crate::run::seccomp_profile::running_kernel(),
            },
        )
        .map_err(|e| anyhow!("--security-opt seccomp: {e}"))?;
    }
    let (healthcheck, health_on_failure) =
        spec::health::decide(&opts.health.flags(), image.healthcheck.as_ref())?;
    if healthcheck.is_none() && opts.sdnotify == crate::cli::args::SdNotify::Healthy {
        bail!(
            "--sdnotify=healthy needs a healthcheck: give --health-cmd or use an image with a HEALTHCHECK"
        );
    }
    let mut settings = settings(&opts.extra, net.mode == crate::network::Mode::Host)?;
    // --passwd (podman's default): a numeric --user gets an /etc/passwd entry if the
    // image has none for it.
    if opts.extra.passwd != Some(false)
        && let Some(u) = &opts.user
    {
        let (uid, gid) = u.split_once(':').unwrap_or((u.as_str(), "0"));
        if let (Ok(uid), Ok(gid)) = (uid.parse::<u32>(), gid.parse::<u32>())
            && uid != 0
        {
            let template = opts
                .extra
                .passwd_entry
                .as_deref()
                .unwrap_or("$USERNAME:*:$UID:$GID:$NAME:$HOME:/bin/sh");
            settings
                .passwd_entries
                .push(passwd_entry(template, uid, gid)?);
        }
    }
    settings.host_env_keys = host_env_keys;
    settings.network_options = network_options(opts.network.first().map(String::as_str))?;
    settings.chown_targets = chown_targets;
    settings.image_mounts = image_mounts;
    (settings.uidmap, settings.gidmap) = requested_idmaps(opts)?;
    settings.overlay_targets = overlay_targets;
    settings.idmap_mounts = idmap_mounts;
    Ok(Spec {
        settings,
        args,
        env,
        cwd,
        user,
        hostname: opts.hostname.clone().unwrap_or_default(),
        tty: opts.tty,
        interactive: opts.interactive,
        read_only: opts.read_only,
        mounts,
        network: net,
        publish: opts.publish.clone(),
        dns: opts.dns.clone(),
        add_hosts: opts.add_host.clone(),
        userns: crate::userns::Mode::parse(userns_mode(&opts.userns)).ok_or_else(|| {
            anyhow!(
                "invalid --userns {:?}: use auto, keep-id or single",
                opts.userns
            )
        })?,
        caps,
        seccomp,
        no_new_privileges,
        privileged: opts.privileged,
        init: opts.init,
        rootfs,
        limits,
        stop_signal: spec::stop_signal(opts.stop_signal.as_deref(), image)?,
        stop_timeout: opts.stop_timeout,
        sdnotify: opts.sdnotify.into(),
        restart: RestartPolicy::parse(&opts.restart)?,
        pod: None,
        networks: Vec::new(),
        network_aliases: Vec::new(),
        ip: None,
        healthcheck,
        health_on_failure,
    })
}

/// podman's further flags (`cli::args_run`) as the spec's `Settings`, each checked now so
/// that `box create` fails rather than the later start.
fn settings(x: &RunExtraOpts, host_network: bool) -> Result<Settings> {
    if let Some(k) = x.decryption_key.first() {
        bail!(
            "--decryption-key {k}: box does not support encrypted images: use an image that is not encrypted"
        );
    }
    let mut ulimits = Vec::new();
    for u in &x.ulimit {
        if u == "host" {
            // The host's limits: box's own, which the container inherits.
            ulimits.clear();
            continue;
        }
        let parsed = spec::Ulimit::parse(u)?;
        ulimits.retain(|o: &spec::Ulimit| o.name != parsed.name);
        ulimits.push(parsed);
    }
    let umask = match &x.umask {
        None => None,
        Some(m) => Some(
            u32::from_str_radix(m, 8)
                .ok()
                .filter(|v| *v <= 0o777)
                .ok_or_else(|| anyhow!("--umask {m}: use an octal mask such as 0022"))?,
        ),
    };
    let keep_groups = x.group_add.iter().any(|g| g == "keep-groups");
    if keep_groups && x.group_add.len() > 1 {
        bail!("--group-add keep-groups cannot be combined with other groups");
    }
    for g in &x.group_add {
        if g.is_empty() || g.contains([':', '\n']) {
            bail!("--group-add {g:?}: give a group name or number");
        }
    }
    let mut sysctls = std::collections::BTreeMap::new();
    for s in &x.sysctl {
        let (k, v) = s
            .split_once('=')
            .ok_or_else(|| anyhow!("--sysctl {s}: use KEY=VALUE"))?;
        spec::check_sysctl(k, host_network, false)?;
        sysctls.insert(k.to_string(), v.to_string());
    }
    let shm_size = match &x.shm_size {
        None => None,
        Some(v) => Some(
            crate::cgroup::parse_size(v)
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| anyhow!("--shm-size {v}: use a size such as 64m or 1g"))?,
        ),
    };
    if let Some(tz) = &x.tz {
        spec::timezone_file(tz)?;
    }
    let mut log = spec::LogConfig::default();
    if let Some(d) = &x.log_driver {
        log.driver = spec::LogDriver::parse(d)?;
    }
    for o in &x.log_opt {
        match o.split_once('=') {
            Some(("path", p)) if p.starts_with('/') => log.path = Some(PathBuf::from(p)),
            Some(("path", p)) => {
                let abs = std::env::current_dir()
                    .map(|d| d.join(p))
                    .map_err(|e| anyhow!("--log-opt {o}: {e}"))?;
                log.path = Some(abs);
            }
            Some(("max-size", v)) => {
                log.max_size = Some(
                    crate::cgroup::parse_size(v)
                        .ok()
                        .filter(|n| *n >= 4096)
                        .ok_or_else(|| {
                            anyhow!("--log-opt {o}: use a size of at least 4k, such as 10m")
                        })?,
                );
            }
            // podman's other options (tag=, label=...) have no effect here.
            Some(("tag" | "label", _)) => {}
            _ => bail!("--log-opt {o}: unsupported: use path=FILE or max-size=SIZE"),
        }
    }
    if (log.path.is_some() || log.max_size.is_some()) && !log.driver.keeps_log() {
        bail!(
            "--log-opt path= and max-size= need a log file: use --log-driver k8s-file or json-file"
        );
    }
    let mut annotations = std::collections::BTreeMap::new();
    for a in &x.annotation {
        match a.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                annotations.insert(k.to_string(), v.to_string());
            }
            _ => bail!("--annotation {a:?}: use KEY=VALUE"),
        }
    }
    let pidfile = match &x.pidfile {
        None => None,
        Some(p) => Some(std::path::absolute(p).map_err(|e| anyhow!("--pidfile: {e}"))?),
    };
    if x.timeout == Some(0) {
        bail!("--timeout 0: give the seconds the container may run (at least 1)");
    }
    Ok(Settings {
        ulimits,
        umask,
        group_add: x
            .group_add
            .iter()
            .filter(|g| *g != "keep-groups")
            .cloned()
            .collect(),
        keep_groups,
        sysctls,
        shm_size,
        timezone: x.tz.clone(),
        log,
        annotations,
        timeout: x.timeout,
        pidfile,
        requires: x
            .requires
            .iter()
            .filter(|r| !r.is_empty())
            .cloned()
            .collect(),
        no_cgroup: x.cgroups.as_deref() == Some("disabled"),
        cgroups: match &x.cgroups {
            None => crate::cgroup::Mode::Enabled,
            Some(m) => crate::cgroup::Mode::parse(m).ok_or_else(|| {
                anyhow!("--cgroups {m}: use enabled, disabled, no-conmon or split")
            })?,
        },
        host_cgroupns: x.cgroupns.as_deref() == Some("host"),
        attach: x.attach.clone(),
        network_options: Vec::new(),
        per_network: Default::default(),
        preserve_fds: x.preserve_fds.unwrap_or(0),
        passwd_entries: host_users(&x.hostuser)?,
        hostusers: x.hostuser.clone(),
        no_passwd: x.passwd == Some(false),
        passwd_entry: x.passwd_entry.clone(),
        env_host: x.env_host,
        host_env_keys: Vec::new(),
        cidfile: match &x.cidfile {
            None => None,
            Some(p) => Some(std::path::absolute(p).map_err(|e| anyhow!("--cidfile: {e}"))?),
        },
        chown_targets: Vec::new(),
        overlay_targets: Vec::new(),
        idmap_mounts: Vec::new(),
        image_mounts: Vec::new(),
        uidmap: Vec::new(),
        gidmap: Vec::new(),
    })
}

/// `-v SRC:DEST:OPTS` without podman's option `key` or `key=VALUE`, and its value
/// (empty when bare) if it was there.
fn take_option_value(v: &str, key: &str) -> (String, Option<String>) {
    let parts: Vec<&str> = v.split(':').collect();
    if parts.len() < 3 {
        return (v.to_string(), None);
    }
    let mut value = None;
    let mut kept = Vec::new();
    for o in parts[parts.len() - 1].split(',') {
        match o.split_once('=') {
            Some((k, val)) if k == key => value = Some(val.to_string()),
            None if o == key => value = Some(String::new()),
            _ => kept.push(o),
        }
    }
    if value.is_none() {
        return (v.to_string(), None);
    }
    let mut out = parts[..parts.len() - 1].join(":");
    if !kept.is_empty() {
        out.push(':');
        out.push_str(&kept.join(","));
    }
    (out, value)
}

/// `-v SRC:DEST:OPTS` without podman's option `opt` (`U`, `O`), and whether it was there.
fn strip_option(v: &str, opt: &str) -> (String, bool) {
    let parts: Vec<&str> = v.split(':').collect();
    if parts.len() < 3 {
        return (v.to_string(), false);
    }
    let opts: Vec<&str> = parts[parts.len() - 1].split(',').collect();
    if !opts.contains(&opt) {
        return (v.to_string(), false);
    }
    let kept: Vec<&str> = opts.into_iter().filter(|o| *o != opt).collect();
    let mut out = parts[..parts.len() - 1].join(":");
    if !kept.is_empty() {
        out.push(':');
        out.push_str(&kept.join(","));
    }
    (out, true)
}

/// `--userns`'s mode, without keep-id's `:uid=N,gid=N`.
pub fn userns_mode(userns: &str) -> &str {
    userns.split_once(':').map_or(userns, |(m, _)| m)
}

/// `keep-id:uid=N,gid=N`: the container ids the user becomes (own ids by default).
pub fn keep_id_ids(userns: &str) -> Option<(u32, u32)> {
    let (_, opts) = userns.split_once(':')?;
    let (mut uid, mut gid) = (
        nix::unistd::getuid().as_raw(),
        nix::unistd::getgid().as_raw(),
    );
    for o in opts.split(',') {
        match o.split_once('=') {
            Some(("uid", v)) => uid = v.parse().ok()?,
            Some(("gid", v)) => gid = v.parse().ok()?,
            _ => {}
        }
    }
    Some((uid, gid))
}

/// The intermediate id maps asked for: `--uidmap`/`--gidmap`, or those that make
/// `keep-id:uid=U,gid=G` (U → you, the rest from your subordinate ids around it).
pub fn requested_idmaps(
    opts: &ContainerOpts,
) -> Result<(Vec<crate::userns::IdMap>, Vec<crate::userns::IdMap>)> {
    let (uid, gid) = (idmaps(&opts.extra.uidmap)?, idmaps(&opts.extra.gidmap)?);
    if !uid.is_empty() || !gid.is_empty() {
        return Ok((uid, gid));
    }
    let Some((u, g)) = keep_id_ids(&opts.userns) else {
        return Ok((Vec::new(), Vec::new()));
    };
    let auto = crate::userns::IdMaps::for_current_user(crate::userns::Mode::Auto)?;
    let around = |own: u32, maps: &[crate::userns::IdMap]| -> Result<Vec<crate::userns::IdMap>> {
        // Subordinate (intermediate 1..) ids available.
        let subs: u64 = maps.iter().map(|m| m.size as u64).sum::<u64>() - 1;
        if subs < own as u64 {
            bail!("--userns keep-id:uid={own}: needs {own} subordinate ids, you have {subs}");
        }
        let mut v = Vec::new();
        if own > 0 {
            v.push(crate::userns::IdMap {
                container: 0,
                host: 1,
                size: own,
            });
        }
        v.push(crate::userns::IdMap {
            container: own,
            host: 0,
            size: 1,
        });
        let rest = subs - own as u64;
        if rest > 0 {
            v.push(crate::userns::IdMap {
                container: own + 1,
                host: own + 1,
                size: rest as u32,
            });
        }
        Ok(v)
    };
    Ok((around(u, &auto.uid)?, around(g, &auto.gid)?))
}

/// `--uidmap`/`--gidmap` values, parsed.
fn idmaps(values: &[String]) -> Result<Vec<crate::userns::IdMap>> {
    let mut out = Vec::new();
    for v in values {
        out.extend(crate::userns::parse_idmaps(v).map_err(|e| anyhow!("--uidmap/--gidmap {e}"))?);
    }
    Ok(out)
}

/// `--subuidname`/`--subgidname`: rootless, only the user's own ranges can be mapped
/// (newuidmap allows no other), so another name is refused.
pub fn check_subid_names(x: &RunExtraOpts) -> Result<()> {
    let me = crate::userns::user_name(nix::unistd::getuid());
    for (flag, name) in [
        ("--subuidname", &x.subuidname),
        ("--subgidname", &x.subgidname),
    ] {
        if let Some(n) = name
            && *n != me
            && !nix::unistd::getuid().is_root()
        {
            bail!(
                "{flag} {n}: rootless, box can only map your own subordinate ids ({me}'s in /etc/subuid and /etc/subgid)"
            );
        }
    }
    Ok(())
}

/// `--passwd-entry` (podman's variables replaced) for the numeric `--user` uid:gid: one
/// /etc/passwd line whose uid is `uid`.
fn passwd_entry(template: &str, uid: u32, gid: u32) -> Result<String> {
    let line = template
        .replace("$USERNAME", &uid.to_string())
        .replace("$UID", &uid.to_string())
        .replace("$GID", &gid.to_string())
        .replace("$NAME", "container user")
        .replace("$HOME", "/");
    let fields: Vec<&str> = line.split(':').collect();
    if fields.len() != 7 || line.contains('\n') || fields[2] != uid.to_string() {
        bail!(
            "--passwd-entry {template:?}: give one /etc/passwd line NAME:PASSWORD:UID:GID:GECOS:HOME:SHELL whose uid is the --user's ($UID)"
        );
    }
    Ok(line)
}

/// `--hostuser NAME`: the host's /etc/passwd entry of each user, for the container's.
fn host_users(names: &[String]) -> Result<Vec<String>> {
    let mut lines = Vec::new();
    for n in names {
        let user = match n.parse::<u32>() {
            Ok(uid) => nix::unistd::User::from_uid(uid.into()),
            Err(_) => nix::unistd::User::from_name(n),
        }
        .ok()
        .flatten()
        .ok_or_else(|| anyhow!("--hostuser {n}: no such user on this host"))?;
        lines.push(format!(
            "{}:*:{}:{}:{}:{}:{}",
            user.name,
            user.uid,
            user.gid,
            user.gecos.to_string_lossy(),
            user.dir.display(),
            user.shell.display()
        ));
    }
    Ok(lines)
}

/// `--mount type=image,src=IMAGE,dst=PATH[,rw=true]` (read-only unless rw; its layers are
/// found at create).
fn image_mount(m: &str) -> Result<Option<spec::ImageMount>> {
    let parts: Vec<(&str, &str)> = m
        .split(',')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect();
    if !parts.iter().any(|(k, v)| *k == "type" && *v == "image") {
        return Ok(None);
    }
    let (mut src, mut dst) = (None, None);
    let mut rw = false;
    for (k, v) in parts {
        match k {
            "type" => {}
            "source" | "src" => src = Some(v),
            "destination" | "dst" | "target" => dst = Some(v),
            "rw" | "readwrite" => rw = bool_option(m, k, v)?,
            "ro" | "readonly" => rw = !bool_option(m, k, v)?,
            _ => bail!("--mount {m}: unsupported option {k:?}"),
        }
    }
    let (Some(src), Some(dst)) = (src.filter(|s| !s.is_empty()), dst) else {
        bail!("--mount {m}: give the image with src= and the container path with dst=");
    };
    if !dst.starts_with('/') {
        bail!("--mount {m}: the container path must be absolute");
    }
    Ok(Some(spec::ImageMount {
        image: src.to_string(),
        target: clean_path(dst),
        layers: Vec::new(),
        rw,
    }))
}

/// A `--mount` boolean option: bare or `true`/`false` (podman also takes 1/0).
fn bool_option(m: &str, k: &str, v: &str) -> Result<bool> {
    match v {
        "" | "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => bail!("--mount {m}: {k}={v} must be true or false"),
    }
}

/// `--mount type=bind|volume|tmpfs,...` as the `-v`/`--tmpfs` it stands for, and its
/// idmapping (its target filled in by the caller).
fn mount_flag(
    m: &str,
    volume: &dyn Fn(Option<&str>) -> Result<PathBuf, String>,
) -> Result<(Mount, Option<spec::IdmapMount>)> {
    let mut kind = None;
    let mut idmap = None;
    let (mut src, mut dst) = (None, None);
    let mut ro = false;
    let mut tmpfs_opts: Vec<String> = Vec::new();
    for part in m.split(',').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        match k {
            "type" => kind = Some(v),
            "source" | "src" => src = Some(v),
            "destination" | "dst" | "target" => dst = Some(v),
            "ro" | "readonly" => ro = matches!(v, "" | "true" | "1"),
            "rw" => ro = matches!(v, "false" | "0"),
            "tmpfs-size" => tmpfs_opts.push(format!("size={v}")),
            "tmpfs-mode" => tmpfs_opts.push(format!("mode={v}")),
            // Propagation, SELinux labels, volume options without meaning rootless here.
            "bind-propagation" | "relabel" | "z" | "Z" | "consistency" | "bind-nonrecursive"
            | "nocopy" | "volume-nocopy" | "U" | "chown" | "notmpcopyup" | "tmpcopyup" => {}
            "idmap" if v == "false" => idmap = None,
            "idmap" => {
                let value = if v == "true" { "" } else { v };
                idmap = Some(
                    spec::IdmapMount::parse("", value).map_err(|e| anyhow!("--mount {m}: {e}"))?,
                );
            }
            _ => bail!("--mount {m}: unsupported option {k:?}"),
        }
    }
    let Some(dst) = dst.filter(|d| !d.is_empty()) else {
        bail!("--mount {m}: give the container path with dst= (or target=)");
    };
    let suffix = if ro { ":ro" } else { "" };
    if idmap.is_some() && !matches!(kind, Some("bind" | "volume")) {
        bail!("--mount {m}: idmap needs type=bind or type=volume");
    }
    if idmap.is_some() {
        crate::run::idmap::probe(&format!("--mount {m}"), Path::new(src.unwrap_or("/")))?;
    }
    let mount = match kind {
        Some("bind") => {
            let Some(src) = src.filter(|s| s.starts_with('/') || s.starts_with('.')) else {
                bail!("--mount {m}: a bind needs src= with a host path");
            };
            spec::volume_mount(&format!("{src}:{dst}{suffix}"), volume)?
        }
        Some("volume") => match src.filter(|s| !s.is_empty()) {
            Some(name) => spec::volume_mount(&format!("{name}:{dst}{suffix}"), volume)?,
            None => spec::volume_mount(dst, volume)?,
        },
        Some("tmpfs") => {
            if ro {
                tmpfs_opts.push("ro".into());
            }
            spec::tmpfs_mount(&format!("{dst}:{}", tmpfs_opts.join(",")))?
        }
        Some(other) => bail!(
            "--mount {m}: type={other} is not supported: use type=bind, type=volume, type=tmpfs or type=image"
        ),
        None => bail!("--mount {m}: give type=bind, type=volume, type=tmpfs or type=image"),
    };
    Ok((mount, idmap))
}

/// `--device HOST[:CONTAINER][:PERMS]`: rootless, the host's node bound into the
/// container, which only works for a device the user may open.
fn device(d: &str) -> Result<Mount> {
    let parts: Vec<&str> = d.split(':').collect();
    let (host, target, perms) = match parts.as_slice() {
        [h] => (*h, *h, "rwm"),
        [h, p] if !p.starts_with('/') => (*h, *h, *p),
        [h, t] => (*h, *t, "rwm"),
        [h, t, p] => (*h, *t, *p),
        _ => bail!("--device {d}: use HOST[:CONTAINER][:PERMS]"),
    };
    if !host.starts_with('/') || !target.starts_with('/') {
        bail!("--device {d}: the paths must be absolute");
    }
    if perms.is_empty() || !perms.bytes().all(|b| b"rwm".contains(&b)) {
        bail!("--device {d}: the permissions are a combination of r, w and m");
    }
    use std::os::unix::fs::FileTypeExt;
    let real = std::fs::canonicalize(host).map_err(|e| anyhow!("--device {host}: {e}"))?;
    let md = std::fs::metadata(&real).map_err(|e| anyhow!("--device {host}: {e}"))?;
    if !(md.file_type().is_char_device() || md.file_type().is_block_device()) {
        bail!("--device {host}: not a device node");
    }
    let write = perms.contains('w');
    let mode = if write {
        nix::unistd::AccessFlags::R_OK | nix::unistd::AccessFlags::W_OK
    } else {
        nix::unistd::AccessFlags::R_OK
    };
    nix::unistd::access(&real, mode).map_err(|e| {
        anyhow!(
            "--device {host}: you cannot open it ({}): a rootless container can only be given devices its user may open",
            e.desc()
        )
    })?;
    Ok(Mount::Bind {
        source: real,
        target: clean_path(target),
        readonly: !write,
    })
}

/// `--network` without podman's helper options (`pasta:OPTS` is pasta).
pub fn network_mode(network: Option<&str>) -> Option<String> {
    network.map(|n| match n.split_once(':') {
        Some((m @ ("pasta" | "slirp4netns"), _)) => m.to_string(),
        _ => n.to_string(),
    })
}

/// `--network pasta:OPTS` / `slirp4netns:OPTS`: the options (comma-separated), checked.
fn network_options(network: Option<&str>) -> Result<Vec<String>> {
    let Some((mode, opts)) = network.and_then(|n| n.split_once(':')) else {
        return Ok(Vec::new());
    };
    let options: Vec<String> = opts
        .split(',')
        .filter(|o| !o.is_empty())
        .map(String::from)
        .collect();
    match mode {
        "pasta" => Ok(options),
        "slirp4netns" => {
            crate::network::slirp_options(&options).map_err(|e| anyhow!(e))?;
            Ok(options)
        }
        _ => Ok(Vec::new()),
    }
}

/// `--label-file` lines, then `-l`: the container's labels.
pub fn labels(opts: &ContainerOpts) -> Result<spec::Labels> {
    let mut all = Vec::new();
    for f in &opts.extra.label_file {
        let text =
            std::fs::read_to_string(f).map_err(|e| anyhow!("--label-file {}: {e}", f.display()))?;
        all.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(String::from),
        );
    }
    all.extend(opts.label.iter().cloned());
    Ok(spec::labels(&all)?)
}

/// The limit flags of the command line, for the cgroup module.
pub fn limit_flags(opts: &ContainerOpts) -> crate::cgroup::LimitFlags {
    crate::cgroup::LimitFlags {
        memory: opts.memory.clone(),
        memory_swap: opts.memory_swap.clone(),
        cpus: opts.cpus,
        cpu_quota: opts.cpu_quota,
        cpu_period: opts.cpu_period,
        cpu_shares: opts.cpu_shares,
        cpu_weight: opts.cpu_weight,
        pids_limit: opts.pids_limit,
        cpuset_cpus: opts.cpuset_cpus.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn opts(image: &str, cmd: &[&str]) -> ContainerOpts {
        ContainerOpts {
            image: image.into(),
            command: cmd.iter().map(|s| s.to_string()).collect(),
            userns: "auto".into(),
            ..Default::default()
        }
    }

    fn image() -> ImageDefaults {
        ImageDefaults {
            entrypoint: vec!["/entry".into()],
            cmd: vec!["default".into()],
            env: vec!["PATH=/bin".into(), "A=1".into()],
            working_dir: "app".into(),
            user: "nobody".into(),
            stop_signal: None,
            volumes: Vec::new(),
            healthcheck: None,
        }
    }

    fn no_volumes(name: Option<&str>) -> Result<PathBuf, String> {
        Err(format!("no volume {name:?}"))
    }

    fn plan() -> crate::network::Plan {
        crate::network::Plan {
            mode: crate::network::Mode::None,
            ports: vec![],
        }
    }

    fn build_fails(o: &ContainerOpts) -> bool {
        build(o, &image(), Rootfs::default(), plan(), &no_volumes, &|_| {
            None
        })
        .is_err()
    }

    fn build_ok(o: &ContainerOpts, i: &ImageDefaults) -> Spec {
        build(o, i, Rootfs::default(), plan(), &no_volumes, &|k| {
            (k == "HOSTVAR").then(|| "fromhost".to_string())
        })
        .unwrap()
    }

    #[test]
    fn idmap_is_taken_off_volume_options_with_its_value() {
        let t = |v| take_option_value(v, "idmap");
        assert_eq!(t("/a:/b"), ("/a:/b".into(), None));
        assert_eq!(t("/a:/b:ro"), ("/a:/b:ro".into(), None));
        assert_eq!(t("/a:/b:idmap"), ("/a:/b".into(), Some(String::new())));
        assert_eq!(
            t("/a:/b:ro,idmap=uids=0-1-2;gids=0-3-2,z"),
            ("/a:/b:ro,z".into(), Some("uids=0-1-2;gids=0-3-2".into()))
        );
    }

    #[test]
    fn docker_command_rules() {
        let i = image();
        assert_eq!(build_ok(&opts("x", &[]), &i).args, ["/entry", "default"]);
        assert_eq!(
            build_ok(&opts("x", &["a", "b"]), &i).args,
            ["/entry", "a", "b"]
        );
        let mut o = opts("x", &[]);
        o.entrypoint = Some("/other".into());
        assert_eq!(build_ok(&o, &i).args, ["/other"]);
        o.command = vec!["z".into()];
        assert_eq!(build_ok(&o, &i).args, ["/other", "z"]);
        o.entrypoint = Some(String::new());
        assert_eq!(build_ok(&o, &i).args, ["z"]);
        o.entrypoint = Some(r#"["/bin/sh","-c"]"#.into());
        assert_eq!(build_ok(&o, &i).args, ["/bin/sh", "-c", "z"]);
        let mut none = opts("x", &[]);
        none.entrypoint = Some(String::new());
        assert!(build(&none, &i, Rootfs::default(), plan(), &no_volumes, &|_| None).is_err());
    }

    #[test]
    fn env_overrides_in_order() {
        let t = tempfile::tempdir().unwrap();
        let file = t.path().join("env");
        std::fs::write(&file, "# comment\n\nA=file\nB=file\nHOSTVAR\nMISSING\n").unwrap();
        let mut o = opts("x", &[]);
        o.env_file = vec![file];
        o.env = vec!["B=cli".into(), "C=c=d".into()];
        let s = build_ok(&o, &image());
        assert_eq!(
            s.env,
            ["PATH=/bin", "A=file", "B=cli", "HOSTVAR=fromhost", "C=c=d"]
        );
        o.env = vec!["BAD KEY=1".into()];
        assert!(build_fails(&o));
    }

    #[test]
    fn many_env_entries_merge_linearly_later_wins_in_place() {
        let t = tempfile::tempdir().unwrap();
        let file = t.path().join("env");
        let n = 100_000;
        let mut text = String::from("DUP=first\n");
        for i in 0..n {
            text.push_str(&format!("K{i}=v{i}\n"));
        }
        text.push_str("DUP=last\nA=file\n");
        std::fs::write(&file, text).unwrap();
        let mut img = image();
        img.env = (0..n).map(|i| format!("I{i}=x")).collect();
        img.env.push("A=image".into());
        let mut o = opts("x", &[]);
        o.env_file = vec![file];
        o.env = vec!["K5=cli".into()];
        let s = build_ok(&o, &img);
        assert_eq!(s.env.len(), 2 * n + 2);
        assert_eq!(s.env[0], "I0=x");
        assert_eq!(s.env[n], "A=file");
        assert_eq!(s.env[n + 1], "DUP=last");
        assert_eq!(s.env[n + 2 + 5], "K5=cli");
        assert_eq!(s.env[2 * n + 1], format!("K{}=v{}", n - 1, n - 1));
    }

    #[test]
    fn stop_signals_are_checked() {
        let mut o = opts("x", &[]);
        let mut img = image();
        img.stop_signal = Some("SIGQUIT".into());
        assert_eq!(build_ok(&o, &img).stop_signal.as_deref(), Some("SIGQUIT"));
        for bogus in ["99", "SIGBOGUS", "0", ""] {
            img.stop_signal = Some(bogus.into());
            assert_eq!(build_ok(&o, &img).stop_signal, None, "{bogus}");
        }
        o.stop_signal = Some("RTMIN+3".into());
        assert_eq!(build_ok(&o, &img).stop_signal.as_deref(), Some("RTMIN+3"));
        for bogus in ["99", "SIGBOGUS", "0", ""] {
            o.stop_signal = Some(bogus.into());
            let e = build(&o, &img, Rootfs::default(), plan(), &no_volumes, &|_| None)
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with(&format!("--stop-signal {bogus}: unknown signal")),
                "{e}"
            );
        }
    }

    #[test]
    fn workdir_user_hostname() {
        let s = build_ok(&opts("x", &[]), &image());
        assert_eq!(s.cwd, "/app");
        assert_eq!(s.user, "nobody");
        let mut o = opts("x", &[]);
        o.workdir = Some("/srv/../data/".into());
        o.user = Some("1000:1000".into());
        let s = build_ok(&o, &image());
        assert_eq!(s.cwd, "/data");
        assert_eq!(s.user, "1000:1000");
        o.workdir = Some("relative".into());
        assert!(build_fails(&o));
    }

    #[test]
    fn volumes_and_tmpfs() {
        let t = tempfile::tempdir().unwrap();
        let vols = |name: Option<&str>| -> Result<PathBuf, String> {
            let d = t.path().join(name.unwrap_or("anon")).join("_data");
            std::fs::create_dir_all(&d).map_err(|e| e.to_string())?;
            Ok(d)
        };
        let mut o = opts("x", &[]);
        o.volume = vec![
            format!("{}:/data:ro", t.path().display()),
            "cache:/cache".into(),
        ];
        o.tmpfs = vec!["/run:size=1m,mode=755".into()];
        let s = build(&o, &image(), Rootfs::default(), plan(), &vols, &|_| None).unwrap();
        assert_eq!(
            s.mounts[0],
            Mount::Bind {
                source: t.path().canonicalize().unwrap(),
                target: "/data".into(),
                readonly: true
            }
        );
        assert!(t.path().join("cache/_data").is_dir());
        assert_eq!(
            s.mounts[2],
            Mount::Tmpfs {
                target: "/run".into(),
                options: vec!["size=1m".into(), "mode=755".into()]
            }
        );
        // `-v /path` and the image's VOLUMEs not covered by a mount: anonymous volumes.
        let mut o = opts("x", &[]);
        o.volume = vec!["/scratch".into(), "cache:/var/lib/db".into()];
        let mut img = image();
        img.volumes = vec!["/var/lib/db".into(), "/var/log/app/".into()];
        let s = build(&o, &img, Rootfs::default(), plan(), &vols, &|_| None).unwrap();
        let anon = t.path().join("anon/_data");
        let targets: Vec<(&str, &Path)> = s
            .mounts
            .iter()
            .map(|m| match m {
                Mount::Bind { source, target, .. } => (target.as_str(), source.as_path()),
                Mount::Tmpfs { target, .. } => (target.as_str(), Path::new("")),
            })
            .collect();
        assert_eq!(
            targets,
            vec![
                ("/scratch", anon.as_path()),
                ("/var/lib/db", t.path().join("cache/_data").as_path()),
                ("/var/log/app", anon.as_path()),
            ]
        );
        for bad in [
            "/nonexistent-src:/x",
            "rel:x",
            "/tmp:/x:bogus",
            "x",
            "rel/x",
        ] {
            let mut o = opts("x", &[]);
            o.volume = vec![bad.into()];
            assert!(
                build(&o, &image(), Rootfs::default(), plan(), &vols, &|_| None).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn security_options() {
        let mut o = opts("x", &[]);
        o.security_opt = vec!["no-new-privileges".into(), "seccomp=unconfined".into()];
        let s = build_ok(&o, &image());
        assert!(s.no_new_privileges);
        assert_eq!(s.seccomp, Seccomp::Unconfined);
        o.security_opt = vec!["seccomp=/x.json".into()];
        assert!(build_fails(&o));
        let mut p = opts("x", &[]);
        p.privileged = true;
        let s = build_ok(&p, &image());
        assert_eq!(s.seccomp, Seccomp::Unconfined);
        assert!(s.caps.contains(&"CAP_SYS_ADMIN".to_string()));
    }

    /// `generate systemd --new` writes flags that make the same container again: every
    /// setting set, recreated from the unit's argv, gives the same spec.
    #[test]
    fn a_generated_unit_recreates_every_setting() {
        use clap::Parser;
        let t = tempfile::tempdir().unwrap();
        let data = t.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let d = data.display().to_string();
        let (pid, cid) = (
            t.path().join("pid").display().to_string(),
            t.path().join("cid").display().to_string(),
        );
        let argv: Vec<String> = [
            "--name",
            "web",
            "-i",
            "-t",
            "-e",
            "A=2",
            "--env-host",
            "-w",
            "/srv",
            "-u",
            "1000:1000",
            "-h",
            "web",
            "-v",
            &format!("{d}:/data:ro,U"),
            "-v",
            &format!("{d}:/ov:O"),
            "--tmpfs",
            "/tmp:size=64m",
            "--ulimit",
            "nofile=1024:2048",
            "--umask",
            "0027",
            "--group-add",
            "wheel",
            "--sysctl",
            "net.ipv4.ip_forward=1",
            "--shm-size",
            "128m",
            "--tz",
            "Europe/Berlin",
            "--log-driver",
            "json-file",
            "--log-opt",
            "max-size=1m",
            "--annotation",
            "team=infra",
            "--timeout",
            "30",
            "--pidfile",
            &pid,
            "--requires",
            "db,cache",
            "--cgroups",
            "disabled",
            "--cgroupns",
            "host",
            "--attach",
            "stdout",
            "--preserve-fds",
            "2",
            "--hostuser",
            "root",
            "--passwd=false",
            "--passwd-entry",
            "app:x:$UID:$GID:$NAME:/:/bin/sh",
            "--cidfile",
            &cid,
            "--uidmap",
            "0:1:1000",
            "--gidmap",
            "0:1:1000",
            "--mount",
            "type=image,src=alpine,dst=/img",
            "--network",
            "pasta:--mtu,1400",
            "-p",
            "8080:80",
            "--dns",
            "192.0.2.1",
            "--add-host",
            "db:192.0.2.2",
            "--memory",
            "64m",
            "--cpus",
            "0.5",
            "--pids-limit",
            "32",
            "--cap-add",
            "NET_ADMIN",
            "--cap-drop",
            "CHOWN",
            "--security-opt",
            "no-new-privileges",
            "--init",
            "--read-only",
            "--stop-signal",
            "SIGQUIT",
            "--health-cmd",
            "true",
            "--health-interval",
            "5s",
            "-l",
            "app=web",
            "alpine",
            "sh",
            "-c",
            "echo hi",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let parse = |args: &[String]| -> ContainerOpts {
            let words = ["box", "run"]
                .iter()
                .map(|s| s.to_string())
                .chain(args.iter().cloned());
            match crate::cli::args::Cli::try_parse_from(words)
                .unwrap()
                .command
            {
                crate::cli::args::Command::Run(r) => r.container,
                _ => unreachable!(),
            }
        };
        let mut net = plan();
        net.mode = crate::network::Mode::Pasta;
        let make = |o: &ContainerOpts| {
            build(
                o,
                &image(),
                Rootfs::default(),
                net.clone(),
                &no_volumes,
                &|_| None,
            )
            .unwrap()
        };
        let first = parse(&argv);
        let spec = make(&first);
        let set = &spec.settings;
        assert!(set.env_host && set.no_passwd && set.preserve_fds == 2);
        assert_eq!(set.hostusers, ["root"]);
        let config = crate::container::Config {
            id: "a".repeat(64),
            name: "web".into(),
            image: "alpine".into(),
            image_name: "alpine".into(),
            image_id: String::new(),
            created: String::new(),
            command: spec.args.clone(),
            autoremove: false,
            labels: labels(&first).unwrap(),
            spec: spec.clone(),
        };
        let args = crate::systemd::unit::run_args(&config, &image().env, Path::new("/nonexistent"));
        let again = parse(&args);
        assert_eq!(labels(&again).unwrap(), config.labels);
        let mut respec = make(&again);
        assert_eq!(respec.sdnotify, spec.sdnotify);
        respec.stop_timeout = spec.stop_timeout;
        assert_eq!(respec, spec, "{args:?}");
        // The host's variables come again from --env-host, not as -e.
        assert!(!args.iter().any(|a| a.starts_with("HOME=")), "{args:?}");
    }

    #[test]
    fn passwd_entry_templates() {
        let mut o = opts("x", &[]);
        o.user = Some("1000:100".into());
        o.extra.passwd_entry = Some("app:x:$UID:$GID:$NAME:/home/app:/bin/sh".into());
        let s = build_ok(&o, &image());
        assert_eq!(
            s.settings.passwd_entries,
            ["app:x:1000:100:container user:/home/app:/bin/sh"]
        );
        o.extra.passwd_entry = None;
        let s = build_ok(&o, &image());
        assert_eq!(
            s.settings.passwd_entries,
            ["1000:*:1000:100:container user:/:/bin/sh"]
        );
        for bad in [
            "app:x:$UID",
            "app:x:0:0:a:/:/bin/sh",
            "a:b:$UID:$GID:c:d:e:f",
        ] {
            o.extra.passwd_entry = Some(bad.into());
            assert!(build_fails(&o), "{bad}");
        }
    }

    #[test]
    fn clean_paths() {
        assert_eq!(clean_path("/a/./b/../c/"), "/a/c");
        assert_eq!(clean_path("/../.."), "/");
    }
}
