//! Customers, and bank transfers into their cash balance, through the HTTP surface: the
//! instructions (a CLABE, an IBAN), Stripe's `fund_cash_balance` test helper paying in two
//! parts, paying too much, paying for a canceled payment, reconciliation by reference, money
//! returned from the cash balance, and Stripe's rules.

use serde_json::Value;

use crate::helpers::*;

fn instructions(pi: &Value) -> &Value {
    assert_eq!(
        (s(&pi["status"]), s(&pi["next_action"]["type"])),
        ("requires_action", "display_bank_transfer_instructions"),
        "{pi}"
    );
    &pi["next_action"]["display_bank_transfer_instructions"]
}

/// Stripe's test helper, answered as it comes.
async fn fund_raw(a: &Api, customer: &str, form: &str) -> (u16, Value) {
    a.post(
        &format!("/v1/test_helpers/customers/{customer}/fund_cash_balance"),
        form,
    )
    .await
}

async fn retrieve(a: &Api, pi: &Value) -> Value {
    a.get_ok(&format!("/v1/payment_intents/{}", s(&pi["id"])))
        .await
}

/// The types of the customer's cash balance transactions and their amounts, newest first.
async fn ledger(a: &Api, customer: &str) -> Vec<(String, i64, i64)> {
    let list = a
        .get_ok(&format!(
            "/v1/customers/{customer}/cash_balance_transactions?limit=100"
        ))
        .await;
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                s(&t["type"]).to_string(),
                t["net_amount"].as_i64().unwrap(),
                t["ending_balance"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn customers_are_created_listed_by_email_and_updated() {
    let a = api(None).await;
    let ana = a.customer("ana@example.com").await;
    assert!(s(&ana["id"]).starts_with("cus_"));
    assert_eq!(
        (s(&ana["object"]), s(&ana["email"]), s(&ana["name"])),
        ("customer", "ana@example.com", "Ana López")
    );
    let again = a.customer("ana@example.com").await;
    a.customer("pedro@example.com").await;
    let (_, listed) = a.get("/v1/customers?email=ana@example.com").await;
    assert_eq!(ids(&listed), [s(&again["id"]), s(&ana["id"])]);
    let (_, page) = a
        .get(&format!(
            "/v1/customers?email=ana@example.com&limit=1&starting_after={}",
            s(&again["id"])
        ))
        .await;
    assert_eq!(
        (ids(&page), page["has_more"].as_bool()),
        (vec![s(&ana["id"]).to_string()], Some(false))
    );
    assert_eq!(
        ids(&a.get_ok("/v1/customers?email=ANA@example.com").await).len(),
        0,
        "case-sensitive"
    );

    let updated = a
        .post_ok(
            &format!("/v1/customers/{}", s(&ana["id"])),
            "name=Ana+María&metadata[buyer]=7&phone=",
        )
        .await;
    assert_eq!(
        (s(&updated["name"]), s(&updated["metadata"]["buyer"])),
        ("Ana María", "7")
    );
    assert_eq!(
        a.get_ok(&format!("/v1/customers/{}", s(&ana["id"]))).await,
        updated
    );
    assert_eq!(
        a.event_types(s(&ana["id"])).await,
        ["customer.created", "customer.updated"]
    );
    let expanded = a
        .get_ok(&format!(
            "/v1/customers/{}?expand[]=cash_balance",
            s(&ana["id"])
        ))
        .await;
    assert_eq!(expanded["cash_balance"]["available"], Value::Null);

    assert_eq!(
        code_of(&a.post("/v1/customers", "email=ana").await),
        (400, "email_invalid")
    );
    assert_eq!(
        code_of(&a.get("/v1/customers/cus_missing").await),
        (404, "resource_missing")
    );
}

#[tokio::test]
async fn a_spei_transfer_arrives_in_two_parts() {
    let a = api(None).await;
    let customer = a.customer("ana@example.com").await;
    let cus = s(&customer["id"]);
    let pi = a.transfer(cus, 10000, "mxn").await;
    let given = instructions(&pi).clone();
    assert_eq!(
        (
            given["amount_remaining"].as_i64(),
            s(&given["currency"]),
            s(&given["type"])
        ),
        (Some(10000), "mxn", "mx_bank_transfer")
    );
    let address = &given["financial_addresses"][0];
    assert_eq!(
        (s(&address["type"]), address["supported_networks"].clone()),
        ("spei", serde_json::json!(["spei"]))
    );
    let clabe = s(&address["spei"]["clabe"]);
    assert_eq!(clabe.len(), 18, "{clabe}");
    let reference = s(&given["reference"]).to_string();
    assert_eq!(reference.len(), 7);
    // The same customer gets the same account for every payment.
    let other = a.transfer(cus, 1500, "mxn").await;
    assert_eq!(
        instructions(&other)["financial_addresses"][0]["spei"]["clabe"],
        clabe
    );
    a.intent_action(s(&other["id"]), "cancel", "").await;
    let html = reqwest::get(s(&given["hosted_instructions_url"]))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(clabe) && html.contains("100.00 MXN") && html.contains(&reference),
        "{html}"
    );

    let funded = a
        .fund(cus, 4000, "mxn", &format!("&reference={reference}"))
        .await;
    assert_eq!(
        (s(&funded["type"]), funded["net_amount"].as_i64()),
        ("funded", Some(4000))
    );
    assert_eq!(
        funded["funded"]["bank_transfer"]["reference"],
        reference.as_str()
    );
    let part = retrieve(&a, &pi).await;
    assert_eq!(instructions(&part)["amount_remaining"], 6000);
    assert_eq!(a.cash(cus, "mxn").await, 0);
    let html = reqwest::get(s(&given["hosted_instructions_url"]))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("60.00 MXN"), "{html}");

    a.fund(cus, 6000, "mxn", "").await;
    let paid = retrieve(&a, &pi).await;
    assert_eq!(
        (s(&paid["status"]), paid["amount_received"].as_i64()),
        ("succeeded", Some(10000))
    );
    let charge = a.charge_of(&paid).await;
    assert_eq!(
        (
            s(&charge["payment_method_details"]["type"]),
            s(&charge["customer"])
        ),
        ("customer_balance", cus)
    );
    assert_eq!(
        a.event_types(s(&pi["id"])).await,
        [
            "payment_intent.created",
            "payment_intent.requires_action",
            "payment_intent.partially_funded",
            "payment_intent.succeeded"
        ]
    );
    let expected: Vec<(String, i64, i64)> = [
        ("applied_to_payment", -6000, 0),
        ("funded", 6000, 6000),
        ("applied_to_payment", -4000, 0),
        ("funded", 4000, 4000),
    ]
    .iter()
    .map(|(t, n, e)| (t.to_string(), *n, *e))
    .collect();
    assert_eq!(ledger(&a, cus).await, expected);
    let (_, events) = a.get("/v1/events?type=cash_balance.funds_available").await;
    assert_eq!(types(&events).len(), 0, "nothing was left over");
}

