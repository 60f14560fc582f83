//! `ADD` from git repositories, BuildKit's Dockerfile frontend being the reference (docker's
//! classic builder downloads an `https://...git` URL as a file and refuses `git@`): real git
//! servers on loopback started here, `git daemon` (`git://`) and `git http-backend` behind
//! python's CGI server (`http://...git`), both stopped by their process group's id.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use spec_tests::manager::build::{flatten, runs_ran};
use spec_tests::manager::free_port;
use spec_tests::manager::network::{berth_with_busybox, BUSYBOX};

/// A repository (`work/`, pushed to the bare `srv/repo.git`) served by `git daemon` and by
/// `git http-backend`; the servers and the directory go when dropped.
struct GitServers {
    dir: tempfile::TempDir,
    children: Vec<Child>,
    git_port: u16,
    http_port: u16,
}

fn git(cwd: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "protocol.file.allow=always",
        ])
        .args(args)
        .current_dir(cwd)
        .output()
        .with_context(|| format!("git {args:?}"))?;
    if !out.status.success() {
        bail!(
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn wait_port(port: u16) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("nothing listens on port {port}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

impl GitServers {
    fn start() -> Result<Self> {
        let dir = spec_tests::manager::berth::test_dir()?;
        let work = dir.path().join("work");
        std::fs::create_dir_all(work.join("bin"))?;
        std::fs::create_dir_all(work.join("docs/deep"))?;
        git(dir.path(), &["init", "-q", "work"])?;
        std::fs::write(work.join("README"), "one\n")?;
        std::fs::write(work.join("bin/run.sh"), "#!/bin/sh\necho run\n")?;
        std::fs::write(work.join("docs/deep/a.txt"), "a\n")?;
        std::os::unix::fs::symlink("README", work.join("link"))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            work.join("bin/run.sh"),
            std::fs::Permissions::from_mode(0o755),
        )?;
        git(&work, &["add", "-A"])?;
        git(&work, &["commit", "-qm", "one"])?;
        git(&work, &["tag", "-a", "v1", "-m", "v1"])?;
        std::fs::create_dir(dir.path().join("srv"))?;
        git(
            dir.path(),
            &["clone", "-q", "--bare", "work", "srv/repo.git"],
        )?;
        git(&work, &["remote", "add", "origin", "../srv/repo.git"])?;
        let mut s = GitServers {
            children: Vec::new(),
            git_port: free_port()?,
            http_port: free_port()?,
            dir,
        };
        let srv = s.dir.path().join("srv");
        // Own process groups: the daemon forks a child per connection, the CGI server a
        // git per request; Drop kills each group by its id.
        s.children.push(
            Command::new("git")
                .arg("daemon")
                .arg("--reuseaddr")
                .arg("--export-all")
                .arg("--listen=127.0.0.1")
                .arg(format!("--port={}", s.git_port))
                .arg(format!("--base-path={}", srv.display()))
                .arg(&srv)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .context("starting git daemon")?,
        );
        let web = s.dir.path().join("web");
        std::fs::create_dir_all(web.join("cgi-bin"))?;
        std::fs::write(
            web.join("cgi-bin/git"),
            "#!/bin/sh\nexec git http-backend\n",
        )?;
        std::fs::set_permissions(
            web.join("cgi-bin/git"),
            std::fs::Permissions::from_mode(0o755),
        )?;
        // python's CGI handler drops to `nobody` when run as root, who cannot enter the
        // temp directory: the script keeps the user.
        s.children.push(
            Command::new("python3")
                .arg("-c")
                .arg(format!(
                    "import os, http.server as h\nos.setuid = lambda u: None\n\
h.test(HandlerClass=h.CGIHTTPRequestHandler, port={}, bind='127.0.0.1')",
                    s.http_port
                ))
                .env("GIT_PROJECT_ROOT", &srv)
                .env("GIT_HTTP_EXPORT_ALL", "1")
                .current_dir(&web)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .context("starting python3's CGI server")?,
        );
        wait_port(s.git_port)?;
        wait_port(s.http_port)?;
        Ok(s)
    }

    fn git_url(&self) -> String {
        format!("git://127.0.0.1:{}/repo.git", self.git_port)
    }

    fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}/cgi-bin/git/repo.git", self.http_port)
    }

    fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    /// A new commit on main changing README; its hash.
    fn commit(&self, readme: &str) -> Result<String> {
        std::fs::write(self.work().join("README"), readme)?;
        git(&self.work(), &["commit", "-qam", readme.trim()])?;
        git(&self.work(), &["push", "-q", "origin", "main"])?;
        git(&self.work(), &["rev-parse", "HEAD"])
    }
}

