//! Local images: images, rmi, tag, image prune.
use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Write};

use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::cli::Ctx;
use crate::cli::args::{ImagesArgs, PruneArgs, RmiArgs, TagArgs};
use crate::exit::{BOX_ERROR, Coded};
use crate::storage::{self, Image, Store, names};

use super::pull::human_bytes;

pub fn images(ctx: &Ctx, args: ImagesArgs) -> Result<u8> {
    let store = Store::open(&ctx.paths)?;
    let (mut images, broken) = {
        let _lock = store.lock_shared()?;
        store.images_and_errors()?
    };
    for e in broken {
        eprintln!("box: warning: {e}");
    }
    if let Some(filter) = &args.reference {
        images.retain(|i| matches_filter(i, filter));
    }
    let id_of = |i: &Image| {
        if args.no_trunc {
            i.digest_id()
        } else {
            i.short_id().to_string()
        }
    };
    if args.quiet {
        let mut seen = BTreeSet::new();
        let mut out = String::new();
        for i in &images {
            if seen.insert(i.id.clone()) {
                out.push_str(&id_of(i));
                out.push('\n');
            }
        }
        emit(&out);
        return Ok(0);
    }
    let now = storage::now_secs();
    // One row per name; a nameless image gets one <none> row.
    let mut rows: Vec<Value> = Vec::new();
    for i in &images {
        let created = i.created().unwrap_or_default();
        let created_secs = parse_rfc3339(&created);
        let digest = i.manifest_digest.clone().unwrap_or_default();
        let mut push = |repo: String, tag: String| {
            rows.push(json!({
                "Repository": repo,
                "Tag": tag,
                "ID": id_of(i),
                "Id": i.id,
                "Digest": digest,
                "CreatedAt": created,
                "CreatedSince": created_secs.map(|t| ago(now, t)).unwrap_or_else(|| "N/A".into()),
                "Size": human_bytes(i.size),
                "VirtualSize": i.size,
                "Names": i.names,
                "RepoDigests": i.repo_digests,
            }));
        };
        if i.names.is_empty() {
            push("<none>".into(), "<none>".into());
        }
        for n in &i.names {
            let (r, t) = names::repo_and_tag(n);
            push(r, t);
        }
    }
    match args.format.as_deref() {
        Some("json") => {
            let out: Vec<Value> = images
                .iter()
                .map(|i| {
                    json!({
                        "Id": i.id,
                        "Names": i.names,
                        "RepoTags": i.names,
                        "RepoDigests": i.repo_digests,
                        "Digest": i.manifest_digest,
                        "Created": i.created().as_deref().and_then(parse_rfc3339),
                        "CreatedAt": i.created(),
                        "Size": i.size,
                        "Dangling": i.names.is_empty(),
                    })
                })
                .collect();
            emit(&format!("{}\n", serde_json::to_string_pretty(&out)?));
        }
        Some("table") | None => {
            let mut header = vec!["REPOSITORY", "TAG"];
            if args.digests {
                header.push("DIGEST");
            }
            header.extend(["IMAGE ID", "CREATED", "SIZE"]);
            let mut table: Vec<Vec<String>> = vec![super::table::header(&header)];
            for r in &rows {
                let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
                let mut line = vec![s("Repository"), s("Tag")];
                if args.digests {
                    line.push(if s("Digest").is_empty() {
                        "<none>".into()
                    } else {
                        s("Digest")
                    });
                }
                line.extend([s("ID"), s("CreatedSince"), s("Size")]);
                table.push(line);
            }
            super::table::print(&table);
        }
        Some(tmpl) => {
            let tmpl = tmpl.strip_prefix("table ").unwrap_or(tmpl);
            let mut out = String::new();
            for r in &rows {
                let line = crate::template::render(tmpl, r)
                    .map_err(|e| anyhow::anyhow!("--format {tmpl:?}: {e}"))?;
                out.push_str(&line);
                out.push('\n');
            }
            emit(&out);
        }
    }
    Ok(0)
}

fn matches_filter(i: &Image, filter: &str) -> bool {
    let Ok(norm) = names::normalize(filter) else {
        return false;
    };
    let has_tag = {
        let last = filter.rsplit('/').next().unwrap_or(filter);
        last.contains(':')
    };
    i.names.iter().any(|n| {
        if has_tag {
            *n == norm
        } else {
            names::strip_tag(n) == names::strip_tag(&norm)
        }
    })
}

/// Write to stdout; a closed pipe (`box images | head`) is not an error.
pub fn emit(s: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(s.as_bytes()).and_then(|_| out.flush());
}

