//! Three renderers of progress events: [`Terminal`] (one indicatif bar per blob, as
//! `berth pull` shows on a terminal), [`Lines`] (`id: state` lines, for logs, pipes and
//! tests) and [`JsonMessages`] (docker's JSON-message stream, one object per line).

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::progress::{BlobState, Event, JsonMessage, ProgressDetail, ProgressSink};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn status_line(id: &Option<String>, text: &str) -> String {
    match id {
        Some(id) => format!("{id}: {text}"),
        None => text.to_string(),
    }
}

/// Bars on stdout, one per blob; status lines printed between them.
pub struct Terminal {
    multi: MultiProgress,
    bars: Mutex<HashMap<Arc<str>, ProgressBar>>,
}

impl Terminal {
    pub fn stdout() -> Self {
        Self {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stdout()),
            bars: Mutex::new(HashMap::new()),
        }
    }

    fn bar(&self, id: &Arc<str>, total: u64) -> ProgressBar {
        let mut bars = lock(&self.bars);
        if let Some(b) = bars.get(id) {
            return b.clone();
        }
        let bar = self.multi.add(ProgressBar::new(total));
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix}: {msg:<16} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix(id.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        bars.insert(id.clone(), bar.clone());
        bar
    }
}

impl ProgressSink for Terminal {
    fn event(&self, event: &Event) {
        match event {
            // Only sent while no bar is live (before the blobs start or after they all
            // finished), so it goes straight to stdout.
            Event::Status { id, text } => println!("{}", status_line(id, text)),
            Event::Blob { id, total, state } => {
                let bar = self.bar(id, *total);
                if state.is_final() {
                    bar.finish_with_message(state.to_string());
                } else {
                    bar.set_message(state.to_string());
                }
            }
            Event::Bytes { id, current, total } => self.bar(id, *total).set_position(*current),
            Event::Stream(text) => print!("{text}"),
            // A build's steps: rendered by `render::buildkit`, not here.
            Event::Vertex(_) => {}
        }
    }
}

/// `id: state` lines and status lines on a writer; byte counts are not shown.
pub struct Lines {
    out: Mutex<Box<dyn Write + Send>>,
}

impl Lines {
    pub fn new(out: impl Write + Send + 'static) -> Self {
        Self {
            out: Mutex::new(Box::new(out)),
        }
    }

    pub fn stdout() -> Self {
        Self::new(std::io::stdout())
    }

    fn write(&self, text: &str) {
        let mut out = lock(&self.out);
        // A closed pipe must not fail the operation whose progress this is.
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
}

impl ProgressSink for Lines {
    fn event(&self, event: &Event) {
        match event {
            Event::Status { id, text } => self.write(&format!("{}\n", status_line(id, text))),
            Event::Blob { id, state, .. } => self.write(&format!("{id}: {state}\n")),
            Event::Bytes { .. } => {}
            Event::Stream(text) => self.write(text),
            Event::Vertex(_) => {}
        }
    }
}

/// How often one blob's byte count is written at most: a download reports every chunk, a
/// JSON consumer needs a few updates a second.
const JSON_BYTES_EVERY: Duration = Duration::from_millis(100);

/// Per blob: the action its byte counts belong to and when they were last written.
struct BlobJson {
    action: &'static str,
    last: Option<Instant>,
}

/// Docker's JSON messages, one per line (`{"status":"Downloading","id":"…",
/// "progressDetail":{"current":1,"total":2},"progress":"[=>  ] 1B/2B"}`).
pub struct JsonMessages {
    out: Mutex<Box<dyn Write + Send>>,
    blobs: Mutex<HashMap<Arc<str>, BlobJson>>,
}

impl JsonMessages {
    pub fn new(out: impl Write + Send + 'static) -> Self {
        Self {
            out: Mutex::new(Box::new(out)),
            blobs: Mutex::new(HashMap::new()),
        }
    }

    fn write(&self, msg: &JsonMessage) {
        if let Ok(mut line) = serde_json::to_vec(msg) {
            line.push(b'\n');
            let mut out = lock(&self.out);
            let _ = out.write_all(&line);
            let _ = out.flush();
        }
    }

