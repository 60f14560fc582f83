//! A private dockerd (Debian's docker.io 20.10) whose runtime `berth` is the runtime under
//! test, with its data root, exec root (and so its own containerd), socket, pidfile and
//! cgroup parent of its own; no iptables rules, no NAT, ip_forward untouched. Containers run
//! on `--network none`, or on the default network over a bridge made for the daemon
//! ([`Dockerd::start_with_bridge`]); either way docker's bundle carries libnetwork's prestart
//! hook, which the runtime must run.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::{cleanup, run_cmd, wait_for, PtyClient, CLIENT_TIMEOUT};
use crate::runtime::{runtime_binary, Outcome};

/// Debian's client; /usr/local/bin/docker may be a newer one that shadows it.
pub const DOCKER: &str = "/usr/bin/docker";
/// The image every test container runs: a busybox rootfs imported with `docker import`.
pub const IMAGE: &str = "berth-test-busybox:latest";
/// The name the runtime under test is registered under.
pub const RUNTIME_NAME: &str = "berth";

static LIVE: Mutex<usize> = Mutex::new(0);

/// A running dockerd; dropping it stops it and removes everything it made.
pub struct Dockerd {
    child: Option<Child>,
    tmp: Option<tempfile::TempDir>,
    dir: PathBuf,
    socket: PathBuf,
    pub cgroup_parent: String,
    /// A bridge of our own for the default network, when started with [`Dockerd::start_with_bridge`].
    pub bridge: Option<Bridge>,
}

/// A Linux bridge made for one dockerd (`dockerd -b NAME`): docker attaches containers on the
/// default network to it with veth pairs, configured by libnetwork's prestart hook.
pub struct Bridge {
    pub name: String,
    /// The bridge's address, the containers' gateway.
    pub gateway: String,
}

impl Bridge {
    fn create(n: usize) -> Result<Self> {
        // IFNAMSIZ is 16 with the NUL; a /24 out of 10.200.0.0/13 picked from pid and counter.
        let pid = std::process::id() as usize;
        let name = format!("bb{}x{n}", pid % 1_000_000);
        let net = (pid * 7 + n) % 2000;
        let gateway = format!("10.{}.{}.1", 200 + net / 250, net % 250);
        let ip = |args: &[&str]| -> Result<()> {
            let mut c = Command::new("ip");
            c.args(args);
            run_cmd(c, CLIENT_TIMEOUT)?.ok().map(|_| ())
        };
        ip(&["link", "add", &name, "type", "bridge"])?;
        let b = Bridge { name, gateway };
        let configured = ip(&["addr", "add", &format!("{}/24", b.gateway), "dev", &b.name])
            .and_then(|()| ip(&["link", "set", &b.name, "up"]));
        if let Err(e) = configured {
            let _ = b.remove();
            return Err(e);
        }
        Ok(b)
    }

    /// Interfaces still attached to the bridge (veths docker did not remove).
    fn ports(&self) -> Vec<String> {
        let dir = format!("/sys/class/net/{}/brif", self.name);
        fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn remove(&self) -> Result<()> {
        let mut c = Command::new("ip");
        c.args(["link", "del", &self.name]);
        run_cmd(c, CLIENT_TIMEOUT)?.ok().map(|_| ())
    }
}

impl Dockerd {
    /// Starts dockerd with the runtime under test registered as `berth`, waits until it
    /// answers, and imports the busybox image.
    pub fn start() -> Result<Self> {
        Self::start_inner(false)
    }

    /// Like [`Dockerd::start`], with a default bridge network on a bridge of our own (no
    /// iptables rules, no NAT, ip_forward untouched).
    pub fn start_with_bridge() -> Result<Self> {
        Self::start_inner(true)
    }

