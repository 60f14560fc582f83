//! Helpers of the build tests: a private dockerd (docker's classic builder, the reference)
//! and a berth root sharing one busybox base image, contexts written from a list of files,
//! and the comparison of two built images: config fields and the flattened file tree
//! (type, mode, owner, size, link target, content), read from `save` archives.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::berth::Berth;
use crate::engines::docker::{Dockerd, IMAGE};
use crate::engines::run_cmd;
use crate::runtime::Outcome;

/// How long one build may take.
pub const BUILD_TIMEOUT: Duration = Duration::from_secs(120);

/// One file of a flattened image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: char,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    pub link: String,
    pub sha: String,
}

/// The config fields the build tests compare.
pub const FIELDS: &[&str] = &[
    "Env",
    "Cmd",
    "Entrypoint",
    "WorkingDir",
    "User",
    "ExposedPorts",
    "Volumes",
    "Labels",
    "Shell",
    "StopSignal",
    "Healthcheck",
    "OnBuild",
];

/// A dockerd (classic builder) and a berth with the same busybox base, `IMAGE`.
pub struct Pair {
    pub docker: Dockerd,
    pub berth: Berth,
    pub dir: tempfile::TempDir,
}

impl Pair {
    pub fn new() -> Result<Self> {
        let docker = Dockerd::start()?;
        let berth = Berth::new()?;
        let dir = super::berth::test_dir()?;
        let tar = dir.path().join("base.tar");
        docker
            .docker(&["save", "-o", &tar.display().to_string(), IMAGE])?
            .ok()?;
        // docker writes it 0600; the rootless pass's berth reads it as its own user.
        std::fs::set_permissions(&tar, std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
        berth.ok(&["load", "-i", &tar.display().to_string()])?;
        Ok(Self { docker, berth, dir })
    }

    /// `docker build` with the classic builder.
    pub fn docker_build(&self, args: &[&str]) -> Result<Outcome> {
        let mut c = self.docker.client();
        c.env("DOCKER_BUILDKIT", "0").arg("build").args(args);
        run_cmd(c, BUILD_TIMEOUT)
    }

    /// berth's build beside docker's classic builder: its classic lines too
    /// (`DOCKER_BUILDKIT=0`: `Step 1/3 : …`, `Successfully built …`, on stdout).
    pub fn berth_build(&self, args: &[&str]) -> Result<Outcome> {
        let mut c = self.berth.cmd(&["build"])?;
        c.env("DOCKER_BUILDKIT", "0").args(args);
        run_cmd(c, BUILD_TIMEOUT)
    }

    /// The compared config fields of `image` as docker has it.
    pub fn docker_config(&self, image: &str) -> Result<Value> {
        let out = self.docker.docker(&["image", "inspect", image])?.ok()?;
        Ok(pick(
            &serde_json::from_str::<Value>(&out.stdout)?[0]["Config"],
        ))
    }

    pub fn berth_config(&self, image: &str) -> Result<Value> {
        let out = self.berth.ok(&["image", "inspect", image])?;
        Ok(pick(&serde_json::from_str::<Value>(&out)?[0]["Config"]))
    }

    pub fn docker_tree(&self, image: &str, name: &str) -> Result<BTreeMap<String, Node>> {
        let tar = self.dir.path().join(format!("{name}-docker.tar"));
        self.docker
            .docker(&["save", "-o", &tar.display().to_string(), image])?
            .ok()?;
        flatten(&tar)
    }

    pub fn berth_tree(&self, image: &str, name: &str) -> Result<BTreeMap<String, Node>> {
        let tar = self.dir.path().join(format!("{name}-berth.tar"));
        self.berth
            .ok(&["save", "-o", &tar.display().to_string(), image])?;
        flatten(&tar)
    }
}

/// The compared fields, empty values (null, "", [], {}) left out.
pub fn pick(config: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for f in FIELDS {
        let v = &config[*f];
        let empty = match v {
            Value::Null => true,
            Value::String(s) => s.is_empty(),
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.is_empty(),
            _ => false,
        };
        if !empty {
            let mut v = v.clone();
            // docker leaves zero durations out of a Healthcheck (omitempty).
            if let Some(h) = v.as_object_mut().filter(|_| *f == "Healthcheck") {
                h.retain(|_, x| x.as_i64() != Some(0));
            }
            out.insert(f.to_string(), v);
        }
    }
    Value::Object(out)
}

/// Writes a context: `(path, content)`; a content starting with `->` makes a symlink.
pub fn write_context(dir: &Path, files: &[(&str, &str)]) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    for (p, content) in files {
        let path = dir.join(p);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        if p.ends_with('/') {
            std::fs::create_dir_all(&path)?;
        } else if let Some(target) = content.strip_prefix("->") {
            std::os::unix::fs::symlink(target, &path)?;
        } else {
            std::fs::write(&path, content)?;
        }
    }
    Ok(())
}

