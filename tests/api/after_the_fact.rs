//! What the platform is told must stay true after the fact (docs/contract.md): each test is a
//! case where the service once said one thing and the money then did another, or said it in a
//! way that hid the truth (a 500, the wrong code, the authorised amount). Stripe is played by
//! wiremock.

use serde_json::{json, Value};
use tmt_payments::ledger::RefundRow;
use wiremock::matchers::{method, path};
use wiremock::{Mock, Request, ResponseTemplate};

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

/// The ledger learns of `pi` from Stripe's event of type `kind`, and Stripe reads it back.
async fn known_by_event(app: &TestApp, kind: &str, pi: &Value) {
    let id = pi["id"].as_str().unwrap();
    let event_id = format!("evt_{}_{id}", kind.rsplit('.').next().unwrap());
    app.delivered(&event_id, kind, pi.clone(), now()).await;
    app.mount_pi(pi.clone()).await;
}

/// The ledger learns of the authorisation as Stripe tells it, and Stripe reads it back.
async fn authorised_in_ledger(app: &TestApp, pi: &Value) {
    known_by_event(app, "payment_intent.amount_capturable_updated", pi).await;
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
    assert_eq!(hold.state.map(|s| s.as_str()), Some("released"));
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
    let hold = ledger.hold_of(id).await.unwrap().unwrap();
    assert_eq!(
        (hold.state.map(|s| s.as_str()), hold.late),
        (Some("kept"), false)
    );
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
    let hold = app.ledger().await.hold_of(id).await.unwrap().unwrap();
    assert_eq!(
        (hold.state.map(|s| s.as_str()), hold.late),
        (Some("late"), true)
    );
}

/// A payment of ours, succeeded in the ledger (its webhook arrived) and at "Stripe".
async fn paid(app: &TestApp, id: &str, amount: i64) {
    let pi = payment_intent(id, amount, "usd", "succeeded");
    known_by_event(app, SUCCEEDED.0, &pi).await;
}

/// Stripe's error envelope for a refusal with its `code`.
fn stripe_refusal(status: u16, code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("Request-Id", "req_refused")
        .set_body_json(json!({"error": {
            "type": "invalid_request_error", "code": code, "message": message}}))
}

#[tokio::test]
async fn stripes_refusals_on_refund_cancel_and_capture_have_codes_of_their_own() {
    let app = spawn_app().await;
    let refusals = [
        (
            "pi_3RefusedMissing01",
            stripe_refusal(
                404,
                "resource_missing",
                "No such payment_intent: 'pi_3RefusedMissing01'",
            ),
            (404, "payment_not_found", "El pago no existe"),
        ),
        (
            "pi_3RefusedDisputed1",
            stripe_refusal(
                400,
                "charge_disputed",
                "Charge ch_1 has been charged back; cannot issue a refund.",
            ),
            (409, "payment_disputed", "El pago está en disputa"),
        ),
        (
            "pi_3RefusedBalance01",
            stripe_refusal(
                400,
                "balance_insufficient",
                "Insufficient funds in your Stripe balance to refund this amount.",
            ),
            (
                409,
                "balance_insufficient",
                "Saldo insuficiente en Stripe para el reembolso",
            ),
        ),
    ];
    for (id, answer, expected) in refusals {
        paid(&app, id, 4000).await;
        Mock::given(method("POST"))
            .and(path("/v1/refunds"))
            .and(move |r: &Request| form_value(r, "payment_intent").as_deref() == Some(id))
            .respond_with(answer)
            .mount(&app.stripe)
            .await;
        let (status, _, body) = app.refund(json!({"payment_intent_id": id})).await;
        assert_eq!(refusal(status, &body), expected, "{body}");
        assert_eq!(body["stripe"]["request_id"], "req_refused", "{body}");
        // Nothing was refunded: everything is still left.
        let ledger = app.ledger().await;
        assert_eq!(ledger.refundable(id).await.unwrap(), 4000);
    }

    // Cancel and capture of a PaymentIntent Stripe does not have.
    let gone = "pi_3NotAtStripe00001";
    let missing = || stripe_refusal(404, "resource_missing", "No such payment_intent");
    Mock::given(method("GET"))
        .and(path(format!("/v1/payment_intents/{gone}")))
        .respond_with(missing())
        .mount(&app.stripe)
        .await;
    mount_action(&app, gone, "cancel", missing()).await;
    let (status, _, body) = app.cancel(json!({"payment_intent_id": gone})).await;
    assert_eq!(
        refusal(status, &body),
        (404, "payment_not_found", "El pago no existe")
    );
    let (status, _, body) = capture(&app, json!({"payment_intent_id": gone})).await;
    assert_eq!(
        refusal(status, &body),
        (404, "payment_not_found", "El pago no existe")
    );
    // The seed's functions keep the seed's rule: Stripe's message, as a 500.
    let (status, _, body) = app.confirm(gone).await;
    assert_eq!(
        refusal(status, &body),
        (500, "stripe_error", "No such payment_intent")
    );
    let (status, _, body) = app.get_pi(gone).await;
    assert_eq!(code(status, &body), (500, "stripe_error"));
}

