//! Variable expansion in Dockerfile words, with BuildKit's shell lexer rules: single quotes
//! are literal, double quotes expand variables but do not split, the escape character (`\`
//! or the `# escape=` directive's) takes the next character literally, and `$VAR` / `${VAR}`
//! take every modifier BuildKit accepts: `:-` `-` `:+` `+` `:?` `?` `#` `##` `%` `%%` `/`
//! `//`. Unset variables expand to nothing.

use super::BuildError;

/// Where variables come from.
pub trait Vars {
    fn get(&self, name: &str) -> Option<String>;
}

impl Vars for Vec<(String, String)> {
    fn get(&self, name: &str) -> Option<String> {
        self.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

impl Vars for std::collections::BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        std::collections::BTreeMap::get(self, name).cloned()
    }
}

/// `vars` with one unset variable seen as set and empty.
struct Unset<'a>(&'a dyn Vars, &'a str);

impl Vars for Unset<'_> {
    fn get(&self, name: &str) -> Option<String> {
        if name == self.1 {
            Some(String::new())
        } else {
            self.0.get(name)
        }
    }
}

/// The word processor for one Dockerfile (its escape character).
#[derive(Debug, Clone, Copy)]
pub struct Lexer {
    pub escape: char,
}

impl Default for Lexer {
    fn default() -> Self {
        Self { escape: '\\' }
    }
}

struct Words {
    out: Vec<String>,
    cur: String,
    started: bool,
    split: bool,
}

impl Words {
    fn raw(&mut self, s: &str) {
        self.cur.push_str(s);
        self.started = true;
    }
    /// Unquoted text: splits on whitespace when splitting words.
    fn text(&mut self, s: &str) {
        for c in s.chars() {
            if self.split && c.is_whitespace() {
                self.end();
            } else {
                self.cur.push(c);
                self.started = true;
            }
        }
    }
    fn end(&mut self) {
        if self.started {
            self.out.push(std::mem::take(&mut self.cur));
            self.started = false;
        }
    }
}

fn err(word: &str, message: impl Into<String>) -> BuildError {
    BuildError::Expand {
        word: word.to_string(),
        message: message.into(),
    }
}

impl Lexer {
    /// Expands one word; quotes are removed, nothing is split.
    pub fn word(&self, word: &str, vars: &dyn Vars) -> Result<String, BuildError> {
        let mut w = self.process(word, vars, false)?;
        Ok(w.pop().unwrap_or_default())
    }

    /// Expands and splits on unquoted whitespace (`EXPOSE`, `VOLUME`, `COPY` shell form).
    pub fn words(&self, word: &str, vars: &dyn Vars) -> Result<Vec<String>, BuildError> {
        self.process(word, vars, true)
    }

    /// The body of a COPY/ADD heredoc with an unquoted delimiter, as BuildKit expands it:
    /// quotes are plain text, `\` (whatever `# escape=` says) takes the next character
    /// literally, and a variable that is not set stays as written (`$1`, `$HOME` of a
    /// script are left for the script).
    pub fn heredoc(text: &str, vars: &dyn Vars) -> Result<String, BuildError> {
        let lex = Lexer { escape: '\\' };
        let chars: Vec<char> = text.chars().collect();
        let mut out = String::new();
        let mut pos = 0;
        while pos < chars.len() {
            let c = chars[pos];
            pos += 1;
            match c {
                '\\' => {
                    if let Some(&n) = chars.get(pos) {
                        out.push(n);
                        pos += 1;
                    }
                }
                '$' => {
                    let start = pos - 1;
                    let mut from = pos + usize::from(chars.get(pos) == Some(&'{'));
                    let name = param_name(&chars, &mut from);
                    if name.is_empty() || vars.get(&name).is_some() {
                        out.push_str(&lex.dollar(text, &chars, &mut pos, vars)?);
                    } else {
                        // Skipped over with the variable set empty, then written as it was.
                        let empty = Unset(vars, &name);
                        lex.dollar(text, &chars, &mut pos, &empty)?;
                        out.extend(&chars[start..pos]);
                    }
                }
                c => out.push(c),
            }
        }
        Ok(out)
    }

    fn process(&self, word: &str, vars: &dyn Vars, split: bool) -> Result<Vec<String>, BuildError> {
        let chars: Vec<char> = word.chars().collect();
        let mut pos = 0;
        let mut w = Words {
            out: Vec::new(),
            cur: String::new(),
            started: !split,
            split,
        };
        self.run(word, &chars, &mut pos, &[], vars, &mut w)?;
        w.end();
        if !split && w.out.is_empty() {
            w.out.push(String::new());
        }
        Ok(w.out)
    }

