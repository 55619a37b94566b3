//! `box kube play`: Kubernetes YAML read into a typed plan, every document checked before
//! anything is created (so a bad file creates nothing).
//!
//! Kinds: Pod, Deployment (one replica: its template is the pod, named after the
//! Deployment), ConfigMap and Secret (for `env[].valueFrom` and `envFrom`),
//! PersistentVolumeClaim (a named volume). A pod's containers: image, command/args,
//! env, workingDir, ports with a hostPort (published by the pod), volumeMounts of hostPath,
//! emptyDir (a volume shared by the pod's containers; `medium: Memory` a tmpfs per
//! container) and persistentVolumeClaim volumes, securityContext (runAsUser/Group,
//! readOnlyRootFilesystem, capabilities, privileged, allowPrivilegeEscalation; the pod's
//! runAsUser/Group as defaults), resources.limits (memory, cpu), tty/stdin, and the pod's
//! restartPolicy, hostname, hostNetwork and labels. Anything else that would change what
//! runs is refused naming it and the line of its document.
//!
//! The plan says what to create in box's own terms (`-v`, `-p`, ...): `commands::kube`
//! turns it into the same records `box pod create` and `box create --pod` make.
use std::collections::BTreeMap;

use base64::Engine;
use serde_yaml::Value;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("line {line}: not valid YAML: {why}")]
    Yaml { line: usize, why: String },
    #[error(
        "line {line}: unsupported kind {kind:?}: box kube play handles Pod, Deployment, ConfigMap, Secret and PersistentVolumeClaim"
    )]
    UnsupportedKind { kind: String, line: usize },
    #[error("line {line}: {kind} {name:?}: {why}")]
    Invalid {
        kind: String,
        name: String,
        line: usize,
        why: String,
    },
    #[error("the YAML has no Pod or Deployment to play")]
    Empty,
}

/// What a YAML file asks for.
#[derive(Debug, Default)]
pub struct Play {
    pub pods: Vec<PodPlan>,
    /// PersistentVolumeClaims: named volumes (created when missing, kept by `down`).
    pub claims: Vec<String>,
}

#[derive(Debug, Default)]
pub struct PodPlan {
    pub name: String,
    /// The line of its document.
    pub line: usize,
    pub hostname: Option<String>,
    pub host_network: bool,
    pub labels: BTreeMap<String, String>,
    /// `--restart` for its containers.
    pub restart: String,
    /// `-p` of the pod, from the containers' hostPorts.
    pub publish: Vec<String>,
    /// emptyDir volumes: named volumes `<pod>-<volume>` shared by its containers (made by
    /// play, removed by down).
    pub shared_volumes: Vec<String>,
    /// hostPath directories/files to create (`DirectoryOrCreate`, `FileOrCreate`).
    pub create_dirs: Vec<String>,
    pub create_files: Vec<String>,
    pub containers: Vec<ContainerPlan>,
    /// `metadata.annotations` (box's own `io.box.*` left out): `--annotation` of each
    /// container, as `generate kube` collects them.
    pub annotations: BTreeMap<String, String>,
    /// The pod's `securityContext.sysctls`: `--sysctl` of each container (namespaced, so
    /// shared by the pod).
    pub sysctls: Vec<(String, String)>,
}

#[derive(Debug, Default, Clone)]
pub struct ContainerPlan {
    /// The container's name in the YAML (box names it `<pod>-<name>`, as podman).
    pub name: String,
    pub image: String,
    /// `command`: replaces the image's entrypoint (and its Cmd).
    pub command: Option<Vec<String>>,
    /// `args`: replaces the image's Cmd.
    pub args: Vec<String>,
    /// KEY=VALUE, references resolved.
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    /// `uid[:gid]`.
    pub user: Option<String>,
    pub read_only: bool,
    pub privileged: bool,
    pub no_new_privileges: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    /// `-v` values.
    pub volumes: Vec<String>,
    /// `--tmpfs` values.
    pub tmpfs: Vec<String>,
    /// `--memory` in bytes.
    pub memory: Option<u64>,
    pub cpus: Option<f64>,
    pub tty: bool,
    pub stdin: bool,
}

/// One YAML document and the line it starts on (its `kind:` line when it has one).
struct Doc {
    value: Value,
    line: usize,
}

