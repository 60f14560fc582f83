//! File work in the user's id space: a rootless berth with subordinate ranges stores image
//! files with their owners shifted, as podman does: container uid 0 is the user itself and
//! container uid N (N > 0) is `subuid_first + N - 1` on disk (gids alike). The user cannot
//! chown to those ids, nor read what they keep to themselves, so the work that makes, copies or
//! removes such trees runs in a helper: berth itself, started by `unshare(1)` (util-linux) in a
//! new user namespace with that mapping (written through newuidmap/newgidmap), where it is root
//! over the mapped ids. The container's user namespace maps the same way (see `adapt_spec`), so
//! inside the container the files have the image's owners.
//!
//! The job travels in the environment ([`JOB_ENV`], JSON), the layer stream (for an unpack) on
//! the helper's stdin; the answer comes back on its stdout, an error's text on its stderr.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use super::{IdRanges, SubRange};

/// The environment variable that makes `berth` run one job as the helper.
pub const JOB_ENV: &str = "BERTH_USERNS_JOB";

/// One piece of work for the helper.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "lowercase")]
pub enum Job {
    /// Applies the layer read from stdin onto `dir` (see `unpack::Target`); answers
    /// `{"diff_id":…, "entries":…}`.
    Unpack {
        dir: PathBuf,
        overlay_whiteouts: bool,
        lowers: Vec<PathBuf>,
    },
    /// Copies the tree `src` to the new path `dst`, owners and all; with `own`, every copied
    /// entry then belongs to the helper's root (the user itself).
    Copy {
        src: PathBuf,
        dst: PathBuf,
        #[serde(default)]
        own: bool,
    },
    /// Removes the tree `path`.
    Remove { path: PathBuf },
    /// The changes of copy snapshot `top` against `lower`, as JSON on stdout.
    Changes {
        top: PathBuf,
        lower: Option<PathBuf>,
    },
    /// The layer tar of those changes on stdout.
    Layer {
        top: PathBuf,
        lower: Option<PathBuf>,
    },
    /// The layer tar of a build's RUN step on copy snapshot `top` (see
    /// `ops::images::build::copy_layer`) on stdout; the setup's leftovers at `skip` paths are
    /// removed from `top`.
    Steplayer {
        top: PathBuf,
        lower: Option<PathBuf>,
        skip: Vec<String>,
    },
    /// `path` of the container tree `rootfs` as a tar stream on stdout (`cp` out).
    Archiveget { rootfs: PathBuf, path: String },
    /// Unpacks the tar stream on stdin into directory `dir` of the container tree `rootfs`
    /// (`cp` in).
    Archiveput { rootfs: PathBuf, dir: String },
    /// `stat` of `path` in the container tree `rootfs`, answered as JSON (`cp`'s checks).
    Cpstat { rootfs: PathBuf, path: String },
    /// Where a copy into `path` of the container tree `rootfs` lands, answered as JSON.
    Cptarget {
        rootfs: PathBuf,
        path: String,
        src_is_dir: bool,
    },
    /// Writes the entries of directory `root` as a tar stream to stdout (owners as the
    /// container sees them: the helper's user namespace maps them back).
    Tar { root: PathBuf },
    /// A volume's copy-up (`volume::copy::populate`); answers `true` or `false`.
    Populate {
        vol_dir: PathBuf,
        data: PathBuf,
        rootfs: Option<PathBuf>,
        source: PathBuf,
    },
}

/// What an unpack job answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Unpacked {
    diff_id: String,
    entries: u64,
    #[serde(default)]
    bytes: u64,
}

/// Whether this berth shifts image owners into the user's subordinate ranges: rootless, with
/// a subordinate uid and gid range, newuidmap/newgidmap and unshare(1) installed (and not
/// itself the helper).
pub fn shifting() -> bool {
    mapping().is_some()
}

/// The user's ids and both ranges, when [`shifting`].
fn mapping() -> Option<&'static (IdRanges, SubRange, SubRange)> {
    static MAPPING: OnceLock<Option<(IdRanges, SubRange, SubRange)>> = OnceLock::new();
    MAPPING
        .get_or_init(|| {
            if !super::is_rootless()
                || std::env::var_os(JOB_ENV).is_some()
                || !super::which("unshare")
            {
                return None;
            }
            let ids = super::id_ranges();
            let (u, g) = (ids.sub_uids?, ids.sub_gids?);
            Some((ids, u, g))
        })
        .as_ref()
}

