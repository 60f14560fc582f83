//! Creating the working directory inside the container's root filesystem, as docker does at
//! create time for a WorkingDir or `-w` that the image lacks (else the runtime's chdir fails).
//!
//! The rootfs is untrusted, so every lookup uses openat2(2) RESOLVE_IN_ROOT: a symlinked path
//! component resolves inside the rootfs and a directory is never created outside it.

use std::io;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{mkdirat, openat2, Mode, OFlags, ResolveFlags, CWD};

#[derive(Debug, thiserror::Error)]
pub enum WorkdirError {
    #[error("working directory {path:?} must be absolute")]
    Relative { path: PathBuf },
    #[error("opening root filesystem {rootfs}")]
    OpenRoot {
        rootfs: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("creating working directory {path} in {rootfs}")]
    Create {
        rootfs: PathBuf,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Makes sure `cwd` (absolute, as in the spec's `process.cwd`) exists as a directory inside
/// `rootfs`, creating missing components with mode 0755 owned by the caller (root), as docker.
/// A component that exists but is not a directory is an error.
pub fn create_workdir(rootfs: &Path, cwd: &Path) -> Result<(), WorkdirError> {
    if !cwd.is_absolute() {
        return Err(WorkdirError::Relative {
            path: cwd.to_path_buf(),
        });
    }
    let root = openat2(
        CWD,
        rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::empty(),
    )
    .map_err(|e| WorkdirError::OpenRoot {
        rootfs: rootfs.to_path_buf(),
        source: e.into(),
    })?;
    let create_err = |path: &Path, e: rustix::io::Errno| WorkdirError::Create {
        rootfs: rootfs.to_path_buf(),
        path: path.to_path_buf(),
        source: e.into(),
    };
    let open_dir = |path: &Path| {
        openat2(
            &root,
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        )
    };

    let mut prefix = PathBuf::from("/");
    for component in cwd.components() {
        let Component::Normal(name) = component else {
            // RootDir, and `.`/`..`, which RESOLVE_IN_ROOT clamps at the root anyway.
            if component == Component::ParentDir {
                prefix.pop();
            }
            continue;
        };
        let parent = open_dir(&prefix).map_err(|e| create_err(&prefix, e))?;
        prefix.push(name);
        match open_dir(&prefix) {
            Ok(_) => continue,
            Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(create_err(&prefix, e)),
        }
        match mkdirat(&parent, name, Mode::from_raw_mode(0o755)) {
            // Created by someone else meanwhile: fine if it is a directory, checked next loop.
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(create_err(&prefix, e)),
        }
        open_dir(&prefix).map_err(|e| create_err(&prefix, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    #[test]
    fn creates_missing_components() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir(root.path().join("srv")).unwrap();
        create_workdir(root.path(), Path::new("/srv/app/data")).unwrap();
        assert!(root.path().join("srv/app/data").is_dir());
        // Existing directories are fine.
        create_workdir(root.path(), Path::new("/srv/app")).unwrap();
        create_workdir(root.path(), Path::new("/")).unwrap();
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let outside = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        // An absolute symlink to a host directory resolves inside the rootfs, where its target
        // does not exist: an error, and nothing is created on the host.
        symlink(outside.path(), root.path().join("escape")).unwrap();
        assert!(create_workdir(root.path(), Path::new("/escape/made")).is_err());
        assert!(!outside.path().join("made").exists());
        // An absolute symlink to a directory of the rootfs is followed there.
        fs::create_dir(root.path().join("srv")).unwrap();
        symlink("/srv", root.path().join("link")).unwrap();
        create_workdir(root.path(), Path::new("/link/made")).unwrap();
        assert!(root.path().join("srv/made").is_dir());
        // `..` cannot climb out either.
        create_workdir(root.path(), Path::new("/../../../made-up")).unwrap();
        assert!(root.path().join("made-up").is_dir());
    }

    #[test]
    fn a_file_in_the_way_is_an_error() {
        let root = tempfile::tempdir().unwrap();
        fs::write(root.path().join("file"), "").unwrap();
        let err = create_workdir(root.path(), Path::new("/file/sub")).unwrap_err();
        assert!(matches!(err, WorkdirError::Create { .. }), "{err}");
        assert!(matches!(
            create_workdir(root.path(), Path::new("rel")),
            Err(WorkdirError::Relative { .. })
        ));
    }
}
