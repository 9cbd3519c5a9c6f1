//! The dashboard's accounting pages (docs/contract.md §17): statements for a period and an
//! organiser, with a CSV download of the same file `tmt-payments statement --format csv`
//! writes; payouts, each with the payments it settled; and a payment's fee, net and payout.
//! They only read the ledger; every value goes through maud's escaping (a payment's own facts are
//! `settled`'s).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use maud::{html, Markup};

use super::dashboard::{html_response, layout, status_badge, unavailable, SignedIn};
use super::{format, grid::grid, Web};
use crate::ledger::{LedgerError, PayoutRow};
use crate::payments::statement::{self, Period, Totals};

/// How many payouts the page lists.
const PAYOUTS_SHOWN: i64 = 100;

/// The period and organiser a statements page or download asks for; today when it says none.
struct Asked {
    from: NaiveDate,
    to: NaiveDate,
    organizer: String,
    error: Option<String>,
}

impl Asked {
    fn read(query: &HashMap<String, String>) -> Asked {
        let today = chrono::Utc::now().date_naive();
        let mut error = None;
        let mut day = |name: &str| match query.get(name).map(|s| s.trim()) {
            None | Some("") => today,
            Some(text) => statement::parse_day(text).unwrap_or_else(|| {
                error = Some(format!("{name}: '{text}' is not a day as YYYY-MM-DD"));
                today
            }),
        };
        let (from, to) = (day("from"), day("to"));
        let organizer = query
            .get("organizer")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        Asked {
            from,
            to,
            organizer,
            error,
        }
    }

    fn period(&self) -> Period {
        let organizer = (!self.organizer.is_empty()).then(|| self.organizer.clone());
        Period::days(self.from, self.to, organizer, Vec::new())
    }

    /// The query string that asks for the same again.
    fn query(&self) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("from", &self.from.to_string())
            .append_pair("to", &self.to.to_string());
        if !self.organizer.is_empty() {
            q.append_pair("organizer", &self.organizer);
        }
        q.finish()
    }
}

pub async fn statements(
    _: SignedIn,
    State(web): State<Arc<Web>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let asked = Asked::read(&query);
    let period = asked.period();
    let totals = match statement::totals(&web.ledger, &period, &web.connect.fee).await {
        Ok(t) => t,
        Err(e) => return unavailable(&web, LedgerError::Unavailable(format!("{e:#}"))),
    };
    let content = html! {
        h1 { "Statements" }
        form.filters method="get" action="/dashboard/statements" {
            label { "From" input type="date" name="from" value=(asked.from); }
            label { "To" input type="date" name="to" value=(asked.to); }
            label {
                "Organiser"
                input type="text" name="organizer" value=(asked.organizer)
                    placeholder="organizer id" autocomplete="off" spellcheck="false";
            }
            div.actions { button.primary type="submit" { "Show" } }
        }
        @if let Some(error) = &asked.error { p.error role="alert" { (error) } }
        p {
            a #csv-download href={ "/dashboard/statements.csv?" (asked.query()) } download {
                "Download CSV"
            }
            span.muted { " · one line per payment, as " code { "tmt-payments statement --format csv" } " writes it" }
        }
        (totals_table(&totals))
    };
    html_response(
        StatusCode::OK,
        layout(&web, "Statements", None, true, content),
    )
}

