//! `box pull`: fetch an image into the store, and `ensure_image` for `box run`/`create`.
use anyhow::Result;

use super::not_implemented;
use crate::cli::Ctx;
use crate::cli::args::{PullArgs, PullPolicy};
use crate::storage::{Image, Store};

pub fn pull(_ctx: &Ctx, _args: PullArgs) -> Result<u8> {
    not_implemented("box pull")
}

/// The image `reference` names, pulled first according to `policy` (`Missing`: only when
/// absent; `Always`; `Never`: fail when absent; `Newer`: when the registry's manifest
/// differs). Progress goes to stderr unless `quiet`. Joins every thread it starts.
pub fn ensure_image(
    ctx: &Ctx,
    reference: &str,
    policy: PullPolicy,
    platform: Option<&str>,
    quiet: bool,
) -> Result<Image> {
    let _ = (platform, quiet);
    let store = Store::open(&ctx.paths)?;
    let local = store.find_image(reference)?;
    match (policy, local) {
        (PullPolicy::Never, None) => Err(anyhow::Error::new(crate::exit::Coded::new(
            crate::exit::BOX_ERROR,
            format!(
                "image {reference} is not in the store and --pull=never: run `box pull {reference}` first"
            ),
        ))),
        (PullPolicy::Missing | PullPolicy::Never, Some(image)) => Ok(image),
        _ => {
            not_implemented("pulling")?;
            unreachable!()
        }
    }
}
