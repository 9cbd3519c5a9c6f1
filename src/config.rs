//! Every setting is a flag and an environment variable (README, "Configuration"). Each is read
//! into its type by its own clap value parser (a number within its range, a URL, a key, a list,
//! a choice), so that a bad one stops start-up with one line naming the variable — and a
//! secret's value is never echoed back in that line, in `--help` or in a `Debug` print.
//! [`Config::from_args`] keeps by hand only the checks that span several settings. The parsers
//! are in `config/parsers.rs`, below this file; its tests in `config/tests.rs`.
//!
//! A setting that may be unset has the empty default, hidden, and a parser that reads a blank
//! value as unset (`STRIPE_SECRET_KEY=` in a compose file runs the sandbox): its type is spelled
//! `std::option::Option` or `std::vec::Vec`, so that clap hands the whole value, blank
//! included, to that parser instead of treating the field as optional or repeatable.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use clap::Args;
use secrecy::SecretString;

use crate::http::access::{AccessSettings, Network, RateLimit};
use crate::http::server::ConnectionLimits;
use crate::http::{CorsOrigins, WEBHOOK_BODY_LIMIT};
use crate::ledger::{Backend, LatePolicy, PoolSettings, DEFAULT_DATABASE_URL};
use crate::payments::connect::Connect;
use crate::payments::delayed::Delayed;
use crate::payments::WebhookSettings;
use crate::stripe::client::{DEFAULT_API_BASE, DEFAULT_API_VERSION, SANDBOX_SECRET_KEY};
use crate::stripe::{BudgetSettings, ClientSettings};
use crate::telemetry::LogFormat;
use crate::workers::notifier::Fulfilment;

mod connect;
mod delayed;
mod parsers;

pub use self::connect::ConnectArgs;
pub use self::delayed::DelayedArgs;
use self::parsers::{
    api_base, api_token, api_version, calls_per_second, choice, cors_origins, database_url,
    fulfilment_secret, fulfilment_url, list, network, optional, port, rate_limit,
    reconcile_interval, seconds, secret_key, within, CONNECTION, MAX_INFLIGHT_BODY_BYTES, SECONDS,
    WHOLE,
};
pub use self::parsers::{boolean, redact_url, webhook_secrets, SecretUrl};

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
    /// Bearer tokens that every client function but create requires (confirm, get, refund,
    /// cancel, capture, onboard and get organiser) and that sign operators in to the dashboard,
    /// comma-separated (several during a rotation). Unset: those are open (a start-up warning
    /// names each).
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
    /// Seconds between settlement rounds (Stripe's balance transactions and payouts read into
    /// the ledger); 0 turns them off.
    #[arg(long, env = "SETTLEMENT_INTERVAL_SECS", default_value = "3600",
          value_parser = seconds(..=86_400))]
    pub settlement_interval_secs: Duration,
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(flatten)]
    pub delayed: DelayedArgs,
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
    /// `None`: the settlement round is off.
    pub settlement_interval: Option<Duration>,
    /// Organisers paid through Stripe Connect; off by default.
    pub connect: Connect,
    /// OXXO, bank transfers and SEPA Debit.
    pub delayed: Delayed,
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
        let connect = args.connect.settings().map_err(|(v, p)| bad(v, p))?;
        let delayed = args.delayed.settings().map_err(|(v, p)| bad(v, p))?;
        Ok(Config {
            connect,
            delayed,
            fulfilment,
            late_payment_policy: args.late_payment_policy,
            reconcile_interval: (!reconcile.is_zero()).then_some(reconcile),
            settlement_interval: (!args.settlement_interval_secs.is_zero())
                .then_some(args.settlement_interval_secs),
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
mod tests;
