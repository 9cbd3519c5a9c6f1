//! `POST /stripe_confirm_payment` and `POST /stripe_get_payment_intent`, Stripe played by wiremock.

use serde_json::{json, Value};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;

const PI: &str = "pi_3ReadTest0000001";

#[tokio::test]
async fn id_errors_never_reach_stripe() {
    let app = spawn_app().await;
    let cases = [
        (json!({}), ID_REQUIRED),
        (json!({"payment_intent_id": null}), ID_REQUIRED),
        (json!({"payment_intent_id": ""}), ID_REQUIRED),
        (json!({"payment_intent_id": "pi_1/../x"}), ID_INVALID),
        (json!({"payment_intent_id": "pi_1?expand[]=x"}), ID_INVALID),
        (json!({"payment_intent_id": "pi_1%2F..%2Fx"}), ID_INVALID),
        (json!({"payment_intent_id": "pi_1#frag"}), ID_INVALID),
        (json!({"payment_intent_id": "ch_123"}), ID_INVALID),
        (json!({"payment_intent_id": 123}), ID_INVALID),
        (
            json!({"payment_intent_id": format!("pi_{}", "a".repeat(251))}),
            ID_INVALID,
        ),
    ];
    for path in ["/stripe_confirm_payment", "/stripe_get_payment_intent"] {
        for (data, (code, message)) in &cases {
            let (status, _, body) = app.post(path, json!({ "data": data })).await;
            assert_eq!(status, 400, "{path} {data}");
            assert_eq!(body["code"], *code, "{path} {data}");
            assert_eq!(body["error"], *message);
        }
    }
    assert!(app.stripe_requests().await.is_empty());
}

#[tokio::test]
async fn get_answers_major_units_and_updates_the_ledger() {
    let app = spawn_app().await;
    let mut pi = payment_intent(PI, 1099, "usd", "processing");
    pi["metadata"] = json!({"platform": "TMT", "order": "77"});
    app.mount_pi(pi).await;
    let (status, _, body) = app.get_pi(PI).await;
    assert_eq!(status, 200, "{body}");
    let nothing: Value = serde_json::from_str("0.00").unwrap();
    assert_eq!(
        body["data"],
        json!({"id": PI, "status": "processing", "amount": 10.99, "currency": "usd",
               "metadata": {"platform": "TMT", "order": "77"},
               "amountRefunded": nothing, "late": false})
    );
    assert_eq!(body["data"]["amount"].to_string(), "10.99");
    let request = &app.stripe_requests().await[0];
    assert_eq!(request.url.path(), format!("/v1/payment_intents/{PI}"));
    assert_eq!(request.url.query(), None);
    assert_eq!(request.headers["stripe-version"], "2025-03-31.basil");
    assert!(
        request.headers.get("idempotency-key").is_none(),
        "GETs carry no key"
    );
    let row = app.payment(PI).await;
    assert_eq!((row.status.as_str(), row.amount), ("processing", 1099));
}

#[tokio::test]
async fn confirm_of_an_unfinished_payment_is_payment_not_completed_and_recorded() {
    let app = spawn_app().await;
    app.mount_pi(payment_intent(PI, 5000, "usd", "requires_payment_method"))
        .await;
    let (status, _, body) = app.confirm(PI).await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "payment_not_completed");
    assert_eq!(
        body["error"],
        "El pago no fue completado. Estado: requires_payment_method"
    );
    let row = app.payment(PI).await;
    assert_eq!(row.status, "requires_payment_method");
    assert_eq!(app.stripe_requests().await.len(), 1, "no charges lookup");
}

