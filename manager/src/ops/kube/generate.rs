//! `kube generate`: containers (or a pod `play` made) written as one Kubernetes Pod or
//! Deployment, with a Service for the published ports (`--service`) and a
//! PersistentVolumeClaim for each named volume; what the image gives by itself (its
//! entrypoint, command, environment, working directory) is left out, as podman does.
//!
//! A compose project's name gives one pod holding a container per service (named after the
//! service), with `hostAliases` mapping every service name to 127.0.0.1: in the pod the
//! services share localhost, so they still find each other by name.

use std::collections::BTreeMap;

use crate::kube::{
    quantity, Capabilities, Container, ContainerPort, Deployment, DeploymentSpec, EmptyDirSource,
    EnvVar, ExecAction, HostAlias, HostPathSource, IntOrString, LabelSelector, ObjectMeta,
    PersistentVolumeClaim, Pod, PodSpec, PodTemplateSpec, Probe, PvcSource, PvcSpec, Quantity,
    Resources, SecurityContext, Service, ServicePort, ServiceSpec, Volume, VolumeMount,
};
use crate::ops::compose::labels as compose_labels;
use crate::ops::containers::{self, ListOptions};
use crate::ops::models::{ContainerInspect, Filters};
use crate::ops::{images, Engine};

use super::translate::{LABEL_CONTAINER, LABEL_POD, LABEL_ROLE};
use super::{Error, Result};

/// What `generate` writes for the workload.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PodKind {
    #[default]
    Pod,
    Deployment,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GenerateOptions {
    pub kind: PodKind,
    /// A Service for the published ports too.
    pub service: bool,
}

/// A Kubernetes name (RFC 1123 label): lower case letters, digits and `-`.
fn k8s_name(s: &str) -> String {
    let mut out: String = s
        .trim_start_matches('/')
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect();
    out.truncate(63);
    let out = out.trim_matches('-').to_string();
    if out.is_empty() {
        "container".into()
    } else {
        out
    }
}

/// The containers to write for each name: a container, or every container of a pod `play`
/// made (its infra container left out), in the order they were made.
/// The pod's name, its containers, and the infra containers of the pods among them (whose
/// published ports and network belong to the pod's containers).
struct Resolved {
    pod: String,
    containers: Vec<ContainerInspect>,
    infras: Vec<ContainerInspect>,
    /// The compose services among them: the container names the pod's /etc/hosts maps to
    /// 127.0.0.1.
    services: Vec<String>,
}

/// The running containers of compose project `name`, one per service (its first replica),
/// in the order of the services' names, each with the service's name; empty when there is
/// no such project.
fn compose_project(engine: &Engine, name: &str) -> Result<Vec<(String, ContainerInspect)>> {
    let mut filters = Filters::new();
    filters.add("label", &format!("{}={name}", compose_labels::PROJECT));
    let list = containers::list(
        engine,
        &ListOptions {
            all: false,
            limit: None,
            filters,
            size: false,
        },
    )?;
    let mut services: BTreeMap<String, (i64, String)> = BTreeMap::new();
    for c in &list {
        let oneoff = c.labels.get(compose_labels::ONEOFF).map(String::as_str);
        if matches!(oneoff, Some("True" | "true")) {
            continue;
        }
        let Some(service) = c.labels.get(compose_labels::SERVICE) else {
            continue;
        };
        let number = c
            .labels
            .get(compose_labels::NUMBER)
            .and_then(|n| n.parse().ok())
            .unwrap_or(i64::MAX);
        let entry = services
            .entry(service.clone())
            .or_insert((number, c.id.clone()));
        if number < entry.0 {
            *entry = (number, c.id.clone());
        }
    }
    services
        .into_iter()
        .map(|(service, (_, id))| Ok((service, containers::inspect(engine, &id)?)))
        .collect()
}

fn resolve(engine: &Engine, names: &[String]) -> Result<Resolved> {
    let mut out = Vec::new();
    let mut infras = Vec::new();
    let mut pod_name = None;
    let mut services = Vec::new();
    for name in names {
        if let Ok(c) = containers::inspect(engine, name) {
            out.push(c);
            continue;
        }
        let mut filters = Filters::new();
        filters.add("label", &format!("{LABEL_POD}={name}"));
        let list = containers::list(
            engine,
            &ListOptions {
                all: true,
                limit: None,
                filters,
                size: false,
            },
        )?;
        if list.is_empty() {
            let project = compose_project(engine, name)?;
            if project.is_empty() {
                return Err(Error::NotFound { name: name.clone() });
            }
            for (service, c) in project {
                services.push(service);
                out.push(c);
            }
            pod_name.get_or_insert_with(|| name.clone());
            continue;
        }
        // Newest first: the pod's own order is the reverse.
        for c in list.iter().rev() {
            if c.labels.get(LABEL_ROLE).map(String::as_str) == Some("infra") {
                infras.push(containers::inspect(engine, &c.id)?);
                continue;
            }
            out.push(containers::inspect(engine, &c.id)?);
        }
        pod_name.get_or_insert_with(|| name.clone());
    }
    let pod = match pod_name {
        Some(p) if names.len() == 1 => p,
        _ => format!(
            "{}-pod",
            out.first()
                .map(|c| c.name.trim_start_matches('/').to_string())
                .unwrap_or_default()
        ),
    };
    Ok(Resolved {
        pod: k8s_name(&pod),
        containers: out,
        infras,
        services,
    })
}

