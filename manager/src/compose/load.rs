//! The loader, a pipeline of pure stages as compose-go has it: parse each file → interpolate
//! → include → long forms ([`super::shape`]) → extends → merge the files in order → the typed
//! model (unknown keys refused, the path of a wrong value named) → [`super::finish`].

use std::path::{Path, PathBuf};

use serde_norway::{Mapping, Value};

use super::error::{ComposeError, Result};
use super::interpolate::{self, Vars};
use super::merge::{merge, merge_mappings, strip_tags};
use super::model::Project;
use super::shape::{self, Ctx};
use super::yaml::{self, key_str, untag};

/// What a project is loaded from (the CLI's `-f`, `-p`, `--project-directory`,
/// `--env-file`, `--profile`, and the process's environment and directory).
#[derive(Debug, Clone, Default)]
pub struct ProjectOptions {
    pub files: Vec<PathBuf>,
    pub project_name: Option<String>,
    pub project_directory: Option<PathBuf>,
    pub env_files: Vec<PathBuf>,
    pub profiles: Vec<String>,
    /// The process environment (`COMPOSE_FILE`, `COMPOSE_PROJECT_NAME`,
    /// `COMPOSE_PROFILES`, and the variables interpolation sees first).
    pub environment: Vars,
    /// Where relative `-f` paths and the file lookup start.
    pub cwd: PathBuf,
    /// Services named on the command line: enabled whatever their profiles.
    pub services: Vec<String>,
}

/// Loads, merges, normalises and validates a project.
pub fn load(opts: &ProjectOptions) -> Result<Project> {
    let (files, project_dir) = files_and_dir(opts)?;
    let vars = variables(opts, &project_dir)?;
    let merged = load_merged(&files, &project_dir, &vars, 0)?;
    let project = typed(merged, &files)?;
    super::finish::finish(project, opts, &vars, &files, &project_dir)
}

fn files_and_dir(opts: &ProjectOptions) -> Result<(Vec<PathBuf>, PathBuf)> {
    let abs = |p: &Path| shape::clean(&opts.cwd.join(p));
    // `-f -` is the standard input; its relative paths are the current directory's.
    let mut files: Vec<PathBuf> = opts
        .files
        .iter()
        .map(|f| {
            if f == Path::new("-") {
                f.clone()
            } else {
                abs(f)
            }
        })
        .collect();
    // COMPOSE_FILE may also come from the `.env` of the current directory.
    let mut env = opts.environment.clone();
    let dot = opts.cwd.join(".env");
    if files.is_empty() && !env.contains_key("COMPOSE_FILE") && dot.is_file() {
        for (k, v) in super::env::read_env_file(&dot, &opts.environment)? {
            env.entry(k).or_insert(v);
        }
    }
    if files.is_empty() {
        if let Some(cf) = env.get("COMPOSE_FILE").filter(|s| !s.is_empty()) {
            let sep = env
                .get("COMPOSE_PATH_SEPARATOR")
                .cloned()
                .unwrap_or_else(|| ":".into());
            files = cf.split(sep.as_str()).map(|f| abs(Path::new(f))).collect();
        }
    }
    if files.is_empty() {
        let start = opts
            .project_directory
            .as_deref()
            .map(abs)
            .unwrap_or_else(|| opts.cwd.clone());
        files = super::env::discover(&start)?;
    }
    let project_dir = match &opts.project_directory {
        Some(d) => abs(d),
        None if files[0] == Path::new("-") => opts.cwd.clone(),
        None => files[0]
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| opts.cwd.clone()),
    };
    Ok((files, project_dir))
}

/// The process environment over the `.env` file (or `--env-file`s).
fn variables(opts: &ProjectOptions, project_dir: &Path) -> Result<Vars> {
    let mut vars = Vars::new();
    if opts.env_files.is_empty() {
        let dot = project_dir.join(".env");
        if dot.is_file() {
            vars = super::env::read_env_file(&dot, &opts.environment)?;
        }
    } else {
        for f in &opts.env_files {
            let f = shape::clean(&opts.cwd.join(f));
            vars.extend(super::env::read_env_file(&f, &opts.environment)?);
        }
    }
    vars.extend(opts.environment.clone());
    Ok(vars)
}

/// One file parsed, interpolated, its includes added and its services in long form with
/// their `extends` resolved.
fn load_file(path: &Path, base: &Path, vars: &Vars, depth: usize) -> Result<Mapping> {
    let read = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    };
    let text = read.map_err(|source| ComposeError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut top = yaml::parse(&text, path)?;
    let mut v = Value::Mapping(std::mem::take(&mut top));
    interpolate::value(&mut v, vars, path, "")?;
    let Value::Mapping(mut top) = v else {
        return Err(ComposeError::NotAMapping {
            path: path.to_path_buf(),
        });
    };
    coerce(&mut top);
    let ctx = Ctx { file: path, base };
    shape::file(&mut top, &ctx)?;
    if let Some(inc) = top.remove("include") {
        include(&mut top, &inc, path, vars, depth)?;
    }
    resolve_extends(&mut top, path, vars, depth)?;
    Ok(top)
}

