//! Executing a parsed template over a JSON value.

use serde_json::Value;

use super::funcs::{self, truth};
use super::parse::{Arg, Node, Pipeline};
use super::print::{go_type, print_value};
use super::{Result, TemplateError};

type Header<'a> = Option<&'a dyn Fn(&str) -> String>;

pub(super) fn render(nodes: &[Node], data: &Value, header: Header<'_>) -> Result<String> {
    let mut st = State {
        root: data,
        vars: Vec::new(),
        header,
        out: String::new(),
    };
    st.walk(nodes, data)?;
    Ok(st.out)
}

struct State<'a> {
    root: &'a Value,
    vars: Vec<(String, Value)>,
    header: Header<'a>,
    out: String,
}

fn exec_err(pipe: &Pipeline, message: impl Into<String>) -> TemplateError {
    TemplateError::Exec {
        action: pipe.text.clone(),
        message: message.into(),
    }
}

impl State<'_> {
    fn walk(&mut self, nodes: &[Node], dot: &Value) -> Result<()> {
        for node in nodes {
            // Variables declared inside a block end with it.
            let scope = self.vars.len();
            match node {
                Node::Text(t) => self.out.push_str(t),
                Node::Action(pipe) => match self.pipeline(pipe, dot) {
                    Ok(v) => {
                        if pipe.decl.is_empty() {
                            self.out.push_str(&print_value(&v));
                        }
                        continue; // a declaration lives to the end of the enclosing block
                    }
                    // A header row has no data: whatever cannot be computed from the
                    // column names prints nothing.
                    Err(_) if self.header.is_some() => {}
                    Err(e) => return Err(e),
                },
                Node::If {
                    pipe,
                    then,
                    otherwise,
                } => {
                    let v = self.pipeline(pipe, dot)?;
                    self.walk(if truth(&v) { then } else { otherwise }, dot)?;
                }
                Node::With {
                    pipe,
                    body,
                    otherwise,
                } => {
                    let v = self.pipeline(pipe, dot)?;
                    if truth(&v) {
                        self.walk(body, &v)?;
                    } else {
                        self.walk(otherwise, dot)?;
                    }
                }
                Node::Range {
                    pipe,
                    body,
                    otherwise,
                } => self.range(pipe, body, otherwise, dot)?,
            }
            self.vars.truncate(scope);
        }
        Ok(())
    }

    fn range(
        &mut self,
        pipe: &Pipeline,
        body: &[Node],
        otherwise: &[Node],
        dot: &Value,
    ) -> Result<()> {
        let v = self.commands(pipe, dot)?;
        let items: Vec<(Value, Value)> = match v {
            Value::Array(a) => a
                .into_iter()
                .enumerate()
                .map(|(i, e)| (Value::from(i), e))
                .collect(),
            Value::Object(m) => {
                let mut keys: Vec<(String, Value)> = m.into_iter().collect();
                keys.sort_by(|a, b| a.0.cmp(&b.0));
                keys.into_iter()
                    .map(|(k, v)| (Value::String(k), v))
                    .collect()
            }
            Value::Null => Vec::new(),
            Value::Number(n) if n.as_u64().is_some() => (0..n.as_u64().unwrap_or(0))
                .map(|i| (Value::from(i), Value::from(i)))
                .collect(),
            other => {
                return Err(exec_err(
                    pipe,
                    format!("range can't iterate over {}", print_value(&other)),
                ))
            }
        };
        if items.is_empty() {
            return self.walk(otherwise, dot);
        }
        for (key, elem) in items {
            let scope = self.vars.len();
            match pipe.decl.as_slice() {
                [v] => self.vars.push((v.clone(), elem.clone())),
                [k, v] => {
                    self.vars.push((k.clone(), key));
                    self.vars.push((v.clone(), elem.clone()));
                }
                _ => {}
            }
            self.walk(body, &elem)?;
            self.vars.truncate(scope);
        }
        Ok(())
    }

    /// Evaluates a pipeline and performs its declaration or assignment.
    fn pipeline(&mut self, pipe: &Pipeline, dot: &Value) -> Result<Value> {
        let v = self.commands(pipe, dot)?;
        if let Some(name) = pipe.decl.first() {
            if pipe.assign {
                let slot = self
                    .vars
                    .iter_mut()
                    .rev()
                    .find(|(n, _)| n == name)
                    .ok_or_else(|| exec_err(pipe, format!("undefined variable: {name}")))?;
                slot.1 = v.clone();
            } else {
                self.vars.push((name.clone(), v.clone()));
            }
        }
        Ok(v)
    }

    fn commands(&mut self, pipe: &Pipeline, dot: &Value) -> Result<Value> {
        let mut prev: Option<Value> = None;
        for cmd in &pipe.cmds {
            prev = Some(self.command(pipe, cmd, dot, prev)?);
        }
        Ok(prev.unwrap_or(Value::Null))
    }

    fn command(
        &mut self,
        pipe: &Pipeline,
        cmd: &[Arg],
        dot: &Value,
        piped: Option<Value>,
    ) -> Result<Value> {
        match cmd.first() {
            Some(Arg::Func(name)) => {
                let mut args = Vec::with_capacity(cmd.len());
                for a in &cmd[1..] {
                    args.push(self.arg(pipe, a, dot)?);
                }
                args.extend(piped);
                funcs::call(name, args)
                    .map_err(|m| exec_err(pipe, format!("error calling {name}: {m}")))
            }
            Some(first) => {
                if cmd.len() > 1 || piped.is_some() {
                    return Err(exec_err(pipe, "can't give argument to non-function"));
                }
                self.arg(pipe, first, dot)
            }
            None => Err(exec_err(pipe, "empty command")),
        }
    }

    fn arg(&mut self, pipe: &Pipeline, arg: &Arg, dot: &Value) -> Result<Value> {
        match arg {
            Arg::Dot(chain) => self.fields(pipe, dot, chain),
            Arg::Var(name, chain) => {
                let base = if name == "$" {
                    self.root
                } else {
                    self.vars
                        .iter()
                        .rev()
                        .find(|(n, _)| n == name)
                        .map(|(_, v)| v)
                        .ok_or_else(|| exec_err(pipe, format!("undefined variable: {name}")))?
                };
                self.fields(pipe, base, chain)
            }
            Arg::Str(s) => Ok(Value::String(s.clone())),
            Arg::Num(n) => Ok(Value::Number(n.clone())),
            Arg::Bool(b) => Ok(Value::Bool(*b)),
            Arg::Nil => Ok(Value::Null),
            Arg::Func(name) => funcs::call(name, Vec::new())
                .map_err(|m| exec_err(pipe, format!("error calling {name}: {m}"))),
            Arg::Sub(inner, chain) => {
                let v = self.commands(inner, dot)?;
                self.fields(pipe, &v, chain)
            }
        }
    }

    /// Follows a chain of fields: a missing key of a map is null (Go prints `<no value>`),
    /// a field of null or of a non-map is an error, as in Go over `map[string]interface{}`.
    fn fields(&self, pipe: &Pipeline, v: &Value, chain: &[String]) -> Result<Value> {
        if let (Some(header), Some(last)) = (self.header, chain.last()) {
            return Ok(Value::String(header(last)));
        }
        // Walk by reference: only the value reached is copied, not the whole dot.
        let mut cur = v;
        for f in chain {
            cur = match cur {
                Value::Object(m) => m.get(f).unwrap_or(&Value::Null),
                Value::Null => {
                    return Err(exec_err(
                        pipe,
                        format!("nil pointer evaluating interface {{}}.{f}"),
                    ))
                }
                other => {
                    return Err(exec_err(
                        pipe,
                        format!("can't evaluate field {f} in type {}", go_type(other)),
                    ))
                }
            };
        }
        Ok(cur.clone())
    }
}
