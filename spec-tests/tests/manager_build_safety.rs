//! `berth build` on bad input and failures: errors name the file, line and text (or the
//! missing path); a tar entry escaping the destination is refused; symlinks in the context
//! are copied as links and never followed out of it; a failed or interrupted build leaves
//! no container, mount, active snapshot, scratch directory or image behind.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use spec_tests::manager::berth::{test_dir, Berth};
use spec_tests::manager::build::{flatten, steps_cached, write_context};
use spec_tests::manager::network::{berth_with_busybox, mounts_under, BUSYBOX};

/// Nothing of a build is left: no container, no mount under the root, no active snapshot,
/// no scratch directory, no image but the base.
fn assert_clean(berth: &Berth) -> Result<()> {
    let root = berth.root();
    assert_eq!(berth.ok(&["ps", "-a", "-q"])?, "", "containers left");
    assert!(
        mounts_under(&root).is_empty(),
        "mounts left: {:?}",
        mounts_under(&root)
    );
    let meta =
        std::fs::read_to_string(root.join("snapshots/overlay/metadata.json")).unwrap_or_default();
    assert!(
        !meta.contains("\"active\""),
        "active snapshots left: {meta}"
    );
    assert!(!meta.contains("\"view\""), "views left: {meta}");
    let scratch: Vec<_> = std::fs::read_dir(root.join("build-tmp"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(scratch.is_empty(), "scratch left: {scratch:?}");
    let images = berth.ok(&["images", "-q"])?;
    assert_eq!(images.lines().count(), 1, "images: {images}");
    Ok(())
}

fn dockerfile(dir: &Path, text: &str) -> Result<String> {
    std::fs::write(dir.join("Dockerfile"), text.replace("BASE", BUSYBOX))?;
    Ok(dir.display().to_string())
}

fn failing(berth: &Berth, ctx: &str) -> Result<(i32, String)> {
    let out = berth.run(&["build", "--network", "none", "-t", "bad:1", ctx])?;
    ensure!(
        !out.status.success(),
        "build succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

#[test]
fn bad_dockerfiles_and_missing_sources_name_what_is_wrong() -> Result<()> {
    let berth = berth_with_busybox()?;
    let dir = test_dir()?;
    let ctx = dockerfile(dir.path(), "FROM BASE\nRUN true\nBOGUS arg\n")?;
    let (_, err) = failing(&berth, &ctx)?;
    assert!(
        err.contains("Dockerfile:3: unknown instruction: BOGUS"),
        "{err}"
    );
    let ctx = dockerfile(dir.path(), "FROM BASE\nCOPY --bogus=1 a /\n")?;
    assert!(failing(&berth, &ctx)?
        .1
        .contains("Dockerfile:2: unknown flag: bogus"));
    let ctx = dockerfile(dir.path(), "FROM BASE\nENV A=\"unterminated\nCMD x\n")?;
    assert!(failing(&berth, &ctx)?
        .1
        .contains("unexpected end of statement"));
    let ctx = dockerfile(dir.path(), "FROM BASE\nCOPY missing/file.txt /\n")?;
    let (_, err) = failing(&berth, &ctx)?;
    assert!(
        err.contains("Dockerfile:2") && err.contains("missing/file.txt"),
        "{err}"
    );
    let ctx = dockerfile(dir.path(), "FROM BASE AS a\nRUN true\n")?;
    let out = berth.run(&["build", "--target", "nope", &ctx])?;
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("target stage \"nope\" could not be found")
    );
    // The file named by -f is the one in the messages.
    std::fs::write(dir.path().join("other.Dockerfile"), "FROM BASE\n\nFROM\n")?;
    let out = berth.run(&[
        "build",
        "-f",
        &dir.path().join("other.Dockerfile").display().to_string(),
        &ctx,
    ])?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("other.Dockerfile:3"), "{err}");
    assert_clean(&berth)
}

#[test]
fn context_symlinks_stay_links_and_escaping_tars_are_refused() -> Result<()> {
    let berth = berth_with_busybox()?;
    let dir = test_dir()?;
    write_context(
        dir.path(),
        &[
            ("d/abs", "->/etc/shadow"),
            ("d/up", "->../../../../etc"),
            ("out", "->/etc"),
        ],
    )?;
    // A source through a symlink is resolved inside the context: /etc of the host is not.
    let ctx = dockerfile(dir.path(), "FROM BASE\nCOPY out/shadow /x\n")?;
    let (_, err) = failing(&berth, &ctx)?;
    assert!(err.contains("out/shadow"), "{err}");
    let ctx = dockerfile(dir.path(), "FROM BASE\nCOPY d /d\n")?;
    berth.ok(&["build", "--network", "none", "-t", "links:1", &ctx])?;
    let saved = dir.path().join("links.tar");
    berth.ok(&["save", "-o", &saved.display().to_string(), "links:1"])?;
    let tree = flatten(&saved)?;
    let link = |p: &str| tree.get(p).map(|n| (n.kind, n.link.clone()));
    assert_eq!(link("d/abs"), Some(('l', "/etc/shadow".to_string())));
    assert_eq!(link("d/up"), Some(('l', "../../../../etc".to_string())));
    assert!(!tree.keys().any(|k| k.starts_with("d/up/")));
    berth.ok(&["rmi", "links:1"])?;
    // A tar entry climbing out of the destination.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_size(4);
    let name = b"../../../../tmp/berth-escaped";
    h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name);
    h.set_cksum();
    b.append(&h, &b"evil"[..])?;
    std::fs::write(dir.path().join("evil.tar"), b.into_inner()?)?;
    let ctx = dockerfile(dir.path(), "FROM BASE\nADD evil.tar /x/\n")?;
    let (_, err) = failing(&berth, &ctx)?;
    assert!(err.contains("escapes the destination"), "{err}");
    assert!(!Path::new("/tmp/berth-escaped").exists());
    assert_clean(&berth)
}

#[test]
fn failed_and_interrupted_builds_leave_nothing_behind() -> Result<()> {
    let berth = berth_with_busybox()?;
    let dir = test_dir()?;
    let ctx = dockerfile(
        dir.path(),
        "FROM BASE\nRUN echo ok > /ok\nRUN echo output; exit 3\n",
    )?;
    let out = berth.run(&["build", "--network", "none", "-t", "bad:1", &ctx])?;
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    // The step's output is in the progress (stderr), its error after it.
    assert!(err.contains(" output\n"), "{err}");
    assert!(
        err.contains("The command '/bin/sh -c echo output; exit 3' returned a non-zero code: 3"),
        "{err}"
    );
    assert_clean(&berth)?;
    // The steps that finished are cached.
    let out = berth.run(&["build", "--network", "none", &ctx])?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(steps_cached(&err) > 0, "{err}");
    // Ctrl-C in the middle of a RUN step.
    let ctx = dockerfile(dir.path(), "FROM BASE\nRUN echo started; sleep 30\n")?;
    let mut child = berth
        .cmd(&["build", "--network", "none", "-t", "slow:1", &ctx])?
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    // The step's output comes in the progress on stderr (`#3 0.012 started`).
    let stdout = child.stderr.take();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut lines = Vec::new();
        if let Some(s) = stdout {
            for l in std::io::BufReader::new(s).lines().map_while(Result::ok) {
                let started = l.ends_with(" started");
                lines.push(l);
                if started {
                    break;
                }
            }
        }
        lines
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while !reader.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!("the interrupted build did not stop");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!status.success());
    assert_clean(&berth)
}
