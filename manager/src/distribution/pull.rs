//! Pull: resolve the manifest (choosing a platform from an index), then fetch the config and
//! layers concurrently into the content store, each streamed to an ingest file while hashed,
//! resumed with a Range request when a retry follows a broken transfer, and committed only
//! once size and digest match. The image record is written last; a failed pull removes the
//! blobs it committed that nothing references.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use oci_spec::image::{Descriptor, Digest};
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LINK, RANGE};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::client::{error_message, pull_scope, Registry};
use super::DistributionError;
use crate::content::{sha256_of, ContentStore, Ingest, MAX_METADATA_SIZE};
use crate::image::{ImageRecord, ImageStore};
use crate::manifest::{self, Kind, ACCEPT};
use crate::platform::Platform;
use crate::progress::{BlobProgress, Progress};
use crate::reference::Reference;

type Result<T, E = DistributionError> = std::result::Result<T, E>;

/// Attempts per blob; the pauses between them add up to about 15 s, long enough to ride out a
/// registry restart.
const BLOB_ATTEMPTS: u32 = 7;
pub(crate) const FIRST_BACKOFF: Duration = Duration::from_millis(250);
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(4);

#[derive(Debug, Clone)]
pub struct PullOptions {
    pub platform: Platform,
    /// The platform was asked for (`--platform`), not just the host's default.
    pub explicit_platform: bool,
    pub concurrency: usize,
}

#[derive(Debug)]
pub struct Pulled {
    pub record: ImageRecord,
    /// Whether any blob had to be downloaded.
    pub downloaded: bool,
    /// The digest the reference resolved to at the registry (the index's, for an index).
    pub resolved: Digest,
}

/// A manifest as fetched: exact bytes, media type and digest.
#[derive(Debug)]
pub struct FetchedManifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub kind: Kind,
    pub digest: Digest,
}

/// Fetches and classifies a manifest; `expected` is checked when the reference pins a digest.
pub async fn fetch_manifest(
    reg: &Registry,
    repo: &str,
    reference: &str,
    display: &str,
    expected: Option<&Digest>,
) -> Result<FetchedManifest> {
    let path = format!("/v2/{repo}/manifests/{reference}");
    let resp = reg
        .get(Method::GET, &[pull_scope(repo)], &path, Some(ACCEPT))
        .await?;
    match resp.status() {
        s if s.is_success() => {}
        StatusCode::NOT_FOUND => {
            return Err(DistributionError::ManifestNotFound {
                reference: display.to_string(),
            })
        }
        StatusCode::UNAUTHORIZED => return Err(reg.unauthorized()),
        StatusCode::FORBIDDEN => {
            return Err(DistributionError::Denied {
                registry: reg.name().to_string(),
                what: display.to_string(),
            })
        }
        status => {
            return Err(DistributionError::Status {
                registry: reg.name().to_string(),
                what: format!("manifest {display}"),
                status,
                message: error_message(resp).await,
            })
        }
    }
    let too_large = |size| DistributionError::ManifestTooLarge {
        reference: display.to_string(),
        size,
        limit: MAX_METADATA_SIZE,
    };
    if let Some(len) = header_u64(resp.headers(), CONTENT_LENGTH.as_str()) {
        if len > MAX_METADATA_SIZE {
            return Err(too_large(len));
        }
    }
    let content_type = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = resp
        .bytes()
        .await
        .map_err(|source| DistributionError::Request {
            registry: reg.name().to_string(),
            source,
        })?
        .to_vec();
    if bytes.len() as u64 > MAX_METADATA_SIZE {
        return Err(too_large(bytes.len() as u64));
    }
    let digest = sha256_of(&bytes);
    if let Some(expected) = expected {
        if *expected != digest {
            return Err(DistributionError::ManifestDigest {
                reference: display.to_string(),
                expected: expected.clone(),
                actual: digest,
            });
        }
    }
    let (kind, media_type) = manifest::classify(display, content_type.as_deref(), &bytes)?;
    Ok(FetchedManifest {
        bytes,
        media_type,
        kind,
        digest,
    })
}

