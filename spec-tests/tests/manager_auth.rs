//! Registry authentication and TLS: a docker-registry with TLS (its CA given to berth through
//! `certs.d`) and htpasswd basic auth; one with bearer tokens from the harness's token server
//! (OAuth2 POST and the GET fallback, anonymous and scoped tokens, scope upgrades for push and
//! cross-repository mounts); credentials in config.json and in a credential helper.

use std::os::unix::fs::PermissionsExt;

use anyhow::Result;
use spec_tests::manager::berth::Berth;
use spec_tests::manager::images::{busybox_image, Compression, Layout};
use spec_tests::manager::registry::{Auth, Registry, RegistryOptions, PASSWORD, USER};
use spec_tests::manager::token::{TokenServer, REFRESH_TOKEN};
use spec_tests::manager::{sha256, skopeo, skopeo_raw_manifest};

const CREDS: &str = "berth:s3cret-pass";

fn install_ca(berth: &Berth, reg: &Registry) -> Result<()> {
    let dir = berth.config_dir().join("certs.d").join(reg.host());
    std::fs::create_dir_all(&dir)?;
    let tls = reg
        .tls
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("registry has no TLS"))?;
    std::fs::copy(&tls.ca_cert, dir.join("ca.crt"))?;
    Ok(())
}

#[test]
fn tls_with_certs_d_ca_and_basic_auth_login_pull_push_logout() -> Result<()> {
    let reg = Registry::start(RegistryOptions {
        tls: true,
        auth: Auth::Basic,
    })?;
    let dir = tempfile::tempdir()?;
    let mut layout = Layout::create(&dir.path().join("layout"))?;
    let built = busybox_image(&mut layout, "v1", Compression::Gzip)?;
    let image = format!("{}/secure/bb:v1", reg.host());
    layout.push("v1", &image, &["--dest-creds", CREDS])?;
    let berth = Berth::new()?;

    // Without the CA the certificate is not trusted, and berth says so.
    let err = berth.fail(&["pull", &image])?;
    assert!(err.contains("cannot reach registry"), "{err}");
    assert!(err.to_lowercase().contains("certificate"), "{err}");

    install_ca(&berth, &reg)?;
    let err = berth.fail(&["pull", &image])?;
    assert!(err.contains("authentication required"), "{err}");

    let err = berth.fail(&["login", "-u", USER, "-p", "wrong", &reg.host()])?;
    assert!(err.contains("wrong username or password"), "{err}");
    assert!(!berth.docker_config().join("config.json").exists());

    let mut login = berth
        .cmd(&["login", "-u", USER, "--password-stdin", &reg.host()])?
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    if let Some(mut stdin) = login.stdin.take() {
        std::io::Write::write_all(&mut stdin, format!("{PASSWORD}\n").as_bytes())?;
    }
    let out = login.wait_with_output()?;
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Login Succeeded"));
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(berth.docker_config().join("config.json"))?)?;
    assert!(config["auths"][reg.host()]["auth"].is_string(), "{config}");

    berth.ok(&["pull", &image])?;
    let pushed = format!("{}/secure/copy:v1", reg.host());
    berth.ok(&["tag", &image, &pushed])?;
    berth.ok(&["push", &pushed])?;
    // skopeo, trusting the same CA, reads back exactly what berth pushed.
    let certs = berth.config_dir().join("certs.d").join(reg.host());
    let raw = skopeo(&[
        "inspect",
        "--raw",
        "--creds",
        CREDS,
        "--cert-dir",
        &certs.to_string_lossy(),
        &format!("docker://{pushed}"),
    ])?;
    assert_eq!(sha256(&raw.stdout), built.manifest.digest);

    let out = berth.ok(&["logout", &reg.host()])?;
    assert!(out.contains("Removing login credentials"), "{out}");
    let err = berth.fail(&["pull", &pushed])?;
    assert!(err.contains("authentication required"), "{err}");
    let out = berth.ok(&["logout", &reg.host()])?;
    assert!(out.contains("Not logged in"), "{out}");
    Ok(())
}

struct TokenSetup {
    token: TokenServer,
    reg: Registry,
    _dir: tempfile::TempDir,
}

