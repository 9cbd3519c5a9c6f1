//! Refunds, cancellations and disputes, Stripe played by wiremock: amounts and their limits,
//! concurrency, idempotency, and refunds and disputes that reach the ledger only through their
//! events. (docs/contract.md does not describe these functions yet: its sections end at §10.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tmt_payments::ledger::{DisputeRow, RefundRow};
use wiremock::matchers::{method, path};
use wiremock::{Mock, Request, Respond, ResponseTemplate};

use crate::helpers::*;

const PI: &str = "pi_3RefundTest000001";

/// Plays Stripe's refunds for one payment of `amount`: each refund takes what it asks for, and
/// more than what is left is refused as Stripe refuses it.
struct StripeRefunds {
    amount: i64,
    refunded: Mutex<i64>,
    made: AtomicUsize,
    status: &'static str,
}

impl StripeRefunds {
    fn new(amount: i64) -> Arc<Self> {
        Arc::new(StripeRefunds {
            amount,
            refunded: Mutex::new(0),
            made: AtomicUsize::new(0),
            status: "succeeded",
        })
    }
}

/// The responder mounted at wiremock, sharing the refunds' state with the test.
struct Shared(Arc<StripeRefunds>);

impl Respond for Shared {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let asked: i64 = form_value(request, "amount")
            .and_then(|a| a.parse().ok())
            .unwrap_or(0);
        let this = &self.0;
        let mut refunded = this.refunded.lock().unwrap();
        if *refunded >= this.amount {
            return ResponseTemplate::new(400).set_body_json(json!({"error": {
                "type": "invalid_request_error", "code": "charge_already_refunded",
                "message": "Charge ch_1 has already been refunded."}}));
        }
        if *refunded + asked > this.amount {
            return ResponseTemplate::new(400).set_body_json(json!({"error": {
                "type": "invalid_request_error", "code": "amount_too_large", "param": "amount",
                "message": "Refund amount is greater than unrefunded amount on charge."}}));
        }
        *refunded += asked;
        let n = this.made.fetch_add(1, Ordering::SeqCst);
        let mut refund = fixture("refund");
        refund["id"] = json!(format!("re_test{n:04}"));
        refund["amount"] = json!(asked);
        refund["currency"] = json!("usd");
        refund["payment_intent"] = json!(form_value(request, "payment_intent"));
        refund["status"] = json!(this.status);
        refund["reason"] = json!(form_value(request, "reason"));
        refund["metadata"] = form_metadata(request);
        ResponseTemplate::new(200).set_body_json(refund)
    }
}

/// A succeeded payment of ours, in the ledger (its webhook arrived) and at "Stripe".
async fn paid(app: &TestApp, id: &str, amount: i64, currency: &str) {
    let pi = payment_intent(id, amount, currency, "succeeded");
    let event_id = format!("evt_paid_{id}");
    app.delivered(&event_id, "payment_intent.succeeded", pi.clone(), now())
        .await;
    app.mount_pi(pi).await;
}

/// An app in which the payment `PI` of `amount` (USD) has succeeded; Stripe's refunds of it.
async fn paid_app(amount: i64) -> (TestApp, Arc<StripeRefunds>) {
    let app = spawn_app().await;
    paid(&app, PI, amount, "usd").await;
    let stripe = StripeRefunds::new(amount);
    refunds_at(&app, stripe.clone()).await;
    (app, stripe)
}

async fn refunds_at(app: &TestApp, stripe: Arc<StripeRefunds>) {
    Mock::given(method("POST"))
        .and(path("/v1/refunds"))
        .respond_with(Shared(stripe))
        .mount(&app.stripe)
        .await;
}

async fn refund_posts(app: &TestApp) -> Vec<Request> {
    app.stripe_calls("POST", "/v1/refunds").await
}

