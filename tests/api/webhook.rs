//! `POST /stripe_webhook`: verification, dedup, foreign and unhandled events, status rules,
//! with the ledger checked after each delivery.

use secrecy::SecretString;
use serde_json::{json, Value};
use tmt_payments::ledger::{EventRow, PaymentRow};
use tmt_payments::stripe::signature::sign;

use crate::helpers::*;

const PI: &str = "pi_3Hook00000000001";

/// An event of type `kind` about our PaymentIntent `PI` in `status`.
fn ours(id: &str, (kind, status): (&str, &str), created: i64) -> Value {
    event(id, kind, pi_object(status, "TMT"), created)
}

fn pi_object(status: &str, platform: &str) -> Value {
    let mut pi = payment_intent(PI, 2500, "eur", status);
    pi["metadata"] = json!({"platform": platform});
    pi
}

#[tokio::test]
async fn good_event_creates_and_moves_the_row() {
    let app = spawn_app().await;
    let created = ours("evt_good_1", CREATED, now() - 5);
    assert_eq!(
        app.deliver(&created).await,
        (200, json!({"received": true}))
    );
    let ledger = app.ledger().await;
    let row = app.payment(PI).await;
    assert_eq!(
        (row.status.as_str(), row.amount, row.currency.as_str()),
        ("requires_payment_method", 2500, "eur")
    );

    let succeeded = ours("evt_good_2", SUCCEEDED, now());
    assert_eq!(app.deliver(&succeeded).await.0, 200);
    let row = app.payment(PI).await;
    assert_eq!(row.status, "succeeded");
    assert_eq!(
        app.events_of(PI, |e| [&e.id, e.outcome.as_str()]).await,
        [["evt_good_1", "applied"], ["evt_good_2", "applied"]]
    );
    // The raw payload is kept byte for byte.
    assert_eq!(
        ledger.event_payload("evt_good_2").await.unwrap().unwrap(),
        succeeded.to_string()
    );
}

