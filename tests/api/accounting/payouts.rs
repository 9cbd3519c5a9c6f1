//! Payouts from their events, itemised by the background round once Stripe has reconciled
//! them, checked against their amounts; a payout in another settlement currency.

use reqwest::Method;
use serde_json::{json, Value};
use tmt_payments::ledger::PayoutRow;

use super::*;

/// `POST` of `form` to the sandbox's control `path`, which must answer 200; its answer.
async fn control(m: &Market, path: &str, form: &[(&str, &str)]) -> Value {
    let (status, _, body) = m.stripe(Method::POST, path, form, None).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// The sandbox's payout schedule runs now (`POST /_sandbox/payouts` with `form`); the payouts
/// it made.
async fn pay_out(m: &Market, form: &[(&str, &str)]) -> Vec<Value> {
    let body = control(m, "/_sandbox/payouts", form).await;
    body["data"].as_array().unwrap().clone()
}

/// Waits until the ledger has itemised the payout `id`.
async fn itemised(m: &Market, id: &str) -> PayoutRow {
    let ledger = m.ledger().await;
    eventually(&format!("{id} is itemised"), PATIENCE, || async {
        ledger
            .payout(id)
            .await
            .unwrap()
            .filter(|p| p.items.is_some())
    })
    .await
}

#[tokio::test]
async fn a_payouts_items_add_up_and_a_payout_that_lies_is_caught() {
    // The background round every second, as SETTLEMENT_INTERVAL_SECS would run it hourly.
    let m = shop(&[("SETTLEMENT_INTERVAL_SECS", "1")]).await;
    let first = paid(&m, "20.00", "usd", json!({}), "pm_card_visa").await;
    let second = paid(&m, "10.00", "usd", json!({}), "pm_card_visa").await;
    let made = pay_out(&m, &[]).await;
    assert_eq!(made.len(), 1, "{made:?}");
    let id = made[0]["id"].as_str().unwrap();
    let payout = itemised(&m, id).await;
    assert!(payout.automatic.0);
    assert_eq!(payout.status, "paid");
    assert_eq!(payout.amount, 1912 + 941);
    assert_eq!(payout.items, Some(2));
    assert_eq!((payout.items_sum, payout.mismatch), (Some(2853), Some(0)));
    let ledger = m.ledger().await;
    for pi in [&first, &second] {
        let kept = ledger.of_payment::<BalanceRow>(pi).await.unwrap();
        assert!(
            kept.iter().all(|t| t.payout_id.as_deref() == Some(id)),
            "{kept:?}"
        );
    }
    let s = statement_json(&m, &[]);
    let line = line_of(&s, &first);
    assert_eq!(line["payout_id"], id);
    assert_eq!(line["payout_arrival_date"], made[0]["arrival_date"]);
    let usd = totals_in(&s, "usd");
    assert_eq!(
        (usd["paid_out"].as_i64(), usd["not_paid_out"].as_i64()),
        (Some(2853), Some(0))
    );

    // A manual payout cannot be itemised: it is shown as such, never checked.
    paid(&m, "50.00", "usd", json!({}), "pm_card_visa").await;
    control(&m, "/_sandbox/clock", &[("advance", "259200")]).await;
    let (status, _, manual) = m
        .stripe(
            Method::POST,
            "/v1/payouts",
            &[("amount", "100"), ("currency", "usd")],
            None,
        )
        .await;
    assert_eq!(status, 200, "{manual}");
    let manual_id = manual["id"].as_str().unwrap();
    eventually("the manual payout is in the ledger", PATIENCE, || async {
        ledger.payout(manual_id).await.unwrap().is_some()
    })
    .await;

    // The sandbox made to lie: the payout says 7 more than its items.
    let lying = pay_out(&m, &[("mismatch", "7")]).await;
    let lying_id = lying[0]["id"].as_str().unwrap();
    let payout = itemised(&m, lying_id).await;
    assert_eq!(payout.mismatch, Some(7));
    assert_eq!(payout.items_sum.unwrap() + 7, payout.amount);

    let listed = printed_json(&m.cli(&["payouts", "list", "--json"], &[]), 0);
    let find = |id: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == id)
            .cloned()
            .unwrap()
    };
    assert_eq!(find(id)["adds_up"], true);
    assert_eq!(find(lying_id)["adds_up"], false);
    assert_eq!(find(lying_id)["mismatch"], 7);
    let manual_listed = find(manual_id);
    assert_eq!(manual_listed["itemisable"], false);
    assert_eq!(manual_listed["adds_up"], Value::Null);
    let table = m.cli(&["payouts", "list"], &[]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("NO: off by 0.07"), "{text}");
    assert!(text.contains("manual: not itemisable"), "{text}");

    let metrics = reqwest::get(format!("{}/metrics", m.server.address))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        sample(&metrics, "tmt_payout_mismatches_total"),
        1.0,
        "{metrics}"
    );
}

