//! Namespaces: pid, uts, network, ipc, mount, user (with mappings), cgroup, time, and joining an
//! existing namespace by path.

use std::fs;
use std::path::Path;
use std::time::Duration;

use serde_json::json;
use spec_tests::runtime::{is_berth, Runtime};

const T: Duration = Duration::from_secs(10);

/// The namespace link of this (host) process, e.g. `net:[4026531833]`.
fn host_ns(kind: &str) -> String {
    fs::read_link(format!("/proc/self/ns/{kind}"))
        .unwrap()
        .display()
        .to_string()
}

#[test]
fn pid_namespace_makes_the_process_pid_1() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.sh("echo $$; cat /proc/self/stat | cut -d' ' -f4");
    let fin = rt.run_to_exit(&b).unwrap();
    // The shell is pid 1 and the parent of `cat` is the shell.
    assert_eq!(fin.stdout, "1\n1\n", "{fin:?}");
}

#[test]
fn hostname_and_domainname_are_set_in_a_new_uts_namespace() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.config["hostname"] = json!("berth-box");
    b.config["domainname"] = json!("berth.example");
    b.sh("hostname; cat /proc/sys/kernel/domainname");
    let host_before = nix::unistd::gethostname().unwrap();
    let fin = rt.run_to_exit(&b).unwrap();
    let lines: Vec<&str> = fin.stdout.lines().collect();
    assert_eq!(lines.first(), Some(&"berth-box"), "{fin:?}");
    // runc 1.1 ignores `domainname` (it came in runc 1.2); berth must set it.
    if is_berth() {
        assert_eq!(lines.get(1), Some(&"berth.example"), "{fin:?}");
    }
    assert_eq!(nix::unistd::gethostname().unwrap(), host_before);
}

#[test]
fn network_namespace_has_only_loopback() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.sh("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '");
    let fin = rt.run_to_exit(&b).unwrap();
    assert_eq!(fin.stdout, "lo\n", "{fin:?}");
}

#[test]
fn configured_namespaces_differ_from_the_host_and_others_are_shared() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.sh("for n in pid net ipc uts mnt user cgroup; do readlink /proc/self/ns/$n; done");
    let fin = rt.run_to_exit(&b).unwrap();
    let lines: Vec<&str> = fin.stdout.lines().collect();
    assert_eq!(lines.len(), 7, "{fin:?}");
    for (i, kind) in ["pid", "net", "ipc", "uts", "mnt"].iter().enumerate() {
        assert_ne!(lines[i], host_ns(kind), "{kind} namespace must be new");
    }
    assert_eq!(
        lines[5],
        host_ns("user"),
        "no user namespace was configured"
    );
    assert_eq!(
        lines[6],
        host_ns("cgroup"),
        "no cgroup namespace was configured"
    );
}

#[test]
fn a_namespace_left_out_of_the_config_is_the_hosts() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.remove_namespace("network");
    b.remove_namespace("ipc");
    b.sh("readlink /proc/self/ns/net; readlink /proc/self/ns/ipc");
    let fin = rt.run_to_exit(&b).unwrap();
    assert_eq!(
        fin.stdout,
        format!("{}\n{}\n", host_ns("net"), host_ns("ipc")),
        "{fin:?}"
    );
}

#[test]
fn joining_namespaces_by_path_shares_them_with_another_container() {
    let rt = Runtime::new().unwrap();
    let mut a = rt.bundle().unwrap();
    a.config["hostname"] = json!("alpha");
    a.sh("sleep 100");
    let ca = rt.create(&a).unwrap();
    ca.start().unwrap();
    let a_pid = ca.init.pid;
    let a_ns = |kind: &str| {
        fs::read_link(format!("/proc/{a_pid}/ns/{kind}"))
            .unwrap()
            .display()
            .to_string()
    };

    let mut b = rt.bundle().unwrap();
    // No hostname: it would be set in the joined UTS namespace, i.e. renaming container A.
    b.config.as_object_mut().unwrap().remove("hostname");
    b.config["linux"]["namespaces"] = json!([
        { "type": "pid" },
        { "type": "network", "path": format!("/proc/{a_pid}/ns/net") },
        { "type": "ipc", "path": format!("/proc/{a_pid}/ns/ipc") },
        { "type": "uts", "path": format!("/proc/{a_pid}/ns/uts") },
        { "type": "mount" }
    ]);
    b.sh("readlink /proc/self/ns/net; readlink /proc/self/ns/ipc; readlink /proc/self/ns/uts; hostname");
    let fin = rt.run_to_exit(&b).unwrap();
    assert_eq!(
        fin.stdout,
        format!("{}\n{}\n{}\nalpha\n", a_ns("net"), a_ns("ipc"), a_ns("uts")),
        "{fin:?}"
    );
    ca.delete_force().unwrap();
}

