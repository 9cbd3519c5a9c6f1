//! What the dashboard shows of a payment's settlement (docs/contract.md §17): Stripe's fee, the
//! net and the payout, from its balance transactions, or that they are not known yet.

use maud::{html, Markup};

use super::format;
use crate::ledger::BalanceRow;

/// A payment's fee, net and payout, as `dt`/`dd` pairs of its facts list, from its balance
/// transactions; "not known yet" before a settlement round has read them.
pub fn payment_facts(txns: &[BalanceRow]) -> Markup {
    let Some(charge) = txns
        .iter()
        .find(|t| matches!(t.entry.kind.as_str(), "charge" | "payment"))
    else {
        return html! {
            dt { "Stripe fee" } dd.muted #stripe-fee { "not known yet" }
        };
    };
    let same_account: Vec<&BalanceRow> = txns
        .iter()
        .filter(|t| t.account == charge.account)
        .collect();
    let net: i64 = same_account.iter().map(|t| t.entry.net).sum();
    let m = |minor: i64| format::money(minor, &charge.entry.currency);
    html! {
        dt { "Stripe fee" }
        dd #stripe-fee { (m(charge.entry.stripe_fee + charge.entry.tax)) }
        dt { "Net" }
        dd #net {
            (m(net))
            @if let Some(rate) = &charge.entry.exchange_rate { " · exchange rate " (rate) }
        }
        dt { "Payout" }
        dd #payout {
            @match &charge.payout_id {
                Some(id) => a.mono href="/dashboard/payouts" { (id) },
                None => span.muted { "not paid out yet" },
            }
        }
    }
}
