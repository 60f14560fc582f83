//! Hooks: prestart, createRuntime, createContainer, startContainer, poststart, poststop run in
//! the spec's order, in the spec's namespaces, with the state JSON on stdin; timeouts and
//! failures are handled as the spec says.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use spec_tests::runtime::{is_berth, Bundle, Runtime};

const T: Duration = Duration::from_secs(10);

/// One line of the hook log.
#[derive(Debug)]
struct HookRun {
    name: String,
    mnt_ns: String,
    net_ns: String,
    env: String,
    state: Value,
}

/// A directory holding the hook script and its log, bind-mounted into the container at the
/// same path, so the same paths work for host-side hooks, for createContainer (before
/// pivot_root) and for startContainer (path resolved in the container).
struct HookDir {
    dir: PathBuf,
}

impl HookDir {
    fn new(rt: &Runtime, b: &mut Bundle) -> Self {
        let dir = rt.tmp().join(format!("hooks-{}", b.id));
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        let log = dir.join("log");
        let script = format!(
            "#!/bin/sh\n\
             state=$(cat | tr -d '\\n')\n\
             printf '%s %s %s [%s] %s\\n' \"$1\" \"$(readlink /proc/self/ns/mnt)\" \
             \"$(readlink /proc/self/ns/net)\" \"$HOOK_ENV\" \"$state\" >> {}\n\
             exit ${{2:-0}}\n",
            log.display()
        );
        let path = dir.join("hook");
        fs::write(&path, script).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        b.add_mount(json!({ "destination": dir, "type": "bind", "source": dir,
                            "options": ["rbind", "rw"] }));
        HookDir { dir }
    }

    fn script(&self) -> PathBuf {
        self.dir.join("hook")
    }

    /// A hook entry that logs as `name` and exits with `code`.
    fn hook(&self, name: &str, code: i32) -> Value {
        json!({ "path": self.script(), "args": ["hook", name, code.to_string()],
                "env": [format!("HOOK_ENV=env-{name}")] })
    }

    fn runs(&self) -> Vec<HookRun> {
        fs::read_to_string(self.dir.join("log"))
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let mut parts = l.splitn(5, ' ');
                let mut next = || parts.next().unwrap_or_default().to_string();
                let (name, mnt_ns, net_ns, env, state) = (next(), next(), next(), next(), next());
                HookRun {
                    name,
                    mnt_ns,
                    net_ns,
                    env: env.trim_matches(|c| c == '[' || c == ']').to_string(),
                    state: serde_json::from_str(&state)
                        .unwrap_or_else(|e| panic!("hook state {state:?} is not JSON: {e}")),
                }
            })
            .collect()
    }
}

fn ns_of(pid: &str, kind: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .unwrap()
        .display()
        .to_string()
}

/// Runs a container with all six hooks; returns the hook log, the init pid and the
/// container's mnt and net namespaces.
fn run_with_all_hooks() -> (Vec<HookRun>, i32, String, String, Bundle) {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    let hooks = HookDir::new(&rt, &mut b);
    b.config["hooks"] = json!({
        "prestart": [hooks.hook("prestart", 0)],
        "createRuntime": [hooks.hook("createRuntime", 0)],
        "createContainer": [hooks.hook("createContainer", 0)],
        "startContainer": [hooks.hook("startContainer", 0)],
        "poststart": [hooks.hook("poststart", 0)],
        "poststop": [hooks.hook("poststop", 0)]
    });
    b.sh("echo user-program");
    let c = rt.create(&b).unwrap();
    let pid = c.init.pid;
    let (mnt, net) = (
        ns_of(&pid.to_string(), "mnt"),
        ns_of(&pid.to_string(), "net"),
    );
    let mut after_create: Vec<String> = hooks.runs().into_iter().map(|r| r.name).collect();
    if !is_berth() && after_create.last().is_some_and(|n| n == "poststart") {
        // runc 1.1 runs poststart hooks at the end of create, not during start.
        after_create.pop();
    }
    assert_eq!(
        after_create,
        ["prestart", "createRuntime", "createContainer"],
        "hooks run by create"
    );
    c.start().unwrap();
    c.wait_stopped(T).unwrap();
    assert_eq!(c.stdout(), "user-program\n");
    c.delete().unwrap();
    (hooks.runs(), pid, mnt, net, b)
}

