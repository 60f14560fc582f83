//! The verbs around `up`: ps, logs (prefixed), exec, run, stop, start, restart, kill,
//! pause, unpause, rm, top, port, images, ls, config --hash, version.

use anyhow::{Context, Result};
use spec_tests::manager::compose::Project;

#[test]
fn the_verbs_act_on_the_projects_containers() -> Result<()> {
    let p = Project::new(
        "verbs",
        r#"
services:
  web:
    image: @IMAGE@
    command: ["sh", "-c", "echo web says hi; exec sleep 600"]
    ports: ["127.0.0.1::80"]
    environment: {ROLE: web}
    stop_grace_period: 1s
  worker:
    image: @IMAGE@
    command: ["sh", "-c", "echo worker ready; exec sleep 600"]
    stop_grace_period: 1s
"#,
    )?;
    p.ok(&["up", "-d"])?;
    let web = format!("{}-web-1", p.name);
    let worker = format!("{}-worker-1", p.name);

    let (ps, _) = p.ok(&["ps"])?;
    assert!(ps.starts_with("NAME"), "{ps}");
    assert!(ps.contains(&web) && ps.contains(&worker), "{ps}");
    let (services, _) = p.ok(&["ps", "--services"])?;
    assert_eq!(services, "web\nworker\n");
    let (q, _) = p.ok(&["ps", "-q"])?;
    assert_eq!(q.lines().count(), 2);
    // berth ps sees the same containers.
    let plain = p.berth.ok(&["ps", "--format", "{{.Names}}"])?;
    assert!(plain.contains(&web) && plain.contains(&worker));

    // Logs are prefixed with the container's name.
    let mut logs = String::new();
    for _ in 0..50 {
        logs = p.ok(&["logs", "--no-color"])?.0;
        if logs.contains("worker ready") && logs.contains("web says hi") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        logs.lines()
            .any(|l| l.starts_with(&web) && l.ends_with("| web says hi")),
        "{logs}"
    );
    let (only, _) = p.ok(&["logs", "--no-log-prefix", "worker"])?;
    assert_eq!(only.trim(), "worker ready");

    let (out, _) = p.ok(&["exec", "-T", "web", "sh", "-c", "echo $ROLE"])?;
    assert_eq!(out.trim(), "web");
    let out = p.run(&["exec", "-T", "web", "sh", "-c", "exit 4"])?;
    assert_eq!(out.status.code(), Some(4));

    // run: a one-off container with the service's environment, removed with --rm.
    let (out, _) = p.ok(&["run", "--rm", "-T", "web", "sh", "-c", "echo run $ROLE"])?;
    assert_eq!(out.trim(), "run web");
    let out = p.run(&["run", "--rm", "-T", "web", "sh", "-c", "exit 3"])?;
    assert_eq!(out.status.code(), Some(3));
    assert!(!p.all_containers()?.iter().any(|n| n.contains("-run-")));

    let local = p.path("passwd.txt");
    p.ok(&["cp", "web:/etc/passwd", &local.display().to_string()])?;
    assert!(std::fs::read_to_string(&local)?.starts_with("root:"));
    p.ok(&["cp", &local.display().to_string(), "worker:/tmp/copied"])?;
    let (copied, _) = p.ok(&["exec", "-T", "worker", "cat", "/tmp/copied"])?;
    assert!(copied.starts_with("root:"), "{copied}");

    let (port, _) = p.ok(&["port", "web", "80"])?;
    assert!(port.trim().starts_with("127.0.0.1:"), "{port}");
    let (top, _) = p.ok(&["top", "web"])?;
    assert!(top.contains("sleep 600"), "{top}");
    let (images, _) = p.ok(&["images"])?;
    assert!(
        images.contains("CONTAINER") && images.contains(&web),
        "{images}"
    );
    let (ls, _) = p.ok(&["ls"])?;
    assert!(ls.contains(&p.name) && ls.contains("running(2)"), "{ls}");

    p.ok(&["pause", "worker"])?;
    assert_eq!(p.inspect(&worker, "{{.State.Status}}")?, "paused");
    p.ok(&["unpause", "worker"])?;
    assert_eq!(p.inspect(&worker, "{{.State.Status}}")?, "running");

    p.ok(&["stop", "-t", "0", "worker"])?;
    assert_eq!(p.inspect(&worker, "{{.State.Status}}")?, "exited");
    let (ps, _) = p.ok(&["ps", "--services"])?;
    assert_eq!(ps, "web\n");
    let (ps, _) = p.ok(&["ps", "-a", "--status", "exited", "--format", "json"])?;
    assert!(ps.contains("\"Service\":\"worker\""), "{ps}");
    p.ok(&["start", "worker"])?;
    assert_eq!(p.inspect(&worker, "{{.State.Status}}")?, "running");
    let before = p.inspect(&web, "{{.State.StartedAt}}")?;
    p.ok(&["restart", "-t", "0", "web"])?;
    assert_ne!(p.inspect(&web, "{{.State.StartedAt}}")?, before);
    p.ok(&["kill", "worker"])?;
    spec_tests::manager::network::wait_until(std::time::Duration::from_secs(5), || {
        p.inspect(&worker, "{{.State.Status}}")
            .is_ok_and(|s| s == "exited")
    })?;
    p.ok(&["rm", "-f", "worker"])?;
    assert!(!p.all_containers()?.contains(&worker));

    let (hash, _) = p.ok(&["config", "--hash", "web"])?;
    assert!(hash.starts_with("web "), "{hash}");
    let label = p.inspect(
        &web,
        "{{index .Config.Labels \"com.docker.compose.config-hash\"}}",
    )?;
    assert_eq!(hash.trim(), format!("web {label}"));
    let (v, _) = p.ok(&["version", "--short"])?;
    assert!(v.trim().starts_with('2'), "{v}");
    let err = p.fail(&["exec", "-T", "nosuch", "true"])?;
    assert!(err.contains("no such service: nosuch"), "{err}");
    Ok(())
}

