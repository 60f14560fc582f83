//! Rootless tests: a fresh unprivileged user per test, with its own subordinate id ranges, a
//! work directory it owns and an `XDG_RUNTIME_DIR`, all removed when the [`TestUser`] drops
//! (its processes killed by pid first), even when the test fails.
//!
//! ```no_run
//! use spec_tests::rootless::TestUser;
//! let u = TestUser::create()?;
//! let out = u.run(&["id", "-u"], None)?;
//! assert_eq!(out.stdout.trim(), u.uid.to_string());
//! # anyhow::Ok(())
//! ```

use std::fs;
use std::io::Read;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// Size of each test user's subordinate range.
pub const SUB_COUNT: u32 = 65536;

/// useradd/userdel lock /etc/passwd: one at a time within this process.
static ACCOUNTS: Mutex<()> = Mutex::new(());
static SEQ: AtomicUsize = AtomicUsize::new(0);

/// What a command run as the test user did.
#[derive(Debug, Clone)]
pub struct Out {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn ok(self) -> Result<Out> {
        if self.code != Some(0) {
            bail!(
                "failed ({:?}): stdout {:?} stderr {:?}",
                self.code,
                self.stdout,
                self.stderr
            );
        }
        Ok(self)
    }
}

/// A freshly created unprivileged user with `/etc/subuid` and `/etc/subgid` entries.
pub struct TestUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// The first id of its subordinate uid and gid range ([`SUB_COUNT`] long).
    pub sub_first: u32,
    /// A 0700 directory it owns (its HOME).
    pub dir: PathBuf,
    /// Its XDG_RUNTIME_DIR (inside `dir`).
    pub runtime_dir: PathBuf,
}

impl TestUser {
    pub fn create() -> Result<TestUser> {
        let seq = SEQ.fetch_add(1, Ordering::SeqCst);
        let name = format!("brt{}x{seq}", std::process::id());
        let dir = std::env::temp_dir().join(format!("berth-rootless-{name}"));
        let guard = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
        // Another process may hold /etc/passwd's lock for a moment: retry briefly.
        let mut tries = 0;
        let out = loop {
            let out = Command::new("useradd")
                .args([
                    "-M",
                    "-N",
                    "-K",
                    "SUB_UID_COUNT=0",
                    "-K",
                    "SUB_GID_COUNT=0",
                    "-d",
                ])
                .arg(&dir)
                .args(["-s", "/bin/sh", &name])
                .output()
                .context("running useradd")?;
            tries += 1;
            let locked = String::from_utf8_lossy(&out.stderr).contains("lock");
            if out.status.success() || tries >= 20 || !locked {
                break out;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        if !out.status.success() {
            bail!("useradd {name}: {}", String::from_utf8_lossy(&out.stderr));
        }
        // From here on, Drop removes the user.
        let mut user = TestUser {
            name: name.clone(),
            uid: 0,
            gid: 0,
            sub_first: 0,
            runtime_dir: dir.join("run"),
            dir,
        };
        let pw = nix::unistd::User::from_name(&name)?.context("the new user has no entry")?;
        user.uid = pw.uid.as_raw();
        user.gid = pw.gid.as_raw();
        // A range no other test user has: derived from the (unique) uid.
        user.sub_first = 100_000_000 + (user.uid % 10_000) * SUB_COUNT;
        let range = format!("{}-{}", user.sub_first, user.sub_first + SUB_COUNT - 1);
        let out = accounts(
            "usermod",
            &["--add-subuids", &range, "--add-subgids", &range, &name],
        )?;
        drop(guard);
        if !out.status.success() {
            bail!("usermod {name}: {}", String::from_utf8_lossy(&out.stderr));
        }
        for d in [&user.dir, &user.runtime_dir] {
            fs::create_dir_all(d)?;
            fs::set_permissions(d, fs::Permissions::from_mode(0o700))?;
            nix::unistd::chown(d.as_path(), Some(pw.uid), Some(pw.gid))?;
        }
        Ok(user)
    }

    /// Runs `args` as this user (its own uid, gid and no supplementary groups; a clean
    /// environment with HOME, USER, PATH and XDG_RUNTIME_DIR) in `cwd` (default: its dir),
    /// killed after 30 s.
    pub fn run(&self, args: &[&str], cwd: Option<&Path>) -> Result<Out> {
        self.run_env(args, cwd, &[])
    }

    pub fn run_env(&self, args: &[&str], cwd: Option<&Path>, env: &[(&str, &str)]) -> Result<Out> {
        let mut cmd = self.command(args, cwd);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("running {args:?} as {}", self.name))?;
        let mut so = child.stdout.take().context("stdout")?;
        let mut se = child.stderr.take().context("stderr")?;
        let t1 = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = so.read_to_string(&mut s);
            s
        });
        let t2 = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = se.read_to_string(&mut s);
            s
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = child.try_wait()? {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("{args:?} as {} did not finish within 30 s", self.name);
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        Ok(Out {
            code: status.code(),
            stdout: t1.join().unwrap_or_default(),
            stderr: t2.join().unwrap_or_default(),
        })
    }

    /// Runs `args` as this user with stdout and stderr going to a log file (for `run -d`,
    /// whose container keeps its stdio open); the log's text is returned as stderr.
    pub fn run_detached(&self, args: &[&str], cwd: Option<&Path>) -> Result<Out> {
        let log = self.dir.join(format!(
            "detached-{}.log",
            SEQ.fetch_add(1, Ordering::SeqCst)
        ));
        let file = fs::File::create(&log)?;
        let mut child = self
            .command(args, cwd)
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("running {args:?} as {}", self.name))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = child.try_wait()? {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("{args:?} as {} did not finish within 30 s", self.name);
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        Ok(Out {
            code: status.code(),
            stdout: String::new(),
            stderr: fs::read_to_string(&log).unwrap_or_default(),
        })
    }

