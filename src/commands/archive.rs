//! `box import`, `box load`, `box save`: the flags and the output of `storage::archive`.
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::cli::Ctx;
use crate::cli::args::{ArchiveFormat, ImportArgs, LoadArgs, SaveArgs};
use crate::storage::Store;
use crate::storage::archive::{self, Format, ImportOptions, Tarball};

fn warn(w: &str) {
    eprintln!("box: warning: {w}");
}

pub fn import(ctx: &Ctx, args: ImportArgs) -> Result<u8> {
    let store = Store::open(&ctx.paths)?;
    let tarball = if args.tarball == Path::new("-") {
        Tarball::Stdin
    } else {
        Tarball::Path(&args.tarball)
    };
    let opts = ImportOptions {
        changes: args.change,
        message: args.message,
    };
    let image = archive::import(&store, &args.reference, tarball, &opts, &warn)?;
    println!("sha256:{}", image.id);
    Ok(0)
}

pub fn save(ctx: &Ctx, args: SaveArgs) -> Result<u8> {
    let store = Store::open(&ctx.paths)?;
    let images = archive::save_plan(&store, &args.images)?;
    if args.output.is_none() && std::io::IsTerminal::is_terminal(&io::stdout()) {
        bail!("refusing to write an archive to a terminal: use -o FILE or redirect stdout");
    }
    let sink: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(io::BufWriter::new(
            File::create(p).with_context(|| format!("create {}", p.display()))?,
        )),
        None => Box::new(io::BufWriter::new(io::stdout().lock())),
    };
    let format = match args.format {
        ArchiveFormat::DockerArchive => Format::DockerArchive,
        ArchiveFormat::OciArchive => Format::OciArchive,
    };
    archive::save(&store, &images, format, sink)?;
    Ok(0)
}

pub fn load(ctx: &Ctx, args: LoadArgs) -> Result<u8> {
    let store = Store::open(&ctx.paths)?;
    let reader: Box<dyn Read> = match &args.input {
        Some(p) => Box::new(File::open(p).with_context(|| format!("open {}", p.display()))?),
        None => Box::new(io::stdin().lock()),
    };
    for loaded in archive::load(&store, reader, &warn)? {
        if !args.quiet || loaded.names.is_empty() {
            if loaded.names.is_empty() {
                println!("Loaded image ID: sha256:{}", loaded.image.id);
            }
            for t in loaded.names {
                println!("Loaded image: {t}");
            }
        }
    }
    Ok(0)
}
