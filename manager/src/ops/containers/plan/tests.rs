//! The create request's checks and translation, and the classes of its errors.

use super::*;
use crate::ops::error::ErrorClass;
use crate::ops::models::{EndpointIpamConfig, EndpointSettings, HostConfig, PortBinding};

fn req(host: HostConfig) -> ContainerCreateRequest {
    let mut r = ContainerCreateRequest {
        host_config: host,
        ..Default::default()
    };
    r.config.image = "busybox".into();
    r
}

fn plan(host: HostConfig) -> Plan {
    Plan::from_request(&req(host)).unwrap()
}

fn err(host: HostConfig) -> OpsError {
    Plan::from_request(&req(host)).unwrap_err()
}

#[test]
fn a_body_as_dockers_cli_sends_it_is_understood() {
    // What `docker create -e A=1 -p 127.0.0.1:8080:80 --restart on-failure:2 --memory 64m
    // --mount type=tmpfs,target=/t --network-alias db --network net busybox sh` sends
    // (trimmed of the fields berth ignores; nulls kept).
    let body = r#"{
        "Hostname": "", "Domainname": "", "User": "", "AttachStdin": false,
        "AttachStdout": true, "AttachStderr": true,
        "ExposedPorts": {"80/tcp": {}}, "Tty": false, "OpenStdin": false, "StdinOnce": false,
        "Env": ["A=1"], "Cmd": ["sh"], "Image": "busybox", "Volumes": {}, "WorkingDir": "",
        "Entrypoint": null, "OnBuild": null, "Labels": {},
        "HostConfig": {
            "Binds": null, "ContainerIDFile": "", "LogConfig": {"Type": "", "Config": {}},
            "NetworkMode": "net", "PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]},
            "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2},
            "AutoRemove": false, "CapAdd": null, "CapDrop": null, "Dns": [], "DnsOptions": [],
            "DnsSearch": [], "ExtraHosts": null, "IpcMode": "", "PidMode": "", "UTSMode": "",
            "Privileged": false, "PublishAllPorts": false, "ReadonlyRootfs": false,
            "SecurityOpt": null, "Memory": 67108864, "NanoCpus": 0, "CpuShares": 0,
            "CpusetCpus": "", "PidsLimit": null, "Ulimits": null, "Devices": [],
            "Mounts": [{"Type": "tmpfs", "Target": "/t"}]
        },
        "NetworkingConfig": {"EndpointsConfig": {"net": {"IPAMConfig": null, "Links": null, "Aliases": ["db"]}}}
    }"#;
    let r: ContainerCreateRequest = serde_json::from_str(body).unwrap();
    let p = Plan::from_request(&r).unwrap();
    assert_eq!(p.env, ["A=1"]);
    assert_eq!(p.cmd, Some(vec!["sh".to_string()]));
    assert_eq!(p.network, "net");
    assert_eq!(p.aliases, ["db"]);
    assert_eq!(p.restart, RecordRestart::OnFailure { max_retries: 2 });
    assert_eq!(p.options.resources.memory, Some(64 << 20));
    assert_eq!(p.publish.len(), 1);
    assert_eq!(p.publish[0].host_port, 8080);
    assert_eq!(p.publish[0].host_ip, Some("127.0.0.1".parse().unwrap()));
    assert_eq!(p.exposed_ports, ["80/tcp"]);
    assert!(matches!(p.mounts[0].kind, MountKind::Tmpfs(_)));
    assert_eq!(p.runtime, "berth-runtime");
}

