//! berth-runtime run by an ordinary user (runc's rootless mode), with runc run by the same
//! user as the oracle. Every test creates its own unprivileged user with subordinate id
//! ranges (spec_tests::rootless::TestUser), removed afterwards even on failure.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{json, Value};
use spec_tests::rootless::{Out, RootlessBundle, TestUser, SUB_COUNT};
use spec_tests::runtime::runtime_binary;

fn berth() -> String {
    runtime_binary().to_string_lossy().into_owned()
}

/// Runs `runtime [args...]` as the user in the bundle's directory.
fn rt(u: &TestUser, runtime: &str, b: &RootlessBundle, args: &[&str]) -> Result<Out> {
    let mut all = vec![runtime];
    all.extend_from_slice(args);
    u.run(&all, Some(&b.dir))
}

/// A fresh id map of 0 → the user, 1.. → its subordinate range.
fn wide_maps(u: &TestUser, b: &mut RootlessBundle) {
    for (key, own) in [("uidMappings", u.uid), ("gidMappings", u.gid)] {
        b.config["linux"][key] = json!([
            {"containerID": 0, "hostID": own, "size": 1},
            {"containerID": 1, "hostID": u.sub_first, "size": SUB_COUNT}
        ]);
    }
}

fn wait_for(mut f: impl FnMut() -> bool, what: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        anyhow::ensure!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

#[test]
fn spec_rootless_is_runc_s() -> Result<()> {
    let u = TestUser::create()?;
    let ours = u.mkdir("ours")?;
    let theirs = u.mkdir("theirs")?;
    u.run(&[&berth(), "spec", "--rootless"], Some(&ours))?
        .ok()?;
    u.run(&["runc", "spec", "--rootless"], Some(&theirs))?
        .ok()?;
    let read = |d: &std::path::Path| -> Result<Value> {
        let mut v: Value = serde_json::from_slice(&fs::read(d.join("config.json"))?)?;
        // The two fields that name the program.
        v["hostname"] = Value::Null;
        v["ociVersion"] = Value::Null;
        Ok(v)
    };
    let (a, b) = (read(&ours)?, read(&theirs)?);
    assert_eq!(a, b, "berth:\n{a:#}\nrunc:\n{b:#}");
    assert_eq!(a["linux"]["uidMappings"][0]["hostID"], json!(u.uid));
    assert_eq!(a["linux"]["gidMappings"][0]["hostID"], json!(u.gid));
    Ok(())
}

#[test]
fn run_with_the_user_s_own_id_like_runc() -> Result<()> {
    let u = TestUser::create()?;
    let script = "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups; \
                  hostname >/dev/null; echo ok > /tmp/x && cat /tmp/x; exit 7";
    let b = u.bundle("b", &runtime_binary(), &["sh", "-c", script])?;
    let ours = rt(&u, &berth(), &b, &["run", "c1"])?;
    let theirs = rt(&u, "runc", &b, &["run", "c1"])?;
    assert_eq!(ours.code, Some(7), "{ours:?}");
    assert_eq!((ours.code, &ours.stdout), (theirs.code, &theirs.stdout));
    let want_map = format!("0 {} 1", u.uid);
    let first_map = ours.stdout.lines().nth(2).unwrap_or_default();
    assert_eq!(
        first_map.split_whitespace().collect::<Vec<_>>().join(" "),
        want_map
    );
    assert!(ours.stdout.contains("deny"), "{}", ours.stdout);
    // Both runtimes keep their state under $XDG_RUNTIME_DIR, and left nothing there.
    for name in ["berth", "runc"] {
        let d = u.runtime_dir.join(name);
        assert!(d.is_dir(), "{} missing", d.display());
        assert_eq!(fs::read_dir(&d)?.count(), 0, "{} not empty", d.display());
    }
    Ok(())
}

#[test]
fn wide_maps_go_through_newuidmap_and_exec_joins_the_user_namespace() -> Result<()> {
    let u = TestUser::create()?;
    let mut b = u.bundle("b", &runtime_binary(), &["sleep", "30"])?;
    wide_maps(&u, &mut b);
    b.write()?;
    u.run_detached(&[&berth(), "run", "-d", "c1"], Some(&b.dir))?
        .ok()?;
    let state = u.runtime_dir.join("berth/c1/state.json");
    assert!(state.is_file(), "{} missing", state.display());
    // Supplementary groups from the subordinate range (runc 1.1 refuses any when rootless).
    let groups = rt(
        &u,
        &berth(),
        &b,
        &["exec", "-g", "5", "-g", "10", "c1", "id", "-G"],
    )?;
    assert_eq!(groups.ok()?.stdout, "0 5 10\n");
    let probe = "id -G; cat /proc/self/uid_map; cat /proc/self/gid_map; echo $$; exit 3";
    let ours = rt(&u, &berth(), &b, &["exec", "c1", "sh", "-c", probe])?;
    rt(&u, &berth(), &b, &["delete", "-f", "c1"])?.ok()?;
    u.run_detached(&["runc", "run", "-d", "c1"], Some(&b.dir))?
        .ok()?;
    let theirs = rt(&u, "runc", &b, &["exec", "c1", "sh", "-c", probe])?;
    rt(&u, "runc", &b, &["delete", "-f", "c1"])?.ok()?;
    assert_eq!(ours.code, Some(3), "{ours:?}");
    // The pid in the container's pid namespace differs run to run; the rest is the same.
    let strip = |s: &str| -> Vec<String> {
        let l: Vec<String> = s
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        l[..l.len() - 1].to_vec()
    };
    assert_eq!(
        strip(&ours.stdout),
        strip(&theirs.stdout),
        "{ours:?} / {theirs:?}"
    );
    assert_eq!(strip(&ours.stdout)[0], "0");
    let want = format!("1 {} {SUB_COUNT}", u.sub_first);
    assert_eq!(strip(&ours.stdout)[2], want);
    assert!(!state.exists(), "state left behind");
    Ok(())
}

/// Each refusal names the field at fault, fails like runc, and leaves nothing behind.
#[test]
fn what_an_unprivileged_user_cannot_have_is_refused() -> Result<()> {
    let u = TestUser::create()?;
    let mut b = u.bundle("b", &runtime_binary(), &["true"])?;
    let base = b.config.clone();
    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "linux.uidMappings",
            Box::new(|c: &mut Value| {
                c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 0, "size": 1}])
            }),
        ),
        (
            "linux.gidMappings",
            Box::new(move |c: &mut Value| {
                c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 4242, "size": 10}])
            }),
        ),
        (
            "linux.namespaces",
            Box::new(|c: &mut Value| {
                let ns = c["linux"]["namespaces"].as_array_mut().expect("array");
                ns.retain(|n| n["type"] != "user");
                let linux = c["linux"].as_object_mut().expect("object");
                linux.remove("uidMappings");
                linux.remove("gidMappings");
            }),
        ),
        (
            "process.user.additionalGids",
            Box::new(|c: &mut Value| c["process"]["user"]["additionalGids"] = json!([5])),
        ),
        (
            "process.user.uid",
            Box::new(|c: &mut Value| c["process"]["user"]["uid"] = json!(1000)),
        ),
    ];
    for (field, edit) in &cases {
        b.config = base.clone();
        edit(&mut b.config);
        b.write()?;
        let ours = rt(&u, &berth(), &b, &["run", "c1"])?;
        let theirs = rt(&u, "runc", &b, &["run", "c1"])?;
        let _ = rt(&u, "runc", &b, &["delete", "-f", "c1"]);
        assert_ne!(ours.code, Some(0), "{field}: {ours:?}");
        assert_ne!(theirs.code, Some(0), "{field}: runc ran it: {theirs:?}");
        assert!(ours.stderr.contains(field), "{field}: {}", ours.stderr);
        let left = fs::read_dir(u.runtime_dir.join("berth"))
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(left, 0, "{field}: state left behind");
        let procs: Vec<i32> = u.pids();
        assert!(procs.is_empty(), "{field}: processes left: {procs:?}");
    }
    Ok(())
}