impl Drop for GitServers {
    fn drop(&mut self) {
        for c in &mut self.children {
            // SAFETY: kill(2) on the process group this test started (the child is its
            // leader, not yet reaped, so the id is still ours).
            unsafe {
                libc::kill(-(c.id() as i32), libc::SIGKILL);
            }
            let _ = c.wait();
        }
    }
}

fn context(dir: &Path, text: &str) -> Result<String> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("Dockerfile"), text.replace("BASE", BUSYBOX))?;
    Ok(dir.display().to_string())
}

/// Scratch directories a build leaves under the root (none once it is over).
fn leftovers(root: &Path) -> Vec<String> {
    std::fs::read_dir(root.join("build-tmp"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// `git://` and `http://...git` sources: the remote's HEAD, a tag (with `--link`), a commit
/// with a subdirectory, `--keep-git-dir`, `--chown`/`--chmod`; files owned by root, 0644 or 0755
/// as git marks them, links kept, no `.git` unless asked; the resolved commit is the cache
/// key (an unchanged remote re-runs nothing, a new commit re-runs the step and what follows).
#[test]
fn add_from_git_checks_out_refs_and_caches_by_commit() -> Result<()> {
    let srv = GitServers::start()?;
    let first = git(&srv.work(), &["rev-parse", "HEAD"])?;
    let berth = berth_with_busybox()?;
    let dir = spec_tests::manager::berth::test_dir()?;
    let (g, h) = (srv.git_url(), srv.http_url());
    let ctx = context(
        &dir.path().join("ctx"),
        &format!(
            "FROM BASE\nADD --link {h}#v1 /tag/\nADD {g}#{first}:docs /docs\nADD {g} /src\n\
ADD --keep-git-dir=true {h}#main /kept\nADD --chown=1000:1001 --chmod=0700 {g}#main:bin /owned\n\
RUN cat /src/README > /seen\n"
        ),
    )?;
    let build = || berth.run(&["build", "--network", "none", "-t", "git:1", &ctx]);
    let out = build()?;
    assert!(out.status.success(), "{out:?}");
    let tar = dir.path().join("img.tar");
    let tree = |berth: &spec_tests::manager::berth::Berth| -> Result<_> {
        let _ = std::fs::remove_file(&tar);
        berth.ok(&["save", "-o", &tar.display().to_string(), "git:1"])?;
        flatten(&tar)
    };
    let t = tree(&berth)?;
    let node = |p: &str| {
        t.get(p)
            .map(|n| (n.kind, n.mode & 0o7777, n.uid, n.gid))
            .unwrap_or_else(|| panic!("{p} missing: {:?}", t.keys().collect::<Vec<_>>()))
    };
    assert_eq!(node("src"), ('d', 0o755, 0, 0));
    assert_eq!(node("src/README"), ('f', 0o644, 0, 0));
    assert_eq!(node("src/bin/run.sh"), ('f', 0o755, 0, 0));
    assert_eq!(t["src/link"].link, "README");
    assert!(!t.contains_key("src/.git"), "no .git by default");
    assert_eq!(node("tag/README"), ('f', 0o644, 0, 0));
    assert_eq!(node("docs/deep/a.txt"), ('f', 0o644, 0, 0));
    assert!(!t.contains_key("docs/README"), "only the subdirectory");
    assert_eq!(node("kept/.git"), ('d', 0o755, 0, 0));
    assert!(t.contains_key("kept/.git/HEAD"));
    assert_eq!(node("owned"), ('d', 0o700, 1000, 1001));
    assert_eq!(node("owned/run.sh"), ('f', 0o700, 1000, 1001));
    assert!(!t.contains_key("owned/README"));
    let kept_head = berth.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "git:1",
        "cat",
        "/kept/.git/HEAD",
    ])?;
    assert_eq!(
        kept_head.trim(),
        "ref: refs/heads/main",
        "the branch is checked out"
    );

    // Unchanged remote: every step cached, nothing checked out.
    let again = build()?;
    let text = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{again:?}");
    assert!(
        !text.contains("Checking out") && runs_ran(&text) == 0,
        "{text}"
    );
    // A new commit on main: the HEAD, main and RUN steps run again; the tag and the
    // pinned commit before them stay cached.
    let second = srv.commit("two\n")?;
    let third = build()?;
    let text = String::from_utf8_lossy(&third.stderr);
    assert!(third.status.success(), "{third:?}");
    assert_eq!(
        text.matches(&format!("Checking out {g}#{second}")).count(),
        2,
        "{text}"
    );
    assert_eq!(text.matches(&format!("#{second}")).count(), 3, "{text}");
    assert!(
        !text.contains(&format!("Checking out {g}#{first}")),
        "{text}"
    );
    assert_eq!(runs_ran(&text), 1, "{text}");
    let seen = berth.ok(&["run", "--rm", "--network", "none", "git:1", "cat", "/seen"])?;
    assert_eq!(seen, "two\n");
    let tag = berth.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "git:1",
        "cat",
        "/tag/README",
    ])?;
    assert_eq!(tag, "one\n", "v1 still names the first commit");
    assert!(
        leftovers(&berth.root()).is_empty(),
        "{:?}",
        leftovers(&berth.root())
    );
    Ok(())
}

