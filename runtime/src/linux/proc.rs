//! Reading `/proc/<pid>/stat` (proc(5)) and checking that a path really is procfs.

use std::fs;
use std::os::fd::AsFd;

/// The fields of `/proc/<pid>/stat` the runtime needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// Field 3: R, S, D, Z, T, X, ...
    pub state: char,
    /// Field 22: start time in clock ticks after boot.
    pub start_time: u64,
}

impl ProcStat {
    /// A zombie has exited; only its exit status waits to be collected.
    pub fn is_dead(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Parses a stat line. The command name (field 2) is in parentheses and may itself contain
/// spaces and parentheses, so fields are counted from the last `)`.
pub fn parse_stat(line: &str) -> Option<ProcStat> {
    let rest = &line[line.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    // After the state (field 3) come fields 4..; start time is field 22, i.e. 18 further on.
    let start_time = fields.nth(18)?.parse().ok()?;
    Some(ProcStat { state, start_time })
}

/// The stat of a live (or zombie) process; `None` if there is no such process.
pub fn stat(pid: i32) -> Option<ProcStat> {
    if pid <= 0 {
        return None;
    }
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// True when `fd` lives on a procfs mount. Writes to /proc files (sysctls, oom_score_adj, id
/// maps) check this first, so a container that replaced /proc with something else
/// (CVE-2019-16884 class) cannot redirect them.
pub fn is_procfs(fd: impl AsFd) -> bool {
    nix::sys::statfs::fstatfs(fd)
        .map(|s| s.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_stat_line_with_a_tricky_command_name() {
        let line = "1234 (a (b) c) S 1 1234 1234 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 98765 1000 10 ...";
        let s = parse_stat(line).expect("parses");
        assert_eq!(s.state, 'S');
        assert_eq!(s.start_time, 98765);
    }

    #[test]
    fn our_own_process_is_alive() {
        let s = stat(std::process::id() as i32).expect("self");
        assert!(!s.is_dead());
        assert!(s.start_time > 0);
    }

    #[test]
    fn zombies_count_as_dead() {
        assert!(ProcStat {
            state: 'Z',
            start_time: 1
        }
        .is_dead());
    }
}
