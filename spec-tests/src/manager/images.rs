//! Test images built here from busybox-static: layer tarballs (gzip, zstd, uncompressed), OCI
//! configs and manifests, and multi-platform indexes, written as an OCI image layout that
//! skopeo pushes to the test registries.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::{json, Value};

use super::{sha256, skopeo};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    fn media_type(self) -> &'static str {
        match self {
            Self::None => "application/vnd.oci.image.layer.v1.tar",
            Self::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Self::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }
}

/// A blob written into the layout.
#[derive(Debug, Clone)]
pub struct Blob {
    pub digest: String,
    pub size: u64,
    pub media_type: String,
}

impl Blob {
    pub fn descriptor(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest, "size": self.size})
    }
}

/// A manifest (or index) in the layout with the blobs it references.
#[derive(Debug, Clone)]
pub struct Built {
    pub manifest: Blob,
    pub config: Option<Blob>,
    pub layers: Vec<Blob>,
}

/// An OCI image layout directory under construction.
pub struct Layout {
    dir: PathBuf,
    refs: Vec<Value>,
}

impl Layout {
    pub fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir.join("blobs/sha256"))?;
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)?;
        let layout = Self {
            dir: dir.to_path_buf(),
            refs: Vec::new(),
        };
        layout.write_index()?;
        Ok(layout)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn blob(&self, bytes: &[u8], media_type: &str) -> Result<Blob> {
        let digest = sha256(bytes);
        let path = self
            .dir
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"));
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        Ok(Blob {
            digest,
            size: bytes.len() as u64,
            media_type: media_type.to_string(),
        })
    }

    /// An image for `arch` from uncompressed layer tarballs, each compressed as asked.
    pub fn image(&self, arch: &str, layers: &[(Vec<u8>, Compression)]) -> Result<Built> {
        let mut blobs = Vec::new();
        let mut diff_ids = Vec::new();
        for (tar, c) in layers {
            diff_ids.push(sha256(tar));
            blobs.push(self.blob(&compress(tar, *c)?, c.media_type())?);
        }
        let config = json!({
            "created": "2024-05-01T12:00:00Z",
            "architecture": arch,
            "os": "linux",
            "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created": "2024-05-01T12:00:00Z", "created_by": "berth spec-tests"}],
        });
        let config = self.blob(&serde_json::to_vec(&config)?, OCI_CONFIG)?;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config.descriptor(),
            "layers": blobs.iter().map(Blob::descriptor).collect::<Vec<_>>(),
        });
        let manifest = self.blob(&serde_json::to_vec(&manifest)?, OCI_MANIFEST)?;
        Ok(Built {
            manifest,
            config: Some(config),
            layers: blobs,
        })
    }

    /// An image index over images, each with its platform.
    pub fn index(&self, images: &[(&Built, &str)]) -> Result<Built> {
        let manifests: Vec<Value> = images
            .iter()
            .map(|(b, arch)| {
                let mut d = b.manifest.descriptor();
                d["platform"] = json!({"os": "linux", "architecture": arch});
                d
            })
            .collect();
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
        let manifest = self.blob(&serde_json::to_vec(&index)?, OCI_INDEX)?;
        Ok(Built {
            manifest,
            config: None,
            layers: Vec::new(),
        })
    }

    /// Names a manifest in index.json (`oci:DIR:name` for skopeo).
    pub fn tag(&mut self, name: &str, built: &Built) -> Result<()> {
        let mut d = built.manifest.descriptor();
        d["annotations"] = json!({"org.opencontainers.image.ref.name": name});
        self.refs.push(d);
        self.write_index()
    }

    fn write_index(&self) -> Result<()> {
        let index = json!({"schemaVersion": 2, "manifests": self.refs});
        std::fs::write(self.dir.join("index.json"), serde_json::to_vec(&index)?)?;
        Ok(())
    }

    /// `skopeo copy oci:<layout>:<name> docker://<dest>` (plain HTTP or unverified TLS);
    /// `extra` e.g. `--all`, `--format v2s2`, `--dest-creds u:p`.
    pub fn push(&self, name: &str, dest: &str, extra: &[&str]) -> Result<()> {
        let src = format!("oci:{}:{name}", self.dir.display());
        let dst = format!("docker://{dest}");
        let mut args = vec!["copy", "--quiet", "--dest-tls-verify=false"];
        // skopeo compresses uncompressed layers for registries unless told to keep digests.
        if !extra.contains(&"--format") {
            args.push("--preserve-digests");
        }
        args.extend_from_slice(extra);
        args.push(&src);
        args.push(&dst);
        skopeo(&args).map(drop)
    }
}

pub fn compress(tar: &[u8], c: Compression) -> Result<Vec<u8>> {
    Ok(match c {
        Compression::None => tar.to_vec(),
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(tar)?;
            enc.finish()?
        }
        Compression::Zstd => zstd::encode_all(tar, 3)?,
    })
}

/// A tarball of a tiny busybox rootfs: /bin/busybox, applet symlinks, /etc/passwd, /etc/group.
pub fn busybox_layer() -> Result<Vec<u8>> {
    busybox_layer_of("/bin/busybox")
}

/// Where hack/setup puts Debian's arm64 busybox-static (the foreign-platform test image).
pub const ARM64_BUSYBOX: &str = "/opt/berth-test/busybox-arm64";

/// [`busybox_layer`] with the busybox binary at `path` (another architecture's, e.g.
/// [`ARM64_BUSYBOX`]).
pub fn busybox_layer_of(path: &str) -> Result<Vec<u8>> {
    let busybox = std::fs::read(path)
        .with_context(|| format!("reading {path} (a static busybox; run hack/setup)"))?;
    let mut b = tar::Builder::new(Vec::new());
    for dir in ["bin", "etc", "tmp"] {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        b.append_data(&mut h, dir, &[][..])?;
    }
    file(&mut b, "bin/busybox", &busybox, 0o755)?;
    for applet in ["sh", "ls", "cat", "echo", "true", "sleep"] {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        b.append_link(&mut h, format!("bin/{applet}"), "busybox")?;
    }
    file(
        &mut b,
        "etc/passwd",
        b"root:x:0:0:root:/root:/bin/sh\n",
        0o644,
    )?;
    file(&mut b, "etc/group", b"root:x:0:\n", 0o644)?;
    Ok(b.into_inner()?)
}

/// A tarball with one file of the given contents.
pub fn file_layer(path: &str, contents: &[u8]) -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    file(&mut b, path, contents, 0o644)?;
    Ok(b.into_inner()?)
}

/// `n` bytes that do not compress (xorshift), so a layer's size is what the test needs.
pub fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn file(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8], mode: u32) -> Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(mode);
    h.set_size(data.len() as u64);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    b.append_data(&mut h, path, data)?;
    Ok(())
}

/// The busybox test image in a fresh layout, tagged `name`, layers compressed with `c`, plus
/// a small second layer (so that pulls fetch several layers at once).
pub fn busybox_image(layout: &mut Layout, name: &str, c: Compression) -> Result<Built> {
    let built = layout.image(
        "amd64",
        &[
            (busybox_layer()?, c),
            (
                file_layer("etc/motd", format!("hello from {name}\n").as_bytes())?,
                c,
            ),
        ],
    )?;
    layout.tag(name, &built)?;
    Ok(built)
}
