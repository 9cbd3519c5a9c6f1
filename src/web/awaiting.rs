//! The dashboard's list of payments waiting for money (docs/contract.md §16): OXXO vouchers
//! and bank transfers not paid yet, SEPA debits processing, each with its deadline and when its
//! seats are released.

use maud::{html, Markup};

use super::format;
use crate::ledger::AwaitingRow;

/// How a method is named to operators.
fn method_name(method: &str) -> &str {
    match method {
        "oxxo" => "OXXO voucher",
        "customer_balance" => "Bank transfer",
        "sepa_debit" => "SEPA Direct Debit",
        other => other,
    }
}

/// When the buyer must have paid, as the pages show times; a debit has no deadline.
fn deadline(expires_at: Option<&str>) -> String {
    match expires_at.map(chrono::DateTime::parse_from_rfc3339) {
        Some(Ok(t)) => format::unix(t.timestamp()),
        Some(Err(_)) => expires_at.unwrap_or_default().to_string(),
        None => "when the bank answers".into(),
    }
}

/// The section; nothing when no payment waits.
pub(super) fn section(rows: &[AwaitingRow]) -> Markup {
    html! {
        @if !rows.is_empty() {
            section #awaiting {
                h2 { "Awaiting money" }
                table.grid {
                    thead { tr {
                        th { "Payment" } th { "Method" } th { "Status" } th.num { "Amount" }
                        th.num { "Still owed" } th { "Pay by" } th { "Seats held until" }
                    } }
                    tbody {
                        @for row in rows {
                            tr data-payment=(row.id) {
                                td data-label="Payment" {
                                    a.mono href={ "/dashboard/payments/" (row.id) } { (row.id) }
                                }
                                td data-label="Method" { (method_name(&row.method)) }
                                td data-label="Status" data-status=(row.status) { (row.status) }
                                td.num data-label="Amount" { (format::money(row.amount, &row.currency)) }
                                td.num data-label="Still owed" {
                                    (format::money(row.amount_remaining.unwrap_or(row.amount), &row.currency))
                                }
                                td data-label="Pay by" data-deadline {
                                    (deadline(row.expires_at.as_deref()))
                                }
                                td data-label="Seats held until" {
                                    @match row.hold_expires_ms {
                                        Some(ms) => (format::unix_ms(ms)),
                                        None => "no hold",
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
