//! Bad input: each must fail with a non-zero exit and an error naming the problem, and leave no
//! state dir, mount, cgroup or process behind.

use std::fs;
use std::time::Duration;

use serde_json::json;
use spec_tests::runtime::{is_berth, Bundle, Outcome, Runtime};

/// Runs `create` for the bundle as it is on disk and expects it to fail without leaks.
fn create_fails(rt: &Runtime, b: &Bundle) -> Outcome {
    let out = rt
        .cmd(&["create", "--bundle", b.dir.to_str().unwrap(), &b.id])
        .unwrap()
        .failed()
        .unwrap();
    assert!(
        !out.stderr.trim().is_empty(),
        "an error message is expected: {out}"
    );
    rt.assert_no_leaks(&b.id, &b.dir, &[]).unwrap();
    let state = rt.cmd(&["state", &b.id]).unwrap();
    assert!(
        !state.success(),
        "a failed create must leave no container: {state}"
    );
    out
}

#[test]
fn missing_config_json_is_reported_by_name() {
    let rt = Runtime::new().unwrap();
    let b = rt.bundle().unwrap(); // config.json is never written
    let out = create_fails(&rt, &b);
    assert!(out.stderr.contains("config.json"), "{out}");
}

#[test]
fn malformed_config_json_is_reported_by_name() {
    let rt = Runtime::new().unwrap();
    let b = rt.bundle().unwrap();
    fs::write(b.config_path(), "{\"ociVersion\": ").unwrap();
    let out = create_fails(&rt, &b);
    // runc 1.1 says only "unexpected EOF"; berth must name the file.
    if is_berth() {
        assert!(out.stderr.contains("config.json"), "{out}");
    }
}

#[test]
fn config_json_of_the_wrong_shape_is_rejected() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.config["process"]["args"] = json!("not-a-list");
    b.write_config().unwrap();
    let out = create_fails(&rt, &b);
    if is_berth() {
        assert!(
            out.stderr.contains("args"),
            "the error names the field: {out}"
        );
    }
}

#[test]
fn unknown_namespace_type_is_reported_by_name() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.add_namespace(json!({ "type": "bogusns" }));
    b.write_config().unwrap();
    let out = create_fails(&rt, &b);
    assert!(out.stderr.contains("bogusns"), "{out}");
}

#[test]
fn missing_rootfs_is_reported_by_name() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.config["root"]["path"] = json!("no-such-rootfs");
    b.write_config().unwrap();
    let out = create_fails(&rt, &b);
    assert!(out.stderr.contains("no-such-rootfs"), "{out}");
    assert!(out.stderr.contains("rootfs"), "{out}");
}

#[test]
fn missing_executable_fails_create_without_leaks() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.config["process"]["args"] = json!(["/no/such/program"]);
    b.write_config().unwrap();
    let out = create_fails(&rt, &b);
    assert!(out.stderr.contains("/no/such/program"), "{out}");
}

#[test]
fn duplicate_id_fails_and_leaves_the_first_container_intact() {
    let rt = Runtime::new().unwrap();
    let mut first = rt.bundle().unwrap();
    first.sh("echo first");
    let c = rt.create(&first).unwrap();

    // A second bundle for the same id.
    let mut second = rt.bundle().unwrap();
    second.id = c.id.clone();
    second.config["linux"]["cgroupsPath"] = first.config["linux"]["cgroupsPath"].clone();
    second.sh("echo second");
    second.write_config().unwrap();
    let out = rt
        .cmd(&["create", "--bundle", second.dir.to_str().unwrap(), &c.id])
        .unwrap()
        .failed()
        .unwrap();
    assert!(out.stderr.contains("exists"), "{out}");
    if is_berth() {
        assert!(out.stderr.contains(&c.id), "the error names the id: {out}");
    }

    let s = c.state().unwrap();
    assert_eq!(s["status"], "created");
    assert_eq!(s["bundle"], first.dir.to_str().unwrap());
    assert!(c.init.is_alive());
    c.start().unwrap();
    c.wait_stopped(Duration::from_secs(10)).unwrap();
    assert_eq!(c.stdout(), "first\n");
    c.delete().unwrap();
    rt.assert_no_leaks(&second.id, &second.dir, &[]).unwrap();
}

#[test]
fn invalid_container_id_is_rejected() {
    let rt = Runtime::new().unwrap();
    let b = rt.bundle().unwrap();
    b.write_config().unwrap();
    let out = rt
        .cmd(&["create", "--bundle", b.dir.to_str().unwrap(), "../escape"])
        .unwrap()
        .failed()
        .unwrap();
    assert!(out.stderr.to_lowercase().contains("id"), "{out}");
    assert!(!rt.tmp().join("escape").exists());
    rt.assert_no_leaks(&b.id, &b.dir, &[]).unwrap();
}

#[test]
fn bad_signal_is_reported_by_name_and_the_container_survives() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.sh("sleep 100");
    let c = rt.create(&b).unwrap();
    c.start().unwrap();
    let out = c.kill(&["NOPE"]).unwrap().failed().unwrap();
    assert!(out.stderr.contains("NOPE"), "{out}");
    assert!(out.stderr.contains("signal"), "{out}");
    let out = c.kill(&["SIGNOPE"]).unwrap().failed().unwrap();
    assert!(out.stderr.contains("NOPE"), "{out}");
    assert!(c.init.is_alive());
    assert_eq!(c.status().unwrap(), "running");
    c.delete_force().unwrap();
}

#[test]
fn commands_on_a_missing_container_fail() {
    let rt = Runtime::new().unwrap();
    for verb in [
        &["state", "nosuch"][..],
        &["start", "nosuch"],
        &["kill", "nosuch", "KILL"],
        &["delete", "nosuch"],
    ] {
        let out = rt.cmd(verb).unwrap().failed().unwrap();
        assert!(out.stderr.contains("not exist"), "{out}");
    }
}

#[test]
fn kill_of_a_stopped_container_fails() {
    let rt = Runtime::new().unwrap();
    let b = rt.bundle().unwrap();
    let c = rt.create(&b).unwrap();
    c.start().unwrap();
    c.wait_stopped(Duration::from_secs(10)).unwrap();
    let out = c.kill(&["KILL"]).unwrap();
    assert!(!out.success(), "{out}");
    c.delete().unwrap();
}
