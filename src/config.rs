//! Every setting is a flag and an environment variable (README, "Configuration"). Values arrive as text and are
//! checked here, so that a bad one stops start-up with one line naming the variable — and a
//! secret's value is never echoed back in that line.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::time::Duration;

use clap::Args;
use secrecy::SecretString;

use crate::http::access::{AccessSettings, Network, RateLimit};
use crate::http::server::ConnectionLimits;
use crate::http::{CorsOrigins, WEBHOOK_BODY_LIMIT};
use crate::ledger::{Backend, LatePolicy, PoolSettings, DEFAULT_DATABASE_URL};
use crate::payments::WebhookSettings;
use crate::stripe::client::{DEFAULT_API_BASE, DEFAULT_API_VERSION, SANDBOX_SECRET_KEY};
use crate::stripe::{BudgetSettings, ClientSettings};
use crate::workers::notifier::Fulfilment;

/// The settings shared by every subcommand.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// The ledger: `sqlite://path.db` or `postgres://user:password@host/db`. Default:
    /// `sqlite://tmt-payments.db` with a Stripe key, `sqlite://tmt-payments-sandbox.db` without
    /// one, so that sandbox payments never mix with real ones.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,
    /// `pretty` for people, `json` for log collectors.
    #[arg(long, env = "LOG_FORMAT", default_value = "pretty", global = true)]
    pub log_format: String,
}

/// The ledger of the embedded sandbox, apart from any real one.
pub const SANDBOX_DATABASE_URL: &str = "sqlite://tmt-payments-sandbox.db";

impl CommonArgs {
    /// The ledger to use: `DATABASE_URL`, or the default for the mode.
    pub fn database_url(&self, sandbox: bool) -> String {
        match &self.database_url {
            Some(url) if !url.trim().is_empty() => url.trim().to_string(),
            _ if sandbox => SANDBOX_DATABASE_URL.to_string(),
            _ => DEFAULT_DATABASE_URL.to_string(),
        }
    }
}

