//! `RUN --mount`: BuildKit's mount types on a build container. `cache` is a directory kept
//! under the root between builds (by `id`, else target); `bind` shows a path of the context
//! (or of a stage or image, `from=`) read-only; `tmpfs` is a fresh tmpfs; `secret` binds a
//! file given with `--secret id=ID,src=FILE` (at `/run/secrets/ID` unless a target is
//! given). None of them leaves anything in the step's layer.

use std::path::PathBuf;

use sha2::{Digest as _, Sha256};

use super::layer::View;
use super::state::State;
use super::Builder;
use crate::build::context::{clean_abs, hash_entries};
use crate::ops::error::Result;
use crate::ops::models::{BindOptions, Mount};

/// The mounts of one RUN step, what they add to its cache key, and the views they need.
pub(super) struct RunMounts<'a> {
    pub mounts: Vec<Mount>,
    pub targets: Vec<String>,
    pub key: String,
    pub views: Vec<View<'a>>,
}

fn bind(source: PathBuf, target: &str, read_only: bool) -> Mount {
    Mount {
        r#type: "bind".into(),
        source: source.display().to_string(),
        target: target.to_string(),
        read_only,
        bind_options: Some(BindOptions {
            create_mountpoint: true,
            ..BindOptions::default()
        }),
        ..Mount::default()
    }
}

impl Builder<'_> {
    /// Parses and prepares `--mount` values; `from` finds a stage's state by name.
    pub(super) fn run_mounts<'s>(
        &'s self,
        specs: &[String],
        workdir: &str,
        vars: &Vec<(String, String)>,
        from: &dyn Fn(&str) -> Result<State>,
    ) -> Result<RunMounts<'s>> {
        let mut out = RunMounts {
            mounts: Vec::new(),
            targets: Vec::new(),
            key: String::new(),
            views: Vec::new(),
        };
        for spec in specs {
            let spec = self.lex.word(spec, vars)?;
            let mut kind = "bind".to_string();
            let mut fields: Vec<(String, String)> = Vec::new();
            for part in spec.split(',').filter(|p| !p.is_empty()) {
                let (k, v) = part.split_once('=').unwrap_or((part, "true"));
                let k = k.to_ascii_lowercase();
                if k == "type" {
                    kind = v.to_string();
                } else {
                    fields.push((k, v.to_string()));
                }
            }
            let get = |names: &[&str]| {
                fields
                    .iter()
                    .rev()
                    .find(|(k, _)| names.contains(&k.as_str()))
                    .map(|(_, v)| v.clone())
            };
            let flag = |names: &[&str]| get(names).is_some_and(|v| v != "false");
            let target = get(&["target", "dst", "destination"]).map(|t| {
                if t.starts_with('/') {
                    clean_abs(&t)
                } else {
                    clean_abs(&format!("{workdir}/{t}"))
                }
            });
            match kind.as_str() {
                "cache" => {
                    let Some(target) = target else {
                        return Err(
                            self.step_err(format!("--mount {spec}: a cache mount needs a target"))
                        );
                    };
                    let id = get(&["id"]).unwrap_or_else(|| target.clone());
                    let dir = self
                        .engine
                        .root()
                        .join("build-mounts")
                        .join(hex::encode(Sha256::digest(id.as_bytes())));
                    std::fs::create_dir_all(&dir).map_err(|e| {
                        crate::ops::OpsError::io(
                            format!("creating cache mount {}", dir.display()),
                            e,
                        )
                    })?;
                    out.mounts
                        .push(bind(dir, &target, flag(&["readonly", "ro"])));
                    out.targets.push(target);
                }
                "tmpfs" => {
                    let Some(target) = target else {
                        return Err(
                            self.step_err(format!("--mount {spec}: a tmpfs mount needs a target"))
                        );
                    };
                    out.mounts.push(Mount {
                        r#type: "tmpfs".into(),
                        target: target.clone(),
                        ..Mount::default()
                    });
                    out.targets.push(target);
                }
                "bind" => {
                    let Some(target) = target else {
                        return Err(
                            self.step_err(format!("--mount {spec}: a bind mount needs a target"))
                        );
                    };
                    let source = get(&["source", "src"]).unwrap_or_else(|| "/".into());
                    let ctx = match get(&["from"]) {
                        None => self.ctx.clone(),
                        Some(f) => {
                            let state = from(&f)?;
                            out.key.push_str(&state.id());
                            let (ctx, view) = self.copy_source(Some(&state))?;
                            out.views.extend(view);
                            ctx
                        }
                    };
                    let found = ctx
                        .sources(&source, "RUN --mount")
                        .map_err(|e| self.step_err(e.to_string()))?;
                    let path = found
                        .into_iter()
                        .next()
                        .map_or_else(|| "/".into(), |s| s.path);
                    out.key
                        .push_str(&hash_entries(&ctx.entries(&path, &path)?)?);
                    let host = ctx.dir.join(path.trim_start_matches('/'));
                    out.mounts.push(bind(host, &target, true));
                    out.targets.push(target);
                }
                "secret" => {
                    let id = get(&["id"])
                        .or_else(|| {
                            target
                                .as_ref()
                                .and_then(|t| t.rsplit('/').next().map(String::from))
                        })
                        .unwrap_or_default();
                    let target = target.unwrap_or_else(|| format!("/run/secrets/{id}"));
                    match self.req.secrets.get(&id) {
                        Some(src) => {
                            out.mounts.push(bind(src.clone(), &target, true));
                            out.targets.push(target);
                        }
                        None if flag(&["required"]) => {
                            return Err(self.step_err(format!(
                                "secret {id} not provided (--secret id={id},src=FILE)"
                            )))
                        }
                        None => {}
                    }
                }
                other => {
                    return Err(self.step_err(format!("--mount: unsupported mount type {other:?}")));
                }
            }
        }
        Ok(out)
    }
}
