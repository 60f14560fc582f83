//! The container's init: the child of `create`, running the runtime's code (no re-exec) until
//! it replaces itself with the user's program. It builds the container from inside, reports
//! to the parent over the sync channel, then waits at the exec fifo for `start`.

use std::cell::Cell;
use std::ffi::CString;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{umask, Mode};
use nix::unistd::{setresgid, setresuid, setsid, Gid, Uid};
use oci_spec::runtime::Spec;

use super::namespaces::Plan;
use super::process::{self, Launch};
use super::{rootfs, seccomp, security, sys, tty, SetupError};
use crate::cgroups::CgroupPaths;
use crate::hooks;
use crate::sync::{Channel, Message};

/// Everything the init needs; it was prepared by the parent before clone and is shared with
/// the child as a copy of the parent's memory.
pub struct InitArgs<'a> {
    /// The parent's descriptor of the locked state directory, inherited through clone; closed
    /// at once so the lock never outlives the command that took it.
    pub inherited_lock: Option<RawFd>,
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    pub plan: &'a Plan,
    pub cgroup: &'a CgroupPaths,
    pub channel: Channel,
    /// O_PATH descriptor of `exec.fifo`.
    pub fifo: &'a OwnedFd,
    /// The runtime runs as an ordinary user (see the start barrier).
    pub rootless: bool,
    pub console: Option<&'a OwnedFd>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    /// Bind-mount sources opened by the parent (rootfs::open_bind_sources).
    pub bind_sources: &'a [Option<OwnedFd>],
    /// The state JSON given to hooks, with `{pid}` to be filled in.
    pub hook_state: &'a dyn Fn(i32, crate::state::Status) -> Vec<u8>,
}

/// Runs the init and never returns: either execve succeeds or the process exits after
/// telling the parent why it failed.
pub fn run(args: InitArgs) -> ! {
    if let Some(fd) = args.inherited_lock {
        // SAFETY: our copy of the parent's lock descriptor, which nothing in this process
        // uses; closing it leaves the parent's lock in place (flock(2) locks belong to the
        // open file, released when its last descriptor closes).
        unsafe { libc::close(fd) };
    }
    die_with_parent(&args.channel);
    crate::logging::stage(
        "child process in init()",
        "building the container inside its namespaces",
    );
    let err = match setup_and_exec(&args) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let msg = error_chain(&err);
    // After Ready the parent is gone; the message then has nowhere to go but stderr.
    if args.channel.send(&Message::Error(msg.clone())).is_err() {
        let _ = writeln!(std::io::stderr(), "berth-runtime init: {msg}");
    }
    // SAFETY: _exit ends the process without running the parent's atexit handlers or
    // destructors, which belong to the parent's copy of this memory.
    unsafe { libc::_exit(1) }
}

/// Makes this process die with the `create` that cloned it, until the handover (sync.rs): a
/// `create` killed halfway must not leave an init behind, holding mounts and a cgroup.
/// Credential changes clear the setting (prctl(2), PR_SET_PDEATHSIG), so it is armed again
/// after each.
pub(crate) fn die_with_parent(channel: &Channel) {
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) };
    // A parent that died before the signal was armed would never send it: look.
    if channel.peer_gone() {
        // SAFETY: ends this copy of the process without the parent's destructors.
        unsafe { libc::_exit(1) }
    }
}

/// The error and its sources on one line, for the parent to report.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut msg = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

enum Never {}

