//! Pull: resolve the manifest (choosing a platform from an index), then fetch the config and
//! layers concurrently into the content store, each streamed to an ingest file while hashed,
//! resumed with a Range request when a retry follows a broken transfer, and committed only
//! once size and digest match. The image record is written last; a failed pull removes the
//! blobs it committed that nothing references.

use std::collections::HashMap;
use std::str::FromStr;
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
use crate::progress::{BlobProgress, BlobState, Progress};
use crate::reference::Reference;
use crate::snapshot::{chain_id, Kind as SnapshotKind, Snapshotter};
use crate::unpack::stream::{Progress as StreamProgress, Tail};
use crate::unpack::unpack_layer_from;

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
/// Pulls `reference` into `store` and records it. With `unpack`, each layer is also unpacked
/// into that snapshotter while it downloads (see [`stream_unpack`]); what that could not do
/// is left to the caller's `unpack_image`, which skips the layers already committed.
pub async fn pull(
    store: &ImageStore,
    reg: Arc<Registry>,
    reference: &Reference,
    opts: &PullOptions,
    progress: &Progress,
    unpack: Option<Arc<dyn Snapshotter>>,
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
        let blobs: Vec<Descriptor> = parsed.layers().to_vec();
        // The config first (small): its diffIDs let layers unpack while they download, and
        // for a single-platform image it says which platform it is, checked before
        // downloading layers that cannot be used.
        let config = vec![parsed.config().clone()];
        fetch_blobs(
            store.content(),
            &reg,
            repo,
            config,
            1,
            progress,
            &mut fresh,
            &HashMap::new(),
        )
        .await?;
        if opts.explicit_platform && index.is_none() {
            check_platform(
                store.content(),
                parsed.config().digest(),
                &display,
                &opts.platform,
            )?;
        }
        let feeds: HashMap<Digest, Arc<StreamProgress>> = blobs
            .iter()
            .map(|d| (d.digest().clone(), StreamProgress::new()))
            .collect();
        let unpacker = match &unpack {
            Some(sn) => stream_unpack(store, parsed.config().digest(), &blobs, &feeds, sn.clone()),
            None => None,
        };
        let fetched = fetch_blobs(
            store.content(),
            &reg,
            repo,
            blobs,
            opts.concurrency,
            progress,
            &mut fresh,
            &feeds,
        )
        .await;
        if fetched.is_err() {
            // Transfers that were cancelled never said so: release their readers.
            for f in feeds.values() {
                f.fail();
            }
        }
        if let Some(u) = unpacker {
            // Its failures are not the pull's: the caller's unpack_image redoes what is missing.
            let _ = tokio::task::spawn_blocking(move || u.join()).await;
        }
        fetched
    }
    .await;
    match result {
        Ok(()) => {
            let mut record =
                ImageRecord::new(Some(reference), image.digest.clone(), &image.media_type);
            record.index_digest = index.map(|i| i.digest);
            record.repo_digest = Some(record.index_digest.clone().unwrap_or(image.digest.clone()));
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
// The transfer's inputs and its three outputs (progress bars, fresh digests, reader feeds).
#[allow(clippy::too_many_arguments)]
async fn fetch_blobs(
    content: &ContentStore,
    reg: &Arc<Registry>,
    repo: &str,
    blobs: Vec<Descriptor>,
    concurrency: usize,
    progress: &Progress,
    fresh: &mut Vec<Digest>,
    feeds: &HashMap<Digest, Arc<StreamProgress>>,
) -> Result<()> {
    let semaphore = Arc::new(Semaphore::new(concurrency));
    let mut tasks = JoinSet::new();
    for desc in blobs {
        let bar = progress.blob(desc.digest(), desc.size());
        bar.state(BlobState::Waiting);
        let (content, reg, repo, semaphore) = (
            content.clone(),
            reg.clone(),
            repo.to_string(),
            semaphore.clone(),
        );
        let feed = feeds.get(desc.digest()).cloned();
        tasks.spawn(async move {
            let _permit = semaphore.acquire_owned().await;
            let digest = desc.digest().clone();
            let result = fetch_blob(&content, &reg, &repo, &desc, &bar, feed.as_deref()).await;
            if let Some(f) = &feed {
                match &result {
                    Ok(_) => f.finish(),
                    Err(_) => f.fail(),
                }
            }
            result.map(|new| new.then_some(digest))
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
    feed: Option<&StreamProgress>,
) -> Result<bool> {
    let Some(mut ingest) = content.ingest(desc.digest()).await? else {
        bar.state(BlobState::AlreadyExists);
        return Ok(false);
    };
    let mut backoff = FIRST_BACKOFF;
    let mut attempt = 1;
    loop {
        match download(reg, repo, desc, &mut ingest, bar, feed).await {
            Ok(()) => break,
            Err(e) if e.is_retryable() && attempt < BLOB_ATTEMPTS => {
                ingest.flush()?;
                bar.state(BlobState::Retrying {
                    after_ms: backoff.as_millis(),
                    error: chain(&e),
                });
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
    bar.state(BlobState::VerifyingChecksum);
    ingest.commit(Some(desc.size()))?;
    bar.state(BlobState::PullComplete);
    Ok(true)
}

/// One transfer attempt, continuing from what the ingest already holds.
async fn download(
    reg: &Registry,
    repo: &str,
    desc: &Descriptor,
    ingest: &mut Ingest,
    bar: &BlobProgress,
    feed: Option<&StreamProgress>,
) -> Result<()> {
    let digest = desc.digest();
    let size = desc.size();
    // A reset voids what a reader of the ingest consumed.
    let reset = |ingest: &mut Ingest| -> Result<()> {
        if let Some(f) = feed {
            f.restart();
        }
        ingest.reset()?;
        Ok(())
    };
    if ingest.offset() > size {
        reset(ingest)?;
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
                bar.state(BlobState::RangeIgnored);
                reset(ingest)?;
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
            bar.state(BlobState::Resuming { offset });
        }
        StatusCode::RANGE_NOT_SATISFIABLE => {
            reset(ingest)?;
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
    bar.state(BlobState::Downloading);
    bar.set_position(ingest.offset());
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|source| DistributionError::Download {
            digest: digest.clone(),
            source,
        })?;
        ingest.write(&chunk)?;
        if let Some(f) = feed {
            // The reader may only see bytes that reached the file.
            ingest.flush()?;
            f.advance(ingest.offset());
        }
        bar.inc(chunk.len() as u64);
    }
    Ok(())
}

/// Starts a thread that unpacks `layers` bottom-up into `sn` as they download: each layer is
/// read from its ingest file behind the download ([`Tail`]), or from the content store when
/// the blob is already there. It stops at the first problem (a restarted or failed download,
/// a layer that does not match its diffID); the caller's `unpack_image` finishes the job.
fn stream_unpack(
    store: &ImageStore,
    config: &Digest,
    layers: &[Descriptor],
    feeds: &HashMap<Digest, Arc<StreamProgress>>,
    sn: Arc<dyn Snapshotter>,
) -> Option<std::thread::JoinHandle<()>> {
    let bytes = store.content().read_metadata(config).ok()?;
    let config: oci_spec::image::ImageConfiguration = serde_json::from_slice(&bytes).ok()?;
    let diff_ids: Vec<Digest> = config
        .rootfs()
        .diff_ids()
        .iter()
        .map(|d| Digest::from_str(d))
        .collect::<std::result::Result<_, _>>()
        .ok()?;
    if diff_ids.len() != layers.len() {
        return None;
    }
    let plan: Vec<(Digest, Digest, Arc<StreamProgress>)> = layers
        .iter()
        .zip(diff_ids)
        .filter_map(|(l, d)| Some((l.digest().clone(), d, feeds.get(l.digest())?.clone())))
        .collect();
    let content = store.content().clone();
    let store = store.clone();
    Some(std::thread::spawn(move || {
        let mut parent: Option<Digest> = None;
        for (blob, diff, feed) in plan {
            let chain = chain_id(parent.as_ref(), &diff);
            let done = sn
                .stat(chain.as_ref())
                .is_ok_and(|i| i.kind == SnapshotKind::Committed);
            if !done {
                let Some(reader) = open_layer(&content, &blob, &feed) else {
                    return;
                };
                let reader = std::io::BufReader::with_capacity(1 << 20, reader);
                match unpack_layer_from(&*sn, reader, &blob, &diff, parent.as_ref()) {
                    Ok((_, bytes)) => store.record_layer_sizes(&[(blob.clone(), bytes)]),
                    Err(_) => return,
                }
            }
            parent = Some(chain);
        }
    }))
}

/// The bytes of a layer: the committed blob, or its ingest followed while it downloads.
/// `None` once the download failed without the blob arriving.
fn open_layer(
    content: &ContentStore,
    blob: &Digest,
    feed: &Arc<StreamProgress>,
) -> Option<Box<dyn std::io::Read + Send>> {
    loop {
        if let Ok(f) = content.open_blob(blob) {
            return Some(Box::new(f));
        }
        if let Ok(t) = Tail::open(&content.ingest_path(blob), feed.clone()) {
            return Some(Box::new(t));
        }
        if feed.has_ended() && !content.contains(blob) {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
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
