//! Reconciliation (docs/contract.md §12): the ledger heals itself from Stripe's event log.
//! Events are listed from a time on and applied exactly as if their webhooks had arrived
//! (recorded once by id, with `source = reconcile`); PaymentIntents of ours that Stripe has and
//! the ledger lacks (a create answered an error after Stripe made it) are adopted; payments
//! that are not final and have not changed for a while are read again. Under Stripe Connect
//! every organiser's connected account is listed too, one at a time.

use serde::Serialize;
use serde_json::Value;

use super::request::ORGANIZER_KEY;
use super::{count_dispute_opened, round, Error, Payments};
use crate::ledger::{ChargeType, ConnectNote, EventSource, IncomingEvent, Ledger, Outcome};
use crate::stripe::types::{Event, EventType, List, PaymentIntent, PaymentIntentId};
use crate::stripe::StripeClient;

/// Payments that are not final are read again once they have not changed for this long.
pub const STALE_SECS: i64 = 600;
/// The most stale payments one round reads again (each is a Stripe call).
const STALE_BATCH: i64 = 100;
/// How many events share one commit.
const CHUNK: usize = 100;
/// The round's name in logs and metrics.
const ROUND: &str = "reconciliation";
/// Stripe's limit on `types[]` in one events listing.
const MAX_TYPES_PER_LISTING: usize = 20;

/// What a round found and repaired.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Report {
    /// Unix seconds the round listed from.
    pub since: i64,
    /// Events Stripe listed.
    pub events_listed: usize,
    /// Events the ledger had never received, now recorded.
    pub events_recorded: usize,
    /// Of those, events that moved the ledger (the repairs a lost webhook needed).
    pub events_applied: usize,
    /// PaymentIntents of ours the ledger lacked, now adopted.
    pub orphans_adopted: usize,
    /// Organisers' connected accounts whose events and PaymentIntents were listed too
    /// (Stripe Connect).
    pub accounts_listed: usize,
    /// Organisers' connected accounts Stripe refused to list for good (a 4xx other than 429):
    /// left out of the round, which went on with the others.
    pub accounts_left_out: usize,
    /// Stale payments read again whose status changed.
    pub payments_refreshed: usize,
}

impl Payments {
    /// One round, from `since` (Unix seconds).
    pub async fn reconcile(&self, since: i64) -> Result<Report, Error> {
        let mut report = Report {
            since,
            ..Report::default()
        };
        self.reconcile_events(&self.stripe, since, &mut report)
            .await?;
        self.adopt_orphans(&self.stripe, since, &mut report).await?;
        // Each organiser's connected account, one at a time, inside the same budget: its own
        // events (its status; a direct charge's payment, refunds and disputes) and PaymentIntents.
        for account in self.ledger.organizer_accounts().await? {
            let on_account = self.stripe.on_account(Some(&account));
            let listed = async {
                self.reconcile_events(&on_account, since, &mut report)
                    .await?;
                self.adopt_orphans(&on_account, since, &mut report).await
            };
            match listed.await {
                Ok(()) => report.accounts_listed += 1,
                Err(e) if round::leaves_account_out(ROUND, &account, &e) => {
                    report.accounts_left_out += 1;
                }
                Err(e) => return Err(e),
            }
        }
        self.refresh_stale(&mut report).await?;
        for (kind, n) in [
            ("event", report.events_applied),
            ("orphan", report.orphans_adopted),
            ("payment", report.payments_refreshed),
        ] {
            metrics::counter!("tmt_reconcile_repaired_total", "kind" => kind).increment(n as u64);
        }
        round::succeeded(
            ROUND,
            "tmt_reconcile_last_success_timestamp_seconds",
            &report,
        );
        Ok(report)
    }

    /// Lists the events of the account `stripe` acts for (the platform's, or a connected
    /// account's) and applies those the ledger missed.
    async fn reconcile_events(
        &self,
        stripe: &StripeClient,
        since: i64,
        report: &mut Report,
    ) -> Result<(), Error> {
        let types = EventType::reconciled();
        let mut listed: Vec<Value> = Vec::new();
        // Stripe takes at most 20 types a listing; a type is in one group only, so no event is
        // listed twice.
        for group in types.chunks(MAX_TYPES_PER_LISTING) {
            let mut after: Option<String> = None;
            loop {
                let page = stripe.list_events(since, group, after.as_deref()).await?;
                after = next_after(&page);
                listed.extend(page.data);
                if after.is_none() {
                    break;
                }
            }
        }
        report.events_listed = listed.len();
        // The ledger takes them in the order they happened (Stripe lists newest first; the
        // groups' listings are merged by time, ties by Stripe's order within a listing).
        listed.reverse();
        listed.sort_by_key(|e| e.get("created").and_then(Value::as_i64).unwrap_or(0));
        let incoming: Vec<IncomingEvent> = listed
            .iter()
            .filter_map(|value| {
                let mut event: Event = serde_json::from_value(value.clone()).ok()?;
                // Listed for a connected account: the account's, whether it says so or not.
                if event.account.is_none() {
                    event.account = stripe.account().map(str::to_string);
                }
                Some(IncomingEvent::from_event(
                    &event,
                    value.to_string(),
                    EventSource::Reconcile,
                ))
            })
            .collect();
        for chunk in incoming.chunks(CHUNK) {
            let outcomes = self.ledger.apply_events(chunk).await?;
            for (event, outcome) in chunk.iter().zip(outcomes) {
                count_dispute_opened(&event.event_type, outcome);
                if outcome != Outcome::Duplicate {
                    report.events_recorded += 1;
                }
                if outcome == Outcome::Applied {
                    report.events_applied += 1;
                }
            }
        }
        Ok(())
    }

