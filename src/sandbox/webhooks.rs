//! Delivering the sandbox's events: signed like Stripe's (`t=…,v1=…`), in order, one at a time,
//! retried with exponential backoff until the endpoint answers 2xx.

use std::sync::Weak;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;

use super::Inner;
use crate::stripe::signature;

#[derive(Clone)]
pub struct WebhookTarget {
    pub url: String,
    pub secret: String,
    /// Attempts per event before it is given up (Stripe itself tries for three days).
    pub max_attempts: u32,
    /// Wait before the first retry; doubled for each later one, up to a minute.
    pub first_retry: Duration,
}

impl WebhookTarget {
    pub fn new(url: String, secret: String) -> Self {
        WebhookTarget {
            url,
            secret,
            max_attempts: 12,
            first_retry: Duration::from_millis(500),
        }
    }
}

pub struct Delivery {
    queue: mpsc::UnboundedSender<Value>,
}

impl Delivery {
    pub(super) fn start(target: WebhookTarget, sandbox: Weak<Inner>) -> Self {
        let (queue, mut pending) = mpsc::unbounded_channel::<Value>();
        tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .user_agent("Stripe/1.0 (+https://stripe.com/docs/webhooks)")
                .build()
                .expect("HTTP client builds");
            while let Some(event) = pending.recv().await {
                let id = event["id"].as_str().unwrap_or_default().to_string();
                if deliver(&http, &target, &event).await {
                    match sandbox.upgrade() {
                        Some(inner) => inner.mark_delivered(&id),
                        None => break,
                    }
                }
            }
        });
        Delivery { queue }
    }

    pub(super) fn enqueue(&self, event: Value) {
        let _ = self.queue.send(event);
    }
}

/// Tries until a 2xx or `max_attempts`; every attempt is signed afresh, as Stripe does.
async fn deliver(http: &reqwest::Client, target: &WebhookTarget, event: &Value) -> bool {
    let body = serde_json::to_string_pretty(event).unwrap_or_default();
    let event_id = event["id"].as_str().unwrap_or_default();
    let event_type = event["type"].as_str().unwrap_or_default();
    let mut wait = target.first_retry;
    for attempt in 1..=target.max_attempts {
        let header = signature::sign(
            body.as_bytes(),
            &target.secret,
            chrono::Utc::now().timestamp(),
        );
        let result = http
            .post(&target.url)
            .header("content-type", "application/json; charset=utf-8")
            .header("stripe-signature", header)
            .body(body.clone())
            .send()
            .await;
        match result {
            Ok(r) if r.status().is_success() => {
                tracing::debug!(event_id, event_type, attempt, "sandbox webhook delivered");
                return true;
            }
            Ok(r) => tracing::warn!(
                event_id,
                event_type,
                attempt,
                status = r.status().as_u16(),
                "sandbox webhook refused"
            ),
            Err(e) => {
                tracing::warn!(event_id, event_type, attempt, error = %e, "sandbox webhook not delivered")
            }
        }
        if attempt < target.max_attempts {
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(60));
        }
    }
    tracing::error!(
        event_id,
        event_type,
        "sandbox webhook given up after {} attempts",
        target.max_attempts
    );
    false
}
