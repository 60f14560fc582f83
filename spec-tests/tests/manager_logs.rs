//! `berth logs` and what a run shows of a container's output: `-a/--attach` picks the
//! streams, `logs -f` follows until the exit, `logs --details` prints the attributes that
//! `--log-opt labels=…/env=…` put into every entry, as dockerd's json-file driver does.

use std::time::{Duration, Instant};

use anyhow::Result;
use spec_tests::manager::containers::Env;
use spec_tests::manager::network::BUSYBOX;

#[test]
fn attach_flags_pick_the_streams_a_run_shows() -> Result<()> {
    let env = Env::new()?;
    let script = "echo out; echo err >&2";
    let run = |streams: &[&str]| -> Result<(String, String)> {
        let mut args = vec!["run", "--rm", "--network", "none"];
        for s in streams {
            args.extend(["-a", s]);
        }
        args.extend([BUSYBOX, "sh", "-c", script]);
        let (code, out, err) = env.run(&args)?;
        assert_eq!(code, 0, "{streams:?}: {err}");
        Ok((out, err))
    };
    let (out, err) = run(&["stdout"])?;
    assert_eq!(
        (out.as_str(), err.contains("err")),
        ("out\n", false),
        "{err}"
    );
    let (out, err) = run(&["STDERR"])?;
    assert_eq!((out.as_str(), err.as_str()), ("", "err\n"));
    let (out, err) = run(&["stdout", "stderr"])?;
    assert_eq!((out.as_str(), err.as_str()), ("out\n", "err\n"));
    // What is not shown still reaches the log, and the config records the choice.
    let id = env.ok(&["create", "-a", "stderr", BUSYBOX, "sh", "-c", script])?;
    let id = id.trim().to_string();
    let c = env.inspect(&id)?;
    assert_eq!(
        (&c["Config"]["AttachStdout"], &c["Config"]["AttachStderr"]),
        (&serde_json::json!(false), &serde_json::json!(true))
    );
    env.ok(&["rm", &id])?;
    env.assert_clean(&[id]);
    Ok(())
}

#[test]
fn logs_follow_streams_until_the_container_exits() -> Result<()> {
    let env = Env::new()?;
    let id = env.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        BUSYBOX,
        "sh",
        "-c",
        "for i in 1 2 3; do echo line$i; sleep 0.2; done",
    ])?;
    let t = Instant::now();
    let out = env.ok(&["logs", "-f", id.trim()])?;
    assert_eq!(out, "line1\nline2\nline3\n");
    assert!(t.elapsed() < Duration::from_secs(10));
    Ok(())
}

#[test]
fn logs_details_show_the_attributes_the_log_options_choose() -> Result<()> {
    let env = Env::new()?;
    let id = env.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--label",
        "foo=bar",
        "--label",
        "app.tier=web x",
        "--label",
        "unused=1",
        "-e",
        "E=1",
        "-e",
        "APP_MODE=a",
        "--log-opt",
        "labels=foo,missing",
        "--log-opt",
        "labels-regex=^app\\.",
        "--log-opt",
        "env=E",
        "--log-opt",
        "env-regex=^APP_",
        BUSYBOX,
        "sh",
        "-c",
        "echo out; echo err >&2",
    ])?;
    let id = id.trim().to_string();
    env.until(Duration::from_secs(10), "the container exits", || {
        Ok(env.status(&id)? == "exited")
    })?;
    // dockerd: keys in order, query-escaped, joined by commas, then a space and the line.
    let attrs = "APP_MODE=a,E=1,app.tier=web+x,foo=bar ";
    let (code, out, err) = env.run(&["logs", "--details", &id])?;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, format!("{attrs}out\n"));
    assert_eq!(err, format!("{attrs}err\n"));
    let (_, out, _) = env.run(&["logs", "--details", "-t", &id])?;
    let (stamp, rest) = out.split_once(' ').unwrap_or_default();
    assert!(
        stamp.ends_with('Z') && rest == format!("{attrs}out\n"),
        "{out}"
    );
    // Without --details the lines are as logged; the file has docker's "attrs" member.
    assert_eq!(env.ok(&["logs", &id])?, "out\n");
    let path = env.inspect(&id)?["LogPath"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    // The two streams' first lines may be logged in either order.
    let file = std::fs::read_to_string(&path)?;
    assert!(
        file.lines().any(|l| l.starts_with("{\"log\":\"out\\n\",\"stream\":\"stdout\",\"attrs\":{\"APP_MODE\":\"a\",\"E\":\"1\",\"app.tier\":\"web x\",\"foo\":\"bar\"},\"time\":")),
        "{file}"
    );
    let opts = env.inspect(&id)?["HostConfig"]["LogConfig"]["Config"].clone();
    assert_eq!(opts["labels"], "foo,missing");
    // A container without such options: a lone space before each line.
    let plain = env.ok(&["run", "--network", "none", BUSYBOX, "echo", "hi"])?;
    assert_eq!(plain, "hi\n");
    let last = env.ok(&["ps", "-lq", "--no-trunc"])?;
    assert_eq!(env.ok(&["logs", "--details", last.trim()])?, " hi\n");
    // A bad regex is refused at create, naming the option.
    let (code, _, err) = env.run(&["run", "--log-opt", "env-regex=(", BUSYBOX, "true"])?;
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("env-regex"), "{err}");
    env.ok(&["rm", &id, last.trim()])?;
    env.assert_clean(&[id, last.trim().to_string()]);
    Ok(())
}
