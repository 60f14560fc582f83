//! A stage's state between steps: the image config (docker's JSON shape, kept as a JSON
//! value so that every field of the base image survives), its layers, and the step cache
//! (`<root>/build-cache/<key>.json`: the state after a step, keyed by the digest of the
//! parent's key, the step with its arguments expanded, the build args it sees and the
//! content of what it copies).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::{Digest as _, Sha256};

use super::layer::Layer;
use crate::build::commands::{Args, HealthCmd};
use crate::build::expand::{Lexer, Vars};
use crate::build::BuildError;
use crate::container::record::now_rfc3339;
use crate::image::ImageStore;
use crate::ops::error::Result;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub config: Value,
    pub layers: Vec<Layer>,
    /// A store image whose defaults a RUN container starts from (overridden by this
    /// state's settings); `None` for a chain that started FROM scratch.
    pub anchor: Option<String>,
    /// How many of `layers` are the FROM image's own (kept as they are by
    /// `compression=zstd` unless `force-compression=true`, as BuildKit does).
    #[serde(default)]
    pub base_layers: usize,
    /// The stage's MAINTAINER: docker's builder writes it as `author` on every commit of
    /// the stage (config and history entry) and starts each stage without one.
    #[serde(default)]
    pub maintainer: Option<String>,
}

pub const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];

impl State {
    /// The empty state of a stage FROM scratch built for `p`.
    pub fn scratch(p: &crate::platform::Platform) -> Self {
        let variant = p.variant.clone();
        let mut config = json!({
            "architecture": p.architecture,
            "os": p.os,
            // docker's builder writes every field of its container config, zero or not.
            "config": {
                "Hostname": "", "Domainname": "", "User": "", "AttachStdin": false,
                "AttachStdout": false, "AttachStderr": false, "Tty": false, "OpenStdin": false,
                "StdinOnce": false, "Env": null, "Cmd": null, "Image": "", "Volumes": null,
                "WorkingDir": "", "Entrypoint": null, "OnBuild": null, "Labels": null,
            },
            "rootfs": {"type": "layers", "diff_ids": []},
            "history": [],
        });
        if let Some(v) = variant {
            config["variant"] = json!(v);
        }
        Self {
            config,
            layers: Vec::new(),
            anchor: None,
            base_layers: 0,
            maintainer: None,
        }
    }

    /// docker's image ID of this state: the digest of its config.
    pub fn id(&self) -> String {
        let bytes = serde_json::to_vec(&self.config).unwrap_or_default();
        format!("sha256:{}", hex::encode(Sha256::digest(&bytes)))
    }

    pub fn cfg(&mut self) -> &mut Map<String, Value> {
        if !self.config["config"].is_object() {
            self.config["config"] = json!({});
        }
        match self.config["config"].as_object_mut() {
            Some(m) => m,
            None => unreachable!("config was just made an object"),
        }
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.config
            .get("config")
            .and_then(|c| c.get(key))
            .filter(|v| !v.is_null())
    }

    pub fn strings(&self, key: &str) -> Vec<String> {
        self.get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn string(&self, key: &str) -> String {
        self.get(key)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    }

    pub fn env(&self) -> Vec<String> {
        self.strings("Env")
    }

    /// The environment as variables for expansion.
    pub fn env_vars(&self) -> Vec<(String, String)> {
        self.env()
            .iter()
            .map(|e| match e.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (e.clone(), String::new()),
            })
            .collect()
    }

    pub fn set_env(&mut self, key: &str, value: &str) {
        let mut env = self.env();
        let entry = format!("{key}={value}");
        match env
            .iter()
            .position(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key)
        {
            Some(i) => env[i] = entry,
            None => env.push(entry),
        }
        self.cfg().insert("Env".into(), json!(env));
    }

    pub fn shell(&self) -> Vec<String> {
        let s = self.strings("Shell");
        if s.is_empty() {
            DEFAULT_SHELL.iter().map(|s| s.to_string()).collect()
        } else {
            s
        }
    }

