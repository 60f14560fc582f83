//! A compose project of a test: its files in a temp directory, `berth compose` run there
//! against a private store with the busybox test image, and `down -v` on drop (even when
//! the test fails) so no container, network or volume outlives it.

use std::path::{Path, PathBuf};
use std::process::Output;

use anyhow::{bail, Context, Result};
use tempfile::TempDir;

use super::berth::Berth;
use super::network::{berth_with_busybox, unique_name, unique_subnet};

pub use super::network::BUSYBOX;

pub struct Project {
    pub berth: Berth,
    pub dir: TempDir,
    pub name: String,
}

impl Project {
    /// A project named uniquely after `prefix`, with `compose.yaml` holding `yaml`
    /// (`@IMAGE@` is replaced by the busybox test image). Every store starts its address
    /// pool at the same subnet, and tests run in parallel on one host: each `@SUBNET@` is
    /// replaced by a subnet no other test uses, and a file without top-level `networks:` gets
    /// a default network on one.
    pub fn new(prefix: &str, yaml: &str) -> Result<Self> {
        let berth = berth_with_busybox()?;
        let dir = tempfile::Builder::new().prefix("compose-").tempdir()?;
        let name = unique_name(prefix).replace('-', "_");
        let p = Self { berth, dir, name };
        p.write("compose.yaml", &with_subnets(yaml))?;
        Ok(p)
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    pub fn write(&self, file: &str, text: &str) -> Result<()> {
        let path = self.path(file);
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d)?;
        }
        std::fs::write(&path, text.replace("@IMAGE@", BUSYBOX))
            .with_context(|| format!("writing {}", path.display()))
    }

    /// `berth compose -p NAME ARGS...` in the project's directory.
    pub fn run(&self, args: &[&str]) -> Result<Output> {
        let mut full = vec!["compose", "-p", &self.name];
        full.extend_from_slice(args);
        let mut cmd = self.berth.cmd(&full)?;
        cmd.current_dir(self.dir.path());
        for v in ["COMPOSE_FILE", "COMPOSE_PROJECT_NAME", "COMPOSE_PROFILES"] {
            cmd.env_remove(v);
        }
        let t = std::time::Instant::now();
        let out = cmd
            .output()
            .with_context(|| format!("running berth compose {args:?}"));
        eprintln!("compose {args:?}: {:.2}s", t.elapsed().as_secs_f64());
        out
    }

    /// Expects success; returns stdout and stderr.
    pub fn ok(&self, args: &[&str]) -> Result<(String, String)> {
        let out = self.run(args)?;
        let (o, e) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        if !out.status.success() {
            bail!(
                "berth compose {args:?} failed ({}):\nstdout:\n{o}\nstderr:\n{e}",
                out.status
            );
        }
        Ok((o, e))
    }

    /// Expects failure; returns stderr.
    pub fn fail(&self, args: &[&str]) -> Result<String> {
        let out = self.run(args)?;
        if out.status.success() {
            bail!(
                "berth compose {args:?} unexpectedly succeeded:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stderr).into_owned())
    }

    /// `inspect -f TEMPLATE CONTAINER`, trimmed.
    pub fn inspect(&self, container: &str, template: &str) -> Result<String> {
        Ok(self
            .berth
            .ok(&["inspect", "-f", template, container])?
            .trim()
            .to_string())
    }

    /// Names of every container in the store (`ps -a`), sorted.
    pub fn all_containers(&self) -> Result<Vec<String>> {
        let mut v: Vec<String> = self
            .berth
            .ok(&["ps", "-a", "--format", "{{.Names}}"])?
            .lines()
            .map(str::to_string)
            .collect();
        v.sort();
        Ok(v)
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }
}

/// `yaml` with unique subnets (see [`Project::new`]).
pub fn with_subnets(yaml: &str) -> String {
    let mut out = yaml.to_string();
    while out.contains("@SUBNET@") {
        out = out.replacen("@SUBNET@", &unique_subnet(), 1);
    }
    if !out.lines().any(|l| l.starts_with("networks:")) {
        out.push_str(&format!(
            "\nnetworks:\n  default:\n    ipam:\n      config:\n        - subnet: {}\n",
            unique_subnet()
        ));
    }
    out
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = self.run(&["down", "-v", "-t", "0", "--remove-orphans"]);
    }
}
