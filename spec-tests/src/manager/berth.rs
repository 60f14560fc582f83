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

/// A `berth` with its own temp store; removed on drop.
pub struct Berth {
    dir: TempDir,
}

impl Berth {
    pub fn new() -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("berth-test-").tempdir()?;
        for d in ["root", "config", "docker"] {
            std::fs::create_dir_all(dir.path().join(d))?;
        }
        Ok(Self { dir })
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
