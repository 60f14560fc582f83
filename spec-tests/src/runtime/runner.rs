//! Running the runtime binary: one private `--root` per test, stdio captured into files (a
//! created container inherits the runtime's stdio, so files are what the container writes to
//! as well), and a timeout on every command.

use std::fs::{self, File};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::{leaks, COMMAND_TIMEOUT};

/// The runtime binary under test: `$BERTH_TEST_RUNTIME` (a path, or a command name looked up
/// in `PATH`, so engines that want a path get one) or the workspace's debug build.
pub fn runtime_binary() -> PathBuf {
    match std::env::var_os("BERTH_TEST_RUNTIME") {
        Some(v) if !v.is_empty() => {
            let named = PathBuf::from(&v);
            if named.components().count() > 1 {
                return named;
            }
            std::env::var_os("PATH")
                .iter()
                .flat_map(std::env::split_paths)
                .map(|dir| dir.join(&named))
                .find(|p| p.is_file())
                .unwrap_or(named)
        }
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/berth-runtime"),
    }
}

/// True when the runtime under test is berth-runtime (not runc or crun used for validation).
/// Tests use it to be strict about berth's own promises where runc 1.1 differs.
pub fn is_berth() -> bool {
    runtime_binary()
        .file_name()
        .is_some_and(|n| n.to_string_lossy().contains("berth"))
}

