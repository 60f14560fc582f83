//! The parent (create) ⇄ init (container) synchronisation protocol.
//!
//! Messages travel over a SOCK_SEQPACKET socketpair, so each send is one message and a closed
//! peer reads as end-of-file. One byte of tag, then an optional UTF-8 payload.
//!
//! ```text
//!   parent (create)                               init (child)
//!   clone3 ───────────────────────────────────►  joins/unshares namespaces, mounts (*)
//!   mkdir the cgroups, write the limits
//!   CgroupReady ──────────────────────────────►  (waited for before a cgroup mount)
//!   cgroup.procs, uid_map/gid_map                 devices, masks, pivot_root (*)
//!   Continue ─────────────────────────────────►  waits for Continue before any hook
//!                    ◄────────────────────────── RuntimeHooks   (only when prestart or
//!   run prestart + createRuntime hooks                             createRuntime hooks exist)
//!   HooksDone ────────────────────────────────►  createContainer hooks, scheduler,
//!                                                 seccomp, process setup
//!                    ◄────────────────────────── Ready | Error(message)
//!   write state.json and pid file, exit           blocks opening exec.fifo until `start`
//!
//!   (*) in parallel with the parent's cgroup work, whose first cgroup.procs write can wait
//!       for an RCU grace period (see init.rs). On a cgroup v2 host the directory is made
//!       before clone3 and the init is born in it (CLONE_INTO_CGROUP): no cgroup.procs write. The init waits for CgroupReady only to mount
//!       the cgroup directories and for Continue before the first thing that must happen
//!       inside the cgroup (init.rs, CgroupJoin); with a new user or cgroup namespace it
//!       waits for both first (Plan::child_waits_first).
//! ```

use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{recv, send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("sync socket: {op}")]
    Socket {
        op: &'static str,
        #[source]
        source: Errno,
    },
    #[error("sync socket: peer closed the connection while we waited for {expected}")]
    Closed { expected: &'static str },
    #[error("sync socket: got message {got:?} while waiting for {expected}")]
    Unexpected {
        got: Message,
        expected: &'static str,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// The container's cgroup directories exist (the init may bind-mount them).
    CgroupReady,
    Continue,
    RuntimeHooks,
    HooksDone,
    Ready,
    Error(String),
}

impl Message {
    fn encode(&self) -> Vec<u8> {
        match self {
            Message::Continue => vec![1],
            Message::RuntimeHooks => vec![2],
            Message::HooksDone => vec![3],
            Message::Ready => vec![4],
            Message::CgroupReady => vec![6],
            Message::Error(m) => {
                let mut v = vec![5];
                v.extend_from_slice(m.as_bytes());
                v
            }
        }
    }

    fn decode(b: &[u8]) -> Option<Message> {
        Some(match b.first()? {
            1 => Message::Continue,
            2 => Message::RuntimeHooks,
            3 => Message::HooksDone,
            4 => Message::Ready,
            5 => Message::Error(String::from_utf8_lossy(&b[1..]).into_owned()),
            6 => Message::CgroupReady,
            _ => return None,
        })
    }
}

/// One end of the pair.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
}

pub fn channel_pair() -> Result<(Channel, Channel), SyncError> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|source| SyncError::Socket {
        op: "socketpair",
        source,
    })?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    pub fn send(&self, msg: &Message) -> Result<(), SyncError> {
        loop {
            match send(self.fd.as_raw_fd(), &msg.encode(), MsgFlags::MSG_NOSIGNAL) {
                Err(Errno::EINTR) => continue,
                Err(source) => return Err(SyncError::Socket { op: "send", source }),
                Ok(_) => return Ok(()),
            }
        }
    }

    /// Receives one message; `None` when the peer has closed its end.
    pub fn recv(&self) -> Result<Option<Message>, SyncError> {
        // SOCK_SEQPACKET keeps message boundaries: peek at the next message's full length
        // (MSG_TRUNC, unix(7)) and read it into a buffer of that size, rather than zeroing a
        // 64 KiB buffer for every one-byte message (16 pages of memory per create).
        let len = loop {
            let peek = MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC;
            match recv(self.fd.as_raw_fd(), &mut [], peek) {
                Err(Errno::EINTR) => continue,
                Err(source) => return Err(SyncError::Socket { op: "recv", source }),
                Ok(n) => break n,
            }
        };
        // Every message has a tag byte, so zero bytes is the peer's end-of-file.
        if len == 0 {
            return Ok(None);
        }
        let mut buf = vec![0u8; len];
        loop {
            match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Err(Errno::EINTR) => continue,
                Err(source) => return Err(SyncError::Socket { op: "recv", source }),
                Ok(0) => return Ok(None),
                Ok(n) => {
                    return Ok(Message::decode(&buf[..n]).or(Some(Message::Error(format!(
                        "malformed sync message of {n} bytes"
                    )))))
                }
            }
        }
    }

    /// Waits for exactly `want`; an `Error` message or anything else is an error.
    pub fn expect(&self, want: Message, name: &'static str) -> Result<(), SyncError> {
        match self.recv()? {
            Some(m) if m == want => Ok(()),
            Some(got) => Err(SyncError::Unexpected {
                got,
                expected: name,
            }),
            None => Err(SyncError::Closed { expected: name }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let (a, b) = channel_pair().expect("pair");
        for m in [
            Message::CgroupReady,
            Message::Continue,
            Message::RuntimeHooks,
            Message::HooksDone,
            Message::Ready,
            Message::Error("mount /proc: EPERM".into()),
        ] {
            a.send(&m).expect("send");
            assert_eq!(b.recv().expect("recv"), Some(m));
        }
        drop(a);
        assert_eq!(b.recv().expect("recv"), None);
    }

    #[test]
    fn a_long_error_message_arrives_whole() {
        let (a, b) = channel_pair().expect("pair");
        let long = "x".repeat(100_000);
        a.send(&Message::Error(long.clone())).expect("send");
        a.send(&Message::Ready).expect("send");
        assert_eq!(b.recv().expect("recv"), Some(Message::Error(long)));
        assert_eq!(b.recv().expect("recv"), Some(Message::Ready));
    }
}
