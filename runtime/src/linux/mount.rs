//! Mount option parsing (mount(8) option names to mount(2) flags) and small mount helpers.

use nix::mount::MsFlags;

/// A parsed `options` list of one OCI mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Flags to set (MS_RDONLY, MS_NOSUID, ...). MS_BIND/MS_REC for bind and rbind.
    pub flags: MsFlags,
    /// Propagation changes to apply after the mount, in order.
    pub propagation: Vec<MsFlags>,
    /// Filesystem-specific options, passed as mount(2) data ("size=64m,mode=755").
    pub data: Vec<String>,
    /// Recursive mount attributes (`rro`, `rnosuid`, ...: runc's names), set and cleared on
    /// the whole mount tree with mount_setattr(2) AT_RECURSIVE after the mount.
    pub recursive: RecursiveAttrs,
}

/// `struct mount_attr`'s attr_set / attr_clr (linux/mount.h).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecursiveAttrs {
    pub set: u64,
    pub clear: u64,
}

impl RecursiveAttrs {
    pub fn is_empty(&self) -> bool {
        self.set == 0 && self.clear == 0
    }
}

// linux/mount.h (Linux 5.12).
const MOUNT_ATTR_RDONLY: u64 = 0x01;
const MOUNT_ATTR_NOSUID: u64 = 0x02;
const MOUNT_ATTR_NODEV: u64 = 0x04;
const MOUNT_ATTR_NOEXEC: u64 = 0x08;
const MOUNT_ATTR_ATIME_MASK: u64 = 0x70;
const MOUNT_ATTR_RELATIME: u64 = 0x00;
const MOUNT_ATTR_NOATIME: u64 = 0x10;
const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
const MOUNT_ATTR_NODIRATIME: u64 = 0x80;

/// What a recursive option does to `struct mount_attr`.
enum RecOpt {
    Set(u64),
    Clear(u64),
    /// The atime mode is one field of the kernel's: attr_clr must name all of it
    /// (MOUNT_ATTR__ATIME) and attr_set the mode wanted. `ratime` and `rnostrictatime` go back
    /// to the default (relatime); `rnorelatime`, like mount(8)'s norelatime, to strictatime.
    Atime(u64),
}

fn recursive_option(name: &str) -> Option<RecOpt> {
    use RecOpt::{Atime, Clear, Set};
    Some(match name {
        "rro" => Set(MOUNT_ATTR_RDONLY),
        "rrw" => Clear(MOUNT_ATTR_RDONLY),
        "rnosuid" => Set(MOUNT_ATTR_NOSUID),
        "rsuid" => Clear(MOUNT_ATTR_NOSUID),
        "rnodev" => Set(MOUNT_ATTR_NODEV),
        "rdev" => Clear(MOUNT_ATTR_NODEV),
        "rnoexec" => Set(MOUNT_ATTR_NOEXEC),
        "rexec" => Clear(MOUNT_ATTR_NOEXEC),
        "rnodiratime" => Set(MOUNT_ATTR_NODIRATIME),
        "rdiratime" => Clear(MOUNT_ATTR_NODIRATIME),
        "rrelatime" | "ratime" | "rnostrictatime" => Atime(MOUNT_ATTR_RELATIME),
        "rnoatime" => Atime(MOUNT_ATTR_NOATIME),
        "rstrictatime" | "rnorelatime" => Atime(MOUNT_ATTR_STRICTATIME),
        _ => return None,
    })
}

/// The recursive option names, for `features`.
pub const RECURSIVE_OPTIONS: &[&str] = &[
    "ratime",
    "rdev",
    "rdiratime",
    "rexec",
    "rnoatime",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnorelatime",
    "rnostrictatime",
    "rnosuid",
    "rro",
    "rrelatime",
    "rrw",
    "rstrictatime",
    "rsuid",
];

impl Default for Options {
    fn default() -> Self {
        Options {
            flags: MsFlags::empty(),
            propagation: Vec::new(),
            data: Vec::new(),
            recursive: RecursiveAttrs::default(),
        }
    }
}

