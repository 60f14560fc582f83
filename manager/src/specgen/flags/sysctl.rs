//! `--sysctl KEY=VALUE`: only sysctls that live in a namespace of the container's own.

use super::{invalid, FlagError};

/// The kernel namespace a sysctl lives in; it is the container's only when the container has
/// that namespace to itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SysctlNamespace {
    /// `net.*`.
    Network,
    /// System V IPC and POSIX message queues: `kernel.msg*`, `kernel.sem`, `kernel.shm*`,
    /// `fs.mqueue.*`.
    Ipc,
}

/// The IPC sysctls docker accepts by name.
const IPC_SYSCTLS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// The namespace of `key`, or `None` for a sysctl of the whole host.
pub fn sysctl_namespace(key: &str) -> Option<SysctlNamespace> {
    if key.starts_with("net.") && key.len() > 4 {
        Some(SysctlNamespace::Network)
    } else if IPC_SYSCTLS.contains(&key) || (key.starts_with("fs.mqueue.") && key.len() > 10) {
        Some(SysctlNamespace::Ipc)
    } else {
        None
    }
}

/// `--sysctl KEY=VALUE` as docker's CLI takes it: the value may itself contain `=`; a sysctl
/// outside the container's namespaces is refused with docker's wording.
pub fn parse_sysctl(value: &str) -> Result<(String, String), FlagError> {
    const FLAG: &str = "--sysctl";
    let Some((key, val)) = value.split_once('=') else {
        return Err(invalid(
            FLAG,
            value,
            format!("sysctl '{value}' is not whitelisted"),
        ));
    };
    check_sysctl(key, val)?;
    Ok((key.to_string(), val.to_string()))
}

/// Checks one `KEY`, `VALUE` pair (of `--sysctl` or HostConfig.Sysctls) and returns its
/// namespace.
pub fn check_sysctl(key: &str, value: &str) -> Result<SysctlNamespace, FlagError> {
    let shown = format!("{key}={value}");
    let ns = sysctl_namespace(key).ok_or_else(|| {
        invalid(
            "--sysctl",
            &shown,
            format!("sysctl '{shown}' is not whitelisted"),
        )
    })?;
    if key.contains("..") || key.ends_with('.') || key.contains('/') && !key.starts_with("net.") {
        return Err(invalid("--sysctl", &shown, "not a sysctl name"));
    }
    if value.is_empty() || value.contains('\n') {
        return Err(invalid(
            "--sysctl",
            &shown,
            "the value must be one non-empty line",
        ));
    }
    Ok(ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaced_sysctls_are_accepted() {
        assert_eq!(
            parse_sysctl("net.core.somaxconn=1024").unwrap(),
            ("net.core.somaxconn".into(), "1024".into())
        );
        assert_eq!(
            parse_sysctl("net.ipv4.ip_local_port_range=1024 65000")
                .unwrap()
                .1,
            "1024 65000"
        );
        assert_eq!(
            check_sysctl("kernel.shmmax", "1").unwrap(),
            SysctlNamespace::Ipc
        );
        assert_eq!(
            check_sysctl("fs.mqueue.msg_max", "20").unwrap(),
            SysctlNamespace::Ipc
        );
        assert_eq!(
            check_sysctl("net.ipv4.ip_forward", "1").unwrap(),
            SysctlNamespace::Network
        );
    }

    #[test]
    fn host_sysctls_and_bad_values_are_refused() {
        for bad in [
            "kernel.pid_max=1000",
            "vm.swappiness=1",
            "kernel.hostname=x",
            "net.",
            "net.core.somaxconn",
            "net.core.somaxconn=",
            "fs.file-max=1",
        ] {
            let err = parse_sysctl(bad).unwrap_err().to_string();
            assert!(err.contains("--sysctl"), "{bad}: {err}");
        }
        let err = parse_sysctl("kernel.pid_max=1000").unwrap_err().to_string();
        assert!(err.contains("is not whitelisted"), "{err}");
    }
}
