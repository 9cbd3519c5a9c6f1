//! Statements (docs/contract.md §17): per settlement currency, what a period's succeeded
//! payments came to after refunds, disputes, Stripe's fees and the platform's; and one line per
//! payment, as CSV (major units, through a CSV library) or JSON (minor units). A payment whose
//! balance transactions have not been read is counted as unknown and named, never added as 0.
//! Without Connect, the organiser is the payment's `metadata.organizer`, and the statement adds
//! what is owed to it under the platform's fee policy (§18's formula).

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::Value;

use super::connect::FeePolicy;
use super::request::TICKETS_KEY;
use crate::ledger::{Figures, Ledger, LedgerError, StatementRow};
use crate::money::{Currency, Major};

/// The metadata key that names a payment's organiser when Connect is off.
pub const ORGANIZER_METADATA: &str = "organizer";

/// Which payments a statement covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Period {
    /// Unix seconds, inclusive.
    pub from: i64,
    /// Unix seconds, exclusive.
    pub to: i64,
    pub organizer: Option<String>,
    /// KEY=VALUE pairs the payment's metadata must all have.
    pub metadata: Vec<(String, String)>,
}

impl Period {
    /// The days `from` to `to`, both included (UTC), with the selectors.
    pub fn days(
        from: NaiveDate,
        to: NaiveDate,
        organizer: Option<String>,
        metadata: Vec<(String, String)>,
    ) -> Period {
        let midnight = |d: NaiveDate| d.and_time(chrono::NaiveTime::MIN).and_utc().timestamp();
        Period {
            from: midnight(from),
            to: midnight(to) + 86_400,
            organizer,
            metadata,
        }
    }
}

/// A day as YYYY-MM-DD.
pub fn parse_day(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").ok()
}

/// One payment's line. Stripe's figures are in the settlement currency; `None` while unknown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Line {
    pub payment_intent_id: String,
    /// Unix seconds.
    pub created: i64,
    pub status: String,
    pub organizer_id: Option<String>,
    pub currency: String,
    pub amount: i64,
    pub amount_refunded: i64,
    pub stripe_fee: Option<i64>,
    pub application_fee: Option<i64>,
    pub net: Option<i64>,
    pub settlement_currency: Option<String>,
    pub exchange_rate: Option<String>,
    pub payout_id: Option<String>,
    /// Unix seconds.
    pub payout_arrival_date: Option<i64>,
}

/// What a settlement currency's payments came to, minor units.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub currency: String,
    pub payments: i64,
    #[serde(flatten)]
    pub figures: Figures,
    pub net: i64,
    pub paid_out: i64,
    pub not_paid_out: i64,
    /// Payments (in this currency) whose figures are not known yet: in no sum above.
    pub unknown: i64,
    /// The ids of those payments.
    pub unknown_payments: Vec<String>,
    /// Without Connect: what is owed to the organisers of these payments under the platform's
    /// fee policy (the net less the platform's fee); `None` when no payment is the platform's
    /// own.
    pub owed: Option<i64>,
}

/// A statement being added up, line by line.
pub struct Statement<'a> {
    period: &'a Period,
    fee: &'a FeePolicy,
    totals: BTreeMap<String, Totals>,
}

impl<'a> Statement<'a> {
    pub fn new(period: &'a Period, fee: &'a FeePolicy) -> Self {
        Statement {
            period,
            fee,
            totals: BTreeMap::new(),
        }
    }

    /// Reads the period's payments from `ledger`, adds each up, and hands its line to `each`.
    pub async fn run<E>(
        &mut self,
        ledger: &Ledger,
        mut each: impl FnMut(&Line) -> Result<(), E>,
    ) -> Result<Result<(), E>, LedgerError> {
        let (from, to) = (self.period.from, self.period.to);
        ledger
            .statement_rows(from, to, |row| match self.take(row) {
                Some(line) => each(&line),
                None => Ok(()),
            })
            .await
    }

    /// The totals, by currency.
    pub fn totals(self) -> Vec<Totals> {
        self.totals.into_values().collect()
    }

