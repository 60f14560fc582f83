//! The layer of a RUN step on the copy snapshotter (rootless berth's, or a kernel without
//! overlayfs): the container's tree is a full copy of its parent's, so the layer is what
//! differs between the two (as `commit` finds it), deletions as `.wh.` whiteouts. What the
//! container setup made (mount targets the image did not have) is left out of the layer and
//! removed from the tree, so that the tree committed as the next snapshot is the parent's plus
//! exactly the layer.
//!
//! For a rootless berth whose image owners are shifted into the user's subordinate ranges this
//! runs in the user-namespace helper (`rootless::userns`, job `steplayer`): there every file is
//! readable and the owners read back as the container's ids, which is what the layer must carry
//! (0 for root, never the user's host id).

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// One entry of the tree, decided but not yet written.
struct Item {
    rel: String,
    deleted: bool,
}

fn names(dir: &Path) -> io::Result<Vec<String>> {
    let mut v: Vec<String> = fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<io::Result<_>>()?;
    v.sort();
    Ok(v)
}

/// Whether a non-directory changed: type, mode, owner, size or mtime (a copy keeps mtimes, so
/// a file the step did not touch compares equal).
fn differs(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    a.file_type() != b.file_type()
        || a.mode() != b.mode()
        || a.uid() != b.uid()
        || a.gid() != b.gid()
        || a.size() != b.size()
        || a.mtime() != b.mtime()
        || a.mtime_nsec() != b.mtime_nsec()
}

