//! The organisers' pages of the dashboard (Stripe Connect): every organiser with its account's
//! status, and a page per organiser with what Stripe still needs of it, its fee policy, its
//! payments and their totals per currency (fees and what went back of them and of the
//! transfers included). They only read the ledger.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};

use super::dashboard::{html_response, layout, not_found, payments_table, unavailable, SignedIn};
use super::grid::grid;
use super::{format, Web};
use crate::ledger::{LedgerError, OrganizerRow, PaymentFilter};

/// How many of an organiser's payments its page lists.
const PAYMENTS_SHOWN: i64 = 50;

fn yes_no(value: bool) -> Markup {
    let (tone, text) = if value { ("ok", "yes") } else { ("bad", "no") };
    html! { span class={ "badge " (tone) } data-value=(value) { (text) } }
}

pub async fn list(_: SignedIn, State(web): State<Arc<Web>>) -> Response {
    let organizers = match web.ledger.organizers(1000).await {
        Ok(found) => found,
        Err(e) => return unavailable(&web, e),
    };
    let content = html! {
        h1 { "Organisers" }
        (grid(
            "organizers",
            "No organiser has been onboarded (POST /stripe_onboard_organizer).",
            html! {
                th { "Organiser" } th { "Account" } th { "Charges" } th { "Payouts" }
                th { "Connected" } th { "Still due" }
            },
            organizers.iter().map(|o| html! {
                tr data-id=(o.id) {
                    td data-label="Organiser" {
                        a href={ "/dashboard/organizers/" (o.id) } { (o.id) }
                    }
                    td.mono data-label="Account" { (o.account_id.as_deref().unwrap_or("—")) }
                    td data-label="Charges" { (yes_no(o.charges_enabled)) }
                    td data-label="Payouts" { (yes_no(o.payouts_enabled)) }
                    td data-label="Connected" { (yes_no(o.connected)) }
                    td data-label="Still due" { (o.requirements_due.join(", ")) }
                }
            }),
        ))
    };
    html_response(
        StatusCode::OK,
        layout(&web, "Organisers", None, true, content),
    )
}

pub async fn page(_: SignedIn, State(web): State<Arc<Web>>, Path(id): Path<String>) -> Response {
    let read = async {
        let Some(organizer) = web.ledger.organizer(&id).await? else {
            return Ok(None);
        };
        let filter = PaymentFilter {
            organizer: Some(id.clone()),
            ..PaymentFilter::default()
        };
        let (payments, count) = web
            .ledger
            .dashboard_payments(&filter, PAYMENTS_SHOWN)
            .await?;
        let totals = web.ledger.organizer_totals(&id).await?;
        Ok::<_, LedgerError>(Some((organizer, payments, count, totals)))
    };
    let (o, payments, count, totals) = match read.await {
        Ok(Some(found)) => found,
        Ok(None) => {
            return not_found(
                &web,
                "organiser",
                &id,
                ("/dashboard/organizers", "All organisers"),
            );
        }
        Err(e) => return unavailable(&web, e),
    };
    let content = html! {
        p.crumbs { a href="/dashboard/organizers" { "Organisers" } " / " (o.id) }
        h1 { "Organiser " (o.id) }
        (facts(&o))
        h2 { "Totals per currency" }
        (grid(
            "organizer-totals",
            "No payments yet.",
            html! {
                th { "Currency" } th.num { "Payments" } th.num { "Succeeded" }
                th.num { "Amount succeeded" } th.num { "Refunded" } th.num { "Platform fees" }
                th.num { "Fees refunded" } th.num { "Transfers reversed" }
            },
            totals.iter().map(|t| html! {
                tr data-currency=(t.currency) {
                    td data-label="Currency" { (t.currency.to_ascii_uppercase()) }
                    td.num data-label="Payments" { (t.payments) }
                    td.num data-label="Succeeded" { (t.succeeded) }
                    td.num data-label="Amount succeeded" { (format::money(t.succeeded_amount, &t.currency)) }
                    td.num data-label="Refunded" { (format::money(t.refunded_amount, &t.currency)) }
                    td.num data-label="Platform fees" { (format::money(t.application_fees, &t.currency)) }
                    td.num data-label="Fees refunded" { (format::money(t.application_fees_refunded, &t.currency)) }
                    td.num data-label="Transfers reversed" { (format::money(t.transfers_reversed, &t.currency)) }
                }
            }),
        ))
        h2 { "Payments" }
        p.muted #count {
            "Showing " (payments.len()) " of " (count) ". "
            a href={ "/dashboard?organizer=" (o.id) } { "Filter the payments by this organiser" }
        }
        (payments_table(&payments))
    };
    html_response(
        StatusCode::OK,
        layout(&web, &format!("Organiser {}", o.id), None, true, content),
    )
}

/// The organiser's account and what Stripe still needs of it.
fn facts(o: &OrganizerRow) -> Markup {
    html! {
        dl.facts #organizer-facts {
            dt { "Account" } dd.mono { (o.account_id.as_deref().unwrap_or("—")) }
            dt { "Country" } dd { (o.country) }
            dt { "Can take payments" } dd #charges { (yes_no(o.charges_enabled)) }
            dt { "Payouts" } dd { (yes_no(o.payouts_enabled)) }
            dt { "Connected" } dd #connected { (yes_no(o.connected)) }
            dt { "Still due" } dd #requirements {
                @if o.requirements_due.is_empty() { "nothing" }
                @else { ul.chips { @for r in &o.requirements_due { li { (r) } } } }
            }
            @if let Some(reason) = &o.disabled_reason { dt { "Disabled because" } dd { (reason) } }
            dt { "Fee policy" } dd #fee-policy {
                @match &o.fee {
                    Some(fee) => code { (fee.to_string()) },
                    None => "the platform's",
                }
            }
            dt { "Onboarded" } dd { (format::unix(o.created)) }
        }
    }
}
