//! Cgroups of the runtime against the real kernel: limits written to the cgroup files and
//! biting, pause/resume, update, events, kill --all and delete reaching sub-cgroups, and bad
//! values failing clearly without leaving a cgroup behind.
//!
//! The same suite runs on this v1/hybrid host and, through hack/vm-cgroup2, in a guest booted
//! with cgroup v2 only; where the two differ only in file names, `read_cgroup_file` takes both.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use spec_tests::runtime::cgroups::{
    controller_dir, hierarchy_of, is_v2, move_to_sub_cgroup, own_cgroup, read_cgroup_file,
};
use spec_tests::runtime::{cgroup_dirs, cgroup_procs, is_berth, ProcessId, RunOpts, Runtime};

const T: Duration = Duration::from_secs(20);

/// Polls `f` until it returns true or `timeout` passes.
fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

#[test]
fn memory_cpu_and_pids_limits_are_written_to_the_cgroup_files() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.sh("sleep 100");
    b.config["linux"]["resources"]["memory"] =
        json!({"limit": 64 << 20, "reservation": 32 << 20, "swap": 128 << 20});
    b.config["linux"]["resources"]["cpu"] =
        json!({"shares": 512, "quota": 150000, "period": 100000, "cpus": "0-1", "mems": "0"});
    b.config["linux"]["resources"]["pids"] = json!({"limit": 42});
    let c = rt.create(&b).unwrap();
    let id = &c.id;
    let read = |ctl: &str, v1: &str, v2: &str| read_cgroup_file(id, ctl, v1, v2).unwrap();
    assert_eq!(
        read("memory", "memory.limit_in_bytes", "memory.max"),
        "67108864"
    );
    assert_eq!(
        read("memory", "memory.soft_limit_in_bytes", "memory.low"),
        "33554432"
    );
    // OCI swap is memory+swap; v2's memory.swap.max counts the swap alone.
    let swap = read("memory", "memory.memsw.limit_in_bytes", "memory.swap.max");
    assert_eq!(swap, if is_v2() { "67108864" } else { "134217728" });
    if is_v2() {
        // shares 512 on the 1..=10000 weight scale.
        assert_eq!(read("cpu", "", "cpu.weight"), "20");
        assert_eq!(read("cpu", "", "cpu.max"), "150000 100000");
    } else {
        assert_eq!(read("cpu", "cpu.shares", ""), "512");
        assert_eq!(read("cpu", "cpu.cfs_quota_us", ""), "150000");
        assert_eq!(read("cpu", "cpu.cfs_period_us", ""), "100000");
    }
    assert_eq!(read("cpuset", "cpuset.cpus", "cpuset.cpus"), "0-1");
    assert_eq!(read("cpuset", "cpuset.mems", "cpuset.mems"), "0");
    assert_eq!(read("pids", "pids.max", "pids.max"), "42");
    c.delete_force().unwrap();
}

#[test]
fn pids_limit_stops_a_fork_bomb_at_pids_max() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    // The forking subshell dies at its first failed fork; the init then execs (no fork) so
    // the survivors stay countable.
    b.sh("(i=0; while [ $i -lt 100 ]; do sleep 100 & i=$((i+1)); done) 2>/dev/null; echo stopped; exec sleep 100");
    b.config["linux"]["resources"]["pids"] = json!({"limit": 8});
    let mut c = rt.create(&b).unwrap();
    c.start().unwrap();
    c.wait_for_stdout("stopped", T).unwrap();
    let procs = cgroup_procs(&c.id);
    c.track(&procs);
    assert!(
        procs.len() <= 8 && procs.len() >= 2,
        "pids.max 8 must cap the bomb: {} processes",
        procs.len()
    );
    let events = read_cgroup_file(&c.id, "pids", "pids.events", "pids.events").unwrap();
    let refused: u64 = events
        .strip_prefix("max ")
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    assert!(refused > 0, "the kernel must have refused forks: {events}");
    c.delete_force().unwrap();
}

