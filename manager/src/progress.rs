//! Progress output: one bar per blob on a terminal (indicatif), plain `id: status` lines
//! otherwise (logs, pipes, tests), nothing with `--quiet`.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use oci_spec::image::Digest;

#[derive(Debug, Clone)]
pub enum Progress {
    Bars(MultiProgress),
    Lines,
    Quiet,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        if quiet {
            Self::Quiet
        } else if std::io::stdout().is_terminal() {
            Self::Bars(MultiProgress::with_draw_target(ProgressDrawTarget::stdout()))
        } else {
            Self::Lines
        }
    }

    /// A status line (`Pulling from ...`, `Digest: ...`). Only printed while no bar is live
    /// (before the blobs start or after they all finished), so it goes straight to stdout.
    pub fn status(&self, msg: &str) {
        match self {
            Self::Bars(_) | Self::Lines => println!("{msg}"),
            Self::Quiet => {}
        }
    }

    /// Progress of one blob, named by its short digest as docker does.
    pub fn blob(&self, digest: &Digest, size: u64) -> BlobProgress {
        let id = short(digest);
        match self {
            Self::Bars(m) => {
                let bar = m.add(ProgressBar::new(size));
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix}: {msg:<16} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                bar.set_prefix(id.clone());
                bar.enable_steady_tick(Duration::from_millis(200));
                BlobProgress {
                    id,
                    bar: Some(bar),
                    lines: false,
                }
            }
            Self::Lines => BlobProgress {
                id,
                bar: None,
                lines: true,
            },
            Self::Quiet => BlobProgress {
                id,
                bar: None,
                lines: false,
            },
        }
    }
}

#[derive(Debug, Clone)]
pub struct BlobProgress {
    id: String,
    bar: Option<ProgressBar>,
    lines: bool,
}

impl BlobProgress {
    pub fn set_position(&self, pos: u64) {
        if let Some(b) = &self.bar {
            b.set_position(pos);
        }
    }

    pub fn inc(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }

    /// A state change: shown as the bar's message or printed as a line.
    pub fn message(&self, msg: &str) {
        if let Some(b) = &self.bar {
            b.set_message(msg.to_string());
        } else if self.lines {
            println!("{}: {msg}", self.id);
        }
    }

    pub fn finish(&self, msg: &str) {
        if let Some(b) = &self.bar {
            b.finish_with_message(msg.to_string());
        } else if self.lines {
            println!("{}: {msg}", self.id);
        }
    }
}

/// The 12-hex-digit short form of a digest.
pub fn short(d: &Digest) -> String {
    d.digest().chars().take(12).collect()
}
