//! The OCI runtime, driven only through its command line (`berth-runtime`, runc or crun),
//! as podman and containerd drive runc. Every call gets `--root` (berth's own state directory
//! for that runtime) and `--log` with JSON format, so the runtime's error message can be
//! shown to the user instead of mixing into the container's output.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use super::ContainerError;

type Result<T, E = ContainerError> = std::result::Result<T, E>;

/// One OCI runtime binary and the state root berth gives it.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub path: PathBuf,
    pub root: PathBuf,
    /// `--log` file, one per container directory.
    pub log: Option<PathBuf>,
}

/// Finds the runtime binary for `--runtime NAME`: a path, a name on $PATH, or for the
/// default `berth-runtime` also the directory of the running `berth` binary.
pub fn resolve_runtime(name: &str) -> Result<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(ContainerError::RuntimeNotFound {
                name: name.to_string(),
            })
        };
    }
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        if let Some(d) = exe.parent() {
            dirs.push(d.to_path_buf());
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.extend(["/usr/local/bin", "/usr/bin", "/usr/sbin", "/sbin"].map(PathBuf::from));
    dirs.into_iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| ContainerError::RuntimeNotFound {
            name: name.to_string(),
        })
}

impl Runtime {
    pub fn new(path: PathBuf, root: PathBuf) -> Self {
        Self {
            path,
            root,
            log: None,
        }
    }

    pub fn with_log(mut self, log: PathBuf) -> Self {
        self.log = Some(log);
        self
    }

    /// A command for `verb` with the global flags set; stdio is the caller's to choose.
    pub fn command(&self, verb: &str) -> Command {
        let mut cmd = Command::new(&self.path);
        cmd.arg("--root").arg(&self.root);
        if let Some(log) = &self.log {
            cmd.arg("--log").arg(log).arg("--log-format").arg("json");
        }
        cmd.arg(verb);
        cmd
    }

    /// Runs a prepared command to completion and turns a failure into an error carrying the
    /// runtime's own message.
    pub fn check(&self, verb: &str, mut cmd: Command) -> Result<Output> {
        cmd.stdin(Stdio::null());
        let out = cmd
            .output()
            .map_err(|source| ContainerError::RuntimeSpawn {
                path: self.path.clone(),
                source,
            })?;
        if out.status.success() {
            return Ok(out);
        }
        Err(ContainerError::Runtime {
            verb: verb.to_string(),
            message: self.failure_message(&out.stderr),
            code: out.status.code().unwrap_or(-1),
        })
    }

    /// The most useful line about a failure: the runtime's stderr, else the last error in
    /// its JSON log.
    pub fn failure_message(&self, stderr: &[u8]) -> String {
        let text = String::from_utf8_lossy(stderr).trim().to_string();
        if !text.is_empty() {
            return text;
        }
        self.log
            .as_deref()
            .and_then(last_logged_error)
            .unwrap_or_else(|| "the runtime failed without a message".to_string())
    }

    pub fn start(&self, id: &str) -> Result<()> {
        let mut cmd = self.command("start");
        cmd.arg(id);
        self.check("start", cmd).map(drop)
    }

    pub fn kill(&self, id: &str, signal: &str, all: bool) -> Result<()> {
        let mut cmd = self.command("kill");
        if all {
            cmd.arg("--all");
        }
        cmd.arg(id).arg(signal);
        match self.check("kill", cmd) {
            // runc cannot signal "all" of a container without a cgroup (rootless): its init
            // then, whose end takes its pid namespace along.
            Err(_) if all && crate::rootless::is_rootless() => self.kill(id, signal, false),
            r => r.map(drop),
        }
    }

    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        let mut cmd = self.command("delete");
        if force {
            cmd.arg("--force");
        }
        cmd.arg(id);
        self.check("delete", cmd).map(drop)
    }

    pub fn pause(&self, id: &str) -> Result<()> {
        let mut cmd = self.command("pause");
        cmd.arg(id);
        self.check("pause", cmd).map(drop)
    }

    pub fn resume(&self, id: &str) -> Result<()> {
        let mut cmd = self.command("resume");
        cmd.arg(id);
        self.check("resume", cmd).map(drop)
    }

    /// `state ID` parsed; `None` when the runtime does not know the container.
    pub fn state(&self, id: &str) -> Result<Option<serde_json::Value>> {
        let mut cmd = self.command("state");
        cmd.arg(id);
        match self.check("state", cmd) {
            Ok(out) => serde_json::from_slice(&out.stdout)
                .map(Some)
                .map_err(|source| ContainerError::RuntimeOutput {
                    verb: "state".into(),
                    source,
                }),
            Err(ContainerError::Runtime { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `ps --format json ID`: host pids of the container's processes.
    pub fn pids(&self, id: &str) -> Result<Vec<i32>> {
        let mut cmd = self.command("ps");
        cmd.args(["--format", "json", id]);
        let out = self.check("ps", cmd)?;
        serde_json::from_slice(&out.stdout).map_err(|source| ContainerError::RuntimeOutput {
            verb: "ps".into(),
            source,
        })
    }

    /// `exec` with a process.json: stdio and tty handling are the caller's.
    pub fn exec_command(&self, id: &str, process_json: &Path, detach: bool) -> Command {
        let mut cmd = self.command("exec");
        cmd.arg("--process").arg(process_json);
        if detach {
            cmd.arg("--detach");
        }
        cmd.arg(id);
        cmd
    }
}

/// The message of the last `"level":"error"` line of a runtime's JSON log (runc's format:
/// `{"level":"error","msg":"...","time":"..."}`).
pub fn last_logged_error(log: &Path) -> Option<String> {
    let text = fs::read_to_string(log).ok()?;
    text.lines().rev().find_map(|line| {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        (v.get("level")?.as_str()? == "error")
            .then(|| v.get("msg")?.as_str().map(str::to_string))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_logged_error_takes_the_newest_error_line() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("log.json");
        fs::write(
            &log,
            "{\"level\":\"error\",\"msg\":\"old\"}\n{\"level\":\"info\",\"msg\":\"x\"}\nnot json\n\
             {\"level\":\"error\",\"msg\":\"exec: \\\"nope\\\": not found\"}\n{\"level\":\"debug\",\"msg\":\"y\"}\n",
        )
        .unwrap();
        assert_eq!(
            last_logged_error(&log).as_deref(),
            Some("exec: \"nope\": not found")
        );
        assert_eq!(last_logged_error(&tmp.path().join("missing")), None);
    }

    #[test]
    fn runtimes_resolve_by_path_or_name() {
        assert!(matches!(
            resolve_runtime("/nonexistent/runtime"),
            Err(ContainerError::RuntimeNotFound { .. })
        ));
        assert!(matches!(
            resolve_runtime("no-such-runtime-xyz"),
            Err(ContainerError::RuntimeNotFound { .. })
        ));
        assert_eq!(
            resolve_runtime("/bin/sh").unwrap(),
            PathBuf::from("/bin/sh")
        );
    }
}
