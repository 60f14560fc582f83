use anyhow::Result;
use berth_runtime::container;

use crate::Global;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container id
    pub id: String,
}

#[inline(never)] // see main()
pub fn run(g: &Global, args: Args) -> Result<u8> {
    container::resume(&g.root, &args.id)?;
    Ok(0)
}
