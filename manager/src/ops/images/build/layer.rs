//! Layers of a build: a tar stream (hashed into its diff ID while written) gzip-compressed
//! into the content store; the snapshots a RUN step or a lookup needs, unpacked from the
//! stored layers when missing; read-only views of a state's tree; and the layer of a RUN
//! step, from its overlay upper directory (on the copy snapshotter: `copy_layer`).

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use oci_spec::image::Digest;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::build::context::{Entry, EntryKind};
use crate::build::BuildError;
use crate::content::Ingest;
use crate::image::ImageStore;
use crate::ops::error::{OpsError, Result};
use crate::snapshot::{chain_id, mount_all, unmount, Kind, Snapshotter};
use crate::unpack::unpack_layer_from;

/// One layer of a build state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    pub digest: Digest,
    pub size: u64,
    pub diff_id: Digest,
    pub media_type: String,
}

/// The diffID of a layer without entries (a tar of only its end-of-archive blocks).
const EMPTY_TAR_DIFF_ID: &str =
    "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";

impl Layer {
    /// A step that changed nothing: docker's builder records it as an empty layer (history
    /// `empty_layer`, no diffID).
    pub fn is_empty(&self) -> bool {
        self.diff_id.as_ref() == EMPTY_TAR_DIFF_ID
    }
}

fn io_err(what: &str) -> impl Fn(io::Error) -> OpsError + '_ {
    move |e| OpsError::from(BuildError::io(what.to_string(), e))
}

/// Hashes the uncompressed tar and gzips it into an ingest; with a tee, the uncompressed
/// bytes also go to a snapshot being unpacked at the same time.
struct LayerWriter {
    hasher: Sha256,
    gz: flate2::write::GzEncoder<IngestWrite>,
    tee: Option<std::io::PipeWriter>,
}

struct IngestWrite(Ingest);

impl Write for IngestWrite {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .write(buf)
            .map_err(|e| io::Error::other(e.to_string()))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for LayerWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.gz.write(buf)?;
        self.hasher.update(&buf[..n]);
        if let Some(t) = &mut self.tee {
            if t.write_all(&buf[..n]).is_err() {
                // The unpacker gave up: the layer is still written, its snapshot is made
                // later from the blob.
                self.tee = None;
            }
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.gz.flush()
    }
}

/// A layer being written as a tar stream.
pub struct LayerBuilder {
    tar: tar::Builder<LayerWriter>,
}

impl LayerBuilder {
    pub fn new(store: &ImageStore) -> Result<Self> {
        Self::with_tee(store, None)
    }

    /// A layer whose uncompressed stream is also written to `tee`.
    pub fn with_tee(store: &ImageStore, tee: Option<std::io::PipeWriter>) -> Result<Self> {
        let ingest = store.content().ingest_unknown()?;
        let gz = flate2::write::GzEncoder::new(IngestWrite(ingest), flate2::Compression::fast());
        let mut tar = tar::Builder::new(LayerWriter {
            hasher: Sha256::new(),
            gz,
            tee,
        });
        tar.mode(tar::HeaderMode::Complete);
        tar.follow_symlinks(false);
        Ok(Self { tar })
    }