    /// The command, not started: as this user, with its environment.
    pub fn command(&self, args: &[&str], cwd: Option<&Path>) -> Command {
        let mut cmd = Command::new(args[0]);
        cmd.args(&args[1..])
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .env("HOME", &self.dir)
            .env("USER", &self.name)
            .env("XDG_RUNTIME_DIR", &self.runtime_dir)
            .current_dir(cwd.unwrap_or(&self.dir))
            .uid(self.uid)
            .gid(self.gid);
        cmd
    }

    /// A directory `name` in the user's dir, owned by it.
    pub fn mkdir(&self, name: &str) -> Result<PathBuf> {
        let d = self.dir.join(name);
        fs::create_dir_all(&d)?;
        self.chown(&d)?;
        Ok(d)
    }

    pub fn chown(&self, p: &Path) -> Result<()> {
        std::os::unix::fs::lchown(p, Some(self.uid), Some(self.gid))
            .with_context(|| format!("chown {}", p.display()))
    }

    /// A bundle directory `name` owned by the user: a busybox rootfs (every applet) and the
    /// config `runtime spec --rootless` writes as this user, without a terminal and with
    /// `args`.
    pub fn bundle(&self, name: &str, runtime: &Path, args: &[&str]) -> Result<RootlessBundle> {
        let dir = self.mkdir(name)?;
        let rootfs = dir.join("rootfs");
        make_busybox_rootfs(&rootfs)?;
        chown_tree(&rootfs, self.uid, self.gid)?;
        let rt = runtime.to_string_lossy().to_string();
        self.run(&[&rt, "spec", "--rootless"], Some(&dir))?.ok()?;
        let path = dir.join("config.json");
        let mut config: Value = serde_json::from_slice(&fs::read(&path)?)?;
        config["process"]["terminal"] = Value::Bool(false);
        config["process"]["args"] = serde_json::json!(args);
        let b = RootlessBundle { dir, config };
        b.write()?;
        Ok(b)
    }

    /// The pids of every process running as this user (host uid).
    pub fn pids(&self) -> Vec<i32> {
        let mut out = Vec::new();
        for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let status = fs::read_to_string(e.path().join("status")).unwrap_or_default();
            let uid = status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().next())
                .and_then(|u| u.parse::<u32>().ok());
            let sub = self.sub_first..self.sub_first + SUB_COUNT;
            if uid.is_some_and(|u| u == self.uid || sub.contains(&u)) {
                out.push(pid);
            }
        }
        out
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        // Its processes (and its containers' ones, in its subordinate range) end first.
        for _ in 0..50 {
            let pids = self.pids();
            if pids.is_empty() {
                break;
            }
            for p in pids {
                // SAFETY: kill(2) with a plain pid and signal number.
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = fs::remove_dir_all(&self.dir);
        let _guard = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
        let range = format!("{}-{}", self.sub_first, self.sub_first + SUB_COUNT - 1);
        let _ = accounts(
            "usermod",
            &["--del-subuids", &range, "--del-subgids", &range, &self.name],
        );
        let _ = accounts("userdel", &[&self.name]);
    }
}

/// Runs an account tool; another process may hold the lock of /etc/passwd (or /etc/subuid)
/// for a moment, so a "lock" failure is retried for up to 2 s.
fn accounts(program: &str, args: &[&str]) -> Result<std::process::Output> {
    let mut tries = 0;
    loop {
        let out = Command::new(program)
            .args(args)
            .output()
            .with_context(|| format!("running {program}"))?;
        tries += 1;
        let locked = String::from_utf8_lossy(&out.stderr).contains("lock");
        if out.status.success() || tries >= 20 || !locked {
            return Ok(out);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A bundle made by [`TestUser::bundle`].
pub struct RootlessBundle {
    pub dir: PathBuf,
    pub config: Value,
}

impl RootlessBundle {
    pub fn write(&self) -> Result<()> {
        fs::write(
            self.dir.join("config.json"),
            serde_json::to_vec_pretty(&self.config)?,
        )?;
        Ok(())
    }

    pub fn dir_str(&self) -> String {
        self.dir.to_string_lossy().into_owned()
    }
}

fn make_busybox_rootfs(rootfs: &Path) -> Result<()> {
    let bin = rootfs.join("bin");
    fs::create_dir_all(&bin)?;
    for d in ["proc", "dev", "sys", "tmp", "etc", "root", "mnt"] {
        fs::create_dir_all(rootfs.join(d))?;
    }
    fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777))?;
    fs::copy("/bin/busybox", bin.join("busybox")).context("copying /bin/busybox")?;
    let list = Command::new("/bin/busybox").arg("--list").output()?;
    for a in String::from_utf8_lossy(&list.stdout).lines() {
        let a = a.trim();
        if !a.is_empty() && a != "busybox" {
            symlink("busybox", bin.join(a))?;
        }
    }
    fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )?;
    fs::write(
        rootfs.join("etc/group"),
        "root:x:0:\ntty:x:5:\nwheel:x:10:\n",
    )?;
    Ok(())
}

fn chown_tree(p: &Path, uid: u32, gid: u32) -> Result<()> {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid))?;
    if fs::symlink_metadata(p)?.is_dir() {
        for e in fs::read_dir(p)? {
            chown_tree(&e?.path(), uid, gid)?;
        }
    }
    Ok(())
}