#[tokio::test]
async fn an_over_funded_transfer_leaves_the_rest_in_the_cash_balance() {
    let a = api(None).await;
    let customer = a.customer("jenny@example.com").await;
    let cus = s(&customer["id"]);
    let pi = a.transfer(cus, 10000, "eur").await;
    let address = &instructions(&pi)["financial_addresses"][0];
    assert_eq!(
        (s(&address["type"]), s(&address["iban"]["country"])),
        ("iban", "ES")
    );
    let iban = s(&address["iban"]["iban"]);
    assert!(iban.starts_with("ES") && iban.len() == 24, "{iban}");
    assert_eq!(s(&address["iban"]["bic"]).len(), 8);
    assert_eq!(instructions(&pi)["reference"].as_str().unwrap().len(), 12);

    let funded = a.fund(cus, 15000, "eur", "").await;
    assert_eq!(
        funded["funded"]["bank_transfer"]["type"],
        "eu_bank_transfer"
    );
    assert_eq!(retrieve(&a, &pi).await["status"], "succeeded");
    assert_eq!(a.cash(cus, "eur").await, 5000);
    let (_, events) = a.get("/v1/events?type=cash_balance.funds_available").await;
    assert_eq!(types(&events).len(), 1);
    assert_eq!(
        events["data"][0]["data"]["object"]["available"]["eur"],
        5000
    );
    let (_, created) = a
        .get("/v1/events?type=customer_cash_balance_transaction.created")
        .await;
    assert_eq!(types(&created).len(), 2, "funded, then applied");

    // A later payment takes what the balance holds at once.
    let next = a.transfer(cus, 3000, "eur").await;
    assert_eq!(next["status"], "succeeded", "{next}");
    assert_eq!(a.cash(cus, "eur").await, 2000);
}

