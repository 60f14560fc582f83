//! A pod of a manifest becomes create requests (pure: nothing is made here): an infra
//! container that holds the pod's network namespace, hostname, /etc files and published
//! ports, its init containers and its containers, which join that namespace; plus the
//! volumes and files the pod needs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;

use crate::kube::{
    quantity, ConfigMap, Container, IntOrString, KubeError, Manifest, PodSpec, Probe, Secret,
};
use crate::ops::models::{
    ContainerCreateRequest, Empty, HealthConfig, Mount, PortBinding, RestartPolicy,
};

/// Labels that mark what `play` made.
pub const LABEL_POD: &str = "io.berth.kube.pod";
pub const LABEL_ROLE: &str = "io.berth.kube.role";
pub const LABEL_CONTAINER: &str = "io.berth.kube.container";
pub const LABEL_DEPLOYMENT: &str = "io.berth.kube.deployment";
pub const LABEL_CLAIM: &str = "io.berth.kube.pvc";

/// How long the infra container sleeps (it is killed by `down`; SIGKILL is its stop signal).
const INFRA_SLEEP: &str = "2147483647";

/// One pod to run: where it came from and what it is made of.
pub struct PodSource<'a> {
    pub name: String,
    /// `FILE: document N (Kind name)`.
    pub at: &'a str,
    /// `spec` or `spec.template.spec`.
    pub prefix: &'static str,
    pub spec: &'a PodSpec,
    /// Labels every container of the pod gets (the deployment's).
    pub labels: BTreeMap<String, String>,
}

/// A named volume a pod needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumePlan {
    pub name: String,
    pub driver_opts: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

/// A file of a configMap or secret volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePlan {
    pub path: PathBuf,
    pub content: Vec<u8>,
    pub mode: u32,
}

/// Everything one pod is.
#[derive(Debug, Clone)]
pub struct PodPlan {
    pub name: String,
    pub infra: (String, ContainerCreateRequest),
    pub init: Vec<(String, ContainerCreateRequest)>,
    pub apps: Vec<(String, ContainerCreateRequest)>,
    pub volumes: Vec<VolumePlan>,
    pub files: Vec<FilePlan>,
    /// hostPath directories (`DirectoryOrCreate`) to make first.
    pub host_dirs: Vec<PathBuf>,
    /// hostPath files (`FileOrCreate`) to make first.
    pub host_files: Vec<PathBuf>,
    pub warnings: Vec<String>,
}

enum Source {
    Bind(PathBuf),
    Volume(String),
}

struct Ctx<'a> {
    src: &'a PodSource<'a>,
    manifest: &'a Manifest,
}

impl Ctx<'_> {
    fn err(&self, path: String, reason: impl Into<String>) -> KubeError {
        KubeError::Invalid {
            at: self.src.at.to_string(),
            path: format!("{}.{path}", self.src.prefix),
            reason: reason.into(),
        }
    }
}

/// The directory of a pod's configMap and secret volume files under `files_root`.
pub fn pod_files_dir(files_root: &Path, pod: &str) -> PathBuf {
    files_root.join(pod)
}

