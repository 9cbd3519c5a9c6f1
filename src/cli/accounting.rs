//! Money you can account for, from the command line (docs/contract.md §17): `settlement sync`
//! (one settlement round by hand), `statement` (a period's figures as a table, CSV or JSON)
//! and `payouts list`.

use std::process::ExitCode;

use chrono::NaiveDate;

use super::inspect::listing;
use super::operate::{failed, parse_span, payments, print_json, refuse};
use crate::config::{ConnectArgs, StripeArgs};
use crate::ledger::{Ledger, PayoutRow};
use crate::money::Major;
use crate::payments::statement::{self, iso, Period, Totals};

#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    /// List every account from this long ago as well, whatever its cursor says: `90m`, `72h`,
    /// `30d`.
    #[arg(long)]
    since: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    stripe: StripeArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct StatementArgs {
    /// The first day (YYYY-MM-DD, UTC).
    #[arg(long, value_parser = day)]
    from: NaiveDate,
    /// The last day, included (YYYY-MM-DD, UTC).
    #[arg(long, value_parser = day)]
    to: NaiveDate,
    /// Only this organiser's payments (its Connect organiser id, or `metadata.organizer`).
    #[arg(long, value_name = "ID")]
    organizer: Option<String>,
    /// KEY=VALUE the payments' metadata must have (repeat it for several).
    #[arg(long = "metadata", value_name = "KEY=VALUE", value_parser = pair)]
    metadata: Vec<(String, String)>,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// The platform's fee policy (`PLATFORM_FEE_*`), for what is owed to organisers.
    #[command(flatten)]
    connect: ConnectArgs,
}

fn day(text: &str) -> Result<NaiveDate, String> {
    statement::parse_day(text)
        .ok_or_else(|| format!("'{}' is not a day as YYYY-MM-DD", text.trim()))
}

fn pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("'{text}' is not KEY=VALUE")),
    }
}

pub async fn sync(database_url: &str, args: SyncArgs) -> ExitCode {
    let since = match args.since.as_deref().map(|s| (s, parse_span(s))) {
        None => None,
        Some((_, Some(span))) => Some(chrono::Utc::now().timestamp() - span),
        Some((text, None)) => {
            return refuse(format!(
                "configuration error: --since: '{text}' is not a span such as 90m, 72h or 30d"
            ))
        }
    };
    let payments = match payments(database_url, true, &args.stripe).await {
        Ok(p) => p,
        Err(code) => return code,
    };
    match payments.settle(since).await {
        Ok(report) if args.json => print_json(&report),
        Ok(r) => {
            println!(
                "listed {} account(s) ({} resumed, {} left out: Stripe refused them): {} page(s), \
                 {} balance transaction(s); {} payout(s) itemised, {} of them not adding up",
                r.accounts,
                r.resumed,
                r.accounts_left_out,
                r.pages,
                r.transactions,
                r.payouts_itemised,
                r.payouts_mismatched
            );
            ExitCode::SUCCESS
        }
        Err(e) => failed(e),
    }
}

pub async fn statement(ledger: &Ledger, args: StatementArgs) -> anyhow::Result<()> {
    let connect =
        args.connect
            .settings()
            .map_err(|(variable, problem)| crate::config::ConfigError {
                variable: variable.into(),
                problem,
            })?;
    let period = Period::days(args.from, args.to, args.organizer, args.metadata);
    match args.format {
        Format::Csv => {
            let out = std::io::BufWriter::new(std::io::stdout().lock());
            statement::write_csv(ledger, &period, &connect.fee, out).await?;
        }
        Format::Json => {
            let out = std::io::BufWriter::new(std::io::stdout().lock());
            statement::write_json(ledger, &period, &connect.fee, out).await?;
        }
        Format::Table => {
            let totals = statement::totals(ledger, &period, &connect.fee).await?;
            print_totals(&period, &totals);
        }
    }
    Ok(())
}

fn print_totals(period: &Period, totals: &[Totals]) {
    println!(
        "statement from {} to {}{}",
        iso(period.from),
        iso(period.to),
        period
            .organizer
            .as_deref()
            .map(|o| format!(" for organiser {o}"))
            .unwrap_or_default()
    );
    if totals.is_empty() {
        println!("no succeeded payments");
    }
    for t in totals {
        let m = |minor: i64| Major::of(minor, &t.currency).to_string();
        println!(
            "{} ({} payment(s))",
            t.currency.to_ascii_uppercase(),
            t.payments
        );
        let mut rows = vec![
            ("gross sales", m(t.figures.gross)),
            ("refunds", m(t.figures.refunds)),
            ("disputes lost", m(t.figures.disputes)),
            ("dispute fees", m(t.figures.dispute_fees)),
            ("Stripe fees", m(t.figures.stripe_fees)),
            ("application fees", m(t.figures.application_fees)),
            ("net", m(t.net)),
            ("paid out", m(t.paid_out)),
            ("not yet paid out", m(t.not_paid_out)),
        ];
        if let Some(owed) = t.owed {
            rows.push(("owed to organisers", m(owed)));
        }
        for (name, value) in rows {
            println!("  {name:<20} {value:>14}");
        }
        if t.unknown > 0 {
            println!(
                "  not yet known ({}, in no figure above): {}",
                t.unknown,
                t.unknown_payments.join(", ")
            );
        }
    }
}

/// A payout as `payouts list --json` prints it.
#[derive(serde::Serialize)]
struct PayoutView {
    #[serde(flatten)]
    row: PayoutRow,
    /// Stripe itemises automatic payouts only.
    itemisable: bool,
    /// Whether its items add up to its amount; null until it is itemised.
    adds_up: Option<bool>,
}

pub async fn payouts(ledger: &Ledger, limit: i64, as_json: bool) -> anyhow::Result<()> {
    let rows: Vec<PayoutView> = ledger
        .list::<PayoutRow>(None, limit)
        .await?
        .into_iter()
        .map(|row| PayoutView {
            itemisable: row.itemisable(),
            adds_up: row.adds_up(),
            row,
        })
        .collect();
    let headers = [
        "ID", "ACCOUNT", "AMOUNT", "CURRENCY", "STATUS", "ARRIVAL", "ITEMS", "ADDS UP",
    ];
    listing(&rows, as_json, &headers, |view| {
        let p = &view.row;
        vec![
            p.id.clone(),
            if p.account.is_empty() {
                "platform".into()
            } else {
                p.account.clone()
            },
            Major::of(p.amount, &p.currency).to_string(),
            p.currency.to_ascii_uppercase(),
            p.status.clone(),
            iso(p.arrival_date),
            match (p.itemisable(), p.items) {
                (false, _) => "manual: not itemisable".into(),
                (true, None) => "not yet".into(),
                (true, Some(n)) => n.to_string(),
            },
            match p.adds_up() {
                Some(true) => "yes".into(),
                Some(false) => format!(
                    "NO: off by {}",
                    Major::of(p.mismatch.unwrap_or(0), &p.currency)
                ),
                None => "-".into(),
            },
        ]
    })
}
