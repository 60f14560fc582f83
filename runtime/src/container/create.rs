//! `create`: validate the bundle, make the state dir and cgroup, clone the init into its
//! namespaces and drive it to the start barrier.

use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::signal::{kill, Signal};
use nix::sys::stat::Mode;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{mkfifo, Pid};

use super::{io_err, Error};
use crate::cgroups::{self, CgroupPaths};
use crate::config::Bundle;
use crate::hooks;
use crate::linux::{clone, init, namespaces::Plan, proc};
use crate::rootless::{self, MapWriter};
use crate::state::{ContainerDir, State, Status, EXEC_FIFO};
use crate::sync::{channel_pair, Channel, Message, STEP_TIMEOUT};

#[derive(Debug, Default)]
pub struct CreateOptions {
    pub root: PathBuf,
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    /// A connected console socket used when the process wants a terminal and no
    /// `console_socket` path is given (`run` owns the terminal itself this way).
    pub console_fd: Option<OwnedFd>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    pub systemd_cgroup: bool,
    /// runc's rootless mode: a cgroup that cannot be made is skipped (with a warning) along
    /// with the limits, rather than failing the container.
    pub rootless: bool,
}

/// A container at the start barrier; its directory stays locked while this value lives.
#[derive(Debug)]
pub struct Created {
    pub dir: ContainerDir,
    pub state: State,
    /// Whether the process has a terminal (its master went to the console socket).
    pub terminal: bool,
}

pub fn create(opts: CreateOptions) -> Result<Created, Error> {
    crate::state::validate_id(&opts.id)?;
    let bundle = Bundle::load(&opts.bundle)?;
    let linux = bundle.spec.linux().clone().unwrap_or_default();
    if opts.systemd_cgroup {
        cgroups::check_systemd(linux.cgroups_path().as_deref())?;
    }
    // Open namespace paths before anything exists, so a bad path leaves nothing behind.
    let mut plan = Plan::new(&linux)?;
    // What a non-root caller cannot have is refused before anything exists.
    // SAFETY: geteuid cannot fail and touches no memory.
    let writers = if unsafe { libc::geteuid() } != 0 {
        rootless::check(&bundle.spec)?
    } else {
        (MapWriter::Direct, MapWriter::Direct)
    };
    let host = cgroups::Host::read()?;
    let dir = ContainerDir::create(&opts.root, &opts.id)?;
    let mut built = Built {
        dir: Some(dir),
        cgroup: None,
        child: None,
        poststop: None,
    };
    match create_in(&opts, &bundle, &mut plan, &host, writers, &mut built) {
        Ok(state) => Ok(Created {
            terminal: bundle
                .spec
                .process()
                .as_ref()
                .and_then(|p| p.terminal())
                .unwrap_or(false),
            dir: built.dir.take().ok_or_else(|| Error::Init {
                message: "state dir lost".into(),
            })?,
            state,
        }),
        Err(e) => {
            built.undo();
            Err(e)
        }
    }
}

/// runc's checks of a cgroup that already exists: processes in it are only warned about
/// (runc 1.1 still allows sharing a cgroup), but a frozen one would freeze the init halfway
/// through its setup, so it is refused before anything is made.
fn check_existing_cgroup(cgroup: &CgroupPaths) -> Result<(), Error> {
    if cgroup.is_frozen() {
        return Err(Error::Frozen {
            path: cgroup.freezer_file(),
        });
    }
    let pids = cgroup.pids();
    if !pids.is_empty() {
        crate::logging::warn(&format!(
            "container's cgroup is not empty: {} process(es) found",
            pids.len()
        ));
    }
    Ok(())
}

/// What has been made so far, to be undone if a later step fails.
struct Built {
    dir: Option<ContainerDir>,
    cgroup: Option<CgroupPaths>,
    child: Option<Pid>,
    /// Once the init exists, a failed create still ends the lifecycle with the poststop
    /// hooks (runtime-spec: a failing hook stops the container and continues at delete).
    poststop: Option<(Vec<oci_spec::runtime::Hook>, Vec<u8>)>,
}