fn setup_and_exec(a: &InitArgs) -> Result<Never, SetupError> {
    let spec = a.spec;
    let process = spec.process().as_ref().ok_or(SetupError::Exec {
        arg0: String::new(),
        reason: "no process in config".into(),
    })?;
    // Until execve the init runs the runtime binary: keep other processes in the container
    // (exec'd later, or already there when joining) from opening /proc/<pid>/exe or ptracing
    // it (the CVE-2019-5736 class). execve resets this. A new user namespace's maps come
    // first, though: a non-dumpable process's /proc files belong to root, and a non-root
    // parent (or newuidmap on its behalf) could not write them; until then this process
    // only waits for its parent, alone in its new namespaces.
    let dumpable_for_maps = a.plan.new_user && a.plan.child_waits_first();
    if !dumpable_for_maps {
        nix::sys::prctl::set_dumpable(false).map_err(sys("prctl", "PR_SET_DUMPABLE"))?;
    }
    // Descriptors the caller left open must not reach the hooks the init runs either (runc
    // closes them as early; its tests count a startContainer hook's descriptors).
    process::cloexec_from(3 + a.preserve_fds)?;
    // The parent's move of this process into the container's cgroup can take long: on cgroup
    // v1 the first write to a cgroup.procs file takes the kernel's global
    // cgroup_threadgroup_rwsem for writing, which first waits for an RCU grace period
    // (rcu_sync_enter in kernel/rcu/sync.c; 8-24 ms on the benchmark host, more than the rest
    // of a `run`). Unless we need the parent first, build the container meanwhile and wait
    // only before what must happen inside the cgroup: hooks, RT scheduling, the seccomp
    // filter and the user's program. (A process started earlier to begin that grace period
    // does not help: it holds cgroup_mutex while it waits, which the parent's cgroup mkdirs
    // need.)
    let joined = CgroupJoin {
        channel: &a.channel,
        stage: Cell::new(Stage::Nothing),
    };
    if a.plan.child_waits_first() {
        joined.wait()?;
    }
    if dumpable_for_maps {
        nix::sys::prctl::set_dumpable(false).map_err(sys("prctl", "PR_SET_DUMPABLE"))?;
    }

    a.plan.enter_in_child()?;
    if a.plan.in_user_namespace() {
        // The parent wrote a new namespace's id maps; become root of the namespace, new or
        // joined. Until then a joined namespace sees our ids unmapped (the caller's root is
        // not in its maps), and what we create there is refused (EOVERFLOW).
        setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
            .map_err(sys("setresgid", 0))?;
        setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
            .map_err(sys("setresuid", 0))?;
        die_with_parent(&a.channel);
    }
    a.plan.enter_cgroup_namespace()?;
    setsid().map_err(sys("setsid", ""))?;
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).map_err(sys("sethostname", h))?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        // SAFETY: setdomainname reads `len` bytes from a valid buffer.
        if unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) } < 0 {
            return Err(sys("setdomainname", d)(nix::errno::Errno::last()));
        }
    }
    umask(Mode::empty());

    let my_pid: i32 = std::fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_string_lossy().parse().ok())
        .unwrap_or(0);
    let ctx = rootfs::Context {
        spec,
        rootfs: a.rootfs,
        bundle: a.bundle,
        cgroup: a.cgroup,
        new_user: a.plan.in_user_namespace(),
        new_cgroup_ns: a.plan.new_cgroup,
        cgroup_ready: &|| joined.ready(),
        bind_sources: a.bind_sources,
    };
    let root = if a.plan.joins_mount {
        None
    } else {
        let root = rootfs::prepare_root(&ctx)?;
        rootfs::mount_all(&ctx, &root)?;
        rootfs::create_devices(&ctx, &root)?;
        Some(root)
    };

    let spec_hooks = spec.hooks().as_ref();
    if !hooks::of_kind(spec_hooks, "prestart").is_empty()
        || !hooks::of_kind(spec_hooks, "createRuntime").is_empty()
    {
        joined.wait()?;
        a.channel.send(&Message::RuntimeHooks)?;
        a.channel.expect(Message::HooksDone, "hooks done")?;
    }
    let create_hooks = hooks::of_kind(spec_hooks, "createContainer");
    if !create_hooks.is_empty() {
        joined.wait()?;
        // As runc: createContainer hooks start in the container's root (before pivot_root
        // it is the rootfs directory), so relative paths in them name the container's files.
        if root.is_some() {
            nix::unistd::chdir(a.rootfs).map_err(sys("chdir", a.rootfs.display()))?;
        }
        hooks::run(
            "createContainer",
            create_hooks,
            &(a.hook_state)(my_pid, crate::state::Status::Creating),
        )?;
    }

    // Namespaced sysctls go through the host's /proc: /proc/sys reflects the namespaces of the
    // writing process, which already are the container's.
    if let Some(sysctl) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) {
        for (key, value) in sysctl {
            let path = format!("/proc/sys/{}", key.replace('.', "/"));
            process::write_proc(&path, value)?;
        }
    }
    process::set_oom_score_adj(process)?;

    if process.terminal().unwrap_or(false) {
        let (Some(root), Some(console)) = (root.as_ref(), a.console) else {
            return Err(SetupError::Exec {
                arg0: String::new(),
                reason: "process.terminal is set but no --console-socket was given".into(),
            });
        };
        let pty = tty::create_for(root, process, console.as_raw_fd())?;
        rootfs::bind_console(root, &pty.slave)?;
        tty::make_controlling(&pty.slave)?;
    }

    if let Some(root) = root.as_ref() {
        rootfs::readonly_paths(spec, root)?;
        rootfs::mask_paths(spec, root)?;
        rootfs::readonly_dev(spec, root)?;
        if spec
            .root()
            .as_ref()
            .and_then(|r| r.readonly())
            .unwrap_or(false)
        {
            rootfs::readonly_root(a.rootfs)?;
        }
    }
    let fd_dir = rootfs::open_own_fd_dir()?;
    // LSM exec labels are written through the host's /proc, opened now (CVE-2019-16884).
    let labels = security::ExecLabel::open(process)?;
    let linux = spec.linux().as_ref();
    let filters = match linux.and_then(|l| l.seccomp().as_ref()) {
        Some(profile) => Some(seccomp::compile(profile)?),
        None => None,
    };
    // The agent's socket is a host path: connect while the host is still visible.
    let agent = filters
        .as_ref()
        .and_then(|f| f.listener_path())
        .map(seccomp::connect_listener)
        .transpose()?;
    let own_root = root.is_some();
    if own_root {
        drop(root);
        if a.no_pivot {
            rootfs::move_root(a.rootfs)?;
        } else {
            rootfs::pivot(a.rootfs)?;
        }
        rootfs::apply_root_propagation(spec)?;
    }

    process::set_rlimits(process)?;
    if !a.no_new_keyring {
        join_session_keyring()?;
    }
    security::set_personality(linux.and_then(|l| l.personality().as_ref()))?;
    // An RT policy must be set inside the cgroup: the kernel refuses to move an RT task into
    // a v1 cpu cgroup without RT runtime, but checks a task already there at sched_setattr.
    joined.wait()?;
    // RT scheduling and I/O classes need CAP_SYS_NICE / CAP_SYS_ADMIN: before caps drop.
    security::set_scheduler(process)?;
    security::set_io_priority(process)?;
    let nnp = process.no_new_privileges().unwrap_or(false);
    // As runc: a process.cwd the image lacks is created (0755). Resolved inside the new root
    // with no magic links, so a cwd through /proc/self/fd/N cannot create anything in a host
    // directory a leaked descriptor points at (CVE-2024-21626 class).
    if own_root && !process.cwd().exists() {
        let new_root = pathrs::Root::open("/").map_err(|source| SetupError::InRoot {
            path: "/".into(),
            source,
        })?;
        super::inroot::mkdir_all(&new_root, process.cwd(), 0o755)?;
    }
    let launch = Launch::resolve(process)?;
    // What the runtime inherited goes before any seccomp filter, which might refuse the
    // calls (close_range, rt_sigaction) that shed it.
    process::reset_inherited(a.preserve_fds)?;
    if let (Some(f), false) = (&filters, nnp) {
        // Without no_new_privs installing a filter needs CAP_SYS_ADMIN, which may be about to
        // go: install it now (seccomp(2)); the rest of the setup then runs under it, as runc.
        let state = (a.hook_state)(my_pid, crate::state::Status::Creating);
        install_seccomp(f, agent.as_ref(), my_pid, &state)?;
    }
    launch.drop_privileges(process, a.plan.in_user_namespace())?;
    die_with_parent(&a.channel);

    crate::logging::stage(
        "init: closing the pipe to signal completion",
        "container ready, waiting at exec.fifo for start",
    );
    a.channel.send(&Message::Ready)?;
    a.channel.expect(Message::Handover, "handover")?;
    // SAFETY: prctl with integer arguments only: the container now outlives `create`.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, 0 as libc::c_ulong) };
    if a.rootless && a.plan.in_user_namespace() {
        // Rootless, the user's own tools (slirp4netns wiring the network namespace between
        // create and start) must reach this process's namespaces through /proc/<pid>/ns,
        // which a non-dumpable process created by the host's user namespace refuses them:
        // dumpable again before `create` returns (HandoverDone ends it).
        // The setup is over: what is left of the runtime here is this process's memory and
        // its /proc/<pid>/exe, the runtime binary, which the user cannot write to unless it
        // owns it (and then the user could replace it anyway).
        nix::sys::prctl::set_dumpable(true).map_err(sys("prctl", "PR_SET_DUMPABLE"))?;
    }
    a.channel.send(&Message::HandoverDone)?;
    if let (Some(f), true) = (&filters, nnp) {
        // With no_new_privs the filter goes on as late as runc puts it: after everything
        // but the start barrier, the startContainer hooks (which run under it, as under
        // runc) and the execve. The profile must allow what those steps call (open and
        // write of the fifo, the hooks' fork and exec, execveat of the trampoline).
        let state = (a.hook_state)(my_pid, crate::state::Status::Created);
        install_seccomp(f, agent.as_ref(), my_pid, &state)?;
    }
    // Blocks until `start` opens the other end; `start` then waits for our answer, which we
    // write only after the startContainer hooks, so its poststart hooks come after them.
    // `create` is gone by now: a failure from here on is told to `start` through the fifo.
    let mut barrier = wait_for_start(&fd_dir, a.fifo)?;
    let start_hooks = hooks::of_kind(spec_hooks, "startContainer");
    if !start_hooks.is_empty() {
        let state = (a.hook_state)(my_pid, crate::state::Status::Created);
        if let Err(e) = hooks::run("startContainer", start_hooks, &state) {
            report_to_start(&mut barrier, &e);
            return Err(e.into());
        }
    }
    barrier
        .write_all(START_OK)
        .map_err(|source| SetupError::Io {
            action: "writing",
            path: PathBuf::from("exec fifo"),
            source,
        })?;
    drop(barrier);
    Err(launch.exec_prepared(|| {
        for label in &labels {
            label.apply()?;
        }
        Ok(())
    }))
}

