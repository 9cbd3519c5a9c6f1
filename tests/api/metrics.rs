//! Prometheus metrics, by their exact deltas. The recorder is process-wide and every test of
//! this crate shares the process, so the service measured here is the binary in a child process
//! of its own: nothing else adds to its counters.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn metrics_count_requests_stripe_calls_and_webhooks() {
    let app = spawn_binary().await;
    let (_, _, before) = app.get("/metrics").await;
    stub_first(&app.stripe, "POST", stripe_error(500, "api_error", "x")).await;
    stub(&app.stripe, "POST", CreateResponder).await;
    app.create(json!({"amount": 50})).await;
    app.create(json!({"amount": 0})).await;
    let paid = event(
        "evt_metrics_1",
        "payment_intent.succeeded",
        payment_intent("pi_metrics1", 100, "usd", "succeeded"),
        now(),
    );
    // Delivered twice: applied, then a duplicate.
    app.deliver(&paid).await;
    app.deliver(&paid).await;
    app.webhook("{}", Some("t=1,v1=00")).await;
    // No route: counted as `other`, whatever the path (scanners cannot grow the label set).
    assert_eq!(app.get("/wp-login.php").await.0, 404);
    let (status, headers, after) = app.get("/metrics").await;
    assert_eq!(status, 200);
    assert!(content_type(&headers).starts_with("text/plain"));
    let delta = |series: &str| sample(&after, series) - sample(&before, series);
    for series in [
        r#"tmt_http_requests_total{route="/stripe_create_payment_intent",method="POST",status="200"}"#,
        r#"tmt_http_requests_total{route="/stripe_create_payment_intent",method="POST",status="400"}"#,
        r#"tmt_stripe_requests_total{operation="create_payment_intent",outcome="api_error"}"#,
        r#"tmt_stripe_requests_total{operation="create_payment_intent",outcome="ok"}"#,
        r#"tmt_stripe_retries_total{operation="create_payment_intent"}"#,
        r#"tmt_webhook_events_total{type="payment_intent.succeeded",outcome="applied"}"#,
        r#"tmt_webhook_events_total{type="payment_intent.succeeded",outcome="duplicate"}"#,
        r#"tmt_webhook_rejections_total{reason="signature_mismatch"}"#,
        r#"tmt_http_requests_total{route="other",method="GET",status="404"}"#,
    ] {
        assert_eq!(delta(series), 1.0, "{series}");
    }
    for (series, at_least) in [
        (
            r#"tmt_http_request_duration_seconds_count{route="/stripe_create_payment_intent"}"#,
            2.0,
        ),
        (
            r#"tmt_payment_status_updates_total{status="succeeded",source="webhook"}"#,
            1.0,
        ),
        (
            r#"tmt_payment_status_updates_total{status="requires_payment_method",source="api"}"#,
            1.0,
        ),
    ] {
        assert!(delta(series) >= at_least, "{series}");
    }
    for present in [
        r#"tmt_http_request_duration_seconds_bucket{route="/stripe_create_payment_intent",le="0.005"}"#,
        "tmt_stripe_request_duration_seconds_bucket",
        "# HELP tmt_http_requests_total",
    ] {
        assert!(after.contains(present), "{present}");
    }
    assert!(
        !after.contains("wp-login"),
        "a path that matched no route is no label"
    );
}
