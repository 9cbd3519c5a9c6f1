//! Payments by the methods whose money comes later (docs/contract.md, "Cash and bank
//! transfers"): inside the transaction that wrote a payment's row from a whole PaymentIntent,
//! what its voucher, its transfer instructions or its debit mean. The `nextAction` the platform
//! is shown, kept with the row; the notifications (`payment.awaiting_payment` once,
//! `payment.partially_funded` once per amount still owed, `payment.failed` for a debit that
//! failed after `processing`); the seat hold extended once to the payment's own deadline (never
//! beyond the cap its create wrote), kept while a debit is processing, released when a debit
//! fails, and ended at once when a voucher expires unpaid, so that the hold worker cancels the
//! payment.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::notifications::announce;
use super::sql::payment_columns;
use super::stored::{HoldState, Kind, Outbox};
use super::{column, iso_ms};
use crate::money::Major;
use crate::stripe::next_action::NextAction;
use crate::stripe::types::{PaymentIntent, PaymentIntentStatus};

/// The metadata key under which a create records a bank transfer's deadline (ISO 8601 UTC).
pub const PAY_BY_KEY: &str = "pay_by";
/// The metadata key under which a create records how far its seat hold may be extended.
pub const HOLD_CAP_KEY: &str = "hold_cap";

/// The payment method types whose money comes later.
const DELAYED_TYPES: [&str; 3] = ["oxxo", "customer_balance", "sepa_debit"];

/// Stripe's code for an OXXO voucher that expired unpaid.
const VOUCHER_EXPIRED: &str = "payment_intent_payment_attempt_expired";

/// A time the metadata holds, as Unix milliseconds.
pub(super) fn metadata_ms(pi: &PaymentIntent, key: &str) -> Option<i64> {
    let text = pi.metadata.get(key)?.as_str()?;
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// The method whose money comes later that `pi` is being paid with, as far as it says.
fn method_of(pi: &PaymentIntent) -> Option<&'static str> {
    if let [only] = pi.payment_method_types.as_slice() {
        return DELAYED_TYPES.iter().copied().find(|t| t == only);
    }
    match (&pi.next_action, &pi.status) {
        (Some(NextAction::Oxxo(_)), _) => Some("oxxo"),
        (Some(NextAction::BankTransfer(_)), _) => Some("customer_balance"),
        (None, PaymentIntentStatus::Processing)
            if pi.payment_method_types.iter().any(|t| t == "sepa_debit") =>
        {
            Some("sepa_debit")
        }
        _ => None,
    }
}

/// When the buyer must have paid, Unix milliseconds: the voucher's end, or the service's own
/// deadline for a transfer (its create wrote it).
fn deadline_ms(pi: &PaymentIntent) -> Option<i64> {
    match pi.next_action.as_ref()? {
        NextAction::Oxxo(oxxo) => oxxo.expires_after.map(|s| s.saturating_mul(1000)),
        NextAction::BankTransfer(_) => metadata_ms(pi, PAY_BY_KEY),
    }
}

/// What a transfer still owes, minor units.
fn remaining(pi: &PaymentIntent) -> Option<i64> {
    match pi.next_action.as_ref()? {
        NextAction::BankTransfer(t) => Some(t.amount_remaining.unwrap_or(pi.amount)),
        NextAction::Oxxo(_) => None,
    }
}

/// `nextAction` as create and get answer it and notifications carry it: what the buyer has to
/// do while the payment waits for a voucher's payment or a bank transfer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NextActionData {
    /// `oxxo_display_details` or `display_bank_transfer_instructions`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The voucher's last second, or the service's own deadline for a transfer (ISO 8601 UTC).
    pub expires_at: Option<String>,
    /// Stripe's page of the voucher or the instructions.
    pub hosted_url: Option<String>,
    /// What the transfer must carry, where Stripe gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// The voucher's number (OXXO).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    /// Where to send a SPEI transfer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clabe: Option<String>,
    /// Where to send a euro transfer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iban: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bic: Option<String>,
    /// What is still owed, major units.
    pub amount_remaining: Major,
}

