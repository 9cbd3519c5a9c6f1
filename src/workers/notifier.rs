//! Delivers fulfilment notifications (docs/contract.md §11) to the platform's `FULFILMENT_URL`,
//! signed like Stripe signs its webhooks (`TMT-Signature: t=…,v1=…`, HMAC-SHA256 of
//! `"{t}.{body}"` with `FULFILMENT_SECRET`), so that the platform verifies them with the code it
//! already has for Stripe's.
//!
//! A 2xx within 10 s is delivered; anything else is retried with exponential backoff from 1 s,
//! doubling, capped at 1 h, for 3 days, then the notification is `failed`. Each is sent by one
//! instance at a time under a lease another instance takes over if this one dies; a payment's
//! notifications go out in order (the ledger hands out only the first pending one of each).

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::ledger::{Delivery, Leased, Ledger};
use crate::stripe::signature;

/// How long a notification is this instance's once taken: well beyond one try's 10 s.
const LEASE_MS: i64 = 30_000;
const TIMEOUT: Duration = Duration::from_secs(10);
const FIRST_RETRY: Duration = Duration::from_secs(1);
const LONGEST_RETRY: Duration = Duration::from_secs(3600);
const GIVE_UP_AFTER_SECS: i64 = 3 * 24 * 3600;
/// How many notifications one round takes (of different payments, sent concurrently).
const BATCH: i64 = 16;
/// How long an idle notifier waits before looking again.
const IDLE: Duration = Duration::from_millis(250);

/// The platform's fulfilment endpoint (`FULFILMENT_URL`) and the secret its notifications are
/// signed with (`FULFILMENT_SECRET`).
#[derive(Clone)]
pub struct Fulfilment {
    pub url: url::Url,
    pub secret: SecretString,
}

pub struct Notifier {
    ledger: Ledger,
    http: reqwest::Client,
    target: Fulfilment,
    instance: String,
}

/// The wait before the retry that follows `attempts` failed tries.
pub fn backoff(attempts: i64) -> Duration {
    let doublings = attempts.clamp(0, 20) as u32;
    FIRST_RETRY
        .saturating_mul(1u32 << doublings)
        .min(LONGEST_RETRY)
}

impl Notifier {
    pub fn new(ledger: Ledger, target: Fulfilment, instance: String) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("tmt-payments/", env!("CARGO_PKG_VERSION")))
            .timeout(TIMEOUT)
            .build()?;
        Ok(Notifier {
            ledger,
            http,
            target,
            instance,
        })
    }

    /// Delivers until the task is aborted.
    pub async fn run(self) {
        loop {
            match self.round().await {
                Ok(0) => tokio::time::sleep(IDLE).await,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "notification round failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// One round: what is due is taken and tried once; how many were tried.
    pub async fn round(&self) -> anyhow::Result<usize> {
        let due = self
            .ledger
            .lease_due_notifications(&self.instance, LEASE_MS, BATCH)
            .await?;
        let tries = due.iter().map(|n| async move {
            let outcome = self.try_once(n).await;
            let label = match &outcome {
                Delivery::Delivered => "delivered",
                Delivery::Retry { .. } => "retry",
                Delivery::Failed { .. } => "failed",
            };
            metrics::counter!("tmt_notification_attempts_total", "outcome" => label).increment(1);
            if let Delivery::Failed { error } = &outcome {
                tracing::error!(notification = %n.id, payment_intent_id = %n.payment_intent_id, error = %error, "notification failed for good");
            }
            let kept = self
                .ledger
                .settle_notification(&n.id, &self.instance, outcome)
                .await;
            if let Ok(false) = kept {
                tracing::warn!(notification = %n.id, "lease lost while sending; another instance has it");
            }
            kept
        });
        let tried = futures_util::future::join_all(tries).await;
        for result in &tried {
            if let Err(e) = result {
                tracing::warn!(error = %e, "could not record a notification's outcome");
            }
        }
        if let Ok((pending, oldest)) = self.ledger.pending_notifications().await {
            metrics::gauge!("tmt_notifications_pending").set(pending as f64);
            metrics::gauge!("tmt_notifications_oldest_pending_seconds").set(oldest as f64);
        }
        Ok(due.len())
    }

    async fn try_once(&self, n: &Leased) -> Delivery {
        let t = chrono::Utc::now().timestamp();
        let header = signature::sign(n.body.as_bytes(), self.target.secret.expose_secret(), t);
        let answer = self
            .http
            .post(self.target.url.clone())
            .header("content-type", "application/json")
            .header("TMT-Signature", header)
            .body(n.body.clone())
            .send()
            .await;
        let error = match answer {
            Ok(r) if r.status().is_success() => {
                tracing::info!(notification = %n.id, payment_intent_id = %n.payment_intent_id, "notification delivered");
                return Delivery::Delivered;
            }
            Ok(r) => format!("the receiver answered HTTP {}", r.status().as_u16()),
            Err(e) if e.is_timeout() => "no answer within 10 s".to_string(),
            Err(e) if e.is_connect() => "could not connect".to_string(),
            Err(_) => "the request failed".to_string(),
        };
        if t - n.created > GIVE_UP_AFTER_SECS {
            return Delivery::Failed { error };
        }
        let at = chrono::Utc::now().timestamp_millis() + backoff(n.attempts).as_millis() as i64;
        tracing::warn!(notification = %n.id, attempts = n.attempts + 1, error = %error, "notification not delivered; will retry");
        Delivery::Retry { at, error }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_a_second_to_an_hour() {
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(5), Duration::from_secs(32));
        assert_eq!(backoff(12), Duration::from_secs(3600));
        assert_eq!(backoff(60), Duration::from_secs(3600));
    }
}