    /// The line of `row`, added to the totals; `None` when the period's selectors leave it out.
    fn take(&mut self, row: StatementRow) -> Option<Line> {
        let metadata: Value = serde_json::from_str(&row.metadata).unwrap_or(Value::Null);
        let field = |key: &str| metadata.get(key).and_then(Value::as_str);
        let organizer = row
            .organizer_id
            .clone()
            .or_else(|| field(ORGANIZER_METADATA).map(str::to_string));
        if let Some(wanted) = &self.period.organizer {
            if organizer.as_deref() != Some(wanted.as_str()) {
                return None;
            }
        }
        if !self
            .period
            .metadata
            .iter()
            .all(|(k, v)| field(k) == Some(v.as_str()))
        {
            return None;
        }
        let known = row.charges > 0;
        let destination = row.charge_type.as_deref() == Some("destination");
        let net = if destination {
            row.net_destination
        } else {
            row.net_all
        };
        let line = Line {
            payment_intent_id: row.id.clone(),
            created: row.created,
            status: row.status.clone(),
            organizer_id: organizer,
            currency: row.currency.clone(),
            amount: row.amount,
            amount_refunded: row.amount_refunded,
            stripe_fee: known.then_some(row.figures.stripe_fees),
            application_fee: known.then_some(row.figures.application_fees),
            net: known.then_some(net),
            settlement_currency: row.settlement_currency.clone().filter(|_| known),
            exchange_rate: row.exchange_rate.clone(),
            payout_id: row.payout_id.clone(),
            payout_arrival_date: row.payout_arrival_date,
        };
        let tickets = field(TICKETS_KEY)
            .and_then(|t| t.parse::<i64>().ok())
            .unwrap_or(1);
        let owed =
            (known && row.charge_type.is_none()).then(|| net - self.platform_fee(&row, tickets));
        let currency = line
            .settlement_currency
            .clone()
            .unwrap_or_else(|| row.currency.clone());
        let totals = self
            .totals
            .entry(currency.clone())
            .or_insert_with(|| Totals {
                currency,
                ..Totals::default()
            });
        totals.payments += 1;
        if !known {
            totals.unknown += 1;
            totals.unknown_payments.push(row.id);
            return Some(line);
        }
        totals.figures += row.figures;
        totals.net += net;
        // A destination charge's organiser is paid out on its own account, which the platform's
        // payouts do not itemise: what reached it counts as not paid out here.
        let paid_out = if destination { 0 } else { row.paid_out };
        totals.paid_out += paid_out;
        totals.not_paid_out += net - paid_out;
        if let Some(owed) = owed {
            *totals.owed.get_or_insert(0) += owed;
        }
        Some(line)
    }

    /// The platform's fee on what a payment kept (§18's formula over the amount less its
    /// refunds, with the tickets of its metadata), in its settlement currency.
    fn platform_fee(&self, row: &StatementRow, tickets: i64) -> i64 {
        let Some(currency) = Currency::parse(&row.currency) else {
            return 0;
        };
        let kept = row.amount - row.amount_refunded;
        if kept <= 0 {
            return 0;
        }
        let fee = self.fee.fee(kept, currency, tickets);
        match (&row.exchange_rate, &row.settlement_currency) {
            (Some(rate), Some(settled)) if !settled.eq_ignore_ascii_case(&row.currency) => {
                convert(fee, rate, currency, settled)
            }
            _ => fee,
        }
    }
}

/// `minor` units of `from` in `to`'s minor units at `rate` (units of `to` per unit of `from`),
/// rounded half away from zero, as Stripe converts.
fn convert(minor: i64, rate: &str, from: Currency, to: &str) -> i64 {
    let (Ok(rate), Some(to)) = (Decimal::from_str(rate), Currency::parse(to)) else {
        return minor;
    };
    // `to_minor` rounds half away from zero.
    to.to_minor(from.to_major(minor) * rate).unwrap_or(minor)
}

/// The CSV's columns, in order.
pub const CSV_HEADER: [&str; 14] = [
    "payment_intent_id",
    "created",
    "status",
    "organizer_id",
    "currency",
    "amount",
    "amount_refunded",
    "stripe_fee",
    "application_fee",
    "net",
    "settlement_currency",
    "exchange_rate",
    "payout_id",
    "payout_arrival_date",
];