/// An unknown ref, an unreachable server, a missing subdirectory and a ref that git would
/// read as an option: the build fails naming the URL and the ref, no image is tagged and
/// no checkout is left behind.
#[test]
fn add_from_git_errors_name_the_url_and_ref() -> Result<()> {
    let srv = GitServers::start()?;
    let berth = berth_with_busybox()?;
    let dir = spec_tests::manager::berth::test_dir()?;
    let g = srv.git_url();
    let closed = format!("git://127.0.0.1:{}/repo.git", free_port()?);
    let cases = [
        (
            format!("{g}#nope"),
            vec![g.clone(), "nope".into(), "no such ref".into()],
        ),
        (
            format!("{closed}#main"),
            vec![closed.clone(), "main".into()],
        ),
        (
            format!("{g}#main:missing"),
            vec![g.clone(), "missing".into()],
        ),
        (
            format!("{g}#--upload-pack=touch"),
            vec!["must not start with '-'".into()],
        ),
    ];
    for (i, (src, wanted)) in cases.iter().enumerate() {
        let ctx = context(
            &dir.path().join(format!("ctx{i}")),
            &format!("FROM BASE\nADD {src} /src\n"),
        )?;
        let out = berth.run(&["build", "--network", "none", "-t", "bad:1", &ctx])?;
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{src}: {out:?}");
        assert!(err.contains("Dockerfile:2"), "{src}: {err}");
        for w in wanted {
            assert!(err.contains(w.as_str()), "{src}: want {w:?} in {err}");
        }
        assert!(
            berth.run(&["image", "inspect", "bad:1"])?.status.code() != Some(0),
            "no image for {src}"
        );
        assert!(leftovers(&berth.root()).is_empty(), "{src}");
    }
    Ok(())
}

/// A repository under `srv/` made from `work-<name>/` with `files` and, for each
/// `(path, url)`, a submodule; its commit.
fn repo_with(
    srv: &GitServers,
    name: &str,
    files: &[(&str, &str)],
    submodules: &[(&str, String)],
) -> Result<String> {
    let work = srv.dir.path().join(format!("work-{name}"));
    git(srv.dir.path(), &["init", "-q", &format!("work-{name}")])?;
    for (path, text) in files {
        std::fs::write(work.join(path), text)?;
    }
    for (path, url) in submodules {
        git(&work, &["submodule", "add", "-q", url, path])?;
    }
    git(&work, &["add", "-A"])?;
    git(&work, &["commit", "-qm", name])?;
    git(
        srv.dir.path(),
        &[
            "clone",
            "-q",
            "--bare",
            &format!("work-{name}"),
            &format!("srv/{name}.git"),
        ],
    )?;
    git(
        &work,
        &["remote", "add", "origin", &format!("../srv/{name}.git")],
    )?;
    git(&work, &["rev-parse", "HEAD"])
}

