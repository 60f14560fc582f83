//! `-e/--env` and `--env-file`.

use std::path::Path;

use super::{invalid, FlagError};

/// `-e KEY=VALUE` is kept as is; `-e KEY` takes the value from `lookup` (the caller's
/// environment) and yields `None` when it is unset, so the variable is skipped as docker does.
pub fn parse_env(
    value: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Option<String>, FlagError> {
    let (key, has_value) = match value.split_once('=') {
        Some((key, _)) => (key, true),
        None => (value, false),
    };
    if key.is_empty() {
        return Err(invalid("--env", value, "variable name is empty"));
    }
    if has_value {
        return Ok(Some(value.to_string()));
    }
    Ok(lookup(key).map(|v| format!("{key}={v}")))
}

/// Reads an `--env-file` and parses it with [`parse_env_file_contents`].
pub fn parse_env_file(
    path: &Path,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<String>, FlagError> {
    let bytes = std::fs::read(path).map_err(|source| FlagError::ReadEnvFile {
        path: path.to_path_buf(),
        source,
    })?;
    parse_env_file_contents(path, &bytes, lookup)
}

/// Docker's env-file format: one `KEY=VALUE` per line taken literally (no quotes, no
/// expansion), leading whitespace ignored, `#` starts a comment line, blank lines skipped, and a
/// line with only `KEY` takes the caller's value (skipped when unset). `path` is for errors.
pub fn parse_env_file_contents(
    path: &Path,
    contents: &[u8],
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<String>, FlagError> {
    let contents = contents.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(contents);
    let mut out = Vec::new();
    for (idx, raw) in contents.split(|&b| b == b'\n').enumerate() {
        let line_no = idx + 1;
        let err = |reason: String| FlagError::EnvFileLine {
            path: path.to_path_buf(),
            line: line_no,
            reason,
        };
        let line =
            std::str::from_utf8(raw).map_err(|_| err("contains invalid utf8 bytes".to_string()))?;
        let line = line.strip_suffix('\r').unwrap_or(line).trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (line, None),
        };
        if key.is_empty() {
            return Err(err(format!("no variable name on line '{line}'")));
        }
        if key.chars().any(char::is_whitespace) {
            return Err(err(format!("variable '{key}' contains whitespaces")));
        }
        match value {
            Some(v) => out.push(format!("{key}={v}")),
            None => {
                if let Some(v) = lookup(key) {
                    out.push(format!("{key}={v}"));
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(key: &str) -> Option<String> {
        (key == "FROM_CALLER").then(|| "yes".to_string())
    }

    #[test]
    fn env_flag_values_and_caller_lookup() {
        assert_eq!(parse_env("A=1", caller).unwrap().as_deref(), Some("A=1"));
        assert_eq!(parse_env("A=", caller).unwrap().as_deref(), Some("A="));
        assert_eq!(
            parse_env("A=b=c", caller).unwrap().as_deref(),
            Some("A=b=c")
        );
        assert_eq!(
            parse_env("FROM_CALLER", caller).unwrap().as_deref(),
            Some("FROM_CALLER=yes")
        );
        assert_eq!(parse_env("UNSET_HERE", caller).unwrap(), None);
    }

    #[test]
    fn env_flag_rejects_empty_name() {
        for bad in ["", "=x"] {
            let err = parse_env(bad, caller).unwrap_err();
            assert!(err.to_string().contains("--env"), "{err}");
        }
    }

    #[test]
    fn env_file_follows_docker_format() {
        let text = b"\xEF\xBB\xBF# comment\n\n  A=1\nB= spaced \nC=\"quoted\"\r\nFROM_CALLER\nUNSET_HERE\n   # indented comment\nD=x=y";
        let env = parse_env_file_contents(Path::new("f.env"), text, caller).unwrap();
        assert_eq!(
            env,
            vec![
                "A=1",
                "B= spaced ",
                "C=\"quoted\"",
                "FROM_CALLER=yes",
                "D=x=y"
            ]
        );
    }

    #[test]
    fn env_file_errors_name_file_and_line() {
        let err =
            parse_env_file_contents(Path::new("f.env"), b"A=1\nBAD KEY=2\n", caller).unwrap_err();
        assert!(
            matches!(err, FlagError::EnvFileLine { line: 2, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("f.env line 2"), "{err}");
        let err = parse_env_file_contents(Path::new("f.env"), b"B =1\n", caller).unwrap_err();
        assert!(
            err.to_string().contains("'B ' contains whitespaces"),
            "{err}"
        );
        let err = parse_env_file_contents(Path::new("f.env"), b"=v\n", caller).unwrap_err();
        assert!(err.to_string().contains("no variable name"), "{err}");
        let err = parse_env_file_contents(Path::new("f.env"), b"A=\xff\n", caller).unwrap_err();
        assert!(err.to_string().contains("utf8"), "{err}");
        let err = parse_env_file(Path::new("/nonexistent/berth.env"), caller).unwrap_err();
        assert!(matches!(err, FlagError::ReadEnvFile { .. }), "{err}");
    }

    #[test]
    fn env_file_reads_a_real_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.env");
        std::fs::write(&path, "X=1\n").unwrap();
        assert_eq!(parse_env_file(&path, caller).unwrap(), vec!["X=1"]);
    }
}
