//! `berth build`'s progress, BuildKit's being the reference: `--progress plain` lines
//! (`#3 [2/3] RUN …`, `#3 0.123 output`, `#3 DONE 0.4s`, `#3 CACHED`, `#3 ERROR: …`) on
//! stderr, `-q` printing only the image ID, and the terminal view drawn on a real
//! pseudo-terminal (its final screen: the `[+] Building … FINISHED` header and one line per
//! step with its time or CACHED).

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use spec_tests::manager::berth::{test_dir, Berth};
use spec_tests::manager::build::BUILD_TIMEOUT;
use spec_tests::manager::network::{berth_with_busybox, BUSYBOX};

fn context(dir: &Path, dockerfile: &str) -> Result<()> {
    std::fs::write(dir.join("Dockerfile"), dockerfile)?;
    std::fs::write(dir.join("a.txt"), "a\n")?;
    Ok(())
}

/// Runs `berth build` with a bounded wait; stdout and stderr apart.
fn build(berth: &Berth, args: &[&str]) -> Result<Output> {
    let mut child = berth
        .cmd(&[&["build"], args].concat())?
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let out = child.stdout.take().context("stdout")?;
    let err = child.stderr.take().context("stderr")?;
    let read = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let (out, err) = (read(Box::new(out)), read(Box::new(err)));
    let status = wait_bounded(&mut child, BUILD_TIMEOUT)?;
    Ok(Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

fn wait_bounded(
    child: &mut std::process::Child,
    limit: Duration,
) -> Result<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait()? {
            return Ok(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("berth build did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The lines of vertex `n` (`#n …`), without the prefix.
fn vertex(text: &str, n: usize) -> Vec<String> {
    let p = format!("#{n} ");
    text.lines()
        .filter_map(|l| l.strip_prefix(&p))
        .map(str::to_string)
        .collect()
}

/// `DONE 1.2s`: a duration with one decimal.
fn is_done(l: &str) -> bool {
    l.strip_prefix("DONE ")
        .and_then(|t| t.strip_suffix('s'))
        .is_some_and(|t| {
            t.parse::<f64>().is_ok() && t.split_once('.').is_some_and(|(_, d)| d.len() == 1)
        })
}

/// `0.123 text`: a log line with its time since the step started.
fn log_text(l: &str) -> Option<&str> {
    let (t, rest) = l.split_once(' ')?;
    let (_, frac) = t.split_once('.')?;
    (t.parse::<f64>().is_ok() && !frac.is_empty()).then_some(rest)
}

#[test]
fn plain_progress_numbers_steps_logs_output_and_marks_cached() -> Result<()> {
    let berth = berth_with_busybox()?;
    let dir = test_dir()?;
    let df =
        format!("FROM {BUSYBOX}\nRUN echo first-line && echo second-line\nCOPY a.txt /a.txt\n");
    context(dir.path(), &df)?;
    let ctx = dir.path().to_string_lossy().to_string();
    let tag = "progress-plain:1";
    let first = build(&berth, &["--progress", "plain", "-t", tag, &ctx])?;
    let err = String::from_utf8_lossy(&first.stderr).to_string();
    assert!(first.status.success(), "{err}");
    assert!(
        first.stdout.is_empty(),
        "plain progress goes to stderr: {first:?}"
    );
    assert_eq!(
        vertex(&err, 1),
        [
            "[internal] load build definition from Dockerfile",
            "DONE 0.0s"
        ],
        "{err}"
    );
    assert_eq!(vertex(&err, 2)[0], format!("[1/3] FROM {BUSYBOX}"), "{err}");
    let run = vertex(&err, 3);
    assert_eq!(
        run[0], "[2/3] RUN echo first-line && echo second-line",
        "{err}"
    );
    let logs: Vec<&str> = run.iter().filter_map(|l| log_text(l)).collect();
    assert_eq!(logs, ["first-line", "second-line"], "{err}");
    assert!(is_done(run.last().context("run lines")?), "{err}");
    let copy = vertex(&err, 4);
    assert_eq!(copy[0], "[3/3] COPY a.txt /a.txt", "{err}");
    assert!(is_done(&copy[1]), "{err}");
    // The image's ID and name, as BuildKit's exporter prints them.
    let id = berth.ok(&["image", "inspect", "--format", "{{.Id}}", tag])?;
    let export = vertex(&err, 5);
    assert_eq!(export[0], "exporting to image", "{err}");
    assert!(
        export.contains(&format!("writing image {} done", id.trim())),
        "{err}"
    );
    assert!(
        export.contains(&"naming to docker.io/library/progress-plain:1 done".to_string()),
        "{err}"
    );
    // Vertices are apart by a blank line, as BuildKit prints them.
    assert!(err.contains("DONE 0.0s\n\n#2 "), "{err}");

    // Again: every step from the cache, no output; auto is plain off a terminal.
    let again = build(&berth, &["-t", tag, &ctx])?;
    let err = String::from_utf8_lossy(&again.stderr).to_string();
    assert!(again.status.success(), "{err}");
    for n in [3, 4] {
        assert_eq!(vertex(&err, n)[1..], ["CACHED"], "{err}");
    }
    Ok(())
}

#[test]
fn quiet_prints_only_the_image_id_and_classic_lines_stay_behind_docker_buildkit_0() -> Result<()> {
    let berth = berth_with_busybox()?;
    let dir = test_dir()?;
    context(
        dir.path(),
        &format!("FROM {BUSYBOX}\nRUN echo quiet-output\n"),
    )?;
    let ctx = dir.path().to_string_lossy().to_string();
    let q = build(&berth, &["-q", &ctx])?;
    assert!(q.status.success(), "{q:?}");
    let out = String::from_utf8_lossy(&q.stdout);
    let id = out.trim();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{q:?}");
    assert!(q.stderr.is_empty(), "{q:?}");
    let p = build(&berth, &["--progress", "quiet", &ctx])?;
    assert_eq!(String::from_utf8_lossy(&p.stdout).trim(), id);
    assert!(p.stderr.is_empty(), "{p:?}");
    // docker's classic builder (DOCKER_BUILDKIT=0): its lines on stdout.
    let classic = berth
        .cmd(&["build", &ctx])?
        .env("DOCKER_BUILDKIT", "0")
        .output()?;
    let out = String::from_utf8_lossy(&classic.stdout);
    assert!(out.contains("Step 2/2 : RUN echo quiet-output"), "{out}");
    assert!(out.contains(" ---> Using cache"), "{out}");
    assert!(
        out.contains(&format!("Successfully built {}", &id[7..19])),
        "{out}"
    );
    Ok(())
}

#[test]
fn plain_progress_of_a_failed_step_shows_its_error_and_output() -> Result<()> {
    let berth = berth_with_busybox()?;
    let dir = test_dir()?;
    let df = format!("FROM {BUSYBOX}\nRUN echo why-it-failed && exit 3\nRUN echo never\n");
    context(dir.path(), &df)?;
    let ctx = dir.path().to_string_lossy().to_string();
    let out = build(&berth, &["--progress", "plain", &ctx])?;
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    // docker's exit status of a failed RUN.
    assert_eq!(out.status.code(), Some(3), "{err}");
    let run = vertex(&err, 3);
    assert_eq!(run[0], "[2/3] RUN echo why-it-failed && exit 3", "{err}");
    assert_eq!(
        run.iter().filter_map(|l| log_text(l)).collect::<Vec<_>>(),
        ["why-it-failed"]
    );
    assert_eq!(
        run.last().map(String::as_str),
        Some(
            "ERROR: process \"/bin/sh -c echo why-it-failed && exit 3\" did not complete \
             successfully: exit code: 3"
        ),
        "{err}"
    );
    // The build's error after it, as docker's classic builder words it.
    assert!(
        err.trim_end().ends_with(
            "The command '/bin/sh -c echo why-it-failed && exit 3' returned a non-zero code: 3"
        ),
        "{err}"
    );
    assert!(
        vertex(&err, 4).is_empty(),
        "no step after the failed one: {err}"
    );
    // The failed step's output again, after the steps (BuildKit's error block).
    let block = err
        .split_once("------\n > [2/3] RUN echo why-it-failed && exit 3:\n")
        .map(|(_, b)| b)
        .context("no error block")?;
    let (body, _) = block
        .split_once("------\n")
        .context("unterminated error block")?;
    assert_eq!(
        body.lines().filter_map(log_text).collect::<Vec<_>>(),
        ["why-it-failed"],
        "{err}"
    );
    Ok(())
}

/// Runs `berth` with stderr and stdout on a new pseudo-terminal (80×24); returns everything
/// written to it, after the command ended (bounded).
fn on_pty(berth: &Berth, args: &[&str]) -> Result<(std::process::ExitStatus, String)> {
    let size = nix::pty::Winsize {
        ws_row: 24,
        ws_col: 80,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&size), None)?;
    let mut child = berth
        .cmd(args)?
        .stdin(Stdio::null())
        .stdout(Stdio::from(pty.slave.try_clone()?))
        .stderr(Stdio::from(pty.slave))
        .spawn()?;
    // The parent's copies of the slave are gone: the master reads EIO once the child and
    // everything it started closed theirs.
    let master: OwnedFd = pty.master;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut f = std::fs::File::from(master);
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = f.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
        }
        let _ = tx.send(all);
    });
    let status = wait_bounded(&mut child, BUILD_TIMEOUT)?;
    let all = rx
        .recv_timeout(Duration::from_secs(10))
        .context("the terminal stayed open after berth ended")?;
    Ok((status, String::from_utf8_lossy(&all).into_owned()))
}

/// The screen's text after the last redraw: the lines of the last frame, colours gone.
fn last_frame(tty: &str) -> Vec<String> {
    let frame = tty.rsplit("\x1b[?25l").next().unwrap_or(tty);
    let frame = frame.split_once('\r').map_or(frame, |(moved, rest)| {
        if moved.starts_with("\x1b[") {
            rest
        } else {
            frame
        }
    });
    frame
        .lines()
        .map(|l| {
            let mut out = String::new();
            let mut esc = false;
            for c in l.chars() {
                if esc {
                    esc = !c.is_ascii_alphabetic();
                } else if c == '\x1b' {
                    esc = true;
                } else if !c.is_control() {
                    out.push(c);
                }
            }
            out
        })
        .filter(|l| !l.is_empty())
        .collect()
}

/// ` => [2/3] RUN …   1.2s`: the step's line ends with its time.
fn ends_with_time(l: &str) -> bool {
    l.rsplit_once(' ')
        .and_then(|(_, t)| t.strip_suffix('s'))
        .is_some_and(|t| t.parse::<f64>().is_ok())
}

#[test]
fn terminal_view_leaves_a_finished_screen_with_times_and_cached_steps() -> Result<()> {
    let berth = berth_with_busybox()?;
    let dir = test_dir()?;
    let df = format!(
        "FROM {BUSYBOX}\nCOPY a.txt /a.txt\nRUN for i in 1 2 3 4 5; do echo tick-$i; sleep 0.2; done\n"
    );
    context(dir.path(), &df)?;
    let ctx = dir.path().to_string_lossy().to_string();
    let tag = "progress-tty:1";
    let (status, tty) = on_pty(&berth, &["build", "-t", tag, &ctx])?;
    assert!(status.success(), "{tty:?}");
    // Redrawn in place: the cursor went up over the last frame, more than once.
    assert!(tty.matches("A\r").count() >= 2, "{tty:?}");
    // While the RUN step ran, its output was folded under it.
    assert!(tty.contains(" => => # tick-"), "{tty:?}");
    let screen = last_frame(&tty);
    assert!(
        screen[0].starts_with("[+] Building ") && screen[0].ends_with("(5/5) FINISHED"),
        "{screen:#?}"
    );
    let run = screen
        .iter()
        .find(|l| l.starts_with(" => [3/3] RUN for i in"))
        .context("no RUN line")?;
    assert!(ends_with_time(run), "{screen:#?}");
    let secs: f64 = run
        .rsplit_once(' ')
        .and_then(|(_, t)| t.trim_end_matches('s').parse().ok())
        .context("RUN time")?;
    assert!(secs >= 0.9, "the RUN step took about 1s: {screen:#?}");
    assert!(
        screen.iter().all(|l| l.chars().count() <= 80),
        "{screen:#?}"
    );
    assert!(
        screen
            .iter()
            .any(|l| l.starts_with(" => exporting to image")),
        "{screen:#?}"
    );
    assert!(
        screen
            .iter()
            .any(|l| l.starts_with(" => => naming to docker.io/library/progress-tty:1")),
        "{screen:#?}"
    );
    // The output of a finished step is not on the final screen.
    assert!(
        !screen.iter().any(|l| l.starts_with(" => => # ")),
        "{screen:#?}"
    );

    // Again: the steps from the cache.
    let (status, tty) = on_pty(&berth, &["build", "-t", tag, &ctx])?;
    assert!(status.success(), "{tty:?}");
    let screen = last_frame(&tty);
    for step in ["[2/3] COPY a.txt /a.txt", "[3/3] RUN for i in"] {
        let line = screen
            .iter()
            .find(|l| l.starts_with(&format!(" => CACHED {step}")))
            .with_context(|| format!("no CACHED {step}: {screen:#?}"))?;
        assert!(ends_with_time(line), "{screen:#?}");
    }
    Ok(())
}

#[test]
fn terminal_view_of_a_failed_step_prints_its_output_in_full() -> Result<()> {
    let berth = berth_with_busybox()?;
    let dir = test_dir()?;
    let df = format!("FROM {BUSYBOX}\nRUN for i in $(seq 1 12); do echo out-$i; done; exit 2\n");
    context(dir.path(), &df)?;
    let ctx = dir.path().to_string_lossy().to_string();
    let (status, tty) = on_pty(&berth, &["build", "--progress", "tty", &ctx])?;
    assert_eq!(status.code(), Some(2), "{tty:?}");
    let screen = last_frame(&tty);
    assert!(
        screen
            .iter()
            .any(|l| l.starts_with(" => ERROR [2/2] RUN for i in")),
        "{screen:#?}"
    );
    // The total counts the export that never started (BuildKit knows its graph first);
    // not FINISHED.
    assert!(
        screen[0].starts_with("[+] Building ") && screen[0].ends_with("s (3/4)"),
        "{screen:#?}"
    );
    // All twelve lines, not the last few the view folds.
    let after = tty
        .rsplit_once(" > [2/2] RUN ")
        .context("no error block")?
        .1;
    for i in 1..=12 {
        assert!(
            after.contains(&format!(" out-{i}\r\n")),
            "out-{i}: {after:?}"
        );
    }
    Ok(())
}