/// The settings of `serve`.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// Stripe secret key (`sk_test_…`, `sk_live_…` or a restricted `rk_…`); unset runs the
    /// embedded sandbox.
    #[arg(long, env = "STRIPE_SECRET_KEY", hide_env_values = true)]
    pub stripe_secret_key: Option<String>,
    /// Webhook signing secrets (`whsec_…`), comma-separated during a rotation.
    #[arg(long, env = "STRIPE_WEBHOOK_SECRET", hide_env_values = true)]
    pub stripe_webhook_secret: Option<String>,
    /// Base URL of Stripe's API (an emulator's for tests).
    #[arg(long, env = "STRIPE_API_BASE", default_value = DEFAULT_API_BASE, hide_env_values = true)]
    pub stripe_api_base: String,
    /// Sent as `Stripe-Version` on every call.
    #[arg(long, env = "STRIPE_API_VERSION", default_value = DEFAULT_API_VERSION)]
    pub stripe_api_version: String,
    /// Budget for one Stripe call, retries included, in seconds.
    #[arg(long, env = "STRIPE_TIMEOUT_SECS", default_value = "30")]
    pub stripe_timeout_secs: String,
    /// Retries after a failed Stripe call (connection errors, 409, 5xx; 429s are retried for
    /// as long as STRIPE_TIMEOUT_SECS allows).
    #[arg(long, env = "STRIPE_MAX_RETRIES", default_value = "2")]
    pub stripe_max_retries: String,
    /// Stripe calls this instance starts per second at most (Stripe allows 100/s in live mode,
    /// 25/s in test mode, per account: divide among instances). 0 turns the budget off.
    #[arg(long, env = "STRIPE_MAX_RPS", default_value = "25")]
    pub stripe_max_rps: String,
    /// How long a Stripe call waits for its turn in that budget before the caller gets 503
    /// `stripe_busy`, in seconds.
    #[arg(long, env = "STRIPE_QUEUE_TIMEOUT_SECS", default_value = "10")]
    pub stripe_queue_timeout_secs: String,
    /// Listen address.
    #[arg(long, env = "BIND", default_value = "0.0.0.0")]
    pub bind: String,
    /// Listen port (0 picks a free one).
    #[arg(long, env = "PORT", default_value = "8080")]
    pub port: String,
    /// Allowed browser origins, comma-separated, or `*`.
    #[arg(long, env = "CORS_ORIGINS", default_value = "*")]
    pub cors_origins: String,
    /// Largest accepted age (either way) of a webhook signature, in seconds.
    #[arg(long, env = "WEBHOOK_TOLERANCE_SECS", default_value = "300")]
    pub webhook_tolerance_secs: String,
    /// Database connections kept open (per instance).
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value = "8")]
    pub database_max_connections: String,
    /// How long a request waits for a database connection before answering 503, in seconds.
    #[arg(long, env = "DATABASE_ACQUIRE_TIMEOUT_SECS", default_value = "5")]
    pub database_acquire_timeout_secs: String,
    /// Bearer tokens that `stripe_confirm_payment` and `stripe_get_payment_intent` require,
    /// comma-separated (several during a rotation). Unset: those calls are open.
    #[arg(long, env = "API_TOKENS", hide_env_values = true)]
    pub api_tokens: Option<String>,
    /// Per-client limit on creates, such as `20/min` (also `/s`, `/hour`). Unset: no limit.
    #[arg(long, env = "CREATE_RATE_LIMIT")]
    pub create_rate_limit: Option<String>,
    /// Proxies whose `X-Forwarded-For` is believed: addresses or networks, comma-separated.
    #[arg(long, env = "TRUSTED_PROXIES")]
    pub trusted_proxies: Option<String>,
    /// On SIGTERM/SIGINT, how long requests in flight may take to finish, in seconds.
    #[arg(long, env = "SHUTDOWN_TIMEOUT_SECS", default_value = "20")]
    pub shutdown_timeout_secs: String,
    /// After how many seconds a create that holds an Idempotency-Key without finishing (its
    /// instance died) may be taken over by a retry.
    #[arg(long, env = "IDEMPOTENCY_STALE_SECS", default_value = "60")]
    pub idempotency_stale_secs: String,
    /// Seconds a client has to send a whole request head (from the connection's start, or from
    /// the head's first byte on a kept-alive connection) before the connection is closed.
    #[arg(long, env = "HEADER_TIMEOUT_SECS", default_value = "10")]
    pub header_timeout_secs: String,
    /// Seconds a client has to send a whole request body after its head; then 408.
    #[arg(long, env = "BODY_TIMEOUT_SECS", default_value = "15")]
    pub body_timeout_secs: String,
    /// Seconds a kept-alive connection may wait for its next request before it is closed.
    #[arg(long, env = "IDLE_TIMEOUT_SECS", default_value = "60")]
    pub idle_timeout_secs: String,
    /// Client connections open at once; more wait in the kernel's listen queue.
    #[arg(long, env = "MAX_CONNECTIONS", default_value = "10000")]
    pub max_connections: String,
    /// Bytes that request bodies being received may hold together; past it, requests with a
    /// body get 503 `overloaded`.
    #[arg(long, env = "MAX_INFLIGHT_BODY_BYTES", default_value = "67108864")]
    pub max_inflight_body_bytes: String,
    /// Where fulfilment notifications are POSTed (the platform's endpoint); unset: none are.
    #[arg(long, env = "FULFILMENT_URL", hide_env_values = true)]
    pub fulfilment_url: Option<String>,
    /// The `whsec_…` secret notifications are signed with (`TMT-Signature`); required with
    /// FULFILMENT_URL.
    #[arg(long, env = "FULFILMENT_SECRET", hide_env_values = true)]
    pub fulfilment_secret: Option<String>,
    /// A payment that succeeds after its seat hold expired: `notify` (its notification says
    /// `late: true`) or `refund` (refunded instead).
    #[arg(long, env = "LATE_PAYMENT_POLICY", default_value = "notify")]
    pub late_payment_policy: String,
    /// Seconds between reconciliation rounds (Stripe's event log read back); 0 turns them off.
    #[arg(long, env = "RECONCILE_INTERVAL_SECS", default_value = "300")]
    pub reconcile_interval_secs: String,
}

/// The Stripe settings of the commands that call Stripe besides `serve` (a bulk refund, a
/// reconciliation round). Without a key they use the sandbox of the service running on this
/// machine (`PORT`), as `serve` would.
#[derive(Debug, Clone, Args)]
pub struct StripeArgs {
    /// Stripe secret key; unset uses the sandbox of the service running here.
    #[arg(long, env = "STRIPE_SECRET_KEY", hide_env_values = true)]
    pub stripe_secret_key: Option<String>,
    /// Base URL of Stripe's API (with a key).
    #[arg(long, env = "STRIPE_API_BASE", default_value = DEFAULT_API_BASE, hide_env_values = true)]
    pub stripe_api_base: String,
    /// Sent as `Stripe-Version` on every call.
    #[arg(long, env = "STRIPE_API_VERSION", default_value = DEFAULT_API_VERSION)]
    pub stripe_api_version: String,
    /// Without a key: the port of the service whose sandbox to use.
    #[arg(long, env = "PORT", default_value = "8080")]
    pub port: String,
    /// Stripe calls per second this command makes at most (it shares the account's limit with
    /// the running instances); 0: no limit.
    #[arg(long, env = "STRIPE_MAX_RPS", default_value = "25")]
    pub stripe_max_rps: String,
}

