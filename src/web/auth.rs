//! Who may read the dashboard: anyone when `API_TOKENS` is unset, otherwise whoever shows one
//! of the tokens, either once through the login form (which sets a session cookie) or on each
//! request as `Authorization: Bearer` (for scripts).
//!
//! The cookie is not the token and does not reveal it: it is `{expires}.{mac}`, with `mac` an
//! HMAC-SHA256 of the expiry keyed with the SHA-256 digest of the token that logged in. So it
//! needs no server-side store: it works on every instance that shares the tokens and survives
//! restarts and deploys, it ends by itself after [`SESSION_SECS`], and removing a token from
//! `API_TOKENS` ends that token's sessions. Only someone who holds a token can make one.

use axum::http::{header, HeaderMap};

use crate::http::access::{bearer, Tokens};
use hmac::{Hmac, Mac};
use secrecy::SecretString;
use sha2::Sha256;
use subtle::ConstantTimeEq;

pub const COOKIE: &str = "tmt_dashboard";

/// How long a login lasts.
pub const SESSION_SECS: i64 = 12 * 3600;

/// What a session's MAC covers besides its expiry, so that a MAC made for anything else with
/// the same key can never pass for a session.
const PURPOSE: &[u8] = b"tmt-payments dashboard session v1.";

pub struct DashboardAuth {
    tokens: Tokens,
}

fn mac(key: &[u8; 32], expires: i64) -> [u8; 32] {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(PURPOSE);
    m.update(expires.to_string().as_bytes());
    m.finalize().into_bytes().into()
}

impl DashboardAuth {
    pub fn new(tokens: &[SecretString]) -> Self {
        DashboardAuth {
            tokens: Tokens::new(tokens),
        }
    }

    /// Whether the dashboard asks for a token at all.
    pub fn required(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// The cookie value of a session for `token`, or `None` when it is not one of the tokens.
    pub fn login(&self, token: &str, now: i64) -> Option<String> {
        let key = self.tokens.known(token.trim())?;
        let expires = now + SESSION_SECS;
        Some(format!("{expires}.{}", hex::encode(mac(&key, expires))))
    }

    /// Whether `value` is a session cookie of a configured token that has not expired.
    fn session_valid(&self, value: &str, now: i64) -> bool {
        let Some((expires, presented)) = value.split_once('.') else {
            return false;
        };
        let (Ok(expires), Ok(presented)) = (expires.parse::<i64>(), hex::decode(presented)) else {
            return false;
        };
        if expires <= now || expires > now + SESSION_SECS || presented.len() != 32 {
            return false;
        }
        let mut matched = subtle::Choice::from(0);
        for key in self.tokens.digests() {
            matched |= mac(key, expires).ct_eq(presented.as_slice());
        }
        bool::from(matched)
    }

    /// Whether the request may read the dashboard.
    pub fn allows(&self, headers: &HeaderMap, now: i64) -> bool {
        if !self.required() {
            return true;
        }
        if let Some(token) = bearer(headers) {
            return self.tokens.known(token).is_some();
        }
        cookie(headers, COOKIE).is_some_and(|v| self.session_valid(v, now))
    }
}

/// The value of the cookie `name` among the request's `Cookie` headers.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// The `Set-Cookie` value of a session. `secure` adds `Secure` (the page came over HTTPS).
pub fn set_cookie(value: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={value}; Path=/dashboard; Max-Age={SESSION_SECS}; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that ends a session in the browser.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/dashboard; Max-Age=0; HttpOnly; SameSite=Strict")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::access::digest;

    const TOKEN: &str = "a-long-enough-dashboard-token";

    fn auth() -> DashboardAuth {
        DashboardAuth::new(&[
            SecretString::from("another-configured-token-1".to_string()),
            SecretString::from(TOKEN.to_string()),
        ])
    }

    fn with_cookie(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            format!("theme=dark; {COOKIE}={value}").parse().unwrap(),
        );
        h
    }

    #[test]
    fn a_login_makes_a_session_that_is_not_the_token() {
        let auth = auth();
        let now = 1_800_000_000;
        assert!(auth.login("wrong-token-of-the-same-size!", now).is_none());
        let session = auth.login(TOKEN, now).unwrap();
        assert!(!session.contains(TOKEN));
        assert!(!session.contains(&hex::encode(digest(TOKEN))));
        assert!(auth.allows(&with_cookie(&session), now));
        assert!(auth.allows(&with_cookie(&session), now + SESSION_SECS - 1));
        assert!(
            !auth.allows(&with_cookie(&session), now + SESSION_SECS),
            "expired"
        );
        assert!(!auth.allows(&HeaderMap::new(), now));
    }

    #[test]
    fn sessions_cannot_be_forged_or_stretched() {
        let auth = auth();
        let now = 1_800_000_000;
        let session = auth.login(TOKEN, now).unwrap();
        let (expires, mac) = session.split_once('.').unwrap();
        let later: i64 = expires.parse::<i64>().unwrap() + 3600;
        for forged in [
            format!("{later}.{mac}"),
            format!("{expires}.{}", "0".repeat(64)),
            format!("{expires}.{}", &mac[..62]),
            format!("{expires}{mac}"),
            TOKEN.to_string(),
            String::new(),
        ] {
            assert!(!auth.allows(&with_cookie(&forged), now), "{forged}");
        }
        // A session minted by a token that is no longer configured ends with it.
        let other =
            DashboardAuth::new(&[SecretString::from("another-configured-token-1".to_string())]);
        assert!(!other.allows(&with_cookie(&session), now));
    }

    #[test]
    fn bearer_tokens_and_open_dashboards() {
        let auth = auth();
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            format!("Bearer {TOKEN}").parse().unwrap(),
        );
        assert!(auth.allows(&h, 0));
        h.insert(header::AUTHORIZATION, "Bearer nope".parse().unwrap());
        assert!(!auth.allows(&h, 0));
        assert!(DashboardAuth::new(&[]).allows(&HeaderMap::new(), 0));
    }

    #[test]
    fn cookies_are_http_only_and_strict() {
        let set = set_cookie("1.ab", false);
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"));
        assert!(!set.contains("Secure"));
        assert!(set_cookie("1.ab", true).ends_with("; Secure"));
        assert!(clear_cookie().contains("Max-Age=0"));
    }
}
