//! Money going back: refunds (and what Stripe's refund test methods do to them later),
//! disputes (opened by `pm_card_createDispute`, driven by the evidence Stripe's test mode
//! reads), and the actions of the sandbox's timers.

use serde_json::{json, Map, Value};

use crate::cards::After;
use crate::ctx::{Ctx, Origin};
use crate::currency::Currency;
use crate::error::{
    below_one, invalid, invalid_hash, invalid_string, missing_param, unknown_parameter, StripeErr,
};
use crate::lists::{list, ListQuery, LIST_PARAMS};
use crate::objects;
use crate::params::{apply_metadata, flag_param, integer_param, string_param, update_metadata};
use crate::shared::{Effects, Shared};
use crate::store::{now, Kind, Store};

/// Refunds that count against a charge: those not failed or canceled.
fn active(refund: &Value) -> bool {
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
fn refunded(ctx: &Ctx<'_>, charge_id: &str) -> i64 {
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

/// An amount as Stripe writes it in messages: `$12.50`, `€3.00`, `¥500`, else `12.50 MXN`.
fn money(currency: &str, amount: i64) -> String {
    let major = Currency::parse(currency)
        .map(|c| c.major(amount))
        .unwrap_or_else(|| amount.to_string());
    match currency {
        "usd" => format!("${major}"),
        "eur" => format!("€{major}"),
        "gbp" => format!("£{major}"),
        "jpy" => format!("¥{major}"),
        other => format!("{major} {}", other.to_ascii_uppercase()),
    }
}

/// `POST /v1/refunds`.
pub(crate) fn create_refund(
    ctx: &mut Ctx<'_>,
    params: &Map<String, Value>,
) -> Result<Value, StripeErr> {
    ctx.secret_call(
        params,
        &[
            "payment_intent",
            "charge",
            "amount",
            "reason",
            "metadata",
            "expand",
        ],
    )?;
    let charge_id = match (
        string_param(params, "payment_intent")?,
        string_param(params, "charge")?,
    ) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "You can only specify one of these parameters: charge, payment_intent.",
                None,
                None,
            ))
        }
        (None, None) => {
            return Err(invalid(
                "One of the following params should be provided for this request: payment_intent or charge.",
                None,
                Some("parameter_missing"),
            ))
        }
        (Some(pi_id), None) => {
            let pi = ctx
                .find(Kind::PaymentIntent, pi_id)
                .ok_or_else(|| missing_param("payment_intent", pi_id, "payment_intent"))?;
            if pi["status"] != "succeeded" {
                return Err(invalid(
                    format!(
                        "This PaymentIntent ({pi_id}) does not have a successful charge to refund."
                    ),
                    Some("payment_intent"),
                    Some("payment_intent_unexpected_state"),
                ));
            }
            pi["latest_charge"].as_str().unwrap_or_default().to_string()
        }
        (None, Some(charge_id)) => charge_id.to_string(),
    };
    let charge = ctx
        .find(Kind::Charge, &charge_id)
        .cloned()
        .ok_or_else(|| missing_param("charge", &charge_id, "charge"))?;
    if charge["status"] != "succeeded" || charge["captured"] != true {
        return Err(invalid(
            format!(
                "This charge ({charge_id}) cannot be refunded: it has not succeeded, or has not \
                 been captured (cancel its PaymentIntent to release an authorisation)."
            ),
            Some("charge"),
            None,
        ));
    }
    let amount = integer_param::<i64>(params, "amount")?;
    if amount.is_some_and(|n| n < 1) {
        return Err(below_one("amount"));
    }
    let reason = string_param(params, "reason")?;
    if let Some(r) = reason {
        if !["duplicate", "fraudulent", "requested_by_customer"].contains(&r) {
            return Err(invalid(
                format!("Invalid reason: must be one of duplicate, fraudulent, or requested_by_customer (got {r})"),
                Some("reason"),
                None,
            ));
        }
    }
    let mut metadata = Map::new();
    apply_metadata(&mut metadata, params)?;
    let pi_id = charge["payment_intent"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let faulty = ctx
        .shared
        .faults
        .lock()
        .map(|f| f.refund_balance_insufficient.contains(&pi_id))
        .unwrap_or(false);
    if faulty {
        return Err(crate::faults::balance_insufficient());
    }
    let disputed = ctx
        .all(Kind::Dispute)
        .any(|d| d["charge"] == charge_id.as_str() && d["is_charge_refundable"] != true);
    if disputed {
        return Err(invalid(
            format!("Charge {charge_id} has been charged back; cannot issue a refund."),
            None,
            Some("charge_disputed"),
        ));
    }
    let captured = charge["amount_captured"].as_i64().unwrap_or(0);
    let left = captured - refunded(ctx, &charge_id);
    if left <= 0 {
        return Err(invalid(
            format!("Charge {charge_id} has already been refunded."),
            None,
            Some("charge_already_refunded"),
        ));
    }
    let amount = amount.unwrap_or(left);
    if amount > left {
        let currency = charge["currency"].as_str().unwrap_or("usd");
        return Err(invalid(
            format!(
                "Refund amount ({}) is greater than unrefunded amount on charge ({})",
                money(currency, amount),
                money(currency, left)
            ),
            Some("amount"),
            Some("amount_too_large"),
        ));
    }
    let behaviour = charge["payment_method"]
        .as_str()
        .and_then(|pm| ctx.card_of(pm))
        .map(|c| c.after)
        .unwrap_or(After::Nothing);
    // Stripe's test methods: refundFail's refunds look successful, then fail; pendingRefund's
    // wait in `pending`, then succeed.
    let status = match behaviour {
        After::RefundPending => "pending",
        _ => "succeeded",
    };
    let refund = objects::refund(objects::NewRefund {
        charge: &charge,
        amount,
        reason,
        metadata,
        status,
        created: now(),
    });
    ctx.put(Kind::Refund, refund.clone());
    let charge = recompute_charge(ctx, &charge_id).unwrap_or(charge);
    ctx.emit("refund.created", refund.clone());
    ctx.emit("charge.refunded", charge);
    match behaviour {
        After::RefundFails => ctx.schedule(json!({"do": "refund_fail", "refund": refund["id"]})),
        After::RefundPending => {
            ctx.schedule(json!({"do": "refund_settle", "refund": refund["id"]}))
        }
        _ => {}
    }
    Ok(refund)
}