#[test]
fn memory_over_the_limit_is_oom_killed_and_events_reports_oom() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    // The shell keeps the command substitution's output in its own memory: 64 MiB against
    // a 32 MiB limit without swap
    // (small, so the emulated guest of hack/vm-cgroup2 gets there quickly).
    b.sh("while [ ! -e /go ]; do sleep 0.02; done; x=$(dd if=/dev/zero bs=1048576 count=64 2>/dev/null | tr '\\0' a); echo survived");
    b.config["linux"]["resources"]["memory"] = json!({"limit": 32 << 20, "swap": 32 << 20});
    let c = rt.create(&b).unwrap();
    c.start().unwrap();
    let events = rt
        .spawn(&["events", "--interval", "1s", &c.id], RunOpts::default())
        .unwrap();
    assert!(
        eventually(T, || events.stdout_now().contains("\"type\":\"stats\"")),
        "events printed no stats: {}",
        events.stdout_now()
    );
    fs::write(b.rootfs().join("go"), "").unwrap();
    // Emulated guests (hack/vm-cgroup2) are slow to fill 32 MiB: allow a minute.
    if let Err(e) = c.wait_stopped(Duration::from_secs(60)) {
        let events_file = read_cgroup_file(&c.id, "memory", "memory.oom_control", "memory.events");
        let usage = read_cgroup_file(&c.id, "memory", "memory.usage_in_bytes", "memory.current");
        panic!(
            "{e:#}\nmemory events: {events_file:?}\nusage: {usage:?}\nprocs: {:?}",
            cgroup_procs(&c.id)
        );
    }
    let oom = format!("{{\"type\":\"oom\",\"id\":\"{}\"}}", c.id);
    assert!(
        eventually(T, || events.stdout_now().lines().any(|l| l == oom)),
        "no {oom} line: {}",
        events.stdout_now()
    );
    if is_berth() {
        // berth ends the stream when the container stops (runc 1.1 keeps polling).
        let out = events.wait(T).unwrap();
        assert!(out.success(), "{out}");
    }
    assert!(!c.stdout().contains("survived"), "{}", c.stdout());
    c.delete().unwrap();
}

#[test]
fn pause_freezes_every_process_and_resume_thaws_them() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.sh("(while true; do echo a; sleep 0.01; done) & while true; do echo b; sleep 0.01; done");
    let c = rt.create(&b).unwrap();
    c.start().unwrap();
    c.wait_for_stdout("a\n", T).unwrap();
    c.verb(&["pause"], &[]).unwrap().ok().unwrap();
    assert_eq!(c.status().unwrap(), "paused");
    let frozen = c.stdout().len();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(c.stdout().len(), frozen, "output advanced while paused");
    let again = c.verb(&["pause"], &[]).unwrap();
    assert!(
        !again.success(),
        "pausing a paused container must fail: {again}"
    );

    c.verb(&["resume"], &[]).unwrap().ok().unwrap();
    assert_eq!(c.status().unwrap(), "running");
    assert!(
        eventually(T, || c.stdout().len() > frozen + 20),
        "output did not advance after resume"
    );
    let again = c.verb(&["resume"], &[]).unwrap();
    assert!(
        !again.success(),
        "resuming a running container must fail: {again}"
    );
    c.delete_force().unwrap();
}

#[test]
fn update_changes_live_limits_from_flags_and_a_resources_file() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.sh("sleep 100");
    b.config["linux"]["resources"]["memory"] = json!({"limit": 64 << 20});
    b.config["linux"]["resources"]["pids"] = json!({"limit": 20});
    let c = rt.create(&b).unwrap();
    c.start().unwrap();
    let id = c.id.clone();
    let read = |ctl: &str, v1: &str, v2: &str| read_cgroup_file(&id, ctl, v1, v2).unwrap();

    c.verb(
        &[
            "update",
            "--memory",
            "128m",
            "--memory-swap",
            "256m",
            "--pids-limit",
            "30",
        ],
        &[],
    )
    .unwrap()
    .ok()
    .unwrap();
    c.verb(
        &["update", "--cpu-quota", "20000", "--cpu-period", "100000"],
        &[],
    )
    .unwrap()
    .ok()
    .unwrap();
    assert_eq!(
        read("memory", "memory.limit_in_bytes", "memory.max"),
        "134217728"
    );
    // memory+swap 256 MiB: v1 memsw holds it whole, v2's swap.max the 128 MiB above memory.
    let swap = read("memory", "memory.memsw.limit_in_bytes", "memory.swap.max");
    assert_eq!(swap, if is_v2() { "134217728" } else { "268435456" });
    assert_eq!(read("pids", "pids.max", "pids.max"), "30");
    if is_v2() {
        assert_eq!(read("cpu", "", "cpu.max"), "20000 100000");
    } else {
        assert_eq!(read("cpu", "cpu.cfs_quota_us", ""), "20000");
    }

    let file = rt.tmp().join(format!("{id}-resources.json"));
    fs::write(
        &file,
        r#"{"pids": {"limit": 40}, "memory": {"limit": 100663296}}"#,
    )
    .unwrap();
    c.verb(&["update", "-r", file.to_str().unwrap()], &[])
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(read("pids", "pids.max", "pids.max"), "40");
    assert_eq!(
        read("memory", "memory.limit_in_bytes", "memory.max"),
        "100663296"
    );

    if !is_berth() {
        // runc 1.1 accepts a negative quota; the rest of this test is berth's promise.
        c.delete_force().unwrap();
        return;
    }
    let bad = c
        .verb(&["update", "--cpu-quota", "-5", "--pids-limit", "50"], &[])
        .unwrap();
    assert!(!bad.success(), "a negative quota must be rejected: {bad}");
    assert!(
        bad.stderr.contains("cpu.quota"),
        "the error must name the field: {bad}"
    );
    assert_eq!(
        read("pids", "pids.max", "pids.max"),
        "40",
        "a rejected update changes nothing"
    );
    c.delete_force().unwrap();
}