#[test]
fn hooks_run_in_lifecycle_order_with_the_state_on_stdin() {
    let (runs, pid, _, _, b) = run_with_all_hooks();
    let names: Vec<&str> = runs.iter().map(|r| r.name.as_str()).collect();
    if is_berth() {
        assert_eq!(
            names,
            [
                "prestart",
                "createRuntime",
                "createContainer",
                "startContainer",
                "poststart",
                "poststop"
            ]
        );
    } else {
        // runc 1.1 runs poststart at the end of create, before startContainer.
        assert_eq!(names.len(), 6, "{names:?}");
        assert_eq!(names[..3], ["prestart", "createRuntime", "createContainer"]);
        let mut mid = names[3..5].to_vec();
        mid.sort_unstable();
        assert_eq!(mid, ["poststart", "startContainer"]);
        assert_eq!(names[5], "poststop");
    }
    for r in &runs {
        assert_eq!(r.state["id"], b.id.as_str(), "{r:?}");
        assert_eq!(r.state["bundle"], b.dir.to_str().unwrap(), "{r:?}");
        assert!(r.state["ociVersion"].is_string(), "{r:?}");
        assert_eq!(r.env, format!("env-{}", r.name), "hook env: {r:?}");
    }
    let state = |name: &str| &runs.iter().find(|r| r.name == name).unwrap().state;
    for name in ["prestart", "createRuntime", "createContainer"] {
        assert_eq!(state(name)["status"], "creating", "{name}");
    }
    assert_eq!(state("startContainer")["status"], "created");
    assert_eq!(state("poststop")["status"], "stopped");
    if is_berth() {
        // After the user program was executed the container is running.
        assert_eq!(state("poststart")["status"], "running");
    } else {
        // runc 1.1 passes "created" to poststart.
        assert!(["created", "running"].contains(&state("poststart")["status"].as_str().unwrap()));
    }
    // The pid is the container process as seen by the host. runc 1.1 passes the pid as seen
    // inside the container's pid namespace (1) to createContainer and startContainer.
    let host_pid_hooks: &[&str] = if is_berth() {
        &[
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
        ]
    } else {
        &["prestart", "createRuntime", "poststart"]
    };
    for name in host_pid_hooks {
        assert_eq!(state(name)["pid"].as_i64(), Some(pid as i64), "{name}");
    }
}

#[test]
fn hooks_run_in_the_namespaces_the_spec_names() {
    let (runs, _, mnt, net, _) = run_with_all_hooks();
    let host_mnt = ns_of("self", "mnt");
    let host_net = ns_of("self", "net");
    assert_ne!(mnt, host_mnt);
    for r in &runs {
        let (want_mnt, want_net) = match r.name.as_str() {
            "createContainer" | "startContainer" => (&mnt, &net),
            _ => (&host_mnt, &host_net),
        };
        assert_eq!(&r.mnt_ns, want_mnt, "mount namespace of {}", r.name);
        assert_eq!(&r.net_ns, want_net, "network namespace of {}", r.name);
    }
}

/// Runs `create` and expects it to fail without leaving anything behind; returns stderr and
/// how long create took.
fn create_fails(rt: &Runtime, b: &Bundle) -> (String, Duration) {
    b.write_config().unwrap();
    let t0 = Instant::now();
    let out = rt
        .cmd(&["create", "--bundle", b.dir.to_str().unwrap(), &b.id])
        .unwrap()
        .failed()
        .unwrap();
    let took = t0.elapsed();
    rt.assert_no_leaks(&b.id, &b.dir, &[]).unwrap();
    assert!(!rt.cmd(&["state", &b.id]).unwrap().success());
    (out.stderr, took)
}

#[test]
fn hook_that_exceeds_its_timeout_fails_create_and_leaves_nothing() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    let hooks = HookDir::new(&rt, &mut b);
    let sleeper = hooks.dir.join("sleeper");
    // exec: runc 1.1 kills only the hook process on timeout and then waits for its output
    // pipe, which a child `sleep` would hold open for its whole run.
    fs::write(&sleeper, "#!/bin/sh\nexec sleep 30\n").unwrap();
    fs::set_permissions(&sleeper, fs::Permissions::from_mode(0o755)).unwrap();
    b.config["hooks"] = json!({
        "createRuntime": [{ "path": sleeper, "args": ["sleeper"], "timeout": 1 }],
        "startContainer": [hooks.hook("startContainer", 0)]
    });
    let (stderr, took) = create_fails(&rt, &b);
    assert!(took < Duration::from_secs(15), "create took {took:?}");
    assert!(stderr.contains("hook"), "{stderr}");
    assert!(
        stderr.contains("timeout") || stderr.contains("timed out"),
        "{stderr}"
    );
    if is_berth() {
        assert!(stderr.contains("createRuntime"), "names the hook: {stderr}");
    }
    assert!(hooks.runs().is_empty(), "nothing after the failed hook ran");
    assert!(!processes_running(&sleeper), "the timed-out hook is killed");
}