#[tokio::test]
async fn bad_signatures_are_400_and_change_nothing() {
    let app = spawn_app().await;
    let body = ours("evt_bad", SUCCEEDED, now()).to_string();
    let t = now();
    let good = sign(body.as_bytes(), WEBHOOK_SECRET, t);
    let cases: Vec<(Option<String>, &str)> = vec![
        (None, "signature_missing"),
        (Some("nonsense".into()), "signature_malformed"),
        (
            Some(format!("v1={}", "a".repeat(64))),
            "signature_malformed",
        ),
        (Some(good.replace("v1=", "v0=")), "signature_no_v1"),
        (
            Some(sign(body.as_bytes(), "whsec_wrong", t)),
            "signature_mismatch",
        ),
        (
            Some(sign(format!("{body} ").as_bytes(), WEBHOOK_SECRET, t)),
            "signature_mismatch",
        ),
        (
            Some(sign(body.as_bytes(), WEBHOOK_SECRET, t - 301)),
            "signature_expired",
        ),
        (
            Some(sign(body.as_bytes(), WEBHOOK_SECRET, t + 400)),
            "signature_expired",
        ),
    ];
    for (header, code) in cases {
        let (status, response) = app.webhook(&body, header.as_deref()).await;
        assert_eq!(status, 400, "{header:?}");
        assert_eq!(response["code"], code, "{header:?}");
        assert!(response["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    assert_eq!(app.event_count().await, 0);
    assert!(app.status_of(PI).await.is_none());
    // The same body with the good header still goes through afterwards.
    assert_eq!(app.webhook(&body, Some(&good)).await.0, 200);
}

#[tokio::test]
async fn body_that_is_not_an_event_is_400() {
    let app = spawn_app().await;
    for body in [
        "[]",
        "not json",
        r#"{"id": "evt_1"}"#,
        r#"{"type": "x"}"#,
        r#"{"id": "evt_1", "type": "x", "object": "charge"}"#,
    ] {
        let header = sign(body.as_bytes(), WEBHOOK_SECRET, now());
        let (status, response) = app.webhook(body, Some(&header)).await;
        assert_eq!(code(status, &response), (400, "event_invalid"), "{body}");
    }
    assert_eq!(app.event_count().await, 0);
}

#[tokio::test]
async fn rotated_secrets_each_verify() {
    let app = spawn_app_with(|c| {
        c.stripe.webhook.secrets = vec![
            SecretString::from("whsec_old_one".to_string()),
            SecretString::from("whsec_new_one".to_string()),
        ]
    })
    .await;
    for (i, secret) in ["whsec_old_one", "whsec_new_one"].iter().enumerate() {
        let body = ours(&format!("evt_rot_{i}"), PROCESSING, now()).to_string();
        let header = sign(body.as_bytes(), secret, now());
        assert_eq!(app.webhook(&body, Some(&header)).await.0, 200, "{secret}");
    }
    // Stripe's header during a rotation: one v1 per secret, only one of them ours.
    let body = ours("evt_rot_2", PROCESSING, now()).to_string();
    let theirs = sign(body.as_bytes(), "whsec_unknown", now());
    let ours = sign(body.as_bytes(), "whsec_new_one", now());
    let both = format!("{theirs},v1={}", ours.split("v1=").nth(1).unwrap());
    assert_eq!(app.webhook(&body, Some(&both)).await.0, 200);
    let ledger = app.ledger().await;
    let events = ledger.of_payment::<EventRow>(PI).await.unwrap();
    assert_eq!(events.len(), 3);
    assert_eq!(events[0].outcome, "applied");
    assert_eq!(app.payment(PI).await.status, "processing");
}

#[tokio::test]
async fn duplicate_delivery_is_200_and_changes_nothing() {
    let app = spawn_app().await;
    let first = ours("evt_dup", PROCESSING, now());
    assert_eq!(app.deliver(&first).await.0, 200);
    let before = app.payment(PI).await;
    // Same id, different content: still the first one that counts.
    let again = ours("evt_dup", SUCCEEDED, now());
    assert_eq!(app.deliver(&again).await, (200, json!({"received": true})));
    assert_eq!(app.deliver(&first).await.0, 200);
    let after = app.payment(PI).await;
    assert_eq!(after, before);
    assert_eq!(after.status, "processing");
    assert_eq!(app.event_count().await, 1);
}

#[tokio::test]
async fn foreign_payment_intents_are_recorded_but_never_touch_the_ledger() {
    let app = spawn_app().await;
    let foreign = event(
        "evt_foreign",
        "payment_intent.succeeded",
        pi_object("succeeded", "OTHER_APP"),
        now(),
    );
    assert_eq!(
        app.deliver(&foreign).await,
        (200, json!({"received": true}))
    );
    let ledger = app.ledger().await;
    assert!(app.status_of(PI).await.is_none());
    let events = ledger.list_events(10).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].outcome, "foreign");
    assert_eq!(events[0].payment_intent_id.as_deref(), Some(PI));

    // Without metadata at all: foreign too.
    let mut bare = pi_object("succeeded", "x");
    bare["metadata"] = json!({});
    bare["id"] = json!("pi_bare1");
    assert_eq!(
        app.deliver(&event("evt_bare", "payment_intent.succeeded", bare, now()))
            .await
            .0,
        200
    );
    assert!(app.status_of("pi_bare1").await.is_none());

    // Once the ledger knows the PaymentIntent, the platform tag no longer matters (here its
    // metadata was edited at Stripe after the row was created).
    ledger
        .record_from_api(
            &tmt_payments::stripe::PaymentIntent::from_value(&pi_object("processing", "TMT"))
                .unwrap(),
            now() - 10,
        )
        .await
        .unwrap();
    let known = event(
        "evt_known",
        "payment_intent.succeeded",
        pi_object("succeeded", "OTHER_APP"),
        now(),
    );
    assert_eq!(app.deliver(&known).await.0, 200);
    assert_eq!(app.payment(PI).await.status, "succeeded");
}

#[tokio::test]
async fn unhandled_types_are_recorded_and_charges_of_others_are_foreign() {
    let app = spawn_app().await;
    let mut charge = fixture("charge");
    charge["payment_intent"] = json!(PI);
    for (id, kind, object) in [
        ("evt_u1", "charge.refunded", charge.clone()),
        (
            "evt_u2",
            "plan.created",
            fixture("event")["data"]["object"].clone(),
        ),
        (
            "evt_u3",
            // A type of PaymentIntent event this build does not know.
            "payment_intent.type_of_tomorrow",
            pi_object("requires_payment_method", "TMT"),
        ),
    ] {
        assert_eq!(
            app.deliver(&event(id, kind, object, now())).await.0,
            200,
            "{kind}"
        );
    }
    let ledger = app.ledger().await;
    let events = ledger.list_events(10).await.unwrap();
    assert_eq!(events.len(), 3);
    let outcomes: Vec<_> = events.iter().map(|e| e.outcome.as_str()).collect();
    // Newest first; the charge is kept only for payments of ours, and this one is not.
    assert_eq!(outcomes, ["unhandled", "unhandled", "foreign"]);
    assert_eq!(
        events[2].payment_intent_id.as_deref(),
        Some(PI),
        "a charge names its PaymentIntent"
    );
    assert!(app.status_of(PI).await.is_none());
}

#[tokio::test]
async fn final_statuses_are_never_overwritten() {
    let app = spawn_app().await;
    assert_eq!(app.deliver(&ours("evt_f1", SUCCEEDED, now())).await.0, 200);
    for (id, kind) in [
        ("evt_f2", FAILED),
        ("evt_f3", CANCELED),
        ("evt_f4", PROCESSING),
    ] {
        assert_eq!(app.deliver(&ours(id, kind, now() + 1)).await.0, 200);
    }
    assert_eq!(app.payment(PI).await.status, "succeeded");
    assert_eq!(
        app.outcomes(PI).await,
        ["applied", "ignored", "ignored", "ignored"]
    );

    // A read cannot move it either: a final row settled by a verified event is answered from
    // the ledger, and Stripe is not even asked (a read that does reach Stripe cannot overwrite
    // a final status: the ledger's scenario matrix proves that for every path).
    app.mount_pi(pi_object("processing", "TMT")).await;
    let (status, _, body) = app.get_pi(PI).await;
    assert_eq!(
        (status, body["data"]["status"].as_str()),
        (200, Some("succeeded")),
        "{body}"
    );
    assert!(app
        .stripe_calls("GET", &format!("/v1/payment_intents/{PI}"))
        .await
        .is_empty());
    assert_eq!(app.payment(PI).await.status, "succeeded");
}

#[tokio::test]
async fn an_api_read_is_newer_than_older_events() {
    let app = spawn_app().await;
    app.mount_pi(pi_object("requires_action", "TMT")).await;
    assert_eq!(app.get_pi(PI).await.0, 200);
    let t = now();
    for (id, kind, created, then) in [
        // An event created before the read arrives late: it does not win.
        ("evt_late", CREATED, t - 120, "requires_action"),
        // A newer event does, and a final status always does.
        ("evt_newer", PROCESSING, t + 2, "processing"),
        ("evt_old_final", CANCELED, t - 300, "canceled"),
    ] {
        assert_eq!(app.deliver(&ours(id, kind, created)).await.0, 200);
        assert_eq!(app.payment(PI).await.status, then, "{id}");
    }
    assert_eq!(app.outcomes(PI).await, ["ignored", "applied", "applied"]);
}

#[tokio::test]
async fn a_failure_to_record_is_500_and_the_retry_lands() {
    let app = spawn_app().await;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&app.db_url).await.unwrap();
    sqlx::query("ALTER TABLE webhook_events RENAME TO webhook_events_away")
        .execute(&pool)
        .await
        .unwrap();
    let e = ours("evt_retry", PROCESSING, now());
    let (status, body) = app.deliver(&e).await;
    assert_eq!(code(status, &body), (500, "webhook_not_recorded"));
    assert!(
        !body.to_string().contains("webhook_events"),
        "no internals in the answer: {body}"
    );
    sqlx::query("ALTER TABLE webhook_events_away RENAME TO webhook_events")
        .execute(&pool)
        .await
        .unwrap();
    assert!(app.status_of(PI).await.is_none(), "nothing half-applied");
    assert_eq!(app.deliver(&e).await.0, 200);
    assert_eq!(app.payment(PI).await.status, "processing");
}

