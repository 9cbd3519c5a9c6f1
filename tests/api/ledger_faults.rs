//! Write faults in the ledger (docs/contract.md §9): when the ledger cannot write, webhooks
//! answer 500, creates answer 503 before Stripe is called, `/readyz` answers 503
//! `ledger_not_writable`, no connection or transaction stays broken, and everything recovers by
//! itself when the cause goes away. Every event answered 200, before, during or after the
//! fault, is on disk.
//!
//! SQLite: a real full disk (an 8 MiB tmpfs, mounted by the test, so it needs root: CI runs as
//! root). PostgreSQL: the database turned read-only, and backends killed while writing. Both
//! need what a plain `cargo test` may not have, so they are `#[ignore]`d with that need.

use std::collections::BTreeSet;
use std::ops::Range;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use tmt_payments::ledger::{IncomingEvent, Ledger, Outcome, PoolSettings};
use tmt_payments::stripe::signature::sign;
use tmt_payments::stripe::types::Event;
use wiremock::MockServer;

use crate::helpers::*;

/// A `payment_intent.succeeded` event of ours, padded to the size of a real one.
fn event_body(n: usize) -> String {
    let pi = json!({
        "id": format!("pi_fault{n:04}"), "object": "payment_intent", "amount": 1000,
        "currency": "usd", "status": "succeeded", "created": 1_700_000_000,
        "metadata": {"platform": "TMT", "pad": "x".repeat(3000)},
    });
    event(
        &format!("evt_fault{n:04}"),
        "payment_intent.succeeded",
        pi,
        now(),
    )
    .to_string()
}

fn incoming(n: usize) -> IncomingEvent {
    let body = event_body(n);
    let event: Event = serde_json::from_str(&body).unwrap();
    IncomingEvent::from_event(&event, body, tmt_payments::ledger::EventSource::Webhook)
}

/// An 8 MiB tmpfs of the test's own, which it can fill and empty: room for the ledger and a
/// write-ahead log of a few dozen events (SQLite checkpoints it only past 1,000 pages).
struct SmallDisk(tempfile::TempDir);

impl SmallDisk {
    /// Mounts it; fails the test where it cannot (it needs root).
    fn mount() -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert_exit(&mounted, 0, "needs root to mount a tmpfs");
        SmallDisk(dir)
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    fn url(&self) -> String {
        sqlite_url(self.path())
    }

    fn fill(&self) {
        // dd stops with "No space left on device": that is the point.
        let _ = Command::new("dd")
            .args(["if=/dev/zero", "bs=4k"])
            .arg(format!("of={}", self.path().join("filler").display()))
            .output()
            .unwrap();
    }

    fn free(&self) {
        std::fs::remove_file(self.path().join("filler")).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

/// The ledger, read afresh (as after a restart): which of `events` it holds.
async fn recorded(url: &str, events: impl IntoIterator<Item = usize>) -> BTreeSet<usize> {
    let ledger = open_ledger(url).await;
    let mut found = BTreeSet::new();
    for n in events {
        if ledger
            .event_payload(&format!("evt_fault{n:04}"))
            .await
            .unwrap()
            .is_some()
        {
            found.insert(n);
        }
    }
    ledger.close().await;
    found
}

async fn deliver_to(http: &reqwest::Client, base: &str, n: usize) -> u16 {
    let body = event_body(n);
    let header = sign(body.as_bytes(), WEBHOOK_SECRET, now());
    http.post(format!("{base}/stripe_webhook"))
        .header("Stripe-Signature", header)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// The service as Stripe and the front end see it, and the events it acknowledged.
struct Traffic {
    http: reqwest::Client,
    base: String,
    acknowledged: BTreeSet<usize>,
}

impl Traffic {
    fn to(base: &str) -> Traffic {
        Traffic {
            http: reqwest::Client::new(),
            base: base.to_string(),
            acknowledged: BTreeSet::new(),
        }
    }

    async fn deliver(&self, n: usize) -> u16 {
        deliver_to(&self.http, &self.base, n).await
    }

    /// Delivers `events`, every one of which must be answered 200.
    async fn all_land(&mut self, events: impl IntoIterator<Item = usize>) {
        for n in events {
            assert_eq!(self.deliver(n).await, 200, "event {n}");
            self.acknowledged.insert(n);
        }
    }

    /// Delivers `events` while the ledger cannot write: each is answered 200 (acknowledged)
    /// or 500 (refused, so Stripe retries); the refused ones.
    async fn during_the_fault(&mut self, events: Range<usize>) -> BTreeSet<usize> {
        let mut refused = BTreeSet::new();
        for n in events {
            match self.deliver(n).await {
                200 => self.acknowledged.insert(n),
                500 => refused.insert(n),
                other => panic!("webhook {n} answered {other}"),
            };
        }
        refused
    }

    async fn readyz(&self) -> (u16, Value) {
        match self.http.get(format!("{}/readyz", self.base)).send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                (status, read(r).await.2)
            }
            Err(_) => (0, Value::Null),
        }
    }

    /// `/readyz` says the ledger cannot write (within `within`), and a create is refused
    /// before Stripe.
    async fn refuses_to_write(&self, stripe: &MockServer, within: Duration) {
        eventually("readyz says ledger_not_writable", within, || async {
            let (status, body) = self.readyz().await;
            if (status, body["code"].as_str()) == (503, Some("ledger_not_writable")) {
                Ok(())
            } else {
                Err(format!("{status} {body}"))
            }
        })
        .await;
        let (status, body) = self.create_without_stripe(stripe).await;
        assert_eq!(status, 503, "{body}");
    }

    /// Asks for a create, which must not reach Stripe; its status and body.
    async fn create_without_stripe(&self, stripe: &MockServer) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}/stripe_create_payment_intent", self.base))
            .header("content-type", "application/json")
            .body(json!({"data": {"amount": 10}}).to_string())
            .send()
            .await
            .unwrap();
        let (status, _, body) = read(r).await;
        let posts = stripe.received_requests().await.unwrap();
        assert!(
            posts.iter().all(|r| r.method.as_str() != "POST"),
            "a create reached Stripe while the ledger could not write"
        );
        (status, body)
    }

    /// Once the cause is gone: ready again, and Stripe's retries of `refused` land, then `more`.
    async fn recovers(&mut self, refused: BTreeSet<usize>, more: Range<usize>) {
        eventually("ready again", Duration::from_secs(30), || async {
            self.readyz().await.0 == 200
        })
        .await;
        self.all_land(refused.into_iter().chain(more)).await;
    }
}

