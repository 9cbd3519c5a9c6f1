//! Every setting is a flag and an environment variable (README, "Configuration"). Each is read
//! into its type by its own clap value parser (a number within its range, a URL, a key, a list,
//! a choice), so that a bad one stops start-up with one line naming the variable — and a
//! secret's value is never echoed back in that line, in `--help` or in a `Debug` print.
//! [`Config::from_args`] keeps by hand only the checks that span several settings.
//!
//! A setting that may be unset has the empty default, hidden, and a parser that reads a blank
//! value as unset (`STRIPE_SECRET_KEY=` in a compose file runs the sandbox): its type is spelled
//! `std::option::Option` or `std::vec::Vec`, so that clap hands the whole value, blank
//! included, to that parser instead of treating the field as optional or repeatable.

use std::borrow::Cow;
use std::ffi::OsStr;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::ops::{Bound, RangeBounds};
use std::str::FromStr;
use std::time::Duration;

use clap::builder::{EnumValueParser, PossibleValue, TypedValueParser};
use clap::{Args, ValueEnum};
use secrecy::SecretString;

use crate::http::access::{AccessSettings, Network, RateLimit};
use crate::http::server::ConnectionLimits;
use crate::http::{CorsOrigins, WEBHOOK_BODY_LIMIT};
use crate::ledger::{Backend, LatePolicy, PoolSettings, DEFAULT_DATABASE_URL};
use crate::payments::WebhookSettings;
use crate::stripe::client::{DEFAULT_API_BASE, DEFAULT_API_VERSION, SANDBOX_SECRET_KEY};
use crate::stripe::{BudgetSettings, ClientSettings};
use crate::telemetry::LogFormat;
use crate::workers::notifier::Fulfilment;

/// The settings shared by every subcommand.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// The ledger: `sqlite://path.db` or `postgres://user:password@host/db`. Default:
    /// `sqlite://tmt-payments.db` with a Stripe key, `sqlite://tmt-payments-sandbox.db` without
    /// one, so that sandbox payments never mix with real ones.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true,
          default_value = "", hide_default_value = true, value_parser = optional(database_url))]
    pub database_url: std::option::Option<SecretUrl>,
    /// `pretty` for people, `json` for log collectors.
    #[arg(long, env = "LOG_FORMAT", default_value = "pretty", global = true, ignore_case = true,
          value_parser = choice::<LogFormat>())]
    pub log_format: LogFormat,
}

/// The ledger of the embedded sandbox, apart from any real one.
pub const SANDBOX_DATABASE_URL: &str = "sqlite://tmt-payments-sandbox.db";

impl CommonArgs {
    /// The ledger to use: `DATABASE_URL`, or the default for the mode.
    pub fn database_url(&self, sandbox: bool) -> String {
        match &self.database_url {
            Some(url) => url.0.clone(),
            None if sandbox => SANDBOX_DATABASE_URL.to_string(),
            None => DEFAULT_DATABASE_URL.to_string(),
        }
    }
}