/// Submodules are checked out recursively at the commits the repository records (not
/// their branches' newer ones), over `git://` and `http://`; without `--keep-git-dir` no
/// `.git` is copied (a submodule's `.git` file included), with it the submodules' git
/// directories come along and git in the image knows them.
#[test]
fn add_from_git_checks_out_submodules_recursively() -> Result<()> {
    let srv = GitServers::start()?;
    let (gp, hp) = (srv.git_port, srv.http_port);
    // leaf ← lib (over http) ← repo (over git://): two levels of submodules.
    repo_with(&srv, "leaf", &[("leaf.txt", "leaf\n")], &[])?;
    let leaf_url = format!("http://127.0.0.1:{hp}/cgi-bin/git/leaf.git");
    repo_with(
        &srv,
        "lib",
        &[("lib.txt", "lib one\n")],
        &[("leaf", leaf_url)],
    )?;
    let lib_url = format!("git://127.0.0.1:{gp}/lib.git");
    git(
        &srv.work(),
        &["submodule", "add", "-q", &lib_url, "vendor/lib"],
    )?;
    git(&srv.work(), &["commit", "-qm", "with lib"])?;
    git(&srv.work(), &["push", "-q", "origin", "main"])?;
    // lib moves on; repo still records its first commit.
    let lib_work = srv.dir.path().join("work-lib");
    std::fs::write(lib_work.join("lib.txt"), "lib two\n")?;
    git(&lib_work, &["commit", "-qam", "two"])?;
    git(&lib_work, &["push", "-q", "origin", "HEAD:main"])?;

    let berth = berth_with_busybox()?;
    let dir = spec_tests::manager::berth::test_dir()?;
    let (g, h) = (srv.git_url(), srv.http_url());
    let ctx = context(
        &dir.path().join("ctx"),
        &format!(
            "FROM BASE\nADD {g}#main /src\nADD --keep-git-dir=true {h}#main /kept\n\
RUN cd /kept/vendor/lib && cat lib.txt leaf/leaf.txt > /seen\n"
        ),
    )?;
    let out = berth.run(&["build", "--network", "none", "-t", "sub:1", &ctx])?;
    assert!(out.status.success(), "{out:?}");
    let tar = dir.path().join("img.tar");
    berth.ok(&["save", "-o", &tar.display().to_string(), "sub:1"])?;
    let t = flatten(&tar)?;
    let file = |p: &str| -> (char, u32, String) {
        let n = t
            .get(p)
            .unwrap_or_else(|| panic!("{p} missing: {:?}", t.keys().collect::<Vec<_>>()));
        (n.kind, n.mode & 0o7777, n.sha.clone())
    };
    let sha = |text: &str| spec_tests::manager::sha256(text.as_bytes())[7..].to_string();
    assert_eq!(
        file("src/vendor/lib/lib.txt"),
        ('f', 0o644, sha("lib one\n"))
    );
    assert_eq!(
        file("src/vendor/lib/leaf/leaf.txt"),
        ('f', 0o644, sha("leaf\n"))
    );
    assert_eq!(file("src/.gitmodules").0, 'f');
    let gits: Vec<&String> = t
        .keys()
        .filter(|k| k.starts_with("src/") && k.split('/').any(|c| c == ".git"))
        .collect();
    assert!(gits.is_empty(), "no .git without --keep-git-dir: {gits:?}");
    // Kept: the submodules' .git files point into the kept .git/modules.
    assert_eq!(file("kept/vendor/lib/.git").0, 'f');
    assert!(
        t.keys()
            .any(|k| k.starts_with("kept/.git/modules/vendor/lib/")),
        "{:?}",
        t.keys()
            .filter(|k| k.starts_with("kept/.git/"))
            .collect::<Vec<_>>()
    );
    let seen = berth.ok(&["run", "--rm", "--network", "none", "sub:1", "cat", "/seen"])?;
    assert_eq!(seen, "lib one\nleaf\n");
    assert!(
        leftovers(&berth.root()).is_empty(),
        "{:?}",
        leftovers(&berth.root())
    );
    Ok(())
}

/// A private sshd on a loopback port (its own config, host key and authorized key, all in
/// `dir`), logging in as root with the throwaway key only; stopped by its process group.
struct Sshd {
    child: Child,
    port: u16,
    /// The privilege separation directory sshd needs, when this test made it.
    made_run_dir: bool,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group this test started (sshd is its leader, not
        // yet reaped, so the id is still ours); the sessions it forked are in it.
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGKILL);
        }
        let _ = self.child.wait();
        if self.made_run_dir {
            let _ = std::fs::remove_dir("/run/sshd");
        }
    }
}

fn run_ok(cmd: &mut Command) -> Result<()> {
    let out = cmd.output().with_context(|| format!("{cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

fn keygen(path: &Path) -> Result<String> {
    run_ok(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "berth-test", "-f"])
            .arg(path),
    )?;
    Ok(std::fs::read_to_string(path.with_extension("pub"))?
        .trim()
        .to_string())
}

impl Sshd {
    fn start(dir: &Path) -> Result<(Self, String)> {
        let host_pub = keygen(&dir.join("host_key"))?;
        let user_pub = keygen(&dir.join("user_key"))?;
        std::fs::write(dir.join("authorized_keys"), format!("{user_pub}\n"))?;
        let port = free_port()?;
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\n\
AuthorizedKeysFile {d}/authorized_keys\nPidFile none\nUsePAM no\nStrictModes no\n\
PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
PermitRootLogin prohibit-password\n",
                d = dir.display()
            ),
        )?;
        let made_run_dir = !Path::new("/run/sshd").exists();
        if made_run_dir {
            std::fs::create_dir_all("/run/sshd")?;
        }
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .context("starting sshd (openssh-server)")?;
        let sshd = Sshd {
            child,
            port,
            made_run_dir,
        };
        wait_port(port)?;
        Ok((sshd, host_pub))
    }
}

