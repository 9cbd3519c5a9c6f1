//! OXXO: a voucher paid at the store, one that expires unpaid (and then cannot be paid: never
//! two outcomes), the seat hold extended to the voucher's end, the refund refused before Stripe.

use serde_json::json;

use super::*;

/// A payment of 500.00 MXN by OXXO, holding its seats for ten minutes, confirmed by the buyer;
/// its id and the voucher as Stripe issued it.
async fn voucher_issued(shop: &Shop) -> (String, Value) {
    let created = shop
        .create(
            json!({"amount": "500.00", "currency": "mxn", "paymentMethodTypes": ["oxxo"],
                       "holdSeconds": 600}),
        )
        .await;
    assert!(created.get("nextAction").is_none(), "{created}");
    let pi = id_of(&created);
    let confirmed = shop.confirm(&pi, OXXO).await;
    assert_eq!(confirmed["status"], "requires_action", "{confirmed}");
    assert_eq!(
        confirmed["payment_method_options"]["oxxo"]["expires_after_days"],
        2
    );
    (pi, confirmed["next_action"]["oxxo_display_details"].clone())
}

#[tokio::test]
async fn a_voucher_paid_at_the_store() {
    let shop = Shop::start(&[]).await;
    let (pi, voucher) = voucher_issued(&shop).await;
    let got = shop.get(&pi).await;
    let next = &got["nextAction"];
    assert_eq!(next["type"], "oxxo_display_details", "{got}");
    assert_eq!(next["number"], voucher["number"]);
    assert_eq!(next["hostedUrl"], voucher["hosted_voucher_url"]);
    assert_eq!(next["amountRemaining"].to_string(), "500.00");
    let expires = voucher["expires_after"].as_i64().unwrap();
    let expires_at = chrono::DateTime::from_timestamp(expires, 0).unwrap();
    assert_eq!(
        next["expiresAt"],
        expires_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    );
    // The platform is told once, with the voucher, so that it can e-mail it.
    let awaiting = shop.platform.expect(&pi, "payment.awaiting_payment").await;
    assert_eq!(awaiting["data"]["nextAction"], *next);
    // The seats are held until the voucher's end (within the 72 hours' cap), not ten minutes.
    let hold = shop.ledger().await.hold_of(&pi).await.unwrap().unwrap();
    assert_eq!(hold.expires_ms, expires * 1000);

    let (status, _, paid) = shop.voucher(&pi, "pay_voucher").await;
    assert_eq!(status, 200, "{paid}");
    shop.told_exactly(&pi, &["payment.awaiting_payment", "payment.succeeded"])
        .await;
    let succeeded = notification(&shop.platform, &pi, "payment.succeeded");
    assert_eq!(succeeded["data"]["late"], false);
    let got = shop.get(&pi).await;
    assert_eq!(got["status"], "succeeded");
    assert!(got.get("nextAction").is_none(), "{got}");

    // Cash at a store cannot be given back: refused before Stripe is asked.
    let (status, _, body) = shop.refund(&pi).await;
    assert_eq!(code(status, &body), (409, "refund_not_supported"));
    assert_eq!(body["error"], "Este método de pago no admite reembolsos");
    let refunds = shop
        .at_stripe(&format!("/v1/refunds?payment_intent={pi}"), None)
        .await;
    assert_eq!(refunds["data"], json!([]));
}

#[tokio::test]
async fn a_voucher_expired_unpaid_is_canceled_and_cannot_be_paid_after() {
    let shop = Shop::start(&[]).await;
    let (pi, _) = voucher_issued(&shop).await;
    shop.platform.expect(&pi, "payment.awaiting_payment").await;
    let (status, _, expired) = shop.voucher(&pi, "expire_voucher").await;
    assert_eq!(status, 200, "{expired}");
    // The service ends the payment: canceled, its seats released.
    shop.reaches(&pi, "canceled").await;
    shop.told_exactly(&pi, &["payment.awaiting_payment", "payment.canceled"])
        .await;
    let hold = shop.ledger().await.hold_of(&pi).await.unwrap().unwrap();
    assert_eq!(hold.state, Some(tmt_payments::ledger::HoldState::Released));
    // The buyer at the store after the voucher expired: refused, and nothing changes.
    let (status, _, body) = shop.voucher(&pi, "pay_voucher").await;
    assert_eq!(status, 400, "{body}");
    let got = shop.get(&pi).await;
    assert_eq!(got["status"], "canceled");
    assert!(shop.platform.of(&pi, "payment.succeeded").is_empty());
    assert_eq!(
        shop.told(&pi),
        ["payment.awaiting_payment", "payment.canceled"]
    );
}
