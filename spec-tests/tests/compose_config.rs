//! `berth compose config` and the loader behind every verb: interpolation, `.env`, several
//! `-f` files merged (`!reset`, `!override`), profiles, `extends`, anchors and extensions,
//! file discovery, and bad input refused with the file, line or path named, a non-zero
//! exit, and nothing created.

use std::path::Path;
use std::process::Output;

use anyhow::{bail, Result};
use serde_json::Value;
use spec_tests::manager::berth::Berth;

struct Dir {
    berth: Berth,
    dir: tempfile::TempDir,
}

impl Dir {
    fn new() -> Result<Self> {
        Ok(Self {
            berth: Berth::new()?,
            dir: tempfile::Builder::new().prefix("compose-cfg-").tempdir()?,
        })
    }

    fn write(&self, name: &str, text: &str) -> Result<()> {
        let p = self.dir.path().join(name);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d)?;
        }
        Ok(std::fs::write(p, text)?)
    }

    fn run_in(&self, cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<Output> {
        let mut full = vec!["compose"];
        full.extend_from_slice(args);
        let mut cmd = self.berth.cmd(&full)?;
        cmd.current_dir(cwd);
        for v in ["COMPOSE_FILE", "COMPOSE_PROJECT_NAME", "COMPOSE_PROFILES"] {
            cmd.env_remove(v);
        }
        cmd.envs(env.iter().copied());
        Ok(cmd.output()?)
    }

    fn ok(&self, args: &[&str], env: &[(&str, &str)]) -> Result<String> {
        let out = self.run_in(self.dir.path(), args, env)?;
        if !out.status.success() {
            bail!("{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn json(&self, args: &[&str], env: &[(&str, &str)]) -> Result<Value> {
        let mut full = vec!["config", "--format", "json"];
        full.splice(0..0, args.iter().copied());
        Ok(serde_json::from_str(&self.ok(&full, env)?)?)
    }

    fn fail(&self, args: &[&str]) -> Result<String> {
        let out = self.run_in(self.dir.path(), args, &[])?;
        if out.status.success() {
            bail!("{args:?} succeeded");
        }
        Ok(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn config_normalises_interpolates_and_finds_files_upwards() -> Result<()> {
    let d = Dir::new()?;
    d.write(".env", "TAG=1.36\nHOST_PORT=8080\n")?;
    d.write(
        "compose.yaml",
        r#"
name: shop
x-base: &base
  restart: unless-stopped
  labels: {tier: backend}
services:
  web:
    <<: *base
    image: "busybox:${TAG}"
    command: sh -c 'echo hi'
    ports: ["${HOST_PORT}:80", "127.0.0.1:9000-9001:90-91/udp"]
    environment: [A=1, "COST=$$5", "FROM_SHELL"]
    volumes: ["./site:/site:ro", "data:/data"]
    depends_on: [db]
    x-note: ignored
  db:
    image: busybox
    healthcheck: {test: "true", interval: 1s}
volumes:
  data:
"#,
    )?;
    let sub = d.dir.path().join("a/b");
    std::fs::create_dir_all(&sub)?;
    let out = d.run_in(
        &sub,
        &["config", "--format", "json"],
        &[("HOST_PORT", "7070"), ("FROM_SHELL", "yes")],
    )?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(v["name"], "shop");
    let web = &v["services"]["web"];
    assert_eq!(web["image"], "busybox:1.36");
    assert_eq!(web["restart"], "unless-stopped");
    assert_eq!(web["labels"]["tier"], "backend");
    assert_eq!(web["command"], serde_json::json!(["sh", "-c", "echo hi"]));
    assert_eq!(web["ports"][0]["published"], "7070");
    assert_eq!(web["ports"][0]["target"], 80);
    assert_eq!(web["ports"][2]["target"], 91);
    assert_eq!(web["ports"][2]["host_ip"], "127.0.0.1");
    // A literal `$` is written `$$`, as docker compose v2 does, so the output reads back.
    assert_eq!(web["environment"]["COST"], "$$5");
    assert_eq!(web["environment"]["FROM_SHELL"], "yes");
    assert_eq!(web["volumes"][0]["type"], "bind");
    assert_eq!(
        web["volumes"][0]["source"],
        d.dir.path().join("site").display().to_string()
    );
    assert_eq!(web["volumes"][0]["read_only"], true);
    assert_eq!(web["depends_on"]["db"]["condition"], "service_started");
    assert!(web.get("x-note").is_none());
    assert_eq!(v["volumes"]["data"]["name"], "shop_data");
    assert_eq!(v["networks"]["default"]["name"], "shop_default");
    assert_eq!(
        v["services"]["db"]["healthcheck"]["test"],
        serde_json::json!(["CMD-SHELL", "true"])
    );
    // The other outputs.
    assert_eq!(d.ok(&["config", "--services"], &[])?, "db\nweb\n");
    assert_eq!(d.ok(&["config", "--volumes"], &[])?, "data\n");
    assert_eq!(d.ok(&["config", "-q"], &[])?, "");
    let yaml = d.ok(&["config"], &[])?;
    assert!(
        yaml.contains("name: shop") && yaml.contains("image: busybox:1.36"),
        "{yaml}"
    );
    Ok(())
}

#[test]
fn files_merge_profiles_and_extends() -> Result<()> {
    let d = Dir::new()?;
    d.write(
        "compose.yaml",
        "services:\n  web:\n    image: a\n    command: [one]\n    environment: {A: '1', B: '2'}\n    ports: ['80:80']\n    dns: [1.1.1.1]\n  tools:\n    image: t\n    profiles: [debug]\n",
    )?;
    d.write(
        "prod.yaml",
        "services:\n  web:\n    image: b\n    command: [two]\n    environment: [B=3]\n    ports: !override ['81:81']\n    dns: !reset []\n  worker:\n    extends: {file: base/common.yaml, service: base}\n    command: [work]\n",
    )?;
    d.write("base/common.yaml", "services:\n  base:\n    image: w\n    environment: {FROM: base}\n    volumes: ['./cfg:/cfg']\n")?;
    let v = d.json(&["-p", "m", "-f", "compose.yaml", "-f", "prod.yaml"], &[])?;
    let web = &v["services"]["web"];
    assert_eq!(web["image"], "b");
    assert_eq!(web["command"], serde_json::json!(["two"]));
    assert_eq!(web["environment"], serde_json::json!({"A": "1", "B": "3"}));
    assert_eq!(web["ports"].as_array().map(Vec::len), Some(1));
    assert_eq!(web["ports"][0]["target"], 81);
    assert!(web.get("dns").is_none());
    let worker = &v["services"]["worker"];
    assert_eq!(worker["image"], "w");
    assert_eq!(worker["environment"]["FROM"], "base");
    assert_eq!(
        worker["volumes"][0]["source"],
        d.dir.path().join("base/cfg").display().to_string()
    );
    assert!(v["services"].get("tools").is_none());
    let v = d.json(&["--profile", "debug"], &[])?;
    assert!(v["services"].get("tools").is_some());
    let v = d.json(&[], &[("COMPOSE_PROFILES", "debug")])?;
    assert!(v["services"].get("tools").is_some());
    let v = d.json(&[], &[("COMPOSE_FILE", "compose.yaml:prod.yaml")])?;
    assert_eq!(v["services"]["web"]["image"], "b");
    // `-f -`: the file on the standard input.
    let mut cmd = d
        .berth
        .cmd(&["compose", "-p", "stdin", "-f", "-", "config", "--services"])?;
    cmd.current_dir(d.dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        stdin.write_all(b"services:\n  piped:\n    image: a\n")?;
    }
    let out = child.wait_with_output()?;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "piped\n");
    Ok(())
}

#[test]
fn bad_files_name_file_line_or_path_and_create_nothing() -> Result<()> {
    let d = Dir::new()?;
    let cases = [
        ("services:\n  web:\n    image: [a\n", "line 3"),
        ("services:\n  web:\n    image: a\n    colour: red\n", "services.web.colour: unknown field `colour`"),
        ("services:\n  web:\n    image: a\n    ports: ['80', 'x:y']\n", "services.web.ports[1]: invalid port"),
        ("services:\n  web:\n    image: a\n    read_only: maybe\n", "services.web.read_only"),
        ("services:\n  web:\n    image: a\n    depends_on: [db]\n", "service \"web\" depends on undefined service \"db\""),
        ("services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [a]\n", "dependency cycle detected"),
        ("services:\n  web:\n    image: ${NOPE:?please set NOPE}\n", "required variable NOPE is missing a value: please set NOPE"),
    ];
    for (text, want) in cases {
        d.write("compose.yaml", text)?;
        for verb in [&["config"][..], &["up", "-d"][..]] {
            let err = d.fail(verb)?;
            assert!(err.contains(want), "{text}\n{verb:?}: {err}");
            if want.starts_with("services.") || want.starts_with("line") {
                assert!(err.contains("compose.yaml"), "{err}");
            }
        }
    }
    // Values only the container operations can judge: `up` refuses them before it makes
    // or pulls anything.
    for (text, want) in [
        (
            "services:\n  web:\n    image: a\n    stop_grace_period: soon\n",
            "services.web.stop_grace_period",
        ),
        (
            "services:\n  web:\n    image: a\n    mem_limit: lots\n",
            "services.web.mem_limit",
        ),
        (
            "services:\n  web:\n    image: a\n    restart: sometimes\n",
            "services.web.restart",
        ),
    ] {
        d.write("compose.yaml", text)?;
        let err = d.fail(&["up", "-d"])?;
        assert!(err.contains(want), "{text}\n{err}");
    }
    let ps = d.berth.ok(&["ps", "-a", "-q"])?;
    assert!(ps.trim().is_empty(), "{ps}");
    let nets = d.berth.ok(&["network", "ls", "--format", "json"])?;
    assert!(!nets.contains("_default"), "{nets}");
    // No file at all.
    std::fs::remove_file(d.dir.path().join("compose.yaml"))?;
    let err = d.fail(&["config"])?;
    assert!(err.contains("no configuration file provided"), "{err}");
    Ok(())
}
