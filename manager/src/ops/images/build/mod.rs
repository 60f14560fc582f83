//! `berth build` / `POST /build`: a Dockerfile into an image in the store, step by step as
//! docker's builder does it, each step cached (see `state`). Only the stages the target
//! needs are built. RUN steps are containers (see `steps`); the result is an OCI image
//! with docker's history, tagged as asked.

mod copy_layer;
mod dispatch;
mod export;
mod gitsrc;
mod history;
mod layer;
mod mounts;
mod remote;
mod state;
mod steps;
mod vertex;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::json;

use crate::build::args::{platform_args, BuildArgs};
use crate::build::commands::{self, Command, Plan};
use crate::build::context::{read_optional, Context};
use crate::build::expand::Lexer;
use crate::build::ignore::Ignore;
use crate::build::{parser, BuildError};
use crate::image::{ImageRecord, ImageStore};
use crate::ops::error::{OpsError, Result};
use crate::ops::{Cancel, Engine, Progress};
use crate::platform::Platform;
use crate::progress::VertexChange;
use crate::reference::Reference;
use crate::snapshot::{Backend, Snapshotter};

pub(crate) use copy_layer::write_step_layer;
pub use export::export_local;
pub use history::{history, HistoryItem};
use state::{Cache, State};

/// What to build (docker's build options).
#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    /// The context directory.
    pub context: PathBuf,
    /// The Dockerfile: relative to the context (or absolute); `Dockerfile` when `None`.
    pub dockerfile: Option<PathBuf>,
    /// The Dockerfile's text when it does not come from a file (`-f -`).
    pub dockerfile_text: Option<String>,
    pub tags: Vec<String>,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub no_cache: bool,
    pub pull: bool,
    pub labels: BTreeMap<String, String>,
    /// The network of RUN steps (`default`, `none`, `host`, a network name).
    pub network: Option<String>,
    pub runtime: Option<String>,
    /// `--secret id=ID,src=FILE`: files RUN steps may mount (`--mount=type=secret`).
    pub secrets: BTreeMap<String, PathBuf>,
    /// `-o type=image,compression=zstd`: the layers the build made are stored
    /// zstd-compressed (`tar+zstd`); gzip otherwise.
    pub zstd: bool,
    /// `force-compression=true`: the base image's layers are recompressed too (with
    /// `zstd`); BuildKit keeps them as they were pulled otherwise.
    pub force_compression: bool,
    /// `--platform`: the platform built for (FROM images of it, RUN steps under the kernel's
    /// binfmt_misc emulation when it is not the host's); the host's when `None`.
    pub platform: Option<String>,
}

/// The built image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildResult {
    /// `sha256:<config digest>`.
    pub id: String,
    pub tags: Vec<String>,
    pub warnings: Vec<String>,
}

/// A stage built beside others: its index, result and the build args it consumed.
type StageDone = (usize, (State, String), BTreeSet<String>);

/// What executes one build.
pub(crate) struct Builder<'a> {
    engine: &'a Engine,
    store: &'a ImageStore,
    sn: Box<dyn Snapshotter>,
    cache: Cache,
    ctx: Context,
    file: String,
    lex: Lexer,
    req: &'a BuildRequest,
    progress: &'a Progress,
    cancel: &'a Cancel,
    args: BuildArgs,
    globals: Vec<(String, String)>,
    /// The platform built for: `--platform`, or the host's.
    target: Platform,
    /// The line of the step being run (for errors).
    line: usize,
    step_no: usize,
    total: usize,
    /// Set while stages are built at once: every output line starts with the stage's name.
    prefix: Option<String>,
    /// The unfinished line of prefixed output.
    pending: std::sync::Mutex<String>,
    /// The numbering of the stage being built, for vertex names.
    stage: vertex::StageName,
    /// The step being built, as a vertex.
    track: vertex::Track,
}

