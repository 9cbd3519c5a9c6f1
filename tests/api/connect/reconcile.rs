//! Reconciliation and seat holds follow direct charges to their connected account
//! (docs/contract.md §15, "Reconciliation"): each organiser's account is listed, one at a time,
//! with `Stripe-Account`, so that a direct charge's lost events, a PaymentIntent of ours on an
//! account the ledger lacks and an organiser's lost `account.updated` are all found; an
//! expired hold's cancel goes to the account. An account Stripe no longer lets the platform read
//! is left out of a round, reconciliation's or settlement's (§17), and the round goes on.

use serde_json::json;
use tmt_payments::ledger::{BalanceRow, ChargeType, EventRow};

use super::*;

#[tokio::test]
async fn reconciliation_lists_each_connected_account_and_heals_what_their_lost_events_said() {
    let market = Market::start("direct", &[("PLATFORM_FEE_PERCENT", "10")]).await;
    let account = market.ready_organizer("org_tarifa", json!({})).await;
    let waiting = market.onboard("org_cadiz", json!({})).await["accountId"]
        .as_str()
        .unwrap()
        .to_string();
    // Every webhook is lost from here on.
    market.drop_webhooks().await;
    let created = market
        .create(json!({"amount": 20, "currency": "usd", "organizerId": "org_tarifa"}))
        .await;
    let pi = created["paymentIntentId"].as_str().unwrap().to_string();
    let (status, _, body) = market.pay(&pi, "pm_card_visa", Some(&account)).await;
    assert_eq!(status, 200, "{body}");
    // A PaymentIntent of ours on the account that the ledger never heard of.
    let (status, _, orphan) = market
        .stripe(
            reqwest::Method::POST,
            "/v1/payment_intents",
            &[
                ("amount", "1500"),
                ("currency", "usd"),
                ("application_fee_amount", "150"),
                ("metadata[platform]", "TMT"),
                ("metadata[organizer_id]", "org_tarifa"),
            ],
            Some(&account),
        )
        .await;
    assert_eq!(status, 200, "{orphan}");
    market.complete_onboarding(&waiting).await;
    let ledger = market.ledger().await;
    assert_eq!(
        ledger.payment(&pi).await.unwrap().unwrap().status,
        "requires_payment_method"
    );
    assert!(
        !ledger
            .organizer("org_cadiz")
            .await
            .unwrap()
            .unwrap()
            .charges_enabled
    );

    let report = printed_json(
        &market.cli(&["reconcile", "--since", "1h", "--json"], &[]),
        0,
    );
    assert_eq!(report["accounts_listed"], 2, "{report}");
    assert!(report["events_applied"].as_u64().unwrap() >= 2, "{report}");
    // The orphan is adopted by its own payment_intent.created or by the account's listing of
    // PaymentIntents: either way with its account, organiser and fee.
    assert_eq!(
        ledger.payment(&pi).await.unwrap().unwrap().status,
        "succeeded"
    );
    let events: Vec<EventRow> = ledger.of_payment(&pi).await.unwrap();
    assert!(
        events.iter().any(|e| e.event_type == "payment_intent.succeeded" && e.source.as_str() == "reconcile"),
        "{events:?}"
    );
    let adopted = orphan["id"].as_str().unwrap();
    assert!(ledger.payment(adopted).await.unwrap().is_some(), "{report}");
    let kept = ledger.connect_of(adopted).await.unwrap().unwrap();
    assert_eq!(kept.stripe_account.as_deref(), Some(account.as_str()));
    assert_eq!(
        (
            kept.charge_type,
            kept.organizer_id.as_deref(),
            kept.application_fee
        ),
        (Some(ChargeType::Direct), Some("org_tarifa"), Some(150))
    );
    assert!(
        ledger
            .organizer("org_cadiz")
            .await
            .unwrap()
            .unwrap()
            .charges_enabled
    );
    // The adopted payment is read on its account.
    let (status, _, read) = market
        .call(
            "/stripe_get_payment_intent",
            json!({"payment_intent_id": adopted}),
        )
        .await;
    assert_eq!(
        (status, read["data"]["status"].as_str()),
        (200, Some("requires_payment_method")),
        "{read}"
    );

    // A round stopped between an adoption's two writes (its lease lost, its instance gone) left
    // the payment without what it keeps for its organiser: the next round finishes it.
    sqlx::query(
        "UPDATE payments SET organizer_id = NULL, charge_type = NULL, stripe_account = NULL,
                application_fee = NULL WHERE id = $1",
    )
    .bind(adopted)
    .execute(ledger.pool())
    .await
    .unwrap();
    let report = printed_json(
        &market.cli(&["reconcile", "--since", "1h", "--json"], &[]),
        0,
    );
    assert_eq!(report["orphans_adopted"], 0, "{report}");
    assert_eq!(ledger.connect_of(adopted).await.unwrap().unwrap(), kept);
}

#[tokio::test]
async fn a_direct_charges_expired_hold_is_canceled_on_its_account() {
    let market = Market::start("direct", &[]).await;
    let account = market.ready_organizer("org_ronda", json!({})).await;
    let created = market
        .create(
            json!({"amount": 20, "currency": "usd", "organizerId": "org_ronda", "holdSeconds": 60}),
        )
        .await;
    let pi = created["paymentIntentId"].as_str().unwrap().to_string();
    let ledger = market.ledger().await;
    end_hold_now(&ledger, &pi).await;
    market.reaches(&pi, "canceled").await;
    let at_stripe = market
        .at_stripe(&format!("/v1/payment_intents/{pi}"), Some(&account))
        .await;
    assert_eq!(
        (
            at_stripe["status"].as_str(),
            at_stripe["cancellation_reason"].as_str()
        ),
        (Some("canceled"), Some("abandoned"))
    );
}

