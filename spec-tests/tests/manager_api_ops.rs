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
        "--filter",
        "container=ev1",
        "--format",
        "{{.Action}} {{.Actor.Attributes.exitCode}} {{.Type}}",
    ])?;
    follower.stdout(Stdio::piped()).stderr(Stdio::piped());
    let follower = follower.spawn()?;
    s.docker_ok(cli, &["volume", "create", "evvol"])?;
    s.docker_ok(cli, &["network", "create", "evnet"])?;
    let o = s.docker(
        cli,
        &[
            "run",
            "--name",
            "ev1",
            "--label",
            "tier=a",
            "--network",
            "evnet",
            "-v",
            "evvol:/data",
            "busybox",
            "sh",
            "-c",
            "exit 3",
        ],
    )?;
    assert_eq!(o.code, Some(3), "{o}");
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
    assert_eq!(
        actions(&evs, "volume"),
        ["create", "mount", "destroy"],
        "{out}"
    );
    assert_eq!(
        actions(&evs, "network"),
        ["create", "connect", "disconnect", "destroy"],
        "{out}"
    );

    // Filters: type and event, container by name, label.
    for cli in docker_clients() {
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
    }
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
    assert_eq!(got.trim(), "create,mount,destroy");
    // A bad filter is docker's 400.
    let (code, body) = s.http(
        "GET",
        "/v1.41/events?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D&until=1",
        None,
    )?;
    assert_eq!(code, 400, "{body}");

    // A container's anonymous volume: made, mounted and removed with it (--rm).
    let t2 = format!("{:.3}", now() - 0.2);
    s.docker_ok(cli, &["run", "--rm", "-v", "/anon", "busybox", "echo"])?;
    std::thread::sleep(Duration::from_millis(300));
    let t3 = format!("{:.3}", now());
    let out = s.env.ok(&[
        "events",
        "--since",
        &t2,
        "--until",
        &t3,
        "--filter",
        "type=volume",
        "--format",
        "{{.Action}}",
    ])?;
    assert_eq!(out, "create\nmount\ndestroy\n");

    // Health checks report each change of status.
    let t4 = format!("{:.3}", now() - 0.2);
    s.env.ok(&[
        "run",
        "-d",
        "--name",
        "hc",
        "--health-cmd",
        "echo ok",
        "--health-interval",
        "200ms",
        "busybox",
        "sleep",
        "30",
    ])?;
    let mut seen = String::new();
    for _ in 0..50 {
        let t = format!("{:.3}", now());
        seen = s.env.ok(&[
            "events",
            "--since",
            &t4,
            "--until",
            &t,
            "--filter",
            "event=health_status",
            "--format",
            "{{.Action}}",
        ])?;
        if !seen.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(seen, "health_status: healthy\n");
    s.env.ok(&["rm", "-f", "hc"])?;

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

#[test]
fn stats_system_df_info_and_version_through_docker_the_sdk_and_berth() -> Result<()> {
    let s = Service::start()?;
    let cli = *docker_clients().last().unwrap_or(&"/usr/bin/docker");
    s.docker_ok(
        cli,
        &["run", "-d", "--name", "st", "busybox", "sleep", "60"],
    )?;
    let out = s.docker_ok(
        cli,
        &[
            "stats",
            "--no-stream",
            "--format",
            "{{.Name}} {{.PIDs}}",
            "st",
        ],
    )?;
    assert_eq!(out.trim(), "st 1", "{out}");
    let (code, body) = s.http("GET", "/v1.41/containers/st/stats?stream=false", None)?;
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body)?;
    assert!(
        v["cpu_stats"]["cpu_usage"]["total_usage"]
            .as_u64()
            .unwrap_or(0)
            > 0,
        "{v}"
    );
    assert!(
        v["precpu_stats"]["system_cpu_usage"].as_u64().unwrap_or(0) > 0,
        "{v}"
    );
    assert!(v["memory_stats"]["usage"].as_u64().unwrap_or(0) > 0, "{v}");
    assert_eq!(v["pids_stats"]["current"], 1, "{v}");
    assert!(v["networks"]["eth0"]["rx_bytes"].is_u64(), "{v}");
    assert_eq!(v["name"], "/st");
    let (code, _) = s.http("GET", "/v1.41/containers/nope/stats?stream=false", None)?;
    assert_eq!(code, 404);
    let got = python(
        &s,
        r#"
import docker
c = docker.from_env()
st = c.containers.get("st").stats(stream=False)
print(st["memory_stats"]["usage"] > 0, st["pids_stats"]["current"])
gen = c.containers.get("st").stats(stream=True, decode=True)
first, second = next(gen), next(gen)
gen.close()
print(second["precpu_stats"]["cpu_usage"]["total_usage"] == first["cpu_stats"]["cpu_usage"]["total_usage"])
df = c.df()
print(len(df["Containers"]), len(df["Images"]), df["Containers"][0]["SizeRw"] >= 0)
"#,
    )?;
    assert_eq!(got, "True 1\nTrue\n1 1 True\n");
    let out = s
        .env
        .ok(&["stats", "--no-stream", "--format", "{{.Name}}\\t{{.PIDs}}"])?;
    assert_eq!(out, "st\t1\n");
    let out = s.env.ok(&["stats", "--no-stream"])?;
    assert!(
        out.starts_with("CONTAINER ID")
            && out.contains("MEM USAGE / LIMIT")
            && out.contains(" st "),
        "{out}"
    );

    let want = "Images 1\nContainers 1\nLocal Volumes 0\nBuild Cache 0\n";
    let out = s.docker_ok(
        cli,
        &["system", "df", "--format", "{{.Type}} {{.TotalCount}}"],
    )?;
    assert_eq!(out, want);
    let out = s
        .env
        .ok(&["system", "df", "--format", "{{.Type}} {{.TotalCount}}"])?;
    assert_eq!(out, want);
    let out = s.env.ok(&["system", "df"])?;
    assert!(
        out.starts_with("TYPE") && out.contains("Local Volumes"),
        "{out}"
    );
    for c in docker_clients() {
        let out = s.docker_ok(c, &["system", "df", "-v"])?;
        assert!(
            out.contains("Containers space usage:") && out.contains(" st"),
            "{c}: {out}"
        );
    }
    let out = s.env.ok(&["system", "df", "-v"])?;
    assert!(
        out.contains("Containers space usage:") && out.contains(" st"),
        "{out}"
    );

    let out = s.docker_ok(cli, &["info", "--format", "{{.ContainersRunning}}"])?;
    assert_eq!(out.trim(), "1");
    let out = s
        .env
        .ok(&["info", "--format", "{{.ContainersRunning}} {{.Images}}"])?;
    assert_eq!(out.trim(), "1 1");
    let out = s.env.ok(&["info"])?;
    assert!(
        out.contains("Server:\n Containers: 1\n  Running: 1"),
        "{out}"
    );
    let sv = s.docker_ok(cli, &["version", "--format", "{{.Server.Version}}"])?;
    let bv = s.env.ok(&[
        "version",
        "--format",
        "{{.Server.Version}} {{.Server.APIVersion}}",
    ])?;
    assert_eq!(format!("{} 1.51", sv.trim()), bv.trim());
    assert!(s.env.ok(&["version"])?.contains("API version:"));
    s.docker_ok(cli, &["stop", "-t", "0", "st"])?;
    let out = s.docker_ok(cli, &["system", "prune", "-f"])?;
    assert!(
        out.contains("Deleted Containers:") && out.contains("Total reclaimed space"),
        "{out}"
    );
    let out = s.env.ok(&["system", "prune", "-f", "--volumes"])?;
    assert!(out.contains("Total reclaimed space"), "{out}");
    assert!(s.env.records().is_empty());
    s.env.assert_clean(&[]);
    Ok(())
}