#[tokio::test]
async fn money_for_a_canceled_payment_stays_in_the_cash_balance() {
    let a = api(None).await;
    let cus = s(&a.customer("ana@example.com").await["id"]).to_string();
    let pi = a.transfer(&cus, 5000, "mxn").await;
    let reference = s(&instructions(&pi)["reference"]).to_string();
    a.fund(&cus, 2000, "mxn", "").await;
    // Canceled after a first part: that part goes back to the balance.
    let (_, canceled) = a.intent_action(s(&pi["id"]), "cancel", "").await;
    assert_eq!(canceled["status"], "canceled");
    assert_eq!(a.cash(&cus, "mxn").await, 2000);
    assert_eq!(ledger(&a, &cus).await[0].0, "unapplied_from_payment");
    // A transfer for the canceled payment, naming it, stays too.
    a.fund(&cus, 3000, "mxn", &format!("&reference={reference}"))
        .await;
    assert_eq!(a.cash(&cus, "mxn").await, 5000);
    assert_eq!(retrieve(&a, &pi).await["status"], "canceled");
    let (_, events) = a.get("/v1/events?type=cash_balance.funds_available").await;
    assert_eq!(types(&events).len(), 2);
}

#[tokio::test]
async fn funds_go_by_reference_then_to_the_exact_amount_then_to_the_oldest() {
    let a = api(None).await;
    let cus = s(&a.customer("ana@example.com").await["id"]).to_string();
    let older = a.transfer(&cus, 5000, "mxn").await;
    let newer = a.transfer(&cus, 5000, "mxn").await;
    let reference = s(&instructions(&newer)["reference"]).to_string();
    a.fund(&cus, 5000, "mxn", &format!("&reference={reference}"))
        .await;
    assert_eq!(retrieve(&a, &newer).await["status"], "succeeded");
    assert_eq!(
        instructions(&retrieve(&a, &older).await)["amount_remaining"],
        5000
    );

    let big = a.transfer(&cus, 8000, "mxn").await;
    let small = a.transfer(&cus, 3000, "mxn").await;
    // 3000 is exactly what the newest waits for.
    a.fund(&cus, 3000, "mxn", "").await;
    assert_eq!(retrieve(&a, &small).await["status"], "succeeded");
    // Without a reference or an exact match: the oldest first, the next in part.
    a.fund(&cus, 7000, "mxn", "").await;
    assert_eq!(retrieve(&a, &older).await["status"], "succeeded");
    assert_eq!(
        instructions(&retrieve(&a, &big).await)["amount_remaining"],
        6000
    );
    assert_eq!(a.cash(&cus, "mxn").await, 0);
}

#[tokio::test]
async fn the_cash_balance_is_returned_by_a_refund() {
    let a = api(None).await;
    let cus = s(&a.customer("jenny@example.com").await["id"]).to_string();
    a.fund(&cus, 5000, "eur", "").await;
    let form = |amount: i64| {
        format!("customer={cus}&origin=customer_balance&amount={amount}&currency=eur")
    };
    assert_eq!(
        code_of(&a.post("/v1/refunds", &form(5001)).await),
        (400, "amount_too_large")
    );
    let refund = a
        .post_ok(
            "/v1/refunds",
            &format!("{}&metadata[why]=overpaid", form(2000)),
        )
        .await;
    assert_eq!(
        (
            s(&refund["status"]),
            refund["amount"].as_i64(),
            s(&refund["customer"])
        ),
        ("pending", Some(2000), cus.as_str())
    );
    assert_eq!(
        (refund["charge"].clone(), refund["payment_intent"].clone()),
        (Value::Null, Value::Null)
    );
    assert_eq!(
        refund["next_action"]["display_details"]["email_sent"]["email_sent_to"],
        "jenny@example.com"
    );
    assert_eq!(a.cash(&cus, "eur").await, 3000);
    assert_eq!(
        ledger(&a, &cus).await[0],
        ("return_initiated".to_string(), -2000, 3000)
    );
    let done = a.wait_event("refund.updated", s(&refund["id"])).await;
    assert_eq!(
        (s(&done["status"]), done["next_action"].clone()),
        ("succeeded", Value::Null)
    );
    assert_eq!(
        a.event_types(s(&refund["id"])).await,
        ["refund.created", "refund.updated"]
    );

    // Without an e-mail to ask for the bank account, Stripe cannot return the money.
    let anonymous = s(&a.post_ok("/v1/customers", "name=Nadie").await["id"]).to_string();
    a.fund(&anonymous, 1000, "eur", "").await;
    let form = format!("customer={anonymous}&origin=customer_balance&amount=1000&currency=eur");
    assert_eq!(
        code_of(&a.post("/v1/refunds", &form).await),
        (400, "parameter_missing")
    );
    a.post_ok(
        "/v1/refunds",
        &format!("{form}&instructions_email=nadie@example.com"),
    )
    .await;
    assert_eq!(a.cash(&anonymous, "eur").await, 0);
}