/// `POST /v1/refunds/:id`: its metadata.
pub(crate) fn update_refund(
    ctx: &mut Ctx<'_>,
    id: &str,
    params: &Map<String, Value>,
) -> Result<Value, StripeErr> {
    ctx.secret_call(params, &["metadata", "expand"])?;
    let mut refund = ctx.object(Kind::Refund, id, "id")?;
    let before = refund.clone();
    update_metadata(&mut refund, params)?;
    if refund != before {
        ctx.put(Kind::Refund, refund.clone());
        ctx.emit("refund.updated", refund.clone());
        ctx.emit("charge.refund.updated", refund.clone());
    }
    Ok(refund)
}

/// `GET /v1/charges/:id/refunds`.
pub(crate) fn list_charge_refunds(
    ctx: &mut Ctx<'_>,
    id: &str,
    params: &Map<String, Value>,
) -> Result<Value, StripeErr> {
    ctx.secret_call(params, LIST_PARAMS)?;
    ctx.object(Kind::Charge, id, "charge")?;
    let query = ListQuery::parse(params)?;
    ctx.page(
        &query,
        Kind::Refund,
        &format!("/v1/charges/{id}/refunds"),
        |r| r["charge"] == id,
    )
}

fn responding(dispute: &Value) -> bool {
    matches!(
        dispute["status"].as_str(),
        Some("needs_response" | "warning_needs_response")
    )
}

