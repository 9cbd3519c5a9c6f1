//! An e-mail address as callers send one (an organiser's, a buyer's): checked loosely, as
//! Stripe checks it, before it reaches Stripe.

use serde_json::Value;

use super::error::Error;

/// An optional e-mail address: absent or `null` is `None`; anything that is not one is
/// `email_invalid`.
pub fn email(value: Option<&Value>) -> Result<Option<String>, Error> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let text = value.as_str().ok_or(Error::EmailInvalid)?;
    let valid = text.len() <= 254
        && text.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.contains('@')
        })
        && !text.chars().any(char::is_whitespace);
    valid
        .then(|| Some(text.to_string()))
        .ok_or(Error::EmailInvalid)
}