    fn header(mode: u32, uid: u32, gid: u32, mtime: u64, kind: tar::EntryType) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode & 0o7777);
        h.set_uid(uid as u64);
        h.set_gid(gid as u64);
        h.set_mtime(mtime);
        h.set_size(0);
        h
    }

    fn name(path: &str, dir: bool) -> String {
        let p = path.trim_start_matches('/');
        if dir {
            format!("{p}/")
        } else {
            p.to_string()
        }
    }

    /// Adds one entry of a copy.
    pub fn entry(&mut self, e: &Entry) -> Result<()> {
        let what = format!("writing layer entry {}", e.dest);
        match &e.kind {
            EntryKind::Dir => {
                let mut h = Self::header(e.mode, e.uid, e.gid, e.mtime, tar::EntryType::Directory);
                self.tar
                    .append_data(&mut h, Self::name(&e.dest, true), io::empty())
                    .map_err(io_err(&what))?;
            }
            EntryKind::Fifo => {
                let mut h = Self::header(e.mode, e.uid, e.gid, e.mtime, tar::EntryType::Fifo);
                self.tar
                    .append_data(&mut h, Self::name(&e.dest, false), io::empty())
                    .map_err(io_err(&what))?;
            }
            EntryKind::Symlink { target } => {
                let mut h = Self::header(e.mode, e.uid, e.gid, e.mtime, tar::EntryType::Symlink);
                self.tar
                    .append_link(&mut h, Self::name(&e.dest, false), target)
                    .map_err(io_err(&what))?;
            }
            EntryKind::File { size } => {
                let mut h = Self::header(e.mode, e.uid, e.gid, e.mtime, tar::EntryType::Regular);
                h.set_size(*size);
                let name = Self::name(&e.dest, false);
                match (&e.data, &e.source) {
                    (Some(d), _) => self.tar.append_data(&mut h, name, &d[..]),
                    (None, Some(src)) => {
                        let f = fs::File::open(src).map_err(|source| BuildError::Context {
                            path: src.clone(),
                            source,
                        })?;
                        self.tar.append_data(&mut h, name, f)
                    }
                    (None, None) => self.tar.append_data(&mut h, name, io::empty()),
                }
                .map_err(io_err(&what))?;
            }
        }
        Ok(())
    }

    /// Adds a raw entry (a whiteout, a device, a hardlink) with `header` filled in.
    fn raw(
        &mut self,
        mut h: tar::Header,
        name: &str,
        link: Option<&Path>,
        data: impl io::Read,
    ) -> Result<()> {
        let what = format!("writing layer entry {name}");
        match link {
            Some(l) => self.tar.append_link(&mut h, name, l),
            None => self.tar.append_data(&mut h, name, data),
        }
        .map_err(io_err(&what))
    }

    /// Ends the stream and commits the blob.
    pub fn finish(self) -> Result<Layer> {
        let w = self.tar.into_inner().map_err(io_err("finishing layer"))?;
        finish_writer(w)
    }
}

/// A layer of the whole tar stream `write` produces (a RUN step's on the copy snapshotter,
/// written by the user-namespace helper when owners are shifted).
pub fn layer_from_stream(
    store: &ImageStore,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<Layer> {
    let ingest = store.content().ingest_unknown()?;
    let mut w = LayerWriter {
        hasher: Sha256::new(),
        gz: flate2::write::GzEncoder::new(IngestWrite(ingest), flate2::Compression::fast()),
        tee: None,
    };
    write(&mut w).map_err(io_err("writing the step's layer"))?;
    finish_writer(w)
}

/// Hashes, compresses and commits what `w` was given.
fn finish_writer(mut w: LayerWriter) -> Result<Layer> {
    // End of stream for a tee'd unpacker.
    w.tee = None;
    let diff_id = crate::unpack::sha256_digest(&hex::encode(w.hasher.finalize()));
    let ingest = w.gz.finish().map_err(io_err("compressing layer"))?.0;
    let size = ingest.offset();
    let digest = ingest.commit(None)?;
    Ok(Layer {
        digest,
        size,
        diff_id,
        media_type: crate::manifest::OCI_LAYER_GZIP.to_string(),
    })
}

/// The layers recompressed with zstd (`-o type=image,compression=zstd`): each blob after
/// the first `keep` that is not zstd already is decompressed and written again as
/// `tar+zstd`; the diff IDs stay.
pub fn to_zstd(store: &ImageStore, layers: &[Layer], keep: usize) -> Result<Vec<Layer>> {
    use std::io::{BufRead, Read};
    let mut out = Vec::with_capacity(layers.len());
    for (i, l) in layers.iter().enumerate() {
        if i < keep || l.media_type.ends_with("+zstd") {
            out.push(l.clone());
            continue;
        }
        let file = store.content().open_blob(&l.digest)?;
        let mut r = io::BufReader::with_capacity(1 << 20, file);
        let gzip = r
            .fill_buf()
            .map_err(io_err("reading a layer"))?
            .starts_with(&[0x1f, 0x8b]);
        let mut tar: Box<dyn Read> = if gzip {
            Box::new(flate2::read::MultiGzDecoder::new(r))
        } else {
            Box::new(r)
        };
        let ingest = store.content().ingest_unknown()?;
        let mut enc = zstd::stream::write::Encoder::new(IngestWrite(ingest), 3)
            .map_err(io_err("compressing a layer with zstd"))?;
        io::copy(&mut tar, &mut enc).map_err(io_err("compressing a layer with zstd"))?;
        let ingest = enc
            .finish()
            .map_err(io_err("compressing a layer with zstd"))?
            .0;
        let size = ingest.offset();
        let digest = ingest.commit(None)?;
        out.push(Layer {
            digest,
            size,
            diff_id: l.diff_id.clone(),
            media_type: crate::manifest::OCI_LAYER_ZSTD.to_string(),
        });
    }
    Ok(out)
}

/// Makes sure every layer of `layers` has its committed snapshot; returns the top's key.
pub fn ensure_chain(
    store: &ImageStore,
    sn: &dyn Snapshotter,
    layers: &[Layer],
) -> Result<Option<String>> {
    let _adding = store.adding()?;
    let mut parent: Option<Digest> = None;
    for l in layers {
        let chain = chain_id(parent.as_ref(), &l.diff_id);
        match sn.stat(chain.as_ref()) {
            Ok(i) if i.kind == Kind::Committed => {}
            _ => {
                let file = store.content().open_blob(&l.digest)?;
                let reader = io::BufReader::with_capacity(1 << 20, file);
                unpack_layer_from(sn, reader, &l.digest, &l.diff_id, parent.as_ref())?;
            }
        }
        parent = Some(chain);
    }
    Ok(parent.map(|d| d.to_string()))
}

/// A snapshot unpacked from a layer while the layer is written (COPY's layer, then
/// needed by the next RUN), committed under the layer's ChainID once it is complete.
pub struct TeeSnapshot<'a> {
    sn: &'a dyn Snapshotter,
    key: String,
    parent: Option<Digest>,
    worker:
        Option<std::thread::JoinHandle<std::result::Result<Digest, crate::unpack::UnpackError>>>,
}

