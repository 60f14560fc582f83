//! `berth start [-a] [-i] CONTAINER...`: starts created or stopped containers.

use std::path::Path;

use anyhow::{bail, Result};
use berth::container::attach::{self, Hello};
use berth::container::lifecycle::{self, monitor_alive, Paths};
use berth::container::monitor::{Report, SOCKET};
use berth::container::{ContainerStore, Record, Status};

use super::attach::{stream, Attach};
use super::{ctr, Ctx, Exit};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short, long)]
    attach: bool,
    /// Attach the container's STDIN
    #[arg(short, long)]
    interactive: bool,
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let root = &ctx.settings.root;
    if args.attach || args.interactive {
        if args.containers.len() > 1 {
            bail!("you cannot start and attach multiple containers at once");
        }
        let (store, r) = ctr::find(root, &args.containers[0])?;
        let code = start_attached(root, &store, &r, args.interactive)?;
        if code != 0 {
            return Err(Exit::silent(code).into());
        }
        return Ok(());
    }
    ctr::each(&args.containers, |c| {
        let (store, r) = ctr::find(root, c)?;
        start_detached(root, &store, &r)
    })
}

/// Starts a container in the background; an error when it could not be started.
pub fn start_detached(root: &Path, store: &ContainerStore, r: &Record) -> Result<()> {
    match r.state.status {
        Status::Running | Status::Restarting => return Ok(()),
        Status::Paused => bail!("cannot start a paused container, try unpause instead"),
        _ => {}
    }
    let paths = Paths::new(root, store, r);
    if monitor_alive(r) {
        // A created container whose monitor waits for the go.
        let conn = attach::connect(&paths.dir, SOCKET)?;
        return wait_started(conn);
    }
    let r = lifecycle::prepare(root, store, r)?;
    store.update(&r.id, |r| r.state.manually_stopped = false)?;
    let report = spawned(
        root,
        store,
        &r,
        lifecycle::spawn_monitor(root, &paths, &r.id, true),
    )?;
    if !report.ok {
        return Err(Exit::with_message(report.code, report.message).into());
    }
    Ok(())
}

/// A monitor that could not even start leaves the host setup to undo here.
pub fn spawned(
    root: &Path,
    store: &ContainerStore,
    r: &Record,
    result: Result<Report, berth::container::ContainerError>,
) -> Result<Report> {
    match result {
        Ok(report) => Ok(report),
        Err(e) => {
            let paths = Paths::new(root, store, r);
            if let Err(cleanup) = lifecycle::teardown(store, r, &paths) {
                eprintln!("Error: undoing the setup of {}: {cleanup:#}", r.id);
            }
            Err(e.into())
        }
    }
}

fn wait_started(mut conn: std::os::unix::net::UnixStream) -> Result<()> {
    use berth::container::attach::Frame;
    Frame::Hello(Hello {
        start: true,
        ..Hello::default()
    })
    .write_to(&mut conn)?;
    loop {
        match Frame::read_from(&mut conn)? {
            Some(Frame::Started) => return Ok(()),
            Some(Frame::Failed { code, message }) => {
                return Err(Exit::with_message(code, message).into())
            }
            Some(Frame::Exit(_)) | None => bail!("the container exited before it started"),
            Some(_) => {}
        }
    }
}

/// Starts a container with this terminal attached; returns its exit status.
pub fn start_attached(root: &Path, store: &ContainerStore, r: &Record, stdin: bool) -> Result<i32> {
    match r.state.status {
        Status::Running | Status::Restarting | Status::Paused => {
            bail!("container {} is already running: use `berth attach`", r.id)
        }
        _ => {}
    }
    let paths = Paths::new(root, store, r);
    let mut monitor_pid = 0;
    if !monitor_alive(r) {
        let r = lifecycle::prepare(root, store, r)?;
        store.update(&r.id, |r| r.state.manually_stopped = false)?;
        let report = spawned(
            root,
            store,
            &r,
            lifecycle::spawn_monitor(root, &paths, &r.id, false),
        )?;
        if !report.ok {
            lifecycle::reap_monitor(report.monitor_pid);
            return Err(Exit::with_message(report.code, report.message).into());
        }
        monitor_pid = report.monitor_pid;
    }
    let conn = attach::connect(&paths.dir, SOCKET)?;
    let hello = Hello {
        stdin: stdin && r.config.open_stdin,
        stdout: true,
        stderr: true,
        start: true,
    };
    let streamed = stream(
        conn,
        hello,
        Attach {
            stdin: stdin && r.config.open_stdin,
            tty: r.config.tty,
            sig_proxy: Some((paths.runtime(r), r.id.clone())),
        },
    );
    lifecycle::reap_monitor(monitor_pid);
    streamed
}
