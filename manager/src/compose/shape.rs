//! The long forms: every short syntax of a file (`ports: ["8080:80"]`, `volumes: [./d:/d]`,
//! `environment: [A=1]`, `depends_on: [db]`, `command: echo hi`, ...) rewritten into the
//! specification's long form before files are merged, and relative paths made absolute
//! against the directory the file's paths are relative to.

use std::path::{Path, PathBuf};

use serde_norway::{Mapping, Value};

use super::error::{ComposeError, Result};
use super::yaml::{key_str, scalar_str, untag_mut};

/// Where errors point and relative paths start.
pub struct Ctx<'a> {
    pub file: &'a Path,
    pub base: &'a Path,
}

impl Ctx<'_> {
    pub fn invalid(&self, field: &str, message: impl Into<String>) -> ComposeError {
        ComposeError::Invalid {
            path: self.file.to_path_buf(),
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// A path made absolute (`~` is the home directory), left alone when already so.
    pub fn resolve(&self, p: &str) -> String {
        if let Some(rest) = p
            .strip_prefix("~/")
            .or(if p == "~" { Some("") } else { None })
        {
            let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
            return Path::new(&home).join(rest).display().to_string();
        }
        let path = Path::new(p);
        if path.is_absolute() {
            return clean(path).display().to_string();
        }
        clean(&self.base.join(path)).display().to_string()
    }
}

/// `a/./b/../c` → `a/c`, without touching the filesystem.
pub fn clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Shapes a whole file: its services and top-level resources.
pub fn file(top: &mut Mapping, ctx: &Ctx) -> Result<()> {
    if let Some(v) = top.get_mut("services") {
        match untag_mut(v) {
            Value::Mapping(services) => {
                for (name, svc) in services.iter_mut() {
                    let name = key_str(name);
                    let field = format!("services.{name}");
                    match untag_mut(svc) {
                        Value::Mapping(m) => service(m, ctx, &field)?,
                        Value::Null => *svc = Value::Mapping(Mapping::new()),
                        _ => return Err(ctx.invalid(&field, "must be a mapping")),
                    }
                }
            }
            Value::Null => {}
            _ => return Err(ctx.invalid("services", "must be a mapping")),
        }
    }
    for section in ["networks", "volumes", "secrets", "configs"] {
        let Some(v) = top.get_mut(section) else {
            continue;
        };
        match untag_mut(v) {
            Value::Mapping(items) => {
                for (name, item) in items.iter_mut() {
                    let field = format!("{section}.{}", key_str(name));
                    let item = untag_mut(item);
                    if item.is_null() {
                        *item = Value::Mapping(Mapping::new());
                    }
                    let Value::Mapping(m) = item else {
                        return Err(ctx.invalid(&field, "must be a mapping"));
                    };
                    for key in ["labels", "driver_opts", "options"] {
                        to_map(m, key, ctx, &format!("{field}.{key}"))?;
                    }
                    if let Some(Value::String(f)) = m.get("file") {
                        let f = ctx.resolve(f);
                        m.insert("file".into(), f.into());
                    }
                }
            }
            Value::Null => {}
            _ => return Err(ctx.invalid(section, "must be a mapping")),
        }
    }
    Ok(())
}

fn service(m: &mut Mapping, ctx: &Ctx, field: &str) -> Result<()> {
    if let Some(b) = m.get_mut("build") {
        let b = untag_mut(b);
        if let Some(s) = b.as_str() {
            let mut long = Mapping::new();
            long.insert("context".into(), s.into());
            *b = Value::Mapping(long);
        }
        if let Value::Mapping(bm) = b {
            let context = bm
                .get("context")
                .and_then(Value::as_str)
                .unwrap_or(".")
                .to_string();
            // Git and http contexts stay as they are.
            if !context.contains("://") && !context.starts_with("git@") {
                bm.insert("context".into(), ctx.resolve(&context).into());
            }
            to_map(bm, "args", ctx, &format!("{field}.build.args"))?;
            to_map(bm, "labels", ctx, &format!("{field}.build.labels"))?;
        }
    }
    for key in ["command", "entrypoint"] {
        if let Some(v) = m.get_mut(key) {
            let v = untag_mut(v);
            if let Some(s) = v.as_str() {
                let words = shlex::split(s).ok_or_else(|| {
                    ctx.invalid(
                        &format!("{field}.{key}"),
                        format!("unbalanced quotes in {s:?}"),
                    )
                })?;
                *v = Value::Sequence(words.into_iter().map(Value::String).collect());
            }
        }
    }
    for key in ["environment", "labels", "sysctls", "annotations"] {
        to_map(m, key, ctx, &format!("{field}.{key}"))?;
    }
    for key in [
        "tmpfs",
        "dns",
        "dns_search",
        "dns_opt",
        "expose",
        "cap_add",
        "cap_drop",
        "security_opt",
        "profiles",
    ] {
        to_string_list(m, key, ctx, &format!("{field}.{key}"))?;
    }
    if let Some(v) = m.get_mut("env_file") {
        let v = untag_mut(v);
        let items = match v {
            Value::String(_) => vec![v.clone()],
            Value::Sequence(s) => s.clone(),
            _ => {
                return Err(ctx.invalid(&format!("{field}.env_file"), "must be a string or a list"))
            }
        };
        let mut out = Vec::new();
        for item in items {
            let mut e = Mapping::new();
            match item {
                Value::String(p) => {
                    e.insert("path".into(), ctx.resolve(&p).into());
                    e.insert("required".into(), true.into());
                }
                Value::Mapping(mut im) => {
                    if let Some(Value::String(p)) = im.get("path") {
                        let p = ctx.resolve(p);
                        im.insert("path".into(), p.into());
                    }
                    if !im.contains_key("required") {
                        im.insert("required".into(), true.into());
                    }
                    e = im;
                }
                _ => return Err(ctx.invalid(&format!("{field}.env_file"), "entries must be paths")),
            }
            out.push(Value::Mapping(e));
        }
        *v = Value::Sequence(out);
    }
    if let Some(v) = m.get_mut("ports") {
        let v = untag_mut(v);
        if let Value::Sequence(items) = &*v {
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let f = format!("{field}.ports[{i}]");
                match item {
                    Value::Mapping(pm) => {
                        let mut pm = pm.clone();
                        if let Some(p) = pm.get("published").and_then(scalar_str) {
                            pm.insert("published".into(), p.into());
                        }
                        out.push(Value::Mapping(pm));
                    }
                    other => {
                        let s = scalar_str(other)
                            .ok_or_else(|| ctx.invalid(&f, "must be a string or a number"))?;
                        out.extend(short_port(&s).map_err(|m| ctx.invalid(&f, m))?);
                    }
                }
            }
            *v = Value::Sequence(out);
        }
    }
    if let Some(v) = m.get_mut("volumes") {
        if let Value::Sequence(items) = untag_mut(v) {
            for (i, item) in items.iter_mut().enumerate() {
                let f = format!("{field}.volumes[{i}]");
                match item {
                    Value::String(s) => {
                        *item = short_volume(s, ctx).map_err(|m| ctx.invalid(&f, m))?
                    }
                    Value::Mapping(vm) => {
                        if vm.get("type").and_then(Value::as_str) == Some("bind") {
                            if let Some(Value::String(src)) = vm.get("source") {
                                let src = ctx.resolve(src);
                                vm.insert("source".into(), src.into());
                            }
                        }
                    }
                    _ => return Err(ctx.invalid(&f, "must be a string or a mapping")),
                }
            }
        }
    }
    if let Some(v) = m.get_mut("networks") {
        let v = untag_mut(v);
        if let Value::Sequence(items) = v {
            let mut map = Mapping::new();
            for item in items.iter() {
                map.insert(item.clone(), Value::Null);
            }
            *v = Value::Mapping(map);
        }
    }
    if let Some(v) = m.get_mut("depends_on") {
        let v = untag_mut(v);
        let mut map = Mapping::new();
        match v {
            Value::Sequence(items) => {
                for item in items.iter() {
                    map.insert(item.clone(), Value::Null);
                }
            }
            Value::Mapping(dm) => map = dm.clone(),
            _ => {
                return Err(ctx.invalid(
                    &format!("{field}.depends_on"),
                    "must be a list or a mapping",
                ))
            }
        }
        for (_, d) in map.iter_mut() {
            if d.is_null() {
                *d = Value::Mapping(Mapping::new());
            }
            if let Value::Mapping(dm) = d {
                if !dm.contains_key("condition") {
                    dm.insert("condition".into(), "service_started".into());
                }
                if !dm.contains_key("required") {
                    dm.insert("required".into(), true.into());
                }
            }
        }
        *v = Value::Mapping(map);
    }
    if let Some(Value::Mapping(h)) = m.get_mut("healthcheck").map(untag_mut) {
        if let Some(t) = h.get_mut("test") {
            if let Some(s) = t.as_str() {
                *t = Value::Sequence(vec!["CMD-SHELL".into(), s.into()]);
            }
        }
    }
    if let Some(v) = m.get_mut("extra_hosts") {
        let v = untag_mut(v);
        if let Value::Mapping(hm) = &*v {
            let list = hm
                .iter()
                .map(|(k, v)| {
                    Value::String(format!(
                        "{}:{}",
                        key_str(k),
                        scalar_str(v).unwrap_or_default()
                    ))
                })
                .collect();
            *v = Value::Sequence(list);
        }
    }
    if let Some(Value::Mapping(u)) = m.get_mut("ulimits").map(untag_mut) {
        for (_, l) in u.iter_mut() {
            if let Value::Number(n) = l {
                let mut lm = Mapping::new();
                lm.insert("soft".into(), Value::Number(n.clone()));
                lm.insert("hard".into(), Value::Number(n.clone()));
                *l = Value::Mapping(lm);
            }
        }
    }
    for key in ["secrets", "configs"] {
        if let Some(Value::Sequence(items)) = m.get_mut(key).map(untag_mut) {
            for item in items.iter_mut() {
                if let Value::String(s) = item {
                    let mut sm = Mapping::new();
                    sm.insert("source".into(), s.clone().into());
                    *item = Value::Mapping(sm);
                }
            }
        }
    }
    for key in [
        "shm_size",
        "mem_limit",
        "mem_reservation",
        "memswap_limit",
        "stop_grace_period",
    ] {
        if let Some(v) = m.get_mut(key) {
            if let Some(s) = scalar_str(v) {
                *v = s.into();
            }
        }
    }
    if let Some(Value::Mapping(ext)) = m.get_mut("extends").map(untag_mut) {
        if let Some(Value::String(f)) = ext.get("file") {
            let f = ctx.resolve_from_file(f);
            ext.insert("file".into(), f.into());
        }
    }
    Ok(())
}

