//! The command line, shared by the `stripe-sandbox` binary and by programs that embed the
//! sandbox as a subcommand of their own (flatten [`SandboxArgs`] and call [`run`]).

use std::net::{IpAddr, SocketAddr};

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};

use crate::trigger::{self, Trigger};
use crate::{objects, Options, Sandbox, Storage, WebhookTarget};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SandboxArgs {
    #[command(subcommand)]
    pub command: Option<SandboxCommand>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Make a running sandbox produce an event, as `stripe trigger` does.
    Trigger(TriggerArgs),
}

/// Its `Debug` leaves out the webhook secret (see the impl below).
#[derive(Args)]
pub struct ServeArgs {
    #[arg(long, default_value_t = 12111)]
    pub port: u16,
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Where to deliver signed events (for example http://127.0.0.1:8080/stripe_webhook).
    #[arg(long)]
    pub webhook_url: Option<String>,
    /// The whsec_… secret events are signed with; generated and printed when omitted.
    #[arg(long, hide_env_values = true)]
    pub webhook_secret: Option<String>,
    /// The SQLite file holding the sandbox's objects, idempotency keys and pending deliveries
    /// (created if missing); `:memory:` keeps them in memory only.
    #[arg(long, default_value = "stripe-sandbox.db")]
    pub state: String,
    /// Milliseconds before what Stripe does some time after a request: a refund of
    /// pm_card_refundFail failing, a dispute of pm_card_createDispute opening or being decided,
    /// a processing payment succeeding. Default: $STRIPE_SANDBOX_DELAY_MS, else 1000.
    #[arg(long)]
    pub delay_ms: Option<u64>,
}

/// Its `Debug` leaves out the API key (see the impl below).
#[derive(Args)]
pub struct TriggerArgs {
    /// The event to cause: one of payment_intent.created, payment_intent.succeeded,
    /// payment_intent.payment_failed, payment_intent.canceled, payment_intent.requires_action,
    /// payment_intent.amount_capturable_updated, payment_intent.processing, charge.succeeded,
    /// charge.failed, charge.captured, charge.refunded, refund.created, refund.failed,
    /// charge.dispute.created, payment_intent.partially_funded (a bank transfer of half),
    /// cash_balance.funds_available (a bank transfer of more than is owed, or for no payment),
    /// account.updated, payout.created, payout.updated, payout.paid,
    /// payout.reconciliation_completed, payout.failed (a card payment, then the balance paid
    /// out by the sandbox's payout control).
    pub event: String,
    /// Act on this PaymentIntent instead of creating one.
    #[arg(long)]
    pub payment_intent: Option<String>,
    /// A connected account (acct_…): the one account.updated is about (a new Express account
    /// when omitted), or the one a payment or payout event happens on (sent as Stripe-Account).
    #[arg(long)]
    pub account: Option<String>,
    /// The running sandbox's API base (the part before /v1).
    #[arg(long)]
    pub api_base: Option<String>,
    /// Any sk_test_… key.
    #[arg(long, default_value = "sk_test_sandbox_trigger")]
    pub api_key: String,
    /// Amount of a created PaymentIntent, in the currency's smallest unit.
    #[arg(long, default_value_t = 2000)]
    pub amount: i64,
    /// Currency of a created PaymentIntent; bank transfers are in mxn (SPEI) unless this is eur.
    #[arg(long, default_value = "usd")]
    pub currency: String,
    /// Metadata of a created PaymentIntent, KEY=VALUE; repeatable.
    #[arg(long = "metadata", value_name = "KEY=VALUE")]
    pub metadata: Vec<String>,
}

/// What stands in a `Debug` print for a secret that was given.
fn redacted<T>(secret: &Option<T>) -> Option<&'static str> {
    secret.as_ref().map(|_| "***")
}

impl std::fmt::Debug for ServeArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeArgs")
            .field("port", &self.port)
            .field("bind", &self.bind)
            .field("webhook_url", &self.webhook_url)
            .field("webhook_secret", &redacted(&self.webhook_secret))
            .field("state", &self.state)
            .field("delay_ms", &self.delay_ms)
            .finish()
    }
}

impl std::fmt::Debug for TriggerArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TriggerArgs")
            .field("event", &self.event)
            .field("payment_intent", &self.payment_intent)
            .field("account", &self.account)
            .field("api_base", &self.api_base)
            .field("api_key", &redacted(&Some(&self.api_key)))
            .field("amount", &self.amount)
            .field("currency", &self.currency)
            .field("metadata", &self.metadata)
            .finish()
    }
}

