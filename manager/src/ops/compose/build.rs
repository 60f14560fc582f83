//! A service's `build:` section, built through the image builder (`ops::images::build`) and
//! tagged with the service's image name (`image:`, else `PROJECT-SERVICE`) and `build.tags`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::convert::image_name;
use crate::compose::model::{Build, Project};
use crate::compose::ComposeError;
use crate::ops::error::Result;
use crate::ops::images::{self, BuildRequest};
use crate::ops::{Cancel, Engine, Progress};

/// Builds the image of `service`.
pub fn build(engine: &Engine, p: &Project, service: &str, progress: &Progress) -> Result<()> {
    build_with(engine, p, service, false, progress, &Cancel::new())
}

/// [`build`] with `--no-cache` and a caller's cancel token (`compose build`).
pub fn build_with(
    engine: &Engine,
    p: &Project,
    service: &str,
    no_cache: bool,
    progress: &Progress,
    cancel: &Cancel,
) -> Result<()> {
    let Some(svc) = p.services.get(service) else {
        return Err(ComposeError::BuildUnsupported {
            service: service.to_string(),
            what: "an unknown service".into(),
        }
        .into());
    };
    let Some(b) = &svc.build else {
        return Ok(());
    };
    let mut req = request(service, b, image_name(p, service, svc), no_cache)?;
    req.platform = platform(service, svc.platform.as_deref(), &b.platforms)?;
    images::build(engine, &req, progress, cancel)?;
    Ok(())
}

/// The platform a service's image is built for, as docker compose picks it: the service's
/// `platform:` (which must be one of `build.platforms` when those are listed), else the single
/// `build.platforms` entry; berth builds one platform per image.
fn platform(service: &str, platform: Option<&str>, platforms: &[String]) -> Result<Option<String>> {
    let unsupported = |what: String| ComposeError::BuildUnsupported {
        service: service.to_string(),
        what,
    };
    let chosen = match (platform, platforms) {
        (Some(p), list) if !list.is_empty() && !list.iter().any(|l| l == p) => {
            return Err(unsupported(format!(
                "platform {p:?}, which is not in build.platforms {list:?}"
            ))
            .into())
        }
        (Some(p), _) => Some(p),
        (None, [one]) => Some(one.as_str()),
        (None, []) => None,
        (None, list) => {
            return Err(unsupported(format!(
                "several build.platforms ({}): one image per platform only",
                list.join(", ")
            ))
            .into())
        }
    };
    chosen
        .map(|p| {
            p.parse::<crate::platform::Platform>()
                .map(|_| p.to_string())
                .map_err(|e| unsupported(e.to_string()).into())
        })
        .transpose()
}

/// The builder's request for one service (pure, so it is unit-tested).
fn request(service: &str, b: &Build, image: String, no_cache: bool) -> Result<BuildRequest> {
    if b.context.contains("://") || b.context.starts_with("git@") {
        return Err(ComposeError::BuildUnsupported {
            service: service.to_string(),
            what: format!("a remote context ({})", b.context),
        }
        .into());
    }
    let values = |m: &BTreeMap<String, Option<String>>, env: bool| -> BTreeMap<String, String> {
        m.iter()
            .filter_map(|(k, v)| match v {
                Some(v) => Some((k.clone(), v.clone())),
                // `args: [KEY]`: the value comes from the environment, as in docker compose.
                None if env => std::env::var(k).ok().map(|v| (k.clone(), v)),
                None => Some((k.clone(), String::new())),
            })
            .collect()
    };
    let mut tags = vec![image];
    tags.extend(b.tags.iter().cloned());
    Ok(BuildRequest {
        context: PathBuf::from(&b.context),
        dockerfile: b
            .dockerfile
            .as_ref()
            .filter(|_| b.dockerfile_inline.is_none())
            .map(PathBuf::from),
        dockerfile_text: b.dockerfile_inline.clone(),
        tags,
        build_args: values(&b.args, true),
        target: b.target.clone().filter(|t| !t.is_empty()),
        no_cache: no_cache || b.no_cache.unwrap_or(false),
        pull: b.pull.unwrap_or(false),
        labels: values(&b.labels, false),
        network: b.network.clone(),
        ..BuildRequest::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build_of(yaml: &str) -> Build {
        serde_norway::from_str(yaml).unwrap()
    }

    #[test]
    fn the_request_carries_the_service_image_args_and_options() {
        let b = build_of(
            "context: /p/app\ndockerfile: Dockerfile.dev\nargs: {A: '1'}\ntarget: dev\nlabels: {l: v}\ntags: [extra:1]\nno_cache: true\n",
        );
        let r = request("web", &b, "proj-web".into(), false).unwrap();
        assert_eq!(r.context, PathBuf::from("/p/app"));
        assert_eq!(r.dockerfile, Some(PathBuf::from("Dockerfile.dev")));
        assert_eq!(r.tags, ["proj-web", "extra:1"]);
        assert_eq!(r.build_args["A"], "1");
        assert_eq!(r.target.as_deref(), Some("dev"));
        assert_eq!(r.labels["l"], "v");
        assert!(r.no_cache);
    }

    #[test]
    fn an_inline_dockerfile_wins_and_remote_contexts_are_refused_naming_the_service() {
        let b = build_of("context: /p\ndockerfile_inline: \"FROM busybox\\n\"\n");
        let r = request("web", &b, "i".into(), false).unwrap();
        assert_eq!(r.dockerfile_text.as_deref(), Some("FROM busybox\n"));
        assert_eq!(r.dockerfile, None);
        let b = build_of("context: https://example.invalid/repo.git\n");
        let e = request("web", &b, "i".into(), false).unwrap_err();
        assert!(e.to_string().starts_with("service \"web\": build:"), "{e}");
    }

    #[test]
    fn the_platform_is_the_services_or_the_single_build_platform() {
        let arm = Some("linux/arm64".to_string());
        assert_eq!(platform("w", Some("linux/arm64"), &[]).unwrap(), arm);
        let list = vec!["linux/arm64".to_string()];
        assert_eq!(platform("w", None, &list).unwrap(), arm);
        assert_eq!(platform("w", None, &[]).unwrap(), None);
        assert!(platform("w", Some("linux/amd64"), &list).is_err());
        let two = vec!["linux/arm64".to_string(), "linux/amd64".to_string()];
        assert!(platform("w", None, &two).is_err());
        assert!(platform("w", Some("bogus"), &[]).is_err());
    }
}
