//! The compose model's error: every variant names the file, the line or the path
//! (`services.web.ports[1]`) at fault, as docker compose's messages do.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("no configuration file provided: not found (looked for compose.yaml, compose.yml, docker-compose.yaml, docker-compose.yml from {dir} upwards)")]
    NoFile { dir: PathBuf },
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// YAML syntax; the parser's message carries the line and column.
    #[error("{path}: {source}")]
    Yaml {
        path: PathBuf,
        #[source]
        source: serde_norway::Error,
    },
    #[error("{path}: top-level object must be a mapping")]
    NotAMapping { path: PathBuf },
    #[error("{path}: {field}: {message}")]
    Invalid {
        path: PathBuf,
        field: String,
        message: String,
    },
    #[error("{path}: invalid interpolation format for {field}: {value:?}; you may need to escape any $ with another $")]
    InterpolationFormat {
        path: PathBuf,
        field: String,
        value: String,
    },
    #[error(
        "{path}: error while interpolating {field}: required variable {var} is missing a value{}",
        colon(message)
    )]
    RequiredVariable {
        path: PathBuf,
        field: String,
        var: String,
        message: String,
    },
    #[error("{path}: line {line}: {message}")]
    EnvFile {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("service {service:?} extends {target:?}, which is not defined in {path}")]
    ExtendsUnknown {
        service: String,
        target: String,
        path: PathBuf,
    },
    #[error("circular reference: extends {chain}")]
    ExtendsCycle { chain: String },
    #[error("include: {path}: {what} {name:?} is already defined")]
    IncludeConflict {
        path: PathBuf,
        what: &'static str,
        name: String,
    },
    #[error(
        "service {service:?} depends on undefined service {dependency:?}: invalid compose project"
    )]
    UnknownDependency { service: String, dependency: String },
    #[error(
        "service {service:?} depends on service {dependency:?}, which is disabled by its profiles"
    )]
    DisabledDependency { service: String, dependency: String },
    #[error("dependency cycle detected: {chain}")]
    DependencyCycle { chain: String },
    #[error("service {service:?} refers to undefined {what} {name}: invalid compose project")]
    UndefinedResource {
        service: String,
        what: &'static str,
        name: String,
    },
    #[error("service {service:?} has neither an image nor a build context specified: invalid compose project")]
    NoImage { service: String },
    #[error("no such service: {name}")]
    NoSuchService { name: String },
    #[error("invalid project name {name:?}: must consist only of lowercase alphanumeric characters, hyphens, and underscores as well as start with a letter or number")]
    ProjectName { name: String },
    #[error("{what}: {message}")]
    Usage { what: String, message: String },

    // -- the engine (ops::compose)
    /// A value the container operations refuse, named by its path in the model.
    #[error("{field}: {message}")]
    Field { field: String, message: String },
    #[error("dependency failed to start: {reason}")]
    DependencyFailed { reason: String },
    #[error("{what} {name} declared as external, but could not be found")]
    ExternalMissing { what: &'static str, name: String },
    #[error("service {service:?}: build: {what} is not supported")]
    BuildUnsupported { service: String, what: String },
    #[error("service {service:?} is not running")]
    NotRunning { service: String },
    #[error("service {service:?} has no container number {index}")]
    NoContainer { service: String, index: u32 },
    #[error("interrupted")]
    Interrupted,
}

fn colon(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

pub type Result<T, E = ComposeError> = std::result::Result<T, E>;
