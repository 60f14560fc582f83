//! The manager's layering, checked on its source (run by `cargo test`, so by CI):
//!
//! - the front ends (the CLI: `src/main.rs`, `src/cli/`; the Engine API service: `src/api/`)
//!   reach the library only through the operations layer (`ops`) and the rendering helpers
//!   (`render`, `template`): no store, snapshot, spec generation or network code. The CLI
//!   may also start the API service (`berth system service`);
//! - the library never prints: outside the front ends and the renderers, no module of `src/`
//!   uses `print!`/`println!`/`eprint!`/`eprintln!` (tests aside).

use std::fs;
use std::path::{Path, PathBuf};

/// What the front ends may import from the library.
const FRONT_END_MAY_USE: &[&str] = &["ops", "render", "template"];
/// What the CLI may import besides: the API service it starts.
const CLI_MAY_ALSO_USE: &[&str] = &["api"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code of a file: comments dropped, and everything from its `#[cfg(test)]` module on
/// (test modules come last in this code base).
fn code(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = String::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]") {
            break;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The library modules a piece of code names as `berth::<module>` (in `use` trees too).
fn berth_modules(code: &str) -> Vec<String> {
    modules_after(code, "berth::")
}

/// The modules a piece of code inside the crate names as `crate::<module>`.
fn crate_modules(code: &str) -> Vec<String> {
    modules_after(code, "crate::")
}

fn modules_after(code: &str, prefix: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find(prefix) {
        let before = rest[..i].chars().last();
        rest = &rest[i + prefix.len()..];
        // `foo_berth::x` or `"berth::x"` are not paths into this library.
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '"') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    found.push(name);
                }
            }
            continue;
        }
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        found.push(name);
    }
    found
}

#[test]
fn the_front_end_uses_only_the_operations_layer_and_rendering_helpers() {
    let mut files = vec![src().join("main.rs")];
    rust_files(&src().join("cli"), &mut files);
    let mut bad = Vec::new();
    for f in &files {
        for m in berth_modules(&code(f)) {
            if !FRONT_END_MAY_USE.contains(&m.as_str()) && !CLI_MAY_ALSO_USE.contains(&m.as_str()) {
                bad.push(format!("{}: berth::{m}", f.display()));
            }
        }
    }
    // The API service is inside the crate: its paths are `crate::<module>`.
    let mut api = Vec::new();
    rust_files(&src().join("api"), &mut api);
    for f in &api {
        for m in crate_modules(&code(f)) {
            if !FRONT_END_MAY_USE.contains(&m.as_str()) && m != "api" {
                bad.push(format!("{}: crate::{m}", f.display()));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "the front end reaches past the operations layer:\n{}",
        bad.join("\n")
    );
    // The check sees the imports it should: the CLI does use ops.
    let cli = code(&src().join("cli").join("run.rs"));
    assert!(berth_modules(&cli).iter().any(|m| m == "ops"));
}

#[test]
fn the_library_never_prints() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let front_end = src().join("cli");
    let api = src().join("api");
    let renderers = src().join("render");
    let mut bad = Vec::new();
    for f in &files {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if f.starts_with(&front_end)
            || f.starts_with(&api)
            || f.starts_with(&renderers)
            || f == &src().join("main.rs")
            || name == "tests.rs"
            || name.ends_with("_tests.rs")
        {
            continue;
        }
        for (n, line) in code(f).lines().enumerate() {
            if ["println!", "eprintln!", "print!(", "eprint!("]
                .iter()
                .any(|m| line.contains(m))
            {
                bad.push(format!("{}:{}: {}", f.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(bad.is_empty(), "library code prints:\n{}", bad.join("\n"));
}

#[test]
fn module_paths_are_found_in_use_trees_and_paths() {
    let code = "use berth::ops::{self, Engine};\nuse berth::{container, ops::x};\nlet a = berth::network::run_dir();\nlet s = \"berth::quoted\";";
    assert_eq!(berth_modules(code), ["ops", "container", "ops", "network"]);
    assert_eq!(
        crate_modules("use crate::{ops, render::X};"),
        ["ops", "render"]
    );
}
