//! The binary: start-up refusals, `migrate`, and ledger inspection from the command line.

mod common;

use common::process::*;
use common::*;
use serde_json::{json, Value};

fn stderr_line(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).trim().to_string()
}

#[test]
fn bad_configuration_stops_start_up_with_one_line_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(dir.path());
    let key = ("STRIPE_SECRET_KEY", SECRET_KEY);
    let hook = ("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET);
    let cases: [(&[(&str, &str)], &str); 9] = [
        (
            &[("STRIPE_SECRET_KEY", "pk_test_abc"), hook],
            "STRIPE_SECRET_KEY",
        ),
        (&[key], "STRIPE_WEBHOOK_SECRET"),
        (
            &[key, ("STRIPE_WEBHOOK_SECRET", "not-a-secret")],
            "STRIPE_WEBHOOK_SECRET",
        ),
        (&[key, hook, ("PORT", "70000")], "PORT"),
        (
            &[key, hook, ("STRIPE_API_BASE", "::nope")],
            "STRIPE_API_BASE",
        ),
        (&[key, hook, ("LOG_FORMAT", "xml")], "LOG_FORMAT"),
        (&[key, hook, ("DATABASE_URL", "mysql://x")], "DATABASE_URL"),
        (
            &[
                key,
                hook,
                ("DATABASE_URL", "sqlite:///nonexistent-dir/sub/x.db"),
            ],
            "DATABASE_URL",
        ),
        (&[("PORT", "nope")], "PORT"),
    ];
    for (envs, variable) in cases {
        // PORT=0 first: a case that wrongly starts must not take a real port, nor hang the test.
        let mut child = command(&db)
            .env("PORT", "0")
            .envs(envs.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while child.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("{variable}: the service started instead of refusing");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let output = child.wait_with_output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{variable}");
        let line = stderr_line(&output);
        assert_eq!(line.lines().count(), 1, "{line}");
        assert!(line.contains(variable), "{line}");
        assert!(
            !line.contains("not-a-secret"),
            "secrets are never echoed: {line}"
        );
    }
    assert!(
        !dir.path().join("ledger.db").exists(),
        "nothing was started half-configured"
    );
}

#[test]
fn migrate_creates_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(dir.path());
    let output = run(&db, &["migrate"]);
    assert!(output.status.success(), "{}", stderr_line(&output));
    assert!(dir.path().join("ledger.db").exists());
    // Twice is fine.
    assert!(run(&db, &["migrate"]).status.success());
}

#[tokio::test]
async fn payments_and_events_can_be_inspected() {
    let app = spawn_app().await;
    let pis = [
        ("pi_cli0000001", 5000, "usd", "succeeded", 1_700_000_100),
        (
            "pi_cli0000002",
            500,
            "jpy",
            "requires_payment_method",
            1_700_000_200,
        ),
        ("pi_cli0000003", 1230, "kwd", "processing", 1_700_000_300),
    ];
    for (i, (id, amount, currency, status, created)) in pis.iter().enumerate() {
        let mut pi = payment_intent(id, *amount, currency, status);
        pi["created"] = json!(created);
        pi["description"] = json!(format!("orden {i}"));
        let e = event(&format!("evt_cli_{i}"), "payment_intent.created", pi, now());
        assert_eq!(app.deliver(&e).await.0, 200);
    }
    let e = event(
        "evt_cli_unhandled",
        "customer.created",
        json!({"id": "cus_1", "object": "customer"}),
        now(),
    );
    assert_eq!(app.deliver(&e).await.0, 200);
    let db = app.db_url.clone();

    let out = run(&db, &["payments", "list", "--json"]);
    assert!(out.status.success(), "{}", stderr_line(&out));
    let list: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<_> = list.iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        ["pi_cli0000003", "pi_cli0000002", "pi_cli0000001"],
        "newest first"
    );
    let first = &list[0];
    let mut keys: Vec<_> = first.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "amount",
            "created",
            "currency",
            "description",
            "id",
            "metadata",
            "status",
            "updated_at"
        ]
    );
    assert_eq!(first["amount"], 1230);
    assert_eq!(first["currency"], "kwd");
    assert_eq!(first["created"], 1_700_000_300);
    assert_eq!(first["metadata"]["platform"], "TMT");

    let out = run(
        &db,
        &["payments", "list", "--status", "succeeded", "--json"],
    );
    let list: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], "pi_cli0000001");
    let out = run(&db, &["payments", "list", "--limit", "2", "--json"]);
    assert_eq!(
        serde_json::from_slice::<Vec<Value>>(&out.stdout)
            .unwrap()
            .len(),
        2
    );

    let out = run(&db, &["payments", "show", "pi_cli0000002", "--json"]);
    assert!(out.status.success());
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["status"], "requires_payment_method");
    assert_eq!(shown["description"], "orden 1");
    let events = shown["events"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["id"], "evt_cli_1");
    assert_eq!(events[0]["type"], "payment_intent.created");
    assert_eq!(events[0]["payment_intent_id"], "pi_cli0000002");
    assert_eq!(events[0]["outcome"], "applied");
    assert!(events[0]["received_at"].as_str().unwrap().ends_with('Z'));

    let out = run(&db, &["events", "list", "--json"]);
    let events: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(events.len(), 4);
    assert_eq!(events[0]["id"], "evt_cli_unhandled", "newest first");
    assert_eq!(events[0]["outcome"], "unhandled");
    let out = run(&db, &["events", "list", "--limit", "1", "--json"]);
    assert_eq!(
        serde_json::from_slice::<Vec<Value>>(&out.stdout)
            .unwrap()
            .len(),
        1
    );

    // Tables for people.
    let out = run(&db, &["payments", "list"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("pi_cli0000003") && text.contains("1.230"),
        "{text}"
    );
    let out = run(&db, &["payments", "show", "pi_cli0000001"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("50.00 usd"), "{text}");

    let out = run(&db, &["payments", "show", "pi_unknown"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_line(&out).contains("pi_unknown"));
}

#[test]
fn webhook_sign_matches_the_library() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = command(&sqlite_url(dir.path()))
        .args(["webhook", "sign", "--timestamp", "1700000000"])
        .env("STRIPE_WEBHOOK_SECRET", "whsec_cli,whsec_other")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"id\":\"evt_1\"}")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        tmt_payments::stripe::signature::sign(b"{\"id\":\"evt_1\"}", "whsec_cli", 1_700_000_000)
    );
}
