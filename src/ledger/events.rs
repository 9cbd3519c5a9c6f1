//! Webhook events: each recorded once by its id, together with its effect on the ledger, in one
//! transaction.

use serde::Serialize;
use serde_json::Value;
use sqlx::FromRow;

use super::actions::note_dispute;
use super::connect::{note_from_charge, note_from_payment_event};
use super::customers::{apply_cash_transaction, apply_funds_available};
use super::organizers::{apply_account, deauthorize};
use super::payments::apply_to_payment;
use super::payouts::apply_payout;
use super::refunds::{apply_charge, apply_movement, keep_listed_charges};
use super::rows::{Chronology, Listed, OfPayment};
use super::sql::Source;
use super::stored::{EventSource, Outbox, Outcome};
use super::{now_iso, Ledger, LedgerError};
use crate::stripe::balance::Payout;
use crate::stripe::connect::Account;
use crate::stripe::customers::{CashBalance, CashBalanceTransaction};
use crate::stripe::types::{
    ChargeRef, Dispute, Event, EventObjectKind, EventType, PaymentIntent, Refund,
};

/// How many times an event transaction is tried when PostgreSQL aborts it for a conflict.
const CONFLICT_TRIES: u64 = 6;

/// What an event does to the ledger once recorded.
#[derive(Debug, Clone)]
pub enum Effect {
    /// A PaymentIntent event of a type that moves the payment's status.
    Payment(Box<PaymentIntent>),
    /// A refund created or moved (`refund.*`, `charge.refund.updated`).
    Refund(Box<Refund>),
    /// A dispute opened or moved (`charge.dispute.*`).
    Dispute(Box<Dispute>),
    /// A Charge object to keep (`charge.*`), with the refunds it may embed.
    Charge(Box<ChargeRef>, Box<Value>),
    /// A connected account's new status (`account.updated`).
    Account(Box<Account>),
    /// A connected account left the platform (`account.application.deauthorized`): its id.
    Deauthorized(String),
    /// Money reached or left a customer's cash balance.
    CashTransaction(Box<CashBalanceTransaction>),
    /// A customer's cash balance holds money no payment took.
    FundsAvailable(Box<CashBalance>),
    /// A payout created or moved (`payout.*`).
    Payout(Box<Payout>),
    /// Recorded only.
    None,
}

/// A verified webhook event, reduced to what the ledger needs.
#[derive(Debug, Clone)]
pub struct IncomingEvent {
    pub id: String,
    pub event_type: EventType,
    /// Unix seconds at which Stripe created the event.
    pub created: i64,
    pub payment_intent_id: Option<String>,
    pub effect: Effect,
    /// The raw body, as Stripe signed it (or listed it).
    pub payload: String,
    pub source: EventSource,
    /// The connected account the event happened on (Connect), if any.
    pub account: Option<String>,
}

impl IncomingEvent {
    /// Reads what the ledger needs from an event. An object that its type says is a
    /// PaymentIntent but that cannot be read as one is recorded without effect (and logged).
    pub fn from_event(event: &Event, payload: String, source: EventSource) -> IncomingEvent {
        let object = &event.data.object;
        let is_payment_intent = object.get("object").and_then(Value::as_str)
            == Some("payment_intent")
            || event.event_type.object_kind() == EventObjectKind::PaymentIntent;
        let payment_intent_id = if is_payment_intent {
            object.get("id")
        } else {
            object.get("payment_intent")
        }
        .and_then(Value::as_str)
        .map(str::to_string);
        let effect = match event.event_type.object_kind() {
            _ if event.event_type.moves_payment() => {
                PaymentIntent::from_value(object).map(|pi| Effect::Payment(Box::new(pi)))
            }
            EventObjectKind::Refund => {
                Refund::from_value(object).map(|r| Effect::Refund(Box::new(r)))
            }
            EventObjectKind::Dispute => {
                Dispute::from_value(object).map(|d| Effect::Dispute(Box::new(d)))
            }
            EventObjectKind::Charge => ChargeRef::from_value(object)
                .map(|c| Effect::Charge(Box::new(c), Box::new(object.clone()))),
            EventObjectKind::Account if event.event_type == EventType::AccountDeauthorized => {
                event.account.clone().map(Effect::Deauthorized)
            }
            EventObjectKind::Account => {
                Account::from_value(object).map(|a| Effect::Account(Box::new(a)))
            }
            EventObjectKind::CashBalance
                if event.event_type == EventType::CashBalanceFundsAvailable =>
            {
                CashBalance::from_value(object).map(|b| Effect::FundsAvailable(Box::new(b)))
            }
            EventObjectKind::CashBalance => CashBalanceTransaction::from_value(object)
                .map(|t| Effect::CashTransaction(Box::new(t))),
            EventObjectKind::Payout => {
                Payout::from_value(object).map(|p| Effect::Payout(Box::new(p)))
            }
            EventObjectKind::PaymentIntent | EventObjectKind::Unknown => Some(Effect::None),
        }
        .unwrap_or_else(|| {
            tracing::warn!(
                event_id = %event.id,
                event_type = %event.event_type,
                "event object is not what its type says; recorded as unhandled"
            );
            Effect::None
        });
        IncomingEvent {
            id: event.id.clone(),
            event_type: event.event_type.clone(),
            created: event.created,
            payment_intent_id,
            effect,
            payload,
            source,
            account: event.account.clone(),
        }
    }

