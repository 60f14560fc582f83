//! ADD from a git repository, as BuildKit does it: the ref is resolved to a commit first
//! (`git ls-remote`; a full commit hash needs no remote), and that commit is the cache key;
//! only on a miss is the commit fetched (shallow when the server allows it) and checked
//! out, submodules included. git runs as its own command with an argument vector (never a
//! shell string), in its own process group so that a cancel or a timeout stops its helpers
//! too (`git-remote-http`, `ssh`).

use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::build::context::{clean_abs, Entry, EntryKind};
use crate::build::git::{is_commit, pick_ref, GitSource};
use crate::build::BuildError;
use crate::ops::error::{OpsError, Result};
use crate::ops::Cancel;

/// How long one git command may take (a stalled server must not hang the build).
const GIT_TIMEOUT: Duration = Duration::from_secs(600);

/// A commit a git source resolved to.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub commit: String,
    /// The full ref name it came from (`refs/heads/main`); `None` for a commit hash.
    pub refname: Option<String>,
}

/// A checkout in a scratch directory, removed when dropped.
pub struct Checkout {
    dir: PathBuf,
    /// The repository's work tree (its `.git` inside).
    pub tree: PathBuf,
}

impl Drop for Checkout {
    fn drop(&mut self) {
        // Best effort: a leftover directory is swept by the next build.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn git_err(src: &GitSource, message: impl Into<String>) -> OpsError {
    BuildError::Git {
        url: src.remote.clone(),
        reference: src.ref_name().to_string(),
        message: message.into(),
    }
    .into()
}

/// The ssh git runs for `ssh://` and `git@` sources. berth has no daemon to forward an
/// agent to (BuildKit's `--ssh default`): ssh runs as the user who builds, with their
/// agent (`SSH_AUTH_SOCK`), keys and known hosts, and their `GIT_SSH_COMMAND` first (its
/// options win: ssh takes the first value of each). Never a prompt (`BatchMode`), and the
/// host's key must be known already: BuildKit skips the check when it is given no known
/// hosts; a build on the user's behalf checks what the user's own git would.
fn ssh_command() -> String {
    let user = std::env::var("GIT_SSH_COMMAND")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .unwrap_or_else(|| "ssh".to_string());
    format!("{user} -o BatchMode=yes -o StrictHostKeyChecking=yes")
}

/// Runs `git args...` in `cwd`; its stdout, or git's last stderr line as the error.
fn git<S: AsRef<OsStr>>(
    src: &GitSource,
    cwd: Option<&Path>,
    args: &[S],
    cancel: &Cancel,
) -> Result<String> {
    let mut cmd = Command::new("git");
    // No prompt for credentials and no interactive ssh: a build has no one to ask.
    cmd.env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_SSH_COMMAND", ssh_command())
        .env("LC_ALL", "C")
        .args(["-c", "protocol.ext.allow=never"])
        // A repository's submodules must not read the build machine's files (`file://`,
        // paths): git lets a command the user typed use them, not submodule fetches
        // (git-config(1), protocol.allow), whatever the user's config says.
        .args(["-c", "protocol.file.allow=user"])
        .args(["-c", "advice.detachedHead=false"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if let Some(d) = cwd {
        cmd.current_dir(d);
    }
    let mut child = cmd.spawn().map_err(|e| {
        OpsError::from(BuildError::io(
            format!("running git for {}", src.display()),
            e,
        ))
    })?;
    let pgid = child.id();
    let readers = [
        child.stdout.take().map(|mut r| {
            std::thread::spawn(move || {
                let mut s = String::new();
                let _ = r.read_to_string(&mut s);
                s
            })
        }),
        child.stderr.take().map(|mut r| {
            std::thread::spawn(move || {
                let mut s = String::new();
                let _ = r.read_to_string(&mut s);
                s
            })
        }),
    ];
    let deadline = Instant::now() + GIT_TIMEOUT;
    let kill_group = || {
        if let Some(p) = rustix::process::Pid::from_raw(pgid as i32) {
            let _ = rustix::process::kill_process_group(p, rustix::process::Signal::KILL);
        }
    };
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Ok(s),
            Ok(None) => {}
            Err(e) => break Err(e),
        }
        if cancel.is_cancelled() || Instant::now() > deadline {
            kill_group();
            let _ = child.wait();
            for r in readers.into_iter().flatten() {
                let _ = r.join();
            }
            crate::ops::cancel::check(cancel)?;
            return Err(git_err(
                src,
                format!("git did not finish in {}s", GIT_TIMEOUT.as_secs()),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // Helpers the command left behind (none normally) would keep the pipes open.
    kill_group();
    let [out, err] = readers.map(|r| r.and_then(|h| h.join().ok()).unwrap_or_default());
    let status = status.map_err(|e| {
        OpsError::from(BuildError::io(
            format!("waiting for git for {}", src.display()),
            e,
        ))
    })?;
    if !status.success() {
        // git's whole complaint: its last line alone is often advice ("and the repository
        // exists.") after the cause (`Host key verification failed.`).
        let lines: Vec<&str> = err
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let msg = match lines[lines.len().saturating_sub(8)..].join(" ") {
            m if m.is_empty() => "git failed".to_string(),
            m => m,
        };
        return Err(git_err(src, msg));
    }
    Ok(out)
}

/// The commit `src` names now: a full hash as is, else what the remote's refs say.
pub fn resolve(src: &GitSource, cancel: &Cancel) -> Result<Resolved> {
    if let Some(r) = src.reference.as_deref().filter(|r| is_commit(r)) {
        return Ok(Resolved {
            commit: r.to_string(),
            refname: None,
        });
    }
    // All refs, matched here: ls-remote's own patterns match any tail of a ref name.
    let listing = git(src, None, &["ls-remote", "--", &src.remote], cancel)?;
    let (commit, refname) =
        pick_ref(&listing, src.ref_name()).ok_or_else(|| git_err(src, "no such ref"))?;
    Ok(Resolved {
        commit,
        refname: Some(refname),
    })
}

/// Fetches and checks out `r` in a scratch directory under `root`; `keep_git_dir` leaves
/// the remote as `origin` and, for a branch, the branch checked out.
pub fn checkout(
    src: &GitSource,
    r: &Resolved,
    root: &Path,
    keep_git_dir: bool,
    cancel: &Cancel,
) -> Result<Checkout> {
    let dir = super::layer::scratch_dir(root, "git")?;
    let co = Checkout {
        tree: dir.join("repo"),
        dir,
    };
    let tree = co.tree.as_path();
    git(
        src,
        None,
        &[OsStr::new("init"), OsStr::new("-q"), tree.as_os_str()],
        cancel,
    )?;
    let run = |args: &[&str]| git(src, Some(tree), args, cancel);
    run(&["remote", "add", "origin", &src.remote])?;
    // A commit by its hash needs a server that allows it (protocol v2 does); else the ref
    // it came from, or every branch and tag.
    let by_hash = run(&["fetch", "-q", "--depth=1", "--no-tags", "origin", &r.commit]);
    if by_hash.is_err() {
        match &r.refname {
            Some(name) => {
                run(&["fetch", "-q", "--depth=1", "--no-tags", "origin", name])?;
            }
            None => {
                run(&[
                    "fetch",
                    "-q",
                    "--no-tags",
                    "origin",
                    "+refs/heads/*:refs/remotes/origin/*",
                    "+refs/tags/*:refs/tags/*",
                ])?;
            }
        }
    }
    let spec = format!("{}^{{commit}}", r.commit);
    if run(&["cat-file", "-e", &spec]).is_err() {
        return Err(git_err(
            src,
            format!("commit {} not found on the remote", r.commit),
        ));
    }
    let branch = r
        .refname
        .as_deref()
        .and_then(|n| n.strip_prefix("refs/heads/"))
        .filter(|_| keep_git_dir);
    match branch {
        Some(b) => run(&["checkout", "-q", "-B", b, &r.commit])?,
        None => run(&["checkout", "-q", "--detach", &r.commit])?,
    };
    if tree.join(".gitmodules").exists() {
        run(&[
            "submodule",
            "update",
            "-q",
            "--init",
            "--recursive",
            "--depth=1",
        ])?;
    }
    // Every component a directory, not a link: the copy must stay inside the checkout.
    let mut sub = tree.to_path_buf();
    for c in src.subdir.split('/').filter(|c| !c.is_empty()) {
        sub.push(c);
        if !std::fs::symlink_metadata(&sub).is_ok_and(|m| m.is_dir()) {
            return Err(git_err(
                src,
                format!("directory {} not found in the repository", src.subdir),
            ));
        }
    }
    Ok(co)
}

/// The entries of a git checkout's `subdir` copied into `dest` (a directory), as BuildKit
/// writes them: owned by root, directories 0755, files 0644 or, when git marks them
/// executable, 0755; the top `.git` only with `--keep-git-dir`, its modes as git made them.
/// Without it no `.git` at all: a submodule's `.git` file names a directory under the top
/// `.git` (`gitdir: ../.git/modules/x`) that is not copied. (git never tracks a path named
/// `.git`, so every one in the checkout is git's own.)
pub fn checkout_entries(
    tree: &Path,
    subdir: &str,
    dest: &str,
    keep_git_dir: bool,
) -> Result<Vec<Entry>> {
    let ctx = crate::build::context::Context::new(tree.to_path_buf(), Default::default());
    let git_dir = tree.join(".git");
    let mut out = ctx.entries(subdir, &clean_abs(dest))?;
    let is_git_own = |p: &Path| {
        p.strip_prefix(tree)
            .is_ok_and(|rel| rel.components().any(|c| c.as_os_str() == ".git"))
    };
    out.retain(|e| keep_git_dir || !e.source.as_deref().is_some_and(is_git_own));
    for e in &mut out {
        e.uid = 0;
        e.gid = 0;
        if e.source.as_ref().is_some_and(|p| p.starts_with(&git_dir)) {
            // A kept `.git` as git wrote it (read-only objects stay read-only).
            e.mode &= !0o022;
            continue;
        }
        e.mode = match e.kind {
            EntryKind::Dir => 0o755,
            EntryKind::Symlink { .. } => 0o777,
            EntryKind::File { .. } if e.mode & 0o111 != 0 => 0o755,
            EntryKind::File { .. } | EntryKind::Fifo => 0o644,
        };
    }
    Ok(out)
}
