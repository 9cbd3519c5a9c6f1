//! The settings' parsers: each reads one setting's text into its type, or says in a few words
//! what is wrong with it, without quoting a secret. `config` names one in each setting's
//! `value_parser`; none of them knows of the others' settings (checks across settings are
//! `Config::from_args`'s).

use std::ffi::OsStr;
use std::fmt;
use std::ops::{Bound, RangeBounds};
use std::str::FromStr;
use std::time::Duration;

use clap::builder::{EnumValueParser, PossibleValue, TypedValueParser};
use clap::ValueEnum;
use secrecy::SecretString;

use crate::http::access::{Network, RateLimit};
use crate::http::CorsOrigins;
use crate::ledger::{Backend, LatePolicy};
use crate::telemetry::LogFormat;

/// A URL as given, which may carry a password (in its user information or a `password`
/// parameter): `Debug` prints it as [`redact_url`] does.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl<T = String>(pub T);

impl<T: AsRef<str>> fmt::Debug for SecretUrl<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(self.0.as_ref()))
    }
}

// What a refusal by `within` says a setting must be.
pub(super) const WHOLE: &str = "a whole number";
pub(super) const SECONDS: &str = "a whole number of seconds";

/// The largest `MAX_INFLIGHT_BODY_BYTES`: 64 GiB.
pub(super) const MAX_INFLIGHT_BODY_BYTES: usize = 1 << 36;

/// A connection timeout: 1 to 3600 whole seconds.
pub(super) const CONNECTION: std::ops::RangeInclusive<u64> = 1..=3600;

/// A `T` (white space around it ignored) within `range`; a refusal says the text is not
/// `what`, or gives the range.
pub(super) fn within<T, R>(
    what: &'static str,
    range: R,
) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static
where
    T: FromStr + PartialOrd + fmt::Display,
    R: RangeBounds<T> + Clone + Send + Sync + 'static,
{
    move |text| {
        let value: T = text
            .trim()
            .parse()
            .map_err(|_| format!("'{text}' is not {what}"))?;
        if range.contains(&value) {
            return Ok(value);
        }
        Err(match (range.start_bound(), range.end_bound()) {
            (Bound::Included(least), Bound::Included(most)) => {
                format!("must be between {least} and {most}")
            }
            (Bound::Included(least), _) => format!("must be at least {least}"),
            (_, Bound::Included(most)) => format!("must be at most {most}"),
            _ => format!("'{text}' is out of range"),
        })
    }
}

/// Whole seconds within `range`.
pub(super) fn seconds<R>(
    range: R,
) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync + 'static
where
    R: RangeBounds<u64> + Clone + Send + Sync + 'static,
{
    let whole = within(SECONDS, range);
    move |text| whole(text).map(Duration::from_secs)
}

pub(super) fn port(text: &str) -> Result<u16, String> {
    within("a port number (0-65535)", ..)(text)
}

pub(super) fn calls_per_second(text: &str) -> Result<u32, String> {
    within("a whole number of calls per second", 0..=10_000)(text)
}

/// `0` (off), or 60 to 86400 seconds.
pub(super) fn reconcile_interval(text: &str) -> Result<Duration, String> {
    let interval = seconds(..=86_400)(text)?;
    if (1..60).contains(&interval.as_secs()) {
        return Err("must be 0 (off) or between 60 and 86400".into());
    }
    Ok(interval)
}

/// `true` or `false`, in any case.
pub fn boolean(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("'{}' is not true or false", text.trim())),
    }
}

/// An optional setting: a blank value is unset, anything else must `parse`.
pub(super) fn optional<T>(
    parse: impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static,
) -> impl Fn(&str) -> Result<Option<T>, String> + Clone + Send + Sync + 'static {
    move |text| match text.trim() {
        "" => Ok(None),
        given => parse(given).map(Some),
    }
}

