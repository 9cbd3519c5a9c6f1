//! Prometheus metrics through the `metrics` facade and its Prometheus exporter.
//!
//! Names (all prefixed `tmt_`):
//! - `tmt_http_requests_total{route,method,status}`, `tmt_http_request_duration_seconds{route}`
//! - `tmt_stripe_requests_total{operation,outcome}` (outcome `ok`, `api_error`, `unreachable`),
//!   `tmt_stripe_request_duration_seconds{operation}`, `tmt_stripe_retries_total{operation}`
//! - `tmt_webhook_events_total{type,outcome}` (`applied`, `ignored`, `duplicate`, `foreign`,
//!   `unhandled`), `tmt_webhook_rejections_total{reason}` (the error code)
//! - `tmt_webhook_commit_batch_size` (events per group-committed transaction)
//! - `tmt_payment_status_updates_total{status,source}` (source `webhook` or `api`)
//! - `tmt_rate_limited_total`, `tmt_unauthorized_total`
//! - the background rounds: `tmt_reconcile_repaired_total{kind}`,
//!   `tmt_reconcile_last_success_timestamp_seconds`,
//!   `tmt_settlement_last_success_timestamp_seconds`, `tmt_accounts_left_out_total{round}`,
//!   `tmt_payout_mismatches_total`
//! - the Stripe budget: `tmt_stripe_budget_rps` (gauge), `tmt_stripe_queue_length` (gauge),
//!   `tmt_stripe_queue_wait_seconds`, `tmt_stripe_rate_limited_total` (429s received),
//!   `tmt_stripe_busy_total` (503 `stripe_busy` given); `tmt_reads_from_ledger_total{operation}`

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide recorder, installed on first use.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("tmt_webhook_commit_batch_size".into()),
                &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0],
            )
            .expect("buckets are not empty")
            .set_buckets_for_metric(Matcher::Suffix("duration_seconds".into()), LATENCY_BUCKETS)
            .expect("buckets are not empty")
            .set_buckets_for_metric(
                Matcher::Full("tmt_stripe_queue_wait_seconds".into()),
                LATENCY_BUCKETS,
            )
            .expect("buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (an embedding program's); ours still
        // renders what it records.
        let _ = metrics::set_global_recorder(recorder);
        describe();
        handle
    })
}

/// The Prometheus text exposition of every metric.
pub fn render() -> String {
    let h = handle();
    h.run_upkeep();
    h.render()
}

fn describe() {
    use metrics::{describe_counter, describe_histogram, Unit};
    describe_counter!(
        "tmt_http_requests_total",
        "HTTP requests answered, by route, method and status"
    );
    describe_histogram!(
        "tmt_http_request_duration_seconds",
        Unit::Seconds,
        "Time to answer an HTTP request, by route"
    );
    describe_counter!(
        "tmt_stripe_requests_total",
        "Calls to Stripe's API (each attempt), by operation and outcome"
    );
    describe_histogram!(
        "tmt_stripe_request_duration_seconds",
        Unit::Seconds,
        "Duration of one attempt at a Stripe call"
    );
    describe_counter!(
        "tmt_stripe_retries_total",
        "Retries of Stripe calls, by operation"
    );
    describe_counter!(
        "tmt_webhook_events_total",
        "Verified webhook events, by type and outcome"
    );
    describe_counter!(
        "tmt_webhook_rejections_total",
        "Webhook deliveries refused, by reason"
    );
    describe_histogram!(
        "tmt_webhook_commit_batch_size",
        Unit::Count,
        "Webhook events per group-committed transaction"
    );
    describe_counter!(
        "tmt_payment_status_updates_total",
        "Ledger rows brought to a status, by status and source (webhook or api)"
    );
    describe_counter!(
        "tmt_rate_limited_total",
        "Creates and dashboard sign-ins refused by the per-client rate limits"
    );
    describe_counter!(
        "tmt_accounts_left_out_total",
        "Connected accounts left out of a background round (round: reconciliation, settlement) \
         because Stripe refused to let the platform read them"
    );
    metrics::describe_gauge!(
        "tmt_settlement_last_success_timestamp_seconds",
        "When the settlement round last succeeded (Unix seconds)"
    );
    describe_counter!(
        "tmt_unauthorized_total",
        "Requests refused for a missing or wrong API token"
    );
    metrics::describe_gauge!(
        "tmt_stripe_budget_rps",
        "Stripe calls this instance may start per second now (STRIPE_MAX_RPS, lowered by 429s)"
    );
    metrics::describe_gauge!(
        "tmt_stripe_queue_length",
        "Stripe calls waiting for their turn in the budget"
    );
    describe_histogram!(
        "tmt_stripe_queue_wait_seconds",
        Unit::Seconds,
        "Time a Stripe call waited for its turn in the budget"
    );
    describe_counter!(
        "tmt_stripe_rate_limited_total",
        "429 answers received from Stripe"
    );
    describe_counter!(
        "tmt_stripe_busy_total",
        "Stripe calls refused a turn in the budget (503 stripe_busy)"
    );
    describe_counter!(
        "tmt_reads_from_ledger_total",
        "Reads of settled payments answered from the ledger without calling Stripe"
    );
}
