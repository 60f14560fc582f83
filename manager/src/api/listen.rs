//! Where the service listens: a unix socket (mode 0660, owned by root and the `berth`
//! group when there is one: access to it equals root), or TCP, which is served only with
//! TLS and verified client certificates unless plain TCP is asked for explicitly.

use std::fs;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

/// The default socket, as podman's `system service` has its own beside docker's.
pub const DEFAULT_SOCKET: &str = "/run/berth/berth.sock";

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("invalid listen address {uri:?}: use unix:///PATH or tcp://HOST:PORT")]
    BadUri { uri: String },
    #[error("resolving {addr}")]
    Resolve {
        addr: String,
        #[source]
        source: io::Error,
    },
    #[error("{path} is in use by a running service")]
    InUse { path: PathBuf },
    #[error("{what} {path}")]
    Socket {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("binding {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("tcp://{addr} needs TLS (--tlscacert, --tlscert, --tlskey) or --insecure-tcp")]
    TcpWithoutTls { addr: SocketAddr },
    #[error("TLS needs all of --tlscacert, --tlscert and --tlskey")]
    TlsIncomplete,
    #[error("reading {what} {path}")]
    Pem {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("{path}: no certificate found")]
    NoCertificate { path: PathBuf },
    #[error("TLS configuration")]
    Tls(#[source] rustls::Error),
    #[error("client certificate verifier (--tlscacert)")]
    Verifier(#[source] rustls::server::VerifierBuilderError),
}

/// A listen address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

impl Endpoint {
    /// `unix:///path` or `tcp://host:port`.
    pub fn parse(uri: &str) -> Result<Self, ListenError> {
        let bad = || ListenError::BadUri { uri: uri.into() };
        if let Some(path) = uri.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(bad());
            }
            return Ok(Endpoint::Unix(PathBuf::from(path)));
        }
        if let Some(addr) = uri.strip_prefix("tcp://") {
            let addr = addr.trim_end_matches('/');
            if !addr.contains(':') {
                return Err(bad());
            }
            let mut addrs = addr
                .to_socket_addrs()
                .map_err(|source| ListenError::Resolve {
                    addr: addr.into(),
                    source,
                })?;
            return addrs.next().ok_or_else(bad).map(Endpoint::Tcp);
        }
        Err(bad())
    }

    pub fn default_unix() -> Self {
        Endpoint::Unix(PathBuf::from(DEFAULT_SOCKET))
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "unix://{}", p.display()),
            Endpoint::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

/// The PEM files of a TLS listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// CA certificates that sign the accepted client certificates.
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Binds the unix socket: a stale socket file (nobody answers) is replaced, a live one is
/// an error; then mode 0660 and the `berth` group. The socket is made under the default
/// umask (022), which already keeps others from connecting (connect(2) needs write
/// permission) until the chmod.
pub fn bind_unix(path: &Path) -> Result<std::os::unix::net::UnixListener, ListenError> {
    let sock_err = |what: &'static str| {
        let path = path.to_path_buf();
        move |source| ListenError::Socket { what, path, source }
    };
    if let Some(dir) = path.parent() {
        if !dir.exists() {
            fs::create_dir_all(dir).map_err(sock_err("creating the directory of"))?;
        }
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(ListenError::InUse { path: path.into() });
        }
        fs::remove_file(path).map_err(sock_err("removing the stale socket"))?;
    }
    let listener =
        std::os::unix::net::UnixListener::bind(path).map_err(sock_err("binding the socket"))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o660))
        .map_err(sock_err("setting the mode of"))?;
    // Root's socket belongs to root and the `berth` group; a rootless one stays the user's.
    if !crate::ops::system::is_rootless() {
        let group = nix::unistd::Group::from_name("berth").ok().flatten();
        nix::unistd::chown(
            path,
            Some(nix::unistd::Uid::from_raw(0)),
            group.map(|g| g.gid),
        )
        .map_err(|e| sock_err("changing the owner of")(io::Error::from(e)))?;
    }
    listener
        .set_nonblocking(true)
        .map_err(sock_err("configuring"))?;
    Ok(listener)
}

/// The TLS server configuration: our certificate and key, and client certificates
/// required and verified against the CA file (docker's `--tlsverify`).
pub fn tls_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, ListenError> {
    let certs = read_certs(&files.cert, "certificate")?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|source| ListenError::Pem {
        what: "key",
        path: files.key.clone(),
        source,
    })?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in read_certs(&files.ca, "CA certificate")? {
        roots.add(ca).map_err(ListenError::Tls)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(ListenError::Verifier)?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(ListenError::Tls)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(ListenError::Tls)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read_certs(
    path: &Path,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, ListenError> {
    let pem = |source| ListenError::Pem {
        what,
        path: path.to_path_buf(),
        source,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(pem)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem)?;
    if certs.is_empty() {
        return Err(ListenError::NoCertificate { path: path.into() });
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_uris_parse_and_bad_ones_are_named() {
        assert_eq!(
            Endpoint::parse("unix:///run/x.sock").unwrap(),
            Endpoint::Unix("/run/x.sock".into())
        );
        assert_eq!(
            Endpoint::parse("tcp://127.0.0.1:2376").unwrap(),
            Endpoint::Tcp("127.0.0.1:2376".parse().unwrap())
        );
        for bad in [
            "unix://rel.sock",
            "tcp://127.0.0.1",
            "http://x:1",
            "/run/x.sock",
        ] {
            let e = Endpoint::parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
    }
}
