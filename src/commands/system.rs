//! `box system`: prune, df, check.
use anyhow::Result;

use super::image::{confirm, containers_using, prune_images};
use super::table;
use crate::cli::Ctx;
use crate::cli::args::{CheckArgs, ForceArgs, PruneArgs, RmArgs};
use crate::container::Containers;
use crate::exit::{BOX_ERROR, Coded};
use crate::storage::usage::disk_usage;
use crate::storage::{self, Store};
use crate::units::human_size;

/// `box system reset`: every container (running ones killed), image and volume, then the
/// store and runtime directories themselves, as `podman system reset` does.
pub fn reset(ctx: &Ctx, args: ForceArgs) -> Result<u8> {
    let (data, runtime) = (&ctx.paths.data, &ctx.paths.runtime);
    if !args.force
        && !confirm(
            &format!(
                "WARNING! This will remove:\n  - all containers\n  - all images\n  - all volumes\n  - the store {} and the runtime directory {}\nAre you sure you want to continue?",
                data.display(),
                runtime.display()
            ),
            "box system reset",
        )?
    {
        return Ok(0);
    }
    if data.exists() {
        super::rm::rm(
            ctx,
            RmArgs {
                force: true,
                time: Some(0),
                ignore: true,
                depend: false,
                volumes: true,
                all: true,
                containers: Vec::new(),
            },
        )?;
        super::volume::prune_volumes(ctx)?;
        prune_images(ctx, true)?;
        // What is left holds only the user's own files (layers of other users' ids went
        // with the images, through the helper).
        let store = Store::open(&ctx.paths)?;
        let tmp = store.tmp_dir();
        storage::remove::remove_trees(store.data_dir(), &[tmp])?;
        drop(store);
        std::fs::remove_dir_all(data)
            .map_err(|e| anyhow::anyhow!("cannot remove {}: {e}", data.display()))?;
    }
    if runtime.exists() {
        std::fs::remove_dir_all(runtime)
            .map_err(|e| anyhow::anyhow!("cannot remove {}: {e}", runtime.display()))?;
    }
    Ok(0)
}

/// The images part of `box system prune`; the containers part runs before it (stopped
/// containers first, so that their images become unused).
pub fn prune(ctx: &Ctx, args: PruneArgs) -> Result<u8> {
    let images = if args.all {
        "all images without at least one container associated to them"
    } else {
        "all dangling images"
    };
    let volumes = if args.volumes {
        "\n  - all volumes not used by at least one container"
    } else {
        ""
    };
    if !args.force
        && !confirm(
            &format!(
                "WARNING! This will remove:\n  - all stopped containers\n  - all pods none of whose containers runs\n  - all networks not used by at least one container{volumes}\n  - {images}\n  - all layers no image uses\nAre you sure you want to continue?"
            ),
            "box system prune",
        )?
    {
        return Ok(0);
    }
    // Containers first: the images they held become prunable.
    let containers = super::rm::prune_containers(ctx)?;
    if !containers.ids.is_empty() {
        println!("Deleted Containers");
        for id in &containers.ids {
            println!("{id}");
        }
    }
    // Then pods with nothing running, and networks no container is on (as podman).
    let pods = super::pod::prune_pods(ctx)?;
    if !pods.is_empty() {
        println!("Deleted Pods");
        for id in &pods {
            println!("{id}");
        }
    }
    let networks = super::network::prune_networks(ctx)?;
    if !networks.is_empty() {
        println!("Deleted Networks");
        for n in &networks {
            println!("{n}");
        }
    }
    let mut reclaimed = containers.reclaimed;
    if args.volumes {
        let (names, freed) = super::volume::prune_volumes(ctx)?;
        if !names.is_empty() {
            println!("Deleted Volumes");
            for name in &names {
                println!("{name}");
            }
        }
        reclaimed += freed;
    }
    let r = prune_images(ctx, args.all)?;
    if !r.deleted.is_empty() {
        println!("Deleted Images");
        for id in &r.deleted {
            println!("deleted: sha256:{id}");
        }
    }
    reclaimed += r.reclaimed;
    println!("Total reclaimed space: {}", human_size(reclaimed));
    Ok(0)
}

