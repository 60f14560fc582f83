//! Docker's command-line value syntax, for front ends that take flags: each parser turns a
//! flag's text into the typed value a request carries (docker's CLI does the same before it
//! calls the API), with docker's error wording naming the flag.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use super::models::{DeviceMapping, Mount, PortBinding, RestartPolicy, Ulimit};
use crate::specgen::flags::{self as f, FlagError};

pub use crate::logs::parse_timestamp;
pub use crate::specgen::flags::{parse_env, parse_env_file, parse_label, parse_user};

/// `--memory`, `--shm-size`, `--memory-reservation`: `512m`, `1.5g`, ... in bytes.
pub fn bytes(flag: &'static str, value: &str) -> Result<i64, FlagError> {
    let n = f::parse_bytes(flag, value)?;
    Ok(i64::try_from(n).unwrap_or(i64::MAX))
}

/// `--memory-swap`: bytes, or -1 for unlimited swap.
pub fn memory_swap(value: &str) -> Result<i64, FlagError> {
    f::parse_memory_swap(value)
}

/// `--cpus 1.5`: billionths of a CPU.
pub fn nano_cpus(value: &str) -> Result<i64, FlagError> {
    Ok(i64::try_from(f::parse_cpus(value)?.0).unwrap_or(i64::MAX))
}

/// `--cpu-shares`.
pub fn cpu_shares(value: &str) -> Result<i64, FlagError> {
    Ok(i64::try_from(f::parse_cpu_shares(value)?).unwrap_or(i64::MAX))
}

/// `--pids-limit` (-1 unlimited).
pub fn pids_limit(value: &str) -> Result<i64, FlagError> {
    f::parse_pids_limit(value)
}

/// `--cpuset-cpus 0-2,4`.
pub fn cpuset(value: &str) -> Result<String, FlagError> {
    f::parse_cpuset(value)
}

/// `--restart no|always|unless-stopped|on-failure[:N]`.
pub fn restart(value: &str) -> Result<RestartPolicy, FlagError> {
    Ok(match f::parse_restart(value)? {
        f::RestartPolicy::No => RestartPolicy {
            name: "no".into(),
            maximum_retry_count: 0,
        },
        f::RestartPolicy::Always => RestartPolicy {
            name: "always".into(),
            maximum_retry_count: 0,
        },
        f::RestartPolicy::UnlessStopped => RestartPolicy {
            name: "unless-stopped".into(),
            maximum_retry_count: 0,
        },
        f::RestartPolicy::OnFailure { max_retries } => RestartPolicy {
            name: "on-failure".into(),
            maximum_retry_count: i64::from(max_retries.unwrap_or(0)),
        },
    })
}

/// `--ulimit name=soft[:hard]` (-1 unlimited).
pub fn ulimit(value: &str) -> Result<Ulimit, FlagError> {
    let u = f::parse_ulimit(value)?;
    let limit = |n: u64| i64::try_from(n).unwrap_or(-1);
    Ok(Ulimit {
        name: u.name,
        soft: limit(u.soft),
        hard: limit(u.hard),
    })
}

/// `--sysctl KEY=VALUE`: a namespaced sysctl.
pub fn sysctl(value: &str) -> Result<(String, String), FlagError> {
    f::parse_sysctl(value)
}

/// `--device /dev/x[:/dev/y][:rwm]`.
pub fn device(value: &str) -> Result<DeviceMapping, FlagError> {
    let d = f::parse_device(value)?;
    Ok(DeviceMapping {
        path_on_host: d.host_path.to_string_lossy().into_owned(),
        path_in_container: d.container_path.to_string_lossy().into_owned(),
        cgroup_permissions: d.permissions,
    })
}

/// `--mount type=bind|volume|tmpfs,...`.
pub fn mount(value: &str) -> Result<Mount, FlagError> {
    Ok(super::containers::plan::mount_to_model(f::parse_mount(
        value,
    )?))
}

