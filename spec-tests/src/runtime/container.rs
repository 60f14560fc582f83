//! A container guard: create/start/state/kill/delete helpers, and on drop a forced delete,
//! reaping of the adopted processes and removal of nothing else (the Runtime's temp dir goes
//! with the Runtime).

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use super::leaks::{self, ProcessId};
use super::runner::{read_lossy, Outcome, RunOpts, Runtime};

const REAP_TIMEOUT: Duration = Duration::from_secs(5);

/// Extra `create` flags.
#[derive(Default)]
pub struct CreateOpts {
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// `--preserve-fds N` (the fds themselves go in `extra_fds`).
    pub preserve_fds: Option<u32>,
    pub extra_fds: Vec<(i32, OwnedFd)>,
}

/// What a container that ran to completion wrote.
#[derive(Debug)]
pub struct Finished {
    pub stdout: String,
    pub stderr: String,
}

/// A created container. Dropping it force-deletes it and reaps its processes.
pub struct Container<'a> {
    rt: &'a Runtime,
    pub id: String,
    pub bundle: PathBuf,
    /// The init process (host pid) as reported by `state` after create.
    pub init: ProcessId,
    /// Where the container's stdout and stderr go (shared with the `create` command's).
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
    /// Other processes to reap and check (e.g. background processes seen in the cgroup).
    tracked: Vec<ProcessId>,
    deleted: bool,
}

impl Runtime {
    /// Writes the bundle's config and runs `create --bundle <dir> <id>`; fails with the
    /// runtime's output if create fails (after forcing a delete so nothing is left running).
    pub fn create(&self, bundle: &super::Bundle) -> Result<Container<'_>> {
        self.create_with(bundle, CreateOpts::default())
    }

    pub fn create_with(&self, bundle: &super::Bundle, opts: CreateOpts) -> Result<Container<'_>> {
        bundle.write_config()?;
        let id = bundle.id.as_str();
        let dir = bundle.dir.display().to_string();
        let mut args: Vec<String> = vec!["create".into(), "--bundle".into(), dir];
        if let Some(p) = &opts.console_socket {
            args.extend(["--console-socket".into(), p.display().to_string()]);
        }
        if let Some(p) = &opts.pid_file {
            args.extend(["--pid-file".into(), p.display().to_string()]);
        }
        if opts.no_pivot {
            args.push("--no-pivot".into());
        }
        if opts.no_new_keyring {
            args.push("--no-new-keyring".into());
        }
        if let Some(n) = opts.preserve_fds {
            args.extend(["--preserve-fds".into(), n.to_string()]);
        }
        args.push(id.into());
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let spawned = self.spawn(
            &argv,
            RunOpts {
                extra_fds: opts.extra_fds,
                ..RunOpts::default()
            },
        )?;
        let stdout_path = spawned.stdout_path.clone();
        let stderr_path = spawned.stderr_path.clone();
        let out = spawned.wait(super::COMMAND_TIMEOUT)?;
        if !out.success() {
            let _ = self.cmd(&["delete", "--force", id]);
            bail!("create failed: {out}");
        }
        self.adopt(bundle, stdout_path, stderr_path)
    }

    /// Takes charge of a container this test made some other way (e.g. `run --detach`), whose
    /// stdio went to `stdout_path`/`stderr_path`.
    pub fn adopt(
        &self,
        bundle: &super::Bundle,
        stdout_path: PathBuf,
        stderr_path: PathBuf,
    ) -> Result<Container<'_>> {
        let mut c = Container {
            rt: self,
            id: bundle.id.clone(),
            bundle: bundle.dir.clone(),
            init: ProcessId {
                pid: 0,
                start_time: 0,
            },
            stdout_path,
            stderr_path,
            tracked: Vec::new(),
            deleted: false,
        };
        let state = c.state()?;
        let pid = state["pid"].as_i64().context("state has no pid")? as i32;
        if pid == 0 && state["status"] == "stopped" {
            // Already exited (possible after `run --detach`): nothing left to track.
            return Ok(c);
        }
        c.init = ProcessId::of(pid).with_context(|| format!("init pid {pid} does not exist"))?;
        Ok(c)
    }

    /// Creates, starts and waits for the container to stop, then deletes it (checking for
    /// leaks) and returns what it wrote.
    pub fn run_to_exit(&self, bundle: &super::Bundle) -> Result<Finished> {
        let c = self.create(bundle)?;
        c.start()?;
        c.wait_stopped(Duration::from_secs(20))?;
        let finished = Finished {
            stdout: c.stdout(),
            stderr: c.stderr(),
        };
        c.delete()?;
        Ok(finished)
    }
}

