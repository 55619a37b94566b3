//! Docker/OCI seccomp profiles (`--security-opt seccomp=profile.json`), compiled with
//! seccompiler.
//!
//! A docker profile is a default action plus entries `{names, action, args, includes,
//! excludes}`. seccompiler filters have one match action each, so the profile becomes a
//! stack of filters, installed in this order:
//!
//! 1. unless the default is "allow": match the entries whose action is allow → allow,
//!    anything else → the default action;
//! 2. one filter per other action: its entries → that action, anything else → allow.
//!
//! The kernel runs every filter and keeps the most restrictive answer (for two errnos, the
//! later filter's), which gives each listed syscall its own action and the rest the
//! default. Entries for other architectures, newer kernels or capabilities the container
//! lacks are left out as docker does; syscall names this architecture does not have are
//! skipped, as libseccomp skips them.
use std::collections::BTreeMap;

use seccompiler::{BpfProgram, TargetArch};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    default_action: String,
    #[serde(default, deserialize_with = "null_is_default")]
    default_errno_ret: Option<u32>,
    #[serde(default, deserialize_with = "null_is_default")]
    syscalls: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    #[serde(default, deserialize_with = "null_is_default")]
    names: Vec<String>,
    /// Old profiles name one syscall.
    #[serde(default, deserialize_with = "null_is_default")]
    name: Option<String>,
    action: String,
    #[serde(default, deserialize_with = "null_is_default")]
    errno_ret: Option<u32>,
    #[serde(default, deserialize_with = "null_is_default")]
    args: Vec<Arg>,
    #[serde(default, deserialize_with = "null_is_default")]
    includes: Filter,
    #[serde(default, deserialize_with = "null_is_default")]
    excludes: Filter,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default, deserialize_with = "null_is_default")]
    caps: Vec<String>,
    #[serde(default, deserialize_with = "null_is_default")]
    arches: Vec<String>,
    #[serde(default, deserialize_with = "null_is_default")]
    min_kernel: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Arg {
    index: u8,
    value: u64,
    #[serde(default, deserialize_with = "null_is_default")]
    value_two: u64,
    op: String,
}

/// `null` where a list or object is expected (podman's profiles have them) means empty.
fn null_is_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// What the container is: its capabilities (`CAP_…`) and the kernel it runs on.
pub struct Target<'a> {
    pub caps: &'a [String],
    /// (major, minor) of the running kernel.
    pub kernel: (u32, u32),
}

/// Compile the profile text into BPF programs, in installation order.
pub fn compile(text: &str, target: &Target) -> Result<Vec<BpfProgram>, String> {
    let profile: Profile =
        serde_json::from_str(text).map_err(|e| format!("not a seccomp profile: {e}"))?;
    let arch: TargetArch = std::env::consts::ARCH
        .try_into()
        .map_err(|_| format!("seccomp is not supported on {}", std::env::consts::ARCH))?;
    let default = action(&profile.default_action, profile.default_errno_ret, None)?;
    // action (as seccompiler JSON) → syscall → rules (each a list of conditions; an empty
    // list matches the syscall whatever its arguments).
    let mut groups: BTreeMap<String, BTreeMap<String, Vec<Vec<Value>>>> = BTreeMap::new();
    // Profiles name a syscall in several entries: ask seccompiler about each name once.
    let mut known_names: std::collections::HashMap<&str, bool> = Default::default();
    for e in &profile.syscalls {
        if !applies(e, target) {
            continue;
        }
        let act = action(&e.action, e.errno_ret, profile.default_errno_ret)?;
        let conds = e
            .args
            .iter()
            .map(condition)
            .collect::<Result<Vec<_>, _>>()?;
        let names = e.names.iter().chain(e.name.iter());
        for name in names {
            if !*known_names
                .entry(name.as_str())
                .or_insert_with(|| known(name, arch))
            {
                continue;
            }
            let rules = groups
                .entry(act.to_string())
                .or_default()
                .entry(name.clone())
                .or_default();
            rules.push(conds.clone());
        }
    }
    let allow = json!("allow").to_string();
    let mut filters = Vec::new();
    if default != json!("allow") {
        let rules = groups.remove(&allow).unwrap_or_default();
        filters.push(filter(&default, &json!("allow"), rules));
    } else {
        groups.remove(&allow);
    }
    for (act, rules) in groups {
        let act: Value = serde_json::from_str(&act).expect("our own JSON");
        filters.push(filter(&json!("allow"), &act, rules));
    }
    filters
        .into_iter()
        .enumerate()
        .map(|(i, f)| {
            let doc = json!({ format!("f{i}"): f });
            let mut map = seccompiler::compile_from_json(doc.to_string().as_bytes(), arch)
                .map_err(|e| format!("cannot compile the profile: {e}"))?;
            Ok(map.remove(&format!("f{i}")).expect("the filter we named"))
        })
        .collect()
}

