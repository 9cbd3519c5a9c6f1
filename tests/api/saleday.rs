//! Sale day (docs/contract.md, "Sale day"): the instance's budget of Stripe calls (arrival
//! order, 503 `stripe_busy` with `Retry-After`, 429s retried and slowing the budget down) and
//! reads of final payments answered from the ledger without calling Stripe.
//!
//! The budget's exact bound (never more than `STRIPE_MAX_RPS` starts in any one-second window)
//! is proven with a paused clock by the unit tests of `stripe::budget`; here it is the order
//! and the counts that are checked, through HTTP, with wiremock playing Stripe.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::helpers::*;
use serde_json::{json, Value};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, Request, Respond, ResponseTemplate};

/// An app whose budget starts at most `rps` Stripe calls a second, a call waiting at most
/// `queue_timeout` for its turn.
async fn with_budget(rps: u32, queue_timeout: Duration) -> TestApp {
    spawn_app_with(|c| {
        c.stripe.budget.max_rps = Some(rps);
        c.stripe.budget.queue_timeout = queue_timeout;
    })
    .await
}

/// Plays `GET /v1/payment_intents/{id}`: the id asked for, with `status`; notes each arrival.
struct Retrieve {
    status: &'static str,
    arrivals: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl Respond for Retrieve {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let id = request.url.path().rsplit('/').next().unwrap().to_string();
        self.arrivals
            .lock()
            .unwrap()
            .push((Instant::now(), id.clone()));
        let mut pi = payment_intent(&id, 2500, "usd", self.status);
        pi["payment_method"] = json!("pm_1Saleday");
        ResponseTemplate::new(200).set_body_json(pi)
    }
}

async fn mount_retrieve(app: &TestApp, status: &'static str) -> Arc<Mutex<Vec<(Instant, String)>>> {
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    Mock::given(method("GET"))
        .and(path_regex(r"^/v1/payment_intents/pi_\w+$"))
        .respond_with(Retrieve {
            status,
            arrivals: arrivals.clone(),
        })
        .mount(&app.stripe)
        .await;
    arrivals
}

fn get_body(id: &str) -> Value {
    json!({"data": {"payment_intent_id": id}})
}

/// A POST whose answer is kept as bytes, to compare two answers byte for byte.
async fn post_bytes(app: &TestApp, route: &str, body: Value) -> (u16, Vec<u8>) {
    let r = app
        .http
        .post(format!("{}{route}", app.address))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
}

/// Stripe's answer when an account goes over its rate limit.
fn too_many_requests() -> ResponseTemplate {
    ResponseTemplate::new(429).set_body_json(json!({"error": {
        "type": "invalid_request_error",
        "code": "rate_limit",
        "message": "Too many requests hit the API too quickly."
    }}))
}

/// Every 503 is `stripe_busy` with a `Retry-After` of whole seconds that its message repeats.
fn assert_stripe_busy(status: u16, headers: &reqwest::header::HeaderMap, body: &Value) {
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "stripe_busy", "{body}");
    let secs: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(secs >= 1);
    assert_eq!(
        body["error"],
        format!("Demasiadas solicitudes; intente de nuevo en {secs} segundos")
    );
    assert_eq!(body["status"], 503);
}

