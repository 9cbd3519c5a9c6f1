//! Money going back and held: refunds (full, partial, over, again, idempotent), the refund test
//! methods' later failure or success, disputes to won and to lost, manual capture (full,
//! partial, too much, cancelled) and a delayed method's `processing`.

use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn refunds_full_partial_over_and_again() {
    let a = api(None).await;
    let pi = a.paid(5000, "pm_card_visa", "").await;
    let pi_id = s(&pi["id"]);
    let charge_id = s(&pi["latest_charge"]).to_string();

    let (status, first) = a
        .refund(
            pi_id,
            "&amount=1500&reason=requested_by_customer&metadata[ticket]=T-1",
        )
        .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["object"], "refund");
    assert!(s(&first["id"]).starts_with("re_"));
    assert_eq!(
        (
            first["amount"].as_i64(),
            s(&first["currency"]),
            s(&first["status"])
        ),
        (Some(1500), "usd", "succeeded")
    );
    assert_eq!(
        (s(&first["payment_intent"]), s(&first["charge"])),
        (pi_id, charge_id.as_str())
    );
    assert_eq!(first["reason"], "requested_by_customer");
    assert_eq!(first["metadata"]["ticket"], "T-1");
    let charge = a.charge_of(&pi).await;
    assert_refunded(&charge, 1500, false);
    assert!(
        charge.get("refunds").is_none(),
        "only when expanded, as since 2022-11-15"
    );

    // More than what is left.
    let (status, over) = a.refund(pi_id, "&amount=3501").await;
    assert_eq!(status, 400, "{over}");
    assert_eq!(over["error"]["type"], "invalid_request_error");
    assert_eq!(over["error"]["code"], "amount_too_large");
    assert_eq!(over["error"]["param"], "amount");
    assert_eq!(
        over["error"]["message"],
        "Refund amount ($35.01) is greater than unrefunded amount on charge ($35.00)"
    );

    // The rest, by charge, without an amount.
    let (status, rest) = a.post("/v1/refunds", &format!("charge={charge_id}")).await;
    assert_eq!(status, 200, "{rest}");
    assert_eq!(rest["amount"], 3500);
    assert_eq!(rest["reason"], Value::Null);
    let (_, charge) = a
        .get(&format!("/v1/charges/{charge_id}?expand[]=refunds"))
        .await;
    assert_refunded(&charge, 5000, true);
    assert_eq!(ids(&charge["refunds"]), [s(&rest["id"]), s(&first["id"])]);

    // Nothing is left.
    assert_eq!(
        code_of(&a.refund(pi_id, "").await),
        (400, "charge_already_refunded")
    );

    // Retrieve, update, list with filters.
    let (status, got) = a.get(&format!("/v1/refunds/{}", s(&first["id"]))).await;
    assert_eq!((status, &got), (200, &first));
    let (status, updated) = a
        .post(
            &format!("/v1/refunds/{}", s(&first["id"])),
            "metadata[ticket]=&metadata[desk]=B",
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["metadata"], serde_json::json!({"desk": "B"}));
    let other = a.paid(900, "pm_card_visa", "").await;
    let (_, other_refund) = a.refund(s(&other["id"]), "").await;
    let (_, listed) = a.get(&format!("/v1/refunds?payment_intent={pi_id}")).await;
    assert_eq!(ids(&listed), [s(&rest["id"]), s(&first["id"])]);
    assert_eq!(listed["url"], "/v1/refunds");
    let (_, by_charge) = a
        .get(&format!("/v1/refunds?charge={charge_id}&limit=1"))
        .await;
    assert_eq!(
        (ids(&by_charge), by_charge["has_more"].as_bool()),
        (vec![s(&rest["id"]).to_string()], Some(true))
    );
    let (_, all) = a.get("/v1/refunds").await;
    assert_eq!(ids(&all)[0], s(&other_refund["id"]));
    let (_, sub) = a.get(&format!("/v1/charges/{charge_id}/refunds")).await;
    assert_eq!(ids(&sub), ids(&listed));

    // Events, in the order they happened.
    assert_eq!(
        a.event_types(s(&first["id"])).await,
        ["refund.created", "refund.updated", "charge.refund.updated"]
    );
    let (_, refunded) = a.get("/v1/events?type=charge.refunded").await;
    assert_eq!(refunded["data"].as_array().unwrap().len(), 3);
    assert_eq!(
        refunded["data"][1]["data"]["object"]["amount_refunded"],
        5000
    );
}

