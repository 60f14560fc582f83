//! `GET /containers/{id}/json`: a container's record as docker's `ContainerJSON`, with
//! every field docker reports (tools and SDKs read them): the create request's HostConfig
//! over docker's defaults, the legacy top-level network fields, the /etc file paths.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};
use sha2::{Digest as _, Sha256};

use super::list::{mount_point, networks, port_bindings};
use crate::container::lifecycle::Paths;
use crate::container::record::Config;
use crate::container::{ContainerStore, Record, Status};
use crate::ops::error::Result;
use crate::ops::models::{
    ContainerInspect, ContainerState, Empty, EndpointSettings, GraphDriver, Health, HealthConfig,
    HealthLog, InspectConfig, InspectHostConfig, NetworkSettings, PortBinding, RestartPolicy,
};
use crate::ops::Engine;

/// `GET /containers/{id}/json`.
pub fn inspect(engine: &Engine, what: &str) -> Result<ContainerInspect> {
    let (store, r) = super::find(engine, what)?;
    Ok(inspect_record(engine, &store, &r))
}

fn inspect_record(engine: &Engine, store: &ContainerStore, r: &Record) -> ContainerInspect {
    let paths = Paths::new(engine.root(), store, r);
    let s = &r.state;
    let c = &r.config;
    let etc_file = |name: &str| {
        c.etc
            .as_ref()
            .map_or_else(String::new, |e| e.dir.join(name).display().to_string())
    };
    let ports = port_bindings(&c.ports);
    let time = |t: &str| {
        if t.is_empty() {
            "0001-01-01T00:00:00Z".to_string()
        } else {
            t.to_string()
        }
    };
    ContainerInspect {
        id: r.id.clone(),
        created: r.created.clone(),
        path: c.args.first().cloned().unwrap_or_default(),
        args: c.args.iter().skip(1).cloned().collect(),
        state: ContainerState {
            status: s.status.as_str().to_string(),
            running: matches!(s.status, Status::Running | Status::Paused),
            paused: s.status == Status::Paused,
            restarting: s.status == Status::Restarting,
            oom_killed: s.oom_killed,
            dead: s.status == Status::Dead,
            pid: s.pid,
            exit_code: s.exit_code,
            error: s.error.clone(),
            started_at: time(&s.started_at),
            finished_at: time(&s.finished_at),
            health: s.health.as_ref().map(|h| Health {
                status: h.status.clone(),
                failing_streak: h.failing_streak,
                log: h
                    .log
                    .iter()
                    .map(|l| HealthLog {
                        start: l.start.clone(),
                        end: l.end.clone(),
                        exit_code: l.exit_code,
                        output: l.output.clone(),
                    })
                    .collect(),
            }),
        },
        image: r.image_id.clone(),
        resolv_conf_path: etc_file("resolv.conf"),
        hostname_path: etc_file("hostname"),
        hosts_path: etc_file("hosts"),
        log_path: paths.log.clone(),
        name: format!("/{}", r.name),
        restart_count: s.restart_count,
        driver: r.snapshotter.clone(),
        platform: "linux".into(),
        mount_label: String::new(),
        process_label: String::new(),
        app_armor_profile: String::new(),
        exec_ids: None,
        host_config: InspectHostConfig {
            log_config: {
                let mut config = c.log_opts.clone();
                if c.log_max_size > 0 && !config.contains_key("max-size") {
                    config.insert("max-size".to_string(), c.log_max_size.to_string());
                }
                if c.log_max_file > 1 && !config.contains_key("max-file") {
                    config.insert("max-file".to_string(), c.log_max_file.to_string());
                }
                crate::ops::models::LogConfig {
                    r#type: "json-file".into(),
                    config,
                }
            },
            runtime: c.runtime.clone(),
            network_mode: c.network_mode.clone(),
            restart_policy: RestartPolicy {
                name: c.restart.name().to_string(),
                maximum_retry_count: match c.restart {
                    crate::container::record::RestartPolicy::OnFailure { max_retries } => {
                        i64::from(max_retries)
                    }
                    _ => 0,
                },
            },
            auto_remove: c.auto_remove,
            readonly_rootfs: c.read_only,
            privileged: c.privileged,
            memory: c.memory,
            nano_cpus: c.nano_cpus,
            pids_limit: (c.pids_limit > 0).then_some(c.pids_limit),
            port_bindings: ports.clone(),
            sysctls: c.sysctls.clone(),
            links: c
                .etc
                .iter()
                .flat_map(|e| &e.dns.links)
                .map(|l| format!("/{}:/{}/{}", l.target, r.name, l.alias))
                .collect(),
            rest: host_config_rest(c),
        },
        graph_driver: GraphDriver {
            data: BTreeMap::from([("MergedDir".to_string(), paths.rootfs.display().to_string())]),
            name: r.snapshotter.clone(),
        },
        mounts: c.mounts.iter().map(|m| mount_point(c, m)).collect(),
        config: InspectConfig {
            hostname: c.hostname.clone(),
            domainname: c.domainname.clone(),
            volumes: {
                let v: BTreeMap<String, Empty> = c
                    .mounts
                    .iter()
                    .filter(|m| m.anonymous)
                    .map(|m| (m.destination.clone(), Empty {}))
                    .collect();
                (!v.is_empty()).then_some(v)
            },
            on_build: None,
            user: c.user.clone(),
            attach_stdin: c.attach_stdin,
            attach_stdout: c.attach_stdout,
            attach_stderr: c.attach_stderr,
            tty: c.tty,
            open_stdin: c.open_stdin,
            stdin_once: c.stdin_once,
            env: c.env.clone(),
            cmd: c.cmd.clone(),
            entrypoint: c.entrypoint.clone(),
            image: r.image.clone(),
            working_dir: c.working_dir.clone(),
            labels: c.labels.clone(),
            stop_signal: c.stop_signal_set.then(|| c.stop_signal.clone()),
            stop_timeout: c.stop_timeout_set.then_some(c.stop_timeout),
            healthcheck: c.healthcheck.as_ref().map(|h| HealthConfig {
                test: h.test.clone(),
                interval: ms_to_nanos(h.interval_ms),
                timeout: ms_to_nanos(h.timeout_ms),
                start_period: ms_to_nanos(h.start_period_ms),
                retries: i64::from(h.retries),
            }),
            exposed_ports: c
                .exposed_ports
                .iter()
                .map(|p| (p.clone(), Empty {}))
                .collect(),
        },
        network_settings: network_settings(engine, r, ports),
    }
}

