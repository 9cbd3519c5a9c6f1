//! Money you can account for (docs/contract.md §19): the binary in sandbox mode, Connect off
//! unless a test says so, its embedded Stripe keeping the books; the settlement round run by
//! hand (`settlement sync`) or in the background, and what the ledger, `statement` and
//! `payouts list` then say, checked against the sandbox's own balance transactions.

mod pages;
mod payouts;
mod statements;

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::connect::{Market, StripeSide, REFUND};
use crate::helpers::*;
use tmt_payments::ledger::BalanceRow;

/// The platform's books without Connect, with `envs` besides (SQLite: the embedded sandbox
/// keeps Stripe's side in the process; [`payouts`] has the PostgreSQL cluster's test).
async fn shop(envs: &[(&str, &str)]) -> Market {
    Market::start("", envs).await
}

/// A payment of `amount` (major units) in `currency` with `metadata`, created through the
/// service and paid with `payment_method`; its id, once the ledger says it succeeded.
async fn paid(m: &Market, amount: &str, currency: &str, metadata: Value, method: &str) -> String {
    let data = json!({"amount": amount, "currency": currency, "metadata": metadata});
    let pi = m.create(data).await["paymentIntentId"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _, body) = m.pay(&pi, method, None).await;
    assert_eq!(status, 200, "{body}");
    m.reaches(&pi, "succeeded").await;
    pi
}

/// `settlement sync --json` on the market's ledger; its report.
fn sync(m: &Market, extra: &[&str]) -> Value {
    let mut args = vec!["settlement", "sync", "--json"];
    args.extend_from_slice(extra);
    printed_json(&m.cli(&args, &[]), 0)
}

/// `statement --from TODAY --to TODAY --format FORMAT`, as arguments.
fn statement_args(format: &str) -> Vec<String> {
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    [
        "statement",
        "--from",
        &today,
        "--to",
        &today,
        "--format",
        format,
    ]
    .map(str::to_string)
    .to_vec()
}

/// `statement --format json` over today, with `extra` arguments.
fn statement_json(m: &Market, extra: &[&str]) -> Value {
    let mut args = statement_args("json");
    args.extend(extra.iter().map(|a| a.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    printed_json(&m.cli(&args, &[]), 0)
}

/// Refunds `amount` (major units) of `pi` through the service.
async fn refund(m: &Market, pi: &str, amount: &str) {
    let data = json!({"payment_intent_id": pi, "amount": amount});
    let (status, _, body) = m.call(REFUND, data).await;
    assert_eq!(status, 200, "{body}");
}

/// The statement's line of `pi`.
fn line_of<'a>(statement: &'a Value, pi: &str) -> &'a Value {
    statement["payments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["payment_intent_id"] == pi)
        .unwrap_or_else(|| panic!("{pi} not in {statement}"))
}

/// The statement's totals in `currency`.
fn totals_in<'a>(statement: &'a Value, currency: &str) -> &'a Value {
    statement["currencies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["currency"] == currency)
        .unwrap_or_else(|| panic!("no {currency} in {statement}"))
}

/// Every balance transaction the sandbox lists for the platform (or `account`), by id.
async fn stripe_txns(m: &Market, account: Option<&str>) -> BTreeMap<String, Value> {
    let mut all = BTreeMap::new();
    let mut after: Option<String> = None;
    loop {
        let mut form = vec![("limit", "100".to_string())];
        if let Some(a) = &after {
            form.push(("starting_after", a.clone()));
        }
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, _, page) = m
            .stripe(
                reqwest::Method::GET,
                "/v1/balance_transactions",
                &form,
                account,
            )
            .await;
        assert_eq!(status, 200, "{page}");
        let data = page["data"].as_array().unwrap();
        for t in data {
            all.insert(t["id"].as_str().unwrap().to_string(), t.clone());
        }
        match (page["has_more"].as_bool(), data.last()) {
            (Some(true), Some(last)) => after = last["id"].as_str().map(str::to_string),
            _ => return all,
        }
    }
}

/// The balance transactions the ledger keeps of the payment `pi`, oldest first.
async fn kept(m: &Market, pi: &str) -> Vec<BalanceRow> {
    m.ledger().await.of_payment(pi).await.unwrap()
}

/// What Stripe's fee lines of `txn` of a type add up to.
fn fee_lines(txn: &Value, kind: &str) -> i64 {
    txn["fee_details"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["type"] == kind)
        .map(|d| d["amount"].as_i64().unwrap())
        .sum()
}

