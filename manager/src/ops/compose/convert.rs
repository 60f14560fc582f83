//! A service of the model as docker's create request: the same `Config`/`HostConfig`/
//! `NetworkingConfig` that `berth run`'s flags make, with docker compose's labels.

use std::collections::BTreeMap;

use crate::compose::model::{Project, Service};
use crate::compose::{config_hash, ComposeError};
use crate::ops::error::Result;
use crate::ops::models::{
    BindOptions, ContainerCreateRequest, EndpointIpamConfig, EndpointSettings, HealthConfig,
    LogConfig, Mount, PortBinding, TmpfsOptions, Ulimit, VolumeOptions,
};
use crate::ops::parse;
use crate::specgen::flags::{self as f, FlagError};

use super::labels;

/// `PROJECT-SERVICE-N`, or the service's `container_name`.
pub fn container_name(project: &Project, service: &str, svc: &Service, number: u32) -> String {
    match &svc.container_name {
        Some(n) => n.clone(),
        None => format!("{}-{service}-{number}", project.name),
    }
}

/// The image a service runs: its `image`, else the one `build` makes (`PROJECT-SERVICE`).
pub fn image_name(project: &Project, service: &str, svc: &Service) -> String {
    match &svc.image {
        Some(i) => i.clone(),
        None => format!("{}-{service}", project.name),
    }
}

fn bad(service: &str, field: &str, message: impl std::fmt::Display) -> ComposeError {
    ComposeError::Field {
        field: format!("services.{service}.{field}"),
        message: message.to_string(),
    }
}

