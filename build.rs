//! Build-time facts `box version` prints: the compiler's version, and what a packager may
//! pass (BOX_GIT_COMMIT, SOURCE_DATE_EPOCH).
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=BOX_GIT_COMMIT");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let version = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    println!("cargo:rustc-env=BOX_RUSTC_VERSION={version}");
    for var in ["BOX_GIT_COMMIT", "SOURCE_DATE_EPOCH"] {
        let value = std::env::var(var).unwrap_or_default();
        println!("cargo:rustc-env=BOX_BUILD_{var}={value}");
    }
}
