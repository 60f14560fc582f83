//! `GET /events`, `berth events`: the journal's events (replayed from `since`, followed
//! until `until` or for ever) that pass docker's event filters.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::events::{self, Follower};
use crate::logs::parse_timestamp;
use crate::ops::cancel::Cancel;
use crate::ops::error::{OpsError, Result};
use crate::ops::models::Filters;
use crate::ops::Engine;

pub use crate::events::{Actor, Message};

/// The filter keys docker's `/events` accepts (those berth has no objects for match nothing).
const KEYS: &[&str] = &[
    "config",
    "container",
    "daemon",
    "event",
    "image",
    "label",
    "network",
    "node",
    "plugin",
    "scope",
    "secret",
    "service",
    "type",
    "volume",
];

/// What to read.
#[derive(Debug, Clone, Default)]
pub struct EventsOptions {
    /// Replay from here (docker's `--since`: a duration, Unix time or RFC 3339 date).
    pub since: Option<String>,
    /// Stop here; without it the stream follows until cancelled.
    pub until: Option<String>,
    pub filters: Filters,
}

/// A time as docker's `--since`/`--until` take it, in nanoseconds since the epoch.
pub fn parse_time(value: &str, now: SystemTime) -> Result<i64> {
    let t = parse_timestamp(value, now)?;
    Ok(t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64))
}

/// The events as an iterator: the replay first, then new ones as they are recorded. It ends
/// at `until`, when the token is cancelled, or on an error (yielded last).
pub fn events(engine: &Engine, opts: &EventsOptions, cancel: &Cancel) -> Result<Events> {
    for (k, _) in opts.filters.terms() {
        if !KEYS.contains(&k) {
            return Err(OpsError::InvalidField {
                field: "filter",
                value: k.to_string(),
                reason: format!("invalid filter '{k}'"),
            });
        }
    }
    let now = SystemTime::now();
    let since = opts
        .since
        .as_deref()
        .map(|s| parse_time(s, now))
        .transpose()?;
    let until = opts
        .until
        .as_deref()
        .map(|s| parse_time(s, now))
        .transpose()?;
    if let (Some(s), Some(u)) = (since, until) {
        if s > u {
            return Err(OpsError::InvalidField {
                field: "since",
                value: opts.since.clone().unwrap_or_default(),
                reason: "since cannot be after until".into(),
            });
        }
    }
    let (past, follower) = events::replay(engine.root(), since, until)
        .map_err(|e| OpsError::io("reading the event journal", e))?;
    Ok(Events {
        queue: past.into(),
        follower,
        until,
        filters: opts.filters.clone(),
        cancel: cancel.clone(),
        done: false,
    })
}

pub struct Events {
    queue: VecDeque<Message>,
    follower: Follower,
    until: Option<i64>,
    filters: Filters,
    cancel: Cancel,
    done: bool,
}

impl Iterator for Events {
    type Item = Result<Message>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(m) = self.queue.pop_front() {
                if self.until.is_some_and(|u| m.time_nano > u) {
                    self.queue.clear();
                    self.done = true;
                } else if matches(&self.filters, &m) {
                    return Some(Ok(m));
                }
                continue;
            }
            if self.done {
                return None;
            }
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as i64);
            // Past `until` (or cancelled): what landed meanwhile is read once more, then the end.
            let ending = self.until.is_some_and(|u| now > u) || self.cancel.is_cancelled();
            match self.follower.poll() {
                Ok(new) => {
                    if new.is_empty() && !ending {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    self.queue.extend(new);
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(OpsError::io("reading the event journal", e)));
                }
            }
            if ending {
                self.done = true;
            }
        }
    }
}

/// Docker's event filter: every key given must match (values of one key are alternatives).
pub fn matches(f: &Filters, m: &Message) -> bool {
    let exact = |key: &str, values: &[&str]| {
        let want = f.get(key);
        want.is_empty() || want.iter().any(|w| values.contains(&w.as_str()))
    };
    let name = m.actor.attributes.get("name").map_or("", String::as_str);
    // container=, network=, volume=: the object's id (or a prefix of it) or its name.
    let fuzzy = |key: &str| {
        let want = f.get(key);
        want.is_empty()
            || (m.kind == key
                && want
                    .iter()
                    .any(|w| m.actor.id.starts_with(w.as_str()) || name == w))
    };
    let image_name = if m.kind == "image" {
        name
    } else {
        m.actor.attributes.get("image").map_or("", String::as_str)
    };
    let strip = |s: &str| -> String {
        match s.rfind(':') {
            Some(i) if !s[i..].contains('/') && !s.starts_with("sha256:") => s[..i].to_string(),
            _ => s.to_string(),
        }
    };
    let (id_s, name_s) = (strip(&m.actor.id), strip(image_name));
    let labels = f
        .get("label")
        .iter()
        .all(|l| Filters::label_matches(&m.actor.attributes, l));
    let no_objects = ["config", "daemon", "node", "plugin", "secret", "service"]
        .iter()
        .all(|k| f.get(k).is_empty());
    exact("event", &[m.action.as_str(), m.base_action()])
        && exact("type", &[m.kind.as_str()])
        && exact("scope", &[m.scope.as_str()])
        && fuzzy("container")
        && fuzzy("network")
        && fuzzy("volume")
        && exact(
            "image",
            &[
                m.actor.id.as_str(),
                image_name,
                id_s.as_str(),
                name_s.as_str(),
            ],
        )
        && labels
        && no_objects
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn msg(kind: &str, action: &str, id: &str, attrs: &[(&str, &str)]) -> Message {
        let a: BTreeMap<String, String> = attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Message::new(kind, action, id, a)
    }

    fn f(terms: &[&str]) -> Filters {
        Filters::parse(&terms.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn filters_match_as_dockers_do() {
        let start = msg(
            "container",
            "start",
            "abcdef",
            &[("name", "web"), ("image", "busybox:latest"), ("tier", "a")],
        );
        let exec = msg(
            "container",
            "exec_start: sh -c x",
            "abcdef",
            &[("name", "web")],
        );
        let vol = msg("volume", "create", "data", &[("driver", "local")]);
        assert!(matches(&f(&[]), &start));
        assert!(matches(&f(&["container=web"]), &start));
        assert!(matches(&f(&["container=abc"]), &start));
        assert!(!matches(&f(&["container=web"]), &vol));
        assert!(matches(&f(&["event=start", "event=die"]), &start));
        assert!(matches(&f(&["event=exec_start"]), &exec));
        assert!(!matches(&f(&["event=die"]), &start));
        assert!(matches(&f(&["type=volume"]), &vol));
        assert!(matches(&f(&["volume=data"]), &vol));
        assert!(matches(&f(&["image=busybox"]), &start));
        assert!(matches(&f(&["image=busybox:latest"]), &start));
        assert!(!matches(&f(&["image=alpine"]), &start));
        assert!(matches(&f(&["label=tier=a"]), &start));
        assert!(matches(&f(&["label=tier"]), &start));
        assert!(!matches(&f(&["label=tier=b"]), &start));
        assert!(!matches(&f(&["daemon=x"]), &start));
    }
}
