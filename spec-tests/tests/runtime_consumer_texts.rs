//! The error texts and exit codes that runc's consumers match on, which makes them part of
//! runc's interface: containerd's runc shim (pkg/process `checkKillError`, `Init.delete`),
//! dockerd (libcontainerd `wrapError`) and podman (`UpdateContainerStatus`). A runtime that
//! words them differently leaves those engines retrying forever or reporting the wrong error
//! class. Run against runc with `BERTH_TEST_RUNTIME=runc`: both must pass.

use std::time::Duration;

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