impl Container<'_> {
    pub fn runtime(&self) -> &Runtime {
        self.rt
    }

    /// `<runtime> <verb> [args] <id>`, e.g. `c.verb(&["kill", "--all"], &["KILL"])`.
    pub fn verb(&self, before_id: &[&str], after_id: &[&str]) -> Result<Outcome> {
        let mut args: Vec<&str> = before_id.to_vec();
        args.push(&self.id);
        args.extend_from_slice(after_id);
        self.rt.cmd(&args)
    }

    pub fn start(&self) -> Result<()> {
        self.verb(&["start"], &[])?.ok()?;
        Ok(())
    }

    /// The parsed `state` JSON.
    pub fn state(&self) -> Result<Value> {
        let out = self.verb(&["state"], &[])?.ok()?;
        serde_json::from_str(&out.stdout)
            .with_context(|| format!("state output is not JSON: {}", out.stdout))
    }

    pub fn status(&self) -> Result<String> {
        Ok(self.state()?["status"]
            .as_str()
            .context("state has no status")?
            .to_string())
    }

    /// `kill <id> [signal...]`.
    pub fn kill(&self, signal: &[&str]) -> Result<Outcome> {
        self.verb(&["kill"], signal)
    }

    /// Polls `state` until the status is `stopped`.
    pub fn wait_stopped(&self, timeout: Duration) -> Result<()> {
        self.wait_status("stopped", timeout)
    }

    pub fn wait_status(&self, want: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self.status()?;
            if status == want {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "container {} still {status} after {timeout:?}, wanted {want}; stdout: {} stderr: {}",
                    self.id,
                    self.stdout(),
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// What the container has written to stdout so far.
    pub fn stdout(&self) -> String {
        read_lossy(&self.stdout_path)
    }

    pub fn stderr(&self) -> String {
        read_lossy(&self.stderr_path)
    }

    /// Waits until the container's stdout contains `needle`; returns the whole stdout.
    pub fn wait_for_stdout(&self, needle: &str, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let out = self.stdout();
            if out.contains(needle) {
                return Ok(out);
            }
            if Instant::now() > deadline {
                bail!(
                    "container {} did not print {needle:?} within {timeout:?}; stdout: {out} stderr: {}",
                    self.id,
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Adds processes to reap and leak-check at delete (e.g. every pid now in the cgroup).
    pub fn track(&mut self, pids: &[i32]) {
        for &pid in pids {
            if let Some(p) = ProcessId::of(pid) {
                if !self.tracked.contains(&p) {
                    self.tracked.push(p);
                }
            }
        }
    }

    fn track_cgroup(&mut self) {
        let pids = leaks::cgroup_procs(&self.id);
        self.track(&pids);
    }

    fn all_processes(&self) -> Vec<ProcessId> {
        let mut all = vec![self.init];
        all.extend(self.tracked.iter().copied());
        all
    }

    fn reap_all(&self) {
        for p in self.all_processes() {
            leaks::reap(p, REAP_TIMEOUT);
        }
    }

    /// `delete` (without --force) must succeed; then reaps and checks that nothing leaked.
    pub fn delete(mut self) -> Result<()> {
        self.track_cgroup();
        let out = self.verb(&["delete"], &[])?;
        self.finish(out)
    }

    /// `delete --force`; then reaps and checks that nothing leaked.
    pub fn delete_force(mut self) -> Result<()> {
        self.track_cgroup();
        let out = self.verb(&["delete", "--force"], &[])?;
        self.finish(out)
    }

    fn finish(&mut self, out: Outcome) -> Result<()> {
        out.ok()?;
        self.deleted = true;
        self.reap_all();
        self.rt
            .assert_no_leaks(&self.id, &self.bundle, &self.all_processes())
    }

    pub fn bundle_dir(&self) -> &Path {
        &self.bundle
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        if self.deleted {
            return;
        }
        self.track_cgroup();
        let _ = self.verb(&["delete", "--force"], &[]);
        // If the runtime under test could not clean up, do it by hand so later tests run on a
        // clean machine (the failure itself is reported by the test).
        for p in self.all_processes() {
            if p.is_alive() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(p.pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        self.reap_all();
        for dir in leaks::cgroup_dirs(&self.id) {
            let _ = std::fs::remove_dir(dir);
        }
    }
}
