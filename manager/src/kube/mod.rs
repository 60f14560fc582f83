//! Kubernetes manifests: the objects berth runs (`kube play`) and writes (`kube generate`),
//! read from multi-document YAML. Every field berth does not know is reported as a warning
//! naming its path (`spec.containers[0].foo`); a value of the wrong shape or a feature berth
//! cannot honour is an error naming the file, the object and the field.

pub mod model;
pub mod quantity;

use std::fmt::Write as _;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_norway::Value;

pub use model::*;

/// An error in a manifest: where it is (file, document, object) and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// YAML that does not parse.
    #[error("{file}: line {line} column {column}: {message}")]
    Yaml {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// A document or field berth cannot take.
    #[error("{at}: {path}: {reason}")]
    Invalid {
        /// `FILE: document N (Kind name)`.
        at: String,
        /// The field, e.g. `spec.containers[0].image`.
        path: String,
        reason: String,
    },
}

/// One object of a manifest.
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    Pod(Box<Pod>),
    Deployment(Box<Deployment>),
    Service(Service),
    PersistentVolumeClaim(PersistentVolumeClaim),
    ConfigMap(ConfigMap),
    Secret(Secret),
}

/// A parsed object and where it came from (for messages).
#[derive(Debug, Clone, PartialEq)]
pub struct Located {
    /// `FILE: document N (Kind name)`.
    pub at: String,
    pub object: Object,
}

/// The objects of one file, in order, and the warnings about fields berth does not know.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Manifest {
    pub objects: Vec<Located>,
    pub warnings: Vec<String>,
}

impl Manifest {
    pub fn pods(&self) -> impl Iterator<Item = (&str, &Pod)> {
        self.objects.iter().filter_map(|o| match &o.object {
            Object::Pod(p) => Some((o.at.as_str(), &**p)),
            _ => None,
        })
    }

    pub fn deployments(&self) -> impl Iterator<Item = (&str, &Deployment)> {
        self.objects.iter().filter_map(|o| match &o.object {
            Object::Deployment(d) => Some((o.at.as_str(), &**d)),
            _ => None,
        })
    }

    pub fn config_map(&self, name: &str) -> Option<&ConfigMap> {
        self.objects.iter().find_map(|o| match &o.object {
            Object::ConfigMap(c) if c.metadata.name == name => Some(c),
            _ => None,
        })
    }

    pub fn secret(&self, name: &str) -> Option<&Secret> {
        self.objects.iter().find_map(|o| match &o.object {
            Object::Secret(s) if s.metadata.name == name => Some(s),
            _ => None,
        })
    }

    /// Takes the ConfigMaps and Secrets of another file (`kube play --configmap`); any other
    /// kind there is an error.
    pub fn add_config(&mut self, other: Manifest) -> Result<(), KubeError> {
        for o in other.objects {
            match o.object {
                Object::ConfigMap(_) | Object::Secret(_) => self.objects.push(o),
                _ => {
                    return Err(KubeError::Invalid {
                        at: o.at,
                        path: "kind".into(),
                        reason: "only ConfigMaps and Secrets are taken from a --configmap file"
                            .into(),
                    })
                }
            }
        }
        Ok(())
    }

    pub fn claims(&self) -> impl Iterator<Item = &PersistentVolumeClaim> {
        self.objects.iter().filter_map(|o| match &o.object {
            Object::PersistentVolumeClaim(c) => Some(c),
            _ => None,
        })
    }
}

/// The kinds `parse` takes, with their apiVersion.
pub const KINDS: &str =
    "Pod, Deployment (apps/v1), Service, PersistentVolumeClaim, ConfigMap, Secret";

/// Parses every document of `text` (read from `file`, named in messages). Empty documents
/// are skipped; `kind: List` contributes its items.
pub fn parse(text: &str, file: &str) -> Result<Manifest, KubeError> {
    let mut manifest = Manifest::default();
    for (i, doc) in serde_norway::Deserializer::from_str(text).enumerate() {
        let mut value = Value::deserialize(doc).map_err(|e| yaml_error(file, &e))?;
        // `<<: *anchor` merge keys, as Kubernetes' YAML reader takes them.
        value.apply_merge().map_err(|e| yaml_error(file, &e))?;
        let at = format!("{file}: document {}", i + 1);
        match value {
            Value::Null => continue,
            Value::Mapping(_) => {}
            _ => {
                return Err(KubeError::Invalid {
                    at,
                    path: "(document)".into(),
                    reason: "not a mapping (an object with apiVersion and kind)".into(),
                })
            }
        }
        if value.get("kind").and_then(Value::as_str) == Some("List") {
            let items = match value.get("items") {
                Some(Value::Sequence(items)) => items.clone(),
                _ => Vec::new(),
            };
            for (j, item) in items.into_iter().enumerate() {
                let at = format!("{at} item {j}");
                manifest
                    .objects
                    .push(object(item, &at, &mut manifest.warnings)?);
            }
            continue;
        }
        manifest
            .objects
            .push(object(value, &at, &mut manifest.warnings)?);
    }
    check_names(&manifest)?;
    Ok(manifest)
}