/// Plans one pod; `files_root` is where configMap and secret volumes are written.
pub fn plan_pod(
    src: &PodSource,
    manifest: &Manifest,
    files_root: &Path,
) -> Result<PodPlan, KubeError> {
    let cx = Ctx { src, manifest };
    let spec = src.spec;
    let pod = src.name.as_str();
    let mut warnings = Vec::new();
    let restart = match spec.restart_policy.as_deref() {
        None | Some("Always") => "always",
        Some("OnFailure") => "on-failure",
        Some("Never") => "no",
        Some(other) => {
            return Err(cx.err(
                "restartPolicy".into(),
                format!("{other:?} is not one of Always, OnFailure, Never"),
            ))
        }
    };
    let hostname = spec.hostname.clone().unwrap_or_else(|| pod.to_string());
    let labels = |role: &str, container: Option<&str>| {
        let mut l = src.labels.clone();
        l.insert(LABEL_POD.into(), pod.to_string());
        l.insert(LABEL_ROLE.into(), role.to_string());
        if let Some(c) = container {
            l.insert(LABEL_CONTAINER.into(), c.to_string());
        }
        l
    };

    // Volumes.
    let mut volumes = Vec::new();
    let mut files = Vec::new();
    let mut host_dirs = Vec::new();
    let mut host_files = Vec::new();
    let mut sources: BTreeMap<&str, (Source, bool)> = BTreeMap::new();
    for (i, v) in spec.volumes.iter().enumerate() {
        let path = |f: &str| format!("volumes[{i}]{f}");
        if v.name.is_empty() {
            return Err(cx.err(path(".name"), "required"));
        }
        let count = [
            v.host_path.is_some(),
            v.empty_dir.is_some(),
            v.persistent_volume_claim.is_some(),
            v.config_map.is_some(),
            v.secret.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if count > 1 {
            return Err(cx.err(path(""), "more than one volume source"));
        }
        let source = if let Some(h) = &v.host_path {
            if !h.path.starts_with('/') {
                return Err(cx.err(path(".hostPath.path"), "not an absolute path"));
            }
            match h.kind.as_deref().unwrap_or("") {
                "" | "Directory" | "File" | "Socket" | "CharDevice" | "BlockDevice" => {}
                "DirectoryOrCreate" => host_dirs.push(PathBuf::from(&h.path)),
                "FileOrCreate" => host_files.push(PathBuf::from(&h.path)),
                other => {
                    return Err(cx.err(path(".hostPath.type"), format!("unknown type {other:?}")))
                }
            }
            (Source::Bind(PathBuf::from(&h.path)), false)
        } else if let Some(e) = &v.empty_dir {
            let name = format!("{pod}-{}", v.name);
            let mut driver_opts = BTreeMap::new();
            match e.medium.as_deref().unwrap_or("") {
                "" => {}
                "Memory" => {
                    driver_opts.insert("type".into(), "tmpfs".into());
                    driver_opts.insert("device".into(), "tmpfs".into());
                    if let Some(q) = &e.size_limit {
                        let b = quantity::bytes(&q.0).ok_or_else(|| {
                            cx.err(
                                path(".emptyDir.sizeLimit"),
                                format!("{:?} is not a quantity", q.0),
                            )
                        })?;
                        driver_opts.insert("o".into(), format!("size={b}"));
                    }
                }
                other => {
                    return Err(cx.err(
                        path(".emptyDir.medium"),
                        format!("unknown medium {other:?}"),
                    ))
                }
            }
            volumes.push(VolumePlan {
                name: name.clone(),
                driver_opts,
                labels: labels("emptyDir", None),
            });
            (Source::Volume(name), false)
        } else if let Some(c) = &v.persistent_volume_claim {
            if c.claim_name.is_empty() {
                return Err(cx.err(path(".persistentVolumeClaim.claimName"), "required"));
            }
            let mut l = BTreeMap::new();
            l.insert(LABEL_CLAIM.to_string(), c.claim_name.clone());
            volumes.push(VolumePlan {
                name: c.claim_name.clone(),
                driver_opts: BTreeMap::new(),
                labels: l,
            });
            (Source::Volume(c.claim_name.clone()), c.read_only)
        } else if let Some(c) = &v.config_map {
            let dir = pod_files_dir(files_root, pod).join(&v.name);
            let data = match manifest.config_map(&c.name) {
                Some(m) => config_map_data(m),
                None if c.optional => BTreeMap::new(),
                None => {
                    return Err(cx.err(
                        path(".configMap.name"),
                        format!("no ConfigMap {:?} in this file", c.name),
                    ))
                }
            };
            let items = (&c.items, c.optional, c.default_mode);
            files.extend(volume_files(&cx, &path(".configMap"), &dir, &data, items)?);
            (Source::Bind(dir), true)
        } else if let Some(s) = &v.secret {
            let dir = pod_files_dir(files_root, pod).join(&v.name);
            let data = match manifest.secret(&s.secret_name) {
                Some(m) => secret_data(m),
                None if s.optional => BTreeMap::new(),
                None => {
                    return Err(cx.err(
                        path(".secret.secretName"),
                        format!("no Secret {:?} in this file", s.secret_name),
                    ))
                }
            };
            let items = (&s.items, s.optional, s.default_mode.or(Some(0o644)));
            files.extend(volume_files(&cx, &path(".secret"), &dir, &data, items)?);
            (Source::Bind(dir), true)
        } else {
            return Err(cx.err(
                path(""),
                "no supported volume source (hostPath, emptyDir, persistentVolumeClaim, configMap, secret)",
            ));
        };
        if sources.insert(v.name.as_str(), source).is_some() {
            return Err(cx.err(path(".name"), format!("a second volume named {:?}", v.name)));
        }
    }

    // The infra container: the pod's network namespace, hostname and published ports.
    let infra_name = format!("{pod}-infra");
    let mut infra = ContainerCreateRequest::default();
    infra.config.image = spec.containers[0].image.clone();
    infra.config.entrypoint = Some(vec!["sleep".into(), INFRA_SLEEP.into()]);
    infra.config.stop_signal = "SIGKILL".into();
    infra.config.labels = labels("infra", None);
    if spec.host_network {
        infra.host_config.network_mode = "host".into();
    } else {
        infra.config.hostname = hostname.clone();
    }
    for a in &spec.host_aliases {
        for h in &a.hostnames {
            infra.host_config.extra_hosts.push(format!("{h}:{}", a.ip));
        }
    }
    for (list, containers) in [
        ("containers", &spec.containers),
        ("initContainers", &spec.init_containers),
    ] {
        for (i, c) in containers.iter().enumerate() {
            for (j, p) in c.ports.iter().enumerate() {
                let path = |f: &str| format!("{list}[{i}].ports[{j}].{f}");
                if p.container_port == 0 {
                    return Err(cx.err(path("containerPort"), "required"));
                }
                let proto = match p.protocol.as_deref().unwrap_or("TCP") {
                    "TCP" => "tcp",
                    "UDP" => "udp",
                    "SCTP" => "sctp",
                    other => {
                        return Err(cx.err(
                            path("protocol"),
                            format!("{other:?} is not TCP, UDP or SCTP"),
                        ))
                    }
                };
                let key = format!("{}/{proto}", p.container_port);
                infra.config.exposed_ports.insert(key.clone(), Empty {});
                if let Some(hp) = p.host_port {
                    infra
                        .host_config
                        .port_bindings
                        .entry(key)
                        .or_default()
                        .push(PortBinding {
                            host_ip: p.host_ip.clone().unwrap_or_default(),
                            host_port: hp.to_string(),
                        });
                }
            }
        }
    }
    if spec.host_network {
        infra.config.exposed_ports.clear();
        infra.host_config.port_bindings.clear();
    }

    let pod_user = spec.security_context.as_ref();
    let mut build = |list: &str, i: usize, c: &Container, restart: &str, role: &str| {
        let at = |f: &str| format!("{list}[{i}].{f}");
        let mut req = ContainerCreateRequest::default();
        let cfg = &mut req.config;
        cfg.image = c.image.clone();
        cfg.labels = labels(role, Some(&c.name));
        // Published on the infra container; exposed here so that `generate` knows whose.
        for p in &c.ports {
            let proto = p.protocol.as_deref().unwrap_or("TCP").to_ascii_lowercase();
            cfg.exposed_ports
                .insert(format!("{}/{proto}", p.container_port), Empty {});
        }
        if !spec.host_network {
            cfg.hostname = hostname.clone();
        }
        let env = env(&cx, list, i, c, pod)?;
        cfg.env = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        cfg.entrypoint = c
            .command
            .as_ref()
            .map(|v| v.iter().map(|s| expand(s, &env)).collect());
        cfg.cmd = c
            .args
            .as_ref()
            .map(|v| v.iter().map(|s| expand(s, &env)).collect());
        cfg.working_dir = c.working_dir.clone().unwrap_or_default();
        cfg.tty = c.tty;
        cfg.open_stdin = c.stdin;
        cfg.stop_timeout = spec.termination_grace_period_seconds;
        let sc = c.security_context.as_ref();
        let uid = sc
            .and_then(|s| s.run_as_user)
            .or(pod_user.and_then(|p| p.run_as_user));
        let gid = sc
            .and_then(|s| s.run_as_group)
            .or(pod_user.and_then(|p| p.run_as_group));
        cfg.user = match (uid, gid) {
            (Some(u), Some(g)) => format!("{u}:{g}"),
            (Some(u), None) => u.to_string(),
            (None, Some(_)) => {
                warnings.push(format!(
                    "{}: {}.{}: runAsGroup without runAsUser is not supported; the image's user is used",
                    src.at,
                    src.prefix,
                    at("securityContext")
                ));
                String::new()
            }
            (None, None) => String::new(),
        };
        let probe = c
            .liveness_probe
            .as_ref()
            .map(|p| (p, "livenessProbe"))
            .or(c.readiness_probe.as_ref().map(|p| (p, "readinessProbe")));
        if let Some((p, field)) = probe {
            cfg.healthcheck = Some(health(&cx, &at(field), p, c)?);
        }
        let h = &mut req.host_config;
        h.network_mode = format!("container:{infra_name}");
        h.restart_policy = RestartPolicy {
            name: restart.to_string(),
            maximum_retry_count: 0,
        };
        if let Some(s) = sc {
            h.privileged = s.privileged.unwrap_or(false);
            h.readonly_rootfs = s.read_only_root_filesystem.unwrap_or(false);
            if s.allow_privilege_escalation == Some(false) {
                h.security_opt.push("no-new-privileges".into());
            }
            if let Some(caps) = &s.capabilities {
                h.cap_add = caps.add.clone();
                h.cap_drop = caps.drop.clone();
            }
        }
        if let Some(r) = &c.resources {
            for (kind, map) in [("limits", &r.limits), ("requests", &r.requests)] {
                for (k, q) in map {
                    let bad = || {
                        cx.err(
                            at(&format!("resources.{kind}.{k}")),
                            format!("{:?} is not a quantity", q.0),
                        )
                    };
                    match (kind, k.as_str()) {
                        ("limits", "cpu") => {
                            h.nano_cpus = quantity::cpu_nanos(&q.0).ok_or_else(bad)? as i64
                        }
                        ("limits", "memory") => {
                            h.memory = quantity::bytes(&q.0).ok_or_else(bad)? as i64
                        }
                        // The kubelet's mapping of a CPU request onto cgroup shares.
                        ("requests", "cpu") => {
                            let n = quantity::cpu_nanos(&q.0).ok_or_else(bad)?;
                            h.cpu_shares = ((n / 1_000_000) * 1024 / 1000).max(2) as i64;
                        }
                        ("requests", "memory") => {
                            h.memory_reservation = quantity::bytes(&q.0).ok_or_else(bad)? as i64
                        }
                        _ => warnings.push(format!(
                            "{}: {}.{}: resource {k:?} is not supported and is ignored",
                            src.at,
                            src.prefix,
                            at(&format!("resources.{kind}"))
                        )),
                    }
                }
            }
            if h.memory > 0 && h.memory_reservation > h.memory {
                h.memory_reservation = h.memory;
            }
        }
        for (j, m) in c.volume_mounts.iter().enumerate() {
            let mp = |f: &str| at(&format!("volumeMounts[{j}].{f}"));
            if !m.mount_path.starts_with('/') {
                return Err(cx.err(mp("mountPath"), "not an absolute path"));
            }
            let Some((source, forced_ro)) = sources.get(m.name.as_str()) else {
                return Err(cx.err(mp("name"), format!("no volume {:?} in volumes", m.name)));
            };
            let sub = m.sub_path.as_deref().filter(|s| !s.is_empty());
            if let Some(s) = sub {
                if s.starts_with('/') || s.split('/').any(|p| p == "..") {
                    return Err(cx.err(mp("subPath"), "must be a relative path without .."));
                }
            }
            let (kind, source) = match source {
                Source::Bind(p) => ("bind", sub.map(|s| p.join(s)).unwrap_or(p.clone())),
                Source::Volume(_) if sub.is_some() => {
                    return Err(cx.err(
                        mp("subPath"),
                        "not supported for emptyDir and persistentVolumeClaim volumes",
                    ))
                }
                Source::Volume(n) => ("volume", PathBuf::from(n)),
            };
            h.mounts.push(Mount {
                r#type: kind.into(),
                source: source.to_string_lossy().into_owned(),
                target: m.mount_path.clone(),
                read_only: m.read_only || *forced_ro,
                ..Mount::default()
            });
        }
        Ok::<_, KubeError>((format!("{pod}-{}", c.name), req))
    };
    let mut init = Vec::new();
    for (i, c) in spec.init_containers.iter().enumerate() {
        init.push(build("initContainers", i, c, "no", "init")?);
    }
    let mut apps = Vec::new();
    for (i, c) in spec.containers.iter().enumerate() {
        apps.push(build("containers", i, c, restart, "app")?);
    }
    Ok(PodPlan {
        name: pod.to_string(),
        infra: (infra_name, infra),
        init,
        apps,
        volumes,
        files,
        host_dirs,
        host_files,
        warnings,
    })
}

fn config_map_data(m: &ConfigMap) -> BTreeMap<String, Vec<u8>> {
    let mut out: BTreeMap<String, Vec<u8>> = m
        .data
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
        .collect();
    for (k, v) in &m.binary_data {
        if let Ok(b) = base64::engine::general_purpose::STANDARD.decode(v.trim()) {
            out.insert(k.clone(), b);
        }
    }
    out
}

fn secret_data(s: &Secret) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for (k, v) in &s.data {
        if let Ok(b) = base64::engine::general_purpose::STANDARD.decode(v.trim()) {
            out.insert(k.clone(), b);
        }
    }
    for (k, v) in &s.string_data {
        out.insert(k.clone(), v.clone().into_bytes());
    }
    out
}

