//! The build context: a directory whose files COPY and ADD read, filtered by
//! `.dockerignore` (excluded files are never opened). Sources are resolved inside the
//! context only: `..` stops at its root, a source that is a symlink is followed *inside* the
//! context (an absolute target is taken from the context root), and symlinks met while
//! walking a directory are copied as links, never followed.

use std::fs::{self, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use globset::GlobBuilder;
use sha2::{Digest as _, Sha256};

use super::ignore::Ignore;
use super::BuildError;

/// A context directory and its ignore rules.
#[derive(Debug, Clone)]
pub struct Context {
    pub dir: PathBuf,
    pub ignore: Ignore,
    /// An image's tree (`COPY --from`) rather than the build context: files keep their
    /// owners (when `keep_owners`), setuid/setgid bits, and fifos are copied.
    pub image: bool,
    pub keep_owners: bool,
}

/// What one copied entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    File {
        size: u64,
    },
    Dir,
    Symlink {
        target: PathBuf,
    },
    /// A named pipe (COPY --from and archives carry them).
    Fifo,
}

/// One file of the layer a COPY makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Absolute path inside the image.
    pub dest: String,
    /// Where the content comes from (`None`: a directory made for the copy, or inline
    /// content).
    pub source: Option<PathBuf>,
    pub kind: EntryKind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: u64,
    /// Inline content (heredocs).
    pub data: Option<Vec<u8>>,
}

/// `filepath.Clean` of a path inside the context or the image, always absolute.
pub fn clean_abs(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// `pattern` in Go's `filepath.Match` terms for the glob crate: a run of unescaped `*` is
/// one `*`, a class is negated by `^` (`[!a]` is `!` or `a`).
fn single_stars(pattern: &str) -> String {
    let mut out = String::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.push(c);
            if let Some(n) = chars.next() {
                out.push(n);
            }
            continue;
        }
        if c == '[' {
            out.push(c);
            match chars.peek() {
                Some('^') => {
                    chars.next();
                    out.push('!');
                }
                Some('!') => {
                    // A literal `!`: not first in the class, where the glob crate negates.
                    chars.next();
                    let mut class = String::new();
                    for n in chars.by_ref() {
                        if n == ']' && !class.is_empty() {
                            break;
                        }
                        class.push(n);
                    }
                    out.push_str(&class);
                    out.push_str("!]");
                }
                _ => {}
            }
            continue;
        }
        if c == '*' && out.ends_with('*') && !out.ends_with("\\*") {
            continue;
        }
        out.push(c);
    }
    out
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// One COPY source: the context path it resolves to, and the name the copy takes when it
/// goes into a directory (the last element as written: a symlink's own name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub path: String,
    pub name: String,
}

impl Context {
    pub fn new(dir: PathBuf, ignore: Ignore) -> Self {
        Self {
            dir,
            ignore,
            image: false,
            keep_owners: false,
        }
    }

    /// The tree of a stage or image, read by `COPY --from`; `keep_owners` when the owners
    /// on disk are the image's (not a rootless berth's copy).
    pub fn image(dir: PathBuf, keep_owners: bool) -> Self {
        Self {
            dir,
            ignore: Ignore::default(),
            image: true,
            keep_owners,
        }
    }

    fn host(&self, rel: &str) -> PathBuf {
        self.dir.join(rel.trim_start_matches('/'))
    }

    fn lstat(&self, rel: &str) -> Option<Metadata> {
        fs::symlink_metadata(self.host(rel)).ok()
    }

    /// Follows symlinks at `rel` (and in its parents) inside the context; `None` when the
    /// path does not exist there.
    fn resolve_in_context(&self, rel: &str) -> Option<String> {
        let mut todo: Vec<String> = clean_abs(rel)
            .split('/')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .rev()
            .collect();
        let mut done = String::new();
        let mut hops = 0;
        while let Some(c) = todo.pop() {
            let next = clean_abs(&format!("{done}/{c}"));
            let md = self.lstat(&next)?;
            if md.file_type().is_symlink() {
                hops += 1;
                if hops > 40 {
                    return None;
                }
                let target = fs::read_link(self.host(&next)).ok()?;
                let t = target.to_string_lossy().into_owned();
                let base = if t.starts_with('/') {
                    String::new()
                } else {
                    done.clone()
                };
                let joined = clean_abs(&format!("{base}/{t}"));
                for part in joined.split('/').filter(|s| !s.is_empty()).rev() {
                    todo.push(part.to_string());
                }
                done = String::new();
                continue;
            }
            done = next;
        }
        Some(if done.is_empty() { "/".into() } else { done })
    }

