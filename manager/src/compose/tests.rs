//! The loader end to end, on files in a temp directory.

use std::path::Path;

use super::*;

fn write(dir: &Path, name: &str, text: &str) {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(p, text).unwrap();
}

fn opts(dir: &Path) -> ProjectOptions {
    ProjectOptions {
        cwd: dir.to_path_buf(),
        ..ProjectOptions::default()
    }
}

fn load_text(text: &str) -> Result<Project, ComposeError> {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "compose.yaml", text);
    let mut o = opts(dir.path());
    o.project_name = Some("demo".into());
    load(&o)
}

#[test]
fn a_minimal_project_gets_names_and_the_default_network() {
    let dir = tempfile::tempdir().unwrap();
    let proj = dir.path().join("My_Proj");
    write(&proj, "compose.yaml", "services:\n  web:\n    image: busybox\n  db:\n    image: busybox\n    depends_on: [web]\nvolumes:\n  data:\n");
    let p = load(&opts(&proj)).unwrap();
    assert_eq!(p.name, "my_proj");
    assert_eq!(
        p.networks["default"].name.as_deref(),
        Some("my_proj_default")
    );
    assert_eq!(p.volumes["data"].name.as_deref(), Some("my_proj_data"));
    assert!(p.services["web"].networks.contains_key("default"));
    assert_eq!(order::start_order(&p).unwrap(), vec!["web", "db"]);
}

#[test]
fn interpolation_uses_dot_env_under_the_process_environment() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        ".env",
        "TAG=1.0\nPORT=8080\nCOMPOSE_PROJECT_NAME=fromenv\n",
    );
    write(dir.path(), "compose.yaml", "services:\n  web:\n    image: \"busybox:${TAG}\"\n    ports: [\"${PORT}:80\"]\n    scale: ${N:-2}\n    environment:\n      - LIT=$$HOME\n      - FROM_ENV\n");
    let mut o = opts(dir.path());
    o.environment.insert("PORT".into(), "9090".into());
    o.environment.insert("FROM_ENV".into(), "x".into());
    let p = load(&o).unwrap();
    assert_eq!(p.name, "fromenv");
    let web = &p.services["web"];
    assert_eq!(web.image.as_deref(), Some("busybox:1.0"));
    assert_eq!(web.ports[0].published.as_deref(), Some("9090"));
    assert_eq!(web.replicas(), 2);
    assert_eq!(web.environment["LIT"].as_deref(), Some("$HOME"));
    assert_eq!(web.environment["FROM_ENV"].as_deref(), Some("x"));
}

#[test]
fn override_files_merge_by_the_spec_rules() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "compose.yaml", "services:\n  web:\n    image: a\n    command: [one]\n    environment: [A=1, B=2]\n    ports: ['80:80']\n    labels: {x: '1'}\n");
    write(dir.path(), "compose.override.yaml", "services:\n  web:\n    image: b\n    command: two\n    environment: {B: '3'}\n    ports: !override ['81:81']\n    labels: !reset {}\n");
    let p = load(&opts(dir.path())).unwrap();
    let web = &p.services["web"];
    assert_eq!(web.image.as_deref(), Some("b"));
    assert_eq!(web.command, Some(vec!["two".to_string()]));
    assert_eq!(web.environment["A"].as_deref(), Some("1"));
    assert_eq!(web.environment["B"].as_deref(), Some("3"));
    assert_eq!(web.ports.len(), 1);
    assert_eq!(web.ports[0].target, 81);
    assert!(web.labels.is_empty());
}

#[test]
fn extends_in_the_same_and_another_file() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "common/base.yaml", "services:\n  base:\n    image: busybox\n    environment: {FROM: base}\n    volumes: ['./data:/data']\n");
    write(dir.path(), "compose.yaml", "services:\n  tmpl:\n    image: x\n    labels: {a: '1'}\n  one:\n    extends: tmpl\n    labels: {b: '2'}\n  two:\n    extends: {file: common/base.yaml, service: base}\n    environment: {MINE: '1'}\n");
    let p = load(&opts(dir.path())).unwrap();
    assert_eq!(p.services["one"].image.as_deref(), Some("x"));
    assert_eq!(p.services["one"].labels.len(), 2);
    let two = &p.services["two"];
    assert_eq!(two.environment.len(), 2);
    let src = two.volumes[0].source.as_deref().unwrap();
    assert_eq!(src, dir.path().join("common/data").display().to_string());
}

