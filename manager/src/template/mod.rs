//! Docker-style `--format` values: `table` (the command's default table), `table TEMPLATE`
//! (a header row from the field names, columns aligned like docker's tabwriter), `json` (one
//! object per line) and Go text/template syntax evaluated over JSON values.
//!
//! Why not a crate: the one Rust implementation of Go templates (gtmpl) has had no release
//! since 2021, evaluates over its own value type rather than `serde_json::Value`, and prints
//! maps and numbers differently from Go; docker's output depends on those details. The subset
//! here is what docker users write: field chains, variables, pipelines, parentheses, `if` /
//! `else if` / `else`, `range` (with `else` and `$i, $v :=`), `with`, comments, trim markers,
//! Go's builtins (`and or not len index slice print printf println eq ne lt le gt ge`) and
//! docker's (`json join split lower upper title pad truncate`).

mod exec;
mod funcs;
mod parse;
mod print;
mod tabwriter;

use serde_json::Value;

pub use tabwriter::align_tabs;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("template parsing error: {message}")]
    Parse { message: String },
    #[error("template: executing {action:?}: {message}")]
    Exec { action: String, message: String },
}

type Result<T, E = TemplateError> = std::result::Result<T, E>;

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    source: String,
    nodes: Vec<parse::Node>,
}

impl Template {
    /// Parses Go text/template syntax.
    pub fn parse(text: &str) -> Result<Self> {
        Ok(Self {
            source: text.to_string(),
            nodes: parse::parse(text)?,
        })
    }

    /// Executes the template with `data` as dot.
    pub fn render(&self, data: &Value) -> Result<String> {
        exec::render(&self.nodes, data, None)
    }

    /// Executes the template in header mode: every field chain yields `header(last field)`.
    pub fn render_header(&self, header: &dyn Fn(&str) -> String) -> Result<String> {
        exec::render(&self.nodes, &Value::Null, Some(header))
    }

    /// The text the template was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }
}

/// A `--format` value.
#[derive(Debug, Clone)]
pub enum Format {
    /// `table` or `table TEMPLATE`: a header row, then one row per item, aligned.
    Table(Template),
    /// `json`: each item as one line of JSON.
    Json,
    /// Any other template: executed per item, each followed by a newline.
    Raw(Template),
}

impl Format {
    /// Parses `value` as given to `--format`; `default_table` is the command's own table
    /// template (e.g. `table {{.Repository}}\t{{.Tag}}`), used for an empty value or
    /// `table`. As docker, a literal `\t` or `\n` (two characters, as shells pass them in
    /// double quotes) stands for a tab or newline.
    pub fn parse(value: &str, default_table: &str) -> Result<Self> {
        let value = if value.is_empty() || value == "table" {
            default_table
        } else {
            value
        };
        if value == "json" {
            return Ok(Format::Json);
        }
        let (table, body) = match value.strip_prefix("table") {
            Some(rest) if rest.is_empty() || rest.starts_with(char::is_whitespace) => (true, rest),
            _ => (false, value),
        };
        let body = if table { body.trim_matches(' ') } else { body };
        let body = body.replace("\\t", "\t").replace("\\n", "\n");
        let tmpl = Template::parse(&body)?;
        Ok(if table {
            Format::Table(tmpl)
        } else {
            Format::Raw(tmpl)
        })
    }

    pub fn is_table(&self) -> bool {
        matches!(self, Format::Table(_))
    }

    /// Formats `rows`; `header` names the column of a field in table mode (see
    /// [`default_header`]).
    pub fn render(&self, rows: &[Value], header: &dyn Fn(&str) -> String) -> Result<String> {
        let mut out = String::new();
        match self {
            Format::Json => {
                for r in rows {
                    out.push_str(&funcs::to_json(r));
                    out.push('\n');
                }
            }
            Format::Raw(t) => {
                for r in rows {
                    out.push_str(&t.render(r)?);
                    out.push('\n');
                }
            }
            Format::Table(t) => {
                let mut text = t.render_header(header)?;
                text.push('\n');
                for r in rows {
                    text.push_str(&t.render(r)?);
                    text.push('\n');
                }
                out = align_tabs(&text);
            }
        }
        Ok(out)
    }
}

/// A column title for `field` as docker spells them: known names (`ID`), otherwise the
/// CamelCase field split into upper-case words (`CreatedSince` → `CREATED SINCE`).
pub fn default_header(field: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = field.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let boundary = i > 0
            && c.is_uppercase()
            && (chars[i - 1].is_lowercase()
                || chars.get(i + 1).is_some_and(|n| n.is_lowercase())
                    && chars[i - 1].is_uppercase());
        if boundary {
            out.push(' ');
        }
        out.extend(c.to_uppercase());
    }
    out
}

#[cfg(test)]
mod oracle_tests;
#[cfg(test)]
mod tests;
