//! `berth system service`, `info`, `version`, `system df`, `system prune`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use berth::api::{Endpoint, ServeOptions, TlsFiles};

use super::Ctx;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Serve the Docker Engine API on a unix socket (or TCP with TLS)
    Service(ServiceArgs),
    /// Show docker disk usage
    Df(super::sysinfo::DfArgs),
    /// Remove unused data
    Prune(super::sysinfo::PruneArgs),
    /// Display system-wide information
    Info(super::sysinfo::FormatArgs),
    /// Get real time events from the server
    Events(super::events::Args),
}

#[derive(Debug, clap::Args)]
pub struct ServiceArgs {
    /// Seconds without a request before the service exits (0: run until signalled)
    #[arg(short, long, default_value_t = 5)]
    time: u64,
    /// CA certificate that client certificates must be signed by (tcp://)
    #[arg(long)]
    tlscacert: Option<PathBuf>,
    /// The service's certificate (tcp://)
    #[arg(long)]
    tlscert: Option<PathBuf>,
    /// The service's private key (tcp://)
    #[arg(long)]
    tlskey: Option<PathBuf>,
    /// Serve tcp:// without TLS: anyone who can connect controls this host as root
    #[arg(long)]
    insecure_tcp: bool,
    /// Log every request on stderr
    #[arg(long)]
    debug: bool,
    /// Where to listen: unix:///PATH or tcp://HOST:PORT
    #[arg(default_value = "unix:///run/berth/berth.sock")]
    uri: String,
}

pub fn run(ctx: &Ctx, cmd: Command) -> Result<()> {
    match cmd {
        Command::Service(a) => service(ctx, a),
        Command::Df(a) => super::sysinfo::df(ctx, a),
        Command::Prune(a) => super::sysinfo::prune(ctx, a),
        Command::Info(a) => super::sysinfo::info(ctx, a),
        Command::Events(a) => super::events::run(ctx, a),
    }
}

fn service(ctx: &Ctx, a: ServiceArgs) -> Result<()> {
    let endpoint = Endpoint::parse(&a.uri)?;
    let tls = match (a.tlscacert, a.tlscert, a.tlskey) {
        (Some(ca), Some(cert), Some(key)) => Some(TlsFiles { ca, cert, key }),
        (None, None, None) => None,
        _ => bail!("TLS needs all of --tlscacert, --tlscert and --tlskey"),
    };
    if let Endpoint::Tcp(addr) = &endpoint {
        if tls.is_none() && a.insecure_tcp {
            eprintln!(
                "WARNING: serving the API on tcp://{addr} without TLS: anyone who can reach \
                 it can run anything as root on this host"
            );
        }
    }
    let opts = ServeOptions {
        endpoint,
        idle: (a.time > 0).then(|| Duration::from_secs(a.time)),
        tls,
        insecure_tcp: a.insecure_tcp,
        debug: a.debug,
    };
    let engine = ctx.engine.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(256)
        .build()
        .context("starting the async runtime")?;
    rt.block_on(berth::api::serve(engine, opts, |ep| {
        eprintln!("berth: API service listening on {ep}");
    }))?;
    // Blocking operations of requests abandoned by a stop are not waited for.
    rt.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}
