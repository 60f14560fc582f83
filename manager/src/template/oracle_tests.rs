//! Go's text/template itself as the oracle: the docker CLI evaluates `docker version
//! --format` client-side, even without a daemon, over its client info. Each template is run
//! by docker and by us over the same data, and the outputs must match byte for byte.
//! Tables are compared the same way through `docker context ls`, also client-side.
//! Skipped where the docker CLI is not installed (hack/setup installs it).

use std::process::Command;

use serde_json::{json, Value};

use super::{default_header, Format, Template};

/// `docker version --format T` with no daemon reachable: the template's output on stdout
/// (docker adds a newline), the "cannot connect" complaint on stderr.
fn docker_format(template: &str) -> Option<String> {
    let out = Command::new("docker")
        .args(["version", "--format", template])
        .env("DOCKER_HOST", "unix:///nonexistent/berth-oracle.sock")
        .env_remove("DOCKER_CONTEXT")
        // Never the user's contexts or credentials.
        .env("DOCKER_CONFIG", "/nonexistent/berth-oracle-docker-config")
        .output()
        .ok()?;
    let s = String::from_utf8(out.stdout).ok()?;
    Some(s.strip_suffix('\n').unwrap_or(&s).to_string())
}

#[test]
fn templates_render_exactly_as_go_text_template() {
    let Some(client) = docker_format("{{json .Client}}") else {
        eprintln!("skipped: no docker CLI");
        return;
    };
    let client: Value = serde_json::from_str(&client).expect("docker's client JSON");
    let data = json!({ "Client": client });
    let cases = [
        "{{.Client.Version}} {{.Client.Os}}/{{.Client.Arch}}",
        r#"{{printf "%q|%5.2f|%-6s|%04d|%x|%X|%t|%v|%s" .Client.Version 3.14159 "ab" 42 255 "hi" true 1.5 .Client.Os}}"#,
        r#"{{printf "%d %s" 1}}|{{printf "%d" "x"}}|{{printf "x" 1}}|{{printf "%%"}}"#,
        r#"{{printf "%e|%g|%.1f|%8.3f|%-8d|%+d" 1234.5678 0.000012 2.25 3.14159 7 5}}"#,
        r#"{{range $i, $p := split .Client.Os "n"}}{{$i}}={{$p}};{{end}}"#,
        r#"{{title "hello wide-world_x y"}} {{upper .Client.Arch}} {{lower "MiXeD"}}"#,
        "{{len .Client.Arch}} {{slice .Client.Version 0 2}} {{slice .Client.Os 2}}",
        r#"{{println "a" 1 2}}x{{print 1 2 "a" 3 "b" true false}}"#,
        r#"{{if eq .Client.Os "darwin" "linux"}}yes{{else}}no{{end}}"#,
        r#"{{if and (gt 3 2) (lt 1.5 2.5) (ne .Client.Os "x") (ge 2 2) (le "a" "b")}}ok{{end}}"#,
        r#"{{json .Client.Os}} {{json "<a&b>"}} {{json 1.5}}"#,
        r#"{{join (split .Client.Version ".") "-"}}"#,
        "{{with .Client}}{{.Arch}}{{else}}none{{end}}",
        r#"a {{- " trimmed " -}}  {{ "x" }}"#,
        r#"{{index (split "a,b,c" ",") 1}}"#,
        r#"{{pad "x" 2 3}}|{{truncate "abcdef" 3}}"#,
        r#"{{$v := .Client.Version}}{{$v}} {{$v = "new"}}{{$v}}"#,
        r#"{{or "" "fallback"}} {{and 1 0}} {{not ""}} {{or 0 ""}}"#,
        r#"{{range split "a b" " "}}[{{.}}]{{else}}none{{end}}"#,
        r#"{{printf "%v" (split "a b" " ")}} {{split "a b" " "}}"#,
        "{{1e22}} {{0.00001}} {{100}} {{-7}} {{1.5}} {{0x1F}}",
        // (No tab: docker version sends its output through a tabwriter.)
        r#"{{"\u00e9\x41\\\n"}}{{`raw\n`}}"#,
        r#"{{if .Client.Version}}{{else if .Client.Os}}b{{end}}|{{if not .Client.Os}}a{{else if .Client.Arch}}b{{else}}c{{end}}"#,
        "{{/* comment */}}x{{- /* trimmed comment */ -}} y",
        r#"{{.Client.Version | printf "%s!" | upper}}"#,
        r#"{{(split .Client.Version ".") | len}}"#,
        r#"{{printf "%5s|%-5s|%.2s|%c|%x|%08.3f" "ab" "cd" "efg" 65 -255 -3.14159}}"#,
        r#"{{printf "%v %v" true (split "" ",")}} {{len (split "" ",")}}"#,
        r#"{{range $i, $e := split "x,y" ","}}{{if $i}},{{end}}{{$e}}{{end}}"#,
        r#"{{range $e := split "x,y" ","}}<{{$e}}>{{end}}"#,
        // (`{{else with}}` is Go 1.23: older docker CLIs refuse it.)
        r#"{{with $x := .Client.Os}}{{$x}}{{end}}{{with ""}}a{{else}}b{{end}}"#,
        r#"{{eq 2 2}} {{eq "a" "b"}} {{ne 1 2}} {{lt "abc" "abd"}}"#,
        r#"{{title ""}}|{{upper ""}}|{{join (split "a" ",") ","}}"#,
    ];
    let mut failures = Vec::new();
    for t in cases {
        let Some(want) = docker_format(t) else {
            failures.push(format!("{t}: docker failed"));
            continue;
        };
        let got = Template::parse(t)
            .and_then(|tmpl| tmpl.render(&data))
            .unwrap_or_else(|e| format!("ERROR {e}"));
        if got != want {
            failures.push(format!("{t}\n  go:    {want:?}\n  berth: {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn tables_align_exactly_as_docker_prints_them() {
    let config = tempfile::tempdir().unwrap();
    let docker = |args: &[&str]| {
        Command::new("docker")
            .args(args)
            .env("DOCKER_CONFIG", config.path())
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    };
    if docker(&["--version"]).is_none() {
        eprintln!("skipped: no docker CLI");
        return;
    }
    // Contexts live in DOCKER_CONFIG: rows of different widths, no daemon needed.
    for (name, desc) in [
        ("a-rather-long-context-name", "short"),
        ("mid-size", "a much longer description than the others"),
        ("xy", ""),
    ] {
        docker(&[
            "context",
            "create",
            name,
            "--description",
            desc,
            "--docker",
            "host=unix:///nonexistent/berth.sock",
        ])
        .expect("docker context create");
    }
    let rows: Vec<Value> = docker(&["context", "ls", "--format", "{{json .}}"])
        .expect("docker context ls")
        .lines()
        .map(|l| serde_json::from_str(l).expect("context row"))
        .collect();
    assert_eq!(rows.len(), 4);
    let mut failures = Vec::new();
    for t in [
        "table {{.Name}}\t{{.Description}}\t{{.DockerEndpoint}}",
        "table {{.DockerEndpoint}}\t{{.Name}}",
        "table {{.Name}}",
        "table {{.Description}}\t{{.Name}}:{{.Name}}\t",
        "{{.Name}}\t{{.Description}}",
    ] {
        let want = docker(&["context", "ls", "--format", t]).expect("docker context ls");
        let got = Format::parse(t, "")
            .and_then(|f| f.render(&rows, &default_header))
            .unwrap_or_else(|e| format!("ERROR {e}"));
        if got != want {
            failures.push(format!("{t}\n--- docker:\n{want}--- berth:\n{got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
