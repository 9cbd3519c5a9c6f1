//! OXXO through the HTTP surface: the voucher issued on confirmation, its hosted page, paid at
//! the store (the control), expired by the control and by time (Stripe's test e-mails, a short
//! delay), an expired voucher that cannot be paid, and Stripe's rules and errors.

use serde_json::Value;

use crate::helpers::*;

/// Mexico City's offset from UTC, in seconds.
const MEXICO_CITY: i64 = -6 * 3600;

/// The voucher's details of a PaymentIntent waiting for one.
fn voucher(pi: &Value) -> &Value {
    assert_eq!(
        (s(&pi["status"]), s(&pi["next_action"]["type"])),
        ("requires_action", "oxxo_display_details"),
        "{pi}"
    );
    &pi["next_action"]["oxxo_display_details"]
}

#[tokio::test]
async fn a_voucher_is_issued_shown_and_paid_at_the_store() {
    let a = api(None).await;
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let pi = a.oxxo(15000, "ana@example.com", "").await;
    let details = voucher(&pi).clone();
    let number = s(&details["number"]).to_string();
    assert_eq!(number.len(), 32);
    assert!(number.bytes().all(|b| b.is_ascii_digit()), "{number}");
    assert_eq!(
        pi["payment_method_options"]["oxxo"]["expires_after_days"],
        3
    );
    // The last second of the third day after today, in Mexico City.
    let expires = details["expires_after"].as_i64().unwrap();
    assert_eq!(
        (expires + 1 + MEXICO_CITY).rem_euclid(86_400),
        0,
        "23:59:59 there"
    );
    let day = |t: i64| (t + MEXICO_CITY).div_euclid(86_400);
    assert_eq!(day(expires) - day(before), 3);
    assert_eq!(
        a.event_types(s(&pi["id"])).await,
        ["payment_intent.created", "payment_intent.requires_action"]
    );

    let url = s(&details["hosted_voucher_url"]).to_string();
    assert!(url.starts_with(&a.base), "{url}");
    let (status, html) = page(&url).await;
    assert_eq!(status, 200);
    assert!(html.contains("150.00 MXN"), "{html}");
    assert!(
        html.contains(&number[..4]) && html.contains(&number[28..]),
        "{html}"
    );
    assert!(html.contains("23:59"), "{html}");

    let (status, paid) = control(&a, &pi, "pay_voucher").await;
    assert_eq!(status, 200, "{paid}");
    assert_eq!(
        (s(&paid["status"]), paid["amount_received"].as_i64()),
        ("succeeded", Some(15000))
    );
    assert_eq!(paid["next_action"], Value::Null);
    let charge = a.charge_of(&paid).await;
    assert_eq!(charge["payment_method_details"]["type"], "oxxo");
    assert_eq!(
        charge["payment_method_details"]["oxxo"]["number"],
        number.as_str()
    );
    assert_eq!(charge["billing_details"]["email"], "ana@example.com");
    assert_eq!(
        a.event_types(s(&pi["id"])).await,
        [
            "payment_intent.created",
            "payment_intent.requires_action",
            "payment_intent.succeeded"
        ]
    );
    assert_eq!(a.event_types(s(&charge["id"])).await, ["charge.succeeded"]);
    let (_, html) = page(&url).await;
    assert!(html.contains("Pagado"), "{html}");

    // Paid once: not again, and never refunded.
    assert_eq!(
        code_of(&control(&a, &pi, "pay_voucher").await),
        (400, "payment_intent_unexpected_state")
    );
    assert_eq!(
        code_of(&control(&a, &pi, "expire_voucher").await),
        (400, "payment_intent_unexpected_state")
    );
    assert_eq!(
        code_of(&a.refund(s(&pi["id"]), "").await),
        (400, "charge_not_refundable")
    );

    let one_day = a
        .oxxo(
            1000,
            "ana@example.com",
            "&payment_method_options[oxxo][expires_after_days]=1",
        )
        .await;
    let expires = voucher(&one_day)["expires_after"].as_i64().unwrap();
    assert_eq!(day(expires) - day(before), 1);
}

