//! Deserialising the JSON documents the runtime is given (config.json, `exec --process`,
//! `update -r`) with the place of a problem named as a field path, `linux.namespaces[0].type`.
//!
//! The path is worked out from the line and column serde_json reports, by scanning the text up
//! to there and keeping the stack of open objects (with their current key) and arrays (with
//! their current index). A path-tracking deserializer (serde_path_to_error, used before) gives
//! the same answer but doubles the deserialisation code of every OCI spec type: ~500 KiB of
//! the binary's text, which is most of what a `run` maps into memory (docs/benchmarks.md).

use serde::de::DeserializeOwned;

/// A document that did not deserialise; `field` is where (empty: the document itself).
#[derive(Debug, thiserror::Error)]
#[error("field {}", if field.is_empty() { "." } else { field })]
pub struct JsonError {
    pub field: String,
    #[source]
    pub source: serde_json::Error,
}

/// `serde_json::from_slice`, with the field path of the problem on failure.
pub fn from_slice<T: DeserializeOwned>(data: &[u8]) -> Result<T, JsonError> {
    serde_json::from_slice(data).map_err(|source| JsonError {
        field: path_at(data, source.line(), source.column()),
        source,
    })
}

enum Frame {
    Object { key: Option<String>, in_key: bool },
    Array { index: usize },
}

/// The path of the value being read at `line`/`column` (serde_json's convention: lines from
/// 1, columns counting bytes from the start of the line). Never fails: malformed text gives
/// the path as far as it could be followed.
pub fn path_at(data: &[u8], line: usize, column: usize) -> String {
    let end = offset_of(data, line, column).min(data.len());
    let text = &data[..end];
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'{' => stack.push(Frame::Object {
                key: None,
                in_key: true,
            }),
            b'[' => stack.push(Frame::Array { index: 0 }),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(Frame::Object { key, in_key }) => {
                    *key = None;
                    *in_key = true;
                }
                Some(Frame::Array { index }) => *index += 1,
                None => {}
            },
            b':' => {
                if let Some(Frame::Object { in_key, .. }) = stack.last_mut() {
                    *in_key = false;
                }
            }
            b'"' => {
                let (s, next) = string_at(text, i + 1);
                if let Some(Frame::Object { key, in_key: true }) = stack.last_mut() {
                    *key = Some(s);
                }
                i = next;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    let mut path = String::new();
    for frame in &stack {
        match frame {
            Frame::Object { key: Some(k), .. } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
            }
            Frame::Object { key: None, .. } => {}
            Frame::Array { index } => {
                path.push_str(&format!("[{index}]"));
            }
        }
    }
    path
}

/// Byte offset of `line`/`column`.
fn offset_of(data: &[u8], line: usize, column: usize) -> usize {
    let mut start = 0;
    for _ in 1..line {
        match data[start..].iter().position(|&b| b == b'\n') {
            Some(nl) => start += nl + 1,
            None => return data.len(),
        }
    }
    start.saturating_add(column)
}

/// The string starting after an opening quote at `from` (escapes kept as written, which is
/// enough to name a key), and the index after its closing quote.
fn string_at(text: &[u8], from: usize) -> (String, usize) {
    let mut i = from;
    while i < text.len() {
        match text[i] {
            b'\\' => i += 2,
            b'"' => {
                let s = String::from_utf8_lossy(&text[from..i]).into_owned();
                return (s, i + 1);
            }
            _ => i += 1,
        }
    }
    let s = String::from_utf8_lossy(&text[from.min(text.len())..]).into_owned();
    (s, text.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{Process, Spec};

    fn field_of<T: DeserializeOwned + std::fmt::Debug>(doc: &str) -> String {
        from_slice::<T>(doc.as_bytes())
            .expect_err("must fail")
            .field
    }

    #[test]
    fn a_wrong_type_is_named_by_its_path() {
        let doc = r#"{"ociVersion": "1.2.0",
            "process": {"cwd": "/", "user": {"uid": 0, "gid": 0}, "args": "sh"}}"#;
        assert_eq!(field_of::<Spec>(doc), "process.args");
    }

    #[test]
    fn array_elements_are_indexed() {
        let doc = r#"{"ociVersion": "1.2.0", "linux": {"namespaces": [
            {"type": "pid"},
            {"type": "bogusns"}
        ]}}"#;
        assert_eq!(field_of::<Spec>(doc), "linux.namespaces[1].type");
    }

    #[test]
    fn a_missing_field_names_its_object() {
        let doc = r#"{"ociVersion": "1.2.0", "linux": {"namespaces": [
            {"type": "pid"}, {"path": "/proc/1/ns/net"}
        ]}}"#;
        let err = from_slice::<Spec>(doc.as_bytes()).expect_err("type is required");
        assert_eq!(err.field, "linux.namespaces[1]");
        assert!(err.source.to_string().contains("type"), "{}", err.source);
    }

    #[test]
    fn strings_with_escapes_and_brackets_do_not_confuse_the_scan() {
        let doc = r#"{"cwd": "/a\"[{,:", "args": ["x]"], "user": {"uid": "zero", "gid": 0}}"#;
        assert_eq!(field_of::<Process>(doc), "user.uid");
    }

    #[test]
    fn truncated_and_garbage_documents_still_give_a_path() {
        assert_eq!(field_of::<Spec>(r#"{"ociVersion": "#), "ociVersion");
        assert_eq!(field_of::<Spec>("]]]}}}"), "");
        assert_eq!(path_at(b"{\"a", 99, 99), "a");
        assert_eq!(path_at(b"", 1, 0), "");
    }
}