fn ms_to_nanos(ms: u64) -> i64 {
    i64::try_from(ms.saturating_mul(1_000_000)).unwrap_or(i64::MAX)
}

/// dockerd 20.10's HostConfig for a plain `docker run` of its CLI (cgroup v1 host): what a request
/// that says nothing gets (the masked paths are added from specgen's lists).
const DOCKER_DEFAULTS: &str = r#"{
    "Binds": null, "ContainerIDFile": "", "VolumeDriver": "", "VolumesFrom": null,
    "CapAdd": null, "CapDrop": null, "CgroupnsMode": "host", "Dns": [], "DnsOptions": [],
    "DnsSearch": [], "ExtraHosts": null, "GroupAdd": null, "IpcMode": "private",
    "Cgroup": "", "OomScoreAdj": 0, "PidMode": "", "PublishAllPorts": false,
    "SecurityOpt": null, "UTSMode": "", "UsernsMode": "", "ShmSize": 67108864,
    "ConsoleSize": [0, 0], "Isolation": "", "CpuShares": 0, "CgroupParent": "",
    "BlkioWeight": 0, "BlkioWeightDevice": [], "BlkioDeviceReadBps": null,
    "BlkioDeviceWriteBps": null, "BlkioDeviceReadIOps": null, "BlkioDeviceWriteIOps": null,
    "CpuPeriod": 0, "CpuQuota": 0, "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0,
    "CpusetCpus": "", "CpusetMems": "", "Devices": [], "DeviceCgroupRules": null,
    "DeviceRequests": null, "KernelMemory": 0, "KernelMemoryTCP": 0,
    "MemoryReservation": 0, "MemorySwap": 0, "MemorySwappiness": null,
    "OomKillDisable": false, "Ulimits": null, "CpuCount": 0, "CpuPercent": 0,
    "IOMaximumIOps": 0, "IOMaximumBandwidth": 0
}"#;

fn docker_defaults() -> Map<String, Value> {
    let mut m: Map<String, Value> = serde_json::from_str(DOCKER_DEFAULTS).unwrap_or_default();
    m.insert("MaskedPaths".into(), json!(crate::specgen::MASKED_PATHS));
    m.insert(
        "ReadonlyPaths".into(),
        json!(crate::specgen::READONLY_PATHS),
    );
    m
}