fn volume_files(
    cx: &Ctx,
    path: &str,
    dir: &Path,
    data: &BTreeMap<String, Vec<u8>>,
    (items, optional, default_mode): (&Vec<crate::kube::KeyToPath>, bool, Option<u32>),
) -> Result<Vec<FilePlan>, KubeError> {
    let mode = default_mode.unwrap_or(0o644);
    if items.is_empty() {
        return Ok(data
            .iter()
            .map(|(k, v)| FilePlan {
                path: dir.join(k),
                content: v.clone(),
                mode,
            })
            .collect());
    }
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        if item.path.is_empty()
            || item.path.starts_with('/')
            || item.path.split('/').any(|p| p == "..")
        {
            return Err(cx.err(
                format!("{path}.items[{i}].path"),
                "must be a relative path without ..",
            ));
        }
        match data.get(&item.key) {
            Some(v) => out.push(FilePlan {
                path: dir.join(&item.path),
                content: v.clone(),
                mode: item.mode.unwrap_or(mode),
            }),
            None if optional => {}
            None => {
                return Err(cx.err(
                    format!("{path}.items[{i}].key"),
                    format!("no key {:?}", item.key),
                ))
            }
        }
    }
    Ok(out)
}

/// The environment of a container, in order: `envFrom` sources, then `env`.
fn env(
    cx: &Ctx,
    list: &str,
    i: usize,
    c: &Container,
    pod: &str,
) -> Result<Vec<(String, String)>, KubeError> {
    let mut out: Vec<(String, String)> = Vec::new();
    let set = |k: String, v: String, out: &mut Vec<(String, String)>| match out
        .iter_mut()
        .find(|(n, _)| *n == k)
    {
        Some(e) => e.1 = v,
        None => out.push((k, v)),
    };
    for (j, e) in c.env_from.iter().enumerate() {
        let at = |f: &str| format!("{list}[{i}].envFrom[{j}].{f}");
        let prefix = e.prefix.clone().unwrap_or_default();
        let data = if let Some(r) = &e.config_map_ref {
            match cx.manifest.config_map(&r.name) {
                Some(m) => config_map_data(m),
                None if r.optional => BTreeMap::new(),
                None => {
                    return Err(cx.err(
                        at("configMapRef.name"),
                        format!("no ConfigMap {:?} in this file", r.name),
                    ))
                }
            }
        } else if let Some(r) = &e.secret_ref {
            match cx.manifest.secret(&r.name) {
                Some(s) => secret_data(s),
                None if r.optional => BTreeMap::new(),
                None => {
                    return Err(cx.err(
                        at("secretRef.name"),
                        format!("no Secret {:?} in this file", r.name),
                    ))
                }
            }
        } else {
            return Err(cx.err(
                at("configMapRef"),
                "envFrom needs configMapRef or secretRef",
            ));
        };
        for (k, v) in data {
            set(
                format!("{prefix}{k}"),
                String::from_utf8_lossy(&v).into_owned(),
                &mut out,
            );
        }
    }
    for (j, e) in c.env.iter().enumerate() {
        let at = |f: &str| format!("{list}[{i}].env[{j}].{f}");
        if e.name.is_empty() {
            return Err(cx.err(at("name"), "required"));
        }
        let value = match (&e.value, &e.value_from) {
            (Some(v), _) => expand(v, &out),
            (None, None) => String::new(),
            (None, Some(from)) => {
                if let Some(r) = &from.config_map_key_ref {
                    let v = cx
                        .manifest
                        .config_map(&r.name)
                        .and_then(|m| config_map_data(m).remove(&r.key));
                    match v {
                        Some(v) => String::from_utf8_lossy(&v).into_owned(),
                        None if r.optional => continue,
                        None => {
                            return Err(cx.err(
                                at("valueFrom.configMapKeyRef"),
                                format!(
                                    "no ConfigMap {:?} with key {:?} in this file",
                                    r.name, r.key
                                ),
                            ))
                        }
                    }
                } else if let Some(r) = &from.secret_key_ref {
                    let v = cx
                        .manifest
                        .secret(&r.name)
                        .and_then(|s| secret_data(s).remove(&r.key));
                    match v {
                        Some(v) => String::from_utf8_lossy(&v).into_owned(),
                        None if r.optional => continue,
                        None => {
                            return Err(cx.err(
                                at("valueFrom.secretKeyRef"),
                                format!("no Secret {:?} with key {:?} in this file", r.name, r.key),
                            ))
                        }
                    }
                } else if let Some(f) = &from.field_ref {
                    match f.field_path.as_str() {
                        "metadata.name" => pod.to_string(),
                        "metadata.namespace" => "default".to_string(),
                        other => {
                            return Err(cx.err(
                                at("valueFrom.fieldRef.fieldPath"),
                                format!(
                                "{other:?} is not supported (metadata.name, metadata.namespace)"
                            ),
                            ))
                        }
                    }
                } else {
                    return Err(cx.err(
                        at("valueFrom"),
                        "not supported (configMapKeyRef, secretKeyRef, fieldRef)",
                    ));
                }
            }
        };
        set(e.name.clone(), value, &mut out);
    }
    Ok(out)
}