#[tokio::test]
async fn calls_beyond_the_budget_wait_and_reach_stripe_in_arrival_order() {
    let app = with_budget(4, Duration::from_secs(30)).await;
    let arrivals = mount_retrieve(&app, "processing").await;
    let mut calls = Vec::new();
    for i in 0..9u64 {
        calls.push(app.post_in_background(
            "/stripe_get_payment_intent",
            get_body(&format!("pi_order{i}")),
            &[],
        ));
        // The next buyer arrives only once this one has asked for its turn.
        eventually(
            "the call asked for its turn",
            Duration::from_secs(10),
            || {
                let entered = app.budget().entered();
                async move { entered > i }
            },
        )
        .await;
    }
    for call in calls {
        assert_eq!(call.await.unwrap().0, 200);
    }
    let arrivals = arrivals.lock().unwrap().clone();
    let order: Vec<String> = arrivals.iter().map(|(_, id)| id.clone()).collect();
    let expected: Vec<String> = (0..9).map(|i| format!("pi_order{i}")).collect();
    assert_eq!(order, expected, "Stripe saw the calls in arrival order");
    // Loopback delivery may shift one arrival by a little; more than one extra call in a
    // second would be the budget's fault.
    let busiest = arrivals
        .iter()
        .map(|(from, _)| {
            arrivals
                .iter()
                .filter(|(t, _)| *t >= *from && *t < *from + Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap();
    assert!(
        busiest <= 5,
        "{busiest} calls reached Stripe within one second"
    );
    assert_eq!(app.budget().queue_length(), 0);
}

#[tokio::test]
async fn past_the_queue_timeout_the_caller_gets_503_stripe_busy_with_retry_after() {
    let app = with_budget(1, Duration::from_secs(2)).await;
    mount_retrieve(&app, "processing").await;
    let calls: Vec<_> = (0..10)
        .map(|i| {
            let body = get_body(&format!("pi_busy{i}"));
            app.post_in_background("/stripe_get_payment_intent", body, &[])
        })
        .collect();
    let (mut served, mut busy) = (0, 0);
    for call in calls {
        let (status, headers, body) = call.await.unwrap();
        if status == 200 {
            served += 1;
        } else {
            assert_stripe_busy(status, &headers, &body);
            busy += 1;
        }
    }
    // One call a second, two seconds of queue: the first three at most get a turn in time.
    assert!(busy >= 6, "{busy} answered stripe_busy");
    assert!(served >= 1);
    assert_eq!(
        app.stripe_requests().await.len(),
        served,
        "a call refused a turn never reached Stripe"
    );
}

#[tokio::test]
async fn a_create_refused_a_turn_frees_its_idempotency_key() {
    let app = with_budget(1, Duration::ZERO).await;
    app.mount_create().await;
    let buyers: Vec<_> = (0..6)
        .map(|i| {
            app.post_in_background(
                "/stripe_create_payment_intent",
                json!({"data": {"amount": "10.00"}}),
                &[("Idempotency-Key", &format!("buyer-{i}"))],
            )
        })
        .collect();
    let mut answers = Vec::new();
    for buyer in buyers {
        answers.push(buyer.await.unwrap());
    }
    let refused: Vec<usize> = answers
        .iter()
        .enumerate()
        .filter(|(_, (status, _, _))| *status != 200)
        .map(|(i, _)| i)
        .collect();
    for i in &refused {
        let (status, headers, body) = &answers[*i];
        assert_stripe_busy(*status, headers, body);
    }
    let i = *refused
        .first()
        .expect("one call a second, no queue: some refused");
    // Other data under the same key: a key held for the refused create would be a 422.
    let key = format!("buyer-{i}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, headers, body) = app.create_with_key(&key, json!({"amount": "12.00"})).await;
        if status == 200 {
            assert_eq!(body["data"]["amount"].to_string(), "12.00");
            break;
        }
        assert_stripe_busy(status, &headers, &body);
        assert!(Instant::now() < deadline, "never got a turn");
        let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
        tokio::time::sleep(Duration::from_secs(wait)).await;
    }
}

#[tokio::test]
async fn a_429_is_retried_within_the_budget_and_halves_it() {
    let app = spawn_app_with(|c| {
        c.stripe.budget.max_rps = Some(20);
        // A 429 does not use up the retries of failures.
        c.stripe.max_retries = 0;
    })
    .await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(too_many_requests())
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&app.stripe)
        .await;
    app.mount_create().await;
    let (status, _, body) = app
        .post(
            "/stripe_create_payment_intent",
            json!({"data": {"amount": "10.00"}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let requests = app.stripe_requests().await;
    assert_eq!(requests.len(), 2, "the 429, then its retry");
    assert_eq!(
        requests[0].headers["idempotency-key"], requests[1].headers["idempotency-key"],
        "the retry is the same request to Stripe"
    );
    assert_eq!(app.budget().rate_limited(), 1);
    let rate = app.budget().current_rps().unwrap();
    assert!(rate < 20.0, "the budget went down: {rate}/s");

    let (_, _, metrics) = app.get("/metrics").await;
    assert!(metrics.contains("tmt_stripe_rate_limited_total"));
    assert!(metrics.contains("tmt_stripe_budget_rps"));
}

#[tokio::test]
async fn stripe_429s_that_outlast_the_call_are_a_503_never_a_500() {
    let app = spawn_app_with(|c| {
        c.stripe.timeout = Duration::from_secs(1);
    })
    .await;
    Mock::given(method("GET"))
        .respond_with(too_many_requests())
        .mount(&app.stripe)
        .await;
    let (status, headers, body) = app
        .post("/stripe_get_payment_intent", get_body("pi_always429"))
        .await;
    assert_stripe_busy(status, &headers, &body);
    assert!(app.stripe_requests().await.len() >= 2, "429s were retried");
}

/// A succeeded PaymentIntent as Stripe would send it, with its payment method.
fn succeeded(id: &str) -> Value {
    let mut pi = payment_intent(id, 4550, "eur", "succeeded");
    pi["payment_method"] = json!("pm_1Saleday");
    pi["latest_charge"] = json!(format!("ch_{id}"));
    pi["metadata"] =
        json!({"platform": "TMT", "order": "S-1", "timestamp": "2026-01-01T00:00:00.000Z"});
    pi
}

fn charge_of(id: &str) -> Value {
    let mut charge = fixture("charge");
    charge["id"] = json!(format!("ch_{id}"));
    charge["payment_intent"] = json!(id);
    charge["amount"] = json!(4550);
    charge["currency"] = json!("eur");
    charge
}

/// Plays Stripe for one payment: retrieve and the charges list.
async fn mount_payment(app: &TestApp, id: &str) {
    Mock::given(method("GET"))
        .and(path(format!("/v1/payment_intents/{id}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(succeeded(id)))
        .mount(&app.stripe)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/charges"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "list", "data": [charge_of(id)], "has_more": false, "url": "/v1/charges"
        })))
        .mount(&app.stripe)
        .await;
}

#[tokio::test]
async fn final_payments_known_from_events_are_answered_without_stripe_byte_for_byte() {
    let id = "pi_3SaledayEvents01";
    // What the Stripe path answers, from an instance that has heard nothing.
    let reference = spawn_app().await;
    mount_payment(&reference, id).await;
    let (status, stripe_get) =
        post_bytes(&reference, "/stripe_get_payment_intent", get_body(id)).await;
    assert_eq!(status, 200);
    let (status, stripe_confirm) =
        post_bytes(&reference, "/stripe_confirm_payment", get_body(id)).await;
    assert_eq!(status, 200);
    assert_eq!(reference.stripe_requests().await.len(), 2, "retrieve, list");

    // The instance that received Stripe's webhooks answers the same without calling Stripe.
    let app = spawn_app().await;
    mount_payment(&app, id).await;
    let created = now();
    for (event_id, kind, object) in [
        ("evt_sd_pi", "payment_intent.succeeded", succeeded(id)),
        ("evt_sd_ch", "charge.succeeded", charge_of(id)),
    ] {
        app.delivered(event_id, kind, object, created).await;
    }
    for _ in 0..3 {
        let (status, body) = post_bytes(&app, "/stripe_get_payment_intent", get_body(id)).await;
        assert_eq!(status, 200);
        assert_eq!(
            String::from_utf8(body).unwrap(),
            String::from_utf8(stripe_get.clone()).unwrap()
        );
    }
    let (status, body) = post_bytes(&app, "/stripe_confirm_payment", get_body(id)).await;
    assert_eq!(status, 200);
    assert_eq!(
        String::from_utf8(body).unwrap(),
        String::from_utf8(stripe_confirm).unwrap()
    );
    assert!(
        app.stripe_requests().await.is_empty(),
        "polls and confirm of a settled payment cost Stripe nothing"
    );
}

#[tokio::test]
async fn a_canceled_payment_is_answered_from_the_ledger_too() {
    let app = spawn_app().await;
    let id = "pi_3SaledayCanceled1";
    let mut pi = payment_intent(id, 1000, "usd", "canceled");
    pi["cancellation_reason"] = json!("abandoned");
    app.delivered("evt_sd_cancel", "payment_intent.canceled", pi, now())
        .await;
    let (status, _, body) = app.post("/stripe_get_payment_intent", get_body(id)).await;
    assert_eq!((status, &body["data"]["status"]), (200, &json!("canceled")));
    let (status, _, body) = app.post("/stripe_confirm_payment", get_body(id)).await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "payment_not_completed");
    assert_eq!(body["error"], "El pago no fue completado. Estado: canceled");
    assert!(app.stripe_requests().await.is_empty());
}

#[tokio::test]
async fn a_charge_never_seen_costs_one_call_once_and_unfinished_rows_still_ask_stripe() {
    let app = spawn_app().await;
    let id = "pi_3SaledayNoCharge1";
    mount_payment(&app, id).await;
    // Only the PaymentIntent's event: the charge's has not arrived.
    let pi = succeeded(id);
    app.delivered("evt_sd_only_pi", "payment_intent.succeeded", pi, now())
        .await;
    let (status, first) = post_bytes(&app, "/stripe_confirm_payment", get_body(id)).await;
    assert_eq!(status, 200);
    let requests = app.stripe_requests().await;
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].url.path(),
        "/v1/charges",
        "no retrieve: the row is settled"
    );
    let (status, again) = post_bytes(&app, "/stripe_confirm_payment", get_body(id)).await;
    assert_eq!(status, 200);
    assert_eq!(first, again, "the charges kept are the ones listed");
    assert_eq!(
        app.stripe_requests().await.len(),
        1,
        "kept from the first confirm"
    );

    // A row that is not final goes to Stripe; once a read says succeeded, polls stop there.
    let other = "pi_3SaledayPolled01";
    mount_payment(&app, other).await;
    let mut pi = succeeded(other);
    pi["status"] = json!("processing");
    app.delivered("evt_sd_proc", "payment_intent.processing", pi, now())
        .await;
    let (status, from_stripe) =
        post_bytes(&app, "/stripe_get_payment_intent", get_body(other)).await;
    assert_eq!(status, 200);
    assert_eq!(
        app.stripe_requests().await.len(),
        2,
        "the unfinished row was read"
    );
    let (status, from_ledger) =
        post_bytes(&app, "/stripe_get_payment_intent", get_body(other)).await;
    assert_eq!(status, 200);
    assert_eq!(from_ledger, from_stripe);
    assert_eq!(app.stripe_requests().await.len(), 2, "settled by the read");
}
