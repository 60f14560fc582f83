//! Capability names and docker's default set, and how --cap-add/--cap-drop/--privileged combine.

use oci_spec::runtime::Capability;

use super::flags::CapSpec;

/// Capability names without the CAP_ prefix, indexed by capability number (capability.h).
pub(crate) const CAP_NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// Docker's default capabilities (moby's oci/caps/defaults.go), the same 14 podman uses minus
/// none: enough for a package manager and a typical service running as root.
pub(crate) const DEFAULT_CAPS: [&str; 14] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// Maps `CHOWN` (no prefix) to oci-spec's enum.
pub(crate) fn capability(name: &str) -> Option<Capability> {
    serde_json::from_value(serde_json::Value::String(format!("CAP_{name}"))).ok()
}

/// The capability number of a name without prefix.
pub(crate) fn cap_number(name: &str) -> Option<u32> {
    CAP_NAMES.iter().position(|n| *n == name).map(|i| i as u32)
}

/// Every capability a container can be given here: those the kernel knows (up to
/// /proc/sys/kernel/cap_last_cap) that are also in our own bounding set, since a runtime we
/// start cannot raise a capability we lack (capset fails with EPERM), e.g. when berth itself
/// runs in a container. Falls back to our full table when /proc cannot be read.
pub(crate) fn all_capabilities() -> Vec<&'static str> {
    let last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .unwrap_or(CAP_NAMES.len() - 1);
    let bounding = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| bounding_set(&s))
        .unwrap_or(u64::MAX);
    CAP_NAMES
        .iter()
        .enumerate()
        .take(last + 1)
        .filter(|(i, _)| bounding & (1u64 << i) != 0)
        .map(|(_, n)| *n)
        .collect()
}

/// The `CapBnd:` mask of a /proc/<pid>/status text.
fn bounding_set(status: &str) -> Option<u64> {
    let hex = status.lines().find_map(|l| l.strip_prefix("CapBnd:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

/// Docker's rule (moby TweakCapabilities): privileged gets everything; `--cap-add ALL` gets
/// everything except the dropped; `--cap-drop ALL` keeps only the added; otherwise the defaults
/// minus the dropped plus the added. Names are returned without prefix, in capability order.
pub(crate) fn effective_set(add: &[CapSpec], drop: &[CapSpec], privileged: bool) -> Vec<String> {
    let all = all_capabilities();
    let named = |specs: &[CapSpec]| -> Vec<String> {
        specs
            .iter()
            .filter_map(|s| match s {
                CapSpec::All => None,
                CapSpec::Cap(name) => Some(name.clone()),
            })
            .collect()
    };
    let has_all = |specs: &[CapSpec]| specs.contains(&CapSpec::All);
    let (adds, drops) = (named(add), named(drop));
    let mut caps: Vec<String> = if privileged {
        all.iter().map(|s| s.to_string()).collect()
    } else if has_all(add) {
        all.iter()
            .filter(|c| !drops.iter().any(|d| d == *c))
            .map(|s| s.to_string())
            .collect()
    } else if has_all(drop) {
        adds
    } else {
        DEFAULT_CAPS
            .iter()
            .filter(|c| !drops.iter().any(|d| d == *c))
            .map(|s| s.to_string())
            .chain(adds)
            .collect()
    };
    caps.sort_by_key(|c| cap_number(c));
    caps.dedup();
    caps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cap(n: &str) -> CapSpec {
        CapSpec::Cap(n.to_string())
    }

    #[test]
    fn every_name_maps_to_oci_spec() {
        for name in CAP_NAMES {
            assert!(capability(name).is_some(), "{name}");
        }
        assert!(capability("NOPE").is_none());
    }

    #[test]
    fn all_capabilities_stay_within_our_bounding_set() {
        assert_eq!(
            bounding_set("Name:\tx\nCapBnd:\t000001fffeffffff\n"),
            Some(0x1fffeffffff)
        );
        assert_eq!(bounding_set("Name:\tx\n"), None);
        let ours = std::fs::read_to_string("/proc/self/status").unwrap();
        let mask = bounding_set(&ours).unwrap();
        for name in all_capabilities() {
            let n = cap_number(name).unwrap();
            assert!(mask & (1 << n) != 0, "{name} is not in our bounding set");
        }
    }

    #[test]
    fn defaults_without_flags() {
        let caps = effective_set(&[], &[], false);
        assert_eq!(caps.len(), 14);
        assert!(caps.contains(&"NET_RAW".to_string()));
        assert!(!caps.contains(&"SYS_ADMIN".to_string()));
        // Sorted by capability number: CHOWN (0) first, SETFCAP (31) last.
        assert_eq!(caps.first().map(String::as_str), Some("CHOWN"));
        assert_eq!(caps.last().map(String::as_str), Some("SETFCAP"));
    }

    #[test]
    fn add_and_drop_combine_like_docker() {
        let caps = effective_set(&[cap("SYS_ADMIN")], &[cap("NET_RAW")], false);
        assert!(caps.contains(&"SYS_ADMIN".to_string()));
        assert!(!caps.contains(&"NET_RAW".to_string()));
        assert_eq!(caps.len(), 14);

        let caps = effective_set(&[cap("NET_ADMIN")], &[CapSpec::All], false);
        assert_eq!(caps, vec!["NET_ADMIN"]);

        let caps = effective_set(&[CapSpec::All], &[cap("SYS_ADMIN")], false);
        assert_eq!(caps.len(), all_capabilities().len() - 1);
        assert!(!caps.contains(&"SYS_ADMIN".to_string()));

        let caps = effective_set(&[], &[CapSpec::All], true);
        assert_eq!(caps.len(), all_capabilities().len());
    }
}
