//! Running CNI plugins (spec 1.0.0): plugin lookup, the CNI_* environment, the network config on
//! stdin, `prevResult` chaining through a plugin list, and the result or error on stdout.

use std::io::{Read, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The CNI spec version of every config berth writes; Debian's plugins (1.1.1) speak it.
pub const CNI_VERSION: &str = "1.0.0";

/// Where plugin binaries are looked for, in order (Debian's package, then the upstream layout).
pub const PLUGIN_DIRS: &[&str] = &["/usr/lib/cni", "/opt/cni/bin"];

#[derive(Debug, thiserror::Error)]
pub enum CniError {
    #[error("cni plugin {plugin:?} not found in {dirs:?}")]
    NotFound { plugin: String, dirs: Vec<PathBuf> },
    #[error("running cni plugin {path}")]
    Spawn {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cni plugin {plugin} {command} failed (code {code}): {msg}{}", details_suffix(.details))]
    Plugin {
        plugin: String,
        command: &'static str,
        code: u32,
        msg: String,
        details: String,
    },
    #[error("cni plugin {plugin} {command} exited with {status} and no error object: {stderr}")]
    Crashed {
        plugin: String,
        command: &'static str,
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("cni plugin {plugin} {command} did not finish within {seconds}s and was killed")]
    Timeout {
        plugin: String,
        command: &'static str,
        seconds: u64,
    },
    #[error("parsing the result of cni plugin {plugin}")]
    Result {
        plugin: String,
        #[source]
        source: serde_json::Error,
    },
}

fn details_suffix(details: &str) -> String {
    if details.is_empty() {
        String::new()
    } else {
        format!(" ({details})")
    }
}

/// How long one plugin may run. Attach and detach hold the host-wide network lock while
/// plugins run, so a hung plugin (say, stuck behind someone else's xtables lock) must not
/// stall every berth on the host; the slowest normal run is well under a second.
const PLUGIN_TIMEOUT: Duration = Duration::from_secs(60);

/// Waits for `child` at most `limit`, collecting its output; `None` (child killed) on timeout.
fn wait_bounded(mut child: Child, limit: Duration) -> std::io::Result<Option<Output>> {
    // Readers drain the pipes meanwhile, so a chatty plugin never blocks on a full pipe.
    fn drain<R: Read + Send + 'static>(r: Option<R>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    }
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    Ok(status.map(|status| Output {
        status,
        stdout,
        stderr,
    }))
}

/// The error object a plugin prints on failure.
#[derive(Deserialize)]
struct ErrorBody {
    code: u32,
    #[serde(default)]
    msg: String,
    #[serde(default)]
    details: String,
}

/// The parts of a CNI 1.0 result berth uses; the whole JSON is kept as well (for `prevResult`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CniResult {
    #[serde(default)]
    pub interfaces: Vec<Interface>,
    #[serde(default)]
    pub ips: Vec<IpConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Interface {
    pub name: String,
    #[serde(default)]
    pub mac: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IpConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
    /// CIDR notation: the address and its prefix length.
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Del,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Add => "ADD",
            Op::Del => "DEL",
        }
    }
}

/// What a plugin is run against: one interface of one container's namespace.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    pub container_id: &'a str,
    pub netns: &'a Path,
    pub ifname: &'a str,
    /// `CNI_ARGS` pairs (e.g. `IP` for host-local's static address).
    pub args: &'a [(String, String)],
}

/// Plugin binaries found in a list of directories.
#[derive(Debug, Clone)]
pub struct Plugins {
    dirs: Vec<PathBuf>,
}

impl Default for Plugins {
    fn default() -> Self {
        Self::new(PLUGIN_DIRS.iter().map(PathBuf::from).collect())
    }
}

impl Plugins {
    pub fn new(dirs: Vec<PathBuf>) -> Self {
        Self { dirs }
    }

    fn find(&self, plugin: &str) -> Result<PathBuf, CniError> {
        if !plugin.contains('/') {
            for d in &self.dirs {
                let p = d.join(plugin);
                if p.is_file() {
                    return Ok(p);
                }
            }
        }
        Err(CniError::NotFound {
            plugin: plugin.to_string(),
            dirs: self.dirs.clone(),
        })
    }

