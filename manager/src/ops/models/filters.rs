//! List filters as docker's API carries them: `{"label": ["a=b"], "status": ["running"]}`
//! (older clients send `{"label": {"a=b": true}}`, also accepted); the CLI's
//! `--filter key=value` flags build the same map.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize};

/// Filter terms by key; a key's values are alternatives or conjunctions depending on the
/// key, as docker defines them per list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Filters(BTreeMap<String, Vec<String>>);

/// A `--filter` value without `=`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad format of filter {term:?} (expected name=value)")]
pub struct FilterSyntax {
    pub term: String,
}

impl Filters {
    pub fn new() -> Self {
        Self::default()
    }

    /// `key=value` terms as the CLI's `--filter` takes them.
    pub fn parse(terms: &[String]) -> Result<Self, FilterSyntax> {
        let mut f = Self::new();
        for term in terms {
            let (k, v) = term
                .split_once('=')
                .ok_or_else(|| FilterSyntax { term: term.clone() })?;
            f.add(k, v);
        }
        Ok(f)
    }

    pub fn add(&mut self, key: &str, value: &str) -> &mut Self {
        self.0
            .entry(key.to_string())
            .or_default()
            .push(value.to_string());
        self
    }

    /// The values given for `key`.
    pub fn get(&self, key: &str) -> &[String] {
        self.0.get(key).map(Vec::as_slice).unwrap_or_default()
    }

    pub fn contains(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every `(key, value)` term.
    pub fn terms(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .iter()
            .flat_map(|(k, vs)| vs.iter().map(move |v| (k.as_str(), v.as_str())))
    }

    /// Whether `labels` satisfy one `label` term: `key` (present) or `key=value`.
    pub fn label_matches(labels: &BTreeMap<String, String>, term: &str) -> bool {
        match term.split_once('=') {
            Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
            None => labels.contains_key(term),
        }
    }

    /// An `until` term's moment, as docker reads it: Unix seconds (fractions allowed), an
    /// RFC 3339 time or date, or a duration back from `now` (`10m`, `1h30m`).
    pub fn until(value: &str, now: SystemTime) -> Option<SystemTime> {
        if let Ok(secs) = value.parse::<f64>() {
            return (secs >= 0.0).then(|| UNIX_EPOCH + Duration::from_secs_f64(secs));
        }
        if let Ok(t) = humantime::parse_rfc3339_weak(value) {
            return Some(t);
        }
        if let Ok(t) = humantime::parse_rfc3339_weak(&format!("{value}T00:00:00")) {
            return Some(t);
        }
        humantime::parse_duration(value)
            .ok()
            .and_then(|d| now.checked_sub(d))
    }

    /// The terms as `key=value` strings again.
    pub fn to_terms(&self) -> Vec<String> {
        self.terms().map(|(k, v)| format!("{k}={v}")).collect()
    }
}

impl<'de> Deserialize<'de> for Filters {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Values {
            List(Vec<String>),
            Set(BTreeMap<String, bool>),
        }
        let raw = Option::<BTreeMap<String, Values>>::deserialize(d)?.unwrap_or_default();
        Ok(Self(
            raw.into_iter()
                .map(|(k, v)| {
                    let values = match v {
                        Values::List(l) => l,
                        Values::Set(s) => s
                            .into_iter()
                            .filter(|(_, on)| *on)
                            .map(|(v, _)| v)
                            .collect(),
                    };
                    (k, values)
                })
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn until_takes_seconds_times_and_durations() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let at = |v: &str| Filters::until(v, now);
        assert_eq!(at("10"), Some(UNIX_EPOCH + Duration::from_secs(10)));
        assert_eq!(at("1h30m"), Some(now - Duration::from_secs(5400)));
        assert_eq!(at("10m"), Some(now - Duration::from_secs(600)));
        assert_eq!(
            at("1970-01-02T00:00:00"),
            Some(UNIX_EPOCH + Duration::from_secs(86400))
        );
        assert_eq!(
            at("1970-01-02"),
            Some(UNIX_EPOCH + Duration::from_secs(86400))
        );
        assert_eq!(at("yesterday"), None);
    }

    #[test]
    fn cli_terms_and_both_json_forms_give_the_same_filters() {
        let cli = Filters::parse(&["label=a=b".into(), "status=running".into()]).unwrap();
        let list: Filters =
            serde_json::from_str(r#"{"label":["a=b"],"status":["running"]}"#).unwrap();
        let set: Filters =
            serde_json::from_str(r#"{"label":{"a=b":true},"status":{"running":true}}"#).unwrap();
        assert_eq!(cli, list);
        assert_eq!(cli, set);
        assert_eq!(cli.get("label"), ["a=b"]);
        assert!(cli.get("name").is_empty());
        assert_eq!(
            serde_json::to_string(&cli).unwrap(),
            r#"{"label":["a=b"],"status":["running"]}"#
        );
        assert_eq!(
            Filters::parse(&["nokey".into()]).unwrap_err().to_string(),
            "bad format of filter \"nokey\" (expected name=value)"
        );
    }
}