/// A comma-separated list, each entry trimmed and read by `entry`, empty ones skipped.
pub(super) fn list<T>(
    entry: impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static,
) -> impl Fn(&str) -> Result<Vec<T>, String> + Clone + Send + Sync + 'static {
    move |text| {
        text.split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(&entry)
            .collect()
    }
}

/// The parser of a [`ValueEnum`] setting (its names listed in `--help`), which forgives white
/// space around the value.
pub(super) fn choice<E: ValueEnum + Clone + Send + Sync + 'static>() -> Trimmed<EnumValueParser<E>>
{
    Trimmed(EnumValueParser::new())
}

/// Another parser, given the value without the white space around it.
#[derive(Clone)]
pub(super) struct Trimmed<P>(P);

impl<P: TypedValueParser> TypedValueParser for Trimmed<P> {
    type Value = P::Value;

    fn parse_ref(
        &self,
        command: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<P::Value, clap::Error> {
        let trimmed = value.to_str().map_or(value, |text| OsStr::new(text.trim()));
        self.0.parse_ref(command, arg, trimmed)
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        self.0.possible_values()
    }
}

impl ValueEnum for LatePolicy {
    fn value_variants<'a>() -> &'a [Self] {
        LatePolicy::ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.as_str()))
    }
}

impl ValueEnum for LogFormat {
    fn value_variants<'a>() -> &'a [Self] {
        &[LogFormat::Pretty, LogFormat::Json]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(match self {
            // A blank LOG_FORMAT is the default.
            LogFormat::Pretty => PossibleValue::new("pretty").alias(""),
            LogFormat::Json => PossibleValue::new("json"),
        })
    }
}

/// `whsec_` followed by at least `least` visible ASCII characters.
pub(super) fn is_signing_secret(text: &str, least: usize) -> bool {
    text.strip_prefix("whsec_")
        .is_some_and(|rest| rest.len() >= least && rest.bytes().all(|b| b.is_ascii_graphic()))
}

/// An http(s) URL; a refusal echoes it as [`redact_url`] prints it.
pub(super) fn http_url(text: &str) -> Result<url::Url, String> {
    url::Url::parse(text.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| format!("'{}' is not an http(s) URL", redact_url(text)))
}

/// `STRIPE_API_BASE`: an http(s) URL without a query, kept without a trailing `/`, since paths
/// are appended to it.
pub(super) fn api_base(text: &str) -> Result<SecretUrl, String> {
    let base = http_url(text)?;
    if base.query().is_some() {
        return Err(format!(
            "'{}' has a query; paths are appended to it",
            redact_url(text)
        ));
    }
    Ok(SecretUrl(base.as_str().trim_end_matches('/').to_string()))
}

pub(super) fn api_version(text: &str) -> Result<String, String> {
    let version = text.trim();
    if version.is_empty() || !version.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("must be a version such as 2025-03-31.basil".into());
    }
    Ok(version.to_string())
}

pub(super) fn is_secret_key(key: &str) -> bool {
    ["sk_test_", "sk_live_", "rk_test_", "rk_live_"]
        .iter()
        .any(|prefix| {
            key.strip_prefix(prefix).is_some_and(|rest| {
                !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            })
        })
}

/// A given `STRIPE_SECRET_KEY`, which must be a secret key.
pub(super) fn secret_key(key: &str) -> Result<SecretString, String> {
    if key.starts_with("pk_") {
        return Err(
            "this is a publishable key (pk_…); the server needs the secret key (sk_…)".into(),
        );
    }
    if !is_secret_key(key) {
        return Err("not a Stripe secret key (expected sk_test_…, sk_live_… or rk_…)".into());
    }
    Ok(SecretString::from(key.to_string()))
}

/// `STRIPE_WEBHOOK_SECRET`: signing secrets, comma-separated.
pub fn webhook_secrets(text: &str) -> Result<Vec<SecretString>, String> {
    list(webhook_secret)(text)
}