#[tokio::test]
async fn a_payout_in_another_settlement_currency_carries_the_exchange_rate() {
    let m = shop(&[("SETTLEMENT_INTERVAL_SECS", "1")]).await;
    // The platform is Mexican and settles in MXN; the buyer pays in USD.
    control(&m, "/_sandbox/platform", &[("country", "MX")]).await;
    let pi = paid(&m, "20.00", "usd", json!({}), "pm_card_visa").await;
    let made = pay_out(&m, &[]).await;
    assert_eq!(made[0]["currency"], "mxn", "{made:?}");
    let payout = itemised(&m, made[0]["id"].as_str().unwrap()).await;
    assert_eq!(payout.mismatch, Some(0));

    let kept = kept(&m, &pi).await;
    let charge = kept.iter().find(|t| t.entry.kind == "charge").unwrap();
    let at_stripe = &stripe_txns(&m, None).await[&charge.id];
    assert_eq!(charge.entry.currency, "mxn");
    assert_eq!(charge.entry.amount, 40_000, "20.00 USD at 20 MXN");
    assert_eq!(
        charge.entry.exchange_rate.as_deref(),
        Some(at_stripe["exchange_rate"].to_string().as_str())
    );
    assert_eq!(charge.entry.tax, fee_lines(at_stripe, "tax"));
    assert!(charge.entry.tax > 0, "IVA on a Mexican account's fee");

    let s = statement_json(&m, &[]);
    let line = line_of(&s, &pi);
    assert_eq!(
        (line["currency"].as_str(), line["amount"].as_i64()),
        (Some("usd"), Some(2000))
    );
    assert_eq!(line["settlement_currency"], "mxn");
    assert_eq!(
        line["exchange_rate"],
        at_stripe["exchange_rate"].to_string()
    );
    assert_eq!(line["net"], at_stripe["net"]);
    assert_eq!(line["stripe_fee"], at_stripe["fee"]);
    let mxn = totals_in(&s, "mxn");
    assert_eq!(mxn["paid_out"], at_stripe["net"]);
    assert_eq!(mxn["not_paid_out"], 0);
}

