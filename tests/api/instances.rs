//! Several instances on one database (docs/contract.md §6–§8 across processes): a webhook storm
//! with duplicates, a burst of creates under one Idempotency-Key, and an instance killed with
//! SIGKILL mid-storm. PostgreSQL runs three real processes (its tests are `#[ignore]`d: they
//! need the server at TMT_TEST_POSTGRES_URL); SQLite runs the same scenarios with concurrent
//! clients against one process.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::seq::SliceRandom;
use serde_json::{json, Value};
use tmt_payments::ledger::{DisputeRow, EventRow, NotificationRow, RefundRow};
use tmt_payments::stripe::signature::sign;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer};

use crate::helpers::*;

struct Cluster {
    servers: Vec<Arc<Mutex<Option<Server>>>>,
    addresses: Vec<String>,
    db: String,
    stripe: MockServer,
}

/// Stripe's create, slowly, with a new PaymentIntent id each time it is asked.
struct SlowCreate(std::sync::atomic::AtomicUsize);

impl wiremock::Respond for SlowCreate {
    fn respond(&self, request: &wiremock::Request) -> wiremock::ResponseTemplate {
        let n = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut pi = created_payment_intent(request);
        pi["id"] = json!(format!("pi_3Burst{n:06}"));
        pi["client_secret"] = json!(format!("pi_3Burst{n:06}_secret_x"));
        wiremock::ResponseTemplate::new(200)
            .set_body_json(pi)
            .set_delay(Duration::from_millis(300))
    }
}

/// Three instances on a database of their own on the PostgreSQL peer.
async fn postgres_cluster(envs: &[(&str, &str)]) -> Cluster {
    let db = fresh_postgres_database(&postgres_peer().await).await;
    cluster(db, 3, envs).await
}

async fn cluster(db: String, instances: usize, envs: &[(&str, &str)]) -> Cluster {
    let stripe = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(SlowCreate(Default::default()))
        .mount(&stripe)
        .await;
    let uri = stripe.uri();
    let mut servers = Vec::new();
    let mut addresses = Vec::new();
    for _ in 0..instances {
        let mut all = vec![("DATABASE_MAX_CONNECTIONS", "5")];
        all.extend_from_slice(envs);
        let server = Server::keyed(&db, &uri, &all).await;
        addresses.push(server.address.clone());
        servers.push(Arc::new(Mutex::new(Some(server))));
    }
    Cluster {
        servers,
        addresses,
        db,
        stripe,
    }
}

const PAYMENTS: usize = 10;
const COPIES: usize = 4;
/// Created one second apart, in this order; the last is newer than the final `succeeded`, so
/// only the final-status rule (not recency) keeps it from moving the row.
const TYPES: [(&str, &str); 6] = [
    CREATED,
    REQUIRES_ACTION,
    FAILED,
    PROCESSING,
    SUCCEEDED,
    PROCESSING,
];

/// 10 PaymentIntents × 6 events = 60 distinct events, each in `copies` copies, shuffled.
fn storm(copies: usize) -> Vec<(String, String)> {
    let t = now();
    let mut deliveries = Vec::new();
    for p in 0..PAYMENTS {
        let pi_id = format!("pi_storm{p:04}");
        for (i, (kind, status)) in TYPES.iter().enumerate() {
            let pi = payment_intent(&pi_id, 1000 + p as i64, "usd", status);
            let id = format!("evt_storm_{p:04}_{i}");
            let body = event(&id, kind, pi, t + i as i64).to_string();
            for _ in 0..copies {
                deliveries.push((id.clone(), body.clone()));
            }
        }
    }
    deliveries.shuffle(&mut rand::thread_rng());
    deliveries
}

