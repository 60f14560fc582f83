//! Namespace plan: which namespaces are created, which are joined, and by whom.
//!
//! Creating namespaces at clone time is cheapest, but a few rules shape the plan:
//! - Joining a namespace needs CAP_SYS_ADMIN over it. A child already inside a brand-new user
//!   namespace has no privilege over the host's namespaces, so the *parent* joins net, ipc, uts,
//!   pid, cgroup and time namespaces by path before cloning (setns on pid and time only changes
//!   what the parent's children get; the parent itself stays put).
//! - The mount and user namespaces cannot be joined by the parent without changing its view of
//!   the filesystem or its credentials, so the child joins those (user first).
//! - The cgroup namespace is unshared by the child only after the parent moved it into the
//!   container's cgroup, so the namespace is rooted there (cgroup_namespaces(7)).
//! - A new time namespace must get its offsets before any process lives in it, so the parent
//!   unshares it and writes /proc/self/timens_offsets before clone (time_namespaces(7)).
//! - A pid namespace created at clone belongs to the cloner's user namespace. When the child
//!   joins a user namespace and gets a new pid namespace, the clone happens from inside the
//!   joined user namespace: by the parent itself when it is not root, by a short-lived helper
//!   when it is (root would lose its host privileges for good).

use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sched::{setns, unshare, CloneFlags};
use oci_spec::runtime::{Linux, LinuxNamespaceType};

use super::{sys, SetupError};

pub fn flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// A namespace file opened by the parent, to be joined.
#[derive(Debug)]
pub struct Join {
    pub kind: LinuxNamespaceType,
    pub path: PathBuf,
    pub file: File,
}

#[derive(Debug)]
pub struct Plan {
    /// Flags for clone3: namespaces born with the child.
    pub clone_flags: CloneFlags,
    /// Namespaces the child unshares itself, after joining `child_joins`.
    pub child_unshare: CloneFlags,
    pub parent_joins: Vec<Join>,
    /// In this order: user, then mount.
    pub child_joins: Vec<Join>,
    pub new_user: bool,
    pub new_pid: bool,
    pub new_net: bool,
    pub new_uts: bool,
    pub new_cgroup: bool,
    pub new_time: bool,
    pub joins_mount: bool,
    /// The user namespace to join was joined by the parent before the clone (see
    /// [`Plan::join_user_in_parent`]).
    pub user_joined_by_parent: bool,
}

impl Plan {
    /// Builds the plan and opens every namespace path (so a bad path fails before anything
    /// is created).
    pub fn new(linux: &Linux) -> Result<Plan, SetupError> {
        let mut plan = Plan {
            clone_flags: CloneFlags::empty(),
            child_unshare: CloneFlags::empty(),
            parent_joins: Vec::new(),
            child_joins: Vec::new(),
            new_user: false,
            new_pid: false,
            new_net: false,
            new_uts: false,
            new_cgroup: false,
            new_time: false,
            joins_mount: false,
            user_joined_by_parent: false,
        };
        let mut fresh = CloneFlags::empty();
        let mut user_join = None;
        let mut mount_join = None;
        for ns in linux.namespaces().iter().flatten() {
            let kind = ns.typ();
            match ns.path() {
                None => {
                    fresh |= flag(kind);
                    match kind {
                        LinuxNamespaceType::User => plan.new_user = true,
                        LinuxNamespaceType::Pid => plan.new_pid = true,
                        LinuxNamespaceType::Network => plan.new_net = true,
                        LinuxNamespaceType::Uts => plan.new_uts = true,
                        LinuxNamespaceType::Cgroup => plan.new_cgroup = true,
                        LinuxNamespaceType::Time => plan.new_time = true,
                        _ => {}
                    }
                }
                Some(path) => {
                    let file = File::open(path).map_err(|source| SetupError::Io {
                        action: "opening namespace",
                        path: path.clone(),
                        source,
                    })?;
                    let join = Join {
                        kind,
                        path: path.clone(),
                        file,
                    };
                    match kind {
                        LinuxNamespaceType::User => user_join = Some(join),
                        LinuxNamespaceType::Mount => mount_join = Some(join),
                        _ => plan.parent_joins.push(join),
                    }
                }
            }
        }
        plan.joins_mount = mount_join.is_some();
        plan.child_joins.extend(user_join);
        plan.child_joins.extend(mount_join);
        // The cgroup namespace waits for the cgroup move; the time namespace is the parent's job.
        let deferred = CloneFlags::CLONE_NEWCGROUP | flag(LinuxNamespaceType::Time);
        let fresh = fresh - deferred;
        if plan
            .child_joins
            .iter()
            .any(|j| j.kind == LinuxNamespaceType::User)
        {
            // Namespaces created after joining a user namespace must be owned by it, so the
            // child creates them; only the pid namespace must exist at clone time.
            plan.clone_flags = fresh & CloneFlags::CLONE_NEWPID;
            plan.child_unshare = fresh - CloneFlags::CLONE_NEWPID;
        } else {
            plan.clone_flags = fresh;
        }
        Ok(plan)
    }

    /// Parent side, before clone: join namespaces by path and create a time namespace.
    /// Returns what puts the parent back where it was, to call right after clone.
    pub fn enter_in_parent(&self, linux: &Linux) -> Result<Restore, SetupError> {
        let kinds: Vec<LinuxNamespaceType> = self
            .parent_joins
            .iter()
            .map(|j| j.kind)
            .chain(self.new_time.then_some(LinuxNamespaceType::Time))
            .collect();
        let restore = Restore::save(&kinds)?;
        join_all(&self.parent_joins)?;
        if self.new_time {
            unshare(flag(LinuxNamespaceType::Time)).map_err(sys("unshare", "CLONE_NEWTIME"))?;
            let mut offsets = String::new();
            for (clock, off) in linux.time_offsets().iter().flatten() {
                offsets.push_str(&format!(
                    "{clock} {} {}\n",
                    off.secs().unwrap_or(0),
                    off.nanosecs().unwrap_or(0)
                ));
            }
            if !offsets.is_empty() {
                super::process::write_proc("/proc/self/timens_offsets", &offsets)?;
            }
        }
        Ok(restore)
    }

