//! `box auto-update`: containers labelled `io.containers.autoupdate=registry|local` that
//! run in a systemd unit (the `BOX_SYSTEMD_UNIT` label, recorded at create from the
//! environment the unit sets) are checked against their image: `registry` resolves the
//! image's name on its registry and compares the image id (the config digest), `local`
//! compares with the local image of that name. Without `--dry-run`: pull (registry),
//! `systemctl --user restart UNIT`, and when the unit does not come back active, tag the
//! previous image again and restart once more (`--rollback`, the default).
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::Serialize;

use super::containers;
use crate::cli::Ctx;
use crate::cli::args::{AutoUpdateArgs, LogLevel};
use crate::container::Record;
use crate::storage::Store;

/// The label naming the update policy (podman's).
pub const POLICY_LABEL: &str = "io.containers.autoupdate";
/// The label naming the systemd unit a container runs in.
pub const UNIT_LABEL: &str = "BOX_SYSTEMD_UNIT";

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Report {
    unit: String,
    container: String,
    container_name: String,
    #[serde(rename = "ContainerID")]
    container_id: String,
    image: String,
    policy: String,
    updated: String,
}

pub fn auto_update(ctx: &Ctx, args: AutoUpdateArgs) -> Result<u8> {
    let c = containers(ctx)?;
    let mut reports = Vec::new();
    let mut failed = 0;
    let mut recs = c.list()?;
    recs.sort_by(|a, b| a.name().cmp(b.name()));
    for rec in recs {
        let Some(policy) = rec.config.labels.get(POLICY_LABEL).cloned() else {
            continue;
        };
        let Some(unit) = rec.config.labels.get(UNIT_LABEL).cloned() else {
            eprintln!(
                "box: auto-updating container {}: it does not run in a systemd unit (no {UNIT_LABEL} label): create it from a unit (box quadlet, box generate systemd --new)",
                rec.name()
            );
            failed += 1;
            continue;
        };
        let mut report = Report {
            unit: unit.clone(),
            container: format!("{} ({})", rec.short_id(), rec.name()),
            container_name: rec.name().to_string(),
            container_id: rec.id().to_string(),
            image: rec.config.image_name.clone(),
            policy: policy.clone(),
            updated: "false".into(),
        };
        let newer = match policy.as_str() {
            "registry" => newer_in_registry(ctx, &rec, args.tls_verify),
            "local" => newer_locally(ctx, &rec),
            other => Err(anyhow::anyhow!(
                "invalid {POLICY_LABEL}={other}: use registry or local"
            )),
        };
        match newer {
            Err(e) => {
                eprintln!("box: auto-updating container {}: {e:#}", rec.name());
                report.updated = "failed".into();
                failed += 1;
            }
            Ok(false) => {}
            Ok(true) if args.dry_run => report.updated = "pending".into(),
            Ok(true) => match update(ctx, &rec, &unit, &policy, args.rollback, args.tls_verify) {
                Ok(word) => report.updated = word.into(),
                Err(e) => {
                    eprintln!("box: auto-updating container {}: {e:#}", rec.name());
                    report.updated = "failed".into();
                    failed += 1;
                }
            },
        }
        reports.push(report);
    }
    print(&reports, args.format.as_deref())?;
    Ok(if failed > 0 {
        crate::exit::BOX_ERROR
    } else {
        0
    })
}

fn print(reports: &[Report], format: Option<&str>) -> Result<()> {
    use crate::template::{Format, Template, table_header};
    match Format::from_arg(format) {
        Format::Json => println!("{}", serde_json::to_string_pretty(reports)?),
        Format::Template { source, table } => {
            let t = Template::parse(&source)?;
            if table {
                println!("{}", table_header(&source));
            }
            for r in reports {
                println!("{}", t.render(&serde_json::to_value(r)?)?);
            }
        }
        Format::Table => {
            let mut rows = vec![
                ["UNIT", "CONTAINER", "IMAGE", "POLICY", "UPDATED"]
                    .map(String::from)
                    .to_vec(),
            ];
            for r in reports {
                rows.push(vec![
                    r.unit.clone(),
                    r.container.clone(),
                    r.image.clone(),
                    r.policy.clone(),
                    r.updated.clone(),
                ]);
            }
            super::table::print(&rows);
        }
    }
    Ok(())
}

/// Whether the registry has another image under the container's image name.
fn newer_in_registry(ctx: &Ctx, rec: &Record, tls_verify: Option<bool>) -> Result<bool> {
    let name = &rec.config.image_name;
    let reference = crate::registry::Reference::parse(name)?;
    let client = crate::registry::client_for(&ctx.paths, tls_verify);
    let resolved = client.resolve(&reference, &crate::registry::Platform::host())?;
    // The image id is the config's digest, whichever manifest format carries it.
    let remote = resolved.manifest.config().digest().to_string();
    Ok(rec.config.image_id != remote)
}

/// Whether the local image of that name is another one than the container's.
fn newer_locally(ctx: &Ctx, rec: &Record) -> Result<bool> {
    let store = Store::open(&ctx.paths)?;
    let Some(image) = store.find_image(&rec.config.image_name)? else {
        anyhow::bail!("no local image {}", rec.config.image_name);
    };
    Ok(rec.config.image_id.trim_start_matches("sha256:") != image.id)
}

/// Pull (registry), restart the unit; roll back when it does not come back.
fn update(
    ctx: &Ctx,
    rec: &Record,
    unit: &str,
    policy: &str,
    rollback: bool,
    tls_verify: Option<bool>,
) -> Result<&'static str> {
    let name = &rec.config.image_name;
    if policy == "registry" {
        crate::storage::pull::pull(
            &ctx.paths,
            name,
            &crate::storage::pull::Options {
                platform: None,
                tls_verify,
            },
            &super::pull::Output::new(true, LogLevel::Error),
        )?;
    }
    if restart(unit).is_ok() {
        return Ok("true");
    }
    if !rollback {
        anyhow::bail!("unit {unit} did not restart with the new image");
    }
    let old = rec.config.image_id.trim_start_matches("sha256:");
    Store::open(&ctx.paths)?.tag(old, name)?;
    crate::events::image(&ctx.paths, "tag", old, name);
    restart(unit)?;
    Ok("rolled back")
}

/// `systemctl --user restart UNIT`, then wait for it to be active (or failed).
fn restart(unit: &str) -> Result<()> {
    let st = Command::new("systemctl")
        .args(["--user", "restart", unit])
        .status()
        .map_err(|e| anyhow::anyhow!("cannot run systemctl --user restart {unit}: {e}"))?;
    if !st.success() {
        anyhow::bail!("systemctl --user restart {unit} failed ({st})");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = Command::new("systemctl")
            .args(["--user", "is-active", unit])
            .output()?;
        let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
        match state.as_str() {
            "active" => {
                // Still active a moment later: it did not fail at once.
                std::thread::sleep(Duration::from_secs(2));
                let again = Command::new("systemctl")
                    .args(["--user", "is-active", unit])
                    .output()?;
                if String::from_utf8_lossy(&again.stdout).trim() == "active" {
                    return Ok(());
                }
            }
            "failed" | "inactive" => anyhow::bail!("unit {unit} is {state} after the restart"),
            _ => {}
        }
        if Instant::now() >= deadline {
            anyhow::bail!("unit {unit} is not active 30 s after the restart ({state})");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
