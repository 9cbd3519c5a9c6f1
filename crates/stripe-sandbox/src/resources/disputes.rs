//! Disputes: opened by `pm_card_createDispute` a little after its charge, then retrieved,
//! listed, updated with evidence (which decides them as Stripe's test mode does) and closed.

use serde_json::{json, Map, Value};

use crate::balance;
use crate::ctx::Ctx;
use crate::error::{invalid, invalid_hash, invalid_string, unknown_parameter, StripeErr};
use crate::objects;
use crate::params::{flag_param, update_metadata};
use crate::route::{field, Action, Handler, Route};
use crate::store::{now, Kind};

pub(crate) const ROUTES: &[Route] = &[
    Route::get(
        "/v1/disputes",
        Handler::List(Kind::Dispute, &["payment_intent", "charge"]),
    ),
    Route::get("/v1/disputes/:id", Handler::Retrieve(Kind::Dispute)),
    Route::post(
        "/v1/disputes/:id",
        Handler::Run(|ctx, call| update(ctx, call.id(), call.params)),
    ),
    Route::post(
        "/v1/disputes/:id/close",
        Handler::Run(|ctx, call| close(ctx, call.id(), call.params)),
    ),
];

pub(crate) const ACTIONS: &[Action] = &[
    Action {
        name: "dispute_open",
        run: |ctx, action| open(ctx, field(action, "charge"), field(action, "reason")),
    },
    Action {
        name: "dispute_close",
        run: |ctx, action| {
            close_after_review(ctx, field(action, "dispute"), field(action, "status"))
        },
    },
];

/// Whether the dispute still takes evidence.
fn responding(dispute: &Value) -> bool {
    matches!(
        dispute["status"].as_str(),
        Some("needs_response" | "warning_needs_response")
    )
}

/// `POST /v1/disputes/:id`: `metadata`, and `evidence[…]` submitted unless `submit=false`.
/// Stripe's test mode decides a submitted dispute by `evidence[uncategorized_text]`:
/// `winning_evidence` wins it, `losing_evidence` loses it, a little later.
fn update(ctx: &mut Ctx<'_>, id: &str, params: &Map<String, Value>) -> Result<Value, StripeErr> {
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
fn close(ctx: &mut Ctx<'_>, id: &str, params: &Map<String, Value>) -> Result<Value, StripeErr> {
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

/// The charge is disputed (for `reason`, else `fraudulent`), unless it already is. A dispute of a
/// payment that is not a card's has no card details.
fn open(ctx: &mut Ctx<'_>, charge_id: &str, reason: &str) {
    let Some(mut charge) = ctx.find(Kind::Charge, charge_id).cloned() else {
        return;
    };
    if charge["disputed"] == true {
        return;
    }
    let mut dispute = objects::dispute(&charge, now());
    if !reason.is_empty() {
        dispute["reason"] = json!(reason);
    }
    if charge["payment_method_details"]["type"] != "card" {
        if let Some(object) = dispute.as_object_mut() {
            object.remove("payment_method_details");
        }
    }
    let withdrawal = balance::dispute_withdrawal(ctx, &dispute);
    dispute["balance_transactions"] = json!([withdrawal]);
    ctx.put(Kind::Dispute, dispute.clone());
    charge["disputed"] = json!(true);
    ctx.put(Kind::Charge, charge);
    ctx.emit("charge.dispute.created", dispute.clone());
    ctx.emit("charge.dispute.funds_withdrawn", dispute);
}

/// Stripe decides a submitted dispute: `won` or `lost`.
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
        if let Some(txn) = balance::dispute_reinstatement(ctx, &dispute) {
            if let Some(list) = dispute["balance_transactions"].as_array_mut() {
                list.push(txn);
            }
        }
    }
    ctx.put(Kind::Dispute, dispute.clone());
    ctx.emit("charge.dispute.closed", dispute.clone());
    if reinstated {
        ctx.emit("charge.dispute.funds_reinstated", dispute);
    }
}
