//! A customer's cash balance: what the customer sent by bank transfer and no payment has taken,
//! per currency, kept as its transactions (`customer_cash_balance_transaction`: `funded`,
//! `applied_to_payment`, `unapplied_from_payment`, `return_initiated`), whose sum is the balance.
//! Stripe's test helper `fund_cash_balance` stands for a transfer arriving; the balance is then
//! applied to the customer's PaymentIntents awaiting a transfer as Stripe's automatic
//! reconciliation does, and what is left stays (`cash_balance.funds_available`). A refund with
//! `origin=customer_balance` returns it to the customer.

use serde_json::{json, Map, Value};

use crate::ctx::Ctx;
use crate::currency::money;
use crate::error::{below_one, invalid, missing_param, missing_required, StripeErr};
use crate::lists::ListQuery;
use crate::objects::{self, random_alnum};
use crate::params::{apply_metadata, integer_param, string_param};
use crate::pay;
use crate::route::{Call, Handler, Route};
use crate::store::{now, Kind};

pub(crate) const ROUTES: &[Route] = &[
    Route::get(
        "/v1/customers/:id/cash_balance",
        Handler::Run(|ctx, call| {
            ctx.secret_call(call.params, &["expand"])?;
            ctx.object(Kind::Customer, call.id(), "customer")?;
            Ok(object(ctx, call.id()))
        }),
    ),
    Route::get(
        "/v1/customers/:id/cash_balance_transactions",
        Handler::Run(list),
    ),
    Route::get(
        "/v1/customers/:id/cash_balance_transactions/:transaction",
        Handler::Run(|ctx, call| {
            ctx.secret_call(call.params, &["expand"])?;
            ctx.object(Kind::Customer, call.id(), "customer")?;
            let id = call.ids.get(1).copied().unwrap_or_default();
            ctx.find(Kind::CashBalanceTransaction, id)
                .filter(|t| t["customer"] == call.id())
                .cloned()
                .ok_or_else(|| {
                    crate::error::missing("customer_cash_balance_transaction", id, "transaction")
                })
        }),
    ),
    Route::post(
        "/v1/test_helpers/customers/:id/fund_cash_balance",
        Handler::Run(fund),
    ),
];

/// The currencies of the bank transfers the sandbox emulates.
const CURRENCIES: &[&str] = &["mxn", "eur"];

/// The customer's transactions in `currency`, oldest first.
fn transactions<'a>(
    ctx: &'a Ctx<'_>,
    customer: &'a str,
    currency: &'a str,
) -> impl Iterator<Item = &'a Value> + 'a {
    ctx.all(Kind::CashBalanceTransaction)
        .filter(move |t| t["customer"] == customer && t["currency"] == currency)
}

/// What the customer has in `currency`, not yet applied to a payment.
pub(crate) fn available(ctx: &Ctx<'_>, customer: &str, currency: &str) -> i64 {
    transactions(ctx, customer, currency)
        .map(|t| t["net_amount"].as_i64().unwrap_or(0))
        .sum()
}

/// The customer's `cash_balance` object: what is available per currency (null before any
/// transfer), reconciled automatically.
pub(crate) fn object(ctx: &Ctx<'_>, customer: &str) -> Value {
    let mut available = Map::new();
    for t in ctx
        .all(Kind::CashBalanceTransaction)
        .filter(|t| t["customer"] == customer)
    {
        let currency = t["currency"].as_str().unwrap_or_default().to_string();
        let sum = available
            .get(&currency)
            .and_then(Value::as_i64)
            .unwrap_or(0);
        available.insert(currency, json!(sum + t["net_amount"].as_i64().unwrap_or(0)));
    }
    json!({
        "available": if available.is_empty() { Value::Null } else { Value::Object(available) },
        "customer": customer,
        "customer_account": null,
        "livemode": false,
        "object": "cash_balance",
        "settings": {"reconciliation_mode": "automatic", "using_merchant_default": true},
    })
}

/// Records a transaction of `kind` moving `net` in or out of the balance, with its details
/// under the key of its kind (unless `details` is null), and announces it.
fn record(
    ctx: &mut Ctx<'_>,
    customer: &str,
    currency: &str,
    kind: &str,
    net: i64,
    details: Value,
) -> Value {
    let mut txn = json!({
        "created": now(),
        "currency": currency,
        "customer": customer,
        "customer_account": null,
        "ending_balance": available(ctx, customer, currency) + net,
        "id": format!("ccsbtxn_{}", random_alnum(24)),
        "livemode": false,
        "net_amount": net,
        "object": "customer_cash_balance_transaction",
        "type": kind,
    });
    if !details.is_null() {
        txn[kind] = details;
    }
    ctx.put(Kind::CashBalanceTransaction, txn.clone());
    ctx.emit("customer_cash_balance_transaction.created", txn.clone());
    txn
}

