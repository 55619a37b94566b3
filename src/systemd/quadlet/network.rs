//! `.network` files: a oneshot `BASE-network.service` that runs `box network create
//! --ignore` (an existing network of that name is kept), as Quadlet's does.
use super::{
    Generated, Options, Source, bool_value, box_cmd, head, last_value, parse, split_words, tail,
};

/// Quadlet's `[Network]` keys box's networks do not have: a warning.
const UNSUPPORTED: &[&str] = &[
    "DisableDNS",
    "DNS",
    "IPRange",
    "IPAMDriver",
    "IPv6",
    "Options",
    "ContainersConfModule",
    "GlobalArgs",
    "NetworkDeleteOnStop",
];

/// The network a `.network` file creates: its `NetworkName=`, else `systemd-BASE`.
pub fn network_name(src: &Source) -> Result<String, String> {
    let groups = parse(src)?;
    let base = src.name.strip_suffix(".network").unwrap_or(src.name);
    Ok(last_value(&groups, "Network", "NetworkName").unwrap_or_else(|| format!("systemd-{base}")))
}

/// Translate a `.network` file.
pub fn network(src: &Source, o: &Options) -> Result<Generated, String> {
    let groups = parse(src)?;
    let Some(net) = groups.iter().find(|g| g.name == "Network") else {
        return Err(format!("{}: no [Network] group", src.path));
    };
    let base = src.name.strip_suffix(".network").unwrap_or(src.name);
    let name = network_name(src)?;
    let mut warnings = Vec::new();
    let mut args: Vec<String> = vec!["network".into(), "create".into(), "--ignore".into()];
    let mut extra = Vec::new();
    for e in &net.entries {
        let mut flag = |f: &str, v: &str| {
            args.push(f.to_string());
            args.push(v.to_string());
        };
        match e.key.as_str() {
            "NetworkName" => {}
            "Driver" => flag("--driver", &e.value),
            "Subnet" => flag("--subnet", &e.value),
            "Gateway" => flag("--gateway", &e.value),
            "Internal" => {
                if bool_value(src, e)? {
                    args.push("--internal".into());
                }
            }
            "Label" => {
                for w in split_words(&e.value)
                    .map_err(|m| format!("{}:{}: Label: {m}", src.path, e.line))?
                {
                    flag("--label", &w);
                }
            }
            "PodmanArgs" | "BoxArgs" => extra.extend(
                split_words(&e.value)
                    .map_err(|m| format!("{}:{}: {}: {m}", src.path, e.line, e.key))?,
            ),
            k if UNSUPPORTED.contains(&k) => warnings.push(format!(
                "{}:{}: {k}= is not supported by box: ignored",
                src.path, e.line
            )),
            k => warnings.push(format!(
                "{}:{}: unsupported key '{k}' in group 'Network': ignored",
                src.path, e.line
            )),
        }
    }
    args.extend(extra);
    args.push(name);
    let mut text = head(src, &groups, "Network");
    text.push_str("Wants=network-online.target\nAfter=network-online.target\n");
    text.push_str(&format!("SourcePath={}\n", src.path));
    text.push_str("\n[Service]\nType=oneshot\nRemainAfterExit=yes\nSyslogIdentifier=%N\n");
    text.push_str(&format!("ExecStart={}\n", box_cmd(o, &args)));
    text.push_str(&tail(&groups, "Network"));
    Ok(Generated {
        unit_name: format!("{base}-network.service"),
        text,
        warnings,
    })
}
