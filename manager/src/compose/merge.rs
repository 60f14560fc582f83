//! Merging compose files (`-f a.yaml -f b.yaml`, `extends`) by the specification's rules:
//! mappings merge key by key, scalars are replaced, sequences are appended, except that
//! `command`, `entrypoint` and `healthcheck.test` are replaced and the unique resources
//! (`ports`, `volumes` by target, `secrets`/`configs` by target, `expose`, `dns`, ...) keep
//! one entry each. `!reset` removes a value, `!override` replaces it whole. Both inputs are
//! already in the long forms of [`super::shape`], so `environment: [A=1]` and
//! `environment: {A: 1}` merge alike.

use serde_norway::{Mapping, Value};

use super::yaml::{key_str, tag_of};

/// Merges `over` into `base`; `path` holds the keys above (`services`, `web`).
pub fn merge(base: &mut Value, over: Value, path: &[String]) {
    match tag_of(&over).as_deref() {
        Some("override") => {
            *base = strip_tags(over);
            return;
        }
        Some("reset") => {
            *base = Value::Null;
            return;
        }
        _ => {}
    }
    let over = strip_outer(over);
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => merge_mappings(b, o, path),
        (Value::Sequence(b), Value::Sequence(o)) => merge_sequences(b, o, path),
        (b, o) => *b = strip_tags(o),
    }
}

/// Merges the keys of `over` into `base`.
pub fn merge_mappings(base: &mut Mapping, over: Mapping, path: &[String]) {
    for (k, v) in over {
        if tag_of(&v).as_deref() == Some("reset") {
            base.remove(&k);
            continue;
        }
        let mut sub = path.to_vec();
        sub.push(key_str(&k));
        match base.get_mut(&k) {
            Some(b) => merge(b, v, &sub),
            None => {
                base.insert(k, strip_tags(v));
            }
        }
    }
}

/// What a sequence field does on merge.
enum SeqRule {
    Replace,
    /// Keep one entry per key (the later one wins).
    UniqueBy(fn(&Value) -> String),
    Append,
}

fn rule(path: &[String]) -> SeqRule {
    let in_service = path.len() >= 3 && path[0] == "services";
    if !in_service {
        return SeqRule::Append;
    }
    let field = path[2..].join(".");
    match field.as_str() {
        "command" | "entrypoint" | "healthcheck.test" => SeqRule::Replace,
        "volumes" | "secrets" | "configs" => SeqRule::UniqueBy(by_target),
        "ports" | "expose" | "dns" | "dns_search" | "dns_opt" | "env_file" | "tmpfs"
        | "cap_add" | "cap_drop" | "profiles" | "security_opt" | "devices" | "links"
        | "external_links" | "group_add" => SeqRule::UniqueBy(whole),
        _ => SeqRule::Append,
    }
}

fn by_target(v: &Value) -> String {
    match v.get("target").or_else(|| v.get("source")) {
        Some(t) => key_str(t),
        None => whole(v),
    }
}

fn whole(v: &Value) -> String {
    serde_norway::to_string(v).unwrap_or_default()
}

fn merge_sequences(base: &mut Vec<Value>, over: Vec<Value>, path: &[String]) {
    match rule(path) {
        SeqRule::Replace => *base = over.into_iter().map(strip_tags).collect(),
        SeqRule::Append => base.extend(over.into_iter().map(strip_tags)),
        SeqRule::UniqueBy(key) => {
            for v in over {
                let v = strip_tags(v);
                let k = key(&v);
                match base.iter_mut().find(|b| key(b) == k) {
                    Some(b) => *b = v,
                    None => base.push(v),
                }
            }
        }
    }
}

fn strip_outer(v: Value) -> Value {
    match v {
        Value::Tagged(t) => strip_outer(t.value),
        other => other,
    }
}

/// Removes `!override`/`!reset` tags (a file merged onto nothing), dropping reset keys.
pub fn strip_tags(v: Value) -> Value {
    match v {
        Value::Tagged(t) if t.tag == "reset" => Value::Null,
        Value::Tagged(t) => strip_tags(t.value),
        Value::Mapping(m) => Value::Mapping(
            m.into_iter()
                .filter(|(_, v)| tag_of(v).as_deref() != Some("reset"))
                .map(|(k, v)| (k, strip_tags(v)))
                .collect(),
        ),
        Value::Sequence(s) => Value::Sequence(s.into_iter().map(strip_tags).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn y(s: &str) -> Value {
        serde_norway::from_str(s).unwrap()
    }

    fn merged(a: &str, b: &str) -> Value {
        let mut base = y(a);
        merge(&mut base, y(b), &[]);
        base
    }

    #[test]
    fn mappings_merge_and_scalars_replace() {
        let v = merged(
            "services: {web: {image: a, environment: {A: '1', B: '2'}}}",
            "services: {web: {image: b, environment: {B: '3'}}, db: {image: c}}",
        );
        assert_eq!(
            v,
            y("services: {web: {image: b, environment: {A: '1', B: '3'}}, db: {image: c}}")
        );
    }

    #[test]
    fn commands_replace_and_unique_resources_keep_one_entry() {
        let v = merged(
            "services: {web: {command: [a, b], volumes: [{type: volume, source: d, target: /data}], dns: [1.1.1.1], labels_list: [x]}}",
            "services: {web: {command: [c], volumes: [{type: bind, source: /h, target: /data}, {type: volume, target: /o}], dns: [1.1.1.1, 8.8.8.8], labels_list: [x]}}",
        );
        assert_eq!(
            v,
            y("services: {web: {command: [c], volumes: [{type: bind, source: /h, target: /data}, {type: volume, target: /o}], dns: [1.1.1.1, 8.8.8.8], labels_list: [x, x]}}")
        );
    }

    #[test]
    fn reset_removes_and_override_replaces() {
        let v = merged(
            "services: {web: {ports: [{target: 80}], environment: {A: '1'}, dns: [x]}}",
            "services: {web: {ports: !reset [], environment: !override {B: '2'}, dns: !reset null}}",
        );
        assert_eq!(v, y("services: {web: {environment: {B: '2'}}}"));
    }
}
