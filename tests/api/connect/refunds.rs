//! Refunds of payments made for organisers (docs/contract.md §15, "Refunds"): the platform's
//! fee goes back and a destination charge's transfer is reversed in proportion unless the
//! request (or `REFUND_APPLICATION_FEE`) says otherwise; concurrent refunds, on three instances
//! sharing PostgreSQL, never give back more fee or take back more transfer than there is; bulk
//! refunds select an organiser's payments.

use serde_json::{json, Value};
use tmt_payments::ledger::{ConnectPayment, ReversalRow};

use super::*;

/// A payment of `amount` EUR for `organizer`, paid by card and succeeded in the ledger; its id.
async fn paid(
    market: &Market,
    organizer: &str,
    amount: &str,
    account: Option<&str>,
    extra: Value,
) -> String {
    let mut data = json!({"amount": amount, "currency": "eur", "organizerId": organizer});
    for (k, v) in extra.as_object().into_iter().flatten() {
        data[k] = v.clone();
    }
    let pi = market.create(data).await["paymentIntentId"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _, body) = market.pay(&pi, "pm_card_visa", account).await;
    assert_eq!(status, 200, "{body}");
    market.reaches(&pi, "succeeded").await;
    pi
}

async fn refund(market: &Market, data: Value) -> Value {
    let (status, _, body) = market.call(REFUND, data).await;
    assert_eq!(status, 200, "{body}");
    body["data"].clone()
}

/// The payment's charge at Stripe, with its fee and transfer expanded.
async fn charge_of(market: &Market, pi: &str, account: Option<&str>) -> Value {
    let path = format!(
        "/v1/charges?payment_intent={pi}&expand[]=data.application_fee&expand[]=data.transfer"
    );
    market.at_stripe(&path, account).await["data"][0].clone()
}

async fn kept(market: &Market, pi: &str) -> ConnectPayment {
    market.ledger().await.connect_of(pi).await.unwrap().unwrap()
}

#[tokio::test]
async fn a_refund_gives_back_the_fee_and_reverses_the_transfer_in_proportion() {
    let market = Market::start("destination", &[("PLATFORM_FEE_PERCENT", "10")]).await;
    market
        .ready_organizer("org_bilbao", json!({"country": "ES"}))
        .await;
    let pi = paid(&market, "org_bilbao", "100.00", None, json!({})).await;
    let half = refund(&market, json!({"payment_intent_id": pi, "amount": "50.00"})).await;
    assert_eq!(half["applicationFeeRefunded"].to_string(), "5.00");
    assert_eq!(half["amountRefunded"].to_string(), "50.00");
    let charge = charge_of(&market, &pi, None).await;
    assert_eq!(charge["application_fee"]["amount_refunded"], 500);
    assert_eq!(charge["transfer"]["amount_reversed"], 5000);
    let at_stripe = market
        .at_stripe(
            &format!("/v1/refunds/{}", half["refundId"].as_str().unwrap()),
            None,
        )
        .await;
    let reversal = at_stripe["transfer_reversal"].as_str().unwrap().to_string();
    let ledger = kept(&market, &pi).await;
    assert_eq!(
        (ledger.application_fee_refunded, ledger.transfer_reversed),
        (500, 5000)
    );
    assert_eq!(ledger.transfer_amount, Some(10_000));
    let reversals: Vec<ReversalRow> = market.ledger().await.of_payment(&pi).await.unwrap();
    assert_eq!(reversals.len(), 1);
    assert_eq!(
        (reversals[0].id.as_str(), reversals[0].amount),
        (reversal.as_str(), 5000)
    );
    assert_eq!(reversals[0].refund_id.as_deref(), half["refundId"].as_str());
    // The rest: all of the fee back, the whole transfer reversed.
    let rest = refund(&market, json!({"payment_intent_id": pi})).await;
    assert_eq!(rest["applicationFeeRefunded"].to_string(), "10.00");
    assert_eq!(rest["fullyRefunded"], true);
    let ledger = kept(&market, &pi).await;
    assert_eq!(
        (ledger.application_fee_refunded, ledger.transfer_reversed),
        (1000, 10_000)
    );
}