/// Sends every delivery concurrently, spread over the instances; a delivery that fails is
/// retried on the next instance (as Stripe retries). With `kill`, instance 0 is SIGKILLed once
/// that many deliveries have been acknowledged (and must have been by the end). Returns the ids
/// answered 200.
async fn deliver(
    c: &Cluster,
    deliveries: Vec<(String, String)>,
    kill: Option<usize>,
) -> HashSet<String> {
    let expected = deliveries.len();
    let queue = Arc::new(Mutex::new(
        deliveries.into_iter().enumerate().collect::<Vec<_>>(),
    ));
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let mut workers = Vec::new();
    for _ in 0..24 {
        let (queue, acked, http) = (queue.clone(), acked.clone(), http.clone());
        let addresses = c.addresses.clone();
        let victim = c.servers[0].clone();
        workers.push(tokio::spawn(async move {
            loop {
                let Some((n, (id, body))) = queue.lock().unwrap().pop() else {
                    break;
                };
                let mut delivered = false;
                for attempt in 0..(addresses.len() * 5) {
                    let address = &addresses[(n + attempt) % addresses.len()];
                    let header = sign(body.as_bytes(), WEBHOOK_SECRET, now());
                    let ok = http
                        .post(format!("{address}/stripe_webhook"))
                        .header("Stripe-Signature", header)
                        .body(body.clone())
                        .send()
                        .await
                        .map(|r| r.status().as_u16() == 200)
                        .unwrap_or(false);
                    if ok {
                        delivered = true;
                        break;
                    }
                    // Stripe's own pace: a refused delivery is tried again a little later.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                assert!(delivered, "{id} never accepted by any instance");
                let count = {
                    let mut a = acked.lock().unwrap();
                    a.push(id);
                    a.len()
                };
                if kill == Some(count) {
                    if let Some(mut server) = victim.lock().unwrap().take() {
                        server.child.kill().unwrap();
                        server.child.wait().unwrap();
                    }
                }
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    if kill.is_some() {
        assert!(
            c.servers[0].lock().unwrap().is_none(),
            "instance 0 was killed"
        );
    }
    let acked = acked.lock().unwrap();
    assert_eq!(acked.len(), expected, "every delivery acknowledged");
    acked.iter().cloned().collect()
}

async fn check_storm_outcome(c: &Cluster, acked: &HashSet<String>) {
    let ledger = open_ledger(&c.db).await;
    let events = ledger.list_events(10_000).await.unwrap();
    assert_eq!(
        events.len(),
        PAYMENTS * TYPES.len(),
        "one row per distinct event"
    );
    let ids: HashSet<String> = events.iter().map(|e| e.id.clone()).collect();
    assert_eq!(&ids, acked, "every acknowledged event is recorded");
    for p in 0..PAYMENTS {
        let id = format!("pi_storm{p:04}");
        let row = ledger
            .payment(&id)
            .await
            .unwrap()
            .expect("row created by its events");
        // Whatever order the copies came in, succeeded is final and nothing moved it.
        if row.status != "succeeded" {
            eprintln!(
                "{id} ended as {row:?} after {:#?}",
                ledger.of_payment::<EventRow>(&id).await.unwrap()
            );
        }
        assert_eq!(row.status, "succeeded", "{id}");
        let for_it = ledger.of_payment::<EventRow>(&id).await.unwrap();
        assert_eq!(for_it.len(), TYPES.len(), "{id}");
        let succeeded = for_it
            .iter()
            .find(|e| e.event_type == "payment_intent.succeeded")
            .unwrap();
        assert_eq!(succeeded.outcome, "applied");
    }
}

/// A create under `key` sent to the instance at `addresses[i]` (round the ring).
async fn create_at(addresses: &[String], i: usize, key: &str, data: &Value) -> Answer {
    let url = format!(
        "{}/stripe_create_payment_intent",
        addresses[i % addresses.len()]
    );
    let r = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("Idempotency-Key", key)
        .body(json!({ "data": data }).to_string())
        .send()
        .await
        .unwrap();
    read(r).await
}

async fn stripe_creates(c: &Cluster) -> usize {
    received(&c.stripe, "POST", "/v1/payment_intents")
        .await
        .len()
}

/// The storm, every event in `COPIES` copies, then the burst of creates under one key.
async fn storm_then_burst(c: &Cluster) {
    let acked = deliver(c, storm(COPIES), None).await;
    check_storm_outcome(c, &acked).await;
    idempotent_burst(c).await;
}

async fn idempotent_burst(c: &Cluster) {
    let data = json!({"amount": "75.00", "currency": "usd", "metadata": {"order": "B-7"}});
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let (addresses, data) = (c.addresses.clone(), data.clone());
            tokio::spawn(async move { create_at(&addresses, i, "burst-key-1", &data).await })
        })
        .collect();
    let mut answered = Vec::new();
    for t in tasks {
        answered.push(t.await.unwrap());
    }
    assert_eq!(
        stripe_creates(c).await,
        1,
        "exactly one PaymentIntent created at Stripe"
    );
    let ok: Vec<&Value> = answered
        .iter()
        .filter(|(s, _, _)| *s == 200)
        .map(|(_, _, b)| b)
        .collect();
    assert!(!ok.is_empty());
    for body in &ok {
        assert_eq!(body["data"]["paymentIntentId"], "pi_3Burst000000");
    }
    for (status, _, body) in &answered {
        assert!(
            *status == 200 || (*status == 409 && body["code"] == "idempotency_key_in_progress"),
            "{status} {body}"
        );
    }
    println!(
        "burst: {} answered 200, {} answered 409",
        ok.len(),
        answered.len() - ok.len()
    );
    // Afterwards: a replay from any instance, and the same key with another amount.
    let (status, headers, replay) = create_at(&c.addresses, 1, "burst-key-1", &data).await;
    assert_eq!(status, 200);
    assert_eq!(headers["idempotent-replayed"], "true");
    assert_eq!(replay["data"]["paymentIntentId"], "pi_3Burst000000");
    let other = json!({"amount": "76.00", "currency": "usd", "metadata": {"order": "B-7"}});
    let (status, _, body) = create_at(&c.addresses, 2, "burst-key-1", &other).await;
    assert_eq!(code(status, &body), (422, "idempotency_key_reused"));
    assert_eq!(
        stripe_creates(c).await,
        1,
        "still one PaymentIntent after the replay and the reuse"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL at TMT_TEST_POSTGRES_URL"]
async fn postgres_three_instances() {
    storm_then_burst(&postgres_cluster(&[]).await).await;
}

/// One copy per event: an event the killed instance acknowledged is never sent again, so if it
/// were not on disk the ledger would miss it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL at TMT_TEST_POSTGRES_URL"]
async fn postgres_instance_killed_mid_storm() {
    let c = postgres_cluster(&[]).await;
    let acked = deliver(&c, storm(1), Some(20)).await;
    check_storm_outcome(&c, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_one_instance_many_clients() {
    let dir = tempfile::tempdir().unwrap();
    storm_then_burst(&cluster(sqlite_url(dir.path()), 1, &[]).await).await;
}

/// Refunds and disputes of 8 payments of ours, each event in 4 copies, all shuffled over three
/// instances: every row ends where its newest information and the final-status rules say,
/// and every event is recorded once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL at TMT_TEST_POSTGRES_URL"]
async fn postgres_refund_and_dispute_storm() {
    let c = postgres_cluster(&[]).await;
    let t = now();
    // The payments first, as Stripe would have sent them.
    let mut paid = Vec::new();
    for p in 0..8 {
        let pi = payment_intent(&format!("pi_rstorm{p:02}"), 4000, "usd", "succeeded");
        let id = format!("evt_rstorm_paid_{p:02}");
        paid.push((
            id.clone(),
            event(&id, "payment_intent.succeeded", pi, t - 60).to_string(),
        ));
    }
    deliver(&c, paid, None).await;

    let refund = |p: usize, status: &str| {
        let mut r = fixture("refund");
        r["id"] = json!(format!("re_rstorm{p:02}"));
        r["amount"] = json!(1500);
        r["payment_intent"] = json!(format!("pi_rstorm{p:02}"));
        r["status"] = json!(status);
        r
    };
    let dispute = |p: usize, status: &str| {
        json!({"id": format!("dp_rstorm{p:02}"), "object": "dispute", "amount": 4000,
               "currency": "usd", "payment_intent": format!("pi_rstorm{p:02}"),
               "charge": format!("ch_rstorm{p:02}"), "reason": "fraudulent",
               "status": status, "created": t})
    };
    let mut deliveries = Vec::new();
    let mut distinct = 0;
    for p in 0..8 {
        let verdict = if p % 2 == 0 { "won" } else { "lost" };
        let events = [
            ("refund.created", refund(p, "pending"), t),
            ("refund.updated", refund(p, "succeeded"), t + 1),
            ("charge.refund.updated", refund(p, "succeeded"), t + 2),
            // Older than what the ledger will know: it must not move the row back.
            ("refund.updated", refund(p, "pending"), t - 5),
            ("charge.dispute.created", dispute(p, "needs_response"), t),
            (
                "charge.dispute.funds_withdrawn",
                dispute(p, "needs_response"),
                t + 1,
            ),
            ("charge.dispute.updated", dispute(p, "under_review"), t + 2),
            ("charge.dispute.closed", dispute(p, verdict), t + 3),
            // Newer, but the dispute is closed: final stays.
            ("charge.dispute.updated", dispute(p, "under_review"), t + 9),
        ];
        for (i, (kind, object, created)) in events.into_iter().enumerate() {
            let id = format!("evt_rstorm_{p:02}_{i}");
            let body = event(&id, kind, object, created).to_string();
            distinct += 1;
            for _ in 0..COPIES {
                deliveries.push((id.clone(), body.clone()));
            }
        }
    }
    deliveries.shuffle(&mut rand::thread_rng());
    let acked = deliver(&c, deliveries, None).await;
    assert_eq!(acked.len(), distinct);

    let ledger = open_ledger(&c.db).await;
    assert_eq!(
        ledger.list_events(10_000).await.unwrap().len(),
        distinct + 8,
        "each event recorded once"
    );
    for p in 0..8 {
        let pi = format!("pi_rstorm{p:02}");
        let refunds = ledger.of_payment::<RefundRow>(&pi).await.unwrap();
        assert_eq!(refunds.len(), 1, "{pi}");
        assert_eq!(refunds[0].status, "succeeded", "{pi}");
        assert_eq!(ledger.amount_refunded(&pi).await.unwrap(), 1500, "{pi}");
        let disputes = ledger.of_payment::<DisputeRow>(&pi).await.unwrap();
        assert_eq!(disputes.len(), 1, "{pi}");
        assert_eq!(
            disputes[0].status,
            if p % 2 == 0 { "won" } else { "lost" },
            "{pi}"
        );
        assert_eq!(
            ledger.payment(&pi).await.unwrap().unwrap().status,
            "succeeded"
        );
    }
}

/// Three instances deliver fulfilment notifications while a webhook storm (every event in
/// four copies, shuffled) comes in, and one of them is killed with SIGKILL in the middle: the
/// receiver gets exactly one payment.succeeded per payment, none missing (a delivery cut by
/// the kill may come again with the same id; no second notification is ever written).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL at TMT_TEST_POSTGRES_URL"]
async fn postgres_notifications_exactly_once_through_a_killed_instance() {
    let receiver = Receiver::start_slow(0, Duration::from_millis(100)).await;
    let c = postgres_cluster(&receiver.env()).await;
    let acked = deliver(&c, storm(COPIES), Some(60)).await;
    check_storm_outcome(&c, &acked).await;
    let payments: Vec<String> = (0..PAYMENTS).map(|p| format!("pi_storm{p:04}")).collect();
    // A notification the killed instance held is taken over when its lease lapses (30 s).
    receiver
        .expect_each_once(&payments, "payment.succeeded", Duration::from_secs(90))
        .await;
    let ledger = open_ledger(&c.db).await;
    let written = ledger.list::<NotificationRow>(None, 1000).await.unwrap();
    assert_eq!(
        written
            .iter()
            .filter(|n| n.kind == "payment.succeeded")
            .count(),
        PAYMENTS,
        "one notification written per payment"
    );
}

/// What the platform hears of refunds that fail after they succeeded and of disputes that are
/// decided, while every event comes in four copies, shuffled, over the instances: each
/// notification exactly once, `payment.refund_failed` after its `payment.refunded` and
/// `payment.dispute_closed` after its `payment.disputed`.
async fn refund_failures_and_dispute_outcomes_told_once_in_order(c: &Cluster, receiver: &Receiver) {
    const PAID: usize = 6;
    let t = now();
    let pi = |p: usize| format!("pi_fstorm{p:02}");
    let paid = (0..PAID)
        .map(|p| {
            let id = format!("evt_fstorm_paid_{p:02}");
            let object = payment_intent(&pi(p), 4000, "usd", "succeeded");
            (
                id.clone(),
                event(&id, SUCCEEDED.0, object, t - 60).to_string(),
            )
        })
        .collect();
    deliver(c, paid, None).await;

    let refund = |p: usize, status: &str| {
        let mut r = fixture("refund");
        r["id"] = json!(format!("re_fstorm{p:02}"));
        r["amount"] = json!(1500);
        r["currency"] = json!("usd");
        r["payment_intent"] = json!(pi(p));
        r["status"] = json!(status);
        if status == "failed" {
            r["failure_reason"] = json!("expired_or_canceled_card");
        }
        r
    };
    let dispute = |p: usize, status: &str| {
        json!({"id": format!("dp_fstorm{p:02}"), "object": "dispute", "amount": 4000,
               "currency": "usd", "payment_intent": pi(p), "charge": format!("ch_fstorm{p:02}"),
               "reason": "fraudulent", "status": status, "created": t})
    };
    // First what the platform is told first (a refund that succeeded, a dispute opened), then
    // what comes after it, with older and newer news mixed in; each phase in copies, shuffled.
    let verdict = |p: usize| if p.is_multiple_of(2) { "won" } else { "lost" };
    let phases: [Vec<(&str, Value, i64)>; 2] = [
        (0..PAID)
            .flat_map(|p| {
                [
                    ("refund.created", refund(p, "pending"), t),
                    ("refund.updated", refund(p, "succeeded"), t + 1),
                    ("charge.dispute.created", dispute(p, "needs_response"), t),
                    ("charge.dispute.updated", dispute(p, "under_review"), t + 1),
                ]
            })
            .collect(),
        (0..PAID)
            .flat_map(|p| {
                [
                    ("refund.failed", refund(p, "failed"), t + 2),
                    ("charge.refund.updated", refund(p, "failed"), t + 3),
                    // Newer, but a failed refund stays failed; older, it moves nothing.
                    ("refund.updated", refund(p, "succeeded"), t + 4),
                    ("refund.updated", refund(p, "pending"), t - 5),
                    ("charge.dispute.closed", dispute(p, verdict(p)), t + 3),
                    ("charge.dispute.updated", dispute(p, "under_review"), t + 9),
                ]
            })
            .collect(),
    ];
    let mut n = 0;
    for phase in phases {
        let mut deliveries = Vec::new();
        for (kind, object, created) in phase {
            n += 1;
            let id = format!("evt_fstorm_{n:03}");
            let body = event(&id, kind, object, created).to_string();
            for _ in 0..COPIES {
                deliveries.push((id.clone(), body.clone()));
            }
        }
        deliveries.shuffle(&mut rand::thread_rng());
        deliver(c, deliveries, None).await;
    }

    let ledger = open_ledger(&c.db).await;
    for p in 0..PAID {
        let pi = pi(p);
        let refund = ledger.refund(&format!("re_fstorm{p:02}")).await.unwrap();
        assert_eq!(refund.unwrap().status, "failed", "{pi}");
        let told = eventually(
            &format!("{pi}: every notification delivered"),
            PATIENCE * 4,
            || async {
                let mut ids = HashSet::new();
                let told: Vec<Value> = receiver
                    .acknowledged
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|n| n["data"]["paymentIntentId"] == pi.as_str())
                    .filter(|n| ids.insert(n["id"].as_str().unwrap().to_string()))
                    .cloned()
                    .collect();
                (told.len() == 5).then_some(told)
            },
        )
        .await;
        let at = |kind: &str| {
            let found: Vec<usize> = (0..told.len())
                .filter(|i| told[*i]["type"] == kind)
                .collect();
            assert_eq!(found.len(), 1, "{pi}: one {kind} in {told:?}");
            found[0]
        };
        assert_eq!(at("payment.succeeded"), 0, "{pi}");
        assert!(
            at("payment.refunded") < at("payment.refund_failed"),
            "{pi}: {told:?}"
        );
        assert!(
            at("payment.disputed") < at("payment.dispute_closed"),
            "{pi}: {told:?}"
        );
        let failed = &told[at("payment.refund_failed")]["data"];
        assert_eq!(failed["refundId"], format!("re_fstorm{p:02}"));
        assert_eq!(failed["refundAmount"].to_string(), "15.00");
        assert_eq!(failed["failureReason"], "expired_or_canceled_card");
        assert_eq!(failed["amountRefunded"].to_string(), "0.00");
        let closed = &told[at("payment.dispute_closed")]["data"];
        assert_eq!(closed["disputeId"], format!("dp_fstorm{p:02}"));
        assert_eq!(closed["disputeStatus"], verdict(p));
        let written = ledger.of_payment::<NotificationRow>(&pi).await.unwrap();
        assert_eq!(written.len(), 5, "{pi}: written once each");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_refund_failures_and_dispute_outcomes_are_told_once_in_order() {
    let receiver = Receiver::start(0).await;
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(sqlite_url(dir.path()), 1, &receiver.env()).await;
    refund_failures_and_dispute_outcomes_told_once_in_order(&c, &receiver).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL at TMT_TEST_POSTGRES_URL"]
async fn postgres_refund_failures_and_dispute_outcomes_are_told_once_in_order() {
    let receiver = Receiver::start_slow(0, Duration::from_millis(20)).await;
    let c = postgres_cluster(&receiver.env()).await;
    refund_failures_and_dispute_outcomes_told_once_in_order(&c, &receiver).await;
}
