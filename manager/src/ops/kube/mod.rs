//! `kube play`, `kube down` and `kube generate`: Kubernetes Pods and Deployments run as
//! berth containers, and running containers written out as Kubernetes YAML (as podman's
//! `kube` verbs do).
//!
//! A pod is an infra container (a long sleep from the pod's first image, SIGKILL as its stop
//! signal) that holds the network namespace, hostname, /etc files and published ports; its
//! init containers run to completion in order, then its containers start joining that
//! namespace (`container:<infra>`), so they share localhost. Everything made carries the
//! label `io.berth.kube.pod=<pod>`, which is how `down` finds exactly what `play` made.

mod generate;
mod play;
pub(crate) mod translate;

use std::path::PathBuf;

pub use crate::kube::{parse, KubeError, Manifest};
pub use generate::{generate, GenerateOptions, PodKind};
pub use play::{
    down, images, play, pod_names, DownOptions, DownReport, PlayOptions, PlayReport, PlayedPod,
};
pub use translate::{LABEL_CLAIM, LABEL_CONTAINER, LABEL_DEPLOYMENT, LABEL_POD, LABEL_ROLE};

use crate::ops::error::OpsError;

/// What can go wrong in a kube operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Manifest(#[from] KubeError),
    #[error(transparent)]
    Ops(#[from] OpsError),
    #[error("pod {pod} already exists (kube play --replace replaces it; kube down removes it)")]
    PodExists { pod: String },
    #[error("pod {pod}: init container {container} exited with status {code}")]
    InitFailed {
        pod: String,
        container: String,
        code: i64,
    },
    #[error("{what} {path}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("pod {pod}: starting its infra container (`sleep` in {image}, the image of its first container): {source}")]
    Infra {
        pod: String,
        image: String,
        #[source]
        source: Box<OpsError>,
    },
    #[error("no such container or pod: {name}")]
    NotFound { name: String },
    #[error("writing YAML")]
    Yaml(#[from] serde_norway::Error),
    /// The error, and what undoing the half-made work reported.
    #[error("{error}")]
    Undone {
        error: Box<Error>,
        also: Vec<String>,
    },
}

impl Error {
    /// Lines for the user that come before the error (what a cleanup reported).
    pub fn also(&self) -> Vec<String> {
        match self {
            Error::Ops(e) => e.also(),
            Error::Infra { source, .. } => source.also(),
            Error::Undone { error, also } => {
                let mut lines = error.also();
                lines.extend(also.iter().cloned());
                lines
            }
            _ => Vec::new(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
