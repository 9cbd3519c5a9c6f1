//! Disputes on destination charges (docs/contract.md §15, "Disputes"): the organiser's
//! transfer is reversed by the disputed amount once per dispute, and given back less the fee
//! once if the dispute is won, whatever copies of the dispute's events arrive in whatever
//! order, on one instance or on three sharing PostgreSQL; off with
//! `DISPUTE_REVERSE_TRANSFER=false`; nothing under direct charges.

use serde_json::{json, Value};
use tmt_payments::ledger::{ActionRow, ReversalRow};

use super::*;

/// A payment for `organizer` paid with the card that is disputed after the charge; its id.
async fn disputed(market: &Market, organizer: &str, amount: &str, account: Option<&str>) -> String {
    let created = market
        .create(json!({"amount": amount, "currency": "eur", "organizerId": organizer}))
        .await;
    let pi = created["paymentIntentId"].as_str().unwrap().to_string();
    let (status, _, body) = market.pay(&pi, "pm_card_createDispute", account).await;
    assert_eq!(status, 200, "{body}");
    pi
}

/// The dispute Stripe opened on `pi`, once it has.
async fn dispute_of(http: &reqwest::Client, base: &str, pi: &str, account: Option<&str>) -> Value {
    eventually(&format!("a dispute opens on {pi}"), PATIENCE, || async {
        let form = [("payment_intent", pi)];
        let (_, _, list) = stripe_call(
            http,
            base,
            reqwest::Method::GET,
            "/v1/disputes",
            &form,
            account,
        )
        .await;
        list["data"].as_array().and_then(|d| d.first().cloned())
    })
    .await
}

/// Submits the evidence that wins (or loses) a dispute in Stripe's test mode.
async fn decide(http: &reqwest::Client, base: &str, dispute: &str, evidence: &str) {
    let path = format!("/v1/disputes/{dispute}");
    let form = [("evidence[uncategorized_text]", evidence)];
    let (status, _, body) =
        stripe_call(http, base, reqwest::Method::POST, &path, &form, None).await;
    assert_eq!(status, 200, "{body}");
}

/// The ledger's Connect actions for `pi` once every one is done or skipped.
async fn settled_actions(
    ledger: &tmt_payments::ledger::Ledger,
    pi: &str,
    count: usize,
) -> Vec<ActionRow> {
    eventually(
        &format!("{count} Connect actions of {pi} are made"),
        PATIENCE,
        || async {
            let actions: Vec<ActionRow> = ledger.of_payment(pi).await.unwrap();
            let made =
                actions.len() == count && actions.iter().all(|a| a.state.as_str() != "pending");
            match made {
                true => Ok(actions),
                false => Err(format!("{actions:?}")),
            }
        },
    )
    .await
}

/// What the transfer of `pi`'s charge says at Stripe, and the transfers to `account` made for
/// `dispute`.
async fn transfers(
    http: &reqwest::Client,
    base: &str,
    pi: &str,
    dispute: &str,
) -> (Value, Vec<Value>) {
    let form = [("payment_intent", pi), ("expand[]", "data.transfer")];
    let (_, _, charges) =
        stripe_call(http, base, reqwest::Method::GET, "/v1/charges", &form, None).await;
    let transfer = charges["data"][0]["transfer"].clone();
    let (_, _, all) = stripe_call(
        http,
        base,
        reqwest::Method::GET,
        "/v1/transfers",
        &[("limit", "100")],
        None,
    )
    .await;
    let returns = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["metadata"]["tmt_dispute"] == dispute)
        .cloned()
        .collect();
    (transfer, returns)
}

