//! The seam to the image builder: a service with `build:` gets its image here. Until the
//! builder's operation lands (`ops::images::build`), a clear error names the service.

use crate::compose::model::Project;
use crate::compose::ComposeError;
use crate::ops::error::Result;
use crate::ops::{Engine, Progress};

/// Builds the image of `service` (tagged `image`, else `PROJECT-SERVICE`).
pub fn build(_engine: &Engine, _p: &Project, service: &str, _progress: &Progress) -> Result<()> {
    Err(ComposeError::BuildUnsupported {
        service: service.to_string(),
    }
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_names_the_service_until_the_builder_lands() {
        let dir = tempfile::tempdir().unwrap();
        let settings = crate::config::Settings::load(
            Some(dir.path().join("root")),
            Some(dir.path().join("config")),
            None,
        )
        .unwrap();
        let engine = Engine::with_settings(settings);
        let e = build(&engine, &Project::default(), "web", &Progress::discard()).unwrap_err();
        assert_eq!(e.to_string(), "service \"web\": build: not supported yet");
    }
}
