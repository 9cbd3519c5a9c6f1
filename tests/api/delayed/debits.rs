//! SEPA Direct Debit with Stripe's test IBANs: a debit that succeeds after `processing`, one
//! that fails after it (`payment.failed`, the seats released), one disputed later; the seat
//! hold kept while the debit is processing.

use serde_json::json;
use tmt_payments::ledger::HoldState;

use super::*;

/// A payment of 40.00 EUR by SEPA Debit holding its seats, confirmed from `iban`; its id.
async fn debit(shop: &Shop, iban: &str) -> String {
    let created = shop
        .create(
            json!({"amount": "40.00", "currency": "eur", "paymentMethodTypes": ["sepa_debit"],
                       "holdSeconds": 600}),
        )
        .await;
    let pi = id_of(&created);
    let confirmed = shop.confirm(&pi, &sepa(iban)).await;
    assert_eq!(confirmed["status"], "processing", "{confirmed}");
    pi
}

async fn hold_state(shop: &Shop, pi: &str) -> Option<HoldState> {
    shop.ledger()
        .await
        .hold_of(pi)
        .await
        .unwrap()
        .unwrap()
        .state
}

#[tokio::test]
async fn a_debit_that_succeeds_after_processing() {
    // Slow enough to see it processing.
    let shop = Shop::start(&[("STRIPE_SANDBOX_DELAY_MS", "3000")]).await;
    let pi = debit(&shop, "AT611904300234573201").await;
    let got = shop.get(&pi).await;
    assert_eq!(got["status"], "processing");
    assert!(got.get("nextAction").is_none(), "a debit has none: {got}");
    // Its hold waits for the outcome, which is in time whenever it comes.
    assert_eq!(hold_state(&shop, &pi).await, Some(HoldState::Debiting));
    shop.told_exactly(&pi, &["payment.succeeded"]).await;
    assert_eq!(
        notification(&shop.platform, &pi, "payment.succeeded")["data"]["late"],
        false
    );
    assert_eq!(hold_state(&shop, &pi).await, Some(HoldState::Kept));
}

#[tokio::test]
async fn a_debit_that_fails_after_processing_releases_its_seats() {
    let shop = Shop::start(&[]).await;
    let pi = debit(&shop, "AT861904300235473202").await;
    shop.reaches(&pi, "requires_payment_method").await;
    shop.told_exactly(&pi, &["payment.failed"]).await;
    let failed = notification(&shop.platform, &pi, "payment.failed");
    assert_eq!(failed["data"]["status"], "requires_payment_method");
    eventually("the seats released", PATIENCE, || async {
        hold_state(&shop, &pi).await == Some(HoldState::Released)
    })
    .await;
    // Told once, however often Stripe's events come again.
    let events = shop.events(None).await;
    let failed_events: Vec<Value> = events
        .into_iter()
        .filter(|e| e["data"]["object"]["id"] == pi.as_str())
        .collect();
    deliver_shuffled(
        std::slice::from_ref(&shop.server.address),
        &failed_events,
        2,
    )
    .await;
    assert_eq!(shop.told(&pi), ["payment.failed"]);
}

#[tokio::test]
async fn a_debit_disputed_later_is_told_as_any_dispute() {
    let shop = Shop::start(&[]).await;
    let pi = debit(&shop, "AT591904300235473203").await;
    shop.told_exactly(&pi, &["payment.succeeded", "payment.disputed"])
        .await;
    let disputed = notification(&shop.platform, &pi, "payment.disputed");
    assert!(disputed["data"]["disputeId"].is_string(), "{disputed}");
}

use crate::connect::deliver_shuffled;

/// After a debit failed and its seats were released, the buyer tries again on the same
/// payment: that success is late, and follows `LATE_PAYMENT_POLICY` (here `refund`).
#[tokio::test]
async fn a_success_after_the_failed_debit_released_the_seats_is_late() {
    let shop = Shop::start(&[("LATE_PAYMENT_POLICY", "refund")]).await;
    let pi = debit(&shop, "AT861904300235473202").await;
    shop.platform.expect(&pi, "payment.failed").await;
    eventually("the seats released", PATIENCE, || async {
        hold_state(&shop, &pi).await == Some(HoldState::Released)
    })
    .await;
    let again = shop.confirm(&pi, &sepa("AT611904300234573201")).await;
    assert_eq!(again["status"], "processing", "{again}");
    shop.told_exactly(&pi, &["payment.failed", "payment.refunded"])
        .await;
    let refunded = notification(&shop.platform, &pi, "payment.refunded");
    assert_eq!(refunded["data"]["late"], true);
    assert!(shop.platform.of(&pi, "payment.succeeded").is_empty());
}
