//! `berth kube generate`: the YAML written for a running container (a Pod or a Deployment,
//! a Service, a PersistentVolumeClaim) validates against the Kubernetes OpenAPI schemas
//! (kubernetes-validate from PyPI, strict: no field Kubernetes does not know), and
//! `generate` → `kube play` gives the same running application back.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};
use spec_tests::manager::compose::Project;
use spec_tests::manager::containers::Env;
use spec_tests::manager::network::BUSYBOX;

/// Installed by hack/setup (PyPI's kubernetes-validate in its own venv).
const VALIDATOR: &str = "/opt/kube-validate/bin/kubernetes-validate";

fn validate(file: &Path) -> Result<()> {
    let out = Command::new(VALIDATOR)
        .arg("--strict")
        .arg(file)
        .output()
        .with_context(|| format!("running {VALIDATOR} (hack/setup installs it)"))?;
    if !out.status.success() {
        bail!(
            "{} does not validate:\n{}{}\n{}",
            file.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(file).unwrap_or_default()
        );
    }
    Ok(())
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn curl(port: u16) -> Result<String> {
    let out = Command::new("curl")
        .args(["-s", "-m", "5", &format!("http://127.0.0.1:{port}/")])
        .output()?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn generated_yaml_validates_and_plays_back_the_same_application() -> Result<()> {
    let env = Env::new()?;
    let dir = tempfile::tempdir()?;
    let www = dir.path().join("www");
    std::fs::create_dir(&www)?;
    std::fs::write(www.join("index.html"), "round trip")?;
    let port = free_port()?;
    let publish = format!("127.0.0.1:{port}:8080");
    let bind = format!("{}:/www:ro", www.display());
    env.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        &publish,
        "-e",
        "GREETING=hi",
        "-v",
        "web-vol:/data",
        "-v",
        &bind,
        "--memory",
        "64m",
        "--cap-add",
        "NET_ADMIN",
        "--cap-drop",
        "MKNOD",
        "--health-cmd",
        "wget -q -O /dev/null http://127.0.0.1:8080/",
        "--health-interval",
        "1s",
        BUSYBOX,
        "busybox",
        "httpd",
        "-f",
        "-p",
        "8080",
        "-h",
        "/www",
    ])?;
    assert_eq!(curl(port)?, "round trip");

    let yaml = env.ok(&["kube", "generate", "--service", "web"])?;
    assert!(yaml.contains("add:\n        - NET_ADMIN\n"), "{yaml}");
    assert!(yaml.contains("drop:\n        - MKNOD\n"), "{yaml}");
    for kind in ["kind: Pod", "kind: Service", "kind: PersistentVolumeClaim"] {
        assert!(yaml.contains(kind), "{kind} missing:\n{yaml}");
    }
    // Only what the user asked for: not the image's defaults, nor every container's.
    for default in ["HOSTNAME", "HOME", "workingDir"] {
        assert!(!yaml.contains(default), "{default} in:\n{yaml}");
    }
    let pod_file = dir.path().join("pod.yaml");
    std::fs::write(&pod_file, &yaml)?;
    validate(&pod_file)?;
    let deploy_file = dir.path().join("deploy.yaml");
    env.ok(&[
        "kube",
        "generate",
        "--type",
        "deployment",
        "--service",
        "-f",
        &deploy_file.to_string_lossy(),
        "web",
    ])?;
    validate(&deploy_file)?;
    assert!(std::fs::read_to_string(&deploy_file)?.contains("kind: Deployment"));

    // The same application, from the YAML alone.
    env.ok(&["rm", "-f", "web"])?;
    let (code, out, err) = env.run(&["kube", "play", &pod_file.to_string_lossy()])?;
    assert_eq!(code, 0, "{out}{err}\n{yaml}");
    assert!(err.is_empty(), "warnings for berth's own YAML: {err}");
    assert_eq!(curl(port)?, "round trip");
    assert_eq!(
        env.ok(&["exec", "web-pod-web", "sh", "-c", "echo $GREETING"])?,
        "hi\n"
    );
    let played = env.inspect("web-pod-web")?;
    assert_eq!(played["HostConfig"]["Memory"], 64 << 20);
    assert!(played["Config"]["Healthcheck"]["Test"]
        .to_string()
        .contains("wget -q -O /dev/null http://127.0.0.1:8080/"));
    let caps = played["HostConfig"].to_string();
    let spec = std::fs::read_to_string(
        env.berth
            .root()
            .join("containers")
            .join(played["Id"].as_str().unwrap_or_default())
            .join("bundle/config.json"),
    )?;
    assert!(spec.contains("CAP_NET_ADMIN"), "{caps}");
    assert!(!spec.contains("CAP_MKNOD"), "{caps}");
    let mounts = played["Mounts"].to_string();
    assert!(mounts.contains("\"Name\":\"web-vol\""), "{mounts}");

    // A pod made by play generates again, as itself.
    let again = dir.path().join("again.yaml");
    env.ok(&[
        "kube",
        "generate",
        "-f",
        &again.to_string_lossy(),
        "web-pod",
    ])?;
    validate(&again)?;
    let again_text = std::fs::read_to_string(&again)?;
    assert!(again_text.contains("name: web-pod\n"), "{again_text}");
    assert!(again_text.contains("- name: web\n"), "{again_text}");
    assert!(
        again_text.contains(&format!("hostPort: {port}\n")),
        "{again_text}"
    );

    env.ok(&["kube", "down", &pod_file.to_string_lossy()])?;
    env.ok(&["volume", "rm", "web-vol"])?;
    let (code, _, err) = env.run(&["kube", "generate", "web"])?;
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("no such container or pod: web"), "{err}");
    env.assert_clean(&[]);
    Ok(())
}

