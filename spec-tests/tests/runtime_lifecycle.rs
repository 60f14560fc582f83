//! Lifecycle of the runtime: create/start/state/kill/delete/run/list (the rest of the command
//! line is in runtime_cli.rs). Run against runc with `BERTH_TEST_RUNTIME=runc`.

use std::fs;
use std::time::Duration;

use serde_json::{json, Value};
use spec_tests::runtime::{cgroup_procs, is_berth, ProcessId, RunOpts, Runtime, Spawned};

const T: Duration = Duration::from_secs(10);

#[test]
fn create_start_stop_delete_walks_through_the_lifecycle_states() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    // The process waits for a file the test creates, so "running" is observable.
    b.sh("echo started; while [ ! -e /go ]; do sleep 0.02; done; echo done");
    let c = rt.create(&b).unwrap();

    let state = c.state().unwrap();
    assert_eq!(state["status"], "created", "{state}");
    assert!(
        rt.root().join(&c.id).is_dir(),
        "state lives under --root/<id>/"
    );
    assert_eq!(state["pid"].as_i64().unwrap() as i32, c.init.pid);
    assert!(c.init.is_alive(), "init must exist while created");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(c.stdout(), "", "the process must wait at the start barrier");

    c.start().unwrap();
    c.wait_for_stdout("started", T).unwrap();
    assert_eq!(c.status().unwrap(), "running");

    fs::write(b.rootfs().join("go"), "").unwrap();
    c.wait_stopped(T).unwrap();
    assert_eq!(c.stdout(), "started\ndone\n");

    let id = c.id.clone();
    c.delete().unwrap();
    let gone = rt.cmd(&["state", &id]).unwrap();
    assert!(
        !gone.success(),
        "state of a deleted container must fail: {gone}"
    );
}

#[test]
fn start_of_a_running_container_fails() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.sh("sleep 100");
    let c = rt.create(&b).unwrap();
    c.start().unwrap();
    let again = c.verb(&["start"], &[]).unwrap();
    assert!(!again.success(), "second start must fail: {again}");
    c.delete_force().unwrap();
}

#[test]
fn run_propagates_the_exit_code_and_cleans_up() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.sh("echo out; echo err >&2; exit 42");
    b.write_config().unwrap();
    let out = rt
        .cmd(&["run", "--bundle", b.dir.to_str().unwrap(), &b.id])
        .unwrap();
    assert_eq!(out.code, Some(42), "{out}");
    assert_eq!(out.stdout, "out\n");
    assert!(out.stderr.contains("err"), "{out}");
    rt.assert_no_leaks(&b.id, &b.dir, &[]).unwrap();
}

#[test]
fn run_of_a_successful_process_exits_zero() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.sh("exit 0");
    b.write_config().unwrap();
    let out = rt
        .cmd(&["run", "-b", b.dir.to_str().unwrap(), &b.id])
        .unwrap();
    assert_eq!(out.code, Some(0), "{out}");
    rt.assert_no_leaks(&b.id, &b.dir, &[]).unwrap();
}

/// Starts `run` in the foreground with a process that traps `sig` and exits with `code`, sends
/// `sig` to the runtime process and checks that the container got it.
fn run_forwards(sig: nix::sys::signal::Signal, name: &str, code: i32) {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.sh(&format!(
        "trap 'echo got {name}; exit {code}' {name}; echo ready; while true; do sleep 0.02; done"
    ));
    b.write_config().unwrap();
    let run: Spawned = rt
        .spawn(
            &["run", "--bundle", b.dir.to_str().unwrap(), &b.id],
            RunOpts::default(),
        )
        .unwrap();
    let deadline = std::time::Instant::now() + T;
    while !run.stdout_now().contains("ready") {
        assert!(
            std::time::Instant::now() < deadline,
            "container never got ready"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(run.pid()), sig).unwrap();
    let out = run.wait(T).unwrap();
    assert_eq!(out.code, Some(code), "{out}");
    assert!(out.stdout.contains(&format!("got {name}")), "{out}");
    rt.assert_no_leaks(&b.id, &b.dir, &[]).unwrap();
}

#[test]
fn run_forwards_sigterm_to_the_container() {
    run_forwards(nix::sys::signal::Signal::SIGTERM, "TERM", 7);
}

#[test]
fn run_forwards_sigusr1_to_the_container() {
    run_forwards(nix::sys::signal::Signal::SIGUSR1, "USR1", 8);
}

#[test]
fn run_detach_returns_while_the_container_keeps_running() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.sh("echo detached; sleep 100");
    b.write_config().unwrap();
    let run = rt
        .spawn(
            &[
                "run",
                "--detach",
                "--bundle",
                b.dir.to_str().unwrap(),
                &b.id,
            ],
            RunOpts::default(),
        )
        .unwrap();
    let (out_path, err_path) = (run.stdout_path.clone(), run.stderr_path.clone());
    let out = run.wait(T).unwrap();
    assert_eq!(out.code, Some(0), "{out}");
    let c = rt.adopt(&b, out_path, err_path).unwrap();
    assert_eq!(c.status().unwrap(), "running");
    c.wait_for_stdout("detached", T).unwrap();
    c.kill(&["KILL"]).unwrap().ok().unwrap();
    c.wait_stopped(T).unwrap();
    c.delete().unwrap();
}

