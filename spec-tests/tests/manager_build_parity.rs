//! More of `berth build` against docker's classic builder (dockerd 20.10,
//! `DOCKER_BUILDKIT=0`): the corners found by diffing new Dockerfiles built by both, each
//! pinned here. For a case that builds, the compared config fields, the flattened tree, the
//! layer count and every history entry (`created_by` with content digests cut, `empty_layer`,
//! `author`) and the image's `author` and `comment` must be equal; for a case that fails, both must fail
//! with the same exit code and berth's output must hold the words of docker's error.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{ensure, Result};
use serde_json::Value;
use spec_tests::manager::build::{saved_config, tree_diff, write_context, HttpServer, Pair};

const BASE: &str = "berth-test-busybox:latest";

/// A Dockerfile that must build the same image with both builders.
struct Case {
    name: &'static str,
    dockerfile: &'static str,
    files: &'static [(&'static str, &'static str)],
    args: &'static [&'static str],
    /// Compared as root only: a rootless berth's COPY --from reads a copy of the stage
    /// that the user owns, so the image's owners are not seen (docs/build.md).
    root_only: bool,
}

const EXPANSION: &str = "\u{feff}FROM BASE
ENV A=a
ENV B=$1abc C=${A}$@x D=$0 E=$#y F=$-z G=$!w H=$ I=a$ J=$?q K=$*r L=$\u{c3} M=$$ N=x$$y
LABEL l=$$ m=\"$$\" n='$$' o=${A}$$
RUN echo \"$$\" > /not-expanded-by-the-builder
";