/// Split a multi-document stream at `---` lines and parse each document.
fn documents(text: &str) -> Result<Vec<Doc>, Error> {
    let mut chunks: Vec<(usize, String)> = vec![(1, String::new())];
    for (i, l) in text.lines().enumerate() {
        let t = l.trim_end();
        if t == "---" || t.starts_with("--- ") || t == "..." {
            chunks.push((i + 2, String::new()));
            continue;
        }
        let last = chunks.last_mut().expect("one chunk");
        last.1.push_str(l);
        last.1.push('\n');
    }
    let mut docs = Vec::new();
    for (start, chunk) in chunks {
        let value: Value = serde_yaml::from_str(&chunk).map_err(|e| Error::Yaml {
            line: start - 1 + e.location().map(|l| l.line()).unwrap_or(1),
            why: e.to_string(),
        })?;
        if value.is_null() {
            continue;
        }
        let kind_line = chunk
            .lines()
            .position(|l| l.starts_with("kind:"))
            .map(|p| start + p)
            .unwrap_or(start);
        docs.push(Doc {
            value,
            line: kind_line,
        });
    }
    Ok(docs)
}

/// A scalar as text (YAML may give a number or boolean where Kubernetes wants a string).
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_sequence)
        .map(|s| s.iter().filter_map(text).collect())
        .unwrap_or_default()
}

fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_mapping)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((text(k)?, text(v)?)))
                .collect()
        })
        .unwrap_or_default()
}

/// Where an error is: the document's kind, name and line.
struct At<'a> {
    kind: &'a str,
    name: &'a str,
    line: usize,
}

impl At<'_> {
    fn err(&self, why: impl Into<String>) -> Error {
        Error::Invalid {
            kind: self.kind.to_string(),
            name: self.name.to_string(),
            line: self.line,
            why: why.into(),
        }
    }
}

/// ConfigMaps and Secrets by name: their data as text.
#[derive(Default)]
struct Sources {
    config_maps: BTreeMap<String, BTreeMap<String, String>>,
    secrets: BTreeMap<String, BTreeMap<String, String>>,
}

/// Read a YAML stream into a plan; nothing is created.
pub fn parse(text_in: &str) -> Result<Play, Error> {
    let docs = documents(text_in)?;
    let mut sources = Sources::default();
    let mut play = Play::default();
    let mut pods = Vec::new();
    // ConfigMaps and Secrets first: a Pod may come before the ConfigMap it reads.
    for doc in &docs {
        let kind = doc.value.get("kind").and_then(text).unwrap_or_default();
        let name = doc
            .value
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(text)
            .unwrap_or_default();
        let at = At {
            kind: &kind,
            name: &name,
            line: doc.line,
        };
        match kind.as_str() {
            "ConfigMap" => {
                let data = string_map(doc.value.get("data"));
                if doc.value.get("binaryData").is_some() {
                    return Err(at.err("binaryData is not supported"));
                }
                sources.config_maps.insert(name.clone(), data);
            }
            "Secret" => {
                let mut data = BTreeMap::new();
                for (k, v) in string_map(doc.value.get("data")) {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(v.trim())
                        .map_err(|e| at.err(format!("data.{k} is not base64: {e}")))?;
                    let s = String::from_utf8(bytes)
                        .map_err(|_| at.err(format!("data.{k} is not UTF-8 text")))?;
                    data.insert(k, s);
                }
                data.extend(string_map(doc.value.get("stringData")));
                sources.secrets.insert(name.clone(), data);
            }
            "PersistentVolumeClaim" => {
                if name.is_empty() {
                    return Err(at.err("metadata.name is missing"));
                }
                play.claims.push(name.clone());
            }
            "Pod" | "Deployment" => pods.push((kind.clone(), name.clone(), doc)),
            "" => {
                return Err(Error::UnsupportedKind {
                    kind: String::new(),
                    line: doc.line,
                });
            }
            _ => {
                return Err(Error::UnsupportedKind {
                    kind,
                    line: doc.line,
                });
            }
        }
    }
    for (kind, name, doc) in pods {
        let at = At {
            kind: &kind,
            name: &name,
            line: doc.line,
        };
        if name.is_empty() {
            return Err(at.err("metadata.name is missing"));
        }
        let (meta, spec) = if kind == "Deployment" {
            let dspec = doc
                .value
                .get("spec")
                .ok_or_else(|| at.err("spec is missing"))?;
            let replicas = dspec.get("replicas").and_then(Value::as_u64).unwrap_or(1);
            if replicas != 1 {
                return Err(at.err(format!(
                    "replicas: {replicas}: box plays a Deployment as one pod (replicas: 1)"
                )));
            }
            let template = dspec
                .get("template")
                .ok_or_else(|| at.err("spec.template is missing"))?;
            (
                template.get("metadata").cloned().unwrap_or(Value::Null),
                template
                    .get("spec")
                    .ok_or_else(|| at.err("spec.template.spec is missing"))?,
            )
        } else {
            (
                doc.value.get("metadata").cloned().unwrap_or(Value::Null),
                doc.value
                    .get("spec")
                    .ok_or_else(|| at.err("spec is missing"))?,
            )
        };
        // podman names a Deployment's pod `<name>-pod`.
        let pod_name = if kind == "Deployment" {
            format!("{name}-pod")
        } else {
            name.clone()
        };
        let mut labels = string_map(doc.value.get("metadata").and_then(|m| m.get("labels")));
        labels.extend(string_map(meta.get("labels")));
        let mut annotations =
            string_map(doc.value.get("metadata").and_then(|m| m.get("annotations")));
        annotations.extend(string_map(meta.get("annotations")));
        annotations.retain(|k, _| !k.starts_with("io.box."));
        let mut plan = pod_plan(&at, &pod_name, labels, spec, &sources)?;
        plan.annotations = annotations;
        play.pods.push(plan);
    }
    if play.pods.is_empty() {
        return Err(Error::Empty);
    }
    Ok(play)
}