impl<'a> TeeSnapshot<'a> {
    /// Prepares the snapshot on `parent`; returns it and the writer to give the layer.
    pub fn start(
        sn: &'a dyn Snapshotter,
        parent: Option<&str>,
    ) -> Result<(Self, std::io::PipeWriter)> {
        let key = format!(
            "build-copy-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        sn.prepare(&key, parent)?;
        let mut t = TeeSnapshot {
            sn,
            key,
            parent: parent.and_then(crate::image::parse_digest),
            worker: None,
        };
        let target = sn.apply_target(&t.key)?;
        let (r, w) = std::io::pipe().map_err(io_err("making a pipe"))?;
        t.worker = Some(std::thread::spawn(move || {
            crate::unpack::apply_layer(r, &target).map(|a| a.diff_id)
        }));
        Ok((t, w))
    }

    /// Commits the snapshot when it matches `layer` (else it is dropped: the next step
    /// unpacks the blob).
    pub fn finish(mut self, layer: &Layer) {
        let unpacked = self.worker.take().map(|w| w.join());
        if let Some(Ok(Ok(diff))) = unpacked {
            if diff == layer.diff_id {
                let chain = chain_id(self.parent.as_ref(), &diff);
                if self.sn.commit(chain.as_ref(), &self.key).is_ok() {
                    self.key.clear();
                }
            }
        }
    }
}

impl Drop for TeeSnapshot<'_> {
    fn drop(&mut self) {
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
        if !self.key.is_empty() {
            // Best effort: a leftover is swept by the next build.
            let _ = self.sn.remove(&self.key);
        }
    }
}

/// A read-only tree of a build state, mounted until dropped.
pub struct View<'a> {
    pub dir: PathBuf,
    /// The scratch directory made for the view (its mount point).
    scratch: PathBuf,
    /// A copy of the tree the user owns (see [`View::readable`]), removed on drop.
    copy: Option<PathBuf>,
    key: Option<String>,
    mounted: bool,
    sn: &'a dyn Snapshotter,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh scratch directory under `<root>/build-tmp`.