#[tokio::test]
async fn fees_and_nets_per_payment_after_a_sync() {
    let m = shop(&[]).await;
    let pi = paid(&m, "20.00", "usd", json!({}), "pm_card_visa").await;
    let before = statement_json(&m, &[]);
    let unknown = totals_in(&before, "usd");
    assert_eq!(unknown["unknown"], 1, "not read yet: {before}");
    assert_eq!(unknown["net"], 0);
    assert_eq!(
        line_of(&before, &pi)["net"],
        Value::Null,
        "unknown, never 0"
    );

    let report = sync(&m, &[]);
    assert_eq!(report["accounts"], 1, "{report}");
    assert!(report["transactions"].as_i64().unwrap() >= 1, "{report}");
    let kept = kept(&m, &pi).await;
    assert_eq!(kept.len(), 1, "{kept:?}");
    let charge = &kept[0];
    let at_stripe = &stripe_txns(&m, None).await[&charge.id];
    // The sandbox's schedule for a US platform: 2.9% + 0.30 USD.
    assert_eq!(
        (charge.entry.kind.as_str(), charge.entry.amount),
        ("charge", 2000)
    );
    assert_eq!(
        (charge.entry.stripe_fee, charge.entry.tax, charge.entry.fee),
        (88, 0, 88)
    );
    assert_eq!(charge.entry.net, 1912);
    assert_eq!(charge.entry.fee, at_stripe["fee"].as_i64().unwrap());
    assert_eq!(charge.entry.net, at_stripe["net"].as_i64().unwrap());
    assert_eq!(charge.entry.stripe_fee, fee_lines(at_stripe, "stripe_fee"));
    assert_eq!(
        charge.entry.available_on,
        at_stripe["available_on"].as_i64().unwrap()
    );

    let after = statement_json(&m, &[]);
    let line = line_of(&after, &pi);
    assert_eq!(line["stripe_fee"], 88);
    assert_eq!(line["application_fee"], 0);
    assert_eq!(line["net"], 1912);
    assert_eq!(line["settlement_currency"], "usd");
    let usd = totals_in(&after, "usd");
    assert_eq!(
        (usd["gross"].as_i64(), usd["net"].as_i64()),
        (Some(2000), Some(1912))
    );
    assert_eq!(usd["unknown"], 0);
    assert_eq!(usd["not_paid_out"], 1912);

    // A second sync lists from its cursor and keeps each transaction once.
    sync(&m, &[]);
    assert_eq!(
        m.ledger().await.balance_transaction_count().await.unwrap(),
        stripe_txns(&m, None).await.len() as i64
    );
}

#[tokio::test]
async fn a_refund_and_a_dispute_come_off_the_net() {
    let m = shop(&[]).await;
    let refunded = paid(&m, "20.00", "usd", json!({}), "pm_card_visa").await;
    let disputed = paid(&m, "70.00", "usd", json!({}), "pm_card_createDispute").await;
    refund(&m, &refunded, "5.00").await;
    let ledger = m.ledger().await;
    eventually("the dispute reaches the ledger", PATIENCE, || async {
        !ledger
            .of_payment::<tmt_payments::ledger::DisputeRow>(&disputed)
            .await
            .unwrap()
            .is_empty()
    })
    .await;
    sync(&m, &[]);
    let s = statement_json(&m, &[]);

    // A refund gives back no fee: the net loses the whole amount refunded.
    let line = line_of(&s, &refunded);
    assert_eq!(line["amount_refunded"], 500);
    assert_eq!(line["stripe_fee"], 88);
    assert_eq!(line["net"], 1912 - 500);
    // A dispute takes the amount and its fee (15.00 USD).
    let line = line_of(&s, &disputed);
    let fee = (7000 * 29 + 500) / 1000 + 30;
    assert_eq!(line["stripe_fee"], fee);
    assert_eq!(line["net"], 7000 - fee - 7000 - 1500);
    let usd = totals_in(&s, "usd");
    assert_eq!(usd["refunds"], 500);
    assert_eq!(usd["disputes"], 7000);
    assert_eq!(usd["dispute_fees"], 1500);
    assert_eq!(usd["gross"], 9000);
    assert_eq!(usd["net"], 1412 + (7000 - fee - 8500));

    // Every net in the statement is what the sandbox's transactions of the payment add up to.
    let at_stripe = stripe_txns(&m, None).await;
    for pi in [&refunded, &disputed] {
        let kept = ledger.of_payment::<BalanceRow>(pi).await.unwrap();
        let stripe_net: i64 = kept
            .iter()
            .map(|t| at_stripe[&t.id]["net"].as_i64().unwrap())
            .sum();
        assert_eq!(line_of(&s, pi)["net"], stripe_net, "{pi}");
    }
}

#[tokio::test]
async fn a_sync_killed_midway_resumes_from_its_cursor() {
    let m = shop(&[]).await;
    // 250 charges made at Stripe directly: three pages of a hundred.
    for _ in 0..250 {
        let form = [
            ("amount", "1000"),
            ("currency", "usd"),
            ("payment_method", "pm_card_visa"),
            ("confirm", "true"),
        ];
        let (status, _, body) = m
            .stripe(reqwest::Method::POST, "/v1/payment_intents", &form, None)
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let total = stripe_txns(&m, None).await.len() as i64;
    assert!(total >= 250);
    // One Stripe call a second: the first page is saved well before the last is read.
    let mut slow = command(&m.db)
        .args(["settlement", "sync", "--json"])
        .env("PORT", m.server.port())
        .env("STRIPE_MAX_RPS", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let ledger = m.ledger().await;
    let under_way = eventually("the first page is saved", PATIENCE, || async {
        ledger
            .settlement_cursor("")
            .await
            .unwrap()
            .and_then(|c| c.under_way)
    })
    .await;
    slow.kill().unwrap();
    slow.wait().unwrap();
    let saved = ledger.balance_transaction_count().await.unwrap();
    assert!(saved >= 100 && saved < total, "{saved} of {total}");

    let report = sync(&m, &[]);
    assert_eq!(report["resumed"], 1, "{report}");
    let cursor = ledger.settlement_cursor("").await.unwrap().unwrap();
    assert!(cursor.under_way.is_none(), "{cursor:?}");
    assert!(cursor.created_gte <= under_way.started);
    // It went on after the saved page, not from the start: fewer pages than the whole.
    let pages = report["pages"].as_i64().unwrap();
    assert!(pages < (total + 99) / 100, "{report}");
    assert_eq!(ledger.balance_transaction_count().await.unwrap(), total);
}

#[tokio::test]
async fn the_commands_refuse_bad_spans_and_days() {
    let m = shop(&[]).await;
    let bad = m.cli(&["settlement", "sync", "--since", "soon"], &[]);
    assert_exit(&bad, 2, "a bad span");
    let bad = m.cli(
        &["statement", "--from", "2026-13-01", "--to", "2026-12-01"],
        &[],
    );
    assert_exit(&bad, 2, "a bad day");
}
