//! `images --filter` / `GET /images/json?filters=`: docker's image filters (`reference`,
//! `dangling`, `label`, `before`, `since`) over the listed summaries.

use globset::{GlobBuilder, GlobMatcher};

use crate::ops::error::{OpsError, Result};
use crate::ops::models::{Filters, ImageSummary};
use crate::ops::Engine;

const KEYS: &str = "reference, dangling, label, before, since";

/// The summaries `filters` keeps. A `reference` pattern (docker's path matching: `*` stays
/// within one path component) keeps the matching names of an image, and the image when one
/// matches; several patterns are alternatives, other keys must all hold.
pub fn apply(
    engine: &Engine,
    list: Vec<ImageSummary>,
    filters: &Filters,
) -> Result<Vec<ImageSummary>> {
    let bad = |k: &str, v: &str| OpsError::FilterTerm {
        term: format!("{k}={v}"),
        hint: "reference=, dangling=true|false, label=, before=, since=",
    };
    let mut patterns: Vec<GlobMatcher> = Vec::new();
    for (k, v) in filters.terms() {
        match k {
            "reference" => patterns.push(
                GlobBuilder::new(v)
                    .literal_separator(true)
                    .build()
                    .map(|g| g.compile_matcher())
                    .map_err(|_| bad(k, v))?,
            ),
            "dangling" if matches!(v, "true" | "false" | "1" | "0") => {}
            "label" => {}
            "before" | "since" => {}
            _ => {
                return Err(OpsError::FilterTerm {
                    term: format!("{k}={v}"),
                    hint: KEYS,
                })
            }
        }
    }
    let created_of = |what: &str| -> Result<i64> {
        let i = super::inspect(engine, what)?;
        Ok(i.created
            .as_deref()
            .and_then(|c| humantime::parse_rfc3339_weak(c).ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs() as i64))
    };
    let before = filters
        .get("before")
        .iter()
        .map(|b| created_of(b))
        .collect::<Result<Vec<_>>>()?;
    let since = filters
        .get("since")
        .iter()
        .map(|b| created_of(b))
        .collect::<Result<Vec<_>>>()?;
    let mut out = Vec::new();
    for mut s in list {
        if let Some(d) = filters.get("dangling").first() {
            let want = matches!(d.as_str(), "true" | "1");
            if s.repo_tags.is_empty() != want {
                continue;
            }
        }
        let labels_hold = filters
            .get("label")
            .iter()
            .all(|l| Filters::label_matches(&s.labels, l));
        if !labels_hold
            || before.iter().any(|&t| s.created >= t)
            || since.iter().any(|&t| s.created <= t)
        {
            continue;
        }
        if !patterns.is_empty() {
            let hit = |name: &str| patterns.iter().any(|p| p.is_match(name));
            s.names
                .retain(|n| hit(&n.repository) || hit(&format!("{}:{}", n.repository, n.tag)));
            s.repo_tags
                .retain(|t| hit(t) || t.rsplit_once(':').is_some_and(|(repo, _)| hit(repo)));
            if s.names.is_empty() {
                continue;
            }
        }
        out.push(s);
    }
    Ok(out)
}