    /// Processes from `pos` until `stop` (unquoted, unescaped) or the end.
    fn run(
        &self,
        word: &str,
        chars: &[char],
        pos: &mut usize,
        stop: &[char],
        vars: &dyn Vars,
        w: &mut Words,
    ) -> Result<Option<char>, BuildError> {
        while *pos < chars.len() {
            let c = chars[*pos];
            if stop.contains(&c) {
                *pos += 1;
                return Ok(Some(c));
            }
            *pos += 1;
            match c {
                '\'' => {
                    let mut s = String::new();
                    loop {
                        let Some(&n) = chars.get(*pos) else {
                            return Err(err(
                                word,
                                "unexpected end of statement while looking for matching single-quote",
                            ));
                        };
                        *pos += 1;
                        if n == '\'' {
                            break;
                        }
                        s.push(n);
                    }
                    w.raw(&s);
                }
                '"' => {
                    let mut s = String::new();
                    loop {
                        let Some(&n) = chars.get(*pos) else {
                            return Err(err(
                                word,
                                "unexpected end of statement while looking for matching double-quote",
                            ));
                        };
                        *pos += 1;
                        if n == '"' {
                            break;
                        }
                        if n == self.escape {
                            match chars.get(*pos) {
                                Some(&e) if e == '"' || e == '$' || e == self.escape => {
                                    s.push(e);
                                    *pos += 1;
                                }
                                _ => s.push(n),
                            }
                        } else if n == '$' {
                            s.push_str(&self.dollar(word, chars, pos, vars)?);
                        } else {
                            s.push(n);
                        }
                    }
                    w.raw(&s);
                }
                '$' => {
                    let v = self.dollar(word, chars, pos, vars)?;
                    w.text(&v);
                }
                c if c == self.escape => match chars.get(*pos) {
                    Some(&n) => {
                        *pos += 1;
                        w.raw(&n.to_string());
                    }
                    None => w.raw(&c.to_string()),
                },
                c => w.text(&c.to_string()),
            }
        }
        Ok(None)
    }

    /// Expands the text of a `${...}` modifier's word up to the closing brace.
    fn until_brace(
        &self,
        word: &str,
        chars: &[char],
        pos: &mut usize,
        vars: &dyn Vars,
    ) -> Result<String, BuildError> {
        let mut w = Words {
            out: Vec::new(),
            cur: String::new(),
            started: true,
            split: false,
        };
        if self.run(word, chars, pos, &['}'], vars, &mut w)?.is_none() {
            return Err(err(word, "missing '}'"));
        }
        Ok(w.cur)
    }

    /// After a `$`: the variable's value (with its modifier applied), or a literal `$`.
    fn dollar(
        &self,
        word: &str,
        chars: &[char],
        pos: &mut usize,
        vars: &dyn Vars,
    ) -> Result<String, BuildError> {
        match chars.get(*pos) {
            Some('{') => {
                *pos += 1;
                let name = param_name(chars, pos);
                if name.is_empty() {
                    return Err(err(word, "bad substitution: missing variable name"));
                }
                let value = vars.get(&name);
                let Some(&m) = chars.get(*pos) else {
                    return Err(err(word, "missing '}'"));
                };
                *pos += 1;
                match m {
                    '}' => Ok(value.unwrap_or_default()),
                    ':' => {
                        let Some(&op) = chars.get(*pos) else {
                            return Err(err(word, "missing '}'"));
                        };
                        *pos += 1;
                        let arg = self.until_brace(word, chars, pos, vars)?;
                        let set = value.as_deref().is_some_and(|v| !v.is_empty());
                        match op {
                            '-' => Ok(if set { value.unwrap_or_default() } else { arg }),
                            '+' => Ok(if set { arg } else { String::new() }),
                            '?' if set => Ok(value.unwrap_or_default()),
                            '?' => Err(err(word, required(&name, &arg))),
                            _ => Err(err(
                                word,
                                format!("unsupported modifier (:{op}) in substitution"),
                            )),
                        }
                    }
                    '-' | '+' | '?' => {
                        let arg = self.until_brace(word, chars, pos, vars)?;
                        match (m, value) {
                            ('-', Some(v)) => Ok(v),
                            ('-', None) => Ok(arg),
                            ('+', Some(_)) => Ok(arg),
                            ('+', None) => Ok(String::new()),
                            (_, Some(v)) => Ok(v),
                            (_, None) => Err(err(word, required(&name, &arg))),
                        }
                    }
                    '#' | '%' => {
                        let longest = chars.get(*pos) == Some(&m);
                        if longest {
                            *pos += 1;
                        }
                        let pat = self.until_brace(word, chars, pos, vars)?;
                        let v = value.unwrap_or_default();
                        Ok(trim(&v, &pat, m == '#', longest))
                    }
                    '/' => {
                        let all = chars.get(*pos) == Some(&'/');
                        if all {
                            *pos += 1;
                        }
                        let mut w = Words {
                            out: Vec::new(),
                            cur: String::new(),
                            started: true,
                            split: false,
                        };
                        let ended = self.run(word, chars, pos, &['/', '}'], vars, &mut w)?;
                        let pat = w.cur;
                        let repl = match ended {
                            Some('/') => self.until_brace(word, chars, pos, vars)?,
                            // `${V/pat}`: deletes the match.
                            Some(_) => String::new(),
                            None => return Err(err(word, "missing '}'")),
                        };
                        Ok(replace(&value.unwrap_or_default(), &pat, &repl, all))
                    }
                    other => Err(err(
                        word,
                        format!("unsupported modifier ({other}) in substitution"),
                    )),
                }
            }
            _ => {
                let name = param_name(chars, pos);
                if name.is_empty() {
                    Ok("$".to_string())
                } else {
                    Ok(vars.get(&name).unwrap_or_default())
                }
            }
        }
    }
}