impl StripeArgs {
    pub fn client_settings(&self) -> Result<ClientSettings, ConfigError> {
        let (api_base, secret_key) = match given(&self.stripe_secret_key) {
            None => {
                let port: u16 = number("PORT", &self.port, "a port number (0-65535)")?;
                (
                    format!("http://127.0.0.1:{port}/sandbox"),
                    SecretString::from(SANDBOX_SECRET_KEY.to_string()),
                )
            }
            Some(k) => {
                let key = secret_key(k)?;
                (stripe_api_base(&self.stripe_api_base, |_| true)?, key)
            }
        };
        let max_rps: u32 = number("STRIPE_MAX_RPS", &self.stripe_max_rps, PER_SECOND)?;
        Ok(ClientSettings {
            api_base,
            secret_key,
            api_version: self.stripe_api_version.trim().to_string(),
            max_retries: 2,
            timeout: Duration::from_secs(30),
            initial_retry_delay: Duration::from_millis(500),
            // A command waits its turn as long as it needs: nobody is waiting on the other end.
            budget: BudgetSettings {
                max_rps: (max_rps > 0).then_some(max_rps),
                queue_timeout: Duration::from_secs(300),
            },
        })
    }
}

/// A checked configuration: holding one means the service can start.
#[derive(Clone)]
pub struct Config {
    pub database_url: String,
    pub database_pool: PoolSettings,
    pub idempotency_stale: Duration,
    pub stripe: StripeSettings,
    /// `BIND` and `PORT`.
    pub listen: SocketAddr,
    pub cors: CorsOrigins,
    pub access: AccessSettings,
    /// How clients may use their connections, and how those end on shutdown.
    pub connections: ConnectionLimits,
    /// Where and how fulfilment notifications are sent; `None`: they are not.
    pub fulfilment: Option<Fulfilment>,
    pub late_payment_policy: LatePolicy,
    /// `None`: reconciliation is off.
    pub reconcile_interval: Option<Duration>,
}

/// How `serve` calls Stripe and checks the webhooks Stripe sends.
#[derive(Clone)]
pub struct StripeSettings {
    /// `None` runs the embedded sandbox (docs/sandbox.md).
    pub secret_key: Option<SecretString>,
    /// Where the key is used; the sandbox's base is known once the listener is bound.
    pub api_base: String,
    pub api_version: String,
    /// Budget for one call, retries and their waits included.
    pub timeout: Duration,
    /// Retries after the first attempt.
    pub max_retries: u32,
    pub initial_retry_delay: Duration,
    pub budget: BudgetSettings,
    /// With a key, Stripe's signing secrets; the sandbox signs with the first, or a random one.
    pub webhook: WebhookSettings,
}

impl StripeSettings {
    /// What the client takes to call the Stripe at `api_base` with `secret_key`: the configured
    /// ones, or the embedded sandbox's.
    pub fn client(&self, api_base: String, secret_key: SecretString) -> ClientSettings {
        ClientSettings {
            api_base,
            secret_key,
            api_version: self.api_version.clone(),
            max_retries: self.max_retries,
            timeout: self.timeout,
            initial_retry_delay: self.initial_retry_delay,
            budget: self.budget,
        }
    }
}

/// One line naming the variable at fault.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("configuration error: {variable}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

fn bad(variable: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        problem: problem.into(),
    }
}

// What a refusal by `number` says a setting must be.
const WHOLE: &str = "a whole number";
const SECONDS: &str = "a whole number of seconds";
const PER_SECOND: &str = "a whole number of calls per second";

/// `text` read as a `T`, or a refusal saying it is not `what`.
fn number<T: FromStr>(variable: &'static str, text: &str, what: &str) -> Result<T, ConfigError> {
    text.trim()
        .parse::<T>()
        .map_err(|_| bad(variable, format!("'{text}' is not {what}")))
}

/// A [`number`] that must also lie within `range`.
fn number_in<T: FromStr + PartialOrd + fmt::Display>(
    variable: &'static str,
    text: &str,
    what: &str,
    range: RangeInclusive<T>,
) -> Result<T, ConfigError> {
    let value = number(variable, text, what)?;
    if !range.contains(&value) {
        let (least, most) = range.into_inner();
        return Err(bad(variable, format!("must be between {least} and {most}")));
    }
    Ok(value)
}

