//! YAML as docker compose v2's `config` writes it (Go's yaml.v3 with a two-space indent):
//! sequences indented under their key, strings plain when they read back as strings,
//! double-quoted when they would read as another type (`"8080"`, `"true"`, `""`),
//! single-quoted when a plain scalar cannot hold them (`': '`, a leading `*`), and multi-line
//! strings as literal blocks.

use serde_norway::Value;

/// The document for `value` (a mapping at the top), ending with a newline.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Mapping(m) if !m.is_empty() => mapping(&mut out, m, 0),
        Value::Sequence(s) if !s.is_empty() => sequence(&mut out, s, 0),
        other => {
            out.push_str(&scalar(other, 0));
            out.push('\n');
        }
    }
    out
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// Entries at `indent`; the first one's padding is written by the caller when it follows
/// a `- ` on the same line.
fn mapping(out: &mut String, m: &serde_norway::Mapping, indent: usize) {
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 || !out.ends_with("- ") {
            pad(out, indent);
        }
        out.push_str(&key(k));
        out.push(':');
        value_after_key(out, v, indent);
    }
}

fn sequence(out: &mut String, s: &[Value], indent: usize) {
    for (i, v) in s.iter().enumerate() {
        if i > 0 || !out.ends_with("- ") {
            pad(out, indent);
        }
        out.push_str("- ");
        match untag(v) {
            Value::Mapping(m) if !m.is_empty() => mapping(out, m, indent + 2),
            Value::Sequence(s) if !s.is_empty() => sequence(out, s, indent + 2),
            other => {
                out.push_str(&scalar(other, indent + 2));
                out.push('\n');
            }
        }
    }
}

fn value_after_key(out: &mut String, v: &Value, indent: usize) {
    match untag(v) {
        Value::Mapping(m) if !m.is_empty() => {
            out.push('\n');
            mapping(out, m, indent + 2);
        }
        Value::Sequence(s) if !s.is_empty() => {
            out.push('\n');
            sequence(out, s, indent + 2);
        }
        other => {
            out.push(' ');
            out.push_str(&scalar(other, indent + 2));
            out.push('\n');
        }
    }
}

fn untag(v: &Value) -> &Value {
    match v {
        Value::Tagged(t) => untag(&t.value),
        v => v,
    }
}

fn key(k: &Value) -> String {
    match untag(k) {
        Value::String(s) if !s.contains('\n') => string(s),
        other => scalar(other, 0),
    }
}

/// A scalar (or an empty collection); a multi-line string's block lines at `indent`.
fn scalar(v: &Value, indent: usize) -> String {
    match untag(v) {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) if s.contains('\n') && plain_lines(s) => literal(s, indent),
        Value::String(s) => string(s),
        Value::Sequence(_) => "[]".into(),
        Value::Mapping(_) => "{}".into(),
        Value::Tagged(_) => String::new(),
    }
}

/// Whether a multi-line string can be a literal block (no line starts with a space, which
/// would need an indentation indicator, and nothing unprintable).
fn plain_lines(s: &str) -> bool {
    !s.starts_with(' ') && s.chars().all(|c| c == '\n' || !c.is_control() || c == '\t')
}

fn literal(s: &str, indent: usize) -> String {
    let body = s.strip_suffix('\n');
    let (chomp, body) = match body {
        Some(b) if b.ends_with('\n') => ("+", b),
        Some(b) => ("", b),
        None => ("-", s),
    };
    let mut out = format!("|{chomp}");
    for line in body.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            out.push_str(&" ".repeat(indent));
            out.push_str(line);
        }
    }
    out
}

/// One-line string: plain, single- or double-quoted.
fn string(s: &str) -> String {
    if s.is_empty() || reads_as_other_type(s) || s.chars().any(|c| c.is_control()) {
        double_quoted(s)
    } else if plain_allowed(s) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}

fn double_quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c if c.is_control() => out.push_str(&format!("\\x{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// yaml.v3 resolves it to null, a bool, a number or a YAML 1.1 base-60 float or old bool.
fn reads_as_other_type(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "~", "null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE", "y", "Y",
        "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF",
        ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan",
        ".NaN", ".NAN", "<<",
    ];
    if WORDS.contains(&s) {
        return true;
    }
    let digits = s.trim_start_matches(['+', '-']);
    let number = if let Some(h) = digits.strip_prefix("0x") {
        !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit() || c == '_')
    } else if let Some(o) = digits.strip_prefix("0o") {
        !o.is_empty() && o.chars().all(|c| matches!(c, '0'..='7' | '_'))
    } else if let Some(b) = digits.strip_prefix("0b") {
        !b.is_empty() && b.chars().all(|c| matches!(c, '0' | '1' | '_'))
    } else {
        digits.starts_with(|c: char| c.is_ascii_digit() || c == '.')
            && digits.replace('_', "").parse::<f64>().is_ok()
    };
    number || base60(s)
}

