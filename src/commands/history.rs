//! `box history`: an image's config history, newest first, as podman prints it.
use anyhow::{Result, anyhow};
use serde_json::{Value, json};

use crate::cli::Ctx;
use crate::cli::args::HistoryArgs;
use crate::storage::{Image, Store};
use crate::template::Format;

use super::image::emit;
use crate::units::{ago, human_size, parse_rfc3339};

/// One history row, oldest first.
struct Row {
    id: String,
    created: String,
    created_by: String,
    size: u64,
    comment: String,
    tags: Vec<String>,
}

fn rows(store: &Store, image: &Image) -> Vec<Row> {
    let size_of = |i: usize| {
        image
            .diff_ids
            .get(i)
            .and_then(|d| store.layer_record(d))
            .map_or(0, |r| r.size)
    };
    let mut out = Vec::new();
    let mut layer = 0;
    for h in image.config.history().iter().flatten() {
        let empty = h.empty_layer().unwrap_or(false);
        out.push(Row {
            id: "<missing>".into(),
            created: h.created().clone().unwrap_or_default(),
            created_by: h.created_by().clone().unwrap_or_default(),
            size: if empty { 0 } else { size_of(layer) },
            comment: h.comment().clone().unwrap_or_default(),
            tags: Vec::new(),
        });
        if !empty {
            layer += 1;
        }
    }
    // Layers the history does not describe.
    for i in layer..image.diff_ids.len() {
        out.push(Row {
            id: "<missing>".into(),
            created: String::new(),
            created_by: String::new(),
            size: size_of(i),
            comment: String::new(),
            tags: Vec::new(),
        });
    }
    if let Some(top) = out.last_mut() {
        top.id = image.id.clone();
        top.tags = image.names.clone();
    }
    out.reverse();
    out
}

pub fn history(ctx: &Ctx, args: HistoryArgs) -> Result<u8> {
    let store = Store::open(&ctx.paths)?;
    let image = {
        let _lock = store.lock_shared()?;
        store.get_image(&args.image)?
    };
    let rows = rows(&store, &image);
    let now = std::time::SystemTime::now();
    let id = |r: &Row| {
        if r.id == "<missing>" || args.no_trunc {
            r.id.clone()
        } else {
            r.id[..12.min(r.id.len())].to_string()
        }
    };
    if args.quiet {
        let out: String = rows.iter().map(|r| format!("{}\n", id(r))).collect();
        emit(&out);
        return Ok(0);
    }
    let since =
        |r: &Row| parse_rfc3339(&r.created).map_or_else(|| "N/A".to_string(), |t| ago(t, now));
    let created = |r: &Row| {
        if args.human {
            since(r)
        } else {
            r.created.clone()
        }
    };
    let size = |r: &Row| {
        if args.human {
            human_size(r.size)
        } else {
            r.size.to_string()
        }
    };
    let created_by = |r: &Row| {
        if args.no_trunc {
            r.created_by.clone()
        } else {
            super::table::truncate(&r.created_by, 45)
        }
    };
    match Format::from_arg(args.format.as_deref()) {
        Format::Table => {
            let mut table = vec![
                ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]
                    .map(String::from)
                    .to_vec(),
            ];
            for r in &rows {
                table.push(vec![
                    id(r),
                    created(r),
                    created_by(r),
                    size(r),
                    r.comment.clone(),
                ]);
            }
            super::table::print(&table);
        }
        Format::Json => {
            let out: Vec<Value> = rows
                .iter()
                .map(|r| {
                    json!({
                        "id": r.id,
                        "created": r.created,
                        "CreatedBy": r.created_by,
                        "size": r.size,
                        "comment": r.comment,
                        "tags": r.tags,
                    })
                })
                .collect();
            emit(&format!("{}\n", serde_json::to_string_pretty(&out)?));
        }
        Format::Template { source, table } => {
            let tmpl = crate::template::Template::parse(&source)
                .map_err(|e| anyhow!("--format {source:?}: {e}"))?;
            let mut out = String::new();
            if table {
                out.push_str(&crate::template::table_header(&source));
                out.push('\n');
            }
            for r in &rows {
                let v = json!({
                    "ID": id(r),
                    "Created": created(r),
                    "CreatedAt": r.created,
                    "CreatedSince": since(r),
                    "CreatedBy": created_by(r),
                    "Size": size(r),
                    "Comment": r.comment,
                    "Tags": r.tags,
                });
                out.push_str(
                    &tmpl
                        .render(&v)
                        .map_err(|e| anyhow!("--format {source:?}: {e}"))?,
                );
                out.push('\n');
            }
            emit(&out);
        }
    }
    Ok(0)
}
