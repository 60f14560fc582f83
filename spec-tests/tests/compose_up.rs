//! `berth compose up` and `down` on real containers: start-up gated by health checks and
//! finished jobs (proved with timestamps), a second `up` that touches nothing, recreation
//! of a changed service only, scaling, named volumes across down/up, networks with their
//! isolation and name resolution (late joiners too), and `down -v` leaving nothing.

use anyhow::{Context, Result};
use spec_tests::manager::compose::Project;

/// RFC 3339 → seconds since the epoch (fractional).
fn seconds(rfc3339: &str) -> Result<f64> {
    let (date, rest) = rfc3339.split_once('T').context("no T")?;
    let mut d = date.split('-').map(|x| x.parse::<i64>());
    let (y, m, day) = (
        d.next().context("y")??,
        d.next().context("m")??,
        d.next().context("d")??,
    );
    let time = rest.trim_end_matches('Z');
    let time = time.split('+').next().unwrap_or(time);
    let mut t = time.split(':');
    let (h, min) = (
        t.next().context("h")?.parse::<f64>()?,
        t.next().context("min")?.parse::<f64>()?,
    );
    let s = t.next().context("s")?.parse::<f64>()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(days as f64 * 86400.0 + h * 3600.0 + min * 60.0 + s)
}

const ORDERED: &str = r#"
services:
  db:
    image: @IMAGE@
    command: ["sh", "-c", "sleep 1.5; echo ok > /tmp/ready; exec sleep 600"]
    healthcheck:
      test: ["CMD-SHELL", "cat /tmp/ready"]
      interval: 300ms
      retries: 30
  migrate:
    image: @IMAGE@
    command: ["sh", "-c", "sleep 0.5; echo migrated"]
  web:
    image: @IMAGE@
    command: ["sleep", "600"]
    environment:
      GREETING: hello
    depends_on:
      db:
        condition: service_healthy
        restart: true
      migrate:
        condition: service_completed_successfully
"#;

#[test]
fn up_waits_for_health_and_jobs_and_a_second_up_touches_nothing() -> Result<()> {
    let p = Project::new("order", ORDERED)?;
    let (_, err) = p.ok(&["up", "-d"])?;
    let web = format!("{}-web-1", p.name);
    let db = format!("{}-db-1", p.name);
    let job = format!("{}-migrate-1", p.name);
    assert!(err.contains(&format!("Container {db}  Healthy")), "{err}");
    // web started after db became healthy (≥ 1.5 s after db started) and after the job
    // finished.
    let web_started = seconds(&p.inspect(&web, "{{.State.StartedAt}}")?)?;
    let db_started = seconds(&p.inspect(&db, "{{.State.StartedAt}}")?)?;
    let job_finished = seconds(&p.inspect(&job, "{{.State.FinishedAt}}")?)?;
    assert!(
        web_started - db_started >= 1.4,
        "web {web_started} db {db_started}"
    );
    assert!(
        web_started >= job_finished,
        "web {web_started} job {job_finished}"
    );
    assert_eq!(p.inspect(&job, "{{.State.ExitCode}}")?, "0");
    assert_eq!(p.inspect(&db, "{{.State.Health.Status}}")?, "healthy");
    // Labels as docker compose writes them.
    assert_eq!(
        p.inspect(
            &web,
            "{{index .Config.Labels \"com.docker.compose.service\"}}"
        )?,
        "web"
    );
    assert_eq!(
        p.inspect(
            &web,
            "{{index .Config.Labels \"com.docker.compose.container-number\"}}"
        )?,
        "1"
    );

    // Nothing changed: nothing is recreated or restarted.
    let ids = |p: &Project| -> Result<Vec<String>> {
        [&web, &db]
            .iter()
            .map(|c| p.inspect(c, "{{.Id}}"))
            .collect()
    };
    let before = ids(&p)?;
    let (_, err) = p.ok(&["up", "-d", "--wait"])?;
    assert!(
        !err.contains("Recreate") && !err.contains("Creating"),
        "{err}"
    );
    assert_eq!(ids(&p)?, before);

    // A changed service is recreated, the others stay.
    p.write(
        "compose.yaml",
        &ORDERED.replace("GREETING: hello", "GREETING: changed"),
    )?;
    let (_, err) = p.ok(&["up", "-d", "-t", "0"])?;
    assert!(err.contains(&format!("Container {web}  Recreate")), "{err}");
    let after = ids(&p)?;
    assert_ne!(after[0], before[0]);
    assert_eq!(after[1], before[1]);
    let env = p.inspect(&web, "{{json .Config.Env}}")?;
    assert!(env.contains("GREETING=changed"), "{env}");

    // A recreated dependency restarts the services that ask for it (`restart: true`).
    let started = p.inspect(&web, "{{.State.StartedAt}}")?;
    let changed = ORDERED
        .replace("GREETING: hello", "GREETING: changed")
        .replace("retries: 30", "retries: 31");
    p.write("compose.yaml", &changed)?;
    let (_, err) = p.ok(&["up", "-d", "-t", "0"])?;
    assert!(err.contains(&format!("Container {db}  Recreate")), "{err}");
    assert!(
        err.contains(&format!("Container {web}  Restarting")),
        "{err}"
    );
    assert_eq!(p.inspect(&web, "{{.Id}}")?, after[0]);
    assert_ne!(p.inspect(&web, "{{.State.StartedAt}}")?, started);

    // compose ps and berth ps agree.
    let (ps, _) = p.ok(&["ps", "--format", "json"])?;
    assert_eq!(ps.lines().count(), 2, "{ps}");
    p.ok(&["down", "-t", "0"])?;
    assert!(p.all_containers()?.is_empty());
    Ok(())
}

