//! The operations layer's error: one enum whose variants carry their context, each with a
//! class that maps one-to-one onto docker's error classes (moby's errdefs), so an API
//! service takes its HTTP status from the type, never from the text.
//!
//! Errors of the modules below are wrapped transparently (their messages and causes are
//! what the user sees, unchanged); their class is read from their own variants.

use std::io;
use std::path::PathBuf;

use crate::archive::ArchiveError;
use crate::config::ConfigError;
use crate::container::ContainerError;
use crate::credentials::CredentialsError;
use crate::distribution::DistributionError;
use crate::image::ImageError;
use crate::logs::LogError;
use crate::network::{AttachError, NetnsError, PortError, StoreError};
use crate::reference::ReferenceError;
use crate::snapshot::SnapshotError;
use crate::specgen::flags::FlagError;
use crate::specgen::{ImageConfigError, SpecGenError, UserError, WorkdirError};
use crate::unpack::UnpackError;
use crate::volume::VolumeError;

use super::models::FilterSyntax;

/// Docker's error classes (moby's `errdefs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    NotFound,
    InvalidParameter,
    Conflict,
    Unauthorized,
    Forbidden,
    Unavailable,
    NotModified,
    Cancelled,
    /// Anything else: the system failed (I/O, a runtime, a corrupt store).
    System,
}

