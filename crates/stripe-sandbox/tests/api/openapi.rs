//! The sandbox's objects against Stripe's own description of them (`tests/fixtures/stripe/`):
//! every property a schema requires is there, every property it knows has the JSON type it
//! gives (nullable only where it says so, enums only with listed values), down through nested
//! objects; and every field of Stripe's published example object is present.

use std::sync::OnceLock;

use serde_json::Value;

use crate::helpers::*;

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/stripe/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn schemas() -> &'static Value {
    static SCHEMAS: OnceLock<Value> = OnceLock::new();
    SCHEMAS.get_or_init(|| fixture("schemas.json")["components"]["schemas"].clone())
}

/// Values this schema version (API 2023-08-16) predates: Stripe has since added them, and the
/// sandbox answers as the current API version does. Paths are written without list indexes.
const NEWER_THAN_THE_SCHEMA: &[(&str, &str)] = &[
    // An account made by `controller` properties that match no account type (since 2024).
    ("account.type", "none"),
    ("account_list.data.type", "none"),
];

/// `path` without its list indexes: `a.data[0].type` is `a.data.type`.
fn without_indexes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut inside = false;
    for c in path.chars() {
        match c {
            '[' => inside = true,
            ']' => inside = false,
            _ if !inside => out.push(c),
            _ => {}
        }
    }
    out
}

/// Checks `value` against `schema`; problems are pushed with their JSON path.
fn check(value: &Value, schema: &Value, path: &str, problems: &mut Vec<String>) {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap();
        // Schemas outside the vendored subset (reachable only through expandable ids) are not
        // checked.
        if let Some(target) = schemas().get(name) {
            check(value, target, path, problems);
        }
        return;
    }
    if value.is_null() {
        if schema["nullable"] != true {
            problems.push(format!("{path}: null, and the schema does not allow null"));
        }
        return;
    }
    if let Some(branches) = schema["anyOf"].as_array() {
        let fits = branches.iter().any(|b| {
            let mut inner = Vec::new();
            check(value, b, path, &mut inner);
            inner.is_empty()
        });
        if !fits {
            problems.push(format!("{path}: {value} fits none of anyOf"));
        }
        return;
    }
    if let Some(allowed) = schema["enum"].as_array() {
        let exempt = NEWER_THAN_THE_SCHEMA
            .iter()
            .any(|(p, v)| without_indexes(path).ends_with(p) && value == v);
        if !allowed.contains(value) && !exempt {
            problems.push(format!("{path}: {value} is not one of {allowed:?}"));
        }
    }
    let fits = match schema["type"].as_str() {
        None => true,
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean(),
        Some("array") => value.is_array(),
        Some("object") => value.is_object(),
        Some(other) => {
            problems.push(format!("{path}: unknown schema type {other}"));
            true
        }
    };
    if !fits {
        problems.push(format!("{path}: {value} is not of type {}", schema["type"]));
        return;
    }
    if let (Some(items), Some(schema_items)) = (value.as_array(), schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            check(item, schema_items, &format!("{path}[{i}]"), problems);
        }
    }
    if let Some(object) = value.as_object() {
        for required in schema["required"].as_array().into_iter().flatten() {
            let name = required.as_str().unwrap();
            if !object.contains_key(name) {
                problems.push(format!("{path}.{name}: required, and missing"));
            }
        }
        let properties = schema["properties"].as_object();
        for (name, v) in object {
            match properties.and_then(|p| p.get(name)) {
                Some(property) => check(v, property, &format!("{path}.{name}"), problems),
                None => {
                    if let Some(extra) =
                        schema.get("additionalProperties").filter(|e| e.is_object())
                    {
                        check(v, extra, &format!("{path}.{name}"), problems);
                    }
                }
            }
        }
    }
}

