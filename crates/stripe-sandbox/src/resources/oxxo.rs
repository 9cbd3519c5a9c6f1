//! OXXO vouchers. Confirming a PaymentIntent with an OXXO PaymentMethod issues a voucher
//! (`requires_action`, `next_action.oxxo_display_details`) that the customer pays in cash at a
//! store, or that expires at the end of its last day in Mexico City: then the PaymentIntent is
//! back to `requires_payment_method` with `payment_intent.payment_failed`. The sandbox's own
//! controls stand for the store (`pay_voucher`) and for time passing (`expire_voucher`); Stripe's
//! test e-mails (`…succeed_immediately@…`, `…expire_immediately@…`, `…expire_with_delay@…`)
//! act by themselves. Expiry on time is a timer, so it happens after a restart too.

use serde_json::{json, Map, Value};

use crate::clock::MEXICO_CITY;
use crate::ctx::Ctx;
use crate::error::{doc_url, invalid, StripeErr};
use crate::methods::OXXO_DEFAULT_DAYS;
use crate::pay;
use crate::route::{field, Action, Handler, Route};
use crate::store::{now, now_ms, Kind};

pub(crate) const ROUTES: &[Route] = &[
    Route::post(
        "/_sandbox/payment_intents/:id/pay_voucher",
        Handler::Run(|ctx, call| pay_voucher(ctx, call.id(), call.params)),
    ),
    Route::post(
        "/_sandbox/payment_intents/:id/expire_voucher",
        Handler::Run(|ctx, call| expire_voucher(ctx, call.id(), call.params)),
    ),
];

pub(crate) const ACTIONS: &[Action] = &[
    Action {
        name: "oxxo_expire",
        run: |ctx, action| {
            if let Some(pi) = waiting(
                ctx,
                field(action, "payment_intent"),
                field(action, "number"),
            ) {
                expire(ctx, pi);
            }
        },
    },
    Action {
        name: "oxxo_pay",
        run: |ctx, action| {
            if let Some(pi) = waiting(
                ctx,
                field(action, "payment_intent"),
                field(action, "number"),
            ) {
                if !past_due(ctx, &pi) {
                    // A voucher the sandbox pays by itself was checked when it was issued.
                    let _ = settle(ctx, pi);
                }
            }
        },
    },
];

/// The last second (23:59:59 in Mexico City) of the day `days` after the one `now` falls on
/// there, as Stripe dates a voucher's `expires_after`.
pub(crate) fn last_second(now: i64, days: i64) -> i64 {
    let today = (now + MEXICO_CITY).div_euclid(86_400);
    (today + days + 1) * 86_400 - 1 - MEXICO_CITY
}

fn expires_after(pi: &Value) -> i64 {
    pi["next_action"]["oxxo_display_details"]["expires_after"]
        .as_i64()
        .unwrap_or(0)
}

/// Whether the voucher of `pi` is past its end: its `expires_after` has gone by, or its expiry
/// is due and its timer has not yet run. Then it can no longer be paid.
fn past_due(ctx: &Ctx<'_>, pi: &Value) -> bool {
    let number = &pi["next_action"]["oxxo_display_details"]["number"];
    let due = ctx.timers().into_iter().any(|(_, timer)| {
        timer.action["do"] == "oxxo_expire"
            && timer.action["payment_intent"] == pi["id"]
            && timer.action["number"] == *number
            && timer.due_ms <= now_ms()
    });
    due || now() > expires_after(pi)
}

/// The voucher's number: 32 digits, as Stripe's are long.
fn voucher_number() -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..32)
        .map(|_| char::from(b'0' + rng.gen_range(0..10)))
        .collect()
}

