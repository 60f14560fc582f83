//! Berth's manager. [`ops`] is the operations layer every front end (the `berth` CLI in
//! main.rs and cli/, and the coming API service, compose and build) calls; the modules below
//! it hold the stores, the registry client, spec generation, networking and the container
//! lifecycle. [`render`] has the renderers front ends share.

pub mod api;
pub mod archive;
pub mod build;
pub mod compose;
pub mod config;
pub mod container;
pub mod content;
pub mod credentials;
pub mod distribution;
pub mod events;
pub mod image;
pub mod kube;
pub mod lock;
pub mod logs;
pub mod manifest;
pub mod network;
pub mod ops;
pub mod platform;
pub mod progress;
pub mod reference;
pub mod render;
pub mod rootless;
pub mod snapshot;
pub mod specgen;
pub mod template;
pub mod unpack;
pub mod volume;
