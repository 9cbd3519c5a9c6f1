//! SEPA Direct Debit through the HTTP surface: each of Stripe's test IBANs (`processing`, then
//! succeeded, failed, or succeeded and disputed), the mandate Stripe requires, the IBANs it
//! refuses, and its currency and capture rules.

use serde_json::Value;

use crate::helpers::*;

const SUCCEEDS: &str = "AT611904300234573201";
const FAILS: &str = "AT861904300235473202";
const DISPUTED: &str = "AT591904300235473203";

/// A debit from `iban`, which must be `processing` with a pending charge.
async fn processing(a: &Api, iban: &str) -> Value {
    let (status, pi) = a.sepa(iban, 4200, "").await;
    assert_eq!((status, s(&pi["status"])), (200, "processing"), "{pi}");
    assert_eq!(pi["next_action"], Value::Null);
    let charge = a.charge_of(&pi).await;
    assert_eq!(
        (s(&charge["status"]), charge["paid"].as_bool()),
        ("pending", Some(false))
    );
    let details = &charge["payment_method_details"];
    assert_eq!(
        (s(&details["type"]), s(&details["sepa_debit"]["last4"])),
        ("sepa_debit", &iban[16..])
    );
    assert!(
        s(&details["sepa_debit"]["mandate"]).starts_with("mandate_"),
        "{details}"
    );
    assert_eq!(charge["billing_details"]["name"], "Jenny Rosen");
    pi
}

#[tokio::test]
async fn each_test_iban_does_what_stripe_documents() {
    let a = api(None).await;
    let ok = processing(&a, SUCCEEDS).await;
    let done = a.wait_event("payment_intent.succeeded", s(&ok["id"])).await;
    assert_eq!(done["amount_received"], 4200);
    assert_eq!(
        a.event_types(s(&ok["id"])).await,
        [
            "payment_intent.created",
            "payment_intent.processing",
            "payment_intent.succeeded"
        ]
    );
    let charge = a.charge_of(&ok).await;
    assert_eq!(
        a.event_types(s(&charge["id"])).await,
        ["charge.pending", "charge.succeeded"]
    );
    // A debit can be refunded.
    let (status, refund) = a.refund(s(&ok["id"]), "&amount=200").await;
    assert_eq!(
        (status, s(&refund["status"])),
        (200, "succeeded"),
        "{refund}"
    );

    let bad = processing(&a, FAILS).await;
    let failed = a
        .wait_event("payment_intent.payment_failed", s(&bad["id"]))
        .await;
    assert_eq!(failed["status"], "requires_payment_method");
    assert_eq!(failed["last_payment_error"]["code"], "insufficient_funds");
    assert_eq!(
        failed["last_payment_error"]["payment_method"]["type"],
        "sepa_debit"
    );
    let charge = a.charge_of(&bad).await;
    assert_eq!(
        (s(&charge["status"]), s(&charge["failure_code"])),
        ("failed", "insufficient_funds")
    );
    assert_eq!(
        a.event_types(s(&bad["id"])).await,
        [
            "payment_intent.created",
            "payment_intent.processing",
            "payment_intent.payment_failed"
        ]
    );

    let disputed = processing(&a, DISPUTED).await;
    a.wait_event("payment_intent.succeeded", s(&disputed["id"]))
        .await;
    let dispute = a
        .dispute_of(&format!("payment_intent={}", s(&disputed["id"])))
        .await;
    assert_eq!(
        (s(&dispute["reason"]), s(&dispute["status"])),
        ("debit_not_authorized", "needs_response")
    );
    assert_eq!(dispute["amount"], 4200);
    assert!(
        dispute.get("payment_method_details").is_none(),
        "no card details: {dispute}"
    );
    a.wait_event("charge.dispute.created", s(&dispute["id"]))
        .await;
    assert_eq!(a.charge_of(&disputed).await["disputed"], true);

    // Stripe's "after at least three minutes" IBANs (here after the same delay), and its
    // volume-limit ones with their own failure codes.
    for (iban, event, code) in [
        ("AT321904300235473204", "payment_intent.succeeded", ""),
        (
            "AT051904300235473205",
            "payment_intent.payment_failed",
            "insufficient_funds",
        ),
        (
            "AT981904300000343434",
            "payment_intent.payment_failed",
            "charge_exceeds_source_limit",
        ),
        (
            "AT601904300000121212",
            "payment_intent.payment_failed",
            "charge_exceeds_weekly_limit",
        ),
    ] {
        let pi = processing(&a, iban).await;
        let done = a.wait_event(event, s(&pi["id"])).await;
        assert_eq!(s(&done["last_payment_error"]["code"]), code, "{iban}");
        let charge = a.charge_of(&pi).await;
        assert_eq!(s(&charge["failure_code"]), code, "{iban}");
    }
}