fn other(msg: String) -> io::Error {
    io::Error::other(msg)
}

/// Runs `job` in the helper, feeding it `input` (when given) on stdin. Returns its stdout.
fn run(job: &Job, input: Option<&mut dyn Read>) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    run_into(job, input, &mut out)?;
    Ok(out)
}

/// [`run`], its stdout streamed into `output`.
fn run_into(job: &Job, input: Option<&mut dyn Read>, output: &mut dyn Write) -> io::Result<()> {
    let (_, subu, subg) =
        mapping().ok_or_else(|| other("no subordinate id ranges to map".into()))?;
    let exe = std::env::current_exe()?;
    let spec = serde_json::to_string(job).map_err(io::Error::other)?;
    let mut child = Command::new("unshare")
        .arg("--user")
        .arg(format!("--map-users={},1,{}", subu.first, subu.count))
        .arg(format!("--map-groups={},1,{}", subg.first, subg.count))
        .arg("--map-root-user")
        .arg("--")
        .arg(&exe)
        .env(JOB_ENV, spec)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            other(format!(
                "starting unshare for the user-namespace helper: {e}"
            ))
        })?;
    // stderr is read on the side: the helper may fill it while we feed or drain it.
    let mut stderr = child.stderr.take();
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(e) = stderr.as_mut() {
            let _ = e.read_to_string(&mut text);
        }
        text
    });
    let mut fed = Ok(());
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        fed = match io::copy(input, &mut stdin) {
            Ok(_) => Ok(()),
            // The helper stopped reading: its own error says why.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
            Err(e) => Err(e),
        };
    }
    let drained = match child.stdout.take() {
        Some(mut so) => io::copy(&mut so, output).map(drop),
        None => Ok(()),
    };
    if drained.is_err() {
        let _ = child.kill();
    }
    let status = child.wait()?;
    let text = errors.join().unwrap_or_default();
    if !status.success() {
        return Err(other(text.trim().to_string()));
    }
    fed?;
    drained
}

/// Applies a layer in the helper; returns its diffID and entry count.
pub fn unpack(
    blob: &mut dyn Read,
    dir: &Path,
    overlay_whiteouts: bool,
    lowers: &[PathBuf],
) -> io::Result<(String, u64, u64)> {
    let job = Job::Unpack {
        dir: dir.to_path_buf(),
        overlay_whiteouts,
        lowers: lowers.to_vec(),
    };
    let out = run(&job, Some(blob))?;
    let got: Unpacked = serde_json::from_slice(&out).map_err(|e| {
        other(format!(
            "the user-namespace helper answered {:?}: {e}",
            String::from_utf8_lossy(&out)
        ))
    })?;
    Ok((got.diff_id, got.entries, got.bytes))
}

/// Copies the tree `src` to `dst` in the helper.
pub fn copy(src: &Path, dst: &Path) -> io::Result<()> {
    run(
        &Job::Copy {
            src: src.to_path_buf(),
            dst: dst.to_path_buf(),
            own: false,
        },
        None,
    )
    .map(drop)
}

/// Copies the tree `src` to `dst` in the helper, every entry of the copy the user's own (so
/// that the user reads files of the container's other users; modes are kept).
pub fn copy_owned(src: &Path, dst: &Path) -> io::Result<()> {
    run(
        &Job::Copy {
            src: src.to_path_buf(),
            dst: dst.to_path_buf(),
            own: true,
        },
        None,
    )
    .map(drop)
}

/// Makes every entry of the tree `path` root's (in the helper: the user's), setuid and setgid
/// bits kept as they were (chown(2) clears them).
fn own_tree(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let md = std::fs::symlink_metadata(path)?;
    std::os::unix::fs::lchown(path, Some(0), Some(0))
        .map_err(|e| other(format!("{}: {e}", path.display())))?;
    if md.file_type().is_symlink() {
        return Ok(());
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(md.mode() & 0o7777))?;
    if md.is_dir() {
        for e in std::fs::read_dir(path)? {
            own_tree(&e?.path())?;
        }
    }
    Ok(())
}

