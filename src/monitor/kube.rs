//! `box generate kube`: a Kubernetes Pod (core/v1) for containers on record.
//!
//! Mapping: the container's argv becomes `command` (its first word) and `args` (the rest),
//! so the pod runs exactly what box runs; `-e` → `env`; `-p` → `ports` (containerPort,
//! hostPort, hostIP, protocol); `-v` host paths and named volumes → `hostPath` volumes;
//! `--tmpfs` → `emptyDir` in memory; `--memory`/`--cpus` → `resources.limits`; `-u` →
//! `securityContext.runAsUser/runAsGroup` (resolved through the image's /etc/passwd);
//! `--read-only`, `--privileged`, `--cap-add/--cap-drop` (relative to box's default set) and
//! `no-new-privileges` → the matching `securityContext` fields; `--restart` →
//! `restartPolicy`; `--annotation` → `metadata.annotations`; `--sysctl` → the pod's
//! `securityContext.sysctls` (`--ulimit` and the other podman options have no Pod field).
//! The YAML is written by a small emitter (every string double-quoted, so
//! no value is ever misread as a number, boolean or null).
use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Map, Value, json};

use super::RestartPolicy;
use crate::container::Record;
use crate::run::Mount;

/// A DNS-1123 label from a container name (Kubernetes object and volume names).
fn dns_label(s: &str) -> String {
    let mut out: String = s
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    out = out.trim_matches('-').to_string();
    out.truncate(63);
    let out = out.trim_end_matches('-').to_string();
    if out.is_empty() { "box".into() } else { out }
}

/// Read a file of the image as the container sees it: the top-most layer that has it.
fn image_file(rec: &Record, path: &str) -> String {
    for layer in rec.config.spec.rootfs.layers.iter().rev() {
        if let Ok(s) = std::fs::read_to_string(layer.join(path)) {
            return s;
        }
    }
    String::new()
}

fn cpu_quantity(cpus: f64) -> String {
    format!("{}m", (cpus * 1000.0).round() as u64)
}

/// The Pod for `recs` as a JSON value (render it with `to_yaml`).
pub fn pod(recs: &[Record], volumes_root: &Path) -> Value {
    let pod_name = format!("{}-pod", dns_label(recs[0].name()));
    pod_named(&pod_name, &PodExtras::default(), recs, volumes_root)
}

/// What a box pod adds to its containers' Pod (see `crate::pod`).
#[derive(Debug, Default)]
pub struct PodExtras {
    /// The host name its containers share, when they do.
    pub hostname: Option<String>,
    /// The pod's published ports (its infra container's), listed on the first container
    /// as Kubernetes has no pod-level ports.
    pub ports: Vec<crate::network::PortMapping>,
    /// The pod uses the host's network.
    pub host_network: bool,
    pub labels: std::collections::BTreeMap<String, String>,
}