/// `GET /v1/customers/:id/cash_balance_transactions`: newest first.
fn list(ctx: &mut Ctx<'_>, call: &Call<'_>) -> Result<Value, StripeErr> {
    ctx.secret_call(
        call.params,
        &["limit", "starting_after", "ending_before", "expand"],
    )?;
    let id = call.id();
    ctx.object(Kind::Customer, id, "customer")?;
    let query = ListQuery::parse(call.params)?;
    ctx.page(
        &query,
        Kind::CashBalanceTransaction,
        &format!("/v1/customers/{id}/cash_balance_transactions"),
        |t| t["customer"] == id,
    )
}

/// A currency the sandbox's cash balances take, from `param`.
fn currency_param(params: &Map<String, Value>) -> Result<String, StripeErr> {
    let currency = string_param(params, "currency")?
        .ok_or_else(|| missing_required("currency"))?
        .to_ascii_lowercase();
    if !CURRENCIES.contains(&currency.as_str()) {
        return Err(invalid(
            format!(
                "The sandbox keeps cash balances in {} only, the currencies of the bank \
                 transfers it emulates (not {currency}).",
                CURRENCIES.join(" and ")
            ),
            Some("currency"),
            None,
        ));
    }
    Ok(currency)
}

/// A positive `amount`.
fn amount_param(params: &Map<String, Value>) -> Result<i64, StripeErr> {
    let amount: i64 = integer_param(params, "amount")?.ok_or_else(|| missing_required("amount"))?;
    if amount < 1 {
        return Err(below_one("amount"));
    }
    Ok(amount)
}

/// `POST /v1/test_helpers/customers/:id/fund_cash_balance`: a bank transfer of `amount` in
/// `currency` arrives, with the `reference` the customer wrote on it. Answers the `funded`
/// transaction; the money is then applied to payments awaiting it.
fn fund(ctx: &mut Ctx<'_>, call: &Call<'_>) -> Result<Value, StripeErr> {
    let params = call.params;
    ctx.secret_call(params, &["amount", "currency", "reference", "expand"])?;
    let id = call.id();
    let customer = ctx.object(Kind::Customer, id, "customer")?;
    let amount = amount_param(params)?;
    let currency = currency_param(params)?;
    let reference = string_param(params, "reference")?;
    let kind = if currency == "mxn" {
        "mx_bank_transfer"
    } else {
        "eu_bank_transfer"
    };
    let mut transfer = json!({"reference": reference, "type": kind});
    if kind == "eu_bank_transfer" {
        transfer[kind] = json!({"bic": null, "iban_last4": null, "sender_name": customer["name"]});
    }
    let txn = record(
        ctx,
        id,
        &currency,
        "funded",
        amount,
        json!({"bank_transfer": transfer}),
    );
    reconcile(ctx, id, &currency, reference, true)?;
    Ok(txn)
}

/// Whether `pi` waits for a bank transfer from `customer` in `currency`.
fn awaiting(pi: &Value, customer: &str, currency: &str) -> bool {
    pi["status"] == "requires_action"
        && pi["next_action"]["type"] == "display_bank_transfer_instructions"
        && pi["customer"] == customer
        && pi["currency"] == currency
}

fn remaining(pi: &Value) -> i64 {
    pi["next_action"]["display_bank_transfer_instructions"]["amount_remaining"]
        .as_i64()
        .unwrap_or(0)
}

/// Stripe's automatic reconciliation: the customer's balance in `currency` goes first to the
/// PaymentIntent whose `reference` the transfer carried, then to the oldest one awaiting exactly
/// what is left, then to the oldest ones awaiting a transfer, the last of them funded in part.
/// With `announce`, money left over is announced (`cash_balance.funds_available`).
pub(crate) fn reconcile(
    ctx: &mut Ctx<'_>,
    customer: &str,
    currency: &str,
    reference: Option<&str>,
    announce: bool,
) -> Result<(), StripeErr> {
    let mut reference = reference.map(|r| r.trim().to_ascii_uppercase());
    loop {
        let left = available(ctx, customer, currency);
        if left <= 0 {
            break;
        }
        let waiting: Vec<&Value> = ctx
            .all(Kind::PaymentIntent)
            .filter(|pi| awaiting(pi, customer, currency))
            .collect();
        let wanted = reference.take();
        let target = wanted
            .and_then(|r| {
                waiting.iter().find(|pi| {
                    pi["next_action"]["display_bank_transfer_instructions"]["reference"]
                        .as_str()
                        .is_some_and(|own| own.eq_ignore_ascii_case(&r))
                })
            })
            .or_else(|| waiting.iter().find(|pi| remaining(pi) == left))
            .or_else(|| waiting.first())
            .map(|pi| (*pi).clone());
        let Some(pi) = target else {
            break;
        };
        let amount = left.min(remaining(&pi));
        apply(ctx, pi, amount)?;
    }
    if announce && available(ctx, customer, currency) > 0 {
        let balance = object(ctx, customer);
        ctx.emit("cash_balance.funds_available", balance);
    }
    Ok(())
}

