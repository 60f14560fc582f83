//! Lexing and parsing of Go template text into a tree.

use super::{Result, TemplateError};

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Node {
    Text(String),
    Action(Pipeline),
    If {
        pipe: Pipeline,
        then: Vec<Node>,
        otherwise: Vec<Node>,
    },
    Range {
        pipe: Pipeline,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
    With {
        pipe: Pipeline,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
}

/// `$a, $b := cmd | cmd`, with the action's text for error messages.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Pipeline {
    pub text: String,
    pub decl: Vec<String>,
    /// `=` (assign to an existing variable) rather than `:=`.
    pub assign: bool,
    pub cmds: Vec<Vec<Arg>>,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Arg {
    /// `.` followed by zero or more fields.
    Dot(Vec<String>),
    /// `$name.Field...` (`$` alone is the root data).
    Var(String, Vec<String>),
    Str(String),
    Num(serde_json::Number),
    Bool(bool),
    Nil,
    Func(String),
    /// `(pipeline).Field...`
    Sub(Box<Pipeline>, Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// `.A.B` (adjacent parts).
    Field(Vec<String>),
    /// `.A.B` right after `)`: fields of the parenthesized value.
    Chain(Vec<String>),
    Dot,
    Var(String, Vec<String>),
    Str(String),
    Num(serde_json::Number),
    Ident(String),
    Pipe,
    LParen,
    RParen,
    Declare,
    Assign,
    Comma,
}

fn err(message: impl Into<String>) -> TemplateError {
    TemplateError::Parse {
        message: message.into(),
    }
}

/// Splits text into literal text and actions, applying `{{-` / `-}}` trimming.
enum Piece {
    Text(String),
    Action(String),
}

fn split(text: &str) -> Result<Vec<Piece>> {
    let mut pieces = Vec::new();
    let mut rest = text;
    let mut trim_next = false;
    while let Some(start) = rest.find("{{") {
        let mut lit = &rest[..start];
        if trim_next {
            lit = lit.trim_start();
        }
        let mut inner = &rest[start + 2..];
        // "{{- " trims the text before; the space is required (Go: "{{-3}}" is a number).
        if inner.starts_with("- ") || inner.starts_with("-\t") || inner.starts_with("-\n") {
            lit = lit.trim_end();
            inner = &inner[1..];
        }
        if !lit.is_empty() {
            pieces.push(Piece::Text(lit.to_string()));
        }
        let end = find_close(inner).ok_or_else(|| err("unclosed action"))?;
        let mut body = &inner[..end];
        trim_next = false;
        if body.ends_with(" -") || body.ends_with("\t-") || body.ends_with("\n-") {
            body = &body[..body.len() - 1];
            trim_next = true;
        }
        pieces.push(Piece::Action(body.to_string()));
        rest = &inner[end + 2..];
    }
    let lit = if trim_next { rest.trim_start() } else { rest };
    if !lit.is_empty() {
        pieces.push(Piece::Text(lit.to_string()));
    }
    Ok(pieces)
}

/// The offset of the `}}` closing an action, skipping quoted strings.
fn find_close(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'`' => {
                i += 1;
                while i < b.len() && b[i] != b'`' {
                    i += 1;
                }
            }
            b'}' if b.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn lex(action: &str) -> Result<Vec<Tok>> {
    let chars: Vec<char> = action.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    let word = |i: &mut usize| {
        let start = *i;
        while *i < chars.len() && is_ident(chars[*i]) {
            *i += 1;
        }
        chars[start..*i].iter().collect::<String>()
    };
    // `.A.B`: only adjacent parts chain (`.A .B` is two operands).
    let chain = |i: &mut usize| {
        let mut parts = Vec::new();
        while chars.get(*i) == Some(&'.')
            && chars
                .get(*i + 1)
                .is_some_and(|c| is_ident(*c) && !c.is_ascii_digit())
        {
            *i += 1;
            parts.push(word(i));
        }
        parts
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '|' => {
                toks.push(Tok::Pipe);
                i += 1;
            }
            '(' => {
                toks.push(Tok::LParen);
                i += 1;
            }
            ')' => {
                toks.push(Tok::RParen);
                i += 1;
            }
            ',' => {
                toks.push(Tok::Comma);
                i += 1;
            }
            '=' => {
                toks.push(Tok::Assign);
                i += 1;
            }
            ':' if chars.get(i + 1) == Some(&'=') => {
                toks.push(Tok::Declare);
                i += 2;
            }
            '.' if chars
                .get(i + 1)
                .is_some_and(|c| is_ident(*c) && !c.is_ascii_digit()) =>
            {
                let after_paren = i > 0 && chars[i - 1] == ')';
                let parts = chain(&mut i);
                toks.push(if after_paren {
                    Tok::Chain(parts)
                } else {
                    Tok::Field(parts)
                });
            }
            '.' => {
                toks.push(Tok::Dot);
                i += 1;
            }
            '$' => {
                i += 1;
                let name = format!("${}", word(&mut i));
                toks.push(Tok::Var(name, chain(&mut i)));
            }
            '"' => {
                i += 1;
                let mut s = String::new();
                loop {
                    let Some(&c) = chars.get(i) else {
                        return Err(err(format!("unterminated quoted string in {action:?}")));
                    };
                    i += 1;
                    match c {
                        '"' => break,
                        '\\' => {
                            let e = chars.get(i).copied().unwrap_or('\\');
                            i += 1;
                            match e {
                                'n' => s.push('\n'),
                                't' => s.push('\t'),
                                'r' => s.push('\r'),
                                '0' => s.push('\0'),
                                '\\' | '"' | '\'' => s.push(e),
                                'x' | 'u' | 'U' => {
                                    let len = match e {
                                        'x' => 2,
                                        'u' => 4,
                                        _ => 8,
                                    };
                                    let hex: String = chars.iter().skip(i).take(len).collect();
                                    i += len;
                                    let ch = u32::from_str_radix(&hex, 16)
                                        .ok()
                                        .and_then(char::from_u32)
                                        .ok_or_else(|| err(format!("invalid escape \\{e}{hex}")))?;
                                    s.push(ch);
                                }
                                other => {
                                    return Err(err(format!("unknown escape sequence \\{other}")))
                                }
                            }
                        }
                        c => s.push(c),
                    }
                }
                toks.push(Tok::Str(s));
            }
            '`' => {
                i += 1;
                let start = i;
                while i < chars.len() && chars[i] != '`' {
                    i += 1;
                }
                if i == chars.len() {
                    return Err(err(format!("unterminated raw quoted string in {action:?}")));
                }
                toks.push(Tok::Str(chars[start..i].iter().collect()));
                i += 1;
            }
            c if c.is_ascii_digit()
                || (c == '-' || c == '+') && chars.get(i + 1).is_some_and(char::is_ascii_digit) =>
            {
                let start = i;
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                let num = parse_number(&text)
                    .ok_or_else(|| err(format!("bad number syntax: {text:?}")))?;
                toks.push(Tok::Num(num));
            }
            c if is_ident(c) => toks.push(Tok::Ident(word(&mut i))),
            other => return Err(err(format!("unexpected {other:?} in command"))),
        }
    }
    Ok(toks)
}

fn parse_number(text: &str) -> Option<serde_json::Number> {
    let t = text.strip_prefix('+').unwrap_or(text);
    if let Ok(i) = t.parse::<i64>() {
        return Some(i.into());
    }
    if let Some(hex) = t.strip_prefix("0x") {
        return i64::from_str_radix(hex, 16).ok().map(Into::into);
    }
    t.parse::<f64>().ok().and_then(serde_json::Number::from_f64)
}

/// Parses template text into a tree.
pub(super) fn parse(text: &str) -> Result<Vec<Node>> {
    let pieces = split(text)?;
    let mut p = Parser { pieces, pos: 0 };
    let (nodes, end) = p.list()?;
    match end {
        Stop::Eof => Ok(nodes),
        Stop::EndAction => Err(err("unexpected {{end}}")),
        Stop::Else(_) => Err(err("unexpected {{else}}")),
    }
}

/// What ended a list of nodes.
enum Stop {
    Eof,
    EndAction,
    /// `{{else}}` (empty) or `{{else if ...}}` / `{{else with ...}}` (the rest of the action).
    Else(String),
}

struct Parser {
    pieces: Vec<Piece>,
    pos: usize,
}

impl Parser {
    fn list(&mut self) -> Result<(Vec<Node>, Stop)> {
        let mut nodes = Vec::new();
        while self.pos < self.pieces.len() {
            let piece = &self.pieces[self.pos];
            self.pos += 1;
            let action = match piece {
                Piece::Text(t) => {
                    nodes.push(Node::Text(t.clone()));
                    continue;
                }
                Piece::Action(a) => a.trim().to_string(),
            };
            if action.starts_with("/*") {
                if !action.ends_with("*/") {
                    return Err(err("unclosed comment"));
                }
                continue;
            }
            let (keyword, rest) = split_keyword(&action);
            match keyword {
                "end" if rest.is_empty() => return Ok((nodes, Stop::EndAction)),
                "else" => return Ok((nodes, Stop::Else(rest.to_string()))),
                "if" | "range" | "with" => nodes.push(self.control(keyword, rest)?),
                "define" | "template" | "block" | "break" | "continue" => {
                    return Err(err(format!("{{{{{keyword}}}}} is not supported")))
                }
                _ => nodes.push(Node::Action(pipeline(&action)?)),
            }
        }
        Ok((nodes, Stop::Eof))
    }

    fn control(&mut self, keyword: &str, rest: &str) -> Result<Node> {
        if rest.is_empty() {
            return Err(err(format!("missing value for {keyword}")));
        }
        let pipe = pipeline(rest)?;
        let (body, end) = self.list()?;
        let otherwise = match end {
            Stop::Eof => {
                return Err(err(format!(
                    "unexpected EOF: {{{{{keyword}}}}} without {{{{end}}}}"
                )))
            }
            Stop::EndAction => Vec::new(),
            Stop::Else(tail) if tail.is_empty() => {
                let (otherwise, end) = self.list()?;
                match end {
                    Stop::EndAction => otherwise,
                    Stop::Eof => return Err(err("unexpected EOF: {{else}} without {{end}}")),
                    Stop::Else(_) => return Err(err("expected {{end}}, found {{else}}")),
                }
            }
            Stop::Else(tail) => {
                // `{{else if x}}` is `{{else}}{{if x}}...{{end}}` sharing the outer {{end}}.
                let (kw, inner) = split_keyword(&tail);
                if kw != "if" && kw != "with" {
                    return Err(err(format!("unexpected {tail:?} after else")));
                }
                vec![self.control(kw, inner)?]
            }
        };
        Ok(match keyword {
            "if" => Node::If {
                pipe,
                then: body,
                otherwise,
            },
            "range" => Node::Range {
                pipe,
                body,
                otherwise,
            },
            _ => Node::With {
                pipe,
                body,
                otherwise,
            },
        })
    }
}

fn split_keyword(action: &str) -> (&str, &str) {
    match action.find(|c: char| c.is_whitespace()) {
        Some(i) => (&action[..i], action[i..].trim()),
        None => (action, ""),
    }
}

fn pipeline(text: &str) -> Result<Pipeline> {
    let toks = lex(text)?;
    let mut pos = 0;
    let pipe = parse_pipeline(text, &toks, &mut pos, true)?;
    if pos != toks.len() {
        return Err(err(format!("unexpected {:?} in {text:?}", toks[pos])));
    }
    Ok(pipe)
}

fn parse_pipeline(text: &str, toks: &[Tok], pos: &mut usize, top: bool) -> Result<Pipeline> {
    let mut decl = Vec::new();
    let mut assign = false;
    // `$x :=`, `$i, $v :=` or `$x =` at the start.
    let mut look = *pos;
    let mut vars = Vec::new();
    while let Some(Tok::Var(v, f)) = toks.get(look) {
        if !f.is_empty() {
            break;
        }
        vars.push(v.clone());
        look += 1;
        if toks.get(look) == Some(&Tok::Comma) && vars.len() < 2 {
            look += 1;
            continue;
        }
        break;
    }
    if !vars.is_empty() {
        match toks.get(look) {
            Some(Tok::Declare) => {
                decl = vars;
                *pos = look + 1;
            }
            Some(Tok::Assign) => {
                decl = vars;
                assign = true;
                *pos = look + 1;
            }
            _ => {}
        }
    }
    let mut cmds = Vec::new();
    let mut cmd = Vec::new();
    loop {
        match toks.get(*pos) {
            None => break,
            Some(Tok::RParen) if !top => break,
            Some(Tok::Pipe) => {
                *pos += 1;
                if cmd.is_empty() {
                    return Err(err(format!("missing command before | in {text:?}")));
                }
                cmds.push(std::mem::take(&mut cmd));
            }
            Some(_) => cmd.push(operand(text, toks, pos)?),
        }
    }
    if cmd.is_empty() {
        return Err(err(format!("missing command in {text:?}")));
    }
    cmds.push(cmd);
    Ok(Pipeline {
        text: text.to_string(),
        decl,
        assign,
        cmds,
    })
}

fn chained(toks: &[Tok], pos: &mut usize) -> Vec<String> {
    match toks.get(*pos) {
        Some(Tok::Chain(c)) => {
            *pos += 1;
            c.clone()
        }
        _ => Vec::new(),
    }
}

fn operand(text: &str, toks: &[Tok], pos: &mut usize) -> Result<Arg> {
    let tok = toks[*pos].clone();
    *pos += 1;
    Ok(match tok {
        Tok::Dot => Arg::Dot(Vec::new()),
        Tok::Field(chain) => Arg::Dot(chain),
        Tok::Var(v, chain) => Arg::Var(v, chain),
        Tok::Str(s) => Arg::Str(s),
        Tok::Num(n) => Arg::Num(n),
        Tok::Ident(id) => match id.as_str() {
            "true" => Arg::Bool(true),
            "false" => Arg::Bool(false),
            "nil" => Arg::Nil,
            _ if super::funcs::NAMES.contains(&id.as_str()) => Arg::Func(id),
            _ => return Err(err(format!("function {id:?} not defined"))),
        },
        Tok::LParen => {
            let inner = parse_pipeline(text, toks, pos, false)?;
            if toks.get(*pos) != Some(&Tok::RParen) {
                return Err(err(format!("unclosed left paren in {text:?}")));
            }
            *pos += 1;
            Arg::Sub(Box::new(inner), chained(toks, pos))
        }
        other => return Err(err(format!("unexpected {other:?} in operand of {text:?}"))),
    })
}