#[tokio::test]
async fn non_final_statuses_follow_the_newest_event() {
    let app = spawn_app().await;
    let t = now();
    for (i, (kind, status)) in [CREATED, REQUIRES_ACTION, FAILED, PROCESSING]
        .into_iter()
        .enumerate()
    {
        let e = ours(&format!("evt_seq_{i}"), (kind, status), t + i as i64);
        assert_eq!(app.deliver(&e).await.0, 200);
        assert_eq!(app.payment(PI).await.status, status, "{kind}");
    }
    assert_eq!(app.outcomes(PI).await, ["applied"; 4]);
}

#[tokio::test]
async fn ledger_commits_are_durable() {
    let app = spawn_app().await;
    let expected = if on_postgres() {
        // synchronous_commit=on and fsync=on: a commit is flushed before it returns.
        ("on", "on")
    } else {
        // synchronous=FULL (2): every commit is fsync'd before the 200; WAL for readers.
        ("2", "wal")
    };
    let (a, b) = app.ledger().await.durability().await.unwrap();
    assert_eq!((a.as_str(), b.as_str()), expected);
}

#[tokio::test]
async fn webhook_method_and_header_details() {
    let app = spawn_app().await;
    let (status, headers, _) = app.get("/stripe_webhook").await;
    assert_eq!(status, 405);
    assert_eq!(headers["allow"], "POST");
    let r = app
        .http
        .post(format!("{}/stripe_webhook", app.address))
        .header(
            "Stripe-Signature",
            reqwest::header::HeaderValue::from_bytes(b"t=1,v1=\xff").unwrap(),
        )
        .body("{}")
        .send()
        .await
        .unwrap();
    let (status, _, body) = read(r).await;
    assert_eq!(code(status, &body), (400, "signature_malformed"));
}

