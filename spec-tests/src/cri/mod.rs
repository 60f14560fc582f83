//! Kubernetes' view of berth-runtime: Debian's containerd 1.6 with its CRI plugin, driven
//! over its gRPC socket by [`client::CriClient`] as a kubelet would. Everything is private:
//! root, state, sockets and config in a temp dir, network namespaces under the state dir, a
//! CNI bridge and /24 of its own, a cgroup parent of its own for the pods, and a local
//! docker-registry holding a busybox image and a pause image built here (the pause program
//! is hack/lib/cri/pause.c, compiled with gcc). Two runtime handlers: `berth` (the runtime
//! under test, through the runc v2 shim's `BinaryName`) and `runc`.

pub mod client;
pub mod proto;

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::json;

use crate::engines::{cleanup, wait_for};
use crate::manager::images::{busybox_layer, Blob, Compression, Layout, OCI_CONFIG, OCI_MANIFEST};
use crate::manager::registry::Registry;
use crate::runtime::runtime_binary;
use client::CriClient;

/// containerd's namespace for everything the CRI plugin makes.
pub const NAMESPACE: &str = "k8s.io";

/// Why the CRI tests cannot run here, if they cannot: containerd is not installed. Anything
/// else missing (CNI plugins, gcc, docker-registry, skopeo: all in hack/setup) fails the test
/// with an error that names it.
pub fn unavailable() -> Option<String> {
    which("containerd")
        .is_none()
        .then(|| "containerd is not installed (run hack/setup)".to_string())
}

fn which(bin: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(bin))
            .find(|c| c.is_file())
    })
}

/// A running containerd with the CRI plugin; dropping it stops it and removes everything.
pub struct CriContainerd {
    child: Option<Child>,
    tmp: Option<tempfile::TempDir>,
    dir: PathBuf,
    socket: PathBuf,
    /// The cgroup parent to give pods (`LinuxPodSandboxConfig.cgroup_parent`).
    pub cgroup_parent: String,
    bridge: String,
    net_name: String,
    /// The busybox image (Cmd sh) the containers run.
    pub busybox: String,
    shim_sockets_before: Vec<PathBuf>,
    registry: Option<Registry>,
}

