//! `X-Registry-Auth`: the credentials docker's clients send with a pull or push, base64url
//! of a JSON `AuthConfig` (`{}`, or nothing, when they have none).

use axum::http::HeaderMap;
use base64::Engine as _;

use crate::ops::models::AuthConfig;

/// The credentials in the header, when it holds any.
pub fn from_headers(headers: &HeaderMap) -> Option<AuthConfig> {
    let raw = headers.get("X-Registry-Auth")?.to_str().ok()?.trim();
    if raw.is_empty() {
        return None;
    }
    let engines = [
        base64::engine::general_purpose::URL_SAFE,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::STANDARD_NO_PAD,
    ];
    let bytes = engines.iter().find_map(|e| e.decode(raw).ok())?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let field = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
    let auth = AuthConfig {
        username: field("username"),
        password: field("password"),
        serveraddress: field("serveraddress"),
    };
    (!auth.username.is_empty() || !auth.password.is_empty()).then_some(auth)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_decodes_in_every_base64_spelling() {
        let mut h = HeaderMap::new();
        assert!(from_headers(&h).is_none());
        h.insert("X-Registry-Auth", "e30=".parse().unwrap());
        assert!(from_headers(&h).is_none(), "{{}} is no credentials");
        let json = r#"{"username":"u","password":"p?>","serveraddress":"r:5000"}"#;
        for e in [
            base64::engine::general_purpose::URL_SAFE,
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ] {
            h.insert("X-Registry-Auth", e.encode(json).parse().unwrap());
            let a = from_headers(&h).unwrap();
            assert_eq!((a.username.as_str(), a.password.as_str()), ("u", "p?>"));
        }
    }
}
