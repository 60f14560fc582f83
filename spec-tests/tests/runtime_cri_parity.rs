//! Behaviours Kubernetes (containerd's CRI plugin, validated by cri-tools' critest) relies
//! on, where berth-runtime must do what runc does. Each was found by `hack/critest` showing a
//! spec that passes with the runc handler and fails with berth's. Run against runc with
//! `BERTH_TEST_RUNTIME=runc`: both must pass.

use std::fs;

use serde_json::json;
use spec_tests::runtime::Runtime;

/// containerd's CRI reads the image's /etc/group itself and passes the user's groups in
/// `additionalGids` (critest: "if the container's primary UID belongs to some groups in the
/// image, runtime should add SupplementalGroups to them" expects `id -G` = uid's gid, the
/// pod's supplemental groups, the image's groups, once each). runc adds nothing from
/// /etc/group for an OCI spec's numeric uid:gid, so neither may we: HOME still comes from
/// /etc/passwd.
#[test]
fn supplementary_groups_are_exactly_additional_gids() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    let passwd = fs::read_to_string(b.rootfs().join("etc/passwd")).unwrap();
    b.write_rootfs_file(
        "etc/passwd",
        &format!("{passwd}default-user:x:4242:4242::/home/du:/bin/sh\n"),
    )
    .unwrap();
    let group = fs::read_to_string(b.rootfs().join("etc/group")).unwrap();
    b.write_rootfs_file(
        "etc/group",
        &format!("{group}in-image:x:50000:default-user\nother:x:60000:default-user\n"),
    )
    .unwrap();
    b.sh("id -G; echo HOME=$HOME");
    b.config["process"]["user"] =
        json!({"uid": 4242, "gid": 4242, "additionalGids": [1234, 50000]});
    let out = rt.run_to_exit(&b).unwrap();
    assert_eq!(
        out.stdout, "4242 1234 50000\nHOME=/home/du\n",
        "{}",
        out.stderr
    );
}
