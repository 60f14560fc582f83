//! `exec`: run a new process in a running container.

use std::collections::HashSet;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use berth_runtime::container::{self, ExecOptions};
use oci_spec::runtime::{Capability, LinuxCapabilities, Process};

use super::foreground::{hold_signals, receive_master, supervise};
use crate::Global;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container id
    pub id: String,
    /// The command and its arguments (unless --process is given)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
    /// A process.json (the `process` object of the runtime spec) to run instead
    #[arg(long, short = 'p')]
    pub process: Option<PathBuf>,
    /// Allocate a pseudo-terminal
    #[arg(long, short = 't')]
    pub tty: bool,
    /// Unix socket that receives the pty master
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Do not wait for the process
    #[arg(long, short = 'd')]
    pub detach: bool,
    /// File to write the process's pid to
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Working directory in the container
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// Environment variable KEY=VALUE (repeatable)
    #[arg(long, short = 'e')]
    pub env: Vec<String>,
    /// UID[:GID] to run as
    #[arg(long, short = 'u')]
    pub user: Option<String>,
    /// Additional group id (repeatable)
    #[arg(long = "additional-gids", short = 'g')]
    pub additional_gids: Vec<u32>,
    /// Add a capability (repeatable)
    #[arg(long = "cap", short = 'c')]
    pub caps: Vec<String>,
    /// Set no_new_privs for the process
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// AppArmor profile for the process
    #[arg(long)]
    pub apparmor: Option<String>,
    /// SELinux label for the process
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    /// Pass this many fds beyond stdio to the process
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Put the process in this sub-cgroup: path, or controller[,controller]:path (repeatable)
    #[arg(long)]
    pub cgroup: Vec<String>,
    /// Allow exec in a paused container
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
}

#[inline(never)] // see main()
pub fn run(g: &Global, args: Args) -> Result<u8> {
    hold_signals()?;
    let spec = container::container_config(&g.root, &args.id)?;
    let process = build_process(&args, spec.process().clone())?;
    let own_tty = process.terminal().unwrap_or(false) && args.console_socket.is_none();
    if own_tty && args.detach {
        bail!("cannot allocate a tty when detaching without --console-socket");
    }
    let (ours, theirs) = UnixStream::pair().context("creating console socket pair")?;
    let opts = ExecOptions {
        root: g.root.clone(),
        id: args.id.clone(),
        pid_file: args.pid_file.clone(),
        console_socket: args.console_socket.clone(),
        console_fd: Some(theirs.into()),
        preserve_fds: args.preserve_fds,
        ignore_paused: args.ignore_paused,
        sub_cgroups: args.cgroup.clone(),
    };
    let pid = container::exec(opts, &process)?;
    let master = if own_tty {
        Some(receive_master(ours.as_raw_fd()).context("receiving the pty master")?)
    } else {
        None
    };
    drop(ours);
    if args.detach {
        return Ok(0);
    }
    supervise(pid, master).inspect_err(|_| {
        // Nobody would forward signals to the process or reap it: take it down.
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(pid, None);
    })
}

/// The process to run: a process.json, or the container's process with the flags applied.
fn build_process(args: &Args, base: Option<Process>) -> Result<Process> {
    if let Some(path) = &args.process {
        let text =
            std::fs::read(path).with_context(|| format!("reading --process {}", path.display()))?;
        let text = with_default_user(text);
        let p: Process = berth_runtime::jsonpath::from_slice(&text)
            .with_context(|| format!("parsing --process {}", path.display()))?;
        if p.args().as_ref().is_none_or(|a| a.is_empty()) {
            bail!("--process {}: args must not be empty", path.display());
        }
        return Ok(p);
    }
    if args.command.is_empty() {
        bail!("exec: no command given (pass the command after the container id, or --process)");
    }
    let mut p = base.unwrap_or_default();
    p.set_args(Some(args.command.clone()));
    p.set_terminal(Some(args.tty));
    let mut env = p.env().clone().unwrap_or_default();
    for kv in &args.env {
        let Some((key, _)) = kv.split_once('=') else {
            bail!("--env {kv:?}: expected KEY=VALUE");
        };
        env.retain(|e| e.split_once('=').map(|(k, _)| k) != Some(key));
        env.push(kv.clone());
    }
    p.set_env(Some(env));
    if let Some(cwd) = &args.cwd {
        p.set_cwd(cwd.clone());
    }
    if let Some(user) = &args.user {
        let (uid, gid) = match user.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (user.as_str(), None),
        };
        let uid: u32 = uid
            .parse()
            .with_context(|| format!("--user {user:?}: the uid must be a number"))?;
        p.user_mut().set_uid(uid);
        if let Some(g) = gid {
            let gid: u32 = g
                .parse()
                .with_context(|| format!("--user {user:?}: the gid must be a number"))?;
            p.user_mut().set_gid(gid);
        }
    }
    if !args.additional_gids.is_empty() {
        p.user_mut()
            .set_additional_gids(Some(args.additional_gids.clone()));
    }
    if !args.caps.is_empty() {
        let added: HashSet<Capability> = args
            .caps
            .iter()
            .map(|c| {
                serde_json::from_value(serde_json::Value::String(c.clone()))
                    .with_context(|| format!("--cap {c:?}: unknown capability"))
            })
            .collect::<Result<_>>()?;
        let mut caps = p.capabilities().clone().unwrap_or_else(empty_caps);
        let merge = |set: &Option<HashSet<Capability>>| -> Option<HashSet<Capability>> {
            let mut s = set.clone().unwrap_or_default();
            s.extend(added.iter().copied());
            Some(s)
        };
        caps.set_bounding(merge(caps.bounding()));
        caps.set_effective(merge(caps.effective()));
        caps.set_permitted(merge(caps.permitted()));
        p.set_capabilities(Some(caps));
    }
    if args.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if let Some(a) = &args.apparmor {
        p.set_apparmor_profile(Some(a.clone()));
    }
    if let Some(l) = &args.process_label {
        p.set_selinux_label(Some(l.clone()));
    }
    Ok(p)
}

/// runc reads a process.json without `user` as uid 0, gid 0 (Go's zero value); the
/// runtime-spec types want the field, so it is added when missing. Text that is not a JSON
/// object is left for the parser to report.
fn with_default_user(text: Vec<u8>) -> Vec<u8> {
    match serde_json::from_slice::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Object(mut map)) if !map.contains_key("user") => {
            map.insert("user".into(), serde_json::json!({ "uid": 0, "gid": 0 }));
            serde_json::to_vec(&map).unwrap_or(text)
        }
        _ => text,
    }
}

fn empty_caps() -> LinuxCapabilities {
    let mut c = LinuxCapabilities::default();
    c.set_bounding(None);
    c.set_effective(None);
    c.set_permitted(None);
    c.set_inheritable(None);
    c.set_ambient(None);
    c
}
