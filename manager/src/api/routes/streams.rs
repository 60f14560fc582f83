//! Hijacked streams (attach, exec start): the answer is `101 Switching Protocols` with
//! `Upgrade: tcp`, after which the connection carries the container's output (stdcopy
//! frames without a tty, raw with one) and the client's stdin, watched for the detach
//! keys. A client that did not ask for the upgrade gets the output as the body of a
//! `200` answer instead (and sends no stdin).

use std::fs::File;
use std::io::Write;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::api::frames::{frame, DetachKeys, DetachWatch, Input, StreamType};
use crate::ops::containers::AttachInput;
use crate::ops::Cancel;

/// A connection's byte stream, upgraded or the body of a plain answer.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// Whether the client asked to take the connection over (`Upgrade: tcp`).
fn wants_upgrade(req: &Request) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("tcp"))
}

/// Answers the request and hands the connection to `session` once it is the client's
/// and ours alone. `multiplexed` picks the media type of the stream.
pub fn hijack<F, Fut>(mut req: Request, multiplexed: bool, session: F) -> Response
where
    F: FnOnce(Box<dyn Io>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let media = if multiplexed {
        "application/vnd.docker.multiplexed-stream"
    } else {
        "application/vnd.docker.raw-stream"
    };
    if wants_upgrade(&req) {
        let on_upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(upgraded) = on_upgrade.await {
                session(Box::new(TokioIo::new(upgraded))).await;
            }
        });
        let mut r = StatusCode::SWITCHING_PROTOCOLS.into_response();
        let h = r.headers_mut();
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("tcp"));
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
        return r;
    }
    // No upgrade: the session writes into one end of a pipe whose other end is the body.
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    tokio::spawn(session(Box::new(ours)));
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(theirs));
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    r
}

/// What comes out of the container (or exec) for the client.
#[derive(Debug)]
pub enum Chunk {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    /// A message of the service, sent as a system frame (multiplexed streams only).
    System(String),
}

/// Where the client's stdin goes.
pub enum Sink {
    Attach(AttachInput),
    /// A pipe or a pty master, written on a blocking thread.
    File(Arc<File>),
}

impl Sink {
    async fn write(&self, data: Vec<u8>) -> bool {
        match self {
            Sink::Attach(input) => {
                let input = input.clone();
                matches!(
                    tokio::task::spawn_blocking(move || input.stdin(&data)).await,
                    Ok(Ok(()))
                )
            }
            Sink::File(f) => {
                let f = f.clone();
                matches!(
                    tokio::task::spawn_blocking(move || (&*f).write_all(&data)).await,
                    Ok(Ok(()))
                )
            }
        }
    }

    async fn close(self) {
        if let Sink::Attach(input) = self {
            let _ = tokio::task::spawn_blocking(move || input.close_stdin()).await;
        }
        // A pipe closes when the last handle is dropped.
    }
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The output ended (the process exited).
    Done,
    /// The client typed the detach keys.
    Detached,
    /// The client went away, or the service stops.
    Gone,
}

/// Moves output to the client and the client's input to `sink` until the output ends,
/// the client detaches or goes away, or `cancel` fires.
pub async fn pump(
    io: Box<dyn Io>,
    tty: bool,
    mut output: mpsc::Receiver<Chunk>,
    sink: Option<Sink>,
    keys: DetachKeys,
    cancel: Cancel,
) -> End {
    let (mut rd, mut wr) = tokio::io::split(io);
    let (in_end_tx, mut in_end) = mpsc::channel::<End>(1);
    let has_stdin = sink.is_some();
    let input = tokio::spawn(async move {
        let mut watch = DetachWatch::new(keys);
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match rd.read(&mut buf).await {
                // The client's input ended: docker's CLI half-closes its side when it has
                // no (more) stdin, and still reads the output. A client that is really
                // gone shows when the output cannot be written.
                Ok(0) | Err(_) => {
                    if let Some(s) = sink {
                        s.close().await;
                    }
                    return;
                }
                Ok(n) => {
                    let (data, detach) = match watch.feed(&buf[..n]) {
                        Input::Data(d) => (d, false),
                        Input::Detach(d) => (d, true),
                    };
                    if let Some(s) = &sink {
                        if !data.is_empty() && !s.write(data).await {
                            let _ = in_end_tx.send(End::Gone).await;
                            return;
                        }
                    }
                    if detach && has_stdin {
                        let _ = in_end_tx.send(End::Detached).await;
                        return;
                    }
                }
            }
        }
    });
    let mut input_open = true;
    let end = loop {
        let chunk = tokio::select! {
            c = output.recv() => c,
            e = in_end.recv(), if input_open => match e {
                Some(end) => break end,
                // The input ended quietly (see above): output goes on.
                None => {
                    input_open = false;
                    continue;
                }
            },
            _ = cancel.cancelled() => break End::Gone,
        };
        let bytes = match chunk {
            None => break End::Done,
            Some(Chunk::Stdout(d)) if tty => d,
            Some(Chunk::Stderr(d)) if tty => d,
            Some(Chunk::Stdout(d)) => frame(StreamType::Stdout, &d),
            Some(Chunk::Stderr(d)) => frame(StreamType::Stderr, &d),
            Some(Chunk::System(_)) if tty => continue,
            Some(Chunk::System(m)) => frame(StreamType::System, m.as_bytes()),
        };
        if wr.write_all(&bytes).await.is_err() || wr.flush().await.is_err() {
            break End::Gone;
        }
    };
    input.abort();
    let _ = wr.shutdown().await;
    end
}