impl CriContainerd {
    pub fn start() -> Result<Self> {
        crate::engines::become_subreaper();
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let tmp = tempfile::Builder::new()
            .prefix("bcri-")
            .tempdir_in("/tmp")?;
        let dir = tmp.path().to_path_buf();
        fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        for plugin in ["bridge", "host-local", "loopback"] {
            let p = Path::new("/usr/lib/cni").join(plugin);
            if !p.exists() {
                bail!(
                    "{} is missing (containernetworking-plugins, hack/setup)",
                    p.display()
                );
            }
        }
        let registry = Registry::plain()?;
        let host = registry.host();
        let (busybox, pause) = push_images(&dir.join("images"), &host)?;
        let subnet = free_subnet(pid as usize * 31 + n * 7)?;
        let bridge = format!("bcri{}x{n}", pid % 100_000);
        let net_name = format!("berth-cri-{pid}-{n}");
        let socket = dir.join("c.sock");
        fs::create_dir_all(dir.join("cni/conf"))?;
        fs::write(
            dir.join("cni/conf/10-berth.conflist"),
            serde_json::to_vec_pretty(&json!({
                "cniVersion": "1.0.0",
                "name": net_name,
                "plugins": [{
                    "type": "bridge", "bridge": bridge, "isGateway": true, "ipMasq": false,
                    "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]],
                             "dataDir": dir.join("cni/ipam")},
                }],
            }))?,
        )?;
        let runtime = fs::canonicalize(runtime_binary()).context("the runtime under test")?;
        let runc = which("runc").unwrap_or_else(|| PathBuf::from("/usr/sbin/runc"));
        let handler = |name: &str, bin: &Path| {
            format!(
                r#"    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{name}]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{name}.options]
        BinaryName = "{bin}"
        Root = "{root}"
"#,
                bin = bin.display(),
                root = dir.join("runtime-root").join(name).display(),
            )
        };
        let config = format!(
            r#"version = 2
root = "{root}"
state = "{state}"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "{stream}"
  netns_mounts_under_state_dir = true
  # No CAP_SYS_RESOURCE on CI machines: the pause container's -998 cannot be applied.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
{berth}{runc}  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{cni}"
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."{host}"]
    endpoint = ["http://{host}"]
"#,
            root = dir.join("root").display(),
            state = dir.join("state").display(),
            sock = socket.display(),
            stream = crate::manager::free_port()?,
            berth = handler("berth", &runtime),
            runc = handler("runc", &runc),
            cni = dir.join("cni/conf").display(),
        );
        fs::write(dir.join("config.toml"), config)?;
        let shim_sockets_before = shim_sockets();
        let log = File::create(dir.join("containerd.log"))?;
        let child = Command::new("containerd")
            .arg("--config")
            .arg(dir.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("spawning containerd")?;
        let mut c = CriContainerd {
            child: Some(child),
            tmp: Some(tmp),
            dir,
            socket,
            cgroup_parent: format!("berth-cri-{pid}-{n}"),
            bridge,
            net_name,
            busybox,
            shim_sockets_before,
            registry: Some(registry),
        };
        c.wait_ready()?;
        Ok(c)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let mut exited = None;
        let ok = wait_for(
            Duration::from_secs(30),
            "containerd's CRI to answer",
            || {
                if let Some(Ok(Some(s))) = self.child.as_mut().map(|c| c.try_wait()) {
                    exited = Some(s);
                    return Some(false);
                }
                self.socket.exists().then_some(())?;
                let c = CriClient::connect(&self.socket).ok()?;
                c.version().ok().map(|_| true)
            },
        );
        match ok {
            Ok(true) => Ok(()),
            Ok(false) => bail!("containerd exited ({exited:?}): {}", self.log()),
            Err(e) => bail!("{e}: {}", self.log()),
        }
    }

    pub fn client(&self) -> Result<CriClient> {
        CriClient::connect(&self.socket)
    }

    /// The `--root` a handler's runtime keeps its container state in (per namespace).
    pub fn runtime_root(&self, handler: &str) -> PathBuf {
        self.dir.join("runtime-root").join(handler).join(NAMESPACE)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default()
    }

    /// Processes of containers and shims this containerd started that are still alive.
    pub fn live_processes(&self) -> Vec<i32> {
        let me = self.child.as_ref().map(|c| c.id() as i32);
        let mut p: Vec<i32> = cleanup::pids_mentioning(&format!("{}/", self.dir.display()))
            .into_iter()
            .chain(cleanup::cgroup_pids(&self.cgroup_parent))
            .filter(|p| Some(*p) != me && cleanup::is_running(*p))
            .collect();
        p.sort_unstable();
        p.dedup();
        p
    }

    /// What pods left on the host while containerd still runs: mounts under the state dir
    /// (rootfs, shm, netns), cgroups below the pods' parent, network namespace files.
    pub fn leftovers(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mounts = cleanup::mounts_under(&self.dir.join("state"));
        if !mounts.is_empty() {
            out.push(format!("mounts {mounts:?}"));
        }
        let cgroups = self.pod_cgroups();
        if !cgroups.is_empty() {
            out.push(format!("cgroups {cgroups:?}"));
        }
        let p = self.live_processes();
        if !p.is_empty() {
            out.push(format!("processes {p:?}"));
        }
        out
    }

    /// A cgroup file of container `id` as the host sees it: `v1` in the named controller's
    /// hierarchy on cgroup v1 (and hybrid), `v2` in the unified one on a pure v2 host.
    pub fn cgroup_file(&self, id: &str, controller: &str, v1: &str, v2: &str) -> Result<String> {
        let rel = Path::new(&self.cgroup_parent).join(id);
        let v1_path = Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(&rel)
            .join(v1);
        let path = if Path::new("/sys/fs/cgroup").join(controller).is_dir() {
            v1_path
        } else {
            Path::new("/sys/fs/cgroup").join(&rel).join(v2)
        };
        Ok(fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?
            .trim()
            .to_string())
    }

    /// The cgroups below the pods' parent (the parent itself is ours to remove).
    fn pod_cgroups(&self) -> Vec<PathBuf> {
        cleanup::cgroup_tree(&self.cgroup_parent)
            .into_iter()
            .filter(|p| p.file_name().and_then(|n| n.to_str()) != Some(&self.cgroup_parent))
            .collect()
    }

    /// Stops containerd and cleans up; fails listing whatever had to be removed by force.
    pub fn shutdown(mut self) -> Result<()> {
        let leaks = self.stop();
        if leaks.is_empty() {
            Ok(())
        } else {
            bail!("the CRI containerd left behind: {}", leaks.join("; "))
        }
    }

    fn stop(&mut self) -> Vec<String> {
        let Some(mut child) = self.child.take() else {
            return Vec::new();
        };
        let mut leaks = Vec::new();
        // Pods a failed test left: through the CRI first, as the kubelet would.
        if let Ok(c) = self.client() {
            for p in c.list_pod_sandboxes().unwrap_or_default() {
                leaks.push(format!("pod {}", p.id));
                let _ = c.stop_pod_sandbox(&p.id);
                let _ = c.remove_pod_sandbox(&p.id);
            }
        }
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        if !cleanup::wait_child(child.id() as i32, Duration::from_secs(10)) {
            leaks.push("containerd did not stop on SIGTERM within 10 s".into());
            let _ = child.kill();
        }
        let _ = child.wait();
        let stray = self.live_processes();
        if !stray.is_empty() {
            leaks.push(format!("processes {stray:?}"));
            cleanup::thaw(&self.cgroup_parent);
            cleanup::kill_and_reap(&stray);
        }
        let mounts = cleanup::mounts_under(&self.dir);
        if !mounts.is_empty() {
            leaks.push(format!("mounts {mounts:?}"));
            cleanup::unmount_under(&self.dir);
        }
        let children = self.pod_cgroups();
        if !children.is_empty() {
            leaks.push(format!("cgroups {children:?}"));
        }
        let left = cleanup::remove_cgroup_tree(&self.cgroup_parent);
        if !left.is_empty() {
            leaks.push(format!("cgroups that cannot be removed {left:?}"));
        }
        // A shim removes its socket when it exits; one nobody listens on is a leak. Only
        // sockets idle for a while: another test's shim may be between closing its listener
        // and removing the file.
        let listening = fs::read_to_string("/proc/net/unix").unwrap_or_default();
        let idle = |s: &Path| {
            fs::symlink_metadata(s)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > Duration::from_secs(10))
        };
        for s in shim_sockets() {
            if !self.shim_sockets_before.contains(&s)
                && !listening.contains(&*s.to_string_lossy())
                && idle(&s)
            {
                leaks.push(format!("shim socket {}", s.display()));
                let _ = fs::remove_file(&s);
            }
        }
        // The CNI result cache: the bridge plugin's DEL removes its entry.
        if let Ok(rd) = fs::read_dir("/var/lib/cni/results") {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().starts_with(&self.net_name) {
                    leaks.push(format!("CNI result {}", e.path().display()));
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        // The bridge outlives its pods by design (CNI never deletes it).
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .stderr(Stdio::null())
            .status();
        self.registry.take();
        if let Some(tmp) = self.tmp.take() {
            if let Err(e) = tmp.close() {
                leaks.push(format!("removing {}: {e}", self.dir.display()));
            }
        }
        cleanup::remove_empty_dirs(&["/run/containerd/s", "/run/containerd"]);
        leaks
    }
}

