//! Registry credentials in docker's `config.json`: `auths` entries (base64 `user:password`),
//! and the `credsStore` / `credHelpers` helper programs (`docker-credential-<name>`), read and
//! written the way docker does so that both tools share logins.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::reference::auth_key;

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("parsing {path}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: field {field} is malformed")]
    Field { path: PathBuf, field: String },
    #[error("writing {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("running credential helper {program}")]
    HelperSpawn {
        program: String,
        #[source]
        source: io::Error,
    },
    #[error("credential helper {program} {action} failed: {message}")]
    Helper {
        program: String,
        action: &'static str,
        message: String,
    },
    #[error("credential helper {program} printed malformed output")]
    HelperOutput {
        program: String,
        #[source]
        source: serde_json::Error,
    },
}

type Result<T, E = CredentialsError> = std::result::Result<T, E>;

/// Docker's convention (config.json `identitytoken`, credential helpers): this username means
/// the secret is an OAuth2 refresh token, not a password.
pub const IDENTITY_TOKEN_USER: &str = "<token>";

/// A username and password (or token secret) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl Credentials {
    /// The refresh token, when these credentials are an identity token.
    pub fn identity_token(&self) -> Option<&str> {
        (self.username == IDENTITY_TOKEN_USER).then_some(self.password.as_str())
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Docker's `config.json`, kept as a JSON object so fields berth does not know survive writes.
#[derive(Debug)]
pub struct DockerConfig {
    path: PathBuf,
    doc: Map<String, Value>,
}

#[derive(Serialize)]
struct HelperStore<'a> {
    #[serde(rename = "ServerURL")]
    server_url: &'a str,
    #[serde(rename = "Username")]
    username: &'a str,
    #[serde(rename = "Secret")]
    secret: &'a str,
}

#[derive(Deserialize)]
struct HelperGet {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

impl DockerConfig {
    /// Loads `path`; a missing file is an empty config.
    pub fn load(path: &Path) -> Result<Self> {
        let doc = match fs::read(path) {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Map::new(),
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|source| CredentialsError::Parse {
                    path: path.to_path_buf(),
                    source,
                })?
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Map::new(),
            Err(source) => {
                return Err(CredentialsError::Read {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        Ok(Self {
            path: path.to_path_buf(),
            doc,
        })
    }

    /// The helper program responsible for `registry`, if any.
    fn helper(&self, registry: &str) -> Option<String> {
        let key = auth_key(registry);
        self.doc
            .get("credHelpers")
            .and_then(|h| h.get(key).or_else(|| h.get(registry)))
            .or_else(|| self.doc.get("credsStore"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(|s| format!("docker-credential-{s}"))
    }

    /// Credentials for `registry` (normalised name, e.g. `docker.io`, `host:5000`).
    pub fn get(&self, registry: &str) -> Result<Option<Credentials>> {
        if let Some(program) = self.helper(registry) {
            return helper_get(&program, auth_key(registry));
        }
        let key = auth_key(registry);
        let Some(entry) = self.doc.get("auths").and_then(|a| {
            a.get(key)
                .or_else(|| a.get(registry))
                .or_else(|| a.get(format!("https://{registry}")))
                .or_else(|| a.get(format!("http://{registry}")))
        }) else {
            return Ok(None);
        };
        let field_err = |field: &str| CredentialsError::Field {
            path: self.path.clone(),
            field: format!("auths.{key}.{field}"),
        };
        if let Some(token) = entry
            .get("identitytoken")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            return Ok(Some(Credentials {
                username: IDENTITY_TOKEN_USER.to_string(),
                password: token.to_string(),
            }));
        }
        if let Some(auth) = entry
            .get("auth")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            let decoded = STANDARD
                .decode(auth.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| field_err("auth"))?;
            let (user, pass) = decoded.split_once(':').ok_or_else(|| field_err("auth"))?;
            return Ok(Some(Credentials {
                username: user.to_string(),
                password: pass.to_string(),
            }));
        }
        match (
            entry.get("username").and_then(Value::as_str),
            entry.get("password").and_then(Value::as_str),
        ) {
            (Some(u), Some(p)) => Ok(Some(Credentials {
                username: u.to_string(),
                password: p.to_string(),
            })),
            _ => Ok(None),
        }
    }

    /// Stores credentials (in the helper when one is configured, else in `auths`).
    pub fn store(&mut self, registry: &str, creds: &Credentials) -> Result<()> {
        let key = auth_key(registry);
        if let Some(program) = self.helper(registry) {
            let input = serde_json::to_vec(&HelperStore {
                server_url: key,
                username: &creds.username,
                secret: &creds.password,
            })
            .map_err(|source| CredentialsError::HelperOutput {
                program: program.clone(),
                source,
            })?;
            run_helper(&program, "store", &input)?;
            // Docker leaves an empty entry so the registry is listed as logged in.
            self.auths_mut()
                .insert(key.to_string(), Value::Object(Map::new()));
        } else {
            let auth = STANDARD.encode(format!("{}:{}", creds.username, creds.password));
            let mut entry = Map::new();
            entry.insert("auth".into(), Value::String(auth));
            self.auths_mut()
                .insert(key.to_string(), Value::Object(entry));
        }
        self.save()
    }

    /// Removes credentials; returns whether there were any.
    pub fn erase(&mut self, registry: &str) -> Result<bool> {
        let key = auth_key(registry);
        let mut found = false;
        if let Some(program) = self.helper(registry) {
            found = match run_helper(&program, "erase", key.as_bytes()) {
                Ok(_) => true,
                Err(CredentialsError::Helper { message, .. }) if is_not_found(&message) => false,
                Err(e) => return Err(e),
            };
        }
        let auths = self.auths_mut();
        found |= auths.remove(key).is_some();
        found |= auths.remove(registry).is_some();
        self.save()?;
        Ok(found)
    }

    fn auths_mut(&mut self) -> &mut Map<String, Value> {
        let auths = self
            .doc
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !auths.is_object() {
            *auths = Value::Object(Map::new());
        }
        match auths {
            Value::Object(m) => m,
            _ => unreachable!("just made an object"),
        }
    }

    /// Writes the file atomically with mode 0600 (it holds secrets).
    fn save(&self) -> Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let werr = |source| CredentialsError::Write {
            path: self.path.clone(),
            source,
        };
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir).map_err(werr)?;
        }
        let tmp = self
            .path
            .with_extension(format!("json.tmp-{}", std::process::id()));
        let bytes =
            serde_json::to_vec_pretty(&self.doc).map_err(|source| CredentialsError::Parse {
                path: self.path.clone(),
                source,
            })?;
        let mut f = fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(werr)?;
        f.write_all(&bytes).map_err(werr)?;
        f.write_all(b"\n").map_err(werr)?;
        fs::rename(&tmp, &self.path).map_err(werr)
    }
}

fn is_not_found(message: &str) -> bool {
    message.contains("credentials not found")
}

fn helper_get(program: &str, server: &str) -> Result<Option<Credentials>> {
    let out = match run_helper(program, "get", server.as_bytes()) {
        Ok(out) => out,
        Err(CredentialsError::Helper { message, .. }) if is_not_found(&message) => return Ok(None),
        Err(e) => return Err(e),
    };
    let got: HelperGet =
        serde_json::from_slice(&out).map_err(|source| CredentialsError::HelperOutput {
            program: program.to_string(),
            source,
        })?;
    if got.username.is_empty() && got.secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(Credentials {
        username: got.username,
        password: got.secret,
    }))
}