/// At the ledger itself: a commit that fails for lack of space must not leave the connection
/// inside a transaction. (It did: every later "commit" on it only released a savepoint, so
/// writes were reported done and never reached the disk.)
#[tokio::test]
#[ignore = "needs root to mount a tmpfs"]
async fn sqlite_disk_full_leaves_no_connection_inside_a_transaction() {
    let disk = SmallDisk::mount();
    let url = disk.url();
    let settings = PoolSettings {
        max_connections: 1,
        ..PoolSettings::default()
    };
    let ledger = Ledger::connect(&url, settings).await.unwrap();
    ledger.migrate().await.unwrap();
    assert_eq!(
        ledger.apply_event(&incoming(0)).await.unwrap(),
        Outcome::Applied
    );
    disk.fill();
    let mut acknowledged = vec![0];
    let mut refused = 0;
    for n in 1..8 {
        match ledger.apply_event(&incoming(n)).await {
            Ok(_) => acknowledged.push(n),
            Err(_) => refused += 1,
        }
    }
    assert!(refused > 0, "the full disk refused nothing");
    assert!(ledger.probe_write().await.is_err(), "probe on a full disk");
    disk.free();
    for n in 8..11 {
        ledger.apply_event(&incoming(n)).await.unwrap();
        acknowledged.push(n);
    }
    ledger.close().await;
    let found = recorded(&url, 0..11).await;
    for n in acknowledged {
        assert!(found.contains(&n), "event {n} was acknowledged but is lost");
    }
}

/// Through the service, as the issue saw it: the disk fills under webhook traffic, then space
/// comes back; the process is stopped and the ledger read afresh.
#[tokio::test]
#[ignore = "needs root to mount a tmpfs"]
async fn sqlite_disk_full_webhooks_500_readyz_503_nothing_lost_recovers() {
    let disk = SmallDisk::mount();
    let stripe = MockServer::start().await;
    let url = disk.url();
    let mut server = Server::keyed(
        &url,
        &stripe.uri(),
        &[("DATABASE_ACQUIRE_TIMEOUT_SECS", "2")],
    )
    .await;
    let mut traffic = Traffic::to(&server.address);
    traffic.all_land(0..5).await;

    disk.fill();
    let refused = traffic.during_the_fault(5..25).await;
    assert!(!refused.is_empty(), "a full disk refused no webhook");
    // At once: the failed writes have told the ledger.
    traffic.refuses_to_write(&stripe, Duration::ZERO).await;

    disk.free();
    // Stripe delivers the refused events again; they land now.
    traffic.recovers(refused, 25..30).await;

    server.sigterm();
    assert_eq!(server.exit_code().await, Some(0));
    let found = recorded(&url, 0..30).await;
    let lost: Vec<_> = traffic.acknowledged.difference(&found).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
}