/// Whole seconds within `range`.
fn seconds_in(
    variable: &'static str,
    text: &str,
    range: RangeInclusive<u64>,
) -> Result<Duration, ConfigError> {
    number_in(variable, text, SECONDS, range).map(Duration::from_secs)
}

/// An optional setting: `None` when unset or blank, else its trimmed text.
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// The entries of a comma-separated setting, trimmed, empty ones skipped.
fn entries(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').map(str::trim).filter(|e| !e.is_empty())
}

/// The entries of a comma-separated list of secrets, each of which must be `valid`.
fn secrets(
    variable: &'static str,
    text: &str,
    valid: impl Fn(&str) -> bool,
    problem: &'static str,
) -> Result<Vec<SecretString>, ConfigError> {
    entries(text)
        .map(|entry| {
            if valid(entry) {
                Ok(SecretString::from(entry.to_string()))
            } else {
                Err(bad(variable, problem))
            }
        })
        .collect()
}

/// `whsec_` followed by at least `least` visible ASCII characters.
fn is_signing_secret(text: &str, least: usize) -> bool {
    text.strip_prefix("whsec_")
        .is_some_and(|rest| rest.len() >= least && rest.bytes().all(|b| b.is_ascii_graphic()))
}

/// An http(s) URL that `fits`; a refusal echoes it as [`redact_url`] prints it.
fn http_url(
    variable: &'static str,
    text: &str,
    fits: impl Fn(&url::Url) -> bool,
) -> Result<url::Url, ConfigError> {
    url::Url::parse(text.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && fits(u))
        .ok_or_else(|| {
            bad(
                variable,
                format!("'{}' is not an http(s) URL", redact_url(text)),
            )
        })
}

/// `STRIPE_API_BASE` without a trailing `/`, since paths are appended to it.
fn stripe_api_base(text: &str, fits: impl Fn(&url::Url) -> bool) -> Result<String, ConfigError> {
    let base = http_url("STRIPE_API_BASE", text, fits)?;
    Ok(base.as_str().trim_end_matches('/').to_string())
}

pub fn is_secret_key(key: &str) -> bool {
    ["sk_test_", "sk_live_", "rk_test_", "rk_live_"]
        .iter()
        .any(|prefix| {
            key.strip_prefix(prefix).is_some_and(|rest| {
                !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            })
        })
}

/// A given `STRIPE_SECRET_KEY`, which must be a secret key.
fn secret_key(key: &str) -> Result<SecretString, ConfigError> {
    if !is_secret_key(key) {
        return Err(bad(
            "STRIPE_SECRET_KEY",
            "not a Stripe secret key (expected sk_test_…, sk_live_… or rk_…)",
        ));
    }
    Ok(SecretString::from(key.to_string()))
}

