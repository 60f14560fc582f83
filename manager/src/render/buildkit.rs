//! BuildKit's two views of a build's progress ([`Event::Vertex`]): [`Plain`], its `--progress
//! plain` lines (`#5 [2/4] RUN make`, `#5 0.123 output`, `#5 DONE 1.2s`), and [`Tty`], its
//! terminal view: a `[+] Building 3.2s (8/8)` header over one line per step with its duration
//! or CACHED, the running step's last output lines folded under it, redrawn in place ten
//! times a second and left on the screen when the build ends. Both are pure state plus a
//! writer: [`Trace::frame`] and [`Plain::apply`] are what the tests check.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::progress::{Event, ProgressSink, VertexChange, VertexEvent};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Output lines kept per vertex (a step that prints without end must not fill memory).
const KEEP_LINES: usize = 10_000;
/// Output without a newline kept before it counts as a line (the same reason).
const MAX_PARTIAL: usize = 64 * 1024;
/// Output lines of a running step shown under it on a terminal (BuildKit's 6).
const FOLDED_LINES: usize = 6;
/// Lines of a failed step's output repeated after a plain build (BuildKit's 10: they were
/// all printed as they came).
const PLAIN_ERROR_LINES: usize = 10;
/// How often the terminal view is redrawn.
const REDRAW_EVERY: Duration = Duration::from_millis(100);

/// One vertex as the views know it.
#[derive(Debug, Clone)]
pub struct Vertex {
    pub index: usize,
    pub name: Arc<str>,
    pub started: Instant,
    pub completed: Option<Instant>,
    pub cached: bool,
    pub error: Option<String>,
    pub canceled: bool,
    /// Complete output lines, each with its time since the vertex started.
    pub logs: VecDeque<(Duration, String)>,
    /// The output's unfinished last line.
    pub partial: String,
    /// Finished sub-tasks (`writing image sha256:…`), with their times.
    pub statuses: Vec<(Instant, String)>,
}

impl Vertex {
    fn new(ev: &VertexEvent, now: Instant) -> Self {
        Self {
            index: ev.index,
            name: ev.name.clone(),
            started: now,
            completed: None,
            cached: false,
            error: None,
            canceled: false,
            logs: VecDeque::new(),
            partial: String::new(),
            statuses: Vec::new(),
        }
    }

    /// Adds output; returns the lines it completed.
    fn log(&mut self, text: &str, now: Instant) -> Vec<(Duration, String)> {
        self.partial.push_str(text);
        let mut done = Vec::new();
        while let Some(n) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=n).collect();
            let line = line.trim_end_matches('\n').to_string();
            done.push((now.duration_since(self.started), line));
        }
        if self.partial.len() > MAX_PARTIAL {
            done.push((
                now.duration_since(self.started),
                std::mem::take(&mut self.partial),
            ));
        }
        for l in &done {
            if self.logs.len() == KEEP_LINES {
                self.logs.pop_front();
            }
            self.logs.push_back(l.clone());
        }
        done
    }

    /// Ends the output: an unfinished last line counts as a line.
    fn end_log(&mut self, now: Instant) -> Option<(Duration, String)> {
        if self.partial.is_empty() {
            return None;
        }
        let line = (
            now.duration_since(self.started),
            std::mem::take(&mut self.partial),
        );
        if self.logs.len() == KEEP_LINES {
            self.logs.pop_front();
        }
        self.logs.push_back(line.clone());
        Some(line)
    }

    fn duration(&self, now: Instant) -> Duration {
        self.completed.unwrap_or(now).duration_since(self.started)
    }
}

/// A log line's time as BuildKit prints it: three decimals under 10 s, two under 100 s.
fn stamp(d: Duration) -> String {
    let s = d.as_secs_f64();
    let prec = if s < 10.0 {
        3
    } else if s < 100.0 {
        2
    } else {
        1
    };
    format!("{s:.prec$}")
}

