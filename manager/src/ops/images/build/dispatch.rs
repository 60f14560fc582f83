//! One stage, step by step: each step's cache key, a lookup, and on a miss the step
//! itself (metadata steps change the config; RUN, COPY, ADD and a new WORKDIR make a
//! layer). History text is what docker's builder writes.

use serde_json::{json, Value};

use super::state::{exec_form, expand_list, go_list, healthcheck, Cache, State};
use super::Builder;
use crate::build::commands::{parse_trigger, Args, Command, CopyCmd, Plan, Step};
use crate::build::context::{clean_abs, hash_entries, Entry, EntryKind};
use crate::build::BuildError;
use crate::ops::error::Result;
use crate::platform::Platform;

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What a stage carries between steps besides the image state.
struct StageVars {
    args: Vec<(String, String)>,
    cmd_set: bool,
}

impl Builder<'_> {
    pub(super) fn build_stage(
        &mut self,
        plan: &Plan,
        index: usize,
        results: &[Option<(State, String)>],
    ) -> Result<(State, String)> {
        let stage = &plan.stages[index];
        self.line = stage.from_line;
        self.announce(&stage.from_original);
        let base = self.base_name(&stage.base)?;
        // `FROM --platform=...` (ARGs expanded: `$BUILDPLATFORM`); the build's target else.
        let platform = match &stage.platform {
            Some(p) => {
                let p = self.base_name(p)?;
                p.parse::<Platform>()
                    .map_err(|e| self.step_err(format!("FROM --platform: {e}")))?
            }
            None => self.target.clone(),
        };
        let (mut state, mut key) = if base.eq_ignore_ascii_case("scratch") {
            (State::scratch(&platform), format!("scratch\0{platform}"))
        } else if let Some(j) = Self::stage_ref(plan, index, &base) {
            match &results[j] {
                Some(r) => r.clone(),
                None => return Err(self.step_err(format!("stage {base} was not built"))),
            }
        } else {
            self.image_state(&base, &platform)?
        };
        self.say(&format!(" ---> {}\n", &state.id()[7..19]));
        // A stage starts without a MAINTAINER, even FROM a stage that set one.
        if state.maintainer.take().is_some() {
            key = Cache::key(&key, "stage without MAINTAINER");
        }
        // docker's builder gives every stage a PATH (its Linux default) when the base has
        // none, FROM scratch included.
        if !state.env().iter().any(|e| e.starts_with("PATH=")) {
            state.set_env("PATH", DEFAULT_PATH);
        }
        let mut vars = StageVars {
            args: Vec::new(),
            cmd_set: false,
        };
        let triggers = state.strings("OnBuild");
        if !triggers.is_empty() {
            self.say(&format!(
                "# Executing {} build trigger{}\n",
                triggers.len(),
                if triggers.len() == 1 { "" } else { "s" }
            ));
            state.cfg().insert("OnBuild".into(), Value::Null);
            for t in triggers {
                let step = parse_trigger(&self.file, &t, plan.escape)?;
                self.dispatch(plan, index, results, &step, &mut state, &mut key, &mut vars)?;
            }
        }
        for step in &stage.steps {
            crate::ops::cancel::check(self.cancel)?;
            self.line = step.line;
            self.announce(&step.original);
            self.dispatch(plan, index, results, step, &mut state, &mut key, &mut vars)
                .map_err(|e| self.at_line(e))?;
            self.say(&format!(" ---> {}\n", &state.id()[7..19]));
        }
        Ok((state, key))
    }

    /// An expansion error, told with the line of the step.
    fn at_line(&self, e: crate::ops::OpsError) -> crate::ops::OpsError {
        match e {
            crate::ops::OpsError::Build(b) if matches!(*b, BuildError::Expand { .. }) => {
                self.step_err(b.to_string())
            }
            e => e,
        }
    }

    /// Looks the step up in the cache, else runs `f` on a copy of the state.
    fn cached(
        &self,
        state: &mut State,
        key: &mut String,
        text: &str,
        f: impl FnOnce(&Self, State) -> Result<State>,
    ) -> Result<()> {
        let k = Cache::key(key, text);
        if !self.req.no_cache {
            if let Some(s) = self.cache.get(&k, self.store) {
                self.say(" ---> Using cache\n");
                *state = s;
                *key = k;
                return Ok(());
            }
        }
        let new = f(self, state.clone())?;
        self.cache.put(&k, &new);
        *state = new;
        *key = k;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn dispatch(
        &mut self,
        plan: &Plan,
        index: usize,
        results: &[Option<(State, String)>],
        step: &Step,
        state: &mut State,
        key: &mut String,
        sv: &mut StageVars,
    ) -> Result<()> {
        let mut vars = sv.args.clone();
        vars.extend(state.env_vars());
        let lex = self.lex;
        let word = |w: &str| lex.word(w, &vars);
        // Metadata steps: the new config and docker's history comment.
        let meta =
            |state: &mut State, key: &mut String, comment: String, f: &dyn Fn(&mut State)| {
                let created_by = state.nop(&comment);
                self.cached(state, key, &created_by, |_, mut s| {
                    f(&mut s);
                    s.commit(&created_by, None);
                    Ok(s)
                })
            };
        match &step.command {
            Command::From { .. } => Err(self.step_err("FROM inside a stage".into())),
            Command::Arg(list) => {
                let mut parts = Vec::new();
                for (name, default) in list {
                    let default = default.as_deref().map(word).transpose()?;
                    let shown = match &default {
                        Some(d) => format!("{name}={d}"),
                        None => name.clone(),
                    };
                    parts.push(shown);
                    if let Some(v) = self.args.resolve(name, default, &self.globals) {
                        sv.args.retain(|(k, _)| k != name);
                        sv.args.push((name.clone(), v));
                    }
                }
                let seen: Vec<String> = sv.args.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let comment = format!("ARG {}", parts.join(" "));
                let created_by = state.nop(&comment);
                self.cached(
                    state,
                    key,
                    &format!("{created_by}\0{}", seen.join("\0")),
                    |_, mut s| {
                        s.commit(&created_by, None);
                        Ok(s)
                    },
                )
            }
            Command::Env(kvs) => {
                let mut pairs = Vec::new();
                for (k, v) in kvs {
                    pairs.push((word(k)?, word(v)?));
                }
                let comment = format!(
                    "ENV {}",
                    pairs
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                );
                meta(state, key, comment, &|s: &mut State| {
                    for (k, v) in &pairs {
                        s.set_env(k, v);
                    }
                })
            }
            Command::Label(kvs) => {
                let mut pairs = Vec::new();
                for (k, v) in kvs {
                    pairs.push((word(k)?, word(v)?));
                }
                let comment = format!(
                    "LABEL {}",
                    pairs
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                );
                meta(state, key, comment, &|s: &mut State| {
                    let mut labels = s.config["config"]["Labels"]
                        .as_object()
                        .cloned()
                        .unwrap_or_default();
                    for (k, v) in &pairs {
                        labels.insert(k.clone(), json!(v));
                    }
                    s.cfg().insert("Labels".into(), json!(labels));
                })
            }
            Command::Maintainer(m) => {
                let m = m.clone();
                meta(state, key, format!("MAINTAINER {m}"), &|s: &mut State| {
                    s.maintainer = Some(m.clone());
                })
            }
            Command::User(u) => {
                let u = word(u)?;
                meta(state, key, format!("USER {u}"), &|s: &mut State| {
                    s.cfg().insert("User".into(), json!(u));
                })
            }
            Command::StopSignal(sig) => {
                let sig = word(sig)?;
                if crate::specgen::flags::parse_stop_signal(&sig).is_err() {
                    return Err(self.step_err(format!("Invalid signal: {sig}")));
                }
                meta(state, key, format!("STOPSIGNAL {sig}"), &|s: &mut State| {
                    s.cfg().insert("StopSignal".into(), json!(sig));
                })
            }
            Command::Shell(v) => {
                // docker's history shows SHELL run by the new shell.
                let created_by = format!("{} #(nop)  SHELL [{}]", v.join(" "), v.join(" "));
                let v = v.clone();
                self.cached(state, key, &created_by, |_, mut s| {
                    s.cfg().insert("Shell".into(), json!(v));
                    s.commit(&created_by, None);
                    Ok(s)
                })
            }
            Command::Cmd(args) => {
                let cmd = exec_form(args, &state.shell());
                sv.cmd_set = true;
                meta(
                    state,
                    key,
                    format!("CMD {}", go_list(&cmd)),
                    &|s: &mut State| {
                        s.cfg().insert("Cmd".into(), json!(cmd));
                    },
                )
            }
            Command::Entrypoint(args) => {
                let ep = match args {
                    Args::Shell(s) if s.trim().is_empty() => Vec::new(),
                    a => exec_form(a, &state.shell()),
                };
                let reset_cmd = !sv.cmd_set;
                meta(
                    state,
                    key,
                    format!("ENTRYPOINT {}", go_list(&ep)),
                    &|s: &mut State| {
                        s.cfg().insert(
                            "Entrypoint".into(),
                            if ep.is_empty() {
                                Value::Null
                            } else {
                                json!(ep)
                            },
                        );
                        if reset_cmd {
                            s.cfg().insert("Cmd".into(), Value::Null);
                        }
                    },
                )
            }
            Command::Expose(rest) => {
                let ports = lex.words(rest, &vars)?;
                let mut keys = Vec::new();
                for p in &ports {
                    let (num, proto) = p.split_once('/').unwrap_or((p, "tcp"));
                    let (lo, hi) = match num.split_once('-') {
                        Some((a, b)) => (a.parse::<u16>().ok(), b.parse::<u16>().ok()),
                        None => (num.parse::<u16>().ok(), num.parse::<u16>().ok()),
                    };
                    let (Some(lo), Some(hi)) = (lo, hi) else {
                        return Err(self.step_err(format!("invalid containerPort: {num}")));
                    };
                    for n in lo..=hi {
                        keys.push(format!("{n}/{}", proto.to_ascii_lowercase()));
                    }
                }
                meta(
                    state,
                    key,
                    // docker's history lists the ports sorted.
                    format!("EXPOSE {}", {
                        let mut sorted = ports.clone();
                        sorted.sort();
                        sorted.join(" ")
                    }),
                    &|s: &mut State| {
                        let mut m = s.config["config"]["ExposedPorts"]
                            .as_object()
                            .cloned()
                            .unwrap_or_default();
                        for k in &keys {
                            m.insert(k.clone(), json!({}));
                        }
                        s.cfg().insert("ExposedPorts".into(), json!(m));
                    },
                )
            }
            Command::Volume(args) => {
                let vols = expand_list(&lex, args, &vars)?;
                if vols.iter().any(|v| v.trim().is_empty()) {
                    return Err(self.step_err("VOLUME specified can not be an empty string".into()));
                }
                meta(
                    state,
                    key,
                    format!("VOLUME [{}]", vols.join(" ")),
                    &|s: &mut State| {
                        let mut m = s.config["config"]["Volumes"]
                            .as_object()
                            .cloned()
                            .unwrap_or_default();
                        for v in &vols {
                            m.insert(v.clone(), json!({}));
                        }
                        s.cfg().insert("Volumes".into(), json!(m));
                    },
                )
            }
            Command::Healthcheck(h) => {
                let (v, text) = healthcheck(h, &state.shell(), &self.file, step.line)?;
                meta(state, key, text, &|s: &mut State| {
                    // docker's commit fills the durations and retries left unset from
                    // the parent's healthcheck (HEALTHCHECK NONE included).
                    let mut v = v.clone();
                    if let (Some(new), Some(old)) = (
                        v.as_object_mut(),
                        s.config["config"]["Healthcheck"].as_object(),
                    ) {
                        for k in ["Interval", "Timeout", "StartPeriod", "Retries"] {
                            let unset = new.get(k).and_then(Value::as_i64).unwrap_or(0) == 0;
                            if let Some(o) = old.get(k).filter(|o| unset && o.as_i64() != Some(0)) {
                                new.insert(k.into(), o.clone());
                            }
                        }
                    }
                    s.cfg().insert("Healthcheck".into(), v);
                })
            }
            Command::Onbuild(t) => {
                let t = t.clone();
                meta(state, key, format!("ONBUILD {t}"), &|s: &mut State| {
                    let mut v = s.strings("OnBuild");
                    v.push(t.clone());
                    s.cfg().insert("OnBuild".into(), json!(v));
                })
            }
            Command::Workdir(w) => {
                let w = word(w)?;
                // docker's builder keeps an absolute path as written (`/a/`, `/a/../b`)
                // and joins a relative one to the current directory, cleaned.
                let dir = if w.starts_with('/') {
                    w.clone()
                } else {
                    clean_abs(&format!("{}/{w}", state.string("WorkingDir")))
                };
                // A WORKDIR is a committed container for docker's builder: one space after
                // `#(nop)`, whether it made the directory or not.
                let created_by = format!("{} #(nop) WORKDIR {dir}", state.shell().join(" "));
                self.cached(state, key, &created_by, |b, mut s| {
                    s.cfg().insert("WorkingDir".into(), json!(dir));
                    let layer = b.workdir_layer(&s, &clean_abs(&dir))?;
                    s.commit(&created_by, layer);
                    Ok(s)
                })
            }
            Command::Run {
                args,
                network,
                heredocs,
                mounts,
            } => {
                let shell = state.shell();
                let cmd = match (args, heredocs.first()) {
                    (Args::Shell(s), Some(h))
                        if s.trim()
                            .trim_start_matches("<<")
                            .trim_start_matches('-')
                            .trim_matches(['"', '\''])
                            == h.name =>
                    {
                        let mut v = shell.clone();
                        v.push(h.content.clone());
                        v
                    }
                    (Args::Shell(s), Some(_)) => {
                        let mut full = s.clone();
                        for h in heredocs {
                            full.push('\n');
                            full.push_str(&h.content);
                            full.push_str(&h.name);
                        }
                        let mut v = shell.clone();
                        v.push(full);
                        v
                    }
                    (a, _) => exec_form(a, &shell),
                };
                // Build args in effect that ENV does not override: in the step's
                // environment and, as `|N K=V ...`, in its history (docker's format).
                let env_keys: Vec<String> = state.env_vars().into_iter().map(|(k, _)| k).collect();
                let mut extra: Vec<String> = sv
                    .args
                    .iter()
                    .filter(|(k, _)| !env_keys.contains(k))
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                extra.sort();
                let created_by = if extra.is_empty() {
                    cmd.join(" ")
                } else {
                    format!("|{} {} {}", extra.len(), extra.join(" "), cmd.join(" "))
                };
                let net = network.clone();
                let failed_cmd = cmd.join(" ");
                let from = |f: &str| -> Result<State> {
                    match Self::stage_ref(plan, index, f) {
                        Some(j) => results[j]
                            .as_ref()
                            .map(|(s, _)| s.clone())
                            .ok_or_else(|| self.step_err(format!("stage {f} was not built"))),
                        None => Ok(self.image_state(f, &self.target)?.0),
                    }
                };
                let rm = self.run_mounts(mounts, &state.string("WorkingDir"), &vars, &from)?;
                let text = format!("RUN\0{created_by}\0{mounts:?}\0{}", rm.key);
                let mount_list = (rm.mounts.clone(), rm.targets.clone());
                self.cached(state, key, &text, |b, mut s| {
                    let layer =
                        b.run_step(&s, cmd, extra, &failed_cmd, net.as_deref(), mount_list)?;
                    s.commit(&created_by, Some(layer));
                    Ok(s)
                })
            }
            Command::Copy(c) => self.copy(plan, index, results, c, state, key, &vars),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn copy(
        &self,
        plan: &Plan,
        index: usize,
        results: &[Option<(State, String)>],
        c: &CopyCmd,
        state: &mut State,
        key: &mut String,
        vars: &Vec<(String, String)>,
    ) -> Result<()> {
        let what: &'static str = if c.add { "ADD" } else { "COPY" };
        let mut words: Vec<String> = Vec::new();
        for a in &c.args {
            words.push(self.lex.word(a, vars)?);
        }
        let Some(dest_raw) = words.pop() else {
            return Err(self.step_err(format!("{what} requires at least two arguments")));
        };
        let workdir = state.string("WorkingDir");
        let dest = if dest_raw.starts_with('/') {
            dest_raw.clone()
        } else {
            let keep_slash = dest_raw.ends_with('/') || dest_raw == "." || dest_raw.ends_with("/.");
            let d = clean_abs(&format!("{workdir}/{dest_raw}"));
            if keep_slash && d != "/" {
                format!("{d}/")
            } else {
                d
            }
        };
        let from_state = match &c.from {
            None => None,
            Some(f) => {
                let f = self.lex.word(f, vars)?;
                match Self::stage_ref(plan, index, &f) {
                    Some(j) => match &results[j] {
                        Some((s, _)) => Some(s.clone()),
                        None => return Err(self.step_err(format!("stage {f} was not built"))),
                    },
                    None => Some(self.image_state(&f, &self.target)?.0),
                }
            }
        };
        let (ctx, _view) = self.copy_source(from_state.as_ref())?;
        let mut sources = Vec::new();
        // Heredocs and downloads, each named by its `dest`.
        let mut inline: Vec<Entry> = Vec::new();
        let mut scratch = Vec::new();
        // Git sources, resolved to the commits that key the cache.
        let mut gits = Vec::new();
        let is_git = |w: &str| c.add && crate::build::git::is_git(w);
        if c.checksum.is_some() && words.iter().any(|w| is_git(w)) {
            return Err(self.step_err("checksum can't be specified for git sources".into()));
        }
        if c.checksum.is_some() && !words.iter().all(|w| super::remote::is_url(w)) {
            return Err(self.step_err("checksum can't be specified for non-HTTP(S) sources".into()));
        }
        for w in &words {
            if let Some(h) = c.heredocs.iter().find(|h| {
                w.trim_start_matches("<<")
                    .trim_start_matches('-')
                    .trim_matches(['"', '\''])
                    == h.name
                    && w.starts_with("<<")
            }) {
                // BuildKit expands the body unless the delimiter was quoted.
                let body = if h.expand {
                    crate::build::expand::Lexer::heredoc(&h.content, vars)?
                } else {
                    h.content.clone()
                };
                inline.push(Entry {
                    dest: h.name.clone(),
                    source: None,
                    kind: EntryKind::File {
                        size: body.len() as u64,
                    },
                    mode: 0o644,
                    uid: 0,
                    gid: 0,
                    mtime: now_secs(),
                    data: Some(body.into_bytes()),
                });
                continue;
            }
            if is_git(w) {
                let src = crate::build::git::parse(w).map_err(|e| self.step_err(e.to_string()))?;
                self.say(&format!(" ---> Resolving {}\n", src.display()));
                let r = super::gitsrc::resolve(&src, self.cancel)
                    .map_err(|e| self.step_err(crate::ops::error::chain(&e)))?;
                gits.push((src, r));
                continue;
            }
            if super::remote::is_url(w) {
                if !c.add {
                    return Err(self.step_err("source can't be a URL for COPY".into()));
                }
                let dir = super::remote::Scratch::new(self.engine.root())?;
                let d = super::remote::download(w, &dir.0, c.checksum.as_deref(), self.cancel)
                    .map_err(|e| self.step_err(crate::ops::error::chain(&e)))?;
                if d.dest.is_empty() && (dest.ends_with('/') || words.len() > 1) {
                    return Err(self.step_err(format!(
                        "ADD failed: cannot determine filename for source {w}"
                    )));
                }
                scratch.push(dir);
                inline.push(d);
                continue;
            }
            sources.extend(ctx.sources(w, what).map_err(|e| match e {
                BuildError::MissingSource { .. } | BuildError::NoSources { .. } => {
                    self.step_err(e.to_string())
                }
                e => e.into(),
            })?);
        }
        let mut chown = c
            .chown
            .as_deref()
            .map(|s| self.lex.word(s, vars))
            .transpose()?;
        // A `--link` step's key must not depend on the parent: names become ids here.
        if c.link {
            if let Some(spec) = &chown {
                chown = Some(self.link_owner(state, spec)?);
            }
        }
        let chmod = match &c.chmod {
            None => None,
            Some(m) => Some(
                u32::from_str_radix(&self.lex.word(m, vars)?, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| self.step_err(format!("invalid chmod value {m:?}")))?,
            ),
        };
        // The key: what the copied files are (content, mode, owner), not when they were
        // last touched.
        let mut all = Vec::new();
        for s in &sources {
            all.extend(ctx.entries(&s.path, &s.path)?);
        }
        for e in &inline {
            all.push(Entry {
                mtime: 0,
                ..e.clone()
            });
        }
        let hash = hash_entries(&all)?;
        let kind = if sources.len() + inline.len() > 1 {
            "multi"
        } else if all.len() > 1 {
            "dir"
        } else {
            "file"
        };
        // docker's history: `--chown=` glued to the source (its quirk), a download by its
        // bare digest, the destination as written (expanded), not resolved.
        let owner = chown
            .as_deref()
            .map_or(String::new(), |o| format!("--chown={o}"));
        let source = if sources.is_empty() && inline.is_empty() && !gits.is_empty() {
            // A checkout by its remote, commit and subdirectory.
            gits.iter()
                .map(|(g, r)| {
                    let mut s = format!("{}#{}", g.remote, r.commit);
                    if g.subdir != "/" {
                        s.push(':');
                        s.push_str(g.subdir.trim_start_matches('/'));
                    }
                    s
                })
                .collect::<Vec<_>>()
                .join(" ")
        } else if sources.is_empty()
            && words.len() == 1
            && words.iter().all(|w| super::remote::is_url(w))
        {
            hash.clone()
        } else {
            format!("{kind}:{hash}")
        };
        let created_by = format!(
            "{} #(nop) {what} {owner}{source} in {dest_raw} ",
            state.shell().join(" ")
        );
        // The names too: a followed symlink's copy is named after the link.
        let names: Vec<&str> = sources.iter().map(|s| s.name.as_str()).collect();
        let git_key: Vec<String> = gits
            .iter()
            .map(|(g, r)| format!("{}#{}:{}", g.remote, r.commit, g.subdir))
            .collect();
        let text = format!(
            "{created_by}\0{:?}\0{:?}\0{}\0{:?}\0{}\0{}\0{names:?}",
            chown,
            chmod,
            c.from.is_some(),
            git_key,
            c.keep_git_dir,
            if c.link {
                format!("link {dest}")
            } else {
                String::new()
            },
        );
        // A `--link` layer is also cached by its own key, without the parent's: after the
        // base changed, the same layer (same blob) goes on top of the new one.
        let link_key = c.link.then(|| Cache::key("link", &text));
        self.cached(state, key, &text, |b, mut s| {
            if let Some(lk) = &link_key {
                if let Some(layer) = (!b.req.no_cache)
                    .then(|| b.cache.get_link(lk, b.store))
                    .flatten()
                {
                    b.say(" ---> Using cache\n");
                    s.commit(&created_by, Some(layer));
                    return Ok(s);
                }
            }
            let mut checkouts = Vec::new();
            let mut trees = Vec::new();
            for (g, r) in &gits {
                b.say(&format!(" ---> Checking out {}#{}\n", g.remote, r.commit));
                let co = super::gitsrc::checkout(g, r, b.engine.root(), c.keep_git_dir, b.cancel)
                    .map_err(|e| b.step_err(crate::ops::error::chain(&e)))?;
                trees.extend(super::gitsrc::checkout_entries(
                    &co.tree,
                    &g.subdir,
                    &dest,
                    c.keep_git_dir,
                )?);
                checkouts.push(co);
            }
            let layer = b.copy_step(
                &s,
                &super::steps::CopyJob {
                    ctx: &ctx,
                    sources: &sources,
                    inline: &inline,
                    trees: &trees,
                    dest: &dest,
                    chown: chown.as_deref(),
                    chmod,
                    add: c.add,
                    link: c.link,
                },
            )?;
            drop(checkouts);
            if let Some(lk) = &link_key {
                b.cache.put_link(lk, &layer);
            }
            s.commit(&created_by, Some(layer));
            Ok(s)
        })
    }

    /// The layer WORKDIR makes when the directory is missing (root-owned, 0755, as
    /// docker's builder makes it); `None` when it exists.
    fn workdir_layer(&self, state: &State, dir: &str) -> Result<Option<super::layer::Layer>> {
        let chain = super::layer::ensure_chain(self.store, &*self.sn, &state.layers)?;
        let view = super::layer::View::mount(self.engine.root(), &*self.sn, chain.as_deref())?;
        if dir == "/" || super::steps::is_dir_in_root(&view.dir, dir) {
            return Ok(None);
        }
        let mut missing = Vec::new();
        let mut p = dir.to_string();
        while p != "/" && !p.is_empty() {
            if !super::steps::is_dir_in_root(&view.dir, &p) {
                missing.push(p.clone());
            }
            p = match p.rsplit_once('/') {
                Some((a, _)) if !a.is_empty() => a.to_string(),
                _ => "/".to_string(),
            };
        }
        drop(view);
        missing.reverse();
        let mut lb = super::layer::LayerBuilder::new(self.store)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        for m in missing {
            lb.entry(&crate::build::context::Entry {
                dest: m,
                source: None,
                kind: crate::build::context::EntryKind::Dir,
                mode: 0o755,
                uid: 0,
                gid: 0,
                mtime: now,
                data: None,
            })?;
        }
        Ok(Some(lb.finish()?))
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
