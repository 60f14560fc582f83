//! `berth kube play` and `kube down` of hand-written manifests: a pod whose containers
//! share localhost, init containers in order, env and files from a ConfigMap, hostPath,
//! emptyDir and PersistentVolumeClaim volumes, a probe, unknown fields reported, a
//! Deployment's replicas; bad input named by file, line and field with nothing left
//! behind; `down` removes everything `play` made.

use std::time::Duration;

use anyhow::Result;
use spec_tests::manager::containers::Env;
use spec_tests::manager::network::{Scope, BUSYBOX};

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> Result<String> {
    let path = dir.join(name);
    std::fs::write(&path, text)?;
    Ok(path.to_string_lossy().into_owned())
}

fn ps_names(env: &Env) -> Result<Vec<String>> {
    let mut v: Vec<String> = env
        .ok(&["ps", "-a", "--format", "{{.Names}}"])?
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    Ok(v)
}

fn volume_names(env: &Env) -> Result<Vec<String>> {
    let mut v: Vec<String> = env
        .ok(&["volume", "ls", "-q"])?
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    Ok(v)
}

fn manifest(port: u16, host_dir: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
data:
  GREETING: hello from the configmap
  index.html: served from the configmap
---
apiVersion: v1
kind: Secret
metadata:
  name: web-secret
stringData:
  TOKEN: s3cret
data:
  file: ZnJvbSB0aGUgc2VjcmV0
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  type: NodePort
  selector: {{app: web}}
  ports:
  - {{port: 8080, nodePort: 30080}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: web-data
spec:
  accessModes: [ReadWriteOnce]
  resources:
    requests:
      storage: 1Gi
---
apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  restartPolicy: Always
  initContainers:
  - name: first
    image: {BUSYBOX}
    command: [sh, -c, "echo one >> /work/order; echo init > /host/from-init"]
    volumeMounts:
    - {{name: work, mountPath: /work}}
    - {{name: host, mountPath: /host}}
  - name: second
    image: {BUSYBOX}
    command: [sh, -c, "echo two >> /work/order"]
    volumeMounts:
    - {{name: work, mountPath: /work}}
  containers:
  - name: server
    image: {BUSYBOX}
    command: [busybox, httpd, -f, -p, "8080", -h, /www]
    ports:
    - {{containerPort: 8080, hostPort: {port}, hostIP: 127.0.0.1}}
    readinessProbe:
      httpGet: {{path: /index.html, port: 8080}}
      periodSeconds: 1
    volumeMounts:
    - {{name: www, mountPath: /www}}
  - name: client
    image: {BUSYBOX}
    command: [sleep, "600"]
    notAKubernetesField: true
    env:
    - name: GREETING
      valueFrom:
        configMapKeyRef: {{name: web-config, key: GREETING}}
    - {{name: SAID, value: "said $(GREETING)"}}
    - name: TOKEN
      valueFrom:
        secretKeyRef: {{name: web-secret, key: TOKEN}}
    resources:
      limits: {{memory: 64Mi, cpu: 500m}}
    volumeMounts:
    - {{name: work, mountPath: /work}}
    - {{name: data, mountPath: /data}}
    - {{name: secret, mountPath: /secret}}
  volumes:
  - name: work
    emptyDir: {{}}
  - name: www
    configMap: {{name: web-config, items: [{{key: index.html, path: index.html}}]}}
  - name: data
    persistentVolumeClaim: {{claimName: web-data}}
  - name: secret
    secret: {{secretName: web-secret}}
  - name: host
    hostPath: {{path: {host_dir}, type: DirectoryOrCreate}}
"#
    )
}