/// The Pod `name` for a box pod's containers `recs` (its infra container left out).
pub fn pod_named(name: &str, extras: &PodExtras, recs: &[Record], volumes_root: &Path) -> Value {
    let pod_name = dns_label(name);
    let mut volumes: Vec<Value> = Vec::new();
    let mut volume_names: BTreeSet<String> = BTreeSet::new();
    let mut containers = Vec::new();
    let mut restart = "Never";
    for rec in recs {
        let spec = &rec.config.spec;
        let mut c = Map::new();
        // A container `kube play` made is named `<pod>-<name>`: back to `<name>`, so the
        // YAML plays again as the same app.
        let prefix = format!("{name}-");
        let cname = rec.name().strip_prefix(&prefix).unwrap_or(rec.name());
        c.insert("name".into(), json!(dns_label(cname)));
        c.insert("image".into(), json!(rec.config.image_name));
        if let Some((first, rest)) = spec.args.split_first() {
            c.insert("command".into(), json!([first]));
            if !rest.is_empty() {
                c.insert("args".into(), json!(rest));
            }
        }
        let env: Vec<Value> = spec
            .env
            .iter()
            .filter_map(|e| e.split_once('='))
            .filter(|(k, _)| *k != "HOSTNAME")
            .map(|(k, v)| json!({"name": k, "value": v}))
            .collect();
        if !env.is_empty() {
            c.insert("env".into(), json!(env));
        }
        if !spec.cwd.is_empty() && spec.cwd != "/" {
            c.insert("workingDir".into(), json!(spec.cwd));
        }
        let mut port_list = spec.network.ports.clone();
        if containers.is_empty() {
            port_list.extend(extras.ports.iter().cloned());
        }
        let ports: Vec<Value> = port_list
            .iter()
            .map(|p| {
                let mut m = Map::new();
                m.insert("containerPort".into(), json!(p.container_port));
                m.insert("hostPort".into(), json!(p.host_port));
                if let Some(ip) = p.host_ip {
                    m.insert("hostIP".into(), json!(ip.to_string()));
                }
                m.insert(
                    "protocol".into(),
                    json!(p.protocol.as_str().to_ascii_uppercase()),
                );
                Value::Object(m)
            })
            .collect();
        if !ports.is_empty() {
            c.insert("ports".into(), json!(ports));
        }
        let mut mounts = Vec::new();
        for m in &spec.mounts {
            let (base, source, readonly, memory) = match m {
                Mount::Bind {
                    source,
                    target,
                    readonly,
                } => {
                    let vols = crate::volume::Volumes::at(volumes_root);
                    let vol = vols.name_at(source);
                    let anonymous = vols.anonymous_at(source).is_some();
                    let base = match vol {
                        Some(v) if !anonymous => v,
                        _ => target.trim_start_matches('/').into(),
                    };
                    // An anonymous volume lives as long as its container: an emptyDir.
                    let source = (!anonymous).then(|| source.clone());
                    (base, source, *readonly, false)
                }
                Mount::Tmpfs { target, options } => (
                    target.trim_start_matches('/').to_string(),
                    None,
                    options.iter().any(|o| o == "ro"),
                    true,
                ),
            };
            let target = match m {
                Mount::Bind { target, .. } | Mount::Tmpfs { target, .. } => target,
            };
            let mut name = dns_label(&base);
            let mut n = 1;
            while volume_names.contains(&name) {
                n += 1;
                name = format!("{}-{n}", dns_label(&base));
            }
            volume_names.insert(name.clone());
            let mut vm = Map::new();
            vm.insert("name".into(), json!(name));
            vm.insert("mountPath".into(), json!(target));
            if readonly {
                vm.insert("readOnly".into(), json!(true));
            }
            mounts.push(Value::Object(vm));
            volumes.push(match (source, memory) {
                (Some(src), _) => json!({
                    "name": name,
                    "hostPath": {"path": src, "type": "Directory"},
                }),
                (None, true) => json!({"name": name, "emptyDir": {"medium": "Memory"}}),
                (None, false) => json!({"name": name, "emptyDir": {}}),
            });
        }
        if !mounts.is_empty() {
            c.insert("volumeMounts".into(), json!(mounts));
        }
        let mut limits = Map::new();
        if let Some(m) = spec.limits.memory {
            limits.insert("memory".into(), json!(m.to_string()));
        }
        if let Some(crate::cgroup::CpuMax {
            quota: Some(q),
            period,
        }) = spec.limits.cpu_max
        {
            limits.insert("cpu".into(), json!(cpu_quantity(q as f64 / period as f64)));
        }
        if !limits.is_empty() {
            c.insert("resources".into(), json!({"limits": limits}));
        }
        c.insert("securityContext".into(), security_context(rec));
        if spec.tty {
            c.insert("tty".into(), json!(true));
        }
        if spec.interactive {
            c.insert("stdin".into(), json!(true));
        }
        containers.push(Value::Object(c));
        restart = match super::restart_policy(rec) {
            RestartPolicy::No => restart,
            RestartPolicy::OnFailure(_) if restart == "Never" => "OnFailure",
            RestartPolicy::OnFailure(_) => restart,
            RestartPolicy::Always | RestartPolicy::UnlessStopped => "Always",
        };
    }
    let mut spec = Map::new();
    spec.insert("containers".into(), json!(containers));
    spec.insert("restartPolicy".into(), json!(restart));
    if extras.host_network || recs.iter().any(|r| r.config.spec.host_network()) {
        spec.insert("hostNetwork".into(), json!(true));
    }
    if let Some(h) = &extras.hostname {
        spec.insert("hostname".into(), json!(h));
    }
    if !volumes.is_empty() {
        spec.insert("volumes".into(), json!(volumes));
    }
    // `--sysctl` (namespaced, so the pod's): the pod's securityContext.
    let sysctls: std::collections::BTreeMap<&String, &String> = recs
        .iter()
        .flat_map(|r| &r.config.spec.settings.sysctls)
        .collect();
    if !sysctls.is_empty() {
        let list: Vec<Value> = sysctls
            .into_iter()
            .map(|(k, v)| json!({"name": k, "value": v}))
            .collect();
        spec.insert("securityContext".into(), json!({"sysctls": list}));
    }
    let mut annotations = Map::new();
    for rec in recs {
        for (k, v) in &rec.config.spec.settings.annotations {
            annotations.insert(k.clone(), json!(v));
        }
    }
    annotations.insert("io.box.generated-by".into(), json!("box generate kube"));
    let mut labels = Map::new();
    labels.insert("app".into(), json!(pod_name));
    for (k, v) in &extras.labels {
        labels.insert(k.clone(), json!(v));
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": spec,
    })
}