/// An ssh-agent on a socket in `dir` holding `key`; stopped by its process group.
struct Agent {
    child: Child,
    sock: PathBuf,
}

impl Drop for Agent {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group this test started (the agent leads it and is
        // not reaped yet).
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

impl Agent {
    fn start(dir: &Path, key: &Path) -> Result<Self> {
        let sock = dir.join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&sock)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .context("starting ssh-agent")?;
        let agent = Agent { child, sock };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !agent.sock.exists() {
            if Instant::now() > deadline {
                bail!("ssh-agent made no socket");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        run_ok(
            Command::new("ssh-add")
                .arg("-q")
                .arg(key)
                .env("SSH_AUTH_SOCK", &agent.sock),
        )?;
        Ok(agent)
    }
}

/// `ADD ssh://…` against a private sshd: the invoking user's ssh-agent key logs in (docker's
/// `--ssh default`: the agent of whoever runs the build), the user's `GIT_SSH_COMMAND` comes
/// first (here: its known-hosts file), and the host key is checked (an unknown host fails
/// the build, as does a user without the key), never a prompt.
#[test]
fn add_from_git_over_ssh_uses_the_users_agent_and_checks_the_host_key() -> Result<()> {
    let srv = GitServers::start()?;
    let ssh_dir = spec_tests::manager::berth::test_dir()?;
    let (sshd, host_pub) = Sshd::start(ssh_dir.path())?;
    let known = ssh_dir.path().join("known_hosts");
    std::fs::write(&known, format!("[127.0.0.1]:{} {host_pub}\n", sshd.port))?;
    let unknown = ssh_dir.path().join("unknown_hosts");
    std::fs::write(&unknown, "")?;
    let key = ssh_dir.path().join("user_key");
    let berth = berth_with_busybox()?;
    // The rootless pass's user cannot use root's agent (ssh-agent serves its own user):
    // its key file then.
    let (agent, identity) = match berth.user() {
        None => (Some(Agent::start(ssh_dir.path(), &key)?), String::new()),
        Some(u) => {
            u.chown(&key)?;
            (None, format!(" -i {} -o IdentitiesOnly=yes", key.display()))
        }
    };
    let repo = srv.dir.path().join("srv/repo.git");
    let url = format!("ssh://root@127.0.0.1:{}{}", sshd.port, repo.display());
    let dir = spec_tests::manager::berth::test_dir()?;
    let ctx = context(
        &dir.path().join("ctx"),
        &format!("FROM BASE\nADD {url}#main /src\n"),
    )?;
    let build = |hosts: &Path, with_key: bool| -> Result<std::process::Output> {
        let mut cmd = berth.cmd(&["build", "--network", "none", "-t", "ssh:1", &ctx])?;
        let ssh = format!("ssh -F /dev/null -o UserKnownHostsFile={}", hosts.display());
        cmd.env_remove("SSH_AUTH_SOCK");
        match (&agent, with_key) {
            (Some(a), true) => {
                cmd.env("SSH_AUTH_SOCK", &a.sock)
                    .env("GIT_SSH_COMMAND", ssh);
            }
            (None, true) => {
                cmd.env("GIT_SSH_COMMAND", format!("{ssh}{identity}"));
            }
            (_, false) => {
                cmd.env("GIT_SSH_COMMAND", ssh);
            }
        }
        Ok(cmd.output()?)
    };
    let out = build(&known, true)?;
    assert!(out.status.success(), "{out:?}");
    let readme = berth.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "ssh:1",
        "cat",
        "/src/README",
    ])?;
    assert_eq!(readme, "one\n");
    berth.ok(&["rmi", "ssh:1"])?;
    // Every build asks the remote what the ref names (ls-remote over ssh), cache or not.
    let failing = |hosts: &Path, with_key: bool| -> Result<String> {
        let out = build(hosts, with_key)?;
        assert!(!out.status.success(), "{out:?}");
        Ok(String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let err = failing(&unknown, true)?;
    assert!(err.contains("Host key verification failed"), "{err}");
    assert!(err.contains(&url), "{err}");
    let err = failing(&known, false)?;
    assert!(err.contains("Permission denied (publickey)"), "{err}");
    assert!(berth.run(&["image", "inspect", "ssh:1"])?.status.code() != Some(0));
    assert!(
        leftovers(&berth.root()).is_empty(),
        "{:?}",
        leftovers(&berth.root())
    );
    Ok(())
}