    /// The status the event brings, for PaymentIntent events that move the ledger.
    pub fn payment_status(&self) -> Option<&str> {
        match &self.effect {
            Effect::Payment(pi) => Some(pi.status.as_str()),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, FromRow)]
pub struct EventRow {
    pub id: String,
    /// As Stripe sent it: a type this build does not know is kept as it was.
    #[serde(rename = "type")]
    #[sqlx(rename = "type", try_from = "String")]
    pub event_type: EventType,
    pub payment_intent_id: Option<String>,
    pub received_at: String,
    pub outcome: Outcome,
    pub source: EventSource,
}

impl Listed for EventRow {
    const SELECT: &'static str =
        "SELECT id, type, payment_intent_id, received_at, outcome, source FROM webhook_events";
    const ORDER: Chronology = Chronology::Written;
}
impl OfPayment for EventRow {}

impl Ledger {
    /// Records the event and applies it, in one transaction. A repeated id writes nothing.
    pub async fn apply_event(&self, event: &IncomingEvent) -> Result<Outcome, LedgerError> {
        let mut outcomes = self.apply_events(std::slice::from_ref(event)).await?;
        Ok(outcomes.pop().unwrap_or(Outcome::Duplicate))
    }

    /// Records and applies several events in one transaction, so that they share one commit
    /// (one fsync); each event's record and effect stay together. Outcomes are in input order.
    /// A transaction that PostgreSQL aborts for a deadlock with another instance's (each event
    /// locks its own row and its payment's, so two batches can wait on each other whatever
    /// their order) kept nothing, and is tried again after a short, random pause.
    pub async fn apply_events(
        &self,
        events: &[IncomingEvent],
    ) -> Result<Vec<Outcome>, LedgerError> {
        let mut tries = 1;
        loop {
            let result = self.watch(self.apply_events_once(events).await);
            match result {
                Err(e) if e.is_transient_conflict() && tries < CONFLICT_TRIES => {
                    metrics::counter!("tmt_ledger_conflicts_retried_total").increment(1);
                    tracing::debug!(error = %e, tries, "event transaction aborted by a conflict; trying again");
                    let pause = rand::random::<u64>() % (20 * tries);
                    tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                    tries += 1;
                }
                result => return result,
            }
        }
    }

    async fn apply_events_once(
        &self,
        events: &[IncomingEvent],
    ) -> Result<Vec<Outcome>, LedgerError> {
        let now = now_iso();
        let mut tx = self.pool.begin().await?;
        let mut outcomes = Vec::with_capacity(events.len());
        for event in events {
            outcomes.push(record_and_apply(&mut tx, self.outbox, event, &now).await?);
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    /// Newest first (by arrival).
    pub async fn list_events(&self, limit: i64) -> Result<Vec<EventRow>, LedgerError> {
        let sql = format!(
            "{} ORDER BY {} LIMIT $1",
            EventRow::SELECT,
            EventRow::ORDER.newest_first()
        );
        self.fetch_all(sqlx::query(&sql).bind(limit)).await
    }

    /// The raw payload of one event, as Stripe signed it.
    pub async fn event_payload(&self, id: &str) -> Result<Option<String>, LedgerError> {
        Ok(
            sqlx::query_scalar("SELECT payload FROM webhook_events WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }
}

/// One event inside the caller's transaction: the insert comes first (it takes SQLite's write
/// lock at once and decides duplicates, an earlier copy in the same batch included), recorded
/// with its likely outcome and corrected in the rarer cases.
async fn record_and_apply(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    outbox: Outbox,
    event: &IncomingEvent,
    now: &str,
) -> Result<Outcome, sqlx::Error> {
    let likely = match event.effect {
        Effect::None => Outcome::Unhandled,
        _ => Outcome::Applied,
    };
    let inserted = sqlx::query(
        "INSERT INTO webhook_events (id, type, payment_intent_id, received_at, outcome, payload,
                                     source)
         VALUES ($1, $2, $3, $4, $6, $5, $7)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(&event.id)
    .bind(event.event_type.as_str())
    .bind(&event.payment_intent_id)
    .bind(now)
    .bind(&event.payload)
    .bind(likely)
    .bind(event.source)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(Outcome::Duplicate);
    }
    let source = Source {
        event_id: Some(&event.id),
        at: event.created,
    };
    let outcome = match &event.effect {
        Effect::None => Outcome::Unhandled,
        Effect::Payment(pi) => {
            let outcome = apply_to_payment(tx, outbox, pi, source, now).await?;
            note_from_payment_event(tx, pi, event.account.as_deref()).await?;
            if let Some(embedded) = &pi.charges {
                keep_listed_charges(tx, &pi.id, &embedded.data, event.created).await?;
            }
            outcome
        }
        Effect::Refund(refund) => apply_movement(tx, outbox, refund.as_ref(), source).await?,
        Effect::Dispute(dispute) => {
            let outcome = apply_movement(tx, outbox, dispute.as_ref(), source).await?;
            note_dispute(tx, dispute).await?;
            outcome
        }
        Effect::Charge(charge, raw) => {
            let outcome = apply_charge(tx, outbox, charge, raw, source).await?;
            if let Some(payment_intent_id) = charge.payment_intent_id() {
                note_from_charge(tx, payment_intent_id, raw).await?;
            }
            outcome
        }
        Effect::Account(account) => apply_account(tx, account, source).await?,
        Effect::Deauthorized(account) => deauthorize(tx, account, source).await?,
        Effect::CashTransaction(transaction) => {
            apply_cash_transaction(tx, transaction, event.account.as_deref()).await?
        }
        Effect::FundsAvailable(balance) => {
            let account = event.account.as_deref();
            apply_funds_available(tx, outbox, balance, account, source).await?
        }
        Effect::Payout(payout) => {
            apply_payout(tx, payout, event.account.as_deref(), source).await?
        }
    };
    if outcome != likely {
        sqlx::query("UPDATE webhook_events SET outcome = $2 WHERE id = $1")
            .bind(&event.id)
            .bind(outcome)
            .execute(&mut **tx)
            .await?;
    }
    Ok(outcome)
}
