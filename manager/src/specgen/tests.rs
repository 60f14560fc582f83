//! Tests of [`generate`] as a whole, against a small rootfs with passwd and group files.

use std::fs;
use std::path::Path;

use oci_spec::runtime::{
    Capability, LinuxDeviceType, LinuxNamespaceType, LinuxSeccompAction, PosixRlimitType, Spec,
};

use super::flags::{parse_capability, parse_cpus, parse_device, parse_ulimit};
use super::*;

fn rootfs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("etc")).unwrap();
    fs::write(
        dir.path().join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
    )
    .unwrap();
    fs::write(
        dir.path().join("etc/group"),
        "root:x:0:\nwheel:x:10:root\naudio:x:29:app\napp:x:1000:\n",
    )
    .unwrap();
    dir
}

fn image(cmd: &[&str]) -> ImageConfig {
    ImageConfig {
        cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
        env: vec!["IMAGE_VAR=1".to_string()],
        ..Default::default()
    }
}

fn options(root: &Path) -> Options {
    Options {
        rootfs: root.to_path_buf(),
        hostname: Some("c0ffee".to_string()),
        ..Default::default()
    }
}

fn gen(opts: &Options) -> Spec {
    generate(&image(&["sh"]), opts).unwrap()
}

fn bounding(spec: &Spec) -> std::collections::HashSet<Capability> {
    let caps = spec
        .process()
        .as_ref()
        .unwrap()
        .capabilities()
        .as_ref()
        .unwrap();
    caps.bounding().clone().unwrap()
}

fn namespace_types(spec: &Spec) -> Vec<LinuxNamespaceType> {
    let linux = spec.linux().as_ref().unwrap();
    linux
        .namespaces()
        .as_ref()
        .unwrap()
        .iter()
        .map(|n| n.typ())
        .collect()
}

fn seccomp_allows(spec: &Spec, name: &str) -> bool {
    let seccomp = spec.linux().as_ref().unwrap().seccomp().as_ref().unwrap();
    seccomp
        .syscalls()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|r| {
            r.action() == LinuxSeccompAction::ScmpActAllow
                && r.names().iter().any(|n| n == name)
                && r.args().is_none()
        })
}

