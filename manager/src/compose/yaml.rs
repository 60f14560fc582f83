//! YAML documents as values: parsing with the file named in errors (the parser's message
//! carries line and column), `<<` merge keys applied, `x-` extensions dropped, and small
//! helpers to walk values.

use std::path::Path;

use serde_norway::{Mapping, Value};

use super::error::{ComposeError, Result};

/// Parses one compose file's text into a mapping with merge keys applied.
pub fn parse(text: &str, path: &Path) -> Result<Mapping> {
    let mut v: Value = serde_norway::from_str(text).map_err(|source| ComposeError::Yaml {
        path: path.to_path_buf(),
        source,
    })?;
    v.apply_merge().map_err(|source| ComposeError::Yaml {
        path: path.to_path_buf(),
        source,
    })?;
    match v {
        Value::Mapping(mut m) => {
            drop_extensions(&mut m);
            Ok(m)
        }
        // An empty file is an empty project.
        Value::Null => Ok(Mapping::new()),
        _ => Err(ComposeError::NotAMapping {
            path: path.to_path_buf(),
        }),
    }
}

/// Removes `x-` keys at the top level and in every service, network, volume, secret and
/// config (where the specification allows extensions).
fn drop_extensions(top: &mut Mapping) {
    top.retain(|k, _| !is_extension(k));
    for section in ["services", "networks", "volumes", "secrets", "configs"] {
        if let Some(Value::Mapping(items)) = top.get_mut(section) {
            for (_, item) in items.iter_mut() {
                if let Value::Mapping(m) = untag_mut(item) {
                    m.retain(|k, _| !is_extension(k));
                }
            }
        }
    }
}

fn is_extension(k: &Value) -> bool {
    k.as_str().is_some_and(|s| s.starts_with("x-"))
}

/// A mapping key as text (`80` for a number key).
pub fn key_str(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".to_string(),
        other => format!("{other:?}"),
    }
}

/// A scalar as text (`8080`, `true`), `None` for collections and null.
pub fn scalar_str(v: &Value) -> Option<String> {
    match untag(v) {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The value under a `!tag`.
pub fn untag(v: &Value) -> &Value {
    match v {
        Value::Tagged(t) => untag(&t.value),
        other => other,
    }
}

pub fn untag_mut(v: &mut Value) -> &mut Value {
    match v {
        Value::Tagged(t) => untag_mut(&mut t.value),
        other => other,
    }
}

/// The tag of a value (`reset`, `override`), without the `!`.
pub fn tag_of(v: &Value) -> Option<String> {
    match v {
        Value::Tagged(t) => Some(t.tag.to_string().trim_start_matches('!').to_string()),
        _ => None,
    }
}

/// `key` of a mapping as a string value.
pub fn get<'a>(m: &'a Mapping, key: &str) -> Option<&'a Value> {
    m.get(key).map(untag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_merge_keys_and_extensions() {
        let text = "x-common: &c\n  image: busybox\n  restart: always\nservices:\n  web:\n    <<: *c\n    restart: \"no\"\n    x-note: hi\n";
        let m = parse(text, Path::new("c.yaml")).unwrap();
        assert!(m.get("x-common").is_none());
        let web = &m["services"]["web"];
        assert_eq!(web["image"], Value::String("busybox".into()));
        assert_eq!(web["restart"], Value::String("no".into()));
        assert!(web.get("x-note").is_none());
    }

    #[test]
    fn syntax_errors_name_file_and_line() {
        let e = parse("services:\n  web:\n    image: [a\n", Path::new("bad.yaml")).unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("bad.yaml: "), "{s}");
        assert!(s.contains("line"), "{s}");
        let e = parse("- a\n", Path::new("list.yaml")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "list.yaml: top-level object must be a mapping"
        );
    }
}