impl Options {
    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }

    pub fn data(&self) -> Option<String> {
        (!self.data.is_empty()).then(|| self.data.join(","))
    }

    /// Flags that need a remount to take effect on a bind mount (bind ignores them).
    pub fn remount_flags(&self) -> MsFlags {
        self.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT)
    }
}

/// Maps a propagation name to its flags (`rootfsPropagation` and mount options).
pub fn propagation_flag(name: &str) -> Option<MsFlags> {
    Some(match name {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

/// Parses mount options. Unknown names are filesystem data, as mount(8) treats them.
/// Returns the name of an option this runtime refuses (id-mapped mounts) as an error.
pub fn parse(options: &[String]) -> Result<Options, String> {
    let mut o = Options::default();
    for opt in options {
        let (set, clear) = match opt.as_str() {
            "defaults" => (MsFlags::empty(), MsFlags::empty()),
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "lazytime" => (MsFlags::MS_LAZYTIME, MsFlags::empty()),
            "nolazytime" => (MsFlags::empty(), MsFlags::MS_LAZYTIME),
            "silent" => (MsFlags::MS_SILENT, MsFlags::empty()),
            "loud" => (MsFlags::empty(), MsFlags::MS_SILENT),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
            // runc extension for tmpfs: copy the image's content up; accepted, not needed for
            // correctness of the mount itself.
            "tmpcopyup" => (MsFlags::empty(), MsFlags::empty()),
            "idmap" | "ridmap" => {
                return Err(format!(
                    "option {opt:?} (id-mapped mounts) is not supported"
                ))
            }
            other => {
                if let Some(op) = recursive_option(other) {
                    let r = &mut o.recursive;
                    match op {
                        RecOpt::Set(f) => (r.set, r.clear) = (r.set | f, r.clear & !f),
                        RecOpt::Clear(f) => (r.set, r.clear) = (r.set & !f, r.clear | f),
                        RecOpt::Atime(mode) => {
                            r.set = (r.set & !MOUNT_ATTR_ATIME_MASK) | mode;
                            r.clear |= MOUNT_ATTR_ATIME_MASK;
                        }
                    }
                    continue;
                }
                if let Some(p) = propagation_flag(other) {
                    o.propagation.push(p);
                } else {
                    o.data.push(other.to_string());
                }
                continue;
            }
        };
        o.flags = (o.flags | set) - clear;
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(list: &[&str]) -> Options {
        parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).expect("parses")
    }

    #[test]
    fn flags_data_and_propagation_are_separated() {
        let o = opts(&[
            "nosuid",
            "noexec",
            "size=65536k",
            "mode=755",
            "rslave",
            "ro",
        ]);
        assert_eq!(
            o.flags,
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_RDONLY
        );
        assert_eq!(o.data(), Some("size=65536k,mode=755".to_string()));
        assert_eq!(o.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC]);
    }

    #[test]
    fn later_options_override_earlier_ones() {
        assert!(!opts(&["ro", "rw"]).flags.contains(MsFlags::MS_RDONLY));
        assert!(opts(&["rw", "ro"]).flags.contains(MsFlags::MS_RDONLY));
    }

    #[test]
    fn rbind_is_a_recursive_bind() {
        let o = opts(&["rbind", "ro"]);
        assert!(o.is_bind());
        assert!(o.flags.contains(MsFlags::MS_REC));
        assert_eq!(o.remount_flags(), MsFlags::MS_RDONLY);
    }

    #[test]
    fn recursive_options_become_mount_attributes() {
        let o = opts(&["rbind", "ro", "rro", "rnosuid"]);
        assert!(o.flags.contains(MsFlags::MS_RDONLY));
        assert_eq!(o.recursive.set, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID);
        assert!(o.data.is_empty());
        let o = opts(&["rro", "rrw"]);
        assert_eq!(o.recursive.set, 0);
        assert_eq!(o.recursive.clear, MOUNT_ATTR_RDONLY);
        let o = opts(&["rnoatime"]);
        assert_eq!(o.recursive.set, MOUNT_ATTR_NOATIME);
        assert_eq!(o.recursive.clear, MOUNT_ATTR_ATIME_MASK);
    }

    #[test]
    fn idmap_is_refused_by_name() {
        let err = parse(&["idmap".to_string()]).unwrap_err();
        assert!(err.contains("idmap"));
    }
}
