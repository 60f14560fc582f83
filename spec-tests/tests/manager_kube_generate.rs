//! `berth kube generate`: the YAML written for a running container (a Pod or a Deployment,
//! a Service, a PersistentVolumeClaim) validates against the Kubernetes OpenAPI schemas
//! (kubernetes-validate from PyPI, strict: no field Kubernetes does not know), and
//! `generate` → `kube play` gives the same running application back.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};
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
