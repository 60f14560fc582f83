//! Template functions: Go's builtins and the ones docker adds (`json join split lower upper
//! title pad truncate`).

use std::cmp::Ordering;

use serde_json::Value;

use super::print::{go_type, go_v, sprint, sprintf, sprintln};

/// Every function name a template may call (checked when parsing, as Go does).
pub(super) const NAMES: [&str; 23] = [
    "and", "or", "not", "len", "index", "slice", "print", "printf", "println", "eq", "ne", "lt",
    "le", "gt", "ge", "json", "join", "split", "lower", "upper", "title", "pad", "truncate",
];

type FuncResult = Result<Value, String>;

/// Go's notion of a value being "true" in `if`, `and`, `or`, `not`: not the zero value.
pub(super) fn truth(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

/// JSON as docker's `json` function writes it: Go's encoder with HTML escaping off (so `<`
/// stays `<`), which still escapes U+2028 and U+2029.
pub(super) fn to_json(v: &Value) -> String {
    let s = serde_json::to_string(v).unwrap_or_else(|_| "null".to_string());
    s.replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

fn arity(name: &str, args: &[Value], n: usize) -> Result<(), String> {
    if args.len() != n {
        return Err(format!(
            "wrong number of args for {name}: want {n} got {}",
            args.len()
        ));
    }
    Ok(())
}

fn string_arg<'a>(name: &str, v: &'a Value) -> Result<&'a str, String> {
    v.as_str().ok_or_else(|| {
        format!(
            "wrong type for value; expected string; got {} (in {name})",
            go_type(v)
        )
    })
}

fn int_arg(name: &str, v: &Value) -> Result<i64, String> {
    v.as_i64()
        .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
        .ok_or_else(|| format!("{name}: expected integer; got {}", go_type(v)))
}