#[tokio::test]
async fn bank_transfers_take_what_stripe_takes() {
    let a = api(None).await;
    let cus = s(&a.customer("ana@example.com").await["id"]).to_string();
    let form = |currency: &str, extra: &str| {
        format!(
            "amount=5000&currency={currency}&confirm=true&payment_method_types[]=customer_balance\
             &payment_method_data[type]=customer_balance{extra}"
        )
    };
    let funding = "&payment_method_options[customer_balance][funding_type]=bank_transfer";
    let mx = "&payment_method_options[customer_balance][bank_transfer][type]=mx_bank_transfer";
    let eu = "&payment_method_options[customer_balance][bank_transfer][type]=eu_bank_transfer";
    let with_customer = format!("&customer={cus}");
    for (form, code, param) in [
        (
            form("mxn", &format!("{funding}{mx}")),
            "parameter_missing",
            "customer",
        ),
        (
            form("mxn", &with_customer),
            "parameter_missing",
            "payment_method_options[customer_balance][funding_type]",
        ),
        (
            form("mxn", &format!("{with_customer}{funding}")),
            "parameter_missing",
            "payment_method_options[customer_balance][bank_transfer][type]",
        ),
        (
            form("usd", &format!("{with_customer}{funding}{mx}")),
            "payment_intent_invalid_parameter",
            "currency",
        ),
        (
            form("eur", &format!("{with_customer}{funding}{mx}")),
            "payment_intent_invalid_parameter",
            "payment_method_options[customer_balance][bank_transfer][type]",
        ),
        (
            form("eur", &format!("{with_customer}{funding}{eu}")),
            "parameter_missing",
            "payment_method_options[customer_balance][bank_transfer][eu_bank_transfer][country]",
        ),
        (
            form(
                "mxn",
                &format!("{with_customer}{funding}{mx}&capture_method=manual"),
            ),
            "payment_intent_invalid_parameter",
            "capture_method",
        ),
        (
            form("mxn", &format!("{funding}{mx}&customer=cus_missing")),
            "resource_missing",
            "customer",
        ),
    ] {
        let (status, body) = a.post("/v1/payment_intents", &form).await;
        assert_eq!(
            (
                status,
                s(&body["error"]["code"]),
                s(&body["error"]["param"])
            ),
            (400, code, param),
            "{form}: {body}"
        );
    }
    assert_eq!(
        code_of(&fund_raw(&a, &cus, "amount=100&currency=usd").await).0,
        400
    );
    assert_eq!(
        code_of(&fund_raw(&a, &cus, "amount=0&currency=mxn").await).0,
        400
    );
    assert_eq!(
        code_of(&fund_raw(&a, &cus, "currency=mxn").await),
        (400, "parameter_missing")
    );
    assert_eq!(
        code_of(&fund_raw(&a, "cus_missing", "amount=100&currency=mxn").await),
        (404, "resource_missing")
    );
    // A payment funded in part keeps its instructions: it cannot be confirmed again.
    let pi = a.transfer(&cus, 5000, "mxn").await;
    a.fund(&cus, 1000, "mxn", "").await;
    let again = a.confirm(s(&pi["id"]), "").await;
    assert_eq!(code_of(&again), (400, "payment_intent_unexpected_state"));
}