fn security_context(rec: &Record) -> Value {
    let spec = &rec.config.spec;
    let mut sc = Map::new();
    if !spec.user.is_empty() {
        let passwd = image_file(rec, "etc/passwd");
        let group = image_file(rec, "etc/group");
        if let Ok(id) = crate::run::user::resolve(&spec.user, &passwd, &group) {
            sc.insert("runAsUser".into(), json!(id.uid));
            sc.insert("runAsGroup".into(), json!(id.gid));
        }
    }
    if spec.privileged {
        sc.insert("privileged".into(), json!(true));
    } else {
        let have: BTreeSet<String> = spec
            .caps
            .iter()
            .map(|c| c.trim_start_matches("CAP_").to_string())
            .collect();
        let default: BTreeSet<String> = crate::run::security::DEFAULT_CAPS
            .iter()
            .map(|s| s.to_string())
            .collect();
        let add: Vec<&String> = have.difference(&default).collect();
        let drop: Vec<&String> = default.difference(&have).collect();
        let mut caps = Map::new();
        if !add.is_empty() {
            caps.insert("add".into(), json!(add));
        }
        if !drop.is_empty() {
            caps.insert("drop".into(), json!(drop));
        }
        if !caps.is_empty() {
            sc.insert("capabilities".into(), Value::Object(caps));
        }
    }
    if spec.read_only {
        sc.insert("readOnlyRootFilesystem".into(), json!(true));
    }
    if spec.no_new_privileges {
        sc.insert("allowPrivilegeEscalation".into(), json!(false));
    }
    Value::Object(sc)
}

/// YAML for a JSON value: block mappings and sequences, strings double-quoted with JSON
/// escapes (a subset of YAML's double-quoted style), numbers and booleans bare.
pub fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    emit(v, 0, &mut out);
    out
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::Null => Some("null".into()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(serde_json::to_string(s).unwrap_or_default()),
        Value::Array(a) if a.is_empty() => Some("[]".into()),
        Value::Object(m) if m.is_empty() => Some("{}".into()),
        _ => None,
    }
}

fn key(k: &str) -> String {
    let plain = !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
        && !k.starts_with(['-', '.'])
        && !matches!(
            k,
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
        );
    if plain {
        k.to_string()
    } else {
        serde_json::to_string(k).unwrap_or_default()
    }
}

