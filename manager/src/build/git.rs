//! Which ADD sources are git repositories, as BuildKit's Dockerfile frontend decides:
//! `git://`, `ssh://` and `git@host:path` URLs, and `http(s)://` URLs whose path ends in
//! `.git`. The fragment names what to check out: `#ref` (a branch, a tag or a full commit)
//! and `#ref:subdir` (only that directory of the checkout).

use super::context::clean_abs;
use super::BuildError;

/// A git source of ADD, split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitSource {
    /// The URL given to git (the fragment removed).
    pub remote: String,
    /// The branch, tag or commit; `None`: the remote's HEAD.
    pub reference: Option<String>,
    /// The directory of the checkout that is copied, absolute (`/` for all of it).
    pub subdir: String,
}

impl GitSource {
    /// `remote#ref:subdir` as written (for messages and history).
    pub fn display(&self) -> String {
        let mut s = self.remote.clone();
        if self.reference.is_some() || self.subdir != "/" {
            s.push('#');
            s.push_str(self.reference.as_deref().unwrap_or(""));
            if self.subdir != "/" {
                s.push(':');
                s.push_str(self.subdir.trim_start_matches('/'));
            }
        }
        s
    }

    /// The reference as shown in messages (`HEAD` when none was given).
    pub fn ref_name(&self) -> &str {
        self.reference.as_deref().unwrap_or("HEAD")
    }
}

/// Whether `s` names a git repository (a URL that is not one is a download or a context
/// path).
pub fn is_git(s: &str) -> bool {
    let url = s.split('#').next().unwrap_or("");
    if url.starts_with("git://") || url.starts_with("ssh://") || url.starts_with("git@") {
        return true;
    }
    for scheme in ["http://", "https://"] {
        if let Some(rest) = url.strip_prefix(scheme) {
            // The path, without a query: `https://host/repo.git?x=1` is a repository.
            let path = rest.split('?').next().unwrap_or("");
            return path.contains('/') && path.ends_with(".git");
        }
    }
    false
}

/// A commit named by its full hash (checked out without asking the remote).
pub fn is_commit(r: &str) -> bool {
    (r.len() == 40 || r.len() == 64) && r.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Splits a git source; refuses what git would read as an option (a URL or a ref starting
/// with `-`) and a subdirectory climbing out of the checkout.
pub fn parse(s: &str) -> Result<GitSource, BuildError> {
    let bad = |message: &str| BuildError::Expand {
        word: s.to_string(),
        message: message.to_string(),
    };
    let (remote, fragment) = match s.split_once('#') {
        Some((r, f)) => (r, Some(f)),
        None => (s, None),
    };
    if remote.starts_with('-') || remote.is_empty() {
        return Err(bad("a git URL must not be empty or start with '-'"));
    }
    if remote.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad(
            "a git URL must not contain spaces or control characters",
        ));
    }
    let (reference, subdir) = match fragment {
        None => (None, "/".to_string()),
        Some(f) => {
            let (r, d) = f.split_once(':').unwrap_or((f, ""));
            if r.starts_with('-') {
                return Err(bad("a git ref must not start with '-'"));
            }
            if r.chars().any(|c| c.is_control() || c.is_whitespace()) {
                return Err(bad(
                    "a git ref must not contain spaces or control characters",
                ));
            }
            let climbs = d.split('/').filter(|c| *c == "..").count() > 0;
            if climbs {
                return Err(bad("a git subdirectory must stay inside the repository"));
            }
            ((!r.is_empty()).then(|| r.to_string()), clean_abs(d))
        }
    };
    Ok(GitSource {
        remote: remote.to_string(),
        reference,
        subdir,
    })
}

/// The commit `reference` names in `git ls-remote` output (`<hash>\t<refname>` lines), and
/// the full ref name it came from: a branch first, then a tag (its peeled commit when the
/// tag is annotated), then a full ref name (`refs/pull/1/head`, `HEAD`).
pub fn pick_ref(listing: &str, reference: &str) -> Option<(String, String)> {
    let refs: Vec<(&str, &str)> = listing
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(h, n)| (h.trim(), n.trim()))
        .collect();
    let find = |name: &str| refs.iter().find(|(_, n)| *n == name).map(|(h, _)| *h);
    let branch = format!("refs/heads/{reference}");
    let tag = format!("refs/tags/{reference}");
    if let Some(h) = find(&branch) {
        return Some((h.to_string(), branch));
    }
    if let Some(h) = find(&format!("{tag}^{{}}")).or_else(|| find(&tag)) {
        return Some((h.to_string(), tag));
    }
    find(reference).map(|h| (h.to_string(), reference.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_sources_are_recognised_as_buildkit_does() {
        for s in [
            "git://127.0.0.1:9418/r.git",
            "git@github.com:moby/buildkit.git",
            "ssh://git@host/r",
            "https://host/a/r.git",
            "http://127.0.0.1:80/r.git#main:sub",
            "https://host/r.git?x=1",
        ] {
            assert!(is_git(s), "{s}");
        }
        for s in [
            "https://host/file.tar.gz",
            "https://host/",
            "http://host.git",
            "src/",
            "github.com/moby/buildkit",
            "./r.git",
        ] {
            assert!(!is_git(s), "{s}");
        }
    }

    #[test]
    fn fragments_name_the_ref_and_the_subdirectory() {
        let g = parse("git://h/r.git#v1.0:docs/a").unwrap();
        assert_eq!(g.remote, "git://h/r.git");
        assert_eq!(g.reference.as_deref(), Some("v1.0"));
        assert_eq!(g.subdir, "/docs/a");
        assert_eq!(g.display(), "git://h/r.git#v1.0:docs/a");
        let g = parse("git@h:r.git").unwrap();
        assert_eq!((g.reference, g.subdir.as_str()), (None, "/"));
        let g = parse("git://h/r.git#:sub").unwrap();
        assert_eq!((g.reference.as_deref(), g.subdir.as_str()), (None, "/sub"));
        assert_eq!(g.ref_name(), "HEAD");
        assert!(parse("-uhttps://h/r.git").is_err());
        assert!(parse("git://h/r.git#--upload-pack=x").is_err());
        assert!(parse("git://h/r.git#main:../x").is_err());
        assert!(parse("git://h/r .git").is_err());
    }

    #[test]
    fn refs_resolve_branch_then_peeled_tag_then_full_name() {
        let ls = "aaa\tHEAD\nbbb\trefs/heads/main\nccc\trefs/tags/v1\nddd\trefs/tags/v1^{}\n\
eee\trefs/tags/light\nfff\trefs/heads/v1\n";
        assert_eq!(
            pick_ref(ls, "main"),
            Some(("bbb".into(), "refs/heads/main".into()))
        );
        assert_eq!(
            pick_ref(ls, "v1"),
            Some(("fff".into(), "refs/heads/v1".into()))
        );
        let ls2 = ls.replace("fff\trefs/heads/v1\n", "");
        assert_eq!(
            pick_ref(&ls2, "v1"),
            Some(("ddd".into(), "refs/tags/v1".into()))
        );
        assert_eq!(
            pick_ref(ls, "light"),
            Some(("eee".into(), "refs/tags/light".into()))
        );
        assert_eq!(pick_ref(ls, "HEAD"), Some(("aaa".into(), "HEAD".into())));
        assert_eq!(pick_ref(ls, "nope"), None);
        assert!(is_commit(&"a".repeat(40)));
        assert!(!is_commit("abc123"));
    }
}
