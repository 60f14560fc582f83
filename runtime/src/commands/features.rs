use anyhow::Result;
use serde_json::json;

/// Mount options `linux::mount::parse` understands as flags or propagation.
const MOUNT_OPTIONS: &[&str] = &[
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "lazytime",
    "loud",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "private",
    "rbind",
    "relatime",
    "remount",
    "ro",
    "rprivate",
    "rshared",
    "rslave",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "sync",
    "tmpcopyup",
    "unbindable",
];

#[inline(never)] // see main()
pub fn run() -> Result<u8> {
    let mut namespaces = vec!["cgroup", "ipc", "mount", "network", "pid", "user", "uts"];
    if std::path::Path::new("/proc/self/ns/time").exists() {
        namespaces.push("time");
    }
    let mut mount_options: Vec<&str> = MOUNT_OPTIONS.to_vec();
    mount_options.extend_from_slice(berth_runtime::linux::mount::RECURSIVE_OPTIONS);
    mount_options.sort_unstable();
    let mut caps: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
    caps.sort();
    let features = json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.2.0",
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": mount_options,
        "linux": {
            "namespaces": namespaces,
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false},
            "seccomp": berth_runtime::linux::seccomp::features(),
            // Support is built in (runtime-spec: unrelated to whether this host has the LSM).
            "apparmor": {"enabled": true},
            "selinux": {"enabled": true},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": false}}
        },
        "annotations": {
            "org.opencontainers.runtime-spec.features.runtime": "berth-runtime",
            "io.github.berth.runtime.version": env!("CARGO_PKG_VERSION")
        }
    });
    println!("{}", serde_json::to_string_pretty(&features)?);
    Ok(0)
}