/// Unix seconds as ISO 8601 UTC.
pub fn iso(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// A line as the CSV writes it: amounts in major units with their currency's decimals, an
/// unknown figure as an empty field (never 0).
pub fn csv_record(line: &Line) -> [String; 14] {
    let major = |minor: i64, currency: &str| Major::of(minor, currency).to_string();
    let settled = line.settlement_currency.as_deref();
    let figure = |value: Option<i64>| match (value, settled) {
        (Some(v), Some(c)) => major(v, c),
        _ => String::new(),
    };
    [
        line.payment_intent_id.clone(),
        iso(line.created),
        line.status.clone(),
        line.organizer_id.clone().unwrap_or_default(),
        line.currency.clone(),
        major(line.amount, &line.currency),
        major(line.amount_refunded, &line.currency),
        figure(line.stripe_fee),
        figure(line.application_fee),
        figure(line.net),
        settled.unwrap_or_default().to_string(),
        line.exchange_rate.clone().unwrap_or_default(),
        line.payout_id.clone().unwrap_or_default(),
        line.payout_arrival_date.map(iso).unwrap_or_default(),
    ]
}

/// The statement's totals alone (no line is written anywhere).
pub async fn totals(
    ledger: &Ledger,
    period: &Period,
    fee: &FeePolicy,
) -> anyhow::Result<Vec<Totals>> {
    let mut statement = Statement::new(period, fee);
    statement
        .run(ledger, |_| Ok::<(), std::convert::Infallible>(()))
        .await?
        .ok();
    Ok(statement.totals())
}

/// Writes the statement's CSV to `out` as it is read (bounded memory), and answers its totals.
pub async fn write_csv<W: std::io::Write>(
    ledger: &Ledger,
    period: &Period,
    fee: &FeePolicy,
    out: W,
) -> anyhow::Result<Vec<Totals>> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(CSV_HEADER)?;
    let mut statement = Statement::new(period, fee);
    statement
        .run(ledger, |line| writer.write_record(csv_record(line)))
        .await??;
    writer.flush()?;
    Ok(statement.totals())
}

/// Writes the statement as JSON to `out` as it is read (bounded memory): the period, every
/// line (amounts as integers in minor units), then the totals per currency.
pub async fn write_json<W: std::io::Write>(
    ledger: &Ledger,
    period: &Period,
    fee: &FeePolicy,
    mut out: W,
) -> anyhow::Result<()> {
    let head = serde_json::json!({
        "from": iso(period.from),
        "to": iso(period.to),
        "organizer": period.organizer,
    });
    let head = head.to_string();
    // The head's object, left open for the two lists.
    write!(out, "{},\"payments\":[", head.trim_end_matches('}'))?;
    let mut statement = Statement::new(period, fee);
    let mut first = true;
    statement
        .run(ledger, |line| {
            if !std::mem::take(&mut first) {
                out.write_all(b",")?;
            }
            serde_json::to_writer(&mut out, line)?;
            Ok::<(), anyhow::Error>(())
        })
        .await??;
    write!(out, "],\"currencies\":")?;
    serde_json::to_writer(&mut out, &statement.totals())?;
    writeln!(out, "}}")?;
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversion_rounds_half_away_from_zero() {
        let mxn = Currency::parse("mxn").unwrap();
        let jpy = Currency::parse("jpy").unwrap();
        assert_eq!(convert(10_000, "0.05", mxn, "usd"), 500);
        assert_eq!(convert(1_000, "0.006667", jpy, "usd"), 667);
        assert_eq!(
            convert(250, "0.05", mxn, "usd"),
            13,
            "12.5 rounds away from zero"
        );
        assert_eq!(convert(250, "not a rate", mxn, "usd"), 250);
    }

    #[test]
    fn unknown_figures_are_empty_fields_and_amounts_major() {
        let line = Line {
            payment_intent_id: "pi_1".into(),
            created: 0,
            status: "succeeded".into(),
            organizer_id: None,
            currency: "jpy".into(),
            amount: 1500,
            amount_refunded: 0,
            stripe_fee: None,
            application_fee: None,
            net: None,
            settlement_currency: None,
            exchange_rate: None,
            payout_id: None,
            payout_arrival_date: None,
        };
        let record = csv_record(&line);
        assert_eq!(record[1], "1970-01-01T00:00:00Z");
        assert_eq!(record[5], "1500");
        assert_eq!(&record[7..10], ["", "", ""]);
        let known = Line {
            currency: "usd".into(),
            amount: 1250,
            stripe_fee: Some(66),
            application_fee: Some(0),
            net: Some(1184),
            settlement_currency: Some("usd".into()),
            ..line
        };
        let record = csv_record(&known);
        assert_eq!(&record[5..10], ["12.50", "0.00", "0.66", "0.00", "11.84"]);
    }
}
