//! `restore`: runc's flags and checks, then a clear refusal: berth-runtime has no CRIU
//! integration (see checkpoint.rs and docs/runc-suite.md).

use std::path::PathBuf;

use anyhow::{bail, Result};
use berth_runtime::config::Bundle;

use crate::Global;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container id
    pub id: String,
    /// Unix socket that receives the pty master
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Path to criu image files for restoring
    #[arg(long = "image-path")]
    pub image_path: Option<PathBuf>,
    /// Path for saving work files and logs
    #[arg(long = "work-path")]
    pub work_path: Option<PathBuf>,
    /// Allow open tcp connections
    #[arg(long = "tcp-established")]
    pub tcp_established: bool,
    /// Allow external unix sockets
    #[arg(long = "ext-unix-sk")]
    pub ext_unix_sk: bool,
    /// Allow shell jobs
    #[arg(long = "shell-job")]
    pub shell_job: bool,
    /// Handle file locks, for safety
    #[arg(long = "file-locks")]
    pub file_locks: bool,
    /// Cgroups mode: soft (default), full, strict
    #[arg(long = "manage-cgroups-mode")]
    pub manage_cgroups_mode: Option<String>,
    /// Path to the bundle directory
    #[arg(long, short = 'b', default_value = ".")]
    pub bundle: PathBuf,
    /// Detach from the container's process
    #[arg(long, short = 'd')]
    pub detach: bool,
    /// File to write the process id to
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Do not use a subreaper to reap reparented processes
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
    /// Do not use pivot root to jail the process inside rootfs
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Create a namespace, but do not restore its properties (repeatable)
    #[arg(long = "empty-ns")]
    pub empty_ns: Vec<String>,
    /// Enable auto deduplication of memory images
    #[arg(long = "auto-dedup")]
    pub auto_dedup: bool,
    /// Use userfaultfd to lazily restore memory pages
    #[arg(long = "lazy-pages")]
    pub lazy_pages: bool,
    /// LSM profile to use on restore
    #[arg(long = "lsm-profile")]
    pub lsm_profile: Option<String>,
    /// LSM mount context to use on restore
    #[arg(long = "lsm-mount-context")]
    pub lsm_mount_context: Option<String>,
}

#[inline(never)] // see main()
pub fn run(_g: &Global, args: Args) -> Result<u8> {
    berth_runtime::state::validate_id(&args.id)?;
    Bundle::load(&args.bundle)?;
    bail!(
        "restore of container {}: not supported: berth-runtime has no CRIU integration",
        args.id
    )
}