/// A refusal with a code (and a type) this build does not know is Stripe's: a 500
/// `stripe_error` with Stripe's message, and the code, type and decline code passed on to the
/// caller's `stripe` object exactly as Stripe sent them.
#[tokio::test]
async fn a_refusal_with_a_code_this_build_does_not_know_is_passed_on_as_stripe_sent_it() {
    let app = spawn_app().await;
    let id = "pi_3RefusedNewCode001";
    paid(&app, id, 4000).await;
    let answer = ResponseTemplate::new(402)
        .insert_header("Request-Id", "req_newcode")
        .set_body_json(json!({"error": {
            "type": "card_error_v2", "code": "refund_window_closed_2031",
            "decline_code": "some_new_decline", "message": "The refund window has closed."}}));
    Mock::given(method("POST"))
        .and(path("/v1/refunds"))
        .respond_with(answer)
        .mount(&app.stripe)
        .await;
    let (status, _, body) = app.refund(json!({"payment_intent_id": id})).await;
    assert_eq!(
        refusal(status, &body),
        (500, "stripe_error", "The refund window has closed.")
    );
    assert_eq!(
        body["stripe"],
        json!({"type": "card_error_v2", "code": "refund_window_closed_2031",
               "decline_code": "some_new_decline", "request_id": "req_newcode"}),
        "{body}"
    );
}

#[tokio::test]
async fn an_amount_that_does_not_fit_is_amount_too_large_on_refund_and_capture() {
    let app = spawn_app().await;
    let paid_id = "pi_3TooLargeRefund001";
    paid(&app, paid_id, 4000).await;
    let held = authorised("pi_3TooLargeCapture01", now_ms() + 3_600_000);
    authorised_in_ledger(&app, &held).await;
    let too_large = (
        400,
        "amount_too_large",
        "El monto excede el máximo permitido",
    );
    for amount in [
        json!("1e30"),
        json!(1e30),
        json!(1000000),
        json!("999999.995"),
    ] {
        let (status, _, body) = app
            .refund(json!({"payment_intent_id": paid_id, "amount": amount}))
            .await;
        assert_eq!(refusal(status, &body), too_large, "refund of {amount}");
        let (status, _, body) = capture(
            &app,
            json!({"payment_intent_id": held["id"], "amount": amount}),
        )
        .await;
        assert_eq!(refusal(status, &body), too_large, "capture of {amount}");
    }
    // What rounds to nothing is still not an amount.
    let (status, _, body) = app
        .refund(json!({"payment_intent_id": paid_id, "amount": "0.001"}))
        .await;
    assert_eq!(code(status, &body), (400, "amount_invalid"));
    assert!(app.stripe_calls("POST", "/v1/refunds").await.is_empty());
    let capture_path = format!(
        "/v1/payment_intents/{}/capture",
        held["id"].as_str().unwrap()
    );
    assert!(app.stripe_calls("POST", &capture_path).await.is_empty());
}

fn refund_of(pi: &str, id: &str, amount: i64) -> Value {
    let mut r = fixture("refund");
    r["id"] = json!(id);
    r["amount"] = json!(amount);
    r["currency"] = json!("usd");
    r["payment_intent"] = json!(pi);
    r["status"] = json!("succeeded");
    r
}

