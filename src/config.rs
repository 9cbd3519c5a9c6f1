//! Every setting is a flag and an environment variable (README, "Configuration"). Values arrive as text and are
//! checked here, so that a bad one stops start-up with one line naming the variable — and a
//! secret's value is never echoed back in that line.

use std::net::IpAddr;
use std::time::Duration;

use clap::Args;
use secrecy::SecretString;

use crate::http::access::{Network, RateLimit};
use crate::http::{CorsOrigins, WEBHOOK_BODY_LIMIT};
use crate::ledger::{Backend, LatePolicy, PoolSettings, DEFAULT_DATABASE_URL};
use crate::stripe::client::DEFAULT_API_VERSION;
use crate::stripe::{BudgetSettings, ClientSettings};

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
    #[arg(
        long,
        env = "STRIPE_API_BASE",
        default_value = "https://api.stripe.com",
        hide_env_values = true
    )]
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
    #[arg(
        long,
        env = "STRIPE_API_BASE",
        default_value = "https://api.stripe.com",
        hide_env_values = true
    )]
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
        let (api_base, secret_key) = match self.stripe_secret_key.as_deref().map(str::trim) {
            None | Some("") => {
                let port: u16 = number("PORT", &self.port, "a port number (0-65535)")?;
                (
                    format!("http://127.0.0.1:{port}/sandbox"),
                    SecretString::from(crate::app::SANDBOX_SECRET_KEY.to_string()),
                )
            }
            Some(k) if !is_secret_key(k) => {
                return Err(bad(
                    "STRIPE_SECRET_KEY",
                    "not a Stripe secret key (expected sk_test_…, sk_live_… or rk_…)",
                ))
            }
            Some(k) => {
                let base = url::Url::parse(self.stripe_api_base.trim())
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https"))
                    .ok_or_else(|| {
                        bad(
                            "STRIPE_API_BASE",
                            format!(
                                "'{}' is not an http(s) URL",
                                redact_url(&self.stripe_api_base)
                            ),
                        )
                    })?;
                (
                    base.as_str().trim_end_matches('/').to_string(),
                    SecretString::from(k.to_string()),
                )
            }
        };
        let max_rps: u32 = number(
            "STRIPE_MAX_RPS",
            &self.stripe_max_rps,
            "a whole number of calls per second",
        )?;
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
    /// `None` runs the embedded sandbox (docs/sandbox.md).
    pub stripe_secret_key: Option<SecretString>,
    pub stripe_webhook_secrets: Vec<SecretString>,
    pub stripe_api_base: String,
    pub stripe_api_version: String,
    pub stripe_timeout: Duration,
    pub stripe_max_retries: u32,
    pub stripe_initial_retry_delay: Duration,
    /// Stripe calls started per second at most; 0: no budget.
    pub stripe_max_rps: u32,
    pub stripe_queue_timeout: Duration,
    pub bind: IpAddr,
    pub port: u16,
    pub cors: CorsOrigins,
    pub webhook_tolerance_secs: i64,
    pub api_tokens: Vec<SecretString>,
    pub create_rate_limit: Option<RateLimit>,
    pub trusted_proxies: Vec<Network>,
    pub shutdown_timeout: Duration,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub max_inflight_body_bytes: usize,
    /// Where and how fulfilment notifications are sent; `None`: they are not.
    pub fulfilment: Option<Fulfilment>,
    pub late_payment_policy: LatePolicy,
    /// `None`: reconciliation is off.
    pub reconcile_interval: Option<Duration>,
}