const HEALTH: &str = "FROM BASE AS a
HEALTHCHECK --interval=5m --timeout=3s --start-period=10s --retries=5 CMD [\"true\"]
MAINTAINER first <f@x>
ENV X=1
FROM a AS none
HEALTHCHECK NONE
FROM a
HEALTHCHECK --interval=1s CMD true
ENV Y=2
MAINTAINER second
RUN echo x > /x
";

const CONTEXT_MODES: &str = "FROM BASE
COPY d /d
COPY suid sgid sticky /files/
ADD suid /added
";

const FROM_TREE: &str = "FROM BASE AS a
RUN mkdir /s && echo x > /s/u && chmod 4755 /s/u && echo y > /s/g && chown 12:34 /s/g \\
 && chmod 2755 /s/g && echo z > /s/gn && chmod 2644 /s/gn && mkdir -m 3777 /s/d && mkfifo /s/fifo
FROM BASE
COPY --from=a /s /s
COPY --from=a /s/u /single
COPY --from=a --chown=5:6 /s /owned
";

const DEST_PATHS: &str = "FROM BASE
RUN mkdir -p /real /d/x && ln -s /real /lnk && ln -s real /rel
COPY a.txt /lnk/
COPY a.txt /rel/b.txt
COPY dir /lnk/
COPY a.txt /d
WORKDIR /tmp
WORKDIR /usr/bin/
WORKDIR rel/../x
WORKDIR /a/../b/
RUN pwd > /p
ADD links.tar /arch/
ADD URL/remote.txt URL/sub/deep.txt /urls/
";

const GLOBS: &str = "FROM BASE
COPY **/*.txt /g1/
COPY [!a].txt /g2/
COPY [^a].txt /g3/
COPY */x.txt /g4/
";

const EMPTY_FORMS: &str = "FROM BASE
ENTRYPOINT
CMD
";

fn cases() -> Vec<Case> {
    let case = |name, dockerfile, files, args| Case {
        name,
        dockerfile,
        files,
        args,
        root_only: false,
    };
    vec![
        case("expansion", EXPANSION, &[], &[]),
        case("health-maintainer", HEALTH, &[], &[]),
        case("health-none", HEALTH, &[], &["--target", "none"]),
        // The modes are set by the test (setuid, setgid, sticky).
        case("context-modes", CONTEXT_MODES, &[], &[]),
        Case {
            root_only: true,
            ..case("from-tree", FROM_TREE, &[], &[])
        },
        case(
            "dest-paths",
            DEST_PATHS,
            &[("a.txt", "a\n"), ("dir/d", "d\n")],
            &[],
        ),
        case("empty-forms", EMPTY_FORMS, &[], &[]),
        // `dx/x.txt` is matched after `dir/x.txt` and wins.
        case(
            "globs",
            GLOBS,
            &[
                ("a.txt", "a\n"),
                ("b.txt", "b\n"),
                ("!.txt", "!\n"),
                ("dir/x.txt", "dir\n"),
                ("dir/sub/y.txt", "y\n"),
                ("dx/x.txt", "dx\n"),
            ],
            &[],
        ),
    ]
}

/// A Dockerfile both builders refuse: the exit code and the words of docker's message.
struct Failing {
    name: &'static str,
    dockerfile: &'static str,
    code: i32,
    words: &'static str,
}

const FAILING: &[Failing] = &[
    Failing {
        name: "chown-empty-user",
        dockerfile: "FROM BASE\nCOPY --chown=:nogroup a.txt /x\n",
        code: 1,
        words: "can't find uid for user : no such user",
    },
    Failing {
        name: "file-in-the-way",
        dockerfile: "FROM BASE\nRUN echo f > /f\nCOPY a.txt /f/\n",
        code: 1,
        words: "not a directory",
    },
    Failing {
        name: "file-in-the-way-of-a-dir",
        dockerfile: "FROM BASE\nRUN echo f > /f\nCOPY dir /f\n",
        code: 1,
        words: "not a directory",
    },
    Failing {
        name: "file-in-the-way-of-a-parent",
        dockerfile: "FROM BASE\nRUN echo f > /f\nCOPY a.txt /f/sub/\n",
        code: 1,
        words: "not a directory",
    },
    Failing {
        name: "glob-with-a-slash",
        dockerfile: "FROM BASE\nCOPY di*/ /d/\n",
        code: 1,
        words: "COPY failed: no source files were specified",
    },
    Failing {
        name: "missing-source",
        dockerfile: "FROM BASE\nADD missing.txt /d/\n",
        code: 1,
        words: "ADD failed: file not found in build context or excluded by .dockerignore: stat missing.txt: file does not exist",
    },
    Failing {
        name: "stage-name",
        dockerfile: "FROM BASE AS 1bad\n",
        code: 1,
        words: "invalid name for build stage: \"1bad\", name can't start with a number or contain symbols",
    },
    Failing {
        name: "run-alone",
        dockerfile: "FROM BASE\nRUN\n",
        code: 2,
        words: "The command '/bin/sh -c' returned a non-zero code: 2",
    },
    Failing {
        name: "user-alone",
        dockerfile: "FROM BASE\nUSER\n",
        code: 1,
        words: "USER requires exactly one argument",
    },
    Failing {
        name: "url-without-name",
        dockerfile: "FROM BASE\nADD URL/sub/ /d/\n",
        code: 1,
        words: "cannot determine filename for source URL/sub/",
    },
];

/// A tar with a file and a hard link to it, for ADD.
fn links_tar() -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_mode(0o640);
    h.set_size(4);
    h.set_mtime(1);
    b.append_data(&mut h, "x/file", &b"one\n"[..])?;
    let mut l = tar::Header::new_ustar();
    l.set_entry_type(tar::EntryType::Link);
    l.set_mode(0o640);
    l.set_size(0);
    l.set_mtime(1);
    b.append_link(&mut l, "x/hard", "x/file")?;
    Ok(b.into_inner()?)
}

