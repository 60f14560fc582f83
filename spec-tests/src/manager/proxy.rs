//! A throttling TCP proxy in front of a registry: slows blob transfers down enough that a test
//! can kill the registry mid-blob, and records what clients sent (to see `Range` headers).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Result;

pub struct Proxy {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    sent: Arc<Mutex<Vec<u8>>>,
}

/// Bytes forwarded to the client per pause, and the pause: about 3 MB/s.
const CHUNK: usize = 16 * 1024;
const PAUSE: Duration = Duration::from_millis(5);

impl Proxy {
    pub fn start(upstream_port: u16) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, sent) = (stop.clone(), sent.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((client, _)) => {
                            let (stop, sent) = (stop.clone(), sent.clone());
                            std::thread::spawn(move || serve(client, upstream_port, &stop, sent));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            })
        };
        Ok(Self {
            port,
            stop,
            thread: Some(thread),
            sent,
        })
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Everything clients sent, as text (request lines and headers).
    pub fn sent(&self) -> String {
        self.sent
            .lock()
            .map(|s| String::from_utf8_lossy(&s).into_owned())
            .unwrap_or_default()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            // The accept loop cannot panic in a way that matters for cleanup.
            let _ = t.join();
        }
    }
}

fn serve(client: TcpStream, upstream_port: u16, stop: &AtomicBool, sent: Arc<Mutex<Vec<u8>>>) {
    let Ok(upstream) = TcpStream::connect(("127.0.0.1", upstream_port)) else {
        // Registry down: the client sees its connection closed, as with a dead server.
        return;
    };
    let (Ok(mut c_read), Ok(mut u_write)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let mut c_write = client;
    let mut u_read = upstream;
    let up = std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match c_read.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if let Ok(mut s) = sent.lock() {
                        s.extend_from_slice(&buf[..n]);
                    }
                    if u_write.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        // The peer may already be gone; the connection is over either way.
        let _ = u_write.shutdown(Shutdown::Write);
    });
    let mut buf = vec![0u8; CHUNK];
    while !stop.load(Ordering::SeqCst) {
        match u_read.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if c_write.write_all(&buf[..n]).is_err() {
                    break;
                }
                std::thread::sleep(PAUSE);
            }
        }
    }
    // Either side may already be closed.
    let _ = c_write.shutdown(Shutdown::Both);
    let _ = u_read.shutdown(Shutdown::Both);
    let _ = up.join();
}
