//! `.dockerignore` with docker's semantics (moby's patternmatcher): one pattern a line, `#`
//! comments, `!` exceptions, patterns cleaned (`./a/../b` is `b`, a leading `/` dropped),
//! `*` and `?` within one path component, `**` across any number of them. A path is
//! excluded when the last pattern matching it *or one of its parent directories* is not an
//! exception.

use globset::{GlobBuilder, GlobMatcher};

use super::BuildError;

#[derive(Debug, Clone, Default)]
pub struct Ignore {
    patterns: Vec<(GlobMatcher, bool)>,
}

/// `filepath.Clean` of a slash-separated relative pattern.
fn clean(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !p.starts_with('/') {
                    parts.push("..");
                }
            }
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        ".".to_string()
    } else {
        parts.join("/")
    }
}

impl Ignore {
    /// Parses the file's text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Self, BuildError> {
        let mut patterns = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (negated, pat) = match line.strip_prefix('!') {
                Some(p) => (true, p.trim()),
                None => (false, line),
            };
            if pat.is_empty() {
                return Err(BuildError::Ignore {
                    file: file.to_string(),
                    line: n + 1,
                    message: "illegal exclusion pattern: \"!\"".into(),
                });
            }
            let pat = clean(pat);
            let glob = GlobBuilder::new(&pat)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| BuildError::Ignore {
                    file: file.to_string(),
                    line: n + 1,
                    message: e.to_string(),
                })?;
            patterns.push((glob.compile_matcher(), negated));
        }
        Ok(Self { patterns })
    }

    /// Whether any pattern is an exception (then an excluded directory must still be walked).
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|(_, n)| *n)
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether `rel` (a context-relative, slash-separated path) is excluded.
    pub fn excluded(&self, rel: &str) -> bool {
        let rel = rel.trim_start_matches("./").trim_start_matches('/');
        let mut excluded = false;
        for (glob, negated) in &self.patterns {
            let mut hit = glob.is_match(rel);
            if !hit {
                let mut prefix = rel;
                while let Some((parent, _)) = prefix.rsplit_once('/') {
                    if glob.is_match(parent) {
                        hit = true;
                        break;
                    }
                    prefix = parent;
                }
            }
            if hit {
                excluded = !negated;
            }
        }
        excluded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ig(s: &str) -> Ignore {
        Ignore::parse(".dockerignore", s).unwrap()
    }

    #[test]
    fn docker_semantics() {
        let i = ig("# comment\n*.md\n!README.md\n/build\n**/*.tmp\nsub/*/x\n./a/../node_modules\n");
        assert!(i.excluded("notes.md"));
        assert!(!i.excluded("README.md"));
        assert!(!i.excluded("docs/notes.md"), "* stays in one component");
        assert!(i.excluded("build"));
        assert!(
            i.excluded("build/out/bin"),
            "children of an excluded directory"
        );
        assert!(i.excluded("a.tmp"));
        assert!(i.excluded("deep/er/a.tmp"));
        assert!(i.excluded("sub/y/x"));
        assert!(!i.excluded("sub/y/z/x"));
        assert!(i.excluded("node_modules/m/index.js"));
        assert!(!i.excluded("src/main.rs"));
        assert!(i.has_exceptions());
    }

    #[test]
    fn later_patterns_win_and_exceptions_reach_into_excluded_dirs() {
        let i = ig("dir\n!dir/keep\n");
        assert!(i.excluded("dir/other"));
        assert!(!i.excluded("dir/keep"));
        assert!(
            !i.excluded("dir/keep/inner"),
            "the exception matches a parent"
        );
        let i = ig("!x\n*\n");
        assert!(i.excluded("x"));
        let i = ig("**\n!src/**\n");
        assert!(i.excluded("a"));
        assert!(!i.excluded("src/a/b"));
    }

    #[test]
    fn a_lone_bang_is_an_error_naming_the_line() {
        let e = Ignore::parse(".dockerignore", "a\n!\n").unwrap_err();
        assert!(e.to_string().contains(".dockerignore:2"), "{e}");
    }
}