#[tokio::test]
async fn refund_errors_are_stripes() {
    let a = api(None).await;
    let unpaid = a.create("amount=5000&currency=usd").await;
    let (status, body) = a.refund(s(&unpaid["id"]), "").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "payment_intent_unexpected_state");
    assert_eq!(body["error"]["param"], "payment_intent");
    for (form, param, code) in [
        (
            "payment_intent=pi_missing",
            Some("payment_intent"),
            Some("resource_missing"),
        ),
        (
            "charge=ch_missing",
            Some("charge"),
            Some("resource_missing"),
        ),
        ("", None, Some("parameter_missing")),
        (
            "payment_intent=pi_x&colour=red",
            Some("colour"),
            Some("parameter_unknown"),
        ),
    ] {
        let (status, body) = a.post("/v1/refunds", form).await;
        assert_eq!(status, 400, "{form}: {body}");
        assert_eq!(body["error"]["param"].as_str(), param, "{form}");
        assert_eq!(body["error"]["code"].as_str(), code, "{form}");
    }
    let paid = a.paid(5000, "pm_card_visa", "").await;
    for (form, param) in [
        ("amount=0", "amount"),
        ("amount=ten", "amount"),
        ("reason=because", "reason"),
    ] {
        let (status, body) = a.refund(s(&paid["id"]), &format!("&{form}")).await;
        assert_eq!(
            (status, s(&body["error"]["param"])),
            (400, param),
            "{form}: {body}"
        );
    }
    let (_, refunds) = a.get("/v1/refunds").await;
    assert!(ids(&refunds).is_empty(), "a refused refund made nothing");
    assert_eq!(a.get("/v1/refunds/re_missing").await.0, 404);
}

#[tokio::test]
async fn a_refund_is_idempotent_by_key() {
    let a = api(None).await;
    let pi = a.paid(4000, "pm_card_visa", "").await;
    let form = format!("payment_intent={}&amount=1000", s(&pi["id"]));
    let (status, first) = a.replayed("/v1/refunds", &form, &form, "refund-1").await;
    assert_eq!(status, 200, "{first}");
    let (status, _, third) = a
        .post_keyed(
            "/v1/refunds",
            &format!("payment_intent={}&amount=2000", s(&pi["id"])),
            "refund-1",
        )
        .await;
    assert_eq!(
        (status, s(&third["error"]["type"])),
        (400, "idempotency_error")
    );
    let (_, refunds) = a.get("/v1/refunds").await;
    assert_eq!(ids(&refunds), [s(&first["id"])], "one refund for one key");
    assert_eq!(a.charge_of(&pi).await["amount_refunded"], 1000);
}

#[tokio::test]
async fn refund_fail_succeeds_first_then_fails_and_gives_the_amount_back() {
    let a = api(None).await;
    let pi = a.paid(3000, "pm_card_refundFail", "").await;
    let (status, refund) = a.refund(s(&pi["id"]), "").await;
    assert_eq!(status, 200, "{refund}");
    assert_eq!(
        refund["status"], "succeeded",
        "as Stripe documents: succeeded at first"
    );
    let id = s(&refund["id"]).to_string();
    let failed = a.wait_event("refund.failed", &id).await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["failure_reason"], "expired_or_canceled_card");
    assert!(s(&failed["failure_balance_transaction"]).starts_with("txn_"));
    let (_, got) = a.get(&format!("/v1/refunds/{id}")).await;
    assert_eq!(got["status"], "failed");
    assert_refunded(&a.charge_of(&pi).await, 0, false);
    assert_eq!(
        a.event_types(&id).await,
        [
            "refund.created",
            "refund.updated",
            "charge.refund.updated",
            "refund.failed"
        ]
    );
    let (_, events) = a.get("/v1/events?type=refund.failed").await;
    assert_eq!(
        events["data"][0]["request"]["id"],
        Value::Null,
        "not caused by a request"
    );
    // The amount can be refunded again (and fails again, later).
    let (status, second) = a.refund(s(&pi["id"]), "").await;
    assert_eq!((status, second["amount"].as_i64()), (200, Some(3000)));
}