/// The YAML of the workload the named containers or pods make.
pub fn generate(engine: &Engine, names: &[String], opts: GenerateOptions) -> Result<String> {
    let Resolved {
        pod: pod_name,
        containers: list,
        infras,
        services,
    } = resolve(engine, names)?;
    let mut spec = PodSpec::default();
    if !services.is_empty() {
        spec.host_aliases.push(HostAlias {
            ip: "127.0.0.1".into(),
            hostnames: services.iter().map(|s| k8s_name(s)).collect(),
        });
    }
    let mut claims: Vec<String> = Vec::new();
    let mut service_ports = Vec::new();
    let mut restart = None;
    for (ci, c) in list.iter().enumerate() {
        let image_cfg = images::inspect(engine, &c.image)
            .ok()
            .and_then(|i| i.config)
            .unwrap_or_default();
        let name = match c
            .config
            .labels
            .get(LABEL_CONTAINER)
            .or_else(|| c.config.labels.get(compose_labels::SERVICE))
        {
            Some(n) => k8s_name(n),
            None => k8s_name(&c.name),
        };
        let mut k = Container {
            name,
            image: c.config.image.clone(),
            ..Container::default()
        };
        let img_ep = image_cfg.entrypoint.clone().unwrap_or_default();
        let img_cmd = image_cfg.cmd.clone().unwrap_or_default();
        if c.config.entrypoint != img_ep {
            if c.config.entrypoint.is_empty() {
                k.command = Some(c.config.cmd.clone());
            } else {
                k.command = Some(c.config.entrypoint.clone());
                k.args = (!c.config.cmd.is_empty()).then(|| c.config.cmd.clone());
            }
        } else if c.config.cmd != img_cmd {
            k.args = Some(c.config.cmd.clone());
        }
        let root_user = matches!(c.config.user.as_str(), "" | "0" | "root");
        for e in &c.config.env {
            let (n, v) = e.split_once('=').unwrap_or((e.as_str(), ""));
            // What the image gives, and what every container gets by default.
            let default = image_cfg.env.contains(e)
                || n == "HOSTNAME"
                || (n == "HOME" && v == "/root" && root_user)
                || (n == "TERM" && c.config.tty);
            if default {
                continue;
            }
            k.env.push(EnvVar {
                name: n.to_string(),
                value: Some(v.to_string()),
                value_from: None,
            });
        }
        let workdir = |w: &str| {
            if w.is_empty() {
                "/".to_string()
            } else {
                w.to_string()
            }
        };
        if workdir(&c.config.working_dir) != workdir(&image_cfg.working_dir) {
            k.working_dir = Some(c.config.working_dir.clone());
        }
        k.tty = c.config.tty;
        k.stdin = c.config.open_stdin;
        let mut sc = SecurityContext::default();
        if c.config.user != image_cfg.user {
            let (u, g) = c
                .config
                .user
                .split_once(':')
                .map(|(u, g)| (u, Some(g)))
                .unwrap_or((c.config.user.as_str(), None));
            sc.run_as_user = u.parse().ok();
            sc.run_as_group = g.and_then(|g| g.parse().ok());
        }
        let h = &c.host_config;
        if h.privileged {
            sc.privileged = Some(true);
        }
        if h.readonly_rootfs {
            sc.read_only_root_filesystem = Some(true);
        }
        if !h.privileged {
            sc.capabilities = capabilities(engine, &c.id);
        }
        if sc != SecurityContext::default() {
            k.security_context = Some(sc);
        }
        let mut limits = BTreeMap::new();
        if h.memory > 0 {
            limits.insert(
                "memory".to_string(),
                Quantity(quantity::format_bytes(h.memory as u64)),
            );
        }
        if h.nano_cpus > 0 {
            limits.insert(
                "cpu".to_string(),
                Quantity(quantity::format_cpu(h.nano_cpus as u64)),
            );
        }
        if !limits.is_empty() {
            k.resources = Some(Resources {
                limits,
                requests: BTreeMap::new(),
            });
        }
        if let Some(hc) = &c.config.healthcheck {
            let command = match hc.test.first().map(String::as_str) {
                Some("CMD") => Some(hc.test[1..].to_vec()),
                Some("CMD-SHELL") => Some(vec![
                    "/bin/sh".to_string(),
                    "-c".to_string(),
                    hc.test[1..].join(" "),
                ]),
                _ => None,
            };
            if let Some(command) = command {
                let secs = |ns: i64| (ns > 0).then(|| (ns + 999_999_999) / 1_000_000_000);
                k.liveness_probe = Some(Probe {
                    exec: Some(ExecAction { command }),
                    period_seconds: secs(hc.interval),
                    timeout_seconds: secs(hc.timeout),
                    initial_delay_seconds: secs(hc.start_period),
                    failure_threshold: (hc.retries > 0).then_some(hc.retries),
                    ..Probe::default()
                });
            }
        }
        // A container in a pod's infra container's namespace: its ports are published
        // there (those it exposes).
        let infra = h.network_mode.strip_prefix("container:").and_then(|id| {
            infras
                .iter()
                .find(|i| i.id == id || i.name.trim_start_matches('/') == id)
        });
        let mut port_bindings = h.port_bindings.clone();
        if let Some(infra) = infra {
            port_bindings = infra
                .host_config
                .port_bindings
                .iter()
                .filter(|(k, _)| c.config.exposed_ports.contains_key(*k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if infra.host_config.network_mode == "host" {
                spec.host_network = true;
            }
        }
        for (key, bindings) in &port_bindings {
            let (port, proto) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
            let Ok(port) = port.parse::<u16>() else {
                continue;
            };
            let protocol = proto.to_ascii_uppercase();
            for b in bindings {
                let host_port = b.host_port.parse::<u16>().ok();
                k.ports.push(ContainerPort {
                    name: None,
                    container_port: port,
                    host_port,
                    host_ip: (!b.host_ip.is_empty() && b.host_ip != "0.0.0.0")
                        .then(|| b.host_ip.clone()),
                    protocol: (protocol != "TCP").then(|| protocol.clone()),
                });
                service_ports.push(ServicePort {
                    name: Some(format!("{port}-{}", proto.to_ascii_lowercase())),
                    port: host_port.unwrap_or(port),
                    target_port: Some(IntOrString::Int(i64::from(port))),
                    node_port: None,
                    protocol: Some(protocol.clone()),
                });
            }
        }
        for (mi, m) in c.mounts.iter().enumerate() {
            let (vname, source) = match m.r#type.as_str() {
                "bind" => {
                    let kind = match std::fs::metadata(&m.source) {
                        Ok(md) if md.is_dir() => Some("Directory".to_string()),
                        Ok(md) if md.is_file() => Some("File".to_string()),
                        _ => None,
                    };
                    let name = format!("{}-host-{mi}", k8s_name(&k.name));
                    let v = Volume {
                        name: name.clone(),
                        host_path: Some(HostPathSource {
                            path: m.source.clone(),
                            kind,
                        }),
                        ..Volume::default()
                    };
                    (name, v)
                }
                "volume" if !m.anonymous && !m.name.is_empty() => {
                    // A compose volume's name (`project_volume`) is no Kubernetes name.
                    let name = k8s_name(&m.name);
                    if !claims.contains(&name) {
                        claims.push(name.clone());
                    }
                    let v = Volume {
                        name: name.clone(),
                        persistent_volume_claim: Some(PvcSource {
                            claim_name: name.clone(),
                            read_only: false,
                        }),
                        ..Volume::default()
                    };
                    (name, v)
                }
                kind => {
                    let name = format!(
                        "{}-{}-{mi}",
                        k8s_name(&k.name),
                        if kind == "tmpfs" { "tmpfs" } else { "data" }
                    );
                    let v = Volume {
                        name: name.clone(),
                        empty_dir: Some(EmptyDirSource {
                            medium: (kind == "tmpfs").then(|| "Memory".to_string()),
                            size_limit: None,
                        }),
                        ..Volume::default()
                    };
                    (name, v)
                }
            };
            if !spec.volumes.iter().any(|v| v.name == vname) {
                spec.volumes.push(source);
            }
            k.volume_mounts.push(VolumeMount {
                name: vname,
                mount_path: m.destination.clone(),
                read_only: !m.rw,
                sub_path: None,
            });
        }
        if h.network_mode == "host" {
            spec.host_network = true;
        }
        if ci == 0 {
            restart = Some(match h.restart_policy.name.as_str() {
                "always" | "unless-stopped" => "Always",
                "on-failure" => "OnFailure",
                _ => "Never",
            });
        }
        if c.config.labels.get(LABEL_ROLE).map(String::as_str) == Some("init") {
            spec.init_containers.push(k);
        } else {
            spec.containers.push(k);
        }
    }
    // The pod stops as its slowest container did; berth's default (10 s) is what `play`
    // gives without the field.
    let grace = list
        .iter()
        .map(|c| c.config.stop_timeout.unwrap_or(10))
        .max();
    if let Some(g) = grace.filter(|g| *g != 10) {
        spec.termination_grace_period_seconds = i64::try_from(g).ok();
    }
    let app_labels: BTreeMap<String, String> = [("app".to_string(), pod_name.clone())]
        .into_iter()
        .collect();
    let mut docs = Vec::new();
    let workload_name = match opts.kind {
        PodKind::Pod => {
            spec.restart_policy = restart.map(str::to_string);
            docs.push(serde_norway::to_string(&Pod {
                api_version: "v1".into(),
                kind: "Pod".into(),
                metadata: ObjectMeta {
                    name: pod_name.clone(),
                    labels: app_labels.clone(),
                    ..ObjectMeta::default()
                },
                spec,
                status: None,
            })?);
            pod_name.clone()
        }
        PodKind::Deployment => {
            // A Deployment's pods always restart.
            spec.restart_policy = Some("Always".into());
            let name = match pod_name.strip_suffix("-pod") {
                Some(n) if !n.is_empty() => n.to_string(),
                _ => format!("{pod_name}-deployment"),
            };
            docs.push(serde_norway::to_string(&Deployment {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                metadata: ObjectMeta {
                    name: name.clone(),
                    labels: app_labels.clone(),
                    ..ObjectMeta::default()
                },
                spec: DeploymentSpec {
                    replicas: Some(1),
                    selector: LabelSelector {
                        match_labels: app_labels.clone(),
                    },
                    template: PodTemplateSpec {
                        metadata: ObjectMeta {
                            labels: app_labels.clone(),
                            ..ObjectMeta::default()
                        },
                        spec,
                    },
                    strategy: None,
                },
                status: None,
            })?);
            name
        }
    };
    if opts.service && !service_ports.is_empty() {
        docs.push(serde_norway::to_string(&Service {
            api_version: "v1".into(),
            kind: "Service".into(),
            metadata: ObjectMeta {
                name: workload_name,
                labels: app_labels.clone(),
                ..ObjectMeta::default()
            },
            spec: ServiceSpec {
                kind: None,
                selector: app_labels,
                ports: service_ports,
            },
            status: None,
        })?);
    }
    for claim in claims {
        let mut requests = BTreeMap::new();
        requests.insert("storage".to_string(), Quantity("1Gi".into()));
        docs.push(serde_norway::to_string(&PersistentVolumeClaim {
            api_version: "v1".into(),
            kind: "PersistentVolumeClaim".into(),
            metadata: ObjectMeta {
                name: claim,
                ..ObjectMeta::default()
            },
            spec: PvcSpec {
                access_modes: vec!["ReadWriteOnce".into()],
                resources: Some(Resources {
                    limits: BTreeMap::new(),
                    requests,
                }),
                storage_class_name: None,
                volume_mode: None,
            },
            status: None,
        })?);
    }
    Ok(format!(
        "# Kubernetes YAML generated by berth {}\n{}",
        env!("CARGO_PKG_VERSION"),
        docs.join("---\n")
    ))
}

/// The capabilities added to and dropped from docker's default set, read from the
/// container's OCI spec (what the runtime was given); `None` when it has the defaults.
fn capabilities(engine: &Engine, id: &str) -> Option<Capabilities> {
    use crate::specgen::DEFAULT_CAPS;
    let store = engine.containers().ok()?;
    let record = store.load(id).ok()?;
    let paths = crate::container::lifecycle::Paths::new(engine.root(), &store, &record);
    let text = std::fs::read(paths.bundle.join("config.json")).ok()?;
    let spec: serde_json::Value = serde_json::from_slice(&text).ok()?;
    let bounding: Vec<String> = spec["process"]["capabilities"]["bounding"]
        .as_array()?
        .iter()
        .filter_map(|c| c.as_str())
        .map(|c| c.trim_start_matches("CAP_").to_string())
        .collect();
    let add: Vec<String> = bounding
        .iter()
        .filter(|c| !DEFAULT_CAPS.contains(&c.as_str()))
        .cloned()
        .collect();
    let drop: Vec<String> = DEFAULT_CAPS
        .iter()
        .filter(|c| !bounding.iter().any(|b| b == *c))
        .map(|c| c.to_string())
        .collect();
    let caps = if drop.len() > DEFAULT_CAPS.len() / 2 {
        // Mostly dropped: say what is kept (`--cap-drop ALL --cap-add ...`).
        Capabilities {
            add: bounding,
            drop: vec!["ALL".into()],
        }
    } else {
        Capabilities { add, drop }
    };
    (caps != Capabilities::default()).then_some(caps)
}
