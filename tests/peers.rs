//! Tests against real peers: Stripe's official Python SDK (signature cross-check) and
//! localstripe (a stateful Stripe emulator). They skip with a printed reason when the peers are
//! not installed, and are mandatory under `CI=true`.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::process::free_port;
use common::*;
use secrecy::SecretString;
use serde_json::{json, Value};
use tmt_payments::stripe::signature;

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A long-lived `stripe_sig.py` speaking JSON lines.
struct SdkSigner {
    child: KillOnDrop,
    reader: BufReader<std::process::ChildStdout>,
}

impl SdkSigner {
    fn start(python: &std::path::Path) -> Self {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/stripe_sig.py");
        let mut child = Command::new(python)
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python starts");
        let reader = BufReader::new(child.stdout.take().unwrap());
        SdkSigner {
            child: KillOnDrop(child),
            reader,
        }
    }

    fn ask(&mut self, request: Value) -> Value {
        let stdin = self.child.0.stdin.as_mut().unwrap();
        writeln!(stdin, "{request}").unwrap();
        stdin.flush().unwrap();
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap()
    }
}

#[test]
fn signatures_agree_with_stripes_python_sdk_both_ways() {
    let Some(python) = python_peer(&["stripe"]) else {
        return;
    };
    let mut sdk = SdkSigner::start(&python);
    let secret = "whsec_crosscheck_5f2a";
    let secrets = [SecretString::from(secret.to_string())];
    let payloads = [
        json!({"id": "evt_1", "object": "event", "type": "payment_intent.succeeded"}).to_string(),
        "{\n  \"id\": \"evt_2\",\n  \"type\": \"x\"\n}".to_string(),
        json!({"id": "evt_3", "data": {"object": {"description": "Compra de tickets ñ €", "n": 1.005}}}).to_string(),
        String::new(),
    ];
    let t = now();
    for payload in &payloads {
        // Their header verifies here.
        let header = sdk
            .ask(json!({"op": "sign", "payload": payload, "secret": secret, "timestamp": t}))
            ["header"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            signature::verify(Some(&header), payload.as_bytes(), &secrets, 300, t + 10),
            Ok(t),
            "{header}"
        );
        // Ours verifies there, with their tolerance check on.
        let ours = signature::sign(payload.as_bytes(), secret, now());
        let answer = sdk.ask(json!({"op": "verify", "payload": payload, "header": ours, "secret": secret, "tolerance": 300}));
        assert_eq!(answer["ok"], true, "{answer}");
        assert_eq!(
            signature::sign(payload.as_bytes(), secret, t),
            header,
            "same bytes both sides"
        );
        // And both sides refuse what they should: the check is real.
        let wrong = signature::sign(payload.as_bytes(), "whsec_other", now());
        let answer = sdk.ask(json!({"op": "verify", "payload": payload, "header": wrong, "secret": secret, "tolerance": 300}));
        assert_eq!(answer["ok"], false);
        let stale = signature::sign(payload.as_bytes(), secret, now() - 1000);
        let answer = sdk.ask(json!({"op": "verify", "payload": payload, "header": stale, "secret": secret, "tolerance": 300}));
        assert_eq!(answer["ok"], false);
    }
}

struct Localstripe {
    _child: KillOnDrop,
    base: String,
    http: reqwest::Client,
}

