use super::*;

fn ev(index: usize, name: &str, change: VertexChange) -> VertexEvent {
    VertexEvent {
        index,
        name: Arc::from(name),
        change,
    }
}

fn ms(base: Instant, n: u64) -> Instant {
    base + Duration::from_millis(n)
}

/// Strips the colours the terminal view adds.
fn plain_text(l: &str) -> String {
    truncate(l, usize::MAX)
}

#[test]
fn plain_lines_read_like_buildkit() {
    let t0 = Instant::now();
    let mut p = Plain::default();
    let mut out = String::new();
    let run = "[2/3] RUN make";
    for (at, e) in [
        (
            0,
            ev(
                1,
                "[internal] load build definition from Dockerfile",
                VertexChange::Started,
            ),
        ),
        (
            10,
            ev(
                1,
                "[internal] load build definition from Dockerfile",
                VertexChange::Done,
            ),
        ),
        (20, ev(2, "[1/3] FROM busybox", VertexChange::Started)),
        (30, ev(2, "[1/3] FROM busybox", VertexChange::Cached)),
        (40, ev(3, run, VertexChange::Started)),
        (163, ev(3, run, VertexChange::Log("one\ntw".into()))),
        (300, ev(3, run, VertexChange::Log("o\nthree".into()))),
        (1240, ev(3, run, VertexChange::Done)),
        (1250, ev(4, "exporting to image", VertexChange::Started)),
        (
            1260,
            ev(
                4,
                "exporting to image",
                VertexChange::Status("writing image sha256:ab".into()),
            ),
        ),
        (1270, ev(4, "exporting to image", VertexChange::Done)),
    ] {
        out.push_str(&p.apply(&e, ms(t0, at)));
    }
    assert_eq!(
        out,
        "#1 [internal] load build definition from Dockerfile\n#1 DONE 0.0s\n\n\
         #2 [1/3] FROM busybox\n#2 CACHED\n\n\
         #3 [2/3] RUN make\n#3 0.123 one\n#3 0.260 two\n#3 1.200 three\n#3 DONE 1.2s\n\n\
         #4 exporting to image\n#4 writing image sha256:ab done\n#4 DONE 0.0s\n"
    );
}

#[test]
fn plain_lines_mark_an_interrupted_vertex_and_errors() {
    let t0 = Instant::now();
    let mut p = Plain::default();
    let mut out = String::new();
    for (at, e) in [
        (0, ev(2, "[a 2/2] RUN x", VertexChange::Started)),
        (5, ev(3, "[b 2/2] RUN y", VertexChange::Started)),
        (
            10,
            ev(3, "[b 2/2] RUN y", VertexChange::Log("boom\n".into())),
        ),
        (
            20,
            ev(
                3,
                "[b 2/2] RUN y",
                VertexChange::Error("exit code: 3".into()),
            ),
        ),
        (30, ev(2, "[a 2/2] RUN x", VertexChange::Canceled)),
    ] {
        out.push_str(&p.apply(&e, ms(t0, at)));
    }
    assert_eq!(
        out,
        "#2 [a 2/2] RUN x\n#2 ...\n\n#3 [b 2/2] RUN y\n#3 0.005 boom\n#3 ERROR: exit code: 3\n\n\
         #2 [a 2/2] RUN x\n#2 CANCELED\n"
    );
    assert_eq!(
        p.trace().error_logs(Some(10)),
        "------\n > [b 2/2] RUN y:\n0.005 boom\n------\n"
    );
}

#[test]
fn frame_has_header_steps_with_times_and_the_running_steps_last_lines() {
    let t0 = Instant::now();
    let mut t = Trace::default();
    let _ = t.apply(&ev(2, "[1/3] FROM busybox", VertexChange::Started), t0);
    let _ = t.apply(&ev(2, "[1/3] FROM busybox", VertexChange::Cached), t0);
    let _ = t.apply(&ev(3, "[2/3] RUN make", VertexChange::Started), t0);
    let _ = t.apply(&ev(3, "[2/3] RUN make", VertexChange::Done), ms(t0, 1200));
    let run = "[3/3] RUN a-long-command-that-does-not-fit-in-forty-columns";
    let _ = t.apply(&ev(4, run, VertexChange::Started), ms(t0, 1200));
    let logs: String = (1..=8).map(|i| format!("line {i}\n")).collect();
    let _ = t.apply(&ev(4, run, VertexChange::Log(logs)), ms(t0, 1300));
    let _ = t.apply(
        &ev(
            4,
            run,
            VertexChange::Log("\x1b[1mbold\x1b[0m 50%\r100%".into()),
        ),
        ms(t0, 1400),
    );
    let frame = t.frame(ms(t0, 3200), 40, 30, false);
    let text: Vec<String> = frame.iter().map(|l| plain_text(l)).collect();
    assert_eq!(
        text,
        vec![
            "[+] Building 3.2s (2/3)".to_string(),
            " => CACHED [1/3] FROM busybox      0.0s".into(),
            " => [2/3] RUN make                 1.2s".into(),
            " => [3/3] RUN a-long-command-that- 2.0s".into(),
            " => => # line 4".into(),
            " => => # line 5".into(),
            " => => # line 6".into(),
            " => => # line 7".into(),
            " => => # line 8".into(),
            " => => # 100%".into(),
        ]
    );
    // As BuildKit's, a step's line leaves the terminal's last column free.
    for l in &text {
        assert!(l.chars().count() < 40, "{l:?}");
    }
    // Done steps are blue; output lines dim.
    assert!(frame[2].starts_with("\x1b[34m"), "{:?}", frame[2]);
    assert!(frame[4].starts_with("\x1b[2m"), "{:?}", frame[4]);
    // A short terminal shows the latest lines under the header.
    let short = t.frame(ms(t0, 3200), 40, 5, false);
    assert_eq!(short.len(), 4);
    assert_eq!(plain_text(&short[1]), " => => # line 7");
}