fn token_registry() -> Result<TokenSetup> {
    let dir = tempfile::tempdir()?;
    let token = TokenServer::start(dir.path())?;
    let reg = Registry::start(RegistryOptions {
        tls: false,
        auth: Auth::Token {
            realm: token.realm(),
            cert: token.cert(),
        },
    })?;
    Ok(TokenSetup {
        token,
        reg,
        _dir: dir,
    })
}

#[test]
fn bearer_tokens_by_post_with_scope_upgrades_for_push_and_mount() -> Result<()> {
    let TokenSetup { token, reg, _dir } = token_registry()?;
    let dir = tempfile::tempdir()?;
    let mut layout = Layout::create(&dir.path().join("layout"))?;
    let built = busybox_image(&mut layout, "v1", Compression::Gzip)?;
    let private = format!("{}/private/bb:v1", reg.host());
    let public = format!("{}/public/bb:v1", reg.host());
    layout.push("v1", &private, &["--dest-creds", CREDS])?;
    layout.push("v1", &public, &["--dest-creds", CREDS])?;
    let berth = Berth::new()?;

    // Anonymous: a pull-only token for public/, none for private/.
    berth.ok(&["pull", &public])?;
    let err = Berth::new()?.fail(&["pull", &private])?;
    assert!(err.contains("authentication required"), "{err}");

    let err = berth.fail(&["login", "-u", USER, "-p", "nope", &reg.host()])?;
    assert!(err.contains("wrong username or password"), "{err}");
    berth.ok(&["login", "-u", USER, "-p", PASSWORD, &reg.host()])?;
    let before = token.requests().len();
    berth.ok(&["pull", &private])?;
    let reqs = token.requests()[before..].to_vec();
    assert!(
        reqs.iter()
            .any(|r| r == "POST user=berth scopes=repository:private/bb:pull"),
        "{reqs:?}"
    );
    // One token serves every request of the pull (cached).
    assert_eq!(reqs.len(), 1, "{reqs:?}");

    // Push to a new repository: push scope on it plus pull on the mount source, in one token.
    let target = format!("{}/mine/bb:v1", reg.host());
    berth.ok(&["tag", &private, &target])?;
    let before = token.requests().len();
    let out = berth.ok(&["push", &target])?;
    assert!(out.contains("Mounted from "), "{out}");
    let reqs = token.requests()[before..].to_vec();
    assert!(
        reqs.iter().any(|r| r.starts_with("POST user=berth")
            && r.contains("repository:mine/bb:pull,push")
            && r.contains(":pull")),
        "{reqs:?}"
    );
    let raw = skopeo_raw_manifest(&target, &["--creds", CREDS])?;
    assert_eq!(sha256(&raw), built.manifest.digest);
    Ok(())
}

#[test]
fn token_server_without_post_falls_back_to_get_with_basic_credentials() -> Result<()> {
    let TokenSetup { token, reg, _dir } = token_registry()?;
    token
        .post_enabled
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let dir = tempfile::tempdir()?;
    let mut layout = Layout::create(&dir.path().join("layout"))?;
    busybox_image(&mut layout, "v1", Compression::Gzip)?;
    let image = format!("{}/private/bb:v1", reg.host());
    layout.push("v1", &image, &["--dest-creds", CREDS])?;
    let berth = Berth::new()?;
    berth.ok(&["login", "-u", USER, "-p", PASSWORD, &reg.host()])?;
    let before = token.requests().len();
    berth.ok(&["pull", &image])?;
    let reqs = token.requests()[before..].to_vec();
    assert_eq!(
        reqs,
        [
            "POST refused",
            "GET user=berth scopes=repository:private/bb:pull"
        ],
        "POST refused with 405, then GET with basic auth"
    );
    Ok(())
}

