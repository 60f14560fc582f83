//! The Dockerfile language, pure: parsing ([`parser`]), instructions into typed commands and
//! stages ([`commands`]), variable expansion ([`expand`]), ARG scoping ([`args`]),
//! `.dockerignore` ([`ignore`]) and the build context's files ([`context`]). The executor
//! that runs a build on the stores is `ops::images::build`.

pub mod args;
pub mod commands;
pub mod context;
pub mod expand;
pub mod git;
pub mod ignore;
pub mod parser;

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{file}:{line}: {message}: {text}")]
    Syntax {
        file: String,
        line: usize,
        message: String,
        text: String,
    },
    #[error("failed to process {word:?}: {message}")]
    Expand { word: String, message: String },
    #[error("{file}:{line}: {message}")]
    Ignore {
        file: String,
        line: usize,
        message: String,
    },
    /// A valid instruction that cannot be carried out as written.
    #[error("{file}:{line}: {message}")]
    Step {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{what} failed: file not found in build context or excluded by .dockerignore: stat {path}: file does not exist")]
    MissingSource { what: &'static str, path: String },
    #[error("{what} failed: no source files were specified")]
    NoSources { what: &'static str },
    #[error("The command '{command}' returned a non-zero code: {code}")]
    RunFailed { command: String, code: i32 },
    #[error("target stage {target:?} could not be found")]
    NoTarget { target: String },
    #[error("archive entry {entry} escapes the destination")]
    Escape { entry: String },
    /// ADD from a URL: the request, the status or the checksum failed.
    #[error("{0}")]
    Download(String),
    /// ADD from a git repository: the remote, the ref, and what git said.
    #[error("failed to fetch {url}#{reference}: {message}")]
    Git {
        url: String,
        reference: String,
        message: String,
    },
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("reading build context {path}")]
    Context {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl BuildError {
    pub fn io(what: impl Into<String>, source: io::Error) -> Self {
        BuildError::Io {
            what: what.into(),
            source,
        }
    }

    /// Whether the request is at fault (docker answers those 400).
    pub fn is_invalid_input(&self) -> bool {
        !matches!(
            self,
            BuildError::Io { .. }
                | BuildError::Context { .. }
                | BuildError::RunFailed { .. }
                | BuildError::Download(_)
                | BuildError::Git { .. }
        )
    }
}