/// What the init writes to the exec fifo when the container may run (see container::start).
pub const START_OK: &[u8] = b"0";
/// The first byte of a failure report on the exec fifo; the message follows.
pub const START_FAILED: u8 = b'E';

/// Tells `start` why the container cannot start, in one write (a pipe write of at most
/// PIPE_BUF bytes is atomic, pipe(7)).
fn report_to_start(barrier: &mut File, err: &dyn std::error::Error) {
    let mut msg = vec![START_FAILED];
    msg.extend(error_chain(err).bytes().take(libc::PIPE_BUF - 1));
    let _ = barrier.write_all(&msg);
}

/// The parent's progress with the container's cgroup, each message waited for once.
struct CgroupJoin<'a> {
    channel: &'a Channel,
    stage: Cell<Stage>,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Nothing,
    /// CgroupReady: the directories exist, with their limits.
    Made,
    /// Continue: this process is in the cgroup (and, in a new user namespace, has its maps).
    Joined,
}

impl CgroupJoin<'_> {
    fn ready(&self) -> Result<(), SetupError> {
        if self.stage.get() < Stage::Made {
            self.channel.expect(Message::CgroupReady, "cgroup ready")?;
            self.stage.set(Stage::Made);
        }
        Ok(())
    }

    fn wait(&self) -> Result<(), SetupError> {
        self.ready()?;
        if self.stage.get() < Stage::Joined {
            self.channel.expect(Message::Continue, "continue")?;
            self.stage.set(Stage::Joined);
        }
        Ok(())
    }
}