#[test]
fn string_fields_are_checked_with_dockers_wording() {
    let e = err(HostConfig {
        binds: vec!["/a:/b:bogus".into()],
        ..Default::default()
    });
    assert!(e.to_string().contains("invalid --volume"), "{e}");
    assert_eq!(e.class(), ErrorClass::InvalidParameter);
    let e = err(HostConfig {
        cap_add: vec!["FLY".into()],
        ..Default::default()
    });
    assert!(e.to_string().contains("unknown capability"), "{e}");
    let e = err(HostConfig {
        pid_mode: "container:x".into(),
        ..Default::default()
    });
    assert_eq!(
        e.to_string(),
        "flag --pid: unsupported mode \"container:x\" (host or private)"
    );
    let e = err(HostConfig {
        dns: vec!["nameserver".into()],
        ..Default::default()
    });
    assert_eq!(
        e.to_string(),
        "flag --dns: \"nameserver\" is not an IP address"
    );
    let e = err(HostConfig {
        network_mode: "none".into(),
        port_bindings: BTreeMap::from([("80/tcp".into(), vec![PortBinding::default()])]),
        ..Default::default()
    });
    assert!(matches!(e, OpsError::PublishWithoutNetns));
    assert_eq!(e.class(), ErrorClass::InvalidParameter);
    let e = err(HostConfig {
        port_bindings: BTreeMap::from([("http/tcp".into(), vec![PortBinding::default()])]),
        ..Default::default()
    });
    assert!(e.to_string().contains("PortBindings"), "{e}");
}

#[test]
fn host_network_drops_ports_with_a_warning_and_refuses_a_hostname() {
    let p = plan(HostConfig {
        network_mode: "host".into(),
        publish_all_ports: true,
        ..Default::default()
    });
    assert!(p.publish.is_empty() && !p.publish_all);
    assert_eq!(
        p.warnings,
        ["Published ports are discarded when using host network mode"]
    );
    let mut r = req(HostConfig {
        network_mode: "host".into(),
        ..Default::default()
    });
    r.config.hostname = "h".into();
    let e = Plan::from_request(&r).unwrap_err();
    assert!(matches!(e, OpsError::HostnameWithHostNetwork));
}

#[test]
fn ignored_security_options_are_warnings() {
    let p = plan(HostConfig {
        security_opt: vec!["apparmor=unconfined".into()],
        ..Default::default()
    });
    assert_eq!(p.warnings.len(), 1);
    assert!(p.warnings[0].contains("apparmor"), "{:?}", p.warnings);
}

#[test]
fn endpoints_give_aliases_addresses_and_extra_networks() {
    let mut r = req(HostConfig {
        network_mode: "front".into(),
        ..Default::default()
    });
    let ep = |aliases: &[&str], ip: &str| EndpointSettings {
        aliases: aliases.iter().map(|a| a.to_string()).collect(),
        ipam_config: Some(EndpointIpamConfig {
            ipv4_address: ip.into(),
        }),
        ..Default::default()
    };
    r.networking_config.endpoints_config = BTreeMap::from([
        ("front".into(), ep(&["web"], "10.1.0.5")),
        ("back".into(), ep(&["api"], "")),
    ]);
    let p = Plan::from_request(&r).unwrap();
    assert_eq!(p.aliases, ["web"]);
    assert_eq!(p.ip, Some("10.1.0.5".parse().unwrap()));
    assert_eq!(
        p.extra_networks,
        vec![ExtraNetwork {
            name: "back".into(),
            aliases: vec!["api".into()],
            ip: None
        }]
    );
    r.host_config.network_mode = "host".into();
    assert!(Plan::from_request(&r).is_err());
}

#[test]
fn mounts_round_trip_through_dockers_model() {
    for spec in [
        "type=bind,source=/srv,target=/srv,readonly,bind-propagation=rshared",
        "type=volume,source=data,target=/data,volume-nocopy",
        "type=volume,target=/anon",
        "type=tmpfs,target=/t,tmpfs-size=2m,tmpfs-mode=1777",
    ] {
        let parsed = f::parse_mount(spec).unwrap();
        let back = mount_from_model(&mount_to_model(parsed.clone())).unwrap();
        assert_eq!(back, parsed, "{spec}");
    }
    for t in ["/run:size=64m,noexec,ro", "/tmp"] {
        let parsed = f::parse_tmpfs(t).unwrap();
        let back = mount_from_model(&mount_to_model(parsed.clone())).unwrap();
        assert_eq!(back, parsed, "{t}");
    }
    let bad = Mount {
        r#type: "bind".into(),
        source: "relative".into(),
        target: "/x".into(),
        ..Default::default()
    };
    assert!(mount_from_model(&bad).is_err());
}

