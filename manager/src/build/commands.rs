//! Instructions into typed commands (arguments still unexpanded: expansion needs the build
//! state) and the Dockerfile into stages.

use super::parser::{json_form, raw_words, Dockerfile, Heredoc, Instruction};
use super::BuildError;

/// An argument list in JSON (exec) form or as one shell string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Args {
    Json(Vec<String>),
    Shell(String),
}

impl Args {
    fn of(rest: &str) -> Self {
        match json_form(rest) {
            Some(v) => Args::Json(v),
            None => Args::Shell(rest.to_string()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CopyCmd {
    /// ADD (URLs, archives extracted) rather than COPY.
    pub add: bool,
    /// Sources then destination, unexpanded: the words of the shell form or the JSON list.
    pub args: Vec<String>,
    /// JSON form: each element is one word (no splitting).
    pub json: bool,
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    /// `--link`: the layer is made on an empty tree, independent of the parent's.
    pub link: bool,
    /// ADD `--keep-git-dir`: a git checkout keeps its `.git` directory.
    pub keep_git_dir: bool,
    /// ADD `--checksum=sha256:<hex>`: what a downloaded source must hash to.
    pub checksum: Option<String>,
    pub heredocs: Vec<Heredoc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HealthCmd {
    /// `None` for `HEALTHCHECK NONE`.
    pub test: Option<Args>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub start_period: Option<String>,
    pub start_interval: Option<String>,
    pub retries: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    From {
        image: String,
        alias: Option<String>,
        platform: Option<String>,
    },
    Run {
        args: Args,
        mounts: Vec<String>,
        network: Option<String>,
        heredocs: Vec<Heredoc>,
    },
    Copy(CopyCmd),
    Env(Vec<(String, String)>),
    Arg(Vec<(String, Option<String>)>),
    Label(Vec<(String, String)>),
    Workdir(String),
    User(String),
    Cmd(Args),
    Entrypoint(Args),
    Expose(String),
    Volume(Args),
    Shell(Vec<String>),
    StopSignal(String),
    Healthcheck(HealthCmd),
    Onbuild(String),
    Maintainer(String),
}

/// A command with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub line: usize,
    pub original: String,
    pub command: Command,
}

/// One `FROM` and what follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub index: usize,
    /// `FROM` argument, unexpanded.
    pub base: String,
    pub alias: Option<String>,
    pub platform: Option<String>,
    pub from_line: usize,
    pub from_original: String,
    pub steps: Vec<Step>,
}

/// The stages, and the ARGs declared before the first FROM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub escape: char,
    pub global_args: Vec<(String, Option<String>)>,
    pub stages: Vec<Stage>,
}

struct Ctx<'a> {
    file: &'a str,
    ins: &'a Instruction,
}

impl Ctx<'_> {
    fn err(&self, message: impl Into<String>) -> BuildError {
        BuildError::Syntax {
            file: self.file.to_string(),
            line: self.ins.line,
            message: message.into(),
            text: self.ins.original.clone(),
        }
    }

    /// The instruction's flags as (name, value), each checked against `allowed`.
    fn flags(&self, allowed: &[&str]) -> Result<Vec<(String, Option<String>)>, BuildError> {
        let mut out = Vec::new();
        for f in &self.ins.flags {
            let body = &f[2..];
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            if !allowed.contains(&name) {
                return Err(self.err(format!("unknown flag: {name}")));
            }
            out.push((name.to_string(), value));
        }
        Ok(out)
    }
}

fn value_of(flags: &[(String, Option<String>)], name: &str) -> Option<String> {
    flags
        .iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone().unwrap_or_default())
}

fn bool_flag(c: &Ctx, flags: &[(String, Option<String>)], name: &str) -> Result<bool, BuildError> {
    match flags.iter().rev().find(|(n, _)| n == name) {
        None => Ok(false),
        Some((_, None)) => Ok(true),
        Some((_, Some(v))) => match v.as_str() {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err(c.err(format!("expecting boolean value for flag {name}, not: {v}"))),
        },
    }
}

