//! `-v/--volume`, `--mount`, `--tmpfs` and `--device`.

use std::path::{Component, Path, PathBuf};

use super::{invalid, parse_bool, parse_bytes, FlagError};
use crate::specgen::options::{ResolvedMount, ResolvedSource};

/// Mount propagation of a bind mount (mount_namespaces(7)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Propagation {
    Shared,
    Rshared,
    Slave,
    Rslave,
    Private,
    Rprivate,
}

impl Propagation {
    /// The OCI mount option naming this propagation.
    pub fn as_option(self) -> &'static str {
        match self {
            Propagation::Shared => "shared",
            Propagation::Rshared => "rshared",
            Propagation::Slave => "slave",
            Propagation::Rslave => "rslave",
            Propagation::Private => "private",
            Propagation::Rprivate => "rprivate",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "shared" => Propagation::Shared,
            "rshared" => Propagation::Rshared,
            "slave" => Propagation::Slave,
            "rslave" => Propagation::Rslave,
            "private" => Propagation::Private,
            "rprivate" => Propagation::Rprivate,
            _ => return None,
        })
    }
}

/// A tmpfs's size, mode and extra mount flags (`noexec`, `exec`, `nosuid`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TmpfsOptions {
    pub size: Option<u64>,
    pub mode: Option<u32>,
    /// Mount flags given by the user, merged over the defaults noexec,nosuid,nodev.
    pub flags: Vec<String>,
}

/// A parsed `-v`, `--mount` or `--tmpfs`, before volumes are resolved to host directories.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MountRequest {
    /// Absolute, cleaned path inside the container.
    pub target: PathBuf,
    pub readonly: bool,
    pub kind: MountKind,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MountKind {
    Bind {
        source: PathBuf,
        propagation: Option<Propagation>,
        /// `-v` creates a missing host directory; `--mount type=bind` fails instead.
        create_missing: bool,
    },
    /// A named volume, or an anonymous one when `name` is `None`.
    Volume {
        name: Option<String>,
        nocopy: bool,
    },
    Tmpfs(TmpfsOptions),
}

impl MountRequest {
    /// Docker's `-v /host:/ctr` creates a missing host directory (`mkdir -p`, mode 0755);
    /// `--mount type=bind` requires it to exist, and so does [`super::super::generate`]. A
    /// no-op for everything but such binds.
    pub fn create_missing_host_dir(&self) -> Result<(), FlagError> {
        match &self.kind {
            MountKind::Bind {
                source,
                create_missing: true,
                ..
            } if !source.exists() => {
                std::fs::create_dir_all(source).map_err(|e| FlagError::CreateHostDir {
                    path: source.clone(),
                    source: e,
                })
            }
            _ => Ok(()),
        }
    }

    /// Turns the request into a [`ResolvedMount`], asking `volume` for the host directory of a
    /// named (`Some(name)`) or anonymous (`None`) volume; `nocopy` is passed along.
    pub fn resolve<E>(
        self,
        volume: impl FnOnce(Option<&str>, bool) -> Result<PathBuf, E>,
    ) -> Result<ResolvedMount, E> {
        let source = match self.kind {
            MountKind::Bind {
                source,
                propagation,
                ..
            } => ResolvedSource::Bind {
                path: source,
                propagation,
            },
            MountKind::Volume { name, nocopy } => ResolvedSource::Bind {
                path: volume(name.as_deref(), nocopy)?,
                propagation: None,
            },
            MountKind::Tmpfs(opts) => ResolvedSource::Tmpfs(opts),
        };
        Ok(ResolvedMount {
            target: self.target,
            readonly: self.readonly,
            source,
        })
    }
}

/// A `--device` request: host device node, path inside the container and cgroup permissions.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeviceRequest {
    pub host_path: PathBuf,
    pub container_path: PathBuf,
    /// Some of `r`, `w`, `m` (read, write, mknod).
    pub permissions: String,
}

