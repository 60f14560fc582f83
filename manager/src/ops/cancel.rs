//! Cancellation of long operations (pull, push, logs `--follow`, attach, wait): the caller
//! keeps a [`Cancel`] token and cancels it when its client goes away or the user
//! interrupts; the operation stops at its next check, undoes what it must and returns
//! [`super::OpsError::Cancelled`]. Synchronous operations poll the token; async ones also
//! await it.

pub use tokio_util::sync::CancellationToken as Cancel;

use super::error::{OpsError, Result};

/// `Err(Cancelled)` once the token is cancelled.
pub fn check(cancel: &Cancel) -> Result<()> {
    if cancel.is_cancelled() {
        return Err(OpsError::Cancelled);
    }
    Ok(())
}

/// Runs `fut` until it finishes or the token is cancelled (the future is dropped then,
/// which aborts the tasks it owns).
pub async fn until_cancelled<T>(
    cancel: &Cancel,
    fut: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    tokio::select! {
        r = fut => r,
        _ = cancel.cancelled() => Err(OpsError::Cancelled),
    }
}
