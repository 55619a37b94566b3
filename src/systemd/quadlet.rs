//! Quadlet-style units: a `.container` file (Podman Quadlet's keys, `PodmanArgs=` also
//! spelled `BoxArgs=`) becomes a systemd service that runs the container with box in the
//! foreground, as `generate systemd --new` does: `Type=notify` (box sends READY=1 with
//! MAINPID=box once the command runs, or the container does with `Notify=true`, or the
//! first healthy check does with `Notify=healthy`), `ExecStop` through `box stop`,
//! `KillMode=mixed`, `Delegate=yes`, the output in the journal. `[Unit]`, `[Service]`,
//! `[Install]` (and any other group) pass through; `[Container]` is kept as
//! `[X-Container]` for reference, as Quadlet does.
//!
//! `.volume` and `.image` files are oneshot units here; `.network`, `.pod` and `.kube` files
//! have a module each (`quadlet/`).
//!
//! A pure function of the file's text (`container`): the generator (`commands::quadlet`)
//! finds the files and writes the units. Unknown keys are warnings naming file:line;
//! malformed lines and a missing `Image=` are errors naming file:line.
use super::unit::quote;

mod kube;
mod network;
mod pod;

pub use kube::kube;
pub use network::{network, network_name};
pub use pod::{pod, pod_name};

/// One unit file to translate.
#[derive(Debug, Clone)]
pub struct Source<'a> {
    /// Where it was read from (for messages and `SourcePath=`).
    pub path: &'a str,
    /// Its file name, e.g. `web.container`.
    pub name: &'a str,
    pub text: &'a str,
}

/// How to call box in the unit.
#[derive(Debug, Clone)]
pub struct Options {
    pub box_path: String,
    /// Global options to repeat (e.g. `--root DIR`).
    pub global_args: Vec<String>,
    /// The volume each `.volume` file found beside it names (`data.volume` → its
    /// `VolumeName=`, else `systemd-data`), for `Volume=data.volume:/dest`.
    pub volume_names: std::collections::BTreeMap<String, String>,
    /// The image each `.image` file pulls (`ImageTag=`, else `Image=`), for
    /// `Image=NAME.image`.
    pub image_names: std::collections::BTreeMap<String, String>,
    /// The network each `.network` file creates (`NetworkName=`, else `systemd-BASE`),
    /// for `Network=NAME.network`.
    pub network_names: std::collections::BTreeMap<String, String>,
    /// The pod each `.pod` file creates (`PodName=`, else `systemd-BASE`), for
    /// `Pod=NAME.pod`.
    pub pod_names: std::collections::BTreeMap<String, String>,
    /// The container units each `.pod` file's containers become (the pod unit wants
    /// them, as Quadlet's does).
    pub pod_members: std::collections::BTreeMap<String, Vec<String>>,
}

/// The generated service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    /// e.g. `web.service`.
    pub unit_name: String,
    pub text: String,
    pub warnings: Vec<String>,
}

struct Entry {
    line: usize,
    key: String,
    value: String,
    raw: String,
}

struct Group {
    name: String,
    entries: Vec<Entry>,
}

/// systemd's unit-file syntax: groups, `Key=Value`, comments, `\` continuations.
fn parse(src: &Source) -> Result<Vec<Group>, String> {
    let mut groups: Vec<Group> = Vec::new();
    let mut lines = src.text.lines().enumerate().peekable();
    while let Some((i, line)) = lines.next() {
        let n = i + 1;
        let mut text = line.trim().to_string();
        while text.ends_with('\\') {
            text.pop();
            match lines.next() {
                Some((_, next)) => {
                    text.push(' ');
                    text.push_str(next.trim());
                }
                None => break,
            }
        }
        if text.is_empty() || text.starts_with('#') || text.starts_with(';') {
            continue;
        }
        if let Some(name) = text.strip_prefix('[') {
            let Some(name) = name.strip_suffix(']') else {
                return Err(format!("{}:{n}: invalid group header {text:?}", src.path));
            };
            groups.push(Group {
                name: name.to_string(),
                entries: Vec::new(),
            });
            continue;
        }
        let Some((k, v)) = text.split_once('=') else {
            return Err(format!(
                "{}:{n}: expected KEY=VALUE, found {text:?}",
                src.path
            ));
        };
        let Some(g) = groups.last_mut() else {
            return Err(format!(
                "{}:{n}: {text:?} is outside any group: start with [Container]",
                src.path
            ));
        };
        g.entries.push(Entry {
            line: n,
            key: k.trim().to_string(),
            value: v.trim().to_string(),
            raw: text.clone(),
        });
    }
    Ok(groups)
}

