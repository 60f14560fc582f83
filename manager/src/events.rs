//! The event journal: what happened to containers, images, networks and volumes, as docker's
//! `/events` reports it, appended as JSON lines to `<root>/events/journal` by whichever
//! process did it (a CLI verb, the API service, a container's monitor). The journal rotates
//! at about 4 MiB into `journal.1` (one old file kept). Recording is best effort: an event
//! that cannot be written never fails the operation it describes.
//!
//! Readers replay the files (old one first) and follow the current one by polling; a
//! reader holds its open file, so a rotation under it loses nothing.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::container::Record;

/// Rotate the journal once it is this big.
pub const ROTATE_AT: u64 = 4 << 20;

/// One event, in docker's shape (`events.Message`), legacy fields included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Message {
    #[serde(rename = "status", default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    #[serde(rename = "id", default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(rename = "from", default, skip_serializing_if = "String::is_empty")]
    pub from: String,
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: Actor,
    #[serde(rename = "scope", default)]
    pub scope: String,
    #[serde(rename = "time", default)]
    pub time: i64,
    #[serde(rename = "timeNano", default)]
    pub time_nano: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Actor {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Attributes", default)]
    pub attributes: BTreeMap<String, String>,
}

/// Now, in the journal's time unit (`timeNano`: nanoseconds since the Unix epoch).
pub fn now_nano() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

impl Message {
    /// A new event of `kind` (container, image, network, volume) happening now.
    pub fn new(kind: &str, action: &str, id: &str, attributes: BTreeMap<String, String>) -> Self {
        let nanos = now_nano();
        let mut m = Self {
            kind: kind.into(),
            action: action.into(),
            actor: Actor {
                id: id.into(),
                attributes,
            },
            scope: "local".into(),
            time: nanos / 1_000_000_000,
            time_nano: nanos,
            ..Self::default()
        };
        // Docker's legacy fields: containers and images only.
        if kind == "container" || kind == "image" {
            m.status = action.into();
            m.id = id.into();
            if kind == "container" {
                m.from = m.actor.attributes.get("image").cloned().unwrap_or_default();
            }
        }
        m
    }

    /// The action without its detail (`exec_start: sh -c x` → `exec_start`).
    pub fn base_action(&self) -> &str {
        self.action.split(':').next().unwrap_or("").trim()
    }
}

/// The attributes docker gives a container's events: its labels, image and name.
pub fn container_attributes(r: &Record) -> BTreeMap<String, String> {
    let mut a: BTreeMap<String, String> = r.config.labels.clone();
    a.insert("image".into(), r.image.clone());
    a.insert("name".into(), r.name.clone());
    a
}

pub fn journal_dir(root: &Path) -> PathBuf {
    root.join("events")
}

pub fn journal_path(root: &Path) -> PathBuf {
    journal_dir(root).join("journal")
}

fn old_path(root: &Path) -> PathBuf {
    journal_dir(root).join("journal.1")
}

/// Records a container event with the container's attributes plus `extra`.
pub fn container(root: &Path, r: &Record, action: &str, extra: &[(&str, String)]) {
    let mut a = container_attributes(r);
    for (k, v) in extra {
        a.insert((*k).to_string(), v.clone());
    }
    record(root, &Message::new("container", action, &r.id, a));
}

/// Records an event of another kind with the given attributes.
pub fn emit(root: &Path, kind: &str, action: &str, id: &str, attrs: &[(&str, String)]) {
    let a = attrs
        .iter()
        .map(|(k, v)| ((*k).to_string(), v.clone()))
        .collect();
    record(root, &Message::new(kind, action, id, a));
}

/// Appends one event (best effort).
pub fn record(root: &Path, m: &Message) {
    let _ = append(root, m);
}

fn append(root: &Path, m: &Message) -> io::Result<()> {
    let dir = journal_dir(root);
    fs::create_dir_all(&dir)?;
    let mut line = serde_json::to_vec(m).map_err(io::Error::other)?;
    line.push(b'\n');
    let lock = File::create(dir.join("lock"))?;
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)?;
    let path = journal_path(root);
    if fs::metadata(&path).is_ok_and(|md| md.len() >= ROTATE_AT) {
        fs::rename(&path, old_path(root))?;
    }
    let mut f = OpenOptions::new().create(true).append(true).open(&path)?;
    f.write_all(&line)?;
    Ok(())
}

