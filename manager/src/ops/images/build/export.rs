//! `berth build -o type=local,dest=DIR`: the built image's files copied out (the flattened
//! tree: regular files, directories, symlinks as links, modes; owners when run as root).

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;

use super::layer::{ensure_chain, View};
use crate::build::BuildError;
use crate::ops::error::Result;
use crate::ops::Engine;
use crate::snapshot::Backend;

/// Copies the tree of image `what` into `dest` (made when missing).
pub fn export_local(engine: &Engine, what: &str, dest: &Path) -> Result<()> {
    let store = engine.images()?;
    let rec = store.lookup(what)?.remove(0);
    let info = store.image(&rec)?;
    let bytes = store.content().read_metadata(info.id())?;
    let config: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| BuildError::io("parsing the image config", std::io::Error::other(e)))?;
    let diff_ids: Vec<String> = config["rootfs"]["diff_ids"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let layers: Vec<super::layer::Layer> = info
        .manifest
        .layers()
        .iter()
        .zip(diff_ids)
        .filter_map(|(l, d)| {
            Some(super::layer::Layer {
                digest: l.digest().clone(),
                size: l.size(),
                diff_id: crate::image::parse_digest(&d)?,
                media_type: l.media_type().to_string(),
            })
        })
        .collect();
    let sn = Backend::detect().open(engine.root())?;
    let chain = ensure_chain(store, &*sn, &layers)?;
    let view = View::mount(engine.root(), &*sn, chain.as_deref())?;
    fs::create_dir_all(dest)
        .map_err(|e| BuildError::io(format!("creating {}", dest.display()), e))?;
    copy_tree(&view.dir, dest)
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    let err = |p: &Path| {
        let p = p.to_path_buf();
        move |e| BuildError::io(format!("exporting {}", p.display()), e)
    };
    let root = rustix::process::geteuid().is_root();
    for entry in fs::read_dir(from).map_err(err(from))? {
        let entry = entry.map_err(err(from))?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        let md = fs::symlink_metadata(&src).map_err(err(&src))?;
        let ft = md.file_type();
        if ft.is_symlink() {
            let target = fs::read_link(&src).map_err(err(&src))?;
            let _ = fs::remove_file(&dst);
            symlink(&target, &dst).map_err(err(&dst))?;
        } else if ft.is_dir() {
            fs::create_dir_all(&dst).map_err(err(&dst))?;
            copy_tree(&src, &dst)?;
            fs::set_permissions(&dst, fs::Permissions::from_mode(md.mode() & 0o7777))
                .map_err(err(&dst))?;
        } else if ft.is_file() {
            fs::copy(&src, &dst).map_err(err(&dst))?;
            fs::set_permissions(&dst, fs::Permissions::from_mode(md.mode() & 0o7777))
                .map_err(err(&dst))?;
        } else {
            continue;
        }
        if root {
            let _ = std::os::unix::fs::lchown(&dst, Some(md.uid()), Some(md.gid()));
        }
    }
    Ok(())
}
