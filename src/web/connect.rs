//! What the dashboard shows of a payment made for an organiser (Stripe Connect): whose it is,
//! how its money went, the platform's fee and what went back of it and of the transfer, and
//! the Stripe calls its disputes called for. Text through maud's escaping, as everything the
//! ledger holds.

use maud::{html, Markup};

use super::format;
use crate::ledger::PaymentDetail;

/// The payment's Connect facts, as `dt`/`dd` pairs of its facts list (nothing for a payment
/// not made for an organiser).
pub fn payment_facts(detail: &PaymentDetail) -> Markup {
    let Some(c) = &detail.connect else {
        return html! {};
    };
    let currency = detail.payment.currency.as_str();
    let money = |minor: i64| format::money(minor, currency);
    html! {
        dt { "Organiser" }
        dd #organizer {
            @match &c.organizer_id {
                Some(id) => a href={ "/dashboard/organizers/" (id) } { (id) },
                None => "—",
            }
        }
        dt { "Charge" }
        dd #charge-type {
            (c.charge_type.map_or("—", |t| t.as_str()))
            @if let Some(account) = &c.stripe_account { " on " span.mono { (account) } }
        }
        dt { "Platform fee" }
        dd #application-fee {
            (money(c.application_fee.unwrap_or(0)))
            @if c.application_fee_refunded > 0 {
                " · " (money(c.application_fee_refunded)) " refunded"
            }
        }
        @if let Some(transfer) = &c.transfer_id {
            dt { "Transfer" }
            dd #transfer {
                span.mono { (transfer) }
                @if let Some(amount) = c.transfer_amount { " · " (money(amount)) }
                @if c.transfer_reversed > 0 { " · " (money(c.transfer_reversed)) " reversed" }
            }
        }
    }
}

/// The transfer's reversals and the disputes' Stripe calls, as a section of their own.
pub fn payment_movements(detail: &PaymentDetail) -> Markup {
    if detail.reversals.is_empty() && detail.actions.is_empty() {
        return html! {};
    }
    let currency = detail.payment.currency.as_str();
    html! {
        h2 { "The organiser's money" }
        ul.connect #connect-movements {
            @for r in &detail.reversals {
                li data-kind="reversal" {
                    "Transfer reversal " span.mono { (r.id) } " · " (format::money(r.amount, currency))
                    @if let Some(refund) = &r.refund_id { " · by refund " span.mono { (refund) } }
                    @if let Some(dispute) = &r.dispute_id { " · for dispute " span.mono { (dispute) } }
                }
            }
            @for a in &detail.actions {
                li data-kind="action" data-state=(a.state) {
                    (a.kind) " for " span.mono { (a.dispute_id) } ": " (a.state)
                    @if let Some(amount) = a.amount { " · " (format::money(amount, currency)) }
                    @if let Some(made) = &a.result_id { " · " span.mono { (made) } }
                    @if let Some(note) = &a.last_error { " · " (note) }
                }
            }
        }
    }
}
