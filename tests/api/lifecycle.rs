//! The process as an operator sees it: JSON logs with request ids and no secrets, and graceful
//! shutdown on SIGTERM (requests in flight finish, a stuck one is dropped at the deadline, the
//! exit status is 0).

use std::time::Duration;

use serde_json::{json, Value};
use wiremock::{MockServer, ResponseTemplate};

use crate::helpers::*;

const API_TOKEN: &str = "tok_lifecycle_0123456789";
const CLIENT_SECRET: &str = "pi_3TestCreated000001_secret_abc123";

/// Stripe creating `pi_3TestCreated000001` after `create_delay`, and reading it as succeeded.
async fn stripe_stub(create_delay: Duration) -> MockServer {
    let stripe = MockServer::start().await;
    let mut pi = payment_intent(
        "pi_3TestCreated000001",
        5000,
        "usd",
        "requires_payment_method",
    );
    pi["client_secret"] = json!(CLIENT_SECRET);
    let created = ResponseTemplate::new(200)
        .insert_header("Request-Id", "req_stub_create")
        .set_body_json(pi)
        .set_delay(create_delay);
    stub(&stripe, "POST", created).await;
    let succeeded = payment_intent("pi_3TestCreated000001", 5000, "usd", "succeeded");
    stub_reads(&stripe, succeeded).await;
    stripe
}