#[test]
fn healthchecks_merge_over_the_images() {
    let image = ImageConfig {
        healthcheck: Some(specgen::Healthcheck {
            test: vec!["CMD".into(), "check".into()],
            interval: Some(Duration::from_secs(5)),
            ..Default::default()
        }),
        ..Default::default()
    };
    let inherit = health_flags(Some(&HealthConfig {
        retries: 7,
        ..Default::default()
    }));
    let h = health_config(&inherit, &image).unwrap();
    assert_eq!(h.test, ["CMD", "check"]);
    assert_eq!((h.interval_ms, h.timeout_ms, h.retries), (5_000, 30_000, 7));
    let none = health_flags(Some(&HealthConfig {
        test: vec!["NONE".into()],
        ..Default::default()
    }));
    assert_eq!(health_config(&none, &image), None);
    assert!(health_config(&HealthFlags::default(), &ImageConfig::default()).is_none());
}

#[test]
fn restart_policies_take_dockers_names() {
    let r = |name: &str, n: i64| {
        restart_policy(&RestartPolicy {
            name: name.into(),
            maximum_retry_count: n,
        })
    };
    assert_eq!(r("", 0).unwrap(), RecordRestart::No);
    assert_eq!(r("always", 0).unwrap(), RecordRestart::Always);
    assert_eq!(
        r("on-failure", 0).unwrap(),
        RecordRestart::OnFailure { max_retries: 0 }
    );
    assert!(r("always", 3).is_err());
    assert!(r("sometimes", 0).is_err());
}

#[test]
fn sysctls_from_the_api_are_checked_against_the_namespaces() {
    let body = r#"{"Image": "busybox", "HostConfig": {"Sysctls": {"net.core.somaxconn": "1024"}}}"#;
    let r: ContainerCreateRequest = serde_json::from_str(body).unwrap();
    let p = Plan::from_request(&r).unwrap();
    assert_eq!(p.options.sysctls["net.core.somaxconn"], "1024");
    let null: ContainerCreateRequest =
        serde_json::from_str(r#"{"Image": "busybox", "HostConfig": {"Sysctls": null}}"#).unwrap();
    assert!(null.host_config.sysctls.is_empty());

    let with = |net: &str, ipc: &str, k: &str| HostConfig {
        network_mode: net.into(),
        ipc_mode: ipc.into(),
        sysctls: [(k.to_string(), "1".to_string())].into(),
        ..HostConfig::default()
    };
    assert!(err(with("host", "", "net.ipv4.ip_forward"))
        .to_string()
        .contains("host network namespace"));
    assert!(err(with("", "host", "kernel.shmmni"))
        .to_string()
        .contains("host ipc namespace"));
    assert!(err(with("", "", "kernel.pid_max"))
        .to_string()
        .contains("not whitelisted"));
    // Shared with the host in one namespace only: the other's sysctls stay allowed.
    assert_eq!(
        plan(with("host", "", "kernel.shmmni"))
            .options
            .sysctls
            .len(),
        1
    );
    assert_eq!(
        plan(with("none", "host", "net.core.somaxconn"))
            .options
            .sysctls
            .len(),
        1
    );
}

#[test]
fn links_take_dockers_forms_and_not_the_host_network() {
    let with = |net: &str, links: &[&str]| HostConfig {
        network_mode: net.into(),
        links: links.iter().map(|s| s.to_string()).collect(),
        ..HostConfig::default()
    };
    assert_eq!(
        plan(with("net", &["db:database", "cache", "/api:/web/svc"])).links,
        vec![
            ("db".to_string(), "database".to_string()),
            ("cache".into(), "cache".into()),
            ("api".into(), "svc".into()),
        ]
    );
    assert!(err(with("host", &["db:x"])).to_string().contains("links"));
    assert!(err(with("net", &[":x"]))
        .to_string()
        .contains("container:alias"));
}
