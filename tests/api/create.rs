//! `POST /stripe_create_payment_intent` through the HTTP surface, Stripe played by wiremock.

use serde_json::{json, Value};
use tmt_payments::ledger::PaymentRow;
use wiremock::ResponseTemplate;

use crate::helpers::*;

#[tokio::test]
async fn create_sends_stripe_the_contracted_request_and_records_the_payment() {
    let app = spawn_app().await;
    app.mount_create().await;
    let (status, headers, body) = app
        .create(json!({"amount": 50, "currency": "USD",
                            "metadata": {"event_id": "ev-9", "seats": 2, "vip": false,
                                         "platform": "other", "timestamp": "forged"}}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["access-control-allow-origin"], "*");
    assert_eq!(body["message"], "Procesado");
    assert_eq!(body["status"], 200);
    let data = &body["data"];
    assert_eq!(data["success"], true);
    assert_eq!(data["paymentIntentId"], "pi_3TestCreated000001");
    assert_eq!(data["clientSecret"], "pi_3TestCreated000001_secret_abc123");
    assert_eq!(data["amount"].to_string(), "50.00");
    assert_eq!(data["currency"], "usd");

    let requests = app.stripe_requests().await;
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(
        r.headers["authorization"].to_str().unwrap(),
        format!("Bearer {SECRET_KEY}")
    );
    assert_eq!(r.headers["stripe-version"], "2025-03-31.basil");
    assert!(r.headers["idempotency-key"].to_str().unwrap().len() >= 16);
    assert_eq!(
        r.headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(form_value(r, "amount").as_deref(), Some("5000"));
    assert_eq!(form_value(r, "currency").as_deref(), Some("usd"));
    assert_eq!(
        form_value(r, "description").as_deref(),
        Some("Compra de tickets")
    );
    assert_eq!(
        form_value(r, "automatic_payment_methods[enabled]").as_deref(),
        Some("true")
    );
    assert_eq!(form_value(r, "metadata[event_id]").as_deref(), Some("ev-9"));
    assert_eq!(form_value(r, "metadata[seats]").as_deref(), Some("2"));
    assert_eq!(form_value(r, "metadata[vip]").as_deref(), Some("false"));
    assert_eq!(form_value(r, "metadata[platform]").as_deref(), Some("TMT"));
    let ts = form_value(r, "metadata[timestamp]").unwrap();
    assert_ne!(ts, "forged");
    assert!(chrono::DateTime::parse_from_rfc3339(&ts).is_ok(), "{ts}");
    assert!(
        ts.ends_with('Z') && ts.len() == 24,
        "ISO 8601 with milliseconds: {ts}"
    );
    assert_eq!(
        form(r)
            .iter()
            .filter(|(k, _)| k == "metadata[platform]")
            .count(),
        1
    );

    let row = app
        .ledger()
        .await
        .payment("pi_3TestCreated000001")
        .await
        .unwrap()
        .expect("recorded before the response");
    assert_eq!(row.amount, 5000);
    assert_eq!(row.currency, "usd");
    assert_eq!(row.status, "requires_payment_method");
    assert_eq!(row.description.as_deref(), Some("Compra de tickets"));
    assert_eq!(row.metadata["platform"], "TMT");
    assert_eq!(row.metadata["event_id"], "ev-9");
}

#[tokio::test]
async fn every_conversion_example_of_the_spec() {
    let app = spawn_app().await;
    app.mount_create().await;
    // (amount as JSON text, currency, minor units sent, major units answered)
    let cases = [
        ("50", "usd", "5000", "50.00"),
        ("50.00", "usd", "5000", "50.00"),
        ("\"50.00\"", "usd", "5000", "50.00"),
        ("19.999", "usd", "2000", "20.00"),
        ("1.005", "usd", "101", "1.01"),
        ("\"1.005\"", "usd", "101", "1.01"),
        ("500", "jpy", "500", "500"),
        ("500.4", "jpy", "500", "500"),
        ("1.234", "kwd", "1230", "1.230"),
        ("1.235", "bhd", "1240", "1.240"),
        ("5", "isk", "500", "5.00"),
        ("5.5", "ugx", "600", "6.00"),
        ("10", "mxn", "1000", "10.00"),
        ("0.30", "gbp", "30", "0.30"),
        ("999999.99", "usd", "99999999", "999999.99"),
    ];
    for (amount, currency, minor, major) in cases {
        let body = format!(r#"{{"data": {{"amount": {amount}, "currency": "{currency}"}}}}"#);
        let (status, _, response) = app
            .post_raw("/stripe_create_payment_intent", body.into_bytes())
            .await;
        assert_eq!(status, 200, "{amount} {currency}: {response}");
        let sent = app.stripe_requests().await.pop().unwrap();
        assert_eq!(
            form_value(&sent, "amount").as_deref(),
            Some(minor),
            "{amount} {currency}"
        );
        assert_eq!(
            response["data"]["amount"].to_string(),
            major,
            "{amount} {currency}"
        );
    }
}

#[tokio::test]
async fn every_validation_row_answers_400_and_sends_nothing() {
    let app = spawn_app().await;
    app.mount_create().await;
    let many_keys: serde_json::Map<String, Value> =
        (0..49).map(|i| (format!("k{i}"), json!("v"))).collect();
    // With a hold, the service's third key leaves 47 of Stripe's 50 to the caller.
    let keys_48: serde_json::Map<String, Value> =
        (0..48).map(|i| (format!("k{i}"), json!("v"))).collect();
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!({}), "amount_invalid", "El monto es requerido y debe ser mayor a 0"),
        (json!({"amount": null}), "amount_invalid", "El monto es requerido y debe ser mayor a 0"),
        (json!({"amount": "abc"}), "amount_invalid", "El monto es requerido y debe ser mayor a 0"),
        (json!({"amount": "NaN"}), "amount_invalid", "El monto es requerido y debe ser mayor a 0"),
        (json!({"amount": 0}), "amount_invalid", "El monto es requerido y debe ser mayor a 0"),
        (json!({"amount": -5}), "amount_invalid", "El monto es requerido y debe ser mayor a 0"),
        (json!({"amount": true}), "amount_invalid", "El monto es requerido y debe ser mayor a 0"),
        (json!({"amount": [50]}), "amount_invalid", "El monto es requerido y debe ser mayor a 0"),
        (json!({"amount": 50, "currency": "xyz"}), "currency_invalid", "Moneda no soportada: xyz"),
        (json!({"amount": 50, "currency": "us"}), "currency_invalid", "Moneda no soportada: us"),
        (json!({"amount": 50, "currency": 840}), "currency_invalid", "Moneda no soportada: 840"),
        (json!({"amount": 0.49}), "amount_too_small", "El monto mínimo para USD es 0.50"),
        (json!({"amount": 0.004}), "amount_too_small", "El monto mínimo para USD es 0.50"),
        (json!({"amount": 0.29, "currency": "gbp"}), "amount_too_small", "El monto mínimo para GBP es 0.30"),
        (json!({"amount": 49, "currency": "jpy"}), "amount_too_small", "El monto mínimo para JPY es 50"),
        (json!({"amount": "9.99", "currency": "MXN"}), "amount_too_small", "El monto mínimo para MXN es 10.00"),
        (json!({"amount": 1000000}), "amount_too_large", "El monto excede el máximo permitido"),
        (json!({"amount": "1e40"}), "amount_too_large", "El monto excede el máximo permitido"),
        (json!({"amount": 100000000, "currency": "jpy"}), "amount_too_large", "El monto excede el máximo permitido"),
        (json!({"amount": 50, "description": 5}), "description_invalid", "Descripción inválida"),
        (json!({"amount": 50, "description": "x".repeat(1001)}), "description_invalid", "Descripción inválida"),
        (json!({"amount": 50, "metadata": "x"}), "metadata_invalid", "Metadata inválida: debe ser un objeto"),
        (json!({"amount": 50, "metadata": [1]}), "metadata_invalid", "Metadata inválida: debe ser un objeto"),
        (json!({"amount": 50, "metadata": {"a": {}}}), "metadata_invalid", "Metadata inválida: el valor de 'a' debe ser texto, número o booleano"),
        (json!({"amount": 50, "metadata": {"a": []}}), "metadata_invalid", "Metadata inválida: el valor de 'a' debe ser texto, número o booleano"),
        (json!({"amount": 50, "metadata": {"a": null}}), "metadata_invalid", "Metadata inválida: el valor de 'a' debe ser texto, número o booleano"),
        (json!({"amount": 50, "metadata": many_keys}), "metadata_invalid", "Metadata inválida: máximo 48 claves"),
        (json!({"amount": 50, "holdSeconds": 600, "metadata": keys_48}), "metadata_invalid", "Metadata inválida: máximo 47 claves"),
        (json!({"amount": 50, "holdSeconds": 59}), "hold_invalid", "Tiempo de reserva inválido (60–86400 segundos)"),
        (json!({"amount": 50, "holdSeconds": 86401}), "hold_invalid", "Tiempo de reserva inválido (60–86400 segundos)"),
        (json!({"amount": 50, "holdSeconds": "600"}), "hold_invalid", "Tiempo de reserva inválido (60–86400 segundos)"),
        (json!({"amount": 50, "holdSeconds": 600.5}), "hold_invalid", "Tiempo de reserva inválido (60–86400 segundos)"),
        (json!({"amount": 50, "captureMethod": "later"}), "capture_method_invalid", "Método de captura inválido"),
        (json!({"amount": 50, "captureMethod": true}), "capture_method_invalid", "Método de captura inválido"),
        (json!({"amount": 50, "metadata": {"k".repeat(41): "v"}}), "metadata_invalid", "Metadata inválida: la clave 'kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk' debe tener entre 1 y 40 caracteres"),
        (json!({"amount": 50, "metadata": {"a[b]": "v"}}), "metadata_invalid", "Metadata inválida: la clave 'a[b]' no puede contener '[' ni ']'"),
        (json!({"amount": 50, "metadata": {"a": "v".repeat(501)}}), "metadata_invalid", "Metadata inválida: el valor de 'a' excede 500 caracteres"),
    ];
    for (data, code, message) in cases {
        let (status, headers, body) = app.create(data.clone()).await;
        assert_eq!(status, 400, "{data}: {body}");
        assert_eq!(body["code"], code, "{data}");
        assert_eq!(body["error"], message, "{data}");
        assert_eq!(body["status"], 400);
        assert_eq!(headers["access-control-allow-origin"], "*");
    }
    assert!(
        app.stripe_requests().await.is_empty(),
        "nothing may reach Stripe"
    );
    // The limits themselves are accepted.
    let edge: serde_json::Map<String, Value> = (0..48)
        .map(|i| (format!("k{i}"), json!("v".repeat(500))))
        .collect();
    let (status, _, body) = app
        .create(json!({"amount": 0.5, "metadata": edge, "description": "d".repeat(1000)}))
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn stripe_card_error_is_a_500_with_stripes_message() {
    let app = spawn_app().await;
    stub(
        &app.stripe,
        "POST",
        ResponseTemplate::new(402)
            .insert_header("Request-Id", "req_decl_1")
            .set_body_json(json!({"error": {
                    "type": "card_error", "code": "card_declined",
                    "decline_code": "generic_decline", "message": "Your card was declined.",
                    "doc_url": "https://stripe.com/docs/error-codes/card-declined"}})),
    )
    .await;
    let (status, _, body) = app.create(json!({"amount": 50})).await;
    assert_eq!(status, 500);
    assert_eq!(
        body,
        json!({"status": 500, "error": "Your card was declined.", "code": "stripe_error",
               "stripe": {"type": "card_error", "code": "card_declined",
                          "decline_code": "generic_decline", "request_id": "req_decl_1"}})
    );
    assert_eq!(app.stripe_requests().await.len(), 1, "a 402 is not retried");
}

#[tokio::test]
async fn retries_reuse_one_idempotency_key() {
    let app = spawn_app().await;
    // A 500, then a 409, then the PaymentIntent.
    let unknown = stripe_error(500, "api_error", "An unknown error occurred");
    stub_first(&app.stripe, "POST", unknown).await;
    let concurrent = stripe_error(409, "idempotency_error", "concurrent");
    stub_first(&app.stripe, "POST", concurrent).await;
    app.mount_create().await;
    let (status, _, body) = app.create(json!({"amount": 50})).await;
    assert_eq!(status, 200, "{body}");
    let requests = app.stripe_requests().await;
    assert_eq!(requests.len(), 3, "500 and 409 are retried");
    let keys: Vec<_> = requests
        .iter()
        .map(|r| r.headers["idempotency-key"].clone())
        .collect();
    assert!(keys.iter().all(|k| *k == keys[0]), "{keys:?}");
    // Two requests from callers get two different keys.
    app.create(json!({"amount": 50})).await;
    let last = app.stripe_requests().await.pop().unwrap();
    assert_ne!(last.headers["idempotency-key"], keys[0]);
}

#[tokio::test]
async fn persistent_500_gives_up_after_two_retries() {
    let app = spawn_app().await;
    let busy = ResponseTemplate::new(503).set_body_string("<html>busy</html>");
    stub(&app.stripe, "POST", busy).await;
    let (status, _, body) = app.create(json!({"amount": 50})).await;
    assert_eq!(status, 500);
    assert_eq!(body["code"], "stripe_error");
    assert_eq!(body["error"], "Stripe respondió con el estado HTTP 503");
    assert_eq!(app.stripe_requests().await.len(), 3);
}

#[tokio::test]
async fn should_retry_header_decides() {
    // (Stripe's answer, its Stripe-Should-Retry, the error answered if checked, attempts)
    let cases = [
        (
            stripe_error(500, "api_error", "no retry"),
            "false",
            Some("no retry"),
            1,
        ),
        (
            stripe_error(400, "invalid_request_error", "lock"),
            "true",
            None,
            3,
        ),
    ];
    for (answer, should_retry, error, attempts) in cases {
        let app = spawn_app().await;
        let answer = answer.insert_header("Stripe-Should-Retry", should_retry);
        stub(&app.stripe, "POST", answer).await;
        let (status, _, body) = app.create(json!({"amount": 50})).await;
        if let Some(error) = error {
            assert_eq!((status, body["error"].as_str()), (500, Some(error)));
        }
        assert_eq!(
            app.stripe_requests().await.len(),
            attempts,
            "{should_retry}"
        );
    }
}

#[tokio::test]
async fn stripe_timeout_is_stripe_unreachable() {
    let app = spawn_app_with(|c| c.stripe.timeout = std::time::Duration::from_secs(1)).await;
    // Stripe answers after 3 s: past the whole budget.
    stub(&app.stripe, "POST", delayed_payment_intent()).await;
    let (status, _, body) = app.create(json!({"amount": 50})).await;
    assert_eq!(status, 500);
    assert_eq!(body["code"], "stripe_unreachable");
    assert_eq!(body["error"], "No se pudo contactar con Stripe");
    assert!(body.get("stripe").is_none());
    let none: Vec<PaymentRow> = app.ledger().await.list(None, 10).await.unwrap();
    assert!(none.is_empty());
    // The budget is for the whole call: the attempt that used it up is not retried.
    assert_eq!(app.stripe_requests().await.len(), 1);
}

fn delayed_payment_intent() -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(payment_intent(
            "pi_late",
            5000,
            "usd",
            "requires_payment_method",
        ))
        .set_delay(std::time::Duration::from_secs(3))
}

#[tokio::test]
async fn api_version_is_configurable() {
    let app = spawn_app_with(|c| c.stripe.api_version = "2024-06-20".into()).await;
    app.mount_create().await;
    app.create(json!({"amount": 50})).await;
    assert_eq!(
        app.stripe_requests().await[0].headers["stripe-version"],
        "2024-06-20"
    );
}

#[tokio::test]
async fn the_first_failing_rule_of_the_table_is_reported() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"amount": "x", "currency": "zzz", "description": 1}),
            "amount_invalid",
        ),
        (
            json!({"amount": 5, "currency": "zzz", "description": 1}),
            "currency_invalid",
        ),
        (
            json!({"amount": 0.1, "description": 1, "metadata": 1}),
            "amount_too_small",
        ),
        (
            json!({"amount": 10000000, "description": 1, "metadata": 1}),
            "amount_too_large",
        ),
        (
            json!({"amount": "1e50", "currency": "zzz"}),
            "currency_invalid",
        ),
        (
            json!({"amount": 5, "description": 1, "metadata": 1}),
            "description_invalid",
        ),
    ];
    for (data, code) in cases {
        let (_, _, body) = app.create(data.clone()).await;
        assert_eq!(body["code"], code, "{data}");
    }
    assert!(app.stripe_requests().await.is_empty());
}

#[tokio::test]
async fn unreachable_stripe_is_retried_then_reported() {
    // A port nothing listens on: every attempt is refused at once.
    let app = spawn_app_with(|c| c.stripe.api_base = unreachable_base()).await;
    let (status, _, body) = app.create(json!({"amount": 50})).await;
    assert_eq!(status, 500);
    assert_eq!(body["code"], "stripe_unreachable");
}