/// A volume's copy-up in the helper: whether anything was copied.
pub fn populate(
    vol_dir: &Path,
    data: &Path,
    rootfs: Option<&Path>,
    source: &Path,
) -> io::Result<bool> {
    let job = Job::Populate {
        vol_dir: vol_dir.to_path_buf(),
        data: data.to_path_buf(),
        rootfs: rootfs.map(Path::to_path_buf),
        source: source.to_path_buf(),
    };
    Ok(run(&job, None)? == b"true")
}

/// Writes the entries of `root` as a tar stream into `out`, from the helper (whose user
/// namespace shows the container's owners and may read every file).
pub fn tar_tree(root: &Path, out: &mut dyn Write) -> io::Result<()> {
    run_into(
        &Job::Tar {
            root: root.to_path_buf(),
        },
        None,
        out,
    )
}

/// What a copy snapshot changed against its parent's tree (JSON of the changes), compared in
/// the helper.
pub fn changes_json(top: &Path, lower: Option<&Path>) -> io::Result<Vec<u8>> {
    run(
        &Job::Changes {
            top: top.to_path_buf(),
            lower: lower.map(Path::to_path_buf),
        },
        None,
    )
}

/// The layer tar of a copy snapshot's changes, written by the helper into `out`.
pub fn layer_tar(top: &Path, lower: Option<&Path>, out: &mut dyn Write) -> io::Result<()> {
    run_into(
        &Job::Layer {
            top: top.to_path_buf(),
            lower: lower.map(Path::to_path_buf),
        },
        None,
        out,
    )
}

/// The layer tar of a build step's copy snapshot, written by the helper into `out`.
pub fn step_layer(
    top: &Path,
    lower: Option<&Path>,
    skip: &std::collections::BTreeSet<String>,
    out: &mut dyn Write,
) -> io::Result<()> {
    run_into(
        &Job::Steplayer {
            top: top.to_path_buf(),
            lower: lower.map(Path::to_path_buf),
            skip: skip.iter().cloned().collect(),
        },
        None,
        out,
    )
}

/// `cp` out of a container: `path` of its tree `rootfs` as a tar stream into `out`, written
/// by the helper (the container's ids in the headers).
pub fn archive_get(rootfs: &Path, path: &str, out: &mut dyn Write) -> io::Result<()> {
    run_into(
        &Job::Archiveget {
            rootfs: rootfs.to_path_buf(),
            path: path.to_string(),
        },
        None,
        out,
    )
}

/// `cp` into a container: the tar stream `input` unpacked by the helper into `dir` of its
/// tree `rootfs`.
pub fn archive_put(rootfs: &Path, dir: &str, input: &mut dyn Read) -> io::Result<()> {
    run(
        &Job::Archiveput {
            rootfs: rootfs.to_path_buf(),
            dir: dir.to_string(),
        },
        Some(input),
    )
    .map(drop)
}

/// `cp`'s stat of a path the user cannot reach, in the helper (its JSON answer).
pub fn cp_stat(rootfs: &Path, path: &str) -> io::Result<Vec<u8>> {
    run(
        &Job::Cpstat {
            rootfs: rootfs.to_path_buf(),
            path: path.to_string(),
        },
        None,
    )
}

/// Where `cp` into a path the user cannot reach lands, in the helper (its JSON answer).
pub fn cp_target(rootfs: &Path, path: &str, src_is_dir: bool) -> io::Result<Vec<u8>> {
    run(
        &Job::Cptarget {
            rootfs: rootfs.to_path_buf(),
            path: path.to_string(),
            src_is_dir,
        },
        None,
    )
}

/// Removes the tree `path`: directly, and when that is refused (a directory of a shifted
/// owner the user may not enter or change), in the helper.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied && shifting() => run(
            &Job::Remove {
                path: path.to_path_buf(),
            },
            None,
        )
        .map(drop),
        r => r,
    }
}

/// The helper's side: when [`JOB_ENV`] is set, runs that job and returns the process's exit
/// code (0, or 1 with the error's text on stderr); `None` for an ordinary berth.
pub fn job_main() -> Option<i32> {
    let spec: OsString = std::env::var_os(JOB_ENV)?;
    let result = serde_json::from_slice::<Job>(spec.as_encoded_bytes())
        .map_err(|e| format!("bad {JOB_ENV}: {e}"))
        .and_then(|job| do_job(job).map_err(|e| crate::ops::error::chain(&*e)));
    let mut out = io::stdout().lock();
    match result {
        Ok(answer) => {
            let _ = out.write_all(&answer);
            let _ = out.flush();
            Some(0)
        }
        Err(text) => {
            let _ = io::stderr().write_all(format!("{text}\n").as_bytes());
            Some(1)
        }
    }
}

