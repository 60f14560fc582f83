//! The second half of `berth system service`: events, stats, diff, export, update, commit,
//! import, system df, info and version, driven by docker's CLI and the Python SDK over the
//! API, and the same verbs on berth's own CLI against the same store.

use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use serde_json::Value;
use spec_tests::manager::api::{docker_clients, Service, PYTHON_SDK};

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn json_lines(out: &str) -> Vec<Value> {
    out.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn actions(events: &[Value], kind: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["Type"] == kind)
        .map(|e| e["Action"].as_str().unwrap_or("").to_string())
        .collect()
}

fn python(s: &Service, script: &str) -> Result<String> {
    assert!(
        std::path::Path::new(PYTHON_SDK).exists(),
        "{PYTHON_SDK} missing: run hack/setup"
    );
    let mut c = s.client(PYTHON_SDK);
    c.args(["-c", script]);
    let o = spec_tests::engines::run_cmd(c, Duration::from_secs(60))?;
    assert!(o.success(), "{o}\n{}", s.log());
    Ok(o.stdout)
}

#[test]
fn events_are_journaled_filtered_replayed_and_followed() -> Result<()> {
    let s = Service::start()?;
    let cli = docker_clients()[0];
    let t0 = format!("{:.3}", now() - 1.0);
    // A follower started first sees what happens next, and ends at --until.
    let until = format!("{:.3}", now() + 5.0);
    let mut follower = s.env.berth.cmd(&[
        "events",
        "--until",
        &until,
        "--filter",
        "event=die",
        "--format",
        "{{.Action}} {{.Actor.Attributes.exitCode}} {{.Type}}",
    ])?;
    follower.stdout(Stdio::piped()).stderr(Stdio::piped());
    let follower = follower.spawn()?;
    s.docker_ok(
        cli,
        &[
            "run", "--name", "ev1", "--label", "tier=a", "busybox", "sh", "-c", "exit 3",
        ],
    )
    .or_else(|_| Ok::<_, anyhow::Error>(String::new()))?;
    s.docker_ok(cli, &["volume", "create", "evvol"])?;
    s.docker_ok(cli, &["network", "create", "evnet"])?;
    s.env.ok(&["rm", "ev1"])?;
    s.docker_ok(cli, &["volume", "rm", "evvol"])?;
    s.docker_ok(cli, &["network", "rm", "evnet"])?;
    let t1 = format!("{:.3}", now() + 0.5);
    std::thread::sleep(Duration::from_millis(600));

    let out = s.docker_ok(
        cli,
        &[
            "events",
            "--since",
            &t0,
            "--until",
            &t1,
            "--format",
            "{{json .}}",
        ],
    )?;
    let evs = json_lines(&out);
    let c = actions(&evs, "container");
    for want in ["create", "attach", "start", "die", "destroy"] {
        assert!(c.iter().any(|a| a == want), "{want} missing: {c:?}\n{out}");
    }
    let die = evs
        .iter()
        .find(|e| e["Action"] == "die")
        .cloned()
        .unwrap_or_default();
    assert_eq!(die["Actor"]["Attributes"]["exitCode"], "3", "{die}");
    assert_eq!(die["Actor"]["Attributes"]["name"], "ev1");
    assert_eq!(die["status"], "die");
    assert_eq!(die["from"], "busybox");
    assert!(die["timeNano"].as_i64().unwrap_or(0) > 0, "{die}");
    assert_eq!(actions(&evs, "volume"), ["create", "destroy"], "{out}");
    assert_eq!(actions(&evs, "network"), ["create", "destroy"], "{out}");

    // Filters: type and event, container by name, label.
    let out = s.docker_ok(
        cli,
        &[
            "events",
            "--since",
            &t0,
            "--until",
            &t1,
            "--filter",
            "type=container",
            "--filter",
            "event=die",
            "--format",
            "{{json .}}",
        ],
    )?;
    assert_eq!(actions(&json_lines(&out), "container"), ["die"], "{out}");
    let out = s.env.ok(&[
        "events",
        "--since",
        &t0,
        "--until",
        &t1,
        "--filter",
        "container=ev1",
        "--filter",
        "label=tier=a",
    ])?;
    assert!(
        out.contains(" container create ") && out.contains("name=ev1"),
        "{out}"
    );
    assert!(!out.contains("volume"), "{out}");
    // The Python SDK.
    let got = python(
        &s,
        &format!(
            r#"
import docker
c = docker.from_env()
evs = list(c.events(since={t0}, until={t1}, decode=True, filters={{"type": "volume"}}))
print(",".join(e["Action"] for e in evs))
"#
        ),
    )?;
    assert_eq!(got.trim(), "create,destroy");
    // A bad filter is docker's 400.
    let (code, body) = s.http(
        "GET",
        "/v1.41/events?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D&until=1",
        None,
    )?;
    assert_eq!(code, 400, "{body}");

    let o = follower.wait_with_output()?;
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        text.trim(),
        "die 3 container",
        "{text}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    s.env.assert_clean(&[]);
    Ok(())
}
