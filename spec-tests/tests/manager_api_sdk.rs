//! `berth system service` driven by docker's Python SDK (docker-py) the way its own
//! integration suite drives dockerd: what a container's inspect echoes of the create
//! request, kill and exec semantics, the swarm routes of a node outside a swarm, load and
//! build streams, copies into volumes, networks joined before the start, commit of an exited
//! container, and docker's error classes and words. Each behaviour here was a docker-py
//! test that passed against dockerd 20.10 and failed against berth (docs/api.md).

use std::time::Duration;

use anyhow::Result;
use spec_tests::manager::api::{Service, PYTHON_SDK};

/// Runs `script` with the SDK against the service; it must print `ok` last.
fn sdk(s: &Service, script: &str) -> Result<()> {
    assert!(
        std::path::Path::new(PYTHON_SDK).exists(),
        "{PYTHON_SDK} missing: run hack/setup (it installs the docker SDK from PyPI)"
    );
    let mut c = s.client(PYTHON_SDK);
    c.args(["-c", script]);
    let o = spec_tests::engines::run_cmd(c, Duration::from_secs(90))?;
    assert!(
        o.success() && o.stdout.trim_end().ends_with("ok"),
        "{o}\n{}",
        s.log()
    );
    Ok(())
}

#[test]
fn inspect_echoes_the_create_requests_host_config_and_mounts_as_docker() -> Result<()> {
    spec_tests::skip_rootless!(
        "bind mounts of host directories and supplementary groups are checked as root"
    );
    let s = Service::start()?;
    let host_dir = tempfile::tempdir()?;
    let script = format!(
        r#"
import docker
c = docker.from_env(version="auto").api
hc = c.create_host_config(
    cgroupns="private", tmpfs={{"/t": "size=3M"}}, cpu_rt_period=1000, cpu_rt_runtime=500,
    device_cgroup_rules=["c 7:128 rwm"], isolation="default", uts_mode="host",
    group_add=[1000, "1001"], binds={{"{dir}": {{"bind": "/b", "mode": "ro"}}}},
    mounts=[docker.types.Mount("/v", "sdkvol", type="volume")],
    log_config=docker.types.LogConfig(type="json-file", config={{"max-file": "100"}}),
    volume_driver="local",
)
ct = c.create_container("busybox", ["cat", "/proc/self/status"], host_config=hc,
                        healthcheck={{"test": ["CMD", "sh", "-c", "exit 0"]}})
h = c.inspect_container(ct)["HostConfig"]
assert h["CgroupnsMode"] == "private", h
assert h["Tmpfs"] == {{"/t": "size=3M"}}, h
assert (h["CpuRealtimePeriod"], h["CpuRealtimeRuntime"]) == (1000, 500), h
assert h["DeviceCgroupRules"] == ["c 7:128 rwm"], h
assert h["Isolation"] == "default" and h["UTSMode"] == "host", h
assert h["VolumeDriver"] == "local", h
assert h["LogConfig"] == {{"Type": "json-file", "Config": {{"max-file": "100"}}}}, h
mounts = {{m["Destination"]: m for m in c.inspect_container(ct)["Mounts"]}}
assert (mounts["/b"]["Propagation"], mounts["/b"]["Mode"], mounts["/b"]["RW"]) == ("rprivate", "ro", False), mounts
assert (mounts["/v"]["Driver"], mounts["/v"]["Propagation"], mounts["/v"]["Name"]) == ("local", "", "sdkvol"), mounts
c.start(ct)
assert c.wait(ct, timeout=30)["StatusCode"] == 0
groups = [l for l in c.logs(ct).decode().splitlines() if l.startswith("Groups:")][0]
assert "1000" in groups.split() and "1001" in groups.split(), groups
c.remove_container(ct, v=True)
c.remove_volume("sdkvol")
print("ok")
"#,
        dir = host_dir.path().display()
    );
    sdk(&s, &script)?;
    s.env.assert_clean(&[]);
    Ok(())
}

#[test]
fn kill_waits_for_the_exit_exec_frames_follow_the_start_and_swarm_is_inactive() -> Result<()> {
    let s = Service::start()?;
    let script = r#"
import docker, socket, struct
c = docker.from_env(version="auto").api
ct = c.create_container("busybox", ["sleep", "300"])
c.start(ct)
c.kill(ct)
st = c.inspect_container(ct)["State"]
assert not st["Running"] and st["ExitCode"] == 137, st
c.remove_container(ct)
ct = c.create_container("busybox", "cat", detach=True, stdin_open=True)
c.start(ct)
# A tty exec started without Tty: the output comes in stdcopy frames, as from dockerd.
ex = c.exec_create(ct, ["echo", "framed"], tty=True)
sock = c.exec_start(ex, socket=True)
raw = sock._sock if hasattr(sock, "_sock") else sock
head = b""
while len(head) < 8:
    chunk = raw.recv(8 - len(head))
    assert chunk, head
    head += chunk
stream, size = struct.unpack(">BxxxL", head)
assert stream == 1 and size > 0, (stream, size)
sock.close()
assert c.exec_start(c.exec_create(ct, ["sh", "-c", "exit 0"]), detach=True) == ""
c.remove_container(ct, force=True)
assert c.leave_swarm(force=True) is True
try:
    c.inspect_swarm()
    raise SystemExit("inspect_swarm answered")
except docker.errors.APIError as e:
    assert e.status_code == 503, e
print("ok")
"#;
    sdk(&s, script)?;
    s.env.assert_clean(&[]);
    Ok(())
}