/// Files merged in order onto an empty project.
pub(crate) fn load_merged(
    files: &[PathBuf],
    base: &Path,
    vars: &Vars,
    depth: usize,
) -> Result<Mapping> {
    if depth > 8 {
        return Err(ComposeError::Usage {
            what: "include".into(),
            message: "includes nested too deep".into(),
        });
    }
    let mut merged = Value::Mapping(Mapping::new());
    for f in files {
        let top = load_file(f, base, vars, depth)?;
        merge(&mut merged, Value::Mapping(top), &[]);
    }
    match strip_tags(merged) {
        Value::Mapping(m) => Ok(m),
        _ => Ok(Mapping::new()),
    }
}

/// `include:` entries: a path, or `{path, project_directory, env_file}`; the included
/// project's resources join this file's, and a name defined twice is an error.
fn include(top: &mut Mapping, inc: &Value, file: &Path, vars: &Vars, depth: usize) -> Result<()> {
    let dir = file.parent().unwrap_or(Path::new("/"));
    let Value::Sequence(items) = untag(inc) else {
        return Err(ComposeError::Invalid {
            path: file.to_path_buf(),
            field: "include".into(),
            message: "must be a list".into(),
        });
    };
    for (i, item) in items.iter().enumerate() {
        let bad = |m: &str| ComposeError::Invalid {
            path: file.to_path_buf(),
            field: format!("include[{i}]"),
            message: m.into(),
        };
        let (paths, pdir, env_files) = match untag(item) {
            Value::String(p) => (vec![p.clone()], None, Vec::new()),
            Value::Mapping(m) => {
                let paths = match m.get("path").map(untag) {
                    Some(Value::String(p)) => vec![p.clone()],
                    Some(Value::Sequence(ps)) => ps.iter().filter_map(yaml::scalar_str).collect(),
                    _ => return Err(bad("needs a path")),
                };
                let pdir = m.get("project_directory").and_then(yaml::scalar_str);
                let env: Vec<String> = match m.get("env_file").map(untag) {
                    Some(Value::String(p)) => vec![p.clone()],
                    Some(Value::Sequence(ps)) => ps.iter().filter_map(yaml::scalar_str).collect(),
                    _ => Vec::new(),
                };
                (paths, pdir, env)
            }
            _ => return Err(bad("must be a path or a mapping")),
        };
        let files: Vec<PathBuf> = paths.iter().map(|p| shape::clean(&dir.join(p))).collect();
        let Some(first) = files.first() else {
            return Err(bad("needs a path"));
        };
        let base = match pdir {
            Some(d) => shape::clean(&dir.join(d)),
            None => first.parent().unwrap_or(dir).to_path_buf(),
        };
        let mut sub_vars = Vars::new();
        let env_files: Vec<PathBuf> = if env_files.is_empty() {
            vec![base.join(".env")]
        } else {
            env_files
                .iter()
                .map(|e| shape::clean(&dir.join(e)))
                .collect()
        };
        for e in env_files.iter().filter(|e| e.is_file()) {
            sub_vars.extend(super::env::read_env_file(e, vars)?);
        }
        sub_vars.extend(vars.clone());
        let sub = load_merged(&files, &base, &sub_vars, depth + 1)?;
        for section in ["services", "networks", "volumes", "secrets", "configs"] {
            let Some(Value::Mapping(theirs)) = sub.get(section) else {
                continue;
            };
            let ours = top
                .entry(section.into())
                .or_insert_with(|| Value::Mapping(Mapping::new()));
            if ours.is_null() {
                *ours = Value::Mapping(Mapping::new());
            }
            let Value::Mapping(ours) = ours else { continue };
            for (k, v) in theirs {
                if ours.contains_key(k) {
                    return Err(ComposeError::IncludeConflict {
                        path: first.clone(),
                        what: "resource",
                        name: key_str(k),
                    });
                }
                ours.insert(k.clone(), v.clone());
            }
        }
    }
    Ok(())
}

/// Replaces every service that `extends` another by the other merged with it.
fn resolve_extends(top: &mut Mapping, file: &Path, vars: &Vars, depth: usize) -> Result<()> {
    let Some(Value::Mapping(services)) = top.get("services").cloned() else {
        return Ok(());
    };
    let mut done = Mapping::new();
    for (name, _) in services.iter() {
        let mut stack = Vec::new();
        let svc = extended(&services, &key_str(name), file, vars, depth, &mut stack)?;
        done.insert(name.clone(), svc);
    }
    top.insert("services".into(), Value::Mapping(done));
    Ok(())
}