/// Calls the function `name`.
pub(super) fn call(name: &str, args: Vec<Value>) -> FuncResult {
    match name {
        "and" | "or" => {
            if args.is_empty() {
                return Err(format!(
                    "wrong number of args for {name}: want at least 1 got 0"
                ));
            }
            let want = name == "or";
            let last = args.len() - 1;
            for (i, a) in args.into_iter().enumerate() {
                if truth(&a) == want || i == last {
                    return Ok(a);
                }
            }
            Ok(Value::Null)
        }
        "not" => {
            arity(name, &args, 1)?;
            Ok(Value::Bool(!truth(&args[0])))
        }
        "len" => {
            arity(name, &args, 1)?;
            let n = match &args[0] {
                Value::String(s) => s.len(),
                Value::Array(a) => a.len(),
                Value::Object(m) => m.len(),
                other => return Err(format!("len of type {}", go_type(other))),
            };
            Ok(Value::from(n))
        }
        "index" => {
            let mut it = args.into_iter();
            let mut item = it.next().ok_or_else(|| {
                "wrong number of args for index: want at least 1 got 0".to_string()
            })?;
            for key in it {
                item = match (&item, &key) {
                    (Value::Array(a), k) => {
                        let i = int_arg("index", k)?;
                        usize::try_from(i)
                            .ok()
                            .and_then(|i| a.get(i).cloned())
                            .ok_or_else(|| {
                                format!("error calling index: index out of range: {i}")
                            })?
                    }
                    (Value::Object(m), Value::String(k)) => {
                        m.get(k).cloned().unwrap_or(Value::Null)
                    }
                    (Value::Null, _) => {
                        return Err("error calling index: index of untyped nil".into())
                    }
                    (v, k) => {
                        return Err(format!(
                            "error calling index: cannot index {} with {}",
                            go_type(v),
                            go_type(k)
                        ))
                    }
                };
            }
            Ok(item)
        }
        "slice" => {
            let (item, idx) = args.split_first().ok_or_else(|| {
                "wrong number of args for slice: want at least 1 got 0".to_string()
            })?;
            if idx.len() > 2 {
                return Err("error calling slice: too many slice indexes".into());
            }
            let len = match item {
                Value::String(s) => s.len(),
                Value::Array(a) => a.len(),
                other => {
                    return Err(format!(
                        "error calling slice: can't slice item of type {}",
                        go_type(other)
                    ))
                }
            };
            let lo = idx
                .first()
                .map(|v| int_arg("slice", v))
                .transpose()?
                .unwrap_or(0);
            let hi = idx
                .get(1)
                .map(|v| int_arg("slice", v))
                .transpose()?
                .unwrap_or(len as i64);
            if lo < 0 || hi < lo || hi as usize > len {
                return Err(format!(
                    "error calling slice: index out of range: {lo}:{hi}"
                ));
            }
            let (lo, hi) = (lo as usize, hi as usize);
            Ok(match item {
                Value::String(s) => Value::String(
                    s.get(lo..hi)
                        .ok_or_else(|| "error calling slice: not a character boundary".to_string())?
                        .to_string(),
                ),
                Value::Array(a) => Value::Array(a[lo..hi].to_vec()),
                _ => Value::Null,
            })
        }
        "print" => Ok(Value::String(sprint(&args))),
        "println" => Ok(Value::String(sprintln(&args))),
        "printf" => {
            let (fmt, rest) = args.split_first().ok_or_else(|| {
                "wrong number of args for printf: want at least 1 got 0".to_string()
            })?;
            Ok(Value::String(sprintf(string_arg(name, fmt)?, rest)))
        }
        "eq" => {
            let (first, rest) = args
                .split_first()
                .ok_or_else(|| "missing argument for comparison".to_string())?;
            if rest.is_empty() {
                return Err("missing argument for comparison".into());
            }
            for r in rest {
                if compare(first, r)? == Ordering::Equal {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }
        "ne" | "lt" | "le" | "gt" | "ge" => {
            arity(name, &args, 2)?;
            let ord = compare(&args[0], &args[1])?;
            if name != "ne" && matches!(args[0], Value::Bool(_) | Value::Null) {
                return Err("invalid type for comparison".into());
            }
            Ok(Value::Bool(match name {
                "ne" => ord != Ordering::Equal,
                "lt" => ord == Ordering::Less,
                "le" => ord != Ordering::Greater,
                "gt" => ord == Ordering::Greater,
                _ => ord != Ordering::Less,
            }))
        }
        "json" => {
            arity(name, &args, 1)?;
            Ok(Value::String(to_json(&args[0])))
        }
        "join" => {
            arity(name, &args, 2)?;
            let sep = string_arg(name, &args[1])?;
            match &args[0] {
                Value::Array(a) => Ok(Value::String(
                    a.iter().map(go_v).collect::<Vec<_>>().join(sep),
                )),
                Value::Null => Ok(Value::String(String::new())),
                other => Err(format!("join: expected a list; got {}", go_type(other))),
            }
        }
        "split" => {
            arity(name, &args, 2)?;
            let s = string_arg(name, &args[0])?;
            let sep = string_arg(name, &args[1])?;
            let parts: Vec<Value> = if sep.is_empty() {
                s.chars().map(|c| Value::String(c.to_string())).collect()
            } else {
                s.split(sep).map(|p| Value::String(p.to_string())).collect()
            };
            Ok(Value::Array(parts))
        }
        "lower" | "upper" | "title" => {
            arity(name, &args, 1)?;
            let s = string_arg(name, &args[0])?;
            Ok(Value::String(match name {
                "lower" => s.to_lowercase(),
                "upper" => s.to_uppercase(),
                _ => title(s),
            }))
        }
        "pad" => {
            arity(name, &args, 3)?;
            let s = string_arg(name, &args[0])?;
            let before = usize::try_from(int_arg(name, &args[1])?).unwrap_or(0);
            let after = usize::try_from(int_arg(name, &args[2])?).unwrap_or(0);
            Ok(Value::String(format!(
                "{}{s}{}",
                " ".repeat(before),
                " ".repeat(after)
            )))
        }
        "truncate" => {
            arity(name, &args, 2)?;
            let s = string_arg(name, &args[0])?;
            let n = usize::try_from(int_arg(name, &args[1])?).unwrap_or(0);
            Ok(Value::String(s.chars().take(n).collect()))
        }
        other => Err(format!("function {other:?} not defined")),
    }
}

/// Go's strings.Title: the first letter of every word upper-cased; a word starts after any
/// character that is not a letter, digit or underscore.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_sep = true;
    for c in s.chars() {
        if prev_sep {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_sep = !(c.is_alphanumeric() || c == '_');
    }
    out
}

/// Go's basic comparison: numbers by value, strings bytewise, bools and nil by equality;
/// anything else, or two different kinds, is an error.
fn compare(a: &Value, b: &Value) -> Result<Ordering, String> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                return Ok(x.cmp(&y));
            }
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            x.partial_cmp(&y)
                .ok_or_else(|| "invalid type for comparison".to_string())
        }
        (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Ok(if x == y {
            Ordering::Equal
        } else {
            Ordering::Less
        }),
        (Value::Null, Value::Null) => Ok(Ordering::Equal),
        (Value::Null, _) | (_, Value::Null) => Ok(Ordering::Less),
        (Value::Array(_) | Value::Object(_), _) | (_, Value::Array(_) | Value::Object(_)) => {
            Err("invalid type for comparison".into())
        }
        _ => Err("incompatible types for comparison".into()),
    }
}