/// The settings of `serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Stripe secret key (`sk_test_…`, `sk_live_…` or a restricted `rk_…`); unset runs the
    /// embedded sandbox.
    #[arg(long, env = "STRIPE_SECRET_KEY", hide_env_values = true,
          default_value = "", hide_default_value = true, value_parser = optional(secret_key))]
    pub stripe_secret_key: std::option::Option<SecretString>,
    /// Webhook signing secrets (`whsec_…`), comma-separated during a rotation.
    #[arg(long, env = "STRIPE_WEBHOOK_SECRET", hide_env_values = true,
          default_value = "", hide_default_value = true, value_parser = webhook_secrets)]
    pub stripe_webhook_secret: std::vec::Vec<SecretString>,
    #[command(flatten)]
    pub stripe_api: StripeApiArgs,
    /// Budget for one Stripe call, retries included, in seconds.
    #[arg(long, env = "STRIPE_TIMEOUT_SECS", default_value = "30", value_parser = seconds(1..=600))]
    pub stripe_timeout_secs: Duration,
    /// Retries after a failed Stripe call (connection errors, 409, 5xx; 429s are retried for
    /// as long as STRIPE_TIMEOUT_SECS allows).
    #[arg(long, env = "STRIPE_MAX_RETRIES", default_value = "2",
          value_parser = within::<u32, _>(WHOLE, 0..=10))]
    pub stripe_max_retries: u32,
    /// Stripe calls this instance starts per second at most (Stripe allows 100/s in live mode,
    /// 25/s in test mode, per account: divide among instances). 0 turns the budget off.
    #[arg(long, env = "STRIPE_MAX_RPS", default_value = "25", value_parser = calls_per_second)]
    pub stripe_max_rps: u32,
    /// How long a Stripe call waits for its turn in that budget before the caller gets 503
    /// `stripe_busy`, in seconds.
    #[arg(long, env = "STRIPE_QUEUE_TIMEOUT_SECS", default_value = "10",
          value_parser = seconds(0..=300))]
    pub stripe_queue_timeout_secs: Duration,
    /// Listen address.
    #[arg(long, env = "BIND", default_value = "0.0.0.0",
          value_parser = within::<IpAddr, _>("an IP address", ..))]
    pub bind: IpAddr,
    /// Listen port (0 picks a free one).
    #[arg(long, env = "PORT", default_value = "8080", value_parser = port)]
    pub port: u16,
    /// Allowed browser origins, comma-separated, or `*`.
    #[arg(long, env = "CORS_ORIGINS", default_value = "*", value_parser = cors_origins)]
    pub cors_origins: CorsOrigins,
    /// Largest accepted age (either way) of a webhook signature, in seconds.
    #[arg(long, env = "WEBHOOK_TOLERANCE_SECS", default_value = "300",
          value_parser = within::<i64, _>(SECONDS, 1..))]
    pub webhook_tolerance_secs: i64,
    /// Database connections kept open (per instance).
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value = "8",
          value_parser = within::<u32, _>(WHOLE, 1..=1000))]
    pub database_max_connections: u32,
    /// How long a request waits for a database connection before answering 503, in seconds.
    #[arg(long, env = "DATABASE_ACQUIRE_TIMEOUT_SECS", default_value = "5",
          value_parser = seconds(1..=300))]
    pub database_acquire_timeout_secs: Duration,
    /// Bearer tokens that `stripe_confirm_payment` and `stripe_get_payment_intent` require,
    /// comma-separated (several during a rotation). Unset: those calls are open.
    #[arg(long, env = "API_TOKENS", hide_env_values = true,
          default_value = "", hide_default_value = true, value_parser = list(api_token))]
    pub api_tokens: std::vec::Vec<SecretString>,
    /// Per-client limit on creates, such as `20/min` (also `/s`, `/hour`). Unset: no limit.
    #[arg(long, env = "CREATE_RATE_LIMIT",
          default_value = "", hide_default_value = true, value_parser = optional(rate_limit))]
    pub create_rate_limit: std::option::Option<RateLimit>,
    /// Proxies whose `X-Forwarded-For` is believed: addresses or networks, comma-separated.
    #[arg(long, env = "TRUSTED_PROXIES",
          default_value = "", hide_default_value = true, value_parser = list(network))]
    pub trusted_proxies: std::vec::Vec<Network>,
    /// On SIGTERM/SIGINT, how long requests in flight may take to finish, in seconds.
    #[arg(long, env = "SHUTDOWN_TIMEOUT_SECS", default_value = "20",
          value_parser = seconds(..=3600))]
    pub shutdown_timeout_secs: Duration,
    /// After how many seconds a create that holds an Idempotency-Key without finishing (its
    /// instance died) may be taken over by a retry.
    #[arg(long, env = "IDEMPOTENCY_STALE_SECS", default_value = "60",
          value_parser = seconds(..=86_400))]
    pub idempotency_stale_secs: Duration,
    /// Seconds a client has to send a whole request head (from the connection's start, or from
    /// the head's first byte on a kept-alive connection) before the connection is closed.
    #[arg(long, env = "HEADER_TIMEOUT_SECS", default_value = "10",
          value_parser = seconds(CONNECTION))]
    pub header_timeout_secs: Duration,
    /// Seconds a client has to send a whole request body after its head; then 408.
    #[arg(long, env = "BODY_TIMEOUT_SECS", default_value = "15",
          value_parser = seconds(CONNECTION))]
    pub body_timeout_secs: Duration,
    /// Seconds a kept-alive connection may wait for its next request before it is closed.
    #[arg(long, env = "IDLE_TIMEOUT_SECS", default_value = "60",
          value_parser = seconds(CONNECTION))]
    pub idle_timeout_secs: Duration,
    /// Client connections open at once; more wait in the kernel's listen queue.
    #[arg(long, env = "MAX_CONNECTIONS", default_value = "10000",
          value_parser = within::<usize, _>(WHOLE, 1..=1_000_000))]
    pub max_connections: usize,
    /// Bytes that request bodies being received may hold together; past it, requests with a
    /// body get 503 `overloaded`.
    // Below one webhook's worth, a full-size Stripe event could never be received.
    #[arg(long, env = "MAX_INFLIGHT_BODY_BYTES", default_value = "67108864",
          value_parser = within::<usize, _>("a whole number of bytes",
                                            WEBHOOK_BODY_LIMIT..=MAX_INFLIGHT_BODY_BYTES))]
    pub max_inflight_body_bytes: usize,
    /// Where fulfilment notifications are POSTed (the platform's endpoint); unset: none are.
    #[arg(long, env = "FULFILMENT_URL", hide_env_values = true,
          default_value = "", hide_default_value = true, value_parser = optional(fulfilment_url))]
    pub fulfilment_url: std::option::Option<SecretUrl<url::Url>>,
    /// The `whsec_…` secret notifications are signed with (`TMT-Signature`); required with
    /// FULFILMENT_URL.
    #[arg(long, env = "FULFILMENT_SECRET", hide_env_values = true,
          default_value = "", hide_default_value = true,
          value_parser = optional(fulfilment_secret))]
    pub fulfilment_secret: std::option::Option<SecretString>,
    /// A payment that succeeds after its seat hold expired: `notify` (its notification says
    /// `late: true`) or `refund` (refunded instead).
    #[arg(long, env = "LATE_PAYMENT_POLICY", default_value = "notify",
          value_parser = choice::<LatePolicy>())]
    pub late_payment_policy: LatePolicy,
    /// Seconds between reconciliation rounds (Stripe's event log read back); 0 turns them off.
    #[arg(long, env = "RECONCILE_INTERVAL_SECS", default_value = "300",
          value_parser = reconcile_interval)]
    pub reconcile_interval_secs: Duration,
}