/// True if a process runs the script at `path`.
fn processes_running(path: &Path) -> bool {
    let needle = path.to_string_lossy().into_owned();
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let found = fs::read_dir("/proc").unwrap().flatten().any(|e| {
            fs::read(e.path().join("cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(&needle))
                .unwrap_or(false)
        });
        if !found || Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn failing_prestart_hook_fails_create_cleanly() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    let hooks = HookDir::new(&rt, &mut b);
    b.config["hooks"] = json!({
        "prestart": [hooks.hook("prestart", 3)],
        "createRuntime": [hooks.hook("createRuntime", 0)],
        "startContainer": [hooks.hook("startContainer", 0)]
    });
    b.sh("echo must-not-run > /ran");
    let (stderr, _) = create_fails(&rt, &b);
    assert!(stderr.contains("hook"), "{stderr}");
    if is_berth() {
        assert!(stderr.contains("prestart"), "names the hook: {stderr}");
    }
    let names: Vec<String> = hooks.runs().into_iter().map(|r| r.name).collect();
    assert_eq!(names, ["prestart"], "no hook after the failing one runs");
    assert!(!b.rootfs().join("ran").exists());
}

#[test]
fn failing_create_container_hook_fails_create_cleanly() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    let hooks = HookDir::new(&rt, &mut b);
    b.config["hooks"] = json!({
        "createContainer": [hooks.hook("createContainer", 1)]
    });
    let (stderr, _) = create_fails(&rt, &b);
    assert!(stderr.contains("hook"), "{stderr}");
}

#[test]
fn a_create_that_fails_in_a_hook_still_runs_poststop() {
    // runtime-spec: when a prestart, createRuntime or createContainer hook fails, the runtime
    // stops the container and continues the lifecycle at delete, which runs poststop.
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    let hooks = HookDir::new(&rt, &mut b);
    b.config["hooks"] = json!({
        "createRuntime": [hooks.hook("createRuntime", 1)],
        "poststop": [hooks.hook("poststop", 0)]
    });
    let _ = create_fails(&rt, &b);
    let runs = hooks.runs();
    let names: Vec<&str> = runs.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["createRuntime", "poststop"]);
}

#[test]
fn several_hooks_of_one_kind_run_in_order() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    let hooks = HookDir::new(&rt, &mut b);
    b.config["hooks"] = json!({
        "createRuntime": [hooks.hook("first", 0), hooks.hook("second", 0), hooks.hook("third", 0)]
    });
    let c = rt.create(&b).unwrap();
    let names: Vec<String> = hooks.runs().into_iter().map(|r| r.name).collect();
    assert_eq!(names, ["first", "second", "third"]);
    c.delete_force().unwrap();
}

/// runtime-spec: "If any poststart hook fails, the runtime MUST log a warning, but the
/// remaining hooks and lifecycle continue as if the hook had succeeded." runc 1.1 instead
/// kills the container and fails start, so this is checked for berth only.
#[test]
fn failing_poststart_hook_only_warns() {
    if !is_berth() {
        eprintln!("runc 1.1 fails start on a poststart error: checked for berth only");
        return;
    }
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    let hooks = HookDir::new(&rt, &mut b);
    b.config["hooks"] = json!({
        "poststart": [hooks.hook("poststart-a", 1), hooks.hook("poststart-b", 0)]
    });
    b.sh("echo ran; sleep 100");
    let c = rt.create(&b).unwrap();
    c.start().unwrap();
    c.wait_for_stdout("ran", T).unwrap();
    assert_eq!(c.status().unwrap(), "running");
    let names: Vec<String> = hooks.runs().into_iter().map(|r| r.name).collect();
    assert_eq!(names, ["poststart-a", "poststart-b"]);
    c.delete_force().unwrap();
}

/// runtime-spec: a failing poststop hook is a warning; delete still removes the container.
#[test]
fn failing_poststop_hook_still_deletes_the_container() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    let hooks = HookDir::new(&rt, &mut b);
    b.config["hooks"] = json!({
        "poststop": [hooks.hook("poststop-a", 1), hooks.hook("poststop-b", 0)]
    });
    let c = rt.create(&b).unwrap();
    c.start().unwrap();
    c.wait_stopped(T).unwrap();
    let id = c.id.clone();
    let out = c.verb(&["delete"], &[]).unwrap();
    drop(c);
    assert!(!rt.cmd(&["state", &id]).unwrap().success(), "{out}");
    rt.assert_no_leaks(&id, &b.dir, &[]).unwrap();
    let names: Vec<String> = hooks.runs().into_iter().map(|r| r.name).collect();
    if is_berth() {
        assert!(out.success(), "{out}");
        assert_eq!(names, ["poststop-a", "poststop-b"]);
    } else {
        assert!(
            names.first().is_some_and(|n| n == "poststop-a"),
            "{names:?}"
        );
    }
}
