//! Stripe's webhook deliveries (docs/contract.md, "Webhook"): verified on the raw bytes,
//! recorded and applied once each, on disk before they are acknowledged.

use super::{count_dispute_opened, Error, Payments};
use crate::ledger::{EventSource, IncomingEvent, Outcome};
use crate::stripe::signature;
use crate::stripe::types::{Event, EventType};

impl Payments {
    /// Verifies, records and applies one delivery. `Ok` means it is on disk (or was already).
    pub async fn webhook(
        &self,
        signature_header: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<Outcome, Error> {
        signature::verify(
            signature_header,
            body,
            &self.webhook.secrets,
            self.webhook.tolerance_secs,
            now,
        )?;
        let payload = std::str::from_utf8(body).map_err(|_| Error::EventInvalid)?;
        let event: Event = serde_json::from_str(payload).map_err(|_| Error::EventInvalid)?;
        let is_event = event.object.as_deref().is_none_or(|o| o == "event");
        if event.id.is_empty() || event.event_type.as_str().is_empty() || !is_event {
            return Err(Error::EventInvalid);
        }
        let incoming = IncomingEvent::from_event(&event, payload.to_string(), EventSource::Webhook);
        let status = incoming.payment_status().map(str::to_string);
        let payment_intent_id = incoming.payment_intent_id.clone();
        let outcome = self
            .events
            .apply(incoming)
            .await
            .map_err(Error::WebhookNotRecorded)?;
        metrics::counter!(
            "tmt_webhook_events_total",
            "type" => event.event_type.to_string(),
            "outcome" => outcome.as_str()
        )
        .increment(1);
        count_dispute_opened(&event.event_type, outcome);
        if let (Outcome::Applied, Some(status)) = (outcome, status) {
            metrics::counter!(
                "tmt_payment_status_updates_total",
                "status" => status,
                "source" => "webhook"
            )
            .increment(1);
        }
        let message = match (&event.event_type, outcome) {
            (_, Outcome::Duplicate) => "webhook event already recorded",
            (EventType::PaymentIntentSucceeded, _) => "PaymentIntent succeeded",
            (EventType::PaymentIntentPaymentFailed, _) => "PaymentIntent failed",
            (_, Outcome::Unhandled) => "unhandled webhook event",
            _ => "webhook event",
        };
        tracing::info!(
            event_id = %event.id,
            event_type = %event.event_type,
            payment_intent_id,
            outcome = outcome.as_str(),
            "{message}"
        );
        Ok(outcome)
    }
}