#[tokio::test]
async fn confirm_lists_charges_when_none_are_embedded() {
    let app = spawn_app().await;
    let mut pi = payment_intent(PI, 5000, "usd", "succeeded");
    pi["payment_method"] = json!("pm_1Visa");
    app.mount_pi(pi).await;
    let mut charge = fixture("charge");
    charge["payment_intent"] = json!(PI);
    Mock::given(method("GET"))
        .and(path("/v1/charges"))
        .and(query_param("payment_intent", PI))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "list", "data": [charge.clone()], "has_more": false, "url": "/v1/charges"})))
        .expect(1)
        .mount(&app.stripe)
        .await;
    let (status, _, body) = app.confirm(PI).await;
    assert_eq!(status, 200, "{body}");
    let data = &body["data"];
    assert_eq!(data["success"], true);
    assert_eq!(data["paymentIntentId"], PI);
    assert_eq!(data["status"], "succeeded");
    assert_eq!(data["amount"].to_string(), "50.00");
    assert_eq!(data["currency"], "usd");
    assert_eq!(data["created"], 1_700_000_000);
    assert_eq!(data["paymentMethod"], "pm_1Visa");
    // Charges go back exactly as Stripe sent them, every field included.
    assert_eq!(data["charges"], json!([charge]));
    let row = app.payment(PI).await;
    assert_eq!(row.status, "succeeded");
}

#[tokio::test]
async fn confirm_uses_embedded_charges_when_present() {
    let app = spawn_app().await;
    let mut pi = payment_intent(PI, 500, "jpy", "succeeded");
    let charge = fixture("charge");
    pi["charges"] = json!({"object": "list", "data": [charge.clone()], "has_more": false});
    app.mount_pi(pi).await;
    let (status, _, body) = app.confirm(PI).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["charges"], json!([charge]));
    assert_eq!(body["data"]["amount"].to_string(), "500");
    assert_eq!(body["data"]["paymentMethod"], serde_json::Value::Null);
    assert_eq!(app.stripe_requests().await.len(), 1, "no list call");
}

#[tokio::test]
async fn stripe_404_and_500_map_to_500_with_stripes_message() {
    let app = spawn_app().await;
    Mock::given(method("GET"))
        .and(path("/v1/payment_intents/pi_missing1"))
        .respond_with(
            ResponseTemplate::new(404)
                .insert_header("Request-Id", "req_404")
                .set_body_json(json!({"error": {
                    "type": "invalid_request_error", "code": "resource_missing", "param": "intent",
                    "message": "No such payment_intent: 'pi_missing1'"}})),
        )
        .mount(&app.stripe)
        .await;
    for endpoint in ["/stripe_confirm_payment", "/stripe_get_payment_intent"] {
        let (status, _, body) = app
            .post(
                endpoint,
                json!({"data": {"payment_intent_id": "pi_missing1"}}),
            )
            .await;
        assert_eq!(status, 500);
        assert_eq!(
            body,
            json!({"status": 500, "code": "stripe_error",
                   "error": "No such payment_intent: 'pi_missing1'",
                   "stripe": {"type": "invalid_request_error", "code": "resource_missing",
                              "request_id": "req_404"}})
        );
    }
    assert!(app.status_of("pi_missing1").await.is_none());

    Mock::given(method("GET"))
        .and(path("/v1/payment_intents/pi_broken1"))
        .respond_with(ResponseTemplate::new(500).set_body_json(
            json!({"error": {"type": "api_error", "message": "Something went wrong on Stripe's end."}}),
        ))
        .mount(&app.stripe)
        .await;
    let (status, _, body) = app.get_pi("pi_broken1").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (500, Some("Something went wrong on Stripe's end."))
    );
    let gets = app
        .stripe_calls("GET", "/v1/payment_intents/pi_broken1")
        .await;
    assert_eq!(gets.len(), 3, "a GET that failed with 500 is retried twice");
}

#[tokio::test]
async fn lenient_reads_accept_unknown_fields_and_statuses() {
    let app = spawn_app().await;
    let mut pi = payment_intent(PI, 5000, "usd", "some_status_from_the_future");
    pi["brand_new_field"] = json!({"nested": [1, 2, 3]});
    pi["latest_charge"] = json!({"id": "ch_1", "object": "charge"});
    app.mount_pi(pi).await;
    let (status, _, body) = app.get_pi(PI).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["status"], "some_status_from_the_future");
    let (status, _, body) = app.confirm(PI).await;
    assert_eq!(code(status, &body), (400, "payment_not_completed"));
}
