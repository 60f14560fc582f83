//! The Dockerfile's lines into instructions, with BuildKit's frontend as the reference:
//! parser directives (`# syntax=`, `# escape=`) at the very top, comments, line
//! continuations with the escape character (comment and empty lines inside a continuation
//! are skipped), heredocs (`<<EOF`, `<<-EOF`, `<<"EOF"`) for RUN, COPY and ADD, and the
//! `--flag` words that lead an instruction's arguments.

use super::BuildError;

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq)]
pub struct Dockerfile {
    pub escape: char,
    pub syntax: Option<String>,
    pub instructions: Vec<Instruction>,
}

/// One instruction as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Instruction {
    /// 1-based line of the keyword.
    pub line: usize,
    /// Upper-case keyword (`RUN`).
    pub keyword: String,
    /// Leading `--name[=value]` words, as written.
    pub flags: Vec<String>,
    /// What follows the keyword and flags, continuations joined.
    pub rest: String,
    pub heredocs: Vec<Heredoc>,
    /// The whole instruction on one line (keyword included), for messages.
    pub original: String,
}

/// A here-document's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    pub name: String,
    pub content: String,
    /// Unquoted delimiters expand variables in the body.
    pub expand: bool,
}

pub const KEYWORDS: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

fn syntax(file: &str, line: usize, message: impl Into<String>, text: &str) -> BuildError {
    BuildError::Syntax {
        file: file.to_string(),
        line,
        message: message.into(),
        text: text.trim().to_string(),
    }
}

/// `# key=value` at the top of the file.
fn directive(line: &str) -> Option<(String, String)> {
    let body = line.trim().strip_prefix('#')?.trim();
    let (k, v) = body.split_once('=')?;
    let k = k.trim();
    if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    Some((k.to_ascii_lowercase(), v.trim().to_string()))
}

/// Parses Dockerfile `text`; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Dockerfile, BuildError> {
    // A UTF-8 byte order mark is dropped, as docker's parser does.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let mut escape = '\\';
    let mut syntax_directive = None;
    let mut i = 0;
    let mut seen = Vec::new();
    while i < lines.len() {
        let Some((k, v)) = directive(lines[i]) else {
            break;
        };
        if seen.contains(&k) {
            return Err(syntax(
                file,
                i + 1,
                format!("only one {k} parser directive can be used"),
                lines[i],
            ));
        }
        match k.as_str() {
            "escape" => {
                escape = match v.as_str() {
                    "\\" => '\\',
                    "`" => '`',
                    _ => {
                        return Err(syntax(
                            file,
                            i + 1,
                            format!("invalid escape token '{v}' does not match ` or \\"),
                            lines[i],
                        ))
                    }
                }
            }
            "syntax" => syntax_directive = Some(v),
            _ => {}
        }
        seen.push(k);
        i += 1;
    }
    let is_comment = |l: &str| l.trim_start().starts_with('#');
    let continued = |l: &str| -> Option<usize> {
        let t = l.trim_end_matches([' ', '\t']);
        t.ends_with(escape).then(|| t.len() - escape.len_utf8())
    };
    let mut out = Vec::new();
    while i < lines.len() {
        let first = lines[i].trim_start();
        let start = i + 1;
        i += 1;
        if first.trim().is_empty() || is_comment(first) {
            continue;
        }
        let mut full = String::new();
        let mut cur = first.to_string();
        loop {
            match continued(&cur) {
                Some(cut) => {
                    full.push_str(&cur[..cut]);
                    let mut next = None;
                    while i < lines.len() {
                        let l = lines[i];
                        i += 1;
                        if is_comment(l) || l.trim().is_empty() {
                            continue;
                        }
                        next = Some(l.to_string());
                        break;
                    }
                    match next {
                        Some(n) => cur = n,
                        None => break,
                    }
                }
                None => {
                    full.push_str(&cur);
                    break;
                }
            }
        }
        let full = full.trim().to_string();
        let (word, rest) = match full.split_once(|c: char| c.is_whitespace()) {
            Some((w, r)) => (w, r.trim_start()),
            None => (full.as_str(), ""),
        };
        let keyword = word.to_ascii_uppercase();
        if !KEYWORDS.contains(&keyword.as_str()) {
            return Err(syntax(
                file,
                start,
                format!("unknown instruction: {word}"),
                &full,
            ));
        }
        let (flags, rest) = split_flags(rest);
        let mut heredocs = Vec::new();
        if matches!(keyword.as_str(), "RUN" | "COPY" | "ADD") {
            for (name, strip_tabs, expand) in heredoc_markers(&rest) {
                let mut content = String::new();
                let mut closed = false;
                while i < lines.len() {
                    let l = lines[i];
                    i += 1;
                    let l = if strip_tabs {
                        l.trim_start_matches('\t')
                    } else {
                        l
                    };
                    if l == name {
                        closed = true;
                        break;
                    }
                    content.push_str(l);
                    content.push('\n');
                }
                if !closed {
                    return Err(syntax(
                        file,
                        start,
                        format!("unterminated heredoc {name}"),
                        &full,
                    ));
                }
                heredocs.push(Heredoc {
                    name,
                    content,
                    expand,
                });
            }
        }
        // docker's classic builder takes CMD, ENTRYPOINT and RUN without arguments (the
        // shell alone).
        if rest.is_empty() && !matches!(keyword.as_str(), "CMD" | "ENTRYPOINT" | "RUN") {
            let how = match keyword.as_str() {
                "USER" | "STOPSIGNAL" | "MAINTAINER" | "WORKDIR" => "exactly one argument",
                _ => "at least one argument",
            };
            return Err(syntax(
                file,
                start,
                format!("{keyword} requires {how}"),
                &full,
            ));
        }
        out.push(Instruction {
            line: start,
            keyword,
            flags,
            rest,
            heredocs,
            original: full,
        });
    }
    Ok(Dockerfile {
        escape,
        syntax: syntax_directive,
        instructions: out,
    })
}