pub fn scratch_dir(root: &Path, what: &str) -> Result<PathBuf> {
    let dir = root.join("build-tmp").join(format!(
        "{what}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    fs::create_dir_all(&dir).map_err(io_err("creating a build scratch directory"))?;
    Ok(dir)
}

impl<'a> View<'a> {
    pub fn mount(root: &Path, sn: &'a dyn Snapshotter, chain: Option<&str>) -> Result<Self> {
        let dir = scratch_dir(root, "view")?;
        let mut v = View {
            dir: dir.clone(),
            scratch: dir,
            copy: None,
            key: None,
            mounted: false,
            sn,
        };
        if let Some(parent) = chain {
            let key = format!(
                "build-view-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            );
            let mounts = sn.view(&key, parent)?;
            v.key = Some(key);
            match mounts.as_slice() {
                // A copy snapshot's view is its parent's committed tree, which never changes:
                // read in place (a rootless berth could not bind-mount it).
                [m] if m.kind == "bind" => v.dir = m.source.clone(),
                _ => {
                    mount_all(&mounts, &v.dir)?;
                    v.mounted = true;
                }
            }
        }
        Ok(v)
    }
}

impl View<'_> {
    /// For a rootless berth whose image owners are shifted: the view becomes a copy of the
    /// tree that the user owns (made in its user namespace), so that COPY --from reads files
    /// of the container's other users (a 0700 directory of uid 1000, say). COPY --from gives
    /// the files root (or `--chown`) anyway; modes and mtimes are kept. Costs a copy of the
    /// stage's tree per step.
    pub fn readable(mut self, root: &Path) -> Result<Self> {
        if !crate::rootless::userns::shifting() || self.key.is_none() {
            return Ok(self);
        }
        let copy = scratch_dir(root, "from")?;
        self.copy = Some(copy.clone());
        let dst = copy.join("fs");
        crate::rootless::userns::copy_owned(&self.dir, &dst).map_err(io_err(
            "copying the tree of COPY --from in the user namespace",
        ))?;
        self.dir = dst;
        Ok(self)
    }
}

impl Drop for View<'_> {
    fn drop(&mut self) {
        if let Some(c) = &self.copy {
            let _ = crate::rootless::userns::remove_tree(c);
        }
        // Best effort: a leftover view is removed by the next build's sweep of dead pids.
        if self.mounted {
            let _ = unmount(&self.scratch);
        }
        if let Some(k) = &self.key {
            let _ = self.sn.remove(k);
        }
        let _ = fs::remove_dir(&self.scratch);
    }
}

/// Removes views and scratch directories of builds whose process is gone.
pub fn sweep(root: &Path, sn: &dyn Snapshotter) {
    let dead = |pid: &str| {
        pid.parse::<u32>()
            .is_ok_and(|p| !Path::new("/proc").join(p.to_string()).exists())
    };
    if let Ok(all) = sn.list() {
        for i in all {
            let rest = i
                .key
                .strip_prefix("build-view-")
                .or_else(|| i.key.strip_prefix("build-copy-"));
            if let Some(rest) = rest {
                if rest.split('-').next().is_some_and(dead) {
                    let _ = sn.remove(&i.key);
                }
            }
        }
    }
    if let Ok(rd) = fs::read_dir(root.join("build-tmp")) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.split('-').nth(1).is_some_and(dead) {
                let _ = unmount(&e.path());
                let _ = crate::rootless::userns::remove_tree(&e.path());
            }
        }
    }
}

/// Whether `rel` exists in any of `lowers` (topmost first).
fn in_lowers(lowers: &[PathBuf], rel: &str) -> Option<fs::Metadata> {
    lowers
        .iter()
        .find_map(|l| fs::symlink_metadata(l.join(rel)).ok())
}

fn opaque(path: &Path) -> bool {
    let mut buf = [0u8; 4];
    matches!(
        rustix::fs::lgetxattr(path, "trusted.overlay.opaque", &mut buf[..]),
        Ok(1) if buf[0] == b'y'
    )
}

/// One entry of an upper directory, decided but not yet written.
struct Item {
    rel: String,
    md: fs::Metadata,
    whiteout: bool,
    opaque: bool,
}

/// Walks `upper/rel`; returns whether anything under it (itself included) is kept.
/// Entries at `skip` paths that the lower layers do not have were made by the container's
/// setup (mount targets): they go to `junk` instead.
fn walk_upper(
    upper: &Path,
    rel: &str,
    lowers: &[PathBuf],
    skip: &BTreeSet<String>,
    items: &mut Vec<Item>,
    junk: &mut Vec<String>,
) -> Result<bool> {
    let path = upper.join(rel);
    let mut names: Vec<String> = fs::read_dir(&path)
        .map_err(io_err("reading the step's changes"))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    names.sort();
    let mut any = false;
    for n in names {
        let child = if rel.is_empty() {
            n.clone()
        } else {
            format!("{rel}/{n}")
        };
        let p = upper.join(&child);
        let Ok(md) = fs::symlink_metadata(&p) else {
            continue;
        };
        let abs = format!("/{child}");
        let lower = in_lowers(lowers, &child);
        let setup = skip.contains(&abs) && lower.is_none();
        if setup && md.is_file() && md.len() == 0 {
            junk.push(child);
            continue;
        }
        let ft = md.file_type();
        let whiteout = ft.is_char_device() && md.rdev() == 0;
        if md.is_dir() {
            let op = opaque(&p);
            let at = items.len();
            let junk_before = junk.len();
            items.push(Item {
                rel: child.clone(),
                md: md.clone(),
                whiteout: false,
                opaque: op,
            });
            let below = walk_upper(upper, &child, lowers, skip, items, junk)?;
            let same = lower.as_ref().is_some_and(|l| {
                l.is_dir() && l.mode() == md.mode() && l.uid() == md.uid() && l.gid() == md.gid()
            });
            if !below && setup {
                // A mount point the container setup made, with nothing kept below it.
                items.remove(at);
                junk.push(child);
            } else if !below && !op && same && junk.len() > junk_before {
                // A directory copied up only for the container setup's mount points below
                // it. One copied up because the step touched something inside it stays, as
                // docker's overlay2 diff keeps it.
                items.remove(at);
            } else {
                any = true;
            }
        } else {
            items.push(Item {
                rel: child,
                md,
                whiteout,
                opaque: false,
            });
            any = true;
        }
    }
    Ok(any)
}

