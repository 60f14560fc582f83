//! berth compose against docker-compose 1.29 (Debian's) as the oracle, where that tool
//! supports the feature (it has no `${VAR:+r}`): the same files give the same interpolated values, service and
//! volume lists and refusals of bad input; and on a private dockerd 20.10 the same project
//! gets the same resource names, the same compose labels and the same health-gated order.

use std::path::Path;
use std::process::{Command, Output};

use anyhow::{bail, Result};
use spec_tests::engines::docker::{Dockerd, IMAGE as DOCKER_IMAGE};
use spec_tests::manager::compose::Project;

/// `docker-compose ARGS` in `dir`, against `socket` when given.
fn docker_compose(dir: &Path, socket: Option<&Path>, args: &[&str]) -> Result<Output> {
    let mut c = Command::new("docker-compose");
    c.current_dir(dir)
        .args(args)
        .env_remove("COMPOSE_FILE")
        .env_remove("COMPOSE_PROJECT_NAME")
        .env_remove("COMPOSE_PROFILES");
    if let Some(s) = socket {
        c.env("DOCKER_HOST", format!("unix://{}", s.display()));
    }
    Ok(c.output()?)
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

const FILE: &str = r#"
services:
  web:
    image: "busybox:${TAG:-1.36}"
    environment:
      COST: "$$5"
      MODE: "${MODE-unset}"
    volumes: ["data:/data"]
    depends_on: [db]
  db:
    image: busybox
  tools:
    image: busybox
    profiles: [debug]
volumes:
  data:
  cache:
"#;

#[test]
fn config_matches_docker_compose() -> Result<()> {
    let p = Project::new("cfg", FILE)?;
    p.write(".env", "TAG=1.35\nMODE=\n")?;
    let theirs = |args: &[&str]| -> Result<String> {
        let mut full = vec!["-p", &p.name];
        full.extend_from_slice(args);
        let o = docker_compose(p.root(), None, &full)?;
        if !o.status.success() {
            bail!("docker-compose {args:?}: {}", text(&o));
        }
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    };
    let ours = |args: &[&str]| -> Result<String> { Ok(p.ok(args)?.0) };
    // (Without --profile, docker-compose 1.29 lists services of inactive profiles too; v2
    // and berth do not, so services are compared with the profile on.)
    assert_eq!(ours(&["config", "--services"])?, "db\nweb\n");
    let mut a: Vec<String> = theirs(&["config", "--volumes"])?
        .lines()
        .map(String::from)
        .collect();
    let mut b: Vec<String> = ours(&["config", "--volumes"])?
        .lines()
        .map(String::from)
        .collect();
    a.sort();
    b.sort();
    assert_eq!(a, b, "config --volumes");
    let mut a: Vec<String> = theirs(&["--profile", "debug", "config", "--services"])?
        .lines()
        .map(String::from)
        .collect();
    let mut b: Vec<String> = ours(&["--profile", "debug", "config", "--services"])?
        .lines()
        .map(String::from)
        .collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);
    // The interpolated values, as both print them in YAML.
    let t = theirs(&["config"])?;
    let o = ours(&["config"])?;
    for needle in ["image: busybox:1.35", "COST: $$5", "MODE: ''"] {
        assert!(t.contains(needle), "docker-compose lacks {needle}:\n{t}");
    }
    // berth writes YAML as docker compose v2 (Go's yaml.v3) does: `""`, not PyYAML's `''`.
    // Both re-escape `$` (as docker compose v2 does too).
    for needle in ["image: busybox:1.35", "MODE: \"\"", "COST: $$5"] {
        assert!(o.contains(needle), "berth lacks {needle}:\n{o}");
    }

    // Bad input: both refuse.
    for bad in [
        "services:\n  web:\n    image: a\n    colour: red\n",
        "services:\n  web:\n    image: ${NOPE:?need NOPE}\n",
        "services:\n  web:\n    image: a\n    depends_on: [ghost]\n",
        "services:\n  web:\n    image: [a\n",
    ] {
        p.write("compose.yaml", bad)?;
        let o = docker_compose(p.root(), None, &["-p", &p.name, "config"])?;
        assert!(!o.status.success(), "docker-compose accepted {bad}");
        let err = p.fail(&["config"])?;
        assert!(!err.is_empty(), "{bad}");
    }
    Ok(())
}