/// The first create after the disk fills, before any write has failed and told the ledger so,
/// is refused before Stripe is called: the create's check is a real write, not a ping.
#[tokio::test]
#[ignore = "needs root to mount a tmpfs"]
async fn sqlite_disk_full_the_first_create_is_refused_before_stripe() {
    let disk = SmallDisk::mount();
    let stripe = MockServer::start().await;
    let url = disk.url();
    let server = Server::keyed(&url, &stripe.uri(), &[]).await;
    // Accepting connections is not being ready: the ledger is migrated by then.
    let traffic = Traffic::to(&server.address);
    eventually("the service is ready", PATIENCE, || async {
        traffic.readyz().await.0 == 200
    })
    .await;
    disk.fill();
    // The write probe's answer is reused for a second: the one taken while the server started
    // (its readiness) must have run out, so that this create's check is a write on a full disk.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = traffic.create_without_stripe(&stripe).await;
    assert_eq!(code(status, &body), (503, "ledger_not_writable"));
    disk.free();
}

/// The app on a PostgreSQL database of its own: the app, that database's URL and name, and a
/// handle on the server as its administrator.
async fn app_on_postgres() -> (TestApp, String, String, Ledger) {
    let admin = postgres_peer().await;
    let db = fresh_postgres_database(&admin).await;
    let app = spawn_app_with(|c| {
        c.database_url = db.clone();
        c.database_pool.acquire_timeout = Duration::from_secs(2);
    })
    .await;
    let name = database_name(&db);
    (app, db, name, open_ledger(&admin).await)
}

/// Ends every session on the database `name` (but the administrator's own); how many.
async fn end_sessions(admin: &Ledger, name: &str) -> usize {
    let ended: Vec<bool> = sqlx::query_scalar(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    ))
    .fetch_all(admin.pool())
    .await
    .unwrap();
    ended.len()
}

/// PostgreSQL refusing writes (`default_transaction_read_only`), then accepting them again.
#[tokio::test]
#[ignore = "needs PostgreSQL at TMT_TEST_POSTGRES_URL"]
async fn postgres_read_only_database_refuses_then_recovers() {
    let (app, db, name, admin) = app_on_postgres().await;
    let mut traffic = Traffic::to(&app.address);
    traffic.all_land(0..3).await;
    let set = |sql: String| {
        let (admin, name) = (&admin, &name);
        async move {
            sqlx::query(&sql).execute(admin.pool()).await.unwrap();
            // Existing sessions keep their settings: end them, so the pool reconnects.
            end_sessions(admin, name).await;
        }
    };
    set(format!(
        "ALTER DATABASE {name} SET default_transaction_read_only = on"
    ))
    .await;

    let refused = traffic.during_the_fault(3..10).await;
    assert!(!refused.is_empty(), "a read-only database refused nothing");
    // Once the pool has reconnected with the new setting.
    traffic
        .refuses_to_write(&app.stripe, Duration::from_secs(10))
        .await;

    set(format!(
        "ALTER DATABASE {name} RESET default_transaction_read_only"
    ))
    .await;
    traffic.recovers(refused, 10..13).await;
    app.stop().await;
    let found = recorded(&db, 0..13).await;
    assert_eq!(found, traffic.acknowledged);
}

/// PostgreSQL backends killed while events are being written: whatever was answered 200 is
/// there, and retries of the rest land once the pool has reconnected.
#[tokio::test]
#[ignore = "needs PostgreSQL at TMT_TEST_POSTGRES_URL"]
async fn postgres_backends_killed_mid_commit_lose_nothing_acknowledged() {
    let (app, db, name, admin) = app_on_postgres().await;
    const EVENTS: usize = 200;
    let senders: Vec<_> = (0..8)
        .map(|lane| {
            let (http, base) = (app.http.clone(), app.address.clone());
            tokio::spawn(async move {
                let mut answers = Vec::new();
                for n in (lane..EVENTS).step_by(8) {
                    answers.push((n, deliver_to(&http, &base, n).await));
                }
                answers
            })
        })
        .collect();
    let mut kills = 0;
    while !senders.iter().all(|s| s.is_finished()) {
        kills += end_sessions(&admin, &name).await;
        // The fault's own pace: a kill every 30 ms while the senders run.
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let mut acknowledged = BTreeSet::new();
    let mut failed = Vec::new();
    for sender in senders {
        for (n, status) in sender.await.unwrap() {
            match status {
                200 => {
                    acknowledged.insert(n);
                }
                _ => failed.push(n),
            }
        }
    }
    assert!(kills > 0, "no backend was killed");
    let found = recorded(&db, 0..EVENTS).await;
    let lost: Vec<_> = acknowledged.difference(&found).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    // Stripe's retries of the refused ones land.
    Traffic::to(&app.address).all_land(failed).await;
    assert_eq!(recorded(&db, 0..EVENTS).await.len(), EVENTS);
    app.stop().await;
}
