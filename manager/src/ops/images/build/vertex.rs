//! The build's steps as BuildKit's vertices ([`VertexChange`]), next to docker's classic
//! lines. The steps speak classic lines (`Step 2/4 : RUN make`, ` ---> Running in …`,
//! ` ---> Using cache`, ` ---> 1a2b3c4d5e6f`); [`Track`] follows them and reports each step
//! as a numbered vertex that starts, logs its process's output, and ends done, cached or
//! failed. Front ends pick which of the two they show.

use std::sync::{Arc, Mutex};

use crate::build::BuildError;
use crate::ops::{OpsError, Progress};
use crate::progress::VertexChange;

/// The numbering of one stage's steps in vertex names: BuildKit's `[name 2/4]`.
#[derive(Debug, Clone, Default)]
pub(super) struct StageName {
    /// The stage's name (its alias, else `stage-N`) when the Dockerfile has several.
    pub label: Option<String>,
    /// Steps of the stage announced so far (FROM is the first).
    pub step: usize,
    /// The stage's FROM and its instructions.
    pub total: usize,
}

impl StageName {
    /// The next step's name (`[builder 2/4] RUN make`); numbers are padded to the width of
    /// the total as BuildKit does (`[ 2/12]`).
    pub fn next(&mut self, instruction: &str) -> String {
        self.step += 1;
        let width = self.total.max(1).to_string().len();
        let label = self
            .label
            .as_deref()
            .map(|l| format!("{l} "))
            .unwrap_or_default();
        format!(
            "[{label}{:>width$}/{}] {instruction}",
            self.step, self.total
        )
    }
}

#[derive(Debug, Default)]
struct Open {
    /// The vertex of the step being built.
    vertex: Option<(usize, Arc<str>)>,
    /// While a RUN step's container runs (its short id): what is said is its output.
    running: Option<String>,
}

/// Follows one builder's classic lines and reports vertices.
#[derive(Debug, Default)]
pub(super) struct Track {
    open: Mutex<Open>,
}

fn is_image_line(text: &str) -> bool {
    text.strip_prefix(" ---> ")
        .and_then(|r| r.strip_suffix('\n'))
        .is_some_and(|id| id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A failed step's message in the vertex: BuildKit's words for a RUN that failed (the
/// build's error keeps the classic builder's, which docker's clients print).
fn message(e: &OpsError) -> String {
    match e {
        OpsError::Build(b) => match &**b {
            BuildError::RunFailed { command, code } => {
                format!("process \"{command}\" did not complete successfully: exit code: {code}")
            }
            b => b.to_string(),
        },
        e => e.to_string(),
    }
}

impl Track {
    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A step starts: the one before it (if still open) is done.
    pub fn start(&self, progress: &Progress, index: usize, name: String) {
        let mut open = self.lock();
        if let Some((i, n)) = open.vertex.take() {
            progress.vertex(i, &n, VertexChange::Done);
        }
        open.running = None;
        let name: Arc<str> = Arc::from(name);
        progress.vertex(index, &name, VertexChange::Started);
        open.vertex = Some((index, name));
    }

    /// A piece of the classic output of the open step.
    pub fn said(&self, progress: &Progress, text: &str) {
        let mut open = self.lock();
        let Some((index, name)) = open.vertex.clone() else {
            return;
        };
        if let Some(id) = &open.running {
            let ended = text
                .strip_prefix("Removing intermediate container ")
                .is_some_and(|r| r.trim_end() == id);
            if ended {
                open.running = None;
            } else {
                progress.vertex(index, &name, VertexChange::Log(text.to_string()));
            }
            return;
        }
        if let Some(id) = text.strip_prefix(" ---> Running in ") {
            open.running = Some(id.trim_end().to_string());
        } else if text == " ---> Using cache\n" {
            open.vertex = None;
            progress.vertex(index, &name, VertexChange::Cached);
        } else if is_image_line(text) {
            open.vertex = None;
            progress.vertex(index, &name, VertexChange::Done);
        } else {
            // ` ---> Resolving …`, ` ---> Checking out …`: what the step is doing.
            let line = text.strip_prefix(" ---> ").unwrap_or(text);
            progress.vertex(index, &name, VertexChange::Log(line.to_string()));
        }
    }

    /// The build failed (or was cancelled) during the open step.
    pub fn failed(&self, progress: &Progress, e: &OpsError) {
        let mut open = self.lock();
        open.running = None;
        if let Some((index, name)) = open.vertex.take() {
            let change = match e {
                OpsError::Cancelled => VertexChange::Canceled,
                e => VertexChange::Error(message(e)),
            };
            progress.vertex(index, &name, change);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::{Event, ProgressSink, VertexEvent};

    #[derive(Default)]
    struct Record(Mutex<Vec<(usize, VertexChange)>>);

    impl ProgressSink for Record {
        fn event(&self, event: &Event) {
            if let Event::Vertex(VertexEvent { index, change, .. }) = event {
                self.0.lock().unwrap().push((*index, change.clone()));
            }
        }
    }

    #[test]
    fn stage_names_number_steps_like_buildkit() {
        let mut one = StageName {
            label: None,
            step: 0,
            total: 3,
        };
        assert_eq!(one.next("FROM busybox"), "[1/3] FROM busybox");
        let mut many = StageName {
            label: Some("builder".into()),
            step: 1,
            total: 12,
        };
        assert_eq!(many.next("RUN make"), "[builder  2/12] RUN make");
    }

    #[test]
    fn classic_lines_become_vertex_changes() {
        let rec = Arc::new(Record::default());
        let p = Progress::new(rec.clone());
        let t = Track::default();
        t.start(&p, 2, "[1/3] FROM busybox".into());
        t.said(&p, " ---> 0123456789ab\n");
        t.start(&p, 3, "[2/3] RUN echo".into());
        t.said(&p, " ---> Running in abcdefabcdef\n");
        // Output that looks like a classic line is output while the container runs.
        t.said(&p, " ---> Using cache\n");
        t.said(&p, "Removing intermediate container abcdefabcdef\n");
        t.said(&p, " ---> 0123456789ab\n");
        t.start(&p, 4, "[3/3] COPY a b".into());
        t.said(&p, " ---> Using cache\n");
        t.said(&p, " ---> 0123456789ab\n");
        t.start(&p, 5, "[stage-1 1/2] RUN false".into());
        t.failed(&p, &OpsError::Cancelled);
        t.start(&p, 6, "[stage-1 2/2] RUN exit 3".into());
        let failed = BuildError::RunFailed {
            command: "/bin/sh -c exit 3".into(),
            code: 3,
        };
        t.failed(&p, &failed.into());
        let got = rec.0.lock().unwrap().clone();
        assert_eq!(
            got,
            vec![
                (2, VertexChange::Started),
                (2, VertexChange::Done),
                (3, VertexChange::Started),
                (3, VertexChange::Log(" ---> Using cache\n".into())),
                (3, VertexChange::Done),
                (4, VertexChange::Started),
                (4, VertexChange::Cached),
                (5, VertexChange::Started),
                (5, VertexChange::Canceled),
                (6, VertexChange::Started),
                (
                    6,
                    VertexChange::Error(
                        "process \"/bin/sh -c exit 3\" did not complete successfully: \
                         exit code: 3"
                            .into()
                    )
                ),
            ]
        );
    }
}
