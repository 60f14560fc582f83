//! The system as a whole: version, info (counts, the host, what berth supports).

use std::collections::BTreeMap;
use std::path::Path;

use crate::container::lifecycle::refresh;
use crate::container::Status;
use crate::ops::error::Result;
use crate::ops::models::{
    Component, DisabledFeature, IndexInfo, Platform, Plugins, RegistryConfig, RootlessIdRanges,
    RuntimeInfo, SwarmInfo, SystemInfo, SystemVersion,
};
use crate::ops::Engine;
use crate::snapshot::Backend;

/// The API versions berth's service speaks (oldest, newest).
pub const API_VERSIONS: (&str, &str) = ("1.24", "1.51");

/// `GET /version`.
pub fn version() -> SystemVersion {
    let kernel = kernel_release();
    let arch = crate::platform::Platform::host().architecture.clone();
    let mut details = BTreeMap::new();
    details.insert("ApiVersion".into(), API_VERSIONS.1.into());
    details.insert("MinAPIVersion".into(), API_VERSIONS.0.into());
    details.insert("Os".into(), "linux".into());
    details.insert("Arch".into(), arch.clone());
    details.insert("KernelVersion".into(), kernel.clone());
    SystemVersion {
        platform: Platform {
            name: "Berth".into(),
        },
        components: vec![Component {
            name: "Engine".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            details,
        }],
        version: env!("CARGO_PKG_VERSION").into(),
        api_version: API_VERSIONS.1.into(),
        min_api_version: API_VERSIONS.0.into(),
        git_commit: String::new(),
        go_version: "rust".into(),
        os: "linux".into(),
        arch,
        kernel_version: kernel,
        build_time: String::new(),
    }
}

/// Whether berth runs as an ordinary user (rootless): for front ends that set things up
/// differently then (the API socket's owner).
pub fn is_rootless() -> bool {
    crate::rootless::is_rootless()
}

/// Runs the job of rootless berth's user-namespace helper when this process is one (the
/// helper is berth itself, started with the job in its environment); returns the exit code.
pub fn userns_job() -> Option<u8> {
    crate::rootless::netns::main()
        .or_else(crate::rootless::userns::job_main)
        .map(|c| c.clamp(0, 255) as u8)
}

