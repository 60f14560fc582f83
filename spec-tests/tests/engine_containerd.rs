//! containerd 1.6 and its runc shim v2 driving the runtime under test through
//! `ctr run --runc-binary <BERTH_TEST_RUNTIME>`: run, exec, ps, pause/resume, kill and delete,
//! with and without a tty. The shim calls the runtime with `--root R --log <bundle>/log.json
//! --log-format json` and `create --bundle B --pid-file F [--console-socket S]`, `start`,
//! `exec --process F --detach --pid-file F`, `ps --format json`, `pause`, `resume`,
//! `kill ID N`, `delete [--force]`. Each test has its own containerd; its `shutdown` fails
//! the test if anything was left behind.

use std::time::Duration;

use spec_tests::engines::containerd::Containerd;

fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

#[test]
fn ctr_run_in_the_foreground_reports_output_and_exit_status() {
    let c = Containerd::start().unwrap();
    let id = unique("fg");
    let out = c
        .run(
            &["--rm"],
            &id,
            &[
                "sh",
                "-c",
                "echo out; echo err >&2; cat /proc/1/comm; exit 3",
            ],
        )
        .unwrap();
    assert_eq!(out.code, Some(3), "{out}");
    assert_eq!(out.stdout, "out\nsh\n", "{out}");
    assert_eq!(out.stderr, "err\n", "{out}");
    c.shutdown().unwrap();
}

#[test]
fn ctr_run_with_a_tty() {
    let c = Containerd::start().unwrap();
    let id = unique("tty");
    let args = c.run_args(&["--rm", "-t"], &id);
    let mut argv: Vec<&str> = args.iter().map(String::as_str).collect();
    argv.extend(["sh", "-c", "tty; read l; echo typed-$l; exit 6"]);
    let pty = c.on_pty(&argv).unwrap();
    pty.read_until("/dev/pts/", Duration::from_secs(30))
        .unwrap();
    pty.write("abc\r").unwrap();
    pty.read_until("typed-abc", Duration::from_secs(20))
        .unwrap();
    assert_eq!(pty.wait(Duration::from_secs(20)).unwrap(), Some(6));
    c.shutdown().unwrap();
}

#[test]
fn ctr_detached_task_with_exec_ps_pause_kill_and_delete() {
    let c = Containerd::start().unwrap();
    let id = unique("bg");
    c.run(&["-d"], &id, &["sleep", "1000"])
        .unwrap()
        .ok()
        .unwrap();
    c.wait_task_status(&id, "RUNNING").unwrap();
    let fifo = c.fifo_dir();

    // exec without a tty: output and exit status come back through the shim.
    let exec = c
        .ctr(&[
            "task",
            "exec",
            "--fifo-dir",
            &fifo,
            "--exec-id",
            "e1",
            &id,
            "sh",
            "-c",
            "cat /proc/1/comm; exit 5",
        ])
        .unwrap();
    assert_eq!(exec.code, Some(5), "{exec}");
    assert_eq!(exec.stdout, "sleep\n", "{exec}");
    // exec with a tty (the shim passes --console-socket to the runtime's exec).
    let pty = c
        .on_pty(&[
            "task",
            "exec",
            "-t",
            "--fifo-dir",
            &fifo,
            "--exec-id",
            "e2",
            &id,
            "sh",
            "-c",
            "tty; exit 2",
        ])
        .unwrap();
    pty.read_until("/dev/pts/", Duration::from_secs(30))
        .unwrap();
    assert_eq!(pty.wait(Duration::from_secs(20)).unwrap(), Some(2));

    // ps goes through the runtime's `ps --format json`.
    let ps = c.ctr(&["task", "ps", &id]).unwrap().ok().unwrap();
    let pid: String = c
        .ctr(&["task", "ls"])
        .unwrap()
        .stdout
        .lines()
        .find(|l| l.starts_with(&id))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .to_string();
    assert!(ps.stdout.contains(&pid), "ps lists the init {pid}: {ps}");

    c.ctr(&["task", "pause", &id]).unwrap().ok().unwrap();
    c.wait_task_status(&id, "PAUSED").unwrap();
    c.ctr(&["task", "resume", &id]).unwrap().ok().unwrap();
    c.wait_task_status(&id, "RUNNING").unwrap();

    c.ctr(&["task", "kill", "-s", "SIGKILL", &id])
        .unwrap()
        .ok()
        .unwrap();
    c.wait_task_status(&id, "STOPPED").unwrap();
    c.ctr(&["task", "delete", &id]).unwrap().ok().unwrap();
    c.ctr(&["containers", "delete", &id]).unwrap().ok().unwrap();

    // delete --force of a running task.
    let id = unique("force");
    c.run(&["-d"], &id, &["sleep", "1000"])
        .unwrap()
        .ok()
        .unwrap();
    c.wait_task_status(&id, "RUNNING").unwrap();
    c.ctr(&["task", "delete", "--force", &id])
        .unwrap()
        .ok()
        .unwrap();
    c.ctr(&["containers", "delete", &id]).unwrap().ok().unwrap();
    c.shutdown().unwrap();
}
