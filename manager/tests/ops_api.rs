//! The operations layer driven from code, as the coming front ends (build, compose, the API
//! service) will drive it: real containers under berth-runtime, no CLI in between (the
//! `berth` binary is only the containers' monitor). Needs root, `umoci` and busybox-static
//! (hack/setup), and `cargo build -p berth-runtime`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth::ops::containers::{self, CreateOptions, ListOptions, Output, RunMode, Running};
use berth::ops::models::{ContainerCreateRequest, HealthConfig, WaitCondition};
use berth::ops::{images, Cancel, Engine, EngineOptions, ErrorClass, OpsError};

fn runtime() -> PathBuf {
    match std::env::var_os("BERTH_TEST_RUNTIME") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/berth-runtime"),
    }
}

/// An engine on a private root holding a busybox image; every container is removed on drop.
struct Fixture {
    engine: Engine,
    tmp: tempfile::TempDir,
}

const IMAGE: &str = "ops-test/busybox:1";

impl Fixture {
    fn new() -> Self {
        assert!(
            runtime().exists(),
            "{} is missing: cargo build -p berth-runtime",
            runtime().display()
        );
        let tmp = tempfile::tempdir().unwrap();
        let engine = Engine::open(EngineOptions {
            root: Some(tmp.path().join("root")),
            config_dir: Some(tmp.path().join("config")),
            berth_binary: Some(PathBuf::from(env!("CARGO_BIN_EXE_berth"))),
            ..EngineOptions::default()
        })
        .unwrap();
        let archive = tmp.path().join("busybox.tar");
        let made = std::process::Command::new(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../hack/lib/busybox-image"),
        )
        .arg(&archive)
        .output()
        .unwrap();
        assert!(made.status.success(), "{made:?}");
        let loaded = images::load(&engine, std::fs::File::open(&archive).unwrap()).unwrap();
        images::tag(&engine, &loaded[0].id, IMAGE).unwrap();
        Self { engine, tmp }
    }

    fn request(&self, cmd: &[&str]) -> ContainerCreateRequest {
        let mut r = ContainerCreateRequest::default();
        r.config.image = IMAGE.into();
        r.config.cmd = Some(cmd.iter().map(|s| s.to_string()).collect());
        r.host_config.network_mode = "none".into();
        r.host_config.runtime = runtime().to_string_lossy().into_owned();
        r
    }

    fn ids(&self) -> Vec<String> {
        let all = ListOptions {
            all: true,
            ..ListOptions::default()
        };
        containers::list(&self.engine, &all)
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let opts = containers::RemoveOptions {
            force: true,
            volumes: true,
        };
        for id in self.ids() {
            let _ = containers::remove(&self.engine, &id, opts);
        }
    }
}

#[test]
fn a_step_runs_with_a_host_mount_and_its_output_and_status_are_captured() {
    let f = Fixture::new();
    let work = f.tmp.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let mut req = f.request(&[
        "sh",
        "-c",
        "echo out; echo err >&2; echo made > /work/f; exit 3",
    ]);
    req.host_config.binds = vec![format!("{}:/work", work.display())];
    let Running::Attached { attached, .. } = containers::run(
        &f.engine,
        &req,
        &CreateOptions::default(),
        RunMode::Attached { stdin: false },
    )
    .unwrap() else {
        panic!("an attached run came back detached");
    };
    let id = attached.id().to_string();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = attached
        .wait(|o| match o {
            Output::Stdout(d) => out.extend(d),
            Output::Stderr(d) => err.extend(d),
            Output::Exit(_) => {}
        })
        .unwrap();
    assert_eq!(code, 3);
    assert_eq!(String::from_utf8_lossy(&out), "out\n");
    assert_eq!(String::from_utf8_lossy(&err), "err\n");
    assert_eq!(std::fs::read_to_string(work.join("f")).unwrap(), "made\n");
    let c = containers::inspect(&f.engine, &id).unwrap();
    assert_eq!((c.state.status.as_str(), c.state.exit_code), ("exited", 3));
    containers::remove(&f.engine, &id, Default::default()).unwrap();
    // A parent snapshot that does not exist fails the create and leaves nothing.
    let opts = CreateOptions {
        parent_snapshot: Some("no-such-snapshot".into()),
        ..CreateOptions::default()
    };
    assert!(containers::create(&f.engine, &f.request(&["true"]), &opts).is_err());
    assert!(f.ids().is_empty());
}

#[test]
fn waits_and_followed_logs_end_when_cancelled() {
    let f = Fixture::new();
    let Running::Detached { id, .. } = containers::run(
        &f.engine,
        &f.request(&["sh", "-c", "echo started; sleep 60"]),
        &CreateOptions::default(),
        RunMode::Detached,
    )
    .unwrap() else {
        panic!("a detached run came back attached");
    };
    let cancel = Cancel::new();
    let canceller = {
        let cancel = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            cancel.cancel();
        })
    };
    let began = Instant::now();
    let waited = containers::wait(&f.engine, &id, WaitCondition::NotRunning, &cancel);
    assert!(matches!(waited, Err(OpsError::Cancelled)), "{waited:?}");
    assert!(began.elapsed() < Duration::from_secs(5));
    canceller.join().unwrap();
    // The token is cancelled already: the follower drains what is there and ends.
    let opts = containers::LogsOptions {
        follow: true,
        ..Default::default()
    };
    let began = Instant::now();
    let lines: Vec<String> = containers::logs(&f.engine, &id, &opts, &cancel)
        .unwrap()
        .map(|e| e.unwrap().line)
        .collect();
    assert!(began.elapsed() < Duration::from_secs(5));
    assert!(lines.iter().all(|l| l == "started\n"), "{lines:?}");
    assert_eq!(
        containers::inspect(&f.engine, &id).unwrap().state.status,
        "running"
    );
}

#[test]
fn health_is_awaited_and_errors_come_with_their_class() {
    let f = Fixture::new();
    let mut req = f.request(&["sleep", "60"]);
    req.config.healthcheck = Some(HealthConfig {
        test: vec!["CMD-SHELL".into(), "true".into()],
        interval: 200_000_000,
        ..HealthConfig::default()
    });
    let created = containers::create(&f.engine, &req, &CreateOptions::default()).unwrap();
    containers::start(&f.engine, &created.id).unwrap();
    let healthy = containers::wait_healthy(
        &f.engine,
        &created.id,
        Some(Duration::from_secs(30)),
        &Cancel::new(),
    )
    .unwrap();
    assert!(healthy);
    let e = containers::remove(&f.engine, &created.id, Default::default()).unwrap_err();
    assert_eq!((e.class(), e.status_code()), (ErrorClass::Conflict, 409));
    let e = containers::inspect(&f.engine, "no-such-container").unwrap_err();
    assert_eq!((e.class(), e.status_code()), (ErrorClass::NotFound, 404));
    let mut bad = f.request(&["true"]);
    bad.host_config.binds = vec!["/x:relative".into()];
    let e = containers::create(&f.engine, &bad, &CreateOptions::default()).unwrap_err();
    assert_eq!(e.class(), ErrorClass::InvalidParameter, "{e}");
    assert_eq!(f.ids(), [created.id]);
}
