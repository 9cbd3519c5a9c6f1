//! API tokens (`API_TOKENS`): which are accepted, and the token a request presents. The HTTP
//! surface asks the client functions for one and the dashboard takes one at its login or on
//! each request; both check tokens here, the same way.

use axum::http::HeaderMap;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The accepted API tokens, kept as their SHA-256 digests: compared in constant time, so that
/// neither which token matched nor how close a guess came, nor their lengths, can leak.
pub struct Tokens(Vec<[u8; 32]>);

impl Tokens {
    pub fn new(tokens: &[SecretString]) -> Self {
        Tokens(tokens.iter().map(|t| digest(t.expose_secret())).collect())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The digest of the configured token equal to `presented`, if one is. Every token is
    /// compared, whatever matched.
    pub fn known(&self, presented: &str) -> Option<[u8; 32]> {
        let presented = digest(presented);
        let mut matched = subtle::Choice::from(0);
        for token in &self.0 {
            matched |= token.ct_eq(&presented);
        }
        bool::from(matched).then_some(presented)
    }

    /// Every configured token's digest.
    pub fn digests(&self) -> &[[u8; 32]] {
        &self.0
    }
}

/// The token of an `Authorization: Bearer <token>` header (the scheme in any case).
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
}

/// The token of `Bearer <token>`; the scheme name is case-insensitive (RFC 7235 §2.1).
fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// A token's SHA-256 digest: what is kept of it.
pub fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}
