//! The container user's entries in the container's own /etc/passwd and /etc/group, read the
//! way runc reads them: `HOME` for a process whose environment lacks it, and the
//! supplementary groups that list the user by name (added before `additionalGids`).

use std::fs;

/// What the container's files say about a uid.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecUser {
    /// The home directory; "/" when the uid has no entry (runc's default).
    pub home: String,
    /// Groups whose member list names the user.
    pub groups: Vec<u32>,
}

/// Looks `uid` up in the current root's /etc/passwd and /etc/group (call it inside the
/// container's root). Missing or unreadable files mean no entry.
pub fn lookup(uid: u32) -> ExecUser {
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    let Some((name, home)) = passwd_entry(&passwd, uid) else {
        return ExecUser {
            home: "/".into(),
            groups: Vec::new(),
        };
    };
    let group = fs::read_to_string("/etc/group").unwrap_or_default();
    ExecUser {
        home,
        groups: member_of(&group, &name),
    }
}

/// `name:password:uid:gid:gecos:home:shell` (passwd(5)): the first entry with `uid`.
fn passwd_entry(text: &str, uid: u32) -> Option<(String, String)> {
    text.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 6 && f[2].trim().parse::<u32>().ok() == Some(uid))
            .then(|| (f[0].to_string(), f[5].to_string()))
    })
}

/// `name:password:gid:member,member` (group(5)): the gids of the groups listing `user`.
fn member_of(text: &str, user: &str) -> Vec<u32> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            let listed = f.get(3)?.split(',').any(|m| m.trim() == user);
            listed.then(|| f[2].trim().parse().ok()).flatten()
        })
        .collect()
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
    const GROUP: &str = "root:x:0:\nwheel:x:10:root,web\nusers:x:100:\nstaff:x:50: web \n";

    #[test]
    fn finds_name_and_home_by_uid() {
        assert_eq!(
            passwd_entry(PASSWD, 1000),
            Some(("web".into(), "/home/web".into()))
        );
        assert_eq!(passwd_entry(PASSWD, 4242), None);
    }

    #[test]
    fn groups_come_from_the_member_lists() {
        assert_eq!(member_of(GROUP, "web"), vec![10, 50]);
        assert_eq!(member_of(GROUP, "root"), vec![10]);
        assert!(member_of(GROUP, "nobody").is_empty());
    }

    #[test]
    fn home_is_only_added_when_missing() {
        let user = ExecUser {
            home: "/home/web".into(),
            groups: vec![],
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
