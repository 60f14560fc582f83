//! Progress of long operations (pull, push; build output later) as typed events sent to a
//! sink the caller chooses. Nothing here prints: the terminal bars, plain lines and docker's
//! JSON-message stream are renderers in [`crate::render::progress`], and an API service can
//! forward the events as they come.
//!
//! The events follow docker's JSON messages (`{"status","id","progressDetail","progress"}`):
//! a [`Event::Status`] line about the whole operation, a [`Event::Blob`] state change of one
//! blob (its short digest is the id), and [`Event::Bytes`] as a blob's transfer advances.
//!
//! A build also reports [`Event::Vertex`]: BuildKit's model of progress, where each step is a
//! numbered vertex that starts, logs output, and ends done, cached or failed. Its renderers
//! (BuildKit's `plain` lines and terminal view) are in [`crate::render::buildkit`]; sinks
//! that only know docker's classic stream ignore these events.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use oci_spec::image::Digest;

/// What a blob transfer is doing, with docker's wording as its display form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobState {
    Waiting,
    Preparing,
    Downloading,
    Pushing,
    /// A transfer failed and is tried again after a pause.
    Retrying {
        after_ms: u128,
        error: String,
    },
    /// The registry answered a range request with the whole blob.
    RangeIgnored,
    /// An interrupted download goes on from this byte.
    Resuming {
        offset: u64,
    },
    VerifyingChecksum,
    AlreadyExists,
    PullComplete,
    LayerAlreadyExists,
    MountedFrom {
        repository: String,
    },
    Pushed,
}

impl BlobState {
    /// Whether the blob is done (its bar is finished with this message).
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Self::AlreadyExists
                | Self::PullComplete
                | Self::LayerAlreadyExists
                | Self::MountedFrom { .. }
                | Self::Pushed
        )
    }
}

impl fmt::Display for BlobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Waiting => f.write_str("Waiting"),
            Self::Preparing => f.write_str("Preparing"),
            Self::Downloading => f.write_str("Downloading"),
            Self::Pushing => f.write_str("Pushing"),
            Self::Retrying { after_ms, error } => {
                write!(f, "Retrying in {after_ms} ms after error: {error}")
            }
            Self::RangeIgnored => f.write_str("Registry ignored the range; restarting"),
            Self::Resuming { offset } => write!(f, "Resuming download at byte {offset}"),
            Self::VerifyingChecksum => f.write_str("Verifying Checksum"),
            Self::AlreadyExists => f.write_str("Already exists"),
            Self::PullComplete => f.write_str("Pull complete"),
            Self::LayerAlreadyExists => f.write_str("Layer already exists"),
            Self::MountedFrom { repository } => write!(f, "Mounted from {repository}"),
            Self::Pushed => f.write_str("Pushed"),
        }
    }
}

/// One progress event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A line about the whole operation; with an id docker shows `id: text`
    /// (`latest: Pulling from library/busybox`).
    Status { id: Option<String>, text: String },
    /// A blob's state changed; `total` is its size in bytes.
    Blob {
        id: Arc<str>,
        total: u64,
        state: BlobState,
    },
    /// A blob's transfer reached `current` of `total` bytes.
    Bytes {
        id: Arc<str>,
        current: u64,
        total: u64,
    },
    /// Output of a step (a build's RUN), passed through as it comes.
    Stream(String),
    /// A build step's progress, BuildKit's way.
    Vertex(VertexEvent),
}

/// One change of a build vertex (a step, or the build's own work such as exporting).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VertexEvent {
    /// The vertex's number (`#5`), unique in the build; the first event of a number
    /// starts the vertex.
    pub index: usize,
    /// What the vertex does (`[2/4] RUN make`, `exporting to image`).
    pub name: Arc<str>,
    pub change: VertexChange,
}

/// What happened to a vertex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VertexChange {
    /// The vertex will run (BuildKit knows its whole graph first: the header's total).
    Planned,
    Started,
    /// Output of the step's process, as it comes (not split into lines).
    Log(String),
    /// A sub-task of the vertex finished (`writing image sha256:...`).
    Status(String),
    /// Found in the cache: the vertex ends without running.
    Cached,
    Done,
    /// The vertex failed with this message.
    Error(String),
    /// The build was cancelled while the vertex ran.
    Canceled,
}

impl VertexChange {
    /// Whether the vertex is over after this change.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Self::Cached | Self::Done | Self::Error(_) | Self::Canceled
        )
    }
}

/// Where events go. Implementations must be cheap per call: a download sends one
/// [`Event::Bytes`] per chunk it receives.
pub trait ProgressSink: Send + Sync {
    fn event(&self, event: &Event);
}

/// A sink that drops everything (`--quiet`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Discard;

impl ProgressSink for Discard {
    fn event(&self, _: &Event) {}
}

/// A sink that forwards every event into a channel, for a consumer on another thread or
/// task (an API response body). Events are dropped once the receiver is gone.
#[derive(Debug, Clone)]
pub struct ChannelSink(pub tokio::sync::mpsc::UnboundedSender<Event>);

impl ProgressSink for ChannelSink {
    fn event(&self, event: &Event) {
        let _ = self.0.send(event.clone());
    }
}

