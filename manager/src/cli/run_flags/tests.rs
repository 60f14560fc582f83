//! Every `run`/`create` flag's translation into docker's create request.

use std::collections::BTreeMap;

use berth::ops::models::{
    BindOptions, DeviceMapping, Empty, EndpointSettings, HealthConfig, Mount, PortBinding,
    RestartPolicy, TmpfsOptions, Ulimit, VolumeOptions,
};
use clap::Parser;

use super::*;

#[derive(Debug, Parser)]
#[command(disable_help_flag = true)]
struct Cmd {
    #[command(flatten)]
    flags: Flags,
}

/// The request for `run FLAGS busybox sh`.
fn request(args: &[&str]) -> ContainerCreateRequest {
    translated(args).request
}

fn translated(args: &[&str]) -> Translated {
    let cmd = Cmd::try_parse_from(std::iter::once("run").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    cmd.flags
        .translate("busybox", &["sh".to_string()], false)
        .unwrap_or_else(|e| panic!("{args:?}: {e:#}"))
}

fn error(args: &[&str]) -> String {
    let cmd = Cmd::try_parse_from(std::iter::once("run").chain(args.iter().copied())).unwrap();
    match cmd.flags.translate("busybox", &[], false) {
        Ok(_) => panic!("{args:?} translated"),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn no_flags_give_dockers_defaults() {
    let r = request(&[]);
    assert_eq!(r.config.image, "busybox");
    assert_eq!(r.config.cmd, Some(vec!["sh".to_string()]));
    assert_eq!(r.config.entrypoint, None);
    assert!(r.config.env.is_empty() && r.config.labels.is_empty());
    assert_eq!(r.config.healthcheck, None);
    assert!(r.config.attach_stdout && r.config.attach_stderr && !r.config.attach_stdin);
    assert_eq!(r.host_config.network_mode, "");
    assert_eq!(r.host_config.restart_policy.name, "no");
    assert_eq!(r.host_config.runtime, "berth-runtime");
    assert_eq!(r.host_config.pids_limit, None);
    assert_eq!(r.host_config.init, None);
    assert!(r.networking_config.endpoints_config.is_empty());
    let t = translated(&[]);
    assert_eq!(t.options, CreateOptions::default());
    let empty = Cmd::try_parse_from(["run"]).unwrap();
    let r = empty.flags.translate("busybox", &[], true).unwrap().request;
    assert_eq!(r.config.cmd, None, "no command: the image's");
    assert!(r.host_config.auto_remove, "--rm");
}

#[test]
fn name_and_snapshotter_are_create_options() {
    let t = translated(&["--name", "web", "--snapshotter", "copy"]);
    assert_eq!(t.options.name.as_deref(), Some("web"));
    assert_eq!(t.options.snapshotter.as_deref(), Some("copy"));
}

#[test]
fn env_flags_and_env_files_become_config_env() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("env");
    std::fs::write(&file, "# comment\nFROM_FILE=1\n").unwrap();
    std::env::set_var("BERTH_FLAG_TEST_HOST", "host-value");
    let r = request(&[
        "--env-file",
        file.to_str().unwrap(),
        "-e",
        "A=1",
        "--env",
        "BERTH_FLAG_TEST_HOST",
        "-e",
        "BERTH_FLAG_TEST_UNSET_XYZ",
    ]);
    assert_eq!(
        r.config.env,
        ["FROM_FILE=1", "A=1", "BERTH_FLAG_TEST_HOST=host-value"]
    );
    assert!(error(&["--env-file", "/nonexistent/berth-env"]).contains("--env-file"));
}

#[test]
fn process_flags_fill_config() {
    let r = request(&[
        "-w",
        "/srv",
        "-u",
        "nobody:users",
        "--entrypoint",
        "/bin/true",
        "-h",
        "box",
        "--domainname",
        "example.test",
        "-i",
        "-t",
        "--stop-signal",
        "SIGUSR1",
        "--stop-timeout",
        "3",
        "-l",
        "a=1",
        "--label",
        "b",
    ]);
    let c = &r.config;
    assert_eq!(c.working_dir, "/srv");
    assert_eq!(c.user, "nobody:users");
    assert_eq!(c.entrypoint, Some(vec!["/bin/true".to_string()]));
    assert_eq!(c.hostname, "box");
    assert_eq!(c.domainname, "example.test");
    assert!(c.tty && c.open_stdin && c.attach_stdin && c.stdin_once);
    assert_eq!(c.stop_signal, "SIGUSR1");
    assert_eq!(c.stop_timeout, Some(3));
    assert_eq!(
        c.labels,
        BTreeMap::from([("a".into(), "1".into()), ("b".into(), String::new())])
    );
    // `--entrypoint ""` resets the image's entrypoint.
    assert_eq!(
        request(&["--entrypoint", ""]).config.entrypoint,
        Some(vec![String::new()])
    );
}

#[test]
fn storage_flags_become_binds_mounts_and_tmpfs() {
    let r = request(&[
        "-v",
        "/srv/data:/data:ro",
        "--volume",
        "named:/named",
        "--mount",
        "type=bind,source=/srv,target=/srv,readonly,bind-propagation=rslave",
        "--mount",
        "type=volume,source=vol,target=/vol,volume-nocopy",
        "--mount",
        "type=tmpfs,target=/scratch,tmpfs-size=1m,tmpfs-mode=700",
        "--tmpfs",
        "/run:size=64m,noexec",
        "--tmpfs",
        "/tmp",
        "--read-only",
    ]);
    let h = &r.host_config;
    assert_eq!(h.binds, ["/srv/data:/data:ro", "named:/named"]);
    assert_eq!(
        h.mounts,
        vec![
            Mount {
                r#type: "bind".into(),
                source: "/srv".into(),
                target: "/srv".into(),
                read_only: true,
                bind_options: Some(BindOptions {
                    propagation: "rslave".into(),
                    create_mountpoint: false,
                }),
                ..Mount::default()
            },
            Mount {
                r#type: "volume".into(),
                source: "vol".into(),
                target: "/vol".into(),
                volume_options: Some(VolumeOptions {
                    no_copy: true,
                    ..VolumeOptions::default()
                }),
                ..Mount::default()
            },
            Mount {
                r#type: "tmpfs".into(),
                target: "/scratch".into(),
                tmpfs_options: Some(TmpfsOptions {
                    size_bytes: 1 << 20,
                    mode: 0o700,
                    options: Vec::new(),
                }),
                ..Mount::default()
            },
        ]
    );
    assert_eq!(
        h.tmpfs,
        BTreeMap::from([
            ("/run".into(), "size=64m,noexec".into()),
            ("/tmp".into(), String::new())
        ])
    );
    assert!(h.readonly_rootfs);
    assert!(error(&["--mount", "type=nope,target=/x"]).contains("--mount"));
}

#[test]
fn network_flags_fill_host_and_networking_config() {
    let r = request(&[
        "--network",
        "backend",
        "--network-alias",
        "db",
        "--network-alias",
        "store",
        "-p",
        "127.0.0.1:8080:80",
        "-p",
        "53/udp",
        "-P",
        "--add-host",
        "db.test:192.0.2.10",
        "--dns",
        "192.0.2.53",
        "--dns-search",
        "corp.test",
        "--dns-option",
        "ndots:3",
    ]);
    let h = &r.host_config;
    assert_eq!(h.network_mode, "backend");
    assert_eq!(
        r.networking_config.endpoints_config,
        BTreeMap::from([(
            "backend".to_string(),
            EndpointSettings {
                aliases: vec!["db".into(), "store".into()],
                ..EndpointSettings::default()
            }
        )])
    );
    assert_eq!(
        r.config.exposed_ports,
        BTreeMap::from([("53/udp".into(), Empty {}), ("80/tcp".into(), Empty {})])
    );
    assert_eq!(
        h.port_bindings["80/tcp"],
        vec![PortBinding {
            host_ip: "127.0.0.1".into(),
            host_port: "8080".into()
        }]
    );
    assert_eq!(h.port_bindings["53/udp"], vec![PortBinding::default()]);
    assert!(h.publish_all_ports);
    assert_eq!(h.extra_hosts, ["db.test:192.0.2.10"]);
    assert_eq!(h.dns, ["192.0.2.53"]);
    assert_eq!(h.dns_search, ["corp.test"]);
    assert_eq!(h.dns_options, ["ndots:3"]);
    // The default network takes the aliases when no --network is given.
    let r = request(&["--network-alias", "x"]);
    assert!(r.networking_config.endpoints_config.contains_key("bridge"));
    assert_eq!(request(&["--net", "none"]).host_config.network_mode, "none");
    assert!(error(&["--network", ""]).contains("flag --network: empty network name"));
    assert!(error(&["-p", "notaport"]).contains("notaport"));
}

#[test]
fn resource_flags_become_numbers() {
    let r = request(&[
        "-m",
        "64m",
        "--memory-swap=-1",
        "--memory-reservation",
        "32m",
        "--cpus",
        "1.5",
        "-c",
        "512",
        "--cpuset-cpus",
        "0-1",
        "--pids-limit",
        "-1",
        "--shm-size",
        "128m",
        "--ulimit",
        "nofile=1024:2048",
        "--device",
        "/dev/null:/dev/nothing:rw",
    ]);
    let h = &r.host_config;
    assert_eq!(h.memory, 64 << 20);
    assert_eq!(h.memory_swap, -1);
    assert_eq!(h.memory_reservation, 32 << 20);
    assert_eq!(h.nano_cpus, 1_500_000_000);
    assert_eq!(h.cpu_shares, 512);
    assert_eq!(h.cpuset_cpus, "0-1");
    assert_eq!(h.pids_limit, Some(-1));
    assert_eq!(h.shm_size, 128 << 20);
    assert_eq!(
        h.ulimits,
        vec![Ulimit {
            name: "nofile".into(),
            soft: 1024,
            hard: 2048
        }]
    );
    assert_eq!(
        h.devices,
        vec![DeviceMapping {
            path_on_host: "/dev/null".into(),
            path_in_container: "/dev/nothing".into(),
            cgroup_permissions: "rw".into(),
        }]
    );
    assert!(error(&["--memory", "lots"]).contains("--memory"));
    assert!(error(&["--cpus", "x"]).contains("--cpus"));
    assert!(error(&["--ulimit", "nofile"]).contains("--ulimit"));
}

#[test]
fn security_flags_travel_as_dockers_strings() {
    let r = request(&[
        "--cap-add",
        "NET_ADMIN",
        "--cap-drop",
        "chown",
        "--privileged",
        "--security-opt",
        "no-new-privileges",
        "--pid",
        "host",
        "--ipc",
        "private",
        "--uts",
        "host",
        "--init",
        "--runtime",
        "runc",
    ]);
    let h = &r.host_config;
    assert_eq!(h.cap_add, ["NET_ADMIN"]);
    assert_eq!(h.cap_drop, ["chown"]);
    assert!(h.privileged);
    assert_eq!(h.security_opt, ["no-new-privileges"]);
    assert_eq!(
        (
            h.pid_mode.as_str(),
            h.ipc_mode.as_str(),
            h.uts_mode.as_str()
        ),
        ("host", "private", "host")
    );
    assert_eq!(h.init, Some(true));
    assert_eq!(h.runtime, "runc");
}

#[test]
fn restart_and_log_flags() {
    let r = request(&[
        "--restart",
        "on-failure:4",
        "--log-opt",
        "max-size=1m",
        "--log-opt",
        "max-file=2",
    ]);
    assert_eq!(
        r.host_config.restart_policy,
        RestartPolicy {
            name: "on-failure".into(),
            maximum_retry_count: 4
        }
    );
    assert_eq!(
        r.host_config.log_config.config,
        BTreeMap::from([
            ("max-file".into(), "2".into()),
            ("max-size".into(), "1m".into())
        ])
    );
    assert!(error(&["--restart", "sometimes"]).contains("--restart"));
    assert!(error(&["--log-opt", "nokey"]).contains("flag --log-opt: invalid log opt"));
}

#[test]
fn health_flags_become_dockers_healthcheck() {
    let r = request(&[
        "--health-cmd",
        "true",
        "--health-interval",
        "2s",
        "--health-timeout",
        "1s",
        "--health-start-period",
        "500ms",
        "--health-retries",
        "5",
    ]);
    assert_eq!(
        r.config.healthcheck,
        Some(HealthConfig {
            test: vec!["CMD-SHELL".into(), "true".into()],
            interval: 2_000_000_000,
            timeout: 1_000_000_000,
            start_period: 500_000_000,
            retries: 5,
        })
    );
    // Only a duration: the image's test with this interval.
    let r = request(&["--health-interval", "1m"]);
    let h = r.config.healthcheck.unwrap();
    assert!(h.test.is_empty());
    assert_eq!(h.interval, 60_000_000_000);
    assert_eq!(
        request(&["--no-healthcheck"])
            .config
            .healthcheck
            .unwrap()
            .test,
        ["NONE"]
    );
    assert!(error(&["--health-interval", "soon"]).contains("--health-interval"));
}

#[test]
fn the_request_is_the_api_body_docker_sends() {
    let r = request(&["--name", "x", "-e", "A=1", "-p", "8080:80"]);
    let json = serde_json::to_value(&r).unwrap();
    // docker's field names at docker's places.
    assert_eq!(json["Image"], "busybox");
    assert_eq!(json["Env"], serde_json::json!(["A=1"]));
    assert_eq!(
        json["HostConfig"]["PortBindings"]["80/tcp"],
        serde_json::json!([{"HostIp": "", "HostPort": "8080"}])
    );
    assert_eq!(json["ExposedPorts"], serde_json::json!({"80/tcp": {}}));
    let back: ContainerCreateRequest = serde_json::from_value(json).unwrap();
    assert_eq!(back, r);
}