fn emit(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, val) in m {
                match scalar(val) {
                    Some(s) => out.push_str(&format!("{pad}{}: {s}\n", key(k))),
                    None => {
                        out.push_str(&format!("{pad}{}:\n", key(k)));
                        let child = if val.is_array() { indent } else { indent + 2 };
                        emit(val, child, out);
                    }
                }
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for item in a {
                match scalar(item) {
                    Some(s) => out.push_str(&format!("{pad}- {s}\n")),
                    None => {
                        // The first line of the item goes after the dash.
                        let mut inner = String::new();
                        emit(item, indent + 2, &mut inner);
                        let body = &inner[indent + 2..];
                        out.push_str(&format!("{pad}- {body}"));
                    }
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar(other).unwrap_or_default())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_emitter_round_trips() {
        let v = json!({
            "a": "1",
            "b": [1, "two", {"c": true, "d": ["x"]}, []],
            "e": {"f": null, "g": {}},
            "yes": "no",
            "weird key": "line\nbreak \"q\"",
        });
        let y = to_yaml(&v);
        let back: Value = serde_yaml::from_str(&y).unwrap();
        assert_eq!(back, v, "{y}");
    }

    #[test]
    fn labels_are_dns() {
        assert_eq!(dns_label("My_Web.1"), "my-web-1");
        assert_eq!(dns_label("__"), "box");
        assert_eq!(cpu_quantity(0.5), "500m");
    }
}

#[cfg(test)]
mod schema {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use super::*;
    use crate::container::Config;
    use crate::run::Spec;

    fn record(name: &str, spec: Spec) -> Record {
        Record {
            config: Config {
                id: "a".repeat(64),
                name: name.into(),
                image: "alpine".into(),
                image_name: "docker.io/library/alpine:latest".into(),
                image_id: "sha256:00".into(),
                created: "2024-01-01T00:00:00Z".into(),
                command: spec.args.clone(),
                autoremove: false,
                labels: BTreeMap::new(),
                spec,
            },
            dir: PathBuf::from("/nonexistent/c"),
            run_dir: PathBuf::from("/nonexistent/r"),
        }
    }

    /// Strict check: the YAML deserialises into k8s-openapi's Pod (which checks apiVersion,
    /// kind and every field's type), and serialising that Pod gives back exactly what we
    /// wrote, so no field was unknown to the schema and silently dropped.
    fn assert_valid_pod(yaml: &str) {
        let pod: k8s_openapi::api::core::v1::Pod =
            serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        let ours: Value = serde_yaml::from_str(yaml).unwrap();
        let theirs = serde_json::to_value(&pod).unwrap();
        assert_eq!(
            theirs, ours,
            "fields lost in the schema round trip:\n{yaml}"
        );
    }

    #[test]
    fn pod_passes_the_kubernetes_schema() {
        let spec = Spec {
            args: vec!["sh".into(), "-c".into(), "echo hi; sleep 1".into()],
            env: vec!["PATH=/bin".into(), "A=x=y".into(), "HOSTNAME=h".into()],
            cwd: "/srv".into(),
            user: "1000:1000".into(),
            tty: true,
            interactive: true,
            read_only: true,
            mounts: vec![
                Mount::Bind {
                    source: "/home/u/data".into(),
                    target: "/data".into(),
                    readonly: true,
                },
                Mount::Bind {
                    source: "/vol/cache/_data".into(),
                    target: "/cache".into(),
                    readonly: false,
                },
                Mount::Tmpfs {
                    target: "/run".into(),
                    options: vec!["size=1m".into()],
                },
            ],
            publish: vec!["127.0.0.1:8080:80".into(), "53:53/udp".into()],
            // What create records for those -p flags (ports are resolved at create time).
            network: crate::network::Plan {
                mode: crate::network::Mode::Pasta,
                ports: vec![
                    crate::network::PortMapping {
                        host_ip: Some([127, 0, 0, 1].into()),
                        host_port: 8080,
                        container_port: 80,
                        protocol: crate::network::Protocol::Tcp,
                    },
                    crate::network::PortMapping {
                        host_ip: None,
                        host_port: 53,
                        container_port: 53,
                        protocol: crate::network::Protocol::Udp,
                    },
                ],
            },
            caps: vec!["CAP_CHOWN".into(), "CAP_NET_ADMIN".into()],
            no_new_privileges: true,
            limits: crate::cgroup::Limits::parse(&crate::cgroup::LimitFlags {
                memory: Some("64m".into()),
                cpus: Some(0.5),
                ..Default::default()
            })
            .unwrap(),
            settings: crate::spec::Settings {
                annotations: [("team".to_string(), "infra".to_string())].into(),
                sysctls: [("net.ipv4.ip_forward".to_string(), "1".to_string())].into(),
                ..Default::default()
            },
            ..Default::default()
        };
        let web = record("Web_1", spec);
        let side = record(
            "side",
            Spec {
                args: vec!["true".into()],
                privileged: true,
                ..Default::default()
            },
        );
        let pod = pod(&[web, side], Path::new("/vol"));
        let yaml = to_yaml(&pod);
        assert_valid_pod(&yaml);
        let c = &pod["spec"]["containers"][0];
        assert_eq!(c["name"], "web-1");
        assert_eq!(c["command"], json!(["sh"]));
        assert_eq!(c["args"], json!(["-c", "echo hi; sleep 1"]));
        assert_eq!(c["resources"]["limits"]["memory"], "67108864");
        assert_eq!(c["resources"]["limits"]["cpu"], "500m");
        assert_eq!(c["securityContext"]["runAsUser"], 1000);
        assert_eq!(c["ports"][0]["hostIP"], "127.0.0.1");
        assert_eq!(c["ports"][1]["protocol"], "UDP");
        assert_eq!(pod["spec"]["volumes"][1]["name"], "cache");
        assert_eq!(pod["spec"]["volumes"][2]["emptyDir"]["medium"], "Memory");
        assert_eq!(pod["metadata"]["name"], "web-1-pod");
        assert_eq!(pod["metadata"]["annotations"]["team"], "infra");
        assert_eq!(
            pod["spec"]["securityContext"]["sysctls"],
            json!([{"name": "net.ipv4.ip_forward", "value": "1"}])
        );
    }

    #[test]
    fn a_bad_field_fails_the_check() {
        let bad = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\nspec:\n  containers:\n  - name: x\n    image: alpine\n    bogus: 1\n";
        let r = std::panic::catch_unwind(|| assert_valid_pod(bad));
        assert!(r.is_err());
        let wrong_type = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\nspec:\n  containers:\n  - name: x\n    ports:\n    - containerPort: \"80\"\n";
        assert!(serde_yaml::from_str::<k8s_openapi::api::core::v1::Pod>(wrong_type).is_err());
    }
}