/// `-v/--volume`: `/host:/ctr[:opts]`, `name:/ctr[:opts]` or `/ctr` (anonymous volume), where
/// opts is a comma list of at most one each of `ro|rw`, `z|Z`, a propagation and `nocopy`.
pub fn parse_volume(value: &str) -> Result<MountRequest, FlagError> {
    const FLAG: &str = "--volume";
    let parts: Vec<&str> = value.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [target] => (None, *target, ""),
        [source, target] => {
            // `/ctr:ro` reads as a mode on an anonymous volume, which docker rejects.
            if parse_volume_mode(FLAG, value, target).is_ok() {
                return Err(invalid(FLAG, value, "invalid volume specification"));
            }
            (Some(*source), *target, "")
        }
        [source, target, mode] => (Some(*source), *target, *mode),
        _ => return Err(invalid(FLAG, value, "invalid volume specification")),
    };
    let mode = parse_volume_mode(FLAG, value, mode)?;
    let target = container_path(FLAG, value, target)?;
    let kind = match source {
        None => MountKind::Volume {
            name: None,
            nocopy: mode.nocopy,
        },
        Some("") => return Err(invalid(FLAG, value, "invalid volume specification")),
        Some(src) if src.starts_with('/') => MountKind::Bind {
            source: clean(Path::new(src)),
            propagation: mode.propagation,
            create_missing: true,
        },
        Some(name) => {
            check_volume_name(FLAG, value, name)?;
            if mode.propagation.is_some() {
                return Err(invalid(
                    FLAG,
                    value,
                    "propagation can only be set on bind mounts",
                ));
            }
            MountKind::Volume {
                name: Some(name.to_string()),
                nocopy: mode.nocopy,
            }
        }
    };
    Ok(MountRequest {
        target,
        readonly: mode.readonly,
        kind,
    })
}

#[derive(Default)]
struct VolumeMode {
    readonly: bool,
    propagation: Option<Propagation>,
    nocopy: bool,
}

fn parse_volume_mode(flag: &'static str, value: &str, mode: &str) -> Result<VolumeMode, FlagError> {
    let mut out = VolumeMode::default();
    if mode.is_empty() {
        return Ok(out);
    }
    let (mut rw_seen, mut label_seen) = (false, false);
    for opt in mode.split(',') {
        let dup = match opt {
            "ro" | "rw" => {
                out.readonly = opt == "ro";
                std::mem::replace(&mut rw_seen, true)
            }
            // SELinux relabelling; without SELinux on the host docker ignores it, as do we.
            "z" | "Z" => std::mem::replace(&mut label_seen, true),
            "nocopy" => std::mem::replace(&mut out.nocopy, true),
            // Docker Desktop consistency hints, accepted and ignored by docker on Linux.
            "consistent" | "cached" | "delegated" => false,
            _ => match Propagation::parse(opt) {
                Some(p) => out.propagation.replace(p).is_some(),
                None => return Err(invalid(flag, value, format!("invalid mode: {mode}"))),
            },
        };
        if dup {
            return Err(invalid(flag, value, format!("invalid mode: {mode}")));
        }
    }
    Ok(out)
}

