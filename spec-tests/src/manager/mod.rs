//! Harness for the black-box tests of `berth` (the manager): real `docker-registry`
//! processes on loopback ports (plain, TLS + htpasswd, bearer tokens from a token server run
//! here), test images built from busybox-static, and a runner for the `berth` binary with a
//! private storage root. Everything started is stopped by PID on drop, even when a test fails.

pub mod api;
pub mod berth;
pub mod build;
pub mod compose;
pub mod containers;
pub mod images;
pub mod network;
pub mod proxy;
pub mod registry;
pub mod tls;
pub mod token;
pub mod unpack;

use std::path::Path;
use std::process::{Command, Output};

use anyhow::{bail, Context, Result};

/// Runs a command to completion; fails with its stderr when it exits non-zero.
pub fn run(cmd: &mut Command) -> Result<Output> {
    let out = cmd
        .output()
        .with_context(|| format!("running {:?}", cmd.get_program()))?;
    if !out.status.success() {
        bail!(
            "{:?} {:?} failed ({}):\n{}{}",
            cmd.get_program(),
            cmd.get_args().collect::<Vec<_>>(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}

/// `skopeo` with TLS verification off for loopback registries over plain HTTP.
pub fn skopeo(args: &[&str]) -> Result<Output> {
    run(Command::new("skopeo").args(args))
}

/// `skopeo inspect --raw` of a registry image: the exact manifest bytes.
pub fn skopeo_raw_manifest(image: &str, extra: &[&str]) -> Result<Vec<u8>> {
    let mut args = vec!["inspect", "--raw", "--tls-verify=false"];
    args.extend_from_slice(extra);
    let target = format!("docker://{image}");
    args.push(&target);
    Ok(skopeo(&args)?.stdout)
}

/// The sha256 digest (`sha256:<hex>`) of bytes.
pub fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// Files under `dir`, recursively (for "the store is clean" checks).
pub fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A free loopback TCP port (bound then released; the race with other tests is negligible
/// because the kernel hands out ephemeral ports round-robin).
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}
