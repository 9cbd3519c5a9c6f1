//! The embedded sandbox: its wire protocol, webhook delivery with retries, and the offline
//! end-to-end flow through the service's own HTTP surface (success, decline, 3DS).

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use tmt_payments::sandbox::{Sandbox, WebhookTarget};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn serve(sandbox: Sandbox) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, sandbox.router()).await });
    address
}

struct Api {
    base: String,
    http: reqwest::Client,
    key: String,
}

impl Api {
    async fn call(
        &self,
        m: reqwest::Method,
        path: &str,
        form: &str,
        idem: Option<&str>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut r = self
            .http
            .request(m, format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.to_string());
        if let Some(k) = idem {
            r = r.header("Idempotency-Key", k);
        }
        read(r.send().await.unwrap()).await
    }
    async fn post(&self, path: &str, form: &str) -> (u16, Value) {
        let (s, _, b) = self.call(reqwest::Method::POST, path, form, None).await;
        (s, b)
    }
    async fn get(&self, path: &str) -> (u16, Value) {
        let (s, _, b) = self.call(reqwest::Method::GET, path, "", None).await;
        (s, b)
    }
}

async fn api(target: Option<WebhookTarget>) -> Api {
    Api {
        base: serve(Sandbox::new(target)).await,
        http: reqwest::Client::new(),
        key: "sk_test_wire".into(),
    }
}

#[tokio::test]
async fn auth_request_ids_and_errors_speak_stripes_protocol() {
    let a = api(None).await;
    for auth in [
        None,
        Some("Bearer sk_live_real"),
        Some("Bearer nonsense"),
        Some("Basic !!!"),
    ] {
        let mut r = a.http.get(format!("{}/v1/payment_intents/pi_1", a.base));
        if let Some(h) = auth {
            r = r.header("authorization", h);
        }
        let (status, headers, body) = read(r.send().await.unwrap()).await;
        assert_eq!(status, 401, "{auth:?}");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert!(headers["request-id"].to_str().unwrap().starts_with("req_"));
    }
    // Basic auth with the key as user name, as curl -u and the SDKs send it.
    let r = a
        .http
        .get(format!("{}/v1/payment_intents/pi_1", a.base))
        .basic_auth("sk_test_basic", Some(""))
        .send()
        .await
        .unwrap();
    let (status, headers, body) = read(r).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "resource_missing");
    assert_eq!(body["error"]["message"], "No such payment_intent: 'pi_1'");
    assert!(headers["request-id"].to_str().unwrap().starts_with("req_"));
    let (status, body) = a
        .post("/v1/payment_intents", "amount=100&currency=usd&colour=red")
        .await;
    assert_eq!(
        (status, body["error"]["param"].as_str()),
        (400, Some("colour"))
    );
    let (status, body) = a.post("/v1/payment_intents", "currency=usd").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("parameter_missing"))
    );
    let (status, body) = a
        .post("/v1/payment_intents", "amount=10&currency=usd")
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("amount_too_small"))
    );
    let (status, _) = a.get("/v1/refunds").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn objects_and_expansion() {
    let a = api(None).await;
    let (status, pi) = a
        .post(
            "/v1/payment_intents",
            "amount=5000&currency=usd&metadata[order]=7&payment_method=pm_card_visa&confirm=true",
        )
        .await;
    assert_eq!(status, 200, "{pi}");
    let id = pi["id"].as_str().unwrap();
    assert_eq!(pi["status"], "succeeded");
    for (query, expanded) in [
        ("expand[]=latest_charge", true),
        ("expand[0]=latest_charge", true),
        ("", false),
    ] {
        let (_, got) = a.get(&format!("/v1/payment_intents/{id}?{query}")).await;
        assert_eq!(got["latest_charge"].is_object(), expanded, "{query}");
    }
    // Every field of Stripe's published example objects is there.
    for key in fixture("payment_intent").as_object().unwrap().keys() {
        assert!(pi.get(key).is_some(), "PaymentIntent lacks {key}");
    }
    let (_, charges) = a.get(&format!("/v1/charges?payment_intent={id}")).await;
    assert_eq!(charges["object"], "list");
    let charge = &charges["data"][0];
    for key in fixture("charge").as_object().unwrap().keys() {
        assert!(charge.get(key).is_some(), "Charge lacks {key}");
    }
    let (_, events) = a.get("/v1/events?type=payment_intent.*").await;
    let types: Vec<_> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["payment_intent.succeeded", "payment_intent.created"]
    );
    assert_eq!(
        events["data"][0]["pending_webhooks"], 0,
        "no endpoint configured"
    );
}