#[test]
fn events_stats_prints_one_stats_event_in_runcs_shape() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.sh("i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo warm; sleep 100");
    b.config["linux"]["resources"]["pids"] = json!({"limit": 10});
    b.config["linux"]["resources"]["memory"] = json!({"limit": 64 << 20});
    let c = rt.create(&b).unwrap();
    c.start().unwrap();
    c.wait_for_stdout("warm", T).unwrap();
    let out = c.verb(&["events", "--stats"], &[]).unwrap().ok().unwrap();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert!(lines[0].starts_with("{\"type\":\"stats\",\"id\":"), "{out}");
    let ev: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(ev["id"], c.id.as_str());
    let d = &ev["data"];
    assert!(d["cpu"]["usage"]["total"].as_u64().unwrap() > 0, "{d}");
    assert_eq!(d["memory"]["usage"]["limit"], 64 << 20, "{d}");
    assert!(d["memory"]["usage"]["usage"].as_u64().unwrap() > 0, "{d}");
    assert!(d["memory"]["raw"].is_object(), "{d}");
    assert_eq!(d["pids"]["limit"], 10, "{d}");
    assert!(d["pids"]["current"].as_u64().unwrap() >= 1, "{d}");
    for key in ["blkio", "hugetlb", "intel_rdt"] {
        assert!(d[key].is_object(), "{key} missing: {d}");
    }
    c.delete_force().unwrap();
    let gone = rt.cmd(&["events", "--stats", &b.id]).unwrap();
    assert!(
        !gone.success(),
        "events of a deleted container must fail: {gone}"
    );
}

/// Starts `sleep` children, waits for them, and moves the first one into a sub-cgroup.
fn container_with_child_in_sub_cgroup<'a>(
    rt: &'a Runtime,
    b: &mut spec_tests::runtime::Bundle,
) -> (spec_tests::runtime::Container<'a>, ProcessId) {
    let mut c = rt.create(b).unwrap();
    c.start().unwrap();
    c.wait_for_stdout("ready", T).unwrap();
    let mut children = Vec::new();
    assert!(
        eventually(T, || {
            children = cgroup_procs(&c.id)
                .into_iter()
                .filter(|p| *p != c.init.pid)
                .collect();
            !children.is_empty()
        }),
        "no child processes in the cgroup"
    );
    c.track(&children);
    let child = ProcessId::of(children[0]).unwrap();
    move_to_sub_cgroup(&c.id, "sub", child.pid).unwrap();
    (c, child)
}

#[test]
fn kill_all_signals_processes_in_sub_cgroups() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    // The init of a pid namespace gets no SIGTERM without a handler, so it outlives its
    // children and reports their end.
    b.sh("sleep 100 & echo ready; wait; echo children-gone; sleep 100");
    let (c, child) = container_with_child_in_sub_cgroup(&rt, &mut b);
    c.verb(&["kill", "--all"], &["TERM"]).unwrap().ok().unwrap();
    c.wait_for_stdout("children-gone", T).unwrap();
    assert!(
        !child.is_alive(),
        "the process in the sub-cgroup survived kill --all"
    );
    assert!(
        c.init.is_alive(),
        "the init ignores SIGTERM and must still run"
    );
    c.delete_force().unwrap();
}

