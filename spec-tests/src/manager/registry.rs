//! A real `docker-registry` (Distribution v2) process on a loopback port, with filesystem
//! storage in a temp dir, optionally TLS, htpasswd basic auth, or token auth.

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tempfile::TempDir;

use super::tls::TlsFiles;
use super::{free_port, run};

pub const USER: &str = "berth";
pub const PASSWORD: &str = "s3cret-pass";

/// How the registry authenticates.
pub enum Auth {
    None,
    /// htpasswd basic auth with USER / PASSWORD.
    Basic,
    /// Bearer tokens from a token server at `realm`, signed by the key of `cert`.
    Token {
        realm: String,
        cert: PathBuf,
    },
}

pub struct RegistryOptions {
    pub tls: bool,
    pub auth: Auth,
}

pub struct Registry {
    dir: TempDir,
    port: u16,
    child: Option<Child>,
    pub tls: Option<TlsFiles>,
}

pub const SERVICE: &str = "berth-test-registry";
pub const ISSUER: &str = "berth-test-issuer";

impl Registry {
    pub fn plain() -> Result<Self> {
        Self::start(RegistryOptions {
            tls: false,
            auth: Auth::None,
        })
    }

    pub fn start(opts: RegistryOptions) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("berth-registry-")
            .tempdir()?;
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage)?;
        let tls = if opts.tls {
            Some(super::tls::generate(dir.path())?)
        } else {
            None
        };
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: 127.0.0.1:@PORT@\n  secret: berth-test-secret\n",
            storage.display()
        );
        if let Some(t) = &tls {
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                t.cert.display(),
                t.key.display()
            ));
        }
        match &opts.auth {
            Auth::None => {}
            Auth::Basic => {
                let htpasswd = dir.path().join("htpasswd");
                let out = run(Command::new("htpasswd").args(["-Bbn", USER, PASSWORD]))?;
                std::fs::write(&htpasswd, out.stdout)?;
                config.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                    htpasswd.display()
                ));
            }
            Auth::Token { realm, cert } => config.push_str(&format!(
                "auth:\n  token:\n    realm: {realm}\n    service: {SERVICE}\n    issuer: {ISSUER}\n    \
                 rootcertbundle: {}\n",
                cert.display()
            )),
        }
        let mut reg = Self {
            dir,
            port: 0,
            child: None,
            tls,
        };
        // A port picked free can be taken before the registry binds it: try a few.
        let mut last = None;
        for _ in 0..3 {
            reg.port = free_port()?;
            let text = config.replace("@PORT@", &reg.port.to_string());
            std::fs::File::create(reg.dir.path().join("config.yml"))?.write_all(text.as_bytes())?;
            match reg.spawn() {
                Ok(()) => return Ok(reg),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("docker-registry did not start")))
    }

    fn spawn(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("registry.log"))?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(self.dir.path().join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting docker-registry")?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                // Someone else may hold the port; ours then exits at once.
                std::thread::sleep(Duration::from_millis(30));
                if let Some(c) = self.child.as_mut() {
                    if let Some(status) = c.try_wait()? {
                        self.child = None;
                        bail!("docker-registry exited at start ({status}): {}", self.log());
                    }
                }
                return Ok(());
            }
            if let Some(c) = self.child.as_mut() {
                if let Some(status) = c.try_wait()? {
                    self.child = None;
                    bail!("docker-registry exited at start ({status}): {}", self.log());
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!(
            "docker-registry did not listen on port {}: {}",
            self.port,
            self.log()
        )
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// `127.0.0.1:<port>`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// The data file of a blob in the registry's filesystem storage.
    pub fn blob_data(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.storage()
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// Kills the process (SIGKILL, as a crash would) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            // Already-dead children make kill fail; wait reaps either way.
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the registry again on the same port and storage.
    pub fn restart(&mut self) -> Result<()> {
        self.kill();
        self.spawn()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill();
    }
}
