//! Paying: what confirming a PaymentIntent, completing its 3-D Secure page and capturing it
//! share. A payment method that is accepted charges a card (or only authorises it, for manual
//! capture) or starts a delayed method `processing`; one that declines leaves a failed Charge.
//! Below that, the charge's books: what its refunds and released authorisation take back.

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::balance;
use crate::cards::{After, CardResult, Decline, TestCard};
use crate::connect;
use crate::ctx::Ctx;
use crate::error::{doc_url, internal, StripeErr};
use crate::lists::list;
use crate::objects;
use crate::store::{now, Kind};

/// The payment method is accepted (and authenticated where it had to be): a delayed method
/// starts `processing`; a card is charged, or only authorised when `capture_method` is manual.
pub(crate) fn pay(
    ctx: &mut Ctx<'_>,
    mut pi: Value,
    pm_id: &str,
    card: &TestCard,
) -> Result<Value, StripeErr> {
    let created = now();
    let mut charge = objects::charge(&pi, pm_id, card, created);
    if let Some(pm) = ctx.find(Kind::PaymentMethod, pm_id) {
        crate::methods::charge_details(&mut charge, &pi, pm, card);
        if let Some(details) = charge
            .pointer_mut("/payment_method_details/card")
            .and_then(Value::as_object_mut)
        {
            details.insert("exp_month".into(), pm["card"]["exp_month"].clone());
            details.insert("exp_year".into(), pm["card"]["exp_year"].clone());
        }
    }
    let amount = pi["amount"].clone();
    pi["payment_method"] = json!(pm_id);
    pi["latest_charge"] = charge["id"].clone();
    pi["next_action"] = Value::Null;
    pi["last_payment_error"] = Value::Null;
    if matches!(
        card.result,
        CardResult::Processing | CardResult::ProcessingFails(_)
    ) {
        charge["status"] = json!("pending");
        charge["paid"] = json!(false);
        charge["outcome"]["seller_message"] = json!("Payment processing.");
        // A debit's money is in the balance, pending, from the start; a failure takes it back.
        balance::charge(ctx, &charge);
        ctx.put(Kind::Charge, charge.clone());
        pi["status"] = json!("processing");
        ctx.save_pi(&pi);
        ctx.emit("charge.pending", charge.clone());
        ctx.emit("payment_intent.processing", pi.clone());
        let outcome = if card.result == CardResult::Processing {
            "processing_succeed"
        } else {
            "processing_fail"
        };
        ctx.schedule(json!({"do": outcome, "payment_intent": pi["id"], "charge": charge["id"]}));
        return Ok(pi);
    }
    if pi["capture_method"] == "manual" {
        charge["captured"] = json!(false);
        charge["amount_captured"] = json!(0);
        charge["balance_transaction"] = Value::Null;
        if let Some(details) = charge
            .pointer_mut("/payment_method_details/card")
            .and_then(Value::as_object_mut)
        {
            details.insert("capture_before".into(), json!(created + 7 * 24 * 60 * 60));
        }
        ctx.put(Kind::Charge, charge.clone());
        pi["status"] = json!("requires_capture");
        pi["amount_capturable"] = amount;
        ctx.save_pi(&pi);
        ctx.emit("charge.succeeded", charge);
        ctx.emit("payment_intent.amount_capturable_updated", pi.clone());
        return Ok(pi);
    }
    balance::charge(ctx, &charge);
    connect::settle(ctx, &pi, &mut charge);
    ctx.put(Kind::Charge, charge.clone());
    pi["status"] = json!("succeeded");
    pi["amount_received"] = amount;
    ctx.save_pi(&pi);
    ctx.emit("charge.succeeded", charge.clone());
    ctx.emit("payment_intent.succeeded", pi.clone());
    after_paid(ctx, card, &charge);
    Ok(pi)
}

