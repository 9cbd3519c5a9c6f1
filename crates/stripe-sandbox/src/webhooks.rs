//! Delivering the sandbox's events: signed like Stripe's (`t=…,v1=…`), first attempts in order,
//! one at a time, each failed event retried on its own with exponential backoff until the
//! endpoint answers 2xx. What is still owed is in the state file, so a restart resumes it.

use std::sync::Weak;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::mpsc;

use crate::shared::{Deliveries, Shared};
use crate::store::Kind;

#[derive(Clone)]
pub struct WebhookTarget {
    pub url: String,
    pub secret: String,
    /// Attempts per event before it is given up (Stripe itself tries for three days).
    pub max_attempts: u32,
    /// Wait before the first retry; doubled for each later one, up to five minutes.
    pub first_retry: Duration,
}

impl WebhookTarget {
    pub fn new(url: String, secret: String) -> Self {
        WebhookTarget {
            url,
            secret,
            // About a day and a half at the 5-minute cap.
            max_attempts: 500,
            first_retry: Duration::from_millis(500),
        }
    }
}

/// The `Stripe-Signature` header for `body` signed with `secret` at `timestamp`: an HMAC-SHA256
/// of `"{timestamp}.{body}"`, hex-encoded, as Stripe documents it.
pub fn sign(body: &[u8], secret: &str, timestamp: i64) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// Starts delivering to `target` the events queued on the returned sender.
pub(crate) fn start(target: WebhookTarget, sandbox: Weak<Shared>) -> Deliveries {
    let (queue, mut pending) = mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .user_agent("Stripe/1.0 (+https://stripe.com/docs/webhooks)")
            .build()
            .expect("HTTP client builds");
        // First attempts go out in order, one at a time; an event that fails is retried on
        // its own schedule, so that it never holds up the ones behind it.
        while let Some(event_id) = pending.recv().await {
            match attempt(&http, &target, &sandbox, &event_id, 1).await {
                Attempt::Done => continue,
                Attempt::Failed => {}
            }
            let (http, target, sandbox) = (http.clone(), target.clone(), sandbox.clone());
            tokio::spawn(async move {
                retry(&http, &target, &sandbox, &event_id).await;
            });
        }
    });
    queue
}

enum Attempt {
    /// Delivered, dropped or no longer owed: nothing more to do.
    Done,
    Failed,
}

/// Attempts 2..=max_attempts with exponential backoff.
async fn retry(
    http: &reqwest::Client,
    target: &WebhookTarget,
    sandbox: &Weak<Shared>,
    event_id: &str,
) {
    let mut wait = target.first_retry;
    for n in 2..=target.max_attempts {
        tokio::time::sleep(wait).await;
        if let Attempt::Done = attempt(http, target, sandbox, event_id, n).await {
            return;
        }
        wait = (wait * 2).min(Duration::from_secs(300));
    }
    tracing::error!(
        event_id,
        "sandbox webhook given up after {} attempts",
        target.max_attempts
    );
    if let Some(inner) = sandbox.upgrade() {
        // Still counted in pending_webhooks, as at Stripe, but no longer owed after a restart.
        finish(&inner, event_id, None).await;
    }
}

/// Removes the delivery from what is owed; `pending_webhooks` becomes `pending` when given.
async fn finish(inner: &Shared, event_id: &str, pending: Option<i64>) {
    let mut state = inner.state.lock().await;
    state.store.remove_delivery(event_id);
    if let Some(p) = pending {
        state.store.set_pending_webhooks(event_id, p);
    }
    if let Err(e) = state.persist().await {
        tracing::error!(event_id, error = %e, "the sandbox could not record a delivery");
    }
}

/// One delivery, signed afresh as Stripe does on every attempt.
async fn attempt(
    http: &reqwest::Client,
    target: &WebhookTarget,
    sandbox: &Weak<Shared>,
    event_id: &str,
    n: u32,
) -> Attempt {
    let Some(inner) = sandbox.upgrade() else {
        return Attempt::Done;
    };
    if inner.dropping() {
        tracing::info!(event_id, "sandbox webhook dropped (drop switch is on)");
        finish(&inner, event_id, None).await;
        return Attempt::Done;
    }
    let event = {
        let state = inner.state.lock().await;
        state.store.value(Kind::Event, event_id).cloned()
    };
    let Some(event) = event else {
        return Attempt::Done;
    };
    let body = serde_json::to_string_pretty(&event).unwrap_or_default();
    let event_type = event["type"].as_str().unwrap_or_default();
    let header = sign(body.as_bytes(), &target.secret, crate::store::now());
    let result = http
        .post(&target.url)
        .header("content-type", "application/json; charset=utf-8")
        .header("stripe-signature", header)
        .body(body)
        .send()
        .await;
    match result {
        Ok(r) if r.status().is_success() => {
            tracing::debug!(
                event_id,
                event_type,
                attempt = n,
                "sandbox webhook delivered"
            );
            finish(&inner, event_id, Some(0)).await;
            Attempt::Done
        }
        Ok(r) => {
            tracing::warn!(
                event_id,
                event_type,
                attempt = n,
                status = r.status().as_u16(),
                "sandbox webhook refused"
            );
            Attempt::Failed
        }
        Err(e) => {
            tracing::warn!(event_id, event_type, attempt = n, error = %e, "sandbox webhook not delivered");
            Attempt::Failed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_stripes_documented_scheme() {
        // HMAC-SHA256("whsec_test", "1700000000.{}"), computed independently.
        let header = sign(b"{}", "whsec_test", 1_700_000_000);
        assert_eq!(
            header,
            "t=1700000000,v1=35495024f4ef3f94e5a93e22221544c4b75e9a42300cd965ab81cb85cd994e91"
        );
        assert_ne!(header, sign(b"{} ", "whsec_test", 1_700_000_000));
        assert_ne!(header, sign(b"{}", "whsec_other", 1_700_000_000));
    }
}
