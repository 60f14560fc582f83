//! Bridges for an async front end (the API service): a synchronous operation on tokio's
//! blocking pool, and a blocking stream (logs, attach output) as a channel it can await.

use tokio::sync::mpsc;

use super::error::{OpsError, Result};

/// Runs a synchronous operation on the blocking thread pool.
pub async fn run<T, F>(op: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(op)
        .await
        .map_err(|source| OpsError::Task {
            what: "a blocking operation",
            source,
        })?
}

/// Drains a blocking iterator on its own thread into a channel of `capacity` items. The
/// thread stops at the end of the iterator or as soon as the receiver is dropped (after at
/// most one more item); cancel the operation's token too for a follower that may wait long
/// for its next item.
pub fn stream<I>(iter: I, capacity: usize) -> mpsc::Receiver<I::Item>
where
    I: Iterator + Send + 'static,
    I::Item: Send + 'static,
{
    let (tx, rx) = mpsc::channel(capacity.max(1));
    std::thread::spawn(move || {
        for item in iter {
            if tx.blocking_send(item).is_err() {
                break;
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocking_work_and_streams_reach_async_code() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            assert_eq!(run(|| Ok(6 * 7)).await.unwrap(), 42);
            let e = run(|| -> Result<()> { Err(OpsError::Cancelled) })
                .await
                .unwrap_err();
            assert!(matches!(e, OpsError::Cancelled));
            let mut rx = stream(0..5, 2);
            let mut got = Vec::new();
            while let Some(i) = rx.recv().await {
                got.push(i);
            }
            assert_eq!(got, [0, 1, 2, 3, 4]);
            // A dropped receiver stops the producer instead of blocking it forever.
            let rx = stream(0.., 1);
            drop(rx);
        });
    }
}