    /// Adopts the PaymentIntents of ours on the account `stripe` acts for that the ledger lacks,
    /// and finishes an adoption a stopped round left half done (the payment written, what it
    /// keeps for its organiser not yet).
    async fn adopt_orphans(
        &self,
        stripe: &StripeClient,
        since: i64,
        report: &mut Report,
    ) -> Result<(), Error> {
        let mut after: Option<String> = None;
        loop {
            let read_at = chrono::Utc::now().timestamp();
            let page = stripe.list_payment_intents(since, after.as_deref()).await?;
            for value in &page.data {
                let Some(pi) = PaymentIntent::from_value(value) else {
                    continue;
                };
                if !pi.is_ours() {
                    continue;
                }
                match self.ledger.connect_of(&pi.id).await? {
                    None => {
                        self.ledger.record_from_api(&pi, read_at).await?;
                        adopt_for_organizer(&self.ledger, &pi, stripe.account()).await?;
                        report.orphans_adopted += 1;
                        tracing::warn!(payment_intent_id = %pi.id, status = %pi.status, "adopted a PaymentIntent the ledger lacked");
                    }
                    Some(kept) if kept.organizer_id.is_none() => {
                        if adopt_for_organizer(&self.ledger, &pi, stripe.account()).await? {
                            tracing::warn!(payment_intent_id = %pi.id, "finished the adoption of a PaymentIntent a stopped round left half done");
                        }
                    }
                    Some(_) => {}
                }
            }
            after = next_after(&page);
            if after.is_none() {
                return Ok(());
            }
        }
    }

    async fn refresh_stale(&self, report: &mut Report) -> Result<(), Error> {
        for id in self.ledger.stale_payments(STALE_SECS, STALE_BATCH).await? {
            let Some(pi_id) = PaymentIntentId::parse(&id) else {
                continue;
            };
            let before = self.ledger.payment(&id).await?.map(|p| p.status);
            let now = match self.read(&pi_id).await {
                Ok(now) => now,
                // One PaymentIntent Stripe does not know (deleted test data, another account's
                // id) must not stop the round, nor every later one: it is logged and skipped.
                Err(Error::StripeRefused(refused)) if refused.status == 404 => {
                    tracing::warn!(payment_intent_id = %id, "stale payment unknown to Stripe; left as it is");
                    continue;
                }
                Err(e) => return Err(e),
            };
            if before.as_ref() != Some(&now.status) {
                report.payments_refreshed += 1;
            }
        }
        Ok(())
    }
}

/// What an adopted PaymentIntent made for an organiser keeps besides: its organiser, its fee,
/// and how its money went (the account it was listed for: a direct charge's). Whether it was
/// made for one (and so written).
async fn adopt_for_organizer(
    ledger: &Ledger,
    pi: &PaymentIntent,
    account: Option<&str>,
) -> Result<bool, Error> {
    let Some(organizer_id) = pi.metadata.get(ORGANIZER_KEY).and_then(Value::as_str) else {
        return Ok(false);
    };
    let charge_type = match (account, pi.destination()) {
        (Some(_), _) => ChargeType::Direct,
        (None, Some(_)) => ChargeType::Destination,
        (None, None) => return Ok(false),
    };
    let note = ConnectNote {
        organizer_id,
        charge_type,
        stripe_account: account,
        application_fee: pi.application_fee_amount.unwrap_or(0),
    };
    ledger.note_connect(&pi.id, &note).await?;
    Ok(true)
}

/// Where a listing goes on after `page`: its last object's id, when Stripe has more.
pub(super) fn next_after(page: &List<Value>) -> Option<String> {
    if !page.has_more {
        return None;
    }
    let last = page.data.last()?;
    last.get("id").and_then(Value::as_str).map(str::to_string)
}