/// One seccompiler filter: `rules` → `on_match`, everything else → `mismatch`.
fn filter(mismatch: &Value, on_match: &Value, rules: BTreeMap<String, Vec<Vec<Value>>>) -> Value {
    let mut list = Vec::new();
    for (name, alternatives) in rules {
        // A rule without conditions matches every call: the conditional ones add nothing.
        if alternatives.iter().any(|c| c.is_empty()) {
            list.push(json!({ "syscall": name }));
            continue;
        }
        for conds in alternatives {
            list.push(json!({ "syscall": name, "args": conds }));
        }
    }
    json!({ "mismatch_action": mismatch, "match_action": on_match, "filter": list })
}

/// Docker's action names as seccompiler JSON actions.
fn action(name: &str, errno: Option<u32>, default_errno: Option<u32>) -> Result<Value, String> {
    let errno = errno.or(default_errno).unwrap_or(libc::EPERM as u32);
    Ok(match name {
        "SCMP_ACT_ALLOW" => json!("allow"),
        "SCMP_ACT_ERRNO" => json!({ "errno": errno }),
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => json!("kill_thread"),
        "SCMP_ACT_KILL_PROCESS" => json!("kill_process"),
        "SCMP_ACT_TRAP" => json!("trap"),
        "SCMP_ACT_LOG" => json!("log"),
        "SCMP_ACT_TRACE" => json!({ "trace": errno }),
        other => return Err(format!("unsupported seccomp action {other}")),
    })
}

/// Docker's comparison as a seccompiler condition (64-bit, as libseccomp compares).
fn condition(a: &Arg) -> Result<Value, String> {
    let (op, val) = match a.op.as_str() {
        "SCMP_CMP_EQ" => (json!("eq"), a.value),
        "SCMP_CMP_NE" => (json!("ne"), a.value),
        "SCMP_CMP_LT" => (json!("lt"), a.value),
        "SCMP_CMP_LE" => (json!("le"), a.value),
        "SCMP_CMP_GT" => (json!("gt"), a.value),
        "SCMP_CMP_GE" => (json!("ge"), a.value),
        // value is the mask, valueTwo what the masked argument must equal.
        "SCMP_CMP_MASKED_EQ" => (json!({ "masked_eq": a.value }), a.value_two),
        other => return Err(format!("unsupported seccomp comparison {other}")),
    };
    if a.index > 5 {
        return Err(format!("seccomp argument index {} is not 0..5", a.index));
    }
    Ok(json!({ "index": a.index, "type": "qword", "op": op, "val": val }))
}

/// Whether an entry is for this container, with docker's rules: every included
/// capability present, no excluded one; the architecture listed (when any is); the kernel
/// at least `minKernel`.
fn applies(e: &Entry, t: &Target) -> bool {
    let has = |c: &String| {
        let full = if c.starts_with("CAP_") {
            c.clone()
        } else {
            format!("CAP_{c}")
        };
        t.caps.contains(&full)
    };
    let arch = docker_arch();
    let arch_listed = |arches: &[String]| {
        arches
            .iter()
            .any(|a| a == arch || a == std::env::consts::ARCH)
    };
    if !e.includes.caps.iter().all(has) || e.excludes.caps.iter().any(has) {
        return false;
    }
    if !e.includes.arches.is_empty() && !arch_listed(&e.includes.arches) {
        return false;
    }
    if arch_listed(&e.excludes.arches) {
        return false;
    }
    if let Some(min) = e.includes.min_kernel.as_deref().and_then(parse_kernel)
        && t.kernel < min
    {
        return false;
    }
    true
}