#[tokio::test]
async fn concurrent_copies_of_one_event_apply_once() {
    let app = spawn_app().await;
    let e = ours("evt_race", CREATED, now());
    let mut tasks = Vec::new();
    for _ in 0..16 {
        tasks.push(app.deliver_in_background(e.to_string()));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let events = app.ledger().await.list_events(100).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].outcome, "applied");
}

#[tokio::test]
async fn one_batch_keeps_each_events_rules() {
    let app = spawn_app().await;
    let ledger = app.ledger().await;
    let t = now();
    let incoming = |id: &str, kind: (&str, &str), created: i64| {
        let body = ours(id, kind, created).to_string();
        let parsed: tmt_payments::stripe::types::Event = serde_json::from_str(&body).unwrap();
        tmt_payments::ledger::IncomingEvent::from_event(
            &parsed,
            body,
            tmt_payments::ledger::EventSource::Webhook,
        )
    };
    let batch = [
        incoming("evt_b1", CREATED, t),
        incoming("evt_b2", SUCCEEDED, t + 1),
        incoming("evt_b1", CREATED, t),
        incoming("evt_b3", FAILED, t + 2),
    ];
    let outcomes = ledger.apply_events(&batch).await.unwrap();
    use tmt_payments::ledger::Outcome::*;
    assert_eq!(outcomes, [Applied, Applied, Duplicate, Ignored]);
    assert_eq!(app.payment(PI).await.status, "succeeded");
    assert_eq!(ledger.list_events(10).await.unwrap().len(), 3);
}