fn layer_reader(bytes: Vec<u8>) -> Result<Box<dyn Read>> {
    Ok(if bytes.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::GzDecoder::new(std::io::Cursor::new(bytes)))
    } else if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::new(std::io::Cursor::new(
            bytes,
        ))?)
    } else {
        Box::new(std::io::Cursor::new(bytes))
    })
}

/// The image config (the JSON blob: `author`, `history` with its `author` and `empty_layer`
/// fields, `config`) of the single image in a docker-archive.
pub fn saved_config(archive: &Path) -> Result<Value> {
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut ar = tar::Archive::new(std::fs::File::open(archive)?);
    for e in ar.entries()? {
        let mut e = e?;
        let name = e.path()?.to_string_lossy().into_owned();
        if name.ends_with(".json") {
            let mut b = Vec::new();
            e.read_to_end(&mut b)?;
            files.insert(name, b);
        }
    }
    let manifest: Value =
        serde_json::from_slice(files.get("manifest.json").context("manifest.json")?)?;
    let config = manifest[0]["Config"].as_str().context("Config")?;
    Ok(serde_json::from_slice(
        files
            .get(config)
            .with_context(|| format!("config {config}"))?,
    )?)
}

/// The flattened file tree of the single image in a docker-archive.
pub fn flatten(archive: &Path) -> Result<BTreeMap<String, Node>> {
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut ar = tar::Archive::new(std::fs::File::open(archive)?);
    for e in ar.entries()? {
        let mut e = e?;
        let name = e.path()?.to_string_lossy().into_owned();
        let mut b = Vec::new();
        e.read_to_end(&mut b)?;
        files.insert(name, b);
    }
    let manifest: Value =
        serde_json::from_slice(files.get("manifest.json").context("manifest.json")?)?;
    let layers: Vec<String> = manifest[0]["Layers"]
        .as_array()
        .context("Layers")?
        .iter()
        .filter_map(|l| l.as_str().map(String::from))
        .collect();
    let mut tree: BTreeMap<String, Node> = BTreeMap::new();
    for l in layers {
        let bytes = files.get(&l).with_context(|| format!("layer {l}"))?.clone();
        let mut ar = tar::Archive::new(layer_reader(bytes)?);
        let mut added: Vec<(String, Node)> = Vec::new();
        for e in ar.entries()? {
            let mut e = e?;
            let path = e.path()?.to_string_lossy().into_owned();
            let path = path
                .trim_start_matches("./")
                .trim_end_matches('/')
                .to_string();
            if path.is_empty() || path == "." {
                continue;
            }
            let (dir, base) = match path.rsplit_once('/') {
                Some((d, b)) => (format!("{d}/"), b.to_string()),
                None => (String::new(), path.clone()),
            };
            if base == ".wh..wh..opq" {
                let prefix = dir.clone();
                tree.retain(|k, _| !k.starts_with(&prefix));
                continue;
            }
            if let Some(gone) = base.strip_prefix(".wh.") {
                let victim = format!("{dir}{gone}");
                tree.retain(|k, _| *k != victim && !k.starts_with(&format!("{victim}/")));
                continue;
            }
            let h = e.header().clone();
            let kind = match h.entry_type() {
                tar::EntryType::Directory => 'd',
                tar::EntryType::Symlink => 'l',
                tar::EntryType::Link => 'h',
                tar::EntryType::Regular | tar::EntryType::Continuous => 'f',
                tar::EntryType::Fifo => 'p',
                tar::EntryType::Char => 'c',
                tar::EntryType::Block => 'b',
                _ => '?',
            };
            let link = e
                .link_name()?
                .map(|l| l.to_string_lossy().into_owned())
                .unwrap_or_default();
            let mut data = Vec::new();
            e.read_to_end(&mut data)?;
            let node = Node {
                kind,
                mode: h.mode()? & 0o7777,
                uid: h.uid()?,
                gid: h.gid()?,
                size: if kind == 'f' { data.len() as u64 } else { 0 },
                link: if kind == 'h' {
                    String::new()
                } else {
                    link.clone()
                },
                sha: if kind == 'f' {
                    hex::encode(Sha256::digest(&data))
                } else {
                    String::new()
                },
            };
            let node = if kind == 'h' {
                let target = link.trim_start_matches('/').to_string();
                match added
                    .iter()
                    .rev()
                    .find(|(p, _)| *p == target)
                    .map(|(_, n)| n.clone())
                    .or_else(|| tree.get(&target).cloned())
                {
                    Some(n) => n,
                    None => bail!("hardlink {path} to missing {target}"),
                }
            } else {
                node
            };
            added.push((path, node));
        }
        for (p, n) in added {
            // A file replacing a directory takes its subtree with it.
            if n.kind != 'd' {
                tree.retain(|k, _| !k.starts_with(&format!("{p}/")));
            }
            tree.insert(p, n);
        }
    }
    Ok(tree)
}