/// One entry of `STRIPE_WEBHOOK_SECRET`.
pub(super) fn webhook_secret(entry: &str) -> Result<SecretString, String> {
    if !is_signing_secret(entry, 1) {
        return Err("every entry must be a webhook signing secret starting with whsec_".into());
    }
    Ok(SecretString::from(entry.to_string()))
}

/// One of `API_TOKENS`: at least 16 visible characters, so that it cannot be guessed.
pub(super) fn api_token(token: &str) -> Result<SecretString, String> {
    if token.len() < 16 || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(
            "every token must be at least 16 visible ASCII characters without spaces".into(),
        );
    }
    Ok(SecretString::from(token.to_string()))
}

pub(super) fn rate_limit(text: &str) -> Result<RateLimit, String> {
    RateLimit::parse(text)
        .ok_or_else(|| format!("'{text}' is not a limit such as 20/min, 5/s or 100/hour"))
}

pub(super) fn network(entry: &str) -> Result<Network, String> {
    Network::parse(entry)
        .ok_or_else(|| format!("'{entry}' is not an address or network such as 10.0.0.0/8"))
}

pub(super) fn cors_origins(text: &str) -> Result<CorsOrigins, String> {
    let origins: Vec<String> = list(|o| Ok(o.to_string()))(text)?;
    if origins.is_empty() || origins.iter().any(|o| o == "*") {
        return Ok(CorsOrigins::Any);
    }
    for origin in &origins {
        let valid = url::Url::parse(origin)
            .ok()
            .is_some_and(|u| matches!(u.scheme(), "http" | "https") && u.path() == "/");
        if !valid || origin.ends_with('/') {
            return Err(format!(
                "'{origin}' is not an origin such as https://tickets.example.com"
            ));
        }
    }
    Ok(CorsOrigins::List(origins))
}

pub(super) fn fulfilment_url(text: &str) -> Result<SecretUrl<url::Url>, String> {
    http_url(text).map(SecretUrl)
}

pub(super) fn fulfilment_secret(text: &str) -> Result<SecretString, String> {
    if !is_signing_secret(text, 16) {
        return Err("must be whsec_ followed by at least 16 characters".into());
    }
    Ok(SecretString::from(text.to_string()))
}

pub(super) fn database_url(url: &str) -> Result<SecretUrl, String> {
    match Backend::of(url) {
        Some(Backend::Postgres) if url::Url::parse(url).is_err() => {
            Err("not a valid postgres:// URL".into())
        }
        Some(_) => Ok(SecretUrl(url.to_string())),
        None => Err("expected sqlite://path.db or postgres://user:password@host/database".into()),
    }
}

/// `url` fit to print: the password of its user information and any `password` query
/// parameter (libpq style, which sqlx accepts) replaced by `***`. Works on text that is not a
/// valid URL too, since what fails to parse is exactly what error messages echo.
pub fn redact_url(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    if let Some((scheme, after)) = url.split_once("://") {
        out.push_str(scheme);
        out.push_str("://");
        rest = after;
        // The last `@` before the path: a password may hold `@`, `:` or `?` unencoded.
        let authority_end = rest.find(['/', '#']).unwrap_or(rest.len());
        if let Some((userinfo, _)) = rest[..authority_end].rsplit_once('@') {
            match userinfo.split_once(':') {
                Some((user, password)) if !password.is_empty() => {
                    out.push_str(user);
                    out.push_str(":***");
                }
                _ => out.push_str(userinfo),
            }
            out.push('@');
            rest = &rest[userinfo.len() + 1..];
        }
    }
    let Some((before, query)) = rest.split_once('?') else {
        out.push_str(rest);
        return out;
    };
    out.push_str(before);
    out.push('?');
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, value))
                if !value.is_empty() && key.to_ascii_lowercase().ends_with("password") =>
            {
                format!("{key}=***")
            }
            _ => pair.to_string(),
        })
        .collect();
    out.push_str(&pairs.join("&"));
    out
}