/// The vertices of a build, in the order they started.
#[derive(Debug, Default)]
pub struct Trace {
    pub vertices: Vec<Vertex>,
    /// Vertices announced and not started yet (counted in the header's total).
    pending: std::collections::BTreeSet<usize>,
    start: Option<Instant>,
}

impl Trace {
    fn position(&self, index: usize) -> Option<usize> {
        self.vertices.iter().rposition(|v| v.index == index)
    }

    /// Applies an event; returns the vertex's position and the output lines the event
    /// completed (nothing for an announced vertex).
    fn apply(
        &mut self,
        ev: &VertexEvent,
        now: Instant,
    ) -> Option<(usize, Vec<(Duration, String)>)> {
        self.start.get_or_insert(now);
        if ev.change == VertexChange::Planned {
            if self.position(ev.index).is_none() {
                self.pending.insert(ev.index);
            }
            return None;
        }
        self.pending.remove(&ev.index);
        let pos = match self.position(ev.index) {
            Some(p) => p,
            None => {
                self.vertices.push(Vertex::new(ev, now));
                self.vertices.len() - 1
            }
        };
        let v = &mut self.vertices[pos];
        let mut lines = Vec::new();
        match &ev.change {
            VertexChange::Started | VertexChange::Planned => {}
            VertexChange::Log(text) => lines = v.log(text, now),
            VertexChange::Status(s) => v.statuses.push((now, s.clone())),
            change => {
                lines.extend(v.end_log(now));
                v.completed = Some(now);
                match change {
                    VertexChange::Cached => v.cached = true,
                    VertexChange::Error(e) => v.error = Some(e.clone()),
                    VertexChange::Canceled => v.canceled = true,
                    _ => {}
                }
            }
        }
        Some((pos, lines))
    }

    /// The terminal screen at `now`, `width` columns wide: the header and one line per
    /// vertex (its sub-tasks and, while it runs, its last output lines under it). Unless
    /// `all` (the final screen), at most `height - 2` lines under the header: the latest.
    pub fn frame(&self, now: Instant, width: usize, height: usize, all: bool) -> Vec<String> {
        let width = width.max(20);
        let done = self
            .vertices
            .iter()
            .filter(|v| v.completed.is_some())
            .count();
        let total = self.vertices.len() + self.pending.len();
        let elapsed = self
            .start
            .map_or(0.0, |s| now.duration_since(s).as_secs_f64());
        let finished = if all && total > 0 && done == total {
            " FINISHED"
        } else {
            ""
        };
        let header = format!("[+] Building {elapsed:.1}s ({done}/{total}){finished}");
        let mut lines = Vec::new();
        for v in &self.vertices {
            let mut name = String::new();
            if v.canceled {
                name.push_str("CANCELED ");
            } else if v.error.is_some() {
                name.push_str("ERROR ");
            }
            if v.cached {
                name.push_str("CACHED ");
            }
            name.push_str(&v.name);
            let mut secs = v.duration(now).as_secs_f64();
            if secs < 0.05 {
                secs = 0.0;
            }
            let line = row(" => ", &name, secs, width);
            let color = if v.canceled {
                Some("\x1b[33m")
            } else if v.error.is_some() {
                Some("\x1b[31m")
            } else if v.completed.is_some() {
                Some("\x1b[34m")
            } else {
                None
            };
            lines.push(match color {
                Some(c) => format!("{c}{line}\x1b[0m"),
                None => line,
            });
            let mut since = v.started;
            for (at, s) in &v.statuses {
                let secs = at.duration_since(since).as_secs_f64();
                since = *at;
                lines.push(format!(
                    "\x1b[34m{}\x1b[0m",
                    row(" => => ", s, if secs < 0.05 { 0.0 } else { secs }, width)
                ));
            }
            if v.completed.is_none() {
                let partial = (!v.partial.is_empty()).then_some(v.partial.as_str());
                let shown: Vec<&str> = v
                    .logs
                    .iter()
                    .map(|(_, l)| l.as_str())
                    .chain(partial)
                    .map(screen_text)
                    .filter(|l| !l.trim().is_empty())
                    .collect();
                for l in &shown[shown.len().saturating_sub(FOLDED_LINES)..] {
                    let l = truncate(&format!(" => => # {l}"), width);
                    lines.push(format!("\x1b[2m{l}\x1b[0m"));
                }
            }
        }
        if !all {
            let limit = height.saturating_sub(2);
            if lines.len() > limit {
                lines.drain(..lines.len() - limit);
            }
        }
        lines.insert(0, truncate(&header, width));
        lines
    }