/// `amount` of the balance goes to `pi`: paid in full it succeeds; otherwise it waits for the
/// rest with a lower `amount_remaining` (`payment_intent.partially_funded`).
fn apply(ctx: &mut Ctx<'_>, mut pi: Value, amount: i64) -> Result<(), StripeErr> {
    let text = |field: &str| pi[field].as_str().unwrap_or_default().to_string();
    record(
        ctx,
        &text("customer"),
        &text("currency"),
        "applied_to_payment",
        -amount,
        json!({"payment_intent": text("id")}),
    );
    let pm_id = text("payment_method");
    let left = remaining(&pi) - amount;
    if left > 0 {
        pi["next_action"]["display_bank_transfer_instructions"]["amount_remaining"] = json!(left);
        ctx.save_pi(&pi);
        ctx.emit("payment_intent.partially_funded", pi);
        return Ok(());
    }
    let card = ctx.card_of(&pm_id).ok_or_else(|| {
        crate::error::internal("a PaymentIntent awaiting a transfer has no PaymentMethod")
    })?;
    pay::pay(ctx, pi, &pm_id, &card).map(|_| ())
}

/// A canceled PaymentIntent gives back to the balance what transfers had paid of it
/// (`unapplied_from_payment`), which then goes where the balance goes.
pub(crate) fn release(ctx: &mut Ctx<'_>, pi: &Value) -> Result<(), StripeErr> {
    let (Some(id), Some(customer), Some(currency)) = (
        pi["id"].as_str(),
        pi["customer"].as_str(),
        pi["currency"].as_str(),
    ) else {
        return Ok(());
    };
    let applied: i64 = transactions(ctx, customer, currency)
        .filter(|t| {
            t["applied_to_payment"]["payment_intent"] == id
                || t["unapplied_from_payment"]["payment_intent"] == id
        })
        .map(|t| -t["net_amount"].as_i64().unwrap_or(0))
        .sum();
    if applied > 0 {
        record(
            ctx,
            customer,
            currency,
            "unapplied_from_payment",
            applied,
            json!({"payment_intent": id}),
        );
        reconcile(ctx, customer, currency, None, true)?;
    }
    Ok(())
}

/// `POST /v1/refunds` with `customer`, `origin=customer_balance`, `amount` and `currency`: money
/// of the cash balance goes back to the customer's bank account. Stripe e-mails the customer
/// for it (`next_action.display_details.email_sent`); the refund is `pending`, then `succeeded`
/// after the sandbox's delay.
pub(crate) fn refund(ctx: &mut Ctx<'_>, params: &Map<String, Value>) -> Result<Value, StripeErr> {
    ctx.secret_call(
        params,
        &[
            "customer",
            "origin",
            "amount",
            "currency",
            "instructions_email",
            "metadata",
            "expand",
        ],
    )?;
    match string_param(params, "origin")? {
        Some("customer_balance") => {}
        Some(other) => {
            return Err(invalid(
                format!("Invalid origin: must be customer_balance (got {other})"),
                Some("origin"),
                None,
            ))
        }
        None => return Err(missing_required("origin")),
    }
    let id = string_param(params, "customer")?.ok_or_else(|| missing_required("customer"))?;
    let customer = ctx
        .find(Kind::Customer, id)
        .cloned()
        .ok_or_else(|| missing_param("customer", id, "customer"))?;
    let amount = amount_param(params)?;
    let currency = currency_param(params)?;
    let left = available(ctx, id, &currency);
    if amount > left {
        return Err(invalid(
            format!(
                "Refund amount ({}) is greater than the customer's available cash balance ({})",
                money(&currency, amount),
                money(&currency, left)
            ),
            Some("amount"),
            Some("amount_too_large"),
        ));
    }
    let email = string_param(params, "instructions_email")?
        .or(customer["email"].as_str())
        .filter(|e| !e.is_empty())
        .map(str::to_string)
        .ok_or_else(|| {
            invalid(
                "The customer has no email address to ask for the bank account the funds go \
                 back to: set one on the customer, or pass instructions_email.",
                Some("instructions_email"),
                Some("parameter_missing"),
            )
        })?;
    let mut metadata = Map::new();
    apply_metadata(&mut metadata, params)?;
    let created = now();
    let refund = json!({
        "amount": amount,
        "balance_transaction": null,
        "charge": null,
        "created": created,
        "currency": currency,
        "customer": id,
        "customer_account": null,
        "description": null,
        "destination_details": null,
        "id": objects::new_id("re"),
        "instructions_email": email,
        "metadata": metadata,
        "next_action": {
            "display_details": {
                "email_sent": {"email_sent_at": created, "email_sent_to": email},
                "expires_at": created + 45 * 24 * 60 * 60,
            },
            "type": "display_details",
        },
        "object": "refund",
        "payment_intent": null,
        "payment_method": null,
        "reason": null,
        "receipt_number": null,
        "source_transfer_reversal": null,
        "status": "pending",
        "transfer_reversal": null,
    });
    ctx.put(Kind::Refund, refund.clone());
    record(ctx, id, &currency, "return_initiated", -amount, Value::Null);
    ctx.emit("refund.created", refund.clone());
    ctx.schedule(json!({"do": "refund_settle", "refund": refund["id"]}));
    Ok(refund)
}
