//! The error texts and exit codes that runc's consumers match on, which makes them part of
//! runc's interface: containerd's runc shim (pkg/process `checkKillError`, `Init.delete`),
//! dockerd (libcontainerd `wrapError`) and podman (`UpdateContainerStatus`). A runtime that
//! words them differently leaves those engines retrying forever or reporting the wrong error
//! class. Run against runc with `BERTH_TEST_RUNTIME=runc`: both must pass.

use std::time::Duration;

use serde_json::{json, Value};
use spec_tests::runtime::Runtime;

const T: Duration = Duration::from_secs(10);

/// containerd's shim takes a failed kill whose error contains "container not running" as
/// "the process already finished"; any other text and it records no exit and retries, so a
/// pod's stop and remove hang until their deadline.
#[test]
fn kill_of_an_exited_container_says_container_not_running() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.sh("exit 0");
    let c = rt.create(&b).unwrap();
    c.start().unwrap();
    c.wait_stopped(T).unwrap();
    let out = c.kill(&["KILL"]).unwrap().failed().unwrap();
    assert!(out.stderr.contains("container not running"), "{out}");
    let out = c.kill(&[]).unwrap().failed().unwrap();
    assert!(out.stderr.contains("container not running"), "{out}");
    c.delete().unwrap();
}

/// containerd's shim sends `kill --all` to every container it deletes, stopped ones
/// included: runc succeeds when nothing is left to signal.
#[test]
fn kill_all_of_a_stopped_container_succeeds() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.sh("exit 3");
    let c = rt.create(&b).unwrap();
    c.start().unwrap();
    c.wait_stopped(T).unwrap();
    c.verb(&["kill", "--all"], &["KILL"]).unwrap().ok().unwrap();
    c.verb(&["kill", "-a"], &["TERM"]).unwrap().ok().unwrap();
    assert_eq!(c.status().unwrap(), "stopped");
    c.delete().unwrap();
}

/// containerd's shim and podman match "does not exist", dockerd "container does not
/// exist", to tell "no such container" from a failure.
#[test]
fn verbs_on_a_missing_container_say_container_does_not_exist() {
    let rt = Runtime::new().unwrap();
    for verb in [
        &["state", "no-such-ctr"][..],
        &["kill", "no-such-ctr", "KILL"],
        &["kill", "--all", "no-such-ctr", "KILL"],
        &["delete", "no-such-ctr"],
        &["start", "no-such-ctr"],
        &["pause", "no-such-ctr"],
        &["ps", "no-such-ctr"],
        &["exec", "no-such-ctr", "true"],
    ] {
        let out = rt.cmd(verb).unwrap().failed().unwrap();
        assert!(
            out.stderr.contains("container does not exist"),
            "{verb:?}: {out}"
        );
    }
}

/// dockerd turns a failed create into an exit status by what the error says, lower-cased
/// (daemon/errors.go `translateContainerdStartErr`): "executable file not found" and "no such
/// file or directory" are 127, "permission denied" (or, since Go 1.20, "is a directory") 126,
/// "not a directory" (a file mounted onto a directory) 127.
#[test]
fn create_failures_name_the_errno_dockerd_maps_to_an_exit_status() {
    let rt = Runtime::new().unwrap();
    let cases: [(&str, Value, &[&str]); 5] = [
        (
            "args",
            json!(["no-such-command"]),
            &["executable file not found"],
        ),
        (
            "args",
            json!(["/no/such/file"]),
            &["no such file or directory"],
        ),
        ("args", json!(["/etc/passwd"]), &["permission denied"]),
        (
            "args",
            json!(["/etc"]),
            &["permission denied", "is a directory"],
        ),
        (
            "mount",
            json!({"destination": "/etc", "type": "bind", "source": "/etc/hostname",
                   "options": ["bind"]}),
            &["not a directory"],
        ),
    ];
    for (what, value, want) in cases {
        let mut b = rt.bundle().unwrap();
        if what == "mount" {
            b.sh("true").add_mount(value.clone());
        } else {
            b.config["process"]["args"] = value.clone();
        }
        let err = match rt.create(&b) {
            Ok(c) => {
                // runc reports a missing executable at create; so must we.
                let _ = c.delete_force();
                panic!("create with {what} {value} succeeded");
            }
            Err(e) => format!("{e:#}").to_lowercase(),
        };
        assert!(
            want.iter().any(|w| err.contains(w)),
            "{what} {value}: want one of {want:?} in {err}"
        );
    }
}
