use super::*;
use crate::logs::{LogOptions, LogWriter};
use std::time::UNIX_EPOCH;

/// Tests return their errors (`?`) rather than panicking on them.
type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn lines(entries: &[LogEntry]) -> Vec<String> {
    entries.iter().map(|e| e.line.clone()).collect()
}

#[test]
fn round_trip_keeps_streams_order_partial_lines_and_odd_bytes() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("c.log");
    let mut w = LogWriter::create(&path, LogOptions::default())?;
    w.write_at(Stream::Stdout, b"one\ntw", at(10))?;
    w.write_at(Stream::Stderr, b"err \"quoted\" \\ \t\x01 \xff\n", at(11))?;
    w.write_at(Stream::Stdout, b"o\nthree", at(12))?;
    w.flush()?;
    drop(w);
    let all = LogReader::new(&path, ReadOptions::default()).read()?;
    assert_eq!(
        lines(&all),
        [
            "one\n",
            "err \"quoted\" \\ \t\u{1} \u{fffd}\n",
            "two\n",
            "three"
        ]
    );
    assert_eq!(
        all.iter().map(|e| e.stream).collect::<Vec<_>>(),
        [
            Stream::Stdout,
            Stream::Stderr,
            Stream::Stdout,
            Stream::Stdout
        ]
    );
    assert_eq!(all[0].time, at(10));
    // A line is stamped with the time its first part was read (dockerd's copier), and
    // the partial line flushed at the end with the time it began.
    assert_eq!(all[2].time, at(10));
    assert_eq!(all[3].time, at(12));
    let only_err = LogReader::new(
        &path,
        ReadOptions {
            stdout: false,
            ..Default::default()
        },
    )
    .read()?;
    assert_eq!(only_err.len(), 1);
    assert_eq!(only_err[0].stream, Stream::Stderr);
    Ok(())
}

#[test]
fn long_lines_are_cut_at_16k_like_dockerd() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("c.log");
    let mut w = LogWriter::create(&path, LogOptions::default())?;
    let mut long = vec![b'x'; 40 * 1024];
    long.push(b'\n');
    w.write_at(Stream::Stdout, &long, at(1))?;
    drop(w);
    let all = LogReader::new(&path, ReadOptions::default()).read()?;
    assert_eq!(
        all.iter().map(|e| e.line.len()).collect::<Vec<_>>(),
        [16384, 16384, 8193]
    );
    assert!(all[2].line.ends_with('\n'));
    Ok(())
}

#[test]
fn rotation_keeps_max_file_files_and_tail_spans_them() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("c.log");
    let opts = LogOptions {
        max_size: Some(200),
        max_file: 3,
        ..LogOptions::default()
    };
    let mut w = LogWriter::create(&path, opts)?;
    for i in 0..40 {
        w.write_at(
            Stream::Stdout,
            format!("line {i}\n").as_bytes(),
            at(100 + i),
        )?;
    }
    drop(w);
    assert!(rotated(&path, 1).exists());
    assert!(rotated(&path, 2).exists());
    assert!(!rotated(&path, 3).exists());
    for p in [path.clone(), rotated(&path, 1)] {
        // A file is rotated once it reached max-size, so it holds at most one entry more.
        assert!(fs::metadata(&p)?.len() < 200 + 80);
    }
    let all = LogReader::new(&path, ReadOptions::default()).read()?;
    // Whatever survived is the newest run of lines, in order, ending with the last one.
    let n = all.len();
    assert!(n > 6 && n < 40, "{n}");
    let expect: Vec<String> = (40 - n..40).map(|i| format!("line {i}\n")).collect();
    assert_eq!(lines(&all), expect);
    let live_only = {
        let content = fs::read_to_string(&path)?;
        content.lines().count()
    };
    let tail = live_only + 2;
    let tailed = LogReader::new(
        &path,
        ReadOptions {
            tail: Some(tail),
            ..Default::default()
        },
    )
    .read()?;
    assert_eq!(lines(&tailed), expect[n - tail..]);
    Ok(())
}

#[test]
fn since_and_until_select_by_time_inclusively() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("c.log");
    let mut w = LogWriter::create(&path, LogOptions::default())?;
    for i in 0..10 {
        w.write_at(Stream::Stdout, format!("{i}\n").as_bytes(), at(1000 + i))?;
    }
    drop(w);
    let got = LogReader::new(
        &path,
        ReadOptions {
            since: Some(at(1003)),
            until: Some(at(1005)),
            ..Default::default()
        },
    )
    .read()?;
    assert_eq!(lines(&got), ["3\n", "4\n", "5\n"]);
    let tail_then_since = LogReader::new(
        &path,
        ReadOptions {
            since: Some(at(1008)),
            tail: Some(5),
            ..Default::default()
        },
    )
    .read()?;
    assert_eq!(lines(&tail_then_since), ["8\n", "9\n"]);
    let none = LogReader::new(&dir.path().join("missing.log"), ReadOptions::default()).read()?;
    assert!(none.is_empty());
    Ok(())
}