/// `--tmpfs /path[:opts]`: the target and its options, as `HostConfig.Tmpfs` holds them.
pub fn tmpfs(value: &str) -> (String, String) {
    let (path, opts) = value.split_once(':').unwrap_or((value, ""));
    (path.to_string(), opts.to_string())
}

/// `--health-interval 30s` and the other health durations, in nanoseconds.
pub fn duration_nanos(flag: &'static str, value: &str) -> Result<i64, FlagError> {
    Ok(i64::try_from(f::parse_duration(flag, value)?.as_nanos()).unwrap_or(i64::MAX))
}

/// `-p [ip:][host:]ctr[/proto]`: the exposed ports and their bindings, merged into
/// `ExposedPorts` and `PortBindings`.
pub fn publish(
    value: &str,
    exposed: &mut BTreeMap<String, super::models::Empty>,
    bindings: &mut BTreeMap<String, Vec<PortBinding>>,
) -> Result<(), crate::network::PortError> {
    for m in crate::network::parse_publish(value)? {
        let key = format!("{}/{}", m.container_port, m.protocol);
        exposed.insert(key.clone(), super::models::Empty {});
        bindings.entry(key).or_default().push(PortBinding {
            host_ip: m.host_ip.map(|ip| ip.to_string()).unwrap_or_default(),
            host_port: if m.host_port == 0 {
                String::new()
            } else {
                m.host_port.to_string()
            },
        });
    }
    Ok(())
}

/// `--tail N|all` (a negative number also means all).
pub fn tail(value: &str) -> Option<Option<usize>> {
    match value {
        "all" => Some(None),
        n => match n.parse::<i64>() {
            Ok(n) if n < 0 => Some(None),
            Ok(n) => Some(Some(n as usize)),
            Err(_) => None,
        },
    }
}

/// `--since`/`--until`: RFC 3339, a Unix timestamp or a duration before `now`.
pub fn log_time(value: &str, now: SystemTime) -> Result<SystemTime, crate::logs::LogError> {
    parse_timestamp(value, now)
}

/// Seconds as a duration (`stop -t`): negative waits (practically) forever, as docker.
pub fn stop_timeout(seconds: i64) -> Duration {
    if seconds < 0 {
        Duration::from_secs(u64::MAX / 4)
    } else {
        Duration::from_secs(seconds as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_merges_into_exposed_ports_and_bindings() {
        let (mut e, mut b) = (BTreeMap::new(), BTreeMap::new());
        publish("127.0.0.1:8080:80", &mut e, &mut b).unwrap();
        publish("53/udp", &mut e, &mut b).unwrap();
        publish("8081:80", &mut e, &mut b).unwrap();
        assert_eq!(e.keys().collect::<Vec<_>>(), ["53/udp", "80/tcp"]);
        assert_eq!(
            b["80/tcp"],
            vec![
                PortBinding {
                    host_ip: "127.0.0.1".into(),
                    host_port: "8080".into()
                },
                PortBinding {
                    host_ip: String::new(),
                    host_port: "8081".into()
                }
            ]
        );
        assert_eq!(b["53/udp"], vec![PortBinding::default()]);
    }

    #[test]
    fn restart_and_ulimit_take_dockers_model_shapes() {
        assert_eq!(
            restart("on-failure:3").unwrap(),
            RestartPolicy {
                name: "on-failure".into(),
                maximum_retry_count: 3
            }
        );
        assert_eq!(restart("no").unwrap().name, "no");
        assert!(restart("sometimes").is_err());
        let u = ulimit("nofile=1024:-1").unwrap();
        assert_eq!((u.name.as_str(), u.soft, u.hard), ("nofile", 1024, -1));
    }

    #[test]
    fn tail_and_durations() {
        assert_eq!(tail("all"), Some(None));
        assert_eq!(tail("-1"), Some(None));
        assert_eq!(tail("5"), Some(Some(5)));
        assert_eq!(tail("x"), None);
        assert_eq!(
            duration_nanos("--health-interval", "2s").unwrap(),
            2_000_000_000
        );
    }
}