/// Seconds since the epoch of an RFC 3339 timestamp (`2024-09-06T00:00:00.123Z`, offsets).
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.len() < 19 {
        return None;
    }
    let num = |a: usize, b: usize| s.get(a..b)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (h, mi, sec) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    let mut rest = &s[19..];
    if let Some(r) = rest.strip_prefix('.') {
        let n = r.bytes().take_while(u8::is_ascii_digit).count();
        rest = &r[n..];
    }
    let offset = match rest {
        "" | "Z" | "z" => 0,
        o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) => {
            let oh: i64 = o[1..3].parse().ok()?;
            let om: i64 = o[4..6].parse().ok()?;
            let v = oh * 3600 + om * 60;
            if o.starts_with('-') { -v } else { v }
        }
        _ => return None,
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = if y2 >= 0 { y2 } else { y2 - 399 } / 400;
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let t = days * 86400 + h * 3600 + mi * 60 + sec - offset;
    u64::try_from(t).ok()
}

/// "2 weeks ago", like docker.
pub fn ago(now: u64, then: u64) -> String {
    let d = now.saturating_sub(then);
    let plural = |n: u64, unit: &str| {
        if n == 1 {
            let article = if unit == "hour" { "An" } else { "A" };
            format!("{article} {unit} ago")
        } else {
            format!("{n} {unit}s ago")
        }
    };
    match d {
        0..=59 => "Less than a minute ago".into(),
        60..=3599 => {
            let m = d / 60;
            if m == 1 {
                "About a minute ago".into()
            } else {
                format!("{m} minutes ago")
            }
        }
        3600..=86_399 => {
            let h = d / 3600;
            if h == 1 {
                "About an hour ago".into()
            } else {
                format!("{h} hours ago")
            }
        }
        86_400..=1_209_599 => plural(d / 86_400, "day"),
        1_209_600..=5_183_999 => plural(d / 604_800, "week"),
        5_184_000..=63_071_999 => plural(d / 2_592_000, "month"),
        _ => plural(d / 31_536_000, "year"),
    }
}

/// Container ids (or names) per image id, from the container records.
pub fn containers_using(ctx: &Ctx) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let Ok(rd) = std::fs::read_dir(ctx.paths.containers()) else {
        return out;
    };
    for e in rd.flatten() {
        let Ok(text) = std::fs::read(e.path().join("config.json")) else {
            continue;
        };
        let Ok(v) = serde_json::from_slice::<Value>(&text) else {
            continue;
        };
        let image = v
            .get("image_id")
            .and_then(Value::as_str)
            .map(|s| s.trim_start_matches("sha256:").to_string());
        let Some(image) = image else { continue };
        let name = v
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| e.file_name().to_string_lossy().chars().take(12).collect());
        out.entry(image).or_default().push(name);
    }
    out
}

fn coded(msg: String) -> anyhow::Error {
    anyhow::Error::new(Coded::new(BOX_ERROR, msg))
}

/// Remove the containers `ids` by running `box rm -f` (the lifecycle code owns that).
fn remove_containers(ctx: &Ctx, ids: &[String]) -> Result<()> {
    let status = std::process::Command::new("/proc/self/exe")
        .arg("rm")
        .arg("-f")
        .args(ids)
        .env("BOX_ROOT", &ctx.paths.data)
        .env("BOX_RUNROOT", &ctx.paths.runtime)
        .stdout(std::process::Stdio::null())
        .status()
        .context("run box rm")?;
    if !status.success() {
        anyhow::bail!("cannot remove the containers {}", ids.join(", "));
    }
    Ok(())
}

pub fn rmi(ctx: &Ctx, args: RmiArgs) -> Result<u8> {
    let store = Store::open(&ctx.paths)?;
    let mut targets: Vec<(String, Image)> = Vec::new();
    if args.all {
        for i in store.images()? {
            targets.push((i.id.clone(), i));
        }
    }
    let mut failed = false;
    for arg in &args.images {
        match store.find_image(arg)? {
            Some(i) => targets.push((arg.clone(), i)),
            None => {
                eprintln!("box: image not found: {arg}");
                failed = true;
            }
        }
    }
    let users = containers_using(ctx);
    let mut delete: Vec<String> = Vec::new();
    for (arg, image) in &targets {
        if delete.contains(&image.id) {
            continue;
        }
        // A name of an image that has other names: only untag it (docker's rule).
        let by_name = names::normalize(arg).ok().filter(|n| {
            image.names.contains(n) && !image.id.starts_with(arg.trim_start_matches("sha256:"))
        });
        if let Some(n) = &by_name
            && image.names.len() > 1
            && !args.all
        {
            store.untag(&image.id, n)?;
            println!("Untagged: {n}");
            continue;
        }
        if let Some(c) = users.get(&image.id) {
            if !args.force {
                eprintln!(
                    "box: image {} is in use by container {}: remove the container first, or use -f to remove both",
                    arg,
                    c.join(", ")
                );
                failed = true;
                continue;
            }
            remove_containers(ctx, c)?;
        }
        for n in &image.names {
            println!("Untagged: {n}");
        }
        delete.push(image.id.clone());
    }
    let detached = store.delete_images(&delete)?;
    for id in &delete {
        println!("Deleted: sha256:{id}");
    }
    storage::remove::remove_trees(store.data_dir(), &detached)?;
    if failed {
        return Err(coded("some images could not be removed".into()));
    }
    Ok(0)
}