fn assert_fits(value: &Value, schema_name: &str) {
    let schema = schemas()
        .get(schema_name)
        .unwrap_or_else(|| panic!("no schema {schema_name}"));
    let mut problems = Vec::new();
    check(value, schema, schema_name, &mut problems);
    assert!(
        problems.is_empty(),
        "{schema_name} does not fit Stripe's schema:\n{}\n{value:#}",
        problems.join("\n")
    );
    if let Some(example) = fixture("examples.json").get(schema_name) {
        for key in example.as_object().unwrap().keys() {
            if (schema_name, key.as_str()) == ("charge", "refunds") {
                // Since API version 2022-11-15 a Charge has `refunds` only when expanded; the
                // example shows every expandable field.
                continue;
            }
            if (schema_name, key.as_str()) == ("payment_method", "card") && value["type"] != "card"
            {
                // The example is a card's; a PaymentMethod has the key of its own type.
                continue;
            }
            if (schema_name, key.as_str()) == ("customer_cash_balance_transaction", "funded")
                && value["type"] != "funded"
            {
                // The example is a `funded` one; a transaction has the key of its own type.
                continue;
            }
            if (schema_name, key.as_str()) == ("dispute", "payment_method_details")
                && value["reason"] == "debit_not_authorized"
            {
                // Stripe details disputes of cards, Klarna, PayPal and Amazon Pay; a SEPA
                // debit's dispute has no such details.
                continue;
            }
            assert!(
                value.get(key).is_some(),
                "{schema_name} lacks {key}, which Stripe's example has"
            );
        }
    }
}

#[test]
fn the_checker_finds_what_it_should() {
    let mut problems = Vec::new();
    let mut pi = fixture("examples.json")["payment_intent"].clone();
    check(&pi, &schemas()["payment_intent"], "pi", &mut problems);
    assert!(problems.is_empty(), "Stripe's own example: {problems:?}");
    pi.as_object_mut().unwrap().remove("currency");
    pi["amount"] = Value::from("5000");
    pi["status"] = Value::from("paid");
    pi["livemode"] = Value::Null;
    check(&pi, &schemas()["payment_intent"], "pi", &mut problems);
    let text = problems.join("\n");
    for expected in [
        "pi.currency: required",
        "pi.amount",
        "pi.status",
        "pi.livemode: null",
    ] {
        assert!(
            text.contains(expected),
            "{expected} not reported in:\n{text}"
        );
    }
}

#[tokio::test]
async fn every_object_the_sandbox_returns_fits_stripes_schemas() {
    let a = api(None).await;
    let created = a
        .create("amount=2500&currency=usd&metadata[order]=1&description=x&automatic_payment_methods[enabled]=true")
        .await;
    assert_fits(&created, "payment_intent");
    let paid = a.paid(2500, "pm_card_visa", "").await;
    assert_fits(&paid, "payment_intent");
    let id = paid["id"].as_str().unwrap();
    let (_, expanded) = a
        .get(&format!(
            "/v1/payment_intents/{id}?expand[]=latest_charge&expand[]=payment_method"
        ))
        .await;
    assert_fits(&expanded, "payment_intent");
    assert_fits(&expanded["latest_charge"], "charge");
    assert_fits(&expanded["payment_method"], "payment_method");
    let three_ds = s(&a.create("amount=2500&currency=usd").await["id"]).to_string();
    let (_, requires_action) = a
        .confirm(&three_ds, "payment_method=pm_card_authenticationRequired")
        .await;
    assert_eq!(requires_action["status"], "requires_action");
    assert_fits(&requires_action, "payment_intent");
    let (_, canceled) = a
        .intent_action(&three_ds, "cancel", "cancellation_reason=abandoned")
        .await;
    assert_fits(&canceled, "payment_intent");
    let declined = s(&a.create("amount=2500&currency=usd").await["id"]).to_string();
    let (status, error) = a
        .confirm(&declined, "payment_method=pm_card_visa_chargeDeclined")
        .await;
    assert_eq!(status, 402);
    assert_fits(&error["error"]["payment_intent"], "payment_intent");
    let (_, failed) = a
        .get(&format!("/v1/charges?payment_intent={declined}"))
        .await;
    assert_fits(&failed, "charge_list");
    assert_eq!(failed["data"][0]["status"], "failed");
    money_objects_fit(&a).await;
    for (path, schema) in [
        ("/v1/payment_intents", "payment_intent_list"),
        ("/v1/charges", "charge_list"),
        ("/v1/refunds", "refund_list"),
        ("/v1/disputes", "dispute_list"),
        ("/v1/events?limit=100", "event_list"),
    ] {
        list_fits(&a, path, schema).await;
    }
}

