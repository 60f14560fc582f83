//! Harness for black-box tests of an OCI runtime driven through its runc-compatible command line.
//!
//! The runtime under test is `BERTH_TEST_RUNTIME` (a path or a command name), by default the
//! workspace's `target/debug/berth-runtime`. Running the suite with `BERTH_TEST_RUNTIME=runc`
//! validates the tests themselves against Debian's runc.
//!
//! A test makes a [`Runtime`] (a private `--root` and temp dir), builds a [`Bundle`] (busybox
//! rootfs + default `config.json` as a `serde_json::Value` to edit), then drives containers with
//! [`Container`] guards that delete, reap and check for leaks even when the test fails.
//!
//! ```no_run
//! use spec_tests::runtime::Runtime;
//! let rt = Runtime::new()?;
//! let mut b = rt.bundle()?; // unique id, busybox rootfs, default config
//! b.sh("echo $$"); // process.args = ["sh", "-c", ...]
//! b.config["hostname"] = serde_json::json!("box"); // edit config.json freely
//! let fin = rt.run_to_exit(&b)?; // create, start, wait stopped, delete, leak check
//! assert_eq!(fin.stdout, "1\n");
//!
//! let c = rt.create(&b)?; // or step by step; dropping `c` force-deletes and reaps
//! c.start()?;
//! c.wait_stopped(std::time::Duration::from_secs(10))?;
//! c.delete()?; // `delete` must succeed, then nothing may be left behind
//! # anyhow::Ok(())
//! ```

mod bundle;
mod caps;
pub mod cgroups;
mod console;
mod container;
mod leaks;
mod runner;
pub mod security;

pub use bundle::{default_config, Bundle};
pub use caps::{cap_mask, cap_name, cap_number, status_field};
pub use console::{read_pty_until, read_pty_until_eof, ConsoleSocket};
pub use container::{Container, CreateOpts, Finished};
pub use leaks::{cgroup_dirs, cgroup_procs, reap, ProcessId};
pub use runner::{is_berth, runtime_binary, Outcome, RunOpts, Runtime, Spawned};

/// The cgroup parent (relative to every hierarchy root) under which the default config puts
/// each container, as `linux.cgroupsPath = "/berth-test/<id>"`, so the leak check knows where
/// to look.
pub const CGROUP_PARENT: &str = "berth-test";

/// How long a single runtime command may take before the harness kills it and fails the test.
pub const COMMAND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