#[test]
fn kill_accepts_signal_names_with_and_without_sig_prefix_and_numbers() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.sh(
        "trap 'echo usr1' USR1; trap 'echo usr2' USR2; trap 'echo hup; exit 0' HUP; \
         echo ready; while true; do sleep 0.02; done",
    );
    let c = rt.create(&b).unwrap();
    c.start().unwrap();
    c.wait_for_stdout("ready", T).unwrap();
    c.kill(&["USR1"]).unwrap().ok().unwrap();
    c.wait_for_stdout("usr1", T).unwrap();
    c.kill(&["SIGUSR2"]).unwrap().ok().unwrap();
    c.wait_for_stdout("usr2", T).unwrap();
    c.kill(&["1"]).unwrap().ok().unwrap(); // SIGHUP
    c.wait_stopped(T).unwrap();
    assert_eq!(c.stdout(), "ready\nusr1\nusr2\nhup\n");
    c.delete().unwrap();
}

#[test]
fn kill_without_a_signal_sends_sigterm() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.sh("trap 'echo term; exit 0' TERM; echo ready; while true; do sleep 0.02; done");
    let c = rt.create(&b).unwrap();
    c.start().unwrap();
    c.wait_for_stdout("ready", T).unwrap();
    c.kill(&[]).unwrap().ok().unwrap();
    c.wait_stopped(T).unwrap();
    assert!(c.stdout().contains("term"));
    c.delete().unwrap();
}