#[tokio::test]
async fn pending_refund_settles_later() {
    let a = api(None).await;
    let pi = a.paid(3000, "pm_card_pendingRefund", "").await;
    let (_, refund) = a.refund(s(&pi["id"]), "&amount=1000").await;
    assert_eq!(refund["status"], "pending");
    assert_eq!(
        a.charge_of(&pi).await["amount_refunded"],
        1000,
        "a pending refund counts"
    );
    let settled = a.wait_event("refund.updated", s(&refund["id"])).await;
    assert_eq!(settled["status"], "succeeded");
}

#[tokio::test]
async fn a_dispute_opens_and_is_won_with_winning_evidence() {
    let a = api(None).await;
    let pi = a.paid(7000, "pm_card_createDispute", "").await;
    let charge_id = s(&pi["latest_charge"]).to_string();
    let (_, disputes) = a.get(&format!("/v1/disputes?charge={charge_id}")).await;
    assert_eq!(disputes["url"], "/v1/disputes");
    let opened = a
        .dispute_of(&format!("payment_intent={}", s(&pi["id"])))
        .await;
    let id = s(&opened["id"]).to_string();
    assert!(id.starts_with("dp_"));
    assert_eq!(
        (
            s(&opened["status"]),
            s(&opened["reason"]),
            opened["amount"].as_i64()
        ),
        ("needs_response", "fraudulent", Some(7000))
    );
    assert_eq!(opened["charge"], charge_id.as_str());
    assert!(
        opened["evidence_details"]["due_by"].as_i64().unwrap()
            > opened["created"].as_i64().unwrap()
    );
    assert_eq!(opened["evidence_details"]["has_evidence"], false);
    assert_eq!(opened["balance_transactions"][0]["amount"], -7000);
    a.wait_event("charge.dispute.created", &id).await;
    a.wait_event("charge.dispute.funds_withdrawn", &id).await;
    assert_eq!(a.charge_of(&pi).await["disputed"], true);
    assert_eq!(
        code_of(&a.post("/v1/refunds", &format!("charge={charge_id}")).await),
        (400, "charge_disputed")
    );

    let (status, submitted) = a
        .update_dispute(
            &id,
            "evidence[uncategorized_text]=winning_evidence&evidence[customer_name]=Ana&metadata[case]=7",
        )
        .await;
    assert_eq!(status, 200, "{submitted}");
    assert_eq!(submitted["status"], "under_review");
    assert_eq!(submitted["evidence"]["customer_name"], "Ana");
    assert_eq!(submitted["evidence_details"]["submission_count"], 1);
    assert_eq!(submitted["evidence_details"]["has_evidence"], true);
    assert_eq!(submitted["metadata"]["case"], "7");
    let closed = a.wait_event("charge.dispute.closed", &id).await;
    assert_eq!(closed["status"], "won");
    a.wait_event("charge.dispute.funds_reinstated", &id).await;
    let (_, got) = a.get(&format!("/v1/disputes/{id}")).await;
    assert_eq!(got["status"], "won");
    assert_eq!(got["balance_transactions"].as_array().unwrap().len(), 2);
    assert_eq!(
        a.event_types(&id).await,
        [
            "charge.dispute.created",
            "charge.dispute.funds_withdrawn",
            "charge.dispute.updated",
            "charge.dispute.closed",
            "charge.dispute.funds_reinstated"
        ]
    );
    // Reconciliation lists them by type.
    let (_, listed) = a
        .get("/v1/events?types[]=charge.dispute.created&types[]=charge.dispute.closed")
        .await;
    assert_eq!(
        types(&listed),
        ["charge.dispute.closed", "charge.dispute.created"]
    );
    let (status, late) = a
        .update_dispute(&id, "evidence[uncategorized_text]=more")
        .await;
    assert_eq!(status, 400, "{late}");
    let (status, _) = a.post(&format!("/v1/disputes/{id}/close"), "").await;
    assert_eq!(status, 400, "a closed dispute cannot be accepted");
}