/// Where and how a key calls Stripe, for `serve` and the commands that call Stripe.
#[derive(Debug, Clone, Args)]
pub struct StripeApiArgs {
    /// Base URL of Stripe's API (an emulator's for tests); not used without a key.
    #[arg(long, env = "STRIPE_API_BASE", default_value = DEFAULT_API_BASE, hide_env_values = true,
          value_parser = api_base)]
    pub stripe_api_base: SecretUrl,
    /// Sent as `Stripe-Version` on every call.
    #[arg(long, env = "STRIPE_API_VERSION", default_value = DEFAULT_API_VERSION,
          value_parser = api_version)]
    pub stripe_api_version: String,
}

/// The Stripe settings of the commands that call Stripe besides `serve` (a bulk refund, a
/// reconciliation round). Without a key they use the sandbox of the service running on this
/// machine (`PORT`), as `serve` would.
#[derive(Debug, Clone, Args)]
pub struct StripeArgs {
    /// Stripe secret key; unset uses the sandbox of the service running here.
    #[arg(long, env = "STRIPE_SECRET_KEY", hide_env_values = true,
          default_value = "", hide_default_value = true, value_parser = optional(secret_key))]
    pub stripe_secret_key: std::option::Option<SecretString>,
    #[command(flatten)]
    pub stripe_api: StripeApiArgs,
    /// Without a key: the port of the service whose sandbox to use.
    #[arg(long, env = "PORT", default_value = "8080", value_parser = port)]
    pub port: u16,
    /// Stripe calls per second this command makes at most (it shares the account's limit with
    /// the running instances); 0: no limit.
    #[arg(long, env = "STRIPE_MAX_RPS", default_value = "25", value_parser = calls_per_second)]
    pub stripe_max_rps: u32,
}

impl StripeArgs {
    pub fn client_settings(&self) -> ClientSettings {
        let (api_base, secret_key) = match &self.stripe_secret_key {
            None => (
                format!("http://127.0.0.1:{}/sandbox", self.port),
                SecretString::from(SANDBOX_SECRET_KEY.to_string()),
            ),
            Some(key) => (self.stripe_api.stripe_api_base.0.clone(), key.clone()),
        };
        ClientSettings {
            api_base,
            secret_key,
            api_version: self.stripe_api.stripe_api_version.clone(),
            max_retries: 2,
            timeout: Duration::from_secs(30),
            initial_retry_delay: Duration::from_millis(500),
            // A command waits its turn as long as it needs: nobody is waiting on the other end.
            budget: BudgetSettings {
                max_rps: (self.stripe_max_rps > 0).then_some(self.stripe_max_rps),
                queue_timeout: Duration::from_secs(300),
            },
        }
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

/// A URL as given, which may carry a password (in its user information or a `password`
/// parameter): `Debug` prints it as [`redact_url`] does.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl<T = String>(pub T);

impl<T: AsRef<str>> fmt::Debug for SecretUrl<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(self.0.as_ref()))
    }
}

/// One line naming the variable at fault.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("configuration error: {variable}: {problem}")]
pub struct ConfigError {
    pub variable: Cow<'static, str>,
    pub problem: String,
}

fn bad(variable: impl Into<Cow<'static, str>>, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        variable: variable.into(),
        problem: problem.into(),
    }
}

impl ConfigError {
    /// clap's refusal of a setting's value as the one line that every refusal is (clap's own
    /// takes several, and quotes the value, a secret's too), naming the variable: the problem
    /// is what the setting's parser said. `None` for any other error of the command line
    /// (an unknown flag, a missing argument, `--help`), which clap reports itself.
    pub fn from_clap(error: &clap::Error, mut command: clap::Command) -> Option<ConfigError> {
        use clap::error::{ContextKind, ContextValue, ErrorKind};
        if !matches!(
            error.kind(),
            ErrorKind::ValueValidation | ErrorKind::InvalidValue
        ) {
            return None;
        }
        let ContextValue::String(shown) = error.get(ContextKind::InvalidArg)? else {
            return None;
        };
        command.build();
        let variable = variable_of(&command, shown)?;
        let problem = match std::error::Error::source(error) {
            Some(reason) => reason.to_string(),
            // A value that is none of a choice's (never a secret's); without the choices, a
            // flag given without its value, which clap tells best.
            None => match (
                error.get(ContextKind::InvalidValue),
                error.get(ContextKind::ValidValue),
            ) {
                (Some(ContextValue::String(given)), Some(ContextValue::Strings(valid)))
                    if !valid.is_empty() =>
                {
                    format!("'{given}' is not {}", one_of(valid))
                }
                _ => return None,
            },
        };
        Some(bad(variable, problem))
    }
}

