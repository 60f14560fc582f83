use super::*;
use serde_json::json;

fn data() -> Value {
    json!({
        "ID": "abc123",
        "Names": "web",
        "Count": 3,
        "Ratio": 0.5,
        "Big": 1e22,
        "Running": true,
        "Empty": "",
        "Nothing": null,
        "Config": {"Image": "alpine:3", "Cmd": ["sh", "-c", "echo hi"]},
        "Labels": {"b": "2", "a": "1", "x.y": "<dots>"},
        "Args": ["--rm", "-it"],
        "Mounts": [
            {"Destination": "/data", "RW": true},
            {"Destination": "/etc/conf", "RW": false}
        ]
    })
}

fn r(t: &str) -> String {
    Template::parse(t)
        .unwrap_or_else(|e| panic!("{t}: {e}"))
        .render(&data())
        .unwrap_or_else(|e| panic!("{t}: {e}"))
}

fn exec_err(t: &str) -> String {
    Template::parse(t)
        .unwrap()
        .render(&data())
        .unwrap_err()
        .to_string()
}

fn parse_err(t: &str) -> String {
    Template::parse(t).unwrap_err().to_string()
}

#[test]
fn fields_and_nested_fields() {
    assert_eq!(r("{{.Names}}"), "web");
    assert_eq!(r("id={{.ID}} n={{.Count}}"), "id=abc123 n=3");
    assert_eq!(r("{{.Config.Image}}"), "alpine:3");
    assert_eq!(r("{{ .Config.Image }}"), "alpine:3");
    assert_eq!(r("{{.Running}} {{.Ratio}} {{.Big}}"), "true 0.5 1e+22");
    assert_eq!(r("{{.Missing}}"), "<no value>");
    assert_eq!(r("{{.Nothing}}"), "<no value>");
    assert!(exec_err("{{.Names.First}}").contains("can't evaluate field First in type string"));
    assert!(exec_err("{{.Nothing.X}}").contains("nil pointer evaluating"));
}

#[test]
fn values_print_go_style() {
    assert_eq!(r("{{.Labels}}"), "map[a:1 b:2 x.y:<dots>]");
    assert_eq!(r("{{.Args}}"), "[--rm -it]");
    assert_eq!(
        r("{{.Mounts}}"),
        "[map[Destination:/data RW:true] map[Destination:/etc/conf RW:false]]"
    );
    assert!(r("{{.}}").starts_with("map[Args:[--rm -it] Big:1e+22"));
}