#[test]
fn a_pod_shares_localhost_runs_init_containers_in_order_and_down_removes_it_all() -> Result<()> {
    let env = Env::new()?;
    let dir = tempfile::tempdir()?;
    let host_dir = dir.path().join("host");
    let port = free_port()?;
    let file = write(
        dir.path(),
        "pod.yaml",
        &manifest(port, &host_dir.to_string_lossy()),
    )?;
    let (code, out, err) = env.run(&["kube", "play", &file])?;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        err.contains("(Pod web): unknown field spec.containers[1].notAKubernetesField is ignored"),
        "{err}"
    );
    assert!(
        err.contains("(Service web): spec.ports[0].nodePort: 30080 is not published"),
        "{err}"
    );
    assert!(out.contains("Pod:\nweb\n"), "{out}");
    assert_eq!(
        ps_names(&env)?,
        [
            "web-client",
            "web-first",
            "web-infra",
            "web-second",
            "web-server"
        ]
    );

    // Init containers ran to completion, in order, before the containers.
    assert_eq!(env.status("web-first")?, "exited");
    assert_eq!(
        env.ok(&["exec", "web-client", "cat", "/work/order"])?,
        "one\ntwo\n"
    );
    assert_eq!(
        std::fs::read_to_string(host_dir.join("from-init"))?,
        "init\n"
    );
    // Shared localhost: the client reaches the server on 127.0.0.1, which serves a file of
    // the ConfigMap; the host reaches it on the published port.
    assert_eq!(
        env.ok(&[
            "exec",
            "web-client",
            "wget",
            "-q",
            "-O-",
            "http://127.0.0.1:8080/index.html"
        ])?,
        "served from the configmap"
    );
    let curl = std::process::Command::new("curl")
        .args([
            "-s",
            "-m",
            "5",
            &format!("http://127.0.0.1:{port}/index.html"),
        ])
        .output()?;
    assert_eq!(
        String::from_utf8_lossy(&curl.stdout),
        "served from the configmap"
    );
    // Env from the ConfigMap, with $(VAR) references expanded; the pod's hostname.
    assert_eq!(
        env.ok(&[
            "exec",
            "web-client",
            "sh",
            "-c",
            "echo $SAID; busybox hostname"
        ])?,
        "said hello from the configmap\nweb\n"
    );
    // A Secret as env and as files (read-only).
    assert_eq!(
        env.ok(&[
            "exec",
            "web-client",
            "sh",
            "-c",
            "echo $TOKEN; cat /secret/file /secret/TOKEN"
        ])?,
        "s3cret\nfrom the secrets3cret"
    );
    let (code, _, _) = env.run(&["exec", "web-client", "sh", "-c", "echo x > /secret/file"])?;
    assert_ne!(code, 0, "a secret volume is read-only");
    let client = env.inspect("web-client")?;
    assert_eq!(client["HostConfig"]["Memory"], 64 << 20);
    assert_eq!(client["Config"]["Labels"]["io.berth.kube.pod"], "web");
    // The PersistentVolumeClaim is a named volume.
    env.ok(&["exec", "web-client", "sh", "-c", "echo kept > /data/x"])?;
    assert_eq!(volume_names(&env)?, ["web-data", "web-work"]);
    // The readiness probe became the server's health check.
    env.until(Duration::from_secs(15), "the server to be healthy", || {
        Ok(env.inspect("web-server")?["State"]["Health"]["Status"] == "healthy")
    })?;

    // Removing a container that joined the pod's namespace leaves it to the others.
    env.ok(&["rm", "-f", "web-client"])?;
    assert_eq!(
        env.ok(&[
            "exec",
            "web-server",
            "wget",
            "-q",
            "-O-",
            "http://127.0.0.1:8080/index.html"
        ])?,
        "served from the configmap"
    );

    // A second play of the same pod is refused; --replace makes it anew.
    let (code, _, err) = env.run(&["kube", "play", &file])?;
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("pod web already exists"), "{err}");
    env.ok(&["kube", "play", "--replace", &file])?;
    assert_eq!(ps_names(&env)?.len(), 5);
    assert_eq!(
        env.ok(&["exec", "web-client", "cat", "/data/x"])?,
        "kept\n",
        "the claim's volume outlives the pod"
    );

    let out = env.ok(&["kube", "down", "--force", &file])?;
    assert!(out.contains("Pods stopped and removed:\nweb\n"), "{out}");
    assert!(ps_names(&env)?.is_empty());
    assert!(volume_names(&env)?.is_empty());
    assert!(!env.berth.root().join("kube/web").exists());
    env.assert_clean(&[]);
    Ok(())
}

#[test]
fn bad_manifests_name_file_line_and_field_and_leave_nothing() -> Result<()> {
    let env = Env::new()?;
    let dir = tempfile::tempdir()?;
    let bad_yaml = write(
        dir.path(),
        "bad.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: [x\n",
    )?;
    let (code, _, err) = env.run(&["kube", "play", &bad_yaml])?;
    assert_eq!(code, 125, "{err}");
    assert!(err.contains(&format!("{bad_yaml}: line ")), "{err}");

    // From stdin, named as such.
    let mut child = env
        .berth
        .cmd(&["kube", "play", "-"])?
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write as _;
        stdin.write_all(
            b"apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c}]}\n",
        )?;
    }
    let out = child.wait_with_output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(
        err.contains("stdin: document 1 (Pod p): spec.containers[0].image: required"),
        "{err}"
    );

    let missing = write(
        dir.path(),
        "missing.yaml",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  containers:\n  - name: c\n    image: {BUSYBOX}\n    envFrom:\n    - configMapRef: {{name: nowhere}}\n"
        ),
    )?;
    let (code, _, err) = env.run(&["kube", "play", &missing])?;
    assert_eq!(code, 125, "{err}");
    assert!(
        err.contains("(Pod p): spec.containers[0].envFrom[0].configMapRef.name: no ConfigMap \"nowhere\" in this file"),
        "{err}"
    );

    // A failing init container: the error names it and the pod is removed again.
    let failing = write(
        dir.path(),
        "failing.yaml",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  initContainers:\n  - name: prep\n    image: {BUSYBOX}\n    command: [sh, -c, 'exit 3']\n  containers:\n  - name: c\n    image: {BUSYBOX}\n    command: [sleep, '600']\n    volumeMounts: [{{name: scratch, mountPath: /s}}]\n  volumes: [{{name: scratch, emptyDir: {{}}}}]\n"
        ),
    )?;
    let (code, _, err) = env.run(&["kube", "play", &failing])?;
    assert_eq!(code, 125, "{err}");
    assert!(
        err.contains("pod p: init container p-prep exited with status 3"),
        "{err}"
    );
    assert!(ps_names(&env)?.is_empty());
    assert!(volume_names(&env)?.is_empty());
    env.assert_clean(&[]);
    Ok(())
}