#[test]
fn user_namespace_applies_uid_and_gid_mappings() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.add_namespace(json!({ "type": "user" }));
    b.config["linux"]["uidMappings"] =
        json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
    b.config["linux"]["gidMappings"] =
        json!([{ "containerID": 0, "hostID": 200000, "size": 65536 }]);
    b.sh("cat /proc/self/uid_map /proc/self/gid_map | tr -s ' '; id -u; id -g; echo ready; sleep 100");
    let c = rt.create(&b).unwrap();
    c.start().unwrap();
    let out = c.wait_for_stdout("ready", T).unwrap();
    let lines: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        lines,
        ["0 100000 65536", "0 200000 65536", "0", "0", "ready"],
        "{out}"
    );
    // Seen from the host, the container's root is the mapped uid and gid.
    let status = fs::read_to_string(format!("/proc/{}/status", c.init.pid)).unwrap();
    let uid = spec_tests::runtime::status_field(&status, "Uid").unwrap();
    let gid = spec_tests::runtime::status_field(&status, "Gid").unwrap();
    assert!(uid.starts_with("100000"), "{uid}");
    assert!(gid.starts_with("200000"), "{gid}");
    assert_ne!(
        fs::read_link(format!("/proc/{}/ns/user", c.init.pid))
            .unwrap()
            .display()
            .to_string(),
        host_ns("user")
    );
    c.delete_force().unwrap();
}

#[test]
fn cgroup_namespace_makes_the_container_cgroup_the_root() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.add_namespace(json!({ "type": "cgroup" }));
    b.sh("cat /proc/self/cgroup; readlink /proc/self/ns/cgroup");
    let fin = rt.run_to_exit(&b).unwrap();
    let lines: Vec<&str> = fin.stdout.lines().collect();
    let (ns, cgroups) = lines.split_last().unwrap();
    assert_ne!(*ns, host_ns("cgroup"));
    assert!(!cgroups.is_empty(), "{fin:?}");
    for l in cgroups {
        assert!(
            l.ends_with(":/"),
            "cgroup line {l:?} must show the namespace root"
        );
    }
}

#[test]
fn cgroup_of_the_container_is_the_configured_path() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.sh("grep pids /proc/self/cgroup || grep '^0::' /proc/self/cgroup");
    let id = b.id.clone();
    let fin = rt.run_to_exit(&b).unwrap();
    assert!(
        fin.stdout.trim().ends_with(&format!("/berth-test/{id}")),
        "{fin:?}"
    );
}

/// Time namespaces came with Linux 5.6; runc 1.1 does not know them, so this runs for berth
/// only (the spec-correct behaviour: the offsets apply to the container's clocks).
#[test]
fn time_namespace_offsets_the_boottime_clock() {
    if !Path::new("/proc/self/ns/time").exists() {
        eprintln!("the kernel has no time namespaces");
        return;
    }
    if !is_berth() {
        eprintln!("runc 1.1 does not support time namespaces: checked for berth-runtime only");
        return;
    }
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.add_namespace(json!({ "type": "time" }));
    b.config["linux"]["timeOffsets"] = json!({
        "boottime": { "secs": 10_000_000, "nanosecs": 0 },
        "monotonic": { "secs": 20_000_000, "nanosecs": 0 }
    });
    b.sh("readlink /proc/self/ns/time; cut -d. -f1 /proc/uptime");
    let fin = rt.run_to_exit(&b).unwrap();
    let lines: Vec<&str> = fin.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{fin:?}");
    assert_ne!(lines[0], host_ns("time"));
    let uptime: u64 = lines[1].parse().unwrap();
    assert!(
        uptime >= 10_000_000,
        "uptime {uptime} lacks the boottime offset"
    );
}