impl Built {
    fn undo(&mut self) {
        if let Some(pid) = self.child.take() {
            let _ = kill(pid, Signal::SIGKILL);
            // A frozen init cannot die (the freezer holds even SIGKILL): thaw the cgroup
            // that is about to go anyway.
            if let Some(cg) = self.cgroup.as_ref().filter(|cg| cg.is_frozen()) {
                let _ = cg.thaw();
            }
            let _ = reap_within(pid, Duration::from_secs(5));
        }
        if let Some((hooks, state)) = self.poststop.take() {
            for e in hooks::run_all("poststop", &hooks, &state) {
                crate::logging::warn(&format!("cleanup after failed create: {e}"));
            }
        }
        if let Some(cg) = self.cgroup.take() {
            if let Err(e) = cg.remove() {
                crate::logging::warn(&format!("cleanup after failed create: {e}"));
            }
        }
        if let Some(dir) = self.dir.take() {
            if let Err(e) = dir.remove() {
                crate::logging::warn(&format!("cleanup after failed create: {e}"));
            }
        }
    }
}

fn create_in(
    opts: &CreateOptions,
    bundle: &Bundle,
    plan: &mut Plan,
    host: &cgroups::Host,
    writers: (MapWriter, MapWriter),
    built: &mut Built,
) -> Result<State, Error> {
    let Some(dir) = built.dir.as_ref() else {
        return Err(Error::Init {
            message: "state dir missing".into(),
        });
    };
    let spec = &bundle.spec;
    let linux = spec.linux().clone().unwrap_or_default();

    let fifo_path = dir.path.join(EXEC_FIFO);
    mkfifo(&fifo_path, Mode::from_bits_truncate(0o622)).map_err(|e| Error::Io {
        action: "creating",
        path: fifo_path.clone(),
        source: e.into(),
    })?;
    // mkfifo's mode is cut by the umask; any container user must be able to open it.
    fs::set_permissions(&fifo_path, fs::Permissions::from_mode(0o622))
        .map_err(io_err("chmod", &fifo_path))?;
    let fifo = open(&fifo_path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()).map_err(|e| {
        Error::Io {
            action: "opening",
            path: fifo_path.clone(),
            source: e.into(),
        }
    })?;

    let mut limits = cgroups::Limits::from_spec(&linux)?;
    // Only the paths for now: on v1 and hybrid hosts the init is cloned first and builds its
    // rootfs while the directories are made (below), so their mkdirs are off the critical path.
    let mut cgroup = CgroupPaths::plan(host, linux.cgroups_path().as_deref(), &opts.id)?;
    check_existing_cgroup(&cgroup)?;
    // Rootless: the cgroup is made now, to know whether there is one at all.
    let mut made = false;
    if opts.rootless {
        // No device cgroup for an unprivileged user (nor devices it could create).
        limits.devices.clear();
        match cgroup.make() {
            Ok(()) => {
                built.cgroup = Some(cgroup.clone());
                made = true;
            }
            Err(e) => {
                if limits != cgroups::Limits::default() {
                    crate::logging::warn(&format!(
                        "rootless: linux.resources ignored: no writable cgroup ({e})"
                    ));
                }
                cgroup = CgroupPaths::default();
                limits = cgroups::Limits::default();
            }
        }
    }

    let terminal = spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    let console = super::console_for(
        terminal,
        opts.console_socket.as_deref(),
        opts.console_fd.as_ref(),
    )?;

    let own_pid_ns = linux
        .namespaces()
        .iter()
        .flatten()
        .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Pid);
    let mut state = State {
        oci_version: spec.version().clone(),
        id: opts.id.clone(),
        pid: 0,
        pid_start_time: 0,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        owner: String::new(),
        annotations: spec.annotations().clone().unwrap_or_default(),
        cgroup: cgroup.clone(),
        own_pid_ns,
        hooks: spec.hooks().clone(),
    };
    // Before anything that could outlive us: what `delete` needs to clean up after a
    // `create` killed from here on (see state.rs).
    dir.save_early(&state, &bundle.raw)?;
    let hook_state = |pid: i32, status: Status| -> Vec<u8> {
        let mut s = state.clone();
        s.pid = pid;
        serde_json::to_vec(&s.oci(status)).unwrap_or_default()
    };

    // On a cgroup v2 host the init is born in its cgroup (CLONE_INTO_CGROUP), which then has
    // to exist, with its limits, first; elsewhere it is made while the init builds its rootfs.
    let born_inside = cgroup.is_v2();
    let mut cgroup_dir = None;
    if born_inside {
        built.cgroup = Some(cgroup.clone());
        if !made {
            cgroup.make()?;
        }
        cgroup.apply(&limits)?;
        if let Some(dir) = cgroup.unified_dir() {
            let fd = open(
                dir,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| Error::Io {
                action: "opening",
                path: dir.to_path_buf(),
                source: e.into(),
            })?;
            cgroup_dir = Some(fd);
        }
    }

    // Root's init, mapped to other ids, may not reach the sources: the parent opens them. A
    // non-root caller cannot clone mount trees (open_tree needs CAP_SYS_ADMIN) and has no
    // more access than its init: the init binds by path.
    // SAFETY: geteuid cannot fail and touches no memory.
    let bind_sources = if plan.new_user && unsafe { libc::geteuid() } == 0 {
        crate::linux::rootfs::open_bind_sources(spec, &bundle.dir)?
    } else {
        Vec::new()
    };
    // Before the clone: the init, in its new user namespace, would see an id that depends
    // on whether its maps are written yet.
    // SAFETY: geteuid cannot fail and touches no memory.
    let rootless = unsafe { libc::geteuid() } != 0;
    let (parent_end, child_end) = channel_pair()?;
    if rootless {
        plan.join_user_in_parent()?;
    }
    let restore = plan.enter_in_parent(&linux)?;
    let flags = plan.clone_flags.bits() as u64;
    let clone_err = |source| Error::Sys {
        call: "clone3",
        source,
    };
    let (child, in_cgroup) = if plan.needs_user_before_clone() {
        // Root, joining a user namespace, with a new pid namespace (see namespaces.rs).
        let user_ns = plan.user_join_path().map(Path::to_path_buf);
        clone::fork_through_helper(flags, cgroup_dir.as_ref().map(|fd| fd.as_fd()), || {
            plan.join_user_before_clone()
        })
        .map_err(|e| {
            let detail = user_ns.unwrap_or_default().display().to_string();
            crate::linux::sys(e.call, detail)(e.errno)
        })?
    } else {
        match cgroup_dir
            .as_ref()
            .map(|fd| clone::fork_into_cgroup(flags, fd.as_fd()))
        {
            Some(Ok(child)) => (child, true),
            // A kernel before 5.7: fork, then move the init like on v1.
            Some(Err(Errno::EINVAL | Errno::E2BIG | Errno::ENOSYS)) | None => (
                clone::fork_with_namespaces(flags).map_err(clone_err)?,
                false,
            ),
            Some(Err(e)) => return Err(clone_err(e)),
        }
    };
    drop(cgroup_dir);
    let Some(pid) = child else {
        drop(parent_end);
        init::run(init::InitArgs {
            inherited_lock: dir.lock_fd(),
            spec,
            rootfs: &bundle.rootfs,
            bundle: &bundle.dir,
            plan,
            cgroup: &cgroup,
            channel: child_end,
            fifo: &fifo,
            rootless,
            console: console.as_ref(),
            no_pivot: opts.no_pivot,
            no_new_keyring: opts.no_new_keyring,
            preserve_fds: opts.preserve_fds,
            bind_sources: &bind_sources,
            hook_state: &hook_state,
        });
    };
    built.child = Some(pid);
    crate::logging::stage(
        "nsexec container setup",
        &format!("init cloned as pid {pid} with namespace flags {flags:#x}"),
    );
    let poststop = hooks::of_kind(spec.hooks().as_ref(), "poststop");
    if !poststop.is_empty() {
        built.poststop = Some((poststop.to_vec(), hook_state(pid.as_raw(), Status::Stopped)));
    }
    restore.restore()?;
    drop(child_end);
    drop(console);
    drop(bind_sources);

    let waiter = Waiter {
        ch: &parent_end,
        pid,
        cgroup: &cgroup,
        hook_budget: hooks::time_budget(hooks::of_kind(spec.hooks().as_ref(), "createContainer")),
    };
    let send = |msg: Message| -> Result<(), Error> {
        parent_end.send(&msg).or_else(|e| {
            // The init may have failed already (it builds its rootfs while we work here, see
            // init.rs): its own message says why better than our broken pipe.
            drive_init(&waiter, spec.hooks().as_ref(), &hook_state)?;
            Err(e.into())
        })
    };
    if !born_inside {
        built.cgroup = Some(cgroup.clone());
        if !made {
            cgroup.make()?;
        }
        // Limits (the device list above all) are in force before the init joins the cgroup.
        cgroup.apply(&limits)?;
    }
    send(Message::CgroupReady)?;
    if !in_cgroup {
        cgroup.add_pid(pid.as_raw())?;
    }
    if plan.new_user {
        rootless::write_id_maps(pid.as_raw(), &linux, writers)?;
    }
    send(Message::Continue)?;
    drive_init(&waiter, spec.hooks().as_ref(), &hook_state)?;

    let stat = proc::stat(pid.as_raw()).ok_or_else(|| Error::InitDied {
        status: "gone".into(),
    })?;
    state.pid = pid.as_raw();
    state.pid_start_time = stat.start_time;
    // `exec` needs the container's process defaults, namespaces and security settings; the
    // validated config is kept with the state, since the bundle may change or vanish.
    dir.save(&state, &bundle.raw)?;
    if let Some(path) = &opts.pid_file {
        write_pid_file(path, pid.as_raw())?;
    }
    // Until now the init dies with us; from here on it is the container and `delete` finds
    // it by the state just written.
    parent_end.send(&Message::Handover)?;
    match waiter.recv("the handover", Some(STEP_TIMEOUT))? {
        Some(Message::HandoverDone) => {}
        Some(Message::Error(message)) => return Err(Error::Init { message }),
        other => return Err(waiter.died(other)),
    }
    built.child = None;
    Ok(state)
}