#[tokio::test]
async fn a_voucher_expires_by_control_and_by_time() {
    let a = api(None).await;
    let pi = a.oxxo(20000, "ana@example.com", "").await;
    // Its expiry is a timer due just after its last second.
    let expires = voucher(&pi)["expires_after"].as_i64().unwrap();
    let timers = a.get_ok("/_sandbox/timers").await;
    let due: Vec<i64> = timers["pending"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["action"]["do"] == "oxxo_expire" && t["action"]["payment_intent"] == pi["id"])
        .map(|t| t["due_ms"].as_i64().unwrap())
        .collect();
    assert_eq!(due, [(expires + 1) * 1000]);

    let (status, expired) = control(&a, &pi, "expire_voucher").await;
    assert_eq!(status, 200, "{expired}");
    assert_eq!(expired["status"], "requires_payment_method");
    assert_eq!(expired["next_action"], Value::Null);
    assert_eq!(
        expired["last_payment_error"]["code"],
        "payment_intent_payment_attempt_expired"
    );
    assert_eq!(
        expired["last_payment_error"]["payment_method"]["type"],
        "oxxo"
    );
    assert_eq!(
        expired["latest_charge"],
        Value::Null,
        "no charge for an unpaid voucher"
    );
    assert_eq!(
        a.event_types(s(&pi["id"])).await,
        [
            "payment_intent.created",
            "payment_intent.requires_action",
            "payment_intent.payment_failed"
        ]
    );
    let (_, html) = page(s(
        &pi["next_action"]["oxxo_display_details"]["hosted_voucher_url"]
    ))
    .await;
    assert!(html.contains("venció"), "{html}");
    // The timer then finds nothing to do.
    a.post_ok("/_sandbox/timers", "run=true").await;
    eventually("the expiry timer to run", || async {
        let timers = a.get_ok("/_sandbox/timers").await;
        timers["pending"]
            .as_array()
            .unwrap()
            .is_empty()
            .then_some(())
    })
    .await;
    assert_eq!(a.event_types(s(&pi["id"])).await.len(), 3);

    // By time: Stripe's `expire_with_delay` e-mail expires after the sandbox's delay.
    let later = a
        .oxxo(20000, "pedro.expire_with_delay@example.com", "")
        .await;
    voucher(&later);
    let failed = a
        .wait_event("payment_intent.payment_failed", s(&later["id"]))
        .await;
    assert_eq!(
        failed["last_payment_error"]["code"],
        "payment_intent_payment_attempt_expired"
    );
    assert_eq!(
        a.get_ok(&format!("/v1/payment_intents/{}", s(&later["id"])))
            .await["status"],
        "requires_payment_method"
    );
}

#[tokio::test]
async fn a_voucher_past_its_end_cannot_be_paid() {
    let a = api(None).await;
    // Expired by the control, then brought to the store.
    let pi = a.oxxo(20000, "ana@example.com", "").await;
    control(&a, &pi, "expire_voucher").await;
    assert_eq!(
        code_of(&control(&a, &pi, "pay_voucher").await),
        (400, "payment_intent_unexpected_state")
    );
    // Stripe's `expire_immediately`: the voucher ends as it is issued, so paying it at once is
    // refused whether or not its timer has run yet, and it ends exactly once, unpaid.
    let now = a.oxxo(20000, "expire_immediately@example.com", "").await;
    let (status, body) = control(&a, &now, "pay_voucher").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        matches!(
            s(&body["error"]["code"]),
            "payment_intent_payment_attempt_expired" | "payment_intent_unexpected_state"
        ),
        "{body}"
    );
    a.wait_event("payment_intent.payment_failed", s(&now["id"]))
        .await;
    a.post_ok("/_sandbox/timers", "run=true").await;
    let types = a.event_types(s(&now["id"])).await;
    assert_eq!(
        types
            .iter()
            .filter(|t| *t == "payment_intent.payment_failed")
            .count(),
        1,
        "{types:?}"
    );
    assert!(
        !types.iter().any(|t| t == "payment_intent.succeeded"),
        "{types:?}"
    );
    let (_, charges) = a
        .get(&format!("/v1/charges?payment_intent={}", s(&now["id"])))
        .await;
    assert_eq!(ids(&charges).len(), 0);
}

