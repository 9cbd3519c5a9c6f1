//! Crash safety: the process is killed with SIGKILL while webhooks are being delivered. After a
//! restart, every event that was answered 200 is in the ledger, applied, and nothing is doubled
//! when Stripe delivers everything again.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tmt_payments::ledger::PaymentRow;
use tmt_payments::stripe::signature::sign;

use crate::helpers::*;

const EVENTS: usize = 600;
const KILL_AFTER: usize = 150;
const WORKERS: usize = 16;

fn events() -> Vec<(String, String)> {
    (0..EVENTS)
        .map(|i| {
            let id = format!("pi_crash{i:06}");
            let mut pi = payment_intent(&id, 1000 + i as i64, "usd", "requires_payment_method");
            pi["metadata"] = json!({"platform": "TMT", "n": i.to_string()});
            (
                format!("evt_crash_{i:06}"),
                event(
                    &format!("evt_crash_{i:06}"),
                    "payment_intent.created",
                    pi,
                    now(),
                )
                .to_string(),
            )
        })
        .collect()
}

/// Delivers every event once, from `WORKERS` concurrent senders; returns the ids answered 200.
/// With `kill_after`, the server is SIGKILLed once that many have been acknowledged.
async fn deliver_all(
    address: &str,
    events: &[(String, String)],
    kill: Option<(usize, Arc<Mutex<Server>>)>,
) -> HashSet<String> {
    let acked = Arc::new(Mutex::new(HashSet::new()));
    let queue = Arc::new(Mutex::new(events.to_vec()));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..WORKERS {
        let (acked, queue, http, kill) = (acked.clone(), queue.clone(), http.clone(), kill.clone());
        let url = format!("{address}/stripe_webhook");
        tasks.push(tokio::spawn(async move {
            loop {
                let Some((id, body)) = queue.lock().unwrap().pop() else {
                    break;
                };
                let header = sign(body.as_bytes(), WEBHOOK_SECRET, now());
                let ok = http
                    .post(&url)
                    .header("Stripe-Signature", header)
                    .body(body)
                    .send()
                    .await
                    .map(|r| r.status().as_u16() == 200)
                    .unwrap_or(false);
                if ok {
                    let n = {
                        let mut a = acked.lock().unwrap();
                        a.insert(id);
                        a.len()
                    };
                    if let Some((after, server)) = &kill {
                        if n == *after {
                            let mut s = server.lock().unwrap();
                            s.child.kill().unwrap();
                            s.child.wait().unwrap();
                        }
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    Arc::try_unwrap(acked).unwrap().into_inner().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_during_webhook_delivery_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let db = test_database_url(dir.path()).await;
    // Stripe is never called: nothing listens there.
    let stripe = "http://127.0.0.1:9";
    let all = events();

    let server = Server::keyed(&db, stripe, &[]).await;
    let address = server.address.clone();
    let server = Arc::new(Mutex::new(server));
    let acked = deliver_all(&address, &all, Some((KILL_AFTER, server.clone()))).await;
    assert!(
        acked.len() >= KILL_AFTER,
        "only {} acknowledged",
        acked.len()
    );
    assert!(
        acked.len() < EVENTS,
        "the kill came too late to test anything"
    );

    // After the crash, before anything is re-sent: every acknowledged event is on disk, applied.
    let ledger = open_ledger(&db).await;
    if !on_postgres() {
        let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&sqlx::SqlitePool::connect(&db).await.unwrap())
            .await
            .unwrap();
        assert_eq!(integrity, "ok");
    }
    let recorded: Vec<_> = ledger.list_events(10_000).await.unwrap();
    let recorded_ids: HashSet<String> = recorded.iter().map(|e| e.id.clone()).collect();
    let missing: Vec<_> = acked.difference(&recorded_ids).collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    for e in &recorded {
        assert_eq!(e.outcome, "applied", "{}", e.id);
        let pi = e.payment_intent_id.as_deref().unwrap();
        assert!(
            ledger.payment(pi).await.unwrap().is_some(),
            "{} recorded but not applied",
            e.id
        );
    }
    let payments_before = ledger.list::<PaymentRow>(None, 10_000).await.unwrap();
    assert_eq!(
        payments_before.len(),
        recorded.len(),
        "event and row commit together"
    );
    ledger.close().await;

    // Restart; Stripe re-delivers everything (it retries what got no 200, and may repeat the rest).
    let server = Server::keyed(&db, stripe, &[]).await;
    let acked_again = deliver_all(&server.address, &all, None).await;
    assert_eq!(acked_again.len(), EVENTS);
    let ledger = open_ledger(&db).await;
    let recorded = ledger.list_events(10_000).await.unwrap();
    assert_eq!(recorded.len(), EVENTS, "one row per event id");
    assert!(recorded.iter().all(|e| e.outcome == "applied"));
    let payments = ledger.list::<PaymentRow>(None, 10_000).await.unwrap();
    assert_eq!(payments.len(), EVENTS);
    // Rows written before the crash were not touched by the re-deliveries.
    for before in payments_before {
        let after = ledger.payment(&before.id).await.unwrap().unwrap();
        assert_eq!(after, before);
    }
    let sample: Value =
        serde_json::to_value(ledger.payment("pi_crash000007").await.unwrap().unwrap()).unwrap();
    assert_eq!(sample["amount"], 1007);
}
