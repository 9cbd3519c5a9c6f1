//! Disputes on destination charges (docs/contract.md §15, "Disputes"): the dispute debits the
//! platform and Stripe reverses nothing by itself, so the service reverses the disputed amount
//! (at most what is left of the transfer) with the fee refunded in proportion, once per
//! dispute; if the dispute is won, it transfers what it reversed, less the fee that went back
//! with it, to the organiser again, once. `DISPUTE_REVERSE_TRANSFER=false` turns this off.
//!
//! The events that call for these calls only write them down (`ledger::actions`, in their own
//! transaction); this module makes them, outside any transaction, for the Connect worker. Each
//! call goes to Stripe under a key derived from the dispute, with an amount the ledger fixed
//! before Stripe was first asked: a call retried after a crash or by another instance is the
//! very same call, and Stripe answers it with what it did the first time.

use crate::ledger::{action_id, ActionKind, ActionRow, ActionState, DisputeRow, DISPUTE_KEY};
use crate::payments::idempotent::derived_key;
use crate::payments::{Error, Payments};
use crate::stripe::form::Form;
use crate::stripe::types::{OWNER_KEY, OWNER_TAG};

impl Payments {
    /// Makes one pending action. `Ok` once it is recorded as done or skipped; an error leaves
    /// it pending, for the worker to try again later.
    pub async fn carry_out(&self, action: &ActionRow) -> Result<(), Error> {
        if !self.connect.dispute_reverse_transfer {
            return self.skip(action, "DISPUTE_REVERSE_TRANSFER=false").await;
        }
        match action.kind {
            ActionKind::DisputeReversal => self.reverse_for_dispute(action).await,
            ActionKind::DisputeReturn => self.return_for_dispute(action).await,
        }
    }

    async fn skip(&self, action: &ActionRow, why: &str) -> Result<(), Error> {
        tracing::info!(action = %action.id, why, "Connect action skipped");
        self.ledger
            .end_connect_action(&action.id, ActionState::Skipped, None, None, Some(why))
            .await?;
        Ok(())
    }

    /// The dispute opened: the organiser's transfer is reversed by the disputed amount, at
    /// most what is left of it, with the fee refunded in proportion.
    async fn reverse_for_dispute(&self, action: &ActionRow) -> Result<(), Error> {
        let platform = self.stripe.on_account(None);
        let Some(charge) = action.charge_id.as_deref() else {
            return self.skip(action, "the dispute names no charge").await;
        };
        let pi = action.payment_intent_id.as_str();
        let action = match action.amount {
            Some(_) => action.clone(),
            None => {
                let money = platform.charge_money(charge).await?;
                self.ledger.record_connect_money(pi, &money).await?;
                let Some(transfer) = &money.transfer else {
                    return self
                        .skip(action, "not a destination charge: no transfer")
                        .await;
                };
                let disputes: Vec<DisputeRow> = self.ledger.of_payment(pi).await?;
                let disputed = disputes
                    .iter()
                    .find(|d| d.id == action.dispute_id)
                    .map_or(0, |d| d.amount);
                let left = transfer.amount - transfer.amount_reversed;
                let amount = disputed.min(left).max(0);
                let fee_before = money.fee.as_ref().map(|f| f.amount_refunded);
                self.ledger
                    .decide_connect_action(&action.id, amount, Some(&transfer.id), fee_before)
                    .await?;
                // What was decided, by this try or an earlier one (another instance's).
                self.ledger
                    .connect_action(&action.id)
                    .await?
                    .ok_or_else(|| Error::Internal(format!("{} vanished", action.id)))?
            }
        };
        let (Some(amount), Some(transfer)) = (action.amount, action.transfer_id.as_deref()) else {
            return Err(Error::Internal(format!("{} undecided", action.id)));
        };
        if amount == 0 {
            return self
                .skip(&action, "nothing left of the transfer to reverse")
                .await;
        }
        let dispute = action.dispute_id.as_str();
        let mut form = Form::new();
        form.push("amount", amount.to_string())
            .push("refund_application_fee", "true")
            .nested("metadata", DISPUTE_KEY, dispute)
            .nested("metadata", OWNER_KEY, OWNER_TAG);
        let key = derived_key(&[b"dispute-reversal", dispute.as_bytes()]);
        let reversal = platform.reverse_transfer(transfer, &form, &key).await?;
        // What the fee and the transfer are now: the reversal and its share of the fee.
        let money = platform.charge_money(charge).await?;
        self.ledger.record_connect_money(pi, &money).await?;
        let fee_returned = match (action.fee_before, &money.fee) {
            (Some(before), Some(fee)) => Some(fee.amount_refunded - before),
            _ => None,
        };
        self.ledger
            .end_connect_action(
                &action.id,
                ActionState::Done,
                Some(&reversal.id),
                fee_returned,
                None,
            )
            .await?;
        tracing::info!(dispute_id = dispute, payment_intent_id = pi, reversal_id = %reversal.id, amount, "transfer reversed for a dispute");
        metrics::counter!("tmt_connect_actions_total", "kind" => "dispute_reversal").increment(1);
        Ok(())
    }

    /// The dispute was won: what was reversed for it, less the fee that went back with it,
    /// goes to the organiser again.
    async fn return_for_dispute(&self, action: &ActionRow) -> Result<(), Error> {
        let reversal_id = action_id(ActionKind::DisputeReversal, &action.dispute_id);
        let reversal = self.ledger.connect_action(&reversal_id).await?;
        let reversal = match reversal {
            Some(r) if r.state == ActionState::Done => r,
            Some(r) if r.state == ActionState::Pending => {
                return Err(Error::Internal(format!("{reversal_id} is not made yet")));
            }
            _ => {
                return self
                    .skip(action, "no transfer was reversed for the dispute")
                    .await
            }
        };
        let (Some(reversed), Some(transfer)) = (reversal.amount, reversal.transfer_id.as_deref())
        else {
            return self
                .skip(action, "no transfer was reversed for the dispute")
                .await;
        };
        let amount = reversed - reversal.fee_returned.unwrap_or(0);
        if amount <= 0 {
            return self.skip(action, "nothing to give back").await;
        }
        let platform = self.stripe.on_account(None);
        let transfer = platform.retrieve_transfer(transfer).await?;
        let Some(destination) = transfer.destination.as_ref().map(|d| d.id().to_string()) else {
            return self.skip(action, "the transfer names no account").await;
        };
        self.ledger
            .decide_connect_action(&action.id, amount, Some(&transfer.id), None)
            .await?;
        let dispute = action.dispute_id.as_str();
        let mut form = Form::new();
        form.push("amount", amount.to_string())
            .push("currency", transfer.currency.as_str())
            .push("destination", destination.as_str())
            .nested("metadata", DISPUTE_KEY, dispute)
            .nested("metadata", OWNER_KEY, OWNER_TAG);
        if let Some(charge) = &action.charge_id {
            form.push("source_transaction", charge.as_str());
        }
        let key = derived_key(&[b"dispute-return", dispute.as_bytes()]);
        let returned = platform.create_transfer(&form, &key).await?;
        self.ledger
            .end_connect_action(
                &action.id,
                ActionState::Done,
                Some(&returned.id),
                None,
                None,
            )
            .await?;
        tracing::info!(dispute_id = dispute, transfer_id = %returned.id, amount, "transfer given back for a won dispute");
        metrics::counter!("tmt_connect_actions_total", "kind" => "dispute_return").increment(1);
        Ok(())
    }
}