/// The parameter name at `pos` (moved past it), as the shell lexer reads one: a run of
/// digits (`$0`, `$12`), one special parameter (`$$` `$@` `$*` `$#` `$?` `$-` `$!`),
/// or letters, digits and `_`; empty when none starts there.
fn param_name(chars: &[char], pos: &mut usize) -> String {
    let start = *pos;
    match chars.get(*pos) {
        Some(c) if c.is_ascii_digit() => {
            while chars.get(*pos).is_some_and(|c| c.is_ascii_digit()) {
                *pos += 1;
            }
        }
        Some('@' | '*' | '#' | '?' | '-' | '$' | '!') => *pos += 1,
        _ => {
            while chars
                .get(*pos)
                .is_some_and(|&c| c.is_alphanumeric() || c == '_')
            {
                *pos += 1;
            }
        }
    }
    chars[start..*pos].iter().collect()
}

fn required(name: &str, msg: &str) -> String {
    if msg.is_empty() {
        format!("{name}: parameter not set or null")
    } else {
        format!("{name}: {msg}")
    }
}

/// `${V#p}` `${V##p}` `${V%p}` `${V%%p}`: removes the shortest/longest prefix/suffix
/// matching shell pattern `pat`.
fn trim(v: &str, pat: &str, prefix: bool, longest: bool) -> String {
    let idx: Vec<usize> = v
        .char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(v.len()))
        .collect();
    let mut cands: Vec<usize> = idx.clone();
    if prefix {
        if longest {
            cands.reverse();
        }
        for i in cands {
            if pattern_match(pat, &v[..i]) {
                return v[i..].to_string();
            }
        }
    } else {
        if !longest {
            cands.reverse();
        }
        for i in cands {
            if pattern_match(pat, &v[i..]) {
                return v[..i].to_string();
            }
        }
    }
    v.to_string()
}

/// `${V/p/r}` and `${V//p/r}`: replaces the first (every) longest match of `pat`.
fn replace(v: &str, pat: &str, repl: &str, all: bool) -> String {
    if pat.is_empty() {
        return v.to_string();
    }
    let idx: Vec<usize> = v
        .char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(v.len()))
        .collect();
    let mut out = String::new();
    let mut k = 0;
    while k < idx.len() {
        let start = idx[k];
        let hit = idx[k + 1..]
            .iter()
            .rev()
            .find(|&&end| pattern_match(pat, &v[start..end]));
        match hit {
            Some(&end) => {
                out.push_str(repl);
                if !all {
                    out.push_str(&v[end..]);
                    return out;
                }
                k = idx.iter().position(|&i| i == end).unwrap_or(idx.len());
            }
            None => {
                if k + 1 < idx.len() {
                    out.push_str(&v[start..idx[k + 1]]);
                }
                k += 1;
            }
        }
    }
    out
}

/// Shell pattern matching (`*`, `?`, `[...]`, `\x`) of a whole string, as the `#`/`%`
/// modifiers use it.
pub fn pattern_match(pat: &str, s: &str) -> bool {
    let p: Vec<char> = pat.chars().collect();
    let t: Vec<char> = s.chars().collect();
    match_at(&p, &t)
}