/// The create request of container `number` of `service`. `service_containers` resolves
/// `network_mode: service:X` to a container of X.
pub fn create_request(
    project: &Project,
    service: &str,
    svc: &Service,
    number: u32,
    oneoff: bool,
    service_container: &dyn Fn(&str) -> Option<String>,
) -> Result<ContainerCreateRequest> {
    let mut req = ContainerCreateRequest::default();
    let name = container_name(project, service, svc, number);
    let c = &mut req.config;
    c.image = image_name(project, service, svc);
    c.cmd = svc.command.clone();
    c.entrypoint = svc.entrypoint.clone();
    c.env = svc
        .environment
        .iter()
        .map(|(k, v)| match v {
            Some(v) => format!("{k}={v}"),
            None => k.clone(),
        })
        .collect();
    c.hostname = svc.hostname.clone().unwrap_or_default();
    c.domainname = svc.domainname.clone().unwrap_or_default();
    c.user = svc.user.clone().unwrap_or_default();
    c.working_dir = svc.working_dir.clone().unwrap_or_default();
    c.tty = svc.tty.unwrap_or(false);
    c.open_stdin = svc.stdin_open.unwrap_or(false);
    c.stop_signal = svc.stop_signal.clone().unwrap_or_default();
    if let Some(g) = &svc.stop_grace_period {
        let ns = parse::duration_nanos("stop_grace_period", g)
            .map_err(|e| bad(service, "stop_grace_period", e))?;
        c.stop_timeout = Some(ns / 1_000_000_000);
    }
    if let Some(h) = &svc.healthcheck {
        let dur = |field: &'static str, v: &Option<String>| -> Result<i64> {
            match v {
                Some(v) => Ok(parse::duration_nanos(field, v)
                    .map_err(|e| bad(service, &format!("healthcheck.{field}"), e))?),
                None => Ok(0),
            }
        };
        c.healthcheck = Some(if h.disable == Some(true) {
            HealthConfig {
                test: vec!["NONE".into()],
                ..HealthConfig::default()
            }
        } else {
            HealthConfig {
                test: h.test.clone(),
                interval: dur("interval", &h.interval)?,
                timeout: dur("timeout", &h.timeout)?,
                start_period: dur("start_period", &h.start_period)?,
                retries: i64::from(h.retries.unwrap_or(0)),
            }
        });
    }
    for e in &svc.expose {
        let e = if e.contains('/') {
            e.clone()
        } else {
            format!("{e}/tcp")
        };
        c.exposed_ports.insert(e, Default::default());
    }
    // Labels: the service's, then compose's own.
    for (k, v) in svc.labels.iter().chain(
        svc.deploy
            .as_ref()
            .map(|d| d.labels.iter())
            .into_iter()
            .flatten(),
    ) {
        c.labels.insert(k.clone(), v.clone().unwrap_or_default());
    }
    let l = &mut c.labels;
    l.insert(labels::PROJECT.into(), project.name.clone());
    l.insert(labels::SERVICE.into(), service.into());
    l.insert(labels::NUMBER.into(), number.to_string());
    l.insert(labels::HASH.into(), config_hash(svc));
    l.insert(
        labels::ONEOFF.into(),
        if oneoff { "True" } else { "False" }.into(),
    );
    l.insert(labels::WORKING_DIR.into(), project.working_dir.clone());
    l.insert(labels::CONFIG_FILES.into(), project.config_files.join(","));
    l.insert(labels::IMAGE.into(), image_name(project, service, svc));
    l.insert(labels::VERSION.into(), super::COMPOSE_VERSION.into());
    let deps: Vec<String> = svc
        .depends_on
        .iter()
        .map(|(d, o)| {
            let cond = serde_json::to_value(o.condition)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default();
            format!("{d}:{cond}:{}", o.restart.unwrap_or(false))
        })
        .collect();
    l.insert(labels::DEPENDS_ON.into(), deps.join(","));

    let h = &mut req.host_config;
    for p in &svc.ports {
        let key = format!("{}/{}", p.target, p.protocol);
        c.exposed_ports.insert(key.clone(), Default::default());
        h.port_bindings.entry(key).or_default().push(PortBinding {
            host_ip: p.host_ip.clone().unwrap_or_default(),
            host_port: p.published.clone().unwrap_or_default(),
        });
    }
    for v in &svc.volumes {
        let source = match (v.kind.as_str(), &v.source) {
            ("volume", Some(s)) if !s.is_empty() => project
                .volumes
                .get(s)
                .and_then(|vol| vol.name.clone())
                .unwrap_or_else(|| s.clone()),
            (_, s) => s.clone().unwrap_or_default(),
        };
        let mut m = Mount {
            r#type: v.kind.clone(),
            source,
            target: v.target.clone(),
            read_only: v.read_only.unwrap_or(false),
            ..Mount::default()
        };
        match v.kind.as_str() {
            "bind" => {
                let b = v.bind.clone().unwrap_or_default();
                m.bind_options = Some(BindOptions {
                    propagation: b.propagation.unwrap_or_default(),
                    create_mountpoint: b.create_host_path.unwrap_or(false),
                });
            }
            "volume" => {
                if let Some(o) = &v.volume {
                    m.volume_options = Some(VolumeOptions {
                        no_copy: o.nocopy.unwrap_or(false),
                        labels: BTreeMap::new(),
                    });
                }
            }
            "tmpfs" => {
                if let Some(t) = &v.tmpfs {
                    let size = match &t.size {
                        Some(s) => {
                            let s = crate::compose::yaml::scalar_str(s).unwrap_or_default();
                            parse::bytes("tmpfs.size", &s)
                                .map_err(|e| bad(service, "volumes.tmpfs.size", e))?
                        }
                        None => 0,
                    };
                    m.tmpfs_options = Some(TmpfsOptions {
                        size_bytes: size,
                        mode: t.mode.unwrap_or(0),
                        options: Vec::new(),
                    });
                }
            }
            other => {
                return Err(bad(service, "volumes", format!("unsupported type {other:?}")).into())
            }
        }
        h.mounts.push(m);
    }
    // Secrets and configs from files, read-only where the specification puts them.
    for (refs, objects, dir) in [
        (&svc.secrets, &project.secrets, "/run/secrets/"),
        (&svc.configs, &project.configs, "/"),
    ] {
        for r in refs {
            let Some(file) = objects.get(&r.source).and_then(|o| o.file.clone()) else {
                return Err(bad(service, "secrets", format!("{:?} has no file", r.source)).into());
            };
            let target = match &r.target {
                Some(t) if t.starts_with('/') => t.clone(),
                Some(t) => format!("{dir}{t}"),
                None => format!("{dir}{}", r.source),
            };
            h.mounts.push(Mount {
                r#type: "bind".into(),
                source: file,
                target,
                read_only: true,
                ..Mount::default()
            });
        }
    }
    for t in &svc.tmpfs {
        let (path, opts) = parse::tmpfs(t);
        h.tmpfs.insert(path, opts);
    }
    h.cap_add = svc.cap_add.clone();
    h.cap_drop = svc.cap_drop.clone();
    h.dns = svc.dns.clone();
    h.dns_search = svc.dns_search.clone();
    h.dns_options = svc.dns_opt.clone();
    h.extra_hosts = svc
        .extra_hosts
        .iter()
        .map(|e| match e.split_once('=') {
            Some((host, ip)) if !e.contains(':') || ip.contains(':') => format!("{host}:{ip}"),
            _ => e.clone(),
        })
        .collect();
    h.ipc_mode = svc.ipc.clone().unwrap_or_default();
    h.pid_mode = svc.pid.clone().unwrap_or_default();
    h.uts_mode = svc.uts.clone().unwrap_or_default();
    h.privileged = svc.privileged.unwrap_or(false);
    h.readonly_rootfs = svc.read_only.unwrap_or(false);
    h.security_opt = svc.security_opt.clone();
    h.init = svc.init;
    h.runtime = svc.runtime.clone().unwrap_or_default();
    if let Some(s) = &svc.shm_size {
        h.shm_size = parse::bytes("shm_size", s).map_err(|e| bad(service, "shm_size", e))?;
    }
    let limits = svc
        .deploy
        .as_ref()
        .and_then(|d| d.resources.as_ref())
        .and_then(|r| r.limits.as_ref());
    let memory = svc.mem_limit.clone().or_else(|| {
        limits
            .and_then(|l| l.memory.as_ref())
            .and_then(crate::compose::yaml::scalar_str)
    });
    if let Some(m) = memory {
        h.memory = parse::bytes("mem_limit", &m).map_err(|e| bad(service, "mem_limit", e))?;
    }
    if let Some(m) = &svc.mem_reservation {
        h.memory_reservation =
            parse::bytes("mem_reservation", m).map_err(|e| bad(service, "mem_reservation", e))?;
    }
    let cpus = svc
        .cpus
        .as_ref()
        .or_else(|| limits.and_then(|l| l.cpus.as_ref()))
        .and_then(crate::compose::yaml::scalar_str);
    if let Some(cpus) = cpus {
        h.nano_cpus = parse::nano_cpus(&cpus).map_err(|e| bad(service, "cpus", e))?;
    }
    h.pids_limit = svc.pids_limit.or_else(|| limits.and_then(|l| l.pids));
    h.cpu_shares = svc.cpu_shares.unwrap_or(0);
    h.cpuset_cpus = svc.cpuset.clone().unwrap_or_default();
    h.ulimits = svc
        .ulimits
        .iter()
        .map(|(name, u)| Ulimit {
            name: name.clone(),
            soft: u.soft,
            hard: u.hard,
        })
        .collect();
    for d in &svc.devices {
        let d = crate::compose::yaml::scalar_str(d)
            .ok_or_else(|| bad(service, "devices", "only the short syntax is supported"))?;
        h.devices
            .push(parse::device(&d).map_err(|e| bad(service, "devices", e))?);
    }
    if let Some(lg) = &svc.logging {
        h.log_config = LogConfig {
            r#type: lg.driver.clone().unwrap_or_default(),
            config: lg
                .options
                .iter()
                .map(|(k, v)| (k.clone(), v.clone().unwrap_or_default()))
                .collect(),
        };
    }
    let restart = match (
        &svc.restart,
        svc.deploy.as_ref().and_then(|d| d.restart_policy.as_ref()),
    ) {
        (Some(r), _) => Some(r.clone()),
        (None, Some(rp)) => Some(match rp.condition.as_deref() {
            Some("none") => "no".to_string(),
            Some("on-failure") => match rp.max_attempts {
                Some(n) => format!("on-failure:{n}"),
                None => "on-failure".into(),
            },
            _ => "always".into(),
        }),
        (None, None) => None,
    };
    if let Some(r) = restart.filter(|r| !oneoff && r != "no") {
        h.restart_policy = parse::restart(&r).map_err(|e| bad(service, "restart", e))?;
    }

    // Networks: the first (by priority, then name) is the container's network mode, the
    // others are joined at start; every endpoint answers to the service's name and the
    // container's, as docker compose's do.
    match svc.network_mode.as_deref() {
        Some(mode) => {
            h.network_mode = match mode.strip_prefix("service:") {
                Some(target) => match service_container(target) {
                    Some(c) => format!("container:{c}"),
                    None => {
                        return Err(ComposeError::NotRunning {
                            service: target.into(),
                        }
                        .into())
                    }
                },
                None => mode.to_string(),
            }
        }
        None => {
            let mut nets: Vec<(&String, Option<&crate::compose::model::ServiceNetwork>)> =
                svc.networks.iter().map(|(k, v)| (k, v.as_ref())).collect();
            nets.sort_by_key(|(k, v)| (-v.and_then(|n| n.priority).unwrap_or(0), (*k).clone()));
            for (i, (key, sn)) in nets.iter().enumerate() {
                let real = project
                    .networks
                    .get(*key)
                    .and_then(|n| n.name.clone())
                    .unwrap_or_else(|| (*key).clone());
                if i == 0 {
                    h.network_mode = real.clone();
                }
                let mut aliases = vec![service.to_string()];
                if !oneoff {
                    aliases.push(name.clone());
                }
                if let Some(sn) = sn {
                    aliases.extend(sn.aliases.iter().cloned());
                }
                let ep = EndpointSettings {
                    aliases,
                    ipam_config: sn
                        .and_then(|n| n.ipv4_address.clone())
                        .map(|a| EndpointIpamConfig { ipv4_address: a }),
                    ..EndpointSettings::default()
                };
                req.networking_config.endpoints_config.insert(real, ep);
            }
        }
    }
    // Links: the alias resolves, for this container only, to a container of the linked
    // service (started first: a link is a dependency) or to an external container.
    for link in &svc.links {
        let (target, alias) = link.split_once(':').unwrap_or((link, link));
        if let Some(c) = service_container(target) {
            h.links.push(format!("{c}:{alias}"));
        }
    }
    for link in &svc.external_links {
        let (target, alias) = link.split_once(':').unwrap_or((link, link));
        h.links.push(format!("{target}:{alias}"));
    }
    for (key, value) in &svc.sysctls {
        let value = value.clone().unwrap_or_default();
        let field = format!("sysctls.{key}");
        let why = |e: FlagError| match e {
            FlagError::Invalid { reason, .. } => reason,
            e => e.to_string(),
        };
        let ns = f::check_sysctl(key, &value).map_err(|e| bad(service, &field, why(e)))?;
        if ns == f::SysctlNamespace::Network && h.network_mode == "host" {
            return Err(bad(
                service,
                &field,
                format!("sysctl {key:?} is not allowed with network_mode: host"),
            )
            .into());
        }
        h.sysctls.insert(key.clone(), value);
    }
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::{load, ProjectOptions};

    fn project(text: &str) -> Project {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("compose.yaml"), text).unwrap();
        load(&ProjectOptions {
            cwd: dir.path().to_path_buf(),
            project_name: Some("demo".into()),
            ..ProjectOptions::default()
        })
        .unwrap()
    }

    #[test]
    fn a_service_becomes_dockers_create_request_with_composes_labels() {
        let p = project(
            "services:\n  web:\n    image: busybox\n    command: [sleep, '9']\n    environment: {A: '1'}\n    ports: ['127.0.0.1:8080:80']\n    volumes: [data:/data]\n    networks:\n      back: {aliases: [api]}\n      front:\n    restart: unless-stopped\n    stop_grace_period: 1m30s\n    depends_on:\n      db: {condition: service_healthy}\n  db:\n    image: busybox\n    network_mode: none\nnetworks:\n  back:\n  front:\nvolumes:\n  data:\n",
        );
        let req = create_request(&p, "web", &p.services["web"], 2, false, &|_| None).unwrap();
        let l = &req.config.labels;
        assert_eq!(l[labels::PROJECT], "demo");
        assert_eq!(l[labels::SERVICE], "web");
        assert_eq!(l[labels::NUMBER], "2");
        assert_eq!(l[labels::ONEOFF], "False");
        assert_eq!(l[labels::DEPENDS_ON], "db:service_healthy:false");
        assert_eq!(l[labels::HASH], config_hash(&p.services["web"]));
        assert_eq!(
            req.config.cmd,
            Some(vec!["sleep".to_string(), "9".to_string()])
        );
        assert_eq!(req.config.env, vec!["A=1".to_string()]);
        assert_eq!(req.config.stop_timeout, Some(90));
        assert_eq!(req.host_config.restart_policy.name, "unless-stopped");
        assert_eq!(req.host_config.port_bindings["80/tcp"][0].host_port, "8080");
        assert_eq!(req.host_config.mounts[0].source, "demo_data");
        assert_eq!(req.host_config.network_mode, "demo_back");
        let eps = &req.networking_config.endpoints_config;
        assert_eq!(eps["demo_back"].aliases, vec!["web", "demo-web-2", "api"]);
        assert_eq!(eps["demo_front"].aliases, vec!["web", "demo-web-2"]);
        let db = create_request(&p, "db", &p.services["db"], 1, false, &|_| None).unwrap();
        assert_eq!(db.host_config.network_mode, "none");
        assert!(db.networking_config.endpoints_config.is_empty());
    }
}
