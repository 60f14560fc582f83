//! Registry operations: pull (unpacked into snapshots before it returns, so the image is
//! ready to run), push, login and logout. Async (the registry client is); progress goes to
//! the caller's sink and a [`Cancel`] token stops a transfer (ingests stay resumable).

use std::sync::Arc;

use crate::config::docker_config_file;
use crate::credentials::{Credentials, DockerConfig};
use crate::distribution::client::Registry;
use crate::distribution::pull::{list_tags, pull as pull_blobs, PullOptions as Fetch};
use crate::distribution::push::push as push_blobs;
use crate::ops::cancel::{until_cancelled, Cancel};
use crate::ops::error::{OpsError, Result};
use crate::ops::models::{AuthConfig, PulledImage, PushedImage};
use crate::ops::{Engine, Progress};
use crate::platform::Platform;
use crate::reference::{normalise_registry, Reference, DOCKER_HUB};
use crate::snapshot::{Backend, Snapshotter};
use crate::unpack::unpack_image;

/// Connects to a registry with the credentials docker's config.json holds for it.
async fn connect(
    engine: &Engine,
    registry: &str,
    auth: Option<&AuthConfig>,
) -> Result<Arc<Registry>> {
    let settings = engine.settings();
    let path = docker_config_file(&settings.docker_config_dir);
    // Credentials a client sent (X-Registry-Auth) win over the stored ones.
    let given = auth
        .filter(|a| !a.username.is_empty() || !a.password.is_empty())
        .map(|a| Credentials {
            username: a.username.clone(),
            password: a.password.clone(),
        });
    let creds = match given {
        Some(c) => Some(c),
        None => DockerConfig::load(&path)?.get(registry).map_err(|source| {
            OpsError::ReadCredentials {
                registry: registry.to_string(),
                source,
            }
        })?,
    };
    Ok(Arc::new(
        Registry::connect(registry, &settings.registries, creds).await?,
    ))
}

/// What to pull (docker's `fromImage`/`tag`/`platform`, and berth's snapshotter).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullOptions {
    /// `NAME[:TAG|@DIGEST]`; `:latest` when neither is given.
    pub reference: String,
    /// Every tag of the repository (the reference must not have one).
    pub all_tags: bool,
    /// `os/arch[/variant]` to select from a multi-platform image; the host's when `None`.
    pub platform: Option<String>,
    /// The snapshotter the layers are unpacked into; the kernel's best when `None`.
    pub snapshotter: Option<String>,
}

/// `POST /images/create?fromImage=`: pulls and unpacks the image(s); reports each reference
/// pulled.
pub async fn pull(
    engine: &Engine,
    opts: &PullOptions,
    progress: &Progress,
    cancel: &Cancel,
) -> Result<Vec<PulledImage>> {
    until_cancelled(cancel, pull_all(engine, opts, None, progress)).await
}

/// [`pull`] with the credentials a client sent (the API's `X-Registry-Auth`).
pub async fn pull_with_auth(
    engine: &Engine,
    opts: &PullOptions,
    auth: Option<&AuthConfig>,
    progress: &Progress,
    cancel: &Cancel,
) -> Result<Vec<PulledImage>> {
    until_cancelled(cancel, pull_all(engine, opts, auth, progress)).await
}

