//! `box version`: podman's `version` for box, its fields named as podman names them
//! (`{{.Client.Version}}`, `{{.Client.OsArch}}`), with RustVersion for GoVersion.
use anyhow::Result;
use serde_json::{Value, json};

use crate::cli::args::VersionArgs;
use crate::template::{self, Format};

pub fn version(args: VersionArgs) -> Result<u8> {
    let info = info();
    match Format::from_arg(args.format.as_deref()) {
        Format::Json => println!("{}", serde_json::to_string(&info)?),
        Format::Template { source, .. } => {
            let out = template::Template::parse(&source)?.render(&info)?;
            println!("{out}");
        }
        Format::Table => print!("{}", table(&info["Client"])),
    }
    Ok(0)
}

/// `{"Client": {...}}`, as podman's `version --format json`.
pub fn info() -> Value {
    let built = built_secs();
    let os = std::env::consts::OS;
    let arch = go_arch(std::env::consts::ARCH);
    json!({
        "Client": {
            "Version": env!("CARGO_PKG_VERSION"),
            "RustVersion": env!("BOX_RUSTC_VERSION"),
            "GitCommit": env!("BOX_BUILD_BOX_GIT_COMMIT"),
            "BuiltTime": built.map(crate::units::rfc3339_seconds).unwrap_or_default(),
            "Built": built.unwrap_or(0),
            "OsArch": format!("{os}/{arch}"),
            "Os": os,
            "Arch": arch,
        }
    })
}

/// podman's layout: one `Key:` column 14 wide; empty values left out.
fn table(client: &Value) -> String {
    let mut out = String::from("Client:       box\n");
    for (label, key) in [
        ("Version", "Version"),
        ("Rust Version", "RustVersion"),
        ("Git Commit", "GitCommit"),
        ("Built", "BuiltTime"),
        ("OS/Arch", "OsArch"),
    ] {
        let v = client[key].as_str().unwrap_or_default();
        if !v.is_empty() {
            out.push_str(&format!("{:<14}{v}\n", format!("{label}:")));
        }
    }
    out
}

/// When this box was built: SOURCE_DATE_EPOCH given to the build (reproducible builds),
/// else when the executable was written.
fn built_secs() -> Option<u64> {
    if let Ok(s) = env!("BOX_BUILD_SOURCE_DATE_EPOCH").parse::<u64>() {
        return Some(s);
    }
    let m = std::fs::metadata("/proc/self/exe").ok()?.modified().ok()?;
    Some(crate::units::unix_secs(m))
}

/// Go's names for architectures (what image platforms and podman use).
fn go_arch(rust: &str) -> &str {
    match rust {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_has_podmans_fields() {
        let v = info();
        let c = &v["Client"];
        assert_eq!(c["Version"], env!("CARGO_PKG_VERSION"));
        assert!(
            c["RustVersion"].as_str().unwrap().starts_with("rustc "),
            "{v}"
        );
        assert_eq!(
            c["OsArch"].as_str().unwrap(),
            format!(
                "{}/{}",
                c["Os"].as_str().unwrap(),
                c["Arch"].as_str().unwrap()
            )
        );
        assert!(c["Built"].as_u64().unwrap() > 0, "{v}");
        let t = table(c);
        assert!(t.starts_with("Client:       box\nVersion:      "), "{t}");
        assert!(t.contains("\nRust Version: rustc "), "{t}");
        assert!(!t.contains("Git Commit:") || !c["GitCommit"].as_str().unwrap().is_empty());
    }

    #[test]
    fn go_architecture_names() {
        assert_eq!(go_arch("x86_64"), "amd64");
        assert_eq!(go_arch("aarch64"), "arm64");
    }
}