/// `--mount type=bind|volume|tmpfs,source=...,target=...[,readonly][,...]`.
pub fn parse_mount<'a>(value: &'a str) -> Result<MountRequest, FlagError> {
    const FLAG: &str = "--mount";
    let mut kind = "volume";
    let (mut source, mut target, mut readonly) = (None, None, false);
    let mut propagation = None;
    let mut nocopy = None;
    let mut tmpfs = TmpfsOptions::default();
    let mut tmpfs_given = false;
    for field in value.split(',') {
        let (key, val) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let need = |v: Option<&'a str>| -> Result<&'a str, FlagError> {
            v.ok_or_else(|| {
                invalid(
                    FLAG,
                    value,
                    format!("invalid field '{field}' must be a key=value pair"),
                )
            })
        };
        match key.as_str() {
            "type" => kind = need(val)?,
            "source" | "src" => source = Some(need(val)?),
            "target" | "dst" | "destination" => target = Some(need(val)?),
            "readonly" | "ro" => readonly = val.map_or(Ok(true), |v| parse_bool(FLAG, v))?,
            "bind-propagation" => {
                let v = need(val)?;
                propagation = Some(Propagation::parse(v).ok_or_else(|| {
                    invalid(FLAG, value, format!("invalid bind-propagation: {v}"))
                })?);
            }
            "volume-nocopy" => nocopy = Some(val.map_or(Ok(true), |v| parse_bool(FLAG, v))?),
            "tmpfs-size" => {
                tmpfs.size = Some(parse_bytes(FLAG, need(val)?)?);
                tmpfs_given = true;
            }
            "tmpfs-mode" => {
                tmpfs.mode = Some(parse_mode(FLAG, need(val)?)?);
                tmpfs_given = true;
            }
            "consistency" => {}
            _ => {
                return Err(invalid(
                    FLAG,
                    value,
                    format!("unexpected key '{key}' in '{field}'"),
                ))
            }
        }
    }
    let target = target.ok_or_else(|| invalid(FLAG, value, "target is required"))?;
    let target = container_path(FLAG, value, target)?;
    let wrong = |opt: &str| {
        invalid(
            FLAG,
            value,
            format!("{opt} cannot be used with type={kind}"),
        )
    };
    let kind = match kind {
        "bind" => {
            if nocopy.is_some() {
                return Err(wrong("volume-nocopy"));
            }
            if tmpfs_given {
                return Err(wrong("tmpfs options"));
            }
            let source =
                source.ok_or_else(|| invalid(FLAG, value, "source is required for type=bind"))?;
            if !source.starts_with('/') {
                return Err(invalid(FLAG, value, "bind source must be an absolute path"));
            }
            MountKind::Bind {
                source: clean(Path::new(source)),
                propagation,
                create_missing: false,
            }
        }
        "volume" => {
            if propagation.is_some() {
                return Err(wrong("bind-propagation"));
            }
            if tmpfs_given {
                return Err(wrong("tmpfs options"));
            }
            let name = match source {
                Some("") | None => None,
                Some(name) => {
                    check_volume_name(FLAG, value, name)?;
                    Some(name.to_string())
                }
            };
            MountKind::Volume {
                name,
                nocopy: nocopy.unwrap_or(false),
            }
        }
        "tmpfs" => {
            if source.is_some_and(|s| !s.is_empty()) {
                return Err(wrong("source"));
            }
            if propagation.is_some() {
                return Err(wrong("bind-propagation"));
            }
            if nocopy.is_some() {
                return Err(wrong("volume-nocopy"));
            }
            MountKind::Tmpfs(tmpfs)
        }
        other => {
            return Err(invalid(
                FLAG,
                value,
                format!("invalid mount type '{other}': expected bind, volume or tmpfs"),
            ))
        }
    };
    Ok(MountRequest {
        target,
        readonly,
        kind,
    })
}

/// `--tmpfs /path[:opts]` where opts are mount options: `size=`, `mode=` and flags.
pub fn parse_tmpfs(value: &str) -> Result<MountRequest, FlagError> {
    const FLAG: &str = "--tmpfs";
    let (path, opts) = value.split_once(':').unwrap_or((value, ""));
    let target = container_path(FLAG, value, path)?;
    let mut tmpfs = TmpfsOptions::default();
    let mut readonly = false;
    for opt in opts.split(',').filter(|o| !o.is_empty()) {
        match opt.split_once('=') {
            Some(("size", v)) => tmpfs.size = Some(parse_bytes(FLAG, v)?),
            Some(("mode", v)) => tmpfs.mode = Some(parse_mode(FLAG, v)?),
            Some(_) => return Err(invalid(FLAG, value, format!("unknown option {opt}"))),
            None if opt == "ro" => readonly = true,
            None if opt == "rw" => readonly = false,
            None if TMPFS_FLAGS.contains(&opt) => tmpfs.flags.push(opt.to_string()),
            None => return Err(invalid(FLAG, value, format!("unknown option {opt}"))),
        }
    }
    Ok(MountRequest {
        target,
        readonly,
        kind: MountKind::Tmpfs(tmpfs),
    })
}

/// Mount flags that make sense on a tmpfs (mount(8)).
const TMPFS_FLAGS: &[&str] = &[
    "exec",
    "noexec",
    "suid",
    "nosuid",
    "dev",
    "nodev",
    "atime",
    "noatime",
    "diratime",
    "nodiratime",
    "relatime",
    "norelatime",
    "strictatime",
    "nostrictatime",
    "sync",
    "async",
    "dirsync",
    "mand",
    "nomand",
];

/// `--device /dev/x[:/dev/y][:rwm]`.
pub fn parse_device(value: &str) -> Result<DeviceRequest, FlagError> {
    const FLAG: &str = "--device";
    let parts: Vec<&str> = value.split(':').collect();
    let (host, ctr, perms) = match parts.as_slice() {
        [host] => (*host, *host, "rwm"),
        [host, second] if is_device_mode(second) => (*host, *host, *second),
        [host, ctr] => (*host, *ctr, "rwm"),
        [host, ctr, perms] => (*host, *ctr, *perms),
        _ => return Err(invalid(FLAG, value, "invalid device specification")),
    };
    if !is_device_mode(perms) {
        return Err(invalid(FLAG, value, format!("bad mode specified: {perms}")));
    }
    if !host.starts_with('/') {
        return Err(invalid(
            FLAG,
            value,
            format!("{host} is not an absolute path"),
        ));
    }
    if !ctr.starts_with('/') {
        return Err(invalid(
            FLAG,
            value,
            format!("{ctr} is not an absolute path"),
        ));
    }
    Ok(DeviceRequest {
        host_path: clean(Path::new(host)),
        container_path: clean(Path::new(ctr)),
        permissions: perms.to_string(),
    })
}