/// The history of a saved image: `created_by` (content digests cut to their kind),
/// `empty_layer` and `author` of each entry, then the image's `author`.
fn history(config: &Value) -> Vec<String> {
    let cut = |s: &str| -> String {
        s.split(' ')
            .map(|w| {
                let hex = |h: &str| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit());
                for k in ["file:", "dir:", "multi:"] {
                    if let Some(i) = w.find(k) {
                        if hex(&w[i + k.len()..]) {
                            return format!("{}{k}<digest>", &w[..i]);
                        }
                    }
                }
                if hex(w) {
                    return "<digest>".into();
                }
                w.to_string()
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut out: Vec<String> = config["history"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|h| {
                    format!(
                        "{} empty={} author={}",
                        cut(h["created_by"].as_str().unwrap_or("")),
                        h["empty_layer"].as_bool().unwrap_or(false),
                        h["author"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    out.push(format!(
        "image author={}",
        config["author"].as_str().unwrap_or("")
    ));
    out
}

fn set_mode(p: &Path, mode: u32) -> Result<()> {
    Ok(std::fs::set_permissions(
        p,
        std::fs::Permissions::from_mode(mode),
    )?)
}

#[test]
fn classic_builder_corners_build_the_same_images() -> Result<()> {
    let pair = Pair::new()?;
    let served = pair.dir.path().join("served");
    write_context(
        &served,
        &[("remote.txt", "from the web\n"), ("sub/deep.txt", "deep\n")],
    )?;
    let http = HttpServer::start(&served)?;
    let url = http.url("");
    let rootless = spec_tests::manager::berth::rootless_mode();
    let mut failures = Vec::new();
    for c in cases() {
        if c.root_only && rootless {
            eprintln!("{}: compared as root only (owners of COPY --from)", c.name);
            continue;
        }
        let ctx = pair.dir.path().join(c.name);
        write_context(&ctx, c.files)?;
        let df = c.dockerfile.replace("BASE", BASE).replace("URL/", &url);
        std::fs::write(ctx.join("Dockerfile"), df)?;
        match c.name {
            "context-modes" => {
                write_context(
                    &ctx,
                    &[
                        ("suid", "1\n"),
                        ("sgid", "2\n"),
                        ("sticky", "3\n"),
                        ("d/suid", "1\n"),
                        ("d/sgdir/", ""),
                    ],
                )?;
                for (p, m) in [
                    ("suid", 0o4755),
                    ("sgid", 0o2755),
                    ("sticky", 0o1644),
                    ("d/suid", 0o4755),
                    ("d/sgdir", 0o2755),
                ] {
                    set_mode(&ctx.join(p), m)?;
                }
            }
            "dest-paths" => std::fs::write(ctx.join("links.tar"), links_tar()?)?,
            _ => {}
        }
        let tag = format!("{}:t", c.name);
        let ctx_s = ctx.display().to_string();
        let mut args = vec!["--network", "none", "-t", &tag];
        args.extend(c.args.iter().copied());
        args.push(&ctx_s);
        let d = pair.docker_build(&args)?;
        ensure!(d.success(), "docker build of {}: {d}", c.name);
        let b = pair.berth_build(&args)?;
        ensure!(b.success(), "berth build of {}: {b}", c.name);
        let (dc, bc) = (pair.docker_config(&tag)?, pair.berth_config(&tag)?);
        if dc != bc {
            failures.push(format!("{}: config\n docker {dc}\n berth  {bc}", c.name));
        }
        let (dt, bt) = (
            pair.docker_tree(&tag, c.name)?,
            pair.berth_tree(&tag, c.name)?,
        );
        let diff = tree_diff(&dt, &bt);
        if !diff.is_empty() {
            failures.push(format!("{}: file tree\n  {}", c.name, diff.join("\n  ")));
        }
        let saved =
            |who: &str| saved_config(&pair.dir.path().join(format!("{}-{who}.tar", c.name)));
        let (dconf, bconf) = (saved("docker")?, saved("berth")?);
        let layers = |v: &Value| v["rootfs"]["diff_ids"].as_array().map_or(0, Vec::len);
        if layers(&dconf) != layers(&bconf) {
            failures.push(format!(
                "{}: {} layers by docker, {} by berth",
                c.name,
                layers(&dconf),
                layers(&bconf)
            ));
        }
        let (dh, bh) = (history(&dconf), history(&bconf));
        if dh != bh {
            failures.push(format!(
                "{}: history\n docker {dh:#?}\n berth  {bh:#?}",
                c.name
            ));
        }
    }
    for f in FAILING {
        let ctx = pair.dir.path().join(f.name);
        write_context(&ctx, &[("a.txt", "a\n"), ("dir/d", "d\n")])?;
        let df = f.dockerfile.replace("BASE", BASE).replace("URL/", &url);
        std::fs::write(ctx.join("Dockerfile"), df)?;
        let ctx_s = ctx.display().to_string();
        let args = ["--network", "none", &ctx_s];
        let words = f.words.replace("URL/", &url);
        let d = pair.docker_build(&args)?;
        let b = pair.berth_build(&args)?;
        let docker_said = format!("{}{}", d.stdout, d.stderr);
        let berth_said = format!("{}{}", b.stdout, b.stderr);
        ensure!(
            d.code == Some(f.code) && docker_said.contains(&words),
            "{}: docker no longer says {words:?} with exit code {}: {d}",
            f.name,
            f.code
        );
        if b.code != Some(f.code) || !berth_said.contains(&words) {
            failures.push(format!(
                "{}: docker exits {:?} saying {words:?}; berth: {b}",
                f.name, d.code
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}