    /// An unprivileged caller may not create a pid namespace in its own user namespace: when
    /// the container joins a user namespace and gets a new pid namespace, the parent joins
    /// that user namespace itself before the clone (so the pid namespace belongs to it, as the
    /// ones the child unshares do), and the child is born in it. The process must be
    /// single-threaded (setns(2) refuses a user namespace otherwise); it stays in that
    /// namespace, where it is root over the ids the namespace maps.
    ///
    /// Root must not stay in the container's user namespace (it would lose its privileges
    /// over the host's cgroups and namespaces): it clones the init through a helper that
    /// calls [`Plan::join_user_before_clone`] instead (see create.rs).
    pub fn join_user_in_parent(&mut self) -> Result<(), SetupError> {
        let path = self.user_join_path().map(Path::to_path_buf);
        self.join_user_before_clone()
            .map_err(|e| sys("setns", path.unwrap_or_default().display())(e))
    }

    /// The user namespace to join, when the child is to join one (by path).
    pub fn user_join_path(&self) -> Option<&Path> {
        self.child_joins
            .iter()
            .find(|j| j.kind == LinuxNamespaceType::User)
            .map(|j| j.path.as_path())
    }

    /// Whether the user namespace to join must be joined before the clone: the container
    /// also gets a new pid namespace, which has to belong to that user namespace (a /proc
    /// for it is mounted from inside it).
    pub fn needs_user_before_clone(&self) -> bool {
        self.clone_flags.contains(CloneFlags::CLONE_NEWPID) && self.user_join_path().is_some()
    }

    /// Joins the user namespace to join now, in this process, when
    /// [`Plan::needs_user_before_clone`]; the child is then born in it.
    pub fn join_user_before_clone(&mut self) -> Result<(), Errno> {
        if !self.needs_user_before_clone() {
            return Ok(());
        }
        let Some(i) = self
            .child_joins
            .iter()
            .position(|j| j.kind == LinuxNamespaceType::User)
        else {
            return Ok(());
        };
        let j = self.child_joins.remove(i);
        setns(j.file.as_fd(), flag(j.kind))?;
        self.user_joined_by_parent = true;
        Ok(())
    }

    /// Whether the container runs in a user namespace other than the caller's (new, or
    /// joined by the child or by the parent).
    pub fn in_user_namespace(&self) -> bool {
        self.new_user
            || self.user_joined_by_parent
            || self
                .child_joins
                .iter()
                .any(|j| j.kind == LinuxNamespaceType::User)
    }

    /// Child side, after the parent let it continue: join user and mount namespaces, then
    /// create the ones that had to wait.
    pub fn enter_in_child(&self) -> Result<(), SetupError> {
        for j in &self.child_joins {
            setns(j.file.as_fd(), flag(j.kind)).map_err(sys("setns", j.path.display()))?;
        }
        if !self.child_unshare.is_empty() {
            unshare(self.child_unshare)
                .map_err(sys("unshare", format!("{:?}", self.child_unshare)))?;
        }
        Ok(())
    }

    /// Whether the child must wait for the parent before it changes anything: for the id maps
    /// of a new user namespace (and, conservatively, whenever a user namespace is involved),
    /// and for the cgroup move before it unshares a cgroup namespace, which is rooted at the
    /// cgroup the child is in at that moment. Otherwise the child builds its root filesystem
    /// while the parent moves it into the container's cgroup (see sync.rs).
    pub fn child_waits_first(&self) -> bool {
        self.new_user
            || self.new_cgroup
            || self.user_joined_by_parent
            || self
                .child_joins
                .iter()
                .any(|j| j.kind == LinuxNamespaceType::User)
    }

    /// Child side, once it sits in the container's cgroup.
    pub fn enter_cgroup_namespace(&self) -> Result<(), SetupError> {
        if self.new_cgroup {
            unshare(CloneFlags::CLONE_NEWCGROUP).map_err(sys("unshare", "CLONE_NEWCGROUP"))?;
        }
        Ok(())
    }
}

/// Joins each namespace in order.
pub fn join_all(joins: &[Join]) -> Result<(), SetupError> {
    for j in joins {
        setns(j.file.as_fd(), flag(j.kind)).map_err(sys("setns", j.path.display()))?;
    }
    Ok(())
}

/// The parent's own namespaces, saved before it joins a container's, so it can return after
/// the fork. Besides being tidy this matters: after setns into another pid (or time)
/// namespace, clone(CLONE_THREAD) fails with EINVAL until we are back (clone(2)), and
/// hooks must run in the runtime's namespaces, not the container's.
pub struct Restore {
    saved: Vec<Join>,
}

impl Restore {
    pub fn save(kinds: &[LinuxNamespaceType]) -> Result<Restore, SetupError> {
        let mut saved = Vec::new();
        for &kind in kinds {
            let path = PathBuf::from(format!("/proc/self/ns/{}", file_name(kind)));
            let file = File::open(&path).map_err(|source| SetupError::Io {
                action: "opening namespace",
                path: path.clone(),
                source,
            })?;
            saved.push(Join { kind, path, file });
        }
        Ok(Restore { saved })
    }

    pub fn restore(self) -> Result<(), SetupError> {
        join_all(&self.saved)
    }
}

/// The name of a namespace's file under /proc/<pid>/ns.
pub fn file_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}
