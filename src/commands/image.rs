//! Local images: images, rmi, tag, image prune.
use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Write};

use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::cli::Ctx;
use crate::cli::args::{ImagePruneArgs, ImagesArgs, RmiArgs, TagArgs, UntagArgs};
use crate::exit::{BOX_ERROR, Coded};
use crate::storage::{self, Image, Store, names};

use crate::units::{self, human_size};

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
    for f in &args.more.filter {
        let keep = image_filter(&images, f)?;
        images.retain(|i| keep.contains(&i.id));
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
    let now = std::time::SystemTime::now();
    let used = containers_using(ctx);
    // One row per name; a nameless image gets one <none> row.
    let mut rows: Vec<Value> = Vec::new();
    for i in &images {
        let created = i.created().unwrap_or_default();
        let created_at = units::parse_rfc3339(&created);
        let digest = i.manifest_digest.clone().unwrap_or_default();
        let mut push = |repo: String, tag: String| {
            rows.push(json!({
                "Repository": repo,
                "Tag": tag,
                "ID": id_of(i),
                "Id": i.id,
                "Digest": digest,
                "CreatedAt": created,
                "CreatedSince": created_at.map(|t| units::ago(t, now)).unwrap_or_else(|| "N/A".into()),
                "Size": human_size(i.size),
                "VirtualSize": i.size,
                "Names": i.names,
                "RepoDigests": i.repo_digests,
                // podman's further fields.
                "Labels": i.config.config().as_ref().and_then(|c| c.labels().clone()).unwrap_or_default(),
                "Dangling": i.names.is_empty(),
                "Containers": used.get(&i.id).map(Vec::len).unwrap_or(0),
                "ReadOnly": false,
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
    sort_rows(&mut rows, args.more.sort.as_deref().unwrap_or("created"));
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
                        "Created": i.created().as_deref().and_then(units::parse_rfc3339).map(units::unix_secs),
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
            let table = tmpl.trim_start().starts_with("table ");
            let tmpl = tmpl.trim_start().strip_prefix("table ").unwrap_or(tmpl);
            let source = tmpl.replace("\\t", "\t").replace("\\n", "\n");
            let mut lines = Vec::new();
            if table {
                lines.push(crate::template::table_header(&source));
            }
            for r in &rows {
                lines.push(
                    crate::template::render(&source, r)
                        .map_err(|e| anyhow::anyhow!("--format {tmpl:?}: {e}"))?,
                );
            }
            if table {
                emit(&super::table::align_tabs(&lines));
            } else {
                let mut out = String::new();
                for l in lines {
                    out.push_str(&l);
                    out.push('\n');
                }
                emit(&out);
            }
        }
    }
    Ok(0)
}

/// The ids of the images one `--filter KEY=VALUE` keeps (podman's keys).
fn image_filter(images: &[Image], filter: &str) -> Result<BTreeSet<String>> {
    let (key, value) = filter
        .split_once('=')
        .with_context(|| format!("invalid filter {filter:?}: use KEY=VALUE"))?;
    let created = |i: &Image| i.created().as_deref().and_then(units::parse_rfc3339);
    let reference_time = |what: &str| -> Result<Option<std::time::SystemTime>> {
        let other = images
            .iter()
            .find(|i| {
                matches_filter(i, value) || i.id.starts_with(value.trim_start_matches("sha256:"))
            })
            .with_context(|| format!("--filter {what}={value}: no such image"))?;
        Ok(created(other))
    };
    let keep: Box<dyn Fn(&Image) -> bool> = match key {
        "dangling" => match value {
            "true" => Box::new(|i: &Image| i.names.is_empty()),
            "false" => Box::new(|i: &Image| !i.names.is_empty()),
            _ => anyhow::bail!("invalid filter dangling={value}: use true or false"),
        },
        "reference" => {
            let pattern = value.to_string();
            Box::new(move |i: &Image| {
                matches_filter(i, &pattern)
                    || i.names.iter().any(|n| {
                        glob(&pattern, n)
                            || glob(&pattern, names::strip_tag(n))
                            || n.rsplit('/')
                                .next()
                                .is_some_and(|short| glob(&pattern, short))
                    })
            })
        }
        "label" => {
            let (k, v) = match value.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (value.to_string(), None),
            };
            Box::new(move |i: &Image| {
                let labels = i
                    .config
                    .config()
                    .as_ref()
                    .and_then(|c| c.labels().clone())
                    .unwrap_or_default();
                match &v {
                    Some(v) => labels.get(&k) == Some(v),
                    None => labels.contains_key(&k),
                }
            })
        }
        "before" | "since" => {
            let Some(t) = reference_time(key)? else {
                return Ok(BTreeSet::new());
            };
            let before = key == "before";
            Box::new(move |i: &Image| {
                created(i).is_some_and(|c| if before { c < t } else { c > t })
            })
        }
        "id" => {
            let v = value.trim_start_matches("sha256:").to_string();
            Box::new(move |i: &Image| i.id.starts_with(&v))
        }
        other => anyhow::bail!(
            "unknown filter {other:?}: use dangling, reference, label, before, since or id"
        ),
    };
    Ok(images
        .iter()
        .filter(|i| keep(i))
        .map(|i| i.id.clone())
        .collect())
}

/// A shell-style pattern with `*` (podman's reference filter).
fn glob(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == s;
    }
    let mut rest = s;
    for (n, p) in parts.iter().enumerate() {
        if n == 0 {
            let Some(r) = rest.strip_prefix(p) else {
                return false;
            };
            rest = r;
        } else if n == parts.len() - 1 {
            return rest.ends_with(p);
        } else {
            match rest.find(p) {
                Some(at) => rest = &rest[at + p.len()..],
                None => return false,
            }
        }
    }
    true
}

/// `images --sort`: created newest first (podman's default), the others ascending.
fn sort_rows(rows: &mut [Value], key: &str) {
    let text = |v: &Value, k: &str| v[k].as_str().unwrap_or("").to_string();
    match key {
        "created" => rows.sort_by_key(|r| std::cmp::Reverse(text(r, "CreatedAt"))),
        "id" => rows.sort_by_key(|r| text(r, "Id")),
        "repository" => rows.sort_by_key(|r| text(r, "Repository")),
        "tag" => rows.sort_by_key(|r| text(r, "Tag")),
        "size" => rows.sort_by_key(|r| r["VirtualSize"].as_u64().unwrap_or(0)),
        _ => {}
    }
}

fn matches_filter(i: &Image, filter: &str) -> bool {
    // What `box image exists FILTER` would find, podman's short-name suffix included.
    if i.names.iter().any(|n| names::short_suffix_match(filter, n)) {
        return true;
    }
    let has_tag = {
        let last = filter.rsplit('/').next().unwrap_or(filter);
        last.contains(':')
    };
    names::candidates(filter).iter().any(|norm| {
        i.names.iter().any(|n| {
            if has_tag {
                n == norm
            } else {
                names::strip_tag(n) == names::strip_tag(norm)
            }
        })
    })
}

/// Write to stdout; a closed pipe (`box images | head`) is not an error.
pub fn emit(s: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(s.as_bytes()).and_then(|_| out.flush());
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

/// Remove the containers `ids` by running `box rm -f` (`commands::rm` owns that).
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
    // podman's statuses: 1 for an image that does not exist (not an error with -f), 2 for
    // one in use; the last failure is said by `main`, the others at once.
    let mut failed: Vec<anyhow::Error> = Vec::new();
    for arg in &args.images {
        match store.find_image(arg)? {
            Some(i) => targets.push((arg.clone(), i)),
            None if args.force => {}
            None => failed.push(anyhow::Error::new(Coded::new(
                super::RM_MISSING,
                format!("image not found: {arg}"),
            ))),
        }
    }
    let users = containers_using(ctx);
    let mut delete: Vec<String> = Vec::new();
    for (arg, image) in &targets {
        if delete.contains(&image.id) {
            continue;
        }
        // A name of an image that has other names: only untag it (docker's rule).
        let by_name = image
            .name_given(arg)
            .filter(|_| !image.id.starts_with(arg.trim_start_matches("sha256:")));
        if let Some(n) = &by_name
            && image.names.len() > 1
            && !args.all
        {
            store.untag(&image.id, n)?;
            crate::events::image(&ctx.paths, "untag", &image.id, n);
            println!("Untagged: {n}");
            continue;
        }
        if let Some(c) = users.get(&image.id) {
            if !args.force {
                failed.push(anyhow::Error::new(Coded::new(
                    super::RM_IN_USE,
                    format!(
                        "image {} is in use by container {}: remove the container first, or use -f to remove both",
                        arg,
                        c.join(", ")
                    ),
                )));
                continue;
            }
            remove_containers(ctx, c)?;
        }
        for n in &image.names {
            crate::events::image(&ctx.paths, "untag", &image.id, n);
            println!("Untagged: {n}");
        }
        delete.push(image.id.clone());
    }
    let detached = store.delete_images(&delete)?;
    for id in &delete {
        let name = targets
            .iter()
            .find(|(_, i)| &i.id == id)
            .and_then(|(_, i)| i.names.first());
        crate::events::image(
            &ctx.paths,
            "remove",
            id,
            name.map_or(id.as_str(), |n| n.as_str()),
        );
        println!("Deleted: sha256:{id}");
    }
    storage::remove::remove_trees(store.data_dir(), &detached)?;
    super::report(failed)
}

pub fn tag(ctx: &Ctx, args: TagArgs) -> Result<u8> {
    let store = Store::open(&ctx.paths)?;
    let image = store.get_image(&args.image)?;
    for t in &args.targets {
        store.tag(&image.id, t)?;
        crate::events::image(&ctx.paths, "tag", &image.id, t);
    }
    Ok(0)
}

/// Remove the given names of an image, or all of them; the image stays (podman's untag).
/// Every name is checked before any is removed.
pub fn untag(ctx: &Ctx, args: UntagArgs) -> Result<u8> {
    let store = Store::open(&ctx.paths)?;
    let image = store.get_image(&args.image)?;
    let mut wanted = Vec::new();
    for n in &args.names {
        names::normalize(n)?;
        let Some(norm) = image.name_given(n) else {
            return Err(coded(format!(
                "image {} has no name {n}: see its names with box images",
                args.image
            )));
        };
        wanted.push(norm);
    }
    let which = (!wanted.is_empty()).then_some(wanted.as_slice());
    store.remove_names(&image.id, which)?;
    for n in which.map_or(image.names.as_slice(), |w| w) {
        crate::events::image(&ctx.paths, "untag", &image.id, n);
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
    for id in &delete {
        crate::events::image(&ctx.paths, "remove", id, id);
    }
    storage::remove::remove_trees(store.data_dir(), &detached)?;
    // Blobs of removed layers are not needed any more either.
    let reclaimed_blobs = remove_unused_blobs(&store)?;
    // Build cache entries naming layers that are gone (all of them with -a).
    {
        let _lock = store.lock_exclusive()?;
        crate::builder::prune_cache_locked(&store, all);
    }
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
/// Ask `question` on the terminal; without one, refuse (as podman does): a script must
/// say `--force`, and `echo n | box system prune` must not delete anything.
pub fn confirm(question: &str, command: &str) -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "{command} asks before deleting, and stdin is not a terminal: give -f (--force) to prune without asking"
        );
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    if std::io::stdin().read_line(&mut line).is_err() {
        return Ok(false);
    }
    Ok(matches!(line.trim(), "y" | "Y" | "yes" | "YES"))
}

pub fn prune(ctx: &Ctx, args: ImagePruneArgs) -> Result<u8> {
    let what = if args.all {
        "all images without at least one container associated to them"
    } else {
        "all dangling images"
    };
    if !args.force
        && !confirm(
            &format!("WARNING! This will remove {what}.\nAre you sure you want to continue?"),
            "box image prune",
        )?
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
    println!("Total reclaimed space: {}", human_size(r.reclaimed));
    Ok(0)
}
