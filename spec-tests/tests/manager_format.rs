//! `--format` on `berth images`: docker's table/json keywords and Go templates.

use anyhow::Result;
use spec_tests::manager::berth::Berth;
use spec_tests::manager::images::{busybox_image, Compression, Layout};
use spec_tests::manager::registry::Registry;

#[test]
fn images_format_accepts_go_templates_tables_and_json() -> Result<()> {
    let reg = Registry::plain()?;
    let dir = tempfile::tempdir()?;
    let mut layout = Layout::create(&dir.path().join("layout"))?;
    let built = busybox_image(&mut layout, "v1", Compression::Gzip)?;
    let image = format!("{}/fmt/bb:v1", reg.host());
    layout.push("v1", &image, &[])?;
    let berth = Berth::new()?;
    berth.ok(&["pull", &image])?;
    let other = format!("{}/fmt/bb:Second", reg.host());
    berth.ok(&["tag", &image, &other])?;
    let repo = format!("{}/fmt/bb", reg.host());
    let config = built.config.map(|c| c.digest).unwrap_or_default();
    let short_id = &config["sha256:".len().."sha256:".len() + 12];

    let out = berth.ok(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"])?;
    assert_eq!(
        out,
        format!("{repo}:Second {short_id}\n{repo}:v1 {short_id}\n")
    );
    let out = berth.ok(&["images", "--no-trunc", "--format", "{{.ID}}"])?;
    assert_eq!(out.lines().next(), Some(config.as_str()));
    let out = berth.ok(&[
        "images",
        "--format",
        r#"{{if eq .Tag "v1"}}first{{else}}{{lower .Tag}}{{end}}|{{printf "%.3s" .Size | upper}}"#,
    ])?;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].starts_with("second|"), "{out}");
    assert!(lines[1].starts_with("first|"), "{out}");

    // A table template: header from the field names, columns aligned as docker's tabwriter
    // (at least 10 wide, 3 spaces of padding); `\t` typed literally as shells pass it.
    let out = berth.ok(&[
        "images",
        "--format",
        "table {{.Tag}}\\t{{.ID}}\\t{{.Repository}}",
    ])?;
    assert_eq!(
        out,
        format!(
            "TAG       IMAGE ID       REPOSITORY\nSecond    {short_id}   {repo}\nv1        {short_id}   {repo}\n"
        )
    );
    // `table` alone is the default table.
    let out = berth.ok(&["images", "--format", "table"])?;
    assert!(out.starts_with("REPOSITORY"), "{out}");
    assert!(
        out.lines().next().unwrap_or("").contains("IMAGE ID"),
        "{out}"
    );

    // json and {{json .}}: one object per line with the full ID.
    for f in ["json", "{{json .}}"] {
        let out = berth.ok(&["images", "--format", f])?;
        for line in out.lines() {
            let row: serde_json::Value = serde_json::from_str(line)?;
            assert_eq!(row["ID"], config.as_str(), "{f}");
        }
    }
    let err = berth.fail(&["images", "--format", "{{.Tag"])?;
    assert!(err.contains("template parsing error"), "{err}");
    let err = berth.fail(&["images", "--format", "{{nosuchfunc .Tag}}"])?;
    assert!(err.contains("function \"nosuchfunc\" not defined"), "{err}");
    Ok(())
}

#[test]
fn image_and_network_inspect_take_go_templates() -> Result<()> {
    let reg = Registry::plain()?;
    let dir = tempfile::tempdir()?;
    let mut layout = Layout::create(&dir.path().join("layout"))?;
    let built = busybox_image(&mut layout, "v1", Compression::Gzip)?;
    let image = format!("{}/fmt/inspect:v1", reg.host());
    layout.push("v1", &image, &[])?;
    let berth = Berth::new()?;
    berth.ok(&["pull", &image])?;
    let config = built.config.map(|c| c.digest).unwrap_or_default();
    let out = berth.ok(&["image", "inspect", "-f", "{{.Id}} {{.Os}}", &image])?;
    assert_eq!(out, format!("{config} linux\n"));
    // A missing one is reported and the others still printed, exit 1 (docker's rule).
    let out = berth.run(&[
        "image",
        "inspect",
        "--format",
        "{{.Id}}",
        &image,
        "no-such-image",
    ])?;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{config}\n"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Error: No such image: no-such-image"), "{err}");

    let net = format!("fmt-{}", std::process::id());
    let id = berth.ok(&["network", "create", &net])?;
    let got = berth.ok(&[
        "network",
        "inspect",
        "-f",
        "{{.Id}} {{.Name}} {{.Driver}}",
        &net,
    ]);
    berth.ok(&["network", "rm", &net])?;
    assert_eq!(got?, format!("{} {net} bridge\n", id.trim()));
    Ok(())
}

#[test]
fn images_filters_follow_docker() -> Result<()> {
    let reg = Registry::plain()?;
    let dir = tempfile::tempdir()?;
    let mut layout = Layout::create(&dir.path().join("layout"))?;
    busybox_image(&mut layout, "v1", Compression::Gzip)?;
    let image = format!("{}/flt/bb:v1", reg.host());
    layout.push("v1", &image, &[])?;
    let berth = Berth::new()?;
    berth.ok(&["pull", &image])?;
    berth.ok(&["tag", &image, "team/app:1"])?;
    berth.ok(&["tag", &image, "docker.io/library/plain:2"])?;
    let names = |args: &[&str]| -> Result<Vec<String>> {
        let mut full = vec!["images", "--format", "{{.Repository}}:{{.Tag}}"];
        full.extend_from_slice(args);
        let mut v: Vec<String> = berth.ok(&full)?.lines().map(str::to_string).collect();
        v.sort();
        Ok(v)
    };
    // docker's familiar names, matched as paths: `*` stays within a component.
    assert_eq!(names(&["--filter", "reference=team/*"])?, ["team/app:1"]);
    assert_eq!(names(&["--filter", "reference=*"])?, ["plain:2"]);
    assert_eq!(names(&["--filter", "reference=plain:2"])?, ["plain:2"]);
    assert_eq!(
        names(&["-f", "reference=plain", "-f", "reference=team/app"])?,
        ["plain:2", "team/app:1"]
    );
    assert_eq!(names(&["--filter", "dangling=true"])?, Vec::<String>::new());
    assert_eq!(names(&["--filter", "dangling=false"])?.len(), 3);
    assert_eq!(names(&["--filter", "label=nosuch"])?, Vec::<String>::new());
    let err = berth.fail(&["images", "--filter", "colour=red"])?;
    assert!(err.contains("colour=red"), "{err}");
    Ok(())
}
