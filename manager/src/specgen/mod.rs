//! Spec generation: an image's config plus the user's options become an OCI runtime spec.
//!
//! [`flags`] turns docker-style command-line values into typed options; [`generate`] combines an
//! [`ImageConfig`] with [`Options`] into a [`Spec`] with docker's defaults (capabilities,
//! mounts, masked paths, seccomp profile, device rules). Every step is a function of its inputs
//! except the user lookup, which reads the image's /etc/passwd and /etc/group from the rootfs,
//! and a few host facts (cgroup version, known capabilities, host devices for --privileged,
//! that bind sources exist).
//!
//! ```no_run
//! use berth::specgen::{flags, generate, ImageConfig, Options};
//! # fn blob() -> Vec<u8> { Vec::new() }
//! # fn volume_dir(_: Option<&str>) -> std::io::Result<std::path::PathBuf> { Ok("/var/lib/berth/volumes/v".into()) }
//! # fn main() -> anyhow::Result<()> {
//! let image = ImageConfig::from_blob(&blob())?;
//! let mut opts = Options {
//!     rootfs: "/var/lib/berth/containers/c1/rootfs".into(),
//!     hostname: Some("c1".into()),
//!     ..Default::default()
//! };
//! opts.process.env.extend(flags::parse_env("A=1", |k| std::env::var(k).ok())?);
//! let request = flags::parse_volume("data:/var/lib/data")?;
//! opts.mounts.push(request.resolve(|name, _nocopy| volume_dir(name))?);
//! opts.resources.memory = Some(flags::parse_bytes("--memory", "512m")?);
//! let spec = generate(&image, &opts)?; // write it as <bundle>/config.json
//! # let _ = spec; Ok(()) }
//! ```

mod caps;
pub mod flags;
mod health;
mod image;
mod linux;
mod mounts;
mod options;
mod process;
pub mod seccomp;
mod user;
mod workdir;

pub(crate) use caps::DEFAULT_CAPS;

use std::collections::HashSet;
use std::path::PathBuf;

use oci_spec::runtime::{
    LinuxBuilder, LinuxCapabilitiesBuilder, PosixRlimitBuilder, ProcessBuilder, RootBuilder, Spec,
    SpecBuilder, UserBuilder,
};

pub use health::{
    effective_healthcheck, EffectiveHealthcheck, HealthError, HealthOptions,
    DEFAULT_HEALTH_INTERVAL, DEFAULT_HEALTH_RETRIES, DEFAULT_HEALTH_START_INTERVAL,
    DEFAULT_HEALTH_TIMEOUT,
};
pub use image::{Healthcheck, ImageConfig, ImageConfigError};
pub use linux::{CPU_PERIOD, MIN_MEMORY};
pub use mounts::{DEFAULT_SHM_SIZE, MASKED_PATHS, READONLY_PATHS};
pub use options::{
    NamespaceMode, NamespaceOptions, Options, ProcessOptions, ResolvedMount, ResolvedSource,
    ResourceOptions, SeccompMode, SecurityOptions,
};
pub use process::{DEFAULT_PATH, INIT_PATH};
pub use seccomp::SeccompError;
pub use user::{resolve_groups, resolve_user, ResolvedUser, UserError};
pub use workdir::{create_workdir, WorkdirError};

/// Every capability a container can be given (names without `CAP_`): known to the kernel and in
/// our own bounding set. For `exec --privileged`.
pub fn known_capabilities() -> Vec<&'static str> {
    caps::all_capabilities()
}

/// The OCI runtime-spec version the generated config declares: 1.1.0, the newest that
/// Debian 12's crun (1.8) and runc (1.1) accept ("unknown version specified" otherwise).
pub const OCI_VERSION: &str = "1.1.0";