#[test]
fn json_function_marshals_like_go() {
    assert_eq!(r("{{json .Labels}}"), r#"{"a":"1","b":"2","x.y":"<dots>"}"#);
    assert_eq!(r("{{json .Args}}"), r#"["--rm","-it"]"#);
    assert_eq!(r("{{json .Names}}"), r#""web""#);
    let whole: Value = serde_json::from_str(&r("{{json .}}")).unwrap();
    assert_eq!(whole, data());
}

#[test]
fn index_reads_maps_and_lists() {
    assert_eq!(r(r#"{{index .Labels "a"}}"#), "1");
    assert_eq!(r(r#"{{index .Labels "x.y"}}"#), "<dots>");
    assert_eq!(r(r#"{{index .Labels "none"}}"#), "<no value>");
    assert_eq!(r("{{index .Args 1}}"), "-it");
    assert_eq!(r("{{index .Config.Cmd 2}}"), "echo hi");
    assert_eq!(r(r#"{{(index .Mounts 0).Destination}}"#), "/data");
    assert!(exec_err("{{index .Args 5}}").contains("index out of range: 5"));
}

#[test]
fn if_else_if_else() {
    assert_eq!(r("{{if .Running}}up{{else}}down{{end}}"), "up");
    assert_eq!(r("{{if .Empty}}x{{else}}empty{{end}}"), "empty");
    assert_eq!(r("{{if .Nothing}}x{{end}}"), "");
    assert_eq!(
        r("{{if .Missing}}a{{else if .Count}}b{{else}}c{{end}}"),
        "b"
    );
    assert_eq!(
        r("{{if not .Running}}a{{else if .Empty}}b{{else}}c{{end}}"),
        "c"
    );
    assert_eq!(r("{{if and .Running .Count}}both{{end}}"), "both");
    assert_eq!(
        r("{{if or .Empty .Nothing}}x{{else}}neither{{end}}"),
        "neither"
    );
    assert_eq!(r("{{or .Empty .Names}}"), "web");
    assert_eq!(r(r#"{{if eq .Names "db" "web"}}match{{end}}"#), "match");
    assert_eq!(
        r("{{if gt .Count 2}}big{{end}}{{if lt .Ratio 1}} small{{end}}"),
        "big small"
    );
    assert_eq!(r(r#"{{if ne .Names "web"}}x{{else}}same{{end}}"#), "same");
    assert!(exec_err(r#"{{if eq .Count "3"}}x{{end}}"#).contains("incompatible types"));
}

#[test]
fn range_over_lists_maps_with_variables_and_else() {
    assert_eq!(
        r("{{range .Mounts}}{{.Destination}} {{end}}"),
        "/data /etc/conf "
    );
    assert_eq!(
        r("{{range $i, $m := .Mounts}}{{$i}}={{$m.Destination}};{{end}}"),
        "0=/data;1=/etc/conf;"
    );
    assert_eq!(
        r("{{range $k, $v := .Labels}}{{$k}}:{{$v}},{{end}}"),
        "a:1,b:2,x.y:<dots>,"
    );
    assert_eq!(r("{{range .Nothing}}x{{else}}none{{end}}"), "none");
    assert_eq!(r("{{range .Args}}[{{.}}]{{end}}"), "[--rm][-it]");
    // $ is the root inside range.
    assert_eq!(r("{{range .Args}}{{$.Names}}{{end}}"), "webweb");
    assert!(exec_err("{{range .Names}}{{end}}").contains("range can't iterate over web"));
}

#[test]
fn with_and_variables() {
    assert_eq!(r("{{with .Config}}{{.Image}}{{end}}"), "alpine:3");
    assert_eq!(r("{{with .Empty}}x{{else}}no{{end}}"), "no");
    assert_eq!(r("{{$n := .Names}}{{$n}}-{{$n}}"), "web-web");
    assert_eq!(r("{{$n := 1}}{{$n = 2}}{{$n}}"), "2");
    assert!(exec_err("{{$nope}}").contains("undefined variable: $nope"));
}

#[test]
fn docker_string_functions() {
    assert_eq!(r(r#"{{join .Args " "}}"#), "--rm -it");
    assert_eq!(r(r#"{{join .Config.Cmd ","}}"#), "sh,-c,echo hi");
    assert_eq!(r(r#"{{split "a:b:c" ":"}}"#), "[a b c]");
    assert_eq!(r(r#"{{lower "MiXed"}} {{upper .Names}}"#), "mixed WEB");
    assert_eq!(r(r#"{{title "hello wide-world"}}"#), "Hello Wide-World");
    assert_eq!(r(r#"{{.Names | upper}}"#), "WEB");
    assert_eq!(
        r(r#"{{.Config.Image | printf "%s!" | upper}}"#),
        "ALPINE:3!"
    );
    assert_eq!(r(r#"[{{pad .Names 1 2}}]"#), "[ web  ]");
    assert_eq!(r(r#"{{truncate .ID 3}}"#), "abc");
    assert_eq!(r("{{len .Args}} {{len .Labels}} {{len .Names}}"), "2 3 3");
    assert_eq!(r(r#"{{slice .ID 1 3}}"#), "bc");
}

#[test]
fn print_functions_match_go_fmt() {
    assert_eq!(
        r(
            r#"{{printf "%s has %d (%v) %5.2f|%-4s|%04d %q %t %x %%" .Names .Count .Args .Ratio "ab" 7 "q" .Running 255}}"#
        ),
        "web has 3 ([--rm -it])  0.50|ab  |0007 \"q\" true ff %"
    );
    assert_eq!(r(r#"{{printf "%d" .Names}}"#), "%!d(string=web)");
    assert_eq!(r(r#"{{printf "%s %s" .Names}}"#), "web %!s(MISSING)");
    assert_eq!(r("{{println .Names .Count}}"), "web 3\n");
    assert_eq!(r("{{println}}"), "\n");
    assert_eq!(r(r#"{{print .Names "x" .Count 4}}"#), "webx3 4");
}

#[test]
fn trim_markers_comments_and_literals() {
    assert_eq!(r("a  {{- .Names -}}  b"), "awebb");
    assert_eq!(r("a {{/* a comment */}}b"), "a b");
    assert_eq!(r("{{- /* trimmed */ -}} x"), "x");
    assert_eq!(r(r#"{{"quoted \"s\"\t}}"}}"#), "quoted \"s\"\t}}");
    assert_eq!(r("{{`raw\\n`}}"), "raw\\n");
    assert_eq!(r("{{-3}} {{ 1.5 }} {{true}}"), "-3 1.5 true");
}

#[test]
fn parse_errors_say_template_parsing_error() {
    for (t, want) in [
        ("{{.Names", "unclosed action"),
        ("{{if .X}}a", "without {{end}}"),
        ("{{end}}", "unexpected {{end}}"),
        ("{{nosuch .X}}", "function \"nosuch\" not defined"),
        ("{{\"open}}", "unclosed action"),
        ("{{\"open\\q\"}}", "unknown escape"),
        ("{{(.X}}", "unclosed left paren"),
        ("{{.X | }}", "missing command"),
        ("{{define \"x\"}}{{end}}", "not supported"),
    ] {
        let e = parse_err(t);
        assert!(e.starts_with("template parsing error: "), "{t}: {e}");
        assert!(e.contains(want), "{t}: {e}");
    }
    assert!(exec_err("{{.Names 1}}").contains("can't give argument to non-function"));
}

#[test]
fn header_names_split_camel_case() {
    assert_eq!(default_header("ID"), "ID");
    assert_eq!(default_header("Names"), "NAMES");
    assert_eq!(default_header("CreatedSince"), "CREATED SINCE");
    assert_eq!(default_header("RunningFor"), "RUNNING FOR");
    assert_eq!(default_header("IPAddress"), "IP ADDRESS");
}

#[test]
fn tabwriter_aligns_like_docker() {
    // Go's tabwriter(minwidth 10, padding 3): short columns are 10 wide, long ones
    // max+3; the last cell is never padded.
    let t = align_tabs("A\tBB\tC\nlonger-value-here\tx\tlast\n");
    assert_eq!(
        t,
        "A                   BB        C\nlonger-value-here   x         last\n"
    );
}

#[test]
fn formats_table_json_and_raw() {
    let rows = vec![
        json!({"Repository": "alpine", "Tag": "3", "ID": "a1"}),
        json!({"Repository": "busybox-long-name", "Tag": "<none>", "ID": "b2"}),
    ];
    let hdr = |f: &str| {
        if f == "ID" {
            "IMAGE ID".to_string()
        } else {
            default_header(f)
        }
    };
    let default = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}";
    let table = Format::parse("", default).unwrap();
    assert!(table.is_table());
    assert_eq!(
        table.render(&rows, &hdr).unwrap(),
        "REPOSITORY          TAG       IMAGE ID\n\
         alpine              3         a1\n\
         busybox-long-name   <none>    b2\n"
    );
    // Literal backslash-t as a shell passes it.
    let custom = Format::parse("table {{.ID}}\\t{{.Repository}}", default).unwrap();
    assert_eq!(
        custom.render(&rows, &hdr).unwrap(),
        "IMAGE ID   REPOSITORY\na1         alpine\nb2         busybox-long-name\n"
    );
    let raw = Format::parse("{{.Repository}}:{{.Tag}}", default).unwrap();
    assert!(!raw.is_table());
    assert_eq!(
        raw.render(&rows, &hdr).unwrap(),
        "alpine:3\nbusybox-long-name:<none>\n"
    );
    let js = Format::parse("json", default).unwrap();
    let out = js.render(&rows, &hdr).unwrap();
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, rows);
    assert!(out.contains("\"<none>\""));
    assert!(Format::parse("{{.X", default).is_err());
    // "tablefoo" is a plain template, not a table.
    assert!(!Format::parse("tablefoo", default).unwrap().is_table());
}
