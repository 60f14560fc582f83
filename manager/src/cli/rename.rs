//! `berth rename CONTAINER NEW_NAME`.

use anyhow::Result;
use berth::container::store::valid_name;
use berth::container::ContainerError;

use super::{ctr, Ctx};

#[derive(Debug, clap::Args)]
pub struct Args {
    container: String,
    new_name: String,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let (store, r) = ctr::find(&ctx.settings.root, &args.container)?;
    let name = args.new_name.strip_prefix('/').unwrap_or(&args.new_name);
    if !valid_name(name) {
        return Err(ContainerError::BadName {
            name: name.to_string(),
        }
        .into());
    }
    let _names = store.names_lock()?;
    if let Some(other) = store.list()?.into_iter().find(|o| o.name == name) {
        if other.id != r.id {
            return Err(ContainerError::NameInUse {
                name: name.to_string(),
                id: other.id,
            }
            .into());
        }
    }
    store.update(&r.id, |r| r.name = name.to_string())?;
    Ok(())
}