/// Splits leading `--flag` words off `rest` (quotes inside a flag value are kept).
pub fn split_flags(rest: &str) -> (Vec<String>, String) {
    let mut flags = Vec::new();
    let mut s = rest.trim_start();
    while s.starts_with("--") {
        let mut end = s.len();
        let mut quote = None;
        for (idx, c) in s.char_indices() {
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None if c == '"' || c == '\'' => quote = Some(c),
                None if c.is_whitespace() => {
                    end = idx;
                    break;
                }
                None => {}
            }
        }
        let word = &s[..end];
        s = s[end..].trim_start();
        if word == "--" {
            break;
        }
        flags.push(word.to_string());
    }
    (flags, s.to_string())
}

/// The heredoc markers among the words of `rest`: (name, strip tabs, expand).
fn heredoc_markers(rest: &str) -> Vec<(String, bool, bool)> {
    let mut out = Vec::new();
    for word in rest.split_whitespace() {
        let Some(m) = word.find("<<") else { continue };
        let mut w = &word[m + 2..];
        if w.starts_with('<') {
            continue;
        }
        let strip = w.starts_with('-');
        if strip {
            w = &w[1..];
        }
        let (name, expand) = if let Some(q) = w.strip_prefix('"').and_then(|x| x.strip_suffix('"'))
        {
            (q, false)
        } else if let Some(q) = w.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')) {
            (q, false)
        } else {
            (w, true)
        };
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        {
            continue;
        }
        out.push((name.to_string(), strip, expand));
    }
    out
}

/// JSON form (`["a", "b"]`) when `rest` is a JSON array of strings.
pub fn json_form(rest: &str) -> Option<Vec<String>> {
    let t = rest.trim();
    if !t.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(t).ok()
}

