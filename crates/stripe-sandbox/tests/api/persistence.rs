//! The state file: a killed sandbox started again on it still knows its objects, their list
//! order and its idempotency keys.

use crate::helpers::*;

#[tokio::test]
async fn a_restart_keeps_objects_order_and_idempotency_keys() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("sandbox.db");
    let first = Process::start(&state, None);
    let a = Api::new(first.base.clone());
    let (status, _, paid) = a
        .call(
            reqwest::Method::POST,
            "/v1/payment_intents",
            "amount=1500&currency=eur&payment_method=pm_card_visa&confirm=true",
            Some("restart-key"),
        )
        .await;
    assert_eq!(status, 200, "{paid}");
    let declined = a.create("amount=1600&currency=eur").await;
    let declined_id = declined["id"].as_str().unwrap();
    let (status, _) = a
        .post(
            &format!("/v1/payment_intents/{declined_id}/confirm"),
            "payment_method=pm_card_visa_chargeDeclined",
        )
        .await;
    assert_eq!(status, 402);
    let (_, intents_before) = a.get("/v1/payment_intents").await;
    let (_, events_before) = a.get("/v1/events?limit=100").await;
    let (_, charges_before) = a.get("/v1/charges").await;
    drop(first);

    let second = Process::start(&state, None);
    let b = Api::new(second.base.clone());
    let (_, intents_after) = b.get("/v1/payment_intents").await;
    assert_eq!(intents_after, intents_before);
    let (_, events_after) = b.get("/v1/events?limit=100").await;
    assert_eq!(ids(&events_after), ids(&events_before));
    let (_, charges_after) = b.get("/v1/charges").await;
    assert_eq!(charges_after, charges_before);
    // The key still answers with the first response, and changes nothing.
    let (status, headers, replay) = b
        .call(
            reqwest::Method::POST,
            "/v1/payment_intents",
            "amount=1500&currency=eur&payment_method=pm_card_visa&confirm=true",
            Some("restart-key"),
        )
        .await;
    assert_eq!((status, &replay), (200, &paid));
    assert_eq!(headers["idempotent-replayed"], "true");
    let (_, intents) = b.get("/v1/payment_intents").await;
    assert_eq!(ids(&intents).len(), 2);
    // The PaymentMethod a PaymentIntent kept still behaves as its test card.
    let paid_id = paid["id"].as_str().unwrap();
    let (status, pm) = b
        .get(&format!(
            "/v1/payment_methods/{}",
            paid["payment_method"].as_str().unwrap()
        ))
        .await;
    assert_eq!((status, pm["card"]["last4"].as_str()), (200, Some("4242")));
    let again = b.create("amount=1700&currency=eur").await;
    let (status, confirmed) = b
        .post(
            &format!(
                "/v1/payment_intents/{}/confirm",
                again["id"].as_str().unwrap()
            ),
            &format!(
                "payment_method={}",
                paid["payment_method"].as_str().unwrap()
            ),
        )
        .await;
    assert_eq!(
        (status, confirmed["status"].as_str()),
        (200, Some("succeeded"))
    );
    // New objects are newer than old ones.
    let (_, intents) = b.get("/v1/payment_intents").await;
    assert_eq!(
        ids(&intents),
        [again["id"].as_str().unwrap(), declined_id, paid_id]
    );
}

#[tokio::test]
async fn memory_state_is_forgotten() {
    let first = Process::start(std::path::Path::new(":memory:"), None);
    let a = Api::new(first.base.clone());
    let pi = a.create("amount=1500&currency=eur").await;
    drop(first);
    let second = Process::start(std::path::Path::new(":memory:"), None);
    let b = Api::new(second.base.clone());
    let (status, _) = b
        .get(&format!(
            "/v1/payment_intents/{}",
            pi["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, 404);
}
