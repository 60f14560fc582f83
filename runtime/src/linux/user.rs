//! The container user's entry in the container's own /etc/passwd, read the way runc reads
//! it: `HOME` for a process whose environment lacks it. Supplementary groups are exactly
//! `process.user.additionalGids`: runc adds none from /etc/group for the numeric uid:gid of
//! an OCI spec, and engines (containerd's CRI, docker, podman) compute the image's group
//! memberships themselves and put them in additionalGids, so adding them here doubles them.

use std::fs;

/// What the container's files say about a uid.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecUser {
    /// The home directory; "/" when the uid has no entry (runc's default).
    pub home: String,
}

/// Looks `uid` up in the current root's /etc/passwd (call it inside the container's root).
/// A missing or unreadable file means no entry.
pub fn lookup(uid: u32) -> ExecUser {
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    let home = passwd_entry(&passwd, uid).map_or_else(|| "/".into(), |(_, home)| home);
    ExecUser { home }
}

/// `name:password:uid:gid:gecos:home:shell` (passwd(5)): the first entry with `uid`.
fn passwd_entry(text: &str, uid: u32) -> Option<(String, String)> {
    text.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 6 && f[2].trim().parse::<u32>().ok() == Some(uid))
            .then(|| (f[0].to_string(), f[5].to_string()))
    })
}

/// `env` with HOME set from the user's entry when it has none (runc does the same).
pub fn with_home(mut env: Vec<String>, user: &ExecUser) -> Vec<String> {
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", user.home));
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                          # comment\n\
                          daemon:x:1:1:daemon:/usr/sbin:/bin/false\n\
                          web:x:1000:100::/home/web:/bin/sh\n";

    #[test]
    fn finds_name_and_home_by_uid() {
        assert_eq!(
            passwd_entry(PASSWD, 1000),
            Some(("web".into(), "/home/web".into()))
        );
        assert_eq!(passwd_entry(PASSWD, 4242), None);
    }

    #[test]
    fn home_is_only_added_when_missing() {
        let user = ExecUser {
            home: "/home/web".into(),
        };
        assert_eq!(
            with_home(vec!["PATH=/bin".into()], &user),
            vec!["PATH=/bin".to_string(), "HOME=/home/web".into()]
        );
        assert_eq!(
            with_home(vec!["HOME=/x".into()], &user),
            vec!["HOME=/x".to_string()]
        );
    }
}