/// Differences between two trees, one line each (empty when equal).
pub fn tree_diff(docker: &BTreeMap<String, Node>, berth: &BTreeMap<String, Node>) -> Vec<String> {
    let mut out = Vec::new();
    for (p, d) in docker {
        match berth.get(p) {
            None => out.push(format!("only in docker: {p} {d:?}")),
            Some(b) => {
                // Directory sizes and the mode bits of symlinks are not meaningful.
                let mut b = b.clone();
                let mut d = d.clone();
                if d.kind == 'l' {
                    b.mode = 0;
                    d.mode = 0;
                }
                if b != d {
                    out.push(format!("{p}: docker {d:?} berth {b:?}"));
                }
            }
        }
    }
    for (p, b) in berth {
        if !docker.contains_key(p) {
            out.push(format!("only in berth: {p} {b:?}"));
        }
    }
    out
}

/// `python3 -m http.server` serving `dir` on 127.0.0.1 (a free port), stopped by its PID
/// when dropped: the remote end of ADD from a URL.
pub struct HttpServer {
    pub port: u16,
    child: std::process::Child,
}

impl HttpServer {
    pub fn start(dir: &Path) -> Result<Self> {
        let port = super::free_port()?;
        let child = std::process::Command::new("python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1"])
            .arg(port.to_string())
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("starting python3 -m http.server")?;
        let server = Self { port, child };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if std::time::Instant::now() > deadline {
                bail!("http.server on port {port} did not start");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(server)
    }

    /// `http://127.0.0.1:<port>/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// buildah (`bud --layers --format docker`, runc) with a private storage root holding the
/// same busybox base: the second oracle of the build corpus. Everything it made is removed
/// and unmounted when dropped.
pub struct Buildah {
    dir: tempfile::TempDir,
}

impl Buildah {
    /// Loads the base from a docker-archive (`Pair`'s `base.tar`).
    pub fn new(base_archive: &Path) -> Result<Self> {
        let b = Self {
            dir: tempfile::Builder::new()
                .prefix("berth-buildah-")
                .tempdir()?,
        };
        let archive = format!("docker-archive:{}", base_archive.display());
        b.ok(&["pull", "-q", &archive])?;
        Ok(b)
    }