#[test]
fn a_deployment_runs_its_replicas_as_pods() -> Result<()> {
    let env = Env::new()?;
    let dir = tempfile::tempdir()?;
    let file = write(
        dir.path(),
        "deploy.yaml",
        &format!(
            r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: api}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: api}}}}
  template:
    metadata: {{labels: {{app: api}}}}
    spec:
      containers:
      - name: main
        image: {BUSYBOX}
        command: [sleep, "600"]
        env: [{{name: POD, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}]
        envFrom: [{{configMapRef: {{name: api-config}}}}]
"#
        ),
    )?;
    let config = write(
        dir.path(),
        "config.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: api-config}\ndata: {MODE: fast}\n",
    )?;
    let mut scope = Scope::new(&env.berth);
    let (net, _) = scope.network("kube", &[])?;
    env.ok(&[
        "kube",
        "play",
        "--network",
        &net,
        "--configmap",
        &config,
        &file,
    ])?;
    assert_eq!(
        ps_names(&env)?,
        [
            "api-pod-0-infra",
            "api-pod-0-main",
            "api-pod-1-infra",
            "api-pod-1-main"
        ]
    );
    assert_eq!(
        env.ok(&["exec", "api-pod-1-main", "sh", "-c", "echo $POD $MODE"])?,
        "api-pod-1 fast\n"
    );
    // On a network of its own, each pod is reachable by its name.
    let (code, out, err) = env.run(&["exec", "api-pod-0-main", "nslookup", "api-pod-1"])?;
    assert_eq!(code, 0, "{out}{err}");
    let out = env.ok(&["kube", "play", "--down", &file])?;
    assert!(out.contains("api-pod-0\napi-pod-1\n"), "{out}");
    assert!(ps_names(&env)?.is_empty());
    env.assert_clean(&[]);
    scope.check_clean()?;
    Ok(())
}

#[test]
fn concurrent_plays_on_one_store_each_get_a_working_pod() -> Result<()> {
    let env = Env::new()?;
    let dir = tempfile::tempdir()?;
    let files: Vec<String> = (0..3)
        .map(|i| {
            write(
                dir.path(),
                &format!("p{i}.yaml"),
                &format!(
                    r#"apiVersion: v1
kind: Pod
metadata: {{name: p{i}}}
spec:
  containers:
  - name: server
    image: {BUSYBOX}
    command: [sh, -c, "echo pod {i} > /tmp/index.html; exec busybox httpd -f -p 8080 -h /tmp"]
  - name: client
    image: {BUSYBOX}
    command: [sleep, "600"]
"#
                ),
            )
        })
        .collect::<Result<_>>()?;
    std::thread::scope(|s| -> Result<()> {
        let handles: Vec<_> = files
            .iter()
            .map(|f| s.spawn(|| env.run(&["kube", "play", f])))
            .collect();
        for h in handles {
            let (code, out, err) = h.join().map_err(|_| anyhow::anyhow!("play panicked"))??;
            assert_eq!(code, 0, "{out}{err}");
        }
        Ok(())
    })?;
    for i in 0..3 {
        let client = format!("p{i}-client");
        env.until(Duration::from_secs(10), "the server to answer", || {
            let (code, out, _) = env.run(&[
                "exec",
                &client,
                "wget",
                "-q",
                "-O-",
                "http://127.0.0.1:8080/index.html",
            ])?;
            Ok(code == 0 && out == format!("pod {i}\n"))
        })?;
    }
    for f in &files {
        env.ok(&["kube", "down", f])?;
    }
    assert!(ps_names(&env)?.is_empty());
    env.assert_clean(&[]);
    Ok(())
}