    fn start_inner(with_bridge: bool) -> Result<Self> {
        super::become_subreaper();
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        // Short paths: sun_path holds 108 bytes and containerd's socket lives in the exec root.
        let tmp = tempfile::Builder::new().prefix("bd-").tempdir_in("/tmp")?;
        let dir = tmp.path().to_path_buf();
        let socket = dir.join("d.sock");
        let cgroup_parent = format!("berth-engine-docker-{}-{n}", std::process::id());
        let bridge = if with_bridge {
            Some(Bridge::create(n)?)
        } else {
            None
        };
        for d in ["data", "exec", "cfg"] {
            fs::create_dir_all(dir.join(d))?;
        }
        fs::write(dir.join("daemon.json"), "{}")?;
        let runtime = fs::canonicalize(runtime_binary()).context("the runtime under test")?;
        let log = File::create(dir.join("dockerd.log"))?;
        let mut cmd = Command::new("dockerd");
        cmd.arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("dockerd.pid"))
            .arg("--config-file")
            .arg(dir.join("daemon.json"))
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .arg(format!(
                "--bridge={}",
                bridge.as_ref().map_or("none", |b| b.name.as_str())
            ))
            .args([
                "--iptables=false",
                "--ip-forward=false",
                "--ip6tables=false",
                "--ip-masq=false",
                "--userland-proxy=false",
                "--storage-driver=overlay2",
                "--cgroup-parent",
            ])
            .arg(format!("/{cgroup_parent}"))
            .arg("--add-runtime")
            .arg(format!("{RUNTIME_NAME}={}", runtime.display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                if let Some(b) = &bridge {
                    let _ = b.remove();
                }
                return Err(e).context("spawning dockerd");
            }
        };
        *LIVE.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        let mut d = Dockerd {
            child: Some(child),
            tmp: Some(tmp),
            dir,
            socket,
            cgroup_parent,
            bridge,
        };
        d.wait_ready()?;
        d.import_image()?;
        Ok(d)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let mut exited = None;
        let ready = wait_for(Duration::from_secs(60), "dockerd to answer", || {
            if let Some(Ok(Some(s))) = self.child.as_mut().map(|c| c.try_wait()) {
                exited = Some(s);
                return Some(false);
            }
            self.socket.exists().then_some(())?;
            let out = self
                .docker(&["version", "--format", "{{.Server.Version}}"])
                .ok()?;
            out.success().then_some(true)
        });
        match ready {
            Ok(true) => Ok(()),
            Ok(false) => bail!("dockerd exited ({exited:?}): {}", self.log()),
            Err(e) => bail!("{e}: {}", self.log()),
        }
    }

    fn import_image(&self) -> Result<()> {
        let rootfs = self.dir.join("image-rootfs");
        super::make_busybox_rootfs(&rootfs)?;
        let tarball = self.dir.join("busybox.tar");
        let out = run_cmd(
            {
                let mut c = Command::new("tar");
                c.arg("-C").arg(&rootfs).arg("-cf").arg(&tarball).arg(".");
                c
            },
            CLIENT_TIMEOUT,
        )?;
        out.ok()?;
        fs::remove_dir_all(&rootfs)?;
        self.docker(&["import", &tarball.display().to_string(), IMAGE])?
            .ok()
            .context("docker import of the busybox image")?;
        Ok(())
    }

    /// The docker client for this daemon (Debian's, with a private config dir).
    pub fn client(&self) -> Command {
        let mut c = Command::new(DOCKER);
        c.env("DOCKER_CONFIG", self.dir.join("cfg"))
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .arg("-H")
            .arg(format!("unix://{}", self.socket.display()));
        c
    }

    /// Runs `docker args...` to completion.
    pub fn docker(&self, args: &[&str]) -> Result<Outcome> {
        let mut c = self.client();
        c.args(args);
        run_cmd(c, CLIENT_TIMEOUT)
    }

    /// `docker run --runtime berth --network none [flags...] IMAGE cmd...`: `flags` go before
    /// the image, `cmd` after.
    pub fn run_with(&self, flags: &[&str], cmd: &[&str]) -> Result<Outcome> {
        let mut args = vec!["run", "--runtime", RUNTIME_NAME];
        if self.bridge.is_none() {
            args.extend(["--network", "none"]);
        }
        args.extend_from_slice(flags);
        args.push(IMAGE);
        args.extend_from_slice(cmd);
        self.docker(&args)
    }

    /// `docker run --rm` of `cmd` in the foreground.
    pub fn run(&self, cmd: &[&str]) -> Result<Outcome> {
        self.run_with(&["--rm"], cmd)
    }

    /// `docker run -d` of `cmd`; returns the container id.
    pub fn run_detached(&self, flags: &[&str], cmd: &[&str]) -> Result<String> {
        let mut f = vec!["-d"];
        f.extend_from_slice(flags);
        let out = self.run_with(&f, cmd)?.ok()?;
        Ok(out.stdout.trim().to_string())
    }

    /// A docker client command on a pty (for `-it` and `exec -it`).
    pub fn on_pty(&self, args: &[&str]) -> Result<PtyClient> {
        let mut c = self.client();
        c.args(args);
        PtyClient::spawn(c)
    }

    /// `docker inspect -f FORMAT ID`, trimmed.
    pub fn inspect(&self, id: &str, format: &str) -> Result<String> {
        Ok(self
            .docker(&["inspect", "-f", format, id])?
            .ok()?
            .stdout
            .trim()
            .to_string())
    }

