//! `berth build` features docker's classic builder lacks (BuildKit's are the reference):
//! heredoc bodies of COPY expanded unless the delimiter is quoted, ADD from a URL (a
//! loopback HTTP server started here), independent stages built concurrently, zstd layers.

use std::path::Path;

use anyhow::Result;
use spec_tests::manager::build::flatten;
use spec_tests::manager::network::{berth_with_busybox, BUSYBOX};

fn dockerfile(dir: &Path, text: &str) -> Result<String> {
    std::fs::write(dir.join("Dockerfile"), text.replace("BASE", BUSYBOX))?;
    Ok(dir.display().to_string())
}

/// `COPY <<EOF`: the body is expanded with the stage's ARGs and ENV (quotes kept, unset
/// variables left for the script), not at all with a quoted delimiter; `<<-` strips tabs;
/// several heredocs go into a directory by their names.
#[test]
fn copy_heredocs_expand_unless_the_delimiter_is_quoted() -> Result<()> {
    let berth = berth_with_busybox()?;
    let dir = tempfile::tempdir()?;
    let ctx = dockerfile(
        dir.path(),
        "# syntax=docker/dockerfile:1\nFROM BASE\nARG WHO=world\nENV GREETING=hello\n\
COPY <<EOF /expanded\n$GREETING \"${WHO}\" '$WHO' \\$WHO $1 ${UNSET}\nEOF\n\
COPY <<\"EOF\" /verbatim\n$GREETING ${WHO}\nEOF\n\
COPY <<-EOF /tabs\n\tindented $WHO\n\tEOF\n\
COPY <<one <<two /multi/\nfirst\none\nsecond\ntwo\n",
    )?;
    berth.ok(&[
        "build",
        "--network",
        "none",
        "--build-arg",
        "WHO=berth",
        "-t",
        "heredoc:1",
        &ctx,
    ])?;
    let tar = dir.path().join("img.tar");
    berth.ok(&["save", "-o", &tar.display().to_string(), "heredoc:1"])?;
    let tree = flatten(&tar)?;
    let cat = |p: &str| berth.ok(&["run", "--rm", "--network", "none", "heredoc:1", "cat", p]);
    assert_eq!(
        cat("/expanded")?,
        "hello \"berth\" 'berth' $WHO $1 ${UNSET}\n"
    );
    assert_eq!(cat("/verbatim")?, "$GREETING ${WHO}\n");
    assert_eq!(cat("/tabs")?, "indented berth\n");
    assert_eq!(cat("/multi/one")?, "first\n");
    assert_eq!(cat("/multi/two")?, "second\n");
    let node = &tree["expanded"];
    assert_eq!((node.kind, node.mode & 0o7777), ('f', 0o644), "{node:?}");
    Ok(())
}
