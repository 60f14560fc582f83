//! A small bearer-token server (the distribution token spec) for the registry's `auth: token`
//! mode: answers GET (docker style, basic auth) and POST (OAuth2 password grant, containerd
//! style) at `/token`, and signs ES256 JWTs whose `x5c` header carries the signing
//! certificate the registry trusts. Valid credentials get every action they ask for;
//! anonymous clients get `pull` on repositories under `public/` only.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use base64::Engine;
use serde_json::{json, Value};

use super::registry::{ISSUER, PASSWORD, SERVICE, USER};

/// The refresh token (docker's `identitytoken`) the server accepts for USER.
pub const REFRESH_TOKEN: &str = "berth-refresh-token";

pub struct TokenServer {
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
    port: u16,
    /// `GET`/`POST` lines with user and scopes, in arrival order.
    pub requests: Arc<Mutex<Vec<String>>>,
    /// When false, POST answers 405 so clients must fall back to GET.
    pub post_enabled: Arc<AtomicBool>,
    cert: PathBuf,
}

struct Signer {
    key: jsonwebtoken::EncodingKey,
    x5c: String,
}

impl TokenServer {
    pub fn start(dir: &Path) -> Result<Self> {
        let (cert, key) = super::tls::signing_pair(dir)?;
        let pem = std::fs::read_to_string(&cert)?;
        let x5c: String = pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<Vec<_>>()
            .concat();
        let signer = Signer {
            key: jsonwebtoken::EncodingKey::from_ec_pem(&std::fs::read(&key)?)
                .context("loading the token signing key")?,
            x5c,
        };
        let server = Arc::new(
            tiny_http::Server::http("127.0.0.1:0")
                .map_err(|e| anyhow::anyhow!("starting token server: {e}"))?,
        );
        let port = server
            .server_addr()
            .to_ip()
            .context("token server address")?
            .port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let post_enabled = Arc::new(AtomicBool::new(true));
        let thread = {
            let (server, requests, post_enabled) =
                (server.clone(), requests.clone(), post_enabled.clone());
            std::thread::spawn(move || {
                for req in server.incoming_requests() {
                    handle(req, &signer, &requests, &post_enabled);
                }
            })
        };
        Ok(Self {
            server,
            thread: Some(thread),
            port,
            requests,
            post_enabled,
            cert,
        })
    }

    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    /// The certificate the registry must trust (`rootcertbundle`).
    pub fn cert(&self) -> PathBuf {
        self.cert.clone()
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            // A panicked handler thread has nothing left to clean up.
            let _ = t.join();
        }
    }
}

fn handle(
    mut req: tiny_http::Request,
    signer: &Signer,
    requests: &Mutex<Vec<String>>,
    post_enabled: &AtomicBool,
) {
    let url = req.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let mut params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let method = req.method().to_string();
    let mut user: Option<(String, String)> = None;
    if method == "POST" {
        if !post_enabled.load(Ordering::SeqCst) {
            if let Ok(mut r) = requests.lock() {
                r.push("POST refused".to_string());
            }
            respond(req, 405, json!({"error": "method not allowed"}));
            return;
        }
        let mut body = String::new();
        // An unreadable body is treated as empty: the request then fails authentication.
        let _ = req.as_reader().read_to_string(&mut body);
        params.extend(form_urlencoded::parse(body.as_bytes()).into_owned());
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        if let (Some(u), Some(p)) = (get("username"), get("password")) {
            user = Some((u, p));
        } else if get("grant_type").as_deref() == Some("refresh_token") {
            // The one refresh token this server ever issued stands for USER.
            user = match get("refresh_token").as_deref() {
                Some(REFRESH_TOKEN) => Some((USER.to_string(), PASSWORD.to_string())),
                _ => Some(("<token>".to_string(), String::new())),
            };
        }
    } else if let Some(h) = req
        .headers()
        .iter()
        .find(|h| h.field.equiv("Authorization"))
    {
        let v = h.value.as_str();
        if let Some(b64) = v.strip_prefix("Basic ") {
            if let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b64) {
                let raw = String::from_utf8_lossy(&raw).into_owned();
                if let Some((u, p)) = raw.split_once(':') {
                    user = Some((u.to_string(), p.to_string()));
                }
            }
        }
    }
    let scopes: Vec<String> = params
        .iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' ').map(str::to_string).collect::<Vec<_>>())
        .filter(|s| !s.is_empty())
        .collect();
    if let Ok(mut r) = requests.lock() {
        r.push(format!(
            "{method} user={} scopes={}",
            user.as_ref().map_or("-", |(u, _)| u.as_str()),
            scopes.join(" ")
        ));
    }
    if path != "/token" {
        respond(req, 404, json!({"error": "not found"}));
        return;
    }
    let authenticated = match &user {
        Some((u, p)) if u == USER && p == PASSWORD => true,
        Some(_) => {
            respond(req, 401, json!({"error": "invalid credentials"}));
            return;
        }
        None => false,
    };
    let access: Vec<Value> = scopes
        .iter()
        .filter_map(|s| {
            let mut parts = s.splitn(3, ':');
            let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
            let actions: Vec<&str> = actions
                .split(',')
                .filter(|a| authenticated || (*a == "pull" && name.starts_with("public/")))
                .collect();
            Some(json!({"type": kind, "name": name, "actions": actions}))
        })
        .collect();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    static JTI: AtomicU64 = AtomicU64::new(0);
    let claims = json!({
        "iss": ISSUER,
        "sub": user.as_ref().map_or("", |(u, _)| u.as_str()),
        "aud": SERVICE,
        "exp": now + 300,
        "nbf": now - 10,
        "iat": now,
        "jti": format!("t{}", JTI.fetch_add(1, Ordering::Relaxed)),
        "access": access,
    });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.x5c = Some(vec![signer.x5c.clone()]);
    match jsonwebtoken::encode(&header, &claims, &signer.key) {
        Ok(token) if method == "POST" => respond(
            req,
            200,
            json!({"access_token": token, "expires_in": 300, "token_type": "Bearer"}),
        ),
        Ok(token) => respond(
            req,
            200,
            json!({"token": token, "access_token": token, "expires_in": 300}),
        ),
        Err(e) => respond(req, 500, json!({"error": e.to_string()})),
    }
}

fn respond(req: tiny_http::Request, status: u16, body: Value) {
    let resp = tiny_http::Response::from_string(body.to_string())
        .with_status_code(status)
        .with_header(
            tiny_http::Header::from_bytes("Content-Type", "application/json")
                .unwrap_or_else(|_| unreachable!("static header is valid")),
        );
    // The client may have gone away; nothing to do about it here.
    let _ = req.respond(resp);
}