/// A container in a user namespace of its own (root mapped to 100000, groups to 200000),
/// sleeping.
fn userns_target(rt: &Runtime) -> spec_tests::runtime::Container<'_> {
    let mut a = rt.bundle().unwrap();
    a.add_namespace(json!({ "type": "user" }));
    a.config["linux"]["uidMappings"] =
        json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
    a.config["linux"]["gidMappings"] =
        json!([{ "containerID": 0, "hostID": 200000, "size": 65536 }]);
    a.config["process"]["args"] = json!(["sleep", "100"]);
    let c = rt.create(&a).unwrap();
    c.start().unwrap();
    c
}

/// Joining another container's user namespace while getting a new pid namespace: the pid
/// namespace must belong to the joined user namespace, or the fresh /proc cannot be mounted
/// (runc's `userns join other container userns`). runc 1.1.5 refuses the configuration
/// ("no uid mappings found"); checked for berth-runtime only.
#[test]
fn joining_a_user_namespace_with_a_new_pid_namespace() {
    if !is_berth() {
        eprintln!("runc 1.1.5 cannot join a user namespace without mappings: berth only");
        return;
    }
    let rt = Runtime::new().unwrap();
    let target = userns_target(&rt);
    let a_pid = target.init.pid;
    let mut b = rt.bundle().unwrap();
    b.add_namespace(json!({ "type": "user", "path": format!("/proc/{a_pid}/ns/user") }));
    b.sh("tr -s ' ' < /proc/self/uid_map; tr -s ' ' < /proc/self/gid_map; id -u; echo $$; readlink /proc/self/ns/user");
    let fin = rt.run_to_exit(&b).unwrap();
    let lines: Vec<String> = fin
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let a_user = fs::read_link(format!("/proc/{a_pid}/ns/user"))
        .unwrap()
        .display()
        .to_string();
    assert_eq!(
        lines,
        [
            "0 100000 65536",
            "0 200000 65536",
            "0",
            "1",
            a_user.as_str()
        ],
        "{fin:?}"
    );
    target.delete_force().unwrap();
}

/// Joining every namespace of a user-namespaced container but the mount one (runc's `runc
/// run [joining existing container namespaces]`): the init becomes root of the joined user
/// namespace before it builds its root filesystem (host root is unmapped there, and what
/// it would create on the new /dev would be refused with EOVERFLOW), and sees the other
/// container's processes. Checked for berth-runtime only, as above.
#[test]
fn joining_all_namespaces_of_a_user_namespaced_container_but_mount() {
    if !is_berth() {
        eprintln!("runc 1.1.5 cannot join a user namespace without mappings: berth only");
        return;
    }
    let rt = Runtime::new().unwrap();
    let target = userns_target(&rt);
    let a_pid = target.init.pid;
    let mut b = rt.bundle().unwrap();
    // No hostname: it would be set in the joined UTS namespace, i.e. renaming the target.
    b.config.as_object_mut().unwrap().remove("hostname");
    let path = |kind: &str| format!("/proc/{a_pid}/ns/{kind}");
    b.config["linux"]["namespaces"] = json!([
        { "type": "pid", "path": path("pid") },
        { "type": "network", "path": path("net") },
        { "type": "ipc", "path": path("ipc") },
        { "type": "uts", "path": path("uts") },
        { "type": "user", "path": path("user") },
        { "type": "mount" }
    ]);
    b.sh("tr -s ' ' < /proc/self/uid_map; id -u; cat /proc/1/cmdline | tr '\\0' ' '");
    let fin = rt.run_to_exit(&b).unwrap();
    let lines: Vec<String> = fin
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(lines, ["0 100000 65536", "0", "sleep 100"], "{fin:?}");
    target.delete_force().unwrap();
}
