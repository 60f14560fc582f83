//! The json-file line format: encoding exactly as dockerd writes it, and decoding.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::SystemTime;

use serde::Deserialize;

use super::time::{format_time_trimmed, parse_rfc3339};
use super::{LogEntry, Stream};

/// Appends `{"log":...,"stream":...,"attrs":{...},"time":...}\n` to `out`; `raw_attrs` is
/// [`encode_attrs`]'s output (empty: no `attrs` member, as dockerd).
pub(super) fn encode(
    out: &mut Vec<u8>,
    stream: Stream,
    chunk: &[u8],
    raw_attrs: &[u8],
    time: SystemTime,
) {
    out.extend_from_slice(b"{\"log\":\"");
    escape_into(out, chunk);
    out.extend_from_slice(b"\",\"stream\":\"");
    out.extend_from_slice(stream.as_str().as_bytes());
    out.extend_from_slice(b"\",");
    if !raw_attrs.is_empty() {
        out.extend_from_slice(b"\"attrs\":");
        out.extend_from_slice(raw_attrs);
        out.push(b',');
    }
    out.extend_from_slice(b"\"time\":\"");
    out.extend_from_slice(format_time_trimmed(time).as_bytes());
    out.extend_from_slice(b"\"}\n");
}

/// dockerd's json-file string escaping (its own encoder, not Go's encoding/json): `"` and
/// `\` escaped, `\n` and `\r` short forms, every other control character (tab included)
/// and the HTML-sensitive `<` `>` `&` as `\u00XX`, U+2028/U+2029 as `\u2028`/`\u2029`, and
/// every byte of invalid UTF-8 replaced by `\ufffd` (so the file is always valid JSON).
/// Checked byte for byte against dockerd 20.10's log of the same output.
pub(super) fn escape_into(out: &mut Vec<u8>, bytes: &[u8]) {
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.extend_from_slice(b"\\\""),
                '\\' => out.extend_from_slice(b"\\\\"),
                '\n' => out.extend_from_slice(b"\\n"),
                '\r' => out.extend_from_slice(b"\\r"),
                '\u{2028}' | '\u{2029}' | '<' | '>' | '&' | '\0'..='\u{1f}' => {
                    let mut s = String::new();
                    // Writing to a String cannot fail.
                    let _ = write!(s, "\\u{:04x}", c as u32);
                    out.extend_from_slice(s.as_bytes());
                }
                c => {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        for _ in chunk.invalid() {
            out.extend_from_slice(b"\\ufffd");
        }
    }
}

/// The `attrs` object, keys in order; empty for no attributes.
pub(super) fn encode_attrs(attrs: &BTreeMap<String, String>) -> Vec<u8> {
    let mut out = Vec::new();
    if attrs.is_empty() {
        return out;
    }
    out.push(b'{');
    for (i, (k, v)) in attrs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'"');
        escape_into(&mut out, k.as_bytes());
        out.extend_from_slice(b"\":\"");
        escape_into(&mut out, v.as_bytes());
        out.push(b'"');
    }
    out.push(b'}');
    out
}

#[derive(Deserialize)]
struct Raw {
    log: String,
    stream: String,
    #[serde(default)]
    attrs: BTreeMap<String, String>,
    time: String,
}

/// Why a line is not an entry.
#[derive(Debug)]
pub(super) enum DecodeError {
    Json(serde_json::Error),
    Field(&'static str),
}

pub(super) fn decode(line: &[u8]) -> Result<LogEntry, DecodeError> {
    let raw: Raw = serde_json::from_slice(line).map_err(DecodeError::Json)?;
    let stream = match raw.stream.as_str() {
        "stdout" => Stream::Stdout,
        "stderr" => Stream::Stderr,
        _ => return Err(DecodeError::Field("stream")),
    };
    let time = parse_rfc3339(&raw.time).ok_or(DecodeError::Field("time"))?;
    Ok(LogEntry {
        stream,
        time,
        line: raw.log,
        attrs: raw.attrs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn enc(chunk: &[u8]) -> String {
        let mut out = Vec::new();
        encode(
            &mut out,
            Stream::Stdout,
            chunk,
            &[],
            UNIX_EPOCH + Duration::new(1_700_000_000, 120_000_000),
        );
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn lines_encode_byte_for_byte_like_dockerd() {
        assert_eq!(
            enc(b"hello\n"),
            "{\"log\":\"hello\\n\",\"stream\":\"stdout\",\"time\":\"2023-11-14T22:13:20.12Z\"}\n"
        );
        assert_eq!(
            enc(b"a\"b\\c\t<x>&\x01\x1b[0m\r\n"),
            // dockerd 20.10 wrote exactly this "log" for the same bytes.
            "{\"log\":\"a\\\"b\\\\c\\u0009\\u003cx\\u003e\\u0026\\u0001\\u001b[0m\\r\\n\",\"stream\":\"stdout\",\"time\":\"2023-11-14T22:13:20.12Z\"}\n"
        );
    }

    #[test]
    fn invalid_utf8_becomes_one_replacement_per_byte_and_unicode_passes() {
        let s = enc(b"caf\xc3\xa9 \xff\xfe \xe2\x80\xa8");
        assert!(s.contains("café \\ufffd\\ufffd \\u2028"), "{s}");
        let e = decode(s.trim_end().as_bytes()).unwrap();
        assert_eq!(e.line, "café \u{fffd}\u{fffd} \u{2028}");
    }

    #[test]
    fn decode_reads_docker_lines() {
        let e = decode(
            br#"{"log":"x\u003cy\n","stream":"stderr","time":"2024-05-06T07:08:09.000000001Z"}"#,
        )
        .unwrap();
        assert_eq!(e.stream, Stream::Stderr);
        assert_eq!(e.line, "x<y\n");
        assert_eq!(e.time, UNIX_EPOCH + Duration::new(1_714_979_289, 1));
        assert!(decode(br#"{"log":"x","stream":"other","time":"2024-05-06T07:08:09Z"}"#).is_err());
        assert!(decode(b"not json").is_err());
    }
}
