//! Where a project's files and variables come from: the compose file looked up from the
//! current directory upwards (or `-f`, or `COMPOSE_FILE`), its override file, and `.env`
//! files (`KEY=VALUE` lines with quotes, comments and `export`).

use std::path::{Path, PathBuf};

use super::error::{ComposeError, Result};
use super::interpolate::{self, Vars};

/// The names docker compose looks for, in its order of preference.
pub const DEFAULT_FILES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

const OVERRIDE_FILES: [&str; 4] = [
    "compose.override.yaml",
    "compose.override.yml",
    "docker-compose.override.yaml",
    "docker-compose.override.yml",
];

/// The compose file of `dir` or of the nearest directory above it, with its override file.
pub fn discover(dir: &Path) -> Result<Vec<PathBuf>> {
    for d in dir.ancestors() {
        if let Some(main) = DEFAULT_FILES
            .iter()
            .map(|f| d.join(f))
            .find(|p| p.is_file())
        {
            let mut files = vec![main];
            if let Some(o) = OVERRIDE_FILES
                .iter()
                .map(|f| d.join(f))
                .find(|p| p.is_file())
            {
                files.push(o);
            }
            return Ok(files);
        }
    }
    Err(ComposeError::NoFile {
        dir: dir.to_path_buf(),
    })
}

/// Reads a `.env` file; `vars` interpolates its values (later lines see earlier ones).
pub fn read_env_file(path: &Path, vars: &Vars) -> Result<Vars> {
    let text = std::fs::read_to_string(path).map_err(|source| ComposeError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_env(&text, path, vars)
}

pub fn parse_env(text: &str, path: &Path, outer: &Vars) -> Result<Vars> {
    let mut out = Vars::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let bad = |message: String| ComposeError::EnvFile {
            path: path.to_path_buf(),
            line: n + 1,
            message,
        };
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k.trim(), v.trim_start()),
            // A bare name takes the process's value, if any.
            None => {
                if let Some(v) = outer.get(line) {
                    out.insert(line.to_string(), v.clone());
                }
                continue;
            }
        };
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(bad(format!("invalid variable name {key:?}")));
        }
        let value = if let Some(q) = value.strip_prefix('\'') {
            let end = q
                .find('\'')
                .ok_or_else(|| bad("unterminated single quote".into()))?;
            q[..end].to_string()
        } else if let Some(q) = value.strip_prefix('"') {
            let mut s = String::new();
            let mut chars = q.chars();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '"' => {
                        closed = true;
                        break;
                    }
                    '\\' => match chars.next() {
                        Some('n') => s.push('\n'),
                        Some('t') => s.push('\t'),
                        Some(o) => s.push(o),
                        None => {}
                    },
                    o => s.push(o),
                }
            }
            if !closed {
                return Err(bad("unterminated double quote".into()));
            }
            expand(&s, &out, outer).map_err(|_| bad(format!("invalid interpolation in {s:?}")))?
        } else {
            // An unquoted value ends at ` #`.
            let v = match value.find(" #") {
                Some(i) => &value[..i],
                None => value,
            };
            expand(v.trim_end(), &out, outer)
                .map_err(|_| bad(format!("invalid interpolation in {v:?}")))?
        };
        out.insert(key.to_string(), value);
    }
    Ok(out)
}

fn expand(
    s: &str,
    so_far: &Vars,
    outer: &Vars,
) -> std::result::Result<String, interpolate::Failure> {
    let mut vars = so_far.clone();
    for (k, v) in outer {
        vars.insert(k.clone(), v.clone());
    }
    interpolate::string(s, &vars)
}

/// Docker compose's project name rules: lowercase letters, digits, `-` and `_`, starting
/// with a letter or digit.
pub fn valid_project_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// A directory's name as a project name: lowercased, other characters dropped.
pub fn project_name_from_dir(dir: &Path) -> String {
    let base = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let kept: String = base
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_')
        .collect();
    kept.trim_start_matches(['-', '_']).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_files_parse_like_docker_compose() {
        let outer: Vars = [("HOME".to_string(), "/root".to_string())].into();
        let text = "# comment\nA=1\nexport B = two\nC='single $A'\nD=\"double $A\\n\"\nE=x # trailing\nF=${A}-${HOME}\nEMPTY=\nHOME\n";
        let v = parse_env(text, Path::new(".env"), &outer).unwrap();
        assert_eq!(v["A"], "1");
        assert_eq!(v["B"], "two");
        assert_eq!(v["C"], "single $A");
        assert_eq!(v["D"], "double 1\n");
        assert_eq!(v["E"], "x");
        assert_eq!(v["F"], "1-/root");
        assert_eq!(v["EMPTY"], "");
        assert_eq!(v["HOME"], "/root");
        let e = parse_env("A=1\nB='x\n", Path::new("/p/.env"), &outer).unwrap_err();
        assert_eq!(e.to_string(), "/p/.env: line 2: unterminated single quote");
    }

    #[test]
    fn files_are_found_upwards_with_their_override() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("a/b");
        std::fs::create_dir_all(&sub).unwrap();
        assert!(matches!(discover(&sub), Err(ComposeError::NoFile { .. })));
        std::fs::write(dir.path().join("docker-compose.yml"), "").unwrap();
        assert_eq!(
            discover(&sub).unwrap(),
            vec![dir.path().join("docker-compose.yml")]
        );
        std::fs::write(dir.path().join("a/compose.yaml"), "").unwrap();
        std::fs::write(dir.path().join("a/compose.override.yaml"), "").unwrap();
        assert_eq!(
            discover(&sub).unwrap(),
            vec![
                dir.path().join("a/compose.yaml"),
                dir.path().join("a/compose.override.yaml")
            ]
        );
    }

    #[test]
    fn project_names() {
        assert_eq!(project_name_from_dir(Path::new("/x/My App.v2")), "myappv2");
        assert!(valid_project_name("my_app-2"));
        assert!(!valid_project_name("My"));
        assert!(!valid_project_name("-a"));
    }
}