/// 100.00 paid; the ledger knows of a refund of 29.00; another of 20.00 was made in the Stripe
/// Dashboard and its events have not arrived. Stripe refuses 60.00: what is left is 51.00,
/// not the 71.00 the ledger thought.
#[tokio::test]
async fn an_over_refund_stripe_refuses_is_answered_with_the_true_remainder() {
    let app = spawn_app().await;
    let id = "pi_3TrueRemainder0001";
    paid(&app, id, 10000).await;
    let ours = refund_of(id, "re_ours", 2900);
    app.delivered("evt_ours", "refund.created", ours.clone(), now())
        .await;
    let dashboard = refund_of(id, "re_dashboard", 2000);
    Mock::given(method("POST"))
        .and(path("/v1/refunds"))
        .respond_with(stripe_refusal(
            400,
            "amount_too_large",
            "Refund amount ($60.00) is greater than unrefunded amount on charge ($51.00)",
        ))
        .mount(&app.stripe)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/refunds"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "list", "url": "/v1/refunds", "has_more": false,
            "data": [dashboard, ours]})))
        .mount(&app.stripe)
        .await;

    let (status, _, body) = app
        .refund(json!({"payment_intent_id": id, "amount": 60}))
        .await;
    assert_eq!(
        refusal(status, &body),
        (
            400,
            "refund_exceeds_remaining",
            "El monto excede lo que queda por reembolsar: 51.00 USD"
        )
    );
    let listed = app.stripe_calls("GET", "/v1/refunds").await;
    assert_eq!(listed.len(), 1, "one call");
    assert_eq!(
        listed[0]
            .url
            .query_pairs()
            .find(|(k, _)| k == "payment_intent")
            .map(|(_, v)| v.into_owned()),
        Some(id.to_string())
    );
    // The ledger knows now: the next over-refund is refused before Stripe.
    let ledger = app.ledger().await;
    let refunds = ledger.of_payment::<RefundRow>(id).await.unwrap();
    assert_eq!(refunds.len(), 2);
    assert_eq!(ledger.refundable(id).await.unwrap(), 5100);
    let (status, _, body) = app
        .refund(json!({"payment_intent_id": id, "amount": 52}))
        .await;
    assert_eq!(code(status, &body), (400, "refund_exceeds_remaining"));
    assert_eq!(app.stripe_calls("POST", "/v1/refunds").await.len(), 1);
}

/// Stripe's list of a payment's charges: its one succeeded charge.
async fn mount_charges(app: &TestApp) {
    Mock::given(method("GET"))
        .and(path("/v1/charges"))
        .respond_with(|r: &Request| {
            let pi = r
                .url
                .query_pairs()
                .find(|(k, _)| k == "payment_intent")
                .map(|(_, v)| v.into_owned());
            let mut charge = fixture("charge");
            charge["id"] = json!(format!("ch_of_{}", pi.clone().unwrap_or_default()));
            charge["payment_intent"] = json!(pi);
            charge["status"] = json!("succeeded");
            ResponseTemplate::new(200).set_body_json(json!({
                "object": "list", "url": "/v1/charges", "has_more": false, "data": [charge]}))
        })
        .mount(&app.stripe)
        .await;
}

/// Refunds of `pi` reach the ledger from their events, `(id, amount, status)` each.
async fn refunded_by_events(app: &TestApp, pi: &str, refunds: &[(&str, i64, &str)]) {
    for (n, (id, amount, status)) in refunds.iter().enumerate() {
        let mut refund = refund_of(pi, id, *amount);
        refund["status"] = json!(status);
        let event_id = format!("evt_{id}_{status}_{n}");
        app.delivered(&event_id, "refund.updated", refund, now() + n as i64)
            .await;
    }
}

fn major(body: &Value, field: &str) -> String {
    body["data"][field].to_string()
}