    /// Waits until `inspect -f FORMAT` prints `want`.
    pub fn wait_inspect(&self, id: &str, format: &str, want: &str) -> Result<()> {
        let mut last = String::new();
        wait_for(
            Duration::from_secs(30),
            &format!("{format} = {want}"),
            || {
                last = self.inspect(id, format).unwrap_or_default();
                (last == want).then_some(())
            },
        )
        .with_context(|| format!("container {id}: {format} is {last:?}"))
    }

    /// The bundle directory containerd made for container `id` (its config.json is what
    /// the runtime got).
    pub fn bundle_dir(&self, id: &str) -> PathBuf {
        self.dir
            .join("exec/containerd/daemon/io.containerd.runtime.v2.task/moby")
            .join(id)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default()
    }

    /// Stops the daemon and cleans up; fails listing whatever had to be cleaned up by force
    /// (processes, mounts, cgroups, shim sockets left behind).
    pub fn shutdown(mut self) -> Result<()> {
        let leaks = self.stop();
        if leaks.is_empty() {
            Ok(())
        } else {
            bail!("dockerd left behind: {}", leaks.join("; "))
        }
    }

    fn stop(&mut self) -> Vec<String> {
        let Some(mut child) = self.child.take() else {
            return Vec::new();
        };
        let mut leaks = Vec::new();
        // Remove containers first with SIGKILL: dockerd's own shutdown would give each one
        // its 10 s stop timeout.
        let ids: Vec<String> = self
            .docker(&["ps", "-aq", "--no-trunc"])
            .map(|o| o.stdout.lines().map(str::to_string).collect())
            .unwrap_or_default();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(ids.iter().map(String::as_str));
            let _ = self.docker(&args);
        }
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        if !cleanup::wait_child(child.id() as i32, Duration::from_secs(20)) {
            leaks.push("dockerd did not stop on SIGTERM within 20 s".into());
            let _ = child.kill();
        }
        let _ = child.wait();
        let dir = self.dir.display().to_string();
        let stray: Vec<i32> = cleanup::pids_mentioning(&dir)
            .into_iter()
            .chain(cleanup::cgroup_pids(&self.cgroup_parent))
            .collect();
        if !stray.is_empty() {
            leaks.push(format!("processes {stray:?}"));
            cleanup::thaw(&self.cgroup_parent);
            cleanup::kill_and_reap(&stray);
        }
        let mounts = cleanup::mounts_under(&self.dir);
        // The data root's own mounts (overlay2 keeps none once containers are gone) are
        // dockerd's business; anything still mounted after it exited is a leak.
        if !mounts.is_empty() {
            leaks.push(format!("mounts {mounts:?}"));
            cleanup::unmount_under(&self.dir);
        }
        let address = self.dir.join("exec/containerd/containerd.sock");
        for id in &ids {
            let s = cleanup::shim_socket(&address, "moby", id);
            if s.exists() {
                leaks.push(format!("shim socket {}", s.display()));
                let _ = fs::remove_file(&s);
            }
        }
        // dockerd makes the parent itself; only container cgroups below it would be leaks.
        let tree = cleanup::cgroup_tree(&self.cgroup_parent);
        let children: Vec<_> = tree
            .iter()
            .filter(|p| p.file_name().and_then(|n| n.to_str()) != Some(&self.cgroup_parent))
            .cloned()
            .collect();
        if !children.is_empty() {
            leaks.push(format!("cgroups {children:?}"));
        }
        let left = cleanup::remove_cgroup_tree(&self.cgroup_parent);
        if !left.is_empty() {
            leaks.push(format!("cgroups that cannot be removed {left:?}"));
        }
        if let Some(b) = self.bridge.take() {
            let ports = b.ports();
            if !ports.is_empty() {
                leaks.push(format!("interfaces on bridge {}: {ports:?}", b.name));
            }
            if let Err(e) = b.remove() {
                leaks.push(format!("removing bridge {}: {e}", b.name));
            }
        }
        if let Some(tmp) = self.tmp.take() {
            if let Err(e) = tmp.close() {
                leaks.push(format!("removing {dir}: {e}"));
            }
        }
        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        *live -= 1;
        if *live == 0 {
            cleanup::remove_empty_dirs(&[
                "/run/docker/plugins",
                "/run/docker",
                "/run/containerd/s",
                "/run/containerd",
            ]);
        }
        leaks
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let leaks = self.stop();
        if !leaks.is_empty() && !std::thread::panicking() {
            eprintln!("dockerd cleanup: {}", leaks.join("; "));
        }
    }
}
