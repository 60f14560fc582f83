//! The steps that make layers: RUN (a container through the same path as `berth run`, its
//! overlay upper directory becomes the layer; on the copy snapshotter, what its tree changed
//! against the parent's) and COPY/ADD (entries from the context or
//! another stage written as a tar).

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::copy_layer::write_step_layer;
use super::layer::{
    ensure_chain, layer_from_stream, layer_from_upper, Layer, LayerBuilder, TeeSnapshot, View,
};
use super::state::State;
use super::Builder;
use crate::build::context::{clean_abs, follow_in_root, Context, Entry, EntryKind, Source};
use crate::build::BuildError;
use crate::container::lifecycle::{self, Paths};
use crate::ops::containers::{self, CreateOptions, Output, RemoveOptions, RunMode, Running};
use crate::ops::error::{OpsError, Result};
use crate::ops::models::{ContainerConfig, ContainerCreateRequest, HostConfig};
use crate::snapshot::{chain_id, is_mount_point, unmount, SnapshotError};
use crate::unpack::Whiteouts;

/// Mount targets of a build container that its layer must not show when the image did not
/// have them (the runtime makes them).
const SETUP_PATHS: &[&str] = &[
    "/etc",
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/hostname",
    "/proc",
    "/sys",
    "/dev",
    "/dev/pts",
    "/dev/shm",
    "/dev/mqueue",
    "/sys/fs/cgroup",
];

/// Removes a build container however the step ends.
struct ContainerGuard<'a> {
    b: &'a Builder<'a>,
    id: String,
}

impl Drop for ContainerGuard<'_> {
    fn drop(&mut self) {
        let _ = containers::remove(
            self.b.engine,
            &self.id,
            RemoveOptions {
                force: true,
                volumes: true,
            },
        );
    }
}