impl Ctx<'_> {
    /// `extends.file` is relative to the file that names it.
    fn resolve_from_file(&self, p: &str) -> String {
        let dir = self.file.parent().unwrap_or(Path::new("."));
        clean(&dir.join(p)).display().to_string()
    }
}

/// `[A=1, B]` → `{A: "1", B: null}`; map values become strings.
fn to_map(m: &mut Mapping, key: &str, ctx: &Ctx, field: &str) -> Result<()> {
    let Some(v) = m.get_mut(key) else {
        return Ok(());
    };
    let v = untag_mut(v);
    let mut out = Mapping::new();
    match v {
        Value::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                let s = scalar_str(item)
                    .ok_or_else(|| ctx.invalid(&format!("{field}[{i}]"), "must be a string"))?;
                match s.split_once('=') {
                    Some((k, val)) => out.insert(k.into(), val.into()),
                    None => out.insert(s.into(), Value::Null),
                };
            }
        }
        Value::Mapping(items) => {
            for (k, val) in items.iter() {
                let val = match val {
                    Value::Null => Value::Null,
                    other => Value::String(scalar_str(other).ok_or_else(|| {
                        ctx.invalid(
                            &format!("{field}.{}", key_str(k)),
                            "must be a string, number or boolean",
                        )
                    })?),
                };
                out.insert(key_str(k).into(), val);
            }
        }
        Value::Null => {}
        _ => return Err(ctx.invalid(field, "must be a list or a mapping")),
    }
    *v = Value::Mapping(out);
    Ok(())
}

