use super::*;

const POD: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  GREETING: hello
---
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  restartPolicy: Never
  initContainers:
  - name: prep
    image: busybox
    command: [sh, -c, "echo ready"]
  containers:
  - name: server
    image: busybox
    foo: bar
    ports:
    - containerPort: 80
      hostPort: 8080
    env:
    - name: A
      value: "1"
    resources:
      limits: {cpu: 500m, memory: 64Mi}
    livenessProbe:
      httpGet: {path: /, port: 80}
      periodSeconds: 5
  volumes:
  - name: data
    emptyDir: {}
    gitRepo: {repository: x}
"#;

#[test]
fn a_multi_document_manifest_parses_with_unknown_fields_reported_by_path() {
    let m = parse(POD, "pod.yaml").unwrap();
    assert_eq!(m.objects.len(), 2);
    assert!(m.config_map("settings").is_some());
    let (at, pod) = m.pods().next().unwrap();
    assert_eq!(at, "pod.yaml: document 2 (Pod web)");
    assert_eq!(pod.spec.init_containers[0].name, "prep");
    let c = &pod.spec.containers[0];
    assert_eq!(c.ports[0].host_port, Some(8080));
    assert_eq!(
        c.resources.as_ref().unwrap().limits["cpu"],
        Quantity("500m".into())
    );
    let probe = c.liveness_probe.as_ref().unwrap();
    assert_eq!(probe.http_get.as_ref().unwrap().port, IntOrString::Int(80));
    assert_eq!(
        m.warnings,
        [
            "pod.yaml: document 2 (Pod web): unknown field spec.containers[0].foo is ignored",
            "pod.yaml: document 2 (Pod web): unknown field spec.volumes[0].gitRepo is ignored",
        ]
    );
}

#[test]
fn bad_yaml_names_file_line_and_column() {
    let e = parse("apiVersion: v1\nkind: Pod\nmetadata: [\n", "bad.yaml").unwrap_err();
    let text = e.to_string();
    assert!(text.starts_with("bad.yaml: line "), "{text}");
    assert!(matches!(e, KubeError::Yaml { line: 3 | 4, .. }), "{text}");
}

#[test]
fn wrong_shapes_unknown_kinds_and_missing_names_are_errors_naming_the_field() {
    let e = parse(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    image: i\n    ports:\n    - containerPort: http\n",
        "f.yaml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("f.yaml: document 1 (Pod p): spec.containers[0].ports[0].containerPort: "),
        "{e}"
    );
    let e = parse(
        "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\n",
        "f.yaml",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("kind: Job is not supported"), "{e}");
    let e = parse(
        "apiVersion: v1\nkind: Pod\nspec: {containers: [{name: c, image: i}]}\n",
        "f.yaml",
    )
    .unwrap_err()
    .to_string();
    assert_eq!(e, "f.yaml: document 1 (Pod): metadata.name: required");
    let e = parse(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c}]}\n",
        "f.yaml",
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        e,
        "f.yaml: document 1 (Pod p): spec.containers[0].image: required"
    );
    let e = parse(
        "apiVersion: v1\nkind: Deployment\nmetadata: {name: d}\n",
        "f.yaml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("apiVersion: \"v1\" is not supported for Deployment"),
        "{e}"
    );
}

#[test]
fn a_generated_pod_serializes_in_kubernetes_order_without_empty_fields() {
    let pod = Pod {
        api_version: "v1".into(),
        kind: "Pod".into(),
        metadata: ObjectMeta {
            name: "p".into(),
            ..Default::default()
        },
        spec: PodSpec {
            containers: vec![Container {
                name: "c".into(),
                image: "busybox".into(),
                ..Default::default()
            }],
            ..Default::default()
        },
        status: None,
    };
    let text = serde_norway::to_string(&pod).unwrap();
    assert_eq!(
        text,
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n    image: busybox\n"
    );
    let back = parse(&text, "x").unwrap();
    assert!(back.warnings.is_empty());
    assert_eq!(back.objects[0].object, Object::Pod(Box::new(pod)));
}

#[test]
fn anchors_and_merge_keys_are_resolved() {
    let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - &base {name: a, image: busybox, workingDir: /w}\n  - <<: *base\n    name: b\n";
    let m = parse(text, "m.yaml").unwrap();
    let (_, pod) = m.pods().next().unwrap();
    assert_eq!(pod.spec.containers[1].name, "b");
    assert_eq!(pod.spec.containers[1].working_dir.as_deref(), Some("/w"));
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
}
