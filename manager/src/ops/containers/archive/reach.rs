//! The checks before a copy (`stat`, where a copy into the container lands) for a path the
//! user cannot reach: a rootless berth whose image owners are shifted into its subordinate
//! ranges asks its user-namespace helper (`rootless::userns`, jobs `cpstat` and `cptarget`),
//! which runs the same lookup where every directory can be searched. The answer travels as
//! JSON and becomes the same typed error the lookup gives as root.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::stat::{stat_in, PathStat};
use super::{target_in, CopyTarget};
use crate::ops::error::{OpsError, Result};

/// What the helper answers.
#[derive(Debug, Serialize, Deserialize)]
enum Answer<T> {
    Found(T),
    NoSuchPath { path: String, message: String },
    NoSuchDirectory { path: String, message: String },
    DestNotDir { path: String },
    DirOverFile { path: String },
    Failed { message: String },
}

impl<T> Answer<T> {
    fn of(r: Result<T>) -> Self {
        match r {
            Ok(t) => Answer::Found(t),
            Err(OpsError::NoSuchPath { path, source }) => Answer::NoSuchPath {
                path,
                message: source.to_string(),
            },
            Err(OpsError::NoSuchDirectory { path, source }) => Answer::NoSuchDirectory {
                path,
                message: source.to_string(),
            },
            Err(OpsError::CopyDestNotDir { path }) => Answer::DestNotDir { path },
            Err(OpsError::CopyDirOverFile { path }) => Answer::DirOverFile { path },
            Err(e) => Answer::Failed {
                message: crate::ops::error::chain(&e),
            },
        }
    }

    fn into_result(self) -> Result<T> {
        let missing = |m: String| std::io::Error::new(std::io::ErrorKind::NotFound, m);
        match self {
            Answer::Found(t) => Ok(t),
            Answer::NoSuchPath { path, message } => Err(OpsError::NoSuchPath {
                path,
                source: missing(message),
            }),
            Answer::NoSuchDirectory { path, message } => Err(OpsError::NoSuchDirectory {
                path,
                source: missing(message),
            }),
            Answer::DestNotDir { path } => Err(OpsError::CopyDestNotDir { path }),
            Answer::DirOverFile { path } => Err(OpsError::CopyDirOverFile { path }),
            Answer::Failed { message } => Err(OpsError::io(
                "looking up the path in the user namespace",
                std::io::Error::other(message),
            )),
        }
    }
}

/// Whether a lookup failed for want of permission where the helper could do it.
pub(super) fn denied(e: &OpsError) -> bool {
    crate::rootless::userns::shifting()
        && matches!(e, OpsError::NoSuchPath { source, .. } | OpsError::NoSuchDirectory { source, .. }
            if source.kind() == std::io::ErrorKind::PermissionDenied)
}

fn ask<T: for<'de> Deserialize<'de>>(answer: std::io::Result<Vec<u8>>) -> Result<T> {
    let what = "looking up the path in the user namespace";
    let bytes = answer.map_err(|e| OpsError::io(what, e))?;
    serde_json::from_slice::<Answer<T>>(&bytes)
        .map_err(|e| OpsError::io(what, e.into()))?
        .into_result()
}

/// [`stat_in`] in the helper.
pub(super) fn stat(rootfs: &Path, path: &str) -> Result<PathStat> {
    ask(crate::rootless::userns::cp_stat(rootfs, path))
}

/// [`target_in`] in the helper.
pub(super) fn target(rootfs: &Path, path: &str, src_is_dir: bool) -> Result<CopyTarget> {
    ask(crate::rootless::userns::cp_target(rootfs, path, src_is_dir))
}

/// The helper's side of [`stat`].
pub(crate) fn stat_answer(rootfs: &Path, path: &str) -> std::io::Result<Vec<u8>> {
    Ok(serde_json::to_vec(&Answer::of(stat_in(rootfs, path)))?)
}

/// The helper's side of [`target`].
pub(crate) fn target_answer(
    rootfs: &Path,
    path: &str,
    src_is_dir: bool,
) -> std::io::Result<Vec<u8>> {
    Ok(serde_json::to_vec(&Answer::of(target_in(
        rootfs, path, src_is_dir,
    )))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_come_back_as_the_same_typed_errors() {
        let back = |r: Result<CopyTarget>| {
            let json = serde_json::to_vec(&Answer::of(r)).unwrap();
            serde_json::from_slice::<Answer<CopyTarget>>(&json)
                .unwrap()
                .into_result()
        };
        let t = CopyTarget {
            dir: "/a/.".into(),
            rename: None,
        };
        assert_eq!(back(Ok(t.clone())).unwrap(), t);
        assert!(matches!(
            back(Err(OpsError::CopyDestNotDir { path: "/x/".into() })),
            Err(OpsError::CopyDestNotDir { path }) if path == "/x/"
        ));
        let missing = back(Err(OpsError::NoSuchDirectory {
            path: "/a/b".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        }));
        assert!(matches!(missing, Err(OpsError::NoSuchDirectory { path, .. }) if path == "/a/b"));
    }
}
