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
    /// Wait before the first retry; doubled for each later one, up to five minutes.
    pub first_retry: Duration,
}

impl WebhookTarget {
    pub fn new(url: String, secret: String) -> Self {
        WebhookTarget {
            url,
            secret,
            // About a day and a half at the 5-minute cap; Stripe itself keeps trying for 3 days.
            max_attempts: 500,
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
            // First attempts go out in order, one at a time; an event that fails is retried on
            // its own schedule, so that it never holds up the ones behind it.
            while let Some(event) = pending.recv().await {
                if attempt(&http, &target, &event, 1).await {
                    delivered(&sandbox, &event);
                    continue;
                }
                let (http, target, sandbox) = (http.clone(), target.clone(), sandbox.clone());
                tokio::spawn(async move {
                    if retry(&http, &target, &event).await {
                        delivered(&sandbox, &event);
                    }
                });
            }
        });
        Delivery { queue }
    }

    pub(super) fn enqueue(&self, event: Value) {
        let _ = self.queue.send(event);
    }
}

fn delivered(sandbox: &Weak<Inner>, event: &Value) {
    if let Some(inner) = sandbox.upgrade() {
        inner.mark_delivered(event["id"].as_str().unwrap_or_default());
    }
}

/// Attempts 2..=max_attempts with exponential backoff; true once one got a 2xx.
async fn retry(http: &reqwest::Client, target: &WebhookTarget, event: &Value) -> bool {
    let mut wait = target.first_retry;
    for n in 2..=target.max_attempts {
        tokio::time::sleep(wait).await;
        if attempt(http, target, event, n).await {
            return true;
        }
        wait = (wait * 2).min(Duration::from_secs(300));
    }
    tracing::error!(
        event_id = event["id"].as_str().unwrap_or_default(),
        "sandbox webhook given up after {} attempts",
        target.max_attempts
    );
    false
}

/// One delivery, signed afresh as Stripe does on every attempt.
async fn attempt(http: &reqwest::Client, target: &WebhookTarget, event: &Value, n: u32) -> bool {
    let body = serde_json::to_string_pretty(event).unwrap_or_default();
    let event_id = event["id"].as_str().unwrap_or_default();
    let event_type = event["type"].as_str().unwrap_or_default();
    let header = signature::sign(
        body.as_bytes(),
        &target.secret,
        chrono::Utc::now().timestamp(),
    );
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
            true
        }
        Ok(r) => {
            tracing::warn!(
                event_id,
                event_type,
                attempt = n,
                status = r.status().as_u16(),
                "sandbox webhook refused"
            );
            false
        }
        Err(e) => {
            tracing::warn!(event_id, event_type, attempt = n, error = %e, "sandbox webhook not delivered");
            false
        }
    }
}