#[tokio::test]
async fn publishable_key_confirms_with_the_client_secret_only() {
    let a = api(None).await;
    let (_, pi) = a
        .post("/v1/payment_intents", "amount=5000&currency=usd")
        .await;
    let id = pi["id"].as_str().unwrap();
    let secret = pi["client_secret"].as_str().unwrap();
    let browser = Api {
        key: "pk_test_browser".into(),
        ..a
    };
    let (status, _) = browser
        .post(
            &format!("/v1/payment_intents/{id}/confirm"),
            "payment_method=pm_card_visa&client_secret=wrong",
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = browser
        .post("/v1/payment_intents", "amount=5000&currency=usd")
        .await;
    assert_eq!(status, 401, "a publishable key cannot create");
    let (status, confirmed) = browser
        .post(
            &format!("/v1/payment_intents/{id}/confirm"),
            &format!("payment_method=pm_card_visa&client_secret={secret}"),
        )
        .await;
    assert_eq!(
        (status, confirmed["status"].as_str()),
        (200, Some("succeeded"))
    );
}

#[tokio::test]
async fn idempotency_keys_replay_and_refuse_other_parameters() {
    let a = api(None).await;
    let (s1, _, first) = a
        .call(
            reqwest::Method::POST,
            "/v1/payment_intents",
            "amount=700&currency=eur&metadata[a]=1&metadata[b]=2",
            Some("k1"),
        )
        .await;
    let (s2, h2, second) = a
        .call(
            reqwest::Method::POST,
            "/v1/payment_intents",
            "metadata[b]=2&currency=eur&metadata[a]=1&amount=700",
            Some("k1"),
        )
        .await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(first, second);
    assert_eq!(h2["idempotent-replayed"], "true");
    let (s3, _, third) = a
        .call(
            reqwest::Method::POST,
            "/v1/payment_intents",
            "amount=701&currency=eur",
            Some("k1"),
        )
        .await;
    assert_eq!(
        (s3, third["error"]["type"].as_str()),
        (400, Some("idempotency_error"))
    );
    // A declined confirmation is replayed as the same 402.
    let (_, pi) = a
        .post("/v1/payment_intents", "amount=700&currency=eur")
        .await;
    let path = format!("/v1/payment_intents/{}/confirm", pi["id"].as_str().unwrap());
    let (d1, _, e1) = a
        .call(
            reqwest::Method::POST,
            &path,
            "payment_method=pm_card_visa_chargeDeclined",
            Some("k2"),
        )
        .await;
    let (d2, _, e2) = a
        .call(
            reqwest::Method::POST,
            &path,
            "payment_method=pm_card_visa_chargeDeclined",
            Some("k2"),
        )
        .await;
    assert_eq!((d1, d2), (402, 402));
    assert_eq!(e1, e2);
    let (_, charges) = a
        .get(&format!(
            "/v1/charges?payment_intent={}",
            pi["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        charges["data"].as_array().unwrap().len(),
        1,
        "the replay charged nothing"
    );
}

#[tokio::test]
async fn webhook_delivery_retries_until_the_endpoint_accepts_once() {
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&receiver)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .with_priority(2)
        .mount(&receiver)
        .await;
    let target = WebhookTarget {
        max_attempts: 5,
        first_retry: Duration::from_millis(50),
        ..WebhookTarget::new(format!("{}/hook", receiver.uri()), "whsec_retry".into())
    };
    let a = api(Some(target)).await;
    let (_, pi) = a
        .post("/v1/payment_intents", "amount=700&currency=eur")
        .await;
    let (_, events) = a.get("/v1/events").await;
    let event_id = events["data"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(events["data"][0]["pending_webhooks"], 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, e) = a.get(&format!("/v1/events/{event_id}")).await;
        if e["pending_webhooks"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "never delivered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let requests = receiver.received_requests().await.unwrap();
    assert_eq!(requests.len(), 3, "two failures, then the one delivery");
    let secrets = [secrecy::SecretString::from("whsec_retry".to_string())];
    for r in &requests {
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["id"], event_id.as_str());
        assert_eq!(body["data"]["object"]["id"], pi["id"]);
        let header = r.headers["stripe-signature"].to_str().unwrap();
        assert!(tmt_payments::stripe::signature::verify(
            Some(header),
            &r.body,
            &secrets,
            300,
            now()
        )
        .is_ok());
    }
}

// ---- The offline flow through the service's HTTP surface only -------------------------------

async fn sandbox_app() -> TestApp {
    spawn_app_with(|c| {
        c.stripe_secret_key = None;
        c.stripe_webhook_secrets.clear();
    })
    .await
}

/// What Stripe.js does in the browser: confirm with a publishable key and the client secret.
async fn browser_confirm(app: &TestApp, id: &str, secret: &str, pm: &str) -> (u16, Value) {
    let r = app
        .http
        .post(format!(
            "{}/sandbox/v1/payment_intents/{id}/confirm",
            app.address
        ))
        .basic_auth("pk_test_checkout", Some(""))
        .form(&[("payment_method", pm), ("client_secret", secret)])
        .send()
        .await
        .unwrap();
    let (status, _, body) = read(r).await;
    (status, body)
}

async fn create(app: &TestApp) -> (String, String) {
    let (status, _, body) = app
        .post(
            "/stripe_create_payment_intent",
            json!({"data": {"amount": "42.00", "currency": "mxn", "metadata": {"order": "X1"}}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    (
        body["data"]["paymentIntentId"]
            .as_str()
            .unwrap()
            .to_string(),
        body["data"]["clientSecret"].as_str().unwrap().to_string(),
    )
}

/// Waits for the ledger to show `status` with the event `event_type` applied.
async fn ledger_reaches(app: &TestApp, id: &str, status: &str, event_type: &str) {
    let ledger = app.ledger().await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let row = ledger.payment(id).await.unwrap();
        let events = ledger.events_for(id).await.unwrap();
        let applied = events
            .iter()
            .any(|e| e.event_type == event_type && e.outcome == "applied");
        if row.as_ref().is_some_and(|r| r.status == status) && applied {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "ledger never reached {status}/{event_type}: {row:?} {events:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn offline_success_flow() {
    let app = sandbox_app().await;
    let (id, secret) = create(&app).await;
    assert!(secret.starts_with(&format!("{id}_secret_")));
    ledger_reaches(
        &app,
        &id,
        "requires_payment_method",
        "payment_intent.created",
    )
    .await;
    let (status, pi) = browser_confirm(&app, &id, &secret, "pm_card_visa").await;
    assert_eq!((status, pi["status"].as_str()), (200, Some("succeeded")));
    ledger_reaches(&app, &id, "succeeded", "payment_intent.succeeded").await;
    let (status, _, body) = app
        .post(
            "/stripe_confirm_payment",
            json!({"data": {"payment_intent_id": id}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["amount"].to_string(), "42.00");
    assert_eq!(body["data"]["currency"], "mxn");
    let charges = body["data"]["charges"].as_array().unwrap();
    assert_eq!(charges.len(), 1);
    assert_eq!(
        (charges[0]["status"].as_str(), charges[0]["amount"].as_i64()),
        (Some("succeeded"), Some(4200))
    );
    let events = app.ledger().await.events_for(&id).await.unwrap();
    let seen: Vec<_> = events
        .iter()
        .map(|e| (e.event_type.as_str(), e.outcome.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("payment_intent.created", "applied"),
            ("charge.succeeded", "applied"),
            ("payment_intent.succeeded", "applied")
        ]
    );
    let row = app.ledger().await.payment(&id).await.unwrap().unwrap();
    assert_eq!(
        (row.amount, row.metadata["order"].as_str()),
        (4200, Some("X1"))
    );
}

#[tokio::test]
async fn offline_decline_flow() {
    let app = sandbox_app().await;
    let (id, secret) = create(&app).await;
    let (status, error) = browser_confirm(&app, &id, &secret, "pm_card_visa_chargeDeclined").await;
    assert_eq!(status, 402);
    assert_eq!(error["error"]["decline_code"], "generic_decline");
    ledger_reaches(
        &app,
        &id,
        "requires_payment_method",
        "payment_intent.payment_failed",
    )
    .await;
    let (status, _, body) = app
        .post(
            "/stripe_confirm_payment",
            json!({"data": {"payment_intent_id": id}}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "payment_not_completed");
    assert_eq!(
        body["error"],
        "El pago no fue completado. Estado: requires_payment_method"
    );
    // The customer tries another card: the same PaymentIntent succeeds.
    let (status, _) = browser_confirm(&app, &id, &secret, "pm_card_mastercard").await;
    assert_eq!(status, 200);
    ledger_reaches(&app, &id, "succeeded", "payment_intent.succeeded").await;
}

#[tokio::test]
async fn offline_3ds_flow() {
    let app = sandbox_app().await;
    let (id, secret) = create(&app).await;
    let (status, pi) = browser_confirm(&app, &id, &secret, "pm_card_authenticationRequired").await;
    assert_eq!(
        (status, pi["status"].as_str()),
        (200, Some("requires_action"))
    );
    ledger_reaches(
        &app,
        &id,
        "requires_action",
        "payment_intent.requires_action",
    )
    .await;
    let (status, _, body) = app
        .post(
            "/stripe_get_payment_intent",
            json!({"data": {"payment_intent_id": id}}),
        )
        .await;
    assert_eq!(
        (status, body["data"]["status"].as_str()),
        (200, Some("requires_action"))
    );
    let (status, _, body) = app
        .post(
            "/stripe_confirm_payment",
            json!({"data": {"payment_intent_id": id}}),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (
            400,
            Some("El pago no fue completado. Estado: requires_action")
        )
    );
    // After authenticating, Stripe.js confirms again with the same payment method.
    let pm = pi["payment_method"].as_str().unwrap().to_string();
    let (status, pi) = browser_confirm(&app, &id, &secret, &pm).await;
    assert_eq!((status, pi["status"].as_str()), (200, Some("succeeded")));
    ledger_reaches(&app, &id, "succeeded", "payment_intent.succeeded").await;
}

#[tokio::test]
async fn with_a_real_key_there_is_no_sandbox() {
    let app = spawn_app().await;
    let r = app
        .http
        .get(format!("{}/sandbox/v1/payment_intents/pi_1", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let (_, _, body) = read(r).await;
    assert_eq!(
        body["code"], "not_found",
        "the service's own 404, not the sandbox's"
    );
}