#[tokio::test]
async fn a_dispute_is_lost_with_losing_evidence_or_by_closing_it() {
    let a = api(None).await;
    let mut disputes = Vec::new();
    for _ in 0..2 {
        let pi = a.paid(2000, "pm_card_createDispute", "").await;
        let dispute = a
            .dispute_of(&format!("charge={}", s(&pi["latest_charge"])))
            .await;
        disputes.push(s(&dispute["id"]).to_string());
    }
    let (status, staged) = a
        .update_dispute(
            &disputes[0],
            "evidence[uncategorized_text]=losing_evidence&submit=false",
        )
        .await;
    assert_eq!(status, 200, "{staged}");
    assert_eq!(staged["status"], "needs_response", "staged, not submitted");
    let (_, submitted) = a.update_dispute(&disputes[0], "submit=true").await;
    assert_eq!(submitted["status"], "under_review");
    let closed = a.wait_event("charge.dispute.closed", &disputes[0]).await;
    assert_eq!(closed["status"], "lost");
    assert!(!a
        .event_types(&disputes[0])
        .await
        .contains(&"charge.dispute.funds_reinstated".to_string()));

    let (status, accepted) = a
        .post(&format!("/v1/disputes/{}/close", disputes[1]), "")
        .await;
    assert_eq!((status, s(&accepted["status"])), (200, "lost"));
    assert_eq!(
        a.event_types(&disputes[1]).await.last().map(String::as_str),
        Some("charge.dispute.closed")
    );
    let (_, all) = a.get("/v1/disputes?limit=1").await;
    assert_eq!(
        (ids(&all), all["has_more"].as_bool()),
        (vec![disputes[1].clone()], Some(true))
    );
    assert_eq!(a.get("/v1/disputes/dp_missing").await.0, 404);
}

#[tokio::test]
async fn manual_capture_full_partial_too_much_and_cancel() {
    let a = api(None).await;
    let held = a.paid(5000, "pm_card_visa", "&capture_method=manual").await;
    let id = s(&held["id"]).to_string();
    assert_eq!(held["status"], "requires_capture");
    assert_eq!(held["capture_method"], "manual");
    assert_eq!(
        (
            held["amount_capturable"].as_i64(),
            held["amount_received"].as_i64()
        ),
        (Some(5000), Some(0))
    );
    let charge = a.charge_of(&held).await;
    assert_eq!(
        (
            s(&charge["status"]),
            charge["captured"].as_bool(),
            charge["amount_captured"].as_i64(),
            charge["paid"].as_bool()
        ),
        ("succeeded", Some(false), Some(0), Some(true))
    );
    assert_eq!(
        a.event_types(&id).await,
        [
            "payment_intent.created",
            "payment_intent.amount_capturable_updated"
        ]
    );
    assert_eq!(a.event_types(s(&charge["id"])).await, ["charge.succeeded"]);
    let (status, refused) = a.refund(&id, "").await;
    assert_eq!(status, 400, "an authorisation is not refunded: {refused}");

    let (status, over) = a
        .intent_action(&id, "capture", "amount_to_capture=5001")
        .await;
    assert_eq!(status, 400, "{over}");
    assert_eq!(
        (s(&over["error"]["code"]), s(&over["error"]["param"])),
        ("amount_too_large", "amount_to_capture")
    );

    let (status, captured) = a
        .intent_action(&id, "capture", "amount_to_capture=3000")
        .await;
    assert_eq!(status, 200, "{captured}");
    assert_eq!(
        (
            s(&captured["status"]),
            captured["amount_received"].as_i64(),
            captured["amount_capturable"].as_i64()
        ),
        ("succeeded", Some(3000), Some(0))
    );
    let charge = a.charge_of(&held).await;
    assert_eq!(
        (
            charge["captured"].as_bool(),
            charge["amount_captured"].as_i64()
        ),
        (Some(true), Some(3000))
    );
    assert_refunded(&charge, 2000, false);
    assert_eq!(
        a.event_types(s(&charge["id"])).await,
        ["charge.succeeded", "charge.captured"]
    );
    assert_eq!(
        a.event_types(&id).await.last().map(String::as_str),
        Some("payment_intent.succeeded")
    );
    // Only what was captured can be refunded.
    assert_eq!(
        code_of(&a.refund(&id, "&amount=3001").await),
        (400, "amount_too_large")
    );
    let (status, refund) = a.refund(&id, "").await;
    assert_eq!((status, refund["amount"].as_i64()), (200, Some(3000)));
    assert_refunded(&a.charge_of(&held).await, 5000, true);

    // Capturing again, or what was never authorised.
    let unpaid = a.create("amount=5000&currency=usd").await;
    for never in [id.as_str(), s(&unpaid["id"])] {
        assert_eq!(
            code_of(&a.intent_action(never, "capture", "").await),
            (400, "payment_intent_unexpected_state"),
            "{never}"
        );
    }

    // All of it.
    let full = a.paid(2500, "pm_card_visa", "&capture_method=manual").await;
    let (_, captured) = a.intent_action(s(&full["id"]), "capture", "").await;
    assert_eq!(captured["amount_received"], 2500);
    let charge = a.charge_of(&full).await;
    assert_eq!(
        (
            charge["amount_captured"].as_i64(),
            charge["amount_refunded"].as_i64()
        ),
        (Some(2500), Some(0))
    );

    // Cancelling an authorisation releases it.
    let released = a.paid(1800, "pm_card_visa", "&capture_method=manual").await;
    let (status, canceled) = a.intent_action(s(&released["id"]), "cancel", "").await;
    assert_eq!(status, 200, "{canceled}");
    assert_eq!(
        (
            s(&canceled["status"]),
            canceled["amount_capturable"].as_i64()
        ),
        ("canceled", Some(0))
    );
    let charge = a.charge_of(&released).await;
    assert_eq!(charge["captured"], false);
    assert_refunded(&charge, 1800, true);
    assert_eq!(
        a.event_types(s(&charge["id"])).await,
        ["charge.succeeded", "charge.refunded"]
    );
    let (status, body) = a
        .post(
            "/v1/payment_intents",
            "amount=500&currency=usd&capture_method=later",
        )
        .await;
    assert_eq!(
        (status, s(&body["error"]["param"])),
        (400, "capture_method")
    );
}

