//! The accept loop: connections served by hyper's HTTP/1 server with upgrades (for the
//! hijacked attach/exec streams), the idle timeout, draining on SIGTERM/SIGINT, and the
//! reaping of container monitors this process spawned.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio_util::task::TaskTracker;

use super::listen::{self, Endpoint, ListenError, TlsFiles};
use super::routes;
use super::state::AppState;
use crate::ops::{Cancel, Engine};

/// How long a stop waits for requests in progress before it exits anyway.
const DRAIN: Duration = Duration::from_secs(10);
/// A client has this long to send a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub endpoint: Endpoint,
    /// Exit after this long without a request in progress; `None` runs until signalled.
    pub idle: Option<Duration>,
    pub tls: Option<TlsFiles>,
    /// Serve TCP without TLS (anyone who can connect is root on this host).
    pub insecure_tcp: bool,
    /// Log every request on stderr.
    pub debug: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Listen(#[from] ListenError),
    #[error("accepting connections on {endpoint}")]
    Accept {
        endpoint: String,
        #[source]
        source: io::Error,
    },
    #[error("installing the signal handlers")]
    Signals(#[source] io::Error),
    #[error("TLS is only for tcp:// addresses")]
    TlsOnUnix,
}

enum Listener {
    Unix(UnixListener, std::path::PathBuf),
    Tcp(TcpListener, Option<tokio_rustls::TlsAcceptor>),
}

/// Serves the API until SIGTERM/SIGINT or the idle timeout; then stops accepting, lets
/// requests in progress finish (at most [`DRAIN`]), removes the socket and returns.
/// Containers keep running: their monitors do not depend on the service. `ready` is
/// called once the service accepts connections (e.g. to print where).
pub async fn serve(
    engine: Engine,
    opts: ServeOptions,
    ready: impl FnOnce(&Endpoint),
) -> Result<(), ServeError> {
    let listener = bind(&opts)?;
    let shutdown = Cancel::new();
    let state = Arc::new(AppState::new(engine, shutdown.clone(), opts.debug));
    spawn_signal_handler(shutdown.clone())?;
    if let Some(idle) = opts.idle {
        spawn_idle_watch(state.clone(), idle);
    }
    spawn_monitor_reaper(shutdown.clone());
    let app = routes::app(state.clone());
    let tracker = TaskTracker::new();
    ready(&opts.endpoint);
    let result = loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break Ok(()),
            a = accept(&listener) => a,
        };
        match accepted {
            Ok(Conn::Unix(s)) => {
                tracker.spawn(serve_conn(s, app.clone(), shutdown.clone()));
            }
            Ok(Conn::Tcp(s, tls)) => {
                let app = app.clone();
                let shutdown = shutdown.clone();
                tracker.spawn(async move {
                    match tls {
                        Some(acceptor) => {
                            // A failed handshake (no or a bad client certificate) just
                            // closes the connection.
                            if let Ok(Ok(s)) =
                                tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(s)).await
                            {
                                serve_conn(s, app, shutdown).await;
                            }
                        }
                        None => serve_conn(s, app, shutdown).await,
                    }
                });
            }
            // A client that went away between connect and accept; too many open files
            // passes once some connection closes.
            Err(e) if is_transient(&e) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(source) => {
                break Err(ServeError::Accept {
                    endpoint: opts.endpoint.to_string(),
                    source,
                })
            }
        }
    };
    shutdown.cancel();
    if let Listener::Unix(_, path) = &listener {
        let _ = std::fs::remove_file(path);
    }
    drop(listener);
    tracker.close();
    let _ = tokio::time::timeout(DRAIN, tracker.wait()).await;
    result
}

fn bind(opts: &ServeOptions) -> Result<Listener, ServeError> {
    match &opts.endpoint {
        Endpoint::Unix(path) => {
            if opts.tls.is_some() {
                return Err(ServeError::TlsOnUnix);
            }
            let std_listener = listen::bind_unix(path)?;
            let l = UnixListener::from_std(std_listener).map_err(|source| ListenError::Socket {
                what: "registering",
                path: path.clone(),
                source,
            })?;
            Ok(Listener::Unix(l, path.clone()))
        }
        Endpoint::Tcp(addr) => {
            let acceptor = match &opts.tls {
                Some(files) => Some(tokio_rustls::TlsAcceptor::from(listen::tls_config(files)?)),
                None if opts.insecure_tcp => None,
                None => return Err(ListenError::TcpWithoutTls { addr: *addr }.into()),
            };
            let std_listener = std::net::TcpListener::bind(addr)
                .and_then(|l| l.set_nonblocking(true).map(|()| l))
                .map_err(|source| ListenError::Bind {
                    addr: *addr,
                    source,
                })?;
            let l = TcpListener::from_std(std_listener).map_err(|source| ListenError::Bind {
                addr: *addr,
                source,
            })?;
            Ok(Listener::Tcp(l, acceptor))
        }
    }
}

enum Conn {
    Unix(tokio::net::UnixStream),
    Tcp(tokio::net::TcpStream, Option<tokio_rustls::TlsAcceptor>),
}

async fn accept(l: &Listener) -> io::Result<Conn> {
    match l {
        Listener::Unix(l, _) => Ok(Conn::Unix(l.accept().await?.0)),
        Listener::Tcp(l, tls) => {
            let (s, _) = l.accept().await?;
            let _ = s.set_nodelay(true);
            Ok(Conn::Tcp(s, tls.clone()))
        }
    }
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ECONNABORTED | libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::EINTR)
    )
}

/// One connection: HTTP/1 with keep-alive and upgrades; closed gracefully (after the
/// request in progress) when the service stops.
async fn serve_conn<S>(io: S, app: routes::App, shutdown: Cancel)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = TowerToHyperService::new(app);
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(io), svc)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(DRAIN, conn).await;
        }
    }
}

fn spawn_signal_handler(shutdown: Cancel) -> Result<(), ServeError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(ServeError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(ServeError::Signals)?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
            _ = shutdown.cancelled() => {}
        }
        shutdown.cancel();
    });
    Ok(())
}

/// Stops the service once nothing was in progress for `idle`.
fn spawn_idle_watch(state: Arc<AppState>, idle: Duration) {
    tokio::spawn(async move {
        loop {
            let since = state.activity.last().elapsed();
            if state.activity.active() == 0 && since >= idle {
                state.shutdown.cancel();
                return;
            }
            let wait = idle.saturating_sub(since).max(Duration::from_millis(100));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = state.shutdown.cancelled() => return,
            }
        }
    });
}

/// The monitors a start through this service spawned are its children; the ones whose
/// container is done exit and must be reaped, or a long-running service collects zombies.
/// Only zombies that are monitors (this same executable, so the same `comm`) are reaped:
/// the runtime and other helpers are waited for by the code that spawned them.
fn spawn_monitor_reaper(shutdown: Cancel) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.cancelled() => return,
            }
            let _ = tokio::task::spawn_blocking(reap_monitor_zombies).await;
        }
    });
}

fn reap_monitor_zombies() {
    use nix::sys::wait::{waitpid, WaitPidFlag};
    let me = std::process::id() as i32;
    let Ok(own) = procfs::process::Process::myself().and_then(|p| p.stat()) else {
        return;
    };
    let Ok(all) = procfs::process::all_processes() else {
        return;
    };
    for p in all.flatten() {
        let Ok(stat) = p.stat() else { continue };
        if stat.ppid == me && stat.state == 'Z' && stat.comm == own.comm {
            let _ = waitpid(
                nix::unistd::Pid::from_raw(stat.pid),
                Some(WaitPidFlag::WNOHANG),
            );
        }
    }
}
