//! What the service writes into its state columns reads back as exactly what it wrote: text it
//! never writes there (a row edited by hand, a newer build's value read by this one) makes the
//! row corrupt, and the ledger and the command line say so, naming the column. It is never read
//! as some default (an unknown job state as `pending`, an unknown outbox setting as "off").

use std::time::Duration;

use serde_json::json;
use tmt_payments::ledger::{
    Claim, EventRow, EventSource, HoldCheck, IdempotencyKey, IncomingEvent, LatePolicy, Ledger,
    LedgerError, NotificationRow, Outbox, PoolSettings, Scope, HOLD_KEY,
};
use tmt_payments::stripe::types::Event;

use crate::helpers::*;

const PI: &str = "pi_corruptRows01";

/// A ledger holding one row of each kind that has a state column: a payment of ours with a
/// seat hold (kept), the event that made it succeed, the notification that announced it, a bulk
/// refund job over it, a claimed Idempotency-Key and the outbox setting.
async fn ledger_with_every_state(url: &str) -> Ledger {
    let settings = PoolSettings {
        max_connections: 2,
        ..PoolSettings::default()
    };
    let ledger = Ledger::connect(url, settings).await.unwrap();
    ledger.migrate().await.unwrap();
    let outbox = Outbox {
        enabled: true,
        late: LatePolicy::Refund,
    };
    ledger.save_outbox(outbox).await.unwrap();
    let ledger = ledger.with_saved_outbox().await.unwrap();
    let mut pi = payment_intent(PI, 1000, "usd", "succeeded");
    pi["metadata"][HOLD_KEY] = json!("2099-01-01T00:00:00.000Z");
    let body = event("evt_corruptRows01", SUCCEEDED.0, pi, now()).to_string();
    let parsed: Event = serde_json::from_str(&body).unwrap();
    let incoming = IncomingEvent::from_event(&parsed, body, EventSource::Webhook);
    ledger.apply_event(&incoming).await.unwrap();
    let job = ledger.create_job("event=corrupt", "event_canceled");
    let job = job.await.unwrap();
    let payment = ledger.payment(PI).await.unwrap().unwrap();
    ledger.add_job_items(&job.id, &[payment]).await.unwrap();
    let key = IdempotencyKey::parse("corrupt-key").unwrap();
    let claim = ledger.claim_key(Scope::Create, &key, "fp", Duration::from_secs(60));
    assert!(matches!(claim.await.unwrap(), Claim::Owned(_)));
    ledger
}

/// Sets `table.column` to `text` on every row (`settings.outbox`: the setting's value).
async fn write(ledger: &Ledger, column: &str, text: &str) {
    let sql = match column.split_once('.').unwrap() {
        ("settings", name) => format!("UPDATE settings SET value = $1 WHERE name = '{name}'"),
        (table, column) => format!("UPDATE {table} SET {column} = $1"),
    };
    sqlx::query(&sql)
        .bind(text)
        .execute(ledger.pool())
        .await
        .unwrap();
}

/// `result` is the corrupt-row error that names `column` and the text found there.
fn corrupt<T: std::fmt::Debug>(result: Result<T, LedgerError>, column: &str) {
    match result {
        Err(LedgerError::Corrupt(message))
            if message.contains(column) && message.contains("\"bogus\"") => {}
        other => panic!("{column}: expected a corrupt row, got {other:?}"),
    }
}

/// The command `args` fails, naming `column` and saying the row is unreadable.
fn refused_by_the_cli(db: &str, args: &[&str], column: &str) {
    let output = run(db, args);
    assert_exit(&output, 1, &format!("{args:?} with a corrupt {column}"));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("ledger row unreadable") && said.contains(column),
        "{args:?}: {said}"
    );
}

#[tokio::test]
async fn unknown_text_in_a_state_column_is_a_corrupt_row_never_a_default() {
    let dir = tempfile::tempdir().unwrap();
    let db = test_database_url(dir.path()).await;
    let ledger = ledger_with_every_state(&db).await;
    let key = IdempotencyKey::parse("corrupt-key").unwrap();
    let stale = Duration::from_secs(60);

    // Each column, as the service wrote it, reads back; then with text it never writes there.
    for (column, written) in [
        ("webhook_events.outcome", "applied"),
        ("webhook_events.source", "webhook"),
    ] {
        write(&ledger, column, "bogus").await;
        corrupt(ledger.list_events(10).await, column);
        corrupt(ledger.of_payment::<EventRow>(PI).await, column);
        corrupt(ledger.payment_detail(PI).await, column);
        refused_by_the_cli(&db, &["events", "list"], column);
        refused_by_the_cli(&db, &["payments", "show", PI], column);
        write(&ledger, column, written).await;
        let events = ledger.list_events(10).await.unwrap();
        assert_eq!(
            (events[0].outcome.as_str(), events[0].source.as_str()),
            ("applied", "webhook")
        );
    }

    for (column, written) in [
        ("notifications.type", "payment.succeeded"),
        ("notifications.status", "pending"),
    ] {
        write(&ledger, column, "bogus").await;
        corrupt(ledger.list::<NotificationRow>(None, 10).await, column);
        refused_by_the_cli(&db, &["notifications", "list"], column);
        refused_by_the_cli(&db, &["payments", "show", PI], column);
        write(&ledger, column, written).await;
        let written: Vec<NotificationRow> = ledger.of_payment(PI).await.unwrap();
        assert_eq!(
            (written[0].kind.as_str(), written[0].status.as_str()),
            ("payment.succeeded", "pending")
        );
    }

    let column = "payments.hold_state";
    write(&ledger, column, "bogus").await;
    corrupt(ledger.hold_of(PI).await, column);
    corrupt(ledger.hold_for_capture(PI, now() * 1000).await, column);
    corrupt(ledger.standing(PI).await, column);
    refused_by_the_cli(&db, &["payments", "show", PI], column);
    write(&ledger, column, "kept").await;
    let hold = ledger.hold_of(PI).await.unwrap().unwrap();
    assert_eq!(hold.state.map(|s| s.as_str()), Some("kept"));
    let check = ledger.hold_for_capture(PI, now() * 1000).await.unwrap();
    assert_eq!(check, HoldCheck::Clear);

    let column = "refund_job_items.state";
    let job = ledger
        .unfinished_job("event=corrupt")
        .await
        .unwrap()
        .unwrap();
    write(&ledger, column, "bogus").await;
    corrupt(ledger.job_items(&job.id).await, column);
    write(&ledger, column, "failed").await;
    let items = ledger.job_items(&job.id).await.unwrap();
    assert_eq!(items[0].state.as_str(), "failed");

    let column = "idempotency_keys.state";
    write(&ledger, column, "bogus").await;
    corrupt(
        ledger.claim_key(Scope::Create, &key, "fp", stale).await,
        column,
    );
    write(&ledger, column, "in_progress").await;
    let claim = ledger.claim_key(Scope::Create, &key, "fp", stale).await;
    assert_eq!(claim.unwrap(), Claim::InProgress);

    let column = "settings.outbox";
    write(&ledger, column, "bogus").await;
    corrupt(ledger.clone().with_saved_outbox().await.map(drop), column);
    write(&ledger, column, "on:refund").await;
    ledger.clone().with_saved_outbox().await.unwrap();
    ledger.close().await;
}
