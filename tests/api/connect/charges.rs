//! Payments for organisers (docs/contract.md §15, "Create with an organiser"): refused before
//! Stripe when no organiser can take them, charged as destination charges (the platform's
//! PaymentIntent, transferred to the organiser, the fee taken back) or as direct charges (on
//! the organiser's account, every later call carrying it), with the platform's fee.

use serde_json::{json, Value};
use tmt_payments::ledger::{ChargeType, Ledger};
use tmt_payments::stripe::connect::Account;

use super::*;

#[tokio::test]
async fn a_destination_charge_pays_the_organiser_and_keeps_the_platforms_fee() {
    let market = Market::start(
        "destination",
        &[
            ("PLATFORM_FEE_PERCENT", "5"),
            ("PLATFORM_FEE_FIXED", "eur:0.50,mxn:10"),
        ],
    )
    .await;
    let account = market
        .ready_organizer("org_sevilla", json!({"country": "ES"}))
        .await;
    let created = market
        .create(
            json!({"amount": "20.00", "currency": "eur", "organizerId": "org_sevilla",
                       "tickets": 2, "metadata": {"order": "A-7", "organizer_id": "spoofed"}}),
        )
        .await;
    // 5% of 20.00, and 0.50 for each of two tickets.
    assert_eq!(created["applicationFee"].to_string(), "2.00");
    assert_eq!(created["amount"].to_string(), "20.00");
    assert_eq!(created["organizerId"], "org_sevilla");
    assert!(created.get("stripeAccount").is_none(), "{created}");
    let pi = created["paymentIntentId"].as_str().unwrap().to_string();
    let at_stripe = market
        .at_stripe(&format!("/v1/payment_intents/{pi}"), None)
        .await;
    assert_eq!(at_stripe["transfer_data"]["destination"], account.as_str());
    assert_eq!(at_stripe["on_behalf_of"], account.as_str());
    assert_eq!(at_stripe["application_fee_amount"], 200);
    assert_eq!(at_stripe["amount"], 2000);
    let metadata = &at_stripe["metadata"];
    assert_eq!(
        (
            metadata["organizer_id"].as_str(),
            metadata["tickets"].as_str()
        ),
        (Some("org_sevilla"), Some("2"))
    );
    assert_eq!(metadata["order"], "A-7");

    let (status, _, paid) = market.pay(&pi, "pm_card_visa", None).await;
    assert_eq!(status, 200, "{paid}");
    market.reaches(&pi, "succeeded").await;
    let charges = market
        .at_stripe(&format!("/v1/charges?payment_intent={pi}"), None)
        .await;
    let charge = &charges["data"][0];
    let transfer = market
        .at_stripe(
            &format!("/v1/transfers/{}", charge["transfer"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(
        (
            transfer["destination"].as_str(),
            transfer["amount"].as_i64()
        ),
        (Some(account.as_str()), Some(2000))
    );
    let fee = market.fee_of(charge).await;
    assert_eq!(
        (fee["amount"].as_i64(), fee["account"].as_str()),
        (Some(200), Some(account.as_str()))
    );
    // The ledger knows whose it is, how its money went, and (from the charge's event) the
    // transfer and the fee.
    let ledger = market.ledger().await;
    let kept = eventually(
        "the charge's transfer reaches the ledger",
        PATIENCE,
        || async {
            let kept = ledger.connect_of(&pi).await.unwrap().unwrap();
            kept.transfer_id.is_some().then_some(kept)
        },
    )
    .await;
    assert_eq!(kept.organizer_id.as_deref(), Some("org_sevilla"));
    assert_eq!(kept.charge_type, Some(ChargeType::Destination));
    assert_eq!(
        (kept.application_fee, kept.stripe_account.as_deref()),
        (Some(200), None)
    );
    assert_eq!(kept.transfer_id.as_deref(), charge["transfer"].as_str());
    assert_eq!(
        kept.application_fee_id.as_deref(),
        charge["application_fee"].as_str()
    );
    let (status, _, confirmed) = market
        .call("/stripe_confirm_payment", json!({"payment_intent_id": pi}))
        .await;
    assert_eq!(status, 200, "{confirmed}");
}

#[tokio::test]
async fn the_buyer_pays_the_fee_on_top_and_on_behalf_of_can_be_left_out() {
    let market = Market::start(
        "destination",
        &[
            ("PLATFORM_FEE_PERCENT", "10"),
            ("CONNECT_ON_BEHALF_OF", "false"),
        ],
    )
    .await;
    market
        .ready_organizer("org_cdmx", json!({"fee": {"percent": "7.5"}}))
        .await;
    let created = market
        .create(
            json!({"amount": 100, "currency": "mxn", "organizerId": "org_cdmx",
                       "feePaidBy": "buyer"}),
        )
        .await;
    // The organiser's own 7.5% on top of the price: the buyer pays 107.50.
    assert_eq!(created["applicationFee"].to_string(), "7.50");
    assert_eq!(created["amount"].to_string(), "107.50");
    let pi = created["paymentIntentId"].as_str().unwrap();
    let at_stripe = market
        .at_stripe(&format!("/v1/payment_intents/{pi}"), None)
        .await;
    assert_eq!(
        (
            at_stripe["amount"].as_i64(),
            at_stripe["application_fee_amount"].as_i64()
        ),
        (Some(10750), Some(750))
    );
    assert!(at_stripe["on_behalf_of"].is_null(), "{at_stripe}");
    let (_, _, read) = market.organizer("org_cdmx").await;
    assert_eq!(
        read["data"]["fee"].to_string(),
        r#"{"percent":7.5,"fixed":{},"min":{},"max":{}}"#
    );
}

#[tokio::test]
async fn a_direct_charge_lives_on_the_organisers_account_and_every_call_carries_it() {
    let market = Market::start("direct", &[("PLATFORM_FEE_PERCENT", "10")]).await;
    let account = market
        .ready_organizer("org_quito", json!({"country": "US"}))
        .await;
    let created = market
        .create(json!({"amount": "30.00", "currency": "usd", "organizerId": "org_quito"}))
        .await;
    assert_eq!(created["stripeAccount"], account.as_str());
    assert_eq!(created["applicationFee"].to_string(), "3.00");
    let pi = created["paymentIntentId"].as_str().unwrap().to_string();
    // The PaymentIntent is the organiser's, not the platform's.
    let (status, _, _) = market
        .stripe(
            reqwest::Method::GET,
            &format!("/v1/payment_intents/{pi}"),
            &[],
            None,
        )
        .await;
    assert_eq!(status, 404);
    let on_account = market
        .at_stripe(&format!("/v1/payment_intents/{pi}"), Some(&account))
        .await;
    assert_eq!(on_account["application_fee_amount"], 300);
    assert!(on_account["transfer_data"].is_null(), "{on_account}");
    // Read before the buyer pays (Stripe is asked, on the account).
    let (status, _, read) = market
        .call(
            "/stripe_get_payment_intent",
            json!({"payment_intent_id": pi}),
        )
        .await;
    assert_eq!(
        (status, read["data"]["status"].as_str()),
        (200, Some("requires_payment_method")),
        "{read}"
    );
    let (status, _, paid) = market.pay(&pi, "pm_card_visa", Some(&account)).await;
    assert_eq!(status, 200, "{paid}");
    // The account's events (they carry `account`) reach the ledger and move the payment.
    market.reaches(&pi, "succeeded").await;
    let (status, _, confirmed) = market
        .call("/stripe_confirm_payment", json!({"payment_intent_id": pi}))
        .await;
    assert_eq!(status, 200, "{confirmed}");
    assert_eq!(
        confirmed["data"]["charges"][0]["application_fee_amount"],
        300
    );
    let kept = market
        .ledger()
        .await
        .connect_of(&pi)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (kept.charge_type, kept.stripe_account.as_deref()),
        (Some(ChargeType::Direct), Some(account.as_str()))
    );

    // Cancel and capture go to the account too.
    let unpaid = market
        .create(json!({"amount": 10, "currency": "usd", "organizerId": "org_quito"}))
        .await;
    let unpaid = unpaid["paymentIntentId"].as_str().unwrap();
    let (status, _, body) = market
        .call(
            "/stripe_cancel_payment_intent",
            json!({"payment_intent_id": unpaid}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let canceled = market
        .at_stripe(&format!("/v1/payment_intents/{unpaid}"), Some(&account))
        .await;
    assert_eq!(canceled["status"], "canceled");
    let held = market
        .create(json!({"amount": 40, "currency": "usd", "organizerId": "org_quito", "captureMethod": "manual"}))
        .await;
    let held = held["paymentIntentId"].as_str().unwrap();
    let (status, _, body) = market.pay(held, "pm_card_visa", Some(&account)).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("requires_capture")),
        "{body}"
    );
    let (status, _, body) = market
        .call(
            "/stripe_capture_payment",
            json!({"payment_intent_id": held, "amount": 25}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["amount"].to_string(), "25.00");
}

/// Puts `organizer` in the ledger with an account that can take charges (or not).
async fn organizer(ledger: &Ledger, organizer: &str, account: &str, ready: bool) {
    ledger
        .claim_organizer(organizer, "MX", None, None)
        .await
        .unwrap();
    let account = Account::from_value(&json!({"id": account, "charges_enabled": ready})).unwrap();
    ledger
        .set_organizer_account(organizer, None, &account, now())
        .await
        .unwrap();
}

#[tokio::test]
async fn create_refuses_what_no_organiser_can_take_before_stripe_and_calls_it_once_otherwise() {
    let app = spawn_app_with(|c| {
        c.connect.charge_type = Some(ChargeType::Destination);
        c.connect.fee =
            tmt_payments::payments::connect::FeePolicy::from_json(&json!({"percent": 4})).unwrap();
    })
    .await;
    app.mount_create().await;
    let ledger = app.ledger().await;
    organizer(&ledger, "org_ready", "acct_1Ready", true).await;
    organizer(&ledger, "org_waiting", "acct_1Waiting", false).await;
    organizer(&ledger, "org_gone", "acct_1Gone", true).await;
    let mut gone = event(
        "evt_gone",
        "account.application.deauthorized",
        json!({"id": "ca_1", "object": "application"}),
        now(),
    );
    gone["account"] = json!("acct_1Gone");
    assert_eq!(app.deliver(&gone).await.0, 200);
    let payment = |extra: Value| {
        let mut data = json!({"amount": 50, "currency": "mxn", "organizerId": "org_ready"});
        for (k, v) in extra.as_object().unwrap() {
            data[k] = v.clone();
        }
        data
    };
    for (extra, expected) in [
        (json!({"organizerId": null}), (400, "organizer_required")),
        (
            json!({"organizerId": "org_nobody"}),
            (400, "organizer_invalid"),
        ),
        (
            json!({"organizerId": "org nobody"}),
            (400, "organizer_invalid"),
        ),
        (json!({"tickets": 0}), (400, "tickets_invalid")),
        (json!({"tickets": 1001}), (400, "tickets_invalid")),
        (json!({"tickets": "2"}), (400, "tickets_invalid")),
        (json!({"feePaidBy": "platform"}), (400, "fee_invalid")),
        (
            json!({"organizerId": "org_waiting"}),
            (409, "organizer_not_ready"),
        ),
        (
            json!({"organizerId": "org_gone"}),
            (409, "organizer_not_ready"),
        ),
    ] {
        let (status, _, body) = app.create(payment(extra.clone())).await;
        assert_eq!(code(status, &body), expected, "{extra}");
    }
    let (status, _, body) = app
        .create(payment(json!({"organizerId": "org_waiting"})))
        .await;
    assert_eq!(
        refusal(status, &body),
        (
            409,
            "organizer_not_ready",
            "El organizador aún no puede recibir pagos"
        )
    );
    assert!(
        app.stripe_requests().await.is_empty(),
        "nothing reached Stripe"
    );

    // A payment an organiser can take: one Stripe call, the create.
    let (status, _, body) = app.create(payment(json!({"tickets": 3}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["applicationFee"].to_string(), "2.00");
    let requests = app.stripe_requests().await;
    assert_eq!(requests.len(), 1);
    let sent = form(&requests[0]);
    let has = |k: &str, v: &str| sent.contains(&(k.to_string(), v.to_string()));
    assert!(
        has("transfer_data[destination]", "acct_1Ready") && has("on_behalf_of", "acct_1Ready"),
        "{sent:?}"
    );
    assert!(
        has("application_fee_amount", "200") && has("metadata[tickets]", "3"),
        "{sent:?}"
    );
    assert!(requests[0].headers.get("stripe-account").is_none());

    let off = spawn_app().await;
    let (status, _, body) = off.create(payment(json!({}))).await;
    assert_eq!(code(status, &body), (409, "connect_disabled"));
    assert!(off.stripe_requests().await.is_empty());
}

#[tokio::test]
async fn a_direct_charges_create_and_reads_carry_stripe_account() {
    let app = spawn_app_with(|c| c.connect.charge_type = Some(ChargeType::Direct)).await;
    app.mount_create().await;
    let ledger = app.ledger().await;
    organizer(&ledger, "org_direct", "acct_1Direct", true).await;
    let (status, _, body) = app
        .create(json!({"amount": 50, "currency": "usd", "organizerId": "org_direct"}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["stripeAccount"], "acct_1Direct");
    assert!(
        body["data"]
            .get("applicationFee")
            .is_some_and(Value::is_number),
        "{body}"
    );
    let pi = created_id(&(status, Default::default(), body));
    let mut read = payment_intent(&pi, 5000, "usd", "requires_payment_method");
    read["metadata"]["organizer_id"] = json!("org_direct");
    app.mount_pi(read).await;
    let (status, _, body) = app.get_pi(&pi).await;
    assert_eq!(status, 200, "{body}");
    for request in app.stripe_requests().await {
        let account = request
            .headers
            .get("stripe-account")
            .map(|v| v.to_str().unwrap().to_string());
        assert_eq!(
            account.as_deref(),
            Some("acct_1Direct"),
            "{} {}",
            request.method,
            request.url
        );
    }
}