/// Sends a create from a task of its own and waits until Stripe has it: the request is then
/// in flight. Its answer's status, or the error of a request that got none.
async fn create_in_flight(
    server: &Server,
    stripe: &MockServer,
) -> tokio::task::JoinHandle<reqwest::Result<u16>> {
    let url = format!("{}/stripe_create_payment_intent", server.address);
    let in_flight = tokio::spawn(async move {
        reqwest::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .body(json!({"data": {"amount": 50}}).to_string())
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    eventually("Stripe has the create", PATIENCE, || async {
        !received(stripe, "POST", "/v1/payment_intents")
            .await
            .is_empty()
    })
    .await;
    in_flight
}

#[tokio::test]
async fn logs_carry_request_ids_and_never_a_secret() {
    for format in ["json", "pretty"] {
        let stripe = stripe_stub(Duration::ZERO).await;
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("server.log");
        let uri = stripe.uri();
        let mut server = Server::keyed_logging(
            &sqlite_url(dir.path()),
            &uri,
            &[
                ("API_TOKENS", API_TOKEN),
                ("LOG_FORMAT", format),
                ("RUST_LOG", "debug"),
            ],
            Some(&log),
        )
        .await;
        let http = reqwest::Client::new();
        let mut responses = Vec::new();
        for (path, body, auth) in [
            (
                "/stripe_create_payment_intent",
                json!({"data": {"amount": 50}}).to_string(),
                None,
            ),
            (
                "/stripe_get_payment_intent",
                json!({"data": {"payment_intent_id": "pi_3TestCreated000001"}}).to_string(),
                Some(API_TOKEN),
            ),
            (
                "/stripe_confirm_payment",
                json!({"data": {"payment_intent_id": "pi_3TestCreated000001"}}).to_string(),
                Some("wrong-token-0000000000"),
            ),
            ("/stripe_webhook", "{\"id\": \"evt_1\"}".to_string(), None),
        ] {
            let mut r = http
                .post(format!("{}{path}", server.address))
                .header("content-type", "application/json")
                .header("X-Request-Id", format!("rid-{format}-{path}"))
                .body(body);
            if let Some(token) = auth {
                r = r.bearer_auth(token);
            }
            let r = r.send().await.unwrap();
            assert_eq!(
                r.headers()["x-request-id"].to_str().unwrap(),
                format!("rid-{format}-{path}")
            );
            responses.push((path, r.text().await.unwrap()));
        }
        let e = event(
            "evt_logs",
            "payment_intent.succeeded",
            payment_intent("pi_3TestCreated000001", 5000, "usd", "succeeded"),
            now(),
        );
        let body = e.to_string();
        let header = tmt_payments::stripe::signature::sign(body.as_bytes(), WEBHOOK_SECRET, now());
        let r = http
            .post(format!("{}/stripe_webhook", server.address))
            .header("Stripe-Signature", header)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        server.sigterm();
        assert_eq!(server.exit_code().await, Some(0));
        let logged = std::fs::read_to_string(&log).unwrap();
        assert!(
            logged.contains("pi_3TestCreated000001"),
            "the PaymentIntent id is logged"
        );
        assert!(
            logged.contains("req_stub_create"),
            "Stripe's Request-Id is logged"
        );
        for secret in [
            SECRET_KEY,
            WEBHOOK_SECRET,
            API_TOKEN,
            CLIENT_SECRET,
            "abc123",
        ] {
            assert!(!logged.contains(secret), "{format}: {secret} in the log");
        }
        for (path, body) in &responses {
            for secret in [SECRET_KEY, WEBHOOK_SECRET, API_TOKEN] {
                assert!(!body.contains(secret), "{path}: {secret} in a response");
            }
            // The client secret belongs in create's answer, and nowhere else.
            assert_eq!(
                body.contains(CLIENT_SECRET),
                *path == "/stripe_create_payment_intent",
                "{path}"
            );
        }
        if format == "json" {
            let lines: Vec<Value> = logged
                .lines()
                .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
                .collect();
            for line in &lines {
                assert!(
                    line["timestamp"].is_string() && line["level"].is_string(),
                    "{line}"
                );
                if line["target"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("tmt_payments"))
                {
                    assert!(line["message"].is_string(), "{line}");
                }
            }
            let completed: Vec<&Value> = lines
                .iter()
                .filter(|l| l["message"] == "request completed")
                .collect();
            assert!(completed.len() >= 5);
            let create = completed
                .iter()
                .find(|l| l["span"]["route"] == "/stripe_create_payment_intent")
                .expect("an access line for create");
            assert_eq!(
                create["span"]["request_id"],
                "rid-json-/stripe_create_payment_intent"
            );
            assert_eq!(create["status"], 200);
            assert!(create["latency_ms"].is_number());
            let stripe_line = lines
                .iter()
                .find(|l| {
                    l["message"] == "stripe call" && l["operation"] == "create_payment_intent"
                })
                .expect("a Stripe call line for the create");
            assert_eq!(stripe_line["stripe_request_id"], "req_stub_create");
            assert_eq!(
                stripe_line["span"]["request_id"],
                "rid-json-/stripe_create_payment_intent"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_requests_in_flight_finish_then_exits_0() {
    let stripe = stripe_stub(Duration::from_millis(1500)).await;
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(dir.path());
    let uri = stripe.uri();
    let mut server = Server::keyed(&db, &uri, &[]).await;
    let in_flight = create_in_flight(&server, &stripe).await;
    // Then the service is asked to stop.
    server.sigterm();
    eventually("no new connections once stopping", PATIENCE, || async {
        let healthz = reqwest::Client::new()
            .get(format!("{}/healthz", server.address))
            .send()
            .await;
        healthz.is_err()
    })
    .await;
    assert!(
        !in_flight.is_finished(),
        "new connections were refused while the request was in flight"
    );
    assert_eq!(
        in_flight.await.unwrap().expect("answered"),
        200,
        "the request in flight finished"
    );
    assert_eq!(server.exit_code().await, Some(0));
    let row = open_ledger(&db)
        .await
        .payment("pi_3TestCreated000001")
        .await
        .unwrap();
    assert!(row.is_some(), "its ledger write was kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_stuck_past_the_deadline_is_dropped_and_the_exit_is_still_clean() {
    let stripe = stripe_stub(Duration::from_secs(30)).await;
    let dir = tempfile::tempdir().unwrap();
    let uri = stripe.uri();
    let mut server = Server::keyed(
        &sqlite_url(dir.path()),
        &uri,
        &[
            ("SHUTDOWN_TIMEOUT_SECS", "1"),
            ("STRIPE_TIMEOUT_SECS", "60"),
            ("IDEMPOTENCY_STALE_SECS", "120"),
        ],
    )
    .await;
    let in_flight = create_in_flight(&server, &stripe).await;
    server.sigterm();
    assert_eq!(server.exit_code().await, Some(0));
    assert!(
        in_flight.await.unwrap().is_err(),
        "the stuck request got no answer, in particular no 200"
    );
}