#[tokio::test]
async fn a_bank_debit_is_processing_then_succeeds() {
    // Long enough that it is still processing while it is looked at; run on demand below.
    let a = api_with_delay(None, std::time::Duration::from_secs(600)).await;
    let pi = a
        .create("amount=12000&currency=usd&payment_method_types[]=us_bank_account")
        .await;
    let id = s(&pi["id"]).to_string();
    let (status, processing) = a
        .confirm(&id, "payment_method=pm_usBankAccount_success&mandate_data[customer_acceptance][type]=offline",
        )
        .await;
    assert_eq!(status, 200, "{processing}");
    assert_eq!(processing["status"], "processing");
    let charge_id = s(&processing["latest_charge"]).to_string();
    let charge = a.charge_of(&processing).await;
    assert_eq!(charge["status"], "pending");
    assert_eq!(charge["payment_method_details"]["type"], "us_bank_account");
    let pm = a.payment_method_of(&processing).await;
    assert_eq!(
        (s(&pm["type"]), s(&pm["us_bank_account"]["last4"])),
        ("us_bank_account", "6789")
    );
    assert_eq!(
        code_of(&a.intent_action(&id, "cancel", "").await),
        (400, "payment_intent_unexpected_state")
    );
    a.post_ok("/_sandbox/timers", "run=true").await;
    let succeeded = a.wait_event("payment_intent.succeeded", &id).await;
    assert_eq!(succeeded["amount_received"], 12000);
    assert_eq!(
        a.event_types(&id).await,
        [
            "payment_intent.created",
            "payment_intent.processing",
            "payment_intent.succeeded"
        ]
    );
    assert_eq!(
        a.event_types(&charge_id).await,
        ["charge.pending", "charge.succeeded"]
    );
    let charge = a.charge_of(&processing).await;
    assert_eq!(
        (s(&charge["status"]), charge["paid"].as_bool()),
        ("succeeded", Some(true))
    );
    // A card-only PaymentIntent does not take a bank account.
    let card_only = a.create("amount=12000&currency=usd").await;
    let confirmed = a
        .confirm(
            s(&card_only["id"]),
            "payment_method=pm_usBankAccount_success",
        )
        .await;
    assert_eq!(
        code_of(&confirmed),
        (400, "payment_intent_incompatible_payment_method")
    );
}