fn match_at(p: &[char], t: &[char]) -> bool {
    let Some((&c, rest)) = p.split_first() else {
        return t.is_empty();
    };
    match c {
        '*' => (0..=t.len()).any(|i| match_at(rest, &t[i..])),
        '?' => !t.is_empty() && match_at(rest, &t[1..]),
        '[' => {
            let Some(close) = rest.iter().skip(1).position(|&c| c == ']').map(|i| i + 1) else {
                return t.first() == Some(&'[') && match_at(rest, &t[1..]);
            };
            let Some(&ch) = t.first() else { return false };
            let mut class = &rest[..close];
            let negate = matches!(class.first(), Some('!') | Some('^'));
            if negate {
                class = &class[1..];
            }
            let mut hit = false;
            let mut i = 0;
            while i < class.len() {
                if i + 2 < class.len() && class[i + 1] == '-' {
                    hit |= class[i] <= ch && ch <= class[i + 2];
                    i += 3;
                } else {
                    hit |= class[i] == ch;
                    i += 1;
                }
            }
            hit != negate && match_at(&rest[close + 1..], &t[1..])
        }
        '\\' if !rest.is_empty() => t.first() == Some(&rest[0]) && match_at(&rest[1..], &t[1..]),
        c => t.first() == Some(&c) && match_at(rest, &t[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vec<(String, String)> {
        [
            ("A", "apple"),
            ("E", ""),
            ("P", "/usr/local/bin/tool.tar.gz"),
            ("S", "a b  c"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn w(s: &str) -> String {
        Lexer::default().word(s, &vars()).unwrap()
    }

    #[test]
    fn plain_braced_and_missing_variables() {
        assert_eq!(w("$A"), "apple");
        assert_eq!(w("${A}s"), "apples");
        assert_eq!(w("x$NOPE-y"), "x-y");
        assert_eq!(w("$"), "$");
        assert_eq!(w("a$ b"), "a$ b");
        assert_eq!(w("$A$A"), "appleapple");
    }

    #[test]
    fn every_modifier_behaves_as_in_buildkit() {
        assert_eq!(w("${E:-d}"), "d");
        assert_eq!(w("${E-d}"), "");
        assert_eq!(w("${NOPE-d}"), "d");
        assert_eq!(w("${A:-d}"), "apple");
        assert_eq!(w("${A:+set}"), "set");
        assert_eq!(w("${E:+set}"), "");
        assert_eq!(w("${E+set}"), "set");
        assert_eq!(w("${NOPE+set}"), "");
        assert_eq!(w("${A:?boom}"), "apple");
        let e = Lexer::default()
            .word("${E:?is needed}", &vars())
            .unwrap_err();
        assert!(e.to_string().contains("E: is needed"), "{e}");
        assert!(Lexer::default().word("${NOPE?}", &vars()).is_err());
        assert_eq!(w("${E?}"), "");
        assert_eq!(w("${P#*/}"), "usr/local/bin/tool.tar.gz");
        assert_eq!(w("${P##*/}"), "tool.tar.gz");
        assert_eq!(w("${P%.*}"), "/usr/local/bin/tool.tar");
        assert_eq!(w("${P%%.*}"), "/usr/local/bin/tool");
        assert_eq!(w("${A/p/P}"), "aPple");
        assert_eq!(w("${A//p/P}"), "aPPle");
        assert_eq!(w("${A/p*/X}"), "aX");
        assert_eq!(w("${NOPE:-${A}x}"), "applex");
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(w("'$A'"), "$A");
        assert_eq!(w("\"$A b\""), "apple b");
        assert_eq!(w("\\$A"), "$A");
        assert_eq!(w("\"a\\\"b\""), "a\"b");
        assert_eq!(w("\"a\\nb\""), "a\\nb");
        assert_eq!(w("a\\ b"), "a b");
        let bt = Lexer { escape: '`' };
        assert_eq!(bt.word("c:\\dir`$A", &vars()).unwrap(), "c:\\dir$A");
        assert!(Lexer::default().word("'open", &vars()).is_err());
        assert!(Lexer::default().word("${A", &vars()).is_err());
    }

    #[test]
    fn words_split_on_unquoted_whitespace_and_variables() {
        let l = Lexer::default();
        assert_eq!(
            l.words("x \"y z\" $S", &vars()).unwrap(),
            vec!["x", "y z", "a", "b", "c"]
        );
        assert_eq!(l.words("\"$S\"", &vars()).unwrap(), vec!["a b  c"]);
        assert_eq!(l.words("  ", &vars()).unwrap(), Vec::<String>::new());
        assert_eq!(l.words("''", &vars()).unwrap(), vec![""]);
    }

    #[test]
    fn heredoc_bodies_keep_quotes_and_unset_variables() {
        let v = vars();
        let got = Lexer::heredoc(
            "a=$A '${A}' \"$B\" \\$A $1 ${NOPE:-x} $HOME ${A:+set} e=[$E] $\n",
            &v,
        )
        .unwrap();
        assert_eq!(
            got,
            "a=apple 'apple' \"$B\" $A $1 ${NOPE:-x} $HOME set e=[] $\n"
        );
    }

    #[test]
    fn shell_patterns() {
        assert!(pattern_match("*.gz", "a.tar.gz"));
        assert!(pattern_match("a?c", "abc"));
        assert!(pattern_match("[a-c]x", "bx"));
        assert!(!pattern_match("[!a-c]x", "bx"));
        assert!(!pattern_match("a*", "ba"));
    }
}
