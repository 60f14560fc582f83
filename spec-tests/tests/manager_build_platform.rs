//! `berth build --platform` for a platform other than the host's: the base image of that
//! platform is pulled from a multi-platform index, RUN steps run its binaries under qemu (the
//! binfmt_misc handlers hack/setup registers with the F flag, so they work inside a container's
//! root), the platform ARGs say what is built for and on what, `FROM --platform=$BUILDPLATFORM`
//! stages stay on the host's, and the image carries the target's architecture.

use anyhow::{ensure, Result};
use spec_tests::manager::berth::{test_dir, Berth};
use spec_tests::manager::build::runs_ran;
use spec_tests::manager::images::{busybox_layer, busybox_layer_of, Compression, ARM64_BUSYBOX};
use spec_tests::manager::images::{file_layer, Layout};
use spec_tests::manager::registry::Registry;

/// The handler hack/setup registers; without it no arm64 binary can run here.
fn check_binfmt() -> Result<()> {
    let handler =
        std::fs::read_to_string("/proc/sys/fs/binfmt_misc/qemu-aarch64").unwrap_or_default();
    ensure!(
        handler.starts_with("enabled")
            && handler
                .lines()
                .any(|l| l.starts_with("flags:") && l.contains('F')),
        "no enabled qemu-aarch64 binfmt_misc handler with the F flag: run hack/setup"
    );
    Ok(())
}

/// `host/plat/bb:1`: an index of an amd64 and an arm64 busybox image in a fresh registry.
fn multi_platform_base(reg: &Registry, dir: &std::path::Path) -> Result<String> {
    let mut layout = Layout::create(&dir.join("layout"))?;
    let amd = layout.image(
        "amd64",
        &[
            (busybox_layer()?, Compression::Gzip),
            (file_layer("etc/variant", b"amd64\n")?, Compression::Gzip),
        ],
    )?;
    let arm = layout.image(
        "arm64",
        &[
            (busybox_layer_of(ARM64_BUSYBOX)?, Compression::Gzip),
            (file_layer("etc/variant", b"arm64\n")?, Compression::Gzip),
        ],
    )?;
    let index = layout.index(&[(&amd, "amd64"), (&arm, "arm64")])?;
    layout.tag("multi", &index)?;
    let name = format!("{}/plat/bb:1", reg.host());
    layout.push("multi", &name, &["--all"])?;
    Ok(name)
}

/// The registry with the multi-platform base, a scratch dir, the base's name, a berth and an
/// empty context directory in the scratch dir.
fn setup() -> Result<(
    Registry,
    tempfile::TempDir,
    String,
    Berth,
    std::path::PathBuf,
)> {
    check_binfmt()?;
    let reg = Registry::plain()?;
    let dir = test_dir()?;
    let base = multi_platform_base(&reg, dir.path())?;
    let berth = Berth::new()?;
    let ctx = dir.path().join("ctx");
    std::fs::create_dir_all(&ctx)?;
    Ok((reg, dir, base, berth, ctx))
}

