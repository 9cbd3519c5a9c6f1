//! `Idempotency-Key` on create (docs/contract.md §7) in one process: replay, reuse, in-flight,
//! retries after failure, stale takeover and expiry. Runs on SQLite, or PostgreSQL with
//! TMT_TEST_BACKEND.

use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;

async fn stripe_creates(app: &TestApp) -> Vec<wiremock::Request> {
    app.stripe_calls("POST", "/v1/payment_intents").await
}

/// A create under `key`, which must be answered 200; the answer's headers.
async fn created_with_key(app: &TestApp, key: &str, data: Value) -> HeaderMap {
    let (status, headers, body) = app.create_with_key(key, data).await;
    assert_eq!(status, 200, "{body}");
    headers
}

/// An app whose Stripe creates PaymentIntents, each after `delay`.
async fn app_creating(delay: Duration) -> TestApp {
    let app = spawn_app().await;
    mount(&app, delay).await;
    app
}

async fn mount(app: &TestApp, delay: Duration) {
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(DelayedCreate(delay))
        .mount(&app.stripe)
        .await;
}

struct DelayedCreate(Duration);

impl wiremock::Respond for DelayedCreate {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
        CreateResponder.respond(request).set_delay(self.0)
    }
}

#[tokio::test]
async fn same_key_and_data_replays_the_first_answer() {
    let app = app_creating(Duration::ZERO).await;
    let data = json!({"amount": "12.34", "currency": "eur", "metadata": {"a": "1", "b": "2"}});
    let (s1, h1, first) = app.create_with_key("order-1001", data).await;
    assert_eq!(s1, 200, "{first}");
    assert!(h1.get("idempotent-replayed").is_none());
    assert_eq!(h1["access-control-expose-headers"], "Idempotent-Replayed");
    // The same data with its keys in another order is the same request.
    let reordered = json!({"metadata": {"b": "2", "a": "1"}, "currency": "eur", "amount": "12.34"});
    let (s2, h2, second) = app.create_with_key("order-1001", reordered).await;
    assert_eq!(s2, 200);
    assert_eq!(h2["idempotent-replayed"], "true");
    assert_eq!(second, first);
    assert_eq!(stripe_creates(&app).await.len(), 1, "Stripe was asked once");
    // Another key is another payment.
    let (s3, _, third) = app
        .create_with_key("order-1002", json!({"amount": "12.34", "currency": "eur"}))
        .await;
    assert_eq!(s3, 200, "{third}");
    assert_eq!(stripe_creates(&app).await.len(), 2);
    // Requests without a key are never deduplicated.
    app.create(json!({"amount": 5})).await;
    app.create(json!({"amount": 5})).await;
    assert_eq!(stripe_creates(&app).await.len(), 4);
}

#[tokio::test]
async fn same_key_with_other_data_is_422() {
    let app = app_creating(Duration::ZERO).await;
    created_with_key(&app, "k-1", json!({"amount": 10})).await;
    let (status, _, body) = app.create_with_key("k-1", json!({"amount": 11})).await;
    assert_eq!(
        refusal(status, &body),
        (
            422,
            "idempotency_key_reused",
            "La Idempotency-Key ya fue usada con otros parámetros"
        )
    );
    assert_eq!(stripe_creates(&app).await.len(), 1);
}

#[tokio::test]
async fn malformed_keys_are_400() {
    let app = app_creating(Duration::ZERO).await;
    for key in ["", &"k".repeat(256), "tab\there", "ñandú"] {
        let r = app
            .http
            .post(format!("{}/stripe_create_payment_intent", app.address))
            .header("content-type", "application/json")
            .header(
                "Idempotency-Key",
                reqwest::header::HeaderValue::from_bytes(key.as_bytes()).unwrap(),
            )
            .body(json!({"data": {"amount": 10}}).to_string())
            .send()
            .await
            .unwrap();
        let (status, _, body) = read(r).await;
        assert_eq!(
            code(status, &body),
            (400, "idempotency_key_invalid"),
            "{key:?}"
        );
    }
    for key in [&"k".repeat(255), " ~!"] {
        created_with_key(&app, key, json!({"amount": 10})).await;
    }
}

#[tokio::test]
async fn a_second_request_while_the_first_runs_is_409() {
    let app = app_creating(Duration::from_millis(800)).await;
    let data = json!({"amount": 20});
    let (first, second) = tokio::join!(app.create_with_key("slow", data.clone()), async {
        // Once Stripe has the first request, the first holds the key (claimed before the call).
        eventually("Stripe has the first create", PATIENCE, || async {
            !stripe_creates(&app).await.is_empty()
        })
        .await;
        app.create_with_key("slow", data.clone()).await
    });
    assert_eq!(first.0, 200, "{}", first.2);
    assert_eq!(second.0, 409);
    assert_eq!(second.2["code"], "idempotency_key_in_progress");
    let (status, headers, replay) = app.create_with_key("slow", data).await;
    assert_eq!((status, &replay), (200, &first.2));
    assert_eq!(headers["idempotent-replayed"], "true");
    assert_eq!(stripe_creates(&app).await.len(), 1);
}

