use std::path::Path;

use super::*;
use crate::kube::parse;

fn plan(yaml: &str) -> Result<PodPlan, KubeError> {
    let m = parse(yaml, "t.yaml")?;
    let (at, pod) = m.pods().next().expect("a pod");
    let src = PodSource {
        name: pod.metadata.name.clone(),
        at,
        prefix: "spec",
        spec: &pod.spec,
        labels: BTreeMap::new(),
    };
    plan_pod(&src, &m, Path::new("/r/kube"))
}

const POD: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {GREETING: hello, file.txt: "content"}
---
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  securityContext: {runAsUser: 1000}
  initContainers:
  - name: prep
    image: busybox
    args: [echo, hi]
  containers:
  - name: server
    image: busybox
    command: [httpd, -f, -p, "$(PORT)"]
    env:
    - {name: PORT, value: "8080"}
    - name: G
      valueFrom: {configMapKeyRef: {name: cfg, key: GREETING}}
    envFrom:
    - {configMapRef: {name: cfg}, prefix: CM_}
    ports:
    - {containerPort: 8080, hostPort: 18080}
    resources:
      limits: {cpu: 500m, memory: 64Mi}
    securityContext:
      capabilities: {add: [NET_ADMIN], drop: [ALL]}
      readOnlyRootFilesystem: true
    readinessProbe:
      httpGet: {path: /index.html, port: 8080}
      periodSeconds: 2
    volumeMounts:
    - {name: cache, mountPath: /cache}
    - {name: conf, mountPath: /etc/conf}
    - {name: data, mountPath: /data, readOnly: true}
  volumes:
  - {name: cache, emptyDir: {}}
  - {name: conf, configMap: {name: cfg}}
  - {name: data, persistentVolumeClaim: {claimName: pvc1}}
"#;

#[test]
fn a_pod_becomes_an_infra_container_and_containers_in_its_network_namespace() {
    let p = plan(POD).unwrap();
    assert_eq!(p.infra.0, "web-infra");
    let infra = &p.infra.1;
    assert_eq!(infra.config.hostname, "web");
    assert_eq!(
        infra.host_config.port_bindings["8080/tcp"][0].host_port,
        "18080"
    );
    assert_eq!(p.init[0].0, "web-prep");
    assert_eq!(p.init[0].1.host_config.restart_policy.name, "no");
    let (name, s) = &p.apps[0];
    assert_eq!(name, "web-server");
    assert_eq!(s.host_config.network_mode, "container:web-infra");
    assert_eq!(s.host_config.restart_policy.name, "always");
    assert_eq!(
        s.config.entrypoint.as_deref().unwrap(),
        ["httpd", "-f", "-p", "8080"]
    );
    assert_eq!(s.config.cmd, None);
    assert_eq!(s.config.user, "1000");
    assert!(s.config.env.contains(&"G=hello".to_string()));
    assert!(s.config.env.contains(&"CM_GREETING=hello".to_string()));
    assert_eq!(s.host_config.nano_cpus, 500_000_000);
    assert_eq!(s.host_config.memory, 64 << 20);
    assert_eq!(s.host_config.cap_drop, ["ALL"]);
    assert!(s.host_config.readonly_rootfs);
    let hc = s.config.healthcheck.as_ref().unwrap();
    assert_eq!(hc.test[0], "CMD-SHELL");
    assert!(
        hc.test[1].contains("http://127.0.0.1:8080/index.html"),
        "{:?}",
        hc.test
    );
    assert_eq!(hc.interval, 2_000_000_000);
    let m = &s.host_config.mounts;
    assert_eq!(
        (m[0].r#type.as_str(), m[0].source.as_str()),
        ("volume", "web-cache")
    );
    assert_eq!(m[1].source, "/r/kube/web/conf");
    assert!(m[1].read_only);
    assert_eq!((m[2].source.as_str(), m[2].read_only), ("pvc1", true));
    assert_eq!(p.files.len(), 2);
    assert_eq!(p.files[1].path, Path::new("/r/kube/web/conf/file.txt"));
    let names: Vec<&str> = p.volumes.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["web-cache", "pvc1"]);
}

#[test]
fn missing_references_and_unsupported_values_name_their_field() {
    let bad = POD.replace("key: GREETING", "key: NOPE");
    let e = plan(&bad).unwrap_err().to_string();
    assert_eq!(
        e,
        "t.yaml: document 2 (Pod web): spec.containers[0].env[1].valueFrom.configMapKeyRef: no ConfigMap \"cfg\" with key \"NOPE\" in this file"
    );
    let bad = POD.replace("name: data, mountPath", "name: nodata, mountPath");
    let e = plan(&bad).unwrap_err().to_string();
    assert!(
        e.ends_with("spec.containers[0].volumeMounts[2].name: no volume \"nodata\" in volumes"),
        "{e}"
    );
    let bad = POD.replace(
        "{name: cache, emptyDir: {}}",
        "{name: cache, nfs: {server: x, path: /}}",
    );
    let e = plan(&bad).unwrap_err().to_string();
    assert!(e.ends_with("spec.volumes[0]: no supported volume source (hostPath, emptyDir, persistentVolumeClaim, configMap, secret)"), "{e}");
    let bad = POD.replace("cpu: 500m", "cpu: lots");
    let e = plan(&bad).unwrap_err().to_string();
    assert!(
        e.ends_with("spec.containers[0].resources.limits.cpu: \"lots\" is not a quantity"),
        "{e}"
    );
}

#[test]
fn variable_references_expand_like_kubernetes() {
    let env = vec![("A".to_string(), "1".to_string())];
    assert_eq!(expand("x$(A)y", &env), "x1y");
    assert_eq!(expand("$(B)", &env), "$(B)");
    assert_eq!(expand("$$(A)", &env), "$(A)");
    assert_eq!(expand("$HOME $(A", &env), "$HOME $(A");
}