#[test]
fn up_on_dockerd_and_on_berth_agree() -> Result<()> {
    let file = r#"
services:
  db:
    image: @IMAGE@
    command: ["sh", "-c", "sleep 1; echo ok > /tmp/ready; exec sleep 600"]
    healthcheck:
      test: ["CMD-SHELL", "cat /tmp/ready"]
      interval: 300ms
      retries: 30
  web:
    image: @IMAGE@
    command: ["sleep", "600"]
    stop_signal: SIGKILL
    volumes: ["data:/data"]
    depends_on:
      db: {condition: service_healthy}
volumes:
  data:
"#;
    let p = Project::new("agree", file)?;
    let d = Dockerd::start()?;
    let socket = d.dir().join("d.sock");
    let ddir = tempfile::Builder::new()
        .prefix("compose-docker-")
        .tempdir()?;
    std::fs::write(
        ddir.path().join("docker-compose.yml"),
        file.replace("@IMAGE@", DOCKER_IMAGE)
            .replace(
                "    stop_signal: SIGKILL\n",
                "    stop_signal: SIGKILL\n    network_mode: none\n",
            )
            .replace(
                "    healthcheck:",
                "    network_mode: none\n    healthcheck:",
            ),
    )?;
    let up = docker_compose(ddir.path(), Some(&socket), &["-p", &p.name, "up", "-d"])?;
    let down = || {
        docker_compose(
            ddir.path(),
            Some(&socket),
            &["-p", &p.name, "down", "-v", "-t", "0"],
        )
    };
    if !up.status.success() {
        let _ = down();
        bail!("docker-compose up: {}", text(&up));
    }
    p.ok(&["up", "-d"])?;
    let result = (|| -> Result<()> {
        let label = |who: &str, c: &str, key: &str| -> Result<String> {
            let f = format!("{{{{index .Config.Labels \"com.docker.compose.{key}\"}}}}");
            if who == "docker" {
                Ok(d.inspect(c, &f)?.trim().to_string())
            } else {
                p.inspect(c, &f)
            }
        };
        // docker-compose 1.29 names containers PROJECT_SERVICE_N; v2 (and berth) PROJECT-SERVICE-N.
        let theirs = format!("{}_web_1", p.name);
        let ours = format!("{}-web-1", p.name);
        for key in ["project", "service", "container-number", "oneoff"] {
            assert_eq!(
                label("docker", &theirs, key)?,
                label("berth", &ours, key)?,
                "{key}"
            );
        }
        // The same volume name.
        let vol = format!("{}_data", p.name);
        assert!(d.docker(&["volume", "ls", "-q"])?.stdout.contains(&vol));
        assert!(p.berth.ok(&["volume", "ls", "-q"])?.contains(&vol));
        // Both started web only once db was healthy.
        let started = |who: &str, c: &str| -> Result<String> {
            if who == "docker" {
                Ok(d.inspect(c, "{{.State.StartedAt}}")?.trim().to_string())
            } else {
                p.inspect(c, "{{.State.StartedAt}}")
            }
        };
        for (who, db, web) in [
            ("docker", format!("{}_db_1", p.name), theirs.clone()),
            ("berth", format!("{}-db-1", p.name), ours.clone()),
        ] {
            let (a, b) = (started(who, &db)?, started(who, &web)?);
            // RFC 3339 in UTC sorts as text; one second of health check between them.
            assert!(b > a, "{who}: web {b} before db {a}");
        }
        Ok(())
    })();
    let _ = down();
    drop(d);
    result
}