/// The platform's fulfilment endpoint and the secret its notifications are signed with.
#[derive(Clone)]
pub struct Fulfilment {
    pub url: url::Url,
    pub secret: SecretString,
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

fn number<T: std::str::FromStr>(
    variable: &'static str,
    text: &str,
    what: &str,
) -> Result<T, ConfigError> {
    text.trim()
        .parse::<T>()
        .map_err(|_| bad(variable, format!("'{text}' is not {what}")))
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

pub fn parse_webhook_secrets(text: &str) -> Result<Vec<SecretString>, ConfigError> {
    let mut secrets = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let ok = part
            .strip_prefix("whsec_")
            .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_graphic()));
        if !ok {
            return Err(bad(
                "STRIPE_WEBHOOK_SECRET",
                "every entry must be a webhook signing secret starting with whsec_",
            ));
        }
        secrets.push(SecretString::from(part.to_string()));
    }
    Ok(secrets)
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
        let key = match args.stripe_secret_key.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(k) if k.starts_with("pk_") => {
                return Err(bad(
                    "STRIPE_SECRET_KEY",
                    "this is a publishable key (pk_…); the server needs the secret key (sk_…)",
                ))
            }
            Some(k) if !is_secret_key(k) => {
                return Err(bad(
                    "STRIPE_SECRET_KEY",
                    "not a Stripe secret key (expected sk_test_…, sk_live_… or rk_…)",
                ))
            }
            Some(k) => Some(SecretString::from(k.to_string())),
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
        let webhook_secrets = match &args.stripe_webhook_secret {
            Some(s) => parse_webhook_secrets(s)?,
            None => Vec::new(),
        };
        if key.is_some() && webhook_secrets.is_empty() {
            return Err(bad(
                "STRIPE_WEBHOOK_SECRET",
                "not set; with a Stripe key the webhook endpoint needs its signing secret (whsec_…)",
            ));
        }
        let api_base = url::Url::parse(args.stripe_api_base.trim())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.query().is_none())
            .ok_or_else(|| {
                bad(
                    "STRIPE_API_BASE",
                    format!(
                        "'{}' is not an http(s) URL",
                        redact_url(&args.stripe_api_base)
                    ),
                )
            })?;
        let api_version = args.stripe_api_version.trim().to_string();
        if api_version.is_empty() || !api_version.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad(
                "STRIPE_API_VERSION",
                "must be a version such as 2025-03-31.basil",
            ));
        }
        let timeout_secs: u64 = number(
            "STRIPE_TIMEOUT_SECS",
            &args.stripe_timeout_secs,
            "a whole number of seconds",
        )?;
        if timeout_secs == 0 || timeout_secs > 600 {
            return Err(bad("STRIPE_TIMEOUT_SECS", "must be between 1 and 600"));
        }
        let max_retries: u32 = number(
            "STRIPE_MAX_RETRIES",
            &args.stripe_max_retries,
            "a whole number",
        )?;
        if max_retries > 10 {
            return Err(bad("STRIPE_MAX_RETRIES", "must be between 0 and 10"));
        }
        let max_rps: u32 = number(
            "STRIPE_MAX_RPS",
            &args.stripe_max_rps,
            "a whole number of calls per second",
        )?;
        if max_rps > 10_000 {
            return Err(bad("STRIPE_MAX_RPS", "must be between 0 and 10000"));
        }
        let queue_secs: u64 = number(
            "STRIPE_QUEUE_TIMEOUT_SECS",
            &args.stripe_queue_timeout_secs,
            "a whole number of seconds",
        )?;
        if queue_secs > 300 {
            return Err(bad(
                "STRIPE_QUEUE_TIMEOUT_SECS",
                "must be between 0 and 300",
            ));
        }
        let bind: IpAddr = number("BIND", &args.bind, "an IP address")?;
        let port: u16 = number("PORT", &args.port, "a port number (0-65535)")?;
        let cors = parse_cors(&args.cors_origins)?;
        let tolerance: i64 = number(
            "WEBHOOK_TOLERANCE_SECS",
            &args.webhook_tolerance_secs,
            "a whole number of seconds",
        )?;
        if tolerance <= 0 {
            return Err(bad("WEBHOOK_TOLERANCE_SECS", "must be greater than 0"));
        }
        let max_connections: u32 = number(
            "DATABASE_MAX_CONNECTIONS",
            &args.database_max_connections,
            "a whole number",
        )?;
        if max_connections == 0 || max_connections > 1000 {
            return Err(bad(
                "DATABASE_MAX_CONNECTIONS",
                "must be between 1 and 1000",
            ));
        }
        let acquire: u64 = number(
            "DATABASE_ACQUIRE_TIMEOUT_SECS",
            &args.database_acquire_timeout_secs,
            "a whole number of seconds",
        )?;
        if acquire == 0 || acquire > 300 {
            return Err(bad(
                "DATABASE_ACQUIRE_TIMEOUT_SECS",
                "must be between 1 and 300",
            ));
        }
        let stale: u64 = number(
            "IDEMPOTENCY_STALE_SECS",
            &args.idempotency_stale_secs,
            "a whole number of seconds",
        )?;
        // A create may wait its turn and then use its whole call budget before it finishes.
        if stale <= timeout_secs + queue_secs || stale > 86_400 {
            return Err(bad(
                "IDEMPOTENCY_STALE_SECS",
                "must be longer than STRIPE_TIMEOUT_SECS plus STRIPE_QUEUE_TIMEOUT_SECS and at most 86400",
            ));
        }
        let api_tokens = parse_api_tokens(args.api_tokens.as_deref().unwrap_or(""))?;
        let create_rate_limit = match args.create_rate_limit.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(RateLimit::parse(text).ok_or_else(|| {
                bad(
                    "CREATE_RATE_LIMIT",
                    format!("'{text}' is not a limit such as 20/min, 5/s or 100/hour"),
                )
            })?),
        };
        let mut trusted_proxies = Vec::new();
        for entry in args
            .trusted_proxies
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            trusted_proxies.push(Network::parse(entry).ok_or_else(|| {
                bad(
                    "TRUSTED_PROXIES",
                    format!("'{entry}' is not an address or network such as 10.0.0.0/8"),
                )
            })?);
        }
        let shutdown: u64 = number(
            "SHUTDOWN_TIMEOUT_SECS",
            &args.shutdown_timeout_secs,
            "a whole number of seconds",
        )?;
        if shutdown > 3600 {
            return Err(bad("SHUTDOWN_TIMEOUT_SECS", "must be at most 3600"));
        }
        let header_timeout = seconds("HEADER_TIMEOUT_SECS", &args.header_timeout_secs)?;
        let body_timeout = seconds("BODY_TIMEOUT_SECS", &args.body_timeout_secs)?;
        let idle_timeout = seconds("IDLE_TIMEOUT_SECS", &args.idle_timeout_secs)?;
        let open_connections: usize =
            number("MAX_CONNECTIONS", &args.max_connections, "a whole number")?;
        if open_connections == 0 || open_connections > 1_000_000 {
            return Err(bad("MAX_CONNECTIONS", "must be between 1 and 1000000"));
        }
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
        let fulfilment = match (
            args.fulfilment_url
                .as_deref()
                .map(str::trim)
                .filter(|u| !u.is_empty()),
            args.fulfilment_secret
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty()),
        ) {
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
                let url = url::Url::parse(url)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https"))
                    .ok_or_else(|| {
                        bad(
                            "FULFILMENT_URL",
                            format!("'{}' is not an http(s) URL", redact_url(url)),
                        )
                    })?;
                let ok = secret.strip_prefix("whsec_").is_some_and(|rest| {
                    rest.len() >= 16 && rest.bytes().all(|b| b.is_ascii_graphic())
                });
                if !ok {
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
            "a whole number of seconds",
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
            api_tokens,
            create_rate_limit,
            trusted_proxies,
            shutdown_timeout: Duration::from_secs(shutdown),
            database_url,
            database_pool: PoolSettings {
                max_connections,
                acquire_timeout: Duration::from_secs(acquire),
            },
            idempotency_stale: Duration::from_secs(stale),
            stripe_secret_key: key,
            stripe_webhook_secrets: webhook_secrets,
            stripe_api_base: api_base.as_str().trim_end_matches('/').to_string(),
            stripe_api_version: api_version,
            stripe_timeout: Duration::from_secs(timeout_secs),
            stripe_max_retries: max_retries,
            stripe_initial_retry_delay: Duration::from_millis(500),
            stripe_max_rps: max_rps,
            stripe_queue_timeout: Duration::from_secs(queue_secs),
            bind,
            port,
            cors,
            webhook_tolerance_secs: tolerance,
            header_timeout,
            body_timeout,
            idle_timeout,
            max_connections: open_connections,
            max_inflight_body_bytes: inflight_body_bytes,
        })
    }
}

