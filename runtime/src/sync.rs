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
//!   write state.json and pid file
//!   Handover ─────────────────────────────────►  clears its parent-death signal
//!                    ◄────────────────────────── HandoverDone
//!   exit                                          blocks opening exec.fifo until `start`
//!
//!   (*) in parallel with the parent's cgroup work, whose first cgroup.procs write can wait
//!       for an RCU grace period (see init.rs). On a cgroup v2 host the directory is made
//!       before clone3 and the init is born in it (CLONE_INTO_CGROUP): no cgroup.procs write. The init waits for CgroupReady only to mount
//!       the cgroup directories and for Continue before the first thing that must happen
//!       inside the cgroup (init.rs, CgroupJoin); with a new user or cgroup namespace it
//!       waits for both first (Plan::child_waits_first).
//! ```
//!
//! Until the handover the init dies with its parent (PR_SET_PDEATHSIG, init.rs): a `create`
//! killed halfway leaves no process behind, and the state it had written lets `delete`
//! remove the rest. The handover is a round trip so that the parent never exits while the
//! init still has the signal armed. Every wait of the parent is bounded ([`Channel::recv_bounded`]):
//! a peer that stops answering (a frozen cgroup, a stopped process) becomes an error that
//! names the message it was waited for.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recv, send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};

/// How long the parent waits for one answer of the init or of an exec'd process before it
/// calls the peer stuck. Setting a container up takes milliseconds; this bound only matters
/// for a peer that will never answer. Hooks the peer runs add their own timeouts to it.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// How often a bounded wait asks whether the peer can still answer.
const CHECK_EVERY: Duration = Duration::from_millis(100);

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
    #[error("no answer from the container process after {waited:?} while waiting for {expected}")]
    Timeout {
        expected: &'static str,
        waited: Duration,
    },
    #[error("{reason} (while waiting for {expected})")]
    Stuck {
        expected: &'static str,
        reason: String,
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
    /// The parent has written the state: the init may outlive it from now on.
    Handover,
    /// The init no longer dies with its parent.
    HandoverDone,
    /// A rootless `exec` forked its process (after joining the pid namespace): its pid.
    Forked(i32),
}

impl Message {
    fn encode(&self) -> Vec<u8> {
        match self {
            Message::Continue => vec![1],
            Message::RuntimeHooks => vec![2],
            Message::HooksDone => vec![3],
            Message::Ready => vec![4],
            Message::CgroupReady => vec![6],
            Message::Handover => vec![7],
            Message::HandoverDone => vec![8],
            Message::Forked(pid) => {
                let mut v = vec![9];
                v.extend_from_slice(&pid.to_le_bytes());
                v
            }
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
            7 => Message::Handover,
            8 => Message::HandoverDone,
            9 => Message::Forked(i32::from_le_bytes(b.get(1..5)?.try_into().ok()?)),
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
                // A peer that exited with messages of ours unread leaves ECONNRESET pending on
                // our end (af_unix.c, unix_release_sock), reported by the next recv *before*
                // the messages it sent first, its error report among them. Reporting it
                // cleared it: read on.
                Err(Errno::EINTR | Errno::ECONNRESET) => continue,
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

    /// Like [`Channel::recv`], but gives up after `timeout` (`None`: no limit) and asks
    /// `stuck` every 100 ms whether the peer can still answer at all (`Some(reason)` if not).
    pub fn recv_bounded(
        &self,
        expected: &'static str,
        timeout: Option<Duration>,
        stuck: &dyn Fn() -> Option<String>,
    ) -> Result<Option<Message>, SyncError> {
        let start = Instant::now();
        loop {
            let mut slice = CHECK_EVERY;
            if let Some(t) = timeout {
                let left = t.saturating_sub(start.elapsed());
                if left.is_zero() {
                    return Err(SyncError::Timeout {
                        expected,
                        waited: start.elapsed(),
                    });
                }
                slice = slice.min(left);
            }
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            let ms = u16::try_from(slice.as_millis()).unwrap_or(u16::MAX).max(1);
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(0) | Err(Errno::EINTR) => {}
                // Readable, or the peer hung up (POLLHUP): recv tells which.
                Ok(_) => return self.recv(),
                Err(source) => return Err(SyncError::Socket { op: "poll", source }),
            }
            if let Some(reason) = stuck() {
                return Err(SyncError::Stuck { expected, reason });
            }
        }
    }

    /// True once the other end is closed (its process died): for the init, which must not
    /// outlive a parent that died before the handover.
    pub fn peer_gone(&self) -> bool {
        let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::empty())];
        matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
            && fds[0]
                .revents()
                .is_some_and(|r| r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR))
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
            Message::Handover,
            Message::HandoverDone,
        ] {
            a.send(&m).expect("send");
            assert_eq!(b.recv().expect("recv"), Some(m));
        }
        drop(a);
        assert_eq!(b.recv().expect("recv"), None);
    }

    #[test]
    fn a_silent_peer_is_a_timeout_naming_what_was_awaited() {
        let (a, _b) = channel_pair().expect("pair");
        let start = Instant::now();
        let err = a
            .recv_bounded("ready", Some(Duration::from_millis(250)), &|| None)
            .unwrap_err();
        assert!(
            matches!(
                err,
                SyncError::Timeout {
                    expected: "ready",
                    ..
                }
            ),
            "{err}"
        );
        assert!(start.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn a_stuck_peer_is_reported_without_waiting_for_the_timeout() {
        let (a, _b) = channel_pair().expect("pair");
        let err = a
            .recv_bounded("ready", None, &|| Some("cgroup frozen".into()))
            .unwrap_err();
        assert_eq!(err.to_string(), "cgroup frozen (while waiting for ready)");
    }

    #[test]
    fn a_peer_that_died_with_our_messages_unread_still_has_its_last_word_read() {
        let (parent, init) = channel_pair().expect("pair");
        parent.send(&Message::Continue).expect("send");
        init.send(&Message::Error("setup failed".into()))
            .expect("send");
        drop(init);
        assert_eq!(
            parent.recv().expect("the reset is skipped"),
            Some(Message::Error("setup failed".into()))
        );
        assert_eq!(parent.recv().expect("eof"), None);
    }

    #[test]
    fn a_closed_peer_is_seen() {
        let (a, b) = channel_pair().expect("pair");
        assert!(!a.peer_gone());
        drop(b);
        assert!(a.peer_gone());
        assert_eq!(a.recv_bounded("x", None, &|| None).expect("eof"), None);
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