/// Host pids of the container's processes once it reports `n` of them in its cgroup.
fn wait_for_cgroup_procs(id: &str, n: usize) -> Vec<i32> {
    let deadline = std::time::Instant::now() + T;
    loop {
        let pids = cgroup_procs(id);
        if pids.len() >= n {
            return pids;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "cgroup of {id} has {pids:?}, wanted {n} processes"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn kill_all_kills_every_process_of_the_container() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.sh("sleep 100 & sleep 100 & echo ready; wait");
    let mut c = rt.create(&b).unwrap();
    c.start().unwrap();
    c.wait_for_stdout("ready", T).unwrap();
    let pids = wait_for_cgroup_procs(&c.id, 3);
    c.track(&pids);
    let procs: Vec<ProcessId> = pids.iter().filter_map(|p| ProcessId::of(*p)).collect();
    c.verb(&["kill", "--all"], &["KILL"]).unwrap().ok().unwrap();
    c.wait_stopped(T).unwrap();
    let deadline = std::time::Instant::now() + T;
    while procs.iter().any(|p| p.is_alive()) {
        assert!(
            std::time::Instant::now() < deadline,
            "processes survived kill --all"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    c.delete().unwrap();
}

#[test]
fn kill_all_uses_the_cgroup_when_there_is_no_pid_namespace() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.remove_namespace("pid");
    b.sh("sleep 100 & sleep 100 & echo ready $$; wait");
    let mut c = rt.create(&b).unwrap();
    c.start().unwrap();
    let out = c.wait_for_stdout("ready", T).unwrap();
    assert_ne!(
        out.trim(),
        "ready 1",
        "without a pid namespace the shell is not pid 1"
    );
    let pids = wait_for_cgroup_procs(&c.id, 3);
    c.track(&pids);
    let procs: Vec<ProcessId> = pids.iter().filter_map(|p| ProcessId::of(*p)).collect();
    c.verb(&["kill", "--all"], &["SIGKILL"])
        .unwrap()
        .ok()
        .unwrap();
    c.wait_stopped(T).unwrap();
    let deadline = std::time::Instant::now() + T;
    while procs.iter().any(|p| p.is_alive()) {
        assert!(
            std::time::Instant::now() < deadline,
            "processes survived kill --all"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    c.delete().unwrap();
}

#[test]
fn delete_of_a_running_container_fails_without_force() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.sh("sleep 100");
    let c = rt.create(&b).unwrap();
    c.start().unwrap();
    let out = c.verb(&["delete"], &[]).unwrap();
    assert!(
        !out.success(),
        "delete of a running container must fail: {out}"
    );
    assert!(
        c.init.is_alive(),
        "a failed delete must not kill the container"
    );
    assert_eq!(c.status().unwrap(), "running");
    c.delete_force().unwrap();
}

#[test]
fn delete_force_removes_a_created_container() {
    let rt = Runtime::new().unwrap();
    let b = rt.bundle().unwrap();
    let c = rt.create(&b).unwrap();
    c.delete_force().unwrap();
}

#[test]
fn list_shows_containers_as_table_json_and_ids() {
    let rt = Runtime::new().unwrap();
    let mut b1 = rt.bundle().unwrap();
    b1.sh("sleep 100");
    let mut b2 = rt.bundle().unwrap();
    b2.sh("true");
    let c1 = rt.create(&b1).unwrap();
    c1.start().unwrap();
    let c2 = rt.create(&b2).unwrap();

    let table = rt.cmd(&["list"]).unwrap().ok().unwrap().stdout;
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"],
        "{table}"
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    let row = |id: &str| rows.iter().find(|r| r[0] == id).cloned().unwrap();
    assert_eq!(row(&c1.id)[1], c1.init.pid.to_string());
    assert_eq!(row(&c1.id)[2], "running");
    assert_eq!(row(&c1.id)[3], b1.dir.to_str().unwrap());
    assert_eq!(row(&c2.id)[2], "created");
    assert_eq!(row(&c2.id)[5], "root");

    let json = rt.cmd(&["list", "--format", "json"]).unwrap().ok().unwrap();
    let v: Value = serde_json::from_str(&json.stdout).unwrap();
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 2, "{v}");
    let e1 = arr.iter().find(|e| e["id"] == c1.id.as_str()).unwrap();
    assert_eq!(e1["status"], "running");
    assert_eq!(e1["pid"].as_i64().unwrap() as i32, c1.init.pid);
    assert_eq!(e1["bundle"], b1.dir.to_str().unwrap());
    for key in ["ociVersion", "rootfs", "created", "owner"] {
        assert!(e1.get(key).is_some(), "list entry lacks {key}: {e1}");
    }

    let quiet = rt.cmd(&["list", "-q"]).unwrap().ok().unwrap().stdout;
    let mut ids: Vec<&str> = quiet.lines().collect();
    ids.sort_unstable();
    let mut want = vec![c1.id.as_str(), c2.id.as_str()];
    want.sort_unstable();
    assert_eq!(ids, want);

    c1.delete_force().unwrap();
    c2.delete_force().unwrap();
}

#[test]
fn list_of_an_empty_root_prints_only_the_header() {
    let rt = Runtime::new().unwrap();
    let out = rt.cmd(&["list"]).unwrap().ok().unwrap();
    assert_eq!(out.stdout.lines().count(), 1, "{out}");
    let quiet = rt.cmd(&["list", "-q"]).unwrap().ok().unwrap();
    assert_eq!(quiet.stdout.trim(), "");
}

#[test]
fn state_reports_runc_fields() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.config["annotations"] = json!({ "org.berth.test": "yes" });
    let c = rt.create(&b).unwrap();
    let s = c.state().unwrap();
    assert_eq!(s["id"], c.id.as_str());
    assert_eq!(s["status"], "created");
    assert_eq!(s["pid"].as_i64().unwrap() as i32, c.init.pid);
    assert_eq!(s["bundle"], b.dir.to_str().unwrap());
    assert_eq!(s["rootfs"], b.rootfs().to_str().unwrap());
    assert_eq!(s["annotations"]["org.berth.test"], "yes");
    assert!(s["ociVersion"].is_string());
    assert!(s["owner"].is_string());
    let created = s["created"].as_str().unwrap();
    // RFC 3339 with nanoseconds in UTC, e.g. 2026-11-22T06:12:21.380128746Z.
    assert!(
        created.len() >= 20 && created.ends_with('Z') && &created[10..11] == "T",
        "{created}"
    );
    c.delete_force().unwrap();
}

/// `state` of `bundle` under `runtime` (created, not started), then deleted again.
fn state_with(rt: &Runtime, b: &spec_tests::runtime::Bundle) -> Value {
    let c = rt.create(b).unwrap();
    let s = c.state().unwrap();
    c.delete_force().unwrap();
    s
}

#[test]
fn state_matches_runc_for_the_same_bundle() {
    if !is_berth() {
        eprintln!("the runtime under test is not berth-runtime: nothing to compare with runc");
        return;
    }
    let rt = Runtime::new().unwrap();
    let runc = Runtime::with_binary("runc".into()).unwrap();
    let mut b = rt.bundle().unwrap();
    b.config["annotations"] = json!({ "org.berth.a": "1", "org.berth.b": "two" });
    let ours = state_with(&rt, &b);
    let theirs = state_with(&runc, &b);
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&ours), keys(&theirs), "ours {ours}\nrunc {theirs}");
    for key in ["status", "id", "bundle", "rootfs", "annotations"] {
        assert_eq!(
            ours[key], theirs[key],
            "field {key}: ours {ours}\nrunc {theirs}"
        );
    }
}
