//! Service options that map onto `berth run` flags: `sysctls` (list and map form) and
//! `links` (the linked service answers to its alias and starts first).

use anyhow::Result;
use spec_tests::manager::compose::Project;

#[test]
fn sysctls_in_list_and_map_form_apply_and_bad_ones_create_nothing() -> Result<()> {
    let p = Project::new(
        "sysctls",
        r#"
services:
  map:
    image: @IMAGE@
    command: ["sleep", "600"]
    stop_grace_period: 1s
    sysctls:
      net.core.somaxconn: 1234
      kernel.shmmni: 999
  list:
    image: @IMAGE@
    command: ["sleep", "600"]
    stop_grace_period: 1s
    sysctls: ["net.core.somaxconn=2345"]
"#,
    )?;
    p.ok(&["up", "-d"])?;
    let read = |svc: &str, key: &str| -> Result<String> {
        let file = format!("/proc/sys/{}", key.replace('.', "/"));
        Ok(p.ok(&["exec", "-T", svc, "cat", &file])?
            .0
            .trim()
            .to_string())
    };
    assert_eq!(read("map", "net.core.somaxconn")?, "1234");
    assert_eq!(read("map", "kernel.shmmni")?, "999");
    assert_eq!(read("list", "net.core.somaxconn")?, "2345");
    let shown = p.inspect(
        &format!("{}-list-1", p.name),
        "{{index .HostConfig.Sysctls \"net.core.somaxconn\"}}",
    )?;
    assert_eq!(shown, "2345");
    p.ok(&["down", "-t", "0"])?;

    for (bad, field) in [
        (
            "    network_mode: host\n    sysctls: {net.core.somaxconn: 1}\n",
            "services.bad.sysctls.net.core.somaxconn",
        ),
        (
            "    sysctls: [kernel.pid_max=1000]\n",
            "services.bad.sysctls.kernel.pid_max",
        ),
    ] {
        p.write(
            "compose.yaml",
            &format!(
                "services:\n  bad:\n    image: {}\n{bad}",
                spec_tests::manager::compose::BUSYBOX
            ),
        )?;
        let err = p.fail(&["up", "-d"])?;
        assert!(err.contains(field), "{bad}: {err}");
        assert!(p.all_containers()?.is_empty(), "{bad}");
    }
    Ok(())
}