#[tokio::test]
async fn sixty_four_concurrent_deliveries_all_land() {
    let app = spawn_app().await;
    let mut tasks = Vec::new();
    for i in 0..64 {
        let mut pi = pi_object("processing", "TMT");
        pi["id"] = json!(format!("pi_batch{i:03}"));
        let body = event(
            &format!("evt_batch_{i}"),
            "payment_intent.processing",
            pi,
            now(),
        )
        .to_string();
        tasks.push(app.deliver_in_background(body));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let ledger = app.ledger().await;
    assert_eq!(ledger.list_events(100).await.unwrap().len(), 64);
    assert_eq!(
        ledger.list::<PaymentRow>(None, 100).await.unwrap().len(),
        64
    );
}

/// Sends `head` and then `body` over a connection of its own, without ending a chunked body,
/// and reads the one response: status, lower-cased headers, body.
async fn raw_exchange(
    app: &TestApp,
    head: &str,
    body: &[u8],
) -> (u16, Vec<(String, String)>, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut received = Vec::new();
    let mut buf = [0u8; 8192];
    let (head_len, headers, status) = loop {
        let n = stream.read(&mut buf).await.expect("an answer");
        assert!(n > 0, "closed without an answer");
        received.extend_from_slice(&buf[..n]);
        if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            let text = String::from_utf8_lossy(&received[..end]).to_string();
            let mut lines = text.split("\r\n");
            let status: u16 = lines
                .next()
                .unwrap()
                .split(' ')
                .nth(1)
                .unwrap()
                .parse()
                .unwrap();
            let headers: Vec<(String, String)> = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                .collect();
            break (end + 4, headers, status);
        }
    };
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .map(|(_, v)| v.parse().unwrap())
        .expect("a Content-Length");
    while received.len() < head_len + length {
        let n = stream.read(&mut buf).await.expect("the whole body");
        assert!(n > 0, "closed mid-body");
        received.extend_from_slice(&buf[..n]);
    }
    let body =
        serde_json::from_slice(&received[head_len..head_len + length]).unwrap_or(Value::Null);
    (status, headers, body)
}

#[tokio::test]
async fn bodies_over_1_mib_get_the_json_413() {
    let app = spawn_app().await;
    let limit = 1024 * 1024;
    let expected = json!({
        "status": 413,
        "error": "El cuerpo excede el tamaño máximo permitido",
        "code": "body_too_large"
    });
    let signature = sign(b"{}", WEBHOOK_SECRET, now());

    let head = |length: &str| {
        format!(
            "POST /stripe_webhook HTTP/1.1\r\nHost: test\r\nStripe-Signature: {signature}\r\n\
             Content-Type: application/json\r\n{length}\r\n\r\n"
        )
    };
    // A declared length one byte over the limit.
    let declared = (
        head(&format!("Content-Length: {}", limit + 1)),
        vec![b' '; limit + 1],
    );
    // No length declared: a chunked body that grows past the limit (sixteen 64 KiB chunks are
    // exactly 1 MiB, then one byte more).
    let mut chunked = Vec::new();
    for _ in 0..16 {
        chunked.extend_from_slice(b"10000\r\n");
        chunked.extend_from_slice(&[b' '; 0x10000]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"1\r\n \r\n");
    let chunked = (head("Transfer-Encoding: chunked"), chunked);
    for (head, sent) in [declared, chunked] {
        let (status, headers, body) = raw_exchange(&app, &head, &sent).await;
        assert_eq!(status, 413, "{head}");
        assert_eq!(body, expected);
        assert!(
            headers
                .iter()
                .any(|(k, v)| k == "content-type" && v == "application/json"),
            "{headers:?}"
        );
    }
    assert_eq!(app.event_count().await, 0);

    // Exactly 1 MiB is read, and then judged on its content.
    let (status, body) = app.webhook(&" ".repeat(limit), Some(&signature)).await;
    assert_eq!(code(status, &body), (400, "signature_mismatch"));
}

#[tokio::test]
async fn the_webhook_takes_any_content_type() {
    let app = spawn_app().await;
    for (i, content_type) in [
        Some("text/plain; charset=utf-8"),
        Some("application/octet-stream"),
        None,
    ]
    .into_iter()
    .enumerate()
    {
        let e = ours(
            &format!("evt_ct_{i}"),
            ("payment_intent.created", "processing"),
            now(),
        );
        let body = e.to_string();
        let mut r = app
            .http
            .post(format!("{}/stripe_webhook", app.address))
            .header(
                "Stripe-Signature",
                sign(body.as_bytes(), WEBHOOK_SECRET, now()),
            )
            .body(body);
        if let Some(ct) = content_type {
            r = r.header("content-type", ct);
        }
        let (status, _, response) = read(r.send().await.unwrap()).await;
        assert_eq!(
            (status, response),
            (200, json!({"received": true})),
            "{content_type:?}"
        );
    }
    assert_eq!(app.event_count().await, 3);
}