/// Kubernetes' `$(VAR)` references to variables defined before; `$$` escapes a `$`.
pub(crate) fn expand(s: &str, env: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(after) = after.strip_prefix('$') {
            out.push('$');
            rest = after;
        } else if let Some(body) = after.strip_prefix('(') {
            match body.find(')') {
                Some(end) => {
                    let name = &body[..end];
                    match env.iter().find(|(k, _)| k == name) {
                        Some((_, v)) => out.push_str(v),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &body[end + 1..];
                }
                None => {
                    out.push('$');
                    rest = after;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// A probe as a health check: an `exec` command as it is, an `httpGet` through wget (or
/// curl), a `tcpSocket` through nc, run in the container (it shares the pod's localhost).
fn health(cx: &Ctx, at: &str, p: &Probe, c: &Container) -> Result<HealthConfig, KubeError> {
    let port = |port: &IntOrString, field: &str| match port {
        IntOrString::Int(n) if (1..=65535).contains(n) => Ok(*n),
        IntOrString::Str(name) => c
            .ports
            .iter()
            .find(|p| p.name.as_deref() == Some(name))
            .map(|p| i64::from(p.container_port))
            .ok_or_else(|| {
                cx.err(
                    format!("{at}.{field}.port"),
                    format!("no container port named {name:?}"),
                )
            }),
        IntOrString::Int(n) => {
            Err(cx.err(format!("{at}.{field}.port"), format!("{n} is not a port")))
        }
    };
    let test = if let Some(e) = &p.exec {
        if e.command.is_empty() {
            return Err(cx.err(format!("{at}.exec.command"), "required"));
        }
        let mut t = vec!["CMD".to_string()];
        t.extend(e.command.iter().cloned());
        t
    } else if let Some(g) = &p.http_get {
        let n = port(&g.port, "httpGet")?;
        let scheme = match g.scheme.as_deref().unwrap_or("HTTP") {
            "HTTP" => "http",
            "HTTPS" => "https",
            other => {
                return Err(cx.err(
                    format!("{at}.httpGet.scheme"),
                    format!("{other:?} is not HTTP or HTTPS"),
                ))
            }
        };
        let host = g.host.clone().unwrap_or_else(|| "127.0.0.1".into());
        let path = g.path.clone().unwrap_or_else(|| "/".into());
        let url = format!("{scheme}://{host}:{n}{path}");
        let q = shlex::try_quote(&url)
            .map(|q| q.into_owned())
            .unwrap_or(url);
        vec![
            "CMD-SHELL".to_string(),
            format!("wget -q -O /dev/null {q} || curl -fsS -o /dev/null {q}"),
        ]
    } else if let Some(t) = &p.tcp_socket {
        let n = port(&t.port, "tcpSocket")?;
        let host = t.host.clone().unwrap_or_else(|| "127.0.0.1".into());
        vec![
            "CMD-SHELL".to_string(),
            format!("nc -z {host} {n} </dev/null"),
        ]
    } else {
        return Err(cx.err(
            at.to_string(),
            "no supported handler (exec, httpGet, tcpSocket)",
        ));
    };
    let secs = |v: Option<i64>, default: i64| v.unwrap_or(default).max(0) * 1_000_000_000;
    Ok(HealthConfig {
        test,
        interval: secs(p.period_seconds, 10).max(1_000_000_000),
        timeout: secs(p.timeout_seconds, 1).max(1_000_000_000),
        start_period: secs(p.initial_delay_seconds, 0),
        retries: p.failure_threshold.unwrap_or(3).max(1),
    })
}

#[cfg(test)]
mod tests;
