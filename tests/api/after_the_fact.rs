//! What the platform is told must stay true after the fact (docs/contract.md): each test is a
//! case where the service once said one thing and the money then did another, or said it in a
//! way that hid the truth (a 500, the wrong code, the authorised amount). Stripe is played by
//! wiremock.

use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;

/// Unix milliseconds now.
fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Unix milliseconds as the ISO 8601 a create writes in `metadata[hold_expires_at]`.
fn iso_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// An authorised (manual-capture) payment of 50.00 USD whose seats are held until `hold_ms`.
fn authorised(id: &str, hold_ms: i64) -> Value {
    let mut pi = payment_intent(id, 5000, "usd", "requires_capture");
    pi["capture_method"] = json!("manual");
    pi["amount_capturable"] = json!(5000);
    pi["metadata"] = json!({"platform": "TMT", "hold_expires_at": iso_ms(hold_ms)});
    pi
}

/// `pi` as Stripe answers once it is in `status` (captured for `received`, or released).
fn moved(pi: &Value, status: &str, received: i64) -> Value {
    let mut pi = pi.clone();
    pi["status"] = json!(status);
    pi["amount_capturable"] = json!(0);
    pi["amount_received"] = json!(received);
    pi
}

/// The ledger learns of the authorisation as Stripe tells it, and Stripe reads it back.
async fn authorised_in_ledger(app: &TestApp, pi: &Value) {
    let id = pi["id"].as_str().unwrap();
    app.delivered(
        &format!("evt_auth_{id}"),
        "payment_intent.amount_capturable_updated",
        pi.clone(),
        now(),
    )
    .await;
    app.mount_pi(pi.clone()).await;
}

/// Stripe answers `POST /v1/payment_intents/{id}/{action}` with `pi`.
async fn mount_action(app: &TestApp, id: &str, action: &str, answer: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path(format!("/v1/payment_intents/{id}/{action}")))
        .respond_with(answer)
        .mount(&app.stripe)
        .await;
}

async fn capture(app: &TestApp, data: Value) -> Answer {
    app.post("/stripe_capture_payment", json!({ "data": data }))
        .await
}

#[tokio::test]
async fn a_capture_after_the_hold_is_refused_before_stripe_and_the_authorisation_released() {
    let app = spawn_app().await;
    let id = "pi_3HoldEndedCapture01";
    // The hold ended 1.3 s ago: a second-granular check would still see "this second".
    let pi = authorised(id, now_ms() - 1300);
    authorised_in_ledger(&app, &pi).await;
    let captured = ResponseTemplate::new(200).set_body_json(moved(&pi, "succeeded", 5000));
    mount_action(&app, id, "capture", captured).await;
    let released = ResponseTemplate::new(200).set_body_json(moved(&pi, "canceled", 0));
    mount_action(&app, id, "cancel", released).await;

    for _ in 0..2 {
        let (status, _, body) = capture(&app, json!({"payment_intent_id": id})).await;
        assert_eq!(
            refusal(status, &body),
            (
                409,
                "hold_expired",
                "La reserva expiró; el pago no puede ser capturado"
            )
        );
    }
    let capture_path = format!("/v1/payment_intents/{id}/capture");
    assert!(
        app.stripe_calls("POST", &capture_path).await.is_empty(),
        "the capture never reached Stripe"
    );
    // Released as the hold worker releases it (whichever of the two got there first).
    let cancels = app
        .stripe_calls("POST", &format!("/v1/payment_intents/{id}/cancel"))
        .await;
    assert!(!cancels.is_empty(), "the authorisation is released");
    for cancel in &cancels {
        assert_eq!(
            form_value(cancel, "cancellation_reason").as_deref(),
            Some("abandoned")
        );
        let key = cancel.headers.get("idempotency-key").unwrap();
        assert_eq!(key.to_str().unwrap(), format!("tmt-hold-{id}"));
    }
    assert_eq!(app.status_of(id).await.as_deref(), Some("canceled"));
    let hold = app.ledger().await.hold_of(id).await.unwrap().unwrap();
    assert_eq!(hold.1.as_deref(), Some("released"));
}

/// The capture is asked for while the seats are held; Stripe takes its time, the hold ends,
/// and the `payment_intent.succeeded` webhook (dated after the hold's end) reaches the ledger
/// before the capture's own answer. The platform is told `succeeded` by the capture: the
/// payment must not be taken for a late one and refunded under `LATE_PAYMENT_POLICY=refund`.
#[tokio::test]
async fn a_capture_asked_for_in_time_is_in_time_whichever_news_of_it_arrives_first() {
    let receiver = Receiver::start(0).await;
    let mut settings = receiver.env().to_vec();
    settings.push(("LATE_PAYMENT_POLICY", "refund"));
    let app = spawn_binary_with(&settings).await;
    let id = "pi_3CaptureInTime0001";
    let hold_ms = now_ms() + 800;
    let pi = authorised(id, hold_ms);
    authorised_in_ledger(&app, &pi).await;
    let succeeded = moved(&pi, "succeeded", 5000);
    let slow = ResponseTemplate::new(200)
        .set_body_json(succeeded.clone())
        .set_delay(std::time::Duration::from_secs(3));
    mount_action(&app, id, "capture", slow).await;

    let asked = app.post_in_background(
        "/stripe_capture_payment",
        json!({"data": {"payment_intent_id": id}}),
        &[],
    );
    let capture_path = format!("/v1/payment_intents/{id}/capture");
    eventually("Stripe has the capture", PATIENCE, || async {
        !app.stripe_calls("POST", &capture_path).await.is_empty()
    })
    .await;
    // Stripe's event of the capture, created after the hold's end.
    let after_the_hold = hold_ms / 1000 + 2;
    app.delivered(
        "evt_captured_late_news",
        "payment_intent.succeeded",
        succeeded,
        after_the_hold,
    )
    .await;
    let (status, _, body) = asked.await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["status"], "succeeded");

    let ledger = app.ledger().await;
    let (_, state, late) = ledger.hold_of(id).await.unwrap().unwrap();
    assert_eq!((state.as_deref(), late), (Some("kept"), false));
    assert!(ledger.late_refunds_due(10).await.unwrap().is_empty());
    let announced = receiver.expect(id, "payment.succeeded").await;
    assert_eq!(announced["data"]["late"], false);
    assert!(app.stripe_calls("POST", "/v1/refunds").await.is_empty());
}

/// A capture of a payment that is not authorised (the platform asking too early, or of an
/// automatic payment) marks nothing: if the buyer then pays after the hold, the payment is late.
#[tokio::test]
async fn a_capture_refused_as_not_capturable_does_not_make_a_later_payment_in_time() {
    let app = spawn_app().await;
    let id = "pi_3NotYetAuthorised01";
    let hold_ms = now_ms() + 60_000;
    let mut unpaid = authorised(id, hold_ms);
    unpaid["status"] = json!("requires_payment_method");
    unpaid["amount_capturable"] = json!(0);
    authorised_in_ledger(&app, &unpaid).await;
    let (status, _, body) = capture(&app, json!({"payment_intent_id": id})).await;
    assert_eq!(code(status, &body), (400, "payment_not_capturable"));
    let paid = moved(&unpaid, "succeeded", 5000);
    app.delivered("evt_paid_late", SUCCEEDED.0, paid, hold_ms / 1000 + 2)
        .await;
    let (_, state, late) = app.ledger().await.hold_of(id).await.unwrap().unwrap();
    assert_eq!((state.as_deref(), late), (Some("late"), true));
}