    /// Every non-excluded path of the context under `rel` (itself included), sorted,
    /// without following symlinks.
    pub fn walk(&self, rel: &str) -> Result<Vec<String>, BuildError> {
        let mut out = Vec::new();
        self.walk_into(&clean_abs(rel), &mut out)?;
        Ok(out)
    }

    fn walk_into(&self, rel: &str, out: &mut Vec<String>) -> Result<(), BuildError> {
        let key = rel.trim_start_matches('/');
        let excluded = !key.is_empty() && self.ignore.excluded(key);
        let md = match self.lstat(rel) {
            Some(m) => m,
            None => return Ok(()),
        };
        if !excluded {
            out.push(rel.to_string());
        }
        if md.is_dir() && (!excluded || self.ignore.has_exceptions()) {
            let path = self.host(rel);
            let mut names: Vec<String> = fs::read_dir(&path)
                .map_err(|source| BuildError::Context {
                    path: path.clone(),
                    source,
                })?
                .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect();
            names.sort();
            for n in names {
                let child = if rel == "/" {
                    format!("/{n}")
                } else {
                    format!("{rel}/{n}")
                };
                self.walk_into(&child, out)?;
            }
        }
        Ok(())
    }

    /// The context paths a COPY source names: itself, or what a wildcard matches; a named
    /// or matched path that is a symlink is followed inside the context, as docker's builder
    /// does (the copy is named after the link). Excluded files count as missing.
    pub fn sources(&self, src: &str, what: &'static str) -> Result<Vec<Source>, BuildError> {
        let missing = || BuildError::MissingSource {
            what,
            path: src.trim_start_matches('/').to_string(),
        };
        let clean = clean_abs(src);
        if has_glob(&clean) {
            // docker's builder matches a pattern against paths written without a trailing
            // slash (so `dir*/` matches nothing), and `**` is two `*` (no recursion).
            if src.ends_with('/') {
                return Err(BuildError::NoSources { what });
            }
            let glob = GlobBuilder::new(&single_stars(clean.trim_start_matches('/')))
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| BuildError::Expand {
                    word: src.to_string(),
                    message: e.to_string(),
                })?
                .compile_matcher();
            let mut hits: Vec<String> = Vec::new();
            for p in self.walk("/")? {
                if glob.is_match(p.trim_start_matches('/'))
                    && !hits.iter().any(|h| p.starts_with(&format!("{h}/")))
                {
                    hits.push(p);
                }
            }
            if hits.is_empty() {
                return Err(BuildError::NoSources { what });
            }
            return hits
                .iter()
                .map(|h| {
                    self.resolved(h).ok_or_else(|| BuildError::MissingSource {
                        what,
                        path: h.trim_start_matches('/').to_string(),
                    })
                })
                .collect();
        }
        Ok(vec![self.resolved(&clean).ok_or_else(missing)?])
    }

    /// `rel` with its symlinks followed inside the context; `None` when that leads nowhere
    /// or to an excluded path.
    fn resolved(&self, rel: &str) -> Option<Source> {
        let path = self.resolve_in_context(rel)?;
        let key = path.trim_start_matches('/');
        if (!key.is_empty() && self.ignore.excluded(key)) || self.lstat(&path).is_none() {
            return None;
        }
        let name = rel.rsplit('/').next().unwrap_or("").to_string();
        Some(Source { path, name })
    }

    /// The entries copying context path `src` to `dest` makes: a directory's contents go
    /// into `dest` (which takes the directory's mode), anything else becomes `dest`.
    pub fn entries(&self, src: &str, dest: &str) -> Result<Vec<Entry>, BuildError> {
        let mut out = Vec::new();
        for p in self.walk(src)? {
            let rel = p.strip_prefix(src).unwrap_or("");
            let rel = if src == "/" { p.as_str() } else { rel };
            let target = clean_abs(&format!("{dest}/{rel}"));
            let host = self.host(&p);
            let md = fs::symlink_metadata(&host).map_err(|source| BuildError::Context {
                path: host.clone(),
                source,
            })?;
            let ft = md.file_type();
            let kind = if ft.is_symlink() {
                EntryKind::Symlink {
                    target: fs::read_link(&host).map_err(|source| BuildError::Context {
                        path: host.clone(),
                        source,
                    })?,
                }
            } else if ft.is_dir() {
                EntryKind::Dir
            } else if ft.is_file() {
                EntryKind::File { size: md.len() }
            } else if ft.is_fifo() && self.image {
                EntryKind::Fifo
            } else {
                // Sockets, fifos and devices in a context are skipped, as docker does.
                continue;
            };
            let (uid, gid) = if self.keep_owners {
                (md.uid(), md.gid())
            } else {
                (0, 0)
            };
            out.push(Entry {
                dest: target,
                source: Some(host),
                kind,
                // docker's context loses the setuid and setgid bits of files (not of
                // directories, not the sticky bit).
                mode: md.permissions().mode()
                    & if ft.is_file() && !self.image {
                        0o1777
                    } else {
                        0o7777
                    },
                uid,
                gid,
                mtime: md.mtime().max(0) as u64,
                data: None,
            });
        }
        Ok(out)
    }
}

