//! Running OCI hooks: the hook gets the container state JSON on stdin, must finish within its
//! timeout, and a non-zero exit fails the lifecycle step (except poststart/poststop, whose
//! failures are only logged, as the runtime spec says).

use std::io::{self, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::{Hook, Hooks};

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("error running hook #{index} ({kind} {path}): starting it")]
    Spawn {
        kind: &'static str,
        index: usize,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("error running hook #{index} ({kind} {path}): timed out after {secs}s")]
    Timeout {
        kind: &'static str,
        index: usize,
        path: PathBuf,
        secs: i64,
    },
    #[error("error running hook #{index} ({kind} {path}): {}{}", describe(.status), output_suffix(.output))]
    Failed {
        kind: &'static str,
        index: usize,
        path: PathBuf,
        status: std::process::ExitStatus,
        output: String,
    },
}

/// An exit status in the words runc (Go) uses: "exit status 3", "signal: bad system call".
fn describe(status: &std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => {
            // SAFETY: strsignal returns a pointer to a static (or thread-local) string, or
            // NULL; it is copied at once.
            let name = unsafe {
                let p = libc::strsignal(sig);
                if p.is_null() {
                    format!("signal {sig}")
                } else {
                    std::ffi::CStr::from_ptr(p).to_string_lossy().to_lowercase()
                }
            };
            format!("signal: {name}")
        }
        _ => status.to_string(),
    }
}

fn output_suffix(output: &str) -> String {
    if output.trim().is_empty() {
        String::new()
    } else {
        format!(": {}", output.trim())
    }
}

/// The hook lists in spec order, with their names (for validation and messages).
pub fn all(hooks: &Hooks) -> [(&'static str, &[Hook]); 6] {
    #[allow(deprecated)] // prestart is deprecated in the spec but still used by docker
    let prestart = hooks.prestart().as_deref().unwrap_or_default();
    [
        ("prestart", prestart),
        (
            "createRuntime",
            hooks.create_runtime().as_deref().unwrap_or_default(),
        ),
        (
            "createContainer",
            hooks.create_container().as_deref().unwrap_or_default(),
        ),
        (
            "startContainer",
            hooks.start_container().as_deref().unwrap_or_default(),
        ),
        (
            "poststart",
            hooks.poststart().as_deref().unwrap_or_default(),
        ),
        ("poststop", hooks.poststop().as_deref().unwrap_or_default()),
    ]
}

/// Returns the list of one kind ("prestart", "createRuntime", ...).
pub fn of_kind<'a>(hooks: Option<&'a Hooks>, kind: &str) -> &'a [Hook] {
    hooks
        .map(|h| {
            all(h)
                .into_iter()
                .find(|(k, _)| *k == kind)
                .map(|(_, l)| l)
                .unwrap_or_default()
        })
        .unwrap_or_default()
}

/// The longest time `hooks` may take in all: the sum of their timeouts, or `None` (no bound)
/// if one of them has none, which the runtime-spec leaves to the hook's author. Whoever waits
/// for a process running hooks adds this to its own bound.
pub fn time_budget(hooks: &[Hook]) -> Option<Duration> {
    hooks.iter().try_fold(Duration::ZERO, |sum, h| {
        h.timeout()
            .map(|t| sum + Duration::from_secs(u64::try_from(t).unwrap_or(0)))
    })
}

/// Runs each hook in order with `state` on stdin; stops at the first failure.
pub fn run(kind: &'static str, hooks: &[Hook], state: &[u8]) -> Result<(), HookError> {
    for (index, hook) in hooks.iter().enumerate() {
        run_one(kind, index, hook, state)?;
    }
    Ok(())
}

/// Runs every hook even when some fail, returning the failures (poststart and poststop:
/// the runtime spec says a failure is a warning and the remaining hooks still run).
pub fn run_all(kind: &'static str, hooks: &[Hook], state: &[u8]) -> Vec<HookError> {
    hooks
        .iter()
        .enumerate()
        .filter_map(|(index, hook)| run_one(kind, index, hook, state).err())
        .collect()
}

fn run_one(kind: &'static str, index: usize, hook: &Hook, state: &[u8]) -> Result<(), HookError> {
    let path = hook.path().clone();
    let mut cmd = Command::new(&path);
    if let Some(args) = hook.args() {
        if let Some(arg0) = args.first() {
            cmd.arg0(arg0);
        }
        cmd.args(args.iter().skip(1));
    }
    cmd.env_clear();
    for kv in hook.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Its own process group, so a timeout kills whatever the hook started too.
    cmd.process_group(0);
    let mut child = cmd.spawn().map_err(|source| HookError::Spawn {
        kind,
        index,
        path: path.clone(),
        source,
    })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine: ignore EPIPE.
        let _ = stdin.write_all(state);
    }
    // Drain output in threads so a chatty hook cannot block on a full pipe.
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut r) = r {
                let _ = r.read_to_string(&mut s);
            }
            s
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let deadline = hook
        .timeout()
        .map(|t| (t, Instant::now() + Duration::from_secs(t as u64)));
    let mut delay = Duration::from_micros(200);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(source) => {
                return Err(HookError::Spawn {
                    kind,
                    index,
                    path,
                    source,
                })
            }
        }
        if let Some((secs, when)) = deadline {
            if Instant::now() >= when {
                // SAFETY: kill(2) on the hook's process group; touches no memory.
                unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
                let _ = child.wait();
                let _ = (out.join(), err.join());
                return Err(HookError::Timeout {
                    kind,
                    index,
                    path,
                    secs,
                });
            }
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(20));
    };
    // Always join: the init calls hooks too and must be single-threaded again afterwards.
    let output = format!(
        "{}{}",
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default()
    );
    if status.success() {
        return Ok(());
    }
    Err(HookError::Failed {
        kind,
        index,
        path,
        status,
        output,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(json: &str) -> Hook {
        serde_json::from_str(json).expect("hook parses")
    }

    #[test]
    fn a_hook_reads_the_state_on_stdin() {
        let dir = std::env::temp_dir().join(format!("berth-hook-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp");
        let out = dir.join("out");
        let h = hook(&format!(
            r#"{{"path":"/bin/sh","args":["sh","-c","cat > {}"]}}"#,
            out.display()
        ));
        run("prestart", &[h], br#"{"id":"x"}"#).expect("hook runs");
        assert_eq!(
            std::fs::read_to_string(&out).expect("written"),
            r#"{"id":"x"}"#
        );
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn a_failing_hook_reports_its_output() {
        let h = hook(r#"{"path":"/bin/sh","args":["sh","-c","echo boom >&2; exit 3"]}"#);
        let err = run("createRuntime", &[h], b"{}").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("error running hook #0 (createRuntime /bin/sh)")
                && msg.contains("exit status 3")
                && msg.contains("boom"),
            "{msg}"
        );
    }

    #[test]
    fn a_hook_killed_by_a_signal_says_which() {
        let h = hook(r#"{"path":"/bin/sh","args":["sh","-c","kill -SYS $$"]}"#);
        let msg = run("startContainer", &[h], b"{}").unwrap_err().to_string();
        assert!(msg.contains("signal: bad system call"), "{msg}");
    }

    #[test]
    fn a_slow_hook_times_out() {
        let h = hook(r#"{"path":"/bin/sh","args":["sh","-c","sleep 5"],"timeout":1}"#);
        let start = Instant::now();
        let err = run("poststart", &[h], b"{}").unwrap_err();
        assert!(matches!(err, HookError::Timeout { secs: 1, .. }), "{err}");
        assert!(start.elapsed() < Duration::from_secs(4));
    }
}
