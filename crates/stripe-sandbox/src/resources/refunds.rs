//! Refunds: create (of a PaymentIntent or a Charge), retrieve, update, list (also a charge's
//! own), and what Stripe's refund test methods do to them later: `pm_card_refundFail`'s
//! refunds fail, `pm_card_pendingRefund`'s wait in `pending`, then succeed.

use serde_json::{json, Map, Value};

use crate::balance;
use crate::cards::After;
use crate::connect::{self, Giving};
use crate::ctx::Ctx;
use crate::currency::money;
use crate::error::{below_one, invalid, missing_param, StripeErr};
use crate::objects;
use crate::params::{apply_metadata, bool_param, integer_param, string_param, update_metadata};
use crate::pay::{active, recompute_charge, refunded};
use crate::route::{field, Action, Handler, Route};
use crate::store::{now, Kind};

pub(crate) const ROUTES: &[Route] = &[
    Route::post(
        "/v1/refunds",
        Handler::Run(|ctx, call| create(ctx, call.params)),
    ),
    Route::get(
        "/v1/refunds",
        Handler::List(Kind::Refund, &["payment_intent", "charge"]),
    ),
    Route::get("/v1/refunds/:id", Handler::Retrieve(Kind::Refund)),
    Route::post(
        "/v1/refunds/:id",
        Handler::Run(|ctx, call| update(ctx, call.id(), call.params)),
    ),
    Route::get(
        "/v1/charges/:id/refunds",
        Handler::Nested(Kind::Charge, Kind::Refund, "charge"),
    ),
];

pub(crate) const ACTIONS: &[Action] = &[
    Action {
        name: "refund_fail",
        run: |ctx, action| settle(ctx, field(action, "refund"), false),
    },
    Action {
        name: "refund_settle",
        run: |ctx, action| settle(ctx, field(action, "refund"), true),
    },
];

/// `POST /v1/refunds`.
fn create(ctx: &mut Ctx<'_>, params: &Map<String, Value>) -> Result<Value, StripeErr> {
    if params.contains_key("origin") || params.contains_key("customer") {
        return crate::resources::cash_balance::refund(ctx, params);
    }
    ctx.secret_call(
        params,
        &[
            "payment_intent",
            "charge",
            "amount",
            "reason",
            "metadata",
            "expand",
            "refund_application_fee",
            "reverse_transfer",
        ],
    )?;
    let giving = Giving {
        application_fee: bool_param(params, "refund_application_fee")?,
        transfer: bool_param(params, "reverse_transfer")?,
    };
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
    if let Some(transfer) = charge["source_transfer"].as_str() {
        return Err(invalid(
            format!(
                "Charge {charge_id} is the payment of transfer {transfer} to this account: reverse \
                 the transfer instead (POST /v1/transfers/{transfer}/reversals)."
            ),
            Some("charge"),
            None,
        ));
    }
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
    crate::methods::check_refundable(&charge)?;
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
    let before = refunded(ctx, &charge_id);
    let left = captured - before;
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
    let mut refund = objects::refund(objects::NewRefund {
        charge: &charge,
        amount,
        reason,
        metadata,
        status,
        created: now(),
    });
    balance::refund(ctx, &refund, &charge);
    connect::after_refund(ctx, &charge, &mut refund, before, &giving);
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
fn update(ctx: &mut Ctx<'_>, id: &str, params: &Map<String, Value>) -> Result<Value, StripeErr> {
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

/// A refund of a test method that settles later: it succeeds, or fails.
fn settle(ctx: &mut Ctx<'_>, id: &str, succeeded: bool) {
    let Some(mut refund) = ctx.find(Kind::Refund, id).cloned() else {
        return;
    };
    if !active(&refund) {
        return;
    }
    if succeeded {
        refund["status"] = json!("succeeded");
        // A refund that waited for the customer (one from a cash balance) waits no longer.
        if let Some(object) = refund.as_object_mut() {
            object.remove("next_action");
        }
    } else {
        refund["status"] = json!("failed");
        refund["failure_reason"] = json!("expired_or_canceled_card");
        refund["failure_balance_transaction"] = json!(objects::new_id("txn"));
        balance::refund_failed(ctx, &refund);
    }
    ctx.put(Kind::Refund, refund.clone());
    if let Some(charge) = refund["charge"].as_str() {
        recompute_charge(ctx, charge);
    }
    ctx.emit("refund.updated", refund.clone());
    if refund["charge"].is_string() {
        ctx.emit("charge.refund.updated", refund.clone());
    }
    if !succeeded {
        ctx.emit("refund.failed", refund);
    }
}