/// The totals per settlement currency; "net" is after Stripe's fees, and payments whose fees
/// are not known yet are counted apart and named.
fn totals_table(totals: &[Totals]) -> Markup {
    let owed = totals.iter().any(|t| t.owed.is_some());
    html! {
        (grid(
            "statement-totals",
            "No succeeded payments in this period.",
            html! {
                th { "Currency" } th.num { "Payments" } th.num { "Gross" } th.num { "Refunds" }
                th.num { "Disputes lost" } th.num { "Dispute fees" } th.num { "Stripe fees" }
                th.num { "Application fees" } th.num { "Net" } th.num { "Paid out" }
                th.num { "Not yet paid out" }
                @if owed { th.num { "Owed to organisers" } }
                th.num { "Not yet known" }
            },
            totals.iter().map(|t| {
                let m = |minor: i64| format::money(minor, &t.currency);
                html! {
                    tr data-currency=(t.currency) {
                        td data-label="Currency" { (t.currency.to_ascii_uppercase()) }
                        td.num data-label="Payments" { (t.payments) }
                        td.num data-label="Gross" { (m(t.figures.gross)) }
                        td.num data-label="Refunds" { (m(t.figures.refunds)) }
                        td.num data-label="Disputes lost" { (m(t.figures.disputes)) }
                        td.num data-label="Dispute fees" { (m(t.figures.dispute_fees)) }
                        td.num data-label="Stripe fees" { (m(t.figures.stripe_fees)) }
                        td.num data-label="Application fees" { (m(t.figures.application_fees)) }
                        td.num data-label="Net" data-minor=(t.net) { (m(t.net)) }
                        td.num data-label="Paid out" { (m(t.paid_out)) }
                        td.num data-label="Not yet paid out" { (m(t.not_paid_out)) }
                        @if owed {
                            td.num data-label="Owed to organisers" {
                                (t.owed.map(m).unwrap_or_else(|| "—".into()))
                            }
                        }
                        td.num data-label="Not yet known" data-unknown=(t.unknown) { (t.unknown) }
                    }
                }
            }),
        ))
        @for t in totals.iter().filter(|t| t.unknown > 0) {
            p.muted.unknown {
                (t.unknown) " payment(s) in " (t.currency.to_ascii_uppercase())
                " whose Stripe fees are not known yet (no settlement round has read them), in no \
                 figure above: "
                @for (i, id) in t.unknown_payments.iter().enumerate() {
                    @if i > 0 { ", " }
                    a.mono href={ "/dashboard/payments/" (id) } { (id) }
                }
            }
        }
    }
}

/// The same CSV the command writes, as a download.
pub async fn statement_csv(
    _: SignedIn,
    State(web): State<Arc<Web>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let asked = Asked::read(&query);
    let mut file = Vec::new();
    if let Err(e) =
        statement::write_csv(&web.ledger, &asked.period(), &web.connect.fee, &mut file).await
    {
        return unavailable(&web, LedgerError::Unavailable(format!("{e:#}")));
    }
    let name = format!("statement-{}-{}.csv", asked.from, asked.to);
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        file,
    )
        .into_response()
}

pub async fn payouts(_: SignedIn, State(web): State<Arc<Web>>) -> Response {
    let read = async {
        let payouts = web.ledger.list::<PayoutRow>(None, PAYOUTS_SHOWN).await?;
        // Per payout, what it settled of each payment.
        let mut nets: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
        for n in web.ledger.payout_nets(PAYOUTS_SHOWN).await? {
            nets.entry(n.payout_id)
                .or_default()
                .insert(n.payment_intent_id, n.net);
        }
        Ok::<_, LedgerError>((payouts, nets))
    };
    let (payouts, nets) = match read.await {
        Ok(r) => r,
        Err(e) => return unavailable(&web, e),
    };
    let content = html! {
        h1 { "Payouts" }
        @if payouts.is_empty() {
            p.muted { "No payout yet: Stripe's payout.* events put them here." }
        }
        @for p in &payouts {
            (payout_section(p, nets.get(&p.id).unwrap_or(&BTreeMap::new())))
        }
    };
    html_response(StatusCode::OK, layout(&web, "Payouts", None, true, content))
}

fn payout_section(p: &PayoutRow, payments: &BTreeMap<String, i64>) -> Markup {
    let m = |minor: i64| format::money(minor, &p.currency);
    let check = match (p.itemisable(), p.adds_up()) {
        (false, _) => html! { span.badge.wait { "manual: Stripe cannot itemise it" } },
        (true, None) => html! { span.badge.wait { "not itemised yet" } },
        (true, Some(true)) => html! { span.badge.ok data-adds-up="true" { "items add up" } },
        (true, Some(false)) => html! {
            span.badge.bad data-adds-up="false" {
                "items do not add up: off by " (m(p.mismatch.unwrap_or(0)))
            }
        },
    };
    html! {
        section.payout data-id=(p.id) {
            h2 { span.mono { (p.id) } " · " (m(p.amount)) " " (status_badge(&p.status)) }
            p {
                (if p.account.is_empty() { "the platform's" } else { p.account.as_str() })
                " · arrives " (format::unix(p.arrival_date)) " · " (check)
                @if let Some(code) = &p.failure_code { " · failed: " (code) }
            }
            @if !payments.is_empty() {
                table.grid.payout-payments {
                    thead { tr { th { "Payment" } th.num { "Net in this payout" } } }
                    tbody {
                        @for (pi, net) in payments {
                            tr data-payment=(pi) {
                                td data-label="Payment" {
                                    a.mono href={ "/dashboard/payments/" (pi) } { (pi) }
                                }
                                td.num data-label="Net in this payout" { (m(*net)) }
                            }
                        }
                    }
                }
            }
        }
    }
}
