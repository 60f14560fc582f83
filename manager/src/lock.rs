//! Advisory file locks (flock(2)) that let several `berth` processes share one store.
//!
//! Two locks guard the store: `gc.lock` is held shared by every operation that adds blobs
//! (pull, load) from the first blob written until its image record is saved, and exclusive by
//! garbage collection, so a sweep never deletes a blob that a running pull just committed but
//! has not yet recorded. `images.lock` is held exclusive for each read-modify-write of the
//! image records. Locks are released when the file is closed (on drop).

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("opening lock file {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("locking {path}")]
    Lock {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// A held flock; dropping it unlocks.
#[derive(Debug)]
pub struct FileLock {
    _file: File,
}

impl FileLock {
    /// Blocks until the exclusive lock on `path` is held.
    pub fn exclusive(path: &Path) -> Result<Self, LockError> {
        Self::acquire(path, FlockOperation::LockExclusive)
    }

    /// Blocks until a shared lock on `path` is held.
    pub fn shared(path: &Path) -> Result<Self, LockError> {
        Self::acquire(path, FlockOperation::LockShared)
    }

    fn acquire(path: &Path, op: FlockOperation) -> Result<Self, LockError> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|source| LockError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        flock(&file, op).map_err(|e| LockError::Lock {
            path: path.to_path_buf(),
            source: e.into(),
        })?;
        Ok(Self { _file: file })
    }
}

/// Takes the exclusive lock on an open file if nobody holds it; `false` when someone does.
/// The lock lives as long as the file's open file description.
pub fn try_lock_exclusive(file: &File) -> io::Result<bool> {
    match flock(file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Ok(false),
        Err(e) => Err(e.into()),
    }
}
