//! Bearer tokens: each is known only by its SHA-256 and bound to one tenant, which it may
//! write and read and nothing else; an operator's token (`admin = true`) may also run what
//! reads the whole ledger.

use std::collections::HashMap;

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};

use crate::config::TokenConfig;
use crate::error::ApiError;
use crate::state::App;

/// The tenant of the caller's token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller(pub String);

/// A caller whose token has `admin = true`: it may also run what reads the whole ledger
/// across tenants (`POST /v1/verify`), which a producer's token may not — a tenant could
/// otherwise keep the ledger's reader busy for everyone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin;

/// What a token is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The only tenant it writes and reads.
    pub tenant: String,
    /// Whether it may run whole-ledger operations.
    pub admin: bool,
}

/// The known tokens, by the SHA-256 of the token.
#[derive(Debug, Default)]
pub struct Tokens(HashMap<[u8; 32], Grant>);

impl Tokens {
    /// The tokens of the `[[server.token]]` entries (already validated as hex).
    pub fn new(tokens: &[TokenConfig]) -> Self {
        let mut known = HashMap::new();
        for token in tokens {
            let mut digest = [0u8; 32];
            if hex::decode_to_slice(&token.sha256, &mut digest).is_ok() {
                let grant = Grant {
                    tenant: token.tenant.clone(),
                    admin: token.admin,
                };
                known.insert(digest, grant);
            }
        }
        Self(known)
    }

    /// What `token` is allowed, if it is known.
    pub fn grant(&self, token: &str) -> Option<&Grant> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        self.0.get(&digest)
    }

    /// The tenant `token` is bound to.
    pub fn tenant(&self, token: &str) -> Option<&str> {
        self.grant(token).map(|grant| grant.tenant.as_str())
    }
}

/// A new random token and its SHA-256 (for `[[server.token]]`).
pub fn new_token() -> Result<(String, String), String> {
    use rand_core::RngCore;
    let mut bytes = [0u8; 32];
    rand_core::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| format!("cannot read random bytes for a token: {e}"))?;
    let token = format!("vt_{}", hex::encode(bytes));
    let digest = hex::encode(Sha256::digest(token.as_bytes()));
    Ok((token, digest))
}

impl FromRequestParts<App> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &App) -> Result<Self, ApiError> {
        let grant = granted(parts)?;
        Ok(Caller(grant.tenant.clone()))
    }
}

impl FromRequestParts<App> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &App) -> Result<Self, ApiError> {
        match granted(parts)? {
            Grant { admin: true, .. } => Ok(Admin),
            Grant { tenant, .. } => Err(ApiError::forbidden(format!(
                "this token (tenant `{tenant}`) may not read the whole ledger; that needs a \
                 token whose [[server.token]] entry has `admin = true`"
            ))),
        }
    }
}

/// The grant the request guard found for the request's token (see
/// [`crate::ops::guard`]): authentication happens there, before any request slot is taken
/// or any body byte read.
fn granted(parts: &Parts) -> Result<&Grant, ApiError> {
    parts
        .extensions
        .get::<Grant>()
        .ok_or_else(|| ApiError::unauthenticated("missing `Authorization: Bearer <token>`"))
}

/// The grant of the request's bearer token; 401 when it has none or an unknown one. The
/// scheme is matched case-insensitively (`Bearer`, `bearer`, `BEARER`), as HTTP's are.
pub fn authenticate<'a>(headers: &HeaderMap, tokens: &'a Tokens) -> Result<&'a Grant, ApiError> {
    let header = headers
        .get(AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthenticated("missing `Authorization: Bearer <token>`"))?;
    let token = header
        .to_str()
        .ok()
        .and_then(|h| h.trim_start().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or_else(|| {
            ApiError::unauthenticated("the Authorization header is not `Bearer <token>`")
        })?;
    tokens
        .grant(token)
        .ok_or_else(|| ApiError::unauthenticated("unknown token"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_token_is_found_by_its_digest_only() {
        let (token, digest) = new_token().unwrap();
        let tokens = Tokens::new(&[TokenConfig {
            tenant: "acme".into(),
            sha256: digest.clone(),
            admin: false,
        }]);
        assert_eq!(tokens.tenant(&token), Some("acme"));
        assert_eq!(tokens.tenant(&digest), None);
        assert_eq!(tokens.tenant(""), None);
    }

    #[test]
    fn the_scheme_is_case_insensitive_and_nothing_else_is_a_token() {
        let (token, digest) = new_token().unwrap();
        let tokens = Tokens::new(&[TokenConfig {
            tenant: "acme".into(),
            sha256: digest,
            admin: false,
        }]);
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(AUTHORIZATION, value.parse().unwrap());
            authenticate(&headers, &tokens).map(|g| g.tenant.clone())
        };
        for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
            assert_eq!(with(&format!("{scheme} {token}")).unwrap(), "acme");
        }
        assert_eq!(with(&format!("Bearer  {token} ")).unwrap(), "acme");
        for refused in [
            format!("Basic {token}"),
            format!("Bearer{token}"),
            token.clone(),
            "Bearer vt_unknown".to_string(),
        ] {
            let err = with(&refused).unwrap_err();
            assert_eq!(err.status().as_u16(), 401, "{refused}");
        }
        assert_eq!(
            authenticate(&HeaderMap::new(), &tokens)
                .unwrap_err()
                .status()
                .as_u16(),
            401
        );
    }
}