#[test]
fn limits_without_a_writable_cgroup_are_skipped_with_a_warning() -> Result<()> {
    let u = TestUser::create()?;
    let mut b = u.bundle("b", &runtime_binary(), &["sh", "-c", "echo ran"])?;
    b.config["linux"]["resources"] = json!({"pids": {"limit": 100}, "memory": {"limit": 67108864}});
    b.write()?;
    let ours = rt(&u, &berth(), &b, &["run", "c1"])?;
    assert_eq!(
        (ours.code, ours.stdout.as_str()),
        (Some(0), "ran\n"),
        "{ours:?}"
    );
    assert!(
        ours.stderr.contains("linux.resources ignored"),
        "{}",
        ours.stderr
    );
    Ok(())
}

/// Root in a rootless container is the user on the host, and no more.
#[test]
fn root_in_the_container_has_only_the_user_s_rights_on_the_host() -> Result<()> {
    let u = TestUser::create()?;
    // A host directory of the user's, with a file of its own and one of root's (0600).
    let shared = u.mkdir("shared")?;
    fs::write(shared.join("mine"), "mine\n")?;
    u.chown(&shared.join("mine"))?;
    fs::write(shared.join("secret"), "secret\n")?;
    fs::set_permissions(shared.join("secret"), fs::Permissions::from_mode(0o600))?;
    // And one the user owns that the container does not mount.
    let outside = u.dir.join("outside");
    fs::write(&outside, "untouched\n")?;
    u.chown(&outside)?;
    let script = "cat /shared/secret 2>/dev/null && echo read-secret; \
                  echo x > /shared/secret 2>/dev/null && echo wrote-secret; \
                  echo x > /ro/mine 2>/dev/null && echo wrote-ro; \
                  mount -o remount,rw /ro 2>/dev/null && echo remounted; \
                  mknod /tmp/null c 1 3 2>/dev/null && echo mknod; \
                  mount -t tmpfs t /mnt 2>/dev/null && echo own-tmpfs; \
                  cat /proc/self/status | grep CapEff; echo done; sleep 30";
    let mut b = u.bundle("b", &runtime_binary(), &["sh", "-c", script])?;
    let all_caps: Vec<String> = (0..=40)
        .filter_map(spec_tests::runtime::cap_name)
        .map(str::to_string)
        .collect();
    for set in ["bounding", "effective", "permitted"] {
        b.config["process"]["capabilities"][set] = json!(all_caps);
    }
    b.config["process"]["noNewPrivileges"] = json!(false);
    b.config["mounts"].as_array_mut().context("mounts")?.extend([
        json!({"destination": "/shared", "type": "bind", "source": shared, "options": ["rbind"]}),
        json!({"destination": "/ro", "type": "bind", "source": shared, "options": ["rbind", "ro"]}),
    ]);
    b.write()?;
    let mut outs = Vec::new();
    for runtime in [berth(), "runc".to_string()] {
        let log = u.dir.join(format!("out-{}", outs.len()));
        let cmd = format!("{runtime} run -d c1 > {} 2>&1", log.display());
        rt(&u, "sh", &b, &["-c", &cmd])?.ok()?;
        wait_for(
            || fs::read_to_string(&log).is_ok_and(|s| s.contains("done")),
            "the probe",
        )?;
        let state = rt(&u, &runtime, &b, &["state", "c1"])?.ok()?;
        let pid = serde_json::from_str::<Value>(&state.stdout)?["pid"]
            .as_i64()
            .context("pid")?;
        // From the host: the process runs as the user, in a user namespace of its own, and
        // its capabilities count only there.
        let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
        let uid_line = status
            .lines()
            .find(|l| l.starts_with("Uid:"))
            .unwrap_or_default();
        assert_eq!(
            uid_line.split_whitespace().nth(1),
            Some(u.uid.to_string().as_str()),
            "{uid_line}"
        );
        assert_ne!(
            fs::read_link(format!("/proc/{pid}/ns/user"))?,
            fs::read_link("/proc/self/ns/user")?
        );
        rt(&u, &runtime, &b, &["delete", "-f", "c1"])?.ok()?;
        outs.push(fs::read_to_string(&log)?);
    }
    let ours = &outs[0];
    for forbidden in [
        "read-secret",
        "wrote-secret",
        "wrote-ro",
        "remounted",
        "mknod",
    ] {
        assert!(!ours.contains(forbidden), "{forbidden}: {ours}");
    }
    // A tmpfs of its own, in its own mount namespace, is allowed (as with runc).
    assert_eq!(
        ours.contains("own-tmpfs"),
        outs[1].contains("own-tmpfs"),
        "{outs:?}"
    );
    assert_eq!(fs::read_to_string(&outside)?, "untouched\n");
    assert_eq!(fs::read_to_string(shared.join("secret"))?, "secret\n");
    Ok(())
}
