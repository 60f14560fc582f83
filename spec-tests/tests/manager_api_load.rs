//! Load: 50 concurrent clients create, start, inspect and remove containers through the
//! service for a bounded time (`BERTH_API_LOAD_SECS`, default 20). Nothing is lost: every
//! container created is removed, no record, mount, monitor or cgroup is left, and the
//! service's memory after the run is not above what it was after the warm-up by more than
//! a bound. The figures are printed (run with `--nocapture` to see them).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use spec_tests::manager::api::{http, rss_kib, Service};

const CLIENTS: usize = 50;

#[test]
fn fifty_clients_create_start_inspect_remove_without_leaks_or_growth() -> Result<()> {
    let secs: u64 = std::env::var("BERTH_API_LOAD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let s = Service::start()?;
    let pid = s.pid().unwrap_or(0);
    let socket = s.socket.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let created: Arc<Mutex<Vec<String>>> = Arc::default();
    let started = Instant::now();
    let threads: Vec<_> = (0..CLIENTS)
        .map(|n| {
            let (socket, stop, done, errors, created) = (
                socket.clone(),
                stop.clone(),
                done.clone(),
                errors.clone(),
                created.clone(),
            );
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    i += 1;
                    let name = format!("load-{n}-{i}");
                    let step = || -> Result<()> {
                        let (code, body) = http(
                            &socket,
                            "POST",
                            &format!("/v1.41/containers/create?name={name}"),
                            Some(
                                r#"{"Image":"busybox","Cmd":["sleep","30"],"Labels":{"load":"1"}}"#,
                            ),
                        )?;
                        if code != 201 {
                            bail!("create {name}: {code} {body}");
                        }
                        let id = serde_json::from_str::<serde_json::Value>(&body)?["Id"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string();
                        created.lock().unwrap().push(id.clone());
                        let (code, body) = http(
                            &socket,
                            "POST",
                            &format!("/v1.41/containers/{id}/start"),
                            None,
                        )?;
                        if code != 204 {
                            bail!("start {name}: {code} {body}");
                        }
                        let (code, body) = http(
                            &socket,
                            "GET",
                            &format!("/v1.41/containers/{id}/json"),
                            None,
                        )?;
                        let v: serde_json::Value = serde_json::from_str(&body)?;
                        if code != 200 || v["State"]["Running"] != true {
                            bail!("inspect {name}: {code} {body}");
                        }
                        let (code, body) = http(
                            &socket,
                            "DELETE",
                            &format!("/v1.41/containers/{id}?force=1"),
                            None,
                        )?;
                        if code != 204 {
                            bail!("remove {name}: {code} {body}");
                        }
                        Ok(())
                    };
                    match step() {
                        Ok(()) => {
                            done.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e) => errors.lock().unwrap().push(format!("{e:#}")),
                    }
                }
            })
        })
        .collect();
    // Memory after a warm-up: every client through one cycle (buffers and thread pools
    // grown), or half the time.
    let deadline = started + Duration::from_secs(secs);
    while done.load(Ordering::SeqCst) < CLIENTS && started.elapsed() < Duration::from_secs(secs / 2)
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let rss_warm = rss_kib(pid).unwrap_or(0);
    let done_warm = done.load(Ordering::SeqCst);
    std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        let _ = t.join();
    }
    let elapsed = started.elapsed();
    // Monitors the service spawned are reaped within its one-second sweep.
    std::thread::sleep(Duration::from_secs(2));
    let rss_end = rss_kib(pid).unwrap_or(0);
    let cycles = done.load(Ordering::SeqCst);
    let errors = errors.lock().unwrap().clone();
    let ids = created.lock().unwrap().clone();
    let zombies = zombies_of(pid);
    println!(
        "load: {CLIENTS} clients, {:.1} s: {cycles} create+start+inspect+remove cycles \
         ({:.1}/s), {} errors; service RSS {rss_warm} KiB after warm-up ({done_warm} cycles), \
         {rss_end} KiB at the end; {} zombie children",
        elapsed.as_secs_f64(),
        cycles as f64 / elapsed.as_secs_f64(),
        errors.len(),
        zombies,
    );
    assert!(
        errors.is_empty(),
        "errors: {:?}",
        &errors[..errors.len().min(5)]
    );
    assert!(cycles >= CLIENTS, "too few cycles: {cycles}");
    assert_eq!(ids.len(), cycles, "every container created was removed");
    s.env.assert_clean(&ids);
    assert_eq!(zombies, 0, "monitors reaped");
    assert!(
        rss_end <= rss_warm + 16 * 1024,
        "service memory grew: {rss_warm} -> {rss_end} KiB"
    );
    Ok(())
}

fn zombies_of(pid: u32) -> usize {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return 0;
    };
    rd.flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| {
            let after = stat.rsplit_once(')').map(|(_, a)| a).unwrap_or("");
            let f: Vec<&str> = after.split_whitespace().collect();
            f.first() == Some(&"Z") && f.get(1) == Some(&pid.to_string().as_str())
        })
        .count()
}