fn do_job(job: Job) -> Result<Vec<u8>, Box<dyn std::error::Error + Send + Sync>> {
    match job {
        Job::Unpack {
            dir,
            overlay_whiteouts,
            lowers,
        } => {
            let target = crate::unpack::Target {
                dir,
                whiteouts: if overlay_whiteouts {
                    crate::unpack::Whiteouts::Overlay
                } else {
                    crate::unpack::Whiteouts::Delete
                },
                lowers,
            };
            let stdin = io::stdin().lock();
            let applied =
                crate::unpack::apply_layer(io::BufReader::with_capacity(1 << 20, stdin), &target)?;
            Ok(serde_json::to_vec(&Unpacked {
                diff_id: applied.diff_id.to_string(),
                entries: applied.entries,
                bytes: applied.bytes,
            })?)
        }
        Job::Copy { src, dst, own } => {
            crate::snapshot::copy_tree_as_is(&src, &dst)?;
            if own {
                own_tree(&dst)?;
            }
            Ok(Vec::new())
        }
        Job::Populate {
            vol_dir,
            data,
            rootfs,
            source,
        } => {
            let copied =
                crate::volume::populate_as_is(&vol_dir, &data, rootfs.as_deref(), &source)?;
            Ok(if copied {
                b"true".to_vec()
            } else {
                b"false".to_vec()
            })
        }
        Job::Changes { top, lower } => Ok(crate::ops::containers::copy_changes_json(
            &top,
            lower.as_deref(),
        )?),
        Job::Layer { top, lower } => {
            let mut out = io::stdout().lock();
            crate::ops::containers::copy_layer_tar(&top, lower.as_deref(), &mut out)?;
            out.flush()?;
            Ok(Vec::new())
        }
        Job::Steplayer { top, lower, skip } => {
            let mut out = io::stdout().lock();
            crate::ops::images::write_step_layer(
                &top,
                lower.as_deref(),
                &skip.into_iter().collect(),
                &mut out,
            )?;
            out.flush()?;
            Ok(Vec::new())
        }
        Job::Archiveget { rootfs, path } => {
            let mut out = io::stdout().lock();
            crate::ops::containers::write_archive(&rootfs, &path, &mut out)?;
            out.flush()?;
            Ok(Vec::new())
        }
        Job::Archiveput { rootfs, dir } => {
            crate::ops::containers::unpack_archive(&rootfs, &dir, io::stdin().lock())?;
            Ok(Vec::new())
        }
        Job::Cpstat { rootfs, path } => Ok(crate::ops::containers::cp_stat_answer(&rootfs, &path)?),
        Job::Cptarget {
            rootfs,
            path,
            src_is_dir,
        } => Ok(crate::ops::containers::cp_target_answer(
            &rootfs, &path, src_is_dir,
        )?),
        Job::Tar { root } => {
            let mut b = tar::Builder::new(io::stdout().lock());
            b.follow_symlinks(false);
            let mut names: Vec<OsString> = std::fs::read_dir(&root)?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<io::Result<_>>()?;
            names.sort();
            for name in names {
                let path = root.join(&name);
                if std::fs::symlink_metadata(&path)?.is_dir() {
                    b.append_dir_all(&name, &path)?;
                } else {
                    b.append_path_with_name(&path, &name)?;
                }
            }
            b.into_inner()?.flush()?;
            Ok(Vec::new())
        }
        Job::Remove { path } => {
            std::fs::remove_dir_all(&path)
                .map_err(|e| format!("removing {}: {e}", path.display()))?;
            Ok(Vec::new())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_travel_as_json() {
        let job = Job::Unpack {
            dir: "/s/1/fs".into(),
            overlay_whiteouts: false,
            lowers: vec!["/s/0/fs".into()],
        };
        let text = serde_json::to_string(&job).unwrap();
        assert!(text.contains("\"job\":\"unpack\""), "{text}");
        assert_eq!(serde_json::from_str::<Job>(&text).unwrap(), job);
    }
}
