//! Health checks (`--health-cmd` or the image's HEALTHCHECK), run by the monitor through the
//! runtime's `exec`, with docker's rules: a probe every interval; a probe longer than the
//! timeout fails; `retries` consecutive failures make the container unhealthy; failures during
//! the start period do not count; one success makes it healthy again. The last five results
//! are kept in `State.Health.Log`.

use std::io::Read;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::record::{now_rfc3339, Health, HealthConfig, HealthLog};
use super::runtime::Runtime;
use super::store::ContainerStore;

/// Results kept, as docker.
const KEEP: usize = 5;
/// Output kept per result, as docker (4 KiB).
const MAX_OUTPUT: usize = 4096;

/// The command a probe runs: `CMD args...` as is, `CMD-SHELL script` through /bin/sh -c.
pub fn probe_args(test: &[String]) -> Option<Vec<String>> {
    match test.split_first()?.0.as_str() {
        "CMD" => Some(test[1..].to_vec()).filter(|a| !a.is_empty()),
        "CMD-SHELL" => {
            let script = test[1..].join(" ");
            Some(vec!["/bin/sh".into(), "-c".into(), script])
        }
        _ => None,
    }
}

/// Folds one probe result into the health state.
pub fn record_result(health: &mut Health, result: HealthLog, retries: u32, in_start_period: bool) {
    if result.exit_code == 0 {
        health.status = "healthy".into();
        health.failing_streak = 0;
    } else if !in_start_period {
        health.failing_streak += 1;
        if health.failing_streak >= retries.max(1) {
            health.status = "unhealthy".into();
        }
    }
    health.log.push(result);
    if health.log.len() > KEEP {
        let extra = health.log.len() - KEEP;
        health.log.drain(..extra);
    }
}

/// Sleeps up to `d`, returning early (true) when `stop` is set.
fn sleep_unless(stop: &AtomicBool, d: Duration) -> bool {
    let deadline = Instant::now() + d;
    while Instant::now() < deadline {
        if stop.load(Ordering::SeqCst) {
            return true;
        }
        thread::sleep(Duration::from_millis(20).min(deadline - Instant::now()));
    }
    stop.load(Ordering::SeqCst)
}

/// One probe: `runtime exec` with a deadline.
fn probe(runtime: &Runtime, id: &str, args: &[String], timeout: Duration) -> HealthLog {
    let start = now_rfc3339();
    let mut cmd = runtime.command("exec");
    cmd.arg(id)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return HealthLog {
                start,
                end: now_rfc3339(),
                exit_code: -1,
                output: format!("starting the probe: {e}"),
            }
        }
    };
    // Drain output in threads so a chatty probe cannot block on a full pipe.
    let readers: Vec<_> = [
        child
            .stdout
            .take()
            .map(|o| Box::new(o) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|e| Box::new(e) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|mut r| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    })
    .collect();
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => thread::sleep(Duration::from_millis(10)),
            Err(_) => break None,
        }
    };
    let mut output = Vec::new();
    for r in readers {
        if let Ok(b) = r.join() {
            output.extend(b);
        }
    }
    output.truncate(MAX_OUTPUT);
    let (exit_code, output) = match status {
        Some(s) => (
            s.code().unwrap_or(-1),
            String::from_utf8_lossy(&output).into_owned(),
        ),
        None => (
            -1,
            format!("Health check exceeded timeout ({}s)", timeout.as_secs_f64()),
        ),
    };
    HealthLog {
        start,
        end: now_rfc3339(),
        exit_code,
        output,
    }
}

/// Probes until `stop` is set (the container exited), recording each result.
pub fn run(
    store: &ContainerStore,
    id: &str,
    runtime: &Runtime,
    check: &HealthConfig,
    stop: &AtomicBool,
) {
    let Some(args) = probe_args(&check.test) else {
        return;
    };
    let started = Instant::now();
    let _ = store.update(id, |r| {
        r.state.health = Some(Health {
            status: "starting".into(),
            failing_streak: 0,
            log: Vec::new(),
        })
    });
    let interval = Duration::from_millis(check.interval_ms.max(1));
    let timeout = Duration::from_millis(check.timeout_ms.max(1));
    let start_period = Duration::from_millis(check.start_period_ms);
    while !sleep_unless(stop, interval) {
        let result = probe(runtime, id, &args, timeout);
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let in_start_period = started.elapsed() < start_period;
        let mut before = String::new();
        let updated = store.update(id, |r| {
            let health = r.state.health.get_or_insert_with(Health::default);
            before = health.status.clone();
            record_result(health, result, check.retries, in_start_period);
        });
        // docker's event for every change of the health status.
        if let Ok(r) = updated {
            let now = r.state.health.as_ref().map_or("", |h| h.status.as_str());
            if now != before {
                let action = format!("health_status: {now}");
                crate::events::container(store.root(), &r, &action, &[]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(code: i32) -> HealthLog {
        HealthLog {
            start: String::new(),
            end: String::new(),
            exit_code: code,
            output: String::new(),
        }
    }

    #[test]
    fn probes_run_cmd_as_is_and_cmd_shell_through_sh() {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(probe_args(&v(&["CMD", "true"])), Some(v(&["true"])));
        assert_eq!(
            probe_args(&v(&["CMD-SHELL", "test -f /x"])),
            Some(v(&["/bin/sh", "-c", "test -f /x"]))
        );
        assert_eq!(probe_args(&v(&["NONE"])), None);
        assert_eq!(probe_args(&v(&["CMD"])), None);
        assert_eq!(probe_args(&[]), None);
    }

    #[test]
    fn retries_failures_make_it_unhealthy_and_one_success_heals() {
        let mut h = Health {
            status: "starting".into(),
            ..Health::default()
        };
        record_result(&mut h, log(1), 2, false);
        assert_eq!(h.status, "starting");
        record_result(&mut h, log(1), 2, false);
        assert_eq!(h.status, "unhealthy");
        assert_eq!(h.failing_streak, 2);
        record_result(&mut h, log(0), 2, false);
        assert_eq!(h.status, "healthy");
        assert_eq!(h.failing_streak, 0);
    }

    #[test]
    fn failures_in_the_start_period_do_not_count_and_the_log_keeps_five() {
        let mut h = Health::default();
        for _ in 0..7 {
            record_result(&mut h, log(1), 1, true);
        }
        assert_eq!(h.failing_streak, 0);
        assert_eq!(h.log.len(), 5);
    }
}
