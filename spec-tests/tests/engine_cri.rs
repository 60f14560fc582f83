//! Kubernetes' CRI driving the runtime under test: containerd 1.6's CRI plugin with a
//! `berth` runtime handler (the runc v2 shim with `BinaryName` = berth-runtime), called over
//! its gRPC socket as the kubelet calls it. The common pod lifecycle: pull, run a pod sandbox
//! (pause container, network namespace on a CNI bridge), create and start a container in it,
//! exec sync, logs, a container that exits on its own, stop and remove everything, and
//! nothing left behind. The same scenario runs with the `runc` handler as the oracle.
//! (hack/critest runs cri-tools' whole validation suite; it cannot be built in CI.)

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use spec_tests::cri::client::CriClient;
use spec_tests::cri::proto::*;
use spec_tests::cri::{unavailable, CriContainerd};

fn skip() -> bool {
    if let Some(why) = unavailable() {
        eprintln!("SKIPPED: containerd's CRI cannot run here: {why}");
        return true;
    }
    false
}

fn wait_state(c: &CriClient, id: &str, want: i32) -> Result<ContainerStatus> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = c.container_status(id)?;
        if s.state == want {
            return Ok(s);
        }
        if Instant::now() > deadline {
            bail!(
                "container {id} is in state {} (want {want}): {s:?}",
                s.state
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_log(path: &str, needle: &str) -> Result<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return Ok(text);
        }
        if Instant::now() > deadline {
            bail!("{path} never showed {needle:?}: {text:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn container(name: &str, image: &str, script: &str) -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: image.into(),
        }),
        command: vec!["sh".into(), "-c".into(), script.into()],
        envs: vec![KeyValue {
            key: "GREETING".into(),
            value: "hello from the pod".into(),
        }],
        log_path: format!("{name}.log"),
        ..Default::default()
    }
}

fn pod_lifecycle(handler: &str) -> Result<()> {
    let engine = CriContainerd::start()?;
    let result = pod_lifecycle_in(&engine, handler);
    let leaks = engine.shutdown();
    result?;
    leaks
}