pub fn tag(ctx: &Ctx, args: TagArgs) -> Result<u8> {
    let store = Store::open(&ctx.paths)?;
    let image = store.get_image(&args.image)?;
    for t in &args.targets {
        store.tag(&image.id, t)?;
    }
    Ok(0)
}

/// What `prune_images` removed.
#[derive(Debug, Default)]
pub struct PruneReport {
    pub deleted: Vec<String>,
    pub reclaimed: u64,
}

/// Remove images no container uses: dangling ones (no name), or with `all` every unused
/// one; then every layer no image uses. For `image prune` and `system prune`.
pub fn prune_images(ctx: &Ctx, all: bool) -> Result<PruneReport> {
    let store = Store::open(&ctx.paths)?;
    let users = containers_using(ctx);
    let images = store.images()?;
    let delete: Vec<String> = images
        .iter()
        .filter(|i| (all || i.names.is_empty()) && !users.contains_key(&i.id))
        .map(|i| i.id.clone())
        .collect();
    let before = store_bytes(&store);
    let detached = store.delete_images(&delete)?;
    storage::remove::remove_trees(store.data_dir(), &detached)?;
    // Blobs of removed layers are not needed any more either.
    let reclaimed_blobs = remove_unused_blobs(&store)?;
    let after = store_bytes(&store);
    Ok(PruneReport {
        deleted: delete,
        reclaimed: before.saturating_sub(after).max(reclaimed_blobs),
    })
}

fn remove_unused_blobs(store: &Store) -> Result<u64> {
    let _lock = store.lock_exclusive()?;
    Ok(store.remove_unused_blobs_locked())
}

/// Apparent bytes of layers and blobs (for "reclaimed space").
pub fn store_bytes(store: &Store) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(store.blobs_dir()) {
        total += rd
            .flatten()
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum::<u64>();
    }
    if let Ok(rd) = std::fs::read_dir(store.layers_dir()) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(r) = store.layer_record(&format!("sha256:{name}")) {
                total += r.size;
            }
        }
    }
    total
}

/// Ask "[y/N]" on a terminal; true without one (scripts pass -f anyway).
pub fn confirm(question: &str) -> bool {
    if !std::io::stdin().is_terminal() {
        return true;
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    if std::io::stdin().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim(), "y" | "Y" | "yes" | "YES")
}

pub fn prune(ctx: &Ctx, args: PruneArgs) -> Result<u8> {
    let what = if args.all {
        "all images without at least one container associated to them"
    } else {
        "all dangling images"
    };
    if !args.force
        && !confirm(&format!(
            "WARNING! This will remove {what}.\nAre you sure you want to continue?"
        ))
    {
        return Ok(0);
    }
    let r = prune_images(ctx, args.all)?;
    if !r.deleted.is_empty() {
        println!("Deleted Images");
        for id in &r.deleted {
            println!("deleted: sha256:{id}");
        }
    }
    println!("Total reclaimed space: {}", human_bytes(r.reclaimed));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_and_ago() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2024-09-06T00:00:00Z"), Some(1_725_580_800));
        assert_eq!(
            parse_rfc3339("2024-09-06T02:00:00.123456789+02:00"),
            Some(1_725_580_800)
        );
        assert_eq!(parse_rfc3339("junk"), None);
        assert_eq!(ago(100, 90), "Less than a minute ago");
        assert_eq!(ago(10_000_000, 10_000_000 - 15 * 86_400), "2 weeks ago");
        assert_eq!(ago(1_000_000_000, 1_000_000_000 - 86_400), "A day ago");
        assert_eq!(ago(400_000_000, 300_000_000), "3 years ago");
    }
}