#[test]
fn delete_force_kills_processes_in_sub_cgroups_and_removes_every_cgroup() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    // Without a pid namespace the init's death does not end the other processes.
    b.remove_namespace("pid");
    b.sh("sleep 100 & echo ready; wait");
    let (c, child) = container_with_child_in_sub_cgroup(&rt, &mut b);
    let dirs = cgroup_dirs(&c.id);
    assert!(!dirs.is_empty());
    // delete_force checks that no cgroup directory and no tracked process is left.
    c.delete_force().unwrap();
    assert!(!child.is_alive());
    for d in dirs {
        assert!(!d.exists(), "{} left behind", d.display());
    }
}

#[test]
fn device_rules_allow_listed_devices_and_deny_the_rest() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    for set in ["bounding", "effective", "permitted"] {
        b.config["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_MKNOD"));
    }
    // The harness config starts with "deny all"; allow one more node, 10:200.
    b.config["linux"]["resources"]["devices"]
        .as_array_mut()
        .unwrap()
        .push(json!({"allow": true, "type": "c", "major": 10, "minor": 200, "access": "rwm"}));
    b.sh("mknod /dev/listed c 10 200; mknod /dev/unlisted c 10 201; \
          for d in listed unlisted null; do \
            if dd if=/dev/$d of=/dev/null count=0 2>/tmp/err; then echo \"$d open\"; \
            elif grep -q 'not permitted' /tmp/err; then echo \"$d denied\"; \
            else echo \"$d other: $(cat /tmp/err)\"; fi; done");
    let out = rt.run_to_exit(&b).unwrap();
    assert!(out.stdout.contains("unlisted denied"), "{out:?}");
    assert!(out.stdout.contains("null open"), "{out:?}");
    assert!(
        !out.stdout.lines().any(|l| l == "listed denied"),
        "the allowed node was denied: {out:?}"
    );
}

/// Creating with `config` must fail naming `needle`, and leave no cgroup behind.
fn create_fails_cleanly(edit: impl FnOnce(&mut Value), needles: &[&str]) {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    edit(&mut b.config);
    b.write_config().unwrap();
    let out = rt
        .cmd(&["create", "--bundle", b.dir.to_str().unwrap(), &b.id])
        .unwrap();
    if out.success() {
        let _ = rt.cmd(&["delete", "--force", &b.id]);
        panic!("create must fail: {out}");
    }
    // The wording is berth's promise; runc's messages differ.
    for n in needles.iter().filter(|_| is_berth()) {
        assert!(
            out.stderr.contains(n),
            "the error must mention {n:?}: {out}"
        );
    }
    rt.assert_no_leaks(&b.id, &b.dir, &[]).unwrap();
}

#[test]
fn negative_cpu_quota_is_rejected_and_leaves_no_cgroup() {
    if !is_berth() {
        eprintln!("skipped: runc 1.1 accepts any negative quota");
        return;
    }
    create_fails_cleanly(
        |c| c["linux"]["resources"]["cpu"] = json!({"quota": -5}),
        &["linux.resources.cpu.quota", "-5"],
    );
}

#[test]
fn unknown_unified_key_is_rejected_and_leaves_no_cgroup() {
    create_fails_cleanly(
        |c| c["linux"]["resources"]["unified"] = json!({"memory.bogus": "1"}),
        &["linux.resources.unified", "memory.bogus"],
    );
}

#[test]
fn a_value_the_kernel_refuses_fails_naming_the_file_and_leaves_no_cgroup() {
    create_fails_cleanly(
        |c| c["linux"]["resources"]["cpu"] = json!({"cpus": "999"}),
        &["linux.resources.cpu.cpus", "cpuset.cpus"],
    );
}

#[test]
fn cgroups_path_escaping_with_dotdot_is_rejected() {
    if !is_berth() {
        eprintln!("skipped: runc 1.1 cleans '..' within the hierarchy root instead");
        return;
    }
    let escape = format!("berth-escape-{}", std::process::id());
    let path = format!("/berth-test/../../{escape}");
    create_fails_cleanly(|c| c["linux"]["cgroupsPath"] = json!(path), &[".."]);
    for h in ["pids", "memory"] {
        if let Some(root) = hierarchy_of(h) {
            assert!(!root.join(&escape).exists());
        }
    }
}