    /// The output of the failed vertices, in full (`------ > [2/4] RUN make: … ------`),
    /// or only the last `last` lines of each.
    pub fn error_logs(&self, last: Option<usize>) -> String {
        let mut out = String::new();
        for v in self.vertices.iter().filter(|v| v.error.is_some()) {
            out.push_str(&format!("------\n > {}:\n", v.name));
            let skip = last.map_or(0, |n| v.logs.len().saturating_sub(n));
            for (at, l) in v.logs.iter().skip(skip) {
                out.push_str(&format!("{} {l}\n", stamp(*at)));
            }
            out.push_str("------\n");
        }
        out
    }
}

/// A line's text as a terminal row: the part after the last carriage return (a progress
/// bar redrawing itself), tabs as spaces, other control characters dropped.
fn screen_text(line: &str) -> &str {
    line.rsplit('\r').next().unwrap_or(line)
}

/// `text` cut to `width` columns (control characters and escapes out, tabs as spaces).
pub fn truncate(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut escape = false;
    for c in text.chars() {
        if escape {
            // An ANSI sequence ends with a letter.
            escape = !c.is_ascii_alphabetic();
            continue;
        }
        match c {
            '\x1b' => escape = true,
            '\t' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
        if out.chars().count() >= width {
            break;
        }
    }
    out
}

/// `prefix name` with the time right-aligned at `width` (` => [2/4] RUN make   1.2s`); the
/// name is cut to fit.
fn row(prefix: &str, name: &str, secs: f64, width: usize) -> String {
    let timer = format!(" {secs:3.1}s");
    let room = width.saturating_sub(prefix.len() + timer.len() + 1);
    let name = truncate(name, room);
    let pad = room.saturating_sub(name.chars().count());
    format!("{prefix}{name}{}{timer}", " ".repeat(pad))
}

/// BuildKit's plain lines, printed as the events come.
#[derive(Debug, Default)]
pub struct Plain {
    trace: Trace,
    /// The vertex whose lines were printed last.
    current: Option<usize>,
    printed: bool,
}

impl Plain {
    /// The text for one event.
    pub fn apply(&mut self, ev: &VertexEvent, now: Instant) -> String {
        let Some((pos, lines)) = self.trace.apply(ev, now) else {
            return String::new();
        };
        let mut out = String::new();
        if self.current != Some(ev.index) {
            if let Some(cur) = self.current.and_then(|i| self.trace.position(i)) {
                if self.trace.vertices[cur].completed.is_none() {
                    out.push_str(&format!("#{} ...\n", self.trace.vertices[cur].index));
                }
            }
            if self.printed {
                out.push('\n');
            }
            self.printed = true;
            out.push_str(&format!("#{} {}\n", ev.index, ev.name));
            self.current = Some(ev.index);
        }
        let v = &self.trace.vertices[pos];
        let i = v.index;
        for (at, l) in &lines {
            out.push_str(&format!("#{i} {} {l}\n", stamp(*at)));
        }
        match &ev.change {
            VertexChange::Started | VertexChange::Planned | VertexChange::Log(_) => {}
            VertexChange::Status(s) => out.push_str(&format!("#{i} {s} done\n")),
            change => {
                out.push_str(&match change {
                    VertexChange::Cached => format!("#{i} CACHED\n"),
                    VertexChange::Error(e) => format!("#{i} ERROR: {e}\n"),
                    VertexChange::Canceled => format!("#{i} CANCELED\n"),
                    _ => format!("#{i} DONE {:.1}s\n", v.duration(now).as_secs_f64()),
                });
                self.current = None;
            }
        }
        out
    }

    pub fn trace(&self) -> &Trace {
        &self.trace
    }
}

/// `--progress plain`: BuildKit's lines on a writer (stderr).
pub struct PlainSink {
    state: Mutex<Plain>,
    out: Mutex<Box<dyn Write + Send>>,
}

impl PlainSink {
    pub fn new(out: impl Write + Send + 'static) -> Self {
        Self {
            state: Mutex::new(Plain::default()),
            out: Mutex::new(Box::new(out)),
        }
    }

    /// The failed steps' last output lines, as BuildKit repeats them after a failure.
    pub fn error_logs(&self) -> String {
        lock(&self.state).trace.error_logs(Some(PLAIN_ERROR_LINES))
    }
}

impl ProgressSink for PlainSink {
    fn event(&self, event: &Event) {
        let Event::Vertex(ev) = event else { return };
        let text = lock(&self.state).apply(ev, Instant::now());
        let mut out = lock(&self.out);
        // A closed pipe must not fail the build whose progress this is.
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
}

struct TtyState {
    trace: Trace,
    /// Lines of the last frame (the cursor is below them).
    drawn: usize,
}

/// The terminal view on stderr, redrawn by its own thread until [`Tty::finish`].
pub struct Tty {
    state: Arc<Mutex<TtyState>>,
    stop: Arc<AtomicBool>,
    ticker: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// The terminal's size (columns, rows); BuildKit's 80 × 10 when it cannot be read.
fn term_size() -> (usize, usize) {
    match rustix::termios::tcgetwinsize(std::io::stderr()) {
        Ok(ws) if ws.ws_col > 0 && ws.ws_row > 0 => (ws.ws_col.into(), ws.ws_row.into()),
        _ => (80, 10),
    }
}

fn draw(st: &mut TtyState, all: bool) {
    let (width, height) = term_size();
    let lines = st.trace.frame(Instant::now(), width, height, all);
    let mut text = String::from("\x1b[?25l");
    if st.drawn > 0 {
        text.push_str(&format!("\x1b[{}A\r", st.drawn));
    }
    for l in &lines {
        text.push_str(l);
        text.push_str("\x1b[K\n");
    }
    // Whatever the last frame had below this one goes.
    text.push_str("\x1b[J\x1b[?25h");
    st.drawn = lines.len();
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
}

impl Tty {
    /// Starts the view: nothing is drawn before the first vertex.
    pub fn start() -> Arc<Self> {
        let state = Arc::new(Mutex::new(TtyState {
            trace: Trace::default(),
            drawn: 0,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = {
            let (state, stop) = (state.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(REDRAW_EVERY);
                    let mut st = lock(&state);
                    if !st.trace.vertices.is_empty() && !stop.load(Ordering::Relaxed) {
                        draw(&mut st, false);
                    }
                }
            })
        };
        Arc::new(Self {
            state,
            stop,
            ticker: Mutex::new(Some(ticker)),
        })
    }

    /// Stops redrawing and leaves the final screen (every line), followed by the failed
    /// steps' output in full.
    pub fn finish(&self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = lock(&self.ticker).take() {
            let _ = t.join();
        }
        let mut st = lock(&self.state);
        if st.trace.vertices.is_empty() {
            return;
        }
        draw(&mut st, true);
        let logs = st.trace.error_logs(None);
        let _ = std::io::stderr().write_all(logs.as_bytes());
    }
}

impl ProgressSink for Tty {
    fn event(&self, event: &Event) {
        if let Event::Vertex(ev) = event {
            let _ = lock(&self.state).trace.apply(ev, Instant::now());
        }
    }
}

#[cfg(test)]
mod tests;
