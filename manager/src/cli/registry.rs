//! Connecting to a registry with the credentials docker's config.json holds for it.

use std::sync::Arc;

use anyhow::{Context, Result};
use berth::config::{docker_config_file, Settings};
use berth::credentials::DockerConfig;
use berth::distribution::client::Registry;

pub async fn connect(settings: &Settings, registry: &str) -> Result<Arc<Registry>> {
    let path = docker_config_file(&settings.docker_config_dir);
    let creds = DockerConfig::load(&path)?
        .get(registry)
        .with_context(|| format!("reading credentials for {registry}"))?;
    Ok(Arc::new(
        Registry::connect(registry, &settings.registries, creds).await?,
    ))
}
