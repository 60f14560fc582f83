//! The container process: argv, environment and working directory by docker's rules.

use super::image::ImageConfig;
use super::options::ProcessOptions;

/// Where docker's init binary (`--init`) is mounted in the container.
pub const INIT_PATH: &str = "/sbin/docker-init";

/// PATH when neither the image nor the user sets one (moby's oci.DefaultPathEnv).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Entrypoint followed by Cmd. A user's command replaces the image's Cmd; a user's entrypoint
/// replaces the image's Entrypoint and drops its Cmd (docker's merge rule); `--init` prefixes the
/// result with the init binary. `None` when there is nothing to run.
pub(crate) fn args(image: &ImageConfig, process: &ProcessOptions) -> Option<Vec<String>> {
    let (entrypoint, cmd) = match &process.entrypoint {
        Some(ep) => (ep.clone(), process.cmd.clone().unwrap_or_default()),
        None => (
            image.entrypoint.clone().unwrap_or_default(),
            process
                .cmd
                .clone()
                .or_else(|| image.cmd.clone())
                .unwrap_or_default(),
        ),
    };
    let mut args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return None;
    }
    if process.init.is_some() {
        args.splice(0..0, [INIT_PATH.to_string(), "--".to_string()]);
    }
    Some(args)
}

/// Docker's environment: PATH (default), HOSTNAME and TERM (with a tty) first, then the image's
/// Env and the user's, each replacing an earlier entry of the same key; HOME from passwd last
/// when nobody set it.
pub(crate) fn env(
    image: &ImageConfig,
    process: &ProcessOptions,
    hostname: Option<&str>,
    home: &str,
) -> Vec<String> {
    let mut env = vec![format!("PATH={DEFAULT_PATH}")];
    if let Some(h) = hostname {
        env.push(format!("HOSTNAME={h}"));
    }
    if process.tty {
        env.push("TERM=xterm".to_string());
    }
    for entry in image.env.iter().chain(&process.env) {
        replace_or_append(&mut env, entry);
    }
    if !env.iter().any(|e| key(e) == "HOME") {
        env.push(format!("HOME={home}"));
    }
    env
}

fn key(entry: &str) -> &str {
    entry.split_once('=').map_or(entry, |(k, _)| k)
}

fn replace_or_append(env: &mut Vec<String>, entry: &str) {
    match env.iter_mut().find(|e| key(e) == key(entry)) {
        Some(existing) => *existing = entry.to_string(),
        None => env.push(entry.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn image(ep: Option<&[&str]>, cmd: Option<&[&str]>) -> ImageConfig {
        ImageConfig {
            entrypoint: ep.map(strings),
            cmd: cmd.map(strings),
            ..Default::default()
        }
    }

    #[test]
    fn image_entrypoint_and_cmd_concatenate() {
        let img = image(Some(&["/entry.sh"]), Some(&["serve", "--port", "80"]));
        let a = args(&img, &ProcessOptions::default()).unwrap();
        assert_eq!(a, strings(&["/entry.sh", "serve", "--port", "80"]));
    }

    #[test]
    fn user_cmd_replaces_image_cmd_only() {
        let img = image(Some(&["/entry.sh"]), Some(&["serve"]));
        let p = ProcessOptions {
            cmd: Some(strings(&["shell"])),
            ..Default::default()
        };
        assert_eq!(args(&img, &p).unwrap(), strings(&["/entry.sh", "shell"]));
    }

    #[test]
    fn user_entrypoint_drops_image_cmd() {
        let img = image(Some(&["/entry.sh"]), Some(&["serve"]));
        let p = ProcessOptions {
            entrypoint: Some(strings(&["/bin/sh"])),
            ..Default::default()
        };
        assert_eq!(args(&img, &p).unwrap(), strings(&["/bin/sh"]));
        let p = ProcessOptions {
            entrypoint: Some(strings(&["/bin/sh", "-c"])),
            cmd: Some(strings(&["echo hi"])),
            ..Default::default()
        };
        assert_eq!(
            args(&img, &p).unwrap(),
            strings(&["/bin/sh", "-c", "echo hi"])
        );
    }

    #[test]
    fn empty_entrypoint_resets_and_needs_a_command() {
        let img = image(Some(&["/entry.sh"]), Some(&["serve"]));
        let mut p = ProcessOptions {
            entrypoint: Some(vec![]),
            ..Default::default()
        };
        assert_eq!(args(&img, &p), None);
        p.cmd = Some(strings(&["ls"]));
        assert_eq!(args(&img, &p).unwrap(), strings(&["ls"]));
        assert_eq!(args(&image(None, None), &ProcessOptions::default()), None);
    }

    #[test]
    fn init_prefixes_args() {
        let p = ProcessOptions {
            init: Some("/usr/bin/tini-static".into()),
            ..Default::default()
        };
        let a = args(&image(None, Some(&["sleep", "1"])), &p).unwrap();
        assert_eq!(a, strings(&[INIT_PATH, "--", "sleep", "1"]));
    }

    #[test]
    fn env_defaults_and_overrides() {
        let img = ImageConfig {
            env: strings(&["PATH=/opt/bin", "A=image", "B=image"]),
            ..Default::default()
        };
        let p = ProcessOptions {
            env: strings(&["B=user", "C=user", "A=user2"]),
            tty: true,
            ..Default::default()
        };
        let e = env(&img, &p, Some("box"), "/root");
        assert_eq!(
            e,
            strings(&[
                "PATH=/opt/bin",
                "HOSTNAME=box",
                "TERM=xterm",
                "A=user2",
                "B=user",
                "C=user",
                "HOME=/root"
            ])
        );
    }

    #[test]
    fn env_keeps_default_path_and_user_home() {
        let p = ProcessOptions {
            env: strings(&["HOME=/custom", "TERM=dumb"]),
            ..Default::default()
        };
        let e = env(&ImageConfig::default(), &p, None, "/root");
        assert_eq!(e[0], format!("PATH={DEFAULT_PATH}"));
        assert!(e.contains(&"HOME=/custom".to_string()));
        assert!(!e
            .iter()
            .any(|v| v == "HOME=/root" || v.starts_with("HOSTNAME=")));
        assert!(e.contains(&"TERM=dumb".to_string()));
    }
}
