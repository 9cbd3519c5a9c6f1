//! Tests against real peers: Stripe's official Python SDK (signature cross-check) and
//! localstripe (a stateful Stripe emulator). They need the Python peers in `.venv`, so they are
//! `#[ignore]`d and run when asked (`scripts/test.sh` does), failing if the peers are missing.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use secrecy::SecretString;
use serde_json::{json, Value};
use tmt_payments::ledger::EventRow;
use tmt_payments::stripe::signature;

use crate::helpers::*;

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
#[ignore = "needs Python peers in .venv (stripe)"]
fn signatures_agree_with_stripes_python_sdk_both_ways() {
    let python = python_peer(&["stripe"]);
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
        eventually("localstripe starts", Duration::from_secs(30), || async {
            http.get(format!("{base}/v1/balance"))
                .basic_auth("sk_test_localstripe", Some(""))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await;
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

    /// A PaymentIntent of ours created at localstripe, with `form` besides amount, currency and
    /// the platform tag; its id.
    async fn create(&self, amount: &str, currency: &str, form: &[(&str, &str)]) -> String {
        let mut fields = vec![
            ("amount", amount),
            ("currency", currency),
            ("metadata[platform]", "TMT"),
        ];
        fields.extend_from_slice(form);
        let (status, pi) = self.post("/v1/payment_intents", &fields).await;
        assert_eq!(status, 200, "{pi}");
        pi["id"].as_str().unwrap().to_string()
    }
}

const LOCALSTRIPE_SECRET: &str = "whsec_localstripe_e2e";

#[tokio::test]
#[ignore = "needs Python peers in .venv (localstripe)"]
async fn localstripe_get_confirm_decline_and_signed_webhook() {
    let python = python_peer(&["localstripe"]);
    let ls = Localstripe::start(&python).await;
    let base = ls.base.clone();
    let app = spawn_app_with(|c| {
        c.stripe.api_base = base;
        c.stripe.secret_key = Some(SecretString::from("sk_test_localstripe".to_string()));
        c.stripe.webhook.secrets = vec![SecretString::from(LOCALSTRIPE_SECRET.to_string())];
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
    let id = ls
        .create(
            "2050",
            "usd",
            &[("payment_method", "pm_card_visa"), ("confirm", "true")],
        )
        .await;
    let (status, _, body) = app.get_pi(&id).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["status"], "succeeded");
    assert_eq!(body["data"]["amount"].to_string(), "20.50");
    assert_eq!(body["data"]["metadata"]["platform"], "TMT");
    let (status, _, body) = app.confirm(&id).await;
    assert_eq!(status, 200, "{body}");
    let charges = body["data"]["charges"].as_array().unwrap();
    assert_eq!(charges.len(), 1);
    assert_eq!(charges[0]["payment_intent"], id.as_str());
    assert_eq!(charges[0]["status"], "succeeded");
    assert_eq!(charges[0]["amount"], 2050);
    assert_eq!(body["data"]["paymentMethod"], "pm_card_visa");

    // Decline: localstripe declines pm_card_chargeCustomerFail (card 4000000000000341);
    // it lets pm_card_visa_chargeDeclined succeed, unlike Stripe.
    let declined = ls
        .create(
            "2050",
            "usd",
            &[("payment_method", "pm_card_chargeCustomerFail")],
        )
        .await;
    let (status, error) = ls
        .post(&format!("/v1/payment_intents/{declined}/confirm"), &[])
        .await;
    assert_eq!(status, 402, "{error}");
    let (status, _, body) = app.confirm(&declined).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "payment_not_completed");
    assert_eq!(
        body["error"],
        "El pago no fue completado. Estado: requires_payment_method"
    );

    // Missing id: localstripe's 404 comes back as a 500 with its message.
    let (status, _, body) = app.get_pi("pi_doesnotexist").await;
    assert_eq!(code(status, &body), (500, "stripe_error"));

    // A real signed webhook: the service learns of the PaymentIntent through a read, then the
    // confirmation at localstripe sends payment_intent.succeeded, which must move the row.
    let hooked = ls
        .create("990", "eur", &[("payment_method", "pm_card_visa")])
        .await;
    let (status, _, _) = app.get_pi(&hooked).await;
    assert_eq!(status, 200);
    assert_eq!(app.payment(&hooked).await.status, "requires_confirmation");
    let (status, _) = ls
        .post(&format!("/v1/payment_intents/{hooked}/confirm"), &[])
        .await;
    assert_eq!(status, 200);
    let ledger = app.ledger().await;
    let outcome = eventually(
        "the signed webhook arrives",
        Duration::from_secs(20),
        || async {
            let events = ledger.of_payment::<EventRow>(&hooked).await.unwrap();
            events
                .into_iter()
                .find(|e| e.event_type == "payment_intent.succeeded")
                .map(|e| e.outcome)
        },
    )
    .await;
    assert_eq!(outcome, "applied");
    let row = app.payment(&hooked).await;
    assert_eq!(
        (row.status.as_str(), row.amount, row.currency.as_str()),
        ("succeeded", 990, "eur")
    );
    // The first payment's webhook arrived too and found no row to contradict.
    eventually(
        "the first webhook arrives",
        Duration::from_secs(20),
        || async { !ledger.of_payment::<EventRow>(&id).await.unwrap().is_empty() },
    )
    .await;
    assert_eq!(app.payment(&id).await.status, "succeeded");
}