#[tokio::test]
async fn sepa_debit_takes_what_stripe_takes() {
    let a = api(None).await;
    let base = "amount=4200&currency=eur&payment_method_types[]=sepa_debit&confirm=true\
                &payment_method_data[type]=sepa_debit\
                &payment_method_data[billing_details][name]=Jenny+Rosen\
                &payment_method_data[billing_details][email]=jenny@example.com";
    let iban = |iban: &str| format!("&payment_method_data[sepa_debit][iban]={iban}");
    let mandate = "&mandate_data[customer_acceptance][type]=online\
                   &mandate_data[customer_acceptance][online][ip_address]=127.0.0.1\
                   &mandate_data[customer_acceptance][online][user_agent]=tests";
    for (form, code, param) in [
        (format!("{base}{}", iban(SUCCEEDS)), "parameter_missing", "mandate_data"),
        (
            format!("{base}{}&mandate_data[customer_acceptance][type]=online&mandate_data[customer_acceptance][online][ip_address]=1.2.3.4", iban(SUCCEEDS)),
            "parameter_missing",
            "mandate_data[customer_acceptance][online][user_agent]",
        ),
        (format!("{base}{mandate}"), "parameter_missing", "payment_method_data[sepa_debit][iban]"),
        (format!("{base}{}{mandate}", iban("AT611904300234573202")), "payment_method_invalid_parameter", "payment_method_data[sepa_debit][iban]"),
        (format!("{base}{}{mandate}", iban("DE89370400440532013000")), "payment_method_invalid_parameter_testmode", "payment_method_data[sepa_debit][iban]"),
        (format!("{base}{}{mandate}", iban("AT511904300000066666")), "bank_account_unusable", "payment_method_data[sepa_debit][iban]"),
        (format!("{base}{}{mandate}", iban(SUCCEEDS)).replace("&payment_method_data[billing_details][name]=Jenny+Rosen", ""), "parameter_missing", "payment_method_data[billing_details][name]"),
        (format!("{base}{}{mandate}", iban(SUCCEEDS)).replace("eur", "usd"), "payment_intent_invalid_parameter", "currency"),
        (format!("{base}{}{mandate}&capture_method=manual", iban(SUCCEEDS)), "payment_intent_invalid_parameter", "capture_method"),
    ] {
        let (status, body) = a.post("/v1/payment_intents", &form).await;
        assert_eq!((status, s(&body["error"]["code"]), s(&body["error"]["param"])), (400, code, param), "{form}: {body}");
    }
    // An IBAN written with spaces and in small letters is the same IBAN; an offline mandate
    // does.
    let spaced = iban("at61%201904%203002%203457%203201");
    let (status, pi) = a
        .post(
            "/v1/payment_intents",
            &format!("{base}{spaced}&mandate_data[customer_acceptance][type]=offline"),
        )
        .await;
    assert_eq!((status, s(&pi["status"])), (200, "processing"), "{pi}");
    assert_eq!(
        a.payment_method_of(&pi).await["sepa_debit"]["last4"],
        "3201"
    );
    // Stripe.js confirms with the publishable key and lets Stripe infer the mandate's details.
    let pi = a
        .create("amount=4200&currency=eur&payment_method_types[]=sepa_debit")
        .await;
    let js = a.with_key("pk_test_sepa");
    let confirmed = js
        .post_ok(
            &format!("/v1/payment_intents/{}/confirm", s(&pi["id"])),
            &format!(
                "client_secret={}&payment_method_data[type]=sepa_debit&payment_method_data[sepa_debit][iban]={SUCCEEDS}\
                 &payment_method_data[billing_details][name]=Jenny+Rosen&payment_method_data[billing_details][email]=jenny@example.com\
                 &mandate_data[customer_acceptance][type]=online&mandate_data[customer_acceptance][online][infer_from_client]=true",
                s(&pi["client_secret"])
            ),
        )
        .await;
    assert_eq!(confirmed["status"], "processing");
}