#[test]
fn include_brings_another_projects_services() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "db/compose.yaml",
        "services:\n  db:\n    image: busybox\n",
    );
    write(
        dir.path(),
        "compose.yaml",
        "include: [db/compose.yaml]\nservices:\n  web:\n    image: busybox\n    depends_on: [db]\n",
    );
    let p = load(&opts(dir.path())).unwrap();
    assert!(p.services.contains_key("db"));
    write(
        dir.path(),
        "compose.yaml",
        "include: [db/compose.yaml]\nservices:\n  db:\n    image: other\n",
    );
    let e = load(&opts(dir.path())).unwrap_err();
    assert!(e.to_string().contains("\"db\" is already defined"), "{e}");
}

#[test]
fn profiles_disable_services_unless_active_or_named() {
    let text = "services:\n  web:\n    image: a\n  debug:\n    image: a\n    profiles: [dev]\n";
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "compose.yaml", text);
    let p = load(&opts(dir.path())).unwrap();
    assert_eq!(p.services.keys().collect::<Vec<_>>(), vec!["web"]);
    let mut o = opts(dir.path());
    o.profiles = vec!["dev".into()];
    assert_eq!(load(&o).unwrap().services.len(), 2);
    let mut o = opts(dir.path());
    o.environment
        .insert("COMPOSE_PROFILES".into(), "dev".into());
    assert_eq!(load(&o).unwrap().services.len(), 2);
    let mut o = opts(dir.path());
    o.services = vec!["debug".into()];
    assert_eq!(load(&o).unwrap().services.len(), 2);
}

#[test]
fn bad_input_names_the_file_and_path() {
    let cases = [
        ("services:\n  web:\n    image: a\n    bogus: 1\n", "compose.yaml: services.web.bogus: unknown field `bogus`"),
        ("services:\n  web:\n    image: a\n    ports: ['80', {target: x}]\n", "services.web.ports[1].target: invalid type"),
        ("services:\n  web:\n    image: a\n    depends_on: [db]\n", "service \"web\" depends on undefined service \"db\""),
        ("services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [a]\n", "dependency cycle detected: a -> b -> a"),
        ("services:\n  web:\n    image: ${NOPE:?set NOPE}\n", "error while interpolating services.web.image: required variable NOPE is missing a value: set NOPE"),
        ("services:\n  web:\n    build: .\n    image: a\n    networks: [nope]\n", "refers to undefined network nope"),
        ("services:\n  web: {}\n", "has neither an image nor a build context"),
        ("services:\n  web:\n    image: a\n    volumes: ['data:/d']\n", "refers to undefined volume data"),
        ("services:\n  web:\n    image: [a\n", "line 3"),
        ("services:\n  web:\n    image: a\n    restart: ${A:}\n", "invalid interpolation format for services.web.restart"),
    ];
    for (text, want) in cases {
        let e = load_text(text).unwrap_err().to_string();
        assert!(e.contains(want), "{text}\n got: {e}\nwant: {want}");
        if want.contains("services.") || want.starts_with("line") {
            assert!(e.contains("compose.yaml"), "{e}");
        }
    }
}

#[test]
fn config_renders_yaml_and_json_and_hashes_ignore_scale() {
    let p =
        load_text("services:\n  web:\n    image: busybox\n    command: echo hi\n    scale: 2\n")
            .unwrap();
    let yaml = render(&p, Format::Yaml).unwrap();
    // yaml.v3's layout, as docker compose v2 prints it: sequences indented under their key.
    assert!(
        yaml.contains("command:\n      - echo\n      - hi"),
        "{yaml}"
    );
    let json = render(&p, Format::Json).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["name"], "demo");
    let mut s = p.services["web"].clone();
    let h = config_hash(&s);
    s.scale = Some(5);
    assert_eq!(config_hash(&s), h);
    s.image = Some("other".into());
    assert_ne!(config_hash(&s), h);
}

#[test]
fn compose_file_may_come_from_dot_env() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), ".env", "COMPOSE_FILE=app.yaml\n");
    write(dir.path(), "app.yaml", "services:\n  only:\n    image: a\n");
    let p = load(&opts(dir.path())).unwrap();
    assert!(p.services.contains_key("only"));
}
