//! Image references as users type them (`busybox`, `name:tag`, `name@sha256:...`,
//! `host:port/path/name:tag`), normalised the way docker does (`busybox` →
//! `docker.io/library/busybox:latest`).

use std::fmt;
use std::str::FromStr;

use oci_spec::image::{Digest, DigestAlgorithm};

/// The registry that unqualified names belong to.
pub const DOCKER_HUB: &str = "docker.io";
/// The host that actually serves Docker Hub's registry API.
const DOCKER_HUB_API: &str = "registry-1.docker.io";
/// The key docker uses for Docker Hub in `~/.docker/config.json`.
const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";
const DEFAULT_TAG: &str = "latest";
const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    #[error("invalid reference format: empty reference")]
    Empty,
    #[error("invalid reference format: repository name {name:?} must be lowercase")]
    Uppercase { name: String },
    #[error("invalid reference format: {reference:?}: {reason}")]
    Invalid {
        reference: String,
        reason: &'static str,
    },
    #[error("invalid reference format: {reference:?}: bad digest")]
    Digest {
        reference: String,
        #[source]
        source: oci_spec::OciSpecError,
    },
    #[error("invalid reference format: {reference:?}: only sha256 digests are supported")]
    DigestAlgorithm { reference: String },
    #[error("invalid tag {tag:?}")]
    Tag { tag: String },
}

/// A fully qualified image reference: registry, repository and a tag and/or a digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses `s` and normalises it; a reference with neither tag nor digest gets `latest`.
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        let mut r = Self::parse_name_only(s)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some(DEFAULT_TAG.to_string());
        }
        Ok(r)
    }

    /// Parses `s` without adding a default tag (used for `--all-tags` and `images REPO`).
    pub fn parse_name_only(s: &str) -> Result<Self, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let invalid = |reason| ReferenceError::Invalid {
            reference: s.to_string(),
            reason,
        };
        let (rest, digest) = match s.split_once('@') {
            Some((rest, d)) => {
                let digest = Digest::from_str(d).map_err(|source| ReferenceError::Digest {
                    reference: s.to_string(),
                    source,
                })?;
                if *digest.algorithm() != DigestAlgorithm::Sha256 {
                    return Err(ReferenceError::DigestAlgorithm {
                        reference: s.to_string(),
                    });
                }
                (rest, Some(digest))
            }
            None => (s, None),
        };
        // A colon after the last slash separates the tag; one before it belongs to host:port.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(tag) = tag {
            validate_tag(tag).map_err(|_| invalid("bad tag"))?;
        }
        let (registry, repository) = split_registry(name);
        if registry.is_empty() || repository.is_empty() {
            return Err(invalid("empty registry or repository"));
        }
        if repository.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(ReferenceError::Uppercase {
                name: repository.to_string(),
            });
        }
        for component in repository.split('/') {
            if !valid_path_component(component) {
                return Err(invalid("bad repository name component"));
            }
        }
        if !valid_registry(registry) {
            return Err(invalid("bad registry host"));
        }
        let (registry, repository) = normalise_hub(registry, repository);
        if registry.len() + 1 + repository.len() > MAX_NAME_LEN {
            return Err(invalid("repository name longer than 255 characters"));
        }
        Ok(Self {
            registry,
            repository,
            tag: tag.map(str::to_string),
            digest,
        })
    }

    pub fn registry(&self) -> &str {
        &self.registry
    }

    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `registry/repository`, the name without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// docker's short form of [`Reference::name`]: Docker Hub's `docker.io/` (and its
    /// `library/`) left out, as docker shows names (`busybox`, `user/app`, `host:5000/x`).
    pub fn familiar_name(&self) -> String {
        if self.registry != "docker.io" {
            return self.name();
        }
        self.repository
            .strip_prefix("library/")
            .unwrap_or(&self.repository)
            .to_string()
    }

    /// docker's short form of the whole reference (`busybox:latest`, `busybox@sha256:…`).
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d.as_ref());
        }
        s
    }

    /// What to ask the registry for: the digest when there is one, else the tag.
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => DEFAULT_TAG.to_string(),
        }
    }

    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Result<Self, ReferenceError> {
        validate_tag(tag)?;
        Ok(Self {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        })
    }

    /// The same repository pinned to `digest`, without tag.
    pub fn with_digest(&self, digest: Digest) -> Self {
        Self {
            tag: None,
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The host (and port) that serves the registry API for this reference.
    pub fn api_host(&self) -> &str {
        api_host(&self.registry)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// The host that serves the registry API for `registry` (Docker Hub is special).
pub fn api_host(registry: &str) -> &str {
    if registry == DOCKER_HUB {
        DOCKER_HUB_API
    } else {
        registry
    }
}

/// Normalises a registry name typed by a user (`login`/`logout` arguments, config keys):
/// `https://index.docker.io/v1/`, `index.docker.io` and `docker.io` are all Docker Hub.
pub fn normalise_registry(s: &str) -> String {
    let s = s
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = s.split('/').next().unwrap_or(s);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" | "" => DOCKER_HUB.to_string(),
        h => h.to_string(),
    }
}

/// The key under which `~/.docker/config.json` stores credentials for `registry`.
pub fn auth_key(registry: &str) -> &str {
    if registry == DOCKER_HUB {
        DOCKER_HUB_AUTH_KEY
    } else {
        registry
    }
}

fn validate_tag(tag: &str) -> Result<(), ReferenceError> {
    let ok = !tag.is_empty()
        && tag.len() <= MAX_TAG_LEN
        && tag.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(ReferenceError::Tag {
            tag: tag.to_string(),
        })
    }
}

/// Docker's rule: the first component is a registry when it has a dot or a port, or is
/// `localhost`; otherwise the whole name lives on Docker Hub.
fn split_registry(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first, rest)
        }
        _ => (DOCKER_HUB, name),
    }
}