impl Builder<'_> {
    /// Runs `cmd` on `state`; returns the layer of what it changed.
    pub(super) fn run_step(
        &self,
        state: &State,
        cmd: Vec<String>,
        extra_env: Vec<String>,
        created_by: &str,
        network: Option<&str>,
        mounts: (Vec<crate::ops::models::Mount>, Vec<String>),
    ) -> Result<Layer> {
        let (mounts, targets) = mounts;
        let chain = ensure_chain(self.store, &*self.sn, &state.layers)?;
        // A chain that started FROM scratch runs on its snapshot alone (no image); with no
        // layer at all there is nothing to run, as docker finds.
        let anchor = match (&state.anchor, &chain) {
            (Some(a), _) => a.clone(),
            (None, Some(_)) => String::new(),
            (None, None) => {
                return Err(self.step_err(format!(
                    "exec: {:?}: stat {}: no such file or directory",
                    cmd.first().map_or("", String::as_str),
                    cmd.first().map_or("", String::as_str),
                )))
            }
        };
        let mut env = state.env();
        env.extend(extra_env);
        let user = state.string("User");
        let workdir = state.string("WorkingDir");
        let workdir = if workdir.is_empty() {
            workdir
        } else {
            clean_abs(&workdir)
        };
        let volumes = state
            .config
            .get("config")
            .and_then(|c| c.get("Volumes"))
            .and_then(|v| v.as_object())
            .map(|m| m.keys().map(|k| (k.clone(), Default::default())).collect())
            .unwrap_or_default();
        let req = ContainerCreateRequest {
            config: ContainerConfig {
                image: anchor,
                env,
                cmd: Some(cmd),
                entrypoint: Some(Vec::new()),
                user: if user.is_empty() { "0".into() } else { user },
                working_dir: if workdir.is_empty() {
                    "/".into()
                } else {
                    workdir
                },
                volumes,
                ..ContainerConfig::default()
            },
            host_config: HostConfig {
                network_mode: network
                    .or(self.req.network.as_deref())
                    .filter(|n| *n != "default")
                    .unwrap_or("")
                    .to_string(),
                runtime: self.req.runtime.clone().unwrap_or_default(),
                mounts,
                ..HostConfig::default()
            },
            ..ContainerCreateRequest::default()
        };
        let opts = CreateOptions {
            name: None,
            snapshotter: Some(self.sn.name().to_string()),
            parent_snapshot: chain.clone(),
        };
        let running =
            containers::run(self.engine, &req, &opts, RunMode::Attached { stdin: false })?;
        let Running::Attached { mut attached, .. } = running else {
            return Err(BuildError::Step {
                file: self.file.clone(),
                line: self.line,
                message: "the build container did not attach".into(),
            }
            .into());
        };
        let guard = ContainerGuard {
            b: self,
            id: attached.id().to_string(),
        };
        let id = guard.id.clone();
        self.say(&format!(" ---> Running in {}\n", &id[..12]));
        // A cancelled build kills the step's container; its exit then ends the stream.
        let done = Arc::new(AtomicBool::new(false));
        let watcher = {
            let (cancel, engine, id, done) = (
                self.cancel.clone(),
                self.engine.clone(),
                id.clone(),
                done.clone(),
            );
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    if cancel.is_cancelled() {
                        let _ = containers::kill(&engine, &id, "KILL");
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
        };
        let streamed = loop {
            match attached.next_output() {
                Ok(Output::Stdout(d) | Output::Stderr(d)) => self.say(&String::from_utf8_lossy(&d)),
                Ok(Output::Exit(code)) => break Ok(code),
                Err(e) => break Err(e),
            }
        };
        done.store(true, Ordering::Relaxed);
        let _ = watcher.join();
        drop(attached);
        crate::ops::cancel::check(self.cancel)?;
        let code = streamed?;
        if code != 0 {
            drop(guard);
            return Err(BuildError::RunFailed {
                command: created_by.to_string(),
                code,
            }
            .into());
        }
        let cstore = self.engine.containers()?;
        let _ = lifecycle::wait_exit(&cstore, &id, Some(Duration::from_secs(30)));
        let record = cstore.load(&id)?;
        let paths = Paths::new(self.engine.root(), &cstore, &record);
        if is_mount_point(&paths.rootfs) {
            unmount(&paths.rootfs)?;
        }
        let target = self.sn.apply_target(&id)?;
        let mut skip: BTreeSet<String> = SETUP_PATHS.iter().map(|s| s.to_string()).collect();
        // A VOLUME's content goes to the volume; its mount point stays, as with docker.
        // Mount targets and the directories made to hold them.
        for t in targets {
            let mut p = t.as_str();
            while !p.is_empty() && p != "/" {
                skip.insert(p.to_string());
                p = p.rsplit_once('/').map_or("", |(a, _)| a);
            }
        }
        let layer = match target.whiteouts {
            Whiteouts::Overlay => layer_from_upper(self.store, &target.dir, &target.lowers, &skip)?,
            // The copy snapshotter: the tree against its parent's, in the user's namespace
            // when owners are shifted (the layer carries the container's ids).
            Whiteouts::Delete => {
                let lower = target.lowers.first().map(PathBuf::as_path);
                layer_from_stream(self.store, |out| {
                    if crate::rootless::userns::shifting() {
                        crate::rootless::userns::step_layer(&target.dir, lower, &skip, out)
                    } else {
                        write_step_layer(&target.dir, lower, &skip, out)
                    }
                })?
            }
        };
        let parent = chain.and_then(|c| crate::image::parse_digest(&c));
        let name = chain_id(parent.as_ref(), &layer.diff_id);
        // A step that changed nothing adds no layer (see State::commit): its snapshot goes
        // with the container.
        if !layer.is_empty() {
            match self.sn.commit(name.as_ref(), &id) {
                Ok(()) | Err(SnapshotError::AlreadyExists { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        drop(guard);
        self.say(&format!("Removing intermediate container {}\n", &id[..12]));
        Ok(layer)
    }

    /// The context a COPY reads: the build context, or the tree of a stage or image
    /// (`--from`), mounted for as long as the returned view lives.
    pub(super) fn copy_source(&self, from: Option<&State>) -> Result<(Context, Option<View<'_>>)> {
        match from {
            None => Ok((self.ctx.clone(), None)),
            Some(s) => {
                let chain = ensure_chain(self.store, &*self.sn, &s.layers)?;
                let view = View::mount(self.engine.root(), &*self.sn, chain.as_deref())?
                    .readable(self.engine.root())?;
                // A rootless berth's readable copy is the user's: owners are not the image's.
                let keep = !crate::rootless::userns::shifting();
                let ctx = Context::image(view.dir.clone(), keep);
                Ok((ctx, Some(view)))
            }
        }
    }

    /// The layer of a COPY/ADD: `job.sources` (context paths) into `job.dest` on top of
    /// `state`. With `--link` the parent's tree is never looked at (BuildKit makes the
    /// layer on an empty tree): a destination is a directory only when written with a
    /// trailing slash or when there are several sources, and every parent directory of
    /// what is copied is in the layer.
    pub(super) fn copy_step(&self, state: &State, job: &CopyJob<'_>) -> Result<Layer> {
        let CopyJob {
            ctx,
            sources,
            inline,
            trees,
            dest,
            chown,
            chmod,
            add,
            link,
        } = *job;
        let chain = ensure_chain(self.store, &*self.sn, &state.layers)?;
        // `--link` reads the parent only to look up `--chown` names (see `link_owner`).
        let view = if link {
            None
        } else {
            Some(View::mount(
                self.engine.root(),
                &*self.sn,
                chain.as_deref(),
            )?)
        };
        let root = view.as_ref().map(|v| v.dir.clone());
        // The destination with the image's symlinks on it followed (docker's builder
        // writes through them).
        let slash = if dest.ends_with('/') || dest.ends_with("/.") {
            "/"
        } else {
            ""
        };
        let dest = match &root {
            Some(r) => format!("{}{slash}", follow_in_root(r, dest)),
            None => dest.to_string(),
        };
        let dest = dest.as_str();
        let exists_dir = |p: &str| root.as_ref().is_some_and(|r| is_dir_in_root(r, p));
        let count = sources.len() + inline.len();
        let dest_dir = dest.ends_with('/') || dest.ends_with("/.") || exists_dir(dest) || count > 1;
        if count > 1 && !dest.ends_with('/') && !exists_dir(dest) {
            return Err(self.step_err(format!(
                "When using {} with more than one source file, the destination must be a directory and end with a /",
                if add { "ADD" } else { "COPY" }
            )));
        }
        let dest = clean_abs(dest);
        let (uid, gid) = match (chown, &root) {
            (None, _) => (0, 0),
            (Some(spec), Some(root)) => self.owner(root, spec)?,
            (Some(spec), None) => numeric_owner(spec).ok_or_else(|| {
                self.step_err(format!("--chown={spec}: a --link copy takes resolved ids"))
            })?,
        };
        let mut entries: Vec<Entry> = Vec::new();
        // An extracted archive keeps its own owners and modes: docker's builder applies
        // --chown to copied files only.
        let mut extracted: Vec<Entry> = Vec::new();
        for Source {
            path: src,
            name: base,
        } in sources
        {
            let md = std::fs::symlink_metadata(ctx.dir.join(src.trim_start_matches('/'))).map_err(
                |source| BuildError::Context {
                    path: ctx.dir.join(src.trim_start_matches('/')),
                    source,
                },
            )?;
            if md.is_dir() {
                // A directory's contents go into `dest`; docker's builder leaves an existing
                // `dest` as it is and makes a missing one 0755 (owned as --chown says).
                let existing = exists_dir(&dest);
                for mut e in ctx.entries(src, &dest)? {
                    if e.dest == dest {
                        if existing {
                            continue;
                        }
                        e.mode = 0o755;
                        e.mtime = now_secs();
                    }
                    entries.push(e);
                }
            } else if add && md.is_file() && is_archive(&ctx.dir.join(src.trim_start_matches('/')))
            {
                extracted.extend(archive_entries(
                    &ctx.dir.join(src.trim_start_matches('/')),
                    &dest,
                )?);
            } else {
                let target = if dest_dir {
                    format!("{dest}/{base}")
                } else {
                    dest.clone()
                };
                entries.extend(ctx.entries(src, &clean_abs(&target))?);
            }
        }
        entries.extend(trees.iter().cloned());
        for e in inline {
            let target = if !dest_dir {
                dest.clone()
            } else if e.dest.is_empty() {
                return Err(self.step_err(format!(
                    "cannot determine filename for source {}",
                    e.source
                        .as_deref()
                        .map_or(String::new(), |p| p.display().to_string())
                )));
            } else {
                format!("{dest}/{}", e.dest)
            };
            entries.push(Entry {
                dest: clean_abs(&target),
                ..e.clone()
            });
        }
        for e in &mut entries {
            if chown.is_some() {
                e.uid = uid;
                e.gid = gid;
                // chown(2) clears a file's setuid bit, and its setgid bit when the group
                // may execute it: docker's builder chowns after writing the mode.
                if matches!(e.kind, EntryKind::File { .. }) {
                    e.mode &= !0o4000;
                    if e.mode & 0o010 != 0 {
                        e.mode &= !0o2000;
                    }
                }
            }
            if let Some(m) = chmod {
                if !matches!(e.kind, EntryKind::Symlink { .. }) {
                    e.mode = m;
                }
            }
        }
        let copied = entries.len();
        entries.extend(extracted);
        // A file of the image in the way of a directory the copy needs fails the step, as
        // docker's builder (it does not replace the file).
        if let Some(root) = &root {
            let mut checked: std::collections::HashSet<&str> = Default::default();
            for e in &entries {
                let mut p = e.dest.as_str();
                let mut own = matches!(e.kind, EntryKind::Dir);
                loop {
                    if !own {
                        match p.rsplit_once('/') {
                            Some((parent, _)) if !parent.is_empty() => p = parent,
                            _ => break,
                        }
                    }
                    own = false;
                    if !checked.insert(p) {
                        break;
                    }
                    if dir_in_root(root, p) == Some(false) {
                        return Err(self.step_err(format!(
                            "failed to copy files: mkdir {p}: not a directory"
                        )));
                    }
                }
            }
        }
        // Parent directories the image does not have yet: owned as --chown says, but root's
        // when only an extracted archive needs them (as docker's builder makes them).
        let dests: std::collections::HashSet<&str> =
            entries.iter().map(|e| e.dest.as_str()).collect();
        let mut parents: std::collections::BTreeMap<String, (u32, u32)> = Default::default();
        let mut seen: std::collections::HashSet<&str> = Default::default();
        for (i, e) in entries.iter().enumerate() {
            let owner = if i < copied { (uid, gid) } else { (0, 0) };
            let mut p = e.dest.as_str();
            while let Some((parent, _)) = p.rsplit_once('/') {
                if parent.is_empty() || !seen.insert(parent) {
                    break;
                }
                if !dests.contains(parent) && !exists_dir(parent) {
                    parents.insert(parent.to_string(), owner);
                }
                p = parent;
            }
        }
        for (p, (uid, gid)) in parents {
            entries.push(Entry {
                dest: p,
                source: None,
                kind: EntryKind::Dir,
                mode: 0o755,
                uid,
                gid,
                mtime: now_secs(),
                data: None,
            });
        }
        // Of two sources copied to one path the later wins, as docker's builder copies
        // them in order (the sort is stable: reversed first, the first kept is the last).
        entries.reverse();
        entries.sort_by(|a, b| a.dest.cmp(&b.dest));
        entries.dedup_by(|a, b| a.dest == b.dest);
        drop(view);
        let (tee, pipe) = TeeSnapshot::start(&*self.sn, chain.as_deref())?;
        let mut lb = LayerBuilder::with_tee(self.store, Some(pipe))?;
        for e in &entries {
            if e.dest == "/" {
                continue;
            }
            lb.entry(e)?;
        }
        let layer = lb.finish()?;
        tee.finish(&layer);
        Ok(layer)
    }

    /// The numeric owner a `--link` copy's `--chown` names: ids as given, names looked up
    /// in the parent's tree (BuildKit resolves them there too), so that the step's cache
    /// key holds ids and not the parent's layers.
    pub(super) fn link_owner(&self, state: &State, spec: &str) -> Result<String> {
        if let Some((u, g)) = numeric_owner(spec) {
            return Ok(format!("{u}:{g}"));
        }
        let chain = ensure_chain(self.store, &*self.sn, &state.layers)?;
        let view = View::mount(self.engine.root(), &*self.sn, chain.as_deref())?;
        let (u, g) = self.owner(&view.dir, spec)?;
        Ok(format!("{u}:{g}"))
    }

    /// `--chown` (`user[:group]`, names looked up in the image): as docker's builder, a
    /// missing group is the user string again (a number, or a group of that name).
    fn owner(&self, root: &Path, spec: &str) -> Result<(u32, u32)> {
        let (user, group) = match spec.split_once(':') {
            Some((u, g)) => (u, g),
            None => (spec, spec),
        };
        // docker's words for a name that is not there (an empty one included).
        let fail = |what: &str, id: &str, name: &str| {
            self.step_err(format!(
                "unable to convert uid/gid chown string to host mapping: can't find {id} for \
                 {what} {name}: no such {what}: {name}"
            ))
        };
        let uid = match user.parse::<u32>() {
            Ok(n) => n,
            Err(_) if user.is_empty() => return Err(fail("user", "uid", user)),
            Err(_) => {
                crate::specgen::resolve_user(root, user)
                    .map_err(|_| fail("user", "uid", user))?
                    .uid
            }
        };
        let gid = match group.parse::<u32>() {
            Ok(n) => n,
            Err(_) if group.is_empty() => return Err(fail("group", "gid", group)),
            Err(_) => crate::specgen::resolve_groups(root, &[group.to_string()])
                .map_err(|_| fail("group", "gid", group))?
                .first()
                .copied()
                .unwrap_or(0),
        };
        Ok((uid, gid))
    }

    pub(super) fn step_err(&self, message: String) -> OpsError {
        BuildError::Step {
            file: self.file.clone(),
            line: self.line,
            message,
        }
        .into()
    }
}

/// What a COPY/ADD step writes (see [`Builder::copy_step`]).
#[derive(Clone, Copy)]
pub(super) struct CopyJob<'a> {
    /// Where `sources` are read.
    pub ctx: &'a Context,
    /// Context paths.
    pub sources: &'a [Source],
    /// Heredoc bodies and downloads, named by their `dest`.
    pub inline: &'a [Entry],
    /// Entries with their final paths (git checkouts).
    pub trees: &'a [Entry],
    pub dest: &'a str,
    pub chown: Option<&'a str>,
    pub chmod: Option<u32>,
    pub add: bool,
    pub link: bool,
}

/// `uid[:gid]` in numbers (a missing group is the user's number, as docker's builder).
fn numeric_owner(spec: &str) -> Option<(u32, u32)> {
    let (u, g) = spec.split_once(':').unwrap_or((spec, spec));
    Some((u.parse().ok()?, g.parse().ok()?))
}

/// Whether `path` is a directory in the tree at `root`, symlinks resolved inside it
/// (openat2(2) RESOLVE_IN_ROOT: an image's symlinks never lead out to the host).
pub(super) fn is_dir_in_root(root: &Path, path: &str) -> bool {
    dir_in_root(root, path) == Some(true)
}

/// Whether `path` (symlinks followed inside `root`) is a directory; `None` when it is not
/// there.
fn dir_in_root(root: &Path, path: &str) -> Option<bool> {
    use rustix::fs::{openat2, Mode, OFlags, ResolveFlags, CWD};
    let dir = openat2(
        CWD,
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::empty(),
    )
    .ok()?;
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    let fd = openat2(
        &dir,
        rel,
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT,
    )
    .ok()?;
    let st = rustix::fs::fstat(&fd).ok()?;
    Some(rustix::fs::FileType::from_raw_mode(st.st_mode).is_dir())
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Whether ADD extracts `path`: a tar, plain or compressed with gzip or zstd (docker looks
/// at the first header after decompressing; a compressed file that is not a tar is copied).
fn is_archive(path: &Path) -> bool {
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    let Ok(mut r) = decompressed(f) else {
        return false;
    };
    let mut head = [0u8; 512];
    let mut n = 0;
    while n < head.len() {
        match r.read(&mut head[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    if n < 512 {
        return false;
    }
    // The header checksum: the sum of its bytes with the checksum field taken as spaces.
    let stored = std::str::from_utf8(&head[148..156])
        .ok()
        .and_then(|s| u32::from_str_radix(s.trim_matches(|c: char| c == '\0' || c == ' '), 8).ok());
    let sum: u32 = head
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(*b)
            }
        })
        .sum();
    stored == Some(sum)
}

/// The file's bytes, decoded when they start with the magic number of gzip, bzip2, xz or
/// zstd (the compressions docker's ADD extracts).
fn decompressed(f: std::fs::File) -> std::io::Result<Box<dyn Read>> {
    use std::io::BufRead;
    let mut r = std::io::BufReader::new(f);
    let head = r.fill_buf()?;
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(r))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::new(r)?)
    } else if head.starts_with(b"BZh") {
        Box::new(bzip2::read::MultiBzDecoder::new(r))
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        // lzma-rs decodes whole streams: archives given to ADD are read into memory.
        let mut out = Vec::new();
        lzma_rs::xz_decompress(&mut r, &mut out).map_err(std::io::Error::other)?;
        Box::new(std::io::Cursor::new(out))
    } else {
        Box::new(r)
    })
}

/// The entries of a local archive extracted into `dest`; entries that would climb out of
/// it are refused.
fn archive_entries(path: &Path, dest: &str) -> Result<Vec<Entry>> {
    let err = |source| BuildError::Context {
        path: path.to_path_buf(),
        source,
    };
    let reader = decompressed(std::fs::File::open(path).map_err(err)?).map_err(err)?;
    let mut ar = tar::Archive::new(reader);
    let mut out = Vec::new();
    for e in ar.entries().map_err(err)? {
        let mut e = e.map_err(err)?;
        let name = e.path().map_err(err)?.to_string_lossy().into_owned();
        let mut depth: i64 = 0;
        for c in name.split('/') {
            match c {
                "" | "." => {}
                ".." => depth -= 1,
                _ => depth += 1,
            }
            if depth < 0 {
                return Err(BuildError::Escape { entry: name }.into());
            }
        }
        let target = clean_abs(&format!("{dest}/{name}"));
        let h = e.header();
        let mode = h.mode().unwrap_or(0o644);
        let uid = h.uid().unwrap_or(0) as u32;
        let gid = h.gid().unwrap_or(0) as u32;
        let mtime = h.mtime().unwrap_or(0);
        let kind = match h.entry_type() {
            tar::EntryType::Directory => EntryKind::Dir,
            tar::EntryType::Symlink => EntryKind::Symlink {
                target: e
                    .link_name()
                    .map_err(err)?
                    .map(|l| l.into_owned())
                    .unwrap_or_default(),
            },
            tar::EntryType::Regular | tar::EntryType::Continuous => EntryKind::File { size: 0 },
            tar::EntryType::Link => {
                // A hard link to an earlier entry: a file with the same content.
                let to = e.link_name().map_err(err)?.unwrap_or_default();
                let to = clean_abs(&format!("{dest}/{}", to.to_string_lossy()));
                if let Some(first) = out.iter().rev().find(|x: &&Entry| x.dest == to) {
                    let first = first.clone();
                    out.push(Entry {
                        dest: target,
                        ..first
                    });
                }
                continue;
            }
            _ => continue,
        };
        let data = if matches!(kind, EntryKind::File { .. }) {
            let mut d = Vec::new();
            e.read_to_end(&mut d).map_err(err)?;
            Some(d)
        } else {
            None
        };
        let kind = match (&kind, &data) {
            (EntryKind::File { .. }, Some(d)) => EntryKind::File {
                size: d.len() as u64,
            },
            _ => kind,
        };
        out.push(Entry {
            dest: target,
            source: None,
            kind,
            mode,
            uid,
            gid,
            mtime,
            data,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn tar() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o640);
        h.set_size(3);
        b.append_data(&mut h, "d/f.txt", &b"abc"[..]).unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn add_extracts_tars_in_every_common_compression() {
        let dir = tempfile::tempdir().unwrap();
        let plain = tar();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&plain).unwrap();
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        bz.write_all(&plain).unwrap();
        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut &plain[..], &mut xz).unwrap();
        let variants = [
            ("t.tar", plain.clone()),
            ("t.tar.gz", gz.finish().unwrap()),
            ("t.tar.bz2", bz.finish().unwrap()),
            ("t.tar.xz", xz),
            ("t.tar.zst", zstd::encode_all(&plain[..], 3).unwrap()),
        ];
        for (name, bytes) in variants {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            assert!(is_archive(&p), "{name}");
            let e = archive_entries(&p, "/x").unwrap();
            assert_eq!(e.len(), 1, "{name}");
            assert_eq!(e[0].dest, "/x/d/f.txt");
            assert_eq!(e[0].data.as_deref(), Some(&b"abc"[..]));
        }
        let p = dir.path().join("not-a-tar.gz");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"just some text").unwrap();
        std::fs::write(&p, gz.finish().unwrap()).unwrap();
        assert!(
            !is_archive(&p),
            "a compressed file that is not a tar is copied as is"
        );
    }
}