/// `KEY=VALUE ...` pairs (and for ENV/LABEL the old `KEY VALUE` form), quotes kept.
fn key_values(c: &Ctx, escape: char, what: &str) -> Result<Vec<(String, String)>, BuildError> {
    let rest = c.ins.rest.as_str();
    let words = raw_words(rest, escape);
    let Some(first) = words.first() else {
        return Err(c.err(format!("{what} requires at least one argument")));
    };
    if !first.contains('=') {
        // The legacy form: the rest of the line after the key is the value.
        let value = rest.trim_start()[first.len()..].trim().to_string();
        if value.is_empty() {
            return Err(c.err(format!("{what} must have two arguments")));
        }
        return Ok(vec![(first.clone(), value)]);
    }
    let mut out = Vec::new();
    for w in words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(c.err(format!(
                "Syntax error - can't find = in \"{w}\". Must be of the form: name=value"
            )));
        };
        if k.is_empty() {
            return Err(c.err(format!("{what} names can not be blank")));
        }
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

fn command(c: &Ctx, escape: char) -> Result<Command, BuildError> {
    let rest = c.ins.rest.clone();
    let none: &[&str] = &[];
    Ok(match c.ins.keyword.as_str() {
        "FROM" => {
            let flags = c.flags(&["platform"])?;
            let words: Vec<&str> = rest.split_whitespace().collect();
            let alias = match words.as_slice() {
                [_] => None,
                [_, kw, name] if kw.eq_ignore_ascii_case("as") => Some(name.to_ascii_lowercase()),
                _ => return Err(c.err("FROM requires either one or three arguments")),
            };
            Command::From {
                image: words[0].to_string(),
                alias,
                platform: value_of(&flags, "platform"),
            }
        }
        "RUN" => {
            let flags = c.flags(&["mount", "network", "security"])?;
            Command::Run {
                args: Args::of(&rest),
                mounts: flags
                    .iter()
                    .filter(|(n, _)| n == "mount")
                    .map(|(_, v)| v.clone().unwrap_or_default())
                    .collect(),
                network: value_of(&flags, "network"),
                heredocs: c.ins.heredocs.clone(),
            }
        }
        "COPY" | "ADD" => {
            let add = c.ins.keyword == "ADD";
            let allowed: &[&str] = if add {
                &[
                    "chown",
                    "chmod",
                    "link",
                    "keep-git-dir",
                    "checksum",
                    "exclude",
                ]
            } else {
                &["from", "chown", "chmod", "link", "parents", "exclude"]
            };
            let flags = c.flags(allowed)?;
            let (args, json) = match json_form(&rest) {
                Some(v) => (v, true),
                None => (raw_words(&rest, escape), false),
            };
            if args.len() < 2 {
                return Err(c.err(format!("{} requires at least two arguments, but only one was provided. Destination could not be determined", c.ins.keyword)));
            }
            Command::Copy(CopyCmd {
                add,
                args,
                json,
                from: value_of(&flags, "from"),
                chown: value_of(&flags, "chown"),
                chmod: value_of(&flags, "chmod"),
                link: bool_flag(c, &flags, "link")?,
                keep_git_dir: bool_flag(c, &flags, "keep-git-dir")?,
                checksum: value_of(&flags, "checksum"),
                heredocs: c.ins.heredocs.clone(),
            })
        }
        "ENV" => {
            c.flags(none)?;
            Command::Env(key_values(c, escape, "ENV")?)
        }
        "LABEL" => {
            c.flags(none)?;
            Command::Label(key_values(c, escape, "LABEL")?)
        }
        "ARG" => {
            c.flags(none)?;
            let mut out = Vec::new();
            for w in raw_words(&rest, escape) {
                match w.split_once('=') {
                    Some((k, v)) => out.push((k.to_string(), Some(v.to_string()))),
                    None => out.push((w, None)),
                }
            }
            for (k, _) in &out {
                if k.is_empty() {
                    return Err(c.err("ARG names can not be blank"));
                }
            }
            Command::Arg(out)
        }
        "WORKDIR" => Command::Workdir(rest),
        "USER" => Command::User(rest),
        "CMD" => Command::Cmd(Args::of(&rest)),
        "ENTRYPOINT" => Command::Entrypoint(Args::of(&rest)),
        "EXPOSE" => Command::Expose(rest),
        "VOLUME" => Command::Volume(Args::of(&rest)),
        "SHELL" => match json_form(&rest) {
            Some(v) if !v.is_empty() => Command::Shell(v),
            _ => return Err(c.err("SHELL requires the arguments to be in JSON form")),
        },
        "STOPSIGNAL" => Command::StopSignal(rest),
        "MAINTAINER" => Command::Maintainer(rest),
        "ONBUILD" => {
            let (word, _) = rest.split_once(char::is_whitespace).unwrap_or((&rest, ""));
            match word.to_ascii_uppercase().as_str() {
                "ONBUILD" => {
                    return Err(c.err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"))
                }
                "FROM" | "MAINTAINER" => {
                    return Err(c.err(format!(
                        "{} isn't allowed as an ONBUILD trigger",
                        word.to_ascii_uppercase()
                    )))
                }
                _ => {}
            }
            Command::Onbuild(rest)
        }
        "HEALTHCHECK" => {
            let flags = c.flags(&[
                "interval",
                "timeout",
                "start-period",
                "start-interval",
                "retries",
            ])?;
            let (word, args) = rest.split_once(char::is_whitespace).unwrap_or((&rest, ""));
            let test = match word.to_ascii_uppercase().as_str() {
                "NONE" if args.trim().is_empty() && flags.is_empty() => None,
                "NONE" => return Err(c.err("HEALTHCHECK NONE takes no arguments")),
                "CMD" if !args.trim().is_empty() => Some(Args::of(args.trim())),
                _ => return Err(c.err("HEALTHCHECK requires NONE or CMD and a command")),
            };
            Command::Healthcheck(HealthCmd {
                test,
                interval: value_of(&flags, "interval"),
                timeout: value_of(&flags, "timeout"),
                start_period: value_of(&flags, "start-period"),
                start_interval: value_of(&flags, "start-interval"),
                retries: value_of(&flags, "retries"),
            })
        }
        other => return Err(c.err(format!("unknown instruction: {other}"))),
    })
}

/// Parses one instruction line (an ONBUILD trigger) into a step.
pub fn parse_trigger(file: &str, text: &str, escape: char) -> Result<Step, BuildError> {
    let df = super::parser::parse(file, text)?;
    let Some(ins) = df.instructions.into_iter().next() else {
        return Err(BuildError::Syntax {
            file: file.into(),
            line: 1,
            message: "empty ONBUILD trigger".into(),
            text: text.into(),
        });
    };
    let c = Ctx { file, ins: &ins };
    Ok(Step {
        line: ins.line,
        original: ins.original.clone(),
        command: command(&c, escape)?,
    })
}

/// The Dockerfile into stages; `file` names it in errors.
pub fn plan(file: &str, df: &Dockerfile) -> Result<Plan, BuildError> {
    let mut global_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for ins in &df.instructions {
        let c = Ctx { file, ins };
        let cmd = command(&c, df.escape)?;
        match cmd {
            Command::From {
                image,
                alias,
                platform,
            } => {
                if let Some(a) = &alias {
                    let mut chars = a.chars();
                    let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase())
                        && chars.all(|c| {
                            c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c)
                        });
                    if !valid {
                        return Err(c.err(format!(
                            "invalid name for build stage: {a:?}, name can't start with a number or contain symbols"
                        )));
                    }
                    if stages.iter().any(|s| s.alias.as_deref() == Some(a)) {
                        return Err(c.err(format!("duplicate name {a}")));
                    }
                }
                stages.push(Stage {
                    index: stages.len(),
                    base: image,
                    alias,
                    platform,
                    from_line: ins.line,
                    from_original: ins.original.clone(),
                    steps: Vec::new(),
                });
            }
            Command::Arg(args) if stages.is_empty() => global_args.extend(args),
            other => match stages.last_mut() {
                Some(s) => s.steps.push(Step {
                    line: ins.line,
                    original: ins.original.clone(),
                    command: other,
                }),
                None => {
                    return Err(c.err(format!(
                        "{} before the first FROM (only ARG may come first)",
                        ins.keyword
                    )))
                }
            },
        }
    }
    if stages.is_empty() {
        return Err(BuildError::Syntax {
            file: file.to_string(),
            line: df.instructions.last().map_or(1, |i| i.line),
            message: "file with no instructions".into(),
            text: String::new(),
        });
    }
    Ok(Plan {
        escape: df.escape,
        global_args,
        stages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::parser::parse;

    fn plan_of(s: &str) -> Result<Plan, BuildError> {
        plan("Dockerfile", &parse("Dockerfile", s)?)
    }

    #[test]
    fn stages_global_args_and_commands() {
        let p = plan_of(
            "ARG V=1\nFROM busybox:$V AS Base\nENV A=1 B=\"x y\"\nENV C d e\nLABEL k=v\nFROM base\nCOPY --from=base --chown=1:2 a b /d/\nHEALTHCHECK --interval=5s CMD [\"true\"]\nONBUILD RUN x\n",
        )
        .unwrap();
        assert_eq!(
            p.global_args,
            vec![("V".to_string(), Some("1".to_string()))]
        );
        assert_eq!(p.stages.len(), 2);
        assert_eq!(p.stages[0].alias.as_deref(), Some("base"));
        assert_eq!(
            p.stages[0].steps[0].command,
            Command::Env(vec![
                ("A".into(), "1".into()),
                ("B".into(), "\"x y\"".into())
            ])
        );
        assert_eq!(
            p.stages[0].steps[1].command,
            Command::Env(vec![("C".into(), "d e".into())])
        );
        let Command::Copy(c) = &p.stages[1].steps[0].command else {
            panic!()
        };
        assert_eq!(c.args, vec!["a", "b", "/d/"]);
        assert_eq!(c.from.as_deref(), Some("base"));
        assert_eq!(c.chown.as_deref(), Some("1:2"));
        assert!(!c.link && !c.keep_git_dir);
        let Command::Healthcheck(h) = &p.stages[1].steps[1].command else {
            panic!()
        };
        assert_eq!(h.interval.as_deref(), Some("5s"));
        assert_eq!(h.test, Some(Args::Json(vec!["true".into()])));
    }

    #[test]
    fn bad_input_names_the_line() {
        let e = plan_of("FROM x\nCOPY --nope=1 a b\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Dockerfile:2: unknown flag: nope: COPY --nope=1 a b"
        );
        let e = plan_of("RUN x\n").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("Dockerfile:1: RUN before the first FROM"),
            "{e}"
        );
        let e = plan_of("FROM x\nENV =1\n").unwrap_err();
        assert!(e.to_string().contains("Dockerfile:2"), "{e}");
        let e = plan_of("FROM x\nCOPY a\n").unwrap_err();
        assert!(
            e.to_string()
                .contains("Dockerfile:2: COPY requires at least two"),
            "{e}"
        );
        let e = plan_of("FROM a AS x\nFROM b AS X\n").unwrap_err();
        assert!(e.to_string().contains("duplicate name x"), "{e}");
        assert!(plan_of("FROM x y\n").is_err());
        assert!(plan_of("FROM x\nSHELL sh -c\n").is_err());
        assert!(plan_of("FROM x\nONBUILD ONBUILD RUN x\n").is_err());
        let e = plan_of("FROM x\nADD --keep-git-dir=maybe git://h/r.git /d\n").unwrap_err();
        assert!(
            e.to_string()
                .contains("expecting boolean value for flag keep-git-dir"),
            "{e}"
        );
        let p = plan_of("FROM x\nADD --link --keep-git-dir=true git://h/r.git /d\n").unwrap();
        let Command::Copy(c) = &p.stages[0].steps[0].command else {
            panic!()
        };
        assert!(c.link && c.keep_git_dir);
    }
}
