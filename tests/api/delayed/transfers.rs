//! Bank transfers into the buyer's cash balance: one Customer per e-mail, the instructions in
//! create's answer, a transfer in two parts, an over-funded one whose rest is told to the
//! platform once and returned to the buyer once.

use serde_json::json;

use super::*;

/// A payment of `amount` `currency` by bank transfer for `email`; create's answer.
async fn transfer(shop: &Shop, amount: &str, currency: &str, email: &str) -> Value {
    shop.create(
        json!({"amount": amount, "currency": currency, "holdSeconds": 600,
                       "paymentMethodTypes": ["customer_balance"], "customerEmail": email}),
    )
    .await
}

async fn customer_of(shop: &Shop, pi: &str) -> String {
    let at_stripe = shop
        .at_stripe(&format!("/v1/payment_intents/{pi}"), None)
        .await;
    at_stripe["customer"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_transfer_in_two_parts() {
    let shop = Shop::start(&[]).await;
    let created = transfer(&shop, "500.00", "mxn", "Ana@Example.MX").await;
    let pi = id_of(&created);
    // The create confirmed it: its answer carries the SPEI instructions.
    let next = &created["nextAction"];
    assert_eq!(
        next["type"], "display_bank_transfer_instructions",
        "{created}"
    );
    assert_eq!(next["amountRemaining"].to_string(), "500.00");
    assert_eq!(next["clabe"].as_str().unwrap().len(), 18, "{next}");
    assert!(next["reference"].is_string(), "{next}");
    assert!(next["hostedUrl"].is_string(), "{next}");
    // The service's own deadline: 72 hours after the create.
    let expires = chrono::DateTime::parse_from_rfc3339(next["expiresAt"].as_str().unwrap())
        .unwrap()
        .timestamp();
    assert!((expires - now() - 72 * 3600).abs() < 120, "{next}");
    // The hold lasts until then.
    let hold = shop.ledger().await.hold_of(&pi).await.unwrap().unwrap();
    assert_eq!(hold.expires_ms / 1000, expires);

    let customer = customer_of(&shop, &pi).await;
    shop.platform.expect(&pi, "payment.awaiting_payment").await;
    shop.fund(&customer, 20_000, "mxn").await;
    let partly = shop.platform.expect(&pi, "payment.partially_funded").await;
    assert_eq!(
        partly["data"]["nextAction"]["amountRemaining"].to_string(),
        "300.00"
    );
    let got = shop.get(&pi).await;
    assert_eq!(got["nextAction"]["amountRemaining"].to_string(), "300.00");
    shop.fund(&customer, 30_000, "mxn").await;
    shop.told_exactly(
        &pi,
        &[
            "payment.awaiting_payment",
            "payment.partially_funded",
            "payment.succeeded",
        ],
    )
    .await;
    assert_eq!(shop.get(&pi).await["status"], "succeeded");

    // The same buyer again (the e-mail in any case): the same Customer, made once.
    let again = transfer(&shop, "100.00", "mxn", "ana@example.mx").await;
    assert_eq!(customer_of(&shop, &id_of(&again)).await, customer);
    let customers = shop.at_stripe("/v1/customers", None).await;
    assert_eq!(customers["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn an_over_funded_transfer_leaves_money_told_once_and_returned_once() {
    let shop = Shop::start(&[("EU_BANK_TRANSFER_COUNTRY", "DE")]).await;
    let created = transfer(&shop, "40.00", "eur", "jenny@example.com").await;
    let pi = id_of(&created);
    let next = &created["nextAction"];
    assert!(next["iban"].as_str().unwrap().starts_with("DE"), "{next}");
    assert!(next["bic"].is_string(), "{next}");
    let customer = customer_of(&shop, &pi).await;
    shop.fund(&customer, 4_250, "eur").await;
    shop.told_exactly(&pi, &["payment.awaiting_payment", "payment.succeeded"])
        .await;
    let unapplied = eventually("money without a payment told", PATIENCE * 2, || async {
        let told: Vec<Value> = shop
            .platform
            .acknowledged
            .lock()
            .unwrap()
            .iter()
            .filter(|n| n["type"] == "customer.unapplied_funds")
            .cloned()
            .collect();
        (!told.is_empty()).then_some(told)
    })
    .await;
    assert_eq!(unapplied.len(), 1, "{unapplied:?}");
    let data = &unapplied[0]["data"];
    assert_eq!(
        (
            &data["email"],
            data["amount"].to_string(),
            &data["currency"]
        ),
        (
            &json!("jenny@example.com"),
            "2.50".to_string(),
            &json!("eur")
        )
    );
    assert_eq!(data["customerId"], customer);

    let args = ["customers", "return-funds", "Jenny@example.com", "--json"];
    let run = || printed_json(&shop.cli(&args, &[]), 0);
    let returned = run();
    assert_eq!(returned.as_array().unwrap().len(), 1, "{returned}");
    assert_eq!(returned[0]["amount"].to_string(), "2.50");
    // Run again: the balance holds nothing more, so nothing more goes back.
    let again = run();
    assert_eq!(again, json!([]));
    let balance = shop
        .at_stripe(&format!("/v1/customers/{customer}/cash_balance"), None)
        .await;
    assert_eq!(balance["available"]["eur"], 0, "{balance}");
}

/// Money the platform was told no payment took, for `customer`: the notifications' data.
fn unapplied(shop: &Shop, customer: &str) -> Vec<Value> {
    shop.platform
        .acknowledged
        .lock()
        .unwrap()
        .iter()
        .filter(|n| n["type"] == "customer.unapplied_funds" && n["data"]["customerId"] == customer)
        .map(|n| n["data"].clone())
        .collect()
}

#[tokio::test]
async fn a_transfer_not_made_by_its_deadline_is_canceled_and_what_came_is_money_without_a_payment()
{
    let shop = Shop::start(&[]).await;
    // No seats held: the service's own deadline still ends the payment.
    let created = shop
        .create(json!({"amount": "500.00", "currency": "mxn",
                       "paymentMethodTypes": ["customer_balance"],
                       "customerEmail": "late@example.mx"}))
        .await;
    let pi = id_of(&created);
    let ledger = shop.ledger().await;
    let hold = ledger.hold_of(&pi).await.unwrap().unwrap();
    let deadline =
        chrono::DateTime::parse_from_rfc3339(created["nextAction"]["expiresAt"].as_str().unwrap())
            .unwrap();
    assert_eq!(hold.expires_ms, deadline.timestamp_millis());
    let customer = customer_of(&shop, &pi).await;
    shop.fund(&customer, 10_000, "mxn").await;
    shop.platform.expect(&pi, "payment.partially_funded").await;
    // The deadline passes.
    end_hold_now(&ledger, &pi).await;
    shop.reaches(&pi, "canceled").await;
    shop.told_exactly(
        &pi,
        &[
            "payment.awaiting_payment",
            "payment.partially_funded",
            "payment.canceled",
        ],
    )
    .await;
    // What it had received went back to the buyer's cash balance; a transfer after the
    // deadline stays there too. The platform is told of both, once each.
    let told = eventually("the first part told back", PATIENCE * 2, || async {
        let told = unapplied(&shop, &customer);
        (!told.is_empty()).then_some(told)
    })
    .await;
    assert_eq!(told[0]["amount"].to_string(), "100.00", "{told:?}");
    shop.fund(&customer, 40_000, "mxn").await;
    let told = eventually("the late transfer told", PATIENCE * 2, || async {
        let told = unapplied(&shop, &customer);
        (told.len() == 2).then_some(told)
    })
    .await;
    assert_eq!(told[1]["amount"].to_string(), "500.00", "{told:?}");
    assert_eq!(shop.get(&pi).await["status"], "canceled");
}
