//! Prometheus metrics, by their exact deltas. The recorder is process-wide and every test of
//! this crate shares the process, so the service measured here is the binary in a child process
//! of its own: nothing else adds to its counters.

use serde_json::json;

use crate::helpers::*;

/// The value of one Prometheus sample (a line that starts with `series`), 0 when absent.
fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_count_requests_stripe_calls_and_webhooks() {
    let app = spawn_binary().await;
    let (_, _, before) = app.get("/metrics").await;
    stub_first(&app.stripe, "POST", stripe_error(500, "api_error", "x")).await;
    stub(&app.stripe, "POST", CreateResponder).await;
    app.create(json!({"amount": 50})).await;
    app.create(json!({"amount": 0})).await;
    let pi = payment_intent("pi_metrics1", 100, "usd", "succeeded");
    app.deliver(&event(
        "evt_metrics_1",
        "payment_intent.succeeded",
        pi.clone(),
        now(),
    ))
    .await;
    app.deliver(&event(
        "evt_metrics_1",
        "payment_intent.succeeded",
        pi,
        now(),
    ))
    .await;
    app.webhook("{}", Some("t=1,v1=00")).await;
    let (status, headers, after) = app.get("/metrics").await;
    assert_eq!(status, 200);
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let delta = |series: &str| sample(&after, series) - sample(&before, series);
    assert_eq!(
        delta(
            r#"tmt_http_requests_total{route="/stripe_create_payment_intent",method="POST",status="200"}"#
        ),
        1.0
    );
    assert_eq!(
        delta(
            r#"tmt_http_requests_total{route="/stripe_create_payment_intent",method="POST",status="400"}"#
        ),
        1.0
    );
    assert!(
        delta(r#"tmt_http_request_duration_seconds_count{route="/stripe_create_payment_intent"}"#)
            >= 2.0
    );
    assert!(after.contains(r#"tmt_http_request_duration_seconds_bucket{route="/stripe_create_payment_intent",le="0.005"}"#));
    assert_eq!(
        delta(
            r#"tmt_stripe_requests_total{operation="create_payment_intent",outcome="api_error"}"#
        ),
        1.0
    );
    assert_eq!(
        delta(r#"tmt_stripe_requests_total{operation="create_payment_intent",outcome="ok"}"#),
        1.0
    );
    assert_eq!(
        delta(r#"tmt_stripe_retries_total{operation="create_payment_intent"}"#),
        1.0
    );
    assert!(after.contains("tmt_stripe_request_duration_seconds_bucket"));
    assert_eq!(
        delta(r#"tmt_webhook_events_total{type="payment_intent.succeeded",outcome="applied"}"#),
        1.0
    );
    assert_eq!(
        delta(r#"tmt_webhook_events_total{type="payment_intent.succeeded",outcome="duplicate"}"#),
        1.0
    );
    assert_eq!(
        delta(r#"tmt_webhook_rejections_total{reason="signature_mismatch"}"#),
        1.0
    );
    assert!(
        delta(r#"tmt_payment_status_updates_total{status="succeeded",source="webhook"}"#) >= 1.0
    );
    assert!(
        delta(r#"tmt_payment_status_updates_total{status="requires_payment_method",source="api"}"#)
            >= 1.0
    );
    assert!(after.contains("# HELP tmt_http_requests_total"));
}