/// The card declines: a failed Charge, the PaymentIntent back to `requires_payment_method`
/// with the error as its `last_payment_error`, and Stripe's 402 carrying the PaymentIntent.
pub(crate) fn decline(
    ctx: &mut Ctx<'_>,
    mut pi: Value,
    pm_id: &str,
    card: &TestCard,
    decline: &Decline,
) -> StripeErr {
    let charge = objects::charge(&pi, pm_id, card, now());
    ctx.put(Kind::Charge, charge.clone());
    let pm_object = ctx
        .find(Kind::PaymentMethod, pm_id)
        .cloned()
        .unwrap_or(Value::Null);
    let error = json!({
        "charge": charge["id"],
        "code": decline.code,
        "decline_code": decline.decline_code,
        "doc_url": doc_url(decline.code),
        "message": decline.message,
        "payment_method": pm_object,
        "type": "card_error"
    });
    pi["status"] = json!("requires_payment_method");
    pi["payment_method"] = Value::Null;
    pi["latest_charge"] = charge["id"].clone();
    pi["last_payment_error"] = error.clone();
    ctx.save_pi(&pi);
    ctx.emit("charge.failed", charge);
    ctx.emit("payment_intent.payment_failed", pi.clone());
    let mut envelope = error;
    envelope["payment_intent"] = pi;
    envelope["request_log_url"] = json!(format!(
        "https://dashboard.stripe.com/test/logs/{}",
        ctx.origin.request_id.as_deref().unwrap_or_default()
    ));
    StripeErr {
        status: StatusCode::PAYMENT_REQUIRED,
        error: envelope,
    }
}

/// `amount` of the authorisation of `pi` (awaiting capture) is captured; the rest is released,
/// and counts as refunded on the charge, as at Stripe.
pub(crate) fn capture(ctx: &mut Ctx<'_>, mut pi: Value, amount: i64) -> Result<Value, StripeErr> {
    let charge_id = pi["latest_charge"].as_str().unwrap_or_default().to_string();
    let mut charge = ctx
        .find(Kind::Charge, &charge_id)
        .cloned()
        .ok_or_else(|| internal("a PaymentIntent awaiting capture has no charge"))?;
    charge["captured"] = json!(true);
    charge["amount_captured"] = json!(amount);
    charge["balance_transaction"] = json!(objects::new_id("txn"));
    balance::charge(ctx, &charge);
    connect::settle(ctx, &pi, &mut charge);
    ctx.put(Kind::Charge, charge);
    let charge = recompute_charge(ctx, &charge_id);
    pi["status"] = json!("succeeded");
    pi["amount_capturable"] = json!(0);
    pi["amount_received"] = json!(amount);
    ctx.save_pi(&pi);
    if let Some(charge) = charge {
        ctx.emit("charge.captured", charge.clone());
        let pm = pi["payment_method"].as_str().unwrap_or_default();
        if let Some(card) = ctx.card_of(pm) {
            after_paid(ctx, &card, &charge);
        }
    }
    ctx.emit("payment_intent.succeeded", pi.clone());
    Ok(pi)
}

/// Cancelling an authorisation releases it: the uncaptured charge of `pi` shows as refunded.
pub(crate) fn release(ctx: &mut Ctx<'_>, pi: &Value) {
    let released = pi["latest_charge"]
        .as_str()
        .and_then(|charge| recompute_charge(ctx, charge));
    if let Some(charge) = released {
        ctx.emit("charge.refunded", charge);
    }
}

/// The PaymentIntent and its charge, while its debit is still `processing`.
pub(crate) fn processing(ctx: &Ctx<'_>, pi_id: &str, charge_id: &str) -> Option<(Value, Value)> {
    let pi = ctx.find(Kind::PaymentIntent, pi_id)?;
    let charge = ctx.find(Kind::Charge, charge_id)?;
    (pi["status"] == "processing" && charge["status"] == "pending")
        .then(|| (pi.clone(), charge.clone()))
}

