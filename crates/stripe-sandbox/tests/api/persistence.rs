//! The state file: a killed sandbox started again on it still knows its objects, their list
//! order and its idempotency keys.

use std::path::Path;

use crate::helpers::*;

/// The sandbox binary on `state` with its timers far in the future, so that they are still
/// pending when it is killed.
fn start_with_timers_pending(state: &Path) -> Process {
    Process::start_with(state, None, &["--delay-ms", "600000"])
}

/// Makes the pending timers of a stopped sandbox's state file that `filter` (SQL) keeps due
/// long ago, as if it had been down past their time; returns how many.
async fn make_overdue(state: &Path, filter: &str) -> u64 {
    use sqlx::Connection;
    let mut db = sqlx::SqliteConnection::connect(&format!("sqlite:{}", state.display()))
        .await
        .unwrap();
    let moved = sqlx::query(&format!("UPDATE timers SET due_ms = 0 WHERE {filter}"))
        .execute(&mut db)
        .await
        .unwrap();
    db.close().await.unwrap();
    moved.rows_affected()
}

/// Kills the sandbox `first` and starts another on its state file; each of `paths` must answer
/// the same after the restart as before it.
async fn restart_keeping(first: Process, state: &Path, paths: &[&str]) -> Process {
    let mut before = Vec::new();
    for path in paths {
        before.push(first.api().get_ok(path).await);
    }
    drop(first);
    let second = Process::start(state, None);
    for (path, before) in paths.iter().zip(before) {
        assert_eq!(second.api().get_ok(path).await, before, "{path}");
    }
    second
}

