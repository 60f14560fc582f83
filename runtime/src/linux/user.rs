//! The container user's entry in the container's own /etc/passwd, read the way runc reads
//! it: `HOME` for a process whose environment lacks it. (runc hands its init the user as
//! "uid:gid", an explicit group, so it takes no supplementary groups from /etc/group: only
//! `additionalGids`. Neither does this runtime.)

use std::fs;

/// The home directory of `uid` from the current root's /etc/passwd (call it inside the
/// container's root); "/" when there is no entry or no file (runc's default).
pub fn home(uid: u32) -> String {
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd_home(&passwd, uid).unwrap_or_else(|| "/".into())
}

/// `name:password:uid:gid:gecos:home:shell` (passwd(5)): the home of the first entry with
/// `uid`.
fn passwd_home(text: &str, uid: u32) -> Option<String> {
    text.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 6 && f[2].trim().parse::<u32>().ok() == Some(uid)).then(|| f[5].to_string())
    })
}

/// `env` with HOME set to `home` when it has none (runc does the same).
pub fn with_home(mut env: Vec<String>, home: &str) -> Vec<String> {
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={home}"));
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
    fn finds_the_home_by_uid() {
        assert_eq!(passwd_home(PASSWD, 1000), Some("/home/web".into()));
        assert_eq!(passwd_home(PASSWD, 0), Some("/root".into()));
        assert_eq!(passwd_home(PASSWD, 4242), None);
    }

    #[test]
    fn home_is_only_added_when_missing() {
        assert_eq!(
            with_home(vec!["PATH=/bin".into()], "/home/web"),
            vec!["PATH=/bin".to_string(), "HOME=/home/web".into()]
        );
        assert_eq!(
            with_home(vec!["HOME=/x".into()], "/home/web"),
            vec!["HOME=/x".to_string()]
        );
    }
}
