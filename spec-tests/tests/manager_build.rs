//! `berth build` against docker's classic builder (dockerd 20.10, `DOCKER_BUILDKIT=0`) on a
//! corpus of Dockerfiles: for each, the config fields (Env, Cmd, Entrypoint, WorkingDir,
//! User, ExposedPorts, Volumes, Labels, Shell, StopSignal, Healthcheck, OnBuild) and the
//! flattened file tree (type, mode, owner, size, link target, content) must be the same.
//! One dockerd and one berth root serve every case; RUN steps run with `--network none` in
//! both. A few cases are built by buildah as well: where buildah and docker disagree, docker
//! is the reference and BUILDAH_DIFFERS says why. Then the cache: a rebuild runs no container
//! and gives the same image ID.

use std::io::Write;
use std::time::Instant;

use anyhow::{ensure, Result};
use serde_json::Value;
use spec_tests::manager::build::{
    runs_ran, steps_cached, tree_diff, write_context, written_id, Buildah, HttpServer, Pair,
};

const BASE: &str = "berth-test-busybox:latest";

struct Case {
    name: &'static str,
    dockerfile: String,
    files: Vec<(&'static str, &'static str)>,
    args: Vec<&'static str>,
}

fn case(
    name: &'static str,
    df: &str,
    files: &[(&'static str, &'static str)],
    args: &[&'static str],
) -> Case {
    Case {
        name,
        dockerfile: df.replace("BASE", BASE),
        files: files.to_vec(),
        args: args.to_vec(),
    }
}

fn corpus() -> Vec<Case> {
    vec![
        case(
            "instructions",
            r#"FROM BASE
LABEL maintainer.name="a b" version=1
MAINTAINER someone <x@y>
ENV A=1 B="two words" \
    C=${A}-x
# a comment inside the file
ENV OLD legacy form value
ARG ARG1=default
ARG ARG2
ENV FROM_ARG=$ARG1 EMPTY=${ARG2:-fallback} PLUS=${A:+set} QUOTED='$A' ESC=\$A
WORKDIR /srv/app
WORKDIR sub
RUN echo "$A $ARG1 $FROM_ARG" > out.txt && mkdir -p /data/keep && echo k > /data/keep/k \
 && rm /etc/group && chmod 0700 /root && ln -s /srv/app/sub/out.txt /link && touch /etc/newfile
RUN ["/bin/sh", "-c", "echo exec-form >> out.txt"]
USER nobody
EXPOSE 80 443/tcp 53/udp
VOLUME ["/data", "/cache"]
VOLUME /more
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=30s --timeout=3s --retries=2 CMD wget -q localhost || exit 1
SHELL ["/bin/sh", "-ec"]
ONBUILD RUN echo triggered > /triggered
ENTRYPOINT ["/bin/sh"]
CMD ["-c", "cat out.txt"]
"#,
            &[],
            &["--build-arg", "ARG1=fromcli"],
        ),
        case(
            "copy",
            r#"FROM BASE
WORKDIR /app
COPY a.txt .
COPY a.txt renamed.txt
COPY a.txt /new/dir/
COPY dir /copied
COPY dir/ /copied2/
COPY *.conf /etc/confs/
COPY keep.log a.txt /multi/
COPY --chown=nobody:nogroup a.txt /owned
COPY --chown=1234:5678 dir /owned-dir
COPY . /all/
"#,
            &[
                ("a.txt", "a\n"),
                ("dir/b.txt", "bb\n"),
                ("dir/sub/c.txt", "ccc\n"),
                ("dir/empty/", ""),
                ("dir/link", "->b.txt"),
                ("dir/abs", "->/etc/passwd"),
                ("ignored.log", "no\n"),
                ("keep.log", "yes\n"),
                ("x1.conf", "1\n"),
                ("x2.conf", "2\n"),
                ("deep/skip/me", "x\n"),
                (".dockerignore", "*.log\n!keep.log\ndeep/skip\n"),
            ],
            &[],
        ),
        case(
            "add",
            r#"FROM BASE
ADD archive.tar.gz /extracted/
ADD plain.txt /plain/
ADD archive.tar /ex2
ADD --chown=1234:5678 archive.tar /owned-ex/
ADD --chown=1234:5678 plain.txt /owned-plain/
"#,
            &[("plain.txt", "plain\n")],
            &[],
        ),
        case(
            "multistage",
            r#"FROM BASE AS builder
RUN mkdir /out && echo artifact > /out/a && echo other > /out/b
FROM BASE AS other
RUN echo never > /never
FROM scratch AS final
COPY --from=builder /out/ /
COPY --from=0 /bin/busybox /bin/busybox
CMD ["/bin/busybox", "cat", "/a"]
FROM final AS extended
COPY --from=builder /out/b /extra
"#,
            &[],
            &["--target", "final"],
        ),
        case(
            "whiteouts",
            r#"FROM BASE
RUN mkdir -p /w/a/b && echo 1 > /w/a/b/f && echo 2 > /w/keep && echo 3 > /w/gone
RUN rm -rf /w/a /w/gone /bin/vi && mkdir /w/a && echo new > /w/a/g && chmod 4755 /w/a/g
RUN echo t > /w/keep-dir && rm /w/keep-dir
"#,
            &[],
            &[],
        ),
        case(
            "scopes-and-forms",
            r#"ARG TAG=latest
ARG UNUSED_GLOBAL=x
FROM berth-test-busybox:${TAG}
ARG TAG
LABEL from-tag=$TAG
SHELL ["/bin/sh", "-ec"]
USER nobody
RUN id -u > /tmp/uid-of-run
USER root
WORKDIR /w
COPY --chown=65534 a.txt rel/
COPY a.txt rel2
ENTRYPOINT echo entry
CMD echo cmd
EXPOSE 7000-7002/udp
ENV P=/w \
    Q="$P/q"
"#,
            &[("a.txt", "a\n")],
            &[],
        ),
        case(
            "scratch-run",
            r#"FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox mkdir /out && /bin/busybox ln -s busybox /bin/sh"]
RUN echo made-in-scratch > /out/f && /bin/busybox ln -s ../bin/busybox /out/cat
CMD ["/out/cat", "/out/f"]
"#,
            &[],
            &[],
        ),
        case(
            "add-url",
            r#"FROM BASE
ADD URL/remote.txt /r/
ADD URL/remote.txt /named
ADD URL/archive.tar.gz /not-extracted/
ADD --chown=nobody:nogroup URL/sub/deep.txt /owned/
"#,
            &[],
            &[],
        ),
        case(
            "copy-rules",
            r#"FROM BASE
RUN mkdir -m 750 /exist && chown nobody:nogroup /exist
COPY d700 /new700/
COPY d700 /exist/
COPY --chown=1234:5678 d700 /tmp/
COPY --chown=1234:5678 d700 /newc/
COPY l* /globl/
COPY lfile /named/
COPY ldir /vialink/
RUN true
"#,
            &[
                ("d700/in/x", "x\n"),
                ("realdir/r", "r\n"),
                ("f1", "f\n"),
                ("ldir", "->realdir"),
                ("lfile", "->f1"),
            ],
            &[],
        ),
        case(
            "onbuild-parent",
            r#"FROM BASE
ONBUILD RUN echo triggered > /triggered
ONBUILD ENV TRIG=1
"#,
            &[],
            &[],
        ),
        case(
            "onbuild-child",
            "FROM onbuild-parent:t\nRUN cat /triggered > /copy\n",
            &[],
            &[],
        ),
    ]
}

/// The cases buildah builds too (a few: buildah bud takes seconds a case), and where its
/// result differs from docker's (so from berth's, which must match docker's): the case (`*`
/// for all), the config field (`config.F`) or path, and why docker's result is the
/// reference.
const BUILDAH_CASES: &[&str] = &["instructions", "multistage", "whiteouts"];
const BUILDAH_DIFFERS: &[(&str, &str, &str)] = &[
    (
        "*",
        "config.Labels",
        "buildah stamps every image with its io.buildah.version label; docker adds no label",
    ),
    (
        "*",
        "etc/hostname",
        "buildah leaves the empty /etc/hostname it bind-mounts into RUN containers in the \
         layer; docker's builder keeps the container setup out of the image",
    ),
    (
        "*",
        "run",
        "buildah leaves the /run directory it makes for RUN containers in the layer; \
         docker's builder does not",
    ),
];

/// buildah's differences from berth in one case (config fields, then paths).
fn buildah_diff(
    buildah: &Buildah,
    pair: &Pair,
    tag: &str,
    name: &str,
) -> Result<Vec<(String, String)>> {
    let (hc, bc) = (buildah.config(tag)?, pair.berth_config(tag)?);
    let mut out = Vec::new();
    for f in spec_tests::manager::build::FIELDS {
        if hc.get(f) != bc.get(f) {
            out.push((
                format!("config.{f}"),
                format!("buildah {:?} berth {:?}", hc.get(f), bc.get(f)),
            ));
        }
    }
    let (ht, bt) = (buildah.tree(tag, name)?, pair.berth_tree(tag, name)?);
    let paths: std::collections::BTreeSet<&String> = ht.keys().chain(bt.keys()).collect();
    for p in paths {
        let (mut h, mut b) = (ht.get(p).cloned(), bt.get(p).cloned());
        // The mode bits of symlinks are not meaningful.
        for n in [&mut h, &mut b].into_iter().flatten() {
            if n.kind == 'l' {
                n.mode = 0;
            }
        }
        if h != b {
            out.push((p.clone(), format!("buildah {h:?} berth {b:?}")));
        }
    }
    Ok(out)
}

/// The image's history (`created_by`, newest first) with the content digests of COPY/ADD
/// (`file:<hex>`, docker's tarsum, berth's own hash) cut to their kind.
fn history(pair: &Pair, tag: &str, berth: bool) -> Result<Vec<String>> {
    let args = ["history", "--no-trunc", "--format", "{{.CreatedBy}}", tag];
    let out = if berth {
        pair.berth.ok(&args)?
    } else {
        pair.docker.docker(&args)?.ok()?.stdout
    };
    Ok(out
        .lines()
        .map(|l| {
            l.split(' ')
                .map(|w| {
                    let digest =
                        |h: &str| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit());
                    // `--chown=X` is glued to the digest; a download has a bare digest.
                    for k in ["file:", "dir:", "multi:", ""] {
                        if let Some(i) = w.find(k).filter(|_| !k.is_empty() || w.len() >= 64) {
                            let (head, rest) =
                                w.split_at(if k.is_empty() { w.len() - 64 } else { i });
                            if digest(&rest[k.len()..]) {
                                return format!("{head}{k}<digest>");
                            }
                        }
                    }
                    w.to_string()
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect())
}

/// A tar (plain or gzip) with a directory and two files, for ADD.
fn archive(gz: bool) -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    let mut d = tar::Header::new_ustar();
    d.set_entry_type(tar::EntryType::Directory);
    d.set_mode(0o750);
    d.set_size(0);
    d.set_mtime(1);
    b.append_data(&mut d, "x/", &[][..])?;
    for (name, body, mode) in [
        ("x/1.txt", "one\n", 0o640),
        ("x/2.sh", "#!/bin/sh\n", 0o755),
    ] {
        let mut h = tar::Header::new_ustar();
        h.set_mode(mode);
        h.set_size(body.len() as u64);
        h.set_mtime(1);
        h.set_uid(12);
        h.set_gid(34);
        b.append_data(&mut h, name, body.as_bytes())?;
    }
    let tar = b.into_inner()?;
    if !gz {
        return Ok(tar);
    }
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(&tar)?;
    Ok(e.finish()?)
}

#[test]
fn classic_builder_and_berth_build_the_same_images() -> Result<()> {
    let pair = Pair::new()?;
    // The remote end of ADD from a URL: both builders download from it.
    let served = pair.dir.path().join("served");
    write_context(
        &served,
        &[("remote.txt", "from the web\n"), ("sub/deep.txt", "deep\n")],
    )?;
    std::fs::write(served.join("archive.tar.gz"), archive(true)?)?;
    let http = HttpServer::start(&served)?;
    let buildah = Buildah::new(&pair.dir.path().join("base.tar"))?;
    let url = http.url("");
    let mut failures = Vec::new();
    for mut c in corpus() {
        c.dockerfile = c.dockerfile.replace("URL/", &url);
        let ctx = pair.dir.path().join(c.name);
        write_context(&ctx, &c.files)?;
        std::fs::write(ctx.join("Dockerfile"), &c.dockerfile)?;
        if c.name == "add" {
            std::fs::write(ctx.join("archive.tar.gz"), archive(true)?)?;
            std::fs::write(ctx.join("archive.tar"), archive(false)?)?;
        }
        if c.name == "copy-rules" {
            // docker's builder gives a new destination directory 0755, not the source's mode
            // (0705: still readable by the rootless pass's user).
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(ctx.join("d700"), std::fs::Permissions::from_mode(0o705))?;
        }
        if c.name == "scratch-run" {
            // A static busybox (busybox-static) is all the stage has to run.
            std::fs::copy("/bin/busybox", ctx.join("busybox"))?;
        }
        let tag = format!("{}:t", c.name);
        let ctx_s = ctx.display().to_string();
        let mut args = vec!["--network", "none", "-t", &tag];
        args.extend(c.args.iter().copied());
        args.push(&ctx_s);
        let started = Instant::now();
        let d = pair.docker_build(&args)?;
        let docker_time = started.elapsed();
        let started = Instant::now();
        let b = pair.berth_build(&args)?;
        let berth_time = started.elapsed();
        eprintln!("{}: docker {docker_time:?}, berth {berth_time:?}", c.name);
        ensure!(d.success(), "docker build of {}: {d}", c.name);
        ensure!(b.success(), "berth build of {}: {b}", c.name);
        ensure!(
            b.stdout.contains("Successfully built ")
                && b.stdout.contains(&format!("Successfully tagged {tag}")),
            "{}: {}",
            c.name,
            b.stdout
        );
        let (dc, bc) = (pair.docker_config(&tag)?, pair.berth_config(&tag)?);
        if dc != bc {
            failures.push(format!("{}: config\n docker {dc}\n berth  {bc}", c.name));
        }
        let diff = tree_diff(
            &pair.docker_tree(&tag, c.name)?,
            &pair.berth_tree(&tag, c.name)?,
        );
        if !diff.is_empty() {
            failures.push(format!("{}: file tree\n  {}", c.name, diff.join("\n  ")));
        }
        // A step that changed nothing (RUN true) is an empty layer for docker: no diffID.
        let layers = |v: Value| v[0]["RootFS"]["Layers"].as_array().map_or(0, Vec::len);
        let (dl, bl) = (
            layers(serde_json::from_str(
                &pair
                    .docker
                    .docker(&["image", "inspect", &tag])?
                    .ok()?
                    .stdout,
            )?),
            layers(serde_json::from_str(
                &pair.berth.ok(&["image", "inspect", &tag])?,
            )?),
        );
        if dl != bl {
            failures.push(format!("{}: {dl} layers by docker, {bl} by berth", c.name));
        }
        let (dh, bh) = (history(&pair, &tag, false)?, history(&pair, &tag, true)?);
        if dh != bh {
            failures.push(format!(
                "{}: history\n docker {dh:#?}\n berth  {bh:#?}",
                c.name
            ));
        }
        if BUILDAH_CASES.contains(&c.name) {
            let started = Instant::now();
            let h = buildah.build(&args)?;
            eprintln!("{}: buildah {:?}", c.name, started.elapsed());
            ensure!(h.success(), "buildah build of {}: {h}", c.name);
            for (key, what) in buildah_diff(&buildah, &pair, &tag, c.name)? {
                if !BUILDAH_DIFFERS
                    .iter()
                    .any(|(case, k, _)| (*case == c.name || *case == "*") && *k == key)
                {
                    failures.push(format!("{}: buildah differs at {key}: {what}", c.name));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

/// Cache: a rebuild with nothing changed runs no container and gives the same image; a
/// changed file re-runs from the first step that copies it (an mtime alone changes
/// nothing); `--no-cache` runs every step.
#[test]
fn rebuilds_come_from_the_cache_until_a_copied_file_changes() -> Result<()> {
    use spec_tests::manager::network::{berth_with_busybox, BUSYBOX};
    let berth = berth_with_busybox()?;
    let dir = spec_tests::manager::berth::test_dir()?;
    let ctx = dir.path();
    write_context(ctx, &[("a.txt", "one\n"), ("b.txt", "b\n")])?;
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM {BUSYBOX}\nRUN echo first > /first\nCOPY b.txt /\nRUN echo second > /second\nCOPY a.txt /\nRUN cat /a.txt > /third\nCMD [\"cat\", \"/third\"]\n"
        ),
    )?;
    let c = ctx.display().to_string();
    // The progress (BuildKit's plain lines, on stderr) tells which steps ran.
    let build = |extra: &[&str]| -> Result<String> {
        let mut args = vec!["build", "--progress", "plain", "--network", "none"];
        args.extend_from_slice(&["-t", "cached:1"]);
        args.extend_from_slice(extra);
        args.push(&c);
        let out = berth.run(&args)?;
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        ensure!(out.status.success(), "berth build failed: {err}");
        Ok(err)
    };
    let first = build(&[])?;
    assert_eq!(runs_ran(&first), 3, "{first}");
    let started = Instant::now();
    let again = build(&[])?;
    let cached_time = started.elapsed();
    assert_eq!(runs_ran(&again), 0, "{again}");
    assert_eq!(steps_cached(&again), 6, "{again}");
    assert!(written_id(&first).is_some(), "{first}");
    assert_eq!(written_id(&first), written_id(&again));
    eprintln!("cached rebuild: {cached_time:?}");
    // Touching a file keeps the cache; changing it re-runs from its COPY on.
    let f = std::fs::File::options()
        .append(true)
        .open(ctx.join("b.txt"))?;
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(60))?;
    drop(f);
    assert_eq!(runs_ran(&build(&[])?), 0);
    std::fs::write(ctx.join("a.txt"), "two\n")?;
    let changed = build(&[])?;
    assert_eq!(steps_cached(&changed), 3, "{changed}");
    assert_eq!(runs_ran(&changed), 1, "{changed}");
    assert_eq!(
        berth.ok(&["run", "--rm", "--network", "none", "cached:1"])?,
        "two\n"
    );
    let fresh = build(&["--no-cache"])?;
    assert_eq!(steps_cached(&fresh), 0, "{fresh}");
    assert_eq!(runs_ran(&fresh), 3, "{fresh}");
    // history: newest first, docker's created_by.
    let h = berth.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "cached:1",
    ])?;
    let lines: Vec<&str> = h.lines().collect();
    assert_eq!(
        lines[0], "/bin/sh -c #(nop)  CMD [\"cat\" \"/third\"]",
        "{h}"
    );
    assert_eq!(lines[1], "/bin/sh -c cat /a.txt > /third", "{h}");
    assert!(
        lines[2].starts_with("/bin/sh -c #(nop) COPY file:") && lines[2].ends_with(" in / "),
        "{h}"
    );
    Ok(())
}

/// `POST /build` and `GET /images/{name}/history` serve both docker CLIs (classic builder
/// protocol); a BuildKit session is answered 501.
#[test]
fn docker_clis_build_through_the_engine_api() -> Result<()> {
    use spec_tests::engines::run_cmd;
    use spec_tests::manager::api::{docker_clients, Service};
    let s = Service::start()?;
    let dir = spec_tests::manager::berth::test_dir()?;
    let ctx = dir.path();
    write_context(ctx, &[("a.txt", "from the context\n")])?;
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nARG X=1\nCOPY a.txt /\nRUN echo \"x=$X\" > /x\nCMD [\"cat\", \"/a.txt\", \"/x\"]\n",
    )?;
    let c = ctx.display().to_string();
    for (i, cli) in docker_clients().into_iter().enumerate() {
        let tag = format!("api-built:{i}");
        let mut cmd = s.client(cli);
        cmd.env("DOCKER_BUILDKIT", "0").args([
            "build",
            "--network",
            "none",
            "--build-arg",
            "X=7",
            "-t",
            &tag,
            &c,
        ]);
        let o = run_cmd(cmd, std::time::Duration::from_secs(120))?.ok()?;
        assert!(
            o.stdout.contains(&format!("Successfully tagged {tag}")),
            "{cli}: {}",
            o.stdout
        );
        let out = s.docker_ok(cli, &["run", "--rm", "--network", "none", &tag])?;
        assert_eq!(out, "from the context\nx=7\n", "{cli}");
        let h = s.docker_ok(
            cli,
            &["history", "--no-trunc", "--format", "{{.CreatedBy}}", &tag],
        )?;
        assert!(
            h.lines()
                .any(|l| l == "|1 X=7 /bin/sh -c echo \"x=$X\" > /x"),
            "{cli}: {h}"
        );
        let mut cmd = s.client(cli);
        std::fs::write(ctx.join("Dockerfile.bad"), "FROM busybox\nRUN exit 4\n")?;
        cmd.env("DOCKER_BUILDKIT", "0").args([
            "build",
            "--network",
            "none",
            "-f",
            &ctx.join("Dockerfile.bad").display().to_string(),
            &c,
        ]);
        let o = run_cmd(cmd, std::time::Duration::from_secs(120))?;
        assert_eq!(o.code, Some(4), "{cli}: {o}");
        assert!(
            o.stderr.contains("returned a non-zero code: 4"),
            "{cli}: {o}"
        );
    }
    let (code, body) = s.http("POST", "/build?version=2", None)?;
    assert_eq!(code, 501, "{body}");
    assert!(body.contains("message"), "{body}");
    Ok(())
}

#[test]
fn image_sizes_are_the_unpacked_sizes_docker_reports() -> Result<()> {
    // docker's `Size` (inspect, `images`, `history`) counts the bytes of the files a layer
    // holds (a hardlinked file once, a symlink its target's length), not its compressed blob.
    let pair = Pair::new()?;
    let ctx = pair.dir.path().join("sizes");
    std::fs::create_dir_all(&ctx)?;
    write_context(&ctx, &[("blob.bin", &"x".repeat(300_000))])?;
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM {BASE}\nCOPY blob.bin /data/\nRUN head -c 123456 /dev/zero > /z && ln /z /z2 && ln -s /data/blob.bin /link\nRUN rm /data/blob.bin\n"
        ),
    )?;
    let c = ctx.display().to_string();
    let args = ["--network", "none", "-q", "-t", "sized:1", &c];
    pair.docker_build(&args)?.ok()?;
    pair.berth_build(&args)?.ok()?;
    for image in [BASE, "sized:1"] {
        let docker = pair
            .docker
            .docker(&["image", "inspect", image])?
            .ok()?
            .stdout;
        let berth = pair.berth.ok(&["image", "inspect", image])?;
        let size = |out: &str| -> Result<i64> {
            let v: serde_json::Value = serde_json::from_str(out)?;
            v[0]["Size"]
                .as_i64()
                .ok_or_else(|| anyhow::anyhow!("no Size in {out}"))
        };
        assert_eq!(size(&berth)?, size(&docker)?, "Size of {image}");
        let list = ["images", "--format", "{{.Size}}", image];
        assert_eq!(
            pair.berth.ok(&list)?,
            pair.docker.docker(&list)?.ok()?.stdout,
            "images SIZE of {image}"
        );
        let hist = ["history", "--format", "{{.Size}}", image];
        assert_eq!(
            pair.berth.ok(&hist)?,
            pair.docker.docker(&hist)?.ok()?.stdout,
            "history SIZE of {image}"
        );
    }
    // docker load's lines: the short name, or the image ID of an archive without names.
    let id = pair
        .docker
        .docker(&["image", "inspect", "-f", "{{.Id}}", "sized:1"])?
        .ok()?
        .stdout;
    let (named, bare) = (
        pair.dir.path().join("named.tar"),
        pair.dir.path().join("bare.tar"),
    );
    let (named_s, bare_s) = (named.display().to_string(), bare.display().to_string());
    pair.docker
        .docker(&["save", "-o", &named_s, "sized:1"])?
        .ok()?;
    pair.docker
        .docker(&["save", "-o", &bare_s, id.trim()])?
        .ok()?;
    // docker writes 0600 archives: readable by the rootless pass's user too.
    for tar in [&named, &bare] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tar, std::fs::Permissions::from_mode(0o644))?;
    }
    assert_eq!(
        pair.berth.ok(&["load", "-i", &named_s])?,
        "Loaded image: sized:1\n"
    );
    assert_eq!(
        pair.berth.ok(&["load", "-i", &bare_s])?,
        format!("Loaded image ID: {id}")
    );
    Ok(())
}