#[test]
fn foreground_up_streams_logs_and_mounts_secrets_and_configs() -> Result<()> {
    let p = Project::new(
        "fg",
        r#"
services:
  job:
    image: @IMAGE@
    command: ["sh", "-c", "cat /run/secrets/token /app.conf /run/secrets/inline; exit 5"]
    secrets: [token, inline]
    configs:
      - source: conf
        target: /app.conf
  other:
    image: @IMAGE@
    command: ["sh", "-c", "echo other done"]
secrets:
  token:
    file: ./token.txt
  inline:
    environment: INLINE_SECRET
configs:
  conf:
    content: "conf-line"
"#,
    )?;
    p.write("token.txt", "s3cret\n")?;
    let mut cmd = p
        .berth
        .cmd(&["compose", "-p", &p.name, "up", "--exit-code-from", "job"])?;
    cmd.current_dir(p.root()).env("INLINE_SECRET", "from-env");
    let out = cmd.output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(5),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let job = format!("{}-job-1", p.name);
    for want in ["s3cret", "conf-line", "from-env"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&job) && l.contains(want)),
            "{want}: {stdout}"
        );
    }
    Ok(())
}

#[test]
fn up_pulls_missing_images_from_a_registry() -> Result<()> {
    use spec_tests::manager::compose::BUSYBOX;
    use spec_tests::manager::registry::Registry;
    let registry = Registry::plain()?;
    let image = format!("{}/compose/busybox:1", registry.host());
    let p = Project::new(
        "pull",
        &format!(
            "services:\n  app:\n    image: {image}\n    command: [\"sleep\", \"600\"]\n    stop_signal: SIGKILL\n  never:\n    image: {image}-missing\n    pull_policy: never\n    profiles: [never]\n"
        ),
    )?;
    p.berth.ok(&["tag", BUSYBOX, &image])?;
    p.berth.ok(&["push", &image])?;
    p.berth.ok(&["rmi", &image])?;
    let (_, err) = p.ok(&["up", "-d"])?;
    assert!(err.contains(&format!("Image {image}  Pulled")), "{err}");
    assert_eq!(
        p.inspect(&format!("{}-app-1", p.name), "{{.State.Status}}")?,
        "running"
    );
    let err = p.fail(&["--profile", "never", "up", "-d", "never"])?;
    assert!(err.contains(&format!("{image}-missing")), "{err}");
    Ok(())
}