/// The list at `path` fits `schema`, and each of its items its own (an event's object too).
async fn list_fits(a: &Api, path: &str, schema: &str) {
    let list = a.get_ok(path).await;
    assert_fits(&list, schema);
    for item in list["data"].as_array().unwrap() {
        assert_fits(item, item["object"].as_str().unwrap());
        if item["object"] == "event" {
            let inner = &item["data"]["object"];
            assert_fits(inner, inner["object"].as_str().unwrap());
        }
    }
}

/// Refunds (succeeded, failed), disputes (open, won), manual capture (held, captured in part),
/// a bank debit in `processing`, card PaymentMethods from numbers and the 3-D Secure redirect.
async fn money_objects_fit(a: &Api) {
    let paid = a.paid(5000, "pm_card_visa", "").await;
    let refund = a
        .post_ok(
            "/v1/refunds",
            &format!(
                "payment_intent={}&amount=1000&reason=duplicate&metadata[k]=v",
                s(&paid["id"])
            ),
        )
        .await;
    assert_fits(&refund, "refund");
    let (_, charge) = a
        .get(&format!(
            "/v1/charges/{}?expand[]=refunds",
            s(&paid["latest_charge"])
        ))
        .await;
    assert_fits(&charge, "charge");
    assert_eq!(charge["refunds"]["data"][0]["id"], refund["id"]);

    let failing = a.paid(5000, "pm_card_refundFail", "").await;
    let (_, refund) = a.refund(s(&failing["id"]), "").await;
    let failed = a.wait_event("refund.failed", s(&refund["id"])).await;
    assert_fits(&failed, "refund");

    let disputed = a.paid(5000, "pm_card_createDispute", "").await;
    let dispute = a
        .dispute_of(&format!("charge={}", s(&disputed["latest_charge"])))
        .await;
    assert_fits(&dispute, "dispute");
    let (_, submitted) = a
        .update_dispute(
            s(&dispute["id"]),
            "evidence[uncategorized_text]=winning_evidence",
        )
        .await;
    assert_fits(&submitted, "dispute");
    let won = a
        .wait_event("charge.dispute.funds_reinstated", s(&dispute["id"]))
        .await;
    assert_fits(&won, "dispute");
    assert_fits(&a.charge_of(&disputed).await, "charge");

    let held = a.paid(5000, "pm_card_visa", "&capture_method=manual").await;
    assert_eq!(held["status"], "requires_capture");
    assert_fits(&held, "payment_intent");
    assert_fits(&a.charge_of(&held).await, "charge");
    let (_, captured) = a
        .intent_action(s(&held["id"]), "capture", "amount_to_capture=2000")
        .await;
    assert_fits(&captured, "payment_intent");
    let charge = a.charge_of(&held).await;
    assert_eq!(charge["amount_captured"], 2000);
    assert_fits(&charge, "charge");

    let bank = a.bank_debit(5000).await;
    assert_eq!(bank["status"], "processing");
    assert_fits(&bank, "payment_intent");
    assert_fits(&a.charge_of(&bank).await, "charge");
    assert_fits(&a.payment_method_of(&bank).await, "payment_method");

    let js = a.with_key("pk_test_schema");
    let pm = js
        .post_ok(
            "/v1/payment_methods",
            "type=card&card[number]=4000002760003184&card[exp_month]=3&card[exp_year]=2042&card[cvc]=314",
        )
        .await;
    assert_fits(&pm, "payment_method");
    let pi = a.create("amount=5000&currency=usd").await;
    let (_, redirected) = a
        .confirm(
            s(&pi["id"]),
            &format!(
                "payment_method={}&return_url=https://shop.example/back",
                s(&pm["id"])
            ),
        )
        .await;
    assert_eq!(redirected["next_action"]["type"], "redirect_to_url");
    assert_fits(&redirected, "payment_intent");
}