#[tokio::test]
async fn after_a_failure_the_retry_sends_stripe_the_identical_request() {
    let app = spawn_app_with(|c| c.stripe.max_retries = 0).await;
    stub_first(&app.stripe, "POST", stripe_error(500, "api_error", "down")).await;
    mount(&app, Duration::ZERO).await;
    let data = json!({"amount": 30, "metadata": {"seat": "A1"}});
    let (status, _, body) = app.create_with_key("retry-me", data.clone()).await;
    assert_eq!(code(status, &body), (500, "stripe_error"));
    // The clock moves past the first attempt's timestamp (milliseconds): a retry that made a
    // new one would send different bytes.
    let first = &stripe_creates(&app).await[0];
    let stamped =
        chrono::DateTime::parse_from_rfc3339(&form_value(first, "metadata[timestamp]").unwrap())
            .unwrap()
            .timestamp_millis();
    eventually("the clock passes the first attempt", PATIENCE, || async {
        chrono::Utc::now().timestamp_millis() > stamped
    })
    .await;
    let (status, _, body) = app.create_with_key("retry-me", data).await;
    assert_eq!(status, 200, "{body}");
    let sent = stripe_creates(&app).await;
    assert_eq!(sent.len(), 2);
    // Same Stripe key and byte-identical body (the metadata timestamp included), so Stripe
    // would replay its first result rather than create a second PaymentIntent.
    assert_eq!(
        sent[0].headers["idempotency-key"],
        sent[1].headers["idempotency-key"]
    );
    assert_eq!(sent[0].body, sent[1].body);
    assert!(sent[0].headers["idempotency-key"]
        .to_str()
        .unwrap()
        .starts_with("tmt-"));
}

#[tokio::test]
async fn a_key_left_by_a_dead_request_is_taken_over_after_the_stale_delay() {
    let app = spawn_app_with(|c| c.idempotency_stale = Duration::from_millis(300)).await;
    mount(&app, Duration::ZERO).await;
    let data = json!({"amount": 40});
    // A request that claimed the key and died before finishing.
    let fingerprint = {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(
            tmt_payments::canonical::canonical(&data).as_bytes(),
        ))
    };
    let claim = app
        .ledger()
        .await
        .claim_key(
            tmt_payments::ledger::Scope::Create,
            &tmt_payments::ledger::IdempotencyKey::parse("orphan").unwrap(),
            &fingerprint,
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert!(matches!(claim, tmt_payments::ledger::Claim::Owned(_)));
    let (status, _, body) = app.create_with_key("orphan", data.clone()).await;
    assert_eq!(code(status, &body), (409, "idempotency_key_in_progress"));
    // Past the stale delay (shortened to 300 ms for the test): the claim counts as dead.
    tokio::time::sleep(Duration::from_millis(400)).await;
    created_with_key(&app, "orphan", data).await;
}

#[tokio::test]
async fn keys_expire_after_24_hours() {
    let app = app_creating(Duration::ZERO).await;
    created_with_key(&app, "old", json!({"amount": 50})).await;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&app.db_url).await.unwrap();
    let day_and_more = 25 * 3600 * 1000i64;
    sqlx::query("UPDATE idempotency_keys SET created_at = created_at - $1")
        .bind(day_and_more)
        .execute(&pool)
        .await
        .unwrap();
    let headers = created_with_key(&app, "old", json!({"amount": 60})).await;
    assert!(headers.get("idempotent-replayed").is_none());
    let sent = stripe_creates(&app).await;
    assert_eq!(sent.len(), 2);
    assert_ne!(
        sent[0].headers["idempotency-key"],
        sent[1].headers["idempotency-key"]
    );
    assert_eq!(
        app.ledger().await.purge_expired_keys().await.unwrap(),
        0,
        "the key lives again"
    );
    sqlx::query("UPDATE idempotency_keys SET created_at = created_at - $1")
        .bind(day_and_more)
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(app.ledger().await.purge_expired_keys().await.unwrap(), 1);
}

#[tokio::test]
async fn a_caller_that_hangs_up_gets_the_replay_when_it_retries() {
    let app = app_creating(Duration::from_millis(1200)).await;
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let gave_up = impatient
        .post(format!("{}/stripe_create_payment_intent", app.address))
        .header("content-type", "application/json")
        .header("Idempotency-Key", "hang-up")
        .body(json!({"data": {"amount": 70}}).to_string())
        .send()
        .await;
    assert!(gave_up.is_err(), "the browser timed out");
    // The work went on without the caller; once it is done the retry is a replay.
    eventually(
        "the create finishes without its caller",
        PATIENCE,
        || async { app.key_state("hang-up").await.as_deref() == Some("done") },
    )
    .await;
    let headers = created_with_key(&app, "hang-up", json!({"amount": 70})).await;
    assert_eq!(headers["idempotent-replayed"], "true");
    assert_eq!(stripe_creates(&app).await.len(), 1);
    assert!(app.status_of("pi_3TestCreated000001").await.is_some());
}

#[tokio::test]
async fn a_key_whose_request_never_reached_stripe_is_free_again() {
    let app = spawn_app_with(|c| c.stripe.api_base = unreachable_base()).await;
    let (status, _, body) = app.create_with_key("refused", json!({"amount": 80})).await;
    assert_eq!(code(status, &body), (500, "stripe_unreachable"));
    // Nothing happened at Stripe, so corrected data under the same key is not a reuse.
    let (status, _, body) = app.create_with_key("refused", json!({"amount": 81})).await;
    assert_eq!(code(status, &body), (500, "stripe_unreachable"), "{body}");
}