#[tokio::test]
async fn partial_then_the_rest_then_nothing_is_left() {
    let (app, _) = paid_app(5000).await;

    let (status, _, body) = app
        .refund(json!({"payment_intent_id": PI, "amount": "12.50"}))
        .await;
    assert_eq!(status, 200, "{body}");
    let data = &body["data"];
    assert_eq!(data["success"], true);
    assert_eq!(data["refundId"], "re_test0000");
    assert_eq!(data["paymentIntentId"], PI);
    assert_eq!(data["status"], "succeeded");
    assert_eq!(data["amount"].to_string(), "12.50");
    assert_eq!(data["currency"], "usd");
    assert_eq!(data["amountRefunded"].to_string(), "12.50");
    assert_eq!(data["fullyRefunded"], false);
    let sent = &refund_posts(&app).await[0];
    assert_eq!(form_value(sent, "amount").as_deref(), Some("1250"));
    assert_eq!(form_value(sent, "payment_intent").as_deref(), Some(PI));
    assert_eq!(
        form_value(sent, "metadata[platform]").as_deref(),
        Some("TMT")
    );
    assert!(sent.headers.get("idempotency-key").is_some());

    // No amount: everything left.
    let (status, _, body) = app.refund(json!({"payment_intent_id": PI})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["amount"].to_string(), "37.50");
    assert_eq!(body["data"]["amountRefunded"].to_string(), "50.00");
    assert_eq!(body["data"]["fullyRefunded"], true);

    // One more: refused by the ledger, nothing sent.
    for data in [
        json!({"payment_intent_id": PI}),
        json!({"payment_intent_id": PI, "amount": 1}),
    ] {
        let (status, _, body) = app.refund(data).await;
        assert_eq!(
            refusal(status, &body),
            (
                400,
                "refund_exceeds_remaining",
                "El monto excede lo que queda por reembolsar: 0.00 USD"
            )
        );
    }
    assert_eq!(refund_posts(&app).await.len(), 2);
    let ledger = app.ledger().await;
    assert_eq!(ledger.amount_refunded(PI).await.unwrap(), 5000);
    assert_eq!(ledger.of_payment::<RefundRow>(PI).await.unwrap().len(), 2);
}