#[test]
fn build_sections_are_built_tagged_and_run_and_cached_on_the_second_up() -> Result<()> {
    let p = Project::new(
        "build",
        r#"
services:
  app:
    build:
      context: ./app
      args: {GREETING: hello-from-build}
    command: ["cat", "/greeting"]
  named:
    image: composebuilt/named:1
    build:
      context: ./app
      dockerfile_inline: |
        FROM @IMAGE@
        RUN echo inline > /greeting
      target: ""
    command: ["cat", "/greeting"]
"#,
    )?;
    p.write(
        "app/Dockerfile",
        "FROM @IMAGE@\nARG GREETING\nRUN echo $GREETING > /greeting\n",
    )?;
    p.ok(&["up", "-d"])?;
    p.ok(&["wait", "app", "named"])?;
    let (logs, _) = p.ok(&["logs", "--no-log-prefix", "app"])?;
    assert_eq!(logs.trim(), "hello-from-build");
    let (logs, _) = p.ok(&["logs", "--no-log-prefix", "named"])?;
    assert_eq!(logs.trim(), "inline");
    // Tagged PROJECT-SERVICE and with the service's image name.
    let images = p
        .berth
        .ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"])?;
    assert!(
        images.contains(&format!("{}-app:latest", p.name)),
        "{images}"
    );
    assert!(images.contains("composebuilt/named:1"), "{images}");
    // `compose build` again comes from the cache.
    let (out, err) = p.ok(&["build", "app"])?;
    assert!((out.clone() + &err).contains("Using cache"), "{out}{err}");
    Ok(())
}

/// Kills and reaps the `compose events` child even when the test fails.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn events_follow_the_projects_containers_with_their_service() -> Result<()> {
    use std::io::BufRead;
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    let p = Project::new(
        "events",
        r#"
services:
  web:
    image: @IMAGE@
    command: ["sleep", "600"]
    stop_grace_period: 1s
"#,
    )?;
    let mut cmd = p
        .berth
        .cmd(&["compose", "-p", &p.name, "events", "--json"])?;
    cmd.current_dir(p.root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    let mut child = Child(cmd.spawn()?);
    let stdout = child.0.stdout.take().context("no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(|l| l.ok())
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Ready once it follows the journal (it has it open), as far as a bounded wait tells.
    let journal = p.berth.root().join("events/journal");
    let fds = format!("/proc/{}/fd", child.0.id());
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(5) {
        let open = std::fs::read_dir(&fds)?
            .filter_map(|e| e.ok())
            .any(|e| std::fs::read_link(e.path()).is_ok_and(|l| l == journal));
        if open {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    p.ok(&["up", "-d"])?;
    p.ok(&["stop"])?;
    let id = p.inspect(&format!("{}-web-1", p.name), "{{.Id}}")?;
    let (mut seen, mut lines) = (Vec::new(), Vec::new());
    let deadline = Instant::now() + Duration::from_secs(10);
    let ended = |a: &String| a == "stop" || a == "die";
    while !(seen.iter().any(|a| a == "start") && seen.iter().any(ended)) {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = rx.recv_timeout(left) else {
            anyhow::bail!("no start and stop/die events within 10 s: {lines:#?}");
        };
        let v: serde_json::Value = serde_json::from_str(&line)?;
        assert_eq!(v["type"], "container", "{line}");
        assert_eq!(v["service"], "web", "{line}");
        assert_eq!(v["id"], id.as_str(), "{line}");
        assert!(v["time"].is_string(), "{line}");
        assert_eq!(
            v["attributes"]["name"],
            format!("{}-web-1", p.name),
            "{line}"
        );
        seen.push(v["action"].as_str().unwrap_or_default().to_string());
        lines.push(line);
    }
    let start = seen.iter().position(|a| a == "start");
    let end = seen.iter().position(ended);
    assert!(start < end, "{lines:#?}");
    drop(child);
    Ok(())
}
