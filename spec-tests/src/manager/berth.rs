//! Runs the `berth` binary against a private storage root, config dir and docker config dir.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{bail, Context, Result};
use tempfile::TempDir;

/// The `berth` binary: `$BERTH_TEST_BIN`, else the one built next to the test executable
/// (`target/<profile>/berth`, which `cargo build` / hack/test make before the tests run).
pub fn berth_bin() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("BERTH_TEST_BIN").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()?;
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|profile| profile.join("berth"))
        .context("locating the target directory from the test executable")?;
    if !bin.exists() {
        bail!(
            "{} not found: run `cargo build -p berth` first",
            bin.display()
        );
    }
    Ok(bin)
}

/// Whether the manager tests run berth as a fresh unprivileged user (`BERTH_TEST_ROOTLESS=1`,
/// hack/test's rootless pass): each [`Berth`] then creates its own user with subordinate
/// ranges (removed on drop), and runs berth as that user with its XDG directories.
pub fn rootless_mode() -> bool {
    std::env::var_os("BERTH_TEST_ROOTLESS").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Skips the calling test in the rootless pass (see [`rootless_mode`]), saying why: for what
/// a rootless berth does not offer, or what the test checks as root on the host.
#[macro_export]
macro_rules! skip_rootless {
    ($why:expr) => {
        if $crate::manager::berth::rootless_mode() {
            eprintln!("skipped in the rootless pass: {}", $why);
            return Ok(());
        }
    };
}

/// A temporary directory for a test's own files; in the rootless pass open to the test user
/// (mode 1777), which writes and reads there.
pub fn test_dir() -> Result<TempDir> {
    let dir = tempfile::tempdir()?;
    if rootless_mode() {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777))?;
    }
    Ok(dir)
}

/// A `berth` with its own temp store; removed on drop.
pub struct Berth {
    dir: TempDir,
    /// The unprivileged user berth runs as, in the rootless pass. (Declared after `dir`: the
    /// store goes first, then the user and its processes.)
    user: Option<crate::rootless::TestUser>,
}

impl Berth {
    pub fn new() -> Result<Self> {
        let user = rootless_mode()
            .then(crate::rootless::TestUser::create)
            .transpose()?;
        let mut builder = tempfile::Builder::new();
        builder.prefix("berth-test-");
        let dir = match &user {
            Some(u) => builder.tempdir_in(&u.dir)?,
            None => builder.tempdir()?,
        };
        for d in ["root", "config", "docker"] {
            std::fs::create_dir_all(dir.path().join(d))?;
        }
        if let Some(u) = &user {
            for d in ["", "root", "config", "docker"] {
                u.chown(&dir.path().join(d))?;
            }
        }
        Ok(Self { dir, user })
    }

    /// Where container (or image) id `id` lands on the host: itself, or in the rootless pass
    /// the user's own id for 0 and `subuid_first + id - 1` otherwise.
    pub fn host_id(&self, id: u32) -> u32 {
        match &self.user {
            None => id,
            Some(u) if id == 0 => u.uid,
            Some(u) => u.sub_first + id - 1,
        }
    }

    /// The user berth runs as in the rootless pass.
    pub fn user(&self) -> Option<&crate::rootless::TestUser> {
        self.user.as_ref()
    }

    /// The storage root (`--root`).
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// Berth's config dir (`--config-dir`: config.toml, certs.d/).
    pub fn config_dir(&self) -> PathBuf {
        self.dir.path().join("config")
    }

    /// `$DOCKER_CONFIG` (config.json with credentials).
    pub fn docker_config(&self) -> PathBuf {
        self.dir.path().join("docker")
    }

    pub fn cmd(&self, args: &[&str]) -> Result<Command> {
        let mut cmd = Command::new(berth_bin()?);
        if let Some(u) = &self.user {
            use std::os::unix::process::CommandExt;
            cmd.uid(u.uid)
                .gid(u.gid)
                .env("HOME", &u.dir)
                .env("USER", &u.name)
                .env("XDG_RUNTIME_DIR", &u.runtime_dir)
                .env("XDG_DATA_HOME", u.dir.join(".local/share"))
                .env("XDG_CONFIG_HOME", u.dir.join(".config"));
        }
        cmd.arg("--root")
            .arg(self.root())
            .arg("--config-dir")
            .arg(self.config_dir())
            .env("DOCKER_CONFIG", self.docker_config())
            .env_remove("BERTH_ROOT")
            .args(args);
        Ok(cmd)
    }

    pub fn run(&self, args: &[&str]) -> Result<Output> {
        self.cmd(args)?
            .output()
            .with_context(|| format!("running berth {args:?}"))
    }

    /// Runs and expects success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> Result<String> {
        let out = self.run(args)?;
        if !out.status.success() {
            bail!(
                "berth {args:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs and expects failure; returns stderr.
    pub fn fail(&self, args: &[&str]) -> Result<String> {
        let out = self.run(args)?;
        if out.status.success() {
            bail!(
                "berth {args:?} unexpectedly succeeded:\n{}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        Ok(String::from_utf8_lossy(&out.stderr).into_owned())
    }

    /// Blobs in the content store.
    pub fn blobs(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.root().join("blobs/sha256"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| format!("sha256:{}", e.file_name().to_string_lossy()))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Files under ingest/.
    pub fn ingests(&self) -> Vec<PathBuf> {
        super::files_under(&self.root().join("ingest"))
    }

    /// Parsed `images --format json` lines.
    pub fn images(&self) -> Result<Vec<serde_json::Value>> {
        self.ok(&["images", "--format", "json"])?
            .lines()
            .map(|l| serde_json::from_str(l).context("parsing images --format json"))
            .collect()
    }
}