fn normalise_hub(registry: &str, repository: &str) -> (String, String) {
    let registry = if registry == "index.docker.io" {
        DOCKER_HUB
    } else {
        registry
    };
    let repository = if registry == DOCKER_HUB && !repository.contains('/') {
        format!("library/{repository}")
    } else {
        repository.to_string()
    };
    (registry.to_string(), repository)
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, the distribution spec's path component.
fn valid_path_component(c: &str) -> bool {
    let bytes = c.as_bytes();
    if bytes.is_empty() || !is_alnum(bytes[0]) || !is_alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if is_alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !is_alnum(bytes[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn valid_registry(r: &str) -> bool {
    let (host, port) = match r.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || r.starts_with('[') => (h, Some(p)),
        _ => (r, None),
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    if host.starts_with('[') && host.ends_with(']') {
        return true;
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn full(s: &str) -> String {
        Reference::parse(s).unwrap().to_string()
    }

    #[test]
    fn familiar_forms_drop_docker_hub_only() {
        let f = |s: &str| Reference::parse(s).unwrap().familiar();
        assert_eq!(f("busybox"), "busybox:latest");
        assert_eq!(f("docker.io/library/busybox:1"), "busybox:1");
        assert_eq!(f("user/app:2"), "user/app:2");
        assert_eq!(f("localhost:5000/x/y:3"), "localhost:5000/x/y:3");
        assert_eq!(f("quay.io/library/x:1"), "quay.io/library/x:1");
        let n = Reference::parse("docker.io/library/busybox").unwrap();
        assert_eq!(n.familiar_name(), "busybox");
    }

    #[test]
    fn short_names_normalise_to_docker_hub_library() {
        assert_eq!(full("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(full("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(full("user/app"), "docker.io/user/app:latest");
        assert_eq!(
            full("index.docker.io/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            full("docker.io/library/busybox"),
            "docker.io/library/busybox:latest"
        );
    }

    #[test]
    fn hosts_with_ports_and_paths_are_kept() {
        let r = Reference::parse("127.0.0.1:5000/a/b/c:v1").unwrap();
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.repository(), "a/b/c");
        assert_eq!(r.tag(), Some("v1"));
        let r = Reference::parse("localhost/app").unwrap();
        assert_eq!(r.registry(), "localhost");
        assert_eq!(r.tag(), Some("latest"));
        let r = Reference::parse("localhost:5000/app").unwrap();
        assert_eq!(r.registry(), "localhost:5000");
        assert_eq!(r.repository(), "app");
        assert_eq!(r.api_host(), "localhost:5000");
        assert_eq!(
            Reference::parse("busybox").unwrap().api_host(),
            DOCKER_HUB_API
        );
    }

    #[test]
    fn digest_references_have_no_default_tag() {
        let r = Reference::parse(&format!("busybox@{D}")).unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest().unwrap().to_string(), D);
        assert_eq!(r.manifest_reference(), D);
        let r = Reference::parse(&format!("h:1/x:t@{D}")).unwrap();
        assert_eq!(r.tag(), Some("t"));
        assert_eq!(r.to_string(), format!("h:1/x:t@{D}"));
    }

    #[test]
    fn bad_references_are_rejected_with_reasons() {
        assert!(matches!(Reference::parse(""), Err(ReferenceError::Empty)));
        assert!(matches!(
            Reference::parse("BusyBox"),
            Err(ReferenceError::Uppercase { .. })
        ));
        for bad in [
            "busybox:",
            "a//b",
            "a/b/",
            "-a",
            "a@sha256:123",
            "a:b:c",
            "a:-tag",
            "busybox@md5:d41d8cd98f00b204e9800998ecf8427e",
            "h:port/x",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad} should not parse");
        }
        assert!(Reference::parse(&"a".repeat(300)).is_err());
    }

    #[test]
    fn path_components_follow_the_distribution_grammar() {
        for ok in ["a", "a.b", "a_b", "a__b", "a---b", "a1-b2.c3"] {
            assert!(valid_path_component(ok), "{ok}");
        }
        for bad in ["", "_a", "a_", "a..b", "a___b", "a.-b"] {
            assert!(!valid_path_component(bad), "{bad}");
        }
    }

    #[test]
    fn registry_names_from_users_normalise() {
        assert_eq!(
            normalise_registry("https://index.docker.io/v1/"),
            DOCKER_HUB
        );
        assert_eq!(normalise_registry("docker.io"), DOCKER_HUB);
        assert_eq!(normalise_registry("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(
            normalise_registry("https://r.example:443/v2/"),
            "r.example:443"
        );
        assert_eq!(auth_key(DOCKER_HUB), DOCKER_HUB_AUTH_KEY);
        assert_eq!(auth_key("r:1"), "r:1");
    }

    #[test]
    fn with_tag_and_with_digest_replace_the_pin() {
        let r = Reference::parse("x/y:1").unwrap();
        assert_eq!(r.with_tag("2").unwrap().to_string(), "docker.io/x/y:2");
        let d = Digest::from_str(D).unwrap();
        assert_eq!(r.with_digest(d).to_string(), format!("docker.io/x/y@{D}"));
        assert!(r.with_tag("bad tag").is_err());
    }
}