/// Splits `rest` into words on unquoted whitespace, keeping quotes and escapes (BuildKit's
/// `parseWords`): the words of ENV, LABEL and ARG before their expansion.
pub fn raw_words(rest: &str, escape: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        if c == escape && quote != Some('\'') {
            cur.push(c);
            if let Some(n) = chars.next() {
                cur.push(n);
            }
            continue;
        }
        match quote {
            Some(q) if c == q => {
                quote = None;
                cur.push(c);
            }
            Some(_) => cur.push(c),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                cur.push(c);
            }
            None if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            None => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuations_comments_and_empty_lines() {
        let df = parse(
            "Dockerfile",
            "FROM busybox\n# comment\n\nRUN echo a \\\n# inside\n\n    && echo b\nrun x\r\n",
        )
        .unwrap();
        let ins = &df.instructions;
        assert_eq!(ins.len(), 3);
        assert_eq!(ins[1].keyword, "RUN");
        assert_eq!(ins[1].rest, "echo a     && echo b");
        assert_eq!(ins[1].line, 4);
        assert_eq!(ins[2].keyword, "RUN");
        assert_eq!(ins[2].line, 8);
    }

    #[test]
    fn directives_only_at_the_top() {
        let df = parse(
            "D",
            "# syntax=docker/dockerfile:1\n# escape=`\nFROM x\nRUN a `\n b\n",
        )
        .unwrap();
        assert_eq!(df.escape, '`');
        assert_eq!(df.syntax.as_deref(), Some("docker/dockerfile:1"));
        assert_eq!(df.instructions[1].rest, "a  b");
        let df = parse("D", "FROM x\n# escape=`\nRUN a \\\n b\n").unwrap();
        assert_eq!(df.escape, '\\');
        assert_eq!(df.instructions[1].rest, "a  b");
        let e = parse("D", "# escape=x\nFROM x\n").unwrap_err();
        assert!(e.to_string().contains("D:1"), "{e}");
    }

    #[test]
    fn errors_name_file_line_and_text() {
        let e = parse("sub/Dockerfile", "FROM x\n\nFOO bar\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "sub/Dockerfile:3: unknown instruction: FOO: FOO bar"
        );
        let e = parse("D", "FROM x\nEXPOSE\n").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("D:2: EXPOSE requires at least one argument"),
            "{e}"
        );
    }

    #[test]
    fn flags_and_json() {
        let df = parse(
            "D",
            "FROM x\nCOPY --from=a --chown=\"1 2\" src dst\nCMD [\"a\", \"b c\"]\nCMD [oops\n",
        )
        .unwrap();
        let c = &df.instructions[1];
        assert_eq!(c.flags, vec!["--from=a", "--chown=\"1 2\""]);
        assert_eq!(c.rest, "src dst");
        assert_eq!(
            json_form(&df.instructions[2].rest),
            Some(vec!["a".into(), "b c".into()])
        );
        assert_eq!(json_form(&df.instructions[3].rest), None);
    }

    #[test]
    fn heredocs() {
        let df = parse(
            "D",
            "FROM x\nRUN <<EOF\necho $A\necho b\nEOF\nCOPY <<-\"F1\" <<F2 /dst/\n\thello\n\tF1\nbye\nF2\nRUN true\n",
        )
        .unwrap();
        let ins = &df.instructions;
        assert_eq!(ins.len(), 4);
        assert_eq!(ins[1].heredocs[0].content, "echo $A\necho b\n");
        assert!(ins[1].heredocs[0].expand);
        assert_eq!(ins[2].heredocs.len(), 2);
        assert_eq!(ins[2].heredocs[0].content, "hello\n");
        assert!(!ins[2].heredocs[0].expand);
        assert_eq!(ins[2].heredocs[1].content, "bye\n");
        assert_eq!(ins[3].line, 11);
        assert!(parse("D", "FROM x\nRUN <<EOF\nno end\n").is_err());
    }

    #[test]
    fn raw_words_keep_quotes() {
        assert_eq!(
            raw_words("a=\"b c\" d='e f' g\\ h", '\\'),
            vec!["a=\"b c\"", "d='e f'", "g\\ h"]
        );
    }
}