#[tokio::test]
async fn a_dispute_reverses_the_transfer_once_and_a_won_one_gives_it_back_less_the_fee() {
    let market = Market::start("destination", &[("PLATFORM_FEE_PERCENT", "10")]).await;
    let account = market.ready_organizer("org_gijon", json!({})).await;
    let pi = disputed(&market, "org_gijon", "80.00", None).await;
    let (http, base) = (reqwest::Client::new(), market.server.address.clone());
    let dispute = dispute_of(&http, &base, &pi, None).await;
    let dispute_id = dispute["id"].as_str().unwrap().to_string();
    let ledger = market.ledger().await;
    let actions = settled_actions(&ledger, &pi, 1).await;
    assert_eq!(
        (actions[0].kind.as_str(), actions[0].state.as_str()),
        ("dispute_reversal", "done")
    );
    assert_eq!(
        (actions[0].amount, actions[0].fee_returned),
        (Some(8000), Some(800))
    );
    let (transfer, _) = transfers(&http, &base, &pi, &dispute_id).await;
    assert_eq!(
        transfer["amount_reversed"], 8000,
        "the organiser is left as if the sale had not happened"
    );
    let reversals: Vec<ReversalRow> = ledger.of_payment(&pi).await.unwrap();
    assert_eq!(reversals.len(), 1);
    assert_eq!(
        (reversals[0].dispute_id.as_deref(), reversals[0].amount),
        (Some(dispute_id.as_str()), 8000)
    );
    let kept = ledger.connect_of(&pi).await.unwrap().unwrap();
    assert_eq!(
        (kept.transfer_reversed, kept.application_fee_refunded),
        (8000, 800)
    );

    decide(&http, &base, &dispute_id, "winning_evidence").await;
    let actions = settled_actions(&ledger, &pi, 2).await;
    let back = actions
        .iter()
        .find(|a| a.kind.as_str() == "dispute_return")
        .unwrap();
    assert_eq!((back.state.as_str(), back.amount), ("done", Some(7200)));
    // Every copy of every dispute event again, shuffled: nothing more happens.
    let dispute_events: Vec<Value> = market
        .events(None)
        .await
        .into_iter()
        .filter(|e| e["type"].as_str().unwrap().starts_with("charge.dispute."))
        .collect();
    assert!(dispute_events.len() >= 3, "{dispute_events:?}");
    deliver_shuffled(std::slice::from_ref(&base), &dispute_events, 3).await;
    let (transfer, returns) = transfers(&http, &base, &pi, &dispute_id).await;
    assert_eq!(transfer["reversals"]["data"].as_array().unwrap().len(), 1);
    assert_eq!(returns.len(), 1, "{returns:?}");
    assert_eq!(
        (
            returns[0]["amount"].as_i64(),
            returns[0]["destination"].as_str()
        ),
        (Some(7200), Some(account.as_str()))
    );
    assert_eq!(settled_actions(&ledger, &pi, 2).await.len(), 2);
}

#[tokio::test]
async fn a_lost_dispute_keeps_the_reversal_and_the_setting_turns_reversals_off() {
    let market = Market::start("destination", &[("PLATFORM_FEE_PERCENT", "10")]).await;
    market.ready_organizer("org_leon", json!({})).await;
    let (http, base) = (reqwest::Client::new(), market.server.address.clone());
    let pi = disputed(&market, "org_leon", "30.00", None).await;
    let dispute = dispute_of(&http, &base, &pi, None).await;
    let ledger = market.ledger().await;
    settled_actions(&ledger, &pi, 1).await;
    decide(
        &http,
        &base,
        dispute["id"].as_str().unwrap(),
        "losing_evidence",
    )
    .await;
    eventually("the dispute is lost in the ledger", PATIENCE, || async {
        let disputes: Vec<tmt_payments::ledger::DisputeRow> = ledger.of_payment(&pi).await.unwrap();
        disputes
            .first()
            .is_some_and(|d| d.status.as_str() == "lost")
            .then_some(())
    })
    .await;
    assert_eq!(
        settled_actions(&ledger, &pi, 1).await.len(),
        1,
        "nothing to give back"
    );

    let off = Market::start(
        "destination",
        &[
            ("PLATFORM_FEE_PERCENT", "10"),
            ("DISPUTE_REVERSE_TRANSFER", "false"),
        ],
    )
    .await;
    off.ready_organizer("org_leon", json!({})).await;
    let pi = disputed(&off, "org_leon", "30.00", None).await;
    let base = off.server.address.clone();
    let dispute = dispute_of(&http, &base, &pi, None).await;
    let actions = settled_actions(&off.ledger().await, &pi, 1).await;
    assert_eq!(actions[0].state.as_str(), "skipped");
    let (transfer, _) = transfers(&http, &base, &pi, dispute["id"].as_str().unwrap()).await;
    assert_eq!(transfer["amount_reversed"], 0);
}