impl ErrorClass {
    /// The HTTP status the Engine API answers with for this class.
    pub fn status_code(self) -> u16 {
        match self {
            Self::NotFound => 404,
            Self::InvalidParameter => 400,
            Self::Conflict => 409,
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::Unavailable => 503,
            Self::NotModified => 304,
            // nginx's "client closed request": nobody is left to read it.
            Self::Cancelled => 499,
            Self::System => 500,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    // -- not found
    #[error("No such image: {what}")]
    NoSuchImage { what: String },
    #[error("No such object: {what}")]
    NoSuchObject { what: String },
    #[error("No public port '{port}' published for {container}")]
    NoSuchPort { container: String, port: String },
    #[error("Could not find the file {path} in container")]
    NoSuchPath {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{path}: no such directory in the container")]
    NoSuchDirectory {
        path: String,
        #[source]
        source: io::Error,
    },

    // -- conflicts with the container's state
    #[error("container {id} is not running")]
    NotRunning { id: String },
    #[error("container {id} is paused, unpause the container before exec")]
    ExecPaused { id: String },
    #[error("container {id} is already paused")]
    AlreadyPaused { id: String },
    #[error("container {id} is not paused")]
    NotPaused { id: String },
    #[error("cannot start a paused container, try unpause instead")]
    StartPaused { id: String },
    #[error("container {id} is already running: use `berth attach`")]
    AlreadyRunning { id: String },
    #[error("Cannot kill container: {what}: Container {id} is not running")]
    KillNotRunning { what: String, id: String },
    #[error("You cannot remove a {status} container {id}. Stop the container before attempting removal or force remove")]
    RemoveActive { id: String, status: String },
    #[error("flag --network: container {what} is not running")]
    NetworkContainerNotRunning { what: String },
    #[error("Cannot link to a non running container: /{target} AS /{name}/{alias}")]
    LinkNotRunning {
        target: String,
        name: String,
        alias: String,
    },
    #[error("container {what} shares a network namespace (--network {mode}): it cannot be connected or disconnected")]
    SharedNetns { what: String, mode: String },
    #[error("container {what} has no network namespace set up by berth")]
    NoEndpoint { what: String },
    #[error("container {container} is already connected to network {network}")]
    AlreadyConnected { container: String, network: String },
    #[error("conflict: unable to delete {what} (must be forced) - image is referenced in multiple repositories")]
    ImageAmbiguousDelete { what: String },
    #[error("conflict: unable to remove repository reference \"{what}\" (must force) - container {container} is using its referenced image {image}")]
    ImageInUse {
        what: String,
        container: String,
        image: String,
    },
    #[error("{what} is ambiguous: it matches several images")]
    ImageAmbiguous { what: String },
    #[error("{dir} already has an image mounted: run `berth image unmount {dir}` first")]
    AlreadyMounted { dir: PathBuf },
    #[error("image {image} has no layers to mount")]
    NoLayers { image: String },
    #[error("removing view {key} also failed: {cleanup}")]
    MountUndo {
        key: String,
        cleanup: String,
        #[source]
        source: Box<SnapshotError>,
    },

    // -- invalid parameters
    #[error(transparent)]
    Flag(#[from] FlagError),
    /// A compose file or project the model refuses, or a compose step that failed.
    #[error(transparent)]
    Compose(#[from] crate::compose::ComposeError),
    #[error("flag --filter")]
    FilterSyntax(#[from] FilterSyntax),
    #[error("flag --filter: invalid filter {key:?} ({allowed})")]
    FilterKey { key: String, allowed: &'static str },
    #[error("flag --filter: invalid status filter {value:?}")]
    FilterStatus { value: String },
    #[error("flag --filter: invalid filter {term:?} ({hint})")]
    FilterTerm { term: String, hint: &'static str },
    #[error("flag --{flag}: unsupported mode {value:?} (host or private)")]
    NamespaceMode { flag: &'static str, value: String },
    #[error("flag --network: empty network name")]
    EmptyNetworkName,
    #[error("flag --hostname: conflicting options: hostname and the network mode host")]
    HostnameWithHostNetwork,
    #[error(
        "flag --publish: conflicting options: port publishing and the container type network mode"
    )]
    PublishWithoutNetns,
    #[error("flag --init: no init binary found (install tini)")]
    NoInitBinary,
    #[error("flag --dns: {value:?} is not an IP address")]
    DnsNotIp { value: String },
    #[error("flag --add-host: {name}:host-gateway needs a bridge network")]
    HostGatewayNeedsBridge { name: String },
    #[error("flag --pull: invalid value {value:?} (always, missing or never)")]
    PullPolicy { value: String },
    #[error("invalid {field} {value:?}: {reason}")]
    InvalidField {
        field: &'static str,
        value: String,
        reason: String,
    },
    /// docker's own words for a driver it does not know at all.
    #[error("logger: no log driver named '{name}' is registered")]
    UnknownLogDriver { name: String },
    #[error("invalid mount config for type \"bind\": bind source path does not exist: {path}")]
    BindSourceMissing { path: PathBuf },
    #[error("flag --driver: unsupported driver {driver:?} (only bridge)")]
    NetworkDriver { driver: String },
    #[error("flag --driver: unknown volume driver {driver:?} (only local)")]
    VolumeDriver { driver: String },
    #[error("flag --label: invalid label {label:?} (expected KEY=VALUE)")]
    NetworkLabel { label: String },
    #[error("flag {flag}: invalid value {value:?} (want KEY=VALUE)")]
    KeyValue { flag: &'static str, value: String },
    #[error(
        "flag --format: unknown archive format {format:?} (use docker-archive or oci-archive)"
    )]
    ArchiveFormat { format: String },
    #[error("tag can't be used with --all-tags/-a")]
    TagWithAllTags,
    #[error("refusing to create a tag with a digest reference: {target}")]
    TagWithDigest { target: String },
    #[error("copying between containers is not supported")]
    CopyBetweenContainers,
    #[error("must specify at least one container source")]
    CopyWithoutContainer,
    #[error("destination directory {path} does not exist in the container (a path ending in / must be an existing directory)")]
    CopyDestNotDir { path: String },
    #[error("cannot copy a directory to {path}: it is a file in the container")]
    CopyDirOverFile { path: String },
    #[error("flag --filter: invalid filter {term:?} for prune (use label= or label!=)")]
    VolumePruneFilter { term: String },
    #[error("copying into the container at {path}")]
    CopyIn {
        path: String,
        #[source]
        source: io::Error,
    },

    // -- registries and credentials
    #[error("--password and --password-stdin are mutually exclusive")]
    PasswordTwice,
    #[error("username and password required: use --username and --password-stdin")]
    NoCredentials,
    #[error("flag --username is required with a password")]
    NoUsername,
    #[error("empty password for {registry}")]
    EmptyPassword { registry: String },
    #[error("login to {registry}")]
    Login {
        registry: String,
        #[source]
        source: Box<DistributionError>,
    },
    #[error("reading credentials for {registry}")]
    ReadCredentials {
        registry: String,
        #[source]
        source: CredentialsError,
    },
    #[error("An image does not exist locally with the tag: {name}")]
    NothingToPush { name: String },
    #[error("An image does not exist locally with the tag: {name}")]
    NoTagsToPush { name: String },
    #[error("image record {name:?} has no valid name")]
    UnnamedRecord { name: Option<String> },

    // -- context around an error of a step
    #[error("pulling {reference}")]
    Pull {
        reference: String,
        #[source]
        source: Box<OpsError>,
    },
    #[error("pushing {reference}")]
    Push {
        reference: String,
        #[source]
        source: Box<OpsError>,
    },
    #[error("unpacking {reference}")]
    Unpack {
        reference: String,
        #[source]
        source: Box<OpsError>,
    },
    #[error("flag --platform")]
    Platform(#[source] crate::platform::PlatformError),
    #[error(
        "flag --platform: {value:?} names several platforms; berth builds one image at a time"
    )]
    SeveralPlatforms { value: String },
    #[error("image with reference {image} was found but does not match the specified platform: wanted {wanted}, actual: {actual}")]
    PlatformMismatch {
        image: String,
        wanted: String,
        actual: String,
    },
    #[error("flag --snapshotter")]
    Snapshotter(#[source] SnapshotError),
    #[error("loading {what}")]
    Load {
        what: String,
        #[source]
        source: Box<OpsError>,
    },
    #[error("connecting to the monitor of {id}")]
    MonitorConnect {
        id: String,
        #[source]
        source: io::Error,
    },
    #[error("talking to the container's monitor")]
    MonitorTalk(#[source] io::Error),
    #[error("reading from the container's monitor")]
    MonitorRead(#[source] io::Error),
    #[error("the container's monitor went away")]
    MonitorGone,
    #[error("the container exited before it started")]
    ExitedBeforeStart,
    /// The container could not be started: docker's exit status for it (125, 126 for a
    /// command that cannot be run, 127 for one that is not found) and the message.
    #[error("{message}")]
    StartFailed { code: i32, message: String },
    #[error("running {path}")]
    RuntimeExec {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The runtime's `ps` failed; its stderr is the message.
    #[error("{stderr}")]
    RuntimePs { code: i32, stderr: String },
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("{what} panicked")]
    Panicked { what: &'static str },
    #[error("{what}")]
    Task {
        what: &'static str,
        #[source]
        source: tokio::task::JoinError,
    },
    #[error("drawing a container {what}")]
    Random {
        what: &'static str,
        #[source]
        source: getrandom::Error,
    },
    #[error("encoding the OCI spec")]
    EncodeSpec(#[source] serde_json::Error),
    #[error("{what}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the operation was cancelled")]
    Cancelled,
    /// The error, with what undoing its half-made work reported (each a line for the user,
    /// shown before the error itself).
    #[error(transparent)]
    Undo(Box<Undo>),

    // -- the modules below, unchanged
    #[error(transparent)]
    Container(Box<ContainerError>),
    #[error(transparent)]
    Image(Box<ImageError>),
    #[error(transparent)]
    Distribution(Box<DistributionError>),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(transparent)]
    Network(#[from] StoreError),
    #[error(transparent)]
    Attach(#[from] AttachError),
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error(transparent)]
    Port(#[from] PortError),
    #[error(transparent)]
    Etc(#[from] crate::network::etc::EtcError),
    #[error(transparent)]
    Dns(#[from] crate::network::dns::DnsError),
    #[error(transparent)]
    Volume(Box<VolumeError>),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Unpack2(Box<UnpackError>),
    #[error(transparent)]
    SpecGen(#[from] SpecGenError),
    #[error(transparent)]
    Rootless(#[from] crate::rootless::RootlessError),
    #[error(transparent)]
    ImageConfig(#[from] ImageConfigError),
    #[error(transparent)]
    User(#[from] UserError),
    #[error(transparent)]
    Workdir(#[from] WorkdirError),
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Archive(Box<ArchiveError>),
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    #[error(transparent)]
    Config(Box<ConfigError>),
    #[error(transparent)]
    Content(#[from] crate::content::ContentError),
    #[error(transparent)]
    Build(Box<crate::build::BuildError>),
}

/// The big errors of the modules below are boxed, so that every `Result` stays small.
macro_rules! boxed_from {
    ($($ty:ty => $variant:ident),* $(,)?) => {
        $(impl From<$ty> for OpsError {
            fn from(e: $ty) -> Self {
                OpsError::$variant(Box::new(e))
            }
        })*
    };
}

boxed_from! {
    ContainerError => Container,
    ImageError => Image,
    DistributionError => Distribution,
    VolumeError => Volume,
    UnpackError => Unpack2,
    ArchiveError => Archive,
    ConfigError => Config,
    crate::build::BuildError => Build,
}

/// An error and the lines its cleanup reported (see [`OpsError::Undo`]).
#[derive(Debug)]
pub struct Undo {
    pub error: OpsError,
    pub also: Vec<String>,
}

impl std::fmt::Display for Undo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for Undo {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.source()
    }
}

pub type Result<T, E = OpsError> = std::result::Result<T, E>;

impl OpsError {
    /// Wraps an error with lines about the cleanup that followed it; nothing when there are
    /// none.
    pub fn with_also(self, also: Vec<String>) -> Self {
        if also.is_empty() {
            return self;
        }
        match self {
            OpsError::Undo(mut u) => {
                u.also.extend(also);
                OpsError::Undo(u)
            }
            error => OpsError::Undo(Box::new(Undo { error, also })),
        }
    }

    /// What cleanup reported beside this error, for the front end to show first: what the
    /// modules below reported (first, as it happened first), then this layer's cleanup.
    pub fn also(&self) -> Vec<String> {
        let mut lines = self
            .inner_container()
            .map(ContainerError::also)
            .unwrap_or_default();
        if let OpsError::Undo(u) = self {
            lines.extend(u.also.iter().cloned());
        }
        lines
    }

    fn inner_container(&self) -> Option<&ContainerError> {
        match self {
            OpsError::Container(c) => Some(&**c),
            OpsError::Undo(u) => u.error.inner_container(),
            OpsError::Pull { source, .. } | OpsError::Push { source, .. } => {
                source.inner_container()
            }
            _ => None,
        }
    }

    pub fn io(what: impl Into<String>, source: io::Error) -> Self {
        OpsError::Io {
            what: what.into(),
            source,
        }
    }

    /// Docker's class of this error.
    pub fn class(&self) -> ErrorClass {
        use ErrorClass::*;
        match self {
            Self::NoSuchImage { .. }
            | Self::NoSuchObject { .. }
            | Self::NoSuchPort { .. }
            | Self::NoSuchPath { .. }
            | Self::NoSuchDirectory { .. }
            | Self::NothingToPush { .. }
            | Self::NoTagsToPush { .. }
            // docker: a volume driver is a plugin, and an unknown one is not found.
            | Self::VolumeDriver { .. } => NotFound,

            Self::NotRunning { .. }
            | Self::ExecPaused { .. }
            | Self::AlreadyPaused { .. }
            | Self::NotPaused { .. }
            | Self::StartPaused { .. }
            | Self::AlreadyRunning { .. }
            | Self::KillNotRunning { .. }
            | Self::RemoveActive { .. }
            | Self::NetworkContainerNotRunning { .. }
            | Self::LinkNotRunning { .. }
            | Self::SharedNetns { .. }
            | Self::NoEndpoint { .. }
            | Self::AlreadyConnected { .. }
            | Self::ImageAmbiguousDelete { .. }
            | Self::ImageInUse { .. }
            | Self::AlreadyMounted { .. } => Conflict,
            Self::NoLayers { .. } => InvalidParameter,

            Self::Flag(_)
            | Self::FilterSyntax(_)
            | Self::FilterKey { .. }
            | Self::FilterStatus { .. }
            | Self::FilterTerm { .. }
            | Self::NamespaceMode { .. }
            | Self::EmptyNetworkName
            | Self::HostnameWithHostNetwork
            | Self::PublishWithoutNetns
            | Self::NoInitBinary
            | Self::DnsNotIp { .. }
            | Self::HostGatewayNeedsBridge { .. }
            | Self::PullPolicy { .. }
            | Self::InvalidField { .. }
            | Self::UnknownLogDriver { .. }
            | Self::BindSourceMissing { .. }
            | Self::NetworkDriver { .. }
            | Self::NetworkLabel { .. }
            | Self::KeyValue { .. }
            | Self::ArchiveFormat { .. }
            | Self::TagWithAllTags
            | Self::TagWithDigest { .. }
            | Self::CopyBetweenContainers
            | Self::CopyWithoutContainer
            | Self::CopyDestNotDir { .. }
            | Self::CopyDirOverFile { .. }
            | Self::ImageAmbiguous { .. }
            | Self::PasswordTwice
            | Self::NoCredentials
            | Self::NoUsername
            | Self::EmptyPassword { .. }
            | Self::UnnamedRecord { .. }
            | Self::Platform(_)
            | Self::PlatformMismatch { .. }
            | Self::SeveralPlatforms { .. }
            | Self::Snapshotter(_) => InvalidParameter,

            Self::VolumePruneFilter { .. } => InvalidParameter,
            Self::Cancelled => Cancelled,
            // docker: a command that cannot be found or run is the caller's mistake.
            Self::StartFailed {
                code: 126 | 127, ..
            } => InvalidParameter,

            Self::Login { source, .. } => distribution_class(source),
            Self::Pull { source, .. }
            | Self::Push { source, .. }
            | Self::Unpack { source, .. }
            | Self::Load { source, .. } => source.class(),
            Self::Undo(u) => u.error.class(),

            Self::Container(e) => container_class(e),
            Self::Image(e) => image_class(e),
            Self::Distribution(e) => distribution_class(e),
            Self::Reference(_) => InvalidParameter,
            Self::Network(e) => network_class(e),
            Self::Dns(crate::network::dns::DnsError::Store(e)) => network_class(e),
            Self::Attach(e) => attach_class(e),
            Self::Port(PortError::NoFreePort { .. }) => Unavailable,
            Self::Port(_) => InvalidParameter,
            Self::Etc(crate::network::etc::EtcError::AddHost { .. }) => InvalidParameter,
            Self::Volume(e) => volume_class(e),
            Self::Snapshot(SnapshotError::UnknownBackend { .. }) => InvalidParameter,
            Self::SpecGen(e) => specgen_class(e),
            Self::Rootless(
                crate::rootless::RootlessError::Network { .. }
                | crate::rootless::RootlessError::NoSlirp { .. }
                | crate::rootless::RootlessError::NetworkCreate { .. }
                | crate::rootless::RootlessError::Snapshotter { .. },
            ) => InvalidParameter,
            Self::User(
                UserError::NoSuchUser { .. }
                | UserError::NoSuchGroup { .. }
                | UserError::IdOutOfRange { .. },
            ) => InvalidParameter,
            Self::Workdir(WorkdirError::Relative { .. }) => InvalidParameter,
            Self::Log(
                LogError::InvalidOption { .. }
                | LogError::UnknownOption { .. }
                | LogError::InvalidTime { .. },
            ) => InvalidParameter,
            Self::Archive(e) => archive_class(e),
            Self::Config(_) => InvalidParameter,
            Self::Compose(e) => compose_class(e),
            Self::Build(e) if e.is_invalid_input() => InvalidParameter,
            _ => System,
        }
    }

    /// The HTTP status of [`Self::class`].
    pub fn status_code(&self) -> u16 {
        self.class().status_code()
    }
}

fn compose_class(e: &crate::compose::ComposeError) -> ErrorClass {
    use crate::compose::ComposeError as C;
    match e {
        C::NoFile { .. } | C::NoSuchService { .. } | C::NoContainer { .. } => ErrorClass::NotFound,
        C::Read { .. } | C::DependencyFailed { .. } | C::Interrupted => ErrorClass::System,
        C::NotRunning { .. } => ErrorClass::Conflict,
        _ => ErrorClass::InvalidParameter,
    }
}

fn container_class(e: &ContainerError) -> ErrorClass {
    use ErrorClass::*;
    match e {
        ContainerError::NotFound { .. } => NotFound,
        ContainerError::Ambiguous { .. }
        | ContainerError::BadName { .. }
        | ContainerError::RuntimeNotFound { .. } => InvalidParameter,
        ContainerError::NameInUse { .. }
        | ContainerError::State { .. }
        | ContainerError::PortAllocated { .. } => Conflict,
        ContainerError::Volume(v) => volume_class(v),
        ContainerError::NetworkStore(s) => network_class(s),
        ContainerError::Attach(a) => attach_class(a),
        ContainerError::Undo(u) => container_class(&u.error),
        _ => System,
    }
}

fn image_class(e: &ImageError) -> ErrorClass {
    match e {
        ImageError::NotFound { .. } => ErrorClass::NotFound,
        ImageError::Reference(_) => ErrorClass::InvalidParameter,
        _ => ErrorClass::System,
    }
}

fn distribution_class(e: &DistributionError) -> ErrorClass {
    use ErrorClass::*;
    match e {
        DistributionError::Connect { .. } | DistributionError::Request { .. } => Unavailable,
        DistributionError::BadCredentials { .. }
        | DistributionError::AuthRequired { .. }
        | DistributionError::NoChallenge { .. } => Unauthorized,
        DistributionError::Denied { .. } => Forbidden,
        DistributionError::ManifestNotFound { .. }
        | DistributionError::BlobNotFound { .. }
        | DistributionError::PlatformMismatch { .. } => NotFound,
        DistributionError::Status { status, .. } => match status.as_u16() {
            401 => Unauthorized,
            403 => Forbidden,
            404 => NotFound,
            s if s >= 500 || s == 429 => Unavailable,
            _ => System,
        },
        DistributionError::Reference(_) => InvalidParameter,
        DistributionError::Image(i) => image_class(i),
        DistributionError::Manifest(crate::manifest::ManifestError::NoPlatform { .. }) => NotFound,
        DistributionError::Cleanup { source, .. } => distribution_class(source),
        _ => System,
    }
}

fn network_class(e: &StoreError) -> ErrorClass {
    use ErrorClass::*;
    match e {
        StoreError::NotFound { .. } => NotFound,
        StoreError::Exists { .. } => Conflict,
        // dockerd: removing a network in use or a pre-defined one is forbidden.
        StoreError::InUse { .. } | StoreError::Predefined { .. } => Forbidden,
        StoreError::InvalidName { .. }
        | StoreError::Reserved { .. }
        | StoreError::Ambiguous { .. }
        | StoreError::GatewayOutside { .. }
        | StoreError::RangeOutside { .. }
        | StoreError::SubnetTooSmall { .. }
        | StoreError::Overlap { .. }
        | StoreError::HostRoute { .. } => InvalidParameter,
        StoreError::PoolExhausted { .. } => Unavailable,
        _ => System,
    }
}

fn attach_class(e: &AttachError) -> ErrorClass {
    match e {
        AttachError::Store(s) => network_class(s),
        AttachError::Port(PortError::NoFreePort { .. }) => ErrorClass::Unavailable,
        AttachError::Port(_) | AttachError::BadStaticIp { .. } => ErrorClass::InvalidParameter,
        AttachError::NotAttached { .. } => ErrorClass::NotFound,
        AttachError::Undo { cause, .. } => attach_class(cause),
        _ => ErrorClass::System,
    }
}

fn volume_class(e: &VolumeError) -> ErrorClass {
    use ErrorClass::*;
    match e {
        VolumeError::NotFound { .. } => NotFound,
        VolumeError::InUse { .. } => Conflict,
        VolumeError::NameTooShort { .. }
        | VolumeError::InvalidName { .. }
        | VolumeError::InvalidOptions { .. }
        | VolumeError::InvalidFilter { .. } => InvalidParameter,
        _ => System,
    }
}

fn specgen_class(e: &SpecGenError) -> ErrorClass {
    match e {
        SpecGenError::User(UserError::Read { .. } | UserError::NotRegular { .. })
        | SpecGenError::Build { .. } => ErrorClass::System,
        _ => ErrorClass::InvalidParameter,
    }
}

fn archive_class(e: &ArchiveError) -> ErrorClass {
    match e {
        ArchiveError::Image(i) => image_class(i),
        ArchiveError::Write(_) | ArchiveError::Temp { .. } | ArchiveError::Content(_) => {
            ErrorClass::System
        }
        // Everything else is about the archive given.
        _ => ErrorClass::InvalidParameter,
    }
}

/// An error and its causes, `: `-separated (anyhow's `{:#}`).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(cause) = src {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        src = cause.source();
    }
    s
}

#[cfg(test)]
mod tests;
