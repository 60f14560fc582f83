//! Service options that map onto `berth run` flags: `sysctls` (list and map form) and
//! `links` (the linked service answers to its alias and starts first).

use anyhow::Result;
use spec_tests::manager::compose::Project;

#[test]
fn sysctls_in_list_and_map_form_apply_and_bad_ones_create_nothing() -> Result<()> {
    let p = Project::new(
        "sysctls",
        r#"
services:
  map:
    image: @IMAGE@
    command: ["sleep", "600"]
    stop_grace_period: 1s
    sysctls:
      net.core.somaxconn: 1234
      kernel.shmmni: 999
  list:
    image: @IMAGE@
    command: ["sleep", "600"]
    stop_grace_period: 1s
    sysctls: ["net.core.somaxconn=2345"]
"#,
    )?;
    p.ok(&["up", "-d"])?;
    let read = |svc: &str, key: &str| -> Result<String> {
        let file = format!("/proc/sys/{}", key.replace('.', "/"));
        Ok(p.ok(&["exec", "-T", svc, "cat", &file])?
            .0
            .trim()
            .to_string())
    };
    assert_eq!(read("map", "net.core.somaxconn")?, "1234");
    assert_eq!(read("map", "kernel.shmmni")?, "999");
    assert_eq!(read("list", "net.core.somaxconn")?, "2345");
    let shown = p.inspect(
        &format!("{}-list-1", p.name),
        "{{index .HostConfig.Sysctls \"net.core.somaxconn\"}}",
    )?;
    assert_eq!(shown, "2345");
    p.ok(&["down", "-t", "0"])?;

    for (bad, field) in [
        (
            "    network_mode: host\n    sysctls: {net.core.somaxconn: 1}\n",
            "services.bad.sysctls.net.core.somaxconn",
        ),
        (
            "    sysctls: [kernel.pid_max=1000]\n",
            "services.bad.sysctls.kernel.pid_max",
        ),
    ] {
        p.write(
            "compose.yaml",
            &format!(
                "services:\n  bad:\n    image: {}\n{bad}",
                spec_tests::manager::compose::BUSYBOX
            ),
        )?;
        let err = p.fail(&["up", "-d"])?;
        assert!(err.contains(field), "{bad}: {err}");
        assert!(p.all_containers()?.is_empty(), "{bad}");
    }
    Ok(())
}

#[test]
fn links_resolve_their_alias_for_the_linking_service_and_order_the_start() -> Result<()> {
    let p = Project::new(
        "links",
        r#"
services:
  web:
    image: @IMAGE@
    command: ["sleep", "600"]
    stop_grace_period: 1s
    links: ["db:database"]
    external_links: ["@EXT@:legacy"]
  db:
    image: @IMAGE@
    command: ["sleep", "600"]
    stop_grace_period: 1s
  other:
    image: @IMAGE@
    command: ["sleep", "600"]
    stop_grace_period: 1s
"#,
    )?;
    let ext = format!("{}-ext", p.name);
    let yaml = std::fs::read_to_string(p.path("compose.yaml"))?.replace("@EXT@", &ext);
    p.write("compose.yaml", &yaml)?;
    // A link is a dependency, as docker compose normalises it.
    let (config, _) = p.ok(&["config"])?;
    let web = &config[config.find("  web:").unwrap_or(0)..];
    assert!(
        web.contains("depends_on:\n      db:\n        condition: service_started"),
        "{config}"
    );

    // The external container joins the project's network, made by a first `up`.
    p.ok(&["up", "-d", "db"])?;
    let net = format!("{}_default", p.name);
    p.berth.ok(&[
        "run",
        "-d",
        "--name",
        &ext,
        "--network",
        &net,
        spec_tests::manager::compose::BUSYBOX,
        "sleep",
        "600",
    ])?;
    let _ext = RemovedOnDrop(&p, &ext);
    p.ok(&["up", "-d"])?;
    let ip = |c: &str| {
        p.inspect(
            c,
            "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        )
    };
    let lookup = |svc: &str, name: &str| -> Result<(bool, String)> {
        let out = p
            .berth
            .run(&["exec", &format!("{}-{svc}-1", p.name), "nslookup", name])?;
        Ok((
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        ))
    };
    let db_ip = ip(&format!("{}-db-1", p.name))?;
    let (ok, out) = lookup("web", "database")?;
    assert!(ok && out.contains(&db_ip), "{out}");
    let (ok, out) = lookup("web", "legacy")?;
    assert!(ok && out.contains(&ip(&ext)?), "{out}");
    // The alias is the linking container's only.
    assert!(!lookup("other", "database")?.0);
    let links = p.inspect(
        &format!("{}-web-1", p.name),
        "{{range .HostConfig.Links}}{{.}} {{end}}",
    )?;
    assert!(
        links.contains(&format!("/{}-db-1:/{}-web-1/database", p.name, p.name)),
        "{links}"
    );
    Ok(())
}

/// Removes a container made beside the project before the project's `down` (which would
/// find it still on the project's network).
struct RemovedOnDrop<'a>(&'a Project, &'a str);

impl Drop for RemovedOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.berth.run(&["rm", "-f", self.1]);
    }
}