/// `nextAction` for a PaymentIntent awaiting a voucher's payment or a bank transfer; `None`
/// for any other.
pub fn next_action_of(pi: &PaymentIntent) -> Option<NextActionData> {
    if pi.status != PaymentIntentStatus::RequiresAction {
        return None;
    }
    let owed = |minor: i64| Major::of(minor, &pi.currency);
    let mut answer = NextActionData {
        kind: String::new(),
        expires_at: deadline_ms(pi).and_then(iso_ms),
        hosted_url: None,
        reference: None,
        number: None,
        clabe: None,
        iban: None,
        bic: None,
        amount_remaining: owed(pi.amount),
    };
    match pi.next_action.as_ref()? {
        NextAction::Oxxo(oxxo) => {
            answer.kind = "oxxo_display_details".into();
            answer.hosted_url = oxxo.hosted_voucher_url.clone();
            answer.number = oxxo.number.clone();
        }
        NextAction::BankTransfer(transfer) => {
            answer.kind = "display_bank_transfer_instructions".into();
            answer.hosted_url = transfer.hosted_instructions_url.clone();
            answer.reference = transfer.reference.clone();
            answer.amount_remaining = owed(transfer.amount_remaining.unwrap_or(pi.amount));
            answer.clabe = transfer.clabe().map(str::to_string);
            if let Some(iban) = transfer.iban() {
                answer.iban = iban.iban.clone();
                answer.bic = iban.bic.clone();
            }
        }
    }
    Some(answer)
}

/// Inside the transaction that wrote `pi` to its row: what its voucher, transfer or debit
/// means (see the module's comment). Nothing happens when the row kept another status.
pub(super) async fn after_delayed_change(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    outbox: Outbox,
    pi: &PaymentIntent,
    info_at: i64,
) -> Result<(), sqlx::Error> {
    let columns =
        "status, method, amount_remaining, hold_expires_ms, hold_state, hold_extended, next_action";
    let possible = pi
        .payment_method_types
        .iter()
        .any(|t| DELAYED_TYPES.contains(&t.as_str()));
    let said = method_of(pi);
    if said.is_none() && !possible {
        return Ok(());
    }
    let Some(row) = payment_columns(tx, &pi.id, columns).await? else {
        return Ok(());
    };
    if PaymentIntentStatus::parse(&column::<String>(&row, "status")?) != pi.status {
        return Ok(());
    }
    let known: Option<String> = column(&row, "method")?;
    let method = said.map(str::to_string).or(known.clone());
    if method.is_none() {
        return Ok(());
    }
    let hold: Option<i64> = column(&row, "hold_expires_ms")?;
    let state: Option<HoldState> = column(&row, "hold_state")?;
    let open = HoldState::is_open(state);
    let shown: Option<String> = column(&row, "next_action")?;
    let update = |sql: &'static str| sqlx::query(sql).bind(&pi.id);
    if known.is_none() {
        update("UPDATE payments SET method = $2 WHERE id = $1")
            .bind(&method)
            .execute(&mut **tx)
            .await?;
    }
    match pi.status {
        PaymentIntentStatus::RequiresAction => {
            let Some(next) = next_action_of(pi) else {
                return Ok(());
            };
            let before: Option<i64> = column(&row, "amount_remaining")?;
            let owed = remaining(pi);
            // An older event never raises what is owed again.
            let lower = match (owed, before) {
                (Some(now), Some(then)) => now < then,
                (Some(_), None) | (None, None) => true,
                (None, Some(_)) => false,
            };
            let next = serde_json::to_string(&next).unwrap_or_default();
            // A read that says what the row already says writes nothing.
            let unchanged = shown.as_deref() == Some(next.as_str()) && before == owed;
            if (lower || shown.is_none()) && !unchanged {
                update("UPDATE payments SET next_action = $2, amount_remaining = $3 WHERE id = $1")
                    .bind(next)
                    .bind(owed)
                    .execute(&mut **tx)
                    .await?;
            }
            announce(tx, outbox, &pi.id, Kind::AwaitingPayment, None).await?;
            if let Some(owed) = owed.filter(|o| lower && *o < pi.amount) {
                let subject = owed.to_string();
                announce(tx, outbox, &pi.id, Kind::PartiallyFunded, Some(&subject)).await?;
            }
            let extended = column::<i64>(&row, "hold_extended")? == 1;
            if let (Some(deadline), false, true) = (deadline_ms(pi), extended, open) {
                extend_hold(tx, pi, hold, deadline).await?;
            }
        }
        PaymentIntentStatus::Processing if method.as_deref() == Some("sepa_debit") => {
            if hold.is_some() && state.is_none() {
                update("UPDATE payments SET hold_state = $2 WHERE id = $1")
                    .bind(HoldState::Debiting)
                    .execute(&mut **tx)
                    .await?;
            }
        }
        PaymentIntentStatus::RequiresPaymentMethod => {
            if shown.is_some() {
                update("UPDATE payments SET next_action = NULL WHERE id = $1")
                    .execute(&mut **tx)
                    .await?;
            }
            let expired = pi
                .last_payment_error
                .as_ref()
                .and_then(|e| e.code.as_deref())
                == Some(VOUCHER_EXPIRED);
            match method.as_deref() {
                Some("sepa_debit") if pi.last_payment_error.is_some() => {
                    announce(tx, outbox, &pi.id, Kind::Failed, None).await?;
                    if hold.is_some() && open {
                        update("UPDATE payments SET hold_state = $2 WHERE id = $1")
                            .bind(HoldState::Released)
                            .execute(&mut **tx)
                            .await?;
                    }
                }
                // The voucher expired unpaid: the hold ends now, and the hold worker cancels
                // the payment (the buyer could otherwise start again on released seats).
                Some("oxxo") if expired && open => {
                    let now = info_at.saturating_mul(1000);
                    update(
                        "UPDATE payments SET hold_expires_ms = CASE
                             WHEN hold_expires_ms IS NULL OR hold_expires_ms > $2 THEN $2
                             ELSE hold_expires_ms END,
                             hold_state = NULL
                         WHERE id = $1",
                    )
                    .bind(now)
                    .execute(&mut **tx)
                    .await?;
                }
                _ => {}
            }
        }
        // The instructions end with the wait for money.
        _ => {
            if shown.is_some() {
                update("UPDATE payments SET next_action = NULL WHERE id = $1")
                    .execute(&mut **tx)
                    .await?;
            }
        }
    }
    Ok(())
}