fn cgroup_value(v1: &str, v2: &str, id: &str) -> String {
    let p = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        format!("/sys/fs/cgroup/berth/{id}/{v2}")
    } else {
        format!("/sys/fs/cgroup/{v1}/berth/{id}/{}", v1_file(v1, v2))
    };
    std::fs::read_to_string(&p).unwrap_or_else(|e| format!("{p}: {e}"))
}

fn v1_file(ctl: &str, v2: &str) -> String {
    match (ctl, v2) {
        ("memory", _) => "memory.limit_in_bytes".into(),
        (_, f) => f.into(),
    }
}

#[test]
fn diff_export_update_commit_and_import() -> Result<()> {
    let s = Service::start()?;
    let cli = docker_clients()[0];
    let tmp = tempfile::tempdir()?;
    s.docker_ok(
        cli,
        &[
            "run",
            "-d",
            "--name",
            "ch",
            "busybox",
            "sh",
            "-c",
            "echo hi > /tmp/new; busybox rm /etc/group; mkdir /data; echo x > /data/f; sleep 60",
        ],
    )?;
    let mut diff = String::new();
    for _ in 0..100 {
        diff = s.docker_ok(cli, &["diff", "ch"])?;
        if diff.contains("A /data/f") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for want in [
        "C /etc",
        "D /etc/group",
        "A /data",
        "A /data/f",
        "C /tmp",
        "A /tmp/new",
    ] {
        assert!(diff.lines().any(|l| l == want), "{want} missing:\n{diff}");
    }
    assert!(
        !diff.contains("/etc/hosts") && !diff.contains("/proc"),
        "{diff}"
    );
    assert_eq!(s.env.ok(&["diff", "ch"])?, diff);
    let (code, _) = s.http("GET", "/v1.41/containers/nope/changes", None)?;
    assert_eq!(code, 404);

    // export, over the API and from berth's CLI
    let t1 = tmp.path().join("a.tar");
    s.docker_ok(cli, &["export", "-o", &t1.to_string_lossy(), "ch"])?;
    let t2 = tmp.path().join("b.tar");
    s.env.ok(&["export", "-o", &t2.to_string_lossy(), "ch"])?;
    for t in [&t1, &t2] {
        let mut archive = tar::Archive::new(std::fs::File::open(t)?);
        let list: Vec<String> = archive
            .entries()?
            .filter_map(|e| e.ok())
            .filter_map(|e| e.path().ok().map(|p| p.to_string_lossy().into_owned()))
            .collect();
        let list = list.join("\n");
        assert!(list.lines().any(|l| l == "data/f"), "{list}");
        assert!(list.lines().any(|l| l == "bin/busybox"), "{list}");
        assert!(!list.lines().any(|l| l == "etc/group"), "{list}");
    }

    // update: the live cgroup and the record
    let id = s
        .docker_ok(cli, &["inspect", "-f", "{{.Id}}", "ch"])?
        .trim()
        .to_string();
    s.docker_ok(
        cli,
        &["update", "--memory", "64m", "--pids-limit", "50", "ch"],
    )?;
    assert_eq!(cgroup_value("memory", "memory.max", &id).trim(), "67108864");
    assert_eq!(cgroup_value("pids", "pids.max", &id).trim(), "50");
    let m = s.docker_ok(cli, &["inspect", "-f", "{{.HostConfig.Memory}}", "ch"])?;
    assert_eq!(m.trim(), "67108864");
    s.env.ok(&[
        "update",
        "--restart",
        "on-failure:2",
        "--memory",
        "80m",
        "ch",
    ])?;
    assert_eq!(cgroup_value("memory", "memory.max", &id).trim(), "83886080");
    let p = s.docker_ok(
        cli,
        &["inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}", "ch"],
    )?;
    assert_eq!(p.trim(), "on-failure");
    let o = s.docker(cli, &["update", "--memory", "1k", "ch"])?;
    assert!(!o.success() && o.stderr.contains("Minimum memory"), "{o}");
    let (code, _) = s.http("POST", "/v1.41/containers/nope/update", Some("{}"))?;
    assert_eq!(code, 404);

    // commit: the changes and the -c instructions make the new image
    let out = s.docker_ok(
        cli,
        &[
            "commit",
            "-m",
            "snap",
            "-c",
            "CMD [\"cat\", \"/data/f\"]",
            "ch",
            "committed:1",
        ],
    )?;
    assert!(out.trim().starts_with("sha256:"), "{out}");
    assert_eq!(s.docker_ok(cli, &["run", "--rm", "committed:1"])?, "x\n");
    let o = s.docker(cli, &["run", "--rm", "committed:1", "cat", "/etc/group"])?;
    assert!(!o.success(), "deleted file came back: {o}");
    let id2 = s
        .env
        .ok(&["commit", "--pause=false", "ch", "committed:2"])?;
    assert!(id2.starts_with("sha256:"), "{id2}");
    assert_eq!(
        s.env
            .ok(&["run", "--rm", "committed:2", "cat", "/tmp/new"])?,
        "hi\n"
    );
    let h = python(
        &s,
        r#"
import docker
c = docker.from_env()
img = c.containers.get("ch").commit("committed", "3", message="py", changes=["ENV A=b"])
print("A=b" in img.attrs["Config"]["Env"])
"#,
    )?;
    assert_eq!(h.trim(), "True");

    // import: the exported archive as a one-layer image
    let tar = std::fs::read(&t1)?;
    let o = s.docker_stdin(
        cli,
        &[
            "import",
            "-c",
            "CMD [\"cat\", \"/data/f\"]",
            "-",
            "imported:1",
        ],
        &tar,
    )?;
    assert!(o.success() && o.stdout.starts_with("sha256:"), "{o}");
    assert_eq!(s.docker_ok(cli, &["run", "--rm", "imported:1"])?, "x\n");
    let out = s.env.ok(&["import", &t2.to_string_lossy(), "imported:2"])?;
    assert!(out.starts_with("sha256:"), "{out}");
    assert_eq!(
        s.env
            .ok(&["run", "--rm", "imported:2", "cat", "/tmp/new"])?,
        "hi\n"
    );
    let (code, body) = s.http(
        "POST",
        "/v1.41/images/create?fromSrc=http%3A%2F%2Fexample.com%2Fx.tar",
        Some(""),
    )?;
    assert_eq!(code, 501, "{body}");

    s.docker_ok(cli, &["rm", "-f", "ch"])?;
    let t_rmi = format!("{:.3}", now() - 0.1);
    s.docker_ok(
        cli,
        &[
            "rmi",
            "committed:1",
            "committed:2",
            "committed:3",
            "imported:1",
            "imported:2",
        ],
    )?;
    let t_end = format!("{:.3}", now() + 0.1);
    std::thread::sleep(Duration::from_millis(200));
    let out = s.env.ok(&[
        "events",
        "--since",
        &t_rmi,
        "--until",
        &t_end,
        "--filter",
        "type=image",
        "--format",
        "{{.Action}}",
    ])?;
    assert_eq!(out.matches("untag").count(), 5, "{out}");
    assert!(out.contains("delete"), "{out}");
    s.env.assert_clean(&[]);
    Ok(())
}

#[test]
fn x_registry_auth_is_used_for_pull_and_push() -> Result<()> {
    use spec_tests::manager::registry::{Auth, Registry, RegistryOptions, PASSWORD, USER};
    let reg = Registry::start(RegistryOptions {
        tls: false,
        auth: Auth::Basic,
    })?;
    let s = Service::start()?;
    let host = reg.host();
    let got = python(
        &s,
        &format!(
            r#"
import docker
c = docker.from_env()
auth = {{"username": "{USER}", "password": "{PASSWORD}"}}
c.images.get("busybox").tag("{host}/x/bb", "1")
out = c.images.push("{host}/x/bb", "1")
print("anonymous push refused:", "error" in out)
out = c.images.push("{host}/x/bb", "1", auth_config=auth)
print("push with auth:", "error" not in out)
c.images.remove("{host}/x/bb:1")
try:
    c.images.pull("{host}/x/bb", "1")
    print("anonymous pull refused: False")
except docker.errors.APIError:
    print("anonymous pull refused: True")
img = c.images.pull("{host}/x/bb", "1", auth_config=auth)
print("pull with auth:", "{host}/x/bb:1" in img.tags)
c.images.remove("{host}/x/bb:1")
"#
        ),
    )?;
    assert_eq!(
        got,
        "anonymous push refused: True\npush with auth: True\nanonymous pull refused: True\npull with auth: True\n",
        "{}",
        s.log()
    );
    Ok(())
}

#[test]
fn berth_attach_streams_and_detaches_with_its_keys() -> Result<()> {
    let s = Service::start()?;
    let cli = docker_clients()[0];
    let t0 = format!("{:.3}", now() - 1.0);
    s.docker_ok(cli, &["run", "-dit", "--name", "att2", "busybox", "sh"])?;
    let c = s
        .env
        .berth
        .cmd(&["attach", "--detach-keys", "ctrl-x,x", "att2"])?;
    let pty = spec_tests::engines::PtyClient::spawn(c)?;
    std::thread::sleep(Duration::from_millis(300));
    pty.write("echo attached-$((2+3))\n")?;
    pty.read_until("attached-5", Duration::from_secs(20))?;
    pty.write("\x18x")?;
    let code = pty.wait(Duration::from_secs(20))?;
    assert_eq!(code, Some(0));
    let st = s.env.ok(&["inspect", "-f", "{{.State.Status}}", "att2"])?;
    assert_eq!(st.trim(), "running");
    let until = format!("{:.3}", now());
    let ev = s.env.ok(&[
        "events",
        "--since",
        &t0,
        "--until",
        &until,
        "--filter",
        "event=attach",
        "--format",
        "{{.Actor.Attributes.name}}",
    ])?;
    assert_eq!(ev.trim(), "att2");
    let o = s.env.run(&["attach", "--detach-keys", "ctrl-", "att2"])?;
    assert_ne!(o.0, 0, "bad detach keys accepted: {o:?}");
    s.docker_ok(cli, &["restart", "-t", "1", "att2"])?;
    std::thread::sleep(Duration::from_millis(200));
    let until = format!("{:.3}", now());
    let ev = s.env.ok(&[
        "events",
        "--since",
        &t0,
        "--until",
        &until,
        "--filter",
        "container=att2",
        "--format",
        "{{.Action}}{{with .Actor.Attributes.signal}}={{.}}{{end}}",
    ])?;
    let lines: Vec<&str> = ev.lines().collect();
    let at = lines
        .iter()
        .position(|l| *l == "kill=15")
        .unwrap_or(usize::MAX);
    assert!(
        lines
            .get(at..)
            .is_some_and(|rest| rest.starts_with(&["kill=15", "die", "stop"])
                && rest.contains(&"start")
                && rest.last() == Some(&"restart")),
        "{ev}"
    );
    s.env.ok(&["rm", "-f", "att2"])?;
    Ok(())
}