/// The environment variable of the argument that clap shows as `shown` (`--port <PORT>`), in
/// `command` or any of its subcommands.
fn variable_of(command: &clap::Command, shown: &str) -> Option<String> {
    command
        .get_arguments()
        .filter(|arg| arg.to_string() == shown)
        .find_map(|arg| arg.get_env())
        .map(|name| name.to_string_lossy().into_owned())
        .or_else(|| {
            command
                .get_subcommands()
                .find_map(|sub| variable_of(sub, shown))
        })
}

/// `a`, `a or b`, `a, b or c`.
fn one_of(names: &[String]) -> String {
    match names {
        [rest @ .., last] if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => names.join(""),
    }
}

// ---------------------------------------------------------------------------------------------
// The parsers: each reads one setting's text into its type, or says in a few words what is
// wrong with it, without quoting a secret.

// What a refusal by `within` says a setting must be.
const WHOLE: &str = "a whole number";
const SECONDS: &str = "a whole number of seconds";

/// The largest `MAX_INFLIGHT_BODY_BYTES`: 64 GiB.
const MAX_INFLIGHT_BODY_BYTES: usize = 1 << 36;

/// A connection timeout: 1 to 3600 whole seconds.
const CONNECTION: std::ops::RangeInclusive<u64> = 1..=3600;

/// A `T` (white space around it ignored) within `range`; a refusal says the text is not
/// `what`, or gives the range.
fn within<T, R>(
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
fn seconds<R>(range: R) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync + 'static
where
    R: RangeBounds<u64> + Clone + Send + Sync + 'static,
{
    let whole = within(SECONDS, range);
    move |text| whole(text).map(Duration::from_secs)
}

fn port(text: &str) -> Result<u16, String> {
    within("a port number (0-65535)", ..)(text)
}

fn calls_per_second(text: &str) -> Result<u32, String> {
    within("a whole number of calls per second", 0..=10_000)(text)
}

/// `0` (off), or 60 to 86400 seconds.
fn reconcile_interval(text: &str) -> Result<Duration, String> {
    let interval = seconds(..=86_400)(text)?;
    if (1..60).contains(&interval.as_secs()) {
        return Err("must be 0 (off) or between 60 and 86400".into());
    }
    Ok(interval)
}

/// An optional setting: a blank value is unset, anything else must `parse`.
fn optional<T>(
    parse: impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static,
) -> impl Fn(&str) -> Result<Option<T>, String> + Clone + Send + Sync + 'static {
    move |text| match text.trim() {
        "" => Ok(None),
        given => parse(given).map(Some),
    }
}

/// A comma-separated list, each entry trimmed and read by `entry`, empty ones skipped.
fn list<T>(
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
fn choice<E: ValueEnum + Clone + Send + Sync + 'static>() -> Trimmed<EnumValueParser<E>> {
    Trimmed(EnumValueParser::new())
}

/// Another parser, given the value without the white space around it.
#[derive(Clone)]
struct Trimmed<P>(P);

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
fn is_signing_secret(text: &str, least: usize) -> bool {
    text.strip_prefix("whsec_")
        .is_some_and(|rest| rest.len() >= least && rest.bytes().all(|b| b.is_ascii_graphic()))
}

/// An http(s) URL; a refusal echoes it as [`redact_url`] prints it.
fn http_url(text: &str) -> Result<url::Url, String> {
    url::Url::parse(text.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| format!("'{}' is not an http(s) URL", redact_url(text)))
}

/// `STRIPE_API_BASE`: an http(s) URL without a query, kept without a trailing `/`, since paths
/// are appended to it.
fn api_base(text: &str) -> Result<SecretUrl, String> {
    let base = http_url(text)?;
    if base.query().is_some() {
        return Err(format!(
            "'{}' has a query; paths are appended to it",
            redact_url(text)
        ));
    }
    Ok(SecretUrl(base.as_str().trim_end_matches('/').to_string()))
}

fn api_version(text: &str) -> Result<String, String> {
    let version = text.trim();
    if version.is_empty() || !version.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("must be a version such as 2025-03-31.basil".into());
    }
    Ok(version.to_string())
}

fn is_secret_key(key: &str) -> bool {
    ["sk_test_", "sk_live_", "rk_test_", "rk_live_"]
        .iter()
        .any(|prefix| {
            key.strip_prefix(prefix).is_some_and(|rest| {
                !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            })
        })
}

/// A given `STRIPE_SECRET_KEY`, which must be a secret key.
fn secret_key(key: &str) -> Result<SecretString, String> {
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
fn webhook_secret(entry: &str) -> Result<SecretString, String> {
    if !is_signing_secret(entry, 1) {
        return Err("every entry must be a webhook signing secret starting with whsec_".into());
    }
    Ok(SecretString::from(entry.to_string()))
}

/// One of `API_TOKENS`: at least 16 visible characters, so that it cannot be guessed.
fn api_token(token: &str) -> Result<SecretString, String> {
    if token.len() < 16 || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(
            "every token must be at least 16 visible ASCII characters without spaces".into(),
        );
    }
    Ok(SecretString::from(token.to_string()))
}