/// Installs the filters; with NOTIFY rules, hands the listener fd and the container state to
/// the agent at listenerPath (connected before pivot_root, so only sendmsg runs under the new
/// filter before the agent has the fd), then closes our copy.
fn install_seccomp(
    f: &seccomp::Filters,
    agent: Option<&std::os::unix::net::UnixStream>,
    pid: i32,
    state: &[u8],
) -> Result<(), SetupError> {
    let listener = f.install()?;
    if let (Some(stream), Some(fd), Some(path)) = (agent, &listener, f.listener_path()) {
        seccomp::send_listener_fd(stream, path, fd, pid, f.listener_metadata(), state)?;
    }
    Ok(())
}

/// The start barrier: opening the fifo for writing blocks until `start` opens it for reading.
/// Returns the open write end. The fifo is reopened through the host /proc/self/fd handle taken before pivot_root.
fn wait_for_start(fd_dir: &File, fifo: &OwnedFd) -> Result<File, SetupError> {
    let name = fifo.as_raw_fd().to_string();
    let fd = openat(
        fd_dir.as_fd(),
        name.as_str(),
        OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(sys("open", "exec fifo"))?;
    Ok(File::from(fd))
}

/// A private session keyring, so containers do not share the host's (keyrings(7)).
fn join_session_keyring() -> Result<(), SetupError> {
    let name = CString::new("_ses.berth").unwrap_or_default();
    // SAFETY: KEYCTL_JOIN_SESSION_KEYRING takes a NUL-terminated name.
    let r = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            libc::KEYCTL_JOIN_SESSION_KEYRING,
            name.as_ptr(),
        )
    };
    match r {
        // Some hosts (or seccomp profiles around us) do not allow keyrings: carry on, as runc.
        -1 if matches!(
            nix::errno::Errno::last(),
            nix::errno::Errno::ENOSYS | nix::errno::Errno::EACCES | nix::errno::Errno::EPERM
        ) =>
        {
            Ok(())
        }
        -1 => Err(sys("keyctl", "KEYCTL_JOIN_SESSION_KEYRING")(
            nix::errno::Errno::last(),
        )),
        _ => Ok(()),
    }
}