/// What a finished command did.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub args: Vec<String>,
    /// Exit code, None when killed by a signal.
    pub code: Option<i32>,
    /// Terminating signal, if any.
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Ok(self) when the command exited 0, otherwise an error showing the command and output.
    pub fn ok(self) -> Result<Self> {
        if self.success() {
            Ok(self)
        } else {
            bail!("{self}")
        }
    }

    /// Fails unless the command exited non-zero (and was not killed by a signal).
    pub fn failed(self) -> Result<Self> {
        match self.code {
            Some(c) if c != 0 => Ok(self),
            _ => bail!("expected a non-zero exit status: {self}"),
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` exited with code {:?} signal {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.args.join(" "),
            self.code,
            self.signal,
            self.stdout,
            self.stderr
        )
    }
}

/// Options for one runtime invocation.
#[derive(Default)]
pub struct RunOpts {
    /// Working directory of the runtime process.
    pub cwd: Option<PathBuf>,
    /// Extra fds to pass at the given numbers (e.g. 3 for `--preserve-fds 1`).
    pub extra_fds: Vec<(i32, OwnedFd)>,
    /// Kill the command and fail after this long (default [`COMMAND_TIMEOUT`]).
    pub timeout: Option<Duration>,
    /// Use this fd (e.g. a pty slave) as stdin, stdout and stderr instead of /dev/null and
    /// files; the Outcome's stdout/stderr are then empty.
    pub stdio: Option<OwnedFd>,
}

/// A runtime command started in the background (e.g. `run` in the foreground mode).
pub struct Spawned {
    child: Child,
    args: Vec<String>,
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
}

impl Spawned {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Waits for the command to exit; kills it and fails after `timeout`.
    pub fn wait(mut self, timeout: Duration) -> Result<Outcome> {
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(1);
        let status = loop {
            if let Some(status) = self.child.try_wait()? {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                bail!(
                    "`{}` did not finish within {timeout:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                    self.args.join(" "),
                    read_lossy(&self.stdout_path),
                    read_lossy(&self.stderr_path)
                );
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(10));
        };
        Ok(Outcome {
            args: std::mem::take(&mut self.args),
            code: status.code(),
            signal: status.signal(),
            stdout: read_lossy(&self.stdout_path),
            stderr: read_lossy(&self.stderr_path),
        })
    }

    /// Current content of the command's stdout file (which running containers share).
    pub fn stdout_now(&self) -> String {
        read_lossy(&self.stdout_path)
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub(crate) fn read_lossy(path: &Path) -> String {
    fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// A runtime under test with a private `--root` and temp dir. Every command it runs gets
/// `--root <root>` first.
pub struct Runtime {
    bin: PathBuf,
    root: PathBuf,
    tmp: tempfile::TempDir,
    counter: AtomicUsize,
}

/// Live [`Runtime`]s in this process; the shared cgroup parent is removed when the last one
/// goes, under this lock so no other test is creating a container below it at that moment.
static LIVE: Mutex<usize> = Mutex::new(0);

impl Runtime {
    /// The runtime named by `BERTH_TEST_RUNTIME` (or berth-runtime).
    pub fn new() -> Result<Self> {
        Self::with_binary(runtime_binary())
    }

    /// A specific runtime binary, e.g. "runc" for differential tests.
    pub fn with_binary(bin: PathBuf) -> Result<Self> {
        become_subreaper();
        let tmp = tempfile::Builder::new()
            .prefix("berth-rt-")
            .tempdir()
            .context("creating the test temp dir")?;
        // 0755 so a container in a user namespace can still reach bind-mount sources.
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755))?;
        let root = tmp.path().join("root");
        *LIVE.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        Ok(Self {
            bin,
            root,
            tmp,
            counter: AtomicUsize::new(0),
        })
    }

    pub fn binary(&self) -> &Path {
        &self.bin
    }

    /// The `--root` state directory passed to every command.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The private temp dir (bundles, output files, sockets live here).
    pub fn tmp(&self) -> &Path {
        self.tmp.path()
    }

    /// A fresh numbered path in the temp dir, e.g. `fresh_path("out")` → `<tmp>/io/7.out`.
    pub fn fresh_path(&self, ext: &str) -> PathBuf {
        let n = self.counter.fetch_add(1, Ordering::SeqCst);
        let dir = self.tmp.path().join("io");
        let _ = fs::create_dir_all(&dir);
        dir.join(format!("{n}.{ext}"))
    }

    /// A container id unique in this process and naming the test that made it.
    pub fn unique_id(&self) -> String {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let thread = std::thread::current();
        let name: String = thread
            .name()
            .unwrap_or("t")
            .rsplit("::")
            .next()
            .unwrap_or("t")
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(40)
            .collect();
        format!("{name}-{}-{n}", std::process::id())
    }

    /// Runs `<runtime> --root <root> args...` to completion with the default options.
    pub fn cmd(&self, args: &[&str]) -> Result<Outcome> {
        self.cmd_opts(args, RunOpts::default())
    }

    /// Runs a command to completion.
    pub fn cmd_opts(&self, args: &[&str], opts: RunOpts) -> Result<Outcome> {
        let timeout = opts.timeout.unwrap_or(COMMAND_TIMEOUT);
        self.spawn(args, opts)?.wait(timeout)
    }

    /// Starts a command without waiting: stdin is /dev/null, stdout and stderr go to fresh
    /// files (a container made by `create`/`run` without a terminal writes there too).
    pub fn spawn(&self, args: &[&str], opts: RunOpts) -> Result<Spawned> {
        let stdout_path = self.fresh_path("out");
        let stderr_path = self.fresh_path("err");
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--root").arg(&self.root).args(args);
        match &opts.stdio {
            Some(fd) => {
                cmd.stdin(fd.try_clone()?)
                    .stdout(fd.try_clone()?)
                    .stderr(fd.try_clone()?);
            }
            None => {
                cmd.stdin(Stdio::null())
                    .stdout(File::create(&stdout_path)?)
                    .stderr(File::create(&stderr_path)?);
            }
        }
        if let Some(cwd) = &opts.cwd {
            cmd.current_dir(cwd);
        }
        if !opts.extra_fds.is_empty() {
            let fds: Vec<(i32, i32)> = opts
                .extra_fds
                .iter()
                .map(|(target, fd)| (*target, fd.as_raw_fd()))
                .collect();
            // SAFETY: only async-signal-safe calls (dup2, fcntl) between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    for &(target, src) in &fds {
                        if target == src {
                            let flags = libc::fcntl(src, libc::F_GETFD);
                            libc::fcntl(src, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
                        } else if libc::dup2(src, target) < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                    }
                    Ok(())
                });
            }
        }
        let mut all = vec![
            self.bin.display().to_string(),
            "--root".into(),
            self.root.display().to_string(),
        ];
        all.extend(args.iter().map(|s| s.to_string()));
        let child = cmd
            .spawn()
            .with_context(|| format!("spawning the runtime {}", self.bin.display()))?;
        drop(opts.extra_fds);
        drop(opts.stdio);
        Ok(Spawned {
            child,
            args: all,
            stdout_path,
            stderr_path,
        })
    }

    /// Fails with a list of everything container `id` left behind: state dir, mounts under
    /// `bundle`, cgroup directories, live processes among `pids`.
    pub fn assert_no_leaks(
        &self,
        id: &str,
        bundle: &Path,
        pids: &[leaks::ProcessId],
    ) -> Result<()> {
        leaks::check(&self.root, id, bundle, pids)
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        *live -= 1;
        if *live == 0 {
            leaks::remove_empty_cgroup_parents();
        }
    }
}

/// The test process adopts orphaned container processes (this machine's PID 1 does not reap),
/// so the harness can reap each container's init after delete. See prctl(2),
/// PR_SET_CHILD_SUBREAPER.
fn become_subreaper() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        nix::sys::prctl::set_child_subreaper(true).expect("prctl(PR_SET_CHILD_SUBREAPER)");
    });
}