#[test]
fn defaults_look_like_docker() {
    let root = rootfs();
    let spec = gen(&options(root.path()));
    assert_eq!(spec.version(), OCI_VERSION);
    let process = spec.process().as_ref().unwrap();
    assert_eq!(process.args().as_deref().unwrap(), ["sh"]);
    assert_eq!(process.cwd(), Path::new("/"));
    assert_eq!(process.terminal(), Some(false));
    let env = process.env().as_deref().unwrap();
    assert_eq!(env[0], format!("PATH={DEFAULT_PATH}"));
    for want in ["HOSTNAME=c0ffee", "IMAGE_VAR=1", "HOME=/root"] {
        assert!(env.iter().any(|e| e == want), "{want} in {env:?}");
    }
    assert!(!env.iter().any(|e| e.starts_with("TERM=")));
    let user = process.user();
    assert_eq!((user.uid(), user.gid()), (0, 0));
    assert_eq!(user.additional_gids().as_deref(), Some(&[0, 10][..]));
    assert_eq!(process.no_new_privileges(), None);
    assert_eq!(process.oom_score_adj(), None);
    assert!(process.rlimits().as_deref().unwrap_or_default().is_empty());

    let caps = process.capabilities().as_ref().unwrap();
    assert_eq!(bounding(&spec).len(), 14);
    assert_eq!(caps.effective(), caps.bounding());
    assert_eq!(caps.permitted(), caps.bounding());
    assert!(caps.inheritable().as_ref().is_some_and(|c| c.is_empty()));
    assert!(caps.ambient().as_ref().is_some_and(|c| c.is_empty()));
    assert!(bounding(&spec).contains(&Capability::NetBindService));
    assert!(!bounding(&spec).contains(&Capability::SysAdmin));

    let rootspec = spec.root().as_ref().unwrap();
    assert_eq!(rootspec.path(), root.path());
    assert_eq!(rootspec.readonly(), Some(false));
    assert_eq!(spec.hostname().as_deref(), Some("c0ffee"));

    let linux = spec.linux().as_ref().unwrap();
    assert_eq!(
        linux.masked_paths().as_ref().unwrap().len(),
        MASKED_PATHS.len()
    );
    assert_eq!(
        linux.readonly_paths().as_ref().unwrap().len(),
        READONLY_PATHS.len()
    );
    let ns = namespace_types(&spec);
    for t in [
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
    ] {
        assert!(ns.contains(&t), "{t:?}");
    }
    assert_eq!(
        ns.contains(&LinuxNamespaceType::Cgroup),
        linux::host_is_cgroup_v2()
    );
    let seccomp = linux.seccomp().as_ref().unwrap();
    assert_eq!(seccomp.default_action(), LinuxSeccompAction::ScmpActErrno);
    assert!(!seccomp_allows(&spec, "mount"));
    let rules = linux
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .clone()
        .unwrap();
    assert!(!rules[0].allow());
    assert_eq!(rules[0].access().as_deref(), Some("rwm"));
    assert!(linux.devices().as_deref().unwrap_or_default().is_empty());
    assert_eq!(linux.cgroups_path(), &None);

    // The spec serialises to the field names runtimes read.
    let json = serde_json::to_value(&spec).unwrap();
    assert_eq!(json["ociVersion"], OCI_VERSION);
    assert_eq!(json["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
}

#[test]
fn no_command_is_an_error() {
    let root = rootfs();
    let err = generate(&ImageConfig::default(), &options(root.path())).unwrap_err();
    assert!(matches!(err, SpecGenError::NoCommand));
    assert_eq!(err.to_string(), "no command specified");
}

#[test]
fn user_and_workdir_come_from_image_or_flags() {
    let root = rootfs();
    let mut img = image(&["id"]);
    img.user = "app".to_string();
    img.working_dir = "/srv".to_string();
    let mut opts = options(root.path());
    let spec = generate(&img, &opts).unwrap();
    let p = spec.process().as_ref().unwrap();
    assert_eq!((p.user().uid(), p.user().gid()), (1000, 1000));
    assert_eq!(p.user().additional_gids().as_deref(), Some(&[1000, 29][..]));
    assert_eq!(p.cwd(), Path::new("/srv"));
    assert!(p
        .env()
        .as_ref()
        .unwrap()
        .contains(&"HOME=/home/app".to_string()));

    opts.process.user = Some("1000:wheel".to_string());
    opts.process.workdir = Some("/tmp".to_string());
    let spec = generate(&img, &opts).unwrap();
    let p = spec.process().as_ref().unwrap();
    assert_eq!((p.user().uid(), p.user().gid()), (1000, 10));
    assert_eq!(p.cwd(), Path::new("/tmp"));

    opts.process.user = Some("app".to_string());
    opts.process.group_add = vec!["wheel".to_string(), "audio".to_string(), "777".to_string()];
    let spec = generate(&img, &opts).unwrap();
    let p = spec.process().as_ref().unwrap();
    assert_eq!(
        p.user().additional_gids().as_deref(),
        Some(&[1000, 29, 10, 777][..])
    );
    opts.process.group_add.clear();

    opts.process.user = Some("ghost".to_string());
    let err = generate(&img, &opts).unwrap_err();
    assert!(
        matches!(err, SpecGenError::User(UserError::NoSuchUser { .. })),
        "{err}"
    );

    opts.process.user = None;
    opts.process.workdir = Some("relative".to_string());
    assert!(matches!(
        generate(&img, &opts),
        Err(SpecGenError::RelativeWorkdir { .. })
    ));
}

#[test]
fn tty_sets_terminal_and_term() {
    let root = rootfs();
    let mut opts = options(root.path());
    opts.process.tty = true;
    let spec = gen(&opts);
    let p = spec.process().as_ref().unwrap();
    assert_eq!(p.terminal(), Some(true));
    assert!(p
        .env()
        .as_ref()
        .unwrap()
        .contains(&"TERM=xterm".to_string()));
}

#[test]
fn capability_flags_adjust_caps_and_seccomp() {
    let root = rootfs();
    let mut opts = options(root.path());
    opts.security.cap_add = vec![parse_capability("--cap-add", "sys_admin").unwrap()];
    opts.security.cap_drop = vec![parse_capability("--cap-drop", "CAP_NET_RAW").unwrap()];
    let spec = gen(&opts);
    let caps = bounding(&spec);
    assert!(caps.contains(&Capability::SysAdmin));
    assert!(!caps.contains(&Capability::NetRaw));
    assert!(seccomp_allows(&spec, "mount"));
    assert!(seccomp_allows(&spec, "clone"));

    opts.security.cap_add = vec![];
    opts.security.cap_drop = vec![parse_capability("--cap-drop", "ALL").unwrap()];
    assert!(bounding(&gen(&opts)).is_empty());
}

#[test]
fn privileged_lifts_confinement() {
    let root = rootfs();
    let mut opts = options(root.path());
    opts.security.privileged = true;
    let spec = gen(&opts);
    assert_eq!(bounding(&spec).len(), caps::all_capabilities().len());
    let linux = spec.linux().as_ref().unwrap();
    assert!(linux.seccomp().is_none());
    assert!(linux.masked_paths().as_ref().unwrap().is_empty());
    assert!(linux.readonly_paths().as_ref().unwrap().is_empty());
    let devices = linux.devices().clone().unwrap();
    let null = devices
        .iter()
        .find(|d| d.path() == Path::new("/dev/null"))
        .expect("host /dev/null among the devices");
    assert_eq!(
        (null.typ(), null.major(), null.minor()),
        (LinuxDeviceType::C, 1, 3)
    );
    let rules = linux
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .clone()
        .unwrap();
    assert_eq!(rules.len(), 1);
    assert!(rules[0].allow());
    let sys = spec
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .find(|m| m.destination() == Path::new("/sys"))
        .unwrap();
    assert!(sys.options().as_ref().unwrap().contains(&"rw".to_string()));
}

#[test]
fn seccomp_modes() {
    let root = rootfs();
    let mut opts = options(root.path());
    opts.security.seccomp = SeccompMode::Unconfined;
    assert!(gen(&opts).linux().as_ref().unwrap().seccomp().is_none());

    let profile = root.path().join("profile.json");
    fs::write(
        &profile,
        r#"{"defaultAction":"SCMP_ACT_LOG","syscalls":[{"names":["getpid"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}"#,
    )
    .unwrap();
    opts.security.seccomp = SeccompMode::Profile(profile);
    let spec = gen(&opts);
    let s = spec.linux().as_ref().unwrap().seccomp().as_ref().unwrap();
    assert_eq!(s.default_action(), LinuxSeccompAction::ScmpActLog);

    opts.security.seccomp = SeccompMode::Profile(root.path().join("missing.json"));
    assert!(matches!(
        generate(&image(&["sh"]), &opts),
        Err(SpecGenError::Seccomp(SeccompError::Read { .. }))
    ));
}

#[test]
fn read_only_no_new_privileges_and_identity_fields() {
    let root = rootfs();
    let mut opts = options(root.path());
    opts.security.read_only = true;
    opts.security.no_new_privileges = true;
    opts.domainname = Some("example.org".to_string());
    opts.cgroups_path = Some("/berth/c0ffee".into());
    opts.annotations.insert("org.example.k".into(), "v".into());
    let spec = gen(&opts);
    assert_eq!(spec.root().as_ref().unwrap().readonly(), Some(true));
    assert_eq!(
        spec.process().as_ref().unwrap().no_new_privileges(),
        Some(true)
    );
    assert_eq!(spec.domainname().as_deref(), Some("example.org"));
    assert_eq!(
        spec.linux().as_ref().unwrap().cgroups_path().as_deref(),
        Some(Path::new("/berth/c0ffee"))
    );
    assert_eq!(
        spec.annotations()
            .as_ref()
            .unwrap()
            .get("org.example.k")
            .map(String::as_str),
        Some("v")
    );
}

#[test]
fn resources_and_ulimits() {
    let root = rootfs();
    let mut opts = options(root.path());
    opts.resources = ResourceOptions {
        memory: Some(512 << 20),
        memory_swap: Some(-1),
        memory_reservation: Some(256 << 20),
        cpus: Some(parse_cpus("1.5").unwrap()),
        cpu_shares: Some(512),
        cpuset_cpus: Some("0".to_string()),
        pids_limit: Some(100),
        shm_size: None,
    };
    opts.ulimits = vec![parse_ulimit("nofile=1024:2048").unwrap()];
    let spec = gen(&opts);
    let res = spec.linux().as_ref().unwrap().resources().clone().unwrap();
    let mem = res.memory().unwrap();
    assert_eq!(mem.limit(), Some(512 << 20));
    assert_eq!(mem.reservation(), Some(256 << 20));
    let cpu = res.cpu().clone().unwrap();
    assert_eq!(
        (cpu.quota(), cpu.period()),
        (Some(150_000), Some(CPU_PERIOD))
    );
    assert_eq!(cpu.shares(), Some(512));
    assert_eq!(cpu.cpus().as_deref(), Some("0"));
    assert_eq!(res.pids().unwrap().limit(), 100);
    let rl = spec.process().as_ref().unwrap().rlimits().clone().unwrap();
    assert_eq!(rl.len(), 1);
    assert_eq!(
        (rl[0].typ(), rl[0].soft(), rl[0].hard()),
        (PosixRlimitType::RlimitNofile, 1024, 2048)
    );

    // Unlimited pids leaves the limit unset.
    opts.resources.pids_limit = Some(0);
    assert!(gen(&opts)
        .linux()
        .as_ref()
        .unwrap()
        .resources()
        .as_ref()
        .unwrap()
        .pids()
        .is_none());
}

#[test]
fn resource_rules_follow_docker() {
    let root = rootfs();
    let check = |r: ResourceOptions| {
        let mut opts = options(root.path());
        opts.resources = r;
        generate(&image(&["sh"]), &opts)
    };
    let small = check(ResourceOptions {
        memory: Some(1 << 20),
        ..Default::default()
    });
    assert!(matches!(small, Err(SpecGenError::Resources { .. })));
    let swap_only = check(ResourceOptions {
        memory_swap: Some(1 << 30),
        ..Default::default()
    });
    assert!(matches!(swap_only, Err(SpecGenError::Resources { .. })));
    let swap_below = check(ResourceOptions {
        memory: Some(1 << 30),
        memory_swap: Some(512 << 20),
        ..Default::default()
    });
    assert!(matches!(swap_below, Err(SpecGenError::Resources { .. })));
    let reservation_above = check(ResourceOptions {
        memory: Some(64 << 20),
        memory_reservation: Some(128 << 20),
        ..Default::default()
    });
    assert!(matches!(
        reservation_above,
        Err(SpecGenError::Resources { .. })
    ));
}

#[test]
fn requested_devices_are_created_and_allowed() {
    let root = rootfs();
    let mut opts = options(root.path());
    opts.devices = vec![parse_device("/dev/null:/dev/mynull:r").unwrap()];
    let spec = gen(&opts);
    let linux = spec.linux().as_ref().unwrap();
    let dev = &linux.devices().clone().unwrap()[0];
    assert_eq!(dev.path(), Path::new("/dev/mynull"));
    assert_eq!(
        (dev.typ(), dev.major(), dev.minor()),
        (LinuxDeviceType::C, 1, 3)
    );
    let rules = linux
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .clone()
        .unwrap();
    let last = rules.last().unwrap();
    assert!(last.allow());
    assert_eq!((last.major(), last.minor()), (Some(1), Some(3)));
    assert_eq!(last.access().as_deref(), Some("r"));

    opts.devices = vec![parse_device("/proc/self/status").unwrap()];
    assert!(matches!(
        generate(&image(&["sh"]), &opts),
        Err(SpecGenError::NotADevice { .. })
    ));
    opts.devices = vec![parse_device("/dev/berth-no-such-device").unwrap()];
    assert!(matches!(
        generate(&image(&["sh"]), &opts),
        Err(SpecGenError::Device { .. })
    ));
}

#[test]
fn namespace_modes() {
    let root = rootfs();
    let mut opts = options(root.path());
    opts.hostname = None;
    opts.namespaces = NamespaceOptions {
        network: NamespaceMode::Host,
        pid: NamespaceMode::Path("/proc/1/ns/pid".into()),
        ipc: NamespaceMode::Host,
        uts: NamespaceMode::Host,
    };
    let spec = gen(&opts);
    // No hostname given: none in the spec (oci-spec's builder default would say "youki").
    assert_eq!(spec.hostname(), &None);
    let linux = spec.linux().as_ref().unwrap();
    let ns = linux.namespaces().clone().unwrap();
    assert!(!ns.iter().any(|n| matches!(
        n.typ(),
        LinuxNamespaceType::Network | LinuxNamespaceType::Ipc | LinuxNamespaceType::Uts
    )));
    let pid = ns
        .iter()
        .find(|n| n.typ() == LinuxNamespaceType::Pid)
        .unwrap();
    assert_eq!(pid.path().as_deref(), Some(Path::new("/proc/1/ns/pid")));
    // Host IPC shares the host's /dev/shm.
    let shm = spec
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .find(|m| m.destination() == Path::new("/dev/shm"))
        .unwrap();
    assert_eq!(shm.typ().as_deref(), Some("bind"));

    opts.hostname = Some("box".to_string());
    assert!(matches!(
        generate(&image(&["sh"]), &opts),
        Err(SpecGenError::HostnameWithHostUts)
    ));
}

#[test]
fn init_wraps_the_command() {
    let root = rootfs();
    let mut opts = options(root.path());
    let init = root.path().join("tini-static");
    fs::write(&init, "").unwrap();
    opts.process.init = Some(init.clone());
    let spec = gen(&opts);
    assert_eq!(
        spec.process().as_ref().unwrap().args().as_deref().unwrap(),
        [INIT_PATH, "--", "sh"]
    );
    assert!(spec
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .any(|m| m.destination() == Path::new(INIT_PATH)));

    opts.process.init = Some(root.path().join("no-such-init"));
    assert!(matches!(
        generate(&image(&["sh"]), &opts),
        Err(SpecGenError::MissingSource { .. })
    ));
}

#[test]
fn bind_sources_must_exist() {
    let root = rootfs();
    let mut opts = options(root.path());
    opts.mounts = vec![ResolvedMount {
        target: "/data".into(),
        readonly: false,
        source: ResolvedSource::Bind {
            path: root.path().join("absent"),
            propagation: None,
        },
    }];
    let err = generate(&image(&["sh"]), &opts).unwrap_err();
    assert!(
        err.to_string().contains("bind source path does not exist"),
        "{err}"
    );
    opts.mounts[0].target = "data".into();
    assert!(matches!(
        generate(&image(&["sh"]), &opts),
        Err(SpecGenError::RelativeMountTarget { .. })
    ));
    opts.mounts.clear();
    opts.etc_files = vec![("/etc/hosts".into(), root.path().join("absent-hosts"))];
    assert!(matches!(
        generate(&image(&["sh"]), &opts),
        Err(SpecGenError::MissingSource { .. })
    ));
}

#[test]
fn cpus_beyond_the_host_are_refused_and_zero_means_unlimited() {
    let root = rootfs();
    let mut opts = options(root.path());
    opts.resources.cpus = Some(parse_cpus("100000").unwrap());
    let err = generate(&image(&["sh"]), &opts).unwrap_err();
    assert!(matches!(err, SpecGenError::TooManyCpus { .. }), "{err}");
    assert!(err.to_string().contains("100000 CPUs"), "{err}");
    opts.resources.cpus = Some(parse_cpus("0").unwrap());
    let spec = gen(&opts);
    let res = spec.linux().as_ref().unwrap().resources().clone().unwrap();
    assert_eq!(res.cpu().as_ref().and_then(|c| c.quota()), None);
}

#[test]
fn options_round_trip_through_json_for_container_records() {
    let root = rootfs();
    let mut opts = options(root.path());
    opts.security.cap_add = vec![parse_capability("--cap-add", "NET_ADMIN").unwrap()];
    opts.ulimits = vec![parse_ulimit("nofile=10:20").unwrap()];
    opts.resources.cpus = Some(parse_cpus("0.5").unwrap());
    opts.devices = vec![parse_device("/dev/null").unwrap()];
    opts.namespaces.network = NamespaceMode::Path("/run/netns/x".into());
    let json = serde_json::to_string(&opts).unwrap();
    let back: Options = serde_json::from_str(&json).unwrap();
    assert_eq!(back, opts);
    // Missing fields take their defaults, so older records still load.
    let minimal: Options = serde_json::from_str(r#"{"rootfs":"/r"}"#).unwrap();
    assert_eq!(minimal.rootfs, Path::new("/r"));
    assert_eq!(minimal.security, SecurityOptions::default());
}