#[tokio::test]
async fn an_account_stripe_no_longer_lets_the_platform_read_is_left_out_and_the_round_goes_on() {
    let market = Market::start("direct", &[("PLATFORM_FEE_PERCENT", "10")]).await;
    // Listed first (the oldest organiser), and cut off at Stripe with its event lost.
    let gone = market.ready_organizer("org_gone", json!({})).await;
    let account = market.ready_organizer("org_here", json!({})).await;
    market.drop_webhooks().await;
    let (status, _, body) = market
        .stripe(
            reqwest::Method::POST,
            &format!("/_sandbox/accounts/{gone}/deauthorize"),
            &[],
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let created = market
        .create(json!({"amount": 20, "currency": "usd", "organizerId": "org_here"}))
        .await;
    let pi = created["paymentIntentId"].as_str().unwrap().to_string();
    let (status, _, body) = market.pay(&pi, "pm_card_visa", Some(&account)).await;
    assert_eq!(status, 200, "{body}");

    let report = printed_json(
        &market.cli(&["reconcile", "--since", "1h", "--json"], &[]),
        0,
    );
    assert_eq!(report["accounts_listed"], 1, "{report}");
    assert_eq!(report["accounts_left_out"], 1, "{report}");
    let ledger = market.ledger().await;
    assert_eq!(
        ledger.payment(&pi).await.unwrap().unwrap().status,
        "succeeded",
        "{report}"
    );
}

#[tokio::test]
async fn the_settlement_round_leaves_out_an_account_it_cannot_read_and_lists_the_others() {
    let market = Market::start("direct", &[("PLATFORM_FEE_PERCENT", "10")]).await;
    let mut paid = Vec::new();
    for organizer in ["org_gone", "org_here"] {
        let account = market.ready_organizer(organizer, json!({})).await;
        let created = market
            .create(json!({"amount": 20, "currency": "usd", "organizerId": organizer}))
            .await;
        let pi = created["paymentIntentId"].as_str().unwrap().to_string();
        let (status, _, body) = market.pay(&pi, "pm_card_visa", Some(&account)).await;
        assert_eq!(status, 200, "{body}");
        market.reaches(&pi, "succeeded").await;
        paid.push((account, pi));
    }
    // A payout of org_gone's account and one of the platform's (its fees), both reconciled by
    // Stripe and told to the ledger: due to be itemised.
    let mut payouts = Vec::new();
    for form in [vec![("account", paid[0].0.as_str())], vec![]] {
        let (status, _, made) = market
            .stripe(reqwest::Method::POST, "/_sandbox/payouts", &form, None)
            .await;
        assert_eq!(status, 200, "{made}");
        payouts.push(made["data"][0]["id"].as_str().unwrap().to_string());
    }
    let ledger = market.ledger().await;
    for id in &payouts {
        eventually(&format!("{id} is due"), PATIENCE, || async {
            ledger
                .payout(id)
                .await
                .unwrap()
                .filter(|p| p.reconciliation_status == "completed")
        })
        .await;
    }
    // org_gone's account took a direct charge, so the round lists it; Stripe now refuses it,
    // and the ledger has not heard (its deauthorisation event is lost).
    market.drop_webhooks().await;
    let (status, _, body) = market
        .stripe(
            reqwest::Method::POST,
            &format!("/_sandbox/accounts/{}/deauthorize", paid[0].0),
            &[],
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let report = printed_json(&market.cli(&["settlement", "sync", "--json"], &[]), 0);
    assert_eq!(
        report["accounts"], 2,
        "the platform's and org_here's: {report}"
    );
    assert_eq!(report["accounts_left_out"], 1, "org_gone's, once: {report}");
    assert_eq!(report["payouts_itemised"], 1, "the platform's: {report}");
    let payout = |id: &str| {
        let (ledger, id) = (&ledger, id.to_string());
        async move { ledger.payout(&id).await.unwrap().unwrap() }
    };
    assert_eq!(
        payout(&payouts[0]).await.items,
        None,
        "org_gone's payout waits"
    );
    assert!(payout(&payouts[1]).await.items.is_some(), "{report}");
    // What the ledger keeps of each payment's transactions on its organiser's own account (the
    // platform's listing has its application fee either way).
    let mut on_account = Vec::new();
    for (account, pi) in &paid {
        let kept = ledger.of_payment::<BalanceRow>(pi).await.unwrap();
        on_account.push(kept.iter().filter(|t| &t.account == account).count());
    }
    assert_eq!(
        on_account[0], 0,
        "org_gone's account was left out: {report}"
    );
    assert!(on_account[1] > 0, "org_here's charge was listed: {report}");

    // Once the ledger knows org_gone is disconnected (as its lost event, delivered late, would
    // say), its account and payout are not asked for at all.
    sqlx::query("UPDATE organizers SET connected = 0 WHERE id = 'org_gone'")
        .execute(ledger.pool())
        .await
        .unwrap();
    let report = printed_json(&market.cli(&["settlement", "sync", "--json"], &[]), 0);
    assert_eq!(
        (&report["accounts"], &report["accounts_left_out"]),
        (&json!(2), &json!(0)),
        "{report}"
    );
    assert_eq!(payout(&payouts[0]).await.items, None);
}
