//! `berth system service` driven by real clients: docker's CLIs (20.10 and the newer one),
//! raw HTTP, docker-compose 1.29 and the Python SDK; bad requests get docker's status codes
//! and leave nothing behind; SIGTERM and the idle timeout stop the service while
//! containers keep running.

use std::time::Duration;

use anyhow::Result;
use serde_json::Value;
use spec_tests::engines::PtyClient;
use spec_tests::manager::api::{docker_clients, Service, PYTHON_SDK};

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or(Value::Null)
}

#[test]
fn ping_negotiates_versions_and_unknown_routes_answer_501() -> Result<()> {
    let s = Service::start()?;
    let (code, body) = s.http("GET", "/_ping", None)?;
    assert_eq!((code, body.as_str()), (200, "OK"));
    let (code, _) = s.http("HEAD", "/v1.41/_ping", None)?;
    assert_eq!(code, 200);
    let (code, body) = s.http("GET", "/v1.99/version", None)?;
    assert_eq!(code, 400, "{body}");
    assert!(
        json(&body)["message"]
            .as_str()
            .unwrap_or("")
            .contains("too new"),
        "{body}"
    );
    let (code, body) = s.http("GET", "/v1.12/version", None)?;
    assert_eq!(code, 400, "{body}");
    let (code, body) = s.http("GET", "/v1.41/plugins", None)?;
    assert_eq!(code, 501, "{body}");
    assert!(
        json(&body)["message"]
            .as_str()
            .unwrap_or("")
            .contains("/plugins"),
        "{body}"
    );
    // A node outside any swarm, as dockerd answers it (clients read 503 as "no swarm").
    let (code, body) = s.http("GET", "/v1.41/swarm", None)?;
    assert_eq!(code, 503, "{body}");
    let (code, body) = s.http("POST", "/v1.41/swarm/leave?force=1", None)?;
    assert_eq!(code, 503, "{body}");
    assert_eq!(json(&body)["message"], "This node is not part of a swarm");
    let (code, body) = s.http("GET", "/v1.41/version", None)?;
    assert_eq!(code, 200);
    assert_eq!(json(&body)["ApiVersion"], "1.51");
    for cli in docker_clients() {
        let v = s.docker_ok(cli, &["version", "--format", "{{.Server.APIVersion}}"])?;
        assert_eq!(v.trim(), "1.51", "{cli}");
        let info = s.docker_ok(cli, &["info", "--format", "{{.Images}} {{.OSType}}"])?;
        assert_eq!(info.trim(), "1 linux", "{cli}");
    }
    Ok(())
}

