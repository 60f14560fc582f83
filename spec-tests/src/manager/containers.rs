//! A berth root with the busybox test image for the container tests, which force-removes its
//! containers on drop (even after a failed assertion) and can prove that nothing of them is
//! left: records, mounts under the root, monitors of the root, cgroups of their ids.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::Value;

use super::berth::Berth;
use super::network::{berth_with_busybox, mounts_under};

/// A berth root with the busybox image; on drop every container is force-removed.
pub struct Env {
    pub berth: Berth,
}

impl Env {
    pub fn new() -> Result<Self> {
        Ok(Self {
            berth: berth_with_busybox()?,
        })
    }

    /// `berth ARGS` → (exit code, stdout, stderr).
    pub fn run(&self, args: &[&str]) -> Result<(i32, String, String)> {
        let out = self.berth.run(args)?;
        Ok((
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }

    pub fn ok(&self, args: &[&str]) -> Result<String> {
        self.berth.ok(args)
    }

    pub fn inspect(&self, name: &str) -> Result<Value> {
        let v: Value = serde_json::from_str(&self.ok(&["inspect", name])?)?;
        Ok(v[0].clone())
    }

    pub fn status(&self, name: &str) -> Result<String> {
        Ok(self.inspect(name)?["State"]["Status"]
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    /// Waits until `f` holds (polling), failing with `what` after `limit`.
    pub fn until(
        &self,
        limit: Duration,
        what: &str,
        mut f: impl FnMut() -> Result<bool>,
    ) -> Result<()> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if f()? {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("timed out waiting for {what}")
    }

    /// Container directories (records) left in the store.
    pub fn records(&self) -> Vec<String> {
        std::fs::read_dir(self.berth.root().join("containers"))
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.path().is_dir())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// What a removed container could leave behind: records, mounts under the root,
    /// monitors of this root, cgroups of its ids.
    pub fn leftovers(&self, ids: &[String]) -> Vec<String> {
        let mut out: Vec<String> = self
            .records()
            .into_iter()
            .map(|r| format!("record {r}"))
            .collect();
        out.extend(
            mounts_under(&self.berth.root())
                .into_iter()
                .map(|m| format!("mount {m}")),
        );
        out.extend(
            monitors_of(&self.berth.root())
                .into_iter()
                .map(|p| format!("monitor pid {p}")),
        );
        for id in ids {
            for c in ["memory", "pids", "cpu", "freezer"] {
                let p = Path::new("/sys/fs/cgroup").join(c).join("berth").join(id);
                if p.exists() {
                    out.push(format!("cgroup {}", p.display()));
                }
            }
        }
        out
    }

    pub fn assert_clean(&self, ids: &[String]) {
        let left = self.leftovers(ids);
        assert!(left.is_empty(), "left behind: {left:?}");
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Ok(out) = self.berth.run(&["ps", "-aq", "--no-trunc"]) {
            let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_string)
                .collect();
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f", "-v"];
                args.extend(ids.iter().map(String::as_str));
                let _ = self.berth.run(&args);
            }
        }
    }
}

/// `berth __monitor` processes whose command line names this root.
pub fn monitors_of(root: &Path) -> Vec<i32> {
    let root = root.to_string_lossy().into_owned();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains("__monitor") && cmd.contains(&root) {
            out.push(pid);
        }
    }
    out
}

/// Kills the child on drop unless it was waited for.
pub struct Guard(pub std::process::Child);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