/// `POST /v1/disputes/:id`: `metadata`, and `evidence[…]` submitted unless `submit=false`.
/// Stripe's test mode decides a submitted dispute by `evidence[uncategorized_text]`:
/// `winning_evidence` wins it, `losing_evidence` loses it, a little later.
pub(crate) fn update_dispute(
    ctx: &mut Ctx<'_>,
    id: &str,
    params: &Map<String, Value>,
) -> Result<Value, StripeErr> {
    ctx.secret_call(params, &["evidence", "metadata", "submit", "expand"])?;
    let mut dispute = ctx.object(Kind::Dispute, id, "dispute")?;
    let before = dispute.clone();
    update_metadata(&mut dispute, params)?;
    let submit = flag_param(params, "submit")?.unwrap_or(true);
    let evidence = match params.get("evidence") {
        None => None,
        Some(Value::Object(given)) => Some(given),
        Some(_) => return Err(invalid_hash("evidence")),
    };
    if evidence.is_some() || params.contains_key("submit") {
        if !responding(&dispute) {
            return Err(invalid(
                format!(
                    "This dispute ({id}) has a status of {}: its evidence can no longer be changed.",
                    dispute["status"].as_str().unwrap_or_default()
                ),
                Some("evidence"),
                None,
            ));
        }
        for (field, value) in evidence.into_iter().flatten() {
            let param = format!("evidence[{field}]");
            if !objects::EVIDENCE_FIELDS.contains(&field.as_str()) {
                return Err(unknown_parameter(&param));
            }
            let Some(text) = value.as_str() else {
                return Err(invalid_string(&param));
            };
            dispute["evidence"][field.as_str()] = if text.is_empty() {
                Value::Null
            } else {
                json!(text)
            };
        }
        dispute["evidence_details"]["has_evidence"] = json!(objects::EVIDENCE_FIELDS
            .iter()
            .any(|f| !dispute["evidence"][*f].is_null()));
        if submit {
            let count = dispute["evidence_details"]["submission_count"]
                .as_i64()
                .unwrap_or(0);
            dispute["evidence_details"]["submission_count"] = json!(count + 1);
            dispute["status"] = json!(if dispute["status"] == "warning_needs_response" {
                "warning_under_review"
            } else {
                "under_review"
            });
            let outcome = match dispute["evidence"]["uncategorized_text"].as_str() {
                Some("winning_evidence") => Some("won"),
                Some("losing_evidence") => Some("lost"),
                _ => None,
            };
            if let Some(status) = outcome {
                ctx.schedule(json!({"do": "dispute_close", "dispute": id, "status": status}));
            }
        }
    }
    if dispute != before {
        ctx.put(Kind::Dispute, dispute.clone());
        ctx.emit("charge.dispute.updated", dispute.clone());
    }
    Ok(dispute)
}

/// `POST /v1/disputes/:id/close`: accepting the dispute, which loses it.
pub(crate) fn close_dispute(
    ctx: &mut Ctx<'_>,
    id: &str,
    params: &Map<String, Value>,
) -> Result<Value, StripeErr> {
    ctx.secret_call(params, &["expand"])?;
    let mut dispute = ctx.object(Kind::Dispute, id, "dispute")?;
    if !responding(&dispute) {
        return Err(invalid(
            format!(
                "This dispute ({id}) has a status of {} and cannot be closed.",
                dispute["status"].as_str().unwrap_or_default()
            ),
            None,
            None,
        ));
    }
    dispute["status"] = json!(if dispute["status"] == "warning_needs_response" {
        "warning_closed"
    } else {
        "lost"
    });
    ctx.put(Kind::Dispute, dispute.clone());
    ctx.emit("charge.dispute.closed", dispute.clone());
    Ok(dispute)
}

