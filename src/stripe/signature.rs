//! Stripe webhook signatures (`Stripe-Signature: t=…,v1=…[,v1=…][,v0=…]`), as a pure function of
//! its inputs so that every rule can be tested without a clock or a server.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why a delivery was refused. Each maps to one stable code and Spanish message in the HTTP layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no Stripe-Signature header")]
    MissingHeader,
    #[error("unparseable Stripe-Signature header")]
    MalformedHeader,
    #[error("no v1 signature in the header")]
    NoV1,
    #[error("no signature matches any configured secret")]
    NoMatch,
    #[error("timestamp outside the tolerance")]
    OutsideTolerance,
}

/// Checks `header` against `body` with every secret. Returns the signed timestamp.
///
/// Every `v1` entry is tried against every secret (secret rotation: Stripe signs with each
/// active secret), `v0` and unknown schemes are ignored, comparisons are constant-time, and the
/// timestamp must be within `tolerance_secs` of `now` in either direction.
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    secrets: &[SecretString],
    tolerance_secs: i64,
    now: i64,
) -> Result<i64, SignatureError> {
    let header = header.ok_or(SignatureError::MissingHeader)?;
    let mut timestamp: Option<i64> = None;
    let mut v1: Vec<Vec<u8>> = Vec::new();
    for item in header.split(',') {
        let Some((scheme, value)) = item.trim().split_once('=') else {
            continue;
        };
        match scheme {
            "t" => timestamp = value.parse::<i64>().ok().or(timestamp),
            // A v1 that is not hex can never match; it still counts as present.
            "v1" => v1.push(hex::decode(value).unwrap_or_default()),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::MalformedHeader)?;
    if v1.is_empty() {
        return Err(SignatureError::NoV1);
    }
    let matched = secrets.iter().any(|secret| {
        let mac = signed_payload_mac(secret.expose_secret(), timestamp, body);
        v1.iter().any(|sig| mac.clone().verify_slice(sig).is_ok())
    });
    if !matched {
        return Err(SignatureError::NoMatch);
    }
    if now.abs_diff(timestamp) > tolerance_secs.max(0) as u64 {
        return Err(SignatureError::OutsideTolerance);
    }
    Ok(timestamp)
}

/// The `Stripe-Signature` header Stripe would send for `body` at `timestamp`.
pub fn sign(body: &[u8], secret: &str, timestamp: i64) -> String {
    let mac = signed_payload_mac(secret, timestamp, body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

fn signed_payload_mac(secret: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BODY: &[u8] = br#"{"id":"evt_1","type":"payment_intent.succeeded"}"#;
    const NOW: i64 = 1_700_000_000;

    fn secrets(list: &[&str]) -> Vec<SecretString> {
        list.iter()
            .map(|s| SecretString::from(s.to_string()))
            .collect()
    }

    fn check(header: Option<&str>) -> Result<i64, SignatureError> {
        verify(header, BODY, &secrets(&["whsec_a"]), 300, NOW)
    }

    #[test]
    fn good_signature_verifies() {
        let h = sign(BODY, "whsec_a", NOW);
        assert_eq!(check(Some(&h)), Ok(NOW));
    }

    #[test]
    fn known_vector() {
        // HMAC-SHA256(key "whsec_test", "1.{}"), computed independently with Python's hmac module.
        assert_eq!(
            sign(b"{}", "whsec_test", 1),
            "t=1,v1=7500d5d4be4b3ef07af1fe56f7d522d135cdaa7530de557e67cc1049c52de094"
        );
    }

    #[test]
    fn missing_header() {
        assert_eq!(check(None), Err(SignatureError::MissingHeader));
    }

    #[test]
    fn unparseable_header() {
        assert_eq!(check(Some("garbage")), Err(SignatureError::MalformedHeader));
        assert_eq!(
            check(Some("t=abc,v1=00")),
            Err(SignatureError::MalformedHeader)
        );
        assert_eq!(check(Some("")), Err(SignatureError::MalformedHeader));
    }

    #[test]
    fn no_v1() {
        let h = sign(BODY, "whsec_a", NOW).replace("v1=", "v0=");
        assert_eq!(check(Some(&h)), Err(SignatureError::NoV1));
    }

    #[test]
    fn v0_is_ignored_even_when_it_matches() {
        let good = sign(BODY, "whsec_a", NOW);
        let sig = good.split("v1=").nth(1).unwrap();
        let h = format!("t={NOW},v0={sig},v1={}", "0".repeat(64));
        assert_eq!(check(Some(&h)), Err(SignatureError::NoMatch));
    }

    #[test]
    fn wrong_secret_and_tampered_body() {
        let h = sign(BODY, "whsec_other", NOW);
        assert_eq!(check(Some(&h)), Err(SignatureError::NoMatch));
        let h = sign(b"{\"id\":\"evt_2\"}", "whsec_a", NOW);
        assert_eq!(check(Some(&h)), Err(SignatureError::NoMatch));
        let h = format!("t={NOW},v1=zz-not-hex");
        assert_eq!(check(Some(&h)), Err(SignatureError::NoMatch));
    }

    #[test]
    fn tolerance_both_ways() {
        let past = sign(BODY, "whsec_a", NOW - 301);
        assert_eq!(check(Some(&past)), Err(SignatureError::OutsideTolerance));
        let future = sign(BODY, "whsec_a", NOW + 301);
        assert_eq!(check(Some(&future)), Err(SignatureError::OutsideTolerance));
        let edge = sign(BODY, "whsec_a", NOW - 300);
        assert_eq!(check(Some(&edge)), Ok(NOW - 300));
    }

    #[test]
    fn any_v1_against_any_secret() {
        let old = sign(BODY, "whsec_old", NOW);
        let new = sign(BODY, "whsec_new", NOW);
        let new_sig = new.split("v1=").nth(1).unwrap();
        // Stripe sends one v1 per active secret during rotation.
        let both = format!("{old},v1={new_sig}");
        let only_new = secrets(&["whsec_new"]);
        assert_eq!(verify(Some(&both), BODY, &only_new, 300, NOW), Ok(NOW));
        let rotated = secrets(&["whsec_unrelated", "whsec_old"]);
        assert_eq!(verify(Some(&old), BODY, &rotated, 300, NOW), Ok(NOW));
        assert_eq!(
            verify(Some(&old), BODY, &[], 300, NOW),
            Err(SignatureError::NoMatch)
        );
    }

    #[test]
    fn whitespace_and_unknown_schemes_tolerated() {
        let h = sign(BODY, "whsec_a", NOW).replace(",", " , ");
        let h = format!("{h},v2=abc,foo");
        assert_eq!(check(Some(&h)), Ok(NOW));
    }

    proptest! {
        #[test]
        fn arbitrary_headers_never_panic(h in ".*", body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = verify(Some(&h), &body, &secrets(&["whsec_a"]), 300, NOW);
        }

        #[test]
        fn signed_bodies_verify(body in proptest::collection::vec(any::<u8>(), 0..2048), t in 0i64..4_000_000_000) {
            let h = sign(&body, "whsec_p", t);
            prop_assert_eq!(verify(Some(&h), &body, &secrets(&["whsec_p"]), 300, t), Ok(t));
        }
    }
}