/// `path` with the symlinks of its existing part followed inside `root` (an absolute link
/// target starts again at `root`), the rest as written: where docker's builder writes a
/// COPY destination.
pub fn follow_in_root(root: &Path, path: &str) -> String {
    let mut todo: Vec<String> = clean_abs(path)
        .split('/')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .rev()
        .collect();
    let mut done = String::new();
    let mut hops = 0;
    while let Some(c) = todo.pop() {
        let next = format!("{done}/{c}");
        let host = root.join(next.trim_start_matches('/'));
        match fs::symlink_metadata(&host) {
            Ok(md) if md.file_type().is_symlink() && hops < 40 => {
                hops += 1;
                let Ok(target) = fs::read_link(&host) else {
                    done = next;
                    continue;
                };
                let t = target.to_string_lossy().into_owned();
                let base = if t.starts_with('/') {
                    ""
                } else {
                    done.as_str()
                };
                let joined = clean_abs(&format!("{base}/{t}"));
                for part in joined.split('/').filter(|s| !s.is_empty()).rev() {
                    todo.push(part.to_string());
                }
                done = String::new();
            }
            Ok(_) => done = next,
            Err(_) => {
                done = next;
                while let Some(rest) = todo.pop() {
                    done = format!("{done}/{rest}");
                }
            }
        }
    }
    if done.is_empty() {
        "/".into()
    } else {
        clean_abs(&done)
    }
}