/// `GET /info`.
pub fn info(engine: &Engine) -> Result<SystemInfo> {
    let store = engine.containers()?;
    let (mut running, mut paused, mut stopped) = (0, 0, 0);
    let records = store.list()?;
    for r in records.iter().cloned() {
        let status = r.state.status;
        let status = refresh(&store, r).map_or(status, |r| r.state.status);
        match status {
            Status::Running | Status::Restarting => running += 1,
            Status::Paused => paused += 1,
            _ => stopped += 1,
        }
    }
    let images = engine.images()?.records()?;
    let mut ids: Vec<_> = images.iter().map(|r| r.digest.to_string()).collect();
    ids.sort();
    ids.dedup();
    let hostname = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let rootless = crate::rootless::is_rootless();
    let id_ranges = rootless.then(crate::rootless::id_ranges);
    let mut runtimes = BTreeMap::new();
    for name in ["berth-runtime", "runc", "crun"] {
        if let Ok(p) = crate::container::runtime::resolve_runtime(name) {
            runtimes.insert(
                name.to_string(),
                RuntimeInfo {
                    path: p.display().to_string(),
                },
            );
        }
    }
    let mut index_configs = BTreeMap::new();
    index_configs.insert(
        "docker.io".to_string(),
        IndexInfo {
            name: "docker.io".into(),
            mirrors: Vec::new(),
            secure: true,
            official: true,
        },
    );
    for r in &engine.settings().registries.insecure {
        index_configs.insert(
            r.clone(),
            IndexInfo {
                name: r.clone(),
                mirrors: Vec::new(),
                secure: false,
                official: false,
            },
        );
    }
    Ok(SystemInfo {
        id: machine_id(),
        containers: records.len() as i64,
        containers_running: running,
        containers_paused: paused,
        containers_stopped: stopped,
        images: ids.len() as i64,
        driver: Backend::detect().name().to_string(),
        driver_status: Vec::new(),
        plugins: Plugins {
            volume: vec!["local".into()],
            network: vec!["bridge".into(), "host".into(), "none".into()],
            authorization: None,
            log: vec!["json-file".into()],
        },
        memory_limit: true,
        swap_limit: Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists() || v2,
        cpu_cfs_period: true,
        cpu_cfs_quota: true,
        cpu_shares: true,
        cpu_set: true,
        pids_limit: true,
        ipv4_forwarding: std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
            .is_ok_and(|s| s.trim() == "1"),
        debug: false,
        n_fd: std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as i64),
        n_goroutines: 0,
        system_time: crate::container::record::now_rfc3339(),
        logging_driver: "json-file".into(),
        cgroup_driver: "cgroupfs".into(),
        cgroup_version: if v2 { "2" } else { "1" }.into(),
        n_events_listener: 0,
        kernel_version: kernel_release(),
        operating_system: os_release("PRETTY_NAME").unwrap_or_else(|| "Linux".into()),
        os_version: os_release("VERSION_ID").unwrap_or_default(),
        os_type: "linux".into(),
        architecture: std::env::consts::ARCH.into(),
        ncpu: std::thread::available_parallelism().map_or(1, |n| n.get() as i64),
        mem_total: mem_total(),
        index_server_address: "https://index.docker.io/v1/".into(),
        registry_config: RegistryConfig {
            insecure_registry_cidrs: vec!["127.0.0.0/8".into()],
            index_configs,
            mirrors: Vec::new(),
        },
        docker_root_dir: engine.root().display().to_string(),
        name: hostname,
        labels: Vec::new(),
        experimental_build: false,
        server_version: env!("CARGO_PKG_VERSION").into(),
        runtimes,
        default_runtime: "berth-runtime".into(),
        swarm: SwarmInfo {
            local_node_state: "inactive".into(),
            ..SwarmInfo::default()
        },
        live_restore_enabled: true,
        isolation: String::new(),
        init_binary: "tini".into(),
        security_options: if rootless {
            vec![
                "name=seccomp,profile=builtin".into(),
                "name=rootless".into(),
            ]
        } else {
            vec!["name=seccomp,profile=builtin".into()]
        },
        warnings: Vec::new(),
        rootless,
        rootless_id_ranges: id_ranges.as_ref().map(|ids| {
            let range = |r: Option<crate::rootless::SubRange>| {
                r.map(|r| format!("{}-{}", r.first, r.first as u64 + r.count as u64 - 1))
                    .unwrap_or_default()
            };
            RootlessIdRanges {
                uid: ids.uid,
                gid: ids.gid,
                sub_uids: range(ids.sub_uids),
                sub_gids: range(ids.sub_gids),
            }
        }),
        rootless_disabled: id_ranges
            .as_ref()
            .map(crate::rootless::disabled_features)
            .unwrap_or_default()
            .into_iter()
            .map(|d| DisabledFeature {
                feature: d.feature.into(),
                reason: d.reason,
            })
            .collect(),
    })
}

fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn machine_id() -> String {
    std::fs::read_to_string("/etc/machine-id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn os_release(key: &str) -> Option<String> {
    let text = std::fs::read_to_string("/etc/os-release").ok()?;
    text.lines().find_map(|l| {
        let v = l.strip_prefix(key)?.strip_prefix('=')?;
        Some(v.trim_matches('"').to_string())
    })
}

fn mem_total() -> i64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            let l = t.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kb: i64 = l.split_whitespace().nth(1)?.parse().ok()?;
            Some(kb * 1024)
        })
        .unwrap_or(0)
}
