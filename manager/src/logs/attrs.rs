//! Extra attributes of a container's log lines (docker's json-file `attrs`): the labels and
//! environment variables that `--log-opt labels=…|labels-regex=…|env=…|env-regex=…` name,
//! fixed at create, written into every entry and shown by `logs --details`.

use std::collections::BTreeMap;

use super::LogError;

/// The attributes `opts` select from the container's `labels` and `env` (`KEY=VALUE`).
/// A name listed but not set is left out, as docker does; an invalid regex is an error
/// naming the option.
pub fn extra_attributes(
    opts: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
    env: &[String],
) -> Result<BTreeMap<String, String>, LogError> {
    let env: BTreeMap<&str, &str> = env.iter().filter_map(|e| e.split_once('=')).collect();
    let mut out = BTreeMap::new();
    let listed = |key: &str| {
        opts.get(key)
            .map(|v| v.split(',').filter(|n| !n.is_empty()).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    for name in listed("labels") {
        if let Some(v) = labels.get(name) {
            out.insert(name.to_string(), v.clone());
        }
    }
    if let Some(re) = regex_opt(opts, "labels-regex")? {
        for (k, v) in labels.iter().filter(|(k, _)| re.is_match(k)) {
            out.insert(k.clone(), v.clone());
        }
    }
    for name in listed("env") {
        if let Some(v) = env.get(name) {
            out.insert(name.to_string(), (*v).to_string());
        }
    }
    if let Some(re) = regex_opt(opts, "env-regex")? {
        for (k, v) in env.iter().filter(|(k, _)| re.is_match(k)) {
            out.insert((*k).to_string(), (*v).to_string());
        }
    }
    Ok(out)
}

/// Compiles option `key` when set and not empty.
pub(super) fn regex_opt(
    opts: &BTreeMap<String, String>,
    key: &str,
) -> Result<Option<regex::Regex>, LogError> {
    match opts.get(key).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => regex::Regex::new(v)
            .map(Some)
            .map_err(|_| LogError::InvalidOption {
                key: key.to_string(),
                value: v.clone(),
            }),
    }
}

/// What `logs --details` puts before a line: `k=v,k2=v2` in key order, keys and values
/// query-escaped, then a space (a lone space when there are none), as dockerd does.
pub fn details_prefix(attrs: &BTreeMap<String, String>) -> String {
    let escape = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let mut out = attrs
        .iter()
        .map(|(k, v)| format!("{}={}", escape(k), escape(v)))
        .collect::<Vec<_>>()
        .join(",");
    out.push(' ');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn options_pick_labels_and_env_by_name_and_regex() {
        let labels = map(&[("foo", "bar"), ("app.tier", "web"), ("other", "x")]);
        let env = vec!["E=1".to_string(), "PATH=/bin".into(), "APP_MODE=a=b".into()];
        let got = extra_attributes(
            &map(&[
                ("labels", "foo,missing"),
                ("labels-regex", "^app\\."),
                ("env", "E,NOPE"),
                ("env-regex", "^APP_"),
            ]),
            &labels,
            &env,
        )
        .unwrap();
        assert_eq!(
            got,
            map(&[
                ("foo", "bar"),
                ("app.tier", "web"),
                ("E", "1"),
                ("APP_MODE", "a=b")
            ])
        );
        assert!(extra_attributes(&map(&[]), &labels, &env)
            .unwrap()
            .is_empty());
        let bad = extra_attributes(&map(&[("env-regex", "(")]), &labels, &env);
        assert!(matches!(bad, Err(LogError::InvalidOption { key, .. }) if key == "env-regex"));
    }

    #[test]
    fn details_are_sorted_escaped_and_end_with_a_space() {
        assert_eq!(details_prefix(&BTreeMap::new()), " ");
        assert_eq!(
            details_prefix(&map(&[("foo", "bar"), ("E", "1 2&x")])),
            "E=1+2%26x,foo=bar "
        );
    }
}