/// The cache digest of a copy: every entry's path, type, mode, owner, size, link target
/// and content (not its mtime).
pub fn hash_entries(entries: &[Entry]) -> Result<String, BuildError> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    for e in entries {
        h.update(e.dest.as_bytes());
        h.update([0]);
        h.update(format!("{:o} {} {}", e.mode, e.uid, e.gid).as_bytes());
        match &e.kind {
            EntryKind::Dir => h.update(b"d"),
            EntryKind::Fifo => h.update(b"p"),
            EntryKind::Symlink { target } => {
                h.update(b"l");
                h.update(target.as_os_str().as_encoded_bytes());
            }
            EntryKind::File { size } => {
                h.update(format!("f{size}").as_bytes());
                if let Some(d) = &e.data {
                    h.update(d);
                } else if let Some(src) = &e.source {
                    let mut f = fs::File::open(src).map_err(|source| BuildError::Context {
                        path: src.clone(),
                        source,
                    })?;
                    loop {
                        let n = f.read(&mut buf).map_err(|source| BuildError::Context {
                            path: src.clone(),
                            source,
                        })?;
                        if n == 0 {
                            break;
                        }
                        h.update(&buf[..n]);
                    }
                }
            }
        }
        h.update([0xff]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Reads a small file of the context (the Dockerfile, .dockerignore); `None` when absent.
pub fn read_optional(path: &Path) -> Result<Option<String>, BuildError> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(BuildError::Context {
            path: path.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn ctx(ignore: &str) -> (tempfile::TempDir, Context) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        fs::create_dir_all(p.join("src/sub")).unwrap();
        fs::write(p.join("src/a.txt"), "a").unwrap();
        fs::write(p.join("src/sub/b.txt"), "bb").unwrap();
        fs::write(p.join("top.md"), "md").unwrap();
        fs::write(p.join("secret.key"), "k").unwrap();
        symlink("/etc/passwd", p.join("src/abs")).unwrap();
        symlink("../top.md", p.join("src/rel")).unwrap();
        symlink("../../../../../../etc", p.join("out")).unwrap();
        let c = Context::new(
            p.to_path_buf(),
            Ignore::parse(".dockerignore", ignore).unwrap(),
        );
        (d, c)
    }

    fn paths(s: Vec<Source>) -> Vec<String> {
        s.into_iter().map(|s| s.path).collect()
    }

    #[test]
    fn sources_stay_inside_the_context() {
        let (_d, c) = ctx("*.key\n");
        assert_eq!(
            paths(c.sources("src/../src/a.txt", "COPY").unwrap()),
            vec!["/src/a.txt"]
        );
        assert_eq!(
            paths(c.sources("../../top.md", "COPY").unwrap()),
            vec!["/top.md"]
        );
        let rel = c.sources("src/rel", "COPY").unwrap();
        assert_eq!(paths(rel.clone()), vec!["/top.md"]);
        assert_eq!(rel[0].name, "rel");
        // /etc/passwd is looked up in the context, where it does not exist.
        let e = c.sources("src/abs", "COPY").unwrap_err();
        assert!(e.to_string().contains("src/abs"), "{e}");
        assert!(c.sources("out/passwd", "COPY").is_err());
        let e = c.sources("secret.key", "COPY").unwrap_err();
        assert!(e.to_string().contains("excluded by .dockerignore"), "{e}");
        assert_eq!(paths(c.sources("*.md", "COPY").unwrap()), vec!["/top.md"]);
        assert!(c.sources("*.key", "COPY").is_err());
    }

    #[test]
    fn directory_entries_keep_symlinks_as_links() {
        let (_d, c) = ctx("src/sub/b.txt\n");
        let e = c.entries("/src", "/app").unwrap();
        let names: Vec<&str> = e.iter().map(|e| e.dest.as_str()).collect();
        assert_eq!(
            names,
            vec!["/app", "/app/a.txt", "/app/abs", "/app/rel", "/app/sub"]
        );
        assert_eq!(
            e[2].kind,
            EntryKind::Symlink {
                target: "/etc/passwd".into()
            }
        );
        let h1 = hash_entries(&e).unwrap();
        fs::write(c.dir.join("src/a.txt"), "A").unwrap();
        let e2 = c.entries("/src", "/app").unwrap();
        assert_ne!(h1, hash_entries(&e2).unwrap());
    }

    #[test]
    fn globs_match_as_go_filepath_match() {
        assert_eq!(single_stars("**/*.txt"), "*/*.txt");
        assert_eq!(single_stars("a\\**"), "a\\**");
        assert_eq!(single_stars("[!a].txt"), "[a!].txt");
        assert_eq!(single_stars("[^a].txt"), "[!a].txt");
        let (_d, c) = ctx("");
        assert!(matches!(
            c.sources("sr*/", "COPY"),
            Err(BuildError::NoSources { .. })
        ));
        assert!(matches!(
            c.sources("nothing*", "COPY"),
            Err(BuildError::NoSources { .. })
        ));
    }

    #[test]
    fn clean_paths() {
        assert_eq!(clean_abs("a/../../b/./c/"), "/b/c");
        assert_eq!(clean_abs(""), "/");
    }
}