/// A pod's volumes by name.
enum Volume {
    HostPath(String),
    Shared(String),
    Memory,
    Claim(String),
}

fn pod_plan(
    at: &At,
    name: &str,
    labels: BTreeMap<String, String>,
    spec: &Value,
    sources: &Sources,
) -> Result<PodPlan, Error> {
    let mut pod = PodPlan {
        name: name.to_string(),
        line: at.line,
        hostname: spec.get("hostname").and_then(text),
        host_network: spec
            .get("hostNetwork")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        labels,
        ..Default::default()
    };
    if !crate::container::is_docker_name(name, 253) {
        return Err(at.err(format!("{name:?} is not a valid pod name")));
    }
    pod.restart = match spec
        .get("restartPolicy")
        .and_then(text)
        .as_deref()
        .unwrap_or("Always")
    {
        "Always" => "always",
        "OnFailure" => "on-failure",
        "Never" => "no",
        other => {
            return Err(at.err(format!(
                "restartPolicy {other:?}: use Always, OnFailure or Never"
            )));
        }
    }
    .to_string();
    for key in ["initContainers", "ephemeralContainers"] {
        if spec.get(key).is_some() {
            return Err(at.err(format!("{key} are not supported")));
        }
    }
    let mut volumes = BTreeMap::new();
    for v in spec
        .get("volumes")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
    {
        let vname = v
            .get("name")
            .and_then(text)
            .ok_or_else(|| at.err("a volume has no name"))?;
        let vol = if let Some(h) = v.get("hostPath") {
            let path = h
                .get("path")
                .and_then(text)
                .ok_or_else(|| at.err(format!("volume {vname}: hostPath.path is missing")))?;
            if !path.starts_with('/') {
                return Err(at.err(format!(
                    "volume {vname}: hostPath.path {path:?} is not absolute"
                )));
            }
            match h.get("type").and_then(text).as_deref().unwrap_or("") {
                "DirectoryOrCreate" => pod.create_dirs.push(path.clone()),
                "FileOrCreate" => pod.create_files.push(path.clone()),
                _ => {}
            }
            Volume::HostPath(path)
        } else if let Some(e) = v.get("emptyDir") {
            if e.get("medium").and_then(text).as_deref() == Some("Memory") {
                Volume::Memory
            } else {
                let shared = format!("{name}-{vname}");
                pod.shared_volumes.push(shared.clone());
                Volume::Shared(shared)
            }
        } else if let Some(c) = v.get("persistentVolumeClaim") {
            Volume::Claim(c.get("claimName").and_then(text).ok_or_else(|| {
                at.err(format!(
                    "volume {vname}: persistentVolumeClaim.claimName is missing"
                ))
            })?)
        } else {
            let what = v
                .as_mapping()
                .and_then(|m| m.keys().filter_map(text).find(|k| k != "name"))
                .unwrap_or_default();
            return Err(at.err(format!(
                "volume {vname}: {what} volumes are not supported (use hostPath, emptyDir or persistentVolumeClaim)"
            )));
        };
        volumes.insert(vname, vol);
    }
    let pod_sc = spec.get("securityContext");
    if let Some(list) = pod_sc
        .and_then(|sc| sc.get("sysctls"))
        .and_then(Value::as_sequence)
    {
        for item in list {
            let (Some(k), Some(v)) = (
                item.get("name").and_then(text),
                item.get("value").and_then(text),
            ) else {
                return Err(at.err("securityContext.sysctls: each entry needs a name and a value"));
            };
            pod.sysctls.push((k, v));
        }
    }
    let containers = spec
        .get("containers")
        .and_then(Value::as_sequence)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| at.err("spec.containers is missing or empty"))?;
    for c in containers {
        pod.containers.push(container_plan(
            at,
            c,
            pod_sc,
            &volumes,
            sources,
            &mut pod.publish,
        )?);
    }
    Ok(pod)
}