fn yaml_error(file: &str, e: &serde_norway::Error) -> KubeError {
    let (line, column) = e
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((0, 0));
    // The message repeats the position at its end; keep it once, in front.
    let mut message = e.to_string();
    if let Some(i) = message.find(" at line ") {
        message.truncate(i);
    }
    KubeError::Yaml {
        file: file.to_string(),
        line,
        column,
        message,
    }
}

fn object(value: Value, at: &str, warnings: &mut Vec<String>) -> Result<Located, KubeError> {
    let kind = value
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let api = value
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let name = value
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let at = if name.is_empty() {
        format!("{at} ({kind})")
    } else {
        format!("{at} ({kind} {name})")
    };
    let invalid = |path: &str, reason: String| KubeError::Invalid {
        at: at.clone(),
        path: path.into(),
        reason,
    };
    if kind.is_empty() {
        return Err(invalid("kind", format!("missing (one of {KINDS})")));
    }
    let want_api = if kind == "Deployment" {
        "apps/v1"
    } else {
        "v1"
    };
    let object = match kind.as_str() {
        "Pod" | "Deployment" | "Service" | "PersistentVolumeClaim" | "ConfigMap" | "Secret" => {
            if api != want_api {
                return Err(invalid(
                    "apiVersion",
                    format!("{api:?} is not supported for {kind} (use {want_api})"),
                ));
            }
            match kind.as_str() {
                "Pod" => Object::Pod(Box::new(typed(value, &at, warnings)?)),
                "Deployment" => Object::Deployment(Box::new(typed(value, &at, warnings)?)),
                "Service" => Object::Service(typed(value, &at, warnings)?),
                "PersistentVolumeClaim" => {
                    Object::PersistentVolumeClaim(typed(value, &at, warnings)?)
                }
                "ConfigMap" => Object::ConfigMap(typed(value, &at, warnings)?),
                _ => Object::Secret(typed(value, &at, warnings)?),
            }
        }
        other => {
            return Err(invalid(
                "kind",
                format!("{other} is not supported (berth runs {KINDS})"),
            ))
        }
    };
    if name.is_empty() {
        return Err(invalid("metadata.name", "required".into()));
    }
    Ok(Located { at, object })
}

/// Deserializes one object, reporting fields the model does not have as warnings and a
/// value of the wrong shape as an error naming its path.
fn typed<T: DeserializeOwned>(
    value: Value,
    at: &str,
    warnings: &mut Vec<String>,
) -> Result<T, KubeError> {
    let mut unknown = Vec::new();
    let result: Result<T, _> = {
        let mut note = |p: serde_ignored::Path| unknown.push(path_text(&p));
        serde_path_to_error::deserialize(serde_ignored::Deserializer::new(value, &mut note))
    };
    for u in unknown {
        warnings.push(format!("{at}: unknown field {u} is ignored"));
    }
    result.map_err(|e| {
        let path = e.path().to_string();
        let mut reason = e.into_inner().to_string();
        if let Some(i) = reason.find(" at line ") {
            reason.truncate(i);
        }
        KubeError::Invalid {
            at: at.to_string(),
            path,
            reason,
        }
    })
}

/// `spec.containers[0].foo` for serde_ignored's path.
pub(crate) fn path_text(p: &serde_ignored::Path) -> String {
    use serde_ignored::Path;
    let mut out = String::new();
    fn walk(p: &Path, out: &mut String) {
        match p {
            Path::Root => {}
            Path::Seq { parent, index } => {
                walk(parent, out);
                let _ = write!(out, "[{index}]");
            }
            Path::Map { parent, key } => {
                walk(parent, out);
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Path::Some { parent }
            | Path::NewtypeStruct { parent }
            | Path::NewtypeVariant { parent } => walk(parent, out),
        }
    }
    walk(p, &mut out);
    out
}

/// Names a pod's containers need: present, unique, and an image each.
fn check_names(m: &Manifest) -> Result<(), KubeError> {
    let invalid = |at: &str, path: String, reason: &str| KubeError::Invalid {
        at: at.to_string(),
        path,
        reason: reason.to_string(),
    };
    let mut specs: Vec<(&str, &str, &PodSpec)> = Vec::new();
    for o in &m.objects {
        match &o.object {
            Object::Pod(p) => specs.push((&o.at, "spec", &p.spec)),
            Object::Deployment(d) => {
                specs.push((&o.at, "spec.template.spec", &d.spec.template.spec))
            }
            _ => {}
        }
    }
    for (at, prefix, spec) in specs {
        if spec.containers.is_empty() {
            return Err(invalid(at, format!("{prefix}.containers"), "no container"));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (list, containers) in [
            ("initContainers", &spec.init_containers),
            ("containers", &spec.containers),
        ] {
            for (i, c) in containers.iter().enumerate() {
                let path = |f: &str| format!("{prefix}.{list}[{i}].{f}");
                if c.name.is_empty() {
                    return Err(invalid(at, path("name"), "required"));
                }
                if !seen.insert(c.name.as_str()) {
                    return Err(invalid(at, path("name"), "a second container of this name"));
                }
                if c.image.is_empty() {
                    return Err(invalid(at, path("image"), "required"));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