/// The handle operations report through: a shared sink.
#[derive(Clone)]
pub struct Progress {
    sink: Arc<dyn ProgressSink>,
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Progress")
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::discard()
    }
}

impl Progress {
    pub fn new(sink: Arc<dyn ProgressSink>) -> Self {
        Self { sink }
    }

    /// Progress nobody watches.
    pub fn discard() -> Self {
        Self::new(Arc::new(Discard))
    }

    /// A status line about the whole operation.
    pub fn status(&self, text: &str) {
        self.sink.event(&Event::Status {
            id: None,
            text: text.to_string(),
        });
    }

    /// A status line about one item (`id: text`).
    pub fn status_of(&self, id: &str, text: &str) {
        self.sink.event(&Event::Status {
            id: Some(id.to_string()),
            text: text.to_string(),
        });
    }

    /// Output of a step, passed through.
    pub fn stream(&self, text: &str) {
        self.sink.event(&Event::Stream(text.to_string()));
    }

    /// A change of a build vertex.
    pub fn vertex(&self, index: usize, name: &Arc<str>, change: VertexChange) {
        self.sink.event(&Event::Vertex(VertexEvent {
            index,
            name: name.clone(),
            change,
        }));
    }

    /// Progress of one blob, named by its short digest as docker does.
    pub fn blob(&self, digest: &Digest, size: u64) -> BlobProgress {
        BlobProgress {
            sink: self.sink.clone(),
            id: Arc::from(short(digest)),
            total: size,
            position: Arc::new(AtomicU64::new(0)),
        }
    }
}

/// Progress of one blob's transfer.
#[derive(Clone)]
pub struct BlobProgress {
    sink: Arc<dyn ProgressSink>,
    id: Arc<str>,
    total: u64,
    position: Arc<AtomicU64>,
}

impl fmt::Debug for BlobProgress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobProgress({})", self.id)
    }
}

impl BlobProgress {
    pub fn set_position(&self, pos: u64) {
        self.position.store(pos, Ordering::Relaxed);
        self.bytes(pos);
    }

    pub fn inc(&self, n: u64) {
        let pos = self.position.fetch_add(n, Ordering::Relaxed) + n;
        self.bytes(pos);
    }

    fn bytes(&self, current: u64) {
        self.sink.event(&Event::Bytes {
            id: self.id.clone(),
            current,
            total: self.total,
        });
    }

    /// A state change (a final state finishes the blob).
    pub fn state(&self, state: BlobState) {
        self.sink.event(&Event::Blob {
            id: self.id.clone(),
            total: self.total,
            state,
        });
    }
}

/// Docker's JSON message, the wire form of progress (`docker pull` over the API, `--progress
/// json` style consumers): one object per event.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JsonMessage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(
        rename = "progressDetail",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub progress_detail: Option<ProgressDetail>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(
        rename = "errorDetail",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub error_detail: Option<ErrorDetail>,
}

/// `progressDetail`: bytes done of the total.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProgressDetail {
    pub current: u64,
    pub total: u64,
}

/// `errorDetail` of a failed stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ErrorDetail {
    pub message: String,
}

impl JsonMessage {
    /// The last message of a stream whose operation failed.
    pub fn error(message: &str) -> Self {
        Self {
            error: Some(message.to_string()),
            error_detail: Some(ErrorDetail {
                message: message.to_string(),
            }),
            ..Self::default()
        }
    }
}

/// The 12-hex-digit short form of a digest.
pub fn short(d: &Digest) -> String {
    d.digest().chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Record(Mutex<Vec<Event>>);

    impl ProgressSink for Record {
        fn event(&self, event: &Event) {
            self.0.lock().unwrap().push(event.clone());
        }
    }

    #[test]
    fn blob_handles_send_absolute_positions_and_states() {
        let rec = Arc::new(Record::default());
        let p = Progress::new(rec.clone());
        let digest: Digest = format!("sha256:{}", "ab".repeat(32)).parse().unwrap();
        let b = p.blob(&digest, 10);
        b.state(BlobState::Downloading);
        b.set_position(3);
        b.inc(4);
        b.state(BlobState::PullComplete);
        let events = rec.0.lock().unwrap().clone();
        let id: Arc<str> = Arc::from("abababababab");
        assert_eq!(
            events,
            vec![
                Event::Blob {
                    id: id.clone(),
                    total: 10,
                    state: BlobState::Downloading
                },
                Event::Bytes {
                    id: id.clone(),
                    current: 3,
                    total: 10
                },
                Event::Bytes {
                    id: id.clone(),
                    current: 7,
                    total: 10
                },
                Event::Blob {
                    id,
                    total: 10,
                    state: BlobState::PullComplete
                },
            ]
        );
    }

    #[test]
    fn states_read_like_docker() {
        assert_eq!(
            BlobState::Retrying {
                after_ms: 200,
                error: "reset".into()
            }
            .to_string(),
            "Retrying in 200 ms after error: reset"
        );
        assert_eq!(
            BlobState::MountedFrom {
                repository: "a/b".into()
            }
            .to_string(),
            "Mounted from a/b"
        );
        assert!(BlobState::Pushed.is_final());
        assert!(!BlobState::Downloading.is_final());
    }
}
