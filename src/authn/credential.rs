//! Finding the credential in a request (DESIGN.md §4): `Authorization:
//! Bearer …` (a JWT, or an API key when it starts with `sk_`) and the
//! configured API-key headers. Two different credentials are a 400; a
//! credential that is present is never ignored.

use http::HeaderMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    Jwt(String),
    ApiKey(String),
    /// An `Authorization` header that is not a usable bearer token.
    Unusable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conflict;

pub const API_KEY_PREFIX: &str = "sk_";

/// Extracts at most one credential. `api_key_headers` are lower-cased names.
pub fn extract(
    headers: &HeaderMap,
    api_key_headers: &[String],
) -> Result<Option<Credential>, Conflict> {
    let mut found: Option<Credential> = None;
    let mut add = |c: Credential| -> Result<(), Conflict> {
        match &found {
            Some(existing) if *existing != c => Err(Conflict),
            _ => {
                found = Some(c);
                Ok(())
            }
        }
    };
    let mut authorization = headers.get_all(http::header::AUTHORIZATION).iter();
    if let Some(value) = authorization.next() {
        if authorization.next().is_some() {
            return Err(Conflict);
        }
        add(parse_authorization(value.as_bytes()))?;
    }
    for name in api_key_headers {
        for value in headers.get_all(name.as_str()) {
            match std::str::from_utf8(value.as_bytes()).map(str::trim) {
                Ok(key) if !key.is_empty() => add(Credential::ApiKey(key.to_string()))?,
                _ => add(Credential::Unusable)?,
            }
        }
    }
    Ok(found)
}

fn parse_authorization(value: &[u8]) -> Credential {
    let Ok(text) = std::str::from_utf8(value) else {
        return Credential::Unusable;
    };
    let Some((scheme, token)) = text.trim().split_once(' ') else {
        return Credential::Unusable;
    };
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.contains(' ') {
        return Credential::Unusable;
    }
    if token.starts_with(API_KEY_PREFIX) {
        Credential::ApiKey(token.to_string())
    } else {
        Credential::Jwt(token.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        m
    }

    fn x(pairs: &[(&str, &str)]) -> Result<Option<Credential>, Conflict> {
        extract(&h(pairs), &["x-api-key".to_string()])
    }

    #[test]
    fn finds_each_kind() {
        assert_eq!(x(&[]), Ok(None));
        assert_eq!(
            x(&[("authorization", "Bearer a.b.c")]),
            Ok(Some(Credential::Jwt("a.b.c".into())))
        );
        assert_eq!(
            x(&[("authorization", "bearer a.b.c")]),
            Ok(Some(Credential::Jwt("a.b.c".into())))
        );
        assert_eq!(
            x(&[("authorization", "Bearer sk_123")]),
            Ok(Some(Credential::ApiKey("sk_123".into())))
        );
        assert_eq!(
            x(&[("x-api-key", "sk_123")]),
            Ok(Some(Credential::ApiKey("sk_123".into())))
        );
    }

    #[test]
    fn unusable_authorization_is_not_ignored() {
        for v in [
            "Basic dXNlcjpwYXNz",
            "Bearer",
            "Bearer ",
            "Bearera.b.c",
            "Token x",
            "Bearer a b",
        ] {
            assert_eq!(
                x(&[("authorization", v)]),
                Ok(Some(Credential::Unusable)),
                "{v:?}"
            );
        }
    }

    #[test]
    fn two_different_credentials_conflict() {
        assert_eq!(
            x(&[("authorization", "Bearer a.b.c"), ("x-api-key", "sk_1")]),
            Err(Conflict)
        );
        assert_eq!(
            x(&[
                ("authorization", "Bearer a.b.c"),
                ("authorization", "Bearer a.b.c")
            ]),
            Err(Conflict)
        );
        assert_eq!(
            x(&[("x-api-key", "sk_1"), ("x-api-key", "sk_2")]),
            Err(Conflict)
        );
        // The same key twice is one credential.
        assert_eq!(
            x(&[("authorization", "Bearer sk_1"), ("x-api-key", "sk_1")]),
            Ok(Some(Credential::ApiKey("sk_1".into())))
        );
    }
}