fn container_plan(
    at: &At,
    c: &Value,
    pod_sc: Option<&Value>,
    volumes: &BTreeMap<String, Volume>,
    sources: &Sources,
    publish: &mut Vec<String>,
) -> Result<ContainerPlan, Error> {
    let name = c
        .get("name")
        .and_then(text)
        .ok_or_else(|| at.err("a container has no name"))?;
    let cerr = |why: String| at.err(format!("container {name}: {why}"));
    let image = c
        .get("image")
        .and_then(text)
        .ok_or_else(|| cerr("image is missing".into()))?;
    let mut plan = ContainerPlan {
        name: name.clone(),
        image,
        command: c.get("command").map(|v| strings(Some(v))),
        args: strings(c.get("args")),
        working_dir: c.get("workingDir").and_then(text),
        tty: c.get("tty").and_then(Value::as_bool).unwrap_or(false),
        stdin: c.get("stdin").and_then(Value::as_bool).unwrap_or(false),
        ..Default::default()
    };
    // env and envFrom.
    let lookup =
        |kind: &str, src: &str, key: Option<&str>| -> Result<Vec<(String, String)>, Error> {
            let map = match kind {
                "configMap" => sources.config_maps.get(src),
                _ => sources.secrets.get(src),
            };
            let what = if kind == "configMap" {
                "ConfigMap"
            } else {
                "Secret"
            };
            let map = map.ok_or_else(|| cerr(format!("{what} {src:?} is not in the YAML")))?;
            match key {
                Some(k) => map
                    .get(k)
                    .map(|v| vec![(k.to_string(), v.clone())])
                    .ok_or_else(|| cerr(format!("{what} {src:?} has no key {k:?}"))),
                None => Ok(map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
            }
        };
    for from in c
        .get("envFrom")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
    {
        let prefix = from.get("prefix").and_then(text).unwrap_or_default();
        let (kind, r) = match (from.get("configMapRef"), from.get("secretRef")) {
            (Some(r), _) => ("configMap", r),
            (_, Some(r)) => ("secret", r),
            _ => return Err(cerr("envFrom needs configMapRef or secretRef".into())),
        };
        let src = r.get("name").and_then(text).unwrap_or_default();
        for (k, v) in lookup(kind, &src, None)? {
            plan.env.push(format!("{prefix}{k}={v}"));
        }
    }
    for e in c
        .get("env")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
    {
        let k = e
            .get("name")
            .and_then(text)
            .ok_or_else(|| cerr("an env entry has no name".into()))?;
        if let Some(from) = e.get("valueFrom") {
            let (kind, r) = match (from.get("configMapKeyRef"), from.get("secretKeyRef")) {
                (Some(r), _) => ("configMap", r),
                (_, Some(r)) => ("secret", r),
                _ => {
                    return Err(cerr(format!(
                        "env {k}: valueFrom supports configMapKeyRef and secretKeyRef"
                    )));
                }
            };
            let src = r.get("name").and_then(text).unwrap_or_default();
            let key = r.get("key").and_then(text).unwrap_or_default();
            let optional = r.get("optional").and_then(Value::as_bool).unwrap_or(false);
            match lookup(kind, &src, Some(&key)) {
                Ok(v) => plan.env.push(format!("{k}={}", v[0].1)),
                Err(_) if optional => {}
                Err(e) => return Err(e),
            }
        } else {
            let v = e.get("value").and_then(text).unwrap_or_default();
            plan.env.push(format!("{k}={v}"));
        }
    }
    // Ports with a hostPort are the pod's.
    for p in c
        .get("ports")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
    {
        let cport = p
            .get("containerPort")
            .and_then(Value::as_u64)
            .ok_or_else(|| cerr("a port has no containerPort".into()))?;
        let Some(hport) = p.get("hostPort").and_then(Value::as_u64) else {
            continue;
        };
        let proto = p
            .get("protocol")
            .and_then(text)
            .unwrap_or_else(|| "TCP".into())
            .to_ascii_lowercase();
        let ip = p
            .get("hostIP")
            .and_then(text)
            .map(|ip| {
                if ip.contains(':') {
                    format!("[{ip}]:")
                } else {
                    format!("{ip}:")
                }
            })
            .unwrap_or_default();
        publish.push(format!("{ip}{hport}:{cport}/{proto}"));
    }
    for m in c
        .get("volumeMounts")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
    {
        let vname = m.get("name").and_then(text).unwrap_or_default();
        let path = m
            .get("mountPath")
            .and_then(text)
            .ok_or_else(|| cerr(format!("volumeMount {vname}: mountPath is missing")))?;
        if m.get("subPath").is_some() {
            return Err(cerr(format!(
                "volumeMount {vname}: subPath is not supported"
            )));
        }
        let ro = m.get("readOnly").and_then(Value::as_bool).unwrap_or(false);
        let opts = if ro { ":ro" } else { "" };
        match volumes.get(&vname) {
            Some(Volume::HostPath(src)) => plan.volumes.push(format!("{src}:{path}{opts}")),
            Some(Volume::Shared(vol)) | Some(Volume::Claim(vol)) => {
                plan.volumes.push(format!("{vol}:{path}{opts}"))
            }
            Some(Volume::Memory) => plan
                .tmpfs
                .push(if ro { format!("{path}:ro") } else { path }),
            None => {
                return Err(cerr(format!(
                    "volumeMount {vname}: no volume of that name in spec.volumes"
                )));
            }
        }
    }
    // securityContext, the pod's ids as defaults.
    let sc = c.get("securityContext");
    let id = |key: &str| {
        sc.and_then(|s| s.get(key))
            .or_else(|| pod_sc.and_then(|s| s.get(key)))
            .and_then(Value::as_u64)
    };
    plan.user = match (id("runAsUser"), id("runAsGroup")) {
        (Some(u), Some(g)) => Some(format!("{u}:{g}")),
        (Some(u), None) => Some(u.to_string()),
        (None, Some(g)) => Some(format!("0:{g}")),
        (None, None) => None,
    };
    if let Some(sc) = sc {
        let flag = |k: &str| sc.get(k).and_then(Value::as_bool);
        plan.read_only = flag("readOnlyRootFilesystem").unwrap_or(false);
        plan.privileged = flag("privileged").unwrap_or(false);
        plan.no_new_privileges = flag("allowPrivilegeEscalation") == Some(false);
        if let Some(caps) = sc.get("capabilities") {
            plan.cap_add = strings(caps.get("add"));
            plan.cap_drop = strings(caps.get("drop"));
        }
    }
    if let Some(limits) = c.get("resources").and_then(|r| r.get("limits")) {
        if let Some(m) = limits.get("memory").and_then(text) {
            plan.memory =
                Some(memory_quantity(&m).ok_or_else(|| {
                    cerr(format!("resources.limits.memory {m:?} is not a quantity"))
                })?);
        }
        if let Some(cpu) = limits.get("cpu").and_then(text) {
            plan.cpus =
                Some(cpu_quantity(&cpu).ok_or_else(|| {
                    cerr(format!("resources.limits.cpu {cpu:?} is not a quantity"))
                })?);
        }
    }
    Ok(plan)
}

/// A Kubernetes memory quantity (`128Mi`, `1G`, `1000`) in bytes.
pub fn memory_quantity(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    if split == 0 {
        return None;
    }
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult: f64 = match unit {
        "" => 1.0,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024f64.powi(4),
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        _ => return None,
    };
    Some((n * mult) as u64)
}

/// A Kubernetes CPU quantity (`500m`, `0.5`, `2`) in CPUs.
pub fn cpu_quantity(s: &str) -> Option<f64> {
    let s = s.trim();
    match s.strip_suffix('m') {
        Some(milli) => milli.parse::<f64>().ok().map(|m| m / 1000.0),
        None => s.parse().ok(),
    }
    .filter(|c| *c > 0.0)
}

#[cfg(test)]
mod tests;