/// Runs a timer's action; returns the events to deliver. An action whose object has moved on
/// (a refund already failed, a dispute already closed) does nothing.
pub(crate) fn fire(shared: &Shared, store: &mut Store, action: &Value) -> Effects {
    let mut ctx = Ctx::new(store, shared, Origin::sandbox());
    let text = |key: &str| action[key].as_str().unwrap_or_default().to_string();
    match action["do"].as_str().unwrap_or_default() {
        "refund_fail" => refund_settles(&mut ctx, &text("refund"), false),
        "refund_settle" => refund_settles(&mut ctx, &text("refund"), true),
        "dispute_open" => open_dispute(&mut ctx, &text("charge")),
        "dispute_close" => close_after_review(&mut ctx, &text("dispute"), &text("status")),
        "processing_succeed" => {
            processing_succeeds(&mut ctx, &text("payment_intent"), &text("charge"))
        }
        other => tracing::warn!(action = other, "unknown sandbox timer skipped"),
    }
    ctx.finish()
}

fn refund_settles(ctx: &mut Ctx<'_>, id: &str, succeeded: bool) {
    let Some(mut refund) = ctx.find(Kind::Refund, id).cloned() else {
        return;
    };
    if !active(&refund) {
        return;
    }
    if succeeded {
        refund["status"] = json!("succeeded");
    } else {
        refund["status"] = json!("failed");
        refund["failure_reason"] = json!("expired_or_canceled_card");
        refund["failure_balance_transaction"] = json!(objects::new_id("txn"));
    }
    ctx.put(Kind::Refund, refund.clone());
    if let Some(charge) = refund["charge"].as_str() {
        recompute_charge(ctx, charge);
    }
    ctx.emit("refund.updated", refund.clone());
    ctx.emit("charge.refund.updated", refund.clone());
    if !succeeded {
        ctx.emit("refund.failed", refund);
    }
}

fn open_dispute(ctx: &mut Ctx<'_>, charge_id: &str) {
    let Some(mut charge) = ctx.find(Kind::Charge, charge_id).cloned() else {
        return;
    };
    if charge["disputed"] == true {
        return;
    }
    let dispute = objects::dispute(&charge, now());
    ctx.put(Kind::Dispute, dispute.clone());
    charge["disputed"] = json!(true);
    ctx.put(Kind::Charge, charge);
    ctx.emit("charge.dispute.created", dispute.clone());
    ctx.emit("charge.dispute.funds_withdrawn", dispute);
}

fn close_after_review(ctx: &mut Ctx<'_>, id: &str, status: &str) {
    let Some(mut dispute) = ctx.find(Kind::Dispute, id).cloned() else {
        return;
    };
    if !matches!(
        dispute["status"].as_str(),
        Some("under_review" | "warning_under_review")
    ) {
        return;
    }
    dispute["status"] = json!(status);
    let reinstated = status == "won";
    if reinstated {
        let amount = dispute["amount"].as_i64().unwrap_or(0);
        let txn = objects::balance_transaction(
            amount,
            -objects::DISPUTE_FEE,
            &dispute["currency"],
            id,
            format!(
                "Chargeback reversal for {}",
                dispute["charge"].as_str().unwrap_or_default()
            ),
            "dispute_reversal",
            now(),
        );
        if let Some(list) = dispute["balance_transactions"].as_array_mut() {
            list.push(txn);
        }
    }
    ctx.put(Kind::Dispute, dispute.clone());
    ctx.emit("charge.dispute.closed", dispute.clone());
    if reinstated {
        ctx.emit("charge.dispute.funds_reinstated", dispute);
    }
}

fn processing_succeeds(ctx: &mut Ctx<'_>, pi_id: &str, charge_id: &str) {
    let Some(mut pi) = ctx.find(Kind::PaymentIntent, pi_id).cloned() else {
        return;
    };
    let Some(mut charge) = ctx.find(Kind::Charge, charge_id).cloned() else {
        return;
    };
    if pi["status"] != "processing" || charge["status"] != "pending" {
        return;
    }
    charge["status"] = json!("succeeded");
    charge["paid"] = json!(true);
    charge["outcome"]["seller_message"] = json!("Payment complete.");
    ctx.put(Kind::Charge, charge.clone());
    pi["status"] = json!("succeeded");
    pi["amount_received"] = pi["amount"].clone();
    ctx.save_pi(&pi);
    ctx.emit("charge.succeeded", charge);
    ctx.emit("payment_intent.succeeded", pi);
}