#[test]
fn follow_sees_lines_from_another_thread_across_rotation_and_ends_after_exit() -> TestResult {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let dir = tempfile::tempdir()?;
    let path = dir.path().join("c.log");
    // Enough files that none is deleted however late the follower thread gets scheduled
    // (a follower slower than max-file rotations loses lines, as with dockerd); several
    // rotations still happen between two polls.
    let opts = LogOptions {
        max_size: Some(300),
        max_file: 100,
        ..LogOptions::default()
    };
    let mut w = LogWriter::create(&path, opts)?;
    w.write(Stream::Stdout, b"before\n")?;
    let exited = Arc::new(AtomicBool::new(false));
    let writer = {
        let exited = exited.clone();
        std::thread::spawn(move || -> TestResult {
            for i in 0..30 {
                let s = if i % 2 == 0 {
                    Stream::Stdout
                } else {
                    Stream::Stderr
                };
                w.write(s, format!("n{i}\n").as_bytes())?;
                std::thread::sleep(Duration::from_millis(3));
            }
            w.write(Stream::Stdout, b"last words")?;
            drop(w); // flushes the partial line
            exited.store(true, Ordering::SeqCst);
            Ok(())
        })
    };
    let is_exited = || exited.load(Ordering::SeqCst);
    let reader = LogReader::new(&path, ReadOptions::default());
    let got: Vec<String> = reader
        .follow(&is_exited)?
        .map(|e| e.map(|e| e.line))
        .collect::<Result<_, _>>()?;
    writer.join().map_err(|_| "the writer thread panicked")??;
    let mut expect = vec!["before\n".to_string()];
    expect.extend((0..30).map(|i| format!("n{i}\n")));
    expect.push("last words".into());
    assert_eq!(got, expect);
    assert!(rotated(&path, 3).exists(), "the test must cross rotations");
    Ok(())
}

#[test]
fn print_logs_splits_streams_and_prefixes_fixed_timestamps() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("c.log");
    let mut w = LogWriter::create(&path, LogOptions::default())?;
    w.write_at(
        Stream::Stdout,
        b"out1\n",
        UNIX_EPOCH + Duration::new(5, 500_000_000),
    )?;
    w.write_at(Stream::Stderr, b"err1\n", at(6))?;
    w.write_at(Stream::Stdout, b"no newline", at(7))?;
    drop(w);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    crate::logs::print_logs(
        &path,
        ReadOptions::default(),
        true,
        None,
        &mut out,
        &mut err,
    )?;
    assert_eq!(
        String::from_utf8(out)?,
        "1970-01-01T00:00:05.500000000Z out1\n1970-01-01T00:00:07.000000000Z no newline"
    );
    assert_eq!(
        String::from_utf8(err)?,
        "1970-01-01T00:00:06.000000000Z err1\n"
    );
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let exited = || true;
    crate::logs::print_logs(
        &path,
        ReadOptions {
            tail: Some(1),
            ..Default::default()
        },
        false,
        Some(&exited),
        &mut out,
        &mut err,
    )?;
    assert_eq!(out, b"no newline");
    assert!(err.is_empty());
    Ok(())
}

#[test]
fn follow_stops_at_until_even_while_the_container_runs() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("c.log");
    let mut w = LogWriter::create(&path, LogOptions::default())?;
    w.write(Stream::Stdout, b"now\n")?;
    let running = || false;
    let opts = ReadOptions {
        until: Some(SystemTime::now() + Duration::from_millis(200)),
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let got: Vec<String> = LogReader::new(&path, opts)
        .follow(&running)?
        .map(|e| e.map(|e| e.line))
        .collect::<Result<_, _>>()?;
    assert_eq!(got, ["now\n"]);
    assert!(started.elapsed() < Duration::from_secs(5));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(fs::metadata(&path)?.permissions().mode() & 0o777, 0o640);
    Ok(())
}