#[test]
fn credential_helpers_store_get_and_erase() -> Result<()> {
    let reg = Registry::start(RegistryOptions {
        tls: false,
        auth: Auth::Basic,
    })?;
    let dir = tempfile::tempdir()?;
    let mut layout = Layout::create(&dir.path().join("layout"))?;
    busybox_image(&mut layout, "v1", Compression::Gzip)?;
    let image = format!("{}/helper/bb:v1", reg.host());
    layout.push("v1", &image, &["--dest-creds", CREDS])?;

    // A docker-credential-* helper keeping one secret in a file, as the protocol describes.
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin)?;
    let store = dir.path().join("helper-store.json");
    let helper = bin.join("docker-credential-berthtest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nset -e\nstore={}\ncase \"$1\" in\n\
             store) cat > \"$store\" ;;\n\
             get) cat >/dev/null; if [ -f \"$store\" ]; then cat \"$store\"; else echo 'credentials not found in native keychain'; exit 1; fi ;;\n\
             erase) cat >/dev/null; rm -f \"$store\" ;;\n\
             esac\n",
            store.display()
        ),
    )?;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755))?;
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let berth = Berth::new()?;
    std::fs::write(
        berth.docker_config().join("config.json"),
        format!(r#"{{"credHelpers":{{"{}":"berthtest"}}}}"#, reg.host()),
    )?;
    let run = |args: &[&str]| -> Result<std::process::Output> {
        Ok(berth.cmd(args)?.env("PATH", &path).output()?)
    };
    let out = run(&["login", "-u", USER, "-p", PASSWORD, &reg.host()])?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stored: serde_json::Value = serde_json::from_slice(&std::fs::read(&store)?)?;
    assert_eq!(stored["Username"], USER);
    assert_eq!(stored["Secret"], PASSWORD);
    let config = std::fs::read_to_string(berth.docker_config().join("config.json"))?;
    assert!(
        !config.contains(PASSWORD),
        "secret leaked into config.json: {config}"
    );

    let out = run(&["pull", &image])?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["logout", &reg.host()])?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!store.exists());
    let out = run(&["pull", &image])?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("authentication required"), "{err}");
    Ok(())
}

#[test]
fn identity_token_in_config_json_is_used_as_an_oauth2_refresh_token() -> Result<()> {
    let TokenSetup { token, reg, _dir } = token_registry()?;
    let dir = tempfile::tempdir()?;
    let mut layout = Layout::create(&dir.path().join("layout"))?;
    busybox_image(&mut layout, "v1", Compression::Gzip)?;
    let image = format!("{}/private/bb:v1", reg.host());
    layout.push("v1", &image, &["--dest-creds", CREDS])?;
    let berth = Berth::new()?;
    std::fs::write(
        berth.docker_config().join("config.json"),
        format!(
            r#"{{"auths":{{"{}":{{"auth":"","identitytoken":"{REFRESH_TOKEN}"}}}}}}"#,
            reg.host()
        ),
    )?;
    berth.ok(&["pull", &image])?;
    assert!(
        token
            .requests()
            .iter()
            .any(|r| r == "POST user=berth scopes=repository:private/bb:pull"),
        "{:?}",
        token.requests()
    );
    std::fs::write(
        berth.docker_config().join("config.json"),
        format!(
            r#"{{"auths":{{"{}":{{"identitytoken":"expired"}}}}}}"#,
            reg.host()
        ),
    )?;
    let err = Berth::new().and_then(|b| {
        std::fs::copy(
            berth.docker_config().join("config.json"),
            b.docker_config().join("config.json"),
        )?;
        b.fail(&["pull", &image])
    })?;
    assert!(err.contains("wrong username or password"), "{err}");
    Ok(())
}

/// Removes a directory on drop (even when the test fails).
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        // Nothing else to do if it is already gone.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn tls_ca_from_etc_docker_certs_d_is_trusted() -> Result<()> {
    let reg = Registry::start(RegistryOptions {
        tls: true,
        auth: Auth::None,
    })?;
    let dir = tempfile::tempdir()?;
    let mut layout = Layout::create(&dir.path().join("layout"))?;
    let built = busybox_image(&mut layout, "v1", Compression::Gzip)?;
    let image = format!("{}/docker-ca/bb:v1", reg.host());
    layout.push("v1", &image, &[])?;
    // The port makes this directory unique to this test's registry.
    let certs = std::path::PathBuf::from("/etc/docker/certs.d").join(reg.host());
    let _cleanup = RemoveOnDrop(certs.clone());
    std::fs::create_dir_all(&certs)?;
    let tls = reg
        .tls
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("registry has no TLS"))?;
    std::fs::copy(&tls.ca_cert, certs.join("ca.crt"))?;
    let berth = Berth::new()?;
    let out = berth.ok(&["pull", &image])?;
    assert!(
        out.contains(&format!("Digest: {}", built.manifest.digest)),
        "{out}"
    );
    Ok(())
}
