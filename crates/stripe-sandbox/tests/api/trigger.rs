//! `stripe-sandbox trigger`: each supported event type is produced in a running sandbox, on a
//! new PaymentIntent or on one given with `--payment-intent`.

use std::process::{Command, Output};

use crate::helpers::*;

/// Runs `stripe-sandbox trigger ARGS --api-base BASE` to its end, off the async runtime.
async fn trigger(base: &str, args: &[&str]) -> Output {
    let mut command = Command::new(BIN);
    command.arg("trigger").args(args).args(["--api-base", base]);
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

/// Runs a trigger that must succeed; returns what it printed.
async fn triggered(base: &str, args: &[&str]) -> String {
    let output = trigger(base, args).await;
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "{args:?}: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The ids printed on lines starting with `object`.
fn printed(stdout: &str, object: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|l| l.split_whitespace().next() == Some(object))
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_string))
        .collect()
}

#[tokio::test]
async fn every_supported_event_is_produced() {
    let (_dir, state) = state_file();
    let sandbox = Process::start(&state, None);
    let a = sandbox.api();
    for (event, statuses) in [
        ("payment_intent.created", &["requires_payment_method"][..]),
        ("payment_intent.succeeded", &["succeeded"]),
        ("charge.succeeded", &["succeeded"]),
        (
            "payment_intent.payment_failed",
            &["requires_payment_method"],
        ),
        ("charge.failed", &["requires_payment_method"]),
        ("payment_intent.canceled", &["canceled"]),
        ("payment_intent.requires_action", &["requires_action"]),
        ("charge.refunded", &["succeeded"]),
        ("refund.created", &["succeeded"]),
        ("refund.failed", &["succeeded"]),
        ("charge.dispute.created", &["succeeded"]),
        (
            "payment_intent.amount_capturable_updated",
            &["requires_capture"],
        ),
        ("charge.captured", &["succeeded"]),
        // It goes on to succeed by itself a little later.
        ("payment_intent.processing", &["processing", "succeeded"]),
    ] {
        let stdout = triggered(&sandbox.base, &[event, "--metadata", "source=trigger"]).await;
        let intents = printed(&stdout, "payment_intent");
        let id = intents
            .last()
            .unwrap_or_else(|| panic!("{event}: {stdout}"));
        let (_, pi) = a.get(&format!("/v1/payment_intents/{id}")).await;
        assert!(
            statuses.contains(&pi["status"].as_str().unwrap()),
            "{event}: {}",
            pi["status"]
        );
        assert_eq!(pi["metadata"]["source"], "trigger");
        let events = printed(&stdout, "event");
        let mut types = Vec::new();
        for e in &events {
            let (_, got) = a.get(&format!("/v1/events/{e}")).await;
            let object = &got["data"]["object"];
            assert!(
                object["id"] == id.as_str()
                    || object["payment_intent"] == id.as_str()
                    || object["charge"] == pi["latest_charge"],
                "{event}: an event about another payment: {got}"
            );
            types.push(got["type"].as_str().unwrap().to_string());
        }
        assert!(types.iter().any(|t| t == event), "{event}: {types:?}");
    }
}