/// Every object of the delayed methods: OXXO vouchers (waiting, paid, expired), customers,
/// bank transfer instructions (SPEI, SEPA) funded in part and in full, cash balances and their
/// transactions, a refund from the cash balance, SEPA debits (processing, failed, disputed),
/// their PaymentMethods and charges, the new lists, and every event with its object.
#[tokio::test]
async fn the_delayed_methods_objects_fit_stripes_schemas() {
    let a = api(None).await;
    let voucher = a.oxxo(20000, "ana@example.com", "").await;
    assert_fits(&voucher, "payment_intent");
    assert_fits(&a.payment_method_of(&voucher).await, "payment_method");
    let path = |pi: &serde_json::Value, what: &str| {
        format!("/_sandbox/payment_intents/{}/{what}", s(&pi["id"]))
    };
    let paid = a.post_ok(&path(&voucher, "pay_voucher"), "").await;
    assert_fits(&paid, "payment_intent");
    assert_fits(&a.charge_of(&paid).await, "charge");
    let lapsed = a.oxxo(20000, "ana@example.com", "").await;
    assert_fits(
        &a.post_ok(&path(&lapsed, "expire_voucher"), "").await,
        "payment_intent",
    );

    let customer = a.customer("ana@example.com").await;
    assert_fits(&customer, "customer");
    let cus = s(&customer["id"]).to_string();
    let spei = a.transfer(&cus, 10000, "mxn").await;
    assert_fits(&spei, "payment_intent");
    let funded = a.fund(&cus, 4000, "mxn", "&reference=x").await;
    assert_fits(&funded, "customer_cash_balance_transaction");
    let part = a
        .get_ok(&format!("/v1/payment_intents/{}", s(&spei["id"])))
        .await;
    assert_fits(&part, "payment_intent");
    a.fund(&cus, 9000, "mxn", "").await;
    let done = a
        .get_ok(&format!("/v1/payment_intents/{}", s(&spei["id"])))
        .await;
    assert_fits(&done, "payment_intent");
    assert_fits(&a.charge_of(&done).await, "charge");
    assert_fits(&a.payment_method_of(&done).await, "payment_method");
    let sepa_transfer = a.transfer(&cus, 10000, "eur").await;
    assert_fits(&sepa_transfer, "payment_intent");
    a.fund(&cus, 500, "eur", "").await;
    assert_fits(
        &a.get_ok(&format!("/v1/customers/{cus}/cash_balance")).await,
        "cash_balance",
    );
    assert_fits(
        &a.get_ok(&format!("/v1/customers/{cus}?expand[]=cash_balance"))
            .await,
        "customer",
    );
    let refund = a
        .post_ok(
            "/v1/refunds",
            &format!("customer={cus}&origin=customer_balance&amount=3000&currency=mxn"),
        )
        .await;
    assert_fits(&refund, "refund");
    assert_fits(
        &a.wait_event("refund.updated", s(&refund["id"])).await,
        "refund",
    );

    let (_, debit) = a.sepa("AT611904300234573201", 4200, "").await;
    assert_fits(&debit, "payment_intent");
    assert_fits(&a.charge_of(&debit).await, "charge");
    assert_fits(&a.payment_method_of(&debit).await, "payment_method");
    let (_, failing) = a.sepa("AT861904300235473202", 4200, "").await;
    let failed = a
        .wait_event("payment_intent.payment_failed", s(&failing["id"]))
        .await;
    assert_fits(&failed, "payment_intent");
    assert_fits(&a.charge_of(&failing).await, "charge");
    let (_, disputed) = a.sepa("AT591904300235473203", 4200, "").await;
    let dispute = a
        .dispute_of(&format!("payment_intent={}", s(&disputed["id"])))
        .await;
    assert_fits(&dispute, "dispute");
    a.wait_event("payment_intent.succeeded", s(&debit["id"]))
        .await;

    for (path, schema) in [
        ("/v1/customers".to_string(), "customer_list"),
        (
            format!("/v1/customers/{cus}/cash_balance_transactions"),
            "customer_cash_balance_transaction_list",
        ),
        ("/v1/events?limit=100".to_string(), "event_list"),
    ] {
        list_fits(&a, &path, schema).await;
    }
}

