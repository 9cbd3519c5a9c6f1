//! The fault switches of `/_sandbox/faults`: refunds refused with `balance_insufficient` until
//! cleared, and Stripe's 429 for the next requests, which change nothing and leave no
//! idempotent result, so that the same request with the same key goes through afterwards.

use crate::helpers::*;

#[tokio::test]
async fn refunds_of_a_payment_fail_with_balance_insufficient_until_cleared() {
    let a = api(None).await;
    let blocked = a.paid(5000, "pm_card_visa", "").await;
    let other = a.paid(5000, "pm_card_visa", "").await;
    let faults = a
        .post_ok(
            "/_sandbox/faults",
            &format!("refund_balance_insufficient[]={}", s(&blocked["id"])),
        )
        .await;
    assert_eq!(faults["refund_balance_insufficient"][0], blocked["id"]);
    let (status, body) = a.refund(s(&blocked["id"]), "").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["code"], "balance_insufficient");
    let (status, _) = a.refund(s(&other["id"]), "").await;
    assert_eq!(status, 200, "only the named PaymentIntent is refused");
    assert_eq!(a.charge_of(&blocked).await["amount_refunded"], 0);
    let (status, _) = a
        .post(
            "/_sandbox/faults",
            "refund_balance_insufficient[]=pi_missing",
        )
        .await;
    assert_eq!(status, 400);
    let (status, cleared) = a.post("/_sandbox/faults", "clear=true").await;
    assert_eq!(status, 200);
    assert_eq!(
        cleared["refund_balance_insufficient"],
        serde_json::json!([])
    );
    let (status, refund) = a.refund(s(&blocked["id"]), "").await;
    assert_eq!((status, refund["amount"].as_i64()), (200, Some(5000)));
    let (status, shown) = a.get("/_sandbox/faults").await;
    assert_eq!((status, shown["rate_limit"].is_null()), (200, true));
}

#[tokio::test]
async fn rate_limited_requests_change_nothing_and_can_be_retried_with_their_key() {
    let a = api(None).await;
    let pi = a.paid(5000, "pm_card_visa", "").await;
    let faults = a
        .post_ok(
            "/_sandbox/faults",
            "rate_limit_requests=2&rate_limit_path_prefix=/v1/refunds&rate_limit_should_retry=false",
        )
        .await;
    assert_eq!(faults["rate_limit"]["remaining"], 2);
    let form = format!("payment_intent={}&amount=1000", s(&pi["id"]));
    // Other paths are not limited.
    let (status, _) = a
        .get(&format!("/v1/payment_intents/{}", s(&pi["id"])))
        .await;
    assert_eq!(status, 200);
    for _ in 0..2 {
        let (status, headers, body) = a.post_keyed("/v1/refunds", &form, "bulk-1").await;
        assert_eq!(status, 429, "{body}");
        assert_eq!(body["error"]["code"], "rate_limit");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(headers["stripe-should-retry"], "false");
        assert!(headers["request-id"].to_str().unwrap().starts_with("req_"));
        assert!(headers.get("idempotent-replayed").is_none());
    }
    let (_, refunds) = a.get("/v1/refunds").await;
    assert!(ids(&refunds).is_empty(), "a refused request did nothing");
    let (_, events) = a.get("/v1/events?type=refund.created").await;
    assert!(ids(&events).is_empty());
    let (status, headers, refund) = a.post_keyed("/v1/refunds", &form, "bulk-1").await;
    assert_eq!(status, 200, "the same key runs the request now: {refund}");
    assert!(headers.get("idempotent-replayed").is_none());
    let (status, headers, replay) = a.post_keyed("/v1/refunds", &form, "bulk-1").await;
    assert_eq!((status, &replay), (200, &refund));
    assert_eq!(headers["idempotent-replayed"], "true");
    // Every path, without the header.
    let (_, _) = a.post("/_sandbox/faults", "rate_limit_requests=1").await;
    let (status, headers, _) = a.call(reqwest::Method::GET, "/v1/events", "", None).await;
    assert_eq!(status, 429);
    assert!(headers.get("stripe-should-retry").is_none());
    let (status, _) = a.get("/v1/events").await;
    assert_eq!(status, 200, "only the next request");
}