/// Confirming with OXXO: the voucher is issued and the PaymentIntent waits for it to be paid.
/// Its expiry (and, for `…succeed_immediately@…`, its payment) is scheduled.
pub(crate) fn issue(ctx: &mut Ctx<'_>, mut pi: Value, pm_id: &str) -> Result<Value, StripeErr> {
    let email = ctx
        .find(Kind::PaymentMethod, pm_id)
        .and_then(|pm| pm["billing_details"]["email"].as_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let days = pi["payment_method_options"]["oxxo"]["expires_after_days"]
        .as_i64()
        .unwrap_or(OXXO_DEFAULT_DAYS);
    let start_ms = now_ms();
    let start = start_ms.div_euclid(1000);
    // Stripe's test e-mails: `expire_immediately` sets the expiry to now, `expire_with_delay`
    // to a little later (three minutes at Stripe, the sandbox's delay here).
    let (expires_after, due_ms) = if email.contains("expire_immediately@") {
        (start, start_ms)
    } else if email.contains("expire_with_delay@") {
        let due = start_ms.saturating_add(ctx.shared.delay_ms());
        (due.div_euclid(1000), due)
    } else {
        let last = last_second(start, days);
        (last, (last + 1) * 1000)
    };
    let id = pi["id"].as_str().unwrap_or_default().to_string();
    let number = voucher_number();
    pi["payment_method"] = json!(pm_id);
    pi["status"] = json!("requires_action");
    pi["next_action"] = json!({
        "type": "oxxo_display_details",
        "oxxo_display_details": {
            "expires_after": expires_after,
            "hosted_voucher_url": format!("{}{}/oxxo/{id}", ctx.origin.base, crate::hosted::PREFIX),
            "number": number,
        }
    });
    ctx.save_pi(&pi);
    ctx.emit("payment_intent.requires_action", pi.clone());
    ctx.schedule_at(
        due_ms,
        json!({"do": "oxxo_expire", "payment_intent": id, "number": number}),
    );
    if email.contains("succeed_immediately@") {
        ctx.schedule(json!({"do": "oxxo_pay", "payment_intent": id, "number": number}));
    }
    Ok(pi)
}

/// The PaymentIntent, if it still waits for the voucher with this number (any, when empty).
fn waiting(ctx: &Ctx<'_>, id: &str, number: &str) -> Option<Value> {
    let pi = ctx.find(Kind::PaymentIntent, id)?;
    let details = &pi["next_action"]["oxxo_display_details"];
    let current = pi["status"] == "requires_action" && details.is_object();
    (current && (number.is_empty() || details["number"] == number)).then(|| pi.clone())
}

/// A control's PaymentIntent, which must be waiting for a voucher.
fn with_voucher(ctx: &Ctx<'_>, id: &str, params: &Map<String, Value>) -> Result<Value, StripeErr> {
    ctx.secret_call(params, &["expand"])?;
    let pi = ctx.payment_intent(id)?;
    waiting(ctx, id, "").ok_or_else(|| {
        invalid(
            format!(
                "This PaymentIntent ({id}) has no OXXO voucher waiting to be paid (its status is {}).",
                pi["status"].as_str().unwrap_or_default()
            ),
            None,
            Some("payment_intent_unexpected_state"),
        )
    })
}

/// `POST /_sandbox/payment_intents/:id/pay_voucher`: the customer pays the voucher at a store,
/// and the PaymentIntent succeeds with its charge. A voucher past its expiry cannot be paid: it
/// expires (if its timer has not yet made it so) and the control is refused.
fn pay_voucher(
    ctx: &mut Ctx<'_>,
    id: &str,
    params: &Map<String, Value>,
) -> Result<Value, StripeErr> {
    let pi = with_voucher(ctx, id, params)?;
    let deadline = expires_after(&pi);
    if past_due(ctx, &pi) {
        expire(ctx, pi);
        return Err(invalid(
            format!(
                "This OXXO voucher expired at {deadline} and can no longer be paid; the \
                 PaymentIntent ({id}) is back to requires_payment_method."
            ),
            None,
            Some("payment_intent_payment_attempt_expired"),
        ));
    }
    settle(ctx, pi)
}

/// `POST /_sandbox/payment_intents/:id/expire_voucher`: the voucher expires now, unpaid.
fn expire_voucher(
    ctx: &mut Ctx<'_>,
    id: &str,
    params: &Map<String, Value>,
) -> Result<Value, StripeErr> {
    let pi = with_voucher(ctx, id, params)?;
    Ok(expire(ctx, pi))
}

/// The voucher is paid: the PaymentIntent succeeds, with a charge showing the voucher.
fn settle(ctx: &mut Ctx<'_>, pi: Value) -> Result<Value, StripeErr> {
    let pm_id = pi["payment_method"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let card = ctx.card_of(&pm_id).ok_or_else(|| {
        crate::error::internal("a PaymentIntent waiting for a voucher has no OXXO PaymentMethod")
    })?;
    pay::pay(ctx, pi, &pm_id, &card)
}

/// The voucher expired unpaid: as at Stripe, the PaymentIntent is back to
/// `requires_payment_method` with `last_payment_error`, and `payment_intent.payment_failed`.
fn expire(ctx: &mut Ctx<'_>, mut pi: Value) -> Value {
    let pm = pi["payment_method"]
        .as_str()
        .and_then(|id| ctx.find(Kind::PaymentMethod, id))
        .cloned()
        .unwrap_or(Value::Null);
    let code = "payment_intent_payment_attempt_expired";
    pi["status"] = json!("requires_payment_method");
    pi["next_action"] = Value::Null;
    pi["payment_method"] = Value::Null;
    pi["last_payment_error"] = json!({
        "code": code,
        "doc_url": doc_url(code),
        "message": "The latest payment attempt of this PaymentIntent has expired: its OXXO \
                    voucher was not paid in time. Provide a new payment method to attempt to \
                    fulfill this PaymentIntent again.",
        "payment_method": pm,
        "type": "invalid_request_error",
    });
    ctx.save_pi(&pi);
    ctx.emit("payment_intent.payment_failed", pi.clone());
    pi
}

#[cfg(test)]
mod tests {
    use super::last_second;

    #[test]
    fn a_voucher_ends_at_the_last_second_of_its_day_in_mexico_city() {
        // 2025-01-06 (a Monday) 12:00 in Mexico City is 18:00 UTC; two days later is Wednesday,
        // whose last second there is 2025-01-09 05:59:59 UTC.
        let monday_noon = 1_736_186_400;
        assert_eq!(last_second(monday_noon, 2), 1_736_402_399);
        // 23:30 on Monday in Mexico City is already Tuesday in UTC: still Monday's voucher.
        assert_eq!(
            last_second(monday_noon + 11 * 3600 + 1800, 2),
            1_736_402_399
        );
        // And 00:10 on Tuesday there starts the next count.
        assert_eq!(last_second(monday_noon + 12 * 3600 + 600, 2), 1_736_488_799);
    }
}