#[tokio::test]
#[ignore = "needs PostgreSQL at TMT_TEST_POSTGRES_URL"]
async fn three_postgres_instances_itemise_a_payout_once_and_the_statement_agrees() {
    use crate::connect::PostgresCluster;
    let cluster = PostgresCluster::start(&[("SETTLEMENT_INTERVAL_SECS", "1")]).await;
    let mut pis = Vec::new();
    for n in 0..3 {
        let data = json!({"amount": "20.00", "currency": "usd"});
        let (status, _, created) = cluster.call(n, crate::connect::CREATE, data).await;
        assert_eq!(status, 200, "{created}");
        let pi = created["data"]["paymentIntentId"]
            .as_str()
            .unwrap()
            .to_string();
        let (status, _, body) = cluster.pay(&pi, "pm_card_visa", None).await;
        assert_eq!(status, 200, "{body}");
        cluster.reaches(&pi, "succeeded").await;
        pis.push(pi);
    }
    let (status, _, made) = cluster
        .stripe(Method::POST, "/_sandbox/payouts", &[], None)
        .await;
    assert_eq!(status, 200, "{made}");
    let id = made["data"][0]["id"].as_str().unwrap().to_string();
    let ledger = cluster.ledger().await;
    let payout = eventually("the payout is itemised", PATIENCE, || async {
        ledger
            .payout(&id)
            .await
            .unwrap()
            .filter(|p| p.items.is_some())
    })
    .await;
    assert_eq!((payout.items, payout.mismatch), (Some(3), Some(0)));
    assert_eq!(payout.amount, 3 * 1912);

    let output = command(&cluster.db)
        .args(statement_args("json"))
        .output()
        .unwrap();
    let s = printed_json(&output, 0);
    for pi in &pis {
        let line = line_of(&s, pi);
        assert_eq!(
            (line["net"].as_i64(), line["stripe_fee"].as_i64()),
            (Some(1912), Some(88))
        );
        assert_eq!(line["payout_id"], id.as_str());
    }
    let usd = totals_in(&s, "usd");
    assert_eq!(
        (usd["paid_out"].as_i64(), usd["unknown"].as_i64()),
        (Some(3 * 1912), Some(0))
    );
}

#[tokio::test]
async fn a_payout_only_moves_forward_whatever_order_its_events_arrive_in() {
    let app = spawn_app().await;
    let payout = |status: &str, reconciliation: &str| {
        json!({"id": "po_order1", "object": "payout", "amount": 1200, "currency": "usd",
               "arrival_date": now(), "status": status, "automatic": true,
               "reconciliation_status": reconciliation, "created": now()})
    };
    let at = now();
    // Stripe's order: created, updated, paid, reconciliation completed; delivered backwards,
    // all within one second, and the first twice.
    for (id, kind, status, reconciliation) in [
        (
            "evt_po_4",
            "payout.reconciliation_completed",
            "paid",
            "completed",
        ),
        ("evt_po_3", "payout.paid", "paid", "in_progress"),
        ("evt_po_2", "payout.updated", "in_transit", "in_progress"),
        ("evt_po_1", "payout.created", "pending", "in_progress"),
        (
            "evt_po_4",
            "payout.reconciliation_completed",
            "paid",
            "completed",
        ),
    ] {
        app.delivered(id, kind, payout(status, reconciliation), at)
            .await;
    }
    let ledger = app.ledger().await;
    let row = ledger.payout("po_order1").await.unwrap().unwrap();
    assert_eq!(
        (row.status.as_str(), row.reconciliation_status.as_str()),
        ("paid", "completed")
    );
    assert_eq!(row.amount, 1200);
    // Stripe may report a paid payout failed later; that sticks too.
    let mut failed = payout("failed", "completed");
    failed["failure_code"] = json!("account_closed");
    app.delivered("evt_po_5", "payout.failed", failed, at + 1)
        .await;
    app.delivered(
        "evt_po_6",
        "payout.paid",
        payout("paid", "completed"),
        at + 2,
    )
    .await;
    let row = ledger.payout("po_order1").await.unwrap().unwrap();
    assert_eq!(row.status, "failed");
    assert_eq!(row.failure_code.as_deref(), Some("account_closed"));
    let events = ledger.list_events(100).await.unwrap();
    let outcome = |id: &str| {
        let e = events.iter().find(|e| e.id == id).unwrap();
        e.outcome.to_string()
    };
    assert_eq!(outcome("evt_po_4"), "applied");
    assert_eq!(outcome("evt_po_1"), "ignored", "older news");
    assert_eq!(
        outcome("evt_po_6"),
        "ignored",
        "a failed payout stays failed"
    );
    assert_eq!(events.iter().filter(|e| e.id == "evt_po_4").count(), 1);
}
