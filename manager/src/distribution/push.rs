//! Push: every blob is checked for at the destination, mounted from another repository of the
//! same registry when a local image came from there, else uploaded (monolithic PUT streamed
//! from the store); then the manifest is put with its exact stored bytes, so its digest and
//! any signature over it stay valid.

use std::collections::HashMap;
use std::sync::Arc;

use oci_spec::image::{Descriptor, Digest};
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode};
use tokio::io::AsyncReadExt;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::client::{error_message, pull_scope, push_scope, Registry};
use super::DistributionError;
use crate::content::ContentStore;
use crate::image::{ImageRecord, ImageStore};
use crate::progress::{BlobProgress, BlobState, Progress};
use crate::reference::Reference;

type Result<T, E = DistributionError> = std::result::Result<T, E>;

const UPLOAD_CONCURRENCY: usize = 3;
/// Mount sources asked for per push: each needs a pull scope in the token.
const MAX_MOUNT_SOURCES: usize = 4;

/// How a blob got to the destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobOutcome {
    Existed,
    Mounted { from: String },
    Uploaded,
}

#[derive(Debug)]
pub struct Pushed {
    pub digest: Digest,
    pub size: u64,
    pub blobs: Vec<(Digest, BlobOutcome)>,
}

/// Pushes the image of `record` to `target` (which has a tag or a digest).
pub async fn push(
    store: &ImageStore,
    reg: Arc<Registry>,
    record: &ImageRecord,
    target: &Reference,
    progress: &Progress,
) -> Result<Pushed> {
    let info = store.image(record)?;
    let manifest_bytes = store.content().read_metadata(&record.digest)?;
    let repo = target.repository().to_string();
    let blobs: Vec<Descriptor> = std::iter::once(info.manifest.config().clone())
        .chain(info.manifest.layers().iter().cloned())
        .collect();
    let sources = mount_sources(store, target, &blobs)?;
    let mut scopes = vec![push_scope(&repo)];
    let mut source_repos: Vec<&String> = sources.values().flatten().collect();
    source_repos.sort();
    source_repos.dedup();
    scopes.extend(
        source_repos
            .into_iter()
            .take(MAX_MOUNT_SOURCES)
            .map(|r| pull_scope(r)),
    );
    let scopes = Arc::new(scopes);
    // Authenticate once, before the parallel uploads would each fetch the same token.
    reg.get(Method::GET, &scopes, "/v2/", None).await?;

    let semaphore = Arc::new(Semaphore::new(UPLOAD_CONCURRENCY));
    let mut tasks = JoinSet::new();
    for desc in blobs {
        let bar = progress.blob(desc.digest(), desc.size());
        bar.state(BlobState::Preparing);
        let from = sources.get(desc.digest()).cloned().unwrap_or_default();
        let (content, reg, repo, scopes, semaphore) = (
            store.content().clone(),
            reg.clone(),
            repo.clone(),
            scopes.clone(),
            semaphore.clone(),
        );
        tasks.spawn(async move {
            let _permit = semaphore.acquire_owned().await;
            let outcome =
                super::retrying(|| push_blob(&content, &reg, &repo, &scopes, &desc, &from, &bar))
                    .await?;
            Ok::<_, DistributionError>((desc.digest().clone(), outcome))
        });
    }
    let mut done = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(outcome)) => done.push(outcome),
            Ok(Err(e)) => return Err(e),
            Err(join) if join.is_cancelled() => {}
            Err(join) => std::panic::resume_unwind(join.into_panic()),
        }
    }

    let reference = target.manifest_reference();
    let path = format!("/v2/{repo}/manifests/{reference}");
    let resp = reg
        .send(&scopes, |c, base| {
            Ok(c.put(format!("{base}{path}"))
                .header(CONTENT_TYPE, record.media_type.as_str())
                .body(manifest_bytes.clone()))
        })
        .await?;
    check(&reg, resp, &format!("manifest {target}")).await?;
    Ok(Pushed {
        digest: record.digest.clone(),
        size: manifest_bytes.len() as u64,
        blobs: done,
    })
}

/// For each blob, other repositories on the destination registry that local images came from
/// and that contain it: candidates for a cross-repository mount.
fn mount_sources(
    store: &ImageStore,
    target: &Reference,
    blobs: &[Descriptor],
) -> Result<HashMap<Digest, Vec<String>>> {
    let mut out: HashMap<Digest, Vec<String>> = HashMap::new();
    for rec in store.records()? {
        let Some(r) = rec.reference() else { continue };
        if r.registry() != target.registry() || r.repository() == target.repository() {
            continue;
        }
        let Ok(info) = store.image(&rec) else {
            continue;
        };
        for b in blobs {
            if info.blobs().any(|d| d == b.digest()) {
                let list = out.entry(b.digest().clone()).or_default();
                if !list.iter().any(|x| x == r.repository()) {
                    list.push(r.repository().to_string());
                }
            }
        }
    }
    Ok(out)
}

