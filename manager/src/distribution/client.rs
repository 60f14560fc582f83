//! One registry's HTTP API: scheme discovery (HTTPS, plain HTTP only for insecure
//! registries), authentication (basic, bearer tokens by OAuth2 POST or GET, cached per scope
//! set and upgraded when a registry asks for more), and the typed requests pull and push use.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::Deserialize;

use super::challenge::{parse_challenges, Challenge};
use super::DistributionError;
use crate::config::RegistrySettings;
use crate::credentials::Credentials;
use crate::reference::api_host;

type Result<T, E = DistributionError> = std::result::Result<T, E>;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Tokens without `expires_in` are valid for 60 s (distribution's token spec).
const DEFAULT_TOKEN_LIFETIME: u64 = 60;

#[derive(Debug, Clone)]
enum Auth {
    Anonymous,
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

#[derive(Debug)]
struct Token {
    value: String,
    expires: Instant,
}

#[derive(Debug)]
struct AuthState {
    auth: Auth,
    /// Tokens by the sorted, space-joined scope set they were issued for.
    tokens: HashMap<String, Token>,
}

#[derive(Deserialize)]
struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

/// A connected registry.
#[derive(Debug)]
pub struct Registry {
    name: String,
    base: String,
    http: reqwest::Client,
    creds: Option<Credentials>,
    state: Mutex<AuthState>,
}

impl Registry {
    /// Finds how to talk to `registry` (a reference's registry name) and how it authenticates.
    pub async fn connect(
        registry: &str,
        settings: &RegistrySettings,
        creds: Option<Credentials>,
    ) -> Result<Self> {
        let host = api_host(registry);
        let http = build_client(host, settings)?;
        let https = format!("https://{host}");
        let (base, resp) = match ping(&http, &https).await {
            Ok(resp) => (https, resp),
            Err(tls_err) if settings.is_insecure(host) => {
                let plain = format!("http://{host}");
                match ping(&http, &plain).await {
                    Ok(resp) if is_ping_answer(resp.status()) => (plain, resp),
                    _ => return Err(connect_error(registry, tls_err)),
                }
            }
            Err(e) => return Err(connect_error(registry, e)),
        };
        let auth = match resp.status() {
            StatusCode::UNAUTHORIZED => auth_from_challenge(registry, resp.headers())?,
            s if s.is_success() => Auth::Anonymous,
            status => {
                return Err(DistributionError::Status {
                    registry: registry.to_string(),
                    what: "/v2/".to_string(),
                    status,
                    message: error_message(resp).await,
                })
            }
        };
        Ok(Self {
            name: registry.to_string(),
            base,
            http,
            creds,
            state: Mutex::new(AuthState {
                auth,
                tokens: HashMap::new(),
            }),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Checks that the stored credentials are accepted (for `login`): basic auth on `/v2/`
    /// or a token with no scope.
    pub async fn check_login(&self) -> Result<()> {
        let auth = self.auth_kind();
        match auth {
            Auth::Anonymous => Ok(()),
            Auth::Bearer { realm, service } => self
                .fetch_token(&realm, service.as_deref(), &[])
                .await
                .map(drop),
            Auth::Basic => {
                let resp = self
                    .send(&[], |c, base| Ok(c.get(format!("{base}/v2/"))))
                    .await?;
                match resp.status() {
                    s if s.is_success() => Ok(()),
                    StatusCode::UNAUTHORIZED => Err(self.unauthorized()),
                    status => Err(DistributionError::Status {
                        registry: self.name.clone(),
                        what: "/v2/".into(),
                        status,
                        message: error_message(resp).await,
                    }),
                }
            }
        }
    }

    fn auth_kind(&self) -> Auth {
        self.lock_state().auth.clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends a request built by `build` (again on retry, so bodies can be re-created),
    /// authenticating for `scopes`. A 401 makes it learn the challenge, fetch a token for the
    /// union of the scopes, and retry once; a second 401 is returned to the caller.
    pub async fn send(
        &self,
        scopes: &[String],
        build: impl Fn(&reqwest::Client, &str) -> Result<RequestBuilder>,
    ) -> Result<Response> {
        let mut scopes: BTreeSet<String> = scopes.iter().cloned().collect();
        for attempt in 0..2 {
            let mut rb = build(&self.http, &self.base)?;
            if let Some(value) = self.authorization(&scopes).await? {
                rb = rb.header(AUTHORIZATION, value);
            }
            let resp = rb
                .send()
                .await
                .map_err(|source| DistributionError::Request {
                    registry: self.name.clone(),
                    source,
                })?;
            if resp.status() != StatusCode::UNAUTHORIZED || attempt == 1 {
                return Ok(resp);
            }
            let auth = auth_from_challenge(&self.name, resp.headers())?;
            for c in parse_challenges(header_values(resp.headers())) {
                if let Challenge::Bearer {
                    scope: Some(scope), ..
                } = c
                {
                    scopes.insert(scope);
                }
            }
            let mut state = self.lock_state();
            state.auth = auth;
            state.tokens.clear();
        }
        unreachable!("the loop returns on its second attempt")
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, AuthState> {
        // A panic while holding the lock cannot leave the token map inconsistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn authorization(&self, scopes: &BTreeSet<String>) -> Result<Option<String>> {
        let auth = self.auth_kind();
        match auth {
            Auth::Anonymous => Ok(None),
            Auth::Basic => Ok(self.creds.as_ref().map(basic_header)),
            Auth::Bearer { realm, service } => {
                let key = scopes.iter().cloned().collect::<Vec<_>>().join(" ");
                if let Some(t) = self.lock_state().tokens.get(&key) {
                    if t.expires > Instant::now() {
                        return Ok(Some(format!("Bearer {}", t.value)));
                    }
                }
                let scopes: Vec<String> = scopes.iter().cloned().collect();
                let token = self
                    .fetch_token(&realm, service.as_deref(), &scopes)
                    .await?;
                let value = format!("Bearer {}", token.value);
                self.lock_state().tokens.insert(key, token);
                Ok(Some(value))
            }
        }
    }

    /// Gets a token: OAuth2 password (or refresh-token, for identity tokens) grant by POST when
    /// there are credentials, as containerd does, falling back to docker's GET with basic auth
    /// when the server does not do POST.
    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
    ) -> Result<Token> {
        if let Some(creds) = &self.creds {
            let mut form: Vec<(&str, &str)> = match creds.identity_token() {
                Some(refresh) => vec![
                    ("grant_type", "refresh_token"),
                    ("client_id", "berth"),
                    ("refresh_token", refresh),
                ],
                None => vec![
                    ("grant_type", "password"),
                    ("client_id", "berth"),
                    ("username", &creds.username),
                    ("password", &creds.password),
                ],
            };
            if let Some(s) = service {
                form.push(("service", s));
            }
            let joined = scopes.join(" ");
            if !scopes.is_empty() {
                form.push(("scope", &joined));
            }
            let resp = self
                .http
                .post(realm)
                .form(&form)
                .send()
                .await
                .map_err(|source| self.token_request_error(realm, source))?;
            match resp.status() {
                StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => {}
                _ => return self.token_from(realm, resp).await,
            }
        }
        let mut query: Vec<(&str, &str)> = Vec::new();
        if let Some(s) = service {
            query.push(("service", s));
        }
        for s in scopes {
            query.push(("scope", s));
        }
        if let Some(c) = &self.creds {
            query.push(("account", &c.username));
        }
        let mut rb = self.http.get(realm).query(&query);
        if let Some(c) = &self.creds {
            rb = rb.header(AUTHORIZATION, basic_header(c));
        }
        let resp = rb
            .send()
            .await
            .map_err(|source| self.token_request_error(realm, source))?;
        self.token_from(realm, resp).await
    }

    fn token_request_error(&self, realm: &str, source: reqwest::Error) -> DistributionError {
        DistributionError::Token {
            registry: self.name.clone(),
            realm: realm.to_string(),
            source,
        }
    }

    async fn token_from(&self, realm: &str, resp: Response) -> Result<Token> {
        match resp.status() {
            s if s.is_success() => {}
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => return Err(self.unauthorized()),
            status => {
                return Err(DistributionError::Status {
                    registry: self.name.clone(),
                    what: format!("token from {realm}"),
                    status,
                    message: error_message(resp).await,
                })
            }
        }
        let body: TokenResponse = resp
            .json()
            .await
            .map_err(|source| self.token_request_error(realm, source))?;
        let value = body
            .access_token
            .or(body.token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| DistributionError::EmptyToken {
                registry: self.name.clone(),
                realm: realm.to_string(),
            })?;
        let lifetime = body.expires_in.unwrap_or(DEFAULT_TOKEN_LIFETIME).max(10);
        Ok(Token {
            value,
            // Renew a little early so a token does not expire between check and use.
            expires: Instant::now() + Duration::from_secs(lifetime - 5),
        })
    }

    /// The error for a rejected authentication: wrong credentials, or none given.
    pub fn unauthorized(&self) -> DistributionError {
        if self.creds.is_some() {
            DistributionError::BadCredentials {
                registry: self.name.clone(),
            }
        } else {
            DistributionError::AuthRequired {
                registry: self.name.clone(),
            }
        }
    }

    /// `GET`/`HEAD` with an `Accept` header, the common case.
    pub async fn get(
        &self,
        method: Method,
        scopes: &[String],
        path: &str,
        accept: Option<&str>,
    ) -> Result<Response> {
        self.send(scopes, |c, base| {
            let rb = c.request(method.clone(), format!("{base}{path}"));
            Ok(match accept {
                Some(a) => rb.header(ACCEPT, a),
                None => rb,
            })
        })
        .await
    }
}

/// Pull scope for a repository.
pub fn pull_scope(repo: &str) -> String {
    format!("repository:{repo}:pull")
}

/// Push (and pull) scope for a repository.
pub fn push_scope(repo: &str) -> String {
    format!("repository:{repo}:pull,push")
}

fn basic_header(c: &Credentials) -> String {
    use base64::Engine;
    let raw = format!("{}:{}", c.username, c.password);
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

fn header_values(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
}

fn auth_from_challenge(registry: &str, headers: &HeaderMap) -> Result<Auth> {
    match parse_challenges(header_values(headers)).into_iter().next() {
        Some(Challenge::Bearer { realm, service, .. }) => Ok(Auth::Bearer { realm, service }),
        Some(Challenge::Basic) => Ok(Auth::Basic),
        None => Err(DistributionError::NoChallenge {
            registry: registry.to_string(),
        }),
    }
}

fn is_ping_answer(status: StatusCode) -> bool {
    status.is_success() || status == StatusCode::UNAUTHORIZED
}

async fn ping(http: &reqwest::Client, base: &str) -> Result<Response, reqwest::Error> {
    http.get(format!("{base}/v2/")).send().await
}

fn connect_error(registry: &str, source: reqwest::Error) -> DistributionError {
    DistributionError::Connect {
        registry: registry.to_string(),
        source,
    }
}

fn build_client(host: &str, settings: &RegistrySettings) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        // Redirects (blob storage on another host) must not carry our registry credentials;
        // reqwest drops the Authorization header when a redirect changes host.
        .redirect(reqwest::redirect::Policy::limited(10));
    for path in settings.ca_files(host) {
        let pem = fs::read(&path).map_err(|source| DistributionError::ReadCa {
            path: path.clone(),
            source,
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|source| {
            DistributionError::ParseCa {
                path: path.clone(),
                source,
            }
        })?;
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder
        .build()
        .map_err(|source| DistributionError::Client { source })
}

#[derive(Deserialize)]
struct ErrorBody {
    errors: Vec<ErrorEntry>,
}

#[derive(Deserialize)]
struct ErrorEntry {
    code: Option<String>,
    message: Option<String>,
}

/// The registry's error message (`errors[].code: message`), or the start of the body.
pub async fn error_message(resp: Response) -> String {
    let text = resp.text().await.unwrap_or_default();
    if let Ok(body) = serde_json::from_str::<ErrorBody>(&text) {
        let parts: Vec<String> = body
            .errors
            .iter()
            .map(|e| {
                let code = e.code.clone().unwrap_or_default().to_lowercase();
                match &e.message {
                    Some(m) if !m.is_empty() => format!("{code}: {m}"),
                    _ => code,
                }
            })
            .collect();
        if !parts.is_empty() {
            return parts.join("; ");
        }
    }
    text.chars()
        .take(200)
        .collect::<String>()
        .trim()
        .to_string()
}
