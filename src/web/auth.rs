//! Who may read the dashboard: anyone when `API_TOKENS` is unset, otherwise whoever shows one
//! of the tokens, either once through the login form (which sets a session cookie) or on each
//! request as `Authorization: Bearer` (for scripts).
//!
//! The cookie is not the token and does not reveal it: it is `{expires}.{mac}`, with `mac` an
//! HMAC-SHA256 of the expiry keyed with the SHA-256 digest of the token that logged in. So it
//! needs no server-side store: it works on every instance that shares the tokens and survives
//! restarts and deploys, it ends by itself after [`SESSION_SECS`], and removing a token from
//! `API_TOKENS` ends that token's sessions. Only someone who holds a token can make one.

use axum::http::uri::Authority;
use axum::http::{header, HeaderMap, Uri};

use crate::tokens::{bearer, Tokens};
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

/// The `Set-Cookie` value of a session. `secure` adds `Secure` (see [`secure_cookie`]).
pub fn set_cookie(value: &str, secure: bool) -> String {
    session_cookie(value, SESSION_SECS, secure)
}

/// The `Set-Cookie` value that ends a session in the browser.
pub fn clear_cookie(secure: bool) -> String {
    session_cookie("", 0, secure)
}

fn session_cookie(value: &str, max_age: i64, secure: bool) -> String {
    format!(
        "{COOKIE}={value}; Path=/dashboard; Max-Age={max_age}; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The host and port the request was asked for: its `Host` header (the URI's authority for a
/// request in absolute form). Behind a proxy this is what the proxy passes on, which is why
/// it must pass the browser's `Host` through (docs/pages.md).
pub fn requested_host(headers: &HeaderMap, uri: &Uri) -> Option<Authority> {
    match headers.get(header::HOST) {
        Some(host) => host.to_str().ok()?.parse().ok(),
        None => uri.authority().cloned(),
    }
}

/// Whether a session cookie for a page asked for at `host` is `Secure`: always, unless the page
/// was asked for by this machine (`localhost`, `127.0.0.1` or `[::1]`), where a browser reaches
/// the service over plain HTTP. No header a client chooses can turn it off elsewhere.
pub fn secure_cookie(host: Option<&Authority>) -> bool {
    !host.is_some_and(|h| {
        let name = h.host();
        name.eq_ignore_ascii_case("localhost") || name == "127.0.0.1" || name == "[::1]"
    })
}

/// Whether a browser sent the request from another site: it says so (`Sec-Fetch-Site:
/// cross-site`), or its `Origin` is not the host and port the request was asked for (`host`),
/// `Origin: null` (an opaque origin) included. The scheme is not compared: behind a proxy that
/// ends TLS the service cannot know its own. A request without either header (a script, an
/// old browser) is not refused: the session cookie is `SameSite=Strict` anyway.
pub fn from_another_site(headers: &HeaderMap, host: Option<&Authority>) -> bool {
    let cross_site = headers
        .get_all("sec-fetch-site")
        .iter()
        .any(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"));
    if cross_site {
        return true;
    }
    let mut origins = headers.get_all(header::ORIGIN).iter();
    let Some(origin) = origins.next() else {
        return false;
    };
    if origins.next().is_some() {
        return true;
    }
    let origin = origin.to_str().ok().and_then(|o| url::Url::parse(o).ok());
    let (Some(origin), Some(host)) = (origin, host) else {
        return true;
    };
    let (Some(origin_host), Some(origin_port)) =
        (origin.host_str(), origin.port_or_known_default())
    else {
        return true;
    };
    // A `Host` without a port was asked for on a default one: so must the origin be.
    let same_port = match host.port_u16() {
        Some(port) => port == origin_port,
        None => origin.port().is_none(),
    };
    !(origin_host.eq_ignore_ascii_case(host.host()) && same_port)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::digest;

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
        assert!(clear_cookie(false).contains("Max-Age=0"));
        assert!(clear_cookie(true).ends_with("; Secure"));
    }

    fn authority(host: &str) -> Option<Authority> {
        Some(host.parse().unwrap())
    }

    #[test]
    fn cookies_are_secure_unless_asked_for_by_this_machine() {
        for (host, secure) in [
            ("localhost", false),
            ("LocalHost:8080", false),
            ("127.0.0.1:8080", false),
            ("[::1]:8080", false),
            ("[::1]", false),
            ("pay.tmt.example", true),
            ("127.0.0.2", true),
            ("localhost.tmt.example", true),
            ("10.0.0.5:8080", true),
        ] {
            assert_eq!(secure_cookie(authority(host).as_ref()), secure, "{host}");
        }
        assert!(secure_cookie(None), "no host: secure");
    }

    #[test]
    fn requests_from_another_site_are_told_apart() {
        let with = |pairs: &[(&'static str, &str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.append(*k, v.parse().unwrap());
            }
            h
        };
        let here = authority("pay.tmt.example");
        let local = authority("127.0.0.1:8080");
        for (headers, host, another) in [
            (vec![], &here, false),
            (vec![("origin", "https://pay.tmt.example")], &here, false),
            (vec![("origin", "http://pay.tmt.example")], &here, false),
            (
                vec![("origin", "https://PAY.tmt.example:443")],
                &here,
                false,
            ),
            (vec![("origin", "http://127.0.0.1:8080")], &local, false),
            (vec![("sec-fetch-site", "same-origin")], &here, false),
            (vec![("sec-fetch-site", "none")], &here, false),
            (vec![("origin", "https://evil.example")], &here, true),
            (vec![("origin", "https://tmt.example")], &here, true),
            (
                vec![("origin", "https://pay.tmt.example:8443")],
                &here,
                true,
            ),
            (vec![("origin", "http://127.0.0.1:9090")], &local, true),
            (vec![("origin", "http://localhost:8080")], &local, true),
            (vec![("origin", "null")], &here, true),
            (vec![("origin", "not a url")], &here, true),
            (vec![("origin", "https://pay.tmt.example")], &None, true),
            (
                vec![
                    ("origin", "https://pay.tmt.example"),
                    ("origin", "https://evil.example"),
                ],
                &here,
                true,
            ),
            (vec![("sec-fetch-site", "cross-site")], &here, true),
            (
                vec![
                    ("origin", "https://pay.tmt.example"),
                    ("sec-fetch-site", "Cross-Site"),
                ],
                &here,
                true,
            ),
        ] {
            assert_eq!(
                from_another_site(&with(&headers), host.as_ref()),
                another,
                "{headers:?} asking {host:?}"
            );
        }
    }
}