    /// The message for an event, `None` when a byte count comes too soon after the last.
    pub fn message(&self, event: &Event) -> Option<JsonMessage> {
        Some(match event {
            Event::Status { id, text } => JsonMessage {
                status: Some(text.clone()),
                id: id.clone(),
                ..JsonMessage::default()
            },
            Event::Blob { id, state, .. } => {
                let action = match state {
                    BlobState::Pushing | BlobState::Preparing => Some("Pushing"),
                    BlobState::Downloading | BlobState::Waiting => Some("Downloading"),
                    _ => None,
                };
                let mut blobs = lock(&self.blobs);
                let entry = blobs.entry(id.clone()).or_insert(BlobJson {
                    action: "Downloading",
                    last: None,
                });
                if let Some(a) = action {
                    entry.action = a;
                }
                JsonMessage {
                    status: Some(state.to_string()),
                    id: Some(id.to_string()),
                    ..JsonMessage::default()
                }
            }
            Event::Bytes { id, current, total } => {
                let mut blobs = lock(&self.blobs);
                let entry = blobs.entry(id.clone()).or_insert(BlobJson {
                    action: "Downloading",
                    last: None,
                });
                let now = Instant::now();
                let due = current >= total
                    || entry
                        .last
                        .is_none_or(|t| now.duration_since(t) >= JSON_BYTES_EVERY);
                if !due {
                    return None;
                }
                entry.last = Some(now);
                JsonMessage {
                    status: Some(entry.action.to_string()),
                    id: Some(id.to_string()),
                    progress_detail: Some(ProgressDetail {
                        current: *current,
                        total: *total,
                    }),
                    progress: Some(progress_bar(*current, *total)),
                    ..JsonMessage::default()
                }
            }
            Event::Stream(text) => JsonMessage {
                stream: Some(text.clone()),
                ..JsonMessage::default()
            },
            // docker's classic stream carries a build's steps as `stream` text.
            Event::Vertex(_) => return None,
        })
    }
}

impl ProgressSink for JsonMessages {
    fn event(&self, event: &Event) {
        if let Some(msg) = self.message(event) {
            self.write(&msg);
        }
    }
}

/// Docker's textual bar: `[=====>      ] 1.2MB/3.4MB` (50 columns).
pub fn progress_bar(current: u64, total: u64) -> String {
    const WIDTH: u64 = 50;
    let sizes = format!(
        "{}/{}",
        super::human_size(current),
        super::human_size(total)
    );
    if total == 0 {
        return sizes;
    }
    let done = (current.min(total) * WIDTH / total) as usize;
    let mut bar = "=".repeat(done);
    if done < WIDTH as usize {
        bar.push('>');
        bar.push_str(&" ".repeat(WIDTH as usize - done - 1));
    }
    format!("[{bar}] {sizes}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer the test can read back.
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            lock(&self.0).extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Buf {
        fn text(&self) -> String {
            String::from_utf8(lock(&self.0).clone()).unwrap()
        }
    }

    fn id() -> Arc<str> {
        Arc::from("0123456789ab")
    }

    #[test]
    fn lines_show_states_and_status_but_not_bytes() {
        let buf = Buf::default();
        let r = Lines::new(buf.clone());
        r.event(&Event::Status {
            id: Some("latest".into()),
            text: "Pulling from library/busybox".into(),
        });
        r.event(&Event::Blob {
            id: id(),
            total: 5,
            state: BlobState::Waiting,
        });
        r.event(&Event::Bytes {
            id: id(),
            current: 2,
            total: 5,
        });
        r.event(&Event::Blob {
            id: id(),
            total: 5,
            state: BlobState::PullComplete,
        });
        assert_eq!(
            buf.text(),
            "latest: Pulling from library/busybox\n0123456789ab: Waiting\n0123456789ab: Pull complete\n"
        );
    }

    #[test]
    fn json_messages_have_dockers_fields() {
        let buf = Buf::default();
        let r = JsonMessages::new(buf.clone());
        r.event(&Event::Blob {
            id: id(),
            total: 4,
            state: BlobState::Pushing,
        });
        r.event(&Event::Bytes {
            id: id(),
            current: 1,
            total: 4,
        });
        // Too soon after the last count, and not the end: dropped.
        r.event(&Event::Bytes {
            id: id(),
            current: 2,
            total: 4,
        });
        r.event(&Event::Bytes {
            id: id(),
            current: 4,
            total: 4,
        });
        let lines: Vec<serde_json::Value> = buf
            .text()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert_eq!(
            lines[0],
            serde_json::json!({"status": "Pushing", "id": "0123456789ab"})
        );
        assert_eq!(lines[1]["status"], "Pushing");
        assert_eq!(
            lines[1]["progressDetail"],
            serde_json::json!({"current": 1, "total": 4})
        );
        assert!(lines[1]["progress"]
            .as_str()
            .unwrap()
            .starts_with("[============>"));
        assert_eq!(lines[2]["progressDetail"]["current"], 4);
    }

    #[test]
    fn the_textual_bar_is_fifty_columns() {
        let b = progress_bar(1_000_000, 2_000_000);
        assert!(b.starts_with(&format!("[{}>", "=".repeat(25))), "{b}");
        assert!(b.ends_with("] 1MB/2MB"), "{b}");
        assert_eq!(progress_bar(2, 2), format!("[{}] 2B/2B", "=".repeat(50)));
        assert_eq!(progress_bar(0, 0), "0B/0B");
    }
}