/// Walks `top/rel` against `lower/rel`; returns whether anything under it (itself included)
/// is kept. Entries at `skip` paths that `lower` lacks are the container setup's: empty files,
/// and directories with nothing kept below, go to `junk`.
fn walk(
    top: &Path,
    lower: Option<&Path>,
    rel: &str,
    skip: &BTreeSet<String>,
    items: &mut Vec<Item>,
    junk: &mut Vec<String>,
) -> io::Result<bool> {
    let join = |base: &Path, n: &str| {
        if rel.is_empty() {
            base.join(n)
        } else {
            base.join(rel).join(n)
        }
    };
    let here = names(&top.join(rel))?;
    let mut any = false;
    for n in &here {
        let child = if rel.is_empty() {
            n.clone()
        } else {
            format!("{rel}/{n}")
        };
        let md = fs::symlink_metadata(join(top, n))?;
        let old = lower.and_then(|l| fs::symlink_metadata(join(l, n)).ok());
        let setup = skip.contains(&format!("/{child}")) && old.is_none();
        if setup && md.is_file() && md.len() == 0 {
            junk.push(child);
            continue;
        }
        if md.is_dir() {
            let at = items.len();
            let junk_before = junk.len();
            items.push(Item {
                rel: child.clone(),
                deleted: false,
            });
            let below_lower = old.as_ref().filter(|o| o.is_dir()).and(lower);
            let below = walk(top, below_lower, &child, skip, items, junk)?;
            let same = old.as_ref().is_some_and(|o| {
                o.is_dir() && o.mode() == md.mode() && o.uid() == md.uid() && o.gid() == md.gid()
            });
            // A directory the step touched (a file made and removed in it: its mtime moved)
            // stays, as docker's overlay2 diff keeps it; one touched only by the container
            // setup's mount points does not.
            let untouched = old
                .as_ref()
                .is_some_and(|o| o.mtime() == md.mtime() && o.mtime_nsec() == md.mtime_nsec())
                || junk.len() > junk_before;
            if !below && setup {
                items.truncate(at);
                junk.push(child);
            } else if !below && same && untouched {
                items.truncate(at);
            } else {
                any = true;
            }
        } else if old.as_ref().is_none_or(|o| differs(&md, o)) {
            items.push(Item {
                rel: child,
                deleted: false,
            });
            any = true;
        }
    }
    if let Some(l) = lower {
        let gone = match names(&l.join(rel)) {
            Ok(v) => v,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        for n in gone.into_iter().filter(|n| here.binary_search(n).is_err()) {
            items.push(Item {
                rel: if rel.is_empty() {
                    n
                } else {
                    format!("{rel}/{n}")
                },
                deleted: true,
            });
            any = true;
        }
    }
    Ok(any)
}

/// Writes the layer tar of copy snapshot `top` against its parent's tree `lower` into `out`
/// (owners as this process sees them), then removes the setup's leftovers at `skip` paths
/// from `top`.
pub(crate) fn write_step_layer(
    top: &Path,
    lower: Option<&Path>,
    skip: &BTreeSet<String>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut items = Vec::new();
    let mut junk = Vec::new();
    walk(top, lower, "", skip, &mut items, &mut junk)?;
    let mut b = tar::Builder::new(out);
    b.mode(tar::HeaderMode::Complete);
    b.follow_symlinks(false);
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    for it in &items {
        let at = |e: io::Error| {
            io::Error::new(e.kind(), format!("adding /{} to the layer: {e}", it.rel))
        };
        if it.deleted {
            let (dir, base) = match it.rel.rsplit_once('/') {
                Some((d, b)) => (format!("{d}/"), b),
                None => (String::new(), it.rel.as_str()),
            };
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_size(0);
            h.set_uid(0);
            h.set_gid(0);
            b.append_data(&mut h, format!("{dir}.wh.{base}"), io::empty())
                .map_err(at)?;
            continue;
        }
        let path = top.join(&it.rel);
        let md = fs::symlink_metadata(&path).map_err(at)?;
        if md.is_file() && md.nlink() > 1 {
            // A hardlink to a file already in this layer is written as a link to it.
            if let Some(first) = links.get(&(md.dev(), md.ino())) {
                let mut h = tar::Header::new_gnu();
                h.set_metadata_in_mode(&md, tar::HeaderMode::Complete);
                h.set_entry_type(tar::EntryType::Link);
                h.set_size(0);
                b.append_link(&mut h, &it.rel, first).map_err(at)?;
                continue;
            }
            links.insert((md.dev(), md.ino()), PathBuf::from(&it.rel));
        }
        b.append_path_with_name(&path, &it.rel).map_err(at)?;
    }
    b.into_inner()?.flush()?;
    // A directory goes to `junk` after what it held.
    for j in &junk {
        let p = top.join(j);
        fs::remove_file(&p).or_else(|_| fs::remove_dir(&p))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn entries(tar: &[u8]) -> Vec<(String, tar::EntryType)> {
        let mut a = tar::Archive::new(tar);
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    e.header().entry_type(),
                )
            })
            .collect()
    }

    #[test]
    fn the_layer_holds_what_the_step_changed_and_not_the_setups_mount_targets() {
        let d = tempfile::tempdir().unwrap();
        let (lower, top) = (d.path().join("lower"), d.path().join("top"));
        for t in [&lower, &top] {
            fs::create_dir_all(t.join("keep")).unwrap();
            fs::create_dir_all(t.join("gone/deep")).unwrap();
            fs::write(t.join("keep/same"), "x").unwrap();
            fs::write(t.join("keep/old"), "x").unwrap();
            fs::create_dir(t.join("modes")).unwrap();
        }
        // Same mtimes for what the step did not touch (a copy keeps them).
        let m = fs::metadata(lower.join("keep/same"))
            .unwrap()
            .modified()
            .unwrap();
        fs::File::options()
            .write(true)
            .open(top.join("keep/same"))
            .unwrap()
            .set_modified(m)
            .unwrap();
        fs::remove_dir_all(top.join("gone")).unwrap();
        fs::remove_file(top.join("keep/old")).unwrap();
        fs::write(top.join("keep/new"), "new").unwrap();
        fs::hard_link(top.join("keep/new"), top.join("keep/link")).unwrap();
        fs::set_permissions(top.join("modes"), fs::Permissions::from_mode(0o700)).unwrap();
        // The setup's: a /proc directory and an /etc holding empty mount targets.
        fs::create_dir(top.join("proc")).unwrap();
        fs::create_dir(top.join("etc")).unwrap();
        fs::write(top.join("etc/hosts"), "").unwrap();
        let skip: BTreeSet<String> = ["/proc", "/etc", "/etc/hosts"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut out = Vec::new();
        write_step_layer(&top, Some(&lower), &skip, &mut out).unwrap();
        let got = entries(&out);
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "keep",
                "keep/link",
                "keep/new",
                "keep/.wh.old",
                "modes",
                ".wh.gone"
            ],
            "{got:?}"
        );
        assert_eq!(
            got[2].1,
            tar::EntryType::Link,
            "the second name is a hardlink"
        );
        assert!(!top.join("proc").exists() && !top.join("etc").exists());
    }
}
