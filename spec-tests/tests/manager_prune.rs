//! `berth container prune` as docker: label, label! and until filters, the reclaimed space,
//! and the list printed only when something went.

use anyhow::Result;
use spec_tests::manager::containers::Env;
use spec_tests::manager::network::BUSYBOX;

#[test]
fn container_prune_filters_and_reports_like_docker() -> Result<()> {
    let env = Env::new()?;
    let write = |name: &str, label: &str, bytes: u32| {
        env.ok(&[
            "run",
            "--name",
            name,
            "-l",
            label,
            "--network",
            "none",
            BUSYBOX,
            "sh",
            "-c",
            &format!("head -c {bytes} /dev/zero > /f"),
        ])
    };
    write("keep", "keep=1", 3000)?;
    write("other", "other=1", 20000)?;
    let keep_id = env.ok(&["inspect", "-f", "{{.Id}}", "keep"])?;
    let other_id = env.ok(&["inspect", "-f", "{{.Id}}", "other"])?;
    // Both are younger than an hour: nothing goes, and no list is printed.
    let out = env.ok(&["container", "prune", "-f", "--filter", "until=1h"])?;
    assert_eq!(out, "Total reclaimed space: 0B\n");
    // label! keeps what carries the label; the space is the container's own layer.
    let out = env.ok(&["container", "prune", "-f", "--filter", "label!=keep"])?;
    assert_eq!(
        out,
        format!(
            "Deleted Containers:\n{}\n\nTotal reclaimed space: 20kB\n",
            other_id.trim()
        )
    );
    let (code, _, err) = env.run(&["container", "prune", "-f", "--filter", "until=soon"])?;
    assert_ne!(code, 0);
    assert!(err.contains("until=soon"), "{err}");
    let out = env.ok(&["container", "prune", "-f", "--filter", "until=0s"])?;
    assert!(
        out.starts_with(&format!("Deleted Containers:\n{}", keep_id.trim())),
        "{out}"
    );
    assert!(env.ok(&["ps", "-aq"])?.is_empty());
    env.assert_clean(&[keep_id.trim().to_string(), other_id.trim().to_string()]);
    Ok(())
}