/// A string or a list of scalars → a list of strings.
fn to_string_list(m: &mut Mapping, key: &str, ctx: &Ctx, field: &str) -> Result<()> {
    let Some(v) = m.get_mut(key) else {
        return Ok(());
    };
    let v = untag_mut(v);
    let list = match &*v {
        Value::Sequence(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                scalar_str(item)
                    .map(Value::String)
                    .ok_or_else(|| ctx.invalid(&format!("{field}[{i}]"), "must be a string"))
            })
            .collect::<Result<Vec<_>>>()?,
        Value::Null => return Ok(()),
        other => {
            vec![Value::String(scalar_str(other).ok_or_else(|| {
                ctx.invalid(field, "must be a string or a list")
            })?)]
        }
    };
    *v = Value::Sequence(list);
    Ok(())
}

/// `[HOST_IP:][HOST_PORT[-END]:]CONTAINER_PORT[-END][/PROTOCOL]` → long-form entries, one
/// per port of a range.
pub fn short_port(s: &str) -> std::result::Result<Vec<Value>, String> {
    let (spec, proto) = match s.rsplit_once('/') {
        Some((a, p)) => (a, p),
        None => (s, "tcp"),
    };
    if !matches!(proto, "tcp" | "udp" | "sctp") {
        return Err(format!("invalid protocol {proto:?} in {s:?}"));
    }
    let (rest, container) = match spec.rsplit_once(':') {
        Some((r, c)) => (Some(r), c),
        None => (None, spec),
    };
    let (host_ip, host) = match rest {
        None => (None, None),
        Some(r) => match r.rsplit_once(':') {
            Some((ip, h)) => (
                Some(ip.trim_start_matches('[').trim_end_matches(']')),
                Some(h),
            ),
            None => (None, Some(r)),
        },
    };
    let (c0, c1) = port_range(container).ok_or_else(|| format!("invalid port {s:?}"))?;
    let host_range = match host.filter(|h| !h.is_empty()) {
        Some(h) => Some(port_range(h).ok_or_else(|| format!("invalid port {s:?}"))?),
        None => None,
    };
    let n = c1 - c0;
    if let Some((h0, h1)) = host_range {
        if h1 - h0 != n && n != 0 {
            return Err(format!("port ranges of {s:?} differ in length"));
        }
    }
    let mut out = Vec::new();
    for i in 0..=n {
        let mut m = Mapping::new();
        m.insert("target".into(), u64::from(c0 + i).into());
        if let Some((h0, h1)) = host_range {
            let published = if n == 0 && h1 != h0 {
                format!("{h0}-{h1}")
            } else {
                (h0 + i).to_string()
            };
            m.insert("published".into(), published.into());
        }
        if let Some(ip) = host_ip.filter(|ip| !ip.is_empty()) {
            m.insert("host_ip".into(), ip.into());
        }
        m.insert("protocol".into(), proto.into());
        m.insert("mode".into(), "ingress".into());
        out.push(Value::Mapping(m));
    }
    Ok(out)
}

