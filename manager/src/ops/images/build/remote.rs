//! ADD from a URL, as docker's builder does it: the file is downloaded (every build: its
//! content is the cache key), named after the URL's last path element (else the
//! `Content-Disposition` file name), mode 0600, its mtime the `Last-Modified` header's, and
//! never extracted. `--checksum=sha256:<hex>` is checked against the bytes.

use std::io::Write;
use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use sha2::{Digest as _, Sha256};

use crate::build::context::{Entry, EntryKind};
use crate::build::BuildError;
use crate::ops::error::{OpsError, Result};
use crate::ops::Cancel;

/// A scratch directory of downloads, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(root: &Path) -> Result<Self> {
        Ok(Self(super::layer::scratch_dir(root, "download")?))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Best effort: a leftover directory is swept by the next build.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether an ADD source is a URL (docker: `http://` or `https://`).
pub fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

fn step(message: String) -> OpsError {
    BuildError::Download(message).into()
}

/// The file name docker gives a download.
fn file_name(url: &reqwest::Url, disposition: Option<&str>) -> String {
    let path = url.path();
    if !path.is_empty() && !path.ends_with('/') {
        if let Some(base) = path.rsplit('/').next().filter(|b| !b.is_empty()) {
            return base.to_string();
        }
    }
    disposition
        .and_then(|d| {
            d.split(';').find_map(|p| {
                let (k, v) = p.trim().split_once('=')?;
                (k.trim().eq_ignore_ascii_case("filename")).then(|| v.trim().trim_matches('"'))
            })
        })
        .filter(|f| !f.is_empty() && !f.ends_with('/'))
        .and_then(|f| f.rsplit('/').next())
        .unwrap_or("")
        .to_string()
}

/// Downloads `url` into `dir`; `checksum` (`sha256:<hex>`) must match when given. The
/// entry's `dest` is the file name (empty when neither the URL nor the response names it).
pub fn download(url: &str, dir: &Path, checksum: Option<&str>, cancel: &Cancel) -> Result<Entry> {
    let want = match checksum {
        None => None,
        Some(c) => match c.strip_prefix("sha256:") {
            Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Some(hex.to_ascii_lowercase())
            }
            _ => {
                return Err(BuildError::Expand {
                    word: c.to_string(),
                    message: "invalid checksum digest format (want sha256:<64 hex digits>)".into(),
                }
                .into())
            }
        },
    };
    let parsed = reqwest::Url::parse(url).map_err(|e| step(format!("invalid URL {url}: {e}")))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| OpsError::io("starting a runtime for the download", e))?;
    let path = dir.join("download");
    let fetched = rt.block_on(async {
        let client = reqwest::Client::builder()
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| step(format!("failed to GET {url}: {e}")))?;
        let resp = client
            .get(parsed.clone())
            .send()
            .await
            .map_err(|e| step(format!("failed to GET {url}: {e}")))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(step(format!("failed to GET {url} with status {status}")));
        }
        let header = |name: reqwest::header::HeaderName| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let modified = header(reqwest::header::LAST_MODIFIED);
        let disposition = header(reqwest::header::CONTENT_DISPOSITION);
        let mut f = std::fs::File::create(&path)
            .map_err(|e| BuildError::io("writing a downloaded file", e))?;
        let mut hash = Sha256::new();
        let mut size = 0u64;
        let mut body = resp.bytes_stream();
        while let Some(chunk) = body.next().await {
            crate::ops::cancel::check(cancel)?;
            let chunk = chunk.map_err(|e| step(format!("failed to GET {url}: {e}")))?;
            hash.update(&chunk);
            size += chunk.len() as u64;
            f.write_all(&chunk)
                .map_err(|e| BuildError::io("writing a downloaded file", e))?;
        }
        Ok((modified, disposition, hex::encode(hash.finalize()), size))
    })?;
    let (modified, disposition, sha256, size) = fetched;
    if let Some(want) = want {
        if want != sha256 {
            return Err(step(format!(
                "digest mismatch for {url}: expected sha256:{want}, got sha256:{sha256}"
            )));
        }
    }
    // No Last-Modified (or one that does not parse): the epoch, as docker's builder.
    let mtime = modified
        .and_then(|m| httpdate::parse_http_date(&m).ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    Ok(Entry {
        dest: file_name(&parsed, disposition.as_deref()),
        source: Some(PathBuf::from(&path)),
        kind: EntryKind::File { size },
        mode: 0o600,
        uid: 0,
        gid: 0,
        mtime,
        data: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downloads_are_named_after_the_url_else_the_disposition() {
        let u = |s: &str| reqwest::Url::parse(s).unwrap();
        assert_eq!(file_name(&u("http://h/a/b.tar.gz?x=1"), None), "b.tar.gz");
        assert_eq!(file_name(&u("http://h/a/"), None), "");
        assert_eq!(
            file_name(&u("http://h/"), Some("attachment; filename=\"x.txt\"")),
            "x.txt"
        );
        assert_eq!(file_name(&u("http://h"), None), "");
    }
}