#[test]
fn a_failing_dependency_stops_up_naming_it() -> Result<()> {
    let p = Project::new(
        "fail",
        r#"
services:
  job:
    image: @IMAGE@
    command: ["sh", "-c", "exit 3"]
  sick:
    image: @IMAGE@
    command: ["sleep", "600"]
    healthcheck:
      test: ["CMD-SHELL", "exit 1"]
      interval: 200ms
      retries: 2
  after_job:
    image: @IMAGE@
    command: ["sleep", "600"]
    depends_on:
      job: {condition: service_completed_successfully}
  after_sick:
    image: @IMAGE@
    command: ["sleep", "600"]
    depends_on:
      sick: {condition: service_healthy}
  unchecked:
    image: @IMAGE@
    command: ["sleep", "600"]
    stop_signal: SIGKILL
  after_unchecked:
    image: @IMAGE@
    command: ["sleep", "600"]
    depends_on:
      unchecked: {condition: service_healthy}
"#,
    )?;
    let err = p.fail(&["up", "-d", "after_job"])?;
    assert!(
        err.contains("service \"job\" didn't complete successfully: exit 3"),
        "{err}"
    );
    let err = p.fail(&["up", "-d", "after_sick"])?;
    assert!(
        err.contains(&format!("container {}-sick-1 is unhealthy", p.name)),
        "{err}"
    );
    let err = p.fail(&["up", "-d", "after_unchecked"])?;
    assert!(
        err.contains(&format!(
            "container {}-unchecked-1 has no healthcheck configured",
            p.name
        )),
        "{err}"
    );
    let names = p.all_containers()?;
    assert!(!names.iter().any(|n| n.contains("after")), "{names:?}");
    Ok(())
}

#[test]
fn scale_volumes_and_down_v() -> Result<()> {
    let p = Project::new(
        "scale",
        r#"
services:
  worker:
    image: @IMAGE@
    command: ["sleep", "600"]
  store:
    image: @IMAGE@
    command: ["sh", "-c", "cat /data/f 2>/dev/null || echo first > /data/f; exec sleep 600"]
    volumes:
      - data:/data
volumes:
  data:
"#,
    )?;
    p.ok(&["up", "-d", "--scale", "worker=3"])?;
    let names = p.all_containers()?;
    for i in 1..=3 {
        assert!(
            names.contains(&format!("{}-worker-{i}", p.name)),
            "{names:?}"
        );
    }
    p.ok(&["up", "-d", "-t", "0", "--scale", "worker=1"])?;
    let names = p.all_containers()?;
    assert!(
        !names.contains(&format!("{}-worker-2", p.name)),
        "{names:?}"
    );
    let store = format!("{}-store-1", p.name);
    p.berth
        .ok(&["exec", &store, "sh", "-c", "echo kept > /data/f"])?;
    p.ok(&["down", "-t", "0"])?;
    let vol = format!("{}_data", p.name);
    assert!(p.berth.ok(&["volume", "ls", "-q"])?.contains(&vol));
    p.ok(&["up", "-d"])?;
    assert_eq!(
        p.berth.ok(&["exec", &store, "cat", "/data/f"])?.trim(),
        "kept"
    );
    p.ok(&["down", "-v", "-t", "0"])?;
    assert!(!p.berth.ok(&["volume", "ls", "-q"])?.contains(&vol));
    let nets = p.berth.ok(&["network", "ls", "--format", "json"])?;
    assert!(!nets.contains(&p.name), "{nets}");
    Ok(())
}

#[test]
fn networks_isolate_and_names_resolve_for_late_joiners() -> Result<()> {
    let p = Project::new(
        "net",
        r#"
services:
  api:
    image: @IMAGE@
    command: ["sleep", "600"]
    networks:
      back:
        aliases: [backend]
      front:
  db:
    image: @IMAGE@
    command: ["sleep", "600"]
    networks: [back]
  client:
    image: @IMAGE@
    command: ["sleep", "600"]
    networks: [front]
  late:
    image: @IMAGE@
    command: ["sleep", "600"]
    networks: [back]
    profiles: [later]
networks:
  front:
    ipam: {config: [{subnet: "@SUBNET@"}]}
  back:
    ipam: {config: [{subnet: "@SUBNET@"}]}
"#,
    )?;
    p.ok(&["up", "-d"])?;
    let resolves = |from: &str, name: &str| -> Result<bool> {
        let c = format!("{}-{from}-1", p.name);
        Ok(p.berth
            .run(&["exec", &c, "nslookup", name])?
            .status
            .success())
    };
    let db_container = format!("{}-db-1", p.name);
    assert!(resolves("api", "db")?);
    assert!(resolves("api", &db_container)?);
    assert!(resolves("db", "backend")?);
    assert!(resolves("client", "api")?);
    // Isolation: client is not on back.
    assert!(!resolves("client", "db")?);
    // A service started later is found by those already running: within 5 s (the lookup
    // right after a join has been seen to go unanswered; docs/benchmarks-manager.md).
    p.ok(&["--profile", "later", "up", "-d", "late"])?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut found = resolves("db", "late")?;
    while !found && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
        found = resolves("db", "late")?;
    }
    assert!(found);
    Ok(())
}