fn port_range(s: &str) -> Option<(u16, u16)> {
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
        None => {
            let p = s.parse().ok()?;
            (p, p)
        }
    };
    (a <= b).then_some((a, b))
}

/// `SOURCE:TARGET[:MODE]` or `TARGET` → a long-form mount.
fn short_volume(s: &str, ctx: &Ctx) -> std::result::Result<Value, String> {
    let parts: Vec<&str> = s.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [t] => (None, *t, None),
        [src, t] => (Some(*src), *t, None),
        [src, t, m] => (Some(*src), *t, Some(*m)),
        _ => return Err(format!("invalid volume specification {s:?}")),
    };
    if target.is_empty() || !target.starts_with('/') {
        return Err(format!(
            "invalid volume specification {s:?}: the target must be an absolute path"
        ));
    }
    let mut m = Mapping::new();
    let bind = source.is_some_and(|src| src.starts_with(['.', '/', '~']));
    m.insert("type".into(), if bind { "bind" } else { "volume" }.into());
    if let Some(src) = source {
        let src = if bind {
            ctx.resolve(src)
        } else {
            src.to_string()
        };
        m.insert("source".into(), src.into());
    }
    m.insert("target".into(), target.into());
    let modes: Vec<&str> = mode.map(|m| m.split(',').collect()).unwrap_or_default();
    for md in &modes {
        if !matches!(
            *md,
            "ro" | "rw"
                | "z"
                | "Z"
                | "nocopy"
                | "shared"
                | "rshared"
                | "slave"
                | "rslave"
                | "private"
                | "rprivate"
                | "cached"
                | "delegated"
                | "consistent"
        ) {
            return Err(format!("invalid mode {md:?} in volume {s:?}"));
        }
    }
    if modes.contains(&"ro") {
        m.insert("read_only".into(), true.into());
    }
    if bind {
        let mut b = Mapping::new();
        b.insert("create_host_path".into(), true.into());
        if let Some(p) = modes
            .iter()
            .find(|m| m.contains("shared") || m.contains("slave") || m.contains("private"))
        {
            b.insert("propagation".into(), (*p).into());
        }
        m.insert("bind".into(), Value::Mapping(b));
    } else if modes.contains(&"nocopy") {
        let mut v = Mapping::new();
        v.insert("nocopy".into(), true.into());
        m.insert("volume".into(), Value::Mapping(v));
    }
    Ok(Value::Mapping(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn y(s: &str) -> Value {
        serde_norway::from_str(s).unwrap()
    }

    fn shaped(text: &str) -> Value {
        let mut m: Mapping = serde_norway::from_str(text).unwrap();
        let ctx = Ctx {
            file: Path::new("/p/compose.yaml"),
            base: Path::new("/p"),
        };
        file(&mut m, &ctx).unwrap();
        Value::Mapping(m)
    }

    #[test]
    fn ports_short_syntax_and_ranges() {
        assert_eq!(
            Value::Sequence(short_port("127.0.0.1:8080:80/udp").unwrap()),
            y("[{target: 80, published: '8080', host_ip: 127.0.0.1, protocol: udp, mode: ingress}]")
        );
        assert_eq!(
            Value::Sequence(short_port("9000-9001:80-81").unwrap()),
            y("[{target: 80, published: '9000', protocol: tcp, mode: ingress}, {target: 81, published: '9001', protocol: tcp, mode: ingress}]")
        );
        assert_eq!(short_port("80").unwrap().len(), 1);
        assert!(short_port("80:x").is_err());
        assert!(short_port("80/foo").is_err());
        assert!(short_port("1-3:80-81").is_err());
    }

    #[test]
    fn services_get_long_forms() {
        let v = shaped(
            "services:\n  web:\n    build: ./app\n    command: sh -c 'echo hi'\n    environment: [A=1, B]\n    volumes: [./data:/data:ro, cache:/cache, /anon]\n    networks: [front]\n    depends_on: [db]\n    healthcheck: {test: wget -q localhost}\n    ulimits: {nofile: 1024}\n",
        );
        let web = &v["services"]["web"];
        assert_eq!(web["build"], y("{context: /p/app}"));
        assert_eq!(web["command"], y("[sh, -c, echo hi]"));
        assert_eq!(web["environment"], y("{A: '1', B: null}"));
        assert_eq!(
            web["volumes"],
            y("[{type: bind, source: /p/data, target: /data, read_only: true, bind: {create_host_path: true}}, {type: volume, source: cache, target: /cache}, {type: volume, target: /anon}]")
        );
        assert_eq!(web["networks"], y("{front: null}"));
        assert_eq!(
            web["depends_on"],
            y("{db: {condition: service_started, required: true}}")
        );
        assert_eq!(
            web["healthcheck"]["test"],
            y("[CMD-SHELL, wget -q localhost]")
        );
        assert_eq!(web["ulimits"], y("{nofile: {soft: 1024, hard: 1024}}"));
    }

    #[test]
    fn bad_short_forms_name_the_field() {
        let mut m: Mapping =
            serde_norway::from_str("services:\n  web:\n    ports: ['80', 'x:y']\n").unwrap();
        let ctx = Ctx {
            file: Path::new("c.yaml"),
            base: Path::new("/p"),
        };
        let e = file(&mut m, &ctx).unwrap_err();
        assert_eq!(
            e.to_string(),
            "c.yaml: services.web.ports[1]: invalid port \"x:y\""
        );
    }
}