#[tokio::test]
async fn confirm_of_a_payment_refunded_in_full_is_payment_refunded_and_in_part_a_success() {
    let app = spawn_app().await;
    mount_charges(&app).await;
    let refunded = (400, "payment_refunded", "El pago fue reembolsado");

    // Settled in the ledger: answered without Stripe. One refund succeeded, one is pending:
    // all of it is going back.
    let full = "pi_3RefundedInFull001";
    paid(&app, full, 4000).await;
    refunded_by_events(&app, full, &[("re_full_a", 2900, "succeeded")]).await;
    let (status, _, body) = app.confirm(full).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (major(&body, "amountRefunded"), &body["data"]["late"]),
        ("29.00".to_string(), &json!(false))
    );
    refunded_by_events(&app, full, &[("re_full_b", 1100, "pending")]).await;
    let (status, _, body) = app.confirm(full).await;
    assert_eq!(refusal(status, &body), refunded);
    // Get still reads it, with what was refunded.
    let (status, _, body) = app.get_pi(full).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(major(&body, "amountRefunded"), "40.00");
    assert_eq!(body["data"]["late"], false);
    // The bank returns one of them: the payment is only partly refunded again.
    let mut failed = refund_of(full, "re_full_b", 1100);
    failed["status"] = json!("failed");
    app.delivered("evt_full_b_failed", "refund.failed", failed, now() + 5)
        .await;
    let (status, _, body) = app.confirm(full).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(major(&body, "amountRefunded"), "29.00");

    // Not settled: Stripe says it succeeded; the ledger knows of a refund of all of it (made
    // in the Dashboard), and confirm refuses before listing its charges.
    let unsettled = "pi_3RefundedUnsettled";
    let created = payment_intent(unsettled, 2500, "usd", "requires_payment_method");
    app.delivered("evt_unsettled_created", CREATED.0, created, now())
        .await;
    refunded_by_events(&app, unsettled, &[("re_unsettled", 2500, "succeeded")]).await;
    app.mount_pi(payment_intent(unsettled, 2500, "usd", "succeeded"))
        .await;
    let (status, _, body) = app.confirm(unsettled).await;
    assert_eq!(refusal(status, &body), refunded);
    let listed = app.stripe_calls("GET", "/v1/charges").await;
    assert!(
        listed.iter().all(|r| !r.url.as_str().contains(unsettled)),
        "no charges listed for a refused confirm"
    );
    let (status, _, body) = app.get_pi(unsettled).await;
    assert_eq!(
        (status, major(&body, "amountRefunded")),
        (200, "25.00".into())
    );

    // A payment nothing was refunded of: zero, and not late, on either function.
    let untouched = "pi_3NothingRefunded01";
    paid(&app, untouched, 1000).await;
    for (status, _, body) in [app.confirm(untouched).await, app.get_pi(untouched).await] {
        assert_eq!(status, 200, "{body}");
        assert_eq!(major(&body, "amountRefunded"), "0.00");
        assert_eq!(body["data"]["late"], false);
    }
}

/// The text of the element of `page` whose `id` (or `data-id`) attribute is `id`, tags and all,
/// up to the end of its line of the table or list.
fn element<'p>(page: &'p str, attribute: &str) -> &'p str {
    let start = page
        .find(attribute)
        .unwrap_or_else(|| panic!("{attribute} not in the page"));
    let rest = &page[start..];
    let end = ["</tr>", "</dd>"]
        .iter()
        .filter_map(|close| rest.find(close))
        .min()
        .unwrap();
    &rest[..end]
}

/// Authorised 100.00, captured 40.00, all 40.00 refunded: nothing is kept. Nowhere a person
/// reads an amount may it say 100.00 alone (which reads as 60.00 kept).
#[tokio::test]
async fn a_partial_capture_shows_what_it_charged_with_what_was_authorised_beside_it() {
    let app = spawn_app().await;
    let id = "pi_3PartialCapture0001";
    let mut captured = payment_intent(id, 10000, "usd", "succeeded");
    captured["amount_received"] = json!(4000);
    app.delivered("evt_partial", SUCCEEDED.0, captured, now())
        .await;
    refunded_by_events(&app, id, &[("re_partial", 4000, "succeeded")]).await;

    let (status, _, list) = app.get("/dashboard").await;
    assert_eq!(status, 200);
    let line = element(&list, &format!("data-id=\"{id}\""));
    assert!(line.contains(">40.00 USD<"), "{line}");
    assert!(line.contains("authorised 100.00 USD"), "{line}");
    let (status, _, page) = app.get(&format!("/dashboard/payments/{id}")).await;
    assert_eq!(status, 200);
    let amount = element(&page, "id=\"amount\"");
    assert!(amount.contains(">40.00 USD<"), "{amount}");
    assert!(amount.contains("authorised 100.00 USD"), "{amount}");
    assert!(element(&page, "id=\"refunded\"").contains("40.00 USD"));

    let shown = run(&app.db_url, &["payments", "show", id]);
    assert_exit(&shown, 0, "payments show");
    let text = String::from_utf8_lossy(&shown.stdout);
    let line = text.lines().find(|l| l.starts_with("amount ")).unwrap();
    assert_eq!(
        line.split_whitespace().collect::<Vec<_>>().join(" "),
        "amount 40.00 usd (authorised 100.00 usd) (4000 minor units)"
    );
    let listed = run(&app.db_url, &["payments", "list"]);
    let text = String::from_utf8_lossy(&listed.stdout);
    let line = text.lines().find(|l| l.starts_with(id)).unwrap();
    assert!(line.contains("40.00 usd (authorised 100.00 usd)"), "{line}");

    let shown = printed_json(&run(&app.db_url, &["payments", "show", id, "--json"]), 0);
    let listed = printed_json(&run(&app.db_url, &["payments", "list", "--json"]), 0);
    for payment in [&shown, &listed[0]] {
        assert_eq!(payment["amount"], 4000, "{payment}");
        assert_eq!(payment["amount_authorized"], 10000, "{payment}");
    }
    assert_eq!(shown["amount_refunded"], 4000);

    // A payment that charged what it asked for shows that alone.
    paid(&app, "pi_3WholeCapture00001", 2500).await;
    let shown = printed_json(
        &run(
            &app.db_url,
            &["payments", "show", "pi_3WholeCapture00001", "--json"],
        ),
        0,
    );
    assert_eq!(shown["amount"], 2500);
    assert!(shown.get("amount_authorized").is_none(), "{shown}");
    let (_, _, page) = app.get("/dashboard/payments/pi_3WholeCapture00001").await;
    assert!(!element(&page, "id=\"amount\"").contains("authorised"));
}