#[test]
fn unified_keys_are_written_on_v2_and_refused_on_v1() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.sh("sleep 100");
    b.config["linux"]["resources"]["unified"] = json!({"memory.high": "50331648"});
    if is_v2() {
        let c = rt.create(&b).unwrap();
        let high = read_cgroup_file(&c.id, "memory", "", "memory.high").unwrap();
        assert_eq!(high, "50331648");
        c.delete_force().unwrap();
    } else {
        drop(rt);
        create_fails_cleanly(
            |c| c["linux"]["resources"]["unified"] = json!({"memory.high": "50331648"}),
            &[
                "invalid configuration",
                "linux.resources.unified",
                "memory.high",
                "cgroup v2",
            ],
        );
    }
}

#[test]
fn default_cgroups_path_is_the_id_below_the_callers_cgroup() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.sh("sleep 100");
    b.config["linux"]
        .as_object_mut()
        .unwrap()
        .remove("cgroupsPath");
    let own = own_cgroup("pids").unwrap();
    let dir = hierarchy_of("pids")
        .unwrap()
        .join(own.strip_prefix("/").unwrap_or(&own))
        .join(&b.id);
    let c = rt.create(&b).unwrap();
    assert!(dir.is_dir(), "{} missing", dir.display());
    let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap();
    assert!(
        procs.lines().any(|l| l.trim() == c.init.pid.to_string()),
        "{procs}"
    );
    c.delete_force().unwrap();
    assert!(!dir.exists(), "delete must remove {}", dir.display());
}

#[test]
fn systemd_cgroup_driver_fails_clearly_without_systemd() {
    if Path::new("/run/systemd/system").exists() {
        eprintln!("skipped: systemd is running here");
        return;
    }
    let rt = Runtime::new().unwrap();
    for (path, needle) in [
        ("system.slice:berth:x", "systemd is not running"),
        ("/not/systemd/form", "slice:prefix:name"),
    ] {
        let mut b = rt.bundle().unwrap();
        b.config["linux"]["cgroupsPath"] = json!(path);
        b.write_config().unwrap();
        let out = rt
            .cmd(&[
                "--systemd-cgroup",
                "create",
                "--bundle",
                b.dir.to_str().unwrap(),
                &b.id,
            ])
            .unwrap();
        assert!(!out.success(), "{out}");
        assert!(!is_berth() || out.stderr.contains(needle), "{out}");
        rt.assert_no_leaks(&b.id, &b.dir, &[]).unwrap();
    }
}

/// A block device (major:minor) under /sys/block: a disk if there is one, else a loop
/// device (hack/vm-cgroup2 sets one up, its guest having no disk).
fn block_device() -> Option<String> {
    let mut found: Vec<(bool, String)> = fs::read_dir("/sys/block")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let is_loop = e.file_name().to_string_lossy().starts_with("loop");
            let dev = fs::read_to_string(e.path().join("dev")).ok()?;
            Some((is_loop, dev.trim().to_string()))
        })
        .collect();
    found.sort();
    found.into_iter().next().map(|(_, dev)| dev)
}

#[test]
fn block_io_throttles_are_written_for_a_block_device() {
    let Some(dev) = block_device() else {
        eprintln!("skipped: no block device on this host");
        return;
    };
    let (maj, min) = dev.split_once(':').unwrap();
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.sh("sleep 100");
    b.config["linux"]["resources"]["blockIO"] = json!({
        "throttleReadBpsDevice": [{"major": maj.parse::<i64>().unwrap(), "minor": min.parse::<i64>().unwrap(), "rate": 1048576}]
    });
    let c = rt.create(&b).unwrap();
    let v = read_cgroup_file(
        &c.id,
        if is_v2() { "io" } else { "blkio" },
        "blkio.throttle.read_bps_device",
        "io.max",
    )
    .unwrap();
    let want = if is_v2() {
        format!("{dev} rbps=1048576")
    } else {
        format!("{dev} 1048576")
    };
    assert!(
        v.lines().any(|l| l.starts_with(&want)),
        "{want:?} not in {v:?}"
    );
    c.delete_force().unwrap();
}