/// A compose project becomes one pod: a container per service, named after it, and
/// `hostAliases` so the services still reach each other by name over the shared localhost.
#[test]
fn a_compose_project_generates_one_pod_whose_services_find_each_other() -> Result<()> {
    let port = free_port()?;
    let p = Project::new(
        "kgen",
        &r#"
services:
  web:
    image: @IMAGE@
    command: ["sh", "-c", "echo served-by-web > /www/index.html; trap 'exit 0' TERM; httpd -f -p 8080 -h /www & wait"]
    ports: ["127.0.0.1:@PORT@:8080"]
    volumes: ["pages:/www"]
    stop_grace_period: 1s
  client:
    image: @IMAGE@
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 600 & wait"]
    stop_grace_period: 1s
volumes:
  pages: {}
"#
        .replace("@PORT@", &port.to_string()),
    )?;
    p.ok(&["up", "-d"])?;
    let yaml = p.berth.ok(&["kube", "generate", "--service", &p.name])?;
    let pod = p.name.replace('_', "-");
    assert!(yaml.contains(&format!("name: {pod}\n")), "{yaml}");
    assert!(yaml.contains("- name: client\n"), "{yaml}");
    assert!(yaml.contains("- name: web\n"), "{yaml}");
    assert!(
        yaml.contains("hostAliases:\n  - ip: 127.0.0.1\n    hostnames:\n    - client\n    - web\n"),
        "{yaml}"
    );
    assert!(
        yaml.contains("terminationGracePeriodSeconds: 1\n"),
        "{yaml}"
    );
    for kind in ["kind: Pod", "kind: Service", "kind: PersistentVolumeClaim"] {
        assert!(yaml.contains(kind), "{kind} missing:\n{yaml}");
    }
    let file = p.path("pod.yaml");
    std::fs::write(&file, &yaml)?;
    validate(&file)?;
    let deploy = p.path("deploy.yaml");
    let f = deploy.to_string_lossy();
    p.berth.ok(&[
        "kube",
        "generate",
        "--type",
        "deployment",
        "-f",
        &f,
        &p.name,
    ])?;
    validate(&deploy)?;
    assert!(std::fs::read_to_string(&deploy)?.contains("kind: Deployment"));

    // Down the project, and play it back as one pod.
    p.ok(&["down", "-t", "0"])?;
    let f = file.to_string_lossy();
    let played = p.berth.ok(&["kube", "play", &f]);
    let check = played.and_then(|_| {
        let client = format!("{pod}-client");
        let page = p.berth.ok(&[
            "exec",
            &client,
            "wget",
            "-q",
            "-O-",
            "http://web:8080/index.html",
        ])?;
        assert_eq!(page, "served-by-web\n");
        assert_eq!(curl(port)?, "served-by-web\n");
        Ok(())
    });
    let down = p.berth.ok(&["kube", "down", &f]);
    let volume = format!("{pod}-pages");
    let _ = p.berth.run(&["volume", "rm", &volume]);
    check?;
    down?;
    Ok(())
}