impl Drop for CriContainerd {
    fn drop(&mut self) {
        let leaks = self.stop();
        if !leaks.is_empty() && !std::thread::panicking() {
            eprintln!("CRI containerd cleanup: {}", leaks.join("; "));
        }
    }
}

fn shim_sockets() -> Vec<PathBuf> {
    fs::read_dir("/run/containerd/s")
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// A /24 in 10.200.0.0/13 that no route on this host covers yet (other tests and engineers'
/// networks live in the same machine).
fn free_subnet(seed: usize) -> Result<String> {
    let routes = Command::new("ip")
        .args(["-4", "route"])
        .output()
        .context("ip route")?;
    let routes = String::from_utf8_lossy(&routes.stdout).to_string();
    for i in 0..250 {
        let k = seed + i * 17;
        let cand = format!("10.{}.{}.0", 200 + k % 50, (k / 50) % 250);
        if !routes.contains(&cand) {
            return Ok(format!("{cand}/24"));
        }
    }
    bail!("no free /24 in 10.200.0.0/13")
}

/// Builds the busybox and pause images into an OCI layout and pushes them to the registry at
/// `host`; returns their references.
fn push_images(dir: &Path, host: &str) -> Result<(String, String)> {
    let mut layout = Layout::create(dir)?;
    let busybox = layout.image("amd64", &[(busybox_layer()?, Compression::Gzip)])?;
    layout.tag("busybox", &busybox)?;

    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../hack/lib/cri/pause.c");
    let bin = dir.join("pause");
    crate::manager::run(
        Command::new("gcc")
            .args(["-static", "-Os", "-o"])
            .arg(&bin)
            .arg(&src),
    )
    .context("compiling hack/lib/cri/pause.c")?;
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(fs::metadata(&bin)?.len());
    h.set_mode(0o755);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    tar.append_data(&mut h, "pause", File::open(&bin)?)?;
    let layer = tar.into_inner()?;
    let pause = image_with_entrypoint(&layout, layer, &["/pause"])?;
    layout.tag("pause", &pause)?;

    let busybox_ref = format!("{host}/berth/busybox:1");
    let pause_ref = format!("{host}/berth/pause:1");
    layout.push("busybox", &busybox_ref, &[])?;
    layout.push("pause", &pause_ref, &[])?;
    Ok((busybox_ref, pause_ref))
}

fn image_with_entrypoint(
    layout: &Layout,
    layer: Vec<u8>,
    entrypoint: &[&str],
) -> Result<crate::manager::images::Built> {
    let diff_id = crate::manager::sha256(&layer);
    let blob = layout.blob(&layer, "application/vnd.oci.image.layer.v1.tar")?;
    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": entrypoint},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    });
    let config = layout.blob(&serde_json::to_vec(&config)?, OCI_CONFIG)?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": [blob.descriptor()],
    });
    let manifest: Blob = layout.blob(&serde_json::to_vec(&manifest)?, OCI_MANIFEST)?;
    Ok(crate::manager::images::Built {
        manifest,
        config: Some(config),
        layers: vec![blob],
    })
}