/// HostConfig fields docker writes only when set (Go's `omitempty`).
const OMITTED_WHEN_EMPTY: [&str; 3] = ["Init", "Tmpfs", "StorageOpt"];

/// HostConfig beyond [`InspectHostConfig`]'s own fields: docker's defaults, overlaid with
/// what the create request set (an empty list or string in the request keeps the default,
/// as docker's CLI sends them; records made before requests were kept show the defaults).
/// Keys match case-insensitively, as Go decodes JSON (docker-py sends `CPURealtimePeriod`
/// for `CpuRealtimePeriod`).
fn host_config_rest(c: &Config) -> Map<String, Value> {
    let mut out = docker_defaults();
    if let Value::Object(req) = &c.host_request {
        for (k, v) in req {
            let empty = v.is_null()
                || v.as_i64() == Some(0)
                || v.as_str().is_some_and(str::is_empty)
                || v.as_array().is_some_and(Vec::is_empty)
                || v.as_object().is_some_and(Map::is_empty);
            if empty {
                continue;
            }
            let known = out
                .keys()
                .map(String::as_str)
                .chain(OMITTED_WHEN_EMPTY)
                .find(|d| d.eq_ignore_ascii_case(k))
                .map(str::to_string);
            if let Some(key) = known {
                out.insert(key, v.clone());
            }
        }
    }
    if c.privileged {
        // A privileged container has nothing masked, as docker reports.
        out.insert("MaskedPaths".into(), Value::Null);
        out.insert("ReadonlyPaths".into(), Value::Null);
    }
    out
}

/// A stable 64-hex id derived from the container's (docker's are random; berth keeps
/// none, so the same container always shows the same).
fn derived_id(what: &str, id: &str) -> String {
    hex::encode(Sha256::digest(format!("{what}\0{id}").as_bytes()))
}

/// `NetworkSettings`: the networks (with `none`/`host` as docker lists them), the ports
/// and the legacy top-level fields, filled from the default bridge network's endpoint.
fn network_settings(
    engine: &Engine,
    r: &Record,
    ports: BTreeMap<String, Vec<PortBinding>>,
) -> NetworkSettings {
    let mut nets = networks(r);
    let store = crate::network::NetworkStore::open(engine.root(), &crate::network::run_dir()).ok();
    let mode = r.config.network_mode.as_str();
    if matches!(mode, "none" | "host") {
        nets.entry(mode.to_string()).or_default();
    }
    let live = matches!(r.state.status, Status::Running | Status::Paused);
    for (name, ep) in nets.iter_mut() {
        if ep.network_id.is_empty() {
            ep.network_id = if matches!(name.as_str(), "none" | "host") {
                crate::ops::networks::predefined_id(name)
            } else {
                store
                    .as_ref()
                    .and_then(|s| s.get(name).ok())
                    .map_or_else(String::new, |n| n.id)
            };
        }
        if live && ep.endpoint_id.is_empty() {
            ep.endpoint_id = derived_id(&format!("endpoint {name}"), &r.id);
        }
    }
    let bridge = nets.get("bridge").cloned().unwrap_or_default();
    let own_netns = !matches!(mode, "host") && !mode.starts_with("container:");
    let sandbox_key = if live && own_netns {
        crate::network::Netns::path(&crate::network::run_dir(), &r.id)
            .display()
            .to_string()
    } else {
        String::new()
    };
    let EndpointSettings {
        endpoint_id,
        gateway,
        ip_address,
        ip_prefix_len,
        ipv6_gateway,
        global_ipv6_address,
        global_ipv6_prefix_len,
        mac_address,
        ..
    } = bridge;
    let legacy = json!({
        "Bridge": "",
        "SandboxID": if live { derived_id("sandbox", &r.id) } else { String::new() },
        "HairpinMode": false,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "SandboxKey": sandbox_key,
        "SecondaryIPAddresses": null,
        "SecondaryIPv6Addresses": null,
        "EndpointID": endpoint_id,
        "Gateway": gateway,
        "GlobalIPv6Address": global_ipv6_address,
        "GlobalIPv6PrefixLen": global_ipv6_prefix_len,
        "IPAddress": ip_address,
        "IPPrefixLen": ip_prefix_len,
        "IPv6Gateway": ipv6_gateway,
        "MacAddress": mac_address,
    });
    NetworkSettings {
        networks: nets,
        ports,
        legacy: match legacy {
            Value::Object(m) => m,
            _ => Map::new(),
        },
    }
}