/// Pulls `reference` into `store` and records it.
pub async fn pull(
    store: &ImageStore,
    reg: Arc<Registry>,
    reference: &Reference,
    opts: &PullOptions,
    progress: &Progress,
) -> Result<Pulled> {
    let repo = reference.repository();
    let display = reference.to_string();
    let pin = reference.manifest_reference();
    let top =
        super::retrying(|| fetch_manifest(&reg, repo, &pin, &display, reference.digest())).await?;
    let (index, image) = match top.kind {
        Kind::Image => (None, top),
        Kind::Index => {
            let index = manifest::parse_index(&display, &top.bytes)?;
            let chosen = manifest::select_platform(&display, &index, &opts.platform)?;
            let child_display = format!("{display} ({})", opts.platform);
            let child = super::retrying(|| {
                fetch_manifest(
                    &reg,
                    repo,
                    chosen.digest().as_ref(),
                    &child_display,
                    Some(chosen.digest()),
                )
            })
            .await?;
            if child.kind != Kind::Image {
                return Err(DistributionError::Manifest(
                    manifest::ManifestError::UnsupportedType {
                        reference: display,
                        media_type: child.media_type,
                    },
                ));
            }
            (Some(top), child)
        }
    };
    let parsed = manifest::parse_image(&display, &image.bytes)?;
    for layer in parsed.layers() {
        manifest::layer_compression(layer)?;
    }
    let resolved = index.as_ref().map_or(&image.digest, |i| &i.digest).clone();

    let adding = store.adding()?;
    let mut fresh: Vec<Digest> = Vec::new();
    let result = async {
        for m in index.iter().chain(std::iter::once(&image)) {
            if !store.content().contains(&m.digest) {
                store.content().write_bytes(&m.digest, &m.bytes)?;
                fresh.push(m.digest.clone());
            }
        }
        let mut blobs: Vec<Descriptor> = parsed.layers().to_vec();
        if opts.explicit_platform && index.is_none() {
            // A single-platform image: its config says which platform it is. Check before
            // downloading layers that cannot be used.
            let config = vec![parsed.config().clone()];
            fetch_blobs(store.content(), &reg, repo, config, 1, progress, &mut fresh).await?;
            check_platform(
                store.content(),
                parsed.config().digest(),
                &display,
                &opts.platform,
            )?;
        } else {
            blobs.insert(0, parsed.config().clone());
        }
        fetch_blobs(
            store.content(),
            &reg,
            repo,
            blobs,
            opts.concurrency,
            progress,
            &mut fresh,
        )
        .await
    }
    .await;
    match result {
        Ok(()) => {
            let mut record =
                ImageRecord::new(Some(reference), image.digest.clone(), &image.media_type);
            record.index_digest = index.map(|i| i.digest);
            store.put(record.clone())?;
            drop(adding);
            Ok(Pulled {
                downloaded: !fresh.is_empty(),
                record,
                resolved,
            })
        }
        Err(err) => {
            // Partial downloads are kept for a later resume only when the network failed; after
            // a fatal error (bad digest, denied, missing blob) they are of no use.
            let mut cleanup = Ok(());
            if !err.is_retryable() {
                for d in std::iter::once(parsed.config().digest())
                    .chain(parsed.layers().iter().map(|l| l.digest()))
                {
                    cleanup = cleanup.and(store.content().discard_ingest(d));
                }
            }
            drop(adding);
            // Committed blobs are correct but, with no record, garbage: collect them so a failed
            // pull leaves the store as it found it.
            let cleanup = cleanup
                .map_err(crate::image::ImageError::from)
                .and_then(|()| store.gc(Some(&fresh), false));
            match cleanup {
                Ok(_) => Err(err),
                Err(cleanup) => Err(DistributionError::Cleanup {
                    reference: display,
                    cleanup: Box::new(cleanup),
                    source: Box::new(err),
                }),
            }
        }
    }
}

#[derive(Deserialize)]
struct ConfigPlatform {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    variant: Option<String>,
}