/// Runs the build. Progress is docker's classic output (`Step 1/3 : ...`, ` ---> id`),
/// RUN output passed through.
pub fn build(
    engine: &Engine,
    req: &BuildRequest,
    progress: &Progress,
    cancel: &Cancel,
) -> Result<BuildResult> {
    let tags: Vec<Reference> = req
        .tags
        .iter()
        .map(|t| {
            let r = Reference::parse(t)?;
            Ok(if r.tag().is_none() && r.digest().is_none() {
                r.with_tag("latest")?
            } else {
                r
            })
        })
        .collect::<Result<_>>()?;
    let context = std::fs::canonicalize(&req.context).map_err(|source| BuildError::Context {
        path: req.context.clone(),
        source,
    })?;
    let df_path = match &req.dockerfile {
        Some(p) if p.is_absolute() => p.clone(),
        Some(p) => context.join(p),
        None => context.join("Dockerfile"),
    };
    let file = req
        .dockerfile
        .as_ref()
        .map_or("Dockerfile".to_string(), |p| p.display().to_string());
    let text = match &req.dockerfile_text {
        Some(t) => t.clone(),
        None => read_optional(&df_path)?.ok_or_else(|| BuildError::Context {
            path: df_path.clone(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        })?,
    };
    // `<Dockerfile>.dockerignore` beside the Dockerfile wins over the context's.
    let own_ignore = PathBuf::from(format!("{}.dockerignore", df_path.display()));
    let (ignore_name, ignore_text) = match read_optional(&own_ignore)? {
        Some(t) if req.dockerfile_text.is_none() => (own_ignore.display().to_string(), Some(t)),
        _ => (
            ".dockerignore".to_string(),
            read_optional(&context.join(".dockerignore"))?,
        ),
    };
    let ignore = match ignore_text {
        Some(t) => Ignore::parse(&ignore_name, &t)?,
        None => Ignore::default(),
    };
    let df = parser::parse(&file, &text)?;
    let plan = commands::plan(&file, &df)?;
    let store = engine.images()?;
    // Overlay where it can be mounted; else (rootless berth, a kernel without overlayfs)
    // the copy snapshotter, each RUN step's layer found by comparing trees (`copy_layer`).
    let backend = Backend::detect();
    let sn = backend.open(engine.root())?;
    layer::sweep(engine.root(), &*sn);
    let host = Platform::host();
    let target = match req.platform.as_deref().filter(|p| !p.is_empty()) {
        Some(p) if p.contains(',') => {
            return Err(OpsError::SeveralPlatforms {
                value: p.to_string(),
            })
        }
        Some(p) => p.parse().map_err(OpsError::Platform)?,
        None => host.clone(),
    };
    let mut b = Builder {
        engine,
        store,
        sn,
        cache: Cache::open(engine.root()),
        ctx: Context::new(context, ignore),
        file,
        lex: Lexer { escape: df.escape },
        req,
        progress,
        cancel,
        args: BuildArgs::new(req.build_args.clone(), platform_args(&target, &host)),
        globals: Vec::new(),
        target,
        line: 0,
        step_no: 0,
        total: 0,
        prefix: None,
        pending: Default::default(),
        stage: Default::default(),
        track: Default::default(),
    };
    // BuildKit's first vertex: the Dockerfile read and parsed (done above).
    let definition: std::sync::Arc<str> =
        std::sync::Arc::from(format!("[internal] load build definition from {}", b.file));
    progress.vertex(1, &definition, VertexChange::Started);
    progress.vertex(1, &definition, VertexChange::Done);
    b.globals = b.global_args(&plan)?;
    let target = match &req.target {
        None => plan.stages.len() - 1,
        Some(t) => plan
            .stages
            .iter()
            .position(|s| s.alias.as_deref() == Some(t.to_ascii_lowercase().as_str()))
            .ok_or_else(|| BuildError::NoTarget { target: t.clone() })?,
    };
    let needed = b.needed(&plan, target)?;
    b.total = needed.iter().map(|&i| plan.stages[i].steps.len() + 1).sum();
    // Every step to come is a vertex (numbered as `announce` will: step N is N + 1), then
    // the export.
    // (Their names come when they start.)
    let unnamed: std::sync::Arc<str> = std::sync::Arc::from("");
    for index in 2..b.total + 3 {
        progress.vertex(index, &unnamed, VertexChange::Planned);
    }
    let mut results = b.build_stages(&plan, &needed)?;
    let Some((mut state, _)) = results[target].take() else {
        return Err(BuildError::NoTarget {
            target: req.target.clone().unwrap_or_default(),
        }
        .into());
    };
    if !req.labels.is_empty() {
        let mut labels = state
            .config
            .get("config")
            .and_then(|c| c.get("Labels"))
            .and_then(|l| l.as_object())
            .cloned()
            .unwrap_or_default();
        for (k, v) in &req.labels {
            labels.insert(k.clone(), json!(v));
        }
        state.cfg().insert("Labels".into(), json!(labels));
    }
    let _adding = store.adding()?;
    if req.zstd {
        let keep = if req.force_compression {
            0
        } else {
            state.base_layers
        };
        state.layers = layer::to_zstd(store, &state.layers, keep)?;
    }
    // BuildKit's last vertex: the image written and named.
    let exporting: std::sync::Arc<str> = std::sync::Arc::from("exporting to image");
    let export_no = b.total + 2;
    progress.vertex(export_no, &exporting, VertexChange::Started);
    let id = write_image(store, &state, &tags).inspect_err(|e| {
        progress.vertex(export_no, &exporting, VertexChange::Error(e.to_string()));
    })?;
    progress.vertex(
        export_no,
        &exporting,
        VertexChange::Status(format!("writing image {id}")),
    );
    for t in &tags {
        progress.vertex(
            export_no,
            &exporting,
            VertexChange::Status(format!("naming to {t}")),
        );
    }
    progress.vertex(export_no, &exporting, VertexChange::Done);
    let mut warnings = Vec::new();
    let unused = b.args.unused();
    if !unused.is_empty() {
        let w = format!(
            "[Warning] One or more build-args [{}] were not consumed",
            unused.join(" ")
        );
        progress.stream(&format!("{w}\n"));
        warnings.push(w);
    }
    progress.stream(&format!("Successfully built {}\n", &id[7..19]));
    let mut tagged = Vec::new();
    for t in &tags {
        progress.stream(&format!("Successfully tagged {}\n", t.familiar()));
        tagged.push(t.familiar());
    }
    Ok(BuildResult {
        id,
        tags: tagged,
        warnings,
    })
}

/// Stores the config and manifest and names the image.
fn write_image(store: &ImageStore, state: &State, tags: &[Reference]) -> Result<String> {
    let _adding = store.adding()?;
    let config = serde_json::to_vec(&state.config)
        .map_err(|e| BuildError::io("encoding the image config", std::io::Error::other(e)))?;
    let config_digest = crate::content::sha256_of(&config);
    store.content().write_bytes(&config_digest, &config)?;
    let layers: Vec<_> = state
        .layers
        .iter()
        .map(|l| json!({"mediaType": l.media_type, "digest": l.digest.to_string(), "size": l.size}))
        .collect();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": crate::manifest::OCI_MANIFEST,
        "config": {
            "mediaType": crate::manifest::OCI_CONFIG,
            "digest": config_digest.to_string(),
            "size": config.len(),
        },
        "layers": layers,
    }))
    .map_err(|e| BuildError::io("encoding the manifest", std::io::Error::other(e)))?;
    let manifest_digest = crate::content::sha256_of(&manifest);
    store.content().write_bytes(&manifest_digest, &manifest)?;
    if tags.is_empty() {
        store.put(ImageRecord::new(
            None,
            manifest_digest.clone(),
            crate::manifest::OCI_MANIFEST,
        ))?;
    }
    for t in tags {
        store.put(ImageRecord::new(
            Some(t),
            manifest_digest.clone(),
            crate::manifest::OCI_MANIFEST,
        ))?;
    }
    Ok(config_digest.to_string())
}