/// Stripe's refunds: each takes what it asks for, under an id of its own.
fn refund_made(request: &Request) -> ResponseTemplate {
    let pi = form_value(request, "payment_intent").unwrap_or_default();
    let key = request.headers.get("idempotency-key").unwrap();
    let mut refund = refund_of(&pi, &format!("re_{}", &key.to_str().unwrap()[4..20]), 0);
    refund["amount"] = json!(form_value(request, "amount")
        .unwrap()
        .parse::<i64>()
        .unwrap());
    refund["metadata"] = form_metadata(request);
    ResponseTemplate::new(200).set_body_json(refund)
}

/// A job whose payment Stripe refused (not for `balance_insufficient`: a refusal that does not
/// pass by itself) says the next run will try it again, and the next run does.
#[tokio::test]
async fn running_a_bulk_refund_again_retries_its_failed_payments() {
    let app = spawn_app().await;
    for (id, amount) in [
        ("pi_3BulkFailsOnce0001", 3000),
        ("pi_3BulkRefunded00001", 2000),
    ] {
        let mut pi = payment_intent(id, amount, "usd", "succeeded");
        pi["metadata"] = json!({"platform": "TMT", "event": "E-RETRY"});
        app.delivered(&format!("evt_bulk_{id}"), SUCCEEDED.0, pi, now())
            .await;
    }
    Mock::given(method("POST"))
        .and(path("/v1/refunds"))
        .and(|r: &Request| {
            form_value(r, "payment_intent").as_deref() == Some("pi_3BulkFailsOnce0001")
        })
        .respond_with(stripe_refusal(
            400,
            "charge_expired_for_refund",
            "The charge has expired for refunds.",
        ))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&app.stripe)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/refunds"))
        .respond_with(refund_made)
        .mount(&app.stripe)
        .await;
    let uri = app.stripe.uri();
    let bulk = |json: bool| {
        let mut c = command(&app.db_url);
        c.args(["refunds", "bulk", "--metadata", "event=E-RETRY"])
            .envs(keyed_env(&uri))
            .env("STRIPE_MAX_RPS", "0");
        if json {
            c.arg("--json");
        }
        c.output().unwrap()
    };

    let first = bulk(false);
    assert_exit(&first, 3, "a payment failed");
    let printed = String::from_utf8_lossy(&first.stdout);
    let failed = printed
        .lines()
        .find(|l| l.starts_with("pi_3BulkFailsOnce0001"))
        .unwrap();
    assert!(
        failed.contains("failed") && failed.contains("The charge has expired for refunds."),
        "{printed}"
    );
    assert!(
        printed.contains("running the same command again tries the 0 pending and 1 failed"),
        "{printed}"
    );

    let report = printed_json(&bulk(true), 0);
    assert_eq!(report["resumed"], true);
    assert_eq!(
        report["counts"],
        json!({"refunded": 2, "skipped": 0, "not_supported": 0, "pending": 0, "failed": 0})
    );
    let posts = app.stripe_calls("POST", "/v1/refunds").await;
    let retried: Vec<&Request> = posts
        .iter()
        .filter(|r| form_value(r, "payment_intent").as_deref() == Some("pi_3BulkFailsOnce0001"))
        .collect();
    assert_eq!(retried.len(), 2, "refused once, then retried");
    assert_ne!(
        retried[0].headers.get("idempotency-key"),
        retried[1].headers.get("idempotency-key"),
        "the retry is a new request at Stripe"
    );
    assert_eq!(posts.len(), 3, "the refunded payment is not refunded twice");
}
