//! `container exists`, `image exists`, `volume exists`: podman's silent checks for scripts.
//! Exit 0 when the object is there, 1 when it is not, 125 when box cannot tell.
use anyhow::Result;

use crate::cli::Ctx;
use crate::cli::args::{ContainerExistsArgs, ImageExistsArgs, VolumeExistsArgs};
use crate::storage::{Store, names};
use crate::volume::Volumes;

/// The exit code for "not there".
const MISSING: u8 = 1;

pub fn container(ctx: &Ctx, args: ContainerExistsArgs) -> Result<u8> {
    match super::containers(ctx)?.find(&args.container) {
        Ok(_) => Ok(0),
        Err(crate::container::Error::NotFound(_)) => Ok(MISSING),
        Err(e) => Err(e.into()),
    }
}

pub fn image(ctx: &Ctx, args: ImageExistsArgs) -> Result<u8> {
    let store = Store::open(&ctx.paths)?;
    if store.find_image(&args.image)?.is_some() {
        return Ok(0);
    }
    // Neither a name nor an id: a usage error, as podman's "invalid reference format".
    let hex = args.image.strip_prefix("sha256:").unwrap_or(&args.image);
    let id_like = !hex.is_empty() && hex.len() <= 64 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    if !id_like {
        names::normalize(&args.image)?;
    }
    Ok(MISSING)
}

pub fn volume(ctx: &Ctx, args: VolumeExistsArgs) -> Result<u8> {
    match Volumes::at(&ctx.paths.volumes()).get(&args.name) {
        Ok(_) => Ok(0),
        Err(crate::volume::Error::NotFound(_)) => Ok(MISSING),
        Err(e) => Err(e.into()),
    }
}