impl Builder<'_> {
    /// The global ARGs with their values (build args override defaults).
    fn global_args(&mut self, plan: &Plan) -> Result<Vec<(String, String)>> {
        let mut out: Vec<(String, String)> = Vec::new();
        for (name, default) in &plan.global_args {
            let vars: Vec<(String, String)> = self
                .args
                .platform
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .chain(out.iter().cloned())
                .collect();
            let default = default
                .as_deref()
                .map(|d| self.lex.word(d, &vars))
                .transpose()?;
            if let Some(v) = self.args.resolve(name, default, &out) {
                out.push((name.clone(), v));
            }
        }
        Ok(out)
    }

    /// Expands a FROM argument with the global and platform ARGs.
    fn base_name(&self, base: &str) -> Result<String> {
        let vars: Vec<(String, String)> = self
            .args
            .platform
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .chain(self.globals.iter().cloned())
            .collect();
        Ok(self.lex.word(base, &vars)?)
    }

    /// The stage an argument (`FROM x`, `--from=x`) names, by alias or index.
    fn stage_ref(plan: &Plan, before: usize, name: &str) -> Option<usize> {
        let lower = name.to_ascii_lowercase();
        if let Some(i) = plan.stages[..before]
            .iter()
            .position(|s| s.alias.as_deref() == Some(lower.as_str()))
        {
            return Some(i);
        }
        name.parse::<usize>().ok().filter(|i| *i < before)
    }

    /// The earlier stages stage `i` uses: its base, `COPY --from`, `RUN --mount=from=`.
    fn deps(&self, plan: &Plan, i: usize) -> Result<Vec<usize>> {
        let s = &plan.stages[i];
        let mut out = Vec::new();
        if let Some(j) = Self::stage_ref(plan, i, &self.base_name(&s.base)?) {
            out.push(j);
        }
        for step in &s.steps {
            let froms: Vec<String> = match &step.command {
                Command::Copy(c) => c.from.iter().cloned().collect(),
                Command::Run { mounts, .. } => mounts
                    .iter()
                    .flat_map(|m| m.split(','))
                    .filter_map(|kv| kv.strip_prefix("from="))
                    .map(str::to_string)
                    .collect(),
                _ => Vec::new(),
            };
            for f in froms {
                if let Some(j) = Self::stage_ref(plan, i, &self.base_name(&f)?) {
                    out.push(j);
                }
            }
        }
        Ok(out)
    }

    /// The stages `target` needs, in build order.
    fn needed(&self, plan: &Plan, target: usize) -> Result<Vec<usize>> {
        let mut need: BTreeSet<usize> = BTreeSet::new();
        let mut todo = vec![target];
        while let Some(i) = todo.pop() {
            if need.insert(i) {
                todo.extend(self.deps(plan, i)?);
            }
        }
        Ok(need.into_iter().collect())
    }

    /// Builds the `needed` stages: those whose stages are built run together (one thread
    /// each, as many as there are cores), their output lines prefixed with the stage's
    /// name; a failing stage cancels the others. Steps keep the numbers of a sequential
    /// build.
    fn build_stages(
        &mut self,
        plan: &Plan,
        needed: &[usize],
    ) -> Result<Vec<Option<(State, String)>>> {
        let mut results: Vec<Option<(State, String)>> = vec![None; plan.stages.len()];
        let mut deps = BTreeMap::new();
        let mut first_step = BTreeMap::new();
        let mut n = 0;
        for &i in needed {
            deps.insert(i, self.deps(plan, i)?);
            first_step.insert(i, n);
            n += plan.stages[i].steps.len() + 1;
        }
        let width = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut done: BTreeSet<usize> = BTreeSet::new();
        while done.len() < needed.len() {
            crate::ops::cancel::check(self.cancel)?;
            let ready: Vec<usize> = needed
                .iter()
                .copied()
                .filter(|i| !done.contains(i) && deps[i].iter().all(|d| done.contains(d)))
                .take(width)
                .collect();
            if ready.len() <= 1 {
                let Some(&i) = ready.first() else {
                    return Err(self.step_err("the stages depend on each other".into()));
                };
                self.step_no = first_step[&i];
                self.stage = Self::stage_name(plan, i);
                let built = self.build_stage(plan, i, &results);
                let built = built.inspect_err(|e| self.track.failed(self.progress, e))?;
                results[i] = Some(built);
                done.insert(i);
                continue;
            }
            let cancel = self.cancel.child_token();
            let this = &*self;
            let built = &results;
            let outcomes: Vec<Result<StageDone>> = std::thread::scope(|scope| {
                let handles: Vec<_> = ready
                    .iter()
                    .map(|&i| {
                        let cancel = &cancel;
                        let label = plan.stages[i]
                            .alias
                            .clone()
                            .unwrap_or_else(|| format!("stage-{i}"));
                        let step_no = first_step[&i];
                        scope.spawn(move || {
                            let mut w = this.worker(cancel, format!("[{label}] "), step_no)?;
                            w.stage = Self::stage_name(plan, i);
                            let r = w.build_stage(plan, i, built);
                            w.flush();
                            if let Err(e) = &r {
                                w.track.failed(w.progress, e);
                                cancel.cancel();
                            }
                            Ok((i, r?, w.args.used))
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| {
                            Err(BuildError::io(
                                "building a stage",
                                std::io::Error::other("the stage's thread panicked"),
                            )
                            .into())
                        })
                    })
                    .collect()
            });
            // The error of the stage that failed, not the cancellation it caused.
            let mut failed: Option<OpsError> = None;
            for o in outcomes {
                match o {
                    Ok((i, r, used)) => {
                        results[i] = Some(r);
                        done.insert(i);
                        self.args.used.extend(used);
                    }
                    Err(e) => {
                        if failed
                            .as_ref()
                            .is_none_or(|f| matches!(f, OpsError::Cancelled))
                        {
                            failed = Some(e);
                        }
                    }
                }
            }
            if let Some(e) = failed {
                return Err(e);
            }
        }
        Ok(results)
    }

    /// A builder of one stage built beside others.
    fn worker<'s>(
        &'s self,
        cancel: &'s Cancel,
        prefix: String,
        step_no: usize,
    ) -> Result<Builder<'s>> {
        let backend: Backend = self.sn.name().parse()?;
        Ok(Builder {
            engine: self.engine,
            store: self.store,
            sn: backend.open(self.engine.root())?,
            cache: Cache::open(self.engine.root()),
            ctx: self.ctx.clone(),
            file: self.file.clone(),
            lex: self.lex,
            req: self.req,
            progress: self.progress,
            cancel,
            args: self.args.clone(),
            globals: self.globals.clone(),
            target: self.target.clone(),
            line: 0,
            step_no,
            total: self.total,
            prefix: Some(prefix),
            pending: Default::default(),
            stage: Default::default(),
            track: Default::default(),
        })
    }

    /// How stage `i`'s steps are named: `[2/4]`, or `[builder 2/4]` when the Dockerfile
    /// has several stages (an unnamed one is `stage-N`).
    fn stage_name(plan: &Plan, i: usize) -> vertex::StageName {
        vertex::StageName {
            label: (plan.stages.len() > 1).then(|| {
                plan.stages[i]
                    .alias
                    .clone()
                    .unwrap_or_else(|| format!("stage-{i}"))
            }),
            step: 0,
            total: plan.stages[i].steps.len() + 1,
        }
    }

    /// Build output in docker's classic form, followed as vertices too.
    fn say(&self, text: &str) {
        self.track.said(self.progress, text);
        self.classic(text);
    }

    /// Classic output: as is, or line by line after the stage's prefix.
    fn classic(&self, text: &str) {
        let Some(prefix) = &self.prefix else {
            self.progress.stream(text);
            return;
        };
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.push_str(text);
        while let Some(n) = pending.find('\n') {
            let line: String = pending.drain(..=n).collect();
            self.progress.stream(&format!("{prefix}{line}"));
        }
    }

    /// Ends prefixed output (a last line without its newline).
    fn flush(&self) {
        let Some(prefix) = &self.prefix else { return };
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if !pending.is_empty() {
            self.progress
                .stream(&format!("{prefix}{}\n", std::mem::take(&mut *pending)));
        }
    }

    /// Prints the step header.
    fn announce(&mut self, original: &str) {
        self.step_no += 1;
        // Vertex #1 is the Dockerfile's loading: step N is vertex N + 1.
        let name = self.stage.next(original);
        self.track.start(self.progress, self.step_no + 1, name);
        self.classic(&format!(
            "Step {}/{} : {}\n",
            self.step_no, self.total, original
        ));
    }

    /// The platform of the store image `name`, when it is there.
    fn stored_platform(&self, name: &str) -> Option<Platform> {
        let rec = self.store.lookup(name).ok()?.remove(0);
        let info = self.store.image(&rec).ok()?;
        Some(Platform {
            os: info.config.os().to_string(),
            architecture: info.config.architecture().to_string(),
            variant: info.config.variant().clone().filter(|v| !v.is_empty()),
        })
    }

    /// The state of a store image of `platform` (pulled when missing, of another platform, or
    /// with `--pull`).
    fn image_state(&self, name: &str, platform: &Platform) -> Result<(State, String)> {
        let stored = self.stored_platform(name);
        let have = stored
            .as_ref()
            .is_some_and(|p| platform.matches(p).is_some());
        if !have || self.req.pull {
            let opts = crate::ops::images::PullOptions {
                reference: name.to_string(),
                all_tags: false,
                platform: Some(platform.to_string()),
                snapshotter: Some(self.sn.name().to_string()),
            };
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| OpsError::io("starting a runtime for the pull", e))?;
            let pulled = rt.block_on(crate::ops::images::pull(
                self.engine,
                &opts,
                &Progress::discard(),
                self.cancel,
            ));
            match (pulled, &stored) {
                (Ok(_), _) => {}
                (Err(_), Some(actual)) if !have => {
                    return Err(OpsError::PlatformMismatch {
                        image: name.to_string(),
                        wanted: platform.to_string(),
                        actual: actual.to_string(),
                    })
                }
                (Err(e), _) if !have => return Err(e),
                (Err(_), _) => {}
            }
        }
        let rec = self.store.lookup(name)?.remove(0);
        let info = self.store.image(&rec)?;
        let bytes = self.store.content().read_metadata(info.id())?;
        let config: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            BuildError::io("parsing the base image config", std::io::Error::other(e))
        })?;
        let diff_ids: Vec<String> = config["rootfs"]["diff_ids"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let layers: Vec<layer::Layer> = info
            .manifest
            .layers()
            .iter()
            .zip(diff_ids)
            .filter_map(|(l, d)| {
                Some(layer::Layer {
                    digest: l.digest().clone(),
                    size: l.size(),
                    diff_id: crate::image::parse_digest(&d)?,
                    media_type: l.media_type().to_string(),
                })
            })
            .collect();
        Ok((
            State {
                config,
                base_layers: layers.len(),
                layers,
                anchor: Some(info.id().to_string()),
                maintainer: None,
            },
            info.id().to_string(),
        ))
    }
}