#[derive(Debug, thiserror::Error)]
pub enum SpecGenError {
    #[error("no command specified")]
    NoCommand,
    #[error("the working directory {path:?} is invalid, it needs to be an absolute path")]
    RelativeWorkdir { path: String },
    #[error("conflicting options: hostname and the host UTS namespace")]
    HostnameWithHostUts,
    #[error("resolving the container user")]
    User(#[from] UserError),
    #[error("loading the seccomp profile")]
    Seccomp(#[from] SeccompError),
    #[error("invalid resources: {reason}")]
    Resources { reason: &'static str },
    #[error("invalid resources: {requested} CPUs requested, but only {available} are available")]
    TooManyCpus {
        requested: flags::NanoCpus,
        available: usize,
    },
    #[error("mount destination {path} must be an absolute path")]
    RelativeMountTarget { path: PathBuf },
    #[error("bind source path does not exist: {path}")]
    MissingSource {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("examining device {path}")]
    Device {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a character or block device")]
    NotADevice { path: PathBuf },
    #[error("path {path} is not valid UTF-8")]
    NonUtf8Path { path: PathBuf },
    #[error("building the spec's {what}")]
    Build {
        what: &'static str,
        #[source]
        source: oci_spec::OciSpecError,
    },
}

fn build_err(what: &'static str) -> impl FnOnce(oci_spec::OciSpecError) -> SpecGenError {
    move |source| SpecGenError::Build { what, source }
}

/// Builds the OCI runtime spec for running `image` with `opts`, by docker's rules.
pub fn generate(image: &ImageConfig, opts: &Options) -> Result<Spec, SpecGenError> {
    let args = process::args(image, &opts.process).ok_or(SpecGenError::NoCommand)?;
    let cwd = match opts.process.workdir.as_deref() {
        Some(w) => w.to_string(),
        None if image.working_dir.is_empty() => "/".to_string(),
        None => image.working_dir.clone(),
    };
    if !cwd.starts_with('/') {
        return Err(SpecGenError::RelativeWorkdir { path: cwd });
    }
    let hostname = match (&opts.hostname, &opts.namespaces.uts) {
        (Some(_), NamespaceMode::Host) => return Err(SpecGenError::HostnameWithHostUts),
        (h, _) => h.clone(),
    };

    check_sources(opts)?;

    let user_spec = opts.process.user.as_deref().unwrap_or(&image.user);
    let mut user = resolve_user(&opts.rootfs, user_spec)?;
    for gid in resolve_groups(&opts.rootfs, &opts.process.group_add)? {
        if !user.additional_gids.contains(&gid) {
            user.additional_gids.push(gid);
        }
    }
    let env = process::env(image, &opts.process, hostname.as_deref(), &user.home);

    let sec = &opts.security;
    let cap_names = caps::effective_set(&sec.cap_add, &sec.cap_drop, sec.privileged);
    let cap_set: HashSet<_> = cap_names
        .iter()
        .filter_map(|c| caps::capability(c))
        .collect();
    // As docker: the same set bounding, effective and permitted, whatever the user; inheritable
    // stays empty (docker 20.10.14, CVE-2022-24769: a non-empty one let execve of file
    // capabilities raise privileges) and so does ambient.
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(cap_set.clone())
        .effective(cap_set.clone())
        .permitted(cap_set)
        .inheritable(HashSet::new())
        .ambient(HashSet::new())
        .build()
        .map_err(build_err("capabilities"))?;

    let mut rlimits = Vec::new();
    for u in &opts.ulimits {
        rlimits.push(
            PosixRlimitBuilder::default()
                .typ(u.kind)
                .soft(u.soft)
                .hard(u.hard)
                .build()
                .map_err(build_err("rlimit"))?,
        );
    }

    // oci-spec's builders start from its own `Default`s (no_new_privileges on, an NOFILE
    // rlimit, hostname "youki", ...), so every field docker leaves unset is cleared explicitly.
    let mut process = ProcessBuilder::default()
        .terminal(opts.process.tty)
        .user(
            UserBuilder::default()
                .uid(user.uid)
                .gid(user.gid)
                .additional_gids(user.additional_gids.clone())
                .build()
                .map_err(build_err("user"))?,
        )
        .args(args)
        .env(env)
        .cwd(cwd)
        .capabilities(capabilities)
        .build()
        .map_err(build_err("process"))?;
    process.set_no_new_privileges(sec.no_new_privileges.then_some(true));
    process.set_rlimits((!rlimits.is_empty()).then_some(rlimits));

    let (mounts, root_propagation) = mounts::mounts(opts)?;
    let linux = linux_section(opts, &cap_names, root_propagation)?;

    let mut spec = SpecBuilder::default()
        .version(OCI_VERSION)
        .root(
            RootBuilder::default()
                .path(opts.rootfs.clone())
                .readonly(sec.read_only)
                .build()
                .map_err(build_err("root"))?,
        )
        .mounts(mounts)
        .process(process)
        .linux(linux)
        .build()
        .map_err(build_err("spec"))?;
    spec.set_hostname(hostname);
    spec.set_domainname(opts.domainname.clone());
    spec.set_annotations((!opts.annotations.is_empty()).then(|| {
        opts.annotations
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }));
    Ok(spec)
}

/// Mount destinations must be absolute, and every host path the spec binds must exist now: the runtime's error would come later and
/// name no flag. (`-v` creates missing directories; the caller does that before calling.)
fn check_sources(opts: &Options) -> Result<(), SpecGenError> {
    let targets = opts.mounts.iter().map(|m| &m.target);
    for target in targets.chain(opts.etc_files.iter().map(|(ctr, _)| ctr)) {
        if !target.is_absolute() {
            return Err(SpecGenError::RelativeMountTarget {
                path: target.clone(),
            });
        }
    }
    let binds = opts.mounts.iter().filter_map(|m| match &m.source {
        ResolvedSource::Bind { path, .. } => Some(path),
        ResolvedSource::Tmpfs(_) => None,
    });
    let etc = opts.etc_files.iter().map(|(_, host)| host);
    for path in binds.chain(etc).chain(opts.process.init.iter()) {
        std::fs::metadata(path).map_err(|source| SpecGenError::MissingSource {
            path: path.clone(),
            source,
        })?;
    }
    Ok(())
}

fn linux_section(
    opts: &Options,
    cap_names: &[String],
    root_propagation: Option<String>,
) -> Result<oci_spec::runtime::Linux, SpecGenError> {
    let sec = &opts.security;
    let (mut devices, mut rules) = if sec.privileged {
        (linux::host_devices()?, linux::allow_all_devices()?)
    } else {
        (Vec::new(), linux::default_device_rules()?)
    };
    let (req_devices, req_rules) = linux::requested_devices(&opts.devices)?;
    // A requested device replaces a host device at the same path (privileged + --device).
    devices.retain(|d| !req_devices.iter().any(|r| r.path() == d.path()));
    devices.extend(req_devices);
    if !sec.privileged {
        rules.extend(req_rules);
    }
    let resources = linux::resources(&opts.resources)?
        .devices(rules)
        .build()
        .map_err(build_err("resources"))?;

    let mut b = LinuxBuilder::default()
        .namespaces(linux::namespaces(opts)?)
        .resources(resources)
        .devices(devices);
    let confined = !sec.privileged && !sec.unmask_system_paths;
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    b = b
        .masked_paths(if confined {
            strings(MASKED_PATHS)
        } else {
            vec![]
        })
        .readonly_paths(if confined {
            strings(READONLY_PATHS)
        } else {
            vec![]
        });
    if !opts.sysctls.is_empty() {
        b = b.sysctl(
            opts.sysctls
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<std::collections::HashMap<_, _>>(),
        );
    }
    if let Some(p) = &opts.cgroups_path {
        b = b.cgroups_path(p.clone());
    }
    if let Some(p) = root_propagation {
        b = b.rootfs_propagation(p);
    }
    let seccomp = match (&sec.seccomp, sec.privileged) {
        (_, true) | (SeccompMode::Unconfined, _) => None,
        (SeccompMode::Default, false) => Some(seccomp::default_profile(cap_names)?),
        (SeccompMode::Profile(path), false) => Some(seccomp::load_profile(path, cap_names)?),
    };
    if let Some(s) = seccomp {
        b = b.seccomp(s);
    }
    b.build().map_err(build_err("linux"))
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod runtime_tests;