#[tokio::test]
async fn a_restart_keeps_objects_order_and_idempotency_keys() {
    let (_dir, state) = state_file();
    let first = Process::start(&state, None);
    let a = first.api();
    let paying = "amount=1500&currency=eur&payment_method=pm_card_visa&confirm=true";
    let (status, _, paid) = a
        .post_keyed("/v1/payment_intents", paying, "restart-key")
        .await;
    assert_eq!(status, 200, "{paid}");
    let declined = a.create("amount=1600&currency=eur").await;
    let declined_id = declined["id"].as_str().unwrap();
    let (status, _) = a
        .confirm(declined_id, "payment_method=pm_card_visa_chargeDeclined")
        .await;
    assert_eq!(status, 402);
    let lists = ["/v1/payment_intents", "/v1/events?limit=100", "/v1/charges"];
    let second = restart_keeping(first, &state, &lists).await;
    let b = second.api();
    // The key still answers with the first response, and changes nothing.
    let (status, headers, replay) = b
        .post_keyed("/v1/payment_intents", paying, "restart-key")
        .await;
    assert_eq!((status, &replay), (200, &paid));
    assert_eq!(headers["idempotent-replayed"], "true");
    let (_, intents) = b.get("/v1/payment_intents").await;
    assert_eq!(ids(&intents).len(), 2);
    // The PaymentMethod a PaymentIntent kept still behaves as its test card.
    let paid_id = paid["id"].as_str().unwrap();
    assert_eq!(b.payment_method_of(&paid).await["card"]["last4"], "4242");
    let again = b.create("amount=1700&currency=eur").await;
    let (status, confirmed) = b
        .confirm(
            s(&again["id"]),
            &format!("payment_method={}", s(&paid["payment_method"])),
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
    let pi = first.api().create("amount=1500&currency=eur").await;
    drop(first);
    let second = Process::start(std::path::Path::new(":memory:"), None);
    let (status, _) = second
        .api()
        .get(&format!("/v1/payment_intents/{}", s(&pi["id"])))
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn refunds_disputes_and_pending_timers_survive_a_restart() {
    let (_dir, state) = state_file();
    let first = start_with_timers_pending(&state);
    let a = first.api();
    let disputed = a.paid(2000, "pm_card_createDispute", "").await;
    let failing = a.paid(3000, "pm_card_refundFail", "").await;
    let (status, refund) = a.refund(s(&failing["id"]), "").await;
    assert_eq!(status, 200, "{refund}");
    let plain = a.paid(4000, "pm_card_visa", "").await;
    let (_, kept) = a.refund(s(&plain["id"]), "&amount=100").await;
    let bank = a.bank_debit(5000).await;
    assert_eq!(bank["status"], "processing");
    let kept_path = format!("/v1/refunds/{}", s(&kept["id"]));
    assert_eq!(a.get_ok(&kept_path).await, kept);
    let second = restart_keeping(first, &state, &["/v1/refunds", &kept_path]).await;
    let b = second.api();
    let timers = b.get_ok("/_sandbox/timers").await;
    assert_eq!(timers["pending"].as_array().unwrap().len(), 3, "{timers}");
    b.post_ok("/_sandbox/timers", "run=true").await;
    let failed = b.wait_event("refund.failed", s(&refund["id"])).await;
    assert_eq!(failed["status"], "failed");
    let done = b
        .wait_event("payment_intent.succeeded", s(&bank["id"]))
        .await;
    assert_eq!(done["amount_received"], 5000);
    let dispute = b
        .dispute_of(&format!("charge={}", s(&disputed["latest_charge"])))
        .await;
    assert_eq!(dispute["status"], "needs_response");
    let (_, timers) = b.get("/_sandbox/timers").await;
    assert_eq!(timers["pending"], serde_json::json!([]));

    // And what the timers did is kept too.
    let dispute_path = format!("/v1/disputes/{}", s(&dispute["id"]));
    let refund_path = format!("/v1/refunds/{}", s(&refund["id"]));
    assert_eq!(b.get_ok(&dispute_path).await, dispute);
    assert_eq!(b.get_ok(&refund_path).await["status"], "failed");
    restart_keeping(second, &state, &[&dispute_path, &refund_path]).await;
}

#[tokio::test]
async fn a_timer_overdue_at_start_fires_by_itself() {
    let (_dir, state) = state_file();
    let first = start_with_timers_pending(&state);
    let a = first.api();
    let pi = a.paid(2500, "pm_card_refundFail", "").await;
    let (_, refund) = a.refund(s(&pi["id"]), "").await;
    drop(first);
    // As if the sandbox had been down past the timer's time.
    assert_eq!(make_overdue(&state, "1 = 1").await, 1);
    let second = start_with_timers_pending(&state);
    let failed = second
        .api()
        .wait_event("refund.failed", s(&refund["id"]))
        .await;
    assert_eq!(failed["failure_reason"], "expired_or_canceled_card");
}

#[tokio::test]
async fn the_delay_comes_from_the_environment_unless_the_flag_says_otherwise() {
    let state = std::path::Path::new(":memory:");
    let from_env = Process::start_env(state, None, &[], &[("STRIPE_SANDBOX_DELAY_MS", "4321")]);
    let (_, timers) = from_env.api().get("/_sandbox/timers").await;
    assert_eq!(timers["delay_ms"], 4321);
    let flagged = Process::start_env(
        state,
        None,
        &["--delay-ms", "77"],
        &[("STRIPE_SANDBOX_DELAY_MS", "4321")],
    );
    let a = flagged.api();
    let (_, timers) = a.get("/_sandbox/timers").await;
    assert_eq!(timers["delay_ms"], 77);
    let (status, timers) = a.post("/_sandbox/timers", "delay_ms=5").await;
    assert_eq!((status, timers["delay_ms"].as_i64()), (200, Some(5)));
    let plain = Process::start_env(state, None, &[], &[("STRIPE_SANDBOX_DELAY_MS", "")]);
    let (_, timers) = plain.api().get("/_sandbox/timers").await;
    assert_eq!(timers["delay_ms"], 1000, "the default");
}

#[tokio::test]
async fn vouchers_transfers_debits_and_cash_balances_survive_a_restart() {
    let (_dir, state) = state_file();
    let first = start_with_timers_pending(&state);
    let a = first.api();
    let voucher = a.oxxo(20000, "ana@example.com", "").await;
    let lapsing = a.oxxo(30000, "ana@example.com", "").await;
    let customer = a.customer("ana@example.com").await;
    let cus = s(&customer["id"]).to_string();
    let transfer = a.transfer(&cus, 10000, "mxn").await;
    a.fund(&cus, 4000, "mxn", "").await;
    let (_, debit) = a.sepa("AT611904300234573201", 4200, "").await;
    assert_eq!(debit["status"], "processing");
    // What is kept as it was: all but the voucher whose day runs out while the sandbox is down.
    let paths: Vec<String> = [&voucher, &transfer, &debit]
        .iter()
        .map(|pi| format!("/v1/payment_intents/{}", s(&pi["id"])))
        .chain([
            format!("/v1/customers/{cus}?expand[]=cash_balance"),
            format!("/v1/customers/{cus}/cash_balance_transactions"),
        ])
        .collect();
    let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
    let mut before = Vec::new();
    for path in &paths {
        before.push(a.get_ok(path).await);
    }
    drop(first);
    // As if the sandbox had been down past the second voucher's last day.
    let filter = format!(
        "json_extract(action, '$.do') = 'oxxo_expire' AND json_extract(action, '$.payment_intent') = '{}'",
        s(&lapsing["id"])
    );
    assert_eq!(make_overdue(&state, &filter).await, 1);
    let second = start_with_timers_pending(&state);
    let b = second.api();
    // The overdue voucher expires by itself; everything else is as it was.
    let expired = b
        .wait_event("payment_intent.payment_failed", s(&lapsing["id"]))
        .await;
    assert_eq!(
        expired["last_payment_error"]["code"],
        "payment_intent_payment_attempt_expired"
    );
    for (path, before) in paths.iter().zip(before) {
        assert_eq!(b.get_ok(path).await, before, "{path}");
    }
    assert_eq!(b.cash(&cus, "mxn").await, 0);
    let waiting = b
        .get_ok(&format!("/v1/payment_intents/{}", s(&transfer["id"])))
        .await;
    assert_eq!(
        waiting["next_action"]["display_bank_transfer_instructions"]["amount_remaining"],
        6000
    );
    // The voucher is still payable, the transfer still completes, the debit still succeeds.
    let paid = b
        .post_ok(
            &format!(
                "/_sandbox/payment_intents/{}/pay_voucher",
                s(&voucher["id"])
            ),
            "",
        )
        .await;
    assert_eq!(paid["status"], "succeeded");
    b.fund(&cus, 6000, "mxn", "").await;
    let done = b
        .get_ok(&format!("/v1/payment_intents/{}", s(&transfer["id"])))
        .await;
    assert_eq!(done["status"], "succeeded");
    b.post_ok("/_sandbox/timers", "run=true").await;
    b.wait_event("payment_intent.succeeded", s(&debit["id"]))
        .await;
    assert_eq!(
        b.get_ok(&format!("/v1/customers/{cus}/cash_balance_transactions"))
            .await["data"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    restart_keeping(second, &state, &paths).await;
}