/// A build context unpacked from a tar stream (`berth build -`, `POST /build`); the
/// directory is removed when this is dropped.
#[derive(Debug)]
pub struct TarContext {
    pub dir: PathBuf,
    /// Set when the stream was not a tar but a Dockerfile (`docker build - < Dockerfile`).
    pub dockerfile_text: Option<String>,
}

impl Drop for TarContext {
    fn drop(&mut self) {
        // Best effort: a leftover directory is swept by the next build.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Unpacks a context tar (plain or gzip) into a scratch directory under the root.
pub fn context_from_tar(engine: &Engine, mut input: impl std::io::Read) -> Result<TarContext> {
    use std::io::Read;
    let dir = layer::scratch_dir(engine.root(), "context")?;
    let mut ctx = TarContext {
        dir,
        dockerfile_text: None,
    };
    let mut head = Vec::with_capacity(512);
    (&mut input)
        .take(512)
        .read_to_end(&mut head)
        .map_err(|e| BuildError::io("reading the build context", e))?;
    let stream = std::io::Cursor::new(head.clone()).chain(input);
    let gz = head.starts_with(&[0x1f, 0x8b]);
    let tar = head.len() >= 262 && &head[257..262] == b"ustar";
    if !gz && !tar && !head.is_empty() {
        let mut text = String::new();
        std::io::BufReader::new(stream)
            .read_to_string(&mut text)
            .map_err(|e| BuildError::io("reading the Dockerfile from stdin", e))?;
        ctx.dockerfile_text = Some(text);
        return Ok(ctx);
    }
    let reader: Box<dyn Read> = if gz {
        Box::new(flate2::read::MultiGzDecoder::new(stream))
    } else {
        Box::new(stream)
    };
    let mut ar = tar::Archive::new(reader);
    ar.set_preserve_permissions(true);
    ar.set_overwrite(true);
    ar.unpack(&ctx.dir)
        .map_err(|e| BuildError::io("unpacking the build context", e))?;
    Ok(ctx)
}

/// The exit status of the RUN step that failed the build, if that is what failed it.
pub fn exit_code(e: &OpsError) -> Option<i32> {
    match e {
        OpsError::Build(b) => match **b {
            BuildError::RunFailed { code, .. } => Some(code),
            _ => None,
        },
        _ => None,
    }
}
