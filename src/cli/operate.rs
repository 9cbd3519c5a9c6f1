//! Commands that call Stripe besides `serve`: refunding a whole event (`refunds bulk`) and one
//! reconciliation round by hand (`reconcile`). Both use the service's own use cases, over the
//! same ledger, so they keep every rule the service keeps.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::config::{ConfigError, StripeArgs};
use crate::ledger::{EventWriter, ItemState, JobItem, Ledger};
use crate::money::Major;
use crate::payments::bulk::{Report, Selector};
use crate::payments::connect::Connect;
use crate::payments::delayed::funds::return_funds as return_funds_of;
use crate::payments::request::{organizer_id, RefundReason};
use crate::payments::{Payments, WebhookSettings};
use crate::stripe::StripeClient;

#[derive(Debug, clap::Args)]
pub struct BulkArgs {
    /// KEY=VALUE the payments' metadata must have (repeat it for several).
    #[arg(
        long = "metadata",
        required_unless_present = "organizer",
        value_name = "KEY=VALUE"
    )]
    metadata: Vec<String>,
    /// Only the payments made for this organiser (Stripe Connect), alone or with --metadata.
    #[arg(long, value_name = "ID")]
    organizer: Option<String>,
    /// Whether the refunds give back the platform's fee (payments made for organisers).
    #[arg(long, env = "REFUND_APPLICATION_FEE", default_value = "true",
          value_parser = crate::config::boolean, action = clap::ArgAction::Set)]
    refund_application_fee: bool,
    /// requested_by_customer, duplicate, fraudulent or event_canceled.
    #[arg(long, default_value = "event_canceled")]
    reason: String,
    /// Print what would be refunded and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print the report as JSON (and no progress bar).
    #[arg(long)]
    json: bool,
    /// Start a fresh job instead of resuming the unfinished one with the same selector.
    #[arg(long)]
    new_job: bool,
    #[command(flatten)]
    stripe: StripeArgs,
}

#[derive(Debug, clap::Args)]
pub struct ReturnFundsArgs {
    /// The buyer's e-mail, as their bank transfers' payments named it.
    email: String,
    /// Print what was returned as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    stripe: StripeArgs,
}

pub async fn return_funds(database_url: &str, args: ReturnFundsArgs) -> ExitCode {
    let payments = match payments(database_url, true, &args.stripe).await {
        Ok(p) => p,
        Err(code) => return code,
    };
    match return_funds_of(&payments.stripe, &payments.ledger, &args.email).await {
        Ok(returned) if args.json => print_json(&returned),
        Ok(returned) => {
            for r in &returned {
                println!(
                    "{}  {} {}  {} ({})",
                    r.customer_id,
                    r.amount,
                    r.currency.to_ascii_uppercase(),
                    r.refund_id,
                    r.status
                );
            }
            println!(
                "{} return(s) of money left in a cash balance",
                returned.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => failed(e),
    }
}

#[derive(Debug, clap::Args)]
pub struct ReconcileArgs {
    /// How far back to list Stripe's events: `90m`, `72h`, `7d` (at most 30 days: Stripe keeps
    /// events that long).
    #[arg(long, default_value = "72h")]
    since: String,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    stripe: StripeArgs,
}

/// A configuration mistake: one line, exit status 2.
pub(super) fn refuse(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("{e}");
    ExitCode::from(2)
}

pub(super) fn failed(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::FAILURE
}

/// The service's use cases over the ledger at `database_url` (opened to write to it when
/// `writes`), calling Stripe as `stripe` says.
pub(super) async fn payments(
    database_url: &str,
    writes: bool,
    stripe: &StripeArgs,
) -> Result<Payments, ExitCode> {
    let ledger = ledger(database_url, writes).await?;
    let client = StripeClient::new(stripe.client_settings()).map_err(failed)?;
    Ok(Payments {
        stripe: client,
        events: EventWriter::start(ledger.clone()),
        ledger,
        webhook: WebhookSettings {
            secrets: Vec::new(),
            tolerance_secs: 300,
        },
        idempotency_stale: std::time::Duration::from_secs(60),
        connect: Arc::new(Connect::default()),
        delayed: Arc::new(Default::default()),
    })
}

async fn ledger(database_url: &str, writes: bool) -> Result<Ledger, ExitCode> {
    let opened = match writes {
        true => super::open_existing(database_url).await,
        false => super::open_for_reading(database_url).await,
    };
    opened.map_err(|e| match e.downcast_ref::<ConfigError>() {
        Some(config) => refuse(config),
        None => failed(format!("{e:#}")),
    })
}

pub async fn bulk(database_url: &str, args: BulkArgs) -> ExitCode {
    let selector = match Selector::parse(&args.metadata) {
        Ok(s) => s,
        Err(bad) if bad.is_empty() && args.organizer.is_some() => Selector::every(),
        Err(bad) => {
            return refuse(format!(
                "configuration error: --metadata: '{bad}' is not KEY=VALUE"
            ))
        }
    };
    let selector = match args.organizer.clone() {
        None => selector,
        Some(id) if organizer_id(Some(&serde_json::Value::String(id.clone()))).is_some() => {
            selector.of_organizer(id)
        }
        Some(id) => {
            return refuse(format!(
                "configuration error: --organizer: '{id}' is not an organiser id"
            ))
        }
    };
    let Some(reason) = RefundReason::parse(&args.reason) else {
        return refuse(format!(
            "configuration error: --reason: '{}' is not requested_by_customer, duplicate, \
             fraudulent or event_canceled",
            args.reason
        ));
    };
    let payments = match payments(database_url, !args.dry_run, &args.stripe).await {
        Ok(p) => Payments {
            connect: Arc::new(Connect {
                refund_application_fee: args.refund_application_fee,
                ..Connect::default()
            }),
            ..p
        },
        Err(code) => return code,
    };
    if args.dry_run {
        return match payments.bulk_preview(&selector).await {
            Ok(preview) if args.json => print_json(&preview),
            Ok(preview) => {
                if let Some(job) = &preview.resumes {
                    println!(
                        "a run would resume job {} (started {})",
                        job.id, job.created_at
                    );
                }
                for p in &preview.payments {
                    println!(
                        "{}  {}",
                        p.payment_intent_id,
                        match p.remaining {
                            0 => "nothing left (skipped)".to_string(),
                            left => format!(
                                "{} {}",
                                Major::of(left, &p.currency),
                                p.currency.to_ascii_uppercase()
                            ),
                        }
                    );
                }
                print_totals(&preview.totals, "would refund");
                ExitCode::SUCCESS
            }
            Err(e) => failed(e),
        };
    }
    let (job, resumed) = match payments.bulk_job(&selector, reason, args.new_job).await {
        Ok(j) => j,
        Err(e) => return failed(e),
    };
    if !args.json {
        eprintln!(
            "{} job {} for {} (reason {})",
            if resumed { "resuming" } else { "starting" },
            job.id,
            job.selector,
            job.reason
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let stop = stop.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("stopping after the payment in progress; run again to resume");
                stop.store(true, Ordering::Relaxed);
            }
        })
    };
    let bar = (!args.json && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} payments  {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let outcome = payments
        .bulk_run(job, resumed, &stop, |_, items: &[JobItem]| {
            if let Some(bar) = &bar {
                let done = items
                    .iter()
                    .filter(|i| i.state != ItemState::Pending || i.error.is_some())
                    .count();
                bar.set_length(items.len() as u64);
                bar.set_position(done as u64);
                let refunded = items
                    .iter()
                    .filter(|i| i.state == ItemState::Refunded)
                    .count();
                bar.set_message(format!("{refunded} refunded"));
            }
        })
        .await;
    watcher.abort();
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let report = match outcome {
        Ok(r) => r,
        Err(e) => return failed(e),
    };
    if args.json {
        print_json(&report);
    } else {
        print_report(&report);
    }
    if report.complete() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    }
}