fn rate_limit(text: &str) -> Result<RateLimit, String> {
    RateLimit::parse(text)
        .ok_or_else(|| format!("'{text}' is not a limit such as 20/min, 5/s or 100/hour"))
}

fn network(entry: &str) -> Result<Network, String> {
    Network::parse(entry)
        .ok_or_else(|| format!("'{entry}' is not an address or network such as 10.0.0.0/8"))
}

fn cors_origins(text: &str) -> Result<CorsOrigins, String> {
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

fn fulfilment_url(text: &str) -> Result<SecretUrl<url::Url>, String> {
    http_url(text).map(SecretUrl)
}

fn fulfilment_secret(text: &str) -> Result<SecretString, String> {
    if !is_signing_secret(text, 16) {
        return Err("must be whsec_ followed by at least 16 characters".into());
    }
    Ok(SecretString::from(text.to_string()))
}

fn database_url(url: &str) -> Result<SecretUrl, String> {
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

impl Config {
    /// `serve`'s configuration from its settings, each already read by its parser: here only
    /// the checks that span several of them.
    pub fn from_args(common: &CommonArgs, args: &ServeArgs) -> Result<Config, ConfigError> {
        let key = args.stripe_secret_key.clone();
        let database_url = common.database_url(key.is_none());
        if key.is_none() && Backend::of(&database_url) == Some(Backend::Postgres) {
            return Err(bad(
                "DATABASE_URL",
                "the sandbox keeps Stripe's side in one process's memory; a PostgreSQL ledger \
                 (several instances) needs STRIPE_SECRET_KEY",
            ));
        }
        if key.is_some() && args.stripe_webhook_secret.is_empty() {
            return Err(bad(
                "STRIPE_WEBHOOK_SECRET",
                "not set; with a Stripe key the webhook endpoint needs its signing secret (whsec_…)",
            ));
        }
        let timeout = args.stripe_timeout_secs;
        let queue_timeout = args.stripe_queue_timeout_secs;
        // A create may wait its turn and then use its whole call budget before it finishes.
        if args.idempotency_stale_secs <= timeout + queue_timeout {
            return Err(bad(
                "IDEMPOTENCY_STALE_SECS",
                "must be longer than STRIPE_TIMEOUT_SECS plus STRIPE_QUEUE_TIMEOUT_SECS",
            ));
        }
        let fulfilment = match (&args.fulfilment_url, &args.fulfilment_secret) {
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
            (Some(url), Some(secret)) => Some(Fulfilment {
                url: url.0.clone(),
                secret: secret.clone(),
            }),
        };
        let max_rps = args.stripe_max_rps;
        let reconcile = args.reconcile_interval_secs;
        Ok(Config {
            fulfilment,
            late_payment_policy: args.late_payment_policy,
            reconcile_interval: (!reconcile.is_zero()).then_some(reconcile),
            access: AccessSettings {
                tokens: args.api_tokens.clone(),
                create_rate_limit: args.create_rate_limit,
                trusted_proxies: args.trusted_proxies.clone(),
            },
            database_url,
            database_pool: PoolSettings {
                max_connections: args.database_max_connections,
                acquire_timeout: args.database_acquire_timeout_secs,
            },
            idempotency_stale: args.idempotency_stale_secs,
            stripe: StripeSettings {
                secret_key: key,
                api_base: args.stripe_api.stripe_api_base.0.clone(),
                api_version: args.stripe_api.stripe_api_version.clone(),
                timeout,
                max_retries: args.stripe_max_retries,
                initial_retry_delay: Duration::from_millis(500),
                budget: BudgetSettings {
                    max_rps: (max_rps > 0).then_some(max_rps),
                    queue_timeout,
                },
                webhook: WebhookSettings {
                    secrets: args.stripe_webhook_secret.clone(),
                    tolerance_secs: args.webhook_tolerance_secs,
                },
            },
            listen: SocketAddr::new(args.bind, args.port),
            cors: args.cors_origins.clone(),
            connections: ConnectionLimits {
                header_timeout: args.header_timeout_secs,
                idle_timeout: args.idle_timeout_secs,
                max_connections: args.max_connections,
                body_timeout: args.body_timeout_secs,
                max_inflight_body_bytes: args.max_inflight_body_bytes,
                shutdown_timeout: args.shutdown_timeout_secs,
            },
        })
    }
}
#[cfg(test)]
mod tests {
    use clap::FromArgMatches;

    use super::*;

    /// `T`'s settings from the command line `argv` alone (the environment unread), or the one
    /// line that refuses them.
    fn parse<T: Args + FromArgMatches>(argv: &[&str]) -> Result<T, ConfigError> {
        let command = || T::augment_args(clap::Command::new("tmt-payments"));
        let matches = command()
            .mut_args(|arg| arg.env(None))
            .args_override_self(true)
            .try_get_matches_from(std::iter::once("tmt-payments").chain(argv.iter().copied()))
            .map_err(|e| ConfigError::from_clap(&e, command()).unwrap_or_else(|| panic!("{e}")))?;
        Ok(T::from_arg_matches(&matches).unwrap())
    }

    /// `serve`'s settings as its flags give them: a Stripe key, a webhook secret and the flags'
    /// defaults, then `flags`.
    fn flags(flags: &[&str]) -> Result<ServeArgs, ConfigError> {
        let base = [
            "--stripe-secret-key=sk_test_abc123",
            "--stripe-webhook-secret=whsec_a",
        ];
        parse(&[&base[..], flags].concat())
    }

    fn common() -> CommonArgs {
        parse(&[]).unwrap()
    }

    /// `serve`'s configuration from `flags` (see [`flags`]), or the line that refuses it.
    fn serve(flags: &[&str]) -> Result<Config, ConfigError> {
        Config::from_args(&common(), &self::flags(flags)?)
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
        for base in ["ftp://u:Sup3rSecretPw@h", "https://u:Sup3rSecretPw@h/?q=1"] {
            let e = serve(&[&format!("--stripe-api-base={base}")])
                .err()
                .unwrap();
            assert_eq!(e.variable, "STRIPE_API_BASE");
            assert!(!e.problem.contains("Sup3rSecretPw"), "{e}");
            assert!(e.problem.contains("u:***@h"), "{e}");
        }
    }

    #[test]
    fn defaults_are_valid() {
        let c = serve(&[]).unwrap();
        assert_eq!(c.listen, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(c.cors, CorsOrigins::Any);
        assert_eq!(c.stripe.webhook.secrets.len(), 1);
        assert_eq!(c.stripe.api_base, DEFAULT_API_BASE);
        assert_eq!(c.stripe.api_version, DEFAULT_API_VERSION);
        assert_eq!(c.stripe.timeout, Duration::from_secs(30));
        assert_eq!(c.stripe.max_retries, 2);
        assert_eq!(c.stripe.budget.max_rps, Some(25));
        assert_eq!(c.stripe.budget.queue_timeout, Duration::from_secs(10));
        assert_eq!(c.stripe.webhook.tolerance_secs, 300);
        assert_eq!(c.database_pool.max_connections, 8);
        assert_eq!(c.database_pool.acquire_timeout, Duration::from_secs(5));
        assert_eq!(c.idempotency_stale, Duration::from_secs(60));
        assert!(c.access.tokens.is_empty());
        assert!(c.access.create_rate_limit.is_none());
        assert!(c.access.trusted_proxies.is_empty());
        assert!(c.fulfilment.is_none());
        assert_eq!(c.late_payment_policy, LatePolicy::Notify);
        assert_eq!(c.reconcile_interval, Some(Duration::from_secs(300)));
        assert_eq!(common().log_format, LogFormat::Pretty);
    }

    /// The flags' own defaults, as `serve` parses them, are those docs/contract.md §13 gives.
    #[test]
    fn connection_defaults() {
        let c = serve(&[]).unwrap();
        assert_eq!(c.connections.header_timeout, Duration::from_secs(10));
        assert_eq!(c.connections.body_timeout, Duration::from_secs(15));
        assert_eq!(c.connections.idle_timeout, Duration::from_secs(60));
        assert_eq!(c.connections.max_connections, 10_000);
        assert_eq!(c.connections.max_inflight_body_bytes, 64 * 1024 * 1024);
        assert_eq!(c.connections.shutdown_timeout, Duration::from_secs(20));
    }

    #[test]
    fn each_bad_value_names_its_variable() {
        fn refused<T>(variable: &str, settings: Result<T, ConfigError>) {
            let err = settings
                .err()
                .unwrap_or_else(|| panic!("{variable}: accepted"));
            assert_eq!(err.variable, variable);
            let line = err.to_string();
            assert!(!line.contains('\n'), "{line}");
            assert!(line.contains(variable), "{line}");
        }
        // The checks across settings.
        for (variable, flag) in [
            ("STRIPE_WEBHOOK_SECRET", "--stripe-webhook-secret= "),
            // A queue timeout that the stale time does not outlast is the latter's fault.
            ("IDEMPOTENCY_STALE_SECS", "--stripe-queue-timeout-secs=40"),
            (
                "FULFILMENT_SECRET",
                "--fulfilment-url=https://tickets.example/hook",
            ),
            (
                "FULFILMENT_URL",
                "--fulfilment-secret=whsec_0123456789abcdef",
            ),
        ] {
            refused(variable, serve(&[flag]));
        }
        for (variable, value) in [
            ("STRIPE_SECRET_KEY", "pk_test_1"),
            ("STRIPE_SECRET_KEY", "sk_nope"),
            ("STRIPE_WEBHOOK_SECRET", "whsec_a,bad"),
            ("STRIPE_API_BASE", "not a url"),
            ("STRIPE_API_BASE", "ftp://x"),
            ("STRIPE_API_BASE", "https://x/?a=b"),
            ("STRIPE_API_VERSION", " "),
            ("STRIPE_TIMEOUT_SECS", "0"),
            ("STRIPE_TIMEOUT_SECS", "601"),
            ("STRIPE_MAX_RETRIES", "-1"),
            ("STRIPE_MAX_RETRIES", "11"),
            ("STRIPE_MAX_RPS", "fast"),
            ("STRIPE_MAX_RPS", "100000"),
            ("STRIPE_QUEUE_TIMEOUT_SECS", "-1"),
            ("STRIPE_QUEUE_TIMEOUT_SECS", "301"),
            ("BIND", "localhost:1"),
            ("PORT", "70000"),
            ("PORT", "http"),
            ("CORS_ORIGINS", "example.com"),
            ("CORS_ORIGINS", "https://a.example/"),
            ("WEBHOOK_TOLERANCE_SECS", "0"),
            ("DATABASE_MAX_CONNECTIONS", "0"),
            ("DATABASE_MAX_CONNECTIONS", "1001"),
            ("DATABASE_ACQUIRE_TIMEOUT_SECS", "0"),
            ("API_TOKENS", "short"),
            ("CREATE_RATE_LIMIT", "lots"),
            ("TRUSTED_PROXIES", "10.0.0.0/99"),
            ("SHUTDOWN_TIMEOUT_SECS", "soon"),
            ("SHUTDOWN_TIMEOUT_SECS", "3601"),
            ("IDEMPOTENCY_STALE_SECS", "86401"),
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
            ("FULFILMENT_URL", "tickets.example"),
            ("FULFILMENT_SECRET", "whsec_short"),
            ("LATE_PAYMENT_POLICY", "later"),
            ("RECONCILE_INTERVAL_SECS", "59"),
            ("RECONCILE_INTERVAL_SECS", "86401"),
        ] {
            // A setting's flag is its variable in lower case, with `-` for `_`.
            let flag = format!("--{}={value}", variable.to_lowercase().replace('_', "-"));
            refused(variable, serve(&[&flag]));
        }
        for (variable, value) in [("DATABASE_URL", "mysql://x"), ("LOG_FORMAT", "xml")] {
            let flag = format!("--{}={value}", variable.to_lowercase().replace('_', "-"));
            refused(variable, parse::<CommonArgs>(&[&flag]));
        }
    }

    /// A choice's refusal lists the choices, as the hand-written check did.
    #[test]
    fn a_bad_choice_lists_the_valid_ones() {
        let e = parse::<CommonArgs>(&["--log-format=xml"]).err().unwrap();
        assert_eq!(
            e.to_string(),
            "configuration error: LOG_FORMAT: 'xml' is not pretty or json"
        );
        let e = serve(&["--late-payment-policy= later "]).err().unwrap();
        assert_eq!(e.problem, "'later' is not notify or refund");
        assert_eq!(one_of(&["a".into(), "b".into(), "c".into()]), "a, b or c");
    }

    /// Errors of the command line that are not a setting's value are clap's to report.
    #[test]
    fn other_command_line_errors_are_left_to_clap() {
        let command = || ServeArgs::augment_args(clap::Command::new("tmt-payments"));
        for argv in [
            &["tmt-payments", "--no-such-flag"][..],
            &["tmt-payments", "--help"],
            &["tmt-payments", "--port"],
        ] {
            let e = command()
                .mut_args(|arg| arg.env(None))
                .try_get_matches_from(argv)
                .err()
                .unwrap();
            assert_eq!(ConfigError::from_clap(&e, command()), None, "{argv:?}");
        }
    }

    #[test]
    fn secrets_are_not_echoed() {
        for flag in [
            "--stripe-secret-key=sk_test_has-dash-Sup3rSecret",
            "--stripe-secret-key=pk_test_Sup3rSecret",
            "--stripe-webhook-secret=nothex_Sup3rSecret",
            "--api-tokens=Sup3rSecret",
            "--fulfilment-secret=whsec_Sup3rSecret",
        ] {
            let err = serve(&[flag]).err().unwrap();
            assert!(!err.to_string().contains("Sup3rSecret"), "{err}");
        }
    }

    /// What holds a secret prints without it.
    #[test]
    fn debug_prints_no_secret() {
        let common: CommonArgs =
            parse(&["--database-url=postgres://tmt:Sup3rSecretPw@db/tmt"]).unwrap();
        let serve = flags(&[
            "--stripe-secret-key=sk_live_Sup3rSecretKey",
            "--stripe-webhook-secret=whsec_Sup3rSecretHook,whsec_Sup3rSecretOld",
            "--stripe-api-base=https://u:Sup3rSecretBase@proxy.example",
            "--api-tokens=Sup3rSecretToken-0123456789",
            "--fulfilment-url=https://u:Sup3rSecretHook@tickets.example/hook",
            "--fulfilment-secret=whsec_Sup3rSecretFulfilment",
        ])
        .unwrap();
        let stripe: StripeArgs = parse(&[
            "--stripe-secret-key=rk_test_Sup3rSecretKey",
            "--stripe-api-base=https://u:Sup3rSecretBase@proxy.example",
        ])
        .unwrap();
        for printed in [
            format!("{common:?}"),
            format!("{serve:?}"),
            format!("{stripe:?}"),
        ] {
            assert!(!printed.contains("Sup3rSecret"), "{printed}");
            // The settings are there, only their secrets are not.
            assert!(printed.contains(":***@"), "{printed}");
        }
        // The values themselves were read.
        assert_eq!(serve.stripe_webhook_secret.len(), 2);
        assert_eq!(serve.api_tokens.len(), 1);
        assert!(serve.fulfilment_secret.is_some() && stripe.stripe_secret_key.is_some());
    }

    #[test]
    fn no_key_means_sandbox() {
        for blank in ["", "  "] {
            let c = serve(&[
                &format!("--stripe-secret-key={blank}"),
                "--stripe-webhook-secret=",
            ])
            .unwrap();
            assert!(c.stripe.secret_key.is_none());
            assert!(c.stripe.webhook.secrets.is_empty());
        }
    }

    /// A blank optional setting is an unset one.
    #[test]
    fn blank_means_unset() {
        let c = serve(&[
            "--api-tokens=",
            "--create-rate-limit= ",
            "--trusted-proxies=",
            "--fulfilment-url=",
            "--fulfilment-secret= ",
        ])
        .unwrap();
        assert!(c.access.tokens.is_empty());
        assert!(c.access.create_rate_limit.is_none());
        assert!(c.access.trusted_proxies.is_empty());
        assert!(c.fulfilment.is_none());
        let common: CommonArgs = parse(&["--database-url= ", "--log-format="]).unwrap();
        assert_eq!(common.database_url(false), DEFAULT_DATABASE_URL);
        assert_eq!(common.log_format, LogFormat::Pretty);
    }

    #[test]
    fn values_are_read_into_their_types() {
        let c = serve(&[
            "--bind= ::1 ",
            "--port=0",
            "--stripe-api-base=http://127.0.0.1:12111/sandbox/",
            "--stripe-max-rps=0",
            "--api-tokens=0123456789abcdef, fedcba9876543210",
            "--create-rate-limit=20/min",
            "--trusted-proxies=10.0.0.0/8, 192.168.1.1",
            "--fulfilment-url=https://tickets.example/hook",
            "--fulfilment-secret=whsec_0123456789abcdef",
            "--late-payment-policy=refund ",
            "--reconcile-interval-secs=0",
        ])
        .unwrap();
        assert_eq!(c.listen, "[::1]:0".parse().unwrap());
        assert_eq!(c.stripe.api_base, "http://127.0.0.1:12111/sandbox");
        assert_eq!(c.stripe.budget.max_rps, None);
        assert_eq!(c.access.tokens.len(), 2);
        assert_eq!(
            c.access.create_rate_limit.map(|l| (l.count.get(), l.per)),
            Some((20, Duration::from_secs(60)))
        );
        assert_eq!(c.access.trusted_proxies.len(), 2);
        let fulfilment = c.fulfilment.unwrap();
        assert_eq!(fulfilment.url.as_str(), "https://tickets.example/hook");
        assert_eq!(c.late_payment_policy, LatePolicy::Refund);
        assert_eq!(c.reconcile_interval, None);
        let common: CommonArgs = parse(&["--log-format= JSON"]).unwrap();
        assert_eq!(common.log_format, LogFormat::Json);
    }

    #[test]
    fn the_sandbox_has_its_own_ledger_and_no_postgres() {
        let sandbox = ["--stripe-secret-key=", "--stripe-webhook-secret="];
        assert_eq!(serve(&sandbox).unwrap().database_url, SANDBOX_DATABASE_URL);
        assert_eq!(serve(&[]).unwrap().database_url, DEFAULT_DATABASE_URL);
        let common: CommonArgs = parse(&["--database-url=postgres://u:p@localhost/db"]).unwrap();
        let err = Config::from_args(&common, &flags(&sandbox).unwrap())
            .err()
            .unwrap();
        assert_eq!(err.variable, "DATABASE_URL");
    }

    #[test]
    fn cors_lists_and_rotation() {
        let c = serve(&["--cors-origins=https://a.example, http://localhost:3000"]).unwrap();
        assert_eq!(
            c.cors,
            CorsOrigins::List(vec![
                "https://a.example".into(),
                "http://localhost:3000".into()
            ])
        );
        let c = serve(&["--stripe-webhook-secret=whsec_old, whsec_new"]).unwrap();
        assert_eq!(c.stripe.webhook.secrets.len(), 2);
    }

    /// Without a key, a command calls the sandbox of the service running on `PORT`.
    #[test]
    fn commands_use_the_running_sandbox_without_a_key() {
        let stripe: StripeArgs = parse(&["--port=9000", "--stripe-max-rps=0"]).unwrap();
        let settings = stripe.client_settings();
        assert_eq!(settings.api_base, "http://127.0.0.1:9000/sandbox");
        assert_eq!(settings.budget.max_rps, None);
        let stripe: StripeArgs = parse(&["--stripe-secret-key=sk_test_abc"]).unwrap();
        assert_eq!(stripe.client_settings().api_base, DEFAULT_API_BASE);
    }
}
