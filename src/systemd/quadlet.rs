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

    let mut text = head(src, &groups, "Container");
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
    text.push_str(&tail(&groups, "Container"));
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
    let exe = box_cmd(o, &[]);
    let mut text = head(src, &groups, "Volume");
    text.push_str(&format!("SourcePath={}\n", src.path));
    text.push_str("\n[Service]\nType=oneshot\nRemainAfterExit=yes\nSyslogIdentifier=%N\n");
    text.push_str(&format!(
        "ExecCondition=/bin/sh -c {}\n",
        quote(&format!("! {exe} volume exists {}", quote(&name)).replace("$$", "$"))
    ));
    text.push_str(&format!("ExecStart={exe} volume create {}\n", quote(&name)));
    text.push_str(&tail(&groups, "Volume"));
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
    let cmd = box_cmd(o, &pull);
    let mut text = head(src, &groups, "Image");
    text.push_str("Wants=network-online.target\nAfter=network-online.target\n");
    text.push_str(&format!("SourcePath={}\n", src.path));
    text.push_str("\n[Service]\nType=oneshot\nRemainAfterExit=yes\nSyslogIdentifier=%N\n");
    text.push_str(&format!("ExecStart={cmd}\n"));
    text.push_str(&tail(&groups, "Image"));
    Ok(Generated {
        unit_name: format!("{base}-image.service"),
        text,
        warnings,
    })
}

#[cfg(test)]
mod tests;