#[tokio::test]
async fn a_direct_charges_dispute_is_the_organisers_and_reverses_nothing() {
    let market = Market::start("direct", &[("PLATFORM_FEE_PERCENT", "10")]).await;
    let account = market.ready_organizer("org_soria", json!({})).await;
    let pi = disputed(&market, "org_soria", "30.00", Some(&account)).await;
    let ledger = market.ledger().await;
    eventually(
        "the direct charge's dispute reaches the ledger",
        PATIENCE,
        || async {
            let disputes: Vec<tmt_payments::ledger::DisputeRow> =
                ledger.of_payment(&pi).await.unwrap();
            (!disputes.is_empty()).then_some(())
        },
    )
    .await;
    let actions: Vec<ActionRow> = ledger.of_payment(&pi).await.unwrap();
    assert!(actions.is_empty(), "{actions:?}");
}

#[tokio::test]
#[ignore = "needs PostgreSQL at TMT_TEST_POSTGRES_URL"]
async fn a_dispute_reversal_happens_once_under_duplicated_and_shuffled_events_on_three_postgres_instances(
) {
    let cluster = PostgresCluster::start(&[
        ("CONNECT_CHARGE_TYPE", "destination"),
        ("PLATFORM_FEE_PERCENT", "10"),
    ])
    .await;
    cluster.ready_organizer("org_pg_dispute").await;
    let (http, base) = (cluster.http.clone(), cluster.sandbox.base.clone());
    // From here on Stripe's own deliveries are lost: the test delivers every event itself.
    cluster.drop_webhooks().await;
    let pi = cluster
        .paid(2, "org_pg_dispute", "50.00", "pm_card_createDispute")
        .await;
    let dispute = dispute_of(&http, &base, &pi, None).await;
    let dispute_id = dispute["id"].as_str().unwrap().to_string();
    decide(&http, &base, &dispute_id, "winning_evidence").await;
    eventually("the dispute is won at Stripe", PATIENCE, || async {
        let path = format!("/v1/disputes/{dispute_id}");
        let (_, _, d) = stripe_call(&http, &base, reqwest::Method::GET, &path, &[], None).await;
        (d["status"] == "won").then_some(())
    })
    .await;
    // Everything Stripe said about the payment, four copies of each, shuffled, on all three.
    let events: Vec<Value> = listed_events(&http, &base, None)
        .await
        .into_iter()
        .filter(|e| e.to_string().contains(&pi))
        .collect();
    assert!(
        events.iter().any(|e| e["type"] == "charge.dispute.closed"),
        "{events:?}"
    );
    let addresses: Vec<String> = cluster.servers.iter().map(|s| s.address.clone()).collect();
    deliver_shuffled(&addresses, &events, 4).await;
    let ledger = cluster.ledger().await;
    let actions = settled_actions(&ledger, &pi, 2).await;
    assert!(
        actions.iter().all(|a| a.state.as_str() == "done"),
        "{actions:?}"
    );
    // And once more, while the worker may be at it.
    deliver_shuffled(&addresses, &events, 2).await;
    let (transfer, returns) = transfers(&http, &base, &pi, &dispute_id).await;
    let reversals = transfer["reversals"]["data"].as_array().unwrap();
    assert_eq!(reversals.len(), 1, "{transfer}");
    assert_eq!(
        (
            reversals[0]["amount"].as_i64(),
            transfer["amount_reversed"].as_i64()
        ),
        (Some(5000), Some(5000))
    );
    assert_eq!(returns.len(), 1, "{returns:?}");
    assert_eq!(returns[0]["amount"], 4500);
    assert_eq!(settled_actions(&ledger, &pi, 2).await.len(), 2);
}