/// Runs the sandbox, or a trigger against a running one (at `default_api_base` unless
/// `--api-base` says otherwise). The server stops when `shutdown` resolves.
pub async fn run(
    args: SandboxArgs,
    default_api_base: &str,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    match args.command {
        Some(SandboxCommand::Trigger(t)) => {
            let mut metadata = Vec::new();
            for item in &t.metadata {
                let Some((k, v)) = item.split_once('=') else {
                    bail!("--metadata {item}: expected KEY=VALUE");
                };
                metadata.push((k.to_string(), v.to_string()));
            }
            let api_base = t
                .api_base
                .clone()
                .unwrap_or_else(|| default_api_base.to_string());
            println!("Triggering {} at {api_base}", t.event);
            let report = trigger::trigger(&Trigger {
                event: t.event,
                payment_intent: t.payment_intent,
                account: t.account,
                api_base,
                api_key: t.api_key,
                amount: t.amount,
                currency: t.currency,
                metadata,
            })
            .await?;
            print!("{report}");
            println!("Trigger succeeded.");
            Ok(())
        }
        None => serve(args.serve, shutdown).await,
    }
}

async fn serve(
    args: ServeArgs,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let webhook = match &args.webhook_url {
        None => None,
        Some(url) => {
            if !url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
                bail!("--webhook-url: '{url}' is not an http(s) URL");
            }
            let secret = match args.webhook_secret.as_deref().map(str::trim) {
                Some("") => bail!("--webhook-secret: empty"),
                Some(s) => s.to_string(),
                None => {
                    let generated = format!("whsec_{}", objects::random_alnum(32));
                    // Printed once so that the receiving side can be configured with it.
                    println!("webhook signing secret: {generated}");
                    generated
                }
            };
            Some(WebhookTarget::new(url.clone(), secret))
        }
    };
    let storage = Storage::parse(&args.state);
    let delivers_to = webhook.as_ref().map(|w| w.url.clone());
    let sandbox = Sandbox::open(Options {
        storage: storage.clone(),
        webhook,
    })
    .await?;
    if let Some(ms) = args.delay_ms {
        sandbox.set_delay(std::time::Duration::from_millis(ms));
    }
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(args.bind, args.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", args.bind, args.port))?;
    let local = listener.local_addr()?;
    tracing::warn!(
        address = %local,
        state = %storage,
        webhook_url = delivers_to.as_deref(),
        "Stripe sandbox listening on http://{local} (use it as the API base with any sk_test_… key)"
    );
    crate::serve(listener, sandbox, shutdown).await?;
    Ok(())
}

#[derive(Debug, Parser)]
#[command(
    name = "stripe-sandbox",
    version,
    about = "A Stripe API emulator: PaymentIntents, Charges, Refunds, Disputes, Events, lists and signed webhooks"
)]
struct Cli {
    #[command(flatten)]
    args: SandboxArgs,
}

/// The `stripe-sandbox` binary.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match runtime.block_on(run(cli.args, "http://localhost:12111", shutdown)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
        let parsed = Cli::try_parse_from([
            "stripe-sandbox",
            "trigger",
            "payment_intent.succeeded",
            "--payment-intent",
            "pi_1",
        ])
        .unwrap();
        assert!(matches!(
            parsed.args.command,
            Some(SandboxCommand::Trigger(TriggerArgs { ref payment_intent, .. }))
                if payment_intent.as_deref() == Some("pi_1")
        ));
        let served =
            Cli::try_parse_from(["stripe-sandbox", "--port", "1", "--state", ":memory:"]).unwrap();
        assert_eq!(
            (
                served.args.serve.port,
                Storage::parse(&served.args.serve.state)
            ),
            (1, Storage::Memory)
        );
    }

    #[test]
    fn debug_prints_no_secret() {
        let served = Cli::try_parse_from([
            "stripe-sandbox",
            "--webhook-url",
            "http://127.0.0.1:1/hook",
            "--webhook-secret",
            "whsec_do_not_print_me",
        ])
        .unwrap();
        let triggered = Cli::try_parse_from([
            "stripe-sandbox",
            "trigger",
            "payment_intent.succeeded",
            "--api-key",
            "sk_test_do_not_print_me",
        ])
        .unwrap();
        for printed in [format!("{served:?}"), format!("{triggered:?}")] {
            assert!(!printed.contains("do_not_print_me"), "{printed}");
            assert!(printed.contains("***"), "{printed}");
        }
    }
}