    /// Adds a history entry (and the layer, when the step made one).
    pub fn commit(&mut self, created_by: &str, layer: Option<Layer>) {
        let now = now_rfc3339();
        let mut h = json!({"created": now, "created_by": created_by});
        match self.maintainer.as_deref().filter(|m| !m.is_empty()) {
            Some(m) => {
                h["author"] = json!(m);
                self.config["author"] = json!(m);
            }
            None => {
                if let Some(c) = self.config.as_object_mut() {
                    c.remove("author");
                }
            }
        }
        // A build's commit has no comment: the base's (`Imported from -`) does not stay.
        if let Some(c) = self.config.as_object_mut() {
            c.remove("comment");
        }
        match layer.filter(|l| !l.is_empty()) {
            Some(l) => {
                if !self.config["rootfs"].is_object() {
                    self.config["rootfs"] = json!({"type": "layers", "diff_ids": []});
                }
                if !self.config["rootfs"]["diff_ids"].is_array() {
                    self.config["rootfs"]["diff_ids"] = json!([]);
                }
                if let Some(a) = self.config["rootfs"]["diff_ids"].as_array_mut() {
                    a.push(json!(l.diff_id.to_string()));
                }
                self.layers.push(l);
            }
            None => h["empty_layer"] = json!(true),
        }
        if !self.config["history"].is_array() {
            self.config["history"] = json!([]);
        }
        if let Some(a) = self.config["history"].as_array_mut() {
            a.push(h);
        }
        self.config["created"] = json!(now);
    }

    /// `/bin/sh -c #(nop)  <comment>`: how docker's builder records a step without a
    /// command.
    pub fn nop(&self, comment: &str) -> String {
        format!("{} #(nop)  {comment}", self.shell().join(" "))
    }
}

/// Go's `%q` of a string list (docker's history text for CMD, ENTRYPOINT, VOLUME, SHELL).
pub fn go_list(v: &[String]) -> String {
    let items: Vec<String> = v
        .iter()
        .map(|s| serde_json::to_string(s).unwrap_or_default())
        .collect();
    format!("[{}]", items.join(" "))
}

/// A command in exec form: JSON as written, shell form through the shell.
pub fn exec_form(args: &Args, shell: &[String]) -> Vec<String> {
    match args {
        Args::Json(v) => v.clone(),
        Args::Shell(s) => {
            let mut v = shell.to_vec();
            // `CMD` alone is the shell alone for docker's builder.
            if !s.is_empty() {
                v.push(s.clone());
            }
            v
        }
    }
}

/// Go duration text (`1m30s`) into nanoseconds.
pub fn go_duration(s: &str) -> Option<i64> {
    let mut total: f64 = 0.0;
    let mut rest = s.trim();
    if rest == "0" {
        return Some(0);
    }
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += n * mult;
        rest = &rest[unit_end..];
    }
    Some(total as i64)
}

