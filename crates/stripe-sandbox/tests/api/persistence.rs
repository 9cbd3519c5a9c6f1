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

#[tokio::test]
async fn refunds_disputes_and_pending_timers_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("sandbox.db");
    // Timers far in the future, so that they are still pending when the sandbox is killed.
    let first = Process::start_with(&state, None, &["--delay-ms", "600000"]);
    let a = Api::new(first.base.clone());
    let disputed = a.paid(2000, "pm_card_createDispute", "").await;
    let failing = a.paid(3000, "pm_card_refundFail", "").await;
    let (status, refund) = a
        .post(
            "/v1/refunds",
            &format!("payment_intent={}", failing["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(status, 200, "{refund}");
    let plain = a.paid(4000, "pm_card_visa", "").await;
    let (_, kept) = a
        .post(
            "/v1/refunds",
            &format!(
                "payment_intent={}&amount=100",
                plain["id"].as_str().unwrap()
            ),
        )
        .await;
    let bank = a
        .create("amount=5000&currency=usd&payment_method_types[]=us_bank_account&payment_method=pm_usBankAccount_success&confirm=true")
        .await;
    assert_eq!(bank["status"], "processing");
    let (_, timers) = a.get("/_sandbox/timers").await;
    assert_eq!(timers["pending"].as_array().unwrap().len(), 3, "{timers}");
    let (_, refunds_before) = a.get("/v1/refunds").await;
    drop(first);

    let second = Process::start(&state, None);
    let b = Api::new(second.base.clone());
    let (_, refunds_after) = b.get("/v1/refunds").await;
    assert_eq!(refunds_after, refunds_before);
    let (_, got) = b
        .get(&format!("/v1/refunds/{}", kept["id"].as_str().unwrap()))
        .await;
    assert_eq!(got, kept);
    let (_, timers) = b.get("/_sandbox/timers").await;
    assert_eq!(timers["pending"].as_array().unwrap().len(), 3, "{timers}");
    let (status, _) = b.post("/_sandbox/timers", "run=true").await;
    assert_eq!(status, 200);
    let failed = b
        .wait_event("refund.failed", refund["id"].as_str().unwrap())
        .await;
    assert_eq!(failed["status"], "failed");
    let done = b
        .wait_event("payment_intent.succeeded", bank["id"].as_str().unwrap())
        .await;
    assert_eq!(done["amount_received"], 5000);
    let charge = disputed["latest_charge"].as_str().unwrap().to_string();
    let dispute = eventually("the dispute", || async {
        let (_, list) = b.get(&format!("/v1/disputes?charge={charge}")).await;
        list["data"].as_array()?.first().cloned()
    })
    .await;
    assert_eq!(dispute["status"], "needs_response");
    let (_, timers) = b.get("/_sandbox/timers").await;
    assert_eq!(timers["pending"], serde_json::json!([]));
    drop(second);

    // And what the timers did is kept too.
    let third = Process::start(&state, None);
    let c = Api::new(third.base.clone());
    let (_, again) = c
        .get(&format!("/v1/disputes/{}", dispute["id"].as_str().unwrap()))
        .await;
    assert_eq!(again, dispute);
    let (_, refund) = c
        .get(&format!("/v1/refunds/{}", refund["id"].as_str().unwrap()))
        .await;
    assert_eq!(refund["status"], "failed");
}

#[tokio::test]
async fn a_timer_overdue_at_start_fires_by_itself() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("sandbox.db");
    let first = Process::start_with(&state, None, &["--delay-ms", "600000"]);
    let a = Api::new(first.base.clone());
    let pi = a.paid(2500, "pm_card_refundFail", "").await;
    let (_, refund) = a
        .post(
            "/v1/refunds",
            &format!("payment_intent={}", pi["id"].as_str().unwrap()),
        )
        .await;
    drop(first);
    // As if the sandbox had been down past the timer's time.
    let mut db = sqlx::SqliteConnection::connect(&format!("sqlite:{}", state.display()))
        .await
        .unwrap();
    let moved = sqlx::query("UPDATE timers SET due_ms = 0")
        .execute(&mut db)
        .await
        .unwrap();
    assert_eq!(moved.rows_affected(), 1);
    db.close().await.unwrap();
    let second = Process::start_with(&state, None, &["--delay-ms", "600000"]);
    let b = Api::new(second.base.clone());
    let failed = b
        .wait_event("refund.failed", refund["id"].as_str().unwrap())
        .await;
    assert_eq!(failed["failure_reason"], "expired_or_canceled_card");
}

#[tokio::test]
async fn the_delay_comes_from_the_environment_unless_the_flag_says_otherwise() {
    let state = std::path::Path::new(":memory:");
    let from_env = Process::start_env(state, None, &[], &[("STRIPE_SANDBOX_DELAY_MS", "4321")]);
    let (_, timers) = Api::new(from_env.base.clone())
        .get("/_sandbox/timers")
        .await;
    assert_eq!(timers["delay_ms"], 4321);
    let flagged = Process::start_env(
        state,
        None,
        &["--delay-ms", "77"],
        &[("STRIPE_SANDBOX_DELAY_MS", "4321")],
    );
    let a = Api::new(flagged.base.clone());
    let (_, timers) = a.get("/_sandbox/timers").await;
    assert_eq!(timers["delay_ms"], 77);
    let (status, timers) = a.post("/_sandbox/timers", "delay_ms=5").await;
    assert_eq!((status, timers["delay_ms"].as_i64()), (200, Some(5)));
    let plain = Process::start_env(state, None, &[], &[("STRIPE_SANDBOX_DELAY_MS", "")]);
    let (_, timers) = Api::new(plain.base.clone()).get("/_sandbox/timers").await;
    assert_eq!(timers["delay_ms"], 1000, "the default");
}
