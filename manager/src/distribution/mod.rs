//! The registry client (OCI distribution spec): connection and auth in `client`, and the two
//! directions, `pull` and `push`.

pub mod challenge;
pub mod client;
pub mod pull;
pub mod push;

use std::io;
use std::path::PathBuf;

use oci_spec::image::Digest;
use reqwest::StatusCode;

use crate::content::ContentError;
use crate::credentials::CredentialsError;
use crate::image::ImageError;
use crate::manifest::ManifestError;
use crate::reference::ReferenceError;

#[derive(Debug, thiserror::Error)]
pub enum DistributionError {
    #[error("cannot reach registry {registry}")]
    Connect {
        registry: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("request to registry {registry} failed")]
    Request {
        registry: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("building the HTTP client")]
    Client {
        #[source]
        source: reqwest::Error,
    },
    #[error("reading CA certificate {path}")]
    ReadCa {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("parsing CA certificate {path}")]
    ParseCa {
        path: PathBuf,
        #[source]
        source: reqwest::Error,
    },
    #[error("registry {registry} sent 401 without a usable WWW-Authenticate challenge")]
    NoChallenge { registry: String },
    #[error("requesting a token for {registry} from {realm}")]
    Token {
        registry: String,
        realm: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("token server {realm} for {registry} returned no token")]
    EmptyToken { registry: String, realm: String },
    #[error("unauthorized: wrong username or password for {registry}")]
    BadCredentials { registry: String },
    #[error("unauthorized: authentication required for {registry} (run `berth login {registry}`)")]
    AuthRequired { registry: String },
    #[error("access to {what} on {registry} denied")]
    Denied { registry: String, what: String },
    #[error("{reference}: not found: manifest unknown")]
    ManifestNotFound { reference: String },
    #[error("blob {digest} not found in {repository}")]
    BlobNotFound { repository: String, digest: Digest },
    #[error("registry {registry}: {what}: unexpected status {status}: {message}")]
    Status {
        registry: String,
        what: String,
        status: StatusCode,
        message: String,
    },
    #[error("manifest {reference} is {size} bytes, over the {limit}-byte limit")]
    ManifestTooLarge {
        reference: String,
        size: u64,
        limit: u64,
    },
    #[error("manifest for {reference} has digest {actual}, not the requested {expected}")]
    ManifestDigest {
        reference: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("image {reference} was found but does not match the specified platform: wanted {wanted}, actual: {actual}")]
    PlatformMismatch {
        reference: String,
        wanted: String,
        actual: String,
    },
    #[error("downloading blob {digest}")]
    Download {
        digest: Digest,
        #[source]
        source: reqwest::Error,
    },
    #[error("registry answered a range request for blob {digest} from byte {wanted} with {got:?}")]
    BadRange {
        digest: Digest,
        wanted: u64,
        got: String,
    },
    #[error("registry did not return an upload location for {repository}")]
    NoLocation { repository: String },
    #[error("opening blob {digest} for upload")]
    OpenBlob {
        digest: Digest,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Content(#[from] ContentError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    #[error("pulling {reference} failed, and cleaning up its blobs failed too: {cleanup}")]
    Cleanup {
        reference: String,
        cleanup: Box<ImageError>,
        #[source]
        source: Box<DistributionError>,
    },
}

/// Attempts for requests that restart from scratch: enough for a short outage.
const RETRY_ATTEMPTS: u32 = 4;

/// Runs a request again after transient failures (connection errors, 5xx, 429); for
/// manifests and uploads, which restart from scratch (blob downloads resume instead).
pub(crate) async fn retrying<T, Fut>(
    mut attempt: impl FnMut() -> Fut,
) -> Result<T, DistributionError>
where
    Fut: std::future::Future<Output = Result<T, DistributionError>>,
{
    let mut backoff = pull::FIRST_BACKOFF;
    let mut tries = 1;
    loop {
        match attempt().await {
            Err(e) if e.is_retryable() && tries < RETRY_ATTEMPTS => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(pull::MAX_BACKOFF);
                tries += 1;
            }
            done => return done,
        }
    }
}

impl DistributionError {
    /// Transient failures that a retry (resuming where it stopped) can fix.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Download { .. } | Self::Request { .. } => true,
            Self::Status { status, .. } => {
                status.is_server_error() || *status == StatusCode::TOO_MANY_REQUESTS
            }
            _ => false,
        }
    }
}