#[tokio::test]
async fn a_refund_keeps_the_fee_or_the_transfer_only_when_asked() {
    let market = Market::start(
        "destination",
        &[
            ("PLATFORM_FEE_PERCENT", "10"),
            ("REFUND_APPLICATION_FEE", "false"),
        ],
    )
    .await;
    market.ready_organizer("org_vigo", json!({})).await;
    let pi = paid(&market, "org_vigo", "40.00", None, json!({})).await;
    // REFUND_APPLICATION_FEE=false: the platform keeps its fee unless the request says.
    let first = refund(&market, json!({"payment_intent_id": pi, "amount": 10})).await;
    assert_eq!(first["applicationFeeRefunded"].to_string(), "0.00");
    let second = refund(
        &market,
        json!({"payment_intent_id": pi, "amount": 10, "refundApplicationFee": true,
               "reverseTransfer": false}),
    )
    .await;
    assert_eq!(second["applicationFeeRefunded"].to_string(), "1.00");
    let charge = charge_of(&market, &pi, None).await;
    assert_eq!(
        charge["transfer"]["amount_reversed"], 1000,
        "the second kept the transfer"
    );
    for bad in [json!("yes"), json!(1), json!({})] {
        let (status, _, body) = market
            .call(
                REFUND,
                json!({"payment_intent_id": pi, "reverseTransfer": bad}),
            )
            .await;
        assert_eq!(
            refusal(status, &body),
            (
                400,
                "refund_option_invalid",
                "Opción de reembolso inválida: reverseTransfer debe ser true o false"
            )
        );
    }
}

#[tokio::test]
async fn a_direct_charges_refund_is_made_on_its_account_and_gives_back_the_fee() {
    let market = Market::start("direct", &[("PLATFORM_FEE_PERCENT", "8")]).await;
    let account = market
        .ready_organizer("org_oviedo", json!({"country": "ES"}))
        .await;
    let pi = paid(&market, "org_oviedo", "25.00", Some(&account), json!({})).await;
    let done = refund(&market, json!({"payment_intent_id": pi})).await;
    assert_eq!(done["applicationFeeRefunded"].to_string(), "2.00");
    let refunds = market
        .at_stripe(&format!("/v1/refunds?payment_intent={pi}"), Some(&account))
        .await;
    assert_eq!(refunds["data"].as_array().unwrap().len(), 1);
    let charge = charge_of(&market, &pi, Some(&account)).await;
    let fee = market.fee_of(&charge).await;
    assert_eq!(
        (fee["amount"].as_i64(), fee["amount_refunded"].as_i64()),
        (Some(200), Some(200))
    );
    assert_eq!(kept(&market, &pi).await.application_fee_refunded, 200);
}