/// Nanoseconds as Go prints a `time.Duration`.
fn go_duration_text(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut s = ns as f64 / 1e9;
    if s >= 3600.0 {
        out.push_str(&format!("{}h", (s / 3600.0) as i64));
        s %= 3600.0;
    }
    if !out.is_empty() || s >= 60.0 {
        out.push_str(&format!("{}m", (s / 60.0) as i64));
        s %= 60.0;
    }
    if s.fract() == 0.0 {
        out.push_str(&format!("{}s", s as i64));
    } else {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// HEALTHCHECK into the config's Healthcheck and docker's history text.
pub fn healthcheck(
    h: &HealthCmd,
    shell: &[String],
    file: &str,
    line: usize,
) -> Result<(Value, String), BuildError> {
    let bad = |what: &str, v: &str| BuildError::Step {
        file: file.to_string(),
        line,
        message: format!("HEALTHCHECK --{what}: invalid value {v:?}"),
    };
    let test: Vec<String> = match &h.test {
        None => vec!["NONE".into()],
        Some(Args::Json(v)) => std::iter::once("CMD".to_string())
            .chain(v.iter().cloned())
            .collect(),
        Some(Args::Shell(s)) => vec!["CMD-SHELL".into(), s.clone()],
    };
    let _ = shell;
    let dur = |what: &str, v: &Option<String>| -> Result<i64, BuildError> {
        match v {
            None => Ok(0),
            Some(v) => go_duration(v)
                .filter(|d| *d >= 0)
                .ok_or_else(|| bad(what, v)),
        }
    };
    let interval = dur("interval", &h.interval)?;
    let timeout = dur("timeout", &h.timeout)?;
    let start = dur("start-period", &h.start_period)?;
    let retries: i64 = match &h.retries {
        None => 0,
        Some(v) => v.parse().map_err(|_| bad("retries", v))?,
    };
    let mut v = json!({"Test": test});
    if interval != 0 {
        v["Interval"] = json!(interval);
    }
    if timeout != 0 {
        v["Timeout"] = json!(timeout);
    }
    if start != 0 {
        v["StartPeriod"] = json!(start);
    }
    if retries != 0 {
        v["Retries"] = json!(retries);
    }
    let text = format!(
        "HEALTHCHECK &{{{} \"{}\" \"{}\" \"{}\" '\\x{:02x}'}}",
        go_list(&test),
        go_duration_text(interval),
        go_duration_text(timeout),
        go_duration_text(start),
        retries
    );
    Ok((v, text))
}

/// Expands every word of a list (JSON form) or splits the shell form into words.
pub fn expand_list(lex: &Lexer, args: &Args, vars: &dyn Vars) -> Result<Vec<String>, BuildError> {
    match args {
        Args::Json(v) => v.iter().map(|w| lex.word(w, vars)).collect(),
        Args::Shell(s) => lex.words(s, vars),
    }
}

/// The step cache.
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    pub fn open(root: &Path) -> Self {
        Self {
            dir: root.join("build-cache"),
        }
    }

    /// The key of a step after `parent`.
    pub fn key(parent: &str, step: &str) -> String {
        let mut h = Sha256::new();
        h.update(parent.as_bytes());
        h.update([0]);
        h.update(step.as_bytes());
        hex::encode(h.finalize())
    }

    /// The cached state, when its layers are all still stored.
    pub fn get(&self, key: &str, store: &ImageStore) -> Option<State> {
        let bytes = std::fs::read(self.dir.join(format!("{key}.json"))).ok()?;
        let state: State = serde_json::from_slice(&bytes).ok()?;
        state
            .layers
            .iter()
            .all(|l| store.content().contains(&l.digest))
            .then_some(state)
    }

    /// The layer a `--link` step made under `key` (a key without the parent's), when its
    /// blob is still stored.
    pub fn get_link(&self, key: &str, store: &ImageStore) -> Option<Layer> {
        let bytes = std::fs::read(self.dir.join(format!("link-{key}.json"))).ok()?;
        let layer: Layer = serde_json::from_slice(&bytes).ok()?;
        store.content().contains(&layer.digest).then_some(layer)
    }

    pub fn put_link(&self, key: &str, layer: &Layer) {
        self.write(&format!("link-{key}"), layer);
    }

    pub fn put(&self, key: &str, state: &State) {
        self.write(key, state);
    }

    fn write(&self, key: &str, value: &impl Serialize) {
        // The cache is an optimisation: failing to write it only costs a later rebuild.
        let Ok(bytes) = serde_json::to_vec(value) else {
            return;
        };
        if std::fs::create_dir_all(&self.dir).is_err() {
            return;
        }
        // Stages built at once may write the same key: each writer has its own file.
        static WRITER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = WRITER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = self
            .dir
            .join(format!("{key}.tmp-{}-{n}", std::process::id()));
        if std::fs::write(&tmp, bytes).is_ok() {
            let _ = std::fs::rename(&tmp, self.dir.join(format!("{key}.json")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_and_history_text() {
        assert_eq!(go_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(go_duration("500ms"), Some(500_000_000));
        assert_eq!(go_duration("x"), None);
        assert_eq!(go_duration_text(90_000_000_000), "1m30s");
        assert_eq!(go_duration_text(5_000_000_000), "5s");
        assert_eq!(go_list(&["a".into(), "b c".into()]), "[\"a\" \"b c\"]");
        let h = HealthCmd {
            test: Some(Args::Shell("true".into())),
            interval: Some("5s".into()),
            retries: Some("3".into()),
            ..HealthCmd::default()
        };
        let (v, text) = healthcheck(&h, &[], "D", 1).unwrap();
        assert_eq!(v["Interval"], 5_000_000_000i64);
        assert_eq!(
            text,
            "HEALTHCHECK &{[\"CMD-SHELL\" \"true\"] \"5s\" \"0s\" \"0s\" '\\x03'}"
        );
    }

    #[test]
    fn env_replaces_by_key() {
        let mut s = State::scratch(&crate::platform::Platform::host());
        s.set_env("A", "1");
        s.set_env("B", "2");
        s.set_env("A", "3");
        assert_eq!(s.env(), vec!["A=3", "B=2"]);
        s.commit("x", None);
        assert_eq!(s.config["history"][0]["empty_layer"], true);
    }
}