impl Localstripe {
    async fn start(python: &std::path::Path) -> Self {
        let port = free_port();
        let child = Command::new(python)
            .args([
                "-m",
                "localstripe",
                "--port",
                &port.to_string(),
                "--from-scratch",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("localstripe starts");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = http
                .get(format!("{base}/v1/balance"))
                .basic_auth("sk_test_localstripe", Some(""))
                .send()
                .await
                .map(|r| r.status().is_success())
                .unwrap_or(false);
            if ready {
                break;
            }
            assert!(Instant::now() < deadline, "localstripe did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Localstripe {
            _child: KillOnDrop(child),
            base,
            http,
        }
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .basic_auth("sk_test_localstripe", Some(""))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let bytes = r.bytes().await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }
}

const LOCALSTRIPE_SECRET: &str = "whsec_localstripe_e2e";

#[tokio::test]
async fn localstripe_get_confirm_decline_and_signed_webhook() {
    let Some(python) = python_peer(&["localstripe"]) else {
        return;
    };
    let ls = Localstripe::start(&python).await;
    let base = ls.base.clone();
    let app = spawn_app_with(|c| {
        c.stripe_api_base = base;
        c.stripe_secret_key = Some(SecretString::from("sk_test_localstripe".to_string()));
        c.stripe_webhook_secrets = vec![SecretString::from(LOCALSTRIPE_SECRET.to_string())];
    })
    .await;
    let (status, _) = ls
        .post(
            "/_config/webhooks/tmt",
            &[
                ("url", &format!("{}/stripe_webhook", app.address)),
                ("secret", LOCALSTRIPE_SECRET),
            ],
        )
        .await;
    assert_eq!(status, 200);

    // Success: created and confirmed at localstripe with pm_card_visa.
    let (status, pi) = ls
        .post(
            "/v1/payment_intents",
            &[
                ("amount", "2050"),
                ("currency", "usd"),
                ("metadata[platform]", "TMT"),
                ("payment_method", "pm_card_visa"),
                ("confirm", "true"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{pi}");
    let id = pi["id"].as_str().unwrap().to_string();
    let (status, _, body) = app
        .post(
            "/stripe_get_payment_intent",
            json!({"data": {"payment_intent_id": id}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["status"], "succeeded");
    assert_eq!(body["data"]["amount"].to_string(), "20.50");
    assert_eq!(body["data"]["metadata"]["platform"], "TMT");
    let (status, _, body) = app
        .post(
            "/stripe_confirm_payment",
            json!({"data": {"payment_intent_id": id}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let charges = body["data"]["charges"].as_array().unwrap();
    assert_eq!(charges.len(), 1);
    assert_eq!(charges[0]["payment_intent"], id.as_str());
    assert_eq!(charges[0]["status"], "succeeded");
    assert_eq!(charges[0]["amount"], 2050);
    assert_eq!(body["data"]["paymentMethod"], "pm_card_visa");

    // Decline: localstripe declines pm_card_chargeCustomerFail (card 4000000000000341);
    // it lets pm_card_visa_chargeDeclined succeed, unlike Stripe.
    let (status, pi) = ls
        .post(
            "/v1/payment_intents",
            &[
                ("amount", "2050"),
                ("currency", "usd"),
                ("metadata[platform]", "TMT"),
                ("payment_method", "pm_card_chargeCustomerFail"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{pi}");
    let declined = pi["id"].as_str().unwrap().to_string();
    let (status, error) = ls
        .post(&format!("/v1/payment_intents/{declined}/confirm"), &[])
        .await;
    assert_eq!(status, 402, "{error}");
    let (status, _, body) = app
        .post(
            "/stripe_confirm_payment",
            json!({"data": {"payment_intent_id": declined}}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "payment_not_completed");
    assert_eq!(
        body["error"],
        "El pago no fue completado. Estado: requires_payment_method"
    );

    // Missing id: localstripe's 404 comes back as a 500 with its message.
    let (status, _, body) = app
        .post(
            "/stripe_get_payment_intent",
            json!({"data": {"payment_intent_id": "pi_doesnotexist"}}),
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (500, Some("stripe_error")));

    // A real signed webhook: the service learns of the PaymentIntent through a read, then the
    // confirmation at localstripe sends payment_intent.succeeded, which must move the row.
    let (status, pi) = ls
        .post(
            "/v1/payment_intents",
            &[
                ("amount", "990"),
                ("currency", "eur"),
                ("metadata[platform]", "TMT"),
                ("payment_method", "pm_card_visa"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{pi}");
    let hooked = pi["id"].as_str().unwrap().to_string();
    let (status, _, _) = app
        .post(
            "/stripe_get_payment_intent",
            json!({"data": {"payment_intent_id": hooked}}),
        )
        .await;
    assert_eq!(status, 200);
    let ledger = app.ledger().await;
    assert_eq!(
        ledger.payment(&hooked).await.unwrap().unwrap().status,
        "requires_confirmation"
    );
    let (status, _) = ls
        .post(&format!("/v1/payment_intents/{hooked}/confirm"), &[])
        .await;
    assert_eq!(status, 200);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let events = ledger.events_for(&hooked).await.unwrap();
        if let Some(e) = events
            .iter()
            .find(|e| e.event_type == "payment_intent.succeeded")
        {
            assert_eq!(e.outcome, "applied");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the signed webhook never arrived"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let row = ledger.payment(&hooked).await.unwrap().unwrap();
    assert_eq!(
        (row.status.as_str(), row.amount, row.currency.as_str()),
        ("succeeded", 990, "eur")
    );
    // The first payment's webhook arrived too and found no row to contradict.
    let deadline = Instant::now() + Duration::from_secs(20);
    while ledger.events_for(&id).await.unwrap().is_empty() {
        assert!(Instant::now() < deadline, "first webhook never arrived");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        ledger.payment(&id).await.unwrap().unwrap().status,
        "succeeded"
    );
}
