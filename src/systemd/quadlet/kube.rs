//! `.kube` files: `BASE.service`, which plays the Kubernetes YAML (`box kube play
//! --replace`) and takes it down again (`box kube down`), as Quadlet's kube units do.
//!
//! `Type=oneshot` + `RemainAfterExit=yes` where Quadlet has `Type=notify` with
//! `--service-container`: box's `kube play` starts the pods detached and returns (it has
//! no service container to be the unit's main process, nor `--sdnotify`), so the unit is
//! "active" from a successful play to `ExecStop`.
use std::path::Path;

use super::{Generated, Options, Source, box_cmd, head, network_of, parse, split_words, tail};

/// Quadlet's `[Kube]` keys box's `kube play` does not have: a warning.
const UNSUPPORTED: &[&str] = &[
    "PublishPort",
    "ConfigMap",
    "AutoUpdate",
    "LogDriver",
    "UserNS",
    "SetWorkingDirectory",
    "ExitCodePropagation",
    "KubeDownForce",
    "ContainersConfModule",
    "GlobalArgs",
];

/// Translate a `.kube` file.
pub fn kube(src: &Source, o: &Options) -> Result<Generated, String> {
    let groups = parse(src)?;
    let Some(k) = groups.iter().find(|g| g.name == "Kube") else {
        return Err(format!("{}: no [Kube] group", src.path));
    };
    let base = src.name.strip_suffix(".kube").unwrap_or(src.name);
    let mut warnings = Vec::new();
    let mut needs = Vec::new();
    let mut yaml = None;
    let mut play: Vec<String> = vec!["kube".into(), "play".into(), "--replace".into()];
    let mut extra = Vec::new();
    let mut networks = 0;
    for e in &k.entries {
        match e.key.as_str() {
            // Relative to the unit file's directory, as Quadlet.
            "Yaml" => {
                let dir = Path::new(src.path).parent().unwrap_or(Path::new("/"));
                yaml = Some(dir.join(&e.value).display().to_string());
            }
            "Network" => {
                networks += 1;
                if networks > 1 {
                    return Err(format!(
                        "{}:{}: a second Network=: box kube play takes one network",
                        src.path, e.line
                    ));
                }
                let (net, unit) = network_of(src, e, o)?;
                needs.extend(unit);
                play.extend(["--network".into(), net]);
            }
            "PodmanArgs" | "BoxArgs" => extra.extend(
                split_words(&e.value)
                    .map_err(|m| format!("{}:{}: {}: {m}", src.path, e.line, e.key))?,
            ),
            k if UNSUPPORTED.contains(&k) => warnings.push(format!(
                "{}:{}: {k}= is not supported by box kube play: ignored",
                src.path, e.line
            )),
            k => warnings.push(format!(
                "{}:{}: unsupported key '{k}' in group 'Kube': ignored",
                src.path, e.line
            )),
        }
    }
    let Some(yaml) = yaml else {
        return Err(format!(
            "{}: no Yaml= in [Kube]: name the Kubernetes YAML file to play",
            src.path
        ));
    };
    play.extend(extra);
    play.push(yaml.clone());
    let mut text = head(src, &groups, "Kube");
    text.push_str("Wants=network-online.target\nAfter=network-online.target\n");
    for n in &needs {
        text.push_str(&format!("Requires={n}\nAfter={n}\n"));
    }
    text.push_str(&format!("SourcePath={}\n", src.path));
    text.push_str("\n[Service]\nType=oneshot\nRemainAfterExit=yes\nSyslogIdentifier=%N\n");
    text.push_str("Environment=BOX_SYSTEMD_UNIT=%n\n");
    text.push_str(&format!("ExecStart={}\n", box_cmd(o, &play)));
    text.push_str(&format!(
        "ExecStop={}\n",
        box_cmd(o, &["kube".into(), "down".into(), yaml])
    ));
    text.push_str(&tail(&groups, "Kube"));
    Ok(Generated {
        unit_name: format!("{base}.service"),
        text,
        warnings,
    })
}