#[test]
fn hugepage_limits_are_written_or_refused_clearly() {
    let size = "2MB";
    // The controller must be there and the kernel must know 2 MiB pages (a v2 root cgroup has
    // no hugetlb files of its own, so look at the page sizes instead).
    let has_controller = hierarchy_of("hugetlb").is_some()
        && Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists();
    let limits = json!([{"pageSize": size, "limit": 4194304}]);
    if !has_controller {
        create_fails_cleanly(
            |c| c["linux"]["resources"]["hugepageLimits"] = limits,
            &["linux.resources.hugepageLimits", "hugetlb"],
        );
        return;
    }
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.sh("sleep 100");
    b.config["linux"]["resources"]["hugepageLimits"] = limits;
    let c = rt.create(&b).unwrap();
    let v = read_cgroup_file(
        &c.id,
        "hugetlb",
        &format!("hugetlb.{size}.limit_in_bytes"),
        &format!("hugetlb.{size}.max"),
    )
    .unwrap();
    assert_eq!(v, "4194304");
    assert!(controller_dir(&c.id, "hugetlb").unwrap().is_dir());
    c.delete_force().unwrap();
}

/// v1 limits that depend on each other, updated in the order the kernel accepts (runc's):
/// lifting the memory limit (-1) lifts the memory+swap limit with it, and a shorter cfs
/// period that the parent's quota refuses on its own is written again after the quota.
#[test]
fn update_orders_dependent_v1_limits_as_the_kernel_needs() {
    if is_v2() {
        return;
    }
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.sh("sleep 100");
    // A pod-like parent with a 50% quota: /berth-test/<id>/ctr, the parent being <id>.
    let parent_cpu = controller_dir(&b.id, "cpu").unwrap();
    fs::create_dir_all(&parent_cpu).unwrap();
    fs::write(parent_cpu.join("cpu.cfs_quota_us"), "50000").unwrap();
    b.config["linux"]["cgroupsPath"] = json!(format!("/berth-test/{}/ctr", b.id));
    let swap = controller_dir(&b.id, "memory").is_some_and(|d| {
        d.parent()
            .is_some_and(|p| p.join("memory.memsw.limit_in_bytes").exists())
    });
    b.config["linux"]["resources"]["memory"] = if swap {
        json!({"limit": 32 << 20, "swap": 64 << 20})
    } else {
        json!({"limit": 32 << 20})
    };
    let c = rt.create(&b).unwrap();
    c.start().unwrap();
    let dir = |ctl: &str| controller_dir(&b.id, ctl).unwrap().join("ctr");
    let read = |ctl: &str, f: &str| {
        fs::read_to_string(dir(ctl).join(f))
            .unwrap()
            .trim()
            .to_string()
    };

    c.verb(&["update", "--memory", "-1"], &[])
        .unwrap()
        .ok()
        .unwrap();
    let unlimited: u64 = read("memory", "memory.limit_in_bytes").parse().unwrap();
    assert!(unlimited > 1 << 50, "{unlimited}");
    if swap {
        let sw: u64 = read("memory", "memory.memsw.limit_in_bytes")
            .parse()
            .unwrap();
        assert!(sw > 1 << 50, "{sw}");
    }
    // 60% of the default period is over the parent's 50%: refused.
    let out = c.verb(&["update", "--cpu-quota", "60000"], &[]).unwrap();
    assert_eq!(out.code, Some(1), "{out}");
    c.verb(
        &["update", "--cpu-period", "10000", "--cpu-quota", "3000"],
        &[],
    )
    .unwrap()
    .ok()
    .unwrap();
    assert_eq!(read("cpu", "cpu.cfs_period_us"), "10000");
    assert_eq!(read("cpu", "cpu.cfs_quota_us"), "3000");
    // The parent is ours to remove, after the runtime removed the container's cgroup.
    rt.cmd(&["delete", "--force", &b.id]).unwrap().ok().unwrap();
    drop(c);
    for d in cgroup_dirs(&b.id) {
        let _ = fs::remove_dir(d);
    }
    rt.assert_no_leaks(&b.id, &b.dir, &[]).unwrap();
}

/// Rootless in a delegated cgroup v2 subtree (the v2 guest runs this binary).
#[path = "runtime_cgroups/rootless.rs"]
mod rootless;
