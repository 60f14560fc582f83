//! berth-runtime run by an ordinary user whose cgroup v2 subtree is delegated to it: the
//! limits apply (without one they are skipped with a warning: runtime_rootless.rs).

use super::*;

/// A cgroup v2 subtree delegated to an ordinary user (the directory and its cgroup.procs,
/// cgroup.subtree_control and cgroup.threads chowned to it, controllers enabled above it),
/// removed on drop with whatever was made inside.
struct Delegated {
    dir: std::path::PathBuf,
}

impl Delegated {
    fn new(uid: u32) -> Delegated {
        let dir = Path::new("/sys/fs/cgroup").join(format!("berth-deleg-{}", std::process::id()));
        let _ = fs::write("/sys/fs/cgroup/cgroup.subtree_control", "+memory +pids");
        fs::create_dir(&dir).expect("creating the delegated cgroup");
        let d = Delegated { dir };
        fs::write(d.dir.join("cgroup.subtree_control"), "+memory +pids")
            .expect("enabling memory and pids below the delegated cgroup");
        fs::create_dir(d.dir.join("runtime")).expect("creating the runtime's leaf");
        for p in [
            d.dir.clone(),
            d.dir.join("cgroup.procs"),
            d.dir.join("cgroup.subtree_control"),
            d.dir.join("cgroup.threads"),
            d.dir.join("runtime"),
            d.dir.join("runtime/cgroup.procs"),
        ] {
            std::os::unix::fs::chown(&p, Some(uid), Some(uid)).expect("chown");
        }
        d
    }
}

impl Drop for Delegated {
    fn drop(&mut self) {
        let mut dirs: Vec<std::path::PathBuf> = fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        for d in &dirs {
            for pid in fs::read_to_string(d.join("cgroup.procs"))
                .unwrap_or_default()
                .lines()
            {
                if let Ok(pid) = pid.trim().parse::<i32>() {
                    // SAFETY: kill(2) with a plain pid and signal number.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
        dirs.push(self.dir.clone());
        for d in dirs {
            eventually(Duration::from_secs(5), || {
                fs::remove_dir(&d).is_ok() || !d.exists()
            });
        }
    }
}

/// Rootless with a delegated cgroup v2 subtree: the limits apply (without one they are
/// skipped with a warning: runtime_rootless.rs). Needs a v2 host (hack/vm-cgroup2).
#[test]
fn rootless_limits_apply_in_a_delegated_v2_subtree() {
    if !is_v2() || !is_berth() {
        eprintln!("skipped: needs berth-runtime on a cgroup v2 host (hack/vm-cgroup2)");
        return;
    }
    // An id without a passwd entry: its own id needs no subordinate range.
    let uid: u32 = 23456;
    let rt = Runtime::new().unwrap();
    let deleg = Delegated::new(uid);
    let name = deleg.dir.file_name().unwrap().to_string_lossy().to_string();
    let mut b = rt.bundle().unwrap();
    b.sh("sleep 100");
    b.add_namespace(json!({"type": "user"}));
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
    b.config["linux"]["cgroupsPath"] = json!(format!("/{name}/{}", b.id));
    b.config["linux"]["resources"] = json!({"memory": {"limit": 48 << 20}, "pids": {"limit": 42}});
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["type"] != "cgroup");
    b.write_config().unwrap();
    let home = rt.tmp().join("user");
    fs::create_dir_all(home.join("state")).unwrap();
    for p in [
        rt.tmp().to_path_buf(),
        home.clone(),
        home.join("state"),
        b.dir.clone(),
    ] {
        std::os::unix::fs::chown(&p, Some(uid), Some(uid)).unwrap();
    }
    for e in fs::read_dir(b.dir.join("rootfs")).unwrap().flatten() {
        let _ = std::os::unix::fs::lchown(e.path(), Some(uid), Some(uid));
    }
    std::os::unix::fs::chown(b.dir.join("rootfs"), Some(uid), Some(uid)).unwrap();
    let runtime = spec_tests::runtime::runtime_binary();
    let state = home.join("state");
    // The runtime starts in the delegated subtree's leaf, as a user's session would be.
    // stderr to a file: a detached container keeps the runtime's stdio open.
    let log = rt.tmp().join("rootless-runtime.log");
    let as_user = |args: &str| {
        let script = format!(
            "echo $$ > {}/runtime/cgroup.procs && exec setpriv --reuid {uid} --regid {uid} \
             --clear-groups {} --root {} {args}",
            deleg.dir.display(),
            runtime.display(),
            state.display()
        );
        std::process::Command::new("sh")
            .args(["-c", &script])
            .current_dir(&b.dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .status()
            .unwrap()
    };
    let out = as_user(&format!("run -d {}", b.id));
    assert!(
        out.success(),
        "{}",
        fs::read_to_string(&log).unwrap_or_default()
    );
    let cg = deleg.dir.join(&b.id);
    let memory = fs::read_to_string(cg.join("memory.max")).unwrap_or_default();
    let pids = fs::read_to_string(cg.join("pids.max")).unwrap_or_default();
    let procs = fs::read_to_string(cg.join("cgroup.procs")).unwrap_or_default();
    let deleted = as_user(&format!("delete -f {}", b.id));
    assert_eq!(memory.trim(), (48u64 << 20).to_string());
    assert_eq!(pids.trim(), "42");
    assert_eq!(
        procs.lines().count(),
        1,
        "the init is in the container's cgroup"
    );
    assert!(
        deleted.success(),
        "{}",
        fs::read_to_string(&log).unwrap_or_default()
    );
    assert!(!cg.exists(), "the container's cgroup is left");
}
