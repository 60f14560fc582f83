use anyhow::Result;
use berth_runtime::container;

use crate::Global;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container id
    pub id: String,
    /// Kill the container first if it is still running
    #[arg(long, short = 'f')]
    pub force: bool,
}

#[inline(never)] // see main()
pub fn run(g: &Global, args: Args) -> Result<u8> {
    match container::delete(&g.root, &args.id, args.force) {
        // runc: `delete --force` of a container that does not exist succeeds.
        Err(container::Error::State(berth_runtime::state::StateError::NotFound { .. }))
            if args.force =>
        {
            Ok(0)
        }
        other => {
            other?;
            Ok(0)
        }
    }
}