/// The events recorded so far with `since <= timeNano` (and `<= until` when given), oldest
/// first, and a [`Follower`] positioned at the end of the current journal.
pub fn replay(
    root: &Path,
    since: Option<i64>,
    until: Option<i64>,
) -> io::Result<(Vec<Message>, Follower)> {
    let mut out = Vec::new();
    let keep = |m: &Message| {
        since.is_none_or(|s| m.time_nano >= s) && until.is_none_or(|u| m.time_nano <= u)
    };
    if since.is_some() {
        if let Ok(f) = File::open(old_path(root)) {
            for m in read_lines(f) {
                if keep(&m) {
                    out.push(m);
                }
            }
        }
    }
    let mut follower = Follower::open(root)?;
    if since.is_some() {
        for m in follower.poll()? {
            if keep(&m) {
                out.push(m);
            }
        }
    } else {
        follower.skip_to_end()?;
    }
    Ok((out, follower))
}

fn read_lines(f: File) -> Vec<Message> {
    BufReader::new(f)
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str(&l).ok())
        .collect()
}

/// Reads the events appended to the journal since the last poll.
pub struct Follower {
    path: PathBuf,
    file: Option<File>,
    ino: u64,
    partial: Vec<u8>,
}

impl Follower {
    pub fn open(root: &Path) -> io::Result<Self> {
        fs::create_dir_all(journal_dir(root))?;
        let mut f = Self {
            path: journal_path(root),
            file: None,
            ino: 0,
            partial: Vec::new(),
        };
        f.reopen();
        Ok(f)
    }

    fn reopen(&mut self) {
        if let Ok(file) = File::open(&self.path) {
            self.ino = file.metadata().map_or(0, |m| m.ino());
            self.file = Some(file);
            self.partial.clear();
        }
    }

    fn skip_to_end(&mut self) -> io::Result<()> {
        if let Some(f) = self.file.as_mut() {
            f.seek(SeekFrom::End(0))?;
        }
        Ok(())
    }

    /// What was appended since the last call (rotations followed).
    pub fn poll(&mut self) -> io::Result<Vec<Message>> {
        let mut out = Vec::new();
        self.drain(&mut out)?;
        let current = fs::metadata(&self.path).map_or(0, |m| m.ino());
        if current != 0 && current != self.ino {
            // Rotated (or created): the old file was drained above; start the new one.
            self.reopen();
            self.drain(&mut out)?;
        }
        Ok(out)
    }

    fn drain(&mut self, out: &mut Vec<Message>) -> io::Result<()> {
        let Some(f) = self.file.as_mut() else {
            return Ok(());
        };
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        self.partial.extend_from_slice(&buf);
        while let Some(nl) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=nl).collect();
            if let Ok(m) = serde_json::from_slice(&line) {
                out.push(m);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_replayed_by_time_and_followed_across_a_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        emit(
            root,
            "volume",
            "create",
            "v1",
            &[("driver", "local".into())],
        );
        let (all, mut follow) = replay(root, Some(0), None).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].actor.attributes["driver"], "local");
        assert!(all[0].status.is_empty(), "no legacy fields for volumes");
        let (none, _) = replay(root, None, None).unwrap();
        assert!(none.is_empty());
        // A journal at the rotation size is moved aside by the next append.
        let f = OpenOptions::new()
            .append(true)
            .open(journal_path(root))
            .unwrap();
        f.set_len(ROTATE_AT).unwrap();
        emit(root, "network", "create", "n1", &[]);
        let got = follow.poll().unwrap();
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].actor.id, "n1");
        assert!(old_path(root).exists());
        let cutoff = got[0].time_nano;
        let (after, _) = replay(root, Some(cutoff), None).unwrap();
        assert_eq!(after.len(), 1);
    }

    #[test]
    fn container_events_carry_the_legacy_fields() {
        let mut a = BTreeMap::new();
        a.insert("image".to_string(), "busybox".to_string());
        let m = Message::new("container", "exec_start: sh -c x", "abc", a);
        assert_eq!(
            (m.status.as_str(), m.id.as_str()),
            ("exec_start: sh -c x", "abc")
        );
        assert_eq!(m.from, "busybox");
        assert_eq!(m.base_action(), "exec_start");
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v["Actor"]["ID"], "abc");
        assert_eq!(v["scope"], "local");
    }
}
