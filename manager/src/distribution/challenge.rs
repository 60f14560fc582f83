//! `WWW-Authenticate` challenges (RFC 7235) as registries send them.

use std::collections::HashMap;

/// How a registry wants to be authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses every challenge in the header values, strongest (Bearer) first.
pub fn parse_challenges<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<Challenge> {
    let mut out = Vec::new();
    for v in values {
        for (scheme, params) in split_challenges(v) {
            match scheme.to_ascii_lowercase().as_str() {
                "basic" => out.push(Challenge::Basic),
                "bearer" => {
                    if let Some(realm) = params.get("realm") {
                        out.push(Challenge::Bearer {
                            realm: realm.clone(),
                            service: params.get("service").cloned(),
                            scope: params.get("scope").cloned(),
                        });
                    }
                }
                _ => {}
            }
        }
    }
    out.sort_by_key(|c| matches!(c, Challenge::Basic));
    out
}

/// Splits `Scheme k=v, k="v", Scheme2 k=v` into schemes with their parameters.
fn split_challenges(header: &str) -> Vec<(String, HashMap<String, String>)> {
    let mut out: Vec<(String, HashMap<String, String>)> = Vec::new();
    let chars: Vec<char> = header.chars().collect();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < chars.len() && (chars[*i].is_whitespace() || chars[*i] == ',') {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        if i >= chars.len() {
            break;
        }
        let start = i;
        while i < chars.len() && !chars[i].is_whitespace() && chars[i] != '=' && chars[i] != ',' {
            i += 1;
        }
        let token: String = chars[start..i].iter().collect();
        if i < chars.len() && chars[i] == '=' {
            // A parameter of the current challenge.
            i += 1;
            let value = if i < chars.len() && chars[i] == '"' {
                i += 1;
                let mut v = String::new();
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        i += 1;
                    }
                    v.push(chars[i]);
                    i += 1;
                }
                i += 1;
                v
            } else {
                let s = i;
                while i < chars.len() && chars[i] != ',' && !chars[i].is_whitespace() {
                    i += 1;
                }
                chars[s..i].iter().collect()
            };
            if let Some((_, params)) = out.last_mut() {
                params.insert(token.to_ascii_lowercase(), value);
            }
        } else {
            out.push((token, HashMap::new()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenge_with_quoted_params() {
        let c = parse_challenges([
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push",error="insufficient_scope""#,
        ]);
        assert_eq!(
            c,
            vec![Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:a/b:pull,push".into()),
            }]
        );
    }

    #[test]
    fn basic_and_unquoted_and_escaped_values() {
        let c = parse_challenges([r#"Basic realm="Registry Realm""#]);
        assert_eq!(c, vec![Challenge::Basic]);
        let c = parse_challenges([r#"bearer realm=http://h/t, service="s\"x""#]);
        assert_eq!(
            c,
            vec![Challenge::Bearer {
                realm: "http://h/t".into(),
                service: Some("s\"x".into()),
                scope: None,
            }]
        );
    }

    #[test]
    fn bearer_is_preferred_over_basic_and_unknown_schemes_ignored() {
        let c = parse_challenges([r#"Basic realm="r", Negotiate abc, Bearer realm="x""#]);
        assert_eq!(c.len(), 2);
        assert!(matches!(c[0], Challenge::Bearer { .. }));
        assert!(parse_challenges(["Bearer service=x"]).is_empty());
    }
}