#[test]
fn bad_requests_get_dockers_status_codes_and_create_nothing() -> Result<()> {
    let s = Service::start()?;
    let (code, body) = s.http("POST", "/v1.41/containers/create", Some("{not json"))?;
    assert_eq!(code, 400, "{body}");
    let (code, _) = s.http("POST", "/v1.41/containers/create", None)?;
    assert_eq!(code, 400);
    let (code, body) = s.http(
        "POST",
        "/v1.41/containers/create",
        Some(r#"{"Image":"no-such-image:1"}"#),
    )?;
    assert_eq!(code, 404, "{body}");
    let (code, body) = s.http(
        "POST",
        "/v1.41/containers/create?name=bad%2Fname",
        Some(r#"{"Image":"busybox"}"#),
    )?;
    assert_eq!(code, 400, "{body}");
    let (code, body) = s.http(
        "POST",
        "/v1.41/containers/create",
        Some(r#"{"Image":"busybox","HostConfig":{"Mounts":[{"Type":"bind","Source":"/no/such/berth/dir","Target":"/y"}]}}"#),
    )?;
    assert_eq!(code, 400, "{body}");
    assert!(
        s.env.records().is_empty(),
        "half-made: {:?}",
        s.env.records()
    );
    let (code, _) = s.http("GET", "/v1.41/containers/nope/json", None)?;
    assert_eq!(code, 404);
    let (code, _) = s.http("POST", "/v1.41/containers/nope/start", None)?;
    assert_eq!(code, 404);
    let (code, _) = s.http("DELETE", "/v1.41/containers/nope", None)?;
    assert_eq!(code, 404);
    let (code, _) = s.http("GET", "/v1.41/exec/nope/json", None)?;
    assert_eq!(code, 404);
    let body = r#"{"Image":"busybox","Cmd":["sleep","30"]}"#;
    let (code, _) = s.http("POST", "/v1.41/containers/create?name=one", Some(body))?;
    assert_eq!(code, 201);
    let (code, msg) = s.http("POST", "/v1.41/containers/create?name=one", Some(body))?;
    assert_eq!(code, 409, "{msg}");
    assert!(msg.contains("already in use"), "{msg}");
    assert_eq!(s.env.records().len(), 1);
    let (code, _) = s.http("POST", "/v1.41/containers/one/start", None)?;
    assert_eq!(code, 204);
    let (code, msg) = s.http("DELETE", "/v1.41/containers/one", None)?;
    assert_eq!(code, 409, "{msg}");
    let (code, _) = s.http("DELETE", "/v1.41/containers/one?force=1", None)?;
    assert_eq!(code, 204);
    s.env.assert_clean(&[]);
    Ok(())
}

#[test]
fn docker_clis_run_exec_logs_cp_and_share_the_store_with_berth() -> Result<()> {
    let s = Service::start()?;
    for (i, cli) in docker_clients().into_iter().enumerate() {
        let out = s.docker_ok(cli, &["run", "--rm", "busybox", "echo", "hello"])?;
        assert_eq!(out, "hello\n", "{cli}");
        let o = s.docker(
            cli,
            &[
                "run",
                "--rm",
                "busybox",
                "sh",
                "-c",
                "echo o; echo e >&2; exit 3",
            ],
        )?;
        assert_eq!(
            (o.code, o.stdout.as_str(), o.stderr.as_str()),
            (Some(3), "o\n", "e\n"),
            "{cli}"
        );
        let o = s.docker_stdin(
            cli,
            &["run", "--rm", "-i", "busybox", "sh", "-c", "cat; echo end"],
            b"piped\n",
        )?;
        assert_eq!(o.stdout, "piped\nend\n", "{cli}: {}", o.stderr);
        let name = format!("bg{i}");
        s.docker_ok(
            cli,
            &[
                "run",
                "-d",
                "--name",
                &name,
                "busybox",
                "sh",
                "-c",
                "echo started; sleep 60",
            ],
        )?;
        // The CLI and the service share one store.
        let ps = s.env.ok(&["ps", "--format", "{{.Names}}"])?;
        assert!(ps.lines().any(|l| l == name), "{ps}");
        let o = s.docker(
            cli,
            &["exec", &name, "sh", "-c", "echo in; echo err >&2; exit 4"],
        )?;
        assert_eq!(
            (o.code, o.stdout.as_str(), o.stderr.as_str()),
            (Some(4), "in\n", "err\n"),
            "{cli}"
        );
        let logs = s.docker_ok(cli, &["logs", &name])?;
        assert_eq!(logs, "started\n", "{cli}");
        let ps = s.docker_ok(cli, &["ps", "--format", "{{.Names}} {{.Status}}"])?;
        assert!(ps.contains(&format!("{name} Up")), "{ps}");
        let f = s.dir().join(format!("in{i}.txt"));
        std::fs::write(&f, "copied in\n")?;
        s.docker_ok(
            cli,
            &["cp", &f.display().to_string(), &format!("{name}:/tmp/")],
        )?;
        let o = s.docker_ok(cli, &["exec", &name, "cat", &format!("/tmp/in{i}.txt")])?;
        assert_eq!(o, "copied in\n");
        let back = s.dir().join(format!("back{i}"));
        s.docker_ok(
            cli,
            &[
                "cp",
                &format!("{name}:/etc/passwd"),
                &back.display().to_string(),
            ],
        )?;
        assert!(std::fs::read_to_string(&back)?.starts_with("root:"));
        // Made by berth's CLI, seen and removed through the API.
        let cname = format!("cli{i}");
        s.env.ok(&["create", "--name", &cname, "busybox", "true"])?;
        let names = s.docker_ok(cli, &["ps", "-a", "--format", "{{.Names}}"])?;
        assert!(names.lines().any(|l| l == cname), "{names}");
        s.docker_ok(cli, &["rm", "-f", &name, &cname])?;
    }
    s.env.assert_clean(&[]);
    Ok(())
}

#[test]
fn exec_it_and_run_it_work_through_a_pty_with_resize() -> Result<()> {
    let s = Service::start()?;
    let cli = *docker_clients().last().unwrap_or(&"/usr/bin/docker");
    s.docker_ok(
        cli,
        &["run", "-d", "--name", "tty", "busybox", "sleep", "60"],
    )?;
    let mut c = s.client(cli);
    c.args(["exec", "-it", "tty", "sh"]);
    let pty = PtyClient::spawn(c)?;
    pty.write("stty size; tty; echo marker-$((6*7))\n")?;
    let out = pty.read_until("marker-42", Duration::from_secs(20))?;
    assert!(out.contains("/dev/pts/"), "{out}");
    pty.write("exit 5\n")?;
    assert_eq!(pty.wait(Duration::from_secs(20))?, Some(5));
    let mut c = s.client(cli);
    c.args([
        "run",
        "--rm",
        "-it",
        "busybox",
        "sh",
        "-c",
        "tty; echo it-$((2+3))",
    ]);
    let pty = PtyClient::spawn(c)?;
    let out = pty.read_until("it-5", Duration::from_secs(20))?;
    assert!(out.contains("/dev/pts/"), "{out}");
    assert_eq!(pty.wait(Duration::from_secs(20))?, Some(0));
    s.docker_ok(cli, &["rm", "-f", "tty"])?;
    s.env.assert_clean(&[]);
    Ok(())
}

#[test]
fn attach_detaches_with_the_detach_keys_and_the_container_runs_on() -> Result<()> {
    let s = Service::start()?;
    let cli = *docker_clients().last().unwrap_or(&"/usr/bin/docker");
    s.docker_ok(cli, &["run", "-dit", "--name", "att", "busybox", "sh"])?;
    let mut c = s.client(cli);
    c.args(["attach", "att"]);
    let pty = PtyClient::spawn(c)?;
    std::thread::sleep(Duration::from_millis(500));
    pty.write("echo attached-$((1+1))\n")?;
    pty.read_until("attached-2", Duration::from_secs(20))?;
    // docker's CLI spots the keys itself with a tty ("read escape sequence", exit 1 for
    // 28, as against dockerd); what matters is that it ends and the container runs on.
    pty.write("\x10\x11")?;
    let code = pty.wait(Duration::from_secs(20))?;
    assert!(matches!(code, Some(0 | 1)), "{code:?}");
    let st = s.docker_ok(cli, &["inspect", "-f", "{{.State.Status}}", "att"])?;
    assert_eq!(st.trim(), "running");
    s.docker_ok(cli, &["rm", "-f", "att"])?;
    Ok(())
}

#[test]
fn compose_brings_two_services_up_with_name_resolution_and_down() -> Result<()> {
    let s = Service::start()?;
    let dir = s.dir().join("proj");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("docker-compose.yml"),
        r#"version: "3.8"
services:
  web:
    image: busybox
    command: ["busybox", "httpd", "-f", "-p", "8080", "-h", "/etc"]
  client:
    image: busybox
    command: ["sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://web:8080/passwd && break; sleep 1; done; sleep 300"]
    depends_on: [web]
"#,
    )?;
    let project = format!("p{}", std::process::id());
    let compose = |args: &[&str]| -> Result<spec_tests::runtime::Outcome> {
        let mut c = s.client("docker-compose");
        c.current_dir(&dir).arg("-p").arg(&project).args(args);
        spec_tests::engines::run_cmd(c, Duration::from_secs(120))
    };
    let up = compose(&["up", "-d"])?;
    assert!(up.success(), "{up}\n{}", s.log());
    let ps = s.env.ok(&["ps", "--format", "{{.Names}}"])?;
    assert_eq!(ps.lines().count(), 2, "{ps}");
    s.env.until(
        Duration::from_secs(30),
        "the client to reach web by name",
        || {
            let logs = compose(&["logs", "client"])?;
            Ok(logs.stdout.contains("root:x:0:0"))
        },
    )?;
    let down = compose(&["down"])?;
    assert!(down.success(), "{down}");
    s.env.assert_clean(&[]);
    let nets = s.env.ok(&["network", "ls"])?;
    assert!(!nets.contains(&project), "{nets}");
    Ok(())
}

#[test]
fn python_sdk_runs_lists_and_streams() -> Result<()> {
    assert!(
        std::path::Path::new(PYTHON_SDK).exists(),
        "{PYTHON_SDK} missing: run hack/setup (it installs the docker SDK from PyPI)"
    );
    let s = Service::start()?;
    let script = r#"
import docker, sys
c = docker.from_env()
assert c.ping()
out = c.containers.run("busybox", ["sh", "-c", "echo sdk-out"], remove=True)
assert out == b"sdk-out\n", out
ctr = c.containers.run("busybox", ["sh", "-c", "echo l1; sleep 60"], detach=True, name="sdk")
assert any(x.name == "sdk" for x in c.containers.list())
code, out = ctr.exec_run(["sh", "-c", "echo ex; exit 3"])
assert (code, out) == (3, b"ex\n"), (code, out)
import time
for _ in range(50):
    if b"l1" in ctr.logs(): break
    time.sleep(0.1)
assert ctr.logs() == b"l1\n", ctr.logs()
v = c.volumes.create("sdkvol")
n = c.networks.create("sdknet")
assert "sdknet" in [x.name for x in c.networks.list()]
ctr.remove(force=True)
n.remove()
v.remove()
print("ok")
"#;
    let mut c = s.client(PYTHON_SDK);
    c.args(["-c", script]);
    let o = spec_tests::engines::run_cmd(c, Duration::from_secs(120))?;
    assert!(o.success() && o.stdout.contains("ok"), "{o}\n{}", s.log());
    s.env.assert_clean(&[]);
    Ok(())
}

#[test]
fn sigterm_stops_the_service_and_containers_keep_running() -> Result<()> {
    let mut s = Service::start()?;
    let (code, body) = s.http(
        "POST",
        "/v1.41/containers/create?name=stays",
        Some(r#"{"Image":"busybox","Cmd":["sleep","60"]}"#),
    )?;
    assert_eq!(code, 201, "{body}");
    assert_eq!(
        s.http("POST", "/v1.41/containers/stays/start", None)?.0,
        204
    );
    let st = s.terminate(Duration::from_secs(15))?;
    assert!(st.success(), "{st}: {}", s.log());
    assert!(!s.socket.exists(), "the socket is removed");
    assert_eq!(s.env.status("stays")?, "running");
    Ok(())
}

#[test]
fn idle_timeout_ends_the_service() -> Result<()> {
    let mut s = Service::start_with(&["--time", "1"])?;
    assert_eq!(s.http("GET", "/_ping", None)?.0, 200);
    let st = s.wait_exit(Duration::from_secs(15))?;
    assert!(st.success(), "{st}");
    Ok(())
}
