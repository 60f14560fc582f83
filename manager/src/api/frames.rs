//! Docker's stream framing and detach keys, shared by the service and the CLI.
//!
//! Without a tty, logs, attach and exec streams are multiplexed ("stdcopy"): every chunk
//! is preceded by an 8-byte header, the stream (0 stdin, 1 stdout, 2 stderr, 3 an error
//! of the service) then three zero bytes then the chunk's length, big-endian u32. With a
//! tty the bytes are sent as they are.

/// Which stream a chunk belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamType {
    Stdin = 0,
    Stdout = 1,
    Stderr = 2,
    /// A message of the service (API 1.42+: e.g. why an exec stream ended).
    System = 3,
}

/// The header and the chunk, ready to write.
pub fn frame(stream: StreamType, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + data.len());
    v.push(stream as u8);
    v.extend_from_slice(&[0, 0, 0]);
    v.extend_from_slice(&(data.len() as u32).to_be_bytes());
    v.extend_from_slice(data);
    v
}

/// Splits a multiplexed byte stream back into chunks (a client's side: `berth` tests and
/// tools). Returns the complete frames at the start of `buf` and how many bytes they took.
pub fn parse_frames(buf: &[u8]) -> (Vec<(u8, Vec<u8>)>, usize) {
    let mut out = Vec::new();
    let mut at = 0;
    while buf.len() >= at + 8 {
        let len = u32::from_be_bytes([buf[at + 4], buf[at + 5], buf[at + 6], buf[at + 7]]) as usize;
        if buf.len() < at + 8 + len {
            break;
        }
        out.push((buf[at], buf[at + 8..at + 8 + len].to_vec()));
        at += 8 + len;
    }
    (out, at)
}

/// A detach key sequence (docker's `--detach-keys`, default `ctrl-p,ctrl-q`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetachKeys(Vec<u8>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid detach keys {keys:?}: {reason}")]
pub struct DetachKeysError {
    pub keys: String,
    pub reason: &'static str,
}

impl Default for DetachKeys {
    fn default() -> Self {
        Self(vec![0x10, 0x11])
    }
}

impl DetachKeys {
    /// Parses `ctrl-p,ctrl-q`, `a,ctrl-@`, ...: single characters or `ctrl-` followed by
    /// one of `a`-`z`, `@`, `[`, `\`, `]`, `^`, `_`. An empty string disables detaching.
    pub fn parse(keys: &str) -> Result<Self, DetachKeysError> {
        let err = |reason| DetachKeysError {
            keys: keys.into(),
            reason,
        };
        if keys.is_empty() {
            return Ok(Self(Vec::new()));
        }
        let mut seq = Vec::new();
        for part in keys.split(',') {
            let lower = part.to_ascii_lowercase();
            if let Some(c) = lower.strip_prefix("ctrl-") {
                let b = match c.as_bytes() {
                    [b @ b'a'..=b'z'] => b - b'a' + 1,
                    [b'@'] => 0,
                    [b @ (b'[' | b'\\' | b']' | b'^' | b'_')] => b - b'@',
                    _ => return Err(err("ctrl- must be followed by a-z, @, [, \\, ], ^ or _")),
                };
                seq.push(b);
            } else if part.len() == 1 {
                seq.push(part.as_bytes()[0]);
            } else {
                return Err(err("each key is one character or ctrl-<key>"));
            }
        }
        Ok(Self(seq))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Watches input for the detach sequence. Bytes that could start the sequence are held
/// back until it is clear they do not complete it, then passed on (as docker does).
#[derive(Debug, Clone)]
pub struct DetachWatch {
    keys: DetachKeys,
    held: Vec<u8>,
}

/// What a chunk of input became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Pass these bytes on.
    Data(Vec<u8>),
    /// The sequence was typed: pass these bytes (typed before it) on, then detach.
    Detach(Vec<u8>),
}

impl DetachWatch {
    pub fn new(keys: DetachKeys) -> Self {
        Self {
            keys,
            held: Vec::new(),
        }
    }

    pub fn feed(&mut self, data: &[u8]) -> Input {
        if self.keys.is_empty() {
            return Input::Data(data.to_vec());
        }
        let keys = &self.keys.0;
        let mut out = Vec::with_capacity(data.len());
        for &b in data {
            self.held.push(b);
            if keys.starts_with(&self.held) {
                if self.held.len() == keys.len() {
                    self.held.clear();
                    return Input::Detach(out);
                }
                continue;
            }
            // Not the sequence: pass on what was held, but a suffix may still start it.
            while !self.held.is_empty() && !keys.starts_with(&self.held) {
                out.push(self.held.remove(0));
            }
        }
        Input::Data(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_stream_and_length_and_parse_back() {
        let f = frame(StreamType::Stderr, b"hi");
        assert_eq!(f, [2, 0, 0, 0, 0, 0, 0, 2, b'h', b'i']);
        let mut two = frame(StreamType::Stdout, b"abc");
        two.extend(frame(StreamType::Stderr, b""));
        two.extend(&[1, 0, 0]);
        let (frames, used) = parse_frames(&two);
        assert_eq!(frames, [(1, b"abc".to_vec()), (2, Vec::new())]);
        assert_eq!(used, two.len() - 3);
    }

    #[test]
    fn detach_keys_parse_like_docker() {
        assert_eq!(
            DetachKeys::parse("ctrl-p,ctrl-q").unwrap(),
            DetachKeys::default()
        );
        assert_eq!(
            DetachKeys::parse("a,ctrl-@,ctrl-[").unwrap().0,
            [b'a', 0, 27]
        );
        assert!(DetachKeys::parse("").unwrap().is_empty());
        assert!(DetachKeys::parse("ctrl-1").is_err());
        assert!(DetachKeys::parse("ab").is_err());
    }

    #[test]
    fn detach_sequence_is_found_across_chunks_and_false_starts_pass_through() {
        let mut w = DetachWatch::new(DetachKeys::default());
        assert_eq!(w.feed(b"ls\x10"), Input::Data(b"ls".to_vec()));
        assert_eq!(w.feed(b"\x10"), Input::Data(b"\x10".to_vec()));
        assert_eq!(
            w.feed(b"x\x10\x11"),
            Input::Data(b"\x10x".to_vec()).clone_detach()
        );
        let mut w = DetachWatch::new(DetachKeys::parse("").unwrap());
        assert_eq!(w.feed(b"\x10\x11"), Input::Data(b"\x10\x11".to_vec()));
    }

    impl Input {
        fn clone_detach(self) -> Input {
            match self {
                Input::Data(d) => Input::Detach(d),
                d => d,
            }
        }
    }
}