#[tokio::test]
async fn bulk_refunds_select_an_organisers_payments_alone_or_with_metadata() {
    let market = Market::start("destination", &[("PLATFORM_FEE_PERCENT", "10")]).await;
    market.ready_organizer("org_a", json!({})).await;
    market.ready_organizer("org_b", json!({})).await;
    let a1 = paid(
        &market,
        "org_a",
        "10.00",
        None,
        json!({"metadata": {"event": "E1"}}),
    )
    .await;
    let a2 = paid(
        &market,
        "org_a",
        "12.00",
        None,
        json!({"metadata": {"event": "E2"}}),
    )
    .await;
    let b1 = paid(
        &market,
        "org_b",
        "14.00",
        None,
        json!({"metadata": {"event": "E1"}}),
    )
    .await;
    let b2 = paid(
        &market,
        "org_b",
        "16.00",
        None,
        json!({"metadata": {"event": "E2"}}),
    )
    .await;
    let refunded = |report: &Value| {
        let mut ids: Vec<String> = report["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["state"] == "refunded")
            .map(|i| i["payment_intent_id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    let out = market.cli(&["refunds", "bulk", "--organizer", "org_a", "--json"], &[]);
    let report = printed_json(&out, 0);
    let mut expected = vec![a1.clone(), a2.clone()];
    expected.sort();
    assert_eq!(refunded(&report), expected);
    assert_eq!(report["job"]["selector"], "organizer:org_a");
    let out = market.cli(
        &[
            "refunds",
            "bulk",
            "--organizer",
            "org_b",
            "--metadata",
            "event=E1",
            "--json",
        ],
        &[("REFUND_APPLICATION_FEE", "false")],
    );
    assert_eq!(refunded(&printed_json(&out, 0)), std::slice::from_ref(&b1));
    // The platform kept its fee where the run said so, and gave it back otherwise.
    assert_eq!(kept(&market, &a1).await.application_fee_refunded, 100);
    assert_eq!(kept(&market, &b1).await.application_fee_refunded, 0);
    assert_eq!(kept(&market, &b1).await.transfer_reversed, 1400);
    let untouched = kept(&market, &b2).await;
    assert_eq!(
        (
            untouched.application_fee_refunded,
            untouched.transfer_reversed
        ),
        (0, 0)
    );
    let out = market.cli(&["refunds", "bulk", "--organizer", "org a"], &[]);
    assert_exit(&out, 2, "an organiser id that cannot be one");
}

#[tokio::test]
#[ignore = "needs PostgreSQL at TMT_TEST_POSTGRES_URL"]
async fn concurrent_refunds_on_three_postgres_instances_never_give_back_more_fee_or_transfer_than_there_is(
) {
    let cluster = PostgresCluster::start(&[
        ("CONNECT_CHARGE_TYPE", "destination"),
        ("PLATFORM_FEE_PERCENT", "10"),
    ])
    .await;
    cluster.ready_organizer("org_pg").await;
    let pi = cluster.paid(1, "org_pg", "100.00", "pm_card_visa").await;
    cluster.reaches(&pi, "succeeded").await;
    // Twelve refunds of 15.00 at once, on all three: only six fit in 100.00.
    let refunds = (0..12).map(|n| {
        let (cluster, pi) = (&cluster, pi.clone());
        async move {
            cluster
                .call(
                    n % 3,
                    REFUND,
                    json!({"payment_intent_id": pi, "amount": "15.00"}),
                )
                .await
        }
    });
    let answers = futures_util::future::join_all(refunds).await;
    let mut made = 0;
    for (status, _, body) in &answers {
        match status {
            200 => {
                made += 1;
                let fee = body["data"]["applicationFeeRefunded"].to_string();
                let fee = rust_decimal::Decimal::from_str_exact(&fee).unwrap();
                assert!(fee <= rust_decimal::Decimal::TEN, "{body}");
            }
            _ => assert_eq!(code(*status, body), (400, "refund_exceeds_remaining")),
        }
    }
    assert_eq!(made, 6, "{answers:?}");
    let path = format!(
        "/v1/charges?payment_intent={pi}&expand[]=data.application_fee&expand[]=data.transfer"
    );
    let (_, _, charges) = cluster.stripe(reqwest::Method::GET, &path, &[], None).await;
    let charge = &charges["data"][0];
    assert_eq!(charge["amount_refunded"], 9000);
    let (fee, transfer) = (&charge["application_fee"], &charge["transfer"]);
    assert_eq!(
        (
            fee["amount_refunded"].as_i64(),
            transfer["amount_reversed"].as_i64()
        ),
        (Some(900), Some(9000))
    );
    let ledger = cluster.ledger().await;
    let kept = eventually("the ledger has every reversal", PATIENCE, || async {
        let kept = ledger.connect_of(&pi).await.unwrap().unwrap();
        (kept.transfer_reversed == 9000).then_some(kept)
    })
    .await;
    assert_eq!(kept.application_fee_refunded, 900);
    let reversals: Vec<ReversalRow> = ledger.of_payment(&pi).await.unwrap();
    assert_eq!(reversals.iter().map(|r| r.amount).sum::<i64>(), 9000);
}
