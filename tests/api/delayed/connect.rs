//! The delayed methods for organisers (Stripe Connect): an OXXO voucher paid for a destination
//! charge pays the organiser; a direct charge's bank transfer has its Customer, its
//! instructions and its money on the organiser's account.

use serde_json::json;

use super::*;

#[tokio::test]
async fn an_oxxo_destination_charge_pays_the_organiser_once_the_voucher_is_paid() {
    let shop = Shop::start(&[
        ("CONNECT_CHARGE_TYPE", "destination"),
        ("PLATFORM_FEE_PERCENT", "5"),
    ])
    .await;
    let account = shop
        .ready_organizer("org_cdmx", json!({"country": "MX"}))
        .await;
    let created = shop
        .create(
            json!({"amount": "800.00", "currency": "mxn", "organizerId": "org_cdmx",
                       "paymentMethodTypes": ["oxxo"]}),
        )
        .await;
    let pi = id_of(&created);
    shop.confirm(&pi, OXXO).await;
    shop.platform.expect(&pi, "payment.awaiting_payment").await;
    let (status, _, paid) = shop.voucher(&pi, "pay_voucher").await;
    assert_eq!(status, 200, "{paid}");
    shop.told_exactly(&pi, &["payment.awaiting_payment", "payment.succeeded"])
        .await;
    let charges = shop
        .at_stripe(&format!("/v1/charges?payment_intent={pi}"), None)
        .await;
    let charge = &charges["data"][0];
    assert_eq!(charge["payment_method_details"]["type"], "oxxo");
    let transfer = shop
        .at_stripe(
            &format!("/v1/transfers/{}", charge["transfer"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(transfer["destination"], account.as_str());
    assert_eq!(shop.fee_of(charge).await["amount"], 4000);
    // Cash cannot go back, for an organiser either.
    let (status, _, body) = shop.refund(&pi).await;
    assert_eq!(code(status, &body), (409, "refund_not_supported"));
}

#[tokio::test]
async fn a_direct_charges_bank_transfer_lives_on_the_organisers_account() {
    let shop = Shop::start(&[("CONNECT_CHARGE_TYPE", "direct")]).await;
    let account = shop
        .ready_organizer("org_gdl", json!({"country": "MX"}))
        .await;
    let created = shop
        .create(
            json!({"amount": "300.00", "currency": "mxn", "organizerId": "org_gdl",
                       "paymentMethodTypes": ["customer_balance"],
                       "customerEmail": "luis@example.mx"}),
        )
        .await;
    assert_eq!(created["stripeAccount"], account.as_str());
    assert!(created["nextAction"]["clabe"].is_string(), "{created}");
    let pi = id_of(&created);
    let at_stripe = shop
        .at_stripe(&format!("/v1/payment_intents/{pi}"), Some(&account))
        .await;
    let customer = at_stripe["customer"].as_str().unwrap().to_string();
    // The Customer is the organiser's, unknown to the platform.
    shop.at_stripe(&format!("/v1/customers/{customer}"), Some(&account))
        .await;
    let platforms = shop.at_stripe("/v1/customers", None).await;
    assert_eq!(platforms["data"], json!([]));
    let kept = shop
        .ledger()
        .await
        .customer(&account, "luis@example.mx")
        .await;
    assert_eq!(kept.unwrap().as_deref(), Some(customer.as_str()));

    shop.platform.expect(&pi, "payment.awaiting_payment").await;
    let path = format!("/v1/test_helpers/customers/{customer}/fund_cash_balance");
    let form = [("amount", "30000"), ("currency", "mxn")];
    let (status, _, body) = shop
        .stripe(reqwest::Method::POST, &path, &form, Some(&account))
        .await;
    assert_eq!(status, 200, "{body}");
    shop.told_exactly(&pi, &["payment.awaiting_payment", "payment.succeeded"])
        .await;
    assert_eq!(shop.get(&pi).await["status"], "succeeded");
}