fn run_helper(program: &str, action: &'static str, input: &[u8]) -> Result<Vec<u8>> {
    let spawn_err = |source| CredentialsError::HelperSpawn {
        program: program.to_string(),
        source,
    };
    let mut child = Command::new(program)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_err)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input).map_err(spawn_err)?;
    }
    let out = child.wait_with_output().map_err(spawn_err)?;
    if !out.status.success() {
        let mut message = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if message.is_empty() {
            message = String::from_utf8_lossy(&out.stderr).trim().to_string();
        }
        return Err(CredentialsError::Helper {
            program: program.to_string(),
            action,
            message,
        });
    }
    Ok(out.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn auths_entries_decode_and_round_trip_keeping_other_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        fs::write(
            &path,
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dTpwOng="},"r:1":{"username":"a","password":"b"}},"psFormat":"x"}"#,
        )
        .unwrap();
        let mut c = DockerConfig::load(&path).unwrap();
        let hub = c.get("docker.io").unwrap().unwrap();
        assert_eq!((hub.username.as_str(), hub.password.as_str()), ("u", "p:x"));
        assert_eq!(c.get("r:1").unwrap().unwrap().password, "b");
        assert!(c.get("other").unwrap().is_none());
        let creds = Credentials {
            username: "me".into(),
            password: "pw".into(),
        };
        c.store("r:2", &creds).unwrap();
        let c2 = DockerConfig::load(&path).unwrap();
        assert_eq!(c2.get("r:2").unwrap(), Some(creds));
        assert_eq!(c2.doc["psFormat"], "x");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let mut c3 = c2;
        assert!(c3.erase("r:2").unwrap());
        assert!(!c3.erase("r:2").unwrap());
        assert!(DockerConfig::load(&path)
            .unwrap()
            .get("r:2")
            .unwrap()
            .is_none());
    }

    #[test]
    fn identity_tokens_become_refresh_token_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        fs::write(
            &path,
            r#"{"auths":{"r:1":{"auth":"dTo=","identitytoken":"rt-123"}}}"#,
        )
        .unwrap();
        let c = DockerConfig::load(&path)
            .unwrap()
            .get("r:1")
            .unwrap()
            .unwrap();
        assert_eq!(c.identity_token(), Some("rt-123"));
        let plain = Credentials {
            username: "u".into(),
            password: "p".into(),
        };
        assert_eq!(plain.identity_token(), None);
    }

    #[test]
    fn malformed_auth_field_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        fs::write(&path, r#"{"auths":{"r:1":{"auth":"!!!"}}}"#).unwrap();
        let err = DockerConfig::load(&path).unwrap().get("r:1").unwrap_err();
        assert!(err.to_string().contains("auths.r:1.auth"), "{err}");
    }

    #[test]
    fn cred_helpers_take_precedence_over_creds_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        fs::write(
            &path,
            r#"{"credsStore":"desktop","credHelpers":{"r:1":"pass"}}"#,
        )
        .unwrap();
        let c = DockerConfig::load(&path).unwrap();
        assert_eq!(c.helper("r:1").as_deref(), Some("docker-credential-pass"));
        assert_eq!(
            c.helper("r:2").as_deref(),
            Some("docker-credential-desktop")
        );
        let err = c.get("r:2").unwrap_err();
        assert!(
            err.to_string().contains("docker-credential-desktop"),
            "{err}"
        );
    }
}