fn extended(
    services: &Mapping,
    name: &str,
    file: &Path,
    vars: &Vars,
    depth: usize,
    stack: &mut Vec<String>,
) -> Result<Value> {
    let key = format!("{}:{name}", file.display());
    if stack.contains(&key) {
        stack.push(key);
        return Err(ComposeError::ExtendsCycle {
            chain: stack.join(" -> "),
        });
    }
    stack.push(key);
    let Some(Value::Mapping(svc)) = services.get(name).map(untag) else {
        return Err(ComposeError::ExtendsUnknown {
            service: stack.first().cloned().unwrap_or_default(),
            target: name.into(),
            path: file.to_path_buf(),
        });
    };
    let mut svc = svc.clone();
    let Some(ext) = svc.remove("extends") else {
        stack.pop();
        return Ok(Value::Mapping(svc));
    };
    let (target, other) = match untag(&ext) {
        Value::String(s) => (s.clone(), None),
        Value::Mapping(m) => (
            m.get("service")
                .and_then(yaml::scalar_str)
                .unwrap_or_default(),
            m.get("file").and_then(yaml::scalar_str),
        ),
        _ => {
            return Err(ComposeError::Invalid {
                path: file.to_path_buf(),
                field: format!("services.{name}.extends"),
                message: "must be a service name or a mapping".into(),
            })
        }
    };
    let mut base = match other {
        Some(f) => {
            let f = PathBuf::from(f);
            // Paths of the other file are relative to its own directory.
            let dir = f.parent().unwrap_or(Path::new("/")).to_path_buf();
            let theirs = load_file(&f, &dir, vars, depth + 1)?;
            let Some(Value::Mapping(their_services)) = theirs.get("services") else {
                return Err(ComposeError::ExtendsUnknown {
                    service: name.into(),
                    target,
                    path: f,
                });
            };
            match their_services.get(target.as_str()) {
                Some(v) => v.clone(),
                None => {
                    return Err(ComposeError::ExtendsUnknown {
                        service: name.into(),
                        target,
                        path: f,
                    })
                }
            }
        }
        None => {
            if !services.contains_key(target.as_str()) {
                return Err(ComposeError::ExtendsUnknown {
                    service: name.into(),
                    target,
                    path: file.to_path_buf(),
                });
            }
            extended(services, &target, file, vars, depth, stack)?
        }
    };
    let path = ["services".to_string(), name.to_string()];
    if let Value::Mapping(b) = &mut base {
        merge_mappings(b, svc, &path);
    }
    stack.pop();
    Ok(base)
}

/// Interpolated values are strings: those of fields the model has as numbers or booleans
/// become numbers and booleans again (`scale: ${N}`), as compose-go casts them.
fn coerce(m: &mut Mapping) {
    const BOOLS: [&str; 16] = [
        "read_only",
        "privileged",
        "init",
        "tty",
        "stdin_open",
        "external",
        "internal",
        "attachable",
        "enable_ipv6",
        "required",
        "restart",
        "oom_kill_disable",
        "disable",
        "create_host_path",
        "nocopy",
        "attach",
    ];
    const INTS: [&str; 14] = [
        "scale",
        "replicas",
        "retries",
        "target",
        "cpu_shares",
        "pids_limit",
        "oom_score_adj",
        "soft",
        "hard",
        "pids",
        "max_attempts",
        "mode",
        "priority",
        "gw_priority",
    ];
    // Maps of free-form strings are left alone.
    const FREE: [&str; 9] = [
        "environment",
        "labels",
        "args",
        "annotations",
        "sysctls",
        "driver_opts",
        "options",
        "extra_hosts",
        "command",
    ];
    for (k, v) in m.iter_mut() {
        let key = key_str(k);
        if FREE.contains(&key.as_str()) {
            continue;
        }
        let v = yaml::untag_mut(v);
        match v {
            Value::String(s) if BOOLS.contains(&key.as_str()) => {
                if let Ok(b) = s.parse::<bool>() {
                    *v = Value::Bool(b);
                }
            }
            Value::String(s) if INTS.contains(&key.as_str()) => {
                if let Ok(n) = s.parse::<i64>() {
                    *v = Value::Number(n.into());
                }
            }
            Value::Mapping(sub) => coerce(sub),
            Value::Sequence(items) => {
                for item in items {
                    if let Value::Mapping(sub) = yaml::untag_mut(item) {
                        coerce(sub);
                    }
                }
            }
            _ => {}
        }
    }
}

/// The merged mapping as the typed model; a wrong key or type names its path.
fn typed(merged: Mapping, files: &[PathBuf]) -> Result<Project> {
    let file = files.first().cloned().unwrap_or_default();
    let de = Value::Mapping(merged);
    serde_path_to_error::deserialize::<_, Project>(de).map_err(|e| {
        let field = e.path().to_string();
        let message = e.into_inner().to_string();
        // serde lists every key the struct knows after an unknown one: too long to read.
        let message = match message.split_once(", expected one of") {
            Some((m, _)) if m.starts_with("unknown field") => m.to_string(),
            _ => message,
        };
        ComposeError::Invalid {
            path: file,
            field,
            message,
        }
    })
}