pub fn df(ctx: &Ctx) -> Result<u8> {
    let store = Store::open(&ctx.paths)?;
    let images = store.images()?;
    let users = containers_using(ctx);
    let active = images.iter().filter(|i| users.contains_key(&i.id)).count();
    let total = super::image::store_bytes(&store);
    let active_bytes: u64 = {
        let mut layers = std::collections::BTreeSet::new();
        for i in images.iter().filter(|i| users.contains_key(&i.id)) {
            layers.extend(i.diff_ids.iter().cloned());
        }
        layers
            .iter()
            .filter_map(|d| store.layer_record(d).map(|r| r.size))
            .sum()
    };
    let reclaimable = total.saturating_sub(active_bytes);
    let pct = (reclaimable * 100).checked_div(total).unwrap_or(0);
    let containers = users.values().map(Vec::len).sum::<usize>();
    // Only container records: not names/, .trash/ or .lock.
    let containers_total = Containers::open(&ctx.paths)
        .and_then(|c| c.ids())
        .map(|ids| ids.len())
        .unwrap_or(0);
    let trash_bytes = disk_usage(&ctx.paths.containers().join(".trash"));
    let volumes = std::fs::read_dir(ctx.paths.volumes())
        .map(|rd| rd.flatten().filter(|e| e.path().is_dir()).count())
        .unwrap_or(0);
    table::print(&[
        vec![
            "TYPE".into(),
            "TOTAL".into(),
            "ACTIVE".into(),
            "SIZE".into(),
            "RECLAIMABLE".into(),
        ],
        vec![
            "Images".into(),
            images.len().to_string(),
            active.to_string(),
            human_size(total),
            format!("{} ({pct}%)", human_size(reclaimable)),
        ],
        vec![
            "Containers".into(),
            containers_total.to_string(),
            containers.min(containers_total).to_string(),
            human_size(disk_usage(&ctx.paths.containers())),
            if trash_bytes > 0 {
                human_size(trash_bytes)
            } else {
                "-".into()
            },
        ],
        vec![
            "Local Volumes".into(),
            volumes.to_string(),
            "-".into(),
            human_size(disk_usage(&ctx.paths.volumes())),
            "-".into(),
        ],
    ]);
    Ok(0)
}

pub fn check(ctx: &Ctx, args: CheckArgs) -> Result<u8> {
    let store = Store::open(&ctx.paths)?;
    let mut report = store.check(args.repair)?;
    for p in &report.problems {
        println!("problem: {p}");
    }
    storage::remove::remove_trees(store.data_dir(), &report.to_remove)?;
    // What a container removal that failed or was killed left in containers/.trash (held
    // while it is deleted, so one being deleted right now is not listed).
    let trash = match Containers::open(&ctx.paths) {
        Ok(c) => c.claim_trash(),
        Err(_) => Vec::new(),
    };
    for t in &trash {
        report.leftovers.push(format!(
            "{} (files of a removed container)",
            t.path.display()
        ));
    }
    if args.repair && !trash.is_empty() {
        let paths: Vec<_> = trash.iter().map(|t| t.path.clone()).collect();
        storage::remove::remove_trees(&ctx.paths.data, &paths)?;
        for p in &paths {
            report.repaired.push(format!("removed {}", p.display()));
        }
    }
    drop(trash);
    // The holder of the user networks' namespace with no container left on them (its
    // last container's box was killed before it could stop it).
    if let Some(holder) = super::network::idle_holder(ctx) {
        report.leftovers.push(format!(
            "container {holder} (holds the user networks' namespace, no container uses it)"
        ));
        if args.repair {
            super::network::stop_idle_holder(ctx)?;
            report
                .repaired
                .push(format!("removed the idle container {holder}"));
        }
    }
    // Build containers of a killed `box build`.
    if args.repair {
        for id in crate::builder::remove_stale_build_containers(&ctx.paths) {
            report.repaired.push(format!(
                "removed build container {id} (its build was killed)"
            ));
        }
    } else if let Ok(c) = Containers::open(&ctx.paths) {
        for rec in c.list().unwrap_or_default() {
            if crate::builder::is_stale_build_container(&rec) {
                report.leftovers.push(format!(
                    "build container {} (its build was killed)",
                    rec.name()
                ));
            }
        }
    }
    if !args.repair {
        for l in &report.leftovers {
            println!("leftover: {l}");
        }
    }
    for r in &report.repaired {
        println!("repaired: {r}");
    }
    if report.problems.is_empty() {
        match report.leftovers.len() {
            0 => println!("the store is consistent"),
            n if args.repair => println!("the store is consistent ({n} leftover(s) removed)"),
            n => println!(
                "the store is consistent; {n} leftover(s) of killed or failed box processes \
                 in tmp/ or containers/.trash (harmless: --repair removes them)"
            ),
        }
        return Ok(0);
    }
    if args.repair {
        println!(
            "{} problem(s) found and repaired: pull the removed images again",
            report.problems.len()
        );
        Ok(0)
    } else {
        Err(anyhow::Error::new(Coded::new(
            BOX_ERROR,
            format!(
                "{} problem(s) in the store: run `box system check --repair` to remove what is broken",
                report.problems.len()
            ),
        )))
    }
}