/// The parent's side of a bounded wait for the init (see sync.rs).
struct Waiter<'a> {
    ch: &'a Channel,
    pid: Pid,
    cgroup: &'a CgroupPaths,
    /// Extra time for the createContainer hooks the init runs; `None`: one has no timeout.
    hook_budget: Option<Duration>,
}

impl Waiter<'_> {
    fn recv(
        &self,
        expected: &'static str,
        timeout: Option<Duration>,
    ) -> Result<Option<Message>, Error> {
        let stuck = || {
            self.cgroup
                .is_frozen()
                .then(|| "container's cgroup unexpectedly frozen".to_string())
        };
        Ok(self.ch.recv_bounded(expected, timeout, &stuck)?)
    }

    /// The error for an init that hung up (or said something out of turn).
    fn died(&self, got: Option<Message>) -> Error {
        match got {
            Some(other) => Error::Init {
                message: format!("unexpected message {other:?}"),
            },
            None => {
                let status = reap_within(self.pid, Duration::from_secs(5))
                    .map(|s| format!("{s:?}"))
                    .unwrap_or_else(|| "still exiting".into());
                Error::InitDied { status }
            }
        }
    }
}

/// Reaps our child, waiting at most `timeout` (a process stuck in the kernel is left to the
/// system's init to reap once we exit, rather than hanging the command).
fn reap_within(pid: Pid, timeout: Duration) -> Option<WaitStatus> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::EINTR) => {}
            Ok(status) => return Some(status),
            Err(_) => return None,
        }
        if std::time::Instant::now() >= deadline {
            crate::logging::warn(&format!("container init {pid} has not exited"));
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Serves the init's requests until it is ready or fails.
fn drive_init(
    w: &Waiter,
    spec_hooks: Option<&oci_spec::runtime::Hooks>,
    hook_state: &dyn Fn(i32, Status) -> Vec<u8>,
) -> Result<(), Error> {
    let (ch, pid) = (w.ch, w.pid);
    let timeout = w.hook_budget.map(|b| STEP_TIMEOUT + b);
    loop {
        match w.recv("the init to be ready", timeout)? {
            Some(Message::RuntimeHooks) => {
                let state = hook_state(pid.as_raw(), Status::Creating);
                hooks::run("prestart", hooks::of_kind(spec_hooks, "prestart"), &state)?;
                hooks::run(
                    "createRuntime",
                    hooks::of_kind(spec_hooks, "createRuntime"),
                    &state,
                )?;
                ch.send(&Message::HooksDone)?;
            }
            Some(Message::Ready) => return Ok(()),
            Some(Message::Error(message)) => return Err(Error::Init { message }),
            other => return Err(w.died(other)),
        }
    }
}

/// Writes the pid file atomically, as runc does: containerd reads it as soon as we exit.
pub(crate) fn write_pid_file(path: &Path, pid: i32) -> Result<(), Error> {
    let path = std::path::absolute(path).map_err(io_err("resolving", path))?;
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    fs::write(&tmp, pid.to_string()).map_err(io_err("writing pid file", &tmp))?;
    fs::rename(&tmp, &path).map_err(io_err("writing pid file", &path))
}