    fn cmd(&self, args: &[&str]) -> std::process::Command {
        let mut c = std::process::Command::new("buildah");
        c.arg("--root")
            .arg(self.dir.path().join("root"))
            .arg("--runroot")
            .arg(self.dir.path().join("run"))
            .args(["--storage-driver", "overlay"])
            .args(args);
        c
    }

    fn ok(&self, args: &[&str]) -> Result<String> {
        let o = run_cmd(self.cmd(args), BUILD_TIMEOUT)?;
        if !o.success() {
            bail!("buildah {args:?}: {o}");
        }
        Ok(o.stdout)
    }

    /// `buildah bud` with docker's image format (ONBUILD, HEALTHCHECK, SHELL kept).
    pub fn build(&self, args: &[&str]) -> Result<Outcome> {
        let mut all = vec!["bud", "--layers", "--format", "docker", "--runtime", "runc"];
        all.extend_from_slice(args);
        run_cmd(self.cmd(&all), BUILD_TIMEOUT)
    }

    /// The compared config fields of `image`.
    pub fn config(&self, image: &str) -> Result<Value> {
        let out = self.ok(&["inspect", "--type", "image", image])?;
        let inspect: Value = serde_json::from_str(&out)?;
        let config: Value = serde_json::from_str(inspect["Config"].as_str().unwrap_or("{}"))?;
        Ok(pick(&config["config"]))
    }

    pub fn tree(&self, image: &str, name: &str) -> Result<BTreeMap<String, Node>> {
        let tar = self.dir.path().join(format!("{name}-buildah.tar"));
        let dest = format!("docker-archive:{}:{image}", tar.display());
        self.ok(&["push", "-q", image, &dest])?;
        flatten(&tar)
    }
}

impl Drop for Buildah {
    fn drop(&mut self) {
        for args in [&["rm", "--all"][..], &["rmi", "--all", "--force"][..]] {
            let _ = run_cmd(self.cmd(args), Duration::from_secs(60));
        }
        crate::engines::cleanup::unmount_under(self.dir.path());
    }
}

/// The vertices of `berth build --progress plain` output (stderr, BuildKit's lines): each
/// vertex number with its name (`[2/4] RUN make`) and its last line (`DONE 0.3s`, `CACHED`,
/// `ERROR: …`) if it ended.
pub fn plain_vertices(progress: &str) -> BTreeMap<usize, (String, Option<String>)> {
    let mut out: BTreeMap<usize, (String, Option<String>)> = BTreeMap::new();
    for line in progress.lines() {
        let Some((n, rest)) = line
            .strip_prefix('#')
            .and_then(|l| l.split_once(' '))
            .and_then(|(n, rest)| Some((n.parse::<usize>().ok()?, rest)))
        else {
            continue;
        };
        let entry = out.entry(n).or_insert_with(|| (rest.to_string(), None));
        if rest == "CACHED"
            || rest == "CANCELED"
            || rest.starts_with("DONE ")
            || rest.starts_with("ERROR: ")
        {
            entry.1 = Some(rest.to_string());
        }
    }
    out
}

/// RUN steps that ran (not from the cache) in `--progress plain` output.
pub fn runs_ran(progress: &str) -> usize {
    plain_vertices(progress)
        .values()
        .filter(|(name, end)| {
            name.contains("] RUN ")
                && end
                    .as_deref()
                    .is_some_and(|e| e.starts_with("DONE ") || e.starts_with("ERROR: "))
        })
        .count()
}

/// Steps found in the cache in `--progress plain` output.
pub fn steps_cached(progress: &str) -> usize {
    plain_vertices(progress)
        .values()
        .filter(|(_, end)| end.as_deref() == Some("CACHED"))
        .count()
}

/// The built image's ID from `--progress plain` output (`#9 writing image sha256:… done`).
pub fn written_id(progress: &str) -> Option<String> {
    progress.lines().find_map(|l| {
        let (_, rest) = l.split_once(" writing image ")?;
        Some(rest.strip_suffix(" done")?.to_string())
    })
}
