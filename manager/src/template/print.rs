//! Values printed as Go's fmt prints the interface values JSON decodes into (`%v`): maps as
//! `map[k:v ...]` with sorted keys, slices as `[a b]`, whole floats without a fraction.

use serde_json::{Number, Value};

/// `{{.X}}` output: top-level null is Go's `<no value>`.
pub(super) fn print_value(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".to_string(),
        v => go_v(v),
    }
}

/// `%v` of a value nested or passed to a print function: null is `<nil>`.
pub(super) fn go_v(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number(n),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_v).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let items: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{k}:{}", go_v(&m[k])))
                .collect();
            format!("map[{}]", items.join(" "))
        }
    }
}

/// Go's `%v` of a float64 (what JSON numbers are in Go) is `%g` with the shortest
/// representation, exponent form below 1e-4 or from 1e21; integers keep all digits.
fn number(n: &Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    let f = n.as_f64().unwrap_or(0.0);
    go_float(f)
}

pub(super) fn go_float(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-4..1e21).contains(&abs) {
        // Rust: "1e-5" / "1.5e22"; Go: "1e-05" / "1.5e+22".
        let s = format!("{f:e}");
        let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let (sign, digits) = match exp.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', exp),
        };
        return format!("{mant}e{sign}{digits:0>2}");
    }
    format!("{f}")
}

/// Go's `fmt.Sprint`: operands printed with `%v`, a space between two operands when neither
/// is a string.
pub(super) fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !a.is_string() && !args[i - 1].is_string() {
            out.push(' ');
        }
        out.push_str(&go_v(a));
    }
    out
}

/// Go's `fmt.Sprintln`: spaces between all operands, and a newline.
pub(super) fn sprintln(args: &[Value]) -> String {
    let mut s = args.iter().map(go_v).collect::<Vec<_>>().join(" ");
    s.push('\n');
    s
}

/// Go's `fmt.Sprintf` for the verbs templates use: `%v %s %d %q %t %x %X %f %e %g %c %%`,
/// with flags `-`, `0`, `+`, space, width and precision. Mistakes print like Go's
/// (`%!d(string=x)`, `%!s(MISSING)`).
pub(super) fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut minus = false;
        let mut zero = false;
        let mut plus = false;
        while let Some(&f) = chars.peek() {
            match f {
                '-' => minus = true,
                '0' => zero = true,
                '+' => plus = true,
                ' ' | '#' => {}
                _ => break,
            }
            chars.next();
        }
        let mut width = String::new();
        while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            width.push(d);
            chars.next();
        }
        let mut precision: Option<usize> = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut p = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                p.push(d);
                chars.next();
            }
            precision = Some(p.parse().unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.next() else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        let bad = || format!("%!{verb}({}={})", go_type(arg), go_v(arg));
        let num = arg.as_f64();
        let body = match verb {
            'v' => go_v(arg),
            's' => match precision {
                Some(p) => go_v(arg).chars().take(p).collect(),
                None => go_v(arg),
            },
            'q' => match arg {
                Value::String(s) => serde_json::to_string(s).unwrap_or_default(),
                _ => bad(),
            },
            't' => match arg {
                Value::Bool(b) => b.to_string(),
                _ => bad(),
            },
            'd' => match arg.as_i64() {
                Some(i) if plus && i >= 0 => format!("+{i}"),
                Some(i) => i.to_string(),
                None => match arg.as_u64() {
                    Some(u) => u.to_string(),
                    None => bad(),
                },
            },
            'x' | 'X' => {
                let s = match arg {
                    Value::String(s) => s.bytes().map(|b| format!("{b:02x}")).collect(),
                    // Go prints a sign and the magnitude, not two's complement.
                    _ => match arg.as_i64() {
                        Some(i) if i < 0 => format!("-{:x}", i.unsigned_abs()),
                        Some(i) => format!("{i:x}"),
                        None => bad(),
                    },
                };
                if verb == 'X' {
                    s.to_uppercase()
                } else {
                    s
                }
            }
            'f' | 'F' => match num {
                Some(f) => format!("{f:.prec$}", prec = precision.unwrap_or(6)),
                None => bad(),
            },
            'e' => match num {
                Some(f) => go_exp(f, precision.unwrap_or(6)),
                None => bad(),
            },
            'g' => match num {
                Some(f) => go_float(f),
                None => bad(),
            },
            'c' => match arg.as_u64().and_then(|u| char::from_u32(u as u32)) {
                Some(ch) => ch.to_string(),
                None => bad(),
            },
            _ => format!("%!{verb}({}={})", go_type(arg), go_v(arg)),
        };
        let width: usize = width.parse().unwrap_or(0);
        let len = body.chars().count();
        if len >= width {
            out.push_str(&body);
        } else if minus {
            out.push_str(&body);
            out.push_str(&" ".repeat(width - len));
        } else if zero && num.is_some() {
            let (sign, digits) = match body.strip_prefix('-') {
                Some(d) => ("-", d),
                None => ("", body.as_str()),
            };
            out.push_str(sign);
            out.push_str(&"0".repeat(width - len));
            out.push_str(digits);
        } else {
            out.push_str(&" ".repeat(width - len));
            out.push_str(&body);
        }
    }
    let extra: Vec<&Value> = args.collect();
    if !extra.is_empty() {
        let items: Vec<String> = extra
            .iter()
            .map(|a| format!("{}={}", go_type(a), go_v(a)))
            .collect();
        out.push_str(&format!("%!(EXTRA {})", items.join(", ")));
    }
    out
}

fn go_exp(f: f64, prec: usize) -> String {
    let s = format!("{f:.prec$e}");
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let (sign, digits) = match exp.strip_prefix('-') {
        Some(d) => ('-', d),
        None => ('+', exp),
    };
    format!("{mant}e{sign}{digits:0>2}")
}

/// The Go type a JSON value decodes into, for messages.
pub(super) fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}