#[tokio::test]
async fn acts_on_a_given_payment_intent_and_refuses_what_it_cannot_do() {
    let sandbox = Process::start(std::path::Path::new(":memory:"), None);
    let a = sandbox.api();
    let pi = a.create("amount=1234&currency=eur").await;
    let id = pi["id"].as_str().unwrap().to_string();
    let on = |event| [event, "--payment-intent", &id];
    let stdout = triggered(&sandbox.base, &on("payment_intent.succeeded")).await;
    assert_eq!(
        printed(&stdout, "payment_intent"),
        std::slice::from_ref(&id),
        "none created"
    );
    let (_, after) = a.get(&format!("/v1/payment_intents/{id}")).await;
    assert_eq!(
        (after["status"].as_str(), after["amount"].as_i64()),
        (Some("succeeded"), Some(1234))
    );
    let (_, intents) = a.get("/v1/payment_intents").await;
    assert_eq!(ids(&intents), std::slice::from_ref(&id));
    // A refund of that succeeded PaymentIntent, and the capture of a held one.
    triggered(&sandbox.base, &on("refund.created")).await;
    let (_, refunds) = a.get(&format!("/v1/refunds?payment_intent={id}")).await;
    assert_eq!(refunds["data"][0]["amount"], 1234);
    let held = a
        .create("amount=999&currency=eur&capture_method=manual&payment_method=pm_card_visa&confirm=true")
        .await;
    let held_id = held["id"].as_str().unwrap().to_string();
    triggered(
        &sandbox.base,
        &["charge.captured", "--payment-intent", &held_id],
    )
    .await;
    let (_, captured) = a.get(&format!("/v1/payment_intents/{held_id}")).await;
    assert_eq!(
        (
            captured["status"].as_str(),
            captured["amount_received"].as_i64()
        ),
        (Some("succeeded"), Some(999))
    );
    for args in [
        &["invoice.paid"][..],
        &on("payment_intent.canceled"),
        &["payment_intent.succeeded", "--payment-intent", "pi_missing"],
    ] {
        let output = trigger(&sandbox.base, args).await;
        assert!(!output.status.success(), "{args:?} should fail");
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("error:"),
            "{args:?}"
        );
    }
}

#[tokio::test]
async fn bank_transfer_events_are_produced() {
    let sandbox = Process::start(std::path::Path::new(":memory:"), None);
    let a = sandbox.api();
    // Half of a new SPEI payment arrives.
    let stdout = triggered(
        &sandbox.base,
        &["payment_intent.partially_funded", "--amount", "5000"],
    )
    .await;
    let id = printed(&stdout, "payment_intent")
        .pop()
        .unwrap_or_else(|| panic!("{stdout}"));
    let pi = a.get_ok(&format!("/v1/payment_intents/{id}")).await;
    let instructions = &pi["next_action"]["display_bank_transfer_instructions"];
    assert_eq!(
        (
            s(&pi["currency"]),
            instructions["amount_remaining"].as_i64()
        ),
        ("mxn", Some(2500))
    );
    // Events are printed as `event  evt_…  TYPE`.
    assert!(
        stdout.contains(" payment_intent.partially_funded"),
        "{stdout}"
    );
    // Then more than the rest of it, on that PaymentIntent: it is paid and the rest is left.
    let stdout = triggered(
        &sandbox.base,
        &[
            "cash_balance.funds_available",
            "--payment-intent",
            &id,
            "--amount",
            "700",
        ],
    )
    .await;
    assert!(stdout.contains("cash_balance.funds_available"), "{stdout}");
    assert_eq!(
        a.get_ok(&format!("/v1/payment_intents/{id}")).await["status"],
        "succeeded"
    );
    let customer = s(&pi["customer"]);
    assert_eq!(a.cash(customer, "mxn").await, 700);
    // Money for no payment at all, in euros.
    let stdout = triggered(
        &sandbox.base,
        &["cash_balance.funds_available", "--currency", "eur"],
    )
    .await;
    let customer = printed(&stdout, "customer")
        .pop()
        .unwrap_or_else(|| panic!("{stdout}"));
    assert_eq!(a.cash(&customer, "eur").await, 2000);
    // A PaymentIntent that awaits no transfer cannot be funded.
    let card = a.create("amount=1234&currency=eur").await;
    let output = trigger(
        &sandbox.base,
        &[
            "payment_intent.partially_funded",
            "--payment-intent",
            s(&card["id"]),
        ],
    )
    .await;
    assert!(!output.status.success());
}

