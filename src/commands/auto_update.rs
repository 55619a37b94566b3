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
    let failure = match restart(unit, false) {
        Ok(()) => return Ok("true"),
        Err(e) => e,
    };
    if !rollback {
        return Err(failure.context(format!("unit {unit} did not restart with the new image")));
    }
    eprintln!("box: auto-update: {failure:#}: rolling back to the previous image");
    let old = rec.config.image_id.trim_start_matches("sha256:");
    Store::open(&ctx.paths)?.tag(old, name)?;
    crate::events::image(&ctx.paths, "tag", old, name);
    restart(unit, true)?;
    Ok("rolled back")
}

/// How long a restarted unit must keep its main process to count as up: a container whose
/// command fails at once is active for a moment (READY=1 is sent when it starts) and then
/// cycles through `Restart=`, active again now and then.
const SETTLE: Duration = Duration::from_secs(2);

/// What `systemctl show` says of a unit: its state, main process and automatic restarts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct UnitState {
    active: String,
    main_pid: String,
    restarts: String,
}

impl UnitState {
    /// From `systemctl show -p ActiveState,MainPID,NRestarts` (KEY=VALUE lines).
    fn parse(text: &str) -> UnitState {
        let mut st = UnitState::default();
        for line in text.lines() {
            match line.split_once('=') {
                Some(("ActiveState", v)) => st.active = v.to_string(),
                Some(("MainPID", v)) => st.main_pid = v.to_string(),
                Some(("NRestarts", v)) => st.restarts = v.to_string(),
                _ => {}
            }
        }
        st
    }
}

/// Whether a unit seen `before` the settling time and `after` it stayed up: active both
/// times with the same main process and no automatic restart in between.
fn stayed_up(unit: &str, before: &UnitState, after: &UnitState) -> Result<()> {
    if after.active != "active" {
        anyhow::bail!("unit {unit} is {} after the restart", after.active);
    }
    if after.main_pid != before.main_pid || after.restarts != before.restarts {
        anyhow::bail!(
            "unit {unit} did not stay up after the restart (main process {} then {}, restarted {} times)",
            before.main_pid,
            after.main_pid,
            after.restarts
        );
    }
    Ok(())
}

fn show(unit: &str) -> Result<UnitState> {
    let out = Command::new("systemctl")
        .args([
            "--user",
            "show",
            "-p",
            "ActiveState,MainPID,NRestarts",
            unit,
        ])
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run systemctl --user show {unit}: {e}"))?;
    Ok(UnitState::parse(&String::from_utf8_lossy(&out.stdout)))
}

/// `systemctl --user restart UNIT` (after `reset-failed` when `reset`: a unit that hit its
/// start limit cycling through a broken image refuses to start otherwise), then wait for it
/// to be active and to stay up for [`SETTLE`].
fn restart(unit: &str, reset: bool) -> Result<()> {
    if reset {
        let _ = Command::new("systemctl")
            .args(["--user", "reset-failed", unit])
            .status();
    }
    let st = Command::new("systemctl")
        .args(["--user", "restart", unit])
        .status()
        .map_err(|e| anyhow::anyhow!("cannot run systemctl --user restart {unit}: {e}"))?;
    if !st.success() {
        anyhow::bail!("systemctl --user restart {unit} failed ({st})");
    }
    // `restart` returns when the start job is done (READY=1 for Type=notify); a unit
    // started without waiting may still be activating.
    let deadline = Instant::now() + Duration::from_secs(30);
    let before = loop {
        let st = show(unit)?;
        match st.active.as_str() {
            "active" => break st,
            "failed" | "inactive" => {
                anyhow::bail!("unit {unit} is {} after the restart", st.active)
            }
            _ if Instant::now() >= deadline => {
                anyhow::bail!(
                    "unit {unit} is not active 30 s after the restart ({})",
                    st.active
                )
            }
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    };
    std::thread::sleep(SETTLE);
    stayed_up(unit, &before, &show(unit)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(active: &str, pid: &str, n: &str) -> UnitState {
        UnitState {
            active: active.into(),
            main_pid: pid.into(),
            restarts: n.into(),
        }
    }

    #[test]
    fn parses_systemctl_show() {
        let s = UnitState::parse("MainPID=42\nNRestarts=3\nActiveState=active\nOther=x=y\n");
        assert_eq!(s, st("active", "42", "3"));
    }

    #[test]
    fn a_unit_that_kept_its_process_stayed_up() {
        stayed_up("u", &st("active", "42", "0"), &st("active", "42", "0")).unwrap();
    }

    #[test]
    fn a_unit_cycling_through_restart_did_not_stay_up() {
        // Active again at the second look, but another main process: it failed meanwhile.
        let e = stayed_up("u", &st("active", "42", "0"), &st("active", "57", "1")).unwrap_err();
        assert!(e.to_string().contains("did not stay up"), "{e}");
        let e = stayed_up("u", &st("active", "42", "0"), &st("activating", "0", "1")).unwrap_err();
        assert!(e.to_string().contains("is activating"), "{e}");
        let e = stayed_up("u", &st("active", "42", "2"), &st("active", "42", "3")).unwrap_err();
        assert!(e.to_string().contains("restarted 3 times"), "{e}");
    }
}