/// A delayed method's debit arrives: the `processing` payment succeeds.
pub(crate) fn processing_succeeds(ctx: &mut Ctx<'_>, pi_id: &str, charge_id: &str) {
    let Some((mut pi, mut charge)) = processing(ctx, pi_id, charge_id) else {
        return;
    };
    charge["status"] = json!("succeeded");
    charge["paid"] = json!(true);
    charge["outcome"]["seller_message"] = json!("Payment complete.");
    balance::charge(ctx, &charge);
    connect::settle(ctx, &pi, &mut charge);
    ctx.put(Kind::Charge, charge.clone());
    pi["status"] = json!("succeeded");
    pi["amount_received"] = pi["amount"].clone();
    ctx.save_pi(&pi);
    ctx.emit("charge.succeeded", charge.clone());
    ctx.emit("payment_intent.succeeded", pi.clone());
    if let Some(card) = pi["payment_method"].as_str().and_then(|pm| ctx.card_of(pm)) {
        after_paid(ctx, &card, &charge);
    }
}

/// What a test payment method does once its charge is captured: `pm_card_createDispute` is
/// disputed a little later, and so is the debit of SEPA's disputed test IBAN.
fn after_paid(ctx: &mut Ctx<'_>, card: &TestCard, charge: &Value) {
    match card.after {
        After::Dispute => ctx.schedule(json!({"do": "dispute_open", "charge": charge["id"]})),
        After::DisputeDebitNotAuthorized => ctx.schedule(json!({
            "do": "dispute_open", "charge": charge["id"], "reason": "debit_not_authorized"
        })),
        _ => {}
    }
}

/// Refunds that count against a charge: those not failed or canceled.
pub(crate) fn active(refund: &Value) -> bool {
    matches!(refund["status"].as_str(), Some("succeeded" | "pending"))
}

/// The charge's refunds, newest first.
fn refunds_of<'a>(ctx: &'a Ctx<'_>, charge_id: &str) -> Vec<&'a Value> {
    let mut found: Vec<&Value> = ctx
        .all(Kind::Refund)
        .filter(|r| r["charge"] == charge_id)
        .collect();
    found.reverse();
    found
}

/// The charge's `refunds` list, as `expand[]=refunds` shows it (the ten newest).
pub(crate) fn charge_refunds_list(ctx: &Ctx<'_>, charge_id: &str) -> Value {
    let all = refunds_of(ctx, charge_id);
    let has_more = all.len() > 10;
    list(
        &format!("/v1/charges/{charge_id}/refunds"),
        all.into_iter().take(10).cloned().collect(),
        has_more,
    )
}

/// What the charge's refunds that count take back.
pub(crate) fn refunded(ctx: &Ctx<'_>, charge_id: &str) -> i64 {
    refunds_of(ctx, charge_id)
        .into_iter()
        .filter(|r| active(r))
        .map(|r| r["amount"].as_i64().unwrap_or(0))
        .sum()
}

/// Sets the charge's `amount_refunded` and `refunded` from its refunds and from what was
/// released of its authorisation (the part not captured, or all of it when the PaymentIntent
/// was canceled before capture). Returns the charge as saved.
pub(crate) fn recompute_charge(ctx: &mut Ctx<'_>, charge_id: &str) -> Option<Value> {
    let mut charge = ctx.find(Kind::Charge, charge_id)?.clone();
    let amount = charge["amount"].as_i64().unwrap_or(0);
    let refunded = refunded(ctx, charge_id);
    let pi_canceled = charge["payment_intent"]
        .as_str()
        .and_then(|pi| ctx.find(Kind::PaymentIntent, pi))
        .is_some_and(|pi| pi["status"] == "canceled");
    let released = if charge["captured"] == true {
        amount - charge["amount_captured"].as_i64().unwrap_or(amount)
    } else if pi_canceled {
        amount
    } else {
        0
    };
    let total = released + refunded;
    charge["amount_refunded"] = json!(total);
    charge["refunded"] = json!(charge["status"] == "succeeded" && total >= amount);
    ctx.put(Kind::Charge, charge.clone());
    Some(charge)
}
