//! Deserialisation helpers for docker's JSON, which is lenient in ways serde's defaults are
//! not: `null` for empty collections, and strings where a list of strings is expected.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `null` (or a missing field, with `#[serde(default)]`) as the type's default.
pub fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// An empty list as `null`, as docker's Go encoder writes a nil slice (`Links`,
/// `Aliases`).
pub fn empty_as_null<S, T>(v: &[T], s: S) -> Result<S::Ok, S::Error>
where
    S: Serializer,
    T: Serialize,
{
    if v.is_empty() {
        s.serialize_none()
    } else {
        v.serialize(s)
    }
}

/// An empty map as `null` (`Volumes`, `Labels` of an image's config).
pub fn empty_map_as_null<S, K, V>(
    v: &std::collections::BTreeMap<K, V>,
    s: S,
) -> Result<S::Ok, S::Error>
where
    S: Serializer,
    K: Serialize,
    V: Serialize,
{
    if v.is_empty() {
        s.serialize_none()
    } else {
        v.serialize(s)
    }
}

/// Docker's `StrSlice`: `null`, one string or a list of strings (`Cmd`, `Entrypoint`,
/// `Healthcheck.Test`).
pub fn str_slice<'de, D>(d: D) -> Result<Option<Vec<String>>, D::Error>
where
    D: Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => None,
        Some(OneOrMany::One(s)) => Some(vec![s]),
        Some(OneOrMany::Many(v)) => Some(v),
    })
}

/// A list of strings whose entries may also be numbers (`GroupAdd`: docker's CLI sends
/// strings, some clients numeric ids); `null` is empty.
pub fn strings_or_numbers<'de, D>(d: D) -> Result<Vec<String>, D::Error>
where
    D: Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Entry {
        Text(String),
        Number(u64),
    }
    Ok(Option::<Vec<Entry>>::deserialize(d)?
        .unwrap_or_default()
        .into_iter()
        .map(|e| match e {
            Entry::Text(s) => s,
            Entry::Number(n) => n.to_string(),
        })
        .collect())
}

/// `serde(skip_serializing_if)` for `false`.
pub fn is_false(b: &bool) -> bool {
    !*b
}

/// `serde(skip_serializing_if)` for zero numbers.
pub fn is_zero(n: &i64) -> bool {
    *n == 0
}