/// The largest `MAX_INFLIGHT_BODY_BYTES`: 64 GiB.
const MAX_INFLIGHT_BODY_BYTES: usize = 1 << 36;

/// A connection timeout: 1 to 3600 whole seconds.
fn seconds(variable: &'static str, text: &str) -> Result<Duration, ConfigError> {
    let secs: u64 = number(variable, text, "a whole number of seconds")?;
    if secs == 0 || secs > 3600 {
        return Err(bad(variable, "must be between 1 and 3600"));
    }
    Ok(Duration::from_secs(secs))
}

/// API tokens: at least 16 visible characters each, so that they cannot be guessed.
fn parse_api_tokens(text: &str) -> Result<Vec<SecretString>, ConfigError> {
    let mut tokens = Vec::new();
    for token in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        if token.len() < 16 || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad(
                "API_TOKENS",
                "every token must be at least 16 visible ASCII characters without spaces",
            ));
        }
        tokens.push(SecretString::from(token.to_string()));
    }
    Ok(tokens)
}

fn parse_cors(text: &str) -> Result<CorsOrigins, ConfigError> {
    let origins: Vec<String> = text
        .split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(str::to_string)
        .collect();
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

    fn serve(f: impl FnOnce(&mut ServeArgs)) -> Result<Config, ConfigError> {
        let common = CommonArgs {
            database_url: None,
            log_format: "pretty".into(),
        };
        let mut args = ServeArgs {
            stripe_secret_key: Some("sk_test_abc123".into()),
            stripe_webhook_secret: Some("whsec_a".into()),
            stripe_api_base: "https://api.stripe.com".into(),
            stripe_api_version: DEFAULT_API_VERSION.into(),
            stripe_timeout_secs: "30".into(),
            stripe_max_retries: "2".into(),
            stripe_max_rps: "25".into(),
            stripe_queue_timeout_secs: "10".into(),
            bind: "0.0.0.0".into(),
            port: "8080".into(),
            cors_origins: "*".into(),
            webhook_tolerance_secs: "300".into(),
            database_max_connections: "8".into(),
            database_acquire_timeout_secs: "5".into(),
            idempotency_stale_secs: "60".into(),
            api_tokens: None,
            create_rate_limit: None,
            trusted_proxies: None,
            shutdown_timeout_secs: "20".into(),
            header_timeout_secs: "10".into(),
            body_timeout_secs: "15".into(),
            idle_timeout_secs: "60".into(),
            max_connections: "10000".into(),
            max_inflight_body_bytes: "67108864".into(),
            fulfilment_url: None,
            fulfilment_secret: None,
            late_payment_policy: "notify".into(),
            reconcile_interval_secs: "300".into(),
        };
        f(&mut args);
        Config::from_args(&common, &args)
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
        assert_eq!(c.port, 8080);
        assert_eq!(c.cors, CorsOrigins::Any);
        assert_eq!(c.stripe_webhook_secrets.len(), 1);
    }

    /// The flags' own defaults, as `serve` parses them, are SPEC §16's.
    #[test]
    fn connection_defaults() {
        #[derive(clap::Parser)]
        struct Flags {
            #[command(flatten)]
            serve: ServeArgs,
        }
        let flags = <Flags as clap::Parser>::try_parse_from(["tmt-payments"]).unwrap();
        let c = serve(|a| {
            a.header_timeout_secs = flags.serve.header_timeout_secs;
            a.body_timeout_secs = flags.serve.body_timeout_secs;
            a.idle_timeout_secs = flags.serve.idle_timeout_secs;
            a.max_connections = flags.serve.max_connections;
            a.max_inflight_body_bytes = flags.serve.max_inflight_body_bytes;
        })
        .unwrap();
        assert_eq!(c.header_timeout, Duration::from_secs(10));
        assert_eq!(c.body_timeout, Duration::from_secs(15));
        assert_eq!(c.idle_timeout, Duration::from_secs(60));
        assert_eq!(c.max_connections, 10_000);
        assert_eq!(c.max_inflight_body_bytes, 64 * 1024 * 1024);
    }

    #[test]
    fn each_bad_value_names_its_variable() {
        type Change = Box<dyn FnOnce(&mut ServeArgs)>;
        let cases: Vec<(&str, Change)> = vec![
            (
                "STRIPE_WEBHOOK_SECRET",
                Box::new(|a| a.stripe_webhook_secret = None),
            ),
            (
                "STRIPE_SECRET_KEY",
                Box::new(|a| a.stripe_secret_key = Some("pk_test_1".into())),
            ),
            (
                "STRIPE_SECRET_KEY",
                Box::new(|a| a.stripe_secret_key = Some("sk_nope".into())),
            ),
            (
                "STRIPE_WEBHOOK_SECRET",
                Box::new(|a| a.stripe_webhook_secret = Some("whsec_a,bad".into())),
            ),
            (
                "STRIPE_API_BASE",
                Box::new(|a| a.stripe_api_base = "not a url".into()),
            ),
            (
                "STRIPE_API_BASE",
                Box::new(|a| a.stripe_api_base = "ftp://x".into()),
            ),
            (
                "STRIPE_TIMEOUT_SECS",
                Box::new(|a| a.stripe_timeout_secs = "0".into()),
            ),
            (
                "STRIPE_MAX_RETRIES",
                Box::new(|a| a.stripe_max_retries = "-1".into()),
            ),
            (
                "STRIPE_MAX_RPS",
                Box::new(|a| a.stripe_max_rps = "fast".into()),
            ),
            (
                "STRIPE_MAX_RPS",
                Box::new(|a| a.stripe_max_rps = "100000".into()),
            ),
            (
                "STRIPE_QUEUE_TIMEOUT_SECS",
                Box::new(|a| a.stripe_queue_timeout_secs = "-1".into()),
            ),
            (
                "IDEMPOTENCY_STALE_SECS",
                Box::new(|a| a.stripe_queue_timeout_secs = "40".into()),
            ),
            ("BIND", Box::new(|a| a.bind = "localhost:1".into())),
            ("PORT", Box::new(|a| a.port = "70000".into())),
            ("PORT", Box::new(|a| a.port = "http".into())),
            (
                "CORS_ORIGINS",
                Box::new(|a| a.cors_origins = "example.com".into()),
            ),
            (
                "WEBHOOK_TOLERANCE_SECS",
                Box::new(|a| a.webhook_tolerance_secs = "0".into()),
            ),
            (
                "DATABASE_MAX_CONNECTIONS",
                Box::new(|a| a.database_max_connections = "0".into()),
            ),
            (
                "API_TOKENS",
                Box::new(|a| a.api_tokens = Some("short".into())),
            ),
            (
                "CREATE_RATE_LIMIT",
                Box::new(|a| a.create_rate_limit = Some("lots".into())),
            ),
            (
                "TRUSTED_PROXIES",
                Box::new(|a| a.trusted_proxies = Some("10.0.0.0/99".into())),
            ),
            (
                "SHUTDOWN_TIMEOUT_SECS",
                Box::new(|a| a.shutdown_timeout_secs = "soon".into()),
            ),
            (
                "HEADER_TIMEOUT_SECS",
                Box::new(|a| a.header_timeout_secs = "0".into()),
            ),
            (
                "HEADER_TIMEOUT_SECS",
                Box::new(|a| a.header_timeout_secs = "10s".into()),
            ),
            (
                "BODY_TIMEOUT_SECS",
                Box::new(|a| a.body_timeout_secs = "-1".into()),
            ),
            (
                "BODY_TIMEOUT_SECS",
                Box::new(|a| a.body_timeout_secs = "3601".into()),
            ),
            (
                "IDLE_TIMEOUT_SECS",
                Box::new(|a| a.idle_timeout_secs = "0".into()),
            ),
            (
                "IDLE_TIMEOUT_SECS",
                Box::new(|a| a.idle_timeout_secs = "1.5".into()),
            ),
            (
                "MAX_CONNECTIONS",
                Box::new(|a| a.max_connections = "0".into()),
            ),
            (
                "MAX_CONNECTIONS",
                Box::new(|a| a.max_connections = "many".into()),
            ),
            (
                "MAX_INFLIGHT_BODY_BYTES",
                Box::new(|a| a.max_inflight_body_bytes = "64MiB".into()),
            ),
            (
                "MAX_INFLIGHT_BODY_BYTES",
                Box::new(|a| a.max_inflight_body_bytes = "1000".into()),
            ),
        ];
        for (variable, change) in cases {
            let err = serve(change).err().unwrap();
            assert_eq!(err.variable, variable);
            let line = err.to_string();
            assert!(!line.contains('\n'));
            assert!(line.contains(variable));
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
        assert!(c.stripe_secret_key.is_none());
        let c = serve(|a| a.stripe_secret_key = Some("  ".into())).unwrap();
        assert!(c.stripe_secret_key.is_none());
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
        assert_eq!(c.stripe_webhook_secrets.len(), 2);
    }
}
