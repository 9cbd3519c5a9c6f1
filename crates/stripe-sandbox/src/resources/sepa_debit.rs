//! SEPA Direct Debit's later turns. A debit confirmed with one of Stripe's test IBANs is
//! `processing` (`pay`), then succeeds (`pay::processing_succeeds`, and for
//! `AT591904300235473203` a `debit_not_authorized` dispute a little later) or, for the failing
//! IBANs, fails: the charge `failed` with the IBAN's failure code, the PaymentIntent back to
//! `requires_payment_method` with `payment_intent.payment_failed`.

use serde_json::{json, Value};

use crate::cards::CardResult;
use crate::ctx::Ctx;
use crate::error::doc_url;
use crate::objects;
use crate::route::{field, Action};
use crate::store::Kind;

pub(crate) const ACTIONS: &[Action] = &[Action {
    name: "processing_fail",
    run: |ctx, action| {
        fail(
            ctx,
            field(action, "payment_intent"),
            field(action, "charge"),
        )
    },
}];

/// The debit of a `processing` PaymentIntent fails, as its test IBAN says.
fn fail(ctx: &mut Ctx<'_>, pi_id: &str, charge_id: &str) {
    let Some((mut pi, mut charge)) = crate::pay::processing(ctx, pi_id, charge_id) else {
        return;
    };
    let pm_id = pi["payment_method"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let Some(CardResult::ProcessingFails(decline)) = ctx.card_of(&pm_id).map(|c| c.result) else {
        return;
    };
    charge["status"] = json!("failed");
    charge["paid"] = json!(false);
    charge["failure_code"] = json!(decline.code);
    charge["failure_message"] = json!(decline.message);
    charge["failure_balance_transaction"] = json!(objects::new_id("txn"));
    charge["outcome"]["network_status"] = json!("declined_by_network");
    charge["outcome"]["reason"] = json!(decline.code);
    charge["outcome"]["type"] = json!("issuer_declined");
    charge["outcome"]["seller_message"] = json!("The bank returned the debit.");
    crate::balance::charge_failed(ctx, &charge);
    ctx.put(Kind::Charge, charge.clone());
    let pm = ctx
        .find(Kind::PaymentMethod, &pm_id)
        .cloned()
        .unwrap_or(Value::Null);
    pi["status"] = json!("requires_payment_method");
    pi["payment_method"] = Value::Null;
    pi["last_payment_error"] = json!({
        "charge": charge_id,
        "code": decline.code,
        "doc_url": doc_url(decline.code),
        "message": decline.message,
        "payment_method": pm,
        "type": "invalid_request_error",
    });
    ctx.save_pi(&pi);
    ctx.emit("charge.failed", charge);
    ctx.emit("payment_intent.payment_failed", pi);
}