async fn push_blob(
    content: &ContentStore,
    reg: &Registry,
    repo: &str,
    scopes: &[String],
    desc: &Descriptor,
    from: &[String],
    bar: &BlobProgress,
) -> Result<BlobOutcome> {
    let digest = desc.digest();
    let blob_path = format!("/v2/{repo}/blobs/{digest}");
    let head = reg.get(Method::HEAD, scopes, &blob_path, None).await?;
    match head.status() {
        s if s.is_success() => {
            bar.state(BlobState::LayerAlreadyExists);
            return Ok(BlobOutcome::Existed);
        }
        StatusCode::NOT_FOUND => {}
        StatusCode::UNAUTHORIZED => return Err(reg.unauthorized()),
        _ => {
            check(reg, head, &format!("blob {digest}")).await?;
        }
    }
    let mut location = None;
    for source in from.iter().take(MAX_MOUNT_SOURCES) {
        let path = format!("/v2/{repo}/blobs/uploads/?mount={digest}&from={source}");
        let resp = reg
            .send(scopes, |c, base| {
                Ok(c.post(format!("{base}{path}")).header(CONTENT_LENGTH, 0))
            })
            .await?;
        match resp.status() {
            StatusCode::CREATED => {
                bar.state(BlobState::MountedFrom {
                    repository: source.clone(),
                });
                return Ok(BlobOutcome::Mounted {
                    from: source.clone(),
                });
            }
            StatusCode::ACCEPTED => {
                // Mount refused but an upload session was opened: use it.
                location = Some(upload_location(reg, &resp, repo)?);
                break;
            }
            _ => {}
        }
    }
    let location = match location {
        Some(l) => l,
        None => {
            let path = format!("/v2/{repo}/blobs/uploads/");
            let resp = reg
                .send(scopes, |c, base| {
                    Ok(c.post(format!("{base}{path}")).header(CONTENT_LENGTH, 0))
                })
                .await?;
            let resp = check(reg, resp, &format!("upload to {repo}")).await?;
            upload_location(reg, &resp, repo)?
        }
    };
    bar.state(BlobState::Pushing);
    let sep = if location.contains('?') { '&' } else { '?' };
    let url = format!("{location}{sep}digest={digest}");
    let path = content.blob_path(digest);
    let size = desc.size();
    let resp = reg
        .send(scopes, |c, _| {
            let file =
                std::fs::File::open(&path).map_err(|source| DistributionError::OpenBlob {
                    digest: digest.clone(),
                    source,
                })?;
            bar.set_position(0);
            Ok(c.put(url.as_str())
                .header(CONTENT_TYPE, "application/octet-stream")
                .header(CONTENT_LENGTH, size)
                .body(counted_body(tokio::fs::File::from_std(file), bar.clone())))
        })
        .await?;
    check(reg, resp, &format!("blob {digest}")).await?;
    bar.state(BlobState::Pushed);
    Ok(BlobOutcome::Uploaded)
}

/// A streaming request body over a blob file that advances the blob's progress bar.
fn counted_body(file: tokio::fs::File, bar: BlobProgress) -> reqwest::Body {
    const CHUNK: usize = 256 * 1024;
    let stream = futures_util::stream::try_unfold((file, bar), |(mut file, bar)| async move {
        let mut buf = vec![0u8; CHUNK];
        let n = file.read(&mut buf).await?;
        if n == 0 {
            return Ok::<_, std::io::Error>(None);
        }
        buf.truncate(n);
        bar.inc(n as u64);
        Ok(Some((bytes::Bytes::from(buf), (file, bar))))
    });
    reqwest::Body::wrap_stream(stream)
}

/// The absolute upload URL from a `Location` header (registries may send a relative one).
fn upload_location(reg: &Registry, resp: &reqwest::Response, repo: &str) -> Result<String> {
    let loc = resp
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| DistributionError::NoLocation {
            repository: repo.to_string(),
        })?;
    if loc.starts_with("http://") || loc.starts_with("https://") {
        Ok(loc.to_string())
    } else {
        Ok(reg.url(loc))
    }
}

async fn check(reg: &Registry, resp: reqwest::Response, what: &str) -> Result<reqwest::Response> {
    match resp.status() {
        s if s.is_success() => Ok(resp),
        StatusCode::UNAUTHORIZED => Err(reg.unauthorized()),
        StatusCode::FORBIDDEN => Err(DistributionError::Denied {
            registry: reg.name().to_string(),
            what: what.to_string(),
        }),
        status => Err(DistributionError::Status {
            registry: reg.name().to_string(),
            what: what.to_string(),
            status,
            message: error_message(resp).await,
        }),
    }
}