/// Connect's objects: accounts (new, onboarded, deleted, of every form), Account Links,
/// destination and direct charges with their transfers, reversals, application fees and fee
/// refunds, the payment and refund a transfer makes on its account, a connected account's
/// customer and its bank transfer, Connect's events and lists.
#[tokio::test]
async fn connect_objects_fit_stripes_schemas() {
    let receiver = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    let target = stripe_sandbox::WebhookTarget::new(receiver.uri(), "whsec_schema".into());
    let a = api(Some(target)).await;
    let express = a
        .post_ok(
            "/v1/accounts",
            "type=express&country=MX&email=o%40example.com&business_type=company\
             &business_profile[url]=https://o.example&metadata[k]=v\
             &capabilities[card_payments][requested]=true&capabilities[transfers][requested]=true",
        )
        .await;
    assert_fits(&express, "account");
    let org = s(&express["id"]).to_string();
    for form in [
        "type=standard",
        "type=custom",
        "controller[stripe_dashboard][type]=none",
    ] {
        assert_fits(&a.post_ok("/v1/accounts", form).await, "account");
    }
    let link = a
        .post_ok(
            "/v1/account_links",
            &format!(
                "account={org}&type=account_onboarding&return_url=https://o.example/r\
                 &refresh_url=https://o.example/f"
            ),
        )
        .await;
    assert_fits(&link, "account_link");
    let onboarded = a
        .post_ok(
            &format!("/_sandbox/accounts/{org}/onboard"),
            "outcome=complete",
        )
        .await;
    assert_fits(&onboarded, "account");
    assert_fits(&onboarded["external_accounts"]["data"][0], "bank_account");
    let pi = a
        .paid(
            4000,
            "pm_card_visa",
            &format!(
                "&transfer_data[destination]={org}&application_fee_amount=400&on_behalf_of={org}"
            ),
        )
        .await;
    assert_fits(&pi, "payment_intent");
    let charge = a.charge_of(&pi).await;
    assert_fits(&charge, "charge");
    let refund = a
        .post_ok(
            "/v1/refunds",
            &format!(
                "payment_intent={}&amount=1000&refund_application_fee=true&reverse_transfer=true",
                s(&pi["id"])
            ),
        )
        .await;
    assert_fits(&refund, "refund");
    let transfer = a
        .get_ok(&format!("/v1/transfers/{}", s(&charge["transfer"])))
        .await;
    assert_fits(&transfer, "transfer");
    assert_fits(&transfer["reversals"]["data"][0], "transfer_reversal");
    let reversal = a
        .post_ok(
            &format!("/v1/transfers/{}/reversals", s(&transfer["id"])),
            "amount=500&refund_application_fee=true&metadata[k]=v",
        )
        .await;
    assert_fits(&reversal, "transfer_reversal");
    let fee = a
        .get_ok(&format!(
            "/v1/application_fees/{}",
            s(&charge["application_fee"])
        ))
        .await;
    assert_fits(&fee, "application_fee");
    let fee_refund = a
        .post_ok(
            &format!("/v1/application_fees/{}/refunds", s(&fee["id"])),
            "amount=10&metadata[k]=v",
        )
        .await;
    assert_fits(&fee_refund, "fee_refund");
    let on_org = a.on(&org);
    let payment = on_org
        .get_ok(&format!(
            "/v1/charges/{}?expand[]=refunds",
            s(&transfer["destination_payment"])
        ))
        .await;
    assert_fits(&payment, "charge");
    assert_fits(&payment["refunds"]["data"][0], "refund");
    let direct = on_org
        .paid(2000, "pm_card_visa", "&application_fee_amount=100")
        .await;
    assert_fits(&direct, "payment_intent");
    assert_fits(&on_org.charge_of(&direct).await, "charge");
    // A direct charge by bank transfer: the account's customer, its cash balance and events.
    let buyer = on_org.customer("buyer@example.com").await;
    assert_fits(&buyer, "customer");
    let cus = s(&buyer["id"]);
    let owed = on_org
        .transfer_with(cus, 10000, "mxn", "&application_fee_amount=500")
        .await;
    assert_fits(&owed, "payment_intent");
    assert_fits(
        &on_org.fund(cus, 10500, "mxn", "").await,
        "customer_cash_balance_transaction",
    );
    let funded = on_org
        .get_ok(&format!("/v1/payment_intents/{}", s(&owed["id"])))
        .await;
    assert_fits(&funded, "payment_intent");
    assert_fits(&on_org.charge_of(&funded).await, "charge");
    assert_fits(
        &on_org
            .get_ok(&format!("/v1/customers/{cus}/cash_balance"))
            .await,
        "cash_balance",
    );
    a.post_ok(
        "/v1/transfers",
        &format!("amount=300&currency=usd&destination={org}&description=d&metadata[k]=v"),
    )
    .await;
    for (path, schema) in [
        ("/v1/accounts", "account_list"),
        ("/v1/transfers", "transfer_list"),
        (
            &*format!("/v1/transfers/{}/reversals", s(&transfer["id"])),
            "transfer_reversal_list",
        ),
        ("/v1/application_fees", "application_fee_list"),
        (
            &*format!("/v1/application_fees/{}/refunds", s(&fee["id"])),
            "fee_refund_list",
        ),
    ] {
        assert_fits(&a.get_ok(path).await, schema);
    }
    let deleted = a
        .call(
            reqwest::Method::DELETE,
            &format!(
                "/v1/accounts/{}",
                s(&a.post_ok("/v1/accounts", "type=custom").await["id"])
            ),
            "",
            None,
        )
        .await
        .2;
    assert_fits(&deleted, "deleted_account");
    let mut events = Vec::new();
    for lister in [&a, &on_org] {
        let listed = lister.get_ok("/v1/events?limit=100").await;
        assert_fits(&listed, "event_list");
        events.extend(listed["data"].as_array().unwrap().iter().cloned());
    }
    a.post_ok(&format!("/_sandbox/accounts/{org}/deauthorize"), "")
        .await;
    let deauthorized = eventually("the deauthorisation delivered", || async {
        receiver
            .received_requests()
            .await?
            .iter()
            .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap())
            .find(|e| e["type"] == "account.application.deauthorized")
    })
    .await;
    events.push(deauthorized);
    let seen: Vec<&str> = events.iter().map(|e| s(&e["type"])).collect();
    for wanted in [
        "account.updated",
        "transfer.created",
        "transfer.reversed",
        "application_fee.created",
        "application_fee.refunded",
        "payment_intent.succeeded",
        "account.application.deauthorized",
        "customer_cash_balance_transaction.created",
        "cash_balance.funds_available",
    ] {
        assert!(seen.contains(&wanted), "{wanted} not among {seen:?}");
    }
    for event in &events {
        assert_fits(event, "event");
        let inner = &event["data"]["object"];
        assert_fits(inner, s(&inner["object"]));
    }
}