#[tokio::test]
async fn account_updated_and_payment_events_are_triggered_on_an_account() {
    let sandbox = Process::start(std::path::Path::new(":memory:"), None);
    let a = sandbox.api();
    let account = a
        .post_ok(
            "/v1/accounts",
            "type=express&capabilities[card_payments][requested]=true\
             &capabilities[transfers][requested]=true",
        )
        .await;
    let id = s(&account["id"]).to_string();
    let stdout = triggered(&sandbox.base, &["account.updated", "--account", &id]).await;
    assert_eq!(printed(&stdout, "account"), std::slice::from_ref(&id));
    let events = printed(&stdout, "event");
    assert_eq!(events.len(), 1, "{stdout}");
    let event = a.on(&id).get_ok(&format!("/v1/events/{}", events[0])).await;
    assert_eq!(
        (s(&event["type"]), s(&event["account"])),
        ("account.updated", id.as_str())
    );
    assert!(event["data"]["previous_attributes"]["metadata"].is_object());
    // Without --account it makes one; a payment event can happen on an account too.
    let stdout = triggered(&sandbox.base, &["account.updated"]).await;
    let made = printed(&stdout, "account");
    assert!(made[0].starts_with("acct_") && made[0] != id, "{stdout}");
    a.post_ok(
        &format!("/_sandbox/accounts/{id}/onboard"),
        "outcome=complete",
    )
    .await;
    let stdout = triggered(
        &sandbox.base,
        &["payment_intent.succeeded", "--account", &id],
    )
    .await;
    let pi = &printed(&stdout, "payment_intent")[0];
    assert_eq!(a.get(&format!("/v1/payment_intents/{pi}")).await.0, 404);
    assert_eq!(
        a.on(&id).get_ok(&format!("/v1/payment_intents/{pi}")).await["status"],
        "succeeded"
    );
    // The bank-transfer events too: the customer and its payment are the account's.
    let stdout = triggered(
        &sandbox.base,
        &["payment_intent.partially_funded", "--account", &id],
    )
    .await;
    let (customer, pi) = (
        &printed(&stdout, "customer")[0],
        &printed(&stdout, "payment_intent")[0],
    );
    assert_eq!(a.get(&format!("/v1/customers/{customer}")).await.0, 404);
    let waiting = a.on(&id).get_ok(&format!("/v1/payment_intents/{pi}")).await;
    assert_eq!(
        waiting["next_action"]["display_bank_transfer_instructions"]["amount_remaining"],
        1000
    );
    assert_eq!(a.on(&id).cash(customer, "mxn").await, 0);
    for args in [
        &["account.updated", "--account", "acct_missing"][..],
        &["account.updated", "--payment-intent", "pi_1"],
    ] {
        let output = trigger(&sandbox.base, args).await;
        assert!(!output.status.success(), "{args:?} should fail");
    }
}

#[tokio::test]
async fn payout_events_pay_out_the_balance_of_the_platform_or_an_account() {
    let (_dir, state) = state_file();
    let sandbox = Process::start(&state, None);
    let a = sandbox.api();
    for event in [
        "payout.created",
        "payout.updated",
        "payout.paid",
        "payout.reconciliation_completed",
        "payout.failed",
    ] {
        let stdout = triggered(&sandbox.base, &[event, "--amount", "5000"]).await;
        let payouts = printed(&stdout, "payout");
        assert_eq!(payouts.len(), 1, "{event}: {stdout}");
        let payout = a.get_ok(&format!("/v1/payouts/{}", payouts[0])).await;
        // 50.00 USD less 2.9% + 0.30.
        assert_eq!(payout["amount"], 5000 - 175, "{event}");
        let status = if event == "payout.failed" {
            "failed"
        } else {
            "paid"
        };
        assert_eq!(payout["status"], status, "{event}");
        let mut types = Vec::new();
        for e in printed(&stdout, "event") {
            types.push(a.get_ok(&format!("/v1/events/{e}")).await["type"].clone());
        }
        assert!(types.iter().any(|t| t == event), "{event}: {types:?}");
    }
    let id = &a.onboarded_in("MX").await;
    let stdout = triggered(
        &sandbox.base,
        &[
            "payout.paid",
            "--account",
            id,
            "--currency",
            "mxn",
            "--amount",
            "10000",
        ],
    )
    .await;
    let payout = a
        .on(id)
        .get_ok(&format!("/v1/payouts/{}", printed(&stdout, "payout")[0]))
        .await;
    assert_eq!(
        (payout["amount"].as_i64(), payout["currency"].as_str()),
        (Some(10_000 - 766), Some("mxn"))
    );
    let refused = trigger(&sandbox.base, &["payout.paid", "--payment-intent", "pi_x"]).await;
    assert!(!refused.status.success());
}