/// The layer of a RUN step: what its overlay upper directory holds, whiteouts as `.wh.`
/// files; entries the container setup made are removed from `upper` so that the snapshot
/// committed from it matches the layer.
pub fn layer_from_upper(
    store: &ImageStore,
    upper: &Path,
    lowers: &[PathBuf],
    skip: &BTreeSet<String>,
) -> Result<Layer> {
    let mut items = Vec::new();
    let mut junk = Vec::new();
    walk_upper(upper, "", lowers, skip, &mut items, &mut junk)?;
    let mut b = LayerBuilder::new(store)?;
    let mut links: HashMap<(u64, u64), String> = HashMap::new();
    for it in &items {
        let md = &it.md;
        let mode = md.mode();
        let mtime = md.mtime().max(0) as u64;
        let h = |k| LayerBuilder::header(mode, md.uid(), md.gid(), mtime, k);
        if it.whiteout {
            let (dir, base) = match it.rel.rsplit_once('/') {
                Some((d, b)) => (format!("{d}/"), b),
                None => (String::new(), it.rel.as_str()),
            };
            let mut wh = LayerBuilder::header(0o644, 0, 0, mtime, tar::EntryType::Regular);
            wh.set_size(0);
            b.raw(wh, &format!("{dir}.wh.{base}"), None, io::empty())?;
            continue;
        }
        let ft = md.file_type();
        if ft.is_dir() {
            b.raw(
                h(tar::EntryType::Directory),
                &format!("{}/", it.rel),
                None,
                io::empty(),
            )?;
            if it.opaque {
                let mut wh = LayerBuilder::header(0o644, 0, 0, mtime, tar::EntryType::Regular);
                wh.set_size(0);
                b.raw(wh, &format!("{}/.wh..wh..opq", it.rel), None, io::empty())?;
            }
        } else if ft.is_symlink() {
            let target = fs::read_link(upper.join(&it.rel)).map_err(io_err("reading a symlink"))?;
            b.raw(
                h(tar::EntryType::Symlink),
                &it.rel,
                Some(&target),
                io::empty(),
            )?;
        } else if ft.is_file() {
            if md.nlink() > 1 {
                if let Some(first) = links.get(&(md.dev(), md.ino())) {
                    let first = PathBuf::from(first);
                    b.raw(h(tar::EntryType::Link), &it.rel, Some(&first), io::empty())?;
                    continue;
                }
                links.insert((md.dev(), md.ino()), it.rel.clone());
            }
            let mut hd = h(tar::EntryType::Regular);
            hd.set_size(md.len());
            let f =
                fs::File::open(upper.join(&it.rel)).map_err(io_err("reading a changed file"))?;
            b.raw(hd, &it.rel, None, f)?;
        } else {
            let kind = if ft.is_fifo() {
                tar::EntryType::Fifo
            } else if ft.is_char_device() {
                tar::EntryType::Char
            } else if ft.is_block_device() {
                tar::EntryType::Block
            } else {
                continue; // sockets are not archived
            };
            let mut hd = h(kind);
            let rdev = md.rdev();
            let _ = hd.set_device_major(rustix::fs::major(rdev));
            let _ = hd.set_device_minor(rustix::fs::minor(rdev));
            b.raw(hd, &it.rel, None, io::empty())?;
        }
    }
    let layer = b.finish()?;
    for j in &junk {
        let p = upper.join(j);
        let _ = fs::remove_file(&p).or_else(|_| fs::remove_dir(&p));
    }
    Ok(layer)
}