#[tokio::test]
async fn more_than_what_is_left_names_what_is_left() {
    let (app, _) = paid_app(1000).await;
    assert_eq!(
        app.refund(json!({"payment_intent_id": PI, "amount": 4}))
            .await
            .0,
        200
    );
    let (status, _, body) = app
        .refund(json!({"payment_intent_id": PI, "amount": "6.01"}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"],
        "El monto excede lo que queda por reembolsar: 6.00 USD"
    );
    assert_eq!(refund_posts(&app).await.len(), 1);
}

#[tokio::test]
async fn concurrent_partial_refunds_never_exceed_the_payment() {
    let (app, stripe) = paid_app(10_000).await;
    // Each alone fits; any two together do not.
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let (http, url) = (
                app.http.clone(),
                format!("{}/stripe_refund_payment", app.address),
            );
            tokio::spawn(async move {
                let r = http
                    .post(url)
                    .header("content-type", "application/json")
                    .body(json!({"data": {"payment_intent_id": PI, "amount": 60}}).to_string())
                    .send()
                    .await
                    .unwrap();
                read(r).await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        let (status, _, body) = t.await.unwrap();
        answers.push((status, body["code"].as_str().map(str::to_string)));
    }
    let ok = answers.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(ok, 1, "{answers:?}");
    assert!(answers
        .iter()
        .filter(|(s, _)| *s != 200)
        .all(|(s, c)| *s == 400 && c.as_deref() == Some("refund_exceeds_remaining")));
    // The ledger refused the rest before Stripe: one refund was ever asked for.
    let posts: Vec<_> = refund_posts(&app)
        .await
        .iter()
        .map(|r| {
            (
                r.headers.get("idempotency-key").cloned(),
                form_value(r, "metadata[tmt_request]"),
            )
        })
        .collect();
    assert_eq!(posts.len(), 1, "{posts:?} {answers:?}");
    assert_eq!(*stripe.refunded.lock().unwrap(), 6000);
}

/// Stripe's list of the payment's refunds: one made elsewhere (the Dashboard), of whatever
/// Stripe's refunds stand at.
struct ListedElsewhere(Arc<StripeRefunds>);

impl Respond for ListedElsewhere {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let refunded = *self.0.refunded.lock().unwrap();
        let mut refund = refund_object("re_elsewhere", refunded, "succeeded");
        refund["currency"] = json!("usd");
        ResponseTemplate::new(200).set_body_json(json!({
            "object": "list", "url": "/v1/refunds", "has_more": false, "data": [refund]}))
    }
}

#[tokio::test]
async fn stripes_own_over_refund_refusal_is_the_same_400() {
    let (app, stripe) = paid_app(3000).await;
    Mock::given(method("GET"))
        .and(path("/v1/refunds"))
        .respond_with(ListedElsewhere(stripe.clone()))
        .mount(&app.stripe)
        .await;
    // A refund made elsewhere (the Dashboard) that the ledger has not heard of yet.
    *stripe.refunded.lock().unwrap() = 2500;
    let (status, _, body) = app
        .refund(json!({"payment_intent_id": PI, "amount": 10}))
        .await;
    assert_eq!(
        refusal(status, &body),
        (
            400,
            "refund_exceeds_remaining",
            "El monto excede lo que queda por reembolsar: 5.00 USD"
        ),
        "{body}"
    );
    assert!(body.get("stripe").is_none(), "{body}");
    *stripe.refunded.lock().unwrap() = 3000;
    let (status, _, body) = app.refund(json!({"payment_intent_id": PI})).await;
    assert_eq!(
        code(status, &body),
        (400, "refund_exceeds_remaining"),
        "charge_already_refunded: {body}"
    );
    // The refused reservations are gone, and the ledger has read what Stripe refunded.
    assert_eq!(app.ledger().await.refundable(PI).await.unwrap(), 0);
    assert_eq!(refund_posts(&app).await.len(), 2);
}

#[tokio::test]
async fn only_a_succeeded_payment_is_refunded() {
    let app = spawn_app().await;
    refunds_at(&app, StripeRefunds::new(5000)).await;
    for status in ["requires_payment_method", "processing", "canceled"] {
        let id = format!("pi_3NotRefundable{}", status.len());
        app.mount_pi(payment_intent(&id, 5000, "usd", status)).await;
        let (code, _, body) = app.refund(json!({"payment_intent_id": id})).await;
        assert_eq!(code, 400, "{body}");
        assert_eq!(body["code"], "payment_not_refundable");
        assert_eq!(
            body["error"],
            format!("El pago no puede ser reembolsado. Estado: {status}")
        );
    }
    assert!(refund_posts(&app).await.is_empty());
}

#[tokio::test]
async fn a_payment_whose_success_the_ledger_has_not_heard_of_is_read_first() {
    let app = spawn_app().await;
    // Created here (requires_payment_method), paid since: the webhook is on its way.
    let pi = payment_intent(PI, 2000, "eur", "requires_payment_method");
    app.deliver(&event("evt_c", "payment_intent.created", pi, now()))
        .await;
    app.mount_pi(payment_intent(PI, 2000, "eur", "succeeded"))
        .await;
    refunds_at(&app, StripeRefunds::new(2000)).await;
    let (status, _, body) = app
        .refund(json!({"payment_intent_id": PI, "amount": "5"}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["currency"], "eur");
    assert_eq!(app.payment(PI).await.status, "succeeded");
}

#[tokio::test]
async fn bad_requests_never_reach_stripe() {
    let (app, _) = paid_app(5000).await;
    let amount_invalid = (
        "amount_invalid",
        "El monto del reembolso debe ser mayor a 0",
    );
    let reason_invalid = ("reason_invalid", "Motivo de reembolso inválido");
    // `event_canceled` adds the service's third key: 47 of Stripe's 50 are left to the caller.
    let keys_48: serde_json::Map<String, Value> =
        (0..48).map(|i| (format!("k{i}"), json!("v"))).collect();
    let cases = [
        (json!({}), ID_REQUIRED),
        (json!({"payment_intent_id": "pi_1/../x"}), ID_INVALID),
        (
            json!({"payment_intent_id": PI, "amount": 0}),
            amount_invalid,
        ),
        (
            json!({"payment_intent_id": PI, "amount": "-3"}),
            amount_invalid,
        ),
        (
            json!({"payment_intent_id": PI, "amount": "abc"}),
            amount_invalid,
        ),
        (
            json!({"payment_intent_id": PI, "amount": "0.001"}),
            amount_invalid,
        ),
        (
            json!({"payment_intent_id": PI, "reason": "changed_my_mind"}),
            reason_invalid,
        ),
        (
            json!({"payment_intent_id": PI, "reason": 3}),
            reason_invalid,
        ),
        (
            json!({"payment_intent_id": PI, "metadata": {"a[b]": "x"}}),
            (
                "metadata_invalid",
                "Metadata inválida: la clave 'a[b]' no puede contener '[' ni ']'",
            ),
        ),
        (
            json!({"payment_intent_id": PI, "reason": "event_canceled", "metadata": keys_48}),
            ("metadata_invalid", "Metadata inválida: máximo 47 claves"),
        ),
    ];
    for (data, (code, error)) in cases {
        let (status, _, body) = app.refund(data.clone()).await;
        assert_eq!(refusal(status, &body), (400, code, error), "{data}");
    }
    assert!(refund_posts(&app).await.is_empty());
}

#[tokio::test]
async fn reasons_and_metadata_reach_stripe() {
    let (app, _) = paid_app(9000).await;
    for reason in ["requested_by_customer", "duplicate", "fraudulent"] {
        let (status, _, body) = app
            .refund(json!({"payment_intent_id": PI, "amount": 10, "reason": reason}))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, _, body) = app
        .refund(
            json!({"payment_intent_id": PI, "amount": 10, "reason": "event_canceled",
               "metadata": {"order": "A-7", "platform": "evil"}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let sent = refund_posts(&app).await;
    let reasons: Vec<_> = sent.iter().map(|r| form_value(r, "reason")).collect();
    assert_eq!(
        reasons,
        [
            Some("requested_by_customer".into()),
            Some("duplicate".into()),
            Some("fraudulent".into()),
            Some("requested_by_customer".into())
        ]
    );
    let last = &sent[3];
    assert_eq!(
        form_value(last, "metadata[tmt_reason]").as_deref(),
        Some("event_canceled")
    );
    assert_eq!(form_value(last, "metadata[order]").as_deref(), Some("A-7"));
    assert_eq!(
        form_value(last, "metadata[platform]").as_deref(),
        Some("TMT")
    );
    let row: Vec<RefundRow> = app.ledger().await.of_payment(PI).await.unwrap();
    assert_eq!(row.len(), 4);
    assert_eq!(row[3].own.metadata["order"], "A-7");
}

#[tokio::test]
async fn idempotent_replay_and_reuse() {
    let (app, _) = paid_app(5000).await;
    let send = |data: Value, key: &'static str| {
        let app = &app;
        async move {
            let headers = [("idempotency-key", key)];
            app.post_with("/stripe_refund_payment", json!({ "data": data }), &headers)
                .await
        }
    };
    let data = json!({"payment_intent_id": PI, "amount": 10});
    let (status, headers, first) = send(data.clone(), "refund-1").await;
    assert_eq!(status, 200, "{first}");
    assert!(headers.get("idempotent-replayed").is_none());
    let (status, headers, again) = send(data.clone(), "refund-1").await;
    assert_eq!(status, 200);
    assert_eq!(headers["idempotent-replayed"], "true");
    assert_eq!(again["data"], first["data"]);
    let (status, _, body) = send(json!({"payment_intent_id": PI, "amount": 11}), "refund-1").await;
    assert_eq!(code(status, &body), (422, "idempotency_key_reused"));
    assert_eq!(refund_posts(&app).await.len(), 1, "one refund at Stripe");
    // Keys are per function: the same key on create is another key.
    app.mount_create().await;
    let (status, headers, _) = app.create_with_key("refund-1", json!({"amount": 10})).await;
    assert_eq!(status, 200);
    assert!(headers.get("idempotent-replayed").is_none());
}

/// Answers a cancel as Stripe would for a PaymentIntent in `status`.
async fn cancellable(app: &TestApp, id: &str, status: &str) {
    let pi = payment_intent(id, 1500, "usd", status);
    app.mount_pi(pi.clone()).await;
    let answer = match status {
        "succeeded" | "processing" | "canceled" => ResponseTemplate::new(400).set_body_json(json!({"error": {
            "type": "invalid_request_error", "code": "payment_intent_unexpected_state",
            "message": format!("You cannot cancel this PaymentIntent because it has a status of {status}.")}})),
        _ => {
            let mut canceled = pi;
            canceled["status"] = json!("canceled");
            canceled["cancellation_reason"] = json!("abandoned");
            ResponseTemplate::new(200).set_body_json(canceled)
        }
    };
    Mock::given(method("POST"))
        .and(path(format!("/v1/payment_intents/{id}/cancel")))
        .respond_with(answer)
        .mount(&app.stripe)
        .await;
}

#[tokio::test]
async fn cancel_of_each_status() {
    let app = spawn_app().await;
    let cancel = |id: String, reason: Option<&'static str>| {
        let mut data = json!({ "payment_intent_id": id });
        if let Some(r) = reason {
            data["reason"] = json!(r);
        }
        let app = &app;
        async move { app.cancel(data).await }
    };
    for (i, status) in [
        "requires_payment_method",
        "requires_confirmation",
        "requires_action",
        "requires_capture",
    ]
    .iter()
    .enumerate()
    {
        let id = format!("pi_3Cancel{i}");
        cancellable(&app, &id, status).await;
        let (code, _, body) = cancel(id.clone(), Some("requested_by_customer")).await;
        assert_eq!(code, 200, "{status}: {body}");
        assert_eq!(
            body["data"],
            json!({"success": true, "paymentIntentId": id, "status": "canceled"})
        );
        let row = app.payment(&id).await;
        assert_eq!(row.status, "canceled");
        // Safe to retry: answered from the ledger.
        let (code, _, _) = cancel(id, None).await;
        assert_eq!(code, 200);
    }
    let posts = app
        .stripe_requests()
        .await
        .into_iter()
        .filter(|r| r.url.path().ends_with("/cancel"))
        .collect::<Vec<_>>();
    assert_eq!(
        posts.len(),
        4,
        "retries of a canceled payment cost Stripe nothing"
    );
    assert_eq!(
        form_value(&posts[0], "cancellation_reason").as_deref(),
        Some("requested_by_customer")
    );

    cancellable(&app, "pi_3CancelOk", "canceled").await;
    assert_eq!(cancel("pi_3CancelOk".into(), None).await.0, 200);

    for (id, status, code, error) in [
        (
            "pi_3CancelPaid",
            "succeeded",
            "payment_already_succeeded",
            "El pago ya fue completado; use un reembolso",
        ),
        (
            "pi_3CancelBusy",
            "processing",
            "payment_processing",
            "El pago está en proceso y no puede cancelarse",
        ),
    ] {
        cancellable(&app, id, status).await;
        let (s, _, body) = cancel(id.into(), None).await;
        assert_eq!(refusal(s, &body), (400, code, error));
    }
    let (s, _, body) = cancel("pi_3CancelOk".into(), Some("bored")).await;
    assert_eq!(
        refusal(s, &body),
        (400, "reason_invalid", "Motivo de cancelación inválido")
    );
}

fn refund_object(id: &str, amount: i64, status: &str) -> Value {
    let mut r = fixture("refund");
    r["id"] = json!(id);
    r["amount"] = json!(amount);
    r["payment_intent"] = json!(PI);
    r["charge"] = json!("ch_refundtest");
    r["status"] = json!(status);
    r
}

#[tokio::test]
async fn a_dashboard_refund_reaches_the_ledger_from_its_events_alone() {
    let app = spawn_app().await;
    paid(&app, PI, 4000, "usd").await;
    let t = now();
    let mut charge = fixture("charge");
    charge["id"] = json!("ch_refundtest");
    charge["payment_intent"] = json!(PI);
    charge["amount_refunded"] = json!(1500);
    charge["refunded"] = json!(false);
    for (id, kind, object, at) in [
        (
            "evt_r1",
            "refund.created",
            refund_object("re_dash1", 1500, "pending"),
            t,
        ),
        ("evt_r2", "charge.refunded", charge, t + 1),
        (
            "evt_r3",
            "refund.updated",
            refund_object("re_dash1", 1500, "succeeded"),
            t + 2,
        ),
    ] {
        app.delivered(id, kind, object, at).await;
    }
    let ledger = app.ledger().await;
    let refunds = ledger.of_payment::<RefundRow>(PI).await.unwrap();
    assert_eq!(refunds.len(), 1);
    assert_eq!(
        (
            refunds[0].id.as_str(),
            refunds[0].status.as_str(),
            refunds[0].amount
        ),
        ("re_dash1", "succeeded", 1500)
    );
    assert_eq!(ledger.amount_refunded(PI).await.unwrap(), 1500);
    assert_eq!(ledger.charges_for(PI).await.unwrap().len(), 1);
    assert_eq!(app.outcomes(PI).await, ["applied"; 4]);
    // What is left knows it: a refund of more than 25.00 is refused before Stripe.
    refunds_at(&app, StripeRefunds::new(4000)).await;
    let (status, _, body) = app
        .refund(json!({"payment_intent_id": PI, "amount": 26}))
        .await;
    assert_eq!(code(status, &body), (400, "refund_exceeds_remaining"));
}

#[tokio::test]
async fn a_refund_that_fails_later_stops_counting() {
    let app = spawn_app().await;
    paid(&app, PI, 4000, "usd").await;
    let t = now();
    app.deliver(&event(
        "evt_f1",
        "refund.created",
        refund_object("re_fail", 4000, "succeeded"),
        t,
    ))
    .await;
    let ledger = app.ledger().await;
    assert_eq!(ledger.amount_refunded(PI).await.unwrap(), 4000);
    let mut failed = refund_object("re_fail", 4000, "failed");
    failed["failure_reason"] = json!("expired_or_canceled_card");
    app.deliver(&event("evt_f2", "refund.failed", failed, t + 1))
        .await;
    let row = ledger.refund("re_fail").await.unwrap().unwrap();
    assert_eq!(
        (row.status.as_str(), row.own.failure_reason.as_deref()),
        ("failed", Some("expired_or_canceled_card"))
    );
    assert_eq!(ledger.amount_refunded(PI).await.unwrap(), 0);
    // A failed refund stays failed, whatever arrives after.
    app.deliver(&event(
        "evt_f3",
        "refund.updated",
        refund_object("re_fail", 4000, "succeeded"),
        t + 2,
    ))
    .await;
    assert_eq!(
        ledger.refund("re_fail").await.unwrap().unwrap().status,
        "failed"
    );
}

fn dispute_object(id: &str, status: &str) -> Value {
    json!({
        "id": id, "object": "dispute", "amount": 4000, "currency": "usd",
        "charge": "ch_disputed", "payment_intent": PI, "reason": "fraudulent",
        "status": status, "created": 1_700_000_500,
        "evidence_details": {"due_by": 1_701_000_000, "has_evidence": false},
    })
}

#[tokio::test]
async fn disputes_go_to_won_and_to_lost() {
    let app = spawn_app().await;
    paid(&app, PI, 4000, "usd").await;
    let t = now();
    for (final_status, dispute) in [("won", "dp_won"), ("lost", "dp_lost")] {
        let steps = [
            ("charge.dispute.created", "needs_response"),
            ("charge.dispute.funds_withdrawn", "needs_response"),
            ("charge.dispute.updated", "under_review"),
            ("charge.dispute.closed", final_status),
        ];
        for (i, (kind, status)) in steps.iter().enumerate() {
            let object = dispute_object(dispute, status);
            app.delivered(&format!("evt_{dispute}_{i}"), kind, object, t + i as i64)
                .await;
        }
        // A late, older update never reopens a closed dispute.
        app.deliver(&event(
            &format!("evt_{dispute}_late"),
            "charge.dispute.updated",
            dispute_object(dispute, "under_review"),
            t + 10,
        ))
        .await;
    }
    let disputes: Vec<DisputeRow> = app.ledger().await.of_payment(PI).await.unwrap();
    let seen: Vec<_> = disputes
        .iter()
        .map(|d| (d.id.as_str(), d.status.as_str(), d.own.evidence_due_by))
        .collect();
    assert_eq!(
        seen,
        [
            ("dp_lost", "lost", Some(1_701_000_000)),
            ("dp_won", "won", Some(1_701_000_000))
        ]
    );
}

#[tokio::test]
async fn refunds_and_disputes_of_another_applications_payment_are_foreign() {
    let app = spawn_app().await;
    let mut other = refund_object("re_other", 100, "succeeded");
    other["payment_intent"] = json!("pi_3NotOurs");
    app.deliver(&event("evt_o1", "refund.created", other, now()))
        .await;
    let mut dispute = dispute_object("dp_other", "needs_response");
    dispute["payment_intent"] = json!("pi_3NotOurs");
    app.deliver(&event("evt_o2", "charge.dispute.created", dispute, now()))
        .await;
    let ledger = app.ledger().await;
    assert!(ledger.refund("re_other").await.unwrap().is_none());
    let disputes: Vec<DisputeRow> = ledger.list(None, 10).await.unwrap();
    assert!(disputes.is_empty());
    assert_eq!(
        ledger_events(&ledger, |e| [e.outcome.as_str()]).await,
        [["foreign"], ["foreign"]]
    );
}