/// The balance's objects: balance transactions of every type the sandbox makes (charges,
/// refunds and their failure, disputes and their reversal, Connect's transfers, payments,
/// reversals, application fees and their refunds, a failed debit, payouts and their failure and
/// cancelation), payouts automatic and manual, the balance, their lists and the payout events.
#[tokio::test]
async fn balance_objects_fit_stripes_schemas() {
    let a = api(None).await;
    let paid = a.paid(5000, "pm_card_visa", "").await;
    a.refund(s(&paid["id"]), "&amount=1000").await;
    let failing = a.paid(5000, "pm_card_refundFail", "").await;
    let (_, refund) = a.refund(s(&failing["id"]), "").await;
    a.wait_event("refund.failed", s(&refund["id"])).await;
    let disputed = a.paid(5000, "pm_card_createDispute", "").await;
    let dispute = a
        .dispute_of(&format!("charge={}", s(&disputed["latest_charge"])))
        .await;
    a.win_dispute(&dispute).await;
    let (_, debit) = a.sepa("AT861904300235473202", 4200, "").await;
    a.wait_event("payment_intent.payment_failed", s(&debit["id"]))
        .await;
    a.paid(2000, "pm_card_visa", "&currency=mxn").await;
    let org = a.onboarded_in("MX").await;
    let pi = a
        .paid(
            4000,
            "pm_card_visa",
            &format!("&transfer_data[destination]={org}&application_fee_amount=400"),
        )
        .await;
    a.post_ok(
        "/v1/refunds",
        &format!(
            "payment_intent={}&amount=1000&refund_application_fee=true&reverse_transfer=true",
            s(&pi["id"])
        ),
    )
    .await;
    let failed = a
        .post_ok("/_sandbox/payouts", "failure_code=could_not_process")
        .await;
    assert_fits(&failed["data"][0], "payout");
    a.post_ok("/_sandbox/clock", "advance=172800").await;
    let manual = a.post_ok("/v1/payouts", "amount=100&currency=usd").await;
    assert_fits(&manual, "payout");
    let canceled = a
        .post_ok(&format!("/v1/payouts/{}/cancel", s(&manual["id"])), "")
        .await;
    assert_fits(&canceled, "payout");
    let automatic = a.post_ok("/_sandbox/payouts", "").await;
    assert_fits(&automatic["data"][0], "payout");
    let on_org = a.on(&org);
    on_org.post_ok("/_sandbox/payouts", "").await;
    for lister in [&a, &on_org] {
        let txns = lister
            .get_ok("/v1/balance_transactions?limit=100&expand[]=data.source")
            .await;
        assert_fits(&txns, "balance_transaction_list");
        let types: Vec<&str> = txns["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| s(&t["type"]))
            .collect();
        for t in txns["data"].as_array().unwrap() {
            assert_fits(t, "balance_transaction");
            // Expanded where the source is the account's own (a fee refund is the platform's).
            if t["source"].is_object() {
                assert_fits(&t["source"], s(&t["source"]["object"]));
            }
        }
        assert_fits(&lister.get_ok("/v1/balance").await, "balance");
        let payouts = lister.get_ok("/v1/payouts").await;
        assert_fits(&payouts, "payout_list");
        let events = lister.get_ok("/v1/events?type=payout.*&limit=100").await;
        assert!(!events["data"].as_array().unwrap().is_empty());
        for event in events["data"].as_array().unwrap() {
            assert_fits(event, "event");
            assert_fits(&event["data"]["object"], "payout");
        }
        if lister.account.is_none() {
            for wanted in [
                "charge",
                "refund",
                "refund_failure",
                "adjustment",
                "payment_failure_refund",
                "transfer",
                "transfer_refund",
                "application_fee",
                "application_fee_refund",
                "payout",
                "payout_failure",
                "payout_cancel",
            ] {
                assert!(types.contains(&wanted), "{wanted} not among {types:?}");
            }
        } else {
            for wanted in [
                "payment",
                "payment_refund",
                "application_fee_refund",
                "payout",
            ] {
                assert!(types.contains(&wanted), "{wanted} not among {types:?}");
            }
        }
    }
}