#[test]
fn tail_then_follow_picks_up_an_entry_caught_mid_write() -> TestResult {
    use std::io::Write as _;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("c.log");
    let mut w = LogWriter::create(&path, LogOptions::default())?;
    for i in 0..5 {
        w.write_at(Stream::Stdout, format!("{i}\n").as_bytes(), at(i))?;
    }
    drop(w);
    // Half of an entry, as a reader may see while the writer is in write(2).
    let whole = r#"{"log":"late\n","stream":"stderr","time":"1970-01-01T00:00:09Z"}"#;
    let (head, rest) = whole.split_at(20);
    let mut f = fs::OpenOptions::new().append(true).open(&path)?;
    f.write_all(head.as_bytes())?;
    let f = std::cell::RefCell::new(f);
    let done = std::cell::Cell::new(false);
    let exited = || {
        if !done.get() {
            f.borrow_mut()
                .write_all(format!("{rest}\n").as_bytes())
                .expect("appending the rest of the entry");
            done.set(true);
            return false;
        }
        true
    };
    let opts = ReadOptions {
        tail: Some(2),
        ..Default::default()
    };
    let got: Vec<String> = LogReader::new(&path, opts)
        .follow(&exited)?
        .map(|e| e.map(|e| e.line))
        .collect::<Result<_, _>>()?;
    assert_eq!(got, ["3\n", "4\n", "late\n"]);
    Ok(())
}

#[test]
fn follow_keeps_up_with_max_file_1_rotations() -> TestResult {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;

    let dir = tempfile::tempdir()?;
    let path = dir.path().join("c.log");
    let opts = LogOptions {
        max_size: Some(100),
        max_file: 1,
        ..LogOptions::default()
    };
    let mut w = LogWriter::create(&path, opts)?;
    let received = Arc::new(AtomicUsize::new(0));
    let exited = Arc::new(AtomicBool::new(false));
    let writer = {
        let (received, exited) = (received.clone(), exited.clone());
        std::thread::spawn(move || -> TestResult {
            for i in 0..20 {
                w.write(Stream::Stdout, format!("line {i:02}\n").as_bytes())?;
                // Each line is seen before the next one (and its rotation) is written.
                let deadline = std::time::Instant::now() + Duration::from_secs(10);
                while received.load(Ordering::SeqCst) <= i && std::time::Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            exited.store(true, Ordering::SeqCst);
            Ok(())
        })
    };
    let is_exited = || exited.load(Ordering::SeqCst);
    let mut got = Vec::new();
    for e in LogReader::new(&path, ReadOptions::default()).follow(&is_exited)? {
        got.push(e?.line);
        received.fetch_add(1, Ordering::SeqCst);
    }
    writer.join().map_err(|_| "the writer thread panicked")??;
    let expect: Vec<String> = (0..20).map(|i| format!("line {i:02}\n")).collect();
    assert_eq!(got, expect);
    assert!(!rotated(&path, 1).exists());
    // Only what was written since the last rotation is left.
    assert!(fs::metadata(&path)?.len() < 200);
    Ok(())
}

#[test]
fn reads_a_log_dockerd_wrote() -> TestResult {
    // Verbatim from dockerd 20.10 (json-file) for a container printing odd bytes to both
    // streams and ending without a newline.
    let docker = concat!(
        r#"{"log":"café \ufffd\ufffd \u2028 end\n","stream":"stderr","time":"2026-11-22T09:31:23.656445918Z"}"#,
        "\n",
        r#"{"log":"a\"b\\c\u0009\u003cx\u003e\u0026\u0001\u001b[0m\r\n","stream":"stdout","time":"2026-11-22T09:31:23.656532678Z"}"#,
        "\n",
        r#"{"log":"partial","stream":"stdout","time":"2026-11-22T09:31:23.711183879Z"}"#,
        "\n",
    );
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("c-json.log");
    fs::write(&path, docker)?;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    crate::logs::print_logs(
        &path,
        ReadOptions::default(),
        false,
        None,
        &mut out,
        &mut err,
    )?;
    assert_eq!(out, b"a\"b\\c\t<x>&\x01\x1b[0m\r\npartial");
    assert_eq!(
        String::from_utf8(err)?,
        "café \u{fffd}\u{fffd} \u{2028} end\n"
    );
    // And our writer produces the same bytes for the same output (times aside).
    let mut w = LogWriter::create(&dir.path().join("ours2.log"), LogOptions::default())?;
    w.write(Stream::Stderr, b"caf\xc3\xa9 \xff\xfe \xe2\x80\xa8 end\n")?;
    w.write(Stream::Stdout, b"a\"b\\c\t<x>&\x01\x1b[0m\r\n")?;
    w.write(Stream::Stdout, b"partial")?;
    drop(w);
    let strip_time = |s: &str| -> Vec<String> {
        s.lines()
            .map(|l| l[..l.find(r#","time":"#).expect("a time field")].to_string())
            .collect()
    };
    assert_eq!(
        strip_time(&fs::read_to_string(dir.path().join("ours2.log"))?),
        strip_time(docker)
    );
    Ok(())
}