/// The hold extended, once, to the payment's `deadline`, never beyond the cap its create wrote.
/// A payment without a hold that has a deadline of the service's own (a transfer) gets one, so
/// that the hold worker cancels it once the deadline passes.
async fn extend_hold(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    pi: &PaymentIntent,
    hold: Option<i64>,
    deadline: i64,
) -> Result<(), sqlx::Error> {
    let until = match (hold, metadata_ms(pi, HOLD_CAP_KEY)) {
        (Some(_), Some(cap)) => deadline.min(cap),
        (Some(held), None) => held,
        (None, _) if metadata_ms(pi, PAY_BY_KEY).is_some() => deadline,
        (None, _) => return Ok(()),
    };
    let until = hold.map_or(until, |held| until.max(held));
    sqlx::query("UPDATE payments SET hold_expires_ms = $2, hold_extended = 1 WHERE id = $1")
        .bind(&pi.id)
        .bind(until)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::testing::{ledger, pi};
    use crate::ledger::HOLD_KEY;
    use crate::stripe::next_action::BankTransferInstructions;
    use serde_json::json;

    /// A transfer of 5.00 MXN awaited, its seats held until `hold`, its hold capped at `cap`,
    /// due by `pay_by` (Unix ms), `remaining` still owed.
    fn awaited(hold: i64, cap: i64, pay_by: i64, remaining: i64) -> PaymentIntent {
        let mut p = pi("requires_action");
        p.currency = "mxn".into();
        p.payment_method_types = vec!["customer_balance".into()];
        for (key, ms) in [(HOLD_KEY, hold), (HOLD_CAP_KEY, cap), (PAY_BY_KEY, pay_by)] {
            p.metadata.insert(key.into(), json!(iso_ms(ms).unwrap()));
        }
        p.next_action = Some(NextAction::BankTransfer(BankTransferInstructions {
            amount_remaining: Some(remaining),
            ..BankTransferInstructions::default()
        }));
        p
    }

    #[tokio::test]
    async fn a_hold_is_extended_once_to_the_deadline_and_never_beyond_its_cap() {
        let (t, hour) = (1_900_000_000_000, 3_600_000);
        let ledger = ledger().await;
        // Due in two hours, capped at one: the cap wins.
        let first = awaited(t + 600_000, t + hour, t + 2 * hour, 500);
        ledger.record_from_api(&first, 1).await.unwrap();
        let hold = ledger.hold_of("pi_matrix").await.unwrap().unwrap();
        assert_eq!(hold.expires_ms, t + hour);
        let row = ledger.payment("pi_matrix").await.unwrap().unwrap();
        assert_eq!(row.method.as_deref(), Some("customer_balance"));
        // Paid in part, and read again with other marks: the hold stays as it was extended.
        let later = awaited(t + 600_000, t + 9 * hour, t + 9 * hour, 200);
        ledger.record_from_api(&later, 2).await.unwrap();
        let hold = ledger.hold_of("pi_matrix").await.unwrap().unwrap();
        assert_eq!(hold.expires_ms, t + hour);
        let shown = next_action_of(&later).unwrap();
        assert_eq!(shown.amount_remaining.to_string(), "2.00");
        assert_eq!(shown.expires_at, iso_ms(t + 9 * hour));
        // An older read that owes more never raises what is owed again.
        ledger.record_from_api(&first, 3).await.unwrap();
        let owed: Option<i64> =
            sqlx::query_scalar("SELECT amount_remaining FROM payments WHERE id = 'pi_matrix'")
                .fetch_one(&ledger.pool)
                .await
                .unwrap();
        assert_eq!(owed, Some(200));
    }
}
