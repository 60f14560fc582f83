//! The operations layer: every manager operation as a library function on an [`Engine`]
//! (the store handle), for every front end (the CLI, the Engine API service, compose,
//! build).
//!
//! ```text
//!   front ends: cli/ (flags → request)   api/ (JSON → request)   compose/   build/
//!                          │  typed requests (models: docker's Config, HostConfig, ...)
//!                          ▼
//!   ops: containers, images, networks, volumes   →  typed results, OpsError (class → status)
//!        progress into a sink the caller picks; Cancel tokens for long operations
//!                          ▼
//!   distribution, content, image, unpack, snapshot, specgen, container, network, volume, logs
//! ```
//!
//! A front end translates its input into a request from [`models`], calls an operation and
//! renders the typed result (or [`OpsError`], whose [`OpsError::class`] is docker's error
//! class). Operations never print: progress goes to a [`ProgressSink`] the caller passes
//! (renderers are in [`crate::render`]), and what undoing a failure reported travels with
//! the error ([`OpsError::also`]).
//!
//! Container, network and volume operations are synchronous (files, locks and short runtime
//! calls); registry operations are async. An async server calls the synchronous ones through
//! [`blocking::run`] and turns blocking streams into channels with [`blocking::stream`]
//! ([`Engine`] is cheap to clone and `Send`); a synchronous CLI drives the async ones on a
//! runtime of its own. Long operations take a [`Cancel`] token.

pub mod blocking;
pub mod cancel;
pub mod compose;
pub mod containers;
pub mod error;
pub mod images;
pub mod kube;
pub mod models;
pub mod networks;
pub mod parse;
pub mod system;
pub mod volumes;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

pub use crate::progress::{BlobState, ChannelSink, Discard, Event, Progress, ProgressSink};
pub use cancel::Cancel;
pub use error::{ErrorClass, OpsError, Result};

use crate::config::Settings;
use crate::container::ContainerStore;
use crate::image::ImageStore;

/// Where the engine keeps its state and how it reaches registries; `None` fields take the
/// config file's value, then berth's default.
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    /// The storage root (`--root`, `$BERTH_ROOT`).
    pub root: Option<PathBuf>,
    /// The directory of config.toml and certs.d (`--config-dir`).
    pub config_dir: Option<PathBuf>,
    /// Layers downloaded at once by a pull.
    pub max_concurrent_downloads: Option<usize>,
    /// The `berth` binary whose `__monitor` command watches each container; the running
    /// executable when `None` (set it when the operations run in another program).
    pub berth_binary: Option<PathBuf>,
}

/// The handle every operation runs on: the settings and the stores under one root, opened
/// on first use. Clones share the stores.
#[derive(Debug, Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    settings: Settings,
    berth_binary: Option<PathBuf>,
    images: OnceLock<ImageStore>,
}

impl Engine {
    /// Reads the configuration (config.toml) and prepares the engine; no store is opened yet.
    pub fn open(opts: EngineOptions) -> Result<Self> {
        let settings = Settings::load(opts.root, opts.config_dir, opts.max_concurrent_downloads)?;
        Ok(Self::new(settings, opts.berth_binary))
    }

    pub fn with_settings(settings: Settings) -> Self {
        Self::new(settings, None)
    }

    fn new(settings: Settings, berth_binary: Option<PathBuf>) -> Self {
        Self {
            inner: Arc::new(Inner {
                settings,
                berth_binary,
                images: OnceLock::new(),
            }),
        }
    }

    /// Where docker's `config.json` (registry credentials) is read and written.
    pub fn docker_config_dir(&self) -> &Path {
        &self.inner.settings.docker_config_dir
    }

    /// The storage root.
    pub fn root(&self) -> &Path {
        &self.inner.settings.root
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The binary that runs container monitors (`berth __monitor`).
    pub(crate) fn berth_binary(&self) -> Result<PathBuf> {
        match &self.inner.berth_binary {
            Some(p) => Ok(p.clone()),
            None => std::env::current_exe()
                .map_err(|e| OpsError::io("finding the berth binary (/proc/self/exe)", e)),
        }
    }

    /// The image store (blobs, records), opened on first use.
    pub(crate) fn images(&self) -> Result<&ImageStore> {
        if let Some(s) = self.inner.images.get() {
            return Ok(s);
        }
        let store = ImageStore::open(self.root())?;
        Ok(self.inner.images.get_or_init(|| store))
    }

    pub(crate) fn containers(&self) -> Result<ContainerStore> {
        Ok(ContainerStore::open(self.root())?)
    }
}
