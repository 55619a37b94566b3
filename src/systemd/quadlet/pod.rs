//! `.pod` files: `BASE-pod.service`, which creates the pod (its infra) and starts it, as
//! Quadlet's pod units do; the `.container` files naming it (`Pod=BASE.pod`) run in it,
//! bound to this unit (`BindsTo=`), and this unit wants them.
//!
//! `Type=oneshot` + `RemainAfterExit=yes` where Quadlet has `Type=forking` with the infra's
//! conmon pid file: box's infra is not a child box could hand systemd as a PIDFile (box
//! pod create has no `--infra-conmon-pidfile`), so the unit is "active" from the pod's start
//! to `ExecStop` (`box pod stop`), and `ExecStopPost` removes the pod with its containers.
use super::{
    Generated, Options, Source, box_cmd, head, last_value, network_of, parse, split_words, tail,
};

/// Quadlet's `[Pod]` keys box's pods do not have: a warning.
const UNSUPPORTED: &[&str] = &[
    "Volume",
    "AddHost",
    "DNS",
    "DNSOption",
    "DNSSearch",
    "IP",
    "IP6",
    "NetworkAlias",
    "UIDMap",
    "GIDMap",
    "SubUIDMap",
    "SubGIDMap",
    "UserNS",
    "ServiceName",
    "ContainersConfModule",
    "GlobalArgs",
];

/// The pod a `.pod` file creates: its `PodName=`, else `systemd-BASE`.
pub fn pod_name(src: &Source) -> Result<String, String> {
    let groups = parse(src)?;
    let base = src.name.strip_suffix(".pod").unwrap_or(src.name);
    Ok(last_value(&groups, "Pod", "PodName").unwrap_or_else(|| format!("systemd-{base}")))
}

/// Translate a `.pod` file.
pub fn pod(src: &Source, o: &Options) -> Result<Generated, String> {
    let groups = parse(src)?;
    let Some(p) = groups.iter().find(|g| g.name == "Pod") else {
        return Err(format!("{}: no [Pod] group", src.path));
    };
    let base = src.name.strip_suffix(".pod").unwrap_or(src.name);
    let name = pod_name(src)?;
    let mut warnings = Vec::new();
    let mut needs = Vec::new();
    let mut create: Vec<String> =
        vec!["pod".into(), "create".into(), "--name".into(), name.clone()];
    let mut extra = Vec::new();
    let mut networks = 0;
    for e in &p.entries {
        let words = || {
            split_words(&e.value).map_err(|m| format!("{}:{}: {}: {m}", src.path, e.line, e.key))
        };
        match e.key.as_str() {
            "PodName" => {}
            "PublishPort" => create.extend(["-p".into(), e.value.clone()]),
            "Network" => {
                networks += 1;
                if networks > 1 {
                    return Err(format!(
                        "{}:{}: a second Network=: a box pod has one network",
                        src.path, e.line
                    ));
                }
                let (net, unit) = network_of(src, e, o)?;
                needs.extend(unit);
                create.extend(["--network".into(), net]);
            }
            "Label" => {
                for w in words()? {
                    create.extend(["--label".into(), w]);
                }
            }
            "PodmanArgs" | "BoxArgs" => extra.extend(words()?),
            k if UNSUPPORTED.contains(&k) => warnings.push(format!(
                "{}:{}: {k}= is not supported by box pods: ignored",
                src.path, e.line
            )),
            k => warnings.push(format!(
                "{}:{}: unsupported key '{k}' in group 'Pod': ignored",
                src.path, e.line
            )),
        }
    }
    create.extend(extra);
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let mut text = head(src, &groups, "Pod");
    text.push_str("Wants=network-online.target\nAfter=network-online.target\n");
    for n in &needs {
        text.push_str(&format!("Requires={n}\nAfter={n}\n"));
    }
    for m in o.pod_members.get(src.name).into_iter().flatten() {
        text.push_str(&format!("Wants={m}\nBefore={m}\n"));
    }
    text.push_str(&format!("SourcePath={}\n", src.path));
    text.push_str("\n[Service]\nType=oneshot\nRemainAfterExit=yes\nSyslogIdentifier=%N\n");
    text.push_str("Environment=BOX_SYSTEMD_UNIT=%n\n");
    text.push_str(&format!(
        "ExecStartPre=-{}\n",
        box_cmd(o, &s(&["pod", "rm", "-f", "--ignore", &name]))
    ));
    text.push_str(&format!("ExecStartPre={}\n", box_cmd(o, &create)));
    text.push_str(&format!(
        "ExecStart={}\n",
        box_cmd(o, &s(&["pod", "start", &name]))
    ));
    text.push_str(&format!(
        "ExecStop={}\n",
        box_cmd(o, &s(&["pod", "stop", "--ignore", "-t", "10", &name]))
    ));
    text.push_str(&format!(
        "ExecStopPost=-{}\n",
        box_cmd(o, &s(&["pod", "rm", "-f", "--ignore", &name]))
    ));
    text.push_str(&tail(&groups, "Pod"));
    Ok(Generated {
        unit_name: format!("{base}-pod.service"),
        text,
        warnings,
    })
}