pub(super) fn print_json<T: serde::Serialize>(value: &T) -> ExitCode {
    match serde_json::to_string_pretty(value) {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => failed(e),
    }
}

fn print_totals(totals: &[crate::payments::bulk::CurrencyTotal], verb: &str) {
    for t in totals {
        println!(
            "{verb} {} {} over {} payment(s)",
            t.refunded,
            t.currency.to_ascii_uppercase(),
            t.payments
        );
    }
}

fn print_report(report: &Report) {
    for item in &report.items {
        let amount = item
            .amount
            .map(|a| {
                format!(
                    "{} {}",
                    Major::of(a, &item.currency),
                    item.currency.to_ascii_uppercase()
                )
            })
            .unwrap_or_default();
        println!(
            "{}  {:<8}  {}  {}",
            item.payment_intent_id,
            item.state.as_str(),
            amount,
            item.error.as_deref().unwrap_or("")
        );
    }
    let c = &report.counts;
    println!(
        "job {}: {} refunded, {} skipped, {} not refundable (OXXO), {} pending, {} failed",
        report.job.id, c.refunded, c.skipped, c.not_supported, c.pending, c.failed
    );
    print_totals(&report.totals, "refunded");
    if !report.complete() {
        println!(
            "not finished: running the same command again tries the {} pending and {} failed \
             payment(s) again",
            c.pending, c.failed
        );
    }
}

/// `90m`, `72h`, `7d`, `3600s` as seconds.
pub(super) fn parse_span(text: &str) -> Option<i64> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit())?);
    let n: i64 = number.parse().ok()?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(scale).filter(|s| *s > 0)
}

/// Stripe keeps events for 30 days.
const MAX_SINCE: i64 = 30 * 86_400;

pub async fn reconcile(database_url: &str, args: ReconcileArgs) -> ExitCode {
    let Some(span) = parse_span(&args.since) else {
        return refuse(format!(
            "configuration error: --since: '{}' is not a span such as 90m, 72h or 7d",
            args.since
        ));
    };
    if span > MAX_SINCE {
        return refuse("configuration error: --since: at most 30d (Stripe keeps events 30 days)");
    }
    let payments = match payments(database_url, true, &args.stripe).await {
        Ok(p) => p,
        Err(code) => return code,
    };
    let since = chrono::Utc::now().timestamp() - span;
    match payments.reconcile(since).await {
        Ok(report) if args.json => print_json(&report),
        Ok(r) => {
            println!(
                "listed {} event(s) since {}; {} new to the ledger, {} repaired it; {} \
                 PaymentIntent(s) adopted; {} stale payment(s) brought up to date; {} \
                 organisers' account(s) listed too, {} left out (Stripe refused them)",
                r.events_listed,
                chrono::DateTime::from_timestamp(r.since, 0)
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default(),
                r.events_recorded,
                r.events_applied,
                r.orphans_adopted,
                r.payments_refreshed,
                r.accounts_listed,
                r.accounts_left_out
            );
            ExitCode::SUCCESS
        }
        Err(e) => failed(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans() {
        assert_eq!(parse_span("72h"), Some(72 * 3600));
        assert_eq!(parse_span("90m"), Some(5400));
        assert_eq!(parse_span("7d"), Some(7 * 86_400));
        assert_eq!(parse_span("30s"), Some(30));
        for bad in ["", "h", "72", "0h", "-1h", "3w", "1.5h"] {
            assert_eq!(parse_span(bad), None, "{bad}");
        }
    }
}
