//! A private containerd (Debian's 1.6) with its root, state, sockets and config in a temp
//! dir; `ctr run --runc-binary <runtime under test>` runs containers from a busybox rootfs
//! (`--rootfs`, no image store needed) under a cgroup parent of its own.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::{cleanup, run_cmd, wait_for, PtyClient, CLIENT_TIMEOUT};
use crate::runtime::{runtime_binary, Outcome};

/// The containerd namespace the tests use.
pub const NAMESPACE: &str = "berth-test";

static LIVE: Mutex<usize> = Mutex::new(0);

/// A running containerd; dropping it stops it and removes everything it made.
pub struct Containerd {
    child: Option<Child>,
    tmp: Option<tempfile::TempDir>,
    dir: PathBuf,
    address: PathBuf,
    runtime: PathBuf,
    pub cgroup_parent: String,
}

impl Containerd {
    pub fn start() -> Result<Self> {
        super::become_subreaper();
        static N: AtomicUsize = AtomicUsize::new(0);
        let tmp = tempfile::Builder::new().prefix("bc-").tempdir_in("/tmp")?;
        let dir = tmp.path().to_path_buf();
        let address = dir.join("c.sock");
        let cgroup_parent = format!(
            "berth-engine-ctr-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        // Only what `ctr run` needs: no CRI, no snapshotters that probe the host, no tracing.
        let config = format!(
            r#"version = 2
root = "{root}"
state = "{state}"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "{address}"
[ttrpc]
  address = "{address}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
"#,
            root = dir.join("root").display(),
            state = dir.join("state").display(),
            address = address.display(),
        );
        fs::write(dir.join("config.toml"), config)?;
        fs::create_dir_all(dir.join("fifo"))?;
        super::make_busybox_rootfs(&dir.join("rootfs"))?;
        let runtime = fs::canonicalize(runtime_binary()).context("the runtime under test")?;
        let log = File::create(dir.join("containerd.log"))?;
        let child = Command::new("containerd")
            .arg("--config")
            .arg(dir.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("spawning containerd")?;
        *LIVE.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        let mut c = Containerd {
            child: Some(child),
            tmp: Some(tmp),
            dir,
            address,
            runtime,
            cgroup_parent,
        };
        c.wait_ready()?;
        Ok(c)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let mut exited = None;
        let ready = wait_for(Duration::from_secs(30), "containerd to answer", || {
            if let Some(Ok(Some(s))) = self.child.as_mut().map(|c| c.try_wait()) {
                exited = Some(s);
                return Some(false);
            }
            self.address.exists().then_some(())?;
            self.ctr(&["version"]).ok()?.success().then_some(true)
        });
        match ready {
            Ok(true) => Ok(()),
            Ok(false) => bail!("containerd exited ({exited:?}): {}", self.log()),
            Err(e) => bail!("{e}: {}", self.log()),
        }
    }

    /// `ctr --address <ours> --namespace berth-test`.
    pub fn client(&self) -> Command {
        let mut c = Command::new("ctr");
        c.arg("--address")
            .arg(&self.address)
            .arg("--namespace")
            .arg(NAMESPACE);
        c
    }

    pub fn ctr(&self, args: &[&str]) -> Result<Outcome> {
        let mut c = self.client();
        c.args(args);
        run_cmd(c, CLIENT_TIMEOUT)
    }

    /// The `ctr run` arguments up to the container id: our runtime, its root, our fifo dir,
    /// a cgroup below our parent, the busybox rootfs; `flags` come first.
    pub fn run_args(&self, flags: &[&str], id: &str) -> Vec<String> {
        let mut a: Vec<String> = vec!["run".into()];
        a.extend(flags.iter().map(|s| s.to_string()));
        a.extend([
            "--rootfs".into(),
            "--env".into(),
            "PATH=/bin".into(),
            "--runc-binary".into(),
            self.runtime.display().to_string(),
            "--runc-root".into(),
            self.dir.join("runtime-root").display().to_string(),
            "--fifo-dir".into(),
            self.dir.join("fifo").display().to_string(),
            "--cgroup".into(),
            format!("/{}/{id}", self.cgroup_parent),
            self.dir.join("rootfs").display().to_string(),
            id.into(),
        ]);
        a
    }

    /// `ctr run [flags] --rootfs ... ID cmd...` to completion.
    pub fn run(&self, flags: &[&str], id: &str, cmd: &[&str]) -> Result<Outcome> {
        let mut args = self.run_args(flags, id);
        args.extend(cmd.iter().map(|s| s.to_string()));
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        self.ctr(&argv)
    }

    /// `ctr` with `args` on a pty.
    pub fn on_pty(&self, args: &[&str]) -> Result<PtyClient> {
        let mut c = self.client();
        c.args(args);
        PtyClient::spawn(c)
    }

    /// The fifo dir to pass to `ctr task exec --fifo-dir`.
    pub fn fifo_dir(&self) -> String {
        self.dir.join("fifo").display().to_string()
    }

    /// The task's status (`RUNNING`, `PAUSED`, `STOPPED`) from `ctr task ls`.
    pub fn task_status(&self, id: &str) -> Result<String> {
        let out = self.ctr(&["task", "ls"])?.ok()?;
        Ok(out
            .stdout
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.first() == Some(&id)).then(|| f.get(2).unwrap_or(&"").to_string())
            })
            .next()
            .unwrap_or_default())
    }

    pub fn wait_task_status(&self, id: &str, want: &str) -> Result<()> {
        let mut last = String::new();
        wait_for(
            Duration::from_secs(30),
            &format!("task {id} {want}"),
            || {
                last = self.task_status(id).unwrap_or_default();
                (last == want).then_some(())
            },
        )
        .with_context(|| format!("task {id} is {last:?}"))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default()
    }

    /// Stops containerd and cleans up; fails listing whatever had to be removed by force.
    pub fn shutdown(mut self) -> Result<()> {
        let leaks = self.stop();
        if leaks.is_empty() {
            Ok(())
        } else {
            bail!("containerd left behind: {}", leaks.join("; "))
        }
    }

    fn stop(&mut self) -> Vec<String> {
        let Some(mut child) = self.child.take() else {
            return Vec::new();
        };
        let mut leaks = Vec::new();
        let ids: Vec<String> = self
            .ctr(&["containers", "ls", "-q"])
            .map(|o| o.stdout.lines().map(str::to_string).collect())
            .unwrap_or_default();
        for id in &ids {
            leaks.push(format!("container {id}"));
            let _ = self.ctr(&["task", "delete", "--force", id]);
            let _ = self.ctr(&["containers", "delete", id]);
        }
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        if !cleanup::wait_child(child.id() as i32, Duration::from_secs(10)) {
            leaks.push("containerd did not stop on SIGTERM within 10 s".into());
            let _ = child.kill();
        }
        let _ = child.wait();
        let dir = self.dir.display().to_string();
        let stray: Vec<i32> = cleanup::pids_mentioning(&dir)
            .into_iter()
            .chain(cleanup::cgroup_pids(&self.cgroup_parent))
            .collect();
        if !stray.is_empty() {
            leaks.push(format!("processes {stray:?}"));
            cleanup::thaw(&self.cgroup_parent);
            cleanup::kill_and_reap(&stray);
        }
        let mounts = cleanup::mounts_under(&self.dir);
        if !mounts.is_empty() {
            leaks.push(format!("mounts {mounts:?}"));
            cleanup::unmount_under(&self.dir);
        }
        for id in &ids {
            let s = cleanup::shim_socket(&self.address, NAMESPACE, id);
            if s.exists() {
                leaks.push(format!("shim socket {}", s.display()));
                let _ = fs::remove_file(&s);
            }
        }
        let tree = cleanup::cgroup_tree(&self.cgroup_parent);
        let children: Vec<_> = tree
            .iter()
            .filter(|p| p.file_name().and_then(|n| n.to_str()) != Some(&self.cgroup_parent))
            .cloned()
            .collect();
        if !children.is_empty() {
            leaks.push(format!("cgroups {children:?}"));
        }
        let left = cleanup::remove_cgroup_tree(&self.cgroup_parent);
        if !left.is_empty() {
            leaks.push(format!("cgroups that cannot be removed {left:?}"));
        }
        if let Some(tmp) = self.tmp.take() {
            if let Err(e) = tmp.close() {
                leaks.push(format!("removing {dir}: {e}"));
            }
        }
        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        *live -= 1;
        if *live == 0 {
            cleanup::remove_empty_dirs(&["/run/containerd/s", "/run/containerd"]);
        }
        leaks
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let leaks = self.stop();
        if !leaks.is_empty() && !std::thread::panicking() {
            eprintln!("containerd cleanup: {}", leaks.join("; "));
        }
    }
}
