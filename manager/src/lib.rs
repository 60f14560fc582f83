//! Berth's manager: image references, the content store and image records, and the registry
//! client. The `berth` binary (main.rs and cli/) is a thin layer over this library.

pub mod archive;
pub mod config;
pub mod container;
pub mod content;
pub mod credentials;
pub mod distribution;
pub mod image;
pub mod lock;
pub mod logs;
pub mod manifest;
pub mod network;
pub mod platform;
pub mod progress;
pub mod reference;
pub mod snapshot;
pub mod specgen;
pub mod template;
pub mod unpack;
pub mod volume;