#[tokio::test]
async fn a_succeed_immediately_voucher_is_paid_by_itself() {
    let a = api(None).await;
    let pi = a.oxxo(20000, "succeed_immediately@example.com", "").await;
    voucher(&pi);
    let paid = a.wait_event("payment_intent.succeeded", s(&pi["id"])).await;
    assert_eq!(paid["amount_received"], 20000);
}

#[tokio::test]
async fn oxxo_takes_what_stripe_takes() {
    let a = api(None).await;
    let base = "amount=20000&currency=mxn&payment_method_types[]=oxxo&confirm=true&payment_method_data[type]=oxxo";
    let named = "&payment_method_data[billing_details][name]=Ana";
    let mailed = "&payment_method_data[billing_details][email]=ana@example.com";
    for (form, status, code, param) in [
        (
            format!("{base}{mailed}"),
            400,
            "parameter_missing",
            "payment_method_data[billing_details][name]",
        ),
        (
            format!("{base}{named}"),
            400,
            "parameter_missing",
            "payment_method_data[billing_details][email]",
        ),
        (
            format!("{base}{named}&payment_method_data[billing_details][email]=ana"),
            400,
            "email_invalid",
            "payment_method_data[billing_details][email]",
        ),
        (
            format!("{base}{named}{mailed}").replace("mxn", "usd"),
            400,
            "payment_intent_invalid_parameter",
            "currency",
        ),
        (
            format!("{base}{named}{mailed}").replace("20000", "999"),
            400,
            "amount_too_small",
            "amount",
        ),
        (
            format!("{base}{named}{mailed}").replace("20000", "1000001"),
            400,
            "amount_too_large",
            "amount",
        ),
        (
            format!("{base}{named}{mailed}&capture_method=manual"),
            400,
            "payment_intent_invalid_parameter",
            "capture_method",
        ),
        (
            format!("{base}{named}{mailed}&payment_method_options[oxxo][expires_after_days]=8"),
            400,
            "",
            "payment_method_options[oxxo][expires_after_days]",
        ),
    ] {
        let (got, body) = a.post("/v1/payment_intents", &form).await;
        assert_eq!(
            (got, s(&body["error"]["code"]), s(&body["error"]["param"])),
            (status, code, param),
            "{form}: {body}"
        );
    }
    // The largest voucher is 10,000.00 MXN.
    voucher(&a.oxxo(1_000_000, "ana@example.com", "").await);
    // Stripe.js makes the PaymentMethod with a publishable key; it cannot pay a card-only
    // PaymentIntent.
    let js = a.with_key("pk_test_oxxo");
    let pm = js
        .post_ok(
            "/v1/payment_methods",
            "type=oxxo&billing_details[name]=Ana&billing_details[email]=ana@example.com",
        )
        .await;
    assert_eq!((s(&pm["type"]), pm["oxxo"].is_object()), ("oxxo", true));
    let card_only = a.create("amount=20000&currency=mxn").await;
    let answer = a
        .confirm(
            s(&card_only["id"]),
            &format!("payment_method={}", s(&pm["id"])),
        )
        .await;
    assert_eq!(
        code_of(&answer),
        (400, "payment_intent_incompatible_payment_method")
    );
    // With automatic payment methods the same rules hold at confirmation.
    let dollars = a
        .create("amount=20000&currency=usd&automatic_payment_methods[enabled]=true")
        .await;
    let answer = a
        .confirm(
            s(&dollars["id"]),
            &format!("payment_method={}", s(&pm["id"])),
        )
        .await;
    assert_eq!(code_of(&answer), (400, "payment_intent_invalid_parameter"));
}