async fn pull_all(
    engine: &Engine,
    opts: &PullOptions,
    auth: Option<&AuthConfig>,
    progress: &Progress,
) -> Result<Vec<PulledImage>> {
    let platform = match &opts.platform {
        Some(p) => p.parse::<Platform>().map_err(OpsError::Platform)?,
        None => Platform::host(),
    };
    let name_only = Reference::parse_name_only(&opts.reference)?;
    let references = if opts.all_tags {
        if name_only.tag().is_some() || name_only.digest().is_some() {
            return Err(OpsError::TagWithAllTags);
        }
        let reg = connect(engine, name_only.registry(), auth).await?;
        let mut tags = list_tags(&reg, name_only.repository()).await?;
        tags.sort();
        tags.iter()
            .map(|t| name_only.with_tag(t))
            .collect::<Result<Vec<_>, _>>()?
    } else {
        if name_only.tag().is_none() && name_only.digest().is_none() {
            progress.status("Using default tag: latest");
        }
        vec![Reference::parse(&opts.reference)?]
    };
    let fetch = Fetch {
        platform,
        explicit_platform: opts.platform.is_some(),
        concurrency: engine.settings().registries.max_concurrent_downloads,
    };
    let reg = connect(engine, name_only.registry(), auth).await?;
    let backend = match &opts.snapshotter {
        Some(b) => b.parse::<Backend>().map_err(OpsError::Snapshotter)?,
        None => Backend::detect(),
    };
    let root = engine.root().to_path_buf();
    let store = engine.images()?.clone();
    let mut pulled = Vec::new();
    for reference in &references {
        let pin = reference
            .tag()
            .map_or_else(|| reference.manifest_reference(), str::to_string);
        progress.status_of(&pin, &format!("Pulling from {}", reference.repository()));
        let sn: Arc<dyn Snapshotter> = Arc::from(backend.open(&root)?);
        let got = pull_blobs(&store, reg.clone(), reference, &fetch, progress, Some(sn))
            .await
            .map_err(|e| OpsError::Pull {
                reference: reference.to_string(),
                source: Box::new(e.into()),
            })?;
        // Unpacked before the pull returns, as containerd does, so the image is ready to run.
        {
            let store = store.clone();
            let root = root.clone();
            let record = got.record.clone();
            let name = reference.to_string();
            tokio::task::spawn_blocking(move || -> Result<()> {
                let info = store.image(&record)?;
                let sn = backend.open(&root)?;
                unpack_image(&store, &info, &name, &*sn)?;
                Ok(())
            })
            .await
            .map_err(|source| OpsError::Task {
                what: "unpacking thread",
                source,
            })?
            .map_err(|e| OpsError::Unpack {
                reference: reference.to_string(),
                source: Box::new(e),
            })?;
        }
        progress.status(&format!("Digest: {}", got.resolved));
        let status = if got.downloaded {
            "Downloaded newer image"
        } else {
            "Image is up to date"
        };
        progress.status(&format!("Status: {status} for {reference}"));
        crate::events::emit(
            &root,
            "image",
            "pull",
            &reference.to_string(),
            &[("name", reference.name())],
        );
        pulled.push(PulledImage {
            reference: reference.to_string(),
            digest: got.resolved.to_string(),
            downloaded: got.downloaded,
        });
    }
    Ok(pulled)
}

/// `POST /images/{name}/push`: the image stored under `name` (every tag of its repository
/// with `all_tags`).
pub async fn push(
    engine: &Engine,
    name: &str,
    all_tags: bool,
    progress: &Progress,
    cancel: &Cancel,
) -> Result<Vec<PushedImage>> {
    until_cancelled(cancel, push_all(engine, name, all_tags, None, progress)).await
}

/// [`push`] with the credentials a client sent (the API's `X-Registry-Auth`).
pub async fn push_with_auth(
    engine: &Engine,
    name: &str,
    all_tags: bool,
    auth: Option<&AuthConfig>,
    progress: &Progress,
    cancel: &Cancel,
) -> Result<Vec<PushedImage>> {
    until_cancelled(cancel, push_all(engine, name, all_tags, auth, progress)).await
}

