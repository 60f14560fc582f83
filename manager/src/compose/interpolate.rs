//! Interpolation as the compose specification has it: `$VAR`, `${VAR}`, `${VAR:-default}`
//! (unset or empty), `${VAR-default}` (unset), `${VAR:?error}`, `${VAR?error}`,
//! `${VAR:+replacement}`, `${VAR+replacement}` and `$$` for a literal `$`. Defaults and
//! replacements are interpolated themselves (`${A:-${B}}`). Only values are interpolated,
//! never keys, and only strings.

use std::collections::BTreeMap;
use std::path::Path;

use serde_norway::Value;

use super::error::{ComposeError, Result};

/// The variables interpolation sees: the process environment over the `.env` file.
pub type Vars = BTreeMap<String, String>;

/// What went wrong in one string; the caller adds the file and the field.
#[derive(Debug, PartialEq, Eq)]
pub enum Failure {
    Format,
    Required { var: String, message: String },
}

/// Interpolates one string.
pub fn string(s: &str, vars: &Vars) -> std::result::Result<String, Failure> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = closing_brace(body).ok_or(Failure::Format)?;
            out.push_str(&braced(&body[..end], vars)?);
            rest = &body[end + 1..];
        } else {
            let n = name_len(after);
            if n == 0 {
                return Err(Failure::Format);
            }
            out.push_str(vars.get(&after[..n]).map(String::as_str).unwrap_or(""));
            rest = &after[n..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The length of the variable name at the start of `s`.
fn name_len(s: &str) -> usize {
    let mut n = 0;
    for (i, c) in s.char_indices() {
        let ok = c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit());
        if !ok {
            break;
        }
        n = i + c.len_utf8();
    }
    n
}

/// The index of the `}` closing a `${`, nested `${...}` skipped.
fn closing_brace(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'$') => i += 1,
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// The inside of `${...}`.
fn braced(body: &str, vars: &Vars) -> std::result::Result<String, Failure> {
    let n = name_len(body);
    if n == 0 {
        return Err(Failure::Format);
    }
    let name = &body[..n];
    let value = vars.get(name);
    let op = &body[n..];
    let (colon, op) = match op.strip_prefix(':') {
        Some(o) => (true, o),
        None => (false, op),
    };
    // With `:`, an empty value counts as unset.
    let set = value.is_some_and(|v| !colon || !v.is_empty());
    let Some(kind) = op.chars().next() else {
        return if colon {
            Err(Failure::Format)
        } else {
            Ok(value.cloned().unwrap_or_default())
        };
    };
    let arg = &op[1..];
    match kind {
        '-' if set => Ok(value.cloned().unwrap_or_default()),
        '-' => string(arg, vars),
        '?' if set => Ok(value.cloned().unwrap_or_default()),
        '?' => Err(Failure::Required {
            var: name.to_string(),
            message: string(arg, vars)?,
        }),
        '+' if set => string(arg, vars),
        '+' => Ok(String::new()),
        _ => Err(Failure::Format),
    }
}

/// Interpolates every string value under `v`; `field` is the path of `v` for messages.
pub fn value(v: &mut Value, vars: &Vars, file: &Path, field: &str) -> Result<()> {
    match v {
        Value::String(s) => {
            *s = string(s, vars).map_err(|f| match f {
                Failure::Format => ComposeError::InterpolationFormat {
                    path: file.to_path_buf(),
                    field: field.to_string(),
                    value: s.clone(),
                },
                Failure::Required { var, message } => ComposeError::RequiredVariable {
                    path: file.to_path_buf(),
                    field: field.to_string(),
                    var,
                    message,
                },
            })?;
        }
        Value::Sequence(seq) => {
            for (i, item) in seq.iter_mut().enumerate() {
                value(item, vars, file, &format!("{field}[{i}]"))?;
            }
        }
        Value::Mapping(m) => {
            for (k, item) in m.iter_mut() {
                let key = super::yaml::key_str(k);
                let sub = if field.is_empty() {
                    key
                } else {
                    format!("{field}.{key}")
                };
                value(item, vars, file, &sub)?;
            }
        }
        Value::Tagged(t) => value(&mut t.value, vars, file, field)?,
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        [("A", "a"), ("EMPTY", ""), ("N", "3")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn ok(s: &str) -> String {
        string(s, &vars()).unwrap()
    }

    #[test]
    fn plain_and_braced_variables() {
        assert_eq!(ok("x$A-y"), "xa-y");
        assert_eq!(ok("${A}b"), "ab");
        assert_eq!(ok("$UNSET."), ".");
        assert_eq!(ok("$A$N"), "a3");
        assert_eq!(ok("$$A and $$"), "$A and $");
        assert_eq!(ok("no vars"), "no vars");
    }

    #[test]
    fn defaults_distinguish_unset_from_empty() {
        assert_eq!(ok("${EMPTY:-d}"), "d");
        assert_eq!(ok("${EMPTY-d}"), "");
        assert_eq!(ok("${UNSET-d}"), "d");
        assert_eq!(ok("${UNSET:-d}"), "d");
        assert_eq!(ok("${A:-d}"), "a");
        assert_eq!(ok("${UNSET:-${A}x}"), "ax");
        assert_eq!(ok("${UNSET:-${NOPE:-deep}}"), "deep");
    }

    #[test]
    fn replacements() {
        assert_eq!(ok("${A:+r}"), "r");
        assert_eq!(ok("${EMPTY:+r}"), "");
        assert_eq!(ok("${EMPTY+r}"), "r");
        assert_eq!(ok("${UNSET+r}"), "");
    }

    #[test]
    fn required_variables() {
        assert_eq!(ok("${A:?boom}"), "a");
        assert_eq!(ok("${EMPTY?boom}"), "");
        assert_eq!(
            string("${EMPTY:?must be set}", &vars()),
            Err(Failure::Required {
                var: "EMPTY".into(),
                message: "must be set".into()
            })
        );
        assert_eq!(
            string("${UNSET?}", &vars()),
            Err(Failure::Required {
                var: "UNSET".into(),
                message: String::new()
            })
        );
    }

    #[test]
    fn bad_formats_are_refused() {
        for s in ["$", "a $ b", "${", "${A", "${}", "${A:}", "${A!x}", "${1A}"] {
            assert_eq!(string(s, &vars()), Err(Failure::Format), "{s}");
        }
    }

    #[test]
    fn values_are_interpolated_and_errors_name_the_field() {
        let mut v: Value = serde_norway::from_str(
            "services:\n  web:\n    image: \"img:${N}\"\n    ports: [\"${A}\", \"${X:?no x}\"]\n",
        )
        .unwrap();
        let e = value(&mut v, &vars(), Path::new("c.yaml"), "").unwrap_err();
        assert_eq!(
            e.to_string(),
            "c.yaml: error while interpolating services.web.ports[1]: required variable X is missing a value: no x"
        );
        let mut v: Value = serde_norway::from_str("image: \"img:${N}\"\nport: 80\n").unwrap();
        value(&mut v, &vars(), Path::new("c.yaml"), "").unwrap();
        assert_eq!(v["image"], Value::String("img:3".into()));
    }
}