pub fn parse_webhook_secrets(text: &str) -> Result<Vec<SecretString>, ConfigError> {
    secrets(
        "STRIPE_WEBHOOK_SECRET",
        text,
        |entry| is_signing_secret(entry, 1),
        "every entry must be a webhook signing secret starting with whsec_",
    )
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

pub fn check_database_url(url: &str) -> Result<(), ConfigError> {
    match Backend::of(url) {
        Some(Backend::Postgres) if url::Url::parse(url).is_err() => {
            Err(bad("DATABASE_URL", "not a valid postgres:// URL"))
        }
        Some(_) => Ok(()),
        None => Err(bad(
            "DATABASE_URL",
            "expected sqlite://path.db or postgres://user:password@host/database",
        )),
    }
}

impl Config {
    pub fn from_args(common: &CommonArgs, args: &ServeArgs) -> Result<Config, ConfigError> {
        let key = match given(&args.stripe_secret_key) {
            None => None,
            Some(k) if k.starts_with("pk_") => {
                return Err(bad(
                    "STRIPE_SECRET_KEY",
                    "this is a publishable key (pk_…); the server needs the secret key (sk_…)",
                ))
            }
            Some(k) => Some(secret_key(k)?),
        };
        let database_url = common.database_url(key.is_none());
        check_database_url(&database_url)?;
        if key.is_none() && Backend::of(&database_url) == Some(Backend::Postgres) {
            return Err(bad(
                "DATABASE_URL",
                "the sandbox keeps Stripe's side in one process's memory; a PostgreSQL ledger \
                 (several instances) needs STRIPE_SECRET_KEY",
            ));
        }
        let webhook_secrets =
            parse_webhook_secrets(args.stripe_webhook_secret.as_deref().unwrap_or(""))?;
        if key.is_some() && webhook_secrets.is_empty() {
            return Err(bad(
                "STRIPE_WEBHOOK_SECRET",
                "not set; with a Stripe key the webhook endpoint needs its signing secret (whsec_…)",
            ));
        }
        let api_base = stripe_api_base(&args.stripe_api_base, |u| u.query().is_none())?;
        let api_version = args.stripe_api_version.trim().to_string();
        if api_version.is_empty() || !api_version.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad(
                "STRIPE_API_VERSION",
                "must be a version such as 2025-03-31.basil",
            ));
        }
        let timeout = seconds_in("STRIPE_TIMEOUT_SECS", &args.stripe_timeout_secs, 1..=600)?;
        let max_retries = number_in(
            "STRIPE_MAX_RETRIES",
            &args.stripe_max_retries,
            WHOLE,
            0..=10,
        )?;
        let max_rps = number_in(
            "STRIPE_MAX_RPS",
            &args.stripe_max_rps,
            PER_SECOND,
            0..=10_000,
        )?;
        let queue_timeout = seconds_in(
            "STRIPE_QUEUE_TIMEOUT_SECS",
            &args.stripe_queue_timeout_secs,
            0..=300,
        )?;
        let bind: IpAddr = number("BIND", &args.bind, "an IP address")?;
        let port: u16 = number("PORT", &args.port, "a port number (0-65535)")?;
        let cors = parse_cors(&args.cors_origins)?;
        let tolerance: i64 = number(
            "WEBHOOK_TOLERANCE_SECS",
            &args.webhook_tolerance_secs,
            SECONDS,
        )?;
        if tolerance <= 0 {
            return Err(bad("WEBHOOK_TOLERANCE_SECS", "must be greater than 0"));
        }
        let max_connections = number_in(
            "DATABASE_MAX_CONNECTIONS",
            &args.database_max_connections,
            WHOLE,
            1..=1000,
        )?;
        let acquire_timeout = seconds_in(
            "DATABASE_ACQUIRE_TIMEOUT_SECS",
            &args.database_acquire_timeout_secs,
            1..=300,
        )?;
        let stale = Duration::from_secs(number(
            "IDEMPOTENCY_STALE_SECS",
            &args.idempotency_stale_secs,
            SECONDS,
        )?);
        // A create may wait its turn and then use its whole call budget before it finishes.
        if stale <= timeout + queue_timeout || stale > Duration::from_secs(86_400) {
            return Err(bad(
                "IDEMPOTENCY_STALE_SECS",
                "must be longer than STRIPE_TIMEOUT_SECS plus STRIPE_QUEUE_TIMEOUT_SECS and at most 86400",
            ));
        }
        let api_tokens = parse_api_tokens(args.api_tokens.as_deref().unwrap_or(""))?;
        let create_rate_limit = match given(&args.create_rate_limit) {
            None => None,
            Some(text) => Some(RateLimit::parse(text).ok_or_else(|| {
                bad(
                    "CREATE_RATE_LIMIT",
                    format!("'{text}' is not a limit such as 20/min, 5/s or 100/hour"),
                )
            })?),
        };
        let trusted_proxies = entries(args.trusted_proxies.as_deref().unwrap_or(""))
            .map(|entry| {
                Network::parse(entry).ok_or_else(|| {
                    bad(
                        "TRUSTED_PROXIES",
                        format!("'{entry}' is not an address or network such as 10.0.0.0/8"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let shutdown: u64 = number(
            "SHUTDOWN_TIMEOUT_SECS",
            &args.shutdown_timeout_secs,
            SECONDS,
        )?;
        if shutdown > 3600 {
            return Err(bad("SHUTDOWN_TIMEOUT_SECS", "must be at most 3600"));
        }
        let header_timeout =
            seconds_in("HEADER_TIMEOUT_SECS", &args.header_timeout_secs, CONNECTION)?;
        let body_timeout = seconds_in("BODY_TIMEOUT_SECS", &args.body_timeout_secs, CONNECTION)?;
        let idle_timeout = seconds_in("IDLE_TIMEOUT_SECS", &args.idle_timeout_secs, CONNECTION)?;
        let open_connections = number_in(
            "MAX_CONNECTIONS",
            &args.max_connections,
            WHOLE,
            1..=1_000_000,
        )?;
        let inflight_body_bytes: usize = number(
            "MAX_INFLIGHT_BODY_BYTES",
            &args.max_inflight_body_bytes,
            "a whole number of bytes",
        )?;
        // Below one webhook's worth, a full-size Stripe event could never be received.
        if !(WEBHOOK_BODY_LIMIT..=MAX_INFLIGHT_BODY_BYTES).contains(&inflight_body_bytes) {
            return Err(bad(
                "MAX_INFLIGHT_BODY_BYTES",
                format!(
                    "must be between {WEBHOOK_BODY_LIMIT} (one webhook body) and \
                     {MAX_INFLIGHT_BODY_BYTES}"
                ),
            ));
        }
        let fulfilment = match (given(&args.fulfilment_url), given(&args.fulfilment_secret)) {
            (None, None) => None,
            (None, Some(_)) => {
                return Err(bad(
                    "FULFILMENT_URL",
                    "not set, though FULFILMENT_SECRET is: where should notifications go?",
                ))
            }
            (Some(_), None) => {
                return Err(bad(
                    "FULFILMENT_SECRET",
                    "not set; notifications must be signed (a whsec_… secret)",
                ))
            }
            (Some(url), Some(secret)) => {
                let url = http_url("FULFILMENT_URL", url, |_| true)?;
                if !is_signing_secret(secret, 16) {
                    return Err(bad(
                        "FULFILMENT_SECRET",
                        "must be whsec_ followed by at least 16 characters",
                    ));
                }
                Some(Fulfilment {
                    url,
                    secret: SecretString::from(secret.to_string()),
                })
            }
        };
        let late_payment_policy = match args.late_payment_policy.trim() {
            "notify" => LatePolicy::Notify,
            "refund" => LatePolicy::Refund,
            other => {
                return Err(bad(
                    "LATE_PAYMENT_POLICY",
                    format!("'{other}' is not notify or refund"),
                ))
            }
        };
        let reconcile: u64 = number(
            "RECONCILE_INTERVAL_SECS",
            &args.reconcile_interval_secs,
            SECONDS,
        )?;
        if reconcile > 86_400 || (1..60).contains(&reconcile) {
            return Err(bad(
                "RECONCILE_INTERVAL_SECS",
                "must be 0 (off) or between 60 and 86400",
            ));
        }
        Ok(Config {
            fulfilment,
            late_payment_policy,
            reconcile_interval: (reconcile > 0).then(|| Duration::from_secs(reconcile)),
            access: AccessSettings {
                tokens: api_tokens,
                create_rate_limit,
                trusted_proxies,
            },
            database_url,
            database_pool: PoolSettings {
                max_connections,
                acquire_timeout,
            },
            idempotency_stale: stale,
            stripe: StripeSettings {
                secret_key: key,
                api_base,
                api_version,
                timeout,
                max_retries,
                initial_retry_delay: Duration::from_millis(500),
                budget: BudgetSettings {
                    max_rps: (max_rps > 0).then_some(max_rps),
                    queue_timeout,
                },
                webhook: WebhookSettings {
                    secrets: webhook_secrets,
                    tolerance_secs: tolerance,
                },
            },
            listen: SocketAddr::new(bind, port),
            cors,
            connections: ConnectionLimits {
                header_timeout,
                idle_timeout,
                max_connections: open_connections,
                body_timeout,
                max_inflight_body_bytes: inflight_body_bytes,
                shutdown_timeout: Duration::from_secs(shutdown),
            },
        })
    }
}

/// The largest `MAX_INFLIGHT_BODY_BYTES`: 64 GiB.
const MAX_INFLIGHT_BODY_BYTES: usize = 1 << 36;

/// A connection timeout: 1 to 3600 whole seconds.
const CONNECTION: RangeInclusive<u64> = 1..=3600;

/// API tokens: at least 16 visible characters each, so that they cannot be guessed.
fn parse_api_tokens(text: &str) -> Result<Vec<SecretString>, ConfigError> {
    secrets(
        "API_TOKENS",
        text,
        |token| token.len() >= 16 && token.bytes().all(|b| b.is_ascii_graphic()),
        "every token must be at least 16 visible ASCII characters without spaces",
    )
}

fn parse_cors(text: &str) -> Result<CorsOrigins, ConfigError> {
    let origins: Vec<String> = entries(text).map(str::to_string).collect();
    if origins.is_empty() || origins.iter().any(|o| o == "*") {
        return Ok(CorsOrigins::Any);
    }
    for origin in &origins {
        let valid = url::Url::parse(origin)
            .ok()
            .is_some_and(|u| matches!(u.scheme(), "http" | "https") && u.path() == "/");
        if !valid || origin.ends_with('/') {
            return Err(bad(
                "CORS_ORIGINS",
                format!("'{origin}' is not an origin such as https://tickets.example.com"),
            ));
        }
    }
    Ok(CorsOrigins::List(origins))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `serve`'s settings as its flags give them, the environment unread: a Stripe key, a
    /// webhook secret and the flags' defaults, then `flags`.
    fn flags(flags: &[&str]) -> ServeArgs {
        use clap::{Args, FromArgMatches};
        let command = ServeArgs::augment_args(clap::Command::new("tmt-payments"))
            .mut_args(|arg| arg.env(None))
            .args_override_self(true);
        let base = [
            "tmt-payments",
            "--stripe-secret-key=sk_test_abc123",
            "--stripe-webhook-secret=whsec_a",
        ];
        let matches = command
            .try_get_matches_from(base.iter().chain(flags))
            .unwrap();
        ServeArgs::from_arg_matches(&matches).unwrap()
    }

    fn config(args: &ServeArgs) -> Result<Config, ConfigError> {
        let common = CommonArgs {
            database_url: None,
            log_format: "pretty".into(),
        };
        Config::from_args(&common, args)
    }

    fn serve(f: impl FnOnce(&mut ServeArgs)) -> Result<Config, ConfigError> {
        let mut args = flags(&[]);
        f(&mut args);
        config(&args)
    }

    #[test]
    fn urls_are_printed_without_their_password() {
        for (url, printed) in [
            (
                "postgres://postgres:Sup3rSecretPw@db.internal:5432/tmt",
                "postgres://postgres:***@db.internal:5432/tmt",
            ),
            (
                "postgresql://u:p%40ss:w@h/db?sslmode=require",
                "postgresql://u:***@h/db?sslmode=require",
            ),
            ("postgres://u:a@b@h/db", "postgres://u:***@h/db"),
            (
                "postgres://h/db?user=u&password=Sup3r&sslpassword=x",
                "postgres://h/db?user=u&password=***&sslpassword=***",
            ),
            ("postgres://u:pa?ss@h/db", "postgres://u:***@h/db"),
            ("postgres://h?password=x", "postgres://h?password=***"),
            (
                "https://user:tok@proxy.example/v1",
                "https://user:***@proxy.example/v1",
            ),
            ("postgres://u@h/db", "postgres://u@h/db"),
            ("postgres://u:@h/db", "postgres://u:@h/db"),
            ("postgres://h:5432/db", "postgres://h:5432/db"),
            ("sqlite://tmt-payments.db", "sqlite://tmt-payments.db"),
            (
                "sqlite:///var/lib/tmt/ledger.db?mode=rwc",
                "sqlite:///var/lib/tmt/ledger.db?mode=rwc",
            ),
            ("sqlite::memory:", "sqlite::memory:"),
            ("not a url", "not a url"),
            ("ftp://u:Sup3r@h:99999", "ftp://u:***@h:99999"),
        ] {
            assert_eq!(redact_url(url), printed, "{url}");
        }
    }

    #[test]
    fn a_bad_api_base_is_echoed_without_its_password() {
        let e = serve(|a| a.stripe_api_base = "ftp://u:Sup3rSecretPw@h".into())
            .err()
            .unwrap();
        assert_eq!(e.variable, "STRIPE_API_BASE");
        assert!(!e.problem.contains("Sup3rSecretPw"), "{e}");
        assert!(e.problem.contains("u:***@h"), "{e}");
    }

    #[test]
    fn defaults_are_valid() {
        let c = serve(|_| {}).unwrap();
        assert_eq!(c.listen.port(), 8080);
        assert_eq!(c.cors, CorsOrigins::Any);
        assert_eq!(c.stripe.webhook.secrets.len(), 1);
    }

    /// The flags' own defaults, as `serve` parses them, are those docs/contract.md §13 gives.
    #[test]
    fn connection_defaults() {
        let c = serve(|_| {}).unwrap();
        assert_eq!(c.connections.header_timeout, Duration::from_secs(10));
        assert_eq!(c.connections.body_timeout, Duration::from_secs(15));
        assert_eq!(c.connections.idle_timeout, Duration::from_secs(60));
        assert_eq!(c.connections.max_connections, 10_000);
        assert_eq!(c.connections.max_inflight_body_bytes, 64 * 1024 * 1024);
    }

    #[test]
    fn each_bad_value_names_its_variable() {
        let refused = |variable: &str, config: Result<Config, ConfigError>| {
            let err = config.err().unwrap();
            assert_eq!(err.variable, variable);
            let line = err.to_string();
            assert!(!line.contains('\n'));
            assert!(line.contains(variable));
        };
        refused(
            "STRIPE_WEBHOOK_SECRET",
            serve(|a| a.stripe_webhook_secret = None),
        );
        // A queue timeout that the idempotency stale time does not outlast is the latter's fault.
        refused(
            "IDEMPOTENCY_STALE_SECS",
            serve(|a| a.stripe_queue_timeout_secs = "40".into()),
        );
        for (variable, value) in [
            ("STRIPE_SECRET_KEY", "pk_test_1"),
            ("STRIPE_SECRET_KEY", "sk_nope"),
            ("STRIPE_WEBHOOK_SECRET", "whsec_a,bad"),
            ("STRIPE_API_BASE", "not a url"),
            ("STRIPE_API_BASE", "ftp://x"),
            ("STRIPE_TIMEOUT_SECS", "0"),
            ("STRIPE_MAX_RETRIES", "-1"),
            ("STRIPE_MAX_RPS", "fast"),
            ("STRIPE_MAX_RPS", "100000"),
            ("STRIPE_QUEUE_TIMEOUT_SECS", "-1"),
            ("BIND", "localhost:1"),
            ("PORT", "70000"),
            ("PORT", "http"),
            ("CORS_ORIGINS", "example.com"),
            ("WEBHOOK_TOLERANCE_SECS", "0"),
            ("DATABASE_MAX_CONNECTIONS", "0"),
            ("API_TOKENS", "short"),
            ("CREATE_RATE_LIMIT", "lots"),
            ("TRUSTED_PROXIES", "10.0.0.0/99"),
            ("SHUTDOWN_TIMEOUT_SECS", "soon"),
            ("HEADER_TIMEOUT_SECS", "0"),
            ("HEADER_TIMEOUT_SECS", "10s"),
            ("BODY_TIMEOUT_SECS", "-1"),
            ("BODY_TIMEOUT_SECS", "3601"),
            ("IDLE_TIMEOUT_SECS", "0"),
            ("IDLE_TIMEOUT_SECS", "1.5"),
            ("MAX_CONNECTIONS", "0"),
            ("MAX_CONNECTIONS", "many"),
            ("MAX_INFLIGHT_BODY_BYTES", "64MiB"),
            ("MAX_INFLIGHT_BODY_BYTES", "1000"),
        ] {
            // A setting's flag is its variable in lower case, with `-` for `_`.
            let flag = format!("--{}={value}", variable.to_lowercase().replace('_', "-"));
            refused(variable, config(&flags(&[&flag])));
        }
    }

    #[test]
    fn secrets_are_not_echoed() {
        let err = serve(|a| a.stripe_secret_key = Some("sk_test_has-dash".into()))
            .err()
            .unwrap();
        assert!(!err.to_string().contains("has-dash"));
        let err = serve(|a| a.stripe_webhook_secret = Some("nothex_supersecret".into()))
            .err()
            .unwrap();
        assert!(!err.to_string().contains("supersecret"));
    }

    #[test]
    fn no_key_means_sandbox() {
        let c = serve(|a| {
            a.stripe_secret_key = None;
            a.stripe_webhook_secret = None;
        })
        .unwrap();
        assert!(c.stripe.secret_key.is_none());
        let c = serve(|a| a.stripe_secret_key = Some("  ".into())).unwrap();
        assert!(c.stripe.secret_key.is_none());
    }

    #[test]
    fn the_sandbox_has_its_own_ledger_and_no_postgres() {
        let sandbox = |a: &mut ServeArgs| {
            a.stripe_secret_key = None;
            a.stripe_webhook_secret = None;
        };
        assert_eq!(serve(sandbox).unwrap().database_url, SANDBOX_DATABASE_URL);
        assert_eq!(serve(|_| {}).unwrap().database_url, DEFAULT_DATABASE_URL);
        let common = CommonArgs {
            database_url: Some("postgres://u:p@localhost/db".into()),
            log_format: "pretty".into(),
        };
        let args = ServeArgs::default();
        let err = Config::from_args(&common, &args).err().unwrap();
        assert_eq!(err.variable, "DATABASE_URL");
    }

    #[test]
    fn cors_lists_and_rotation() {
        let c =
            serve(|a| a.cors_origins = "https://a.example, http://localhost:3000".into()).unwrap();
        assert_eq!(
            c.cors,
            CorsOrigins::List(vec![
                "https://a.example".into(),
                "http://localhost:3000".into()
            ])
        );
        let c = serve(|a| a.stripe_webhook_secret = Some("whsec_old, whsec_new".into())).unwrap();
        assert_eq!(c.stripe.webhook.secrets.len(), 2);
    }
}
