use anyhow::Result;
use berth_runtime::state::ContainerDir;

use crate::Global;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container id
    pub id: String,
}

#[inline(never)] // see main()
pub fn run(g: &Global, args: Args) -> Result<u8> {
    let dir = ContainerDir::open(&g.root, &args.id)?;
    let state = dir.load()?;
    let status = state.status(&dir.path);
    println!("{}", serde_json::to_string_pretty(&state.oci(status))?);
    Ok(0)
}