/// systemd's word splitting (`Exec=`, `PodmanArgs=`, `Label=`, `Environment=`): spaces
/// separate, double and single quotes group, `\` escapes.
pub fn split_words(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (_, '\\') => {
                let Some(e) = chars.next() else {
                    return Err("a trailing backslash".into());
                };
                cur.push(match e {
                    'n' => '\n',
                    't' => '\t',
                    e => e,
                });
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err("an unterminated quote".into());
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// The command line `box GLOBAL_ARGS WORDS...` as a unit's Exec line writes it.
fn box_cmd(o: &Options, words: &[String]) -> String {
    std::iter::once(quote(&o.box_path))
        .chain(o.global_args.iter().map(|a| quote(a)))
        .chain(words.iter().map(|a| quote(a)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The header, `[X-KIND]` (the translated group, kept for reference as Quadlet does) and
/// the start of `[Unit]` with the file's own `[Unit]` lines.
fn head(src: &Source, groups: &[Group], kind: &str) -> String {
    let mut text = format!(
        "# Automatically generated by box quadlet (box {}) from\n# {}\n\n[X-{kind}]\n",
        env!("CARGO_PKG_VERSION"),
        src.path
    );
    for e in groups
        .iter()
        .filter(|g| g.name == kind)
        .flat_map(|g| &g.entries)
    {
        text.push_str(&e.raw);
        text.push('\n');
    }
    text.push_str("\n[Unit]\n");
    for e in groups
        .iter()
        .filter(|g| g.name == "Unit")
        .flat_map(|g| &g.entries)
    {
        text.push_str(&e.raw);
        text.push('\n');
    }
    text
}

/// The file's groups other than `[KIND]` and `[Unit]`, as they are (`[Service]` first: its
/// lines come after the generated ones, so they win).
fn tail(groups: &[Group], kind: &str) -> String {
    let mut text = String::new();
    for g in groups.iter().filter(|g| g.name == "Service") {
        for e in &g.entries {
            text.push_str(&e.raw);
            text.push('\n');
        }
    }
    for g in groups
        .iter()
        .filter(|g| g.name != kind && !matches!(g.name.as_str(), "Unit" | "Service"))
    {
        text.push_str(&format!("\n[{}]\n", g.name));
        for e in &g.entries {
            text.push_str(&e.raw);
            text.push('\n');
        }
    }
    text
}

/// The last value of `key` in group `kind`.
fn last_value(groups: &[Group], kind: &str, key: &str) -> Option<String> {
    groups
        .iter()
        .filter(|g| g.name == kind)
        .flat_map(|g| &g.entries)
        .rev()
        .find(|e| e.key == key)
        .map(|e| e.value.clone())
}

/// `Network=`: a `NAME.network` file beside it is its network's name and the unit that
/// creates it; anything else is a mode or network name as it is.
fn network_of(src: &Source, e: &Entry, o: &Options) -> Result<(String, Option<String>), String> {
    let Some(base) = e.value.strip_suffix(".network") else {
        return Ok((e.value.clone(), None));
    };
    let Some(name) = o.network_names.get(&e.value) else {
        return Err(format!(
            "{}:{}: Network={}: no such .network file beside it",
            src.path, e.line, e.value
        ));
    };
    Ok((name.clone(), Some(format!("{base}-network.service"))))
}

/// `Pod=NAME.pod`: the pod's name and its unit.
fn pod_of(src: &Source, e: &Entry, o: &Options) -> Result<(String, String), String> {
    let name = e
        .value
        .strip_suffix(".pod")
        .and_then(|base| o.pod_names.get(&e.value).map(|n| (base, n)));
    match name {
        Some((base, n)) => Ok((n.clone(), format!("{base}-pod.service"))),
        None => Err(format!(
            "{}:{}: Pod={}: name a .pod file beside it (pods of box pod create are not Quadlet's)",
            src.path, e.line, e.value
        )),
    }
}

/// Quadlet's booleans.
fn bool_value(src: &Source, e: &Entry) -> Result<bool, String> {
    match e.value.to_ascii_lowercase().as_str() {
        "1" | "yes" | "true" | "on" => Ok(true),
        "0" | "no" | "false" | "off" => Ok(false),
        v => Err(format!(
            "{}:{}: {}={v}: use true or false",
            src.path, e.line, e.key
        )),
    }
}

/// Keys Quadlet knows that box does not do (yet): a warning, the rest still works.
const UNSUPPORTED: &[&str] = &[
    "Rootfs",
    "Secret",
    "Mount",
    "IP",
    "IP6",
    "Annotation",
    "Timezone",
    "Ulimit",
    "Sysctl",
    "SeccompProfile",
    "Mask",
    "Unmask",
    "LogDriver",
    "ExposeHostPort",
    "UIDMap",
    "GIDMap",
    "SubUIDMap",
    "SubGIDMap",
    "HealthStartupCmd",
    "HealthStartupInterval",
    "HealthStartupRetries",
    "HealthStartupSuccess",
    "HealthStartupTimeout",
    "SecurityLabelType",
    "SecurityLabelLevel",
    "SecurityLabelFileType",
    "SecurityLabelNested",
];

/// Translate a `.container` file.
pub fn container(src: &Source, o: &Options) -> Result<Generated, String> {
    let groups = parse(src)?;
    let mut warnings = Vec::new();
    let Some(ctr) = groups.iter().find(|g| g.name == "Container") else {
        return Err(format!("{}: no [Container] group", src.path));
    };
    let base = src.name.strip_suffix(".container").unwrap_or(src.name);
    let mut name = format!("systemd-{base}");
    let mut image: Option<String> = None;
    let mut exec: Vec<String> = Vec::new();
    let mut extra: Vec<String> = Vec::new();
    let mut args: Vec<String> = Vec::new();
    let mut user: Option<String> = None;
    let mut group: Option<String> = None;
    let mut sdnotify = "ready";
    let mut stop_timeout: u64 = 10;
    // Units this one needs first (the `.volume` ones it mounts).
    let mut needs: Vec<String> = Vec::new();
    // The `.pod` unit it is bound to.
    let mut binds: Vec<String> = Vec::new();
    let words = |e: &Entry| -> Result<Vec<String>, String> {
        split_words(&e.value).map_err(|m| format!("{}:{}: {}: {m}", src.path, e.line, e.key))
    };
    let bool_of = |e: &Entry| -> Result<bool, String> {
        match e.value.to_ascii_lowercase().as_str() {
            "1" | "yes" | "true" | "on" => Ok(true),
            "0" | "no" | "false" | "off" => Ok(false),
            v => Err(format!(
                "{}:{}: {}={v}: use true or false",
                src.path, e.line, e.key
            )),
        }
    };
    for e in &ctr.entries {
        let mut flag = |f: &str, v: &str| {
            args.push(f.to_string());
            args.push(v.to_string());
        };
        match e.key.as_str() {
            "Image" if e.value.ends_with(".image") => {
                let Some(name) = o.image_names.get(&e.value) else {
                    return Err(format!(
                        "{}:{}: Image={}: no such .image file beside it",
                        src.path, e.line, e.value
                    ));
                };
                needs.push(format!(
                    "{}-image.service",
                    e.value.trim_end_matches(".image")
                ));
                image = Some(name.clone());
            }
            "Image" => image = Some(e.value.clone()),
            "ContainerName" => name = e.value.clone(),
            "Exec" => exec = words(e)?,
            "PodmanArgs" | "BoxArgs" => extra.extend(words(e)?),
            "PublishPort" => flag("-p", &e.value),
            "Volume" => match e.value.split_once(':') {
                Some((unit, rest)) if unit.ends_with(".volume") => {
                    let vol =
                        o.volume_names.get(unit).cloned().unwrap_or_else(|| {
                            format!("systemd-{}", unit.trim_end_matches(".volume"))
                        });
                    needs.push(format!(
                        "{}-volume.service",
                        unit.trim_end_matches(".volume")
                    ));
                    flag("-v", &format!("{vol}:{rest}"));
                }
                _ => flag("-v", &e.value),
            },
            "Tmpfs" => flag("--tmpfs", &e.value),
            "Environment" => {
                for w in words(e)? {
                    flag("-e", &w);
                }
            }
            "EnvironmentFile" => flag("--env-file", &e.value),
            "EnvironmentHost" => {
                if bool_of(e)? {
                    warnings.push(format!(
                        "{}:{}: EnvironmentHost=true is not supported by box: ignored",
                        src.path, e.line
                    ));
                }
            }
            "Label" => {
                for w in words(e)? {
                    flag("-l", &w);
                }
            }
            "AutoUpdate" => match e.value.as_str() {
                "registry" | "local" => {
                    flag("-l", &format!("io.containers.autoupdate={}", e.value))
                }
                v => {
                    return Err(format!(
                        "{}:{}: AutoUpdate={v}: use registry or local",
                        src.path, e.line
                    ));
                }
            },
            "Network" => {
                let (net, unit) = network_of(src, e, o)?;
                needs.extend(unit);
                flag("--network", &net);
            }
            "Pod" => {
                let (pod, unit) = pod_of(src, e, o)?;
                binds.push(unit);
                flag("--pod", &pod);
            }
            "HealthCmd" => flag("--health-cmd", &e.value),
            "HealthInterval" => flag("--health-interval", &e.value),
            "HealthTimeout" => flag("--health-timeout", &e.value),
            "HealthRetries" => flag("--health-retries", &e.value),
            "HealthStartPeriod" => flag("--health-start-period", &e.value),
            "HealthOnFailure" => flag("--health-on-failure", &e.value),
            "Notify" => {
                sdnotify = match e.value.as_str() {
                    "healthy" => "healthy",
                    _ if bool_of(e)? => "container",
                    _ => "ready",
                }
            }
            "User" => user = Some(e.value.clone()),
            "Group" => group = Some(e.value.clone()),
            "WorkingDir" => flag("-w", &e.value),
            "HostName" => flag("-h", &e.value),
            "Entrypoint" => flag("--entrypoint", &e.value),
            "DNS" => flag("--dns", &e.value),
            "AddHost" => flag("--add-host", &e.value),
            "AddCapability" => {
                for w in words(e)? {
                    flag("--cap-add", &w);
                }
            }
            "DropCapability" => {
                for w in words(e)? {
                    flag("--cap-drop", &w);
                }
            }
            "PidsLimit" => flag("--pids-limit", &e.value),
            "StopTimeout" => {
                stop_timeout = e.value.parse().map_err(|_| {
                    format!(
                        "{}:{}: StopTimeout={}: give whole seconds",
                        src.path, e.line, e.value
                    )
                })?;
            }
            "ReadOnly" => {
                if bool_of(e)? {
                    args.push("--read-only".into());
                }
            }
            "RunInit" => {
                if bool_of(e)? {
                    args.push("--init".into());
                }
            }
            "NoNewPrivileges" => {
                if bool_of(e)? {
                    flag("--security-opt", "no-new-privileges");
                }
            }
            "UserNS" => flag("--userns", &e.value),
            "SecurityLabelDisable" => {} // no SELinux labels in rootless box
            k if UNSUPPORTED.contains(&k) => warnings.push(format!(
                "{}:{}: {k}= is not supported by box: ignored",
                src.path, e.line
            )),
            k => warnings.push(format!(
                "{}:{}: unsupported key '{k}' in group 'Container': ignored",
                src.path, e.line
            )),
        }
    }
    let Some(image) = image else {
        return Err(format!(
            "{}: no Image= in [Container]: name the image to run",
            src.path
        ));
    };
    if let Some(u) = user {
        let ug = match group {
            Some(g) => format!("{u}:{g}"),
            None => u,
        };
        args.push("-u".into());
        args.push(ug);
    }

    let exe = quote(&o.box_path);
    let cmd = |words: &[String]| {
        std::iter::once(exe.clone())
            .chain(o.global_args.iter().map(|a| quote(a)))
            .chain(words.iter().map(|a| quote(a)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let t = stop_timeout.to_string();
    let mut run = s(&[
        "run",
        "--rm",
        &format!("--sdnotify={sdnotify}"),
        "--stop-timeout",
        &t,
        "--name",
        &name,
    ]);
    run.extend(args);
    run.extend(extra);
    run.push(image);
    run.extend(exec);

    let service = groups.iter().find(|g| g.name == "Service");
    let has =
        |g: Option<&Group>, key: &str| g.is_some_and(|g| g.entries.iter().any(|e| e.key == key));

    let mut text = format!(
        "# Automatically generated by box quadlet (box {}) from\n# {}\n\n",
        env!("CARGO_PKG_VERSION"),
        src.path
    );
    text.push_str("[X-Container]\n");
    for e in &ctr.entries {
        text.push_str(&e.raw);
        text.push('\n');
    }
    text.push_str("\n[Unit]\n");
    if let Some(u) = groups.iter().find(|g| g.name == "Unit") {
        for e in &u.entries {
            text.push_str(&e.raw);
            text.push('\n');
        }
    }
    text.push_str("Wants=network-online.target\nAfter=network-online.target\n");
    for n in &needs {
        text.push_str(&format!("Requires={n}\nAfter={n}\n"));
    }
    for n in &binds {
        text.push_str(&format!("BindsTo={n}\nAfter={n}\n"));
    }
    text.push_str(&format!("SourcePath={}\n", src.path));
    text.push_str("\n[Service]\n");
    text.push_str("Environment=BOX_SYSTEMD_UNIT=%n\n");
    text.push_str("Type=notify\nNotifyAccess=all\nDelegate=yes\nKillMode=mixed\n");
    text.push_str("SyslogIdentifier=%N\n");
    if !has(service, "TimeoutStopSec") {
        text.push_str(&format!("TimeoutStopSec={}\n", stop_timeout + 10));
    }
    if !has(service, "Restart") {
        text.push_str("Restart=on-failure\n");
    }
    text.push_str(&format!(
        "ExecStartPre=-{}\n",
        cmd(&s(&["rm", "-f", &name]))
    ));
    text.push_str(&format!("ExecStart={}\n", cmd(&run)));
    text.push_str(&format!(
        "ExecStop={}\n",
        cmd(&s(&["stop", "-t", &t, &name]))
    ));
    text.push_str(&format!(
        "ExecStopPost=-{}\n",
        cmd(&s(&["rm", "-f", &name]))
    ));
    if let Some(svc) = service {
        for e in &svc.entries {
            text.push_str(&e.raw);
            text.push('\n');
        }
    }
    for g in groups
        .iter()
        .filter(|g| !matches!(g.name.as_str(), "Container" | "Unit" | "Service"))
    {
        text.push_str(&format!("\n[{}]\n", g.name));
        for e in &g.entries {
            text.push_str(&e.raw);
            text.push('\n');
        }
    }
    Ok(Generated {
        unit_name: format!("{base}.service"),
        text,
        warnings,
    })
}

/// The `.pod` file a `.container` file's `Pod=` names, if any.
pub fn container_pod(src: &Source) -> Result<Option<String>, String> {
    Ok(last_value(&parse(src)?, "Container", "Pod"))
}

/// The volume a `.volume` file names: its `VolumeName=`, else `systemd-BASE`.
pub fn volume_name(src: &Source) -> Result<String, String> {
    let groups = parse(src)?;
    let base = src.name.strip_suffix(".volume").unwrap_or(src.name);
    Ok(groups
        .iter()
        .filter(|g| g.name == "Volume")
        .flat_map(|g| &g.entries)
        .rev()
        .find(|e| e.key == "VolumeName")
        .map(|e| e.value.clone())
        .unwrap_or_else(|| format!("systemd-{base}")))
}

/// Translate a `.volume` file: a oneshot `BASE-volume.service` that makes sure the
/// volume exists (with its `Label=`s when it creates it).
pub fn volume(src: &Source, o: &Options) -> Result<Generated, String> {
    let groups = parse(src)?;
    let Some(vol) = groups.iter().find(|g| g.name == "Volume") else {
        return Err(format!("{}: no [Volume] group", src.path));
    };
    let base = src.name.strip_suffix(".volume").unwrap_or(src.name);
    let name = volume_name(src)?;
    let mut warnings = Vec::new();
    for e in &vol.entries {
        match e.key.as_str() {
            "VolumeName" => {}
            k => warnings.push(format!(
                "{}:{}: unsupported key '{k}' in group 'Volume': ignored",
                src.path, e.line
            )),
        }
    }
    let exe = std::iter::once(quote(&o.box_path))
        .chain(o.global_args.iter().map(|a| quote(a)))
        .collect::<Vec<_>>()
        .join(" ");
    let mut text = format!(
        "# Automatically generated by box quadlet (box {}) from\n# {}\n\n[X-Volume]\n",
        env!("CARGO_PKG_VERSION"),
        src.path
    );
    for e in &vol.entries {
        text.push_str(&e.raw);
        text.push('\n');
    }
    text.push_str("\n[Unit]\n");
    for g in groups.iter().filter(|g| g.name == "Unit") {
        for e in &g.entries {
            text.push_str(&e.raw);
            text.push('\n');
        }
    }
    text.push_str(&format!("SourcePath={}\n", src.path));
    text.push_str("\n[Service]\nType=oneshot\nRemainAfterExit=yes\nSyslogIdentifier=%N\n");
    text.push_str(&format!(
        "ExecCondition=/bin/sh -c {}\n",
        quote(&format!("! {exe} volume exists {}", quote(&name)).replace("$$", "$"))
    ));
    text.push_str(&format!("ExecStart={exe} volume create {}\n", quote(&name)));
    for g in groups
        .iter()
        .filter(|g| !matches!(g.name.as_str(), "Volume" | "Unit"))
    {
        text.push_str(&format!("\n[{}]\n", g.name));
        for e in &g.entries {
            text.push_str(&e.raw);
            text.push('\n');
        }
    }
    Ok(Generated {
        unit_name: format!("{base}-volume.service"),
        text,
        warnings,
    })
}

/// The image an `.image` file pulls: its `ImageTag=`, else its `Image=`.
pub fn image_name(src: &Source) -> Result<Option<String>, String> {
    let groups = parse(src)?;
    let entries: Vec<&Entry> = groups
        .iter()
        .filter(|g| g.name == "Image")
        .flat_map(|g| &g.entries)
        .collect();
    let last = |k: &str| {
        entries
            .iter()
            .rev()
            .find(|e| e.key == k)
            .map(|e| e.value.clone())
    };
    Ok(last("ImageTag").or_else(|| last("Image")))
}

/// Translate an `.image` file: a oneshot `BASE-image.service` that pulls the image.
pub fn image(src: &Source, o: &Options) -> Result<Generated, String> {
    let groups = parse(src)?;
    let Some(img) = groups.iter().find(|g| g.name == "Image") else {
        return Err(format!("{}: no [Image] group", src.path));
    };
    let base = src.name.strip_suffix(".image").unwrap_or(src.name);
    let mut warnings = Vec::new();
    let mut reference = None;
    let mut pull: Vec<String> = vec!["pull".into()];
    let (mut os, mut arch, mut variant) = (None, None, None);
    for e in &img.entries {
        match e.key.as_str() {
            "Image" => reference = Some(e.value.clone()),
            "ImageTag" => {}
            "TLSVerify" => pull.push(format!("--tls-verify={}", e.value)),
            "OS" => os = Some(e.value.clone()),
            "Arch" => arch = Some(e.value.clone()),
            "Variant" => variant = Some(e.value.clone()),
            k => warnings.push(format!(
                "{}:{}: unsupported key '{k}' in group 'Image': ignored",
                src.path, e.line
            )),
        }
    }
    let Some(reference) = reference else {
        return Err(format!(
            "{}: no Image= in [Image]: name the image to pull",
            src.path
        ));
    };
    if os.is_some() || arch.is_some() {
        let mut p = format!(
            "{}/{}",
            os.unwrap_or_else(|| "linux".into()),
            arch.unwrap_or_else(|| std::env::consts::ARCH.into())
        );
        if let Some(v) = variant {
            p = format!("{p}/{v}");
        }
        pull.push("--platform".into());
        pull.push(p);
    }
    pull.push(reference);
    let cmd = std::iter::once(quote(&o.box_path))
        .chain(o.global_args.iter().map(|a| quote(a)))
        .chain(pull.iter().map(|a| quote(a)))
        .collect::<Vec<_>>()
        .join(" ");
    let mut text = format!(
        "# Automatically generated by box quadlet (box {}) from\n# {}\n\n[X-Image]\n",
        env!("CARGO_PKG_VERSION"),
        src.path
    );
    for e in &img.entries {
        text.push_str(&e.raw);
        text.push('\n');
    }
    text.push_str("\n[Unit]\n");
    for g in groups.iter().filter(|g| g.name == "Unit") {
        for e in &g.entries {
            text.push_str(&e.raw);
            text.push('\n');
        }
    }
    text.push_str("Wants=network-online.target\nAfter=network-online.target\n");
    text.push_str(&format!("SourcePath={}\n", src.path));
    text.push_str("\n[Service]\nType=oneshot\nRemainAfterExit=yes\nSyslogIdentifier=%N\n");
    text.push_str(&format!("ExecStart={cmd}\n"));
    for g in groups
        .iter()
        .filter(|g| !matches!(g.name.as_str(), "Image" | "Unit"))
    {
        text.push_str(&format!("\n[{}]\n", g.name));
        for e in &g.entries {
            text.push_str(&e.raw);
            text.push('\n');
        }
    }
    Ok(Generated {
        unit_name: format!("{base}-image.service"),
        text,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> Options {
        Options {
            box_path: "/usr/local/bin/box".into(),
            global_args: vec![],
            volume_names: [("data.volume".to_string(), "mydata".to_string())].into(),
            image_names: [("base.image".to_string(), "quay.io/x/base:1".to_string())].into(),
            network_names: [("back.network".to_string(), "backnet".to_string())].into(),
            pod_names: [("web.pod".to_string(), "systemd-web".to_string())].into(),
            pod_members: [("web.pod".to_string(), vec!["app.service".to_string()])].into(),
        }
    }

    fn gen_(text: &str) -> Result<Generated, String> {
        container(
            &Source {
                path: "/home/u/.config/box/systemd/web.container",
                name: "web.container",
                text,
            },
            &opts(),
        )
    }

    const WEB: &str = "\
# a web server
[Unit]
Description=The web server

[Container]
Image=docker.io/library/nginx:latest
ContainerName=web
PublishPort=127.0.0.1:8080:80
Volume=webdata:/usr/share/nginx/html:ro
Environment=A=1 \"B=two words\"
EnvironmentFile=/home/u/web.env
Label=app=web tier=front
HealthCmd=wget -q -O /dev/null http://localhost/
HealthInterval=10s
HealthOnFailure=restart
Notify=healthy
AutoUpdate=registry
BoxArgs=--memory 64m
Exec=nginx -g \"daemon off;\"

[Service]
Restart=always

[Install]
WantedBy=default.target
";

    #[test]
    fn a_container_file_becomes_a_notify_service() {
        let g = gen_(WEB).unwrap();
        assert_eq!(g.unit_name, "web.service");
        assert!(g.warnings.is_empty(), "{:?}", g.warnings);
        let t = &g.text;
        for line in [
            "[Unit]",
            "Description=The web server",
            "SourcePath=/home/u/.config/box/systemd/web.container",
            "Type=notify",
            "NotifyAccess=all",
            "Delegate=yes",
            "KillMode=mixed",
            "Restart=always",
            "ExecStartPre=-/usr/local/bin/box rm -f web",
            "ExecStop=/usr/local/bin/box stop -t 10 web",
            "ExecStopPost=-/usr/local/bin/box rm -f web",
            "[Install]",
            "WantedBy=default.target",
            "[X-Container]",
        ] {
            assert!(t.lines().any(|l| l == line), "{line} missing:\n{t}");
        }
        assert!(!t.contains("Restart=on-failure"), "[Service] wins:\n{t}");
        let exec = t.lines().find(|l| l.starts_with("ExecStart=")).unwrap();
        assert_eq!(
            exec,
            "ExecStart=/usr/local/bin/box run --rm --sdnotify=healthy --stop-timeout 10 --name web \
             -p 127.0.0.1:8080:80 -v webdata:/usr/share/nginx/html:ro -e A=1 -e \"B=two words\" \
             --env-file /home/u/web.env -l app=web -l tier=front \
             --health-cmd \"wget -q -O /dev/null http://localhost/\" --health-interval 10s \
             --health-on-failure restart -l io.containers.autoupdate=registry --memory 64m \
             docker.io/library/nginx:latest nginx -g \"daemon off;\""
        );
    }

    #[test]
    fn defaults_and_warnings_name_file_and_line() {
        let g = gen_("[Container]\nImage=alpine\nFrobnicate=yes\nSecret=x\n").unwrap();
        assert!(g.text.contains("--sdnotify=ready"), "{}", g.text);
        assert!(g.text.contains(" --name systemd-web "), "{}", g.text);
        assert!(g.text.contains("\nRestart=on-failure\n"), "{}", g.text);
        assert_eq!(g.warnings.len(), 2, "{:?}", g.warnings);
        assert!(
            g.warnings[0].starts_with("/home/u/.config/box/systemd/web.container:3: ")
                && g.warnings[0].contains("Frobnicate"),
            "{:?}",
            g.warnings
        );
        assert!(g.warnings[1].contains(":4: Secret="), "{:?}", g.warnings);
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = gen_("[Container]\nPublishPort=80\n").unwrap_err();
        assert!(e.contains("web.container") && e.contains("Image="), "{e}");
        let e = gen_("Image=alpine\n").unwrap_err();
        assert!(e.contains("web.container:1:"), "{e}");
        let e = gen_("[Container]\nImage=alpine\njunk\n").unwrap_err();
        assert!(e.contains("web.container:3:"), "{e}");
        let e = gen_("[Container]\nImage=alpine\nExec=sh -c 'oops\n").unwrap_err();
        assert!(e.contains("web.container:3:") && e.contains("quote"), "{e}");
        let e = gen_("[Container]\nImage=alpine\nAutoUpdate=sometimes\n").unwrap_err();
        assert!(e.contains(":3:"), "{e}");
    }

    #[test]
    fn words_split_as_systemd() {
        assert_eq!(
            split_words(r#"a "b c" 'd e' f\ g"#).unwrap(),
            ["a", "b c", "d e", "f g"]
        );
        assert!(split_words("\"open").is_err());
    }

    #[test]
    fn volume_files() {
        let src = Source {
            path: "/u/data.volume",
            name: "data.volume",
            text: "[Volume]\nVolumeName=mydata\nDriver=local\n",
        };
        assert_eq!(volume_name(&src).unwrap(), "mydata");
        let g = volume(&src, &opts()).unwrap();
        assert_eq!(g.unit_name, "data-volume.service");
        assert!(
            g.text.contains("\nType=oneshot\nRemainAfterExit=yes\n"),
            "{}",
            g.text
        );
        assert!(
            g.text
                .contains("\nExecStart=/usr/local/bin/box volume create mydata\n"),
            "{}",
            g.text
        );
        assert_eq!(g.warnings.len(), 1, "{:?}", g.warnings);
        assert!(
            g.warnings[0].starts_with("/u/data.volume:3: "),
            "{:?}",
            g.warnings
        );
        // A container mounting it: the volume's name, and the unit first.
        let c = gen_("[Container]\nImage=alpine\nVolume=data.volume:/data:ro\n").unwrap();
        assert!(c.text.contains(" -v mydata:/data:ro "), "{}", c.text);
        assert!(
            c.text
                .contains("\nRequires=data-volume.service\nAfter=data-volume.service\n"),
            "{}",
            c.text
        );
    }

    #[test]
    fn image_files() {
        let src = Source {
            path: "/u/base.image",
            name: "base.image",
            text: "[Image]\nImage=quay.io/x/base:1\nTLSVerify=false\nArch=arm64\nCreds=a:b\n",
        };
        assert_eq!(
            image_name(&src).unwrap().as_deref(),
            Some("quay.io/x/base:1")
        );
        let g = image(&src, &opts()).unwrap();
        assert_eq!(g.unit_name, "base-image.service");
        assert!(
            g.text.contains(
                "\nExecStart=/usr/local/bin/box pull --tls-verify=false --platform linux/arm64 quay.io/x/base:1\n"
            ),
            "{}",
            g.text
        );
        assert!(
            g.warnings[0].starts_with("/u/base.image:5: "),
            "{:?}",
            g.warnings
        );
        let c = gen_("[Container]\nImage=base.image\n").unwrap();
        assert!(c.text.contains(" quay.io/x/base:1\n"), "{}", c.text);
        assert!(
            c.text.contains("\nRequires=base-image.service\n"),
            "{}",
            c.text
        );
        let e = gen_("[Container]\nImage=other.image\n").unwrap_err();
        assert!(e.contains(":2: Image=other.image"), "{e}");
    }

    fn src<'a>(path: &'a str, text: &'a str) -> Source<'a> {
        Source {
            path,
            name: path.rsplit('/').next().unwrap(),
            text,
        }
    }

    fn line_of<'a>(text: &'a str, key: &str) -> &'a str {
        text.lines()
            .find(|l| l.starts_with(key))
            .unwrap_or_else(|| panic!("no {key} in\n{text}"))
    }

    #[test]
    fn network_files() {
        let f = src(
            "/u/back.network",
            "[Network]\nNetworkName=backnet\nSubnet=10.90.0.0/24\nGateway=10.90.0.1\n\
             Internal=true\nLabel=a=1 b=2\nDriver=bridge\nIPv6=true\nBoxArgs=--label c=3\nWhat=x\n\
             [Install]\nWantedBy=default.target\n",
        );
        assert_eq!(network_name(&f).unwrap(), "backnet");
        let g = network(&f, &opts()).unwrap();
        assert_eq!(g.unit_name, "back-network.service");
        assert!(
            g.text.contains("\nType=oneshot\nRemainAfterExit=yes\n"),
            "{}",
            g.text
        );
        assert_eq!(
            line_of(&g.text, "ExecStart="),
            "ExecStart=/usr/local/bin/box network create --ignore --subnet 10.90.0.0/24 \
             --gateway 10.90.0.1 --internal --label a=1 --label b=2 --driver bridge \
             --label c=3 backnet"
        );
        assert!(
            g.text.contains("\n[Install]\nWantedBy=default.target\n"),
            "{}",
            g.text
        );
        assert_eq!(g.warnings.len(), 2, "{:?}", g.warnings);
        assert!(
            g.warnings[0].starts_with("/u/back.network:8: IPv6="),
            "{:?}",
            g.warnings
        );
        assert!(
            g.warnings[1].starts_with("/u/back.network:10: unsupported key 'What'"),
            "{:?}",
            g.warnings
        );
        // The default name, and errors naming file:line.
        let f = src("/u/plain.network", "[Network]\n");
        assert_eq!(network_name(&f).unwrap(), "systemd-plain");
        let e = network(&src("/u/x.network", "[Network]\nInternal=maybe\n"), &opts()).unwrap_err();
        assert!(e.starts_with("/u/x.network:2: Internal=maybe"), "{e}");
        let e = network(&src("/u/x.network", "[Volume]\n"), &opts()).unwrap_err();
        assert!(e.contains("no [Network]"), "{e}");

        // A container on it: the network's name, and its unit first.
        let c = gen_("[Container]\nImage=alpine\nNetwork=back.network\n").unwrap();
        assert!(c.text.contains(" --network backnet alpine\n"), "{}", c.text);
        assert!(
            c.text
                .contains("\nRequires=back-network.service\nAfter=back-network.service\n"),
            "{}",
            c.text
        );
        let c = gen_("[Container]\nImage=alpine\nNetwork=none\n").unwrap();
        assert!(c.text.contains(" --network none alpine\n"), "{}", c.text);
        assert!(!c.text.contains("-network.service"), "{}", c.text);
        let e = gen_("[Container]\nImage=alpine\nNetwork=other.network\n").unwrap_err();
        assert!(e.contains("web.container:3: Network=other.network"), "{e}");
    }

    #[test]
    fn pod_files() {
        let f = src(
            "/u/web.pod",
            "[Unit]\nDescription=a pod\n[Pod]\nPublishPort=127.0.0.1:8080:80\nNetwork=back.network\n\
             Label=tier=web\nVolume=v:/v\nBoxArgs=--hostname h\n",
        );
        assert_eq!(pod_name(&f).unwrap(), "systemd-web");
        let g = pod(&f, &opts()).unwrap();
        assert_eq!(g.unit_name, "web-pod.service");
        let t = &g.text;
        for line in [
            "[X-Pod]",
            "Description=a pod",
            "Requires=back-network.service",
            "After=back-network.service",
            "Wants=app.service",
            "Before=app.service",
            "Type=oneshot",
            "RemainAfterExit=yes",
            "ExecStartPre=-/usr/local/bin/box pod rm -f --ignore systemd-web",
            "ExecStartPre=/usr/local/bin/box pod create --name systemd-web -p 127.0.0.1:8080:80 \
             --network backnet --label tier=web --hostname h",
            "ExecStart=/usr/local/bin/box pod start systemd-web",
            "ExecStop=/usr/local/bin/box pod stop --ignore -t 10 systemd-web",
            "ExecStopPost=-/usr/local/bin/box pod rm -f --ignore systemd-web",
        ] {
            assert!(t.lines().any(|l| l == line), "{line} missing:\n{t}");
        }
        assert_eq!(g.warnings.len(), 1, "{:?}", g.warnings);
        assert!(
            g.warnings[0].starts_with("/u/web.pod:7: Volume="),
            "{:?}",
            g.warnings
        );
        let named = src("/u/web.pod", "[Pod]\nPodName=mine\n");
        assert_eq!(pod_name(&named).unwrap(), "mine");
        let e = pod(&src("/u/web.pod", "[Pod]\nNetwork=a\nNetwork=b\n"), &opts()).unwrap_err();
        assert!(e.starts_with("/u/web.pod:3: "), "{e}");

        // A container in it: --pod, bound to the pod's unit.
        let c = gen_("[Container]\nImage=alpine\nPod=web.pod\n").unwrap();
        assert!(c.text.contains(" --pod systemd-web alpine\n"), "{}", c.text);
        assert!(
            c.text
                .contains("\nBindsTo=web-pod.service\nAfter=web-pod.service\n"),
            "{}",
            c.text
        );
        assert_eq!(
            container_pod(&src("/u/app.container", "[Container]\nPod=web.pod\n")).unwrap(),
            Some("web.pod".into())
        );
        let e = gen_("[Container]\nImage=alpine\nPod=mypod\n").unwrap_err();
        assert!(e.contains("web.container:3: Pod=mypod"), "{e}");
    }

    #[test]
    fn kube_files() {
        let f = src(
            "/u/cfg/app.kube",
            "[Kube]\nYaml=app.yaml\nNetwork=back.network\nPublishPort=8080:80\nConfigMap=c.yaml\n\
             AutoUpdate=registry\n[Install]\nWantedBy=default.target\n",
        );
        let g = kube(&f, &opts()).unwrap();
        assert_eq!(g.unit_name, "app.service");
        let t = &g.text;
        for line in [
            "[X-Kube]",
            "Requires=back-network.service",
            "Type=oneshot",
            "RemainAfterExit=yes",
            "ExecStart=/usr/local/bin/box kube play --replace --network backnet /u/cfg/app.yaml",
            "ExecStop=/usr/local/bin/box kube down /u/cfg/app.yaml",
            "WantedBy=default.target",
        ] {
            assert!(t.lines().any(|l| l == line), "{line} missing:\n{t}");
        }
        let w: Vec<_> = g
            .warnings
            .iter()
            .map(|w| w.split(' ').next().unwrap())
            .collect();
        assert_eq!(
            w,
            [
                "/u/cfg/app.kube:4:",
                "/u/cfg/app.kube:5:",
                "/u/cfg/app.kube:6:"
            ],
            "{:?}",
            g.warnings
        );
        // An absolute Yaml= stays as it is.
        let g = kube(&src("/u/a.kube", "[Kube]\nYaml=/srv/a.yaml\n"), &opts()).unwrap();
        assert!(g.text.contains(" --replace /srv/a.yaml\n"), "{}", g.text);
        let e = kube(&src("/u/a.kube", "[Kube]\nNetwork=host\n"), &opts()).unwrap_err();
        assert!(e.contains("no Yaml="), "{e}");
    }
}
