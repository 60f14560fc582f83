//! `checkpoint`: runc's flags and checks, then a clear refusal: berth-runtime has no CRIU
//! integration (checkpoint/restore is a deliberate gap; see docs/runc-suite.md).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use berth_runtime::state::{ContainerDir, Status};

use crate::Global;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container id
    pub id: String,
    /// Path for saving criu image files
    #[arg(long = "image-path")]
    pub image_path: Option<PathBuf>,
    /// Path for saving work files and logs
    #[arg(long = "work-path")]
    pub work_path: Option<PathBuf>,
    /// Path for previous criu image files in pre-dump (relative to --image-path)
    #[arg(long = "parent-path")]
    pub parent_path: Option<PathBuf>,
    /// Leave the process running after checkpointing
    #[arg(long = "leave-running")]
    pub leave_running: bool,
    /// Allow open tcp connections
    #[arg(long = "tcp-established")]
    pub tcp_established: bool,
    /// Allow external unix sockets
    #[arg(long = "ext-unix-sk")]
    pub ext_unix_sk: bool,
    /// Allow shell jobs
    #[arg(long = "shell-job")]
    pub shell_job: bool,
    /// Use userfaultfd to lazily restore memory pages
    #[arg(long = "lazy-pages")]
    pub lazy_pages: bool,
    /// criu writes \0 to this fd once lazy-pages is ready
    #[arg(long = "status-fd", default_value_t = -1, allow_negative_numbers = true)]
    pub status_fd: i32,
    /// ADDRESS:PORT of the page server
    #[arg(long = "page-server")]
    pub page_server: Option<String>,
    /// Handle file locks, for safety
    #[arg(long = "file-locks")]
    pub file_locks: bool,
    /// Dump the container's memory information only, leave it running
    #[arg(long = "pre-dump")]
    pub pre_dump: bool,
    /// Cgroups mode: soft (default), full, strict
    #[arg(long = "manage-cgroups-mode")]
    pub manage_cgroups_mode: Option<String>,
    /// Create a namespace, but do not restore its properties (repeatable)
    #[arg(long = "empty-ns")]
    pub empty_ns: Vec<String>,
    /// Enable auto deduplication of memory images
    #[arg(long = "auto-dedup")]
    pub auto_dedup: bool,
}

#[inline(never)] // see main()
pub fn run(g: &Global, args: Args) -> Result<u8> {
    let dir = ContainerDir::open(&g.root, &args.id)?;
    let status = dir.load()?.status(&dir.path);
    if matches!(status, Status::Created | Status::Stopped | Status::Creating) {
        bail!(
            "container {} cannot be checkpointed in {status} state",
            args.id
        );
    }
    let image = args
        .image_path
        .clone()
        .unwrap_or_else(|| PathBuf::from("checkpoint"));
    if let Some(parent) = &args.parent_path {
        check_parent_path(&image, parent)?;
    }
    if let Some(mode) = &args.manage_cgroups_mode {
        if !matches!(mode.as_str(), "soft" | "full" | "strict") {
            bail!("--manage-cgroups-mode {mode:?}: must be soft, full or strict");
        }
    }
    bail!(
        "checkpoint of container {}: not supported: berth-runtime has no CRIU integration",
        args.id
    )
}

/// runc's rule: the parent images are named relative to the image directory, and must be a
/// directory there.
fn check_parent_path(image: &Path, parent: &Path) -> Result<()> {
    if parent.is_absolute() {
        bail!("--parent-path {}: must be relative", parent.display());
    }
    let real = image.join(parent);
    let meta = std::fs::metadata(&real)
        .with_context(|| format!("invalid --parent-path {}", real.display()))?;
    if !meta.is_dir() {
        bail!("invalid --parent-path {}: not a directory", real.display());
    }
    Ok(())
}
