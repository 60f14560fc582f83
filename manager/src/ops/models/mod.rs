//! Typed requests and results, shaped like the Docker Engine API's models (docker's field
//! names through serde), so that an API service deserialises a request body straight into
//! the same struct the CLI's flags parse into, and serialises the same results the CLI
//! renders.

mod container;
mod container_json;
mod filters;
mod image;
mod network;
pub(crate) mod serde_helpers;
mod system;
mod volume;

pub use crate::progress::{ErrorDetail, JsonMessage, ProgressDetail};
pub use container::*;
pub use container_json::*;
pub use filters::{FilterSyntax, Filters};
pub use image::*;
pub use network::*;
pub use system::*;
pub use volume::*;