#[test]
fn foreign_platform_builds_run_under_emulation() -> Result<()> {
    // The registry and the scratch dir live to the end of the test.
    let (_reg, _dir, base, berth, ctx) = setup()?;
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM --platform=$BUILDPLATFORM {base} AS tool\n\
             RUN busybox uname -m > /tool-arch\n\
             FROM {base}\n\
             ARG TARGETPLATFORM\n\
             ARG BUILDPLATFORM\n\
             ARG TARGETARCH\n\
             COPY --from=tool /tool-arch /\n\
             RUN busybox uname -m > /arch && echo \"$TARGETPLATFORM $TARGETARCH on $BUILDPLATFORM\" > /platforms\n"
        ),
    )?;
    let ctx_s = ctx.display().to_string();
    // The build's progress (stderr, BuildKit's plain lines).
    let build = |platform: &str, tag: &str| -> Result<String> {
        let out = berth.run(&[
            "build",
            "--progress",
            "plain",
            "--network",
            "none",
            "--platform",
            platform,
            "-t",
            tag,
            &ctx_s,
        ])?;
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        ensure!(out.status.success(), "berth build failed: {err}");
        Ok(err)
    };
    let first = build("linux/arm64", "plat:arm")?;
    assert_eq!(runs_ran(&first), 2, "{first}");
    let show = |tag: &str| {
        berth.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            tag,
            "cat",
            "/etc/variant",
            "/arch",
            "/tool-arch",
            "/platforms",
        ])
    };
    assert_eq!(
        show("plat:arm")?,
        "arm64\naarch64\nx86_64\nlinux/arm64 arm64 on linux/amd64\n"
    );
    let arch = |tag: &str| {
        berth.ok(&[
            "image",
            "inspect",
            "--format",
            "{{.Os}}/{{.Architecture}}",
            tag,
        ])
    };
    assert_eq!(arch("plat:arm")?.trim(), "linux/arm64");
    // The same Dockerfile for the host: its own base, its own steps (nothing from the arm64
    // build's cache), and the arm64 build again comes from the cache.
    let host = build("linux/amd64", "plat:amd")?;
    // The tool stage is the host's in both builds: only the target stage's RUN runs again.
    assert_eq!(runs_ran(&host), 1, "{host}");
    assert_eq!(
        show("plat:amd")?,
        "amd64\nx86_64\nx86_64\nlinux/amd64 amd64 on linux/amd64\n"
    );
    assert_eq!(arch("plat:amd")?.trim(), "linux/amd64");
    let again = build("linux/arm64", "plat:arm2")?;
    ensure!(
        !again.contains("Running in"),
        "a RUN step ran again:\n{again}"
    );
    let id = |tag: &str| berth.ok(&["image", "inspect", "--format", "{{.Id}}", tag]);
    assert_eq!(id("plat:arm")?, id("plat:arm2")?);
    // `run --platform` of the arm64 image.
    assert_eq!(
        berth.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--platform",
            "linux/arm64",
            "plat:arm",
            "busybox",
            "uname",
            "-m",
        ])?,
        "aarch64\n"
    );
    Ok(())
}

#[test]
fn scratch_stages_and_platform_errors() -> Result<()> {
    let (reg, _dir, base, berth, ctx) = setup()?;
    std::fs::write(ctx.join("f"), "x\n")?;
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY f /f\n")?;
    let ctx_s = ctx.display().to_string();
    berth.ok(&[
        "build",
        "--platform",
        "linux/arm64/v8",
        "-t",
        "s:arm",
        &ctx_s,
    ])?;
    berth.ok(&["build", "-t", "s:host", &ctx_s])?;
    let show = |tag: &str| {
        berth.ok(&[
            "image",
            "inspect",
            "--format",
            "{{.Os}}/{{.Architecture}}/{{.Variant}}",
            tag,
        ])
    };
    assert_eq!(show("s:arm")?.trim(), "linux/arm64/v8");
    // docker leaves Variant out when there is none.
    assert_eq!(show("s:host")?.trim(), "linux/amd64/<no value>");
    // Bad flags name the flag and leave no image.
    let bad = berth.fail(&["build", "--platform", "linux/amd64,linux/arm64", &ctx_s])?;
    assert!(
        bad.contains("flag --platform") && bad.contains("several platforms"),
        "{bad}"
    );
    let bad = berth.fail(&["build", "--platform", "bogus", &ctx_s])?;
    assert!(
        bad.contains("flag --platform") && bad.contains("bogus"),
        "{bad}"
    );
    // A base stored only for the host, which its registry does not have: docker's mismatch
    // error, naming the image and both platforms.
    berth.ok(&["pull", &base])?;
    let absent = format!("{}/plat/absent:1", reg.host());
    berth.ok(&["tag", &base, &absent])?;
    let before = berth.images()?;
    std::fs::write(ctx.join("Dockerfile"), format!("FROM {absent}\nRUN true\n"))?;
    let bad = berth.fail(&[
        "build",
        "--network",
        "none",
        "--platform",
        "linux/arm64",
        &ctx_s,
    ])?;
    assert!(
        bad.contains(&absent)
            && bad.contains("wanted linux/arm64")
            && bad.contains("actual: linux/amd64"),
        "{bad}"
    );
    assert_eq!(berth.images()?, before, "a failed build adds no image");
    Ok(())
}