/// The architecture as docker's profiles name it.
fn docker_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// "5.8" or "6.1.0-13-amd64" → (major, minor).
pub fn parse_kernel(s: &str) -> Option<(u32, u32)> {
    let mut parts = s.split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// The running kernel's (major, minor).
pub fn running_kernel() -> (u32, u32) {
    nix::sys::utsname::uname()
        .ok()
        .and_then(|u| parse_kernel(&u.release().to_string_lossy()))
        .unwrap_or((0, 0))
}

/// Whether seccompiler knows `name` on `arch` (unknown names are skipped).
fn known(name: &str, arch: TargetArch) -> bool {
    let doc = json!({ "p": {
        "mismatch_action": "allow",
        "match_action": { "errno": 1 },
        "filter": [{ "syscall": name }],
    }});
    seccompiler::compile_from_json(doc.to_string().as_bytes(), arch).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(caps: &[&str]) -> (Vec<String>, (u32, u32)) {
        (caps.iter().map(|c| c.to_string()).collect(), (6, 1))
    }

    fn compile_for(text: &str, caps: &[&str]) -> Result<Vec<BpfProgram>, String> {
        let (caps, kernel) = target(caps);
        compile(
            text,
            &Target {
                caps: &caps,
                kernel,
            },
        )
    }

    #[test]
    fn allow_list_profiles_become_a_default_filter_and_one_per_action() {
        let text = r#"{
            "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
            "syscalls": [
                {"names": ["read", "write", "no_such_syscall"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "args": null,
                 "includes": {"caps": ["CAP_SYS_ADMIN"]}}
            ]
        }"#;
        assert_eq!(compile_for(text, &[]).unwrap().len(), 2);
        // Only log entries besides the default: still two filters.
        let deny_list = r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["chmod"], "action": "SCMP_ACT_LOG"}]}"#;
        assert_eq!(compile_for(deny_list, &[]).unwrap().len(), 2);
    }

    #[test]
    fn entries_follow_docker_rules_for_caps_arches_and_kernels() {
        let (caps, _) = target(&["CAP_SYS_ADMIN"]);
        let entry = |json: &str| -> Entry { serde_json::from_str(json).unwrap() };
        let t = Target {
            caps: &caps,
            kernel: (5, 4),
        };
        assert!(applies(
            &entry(r#"{"action": "x", "includes": {"caps": ["CAP_SYS_ADMIN"]}}"#),
            &t
        ));
        assert!(!applies(
            &entry(r#"{"action": "x", "includes": {"caps": ["CAP_SYS_ADMIN", "CAP_BPF"]}}"#),
            &t
        ));
        assert!(!applies(
            &entry(r#"{"action": "x", "excludes": {"caps": ["CAP_SYS_ADMIN"]}}"#),
            &t
        ));
        assert!(!applies(
            &entry(r#"{"action": "x", "includes": {"arches": ["s390x"]}}"#),
            &t
        ));
        assert!(applies(
            &entry(&format!(
                r#"{{"action": "x", "includes": {{"arches": ["{}"]}}}}"#,
                docker_arch()
            )),
            &t
        ));
        assert!(!applies(
            &entry(r#"{"action": "x", "includes": {"minKernel": "5.8"}}"#),
            &t
        ));
        assert!(applies(
            &entry(r#"{"action": "x", "includes": {"minKernel": "4.14"}}"#),
            &t
        ));
    }

    #[test]
    fn mistakes_are_named() {
        let e = compile_for("{}", &[]).unwrap_err();
        assert!(e.contains("not a seccomp profile"), "{e}");
        let e = compile_for(r#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#, &[]).unwrap_err();
        assert!(
            e.contains("unsupported seccomp action SCMP_ACT_NOTIFY"),
            "{e}"
        );
        let e = compile_for(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"],
                "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ODD"}]}]}"#,
            &[],
        )
        .unwrap_err();
        assert!(e.contains("SCMP_CMP_ODD"), "{e}");
        assert_eq!(parse_kernel("6.1.0-13-amd64"), Some((6, 1)));
    }
}
