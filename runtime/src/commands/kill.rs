use anyhow::Result;
use berth_runtime::{container, signal};

use crate::Global;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container id
    pub id: String,
    /// Signal name (KILL, SIGKILL) or number; default SIGTERM
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
    /// Signal every process in the container's cgroup, not only its init
    #[arg(long, short = 'a')]
    pub all: bool,
}

#[inline(never)] // see main()
pub fn run(g: &Global, args: Args) -> Result<u8> {
    let sig = signal::parse(&args.signal)?;
    container::kill(&g.root, &args.id, sig, args.all)?;
    Ok(0)
}