async fn push_all(
    engine: &Engine,
    name: &str,
    all_tags: bool,
    auth: Option<&AuthConfig>,
    progress: &Progress,
) -> Result<Vec<PushedImage>> {
    let name_only = Reference::parse_name_only(name)?;
    let store = engine.images()?.clone();
    let records = if all_tags {
        if name_only.tag().is_some() || name_only.digest().is_some() {
            return Err(OpsError::TagWithAllTags);
        }
        let mut recs: Vec<_> = store
            .records()?
            .into_iter()
            .filter(|r| {
                r.reference().is_some_and(|x| {
                    x.registry() == name_only.registry()
                        && x.repository() == name_only.repository()
                        && x.tag().is_some()
                })
            })
            .collect();
        recs.sort_by(|a, b| a.name.cmp(&b.name));
        if recs.is_empty() {
            return Err(OpsError::NoTagsToPush {
                name: name_only.name(),
            });
        }
        recs
    } else {
        let reference = Reference::parse(name)?;
        let full = reference.to_string();
        let rec = store
            .records()?
            .into_iter()
            .find(|r| r.name.as_deref() == Some(full.as_str()))
            .ok_or(OpsError::NothingToPush { name: full })?;
        vec![rec]
    };
    let reg = connect(engine, name_only.registry(), auth).await?;
    progress.status(&format!(
        "The push refers to repository [{}]",
        name_only.name()
    ));
    let mut pushed = Vec::new();
    for rec in records {
        let target = rec.reference().ok_or_else(|| OpsError::UnnamedRecord {
            name: rec.name.clone(),
        })?;
        let done = push_blobs(&store, reg.clone(), &rec, &target, progress)
            .await
            .map_err(|e| OpsError::Push {
                reference: target.to_string(),
                source: Box::new(e.into()),
            })?;
        if let Some(name) = &rec.name {
            store.set_repo_digest(name, &done.digest)?;
        }
        let pin = target.tag().unwrap_or("");
        progress.status(&format!(
            "{pin}: digest: {} size: {}",
            done.digest, done.size
        ));
        crate::events::emit(
            engine.root(),
            "image",
            "push",
            &target.to_string(),
            &[("name", target.name())],
        );
        pushed.push(PushedImage {
            reference: target.to_string(),
            digest: done.digest.to_string(),
            size: done.size,
        });
    }
    Ok(pushed)
}

/// `POST /auth`: checks the credentials with the registry and stores them in docker's
/// config.json (or its credential helper). Without credentials, the stored ones are checked
/// again (as `docker login` does). Returns the registry's normalised name.
pub async fn login(
    engine: &Engine,
    server: Option<&str>,
    username: Option<String>,
    password: Option<String>,
) -> Result<String> {
    let registry = normalise_registry(server.unwrap_or(DOCKER_HUB));
    let path = docker_config_file(&engine.settings().docker_config_dir);
    let mut config = DockerConfig::load(&path)?;
    let creds = match (username, password) {
        (Some(username), Some(password)) => Credentials { username, password },
        (None, None) => match config.get(&registry)? {
            Some(c) => c,
            None => return Err(OpsError::NoCredentials),
        },
        (None, Some(_)) => return Err(OpsError::NoUsername),
        (Some(_), None) => return Err(OpsError::NoCredentials),
    };
    if creds.password.is_empty() {
        return Err(OpsError::EmptyPassword { registry });
    }
    let failed = |e| OpsError::Login {
        registry: registry.clone(),
        source: Box::new(e),
    };
    let reg = Registry::connect(
        &registry,
        &engine.settings().registries,
        Some(creds.clone()),
    )
    .await
    .map_err(failed)?;
    reg.check_login().await.map_err(failed)?;
    config.store(&registry, &creds)?;
    Ok(registry)
}

/// Forgets the credentials of a registry: its normalised name, and whether there were
/// any.
pub fn logout(engine: &Engine, server: Option<&str>) -> Result<(String, bool)> {
    let registry = normalise_registry(server.unwrap_or(DOCKER_HUB));
    let path = docker_config_file(&engine.settings().docker_config_dir);
    let mut config = DockerConfig::load(&path)?;
    let erased = config.erase(&registry)?;
    Ok((registry, erased))
}