    /// Runs one plugin with `config` on stdin; returns its result JSON (`null` for DEL).
    pub fn exec(&self, op: Op, target: &Target<'_>, config: &Value) -> Result<Value, CniError> {
        let plugin = config["type"].as_str().unwrap_or_default().to_string();
        let path = self.find(&plugin)?;
        let cni_path = std::env::join_paths(&self.dirs).unwrap_or_default();
        let args = target
            .args
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .chain(std::iter::once("IgnoreUnknown=1".to_string()))
            .collect::<Vec<_>>()
            .join(";");
        let mut child = Command::new(&path)
            .env("CNI_COMMAND", op.as_str())
            .env("CNI_CONTAINERID", target.container_id)
            .env("CNI_NETNS", target.netns)
            .env("CNI_IFNAME", target.ifname)
            .env("CNI_PATH", cni_path)
            .env("CNI_ARGS", args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| CniError::Spawn {
                path: path.clone(),
                source,
            })?;
        let input = config.to_string();
        if let Some(mut stdin) = child.stdin.take() {
            // A plugin that exits before reading all of stdin reports its own error; the
            // broken pipe here adds nothing to it.
            let _ = stdin.write_all(input.as_bytes());
        }
        let out = wait_bounded(child, PLUGIN_TIMEOUT).map_err(|source| CniError::Spawn {
            path: path.clone(),
            source,
        })?;
        let Some(out) = out else {
            return Err(CniError::Timeout {
                plugin,
                command: op.as_str(),
                seconds: PLUGIN_TIMEOUT.as_secs(),
            });
        };
        if !out.status.success() {
            return Err(match serde_json::from_slice::<ErrorBody>(&out.stdout) {
                Ok(body) => CniError::Plugin {
                    plugin,
                    command: op.as_str(),
                    code: body.code,
                    msg: body.msg,
                    details: body.details,
                },
                Err(_) => CniError::Crashed {
                    plugin,
                    command: op.as_str(),
                    status: out.status,
                    stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
                },
            });
        }
        if op == Op::Del || out.stdout.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&out.stdout).map_err(|source| CniError::Result { plugin, source })
    }

    /// ADD through a plugin list: each plugin gets the list's name and version and the previous
    /// plugin's result as `prevResult`; the last result is the list's.
    pub fn add_list(&self, list: &ConfList, target: &Target<'_>) -> Result<Value, CniError> {
        let mut prev = Value::Null;
        for plugin in &list.plugins {
            let config = list.plugin_config(plugin, &prev);
            let result = self.exec(Op::Add, target, &config)?;
            if !result.is_null() {
                prev = result;
            }
        }
        Ok(prev)
    }

    /// DEL through a plugin list in reverse order, each plugin given the cached ADD result as
    /// `prevResult` (when there is one). Every plugin runs even when an earlier one fails, so
    /// as much as possible is released; the errors come back together.
    pub fn del_list(
        &self,
        list: &ConfList,
        target: &Target<'_>,
        cached: &Value,
    ) -> Result<(), Vec<CniError>> {
        let errors: Vec<CniError> = list
            .plugins
            .iter()
            .rev()
            .filter_map(|plugin| {
                let config = list.plugin_config(plugin, cached);
                self.exec(Op::Del, target, &config).err()
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// A network configuration list (`.conflist`): a name and the plugins chained for it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ConfList {
    #[serde(rename = "cniVersion")]
    pub cni_version: String,
    pub name: String,
    pub plugins: Vec<Value>,
}

impl ConfList {
    /// The config one plugin of the list receives on stdin.
    fn plugin_config(&self, plugin: &Value, prev: &Value) -> Value {
        let mut config = plugin.clone();
        if let Some(obj) = config.as_object_mut() {
            obj.insert("cniVersion".into(), json!(self.cni_version));
            obj.insert("name".into(), json!(self.name));
            if !prev.is_null() {
                obj.insert("prevResult".into(), prev.clone());
            }
        }
        config
    }
}

/// Parses a plugin result into the parts berth reads.
pub fn parse_result(plugin: &str, result: &Value) -> Result<CniResult, CniError> {
    serde_json::from_value(result.clone()).map_err(|source| CniError::Result {
        plugin: plugin.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_members_inherit_name_version_and_prev_result() {
        let list = ConfList {
            cni_version: CNI_VERSION.into(),
            name: "n1".into(),
            plugins: vec![json!({"type": "bridge"}), json!({"type": "portmap"})],
        };
        let c = list.plugin_config(&list.plugins[1], &json!({"ips": []}));
        assert_eq!(c["name"], "n1");
        assert_eq!(c["cniVersion"], CNI_VERSION);
        assert_eq!(c["prevResult"], json!({"ips": []}));
        let c = list.plugin_config(&list.plugins[0], &Value::Null);
        assert!(c.get("prevResult").is_none());
    }

    #[test]
    fn plugin_errors_carry_code_msg_and_details() {
        // A real plugin refusing a config it cannot parse, before it touches anything.
        let plugins = Plugins::default();
        let target = Target {
            container_id: "berth-cni-error-test",
            netns: Path::new("/proc/self/ns/net"),
            ifname: "eth0",
            args: &[],
        };
        let config = json!({
            "cniVersion": CNI_VERSION, "name": "bad", "type": "bridge", "mtu": "not-a-number"
        });
        match plugins.exec(Op::Add, &target, &config) {
            Err(CniError::Plugin { code, msg, .. }) => {
                assert_eq!(code, 999);
                assert!(msg.contains("mtu"), "{msg}");
            }
            other => panic!("expected a plugin error, got {other:?}"),
        }
    }

    #[test]
    fn a_plugin_outliving_its_time_is_killed() {
        let spawn = |args: &[&str]| {
            Command::new(args[0])
                .args(&args[1..])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let started = Instant::now();
        let out = wait_bounded(spawn(&["sleep", "30"]), Duration::from_millis(200)).unwrap();
        assert!(out.is_none());
        assert!(started.elapsed() < Duration::from_secs(5));
        let out = wait_bounded(spawn(&["echo", "hi"]), Duration::from_secs(5)).unwrap();
        assert_eq!(out.unwrap().stdout, b"hi\n");
    }

    #[test]
    fn missing_plugin_is_reported_with_the_search_path() {
        let plugins = Plugins::new(vec![PathBuf::from("/nonexistent")]);
        let target = Target {
            container_id: "x",
            netns: Path::new("/proc/self/ns/net"),
            ifname: "eth0",
            args: &[],
        };
        let e = plugins
            .exec(Op::Add, &target, &json!({"type": "bridge"}))
            .unwrap_err();
        assert!(matches!(e, CniError::NotFound { .. }), "{e}");
        assert!(e.to_string().contains("/nonexistent"));
    }
}