/// `[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?`: `8080:80` reads as a YAML 1.1 number.
fn base60(s: &str) -> bool {
    let s = s.trim_start_matches(['+', '-']);
    let (whole, _frac) = match s.split_once('.') {
        Some((w, f)) if f.chars().all(|c| c.is_ascii_digit() || c == '_') => (w, f),
        Some(_) => return false,
        None => (s, ""),
    };
    let mut parts = whole.split(':');
    let Some(first) = parts.next() else {
        return false;
    };
    let first_ok = first.starts_with(|c: char| c.is_ascii_digit())
        && first.chars().all(|c| c.is_ascii_digit() || c == '_');
    let rest: Vec<&str> = parts.collect();
    first_ok
        && !rest.is_empty()
        && rest.iter().all(|p| {
            let b = p.as_bytes();
            match b.len() {
                1 => b[0].is_ascii_digit(),
                2 => (b'0'..=b'5').contains(&b[0]) && b[1].is_ascii_digit(),
                _ => false,
            }
        })
}

/// libyaml's analysis for a plain scalar in block context.
fn plain_allowed(s: &str) -> bool {
    if s.starts_with(' ') || s.ends_with(' ') || s.starts_with("---") || s.starts_with("...") {
        return false;
    }
    let chars: Vec<char> = s.chars().collect();
    let blank_after = |i: usize| chars.get(i + 1).is_none_or(|c| *c == ' ' || *c == '\t');
    if let Some(&c0) = chars.first() {
        match c0 {
            '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"' | '%'
            | '@' | '`' => return false,
            '?' | ':' | '-' if blank_after(0) => return false,
            _ => {}
        }
    }
    for (i, c) in chars.iter().enumerate() {
        match c {
            ':' if blank_after(i) => return false,
            '#' if i > 0 && (chars[i - 1] == ' ' || chars[i - 1] == '\t') => return false,
            '\t' => return false,
            _ => {}
        }
    }
    true
}

/// Go's `time.Duration.String()`: `0s`, `1.5ms`, `45s`, `1m30s`, `1h0m0s`.
pub fn go_duration(d: std::time::Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    let frac = |v: u128, div: u128, width: usize| {
        let (whole, rest) = (v / div, v % div);
        if rest == 0 {
            whole.to_string()
        } else {
            let digits = format!("{rest:0width$}");
            format!("{whole}.{}", digits.trim_end_matches('0'))
        }
    };
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return format!("{}µs", frac(ns, 1_000, 3));
    }
    if ns < 1_000_000_000 {
        return format!("{}ms", frac(ns, 1_000_000, 6));
    }
    const MIN: u128 = 60_000_000_000;
    const HOUR: u128 = 60 * MIN;
    let (h, m, s) = (ns / HOUR, ns % HOUR / MIN, frac(ns % MIN, 1_000_000_000, 9));
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn y(text: &str) -> Value {
        serde_norway::from_str(text).unwrap()
    }

    #[test]
    fn block_style_with_indented_sequences() {
        let v = y("name: demo\nservices:\n  web:\n    command: [sh, -c, 'echo a: b']\n    ports:\n    - {mode: ingress, target: 80, published: '8080', protocol: tcp}\n    environment: {A: '1', B: null, C: ''}\n    labels: {}\n    nested: [[a, b]]\n");
        assert_eq!(
            to_yaml(&v),
            "name: demo\nservices:\n  web:\n    command:\n      - sh\n      - -c\n      - 'echo a: b'\n    ports:\n      - mode: ingress\n        target: 80\n        published: \"8080\"\n        protocol: tcp\n    environment:\n      A: \"1\"\n      B: null\n      C: \"\"\n    labels: {}\n    nested:\n      - - a\n        - b\n"
        );
    }

    #[test]
    fn strings_are_quoted_only_when_they_must_be() {
        for (s, want) in [
            ("wget -q localhost", "wget -q localhost"),
            ("true", "\"true\""),
            ("yes", "\"yes\""),
            ("1.5", "\"1.5\""),
            ("1:20", "\"1:20\""),
            ("8080:80", "8080:80"),
            ("127.0.0.1:8080:80", "127.0.0.1:8080:80"),
            ("1e3", "\"1e3\""),
            ("0x1F", "\"0x1F\""),
            ("*star", "'*star'"),
            ("it's: here", "'it''s: here'"),
            ("a #b", "'a #b'"),
            ("a#b", "a#b"),
            ("-", "'-'"),
            ("/data:/data:ro", "/data:/data:ro"),
            ("x\ty", "\"x\\ty\""),
            ("${VAR}", "${VAR}"),
        ] {
            assert_eq!(string(s), want, "{s}");
        }
    }

    #[test]
    fn durations_read_as_go_writes_them() {
        use std::time::Duration;
        for (d, want) in [
            (Duration::ZERO, "0s"),
            (Duration::from_millis(500), "500ms"),
            (Duration::from_micros(1500), "1.5ms"),
            (Duration::from_secs(10), "10s"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(60), "1m0s"),
            (Duration::from_secs(3600), "1h0m0s"),
        ] {
            assert_eq!(go_duration(d), want);
        }
    }

    #[test]
    fn multi_line_strings_are_literal_blocks() {
        let v = y("a:\n  script: \"echo 1\\necho 2\\n\"\n  two: \"x\\ny\"\n");
        assert_eq!(
            to_yaml(&v),
            "a:\n  script: |\n    echo 1\n    echo 2\n  two: |-\n    x\n    y\n"
        );
    }
}