#[test]
fn final_frame_is_whole_and_finished_with_exports_and_errors() {
    let t0 = Instant::now();
    let mut t = Trace::default();
    for i in 1..=20 {
        let name = format!("[{i:>2}/20] RUN true");
        let _ = t.apply(&ev(i, &name, VertexChange::Started), t0);
        let _ = t.apply(&ev(i, &name, VertexChange::Done), t0);
    }
    let x = "exporting to image";
    let _ = t.apply(&ev(21, x, VertexChange::Started), t0);
    let _ = t.apply(
        &ev(
            21,
            x,
            VertexChange::Status("naming to docker.io/library/x:1".into()),
        ),
        t0,
    );
    let _ = t.apply(&ev(21, x, VertexChange::Done), t0);
    let all = t.frame(ms(t0, 500), 60, 10, true);
    assert_eq!(all.len(), 1 + 20 + 2);
    assert_eq!(all[0], "[+] Building 0.5s (21/21) FINISHED");
    assert_eq!(
        plain_text(&all[22]),
        " => => naming to docker.io/library/x:1                 0.0s"
    );
    let _ = t.apply(&ev(22, "[1/1] RUN false", VertexChange::Started), t0);
    let _ = t.apply(
        &ev(22, "[1/1] RUN false", VertexChange::Log("why\n".into())),
        t0,
    );
    let _ = t.apply(
        &ev(
            22,
            "[1/1] RUN false",
            VertexChange::Error("exit code: 1".into()),
        ),
        t0,
    );
    let failed = t.frame(ms(t0, 600), 60, 10, true);
    assert!(plain_text(failed.last().unwrap()).starts_with(" => ERROR [1/1] RUN false"));
    assert!(failed.last().unwrap().starts_with("\x1b[31m"));
    assert_eq!(
        t.error_logs(None),
        "------\n > [1/1] RUN false:\n0.000 why\n------\n"
    );
}

#[test]
fn truncation_counts_characters_and_drops_escapes() {
    assert_eq!(truncate("héllo wörld", 7), "héllo w");
    assert_eq!(truncate("a\tb\x1b[31mc\x07d", 10), "a bcd");
    assert_eq!(stamp(Duration::from_millis(12_345)), "12.35");
    assert_eq!(stamp(Duration::from_millis(123_456)), "123.5");
}

#[test]
fn output_kept_is_bounded() {
    let t0 = Instant::now();
    let mut t = Trace::default();
    let run = "[1/1] RUN yes";
    let _ = t.apply(&ev(1, run, VertexChange::Started), t0);
    let (_, lines) = t
        .apply(
            &ev(1, run, VertexChange::Log("x".repeat(MAX_PARTIAL + 1))),
            t0,
        )
        .unwrap();
    assert_eq!(lines.len(), 1, "a line too long without a newline ends");
    assert!(t.vertices[0].partial.is_empty());
    let many: String = "y\n".repeat(KEEP_LINES + 5);
    let _ = t.apply(&ev(1, run, VertexChange::Log(many)), t0);
    assert_eq!(t.vertices[0].logs.len(), KEEP_LINES);
}

#[test]
fn planned_vertices_count_in_the_total_and_show_once_started() {
    let t0 = Instant::now();
    let mut t = Trace::default();
    let mut p = Plain::default();
    for i in 2..=4 {
        let planned = ev(i, "", VertexChange::Planned);
        let _ = t.apply(&planned, t0);
        assert_eq!(
            p.apply(&planned, t0),
            "",
            "nothing printed for a planned vertex"
        );
    }
    let _ = t.apply(&ev(3, "[2/2] RUN b", VertexChange::Started), t0);
    let _ = t.apply(&ev(3, "[2/2] RUN b", VertexChange::Done), ms(t0, 100));
    let frame = t.frame(ms(t0, 200), 40, 20, false);
    assert_eq!(frame[0], "[+] Building 0.2s (1/3)");
    assert_eq!(frame.len(), 2, "{frame:?}");
    let _ = t.apply(&ev(2, "[1/2] FROM a", VertexChange::Started), t0);
    let _ = t.apply(&ev(2, "[1/2] FROM a", VertexChange::Cached), t0);
    let _ = t.apply(&ev(4, "exporting to image", VertexChange::Started), t0);
    let _ = t.apply(&ev(4, "exporting to image", VertexChange::Done), t0);
    let frame = t.frame(ms(t0, 300), 40, 20, true);
    assert_eq!(frame[0], "[+] Building 0.3s (3/3) FINISHED");
    // In the order they started.
    assert!(
        plain_text(&frame[1]).starts_with(" => [2/2] RUN b"),
        "{frame:?}"
    );
}