fn pod_lifecycle_in(e: &CriContainerd, handler: &str) -> Result<()> {
    let c = e.client()?;
    let v = c.version()?;
    ensure!(v.runtime_name == "containerd", "{v:?}");
    ensure!(v.runtime_api_version == "v1", "{v:?}");
    ensure!(
        !c.pull_image(&e.busybox)?.is_empty(),
        "pull gave no image ref"
    );

    let logs = e.dir().join("pod-logs");
    std::fs::create_dir_all(&logs)?;
    let uid = format!("uid-{}-{handler}", std::process::id());
    let sandbox = PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: format!("lifecycle-{handler}"),
            uid: uid.clone(),
            namespace: "berth-test".into(),
            attempt: 0,
        }),
        hostname: "berth-pod".into(),
        log_directory: logs.display().to_string(),
        labels: HashMap::from([("app".into(), "berth".into())]),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: format!("/{}", e.cgroup_parent),
        }),
    };
    let pod = c.run_pod_sandbox(&sandbox, handler)?;
    let s = c.pod_sandbox_status(&pod)?;
    ensure!(s.state == SANDBOX_READY, "{s:?}");
    ensure!(s.runtime_handler == handler, "{s:?}");
    let ip = s.network.map(|n| n.ip).unwrap_or_default();
    ensure!(
        ip.starts_with("10."),
        "the pod has no address on the bridge: {ip:?}"
    );
    // The pause container runs under the handler's runtime: its state is in that root.
    ensure!(
        e.runtime_root(handler)
            .join(&pod)
            .join("state.json")
            .exists(),
        "the sandbox is not in {}'s root {}",
        handler,
        e.runtime_root(handler).display()
    );

    // A long-running container that ends cleanly on SIGTERM (it is PID 1 of its namespace).
    let cfg = container(
        "web",
        &e.busybox,
        "echo \"$GREETING\"; echo to-stderr >&2; trap 'exit 0' TERM; \
         while :; do sleep 0.1; done",
    );
    let web = c.create_container(&pod, cfg, &sandbox)?;
    wait_state(&c, &web, CONTAINER_CREATED)?;
    c.start_container(&web)?;
    let st = wait_state(&c, &web, CONTAINER_RUNNING)?;
    let log = wait_log(&st.log_path, "hello from the pod")?;
    ensure!(log.contains(" stdout F hello from the pod\n"), "{log:?}");
    wait_log(&st.log_path, " stderr F to-stderr\n")?;

    let r = c.exec_sync(&web, &["sh", "-c", "echo out; echo err >&2; exit 3"], 10)?;
    ensure!(r.exit_code == 3, "{r:?}");
    ensure!(r.stdout == b"out\n" && r.stderr == b"err\n", "{r:?}");
    let r = c.exec_sync(&web, &["cat", "/proc/sys/kernel/hostname"], 10)?;
    ensure!(r.stdout == b"berth-pod\n", "the pod's UTS namespace: {r:?}");
    // The container joined the sandbox's network namespace.
    let r = c.exec_sync(&web, &["cat", "/proc/net/fib_trie"], 10)?;
    ensure!(String::from_utf8_lossy(&r.stdout).contains(&ip), "{r:?}");
    // An exec that outlives its deadline is killed and reported as a timeout.
    let started = Instant::now();
    let timed_out = c.exec_sync(&web, &["sleep", "60"], 1);
    ensure!(timed_out.is_err(), "exec beyond its timeout: {timed_out:?}");
    ensure!(
        started.elapsed() < Duration::from_secs(20),
        "exec timeout took too long"
    );

    // Resource updates reach the container's cgroup (the shim calls `update --resources -`).
    c.update_container_resources(
        &web,
        LinuxContainerResources {
            cpu_period: 100_000,
            cpu_quota: 50_000,
            memory_limit_in_bytes: 96 << 20,
            ..Default::default()
        },
    )?;
    let mem = e.cgroup_file(&web, "memory", "memory.limit_in_bytes", "memory.max")?;
    ensure!(
        mem == (96u64 << 20).to_string(),
        "memory limit after update: {mem}"
    );
    let cpu = e.cgroup_file(&web, "cpu", "cpu.cfs_quota_us", "cpu.max")?;
    ensure!(
        cpu == "50000" || cpu == "50000 100000",
        "cpu quota after update: {cpu}"
    );

    // A container over its memory limit is OOM-killed, and the CRI says so.
    let mut hog = container(
        "hog",
        &e.busybox,
        "a=0123456789abcdef; while :; do a=$a$a; done",
    );
    hog.linux = Some(LinuxContainerConfig {
        resources: Some(LinuxContainerResources {
            memory_limit_in_bytes: 16 << 20,
            ..Default::default()
        }),
    });
    let hog = c.create_container(&pod, hog, &sandbox)?;
    c.start_container(&hog)?;
    let st = wait_state(&c, &hog, CONTAINER_EXITED)?;
    ensure!(st.reason == "OOMKilled" && st.exit_code == 137, "{st:?}");
    c.remove_container(&hog)?;

    // A container that exits on its own: containerd's shim then kills and deletes an exited
    // container, which is where a runtime's wrong error texts made it retry forever.
    let done = c.create_container(&pod, container("done", &e.busybox, "exit 7"), &sandbox)?;
    c.start_container(&done)?;
    let st = wait_state(&c, &done, CONTAINER_EXITED)?;
    ensure!(st.exit_code == 7, "{st:?}");
    c.stop_container(&done, 5)?;
    c.remove_container(&done)?;

    let t = Instant::now();
    c.stop_container(&web, 10)?;
    let st = wait_state(&c, &web, CONTAINER_EXITED)?;
    ensure!(
        st.exit_code == 0,
        "SIGTERM should end it with its trap: {st:?}"
    );
    ensure!(
        t.elapsed() < Duration::from_secs(8),
        "stop waited for the kill timeout"
    );
    c.remove_container(&web)?;
    c.stop_pod_sandbox(&pod)?;
    let s = c.pod_sandbox_status(&pod)?;
    ensure!(s.state == SANDBOX_NOTREADY, "{s:?}");
    c.remove_pod_sandbox(&pod)?;

    ensure!(c.list_containers()?.is_empty(), "containers remain");
    ensure!(c.list_pod_sandboxes()?.is_empty(), "pods remain");
    let left: Vec<_> = std::fs::read_dir(e.runtime_root(handler))
        .map(|rd| rd.flatten().map(|d| d.file_name()).collect())
        .unwrap_or_default();
    ensure!(left.is_empty(), "{handler}'s root still has {left:?}");
    let leftovers = e.leftovers();
    ensure!(leftovers.is_empty(), "left on the host: {leftovers:?}");
    Ok(())
}

#[test]
fn cri_pod_lifecycle_with_the_berth_handler() {
    if skip() {
        return;
    }
    pod_lifecycle("berth")
        .context("berth handler")
        .unwrap_or_else(|e| panic!("{e:#}"));
}

#[test]
fn cri_pod_lifecycle_with_the_runc_handler() {
    if skip() {
        return;
    }
    pod_lifecycle("runc")
        .context("runc handler")
        .unwrap_or_else(|e| panic!("{e:#}"));
}