fn is_device_mode(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 3
        && s.chars().all(|c| "rwm".contains(c))
        && s.chars().enumerate().all(|(i, c)| !s[..i].contains(c))
}

fn parse_mode(flag: &'static str, v: &str) -> Result<u32, FlagError> {
    u32::from_str_radix(v, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| invalid(flag, v, "expected an octal file mode such as 1777"))
}

/// Validates an absolute container path other than "/" and cleans it.
fn container_path(flag: &'static str, value: &str, path: &str) -> Result<PathBuf, FlagError> {
    if !path.starts_with('/') {
        return Err(invalid(
            flag,
            value,
            format!("invalid mount path: '{path}' mount path must be absolute"),
        ));
    }
    let cleaned = clean(Path::new(path));
    if cleaned == Path::new("/") {
        return Err(invalid(flag, value, "destination can't be '/'"));
    }
    Ok(cleaned)
}

/// Docker's local volume names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
fn check_volume_name(flag: &'static str, value: &str, name: &str) -> Result<(), FlagError> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            flag,
            value,
            format!(
                "\"{name}\" includes invalid characters for a local volume name, only \
                 \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed; to pass a host directory, use an \
                 absolute path"
            ),
        ))
    }
}

/// Lexically cleans an absolute path like Go's filepath.Clean: no `.`, `..` or repeated `/`.
pub(crate) fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind(src: &str, propagation: Option<Propagation>, create: bool) -> MountKind {
        MountKind::Bind {
            source: src.into(),
            propagation,
            create_missing: create,
        }
    }

    #[test]
    fn volume_bind_with_options() {
        let m = parse_volume("/host/dir:/data:ro,Z,rshared").unwrap();
        assert_eq!(m.target, Path::new("/data"));
        assert!(m.readonly);
        assert_eq!(m.kind, bind("/host/dir", Some(Propagation::Rshared), true));
        let m = parse_volume("/host/./dir/:/data/").unwrap();
        assert_eq!(m.target, Path::new("/data"));
        assert!(!m.readonly);
        assert_eq!(m.kind, bind("/host/dir", None, true));
    }

    #[test]
    fn volume_named_and_anonymous() {
        let m = parse_volume("cache:/var/cache:ro,nocopy").unwrap();
        assert!(m.readonly);
        assert_eq!(
            m.kind,
            MountKind::Volume {
                name: Some("cache".into()),
                nocopy: true
            }
        );
        let m = parse_volume("/scratch").unwrap();
        assert_eq!(m.target, Path::new("/scratch"));
        assert_eq!(
            m.kind,
            MountKind::Volume {
                name: None,
                nocopy: false
            }
        );
    }

    #[test]
    fn volume_rejects_bad_specs() {
        for bad in [
            "",
            "relative",
            "/a:/b:/c:/d",
            "/data:ro",
            "/h:relative",
            "/h:/",
            "/h:/c:bogus",
            "/h:/c:ro,rw",
            "/h:/c:shared,slave",
            "x:/c",
            "bad name:/c",
            "vol:/c:rshared",
            ":/c",
        ] {
            let err = parse_volume(bad).unwrap_err();
            assert!(err.to_string().contains("--volume"), "{bad}: {err}");
        }
    }

    #[test]
    fn mount_bind_volume_and_tmpfs() {
        let m = parse_mount("type=bind,src=/h,dst=/c,readonly,bind-propagation=rslave").unwrap();
        assert!(m.readonly);
        assert_eq!(m.kind, bind("/h", Some(Propagation::Rslave), false));
        let m = parse_mount("source=vol,target=/c,volume-nocopy=true,ro=false").unwrap();
        assert!(!m.readonly);
        assert_eq!(
            m.kind,
            MountKind::Volume {
                name: Some("vol".into()),
                nocopy: true
            }
        );
        let m = parse_mount("type=volume,destination=/anon").unwrap();
        assert_eq!(
            m.kind,
            MountKind::Volume {
                name: None,
                nocopy: false
            }
        );
        let m = parse_mount("type=tmpfs,target=/t,tmpfs-size=64m,tmpfs-mode=1770").unwrap();
        assert_eq!(
            m.kind,
            MountKind::Tmpfs(TmpfsOptions {
                size: Some(64 << 20),
                mode: Some(0o1770),
                flags: vec![]
            })
        );
    }

    #[test]
    fn mount_rejects_bad_specs() {
        for bad in [
            "type=bind,target=/c",
            "type=bind,src=rel,target=/c",
            "type=bind,src=/h",
            "type=nfs,target=/c",
            "type=volume,src=v,target=/c,bind-propagation=shared",
            "type=tmpfs,src=/h,target=/c",
            "type=tmpfs,target=/c,tmpfs-mode=999",
            "type=bind,src=/h,target=/c,bogus=1",
            "type=bind,src=/h,target=/c,readonly=maybe",
            "type=bind,src=/h,target=/c,tmpfs-size=1m",
            "type=bind,src=/h,target",
            "type=bind,src=/h,target=/c,bind-propagation=weird",
        ] {
            let err = parse_mount(bad).unwrap_err();
            assert!(err.to_string().contains("--mount"), "{bad}: {err}");
        }
    }

    #[test]
    fn tmpfs_options() {
        let m = parse_tmpfs("/run:rw,noexec,nosuid,size=65536k,mode=755").unwrap();
        assert_eq!(m.target, Path::new("/run"));
        assert!(!m.readonly);
        assert_eq!(
            m.kind,
            MountKind::Tmpfs(TmpfsOptions {
                size: Some(65536 << 10),
                mode: Some(0o755),
                flags: vec!["noexec".into(), "nosuid".into()]
            })
        );
        assert!(parse_tmpfs("/ro:ro").unwrap().readonly);
        for bad in ["run", "/run:size=big", "/run:weird", "/run:uid=0", "/"] {
            let err = parse_tmpfs(bad).unwrap_err();
            assert!(err.to_string().contains("--tmpfs"), "{bad}: {err}");
        }
    }

    #[test]
    fn devices() {
        let d = parse_device("/dev/fuse").unwrap();
        assert_eq!(
            (d.container_path.to_str(), d.permissions.as_str()),
            (Some("/dev/fuse"), "rwm")
        );
        let d = parse_device("/dev/sda:r").unwrap();
        assert_eq!(
            (d.container_path.to_str(), d.permissions.as_str()),
            (Some("/dev/sda"), "r")
        );
        let d = parse_device("/dev/sda:/dev/xvda").unwrap();
        assert_eq!(d.container_path, Path::new("/dev/xvda"));
        let d = parse_device("/dev/sda:/dev/xvda:rw").unwrap();
        assert_eq!(
            (d.host_path.to_str(), d.permissions.as_str()),
            (Some("/dev/sda"), "rw")
        );
        for bad in [
            "dev/sda",
            "/dev/sda:rel",
            "/dev/sda:/dev/x:rwx",
            "/dev/sda:/x:rr",
            "/a:/b:r:w",
        ] {
            let err = parse_device(bad).unwrap_err();
            assert!(err.to_string().contains("--device"), "{bad}: {err}");
        }
    }

    #[test]
    fn volume_binds_create_missing_host_dirs_but_mount_binds_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("a/b");
        let v = parse_volume(&format!("{}:/c", host.display())).unwrap();
        v.create_missing_host_dir().unwrap();
        assert!(host.is_dir());
        let other = dir.path().join("x");
        let m = parse_mount(&format!("type=bind,src={},dst=/c", other.display())).unwrap();
        m.create_missing_host_dir().unwrap();
        assert!(!other.exists());
        let blocked = parse_volume(&format!("{}:/c", dir.path().join("f/sub").display())).unwrap();
        std::fs::write(dir.path().join("f"), "").unwrap();
        assert!(matches!(
            blocked.create_missing_host_dir(),
            Err(FlagError::CreateHostDir { .. })
        ));
    }

    #[test]
    fn resolve_asks_for_volume_directories() {
        let m = parse_volume("data:/d").unwrap();
        let r = m
            .resolve(|name, nocopy| {
                assert_eq!((name, nocopy), (Some("data"), false));
                Ok::<_, ()>(PathBuf::from("/var/lib/berth/volumes/data/_data"))
            })
            .unwrap();
        assert_eq!(
            r.source,
            ResolvedSource::Bind {
                path: "/var/lib/berth/volumes/data/_data".into(),
                propagation: None
            }
        );
    }
}