#[test]
fn load_and_build_answer_chunked_streams_as_dockerd() -> Result<()> {
    let s = Service::start()?;
    let script = r#"
import docker, io
c = docker.from_env(version="auto")
try:
    c.images.load(b"abc")
    raise SystemExit("a bad archive loaded")
except docker.errors.ImageLoadError:
    pass
img = c.images.get("busybox")
data = b"".join(img.save(named=True))
loaded = c.images.load(data)
assert [i.id for i in loaded] == [img.id], loaded
# Saved by its ID, an image carries no tags: one image loads, named by its ID.
lines = list(c.api.load_image(b"".join(img.save())))
assert lines and all(l["stream"] == "Loaded image ID: %s\n" % img.id for l in lines), lines
lines = list(c.api.build(fileobj=io.BytesIO(b"FROM busybox\nLABEL sdk=1\n"), tag="sdkbuild", decode=True))
assert "aux" in lines[-3] and "Successfully tagged sdkbuild:latest" in lines[-1]["stream"], lines
c.images.remove("sdkbuild")
print("ok")
"#;
    sdk(&s, script)?;
    s.env.assert_clean(&[]);
    Ok(())
}

#[test]
fn copies_reach_the_volumes_of_a_stopped_container() -> Result<()> {
    spec_tests::skip_rootless!("rootless berth copies the root filesystem alone (docs/api.md)");
    let s = Service::start()?;
    let script = r#"
import docker, io, tarfile
c = docker.from_env(version="auto").api
def tar_of(name, data):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w") as t:
        i = tarfile.TarInfo(name); i.size = len(data); t.addfile(i, io.BytesIO(data))
    return b.getvalue()
ct = c.create_container("busybox", ["cat", "/vol1/in.txt"], volumes=["/vol1"])
assert c.put_archive(ct, "/vol1", tar_of("in.txt", b"into-the-volume"))
strm, stat = c.get_archive(ct, "/vol1/in.txt")
assert stat["name"] == "in.txt" and stat["size"] == 15, stat
with tarfile.open(fileobj=io.BytesIO(b"".join(strm))) as t:
    assert t.extractfile("in.txt").read() == b"into-the-volume"
c.start(ct)
assert c.wait(ct, timeout=30)["StatusCode"] == 0
assert c.logs(ct) == b"into-the-volume", c.logs(ct)
c.remove_container(ct, v=True)
print("ok")
"#;
    sdk(&s, script)?;
    s.env.assert_clean(&[]);
    Ok(())
}

#[test]
fn networks_join_before_the_start_and_an_exited_container_commits() -> Result<()> {
    spec_tests::skip_rootless!("user networks of a rootless berth are wired in its own namespace; connect of a running container is covered as root");
    let s = Service::start()?;
    let net = format!("sdknet{}", std::process::id());
    let script = format!(
        r#"
import docker
c = docker.from_env(version="auto")
n = c.networks.create("{net}")
try:
    ct = c.containers.create("busybox", "sleep 300")
    n.connect(ct)
    assert "{net}" in c.api.inspect_container(ct.id)["NetworkSettings"]["Networks"]
    ct.start()
    assert [x.id for x in c.networks.get(n.id).containers] == [ct.id]
    n.disconnect(ct)
    assert c.networks.get(n.id).containers == []
    ct.remove(force=True)
    ct = c.containers.create("busybox", ["sh", "-c", "exit 0"])
    n.connect(ct)
    n.disconnect(ct)
    assert "{net}" not in c.api.inspect_container(ct.id)["NetworkSettings"]["Networks"]
    ct.start()
    ct.wait(timeout=30)
    img = c.api.commit(ct.id, pause=True)
    c.images.remove(img["Id"])
    ct.remove()
finally:
    for x in c.containers.list(all=True):
        x.remove(force=True)
    n.remove()
print("ok")
"#
    );
    sdk(&s, &script)?;
    s.env.assert_clean(&[]);
    Ok(())
}

#[test]
fn unknown_drivers_fail_in_dockers_words_and_classes() -> Result<()> {
    let s = Service::start()?;
    let script = r#"
import docker
c = docker.from_env(version="auto").api
try:
    c.create_container("busybox", ["sh"], host_config=c.create_host_config(
        log_config=docker.types.LogConfig(type="asdf")))
    raise SystemExit("created")
except docker.errors.APIError as e:
    assert e.explanation == "logger: no log driver named 'asdf' is registered", e.explanation
try:
    c.create_volume("v1", "invalid.driver")
    raise SystemExit("created")
except docker.errors.NotFound:
    pass
try:
    c.inspect_container("nosuchthing")
except docker.errors.NotFound as e:
    assert "No such container: nosuchthing" in e.explanation, e.explanation
print("ok")
"#;
    sdk(&s, script)?;
    s.env.assert_clean(&[]);
    Ok(())
}
