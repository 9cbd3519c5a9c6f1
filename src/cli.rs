//! Command line: `serve` (the default), `migrate`, ledger inspection and a webhook signer.

use std::io::Read;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;

use crate::app::{shutdown_signal, Application};
use crate::config::{check_database_url, parse_webhook_secrets, CommonArgs, Config, ServeArgs};
use crate::ledger::{Ledger, PaymentRow};
use crate::money::Currency;
use crate::stripe::signature;
use crate::telemetry::{self, LogFormat};

#[derive(Debug, Parser)]
#[command(
    name = "tmt-payments",
    version,
    about = "Card payments for TMT through Stripe"
)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the four payment functions (the default when no command is given).
    Serve(Box<ServeArgs>),
    /// Create or upgrade the ledger's tables, then exit.
    Migrate,
    /// Inspect recorded payments.
    Payments {
        #[command(subcommand)]
        command: PaymentsCommand,
    },
    /// Inspect received webhook events.
    Events {
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// Webhook helpers for testing an endpoint by hand.
    Webhook {
        #[command(subcommand)]
        command: WebhookCommand,
    },
}

#[derive(Debug, Subcommand)]
enum PaymentsCommand {
    /// Payments, newest first.
    List {
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// One payment with every event received for it.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum EventsCommand {
    /// Webhook events, newest first.
    List {
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum WebhookCommand {
    /// Print the Stripe-Signature header for the payload read from standard input.
    Sign {
        /// Defaults to the first secret of STRIPE_WEBHOOK_SECRET.
        #[arg(long, env = "STRIPE_WEBHOOK_SECRET", hide_env_values = true)]
        secret: String,
        /// Unix seconds; defaults to now.
        #[arg(long)]
        timestamp: Option<i64>,
    },
}

/// `tmt-payments` with no command, or with only flags, means `tmt-payments serve …`.
fn with_default_command(mut args: Vec<String>) -> Vec<String> {
    let first = args.get(1).map(String::as_str);
    let wants_default = match first {
        None => true,
        Some("-h" | "--help" | "-V" | "--version") => false,
        Some(flag) => flag.starts_with('-'),
    };
    if wants_default {
        args.insert(1.min(args.len()), "serve".into());
    }
    args
}

pub fn main() -> ExitCode {
    let cli = Cli::parse_from(with_default_command(std::env::args().collect()));
    let Some(format) = LogFormat::parse(&cli.common.log_format) else {
        eprintln!(
            "configuration error: LOG_FORMAT: '{}' is not pretty or json",
            cli.common.log_format
        );
        return ExitCode::from(2);
    };
    if let Err(e) = check_database_url(&cli.common.database_url) {
        eprintln!("{e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Serve(args) => {
            let config = match Config::from_args(&cli.common, &args) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            telemetry::init(format);
            runtime.block_on(serve(config))
        }
        Command::Migrate => runtime.block_on(async {
            let ledger = open(&cli.common.database_url).await?;
            ledger.close().await;
            println!("ledger at {} is up to date", cli.common.database_url);
            Ok(())
        }),
        Command::Payments { command } => runtime.block_on(payments(&cli.common, command)),
        Command::Events {
            command: EventsCommand::List { limit, json },
        } => runtime.block_on(async {
            let ledger = open(&cli.common.database_url).await?;
            let events = ledger.list_events(limit.max(0)).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&events)?);
            } else {
                println!(
                    "{:<32} {:<34} {:<30} {:<10} RECEIVED",
                    "ID", "TYPE", "PAYMENT INTENT", "OUTCOME"
                );
                for e in events {
                    println!(
                        "{:<32} {:<34} {:<30} {:<10} {}",
                        e.id,
                        e.event_type,
                        e.payment_intent_id.as_deref().unwrap_or("-"),
                        e.outcome,
                        e.received_at
                    );
                }
            }
            Ok(())
        }),
        Command::Webhook {
            command: WebhookCommand::Sign { secret, timestamp },
        } => {
            let secrets = match parse_webhook_secrets(&secret) {
                Ok(s) if !s.is_empty() => s,
                Ok(_) => {
                    eprintln!("configuration error: STRIPE_WEBHOOK_SECRET: empty");
                    return ExitCode::from(2);
                }
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            let mut body = Vec::new();
            if let Err(e) = std::io::stdin().read_to_end(&mut body) {
                eprintln!("cannot read the payload from standard input: {e}");
                return ExitCode::FAILURE;
            }
            let t = timestamp.unwrap_or_else(|| chrono::Utc::now().timestamp());
            println!("{}", signature::sign(&body, secrets[0].expose_secret(), t));
            Ok(())
        }
    }
    .map_or_else(
        |e: anyhow::Error| {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        },
        |()| ExitCode::SUCCESS,
    )
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let app = Application::build(config).await?;
    app.run_until(shutdown_signal()).await?;
    Ok(())
}

async fn open(url: &str) -> anyhow::Result<Ledger> {
    let ledger = Ledger::connect(url, 1).await?;
    ledger.migrate().await?;
    Ok(ledger)
}

async fn payments(common: &CommonArgs, command: PaymentsCommand) -> anyhow::Result<()> {
    let ledger = open(&common.database_url).await?;
    match command {
        PaymentsCommand::List {
            status,
            limit,
            json,
        } => {
            let rows = ledger
                .list_payments(status.as_deref(), limit.max(0))
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                println!(
                    "{:<32} {:<24} {:>14} {:<4} {:<12} UPDATED",
                    "ID", "STATUS", "AMOUNT", "CUR", "CREATED"
                );
                for row in &rows {
                    println!(
                        "{:<32} {:<24} {:>14} {:<4} {:<12} {}",
                        row.id,
                        row.status,
                        major(row),
                        row.currency,
                        row.created,
                        row.updated_at
                    );
                }
            }
        }
        PaymentsCommand::Show { id, json } => {
            let Some(row) = ledger.payment(&id).await? else {
                anyhow::bail!("no payment {id} in the ledger");
            };
            let events = ledger.events_for(&id).await?;
            if json {
                let mut object = serde_json::to_value(&row)?;
                object["events"] = serde_json::to_value(&events)?;
                println!("{}", serde_json::to_string_pretty(&object)?);
            } else {
                println!("id           {}", row.id);
                println!("status       {}", row.status);
                println!(
                    "amount       {} {} ({} minor units)",
                    major(&row),
                    row.currency,
                    row.amount
                );
                println!("description  {}", row.description.as_deref().unwrap_or(""));
                println!("metadata     {}", row.metadata);
                println!("created      {}", row.created);
                println!("updated_at   {}", row.updated_at);
                println!("events       {}", events.len());
                for e in events {
                    println!(
                        "  {} {} {} {}",
                        e.received_at, e.id, e.event_type, e.outcome
                    );
                }
            }
        }
    }
    ledger.close().await;
    Ok(())
}

fn major(row: &PaymentRow) -> String {
    Currency::parse(&row.currency)
        .map(|c| c.to_major(row.amount).to_string())
        .unwrap_or_else(|| row.amount.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        with_default_command(list.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn serve_is_the_default() {
        assert_eq!(args(&["tmt"]), ["tmt", "serve"]);
        assert_eq!(
            args(&["tmt", "--port", "1"]),
            ["tmt", "serve", "--port", "1"]
        );
        assert_eq!(args(&["tmt", "migrate"]), ["tmt", "migrate"]);
        assert_eq!(args(&["tmt", "--help"]), ["tmt", "--help"]);
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