/// Fails when the image config's platform is not the one asked for with `--platform`.
fn check_platform(
    content: &ContentStore,
    config: &Digest,
    reference: &str,
    want: &Platform,
) -> Result<()> {
    let bytes = content.read_metadata(config)?;
    let p: ConfigPlatform =
        serde_json::from_slice(&bytes).map_err(|source| manifest::ManifestError::Parse {
            reference: reference.to_string(),
            source,
        })?;
    let actual = Platform {
        os: p.os,
        architecture: p.architecture,
        variant: p.variant.filter(|v| !v.is_empty()),
    };
    if want.matches(&actual).is_none() {
        return Err(DistributionError::PlatformMismatch {
            reference: reference.to_string(),
            wanted: want.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(())
}

/// Fetches blobs with at most `concurrency` transfers at once; digests newly committed are
/// appended to `fresh`, also when another blob fails.
async fn fetch_blobs(
    content: &ContentStore,
    reg: &Arc<Registry>,
    repo: &str,
    blobs: Vec<Descriptor>,
    concurrency: usize,
    progress: &Progress,
    fresh: &mut Vec<Digest>,
) -> Result<()> {
    let semaphore = Arc::new(Semaphore::new(concurrency));
    let mut tasks = JoinSet::new();
    for desc in blobs {
        let bar = progress.blob(desc.digest(), desc.size());
        bar.message("Waiting");
        let (content, reg, repo, semaphore) = (
            content.clone(),
            reg.clone(),
            repo.to_string(),
            semaphore.clone(),
        );
        tasks.spawn(async move {
            let _permit = semaphore.acquire_owned().await;
            let digest = desc.digest().clone();
            fetch_blob(&content, &reg, &repo, &desc, &bar)
                .await
                .map(|new| new.then_some(digest))
        });
    }
    let mut first_err = None;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(Some(d))) => fresh.push(d),
            Ok(Ok(None)) => {}
            Ok(Err(e)) => {
                if first_err.is_none() {
                    first_err = Some(e);
                    // Stop the other transfers; their ingests stay resumable.
                    tasks.abort_all();
                }
            }
            Err(join) if join.is_cancelled() => {}
            Err(join) => std::panic::resume_unwind(join.into_panic()),
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// Downloads one blob unless present; `true` when this call committed it.
async fn fetch_blob(
    content: &ContentStore,
    reg: &Registry,
    repo: &str,
    desc: &Descriptor,
    bar: &BlobProgress,
) -> Result<bool> {
    let Some(mut ingest) = content.ingest(desc.digest()).await? else {
        bar.finish("Already exists");
        return Ok(false);
    };
    let mut backoff = FIRST_BACKOFF;
    let mut attempt = 1;
    loop {
        match download(reg, repo, desc, &mut ingest, bar).await {
            Ok(()) => break,
            Err(e) if e.is_retryable() && attempt < BLOB_ATTEMPTS => {
                ingest.flush()?;
                bar.message(&format!(
                    "Retrying in {} ms after error: {}",
                    backoff.as_millis(),
                    chain(&e)
                ));
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                attempt += 1;
            }
            Err(e) => {
                // Keep what arrived so that the next pull resumes it.
                ingest.flush()?;
                return Err(e);
            }
        }
    }
    bar.message("Verifying Checksum");
    ingest.commit(Some(desc.size()))?;
    bar.finish("Pull complete");
    Ok(true)
}

/// One transfer attempt, continuing from what the ingest already holds.
async fn download(
    reg: &Registry,
    repo: &str,
    desc: &Descriptor,
    ingest: &mut Ingest,
    bar: &BlobProgress,
) -> Result<()> {
    let digest = desc.digest();
    let size = desc.size();
    if ingest.offset() > size {
        ingest.reset()?;
    }
    let offset = ingest.offset();
    if offset == size && size > 0 {
        return Ok(());
    }
    let path = format!("/v2/{repo}/blobs/{digest}");
    let resp = reg
        .send(&[pull_scope(repo)], |c, base| {
            let rb = c.get(format!("{base}{path}"));
            Ok(if offset > 0 {
                rb.header(RANGE, format!("bytes={offset}-"))
            } else {
                rb
            })
        })
        .await?;
    match resp.status() {
        StatusCode::OK => {
            if offset > 0 {
                bar.message("Registry ignored the range; restarting");
                ingest.reset()?;
            }
        }
        StatusCode::PARTIAL_CONTENT => {
            let range = resp
                .headers()
                .get(CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !range.starts_with(&format!("bytes {offset}-")) {
                return Err(DistributionError::BadRange {
                    digest: digest.clone(),
                    wanted: offset,
                    got: range.to_string(),
                });
            }
            bar.message(&format!("Resuming download at byte {offset}"));
        }
        StatusCode::RANGE_NOT_SATISFIABLE => {
            ingest.reset()?;
            return Err(DistributionError::Status {
                registry: reg.name().to_string(),
                what: format!("blob {digest}"),
                status: StatusCode::RANGE_NOT_SATISFIABLE,
                message: "restarting from byte 0".into(),
            });
        }
        StatusCode::NOT_FOUND => {
            return Err(DistributionError::BlobNotFound {
                repository: repo.to_string(),
                digest: digest.clone(),
            })
        }
        StatusCode::UNAUTHORIZED => return Err(reg.unauthorized()),
        status => {
            return Err(DistributionError::Status {
                registry: reg.name().to_string(),
                what: format!("blob {digest}"),
                status,
                message: error_message(resp).await,
            })
        }
    }
    bar.message("Downloading");
    bar.set_position(ingest.offset());
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|source| DistributionError::Download {
            digest: digest.clone(),
            source,
        })?;
        ingest.write(&chunk)?;
        bar.inc(chunk.len() as u64);
    }
    Ok(())
}

#[derive(Deserialize)]
struct TagList {
    tags: Option<Vec<String>>,
}

/// Every tag of a repository, following `Link: <...>; rel="next"` pages.
pub async fn list_tags(reg: &Registry, repo: &str) -> Result<Vec<String>> {
    let mut path = format!("/v2/{repo}/tags/list");
    let mut tags = Vec::new();
    loop {
        let resp = reg
            .get(Method::GET, &[pull_scope(repo)], &path, None)
            .await?;
        match resp.status() {
            s if s.is_success() => {}
            StatusCode::UNAUTHORIZED => return Err(reg.unauthorized()),
            StatusCode::NOT_FOUND => {
                return Err(DistributionError::ManifestNotFound {
                    reference: format!("{}/{repo}", reg.name()),
                })
            }
            status => {
                return Err(DistributionError::Status {
                    registry: reg.name().to_string(),
                    what: format!("tags of {repo}"),
                    status,
                    message: error_message(resp).await,
                })
            }
        }
        let next = resp
            .headers()
            .get(LINK)
            .and_then(|v| v.to_str().ok())
            .and_then(next_link);
        let page: TagList = resp
            .json()
            .await
            .map_err(|source| DistributionError::Request {
                registry: reg.name().to_string(),
                source,
            })?;
        tags.extend(page.tags.unwrap_or_default());
        match next {
            Some(n) => path = n,
            None => return Ok(tags),
        }
    }
}

/// The path of a `rel="next"` link (`</v2/x/tags/list?last=a&n=1>; rel="next"`).
fn next_link(link: &str) -> Option<String> {
    let (target, params) = link.split_once(';')?;
    if !params.contains("rel=\"next\"") && !params.contains("rel=next") {
        return None;
    }
    let target = target.trim().trim_start_matches('<').trim_end_matches('>');
    Some(match target.find("/v2/") {
        Some(i) => target[i..].to_string(),
        None => target.to_string(),
    })
}

fn header_u64(headers: &reqwest::header::HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.parse().ok()
}

/// An error with its causes, on one line.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_link_is_reduced_to_its_path() {
        assert_eq!(
            next_link(r#"</v2/a/tags/list?last=b&n=2>; rel="next""#).as_deref(),
            Some("/v2/a/tags/list?last=b&n=2")
        );
        assert_eq!(
            next_link(r#"<https://r/v2/a/tags/list?n=1>; rel="next""#).as_deref(),
            Some("/v2/a/tags/list?n=1")
        );
        assert_eq!(next_link(r#"</x>; rel="prev""#), None);
    }
}
