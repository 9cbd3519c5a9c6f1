//! Payouts: money sent from an account's balance to its bank. Manual ones are requested through
//! the API (`POST /v1/payouts`, from the available balance) and are paid after the sandbox's
//! delay, or canceled while pending; automatic ones are what the sandbox's payout control makes
//! (`POST /_sandbox/payouts`: the whole balance, pending included, one payout per currency),
//! each paid out at once with its items known (`GET /v1/balance_transactions?payout=…`). A
//! control makes a payout fail, and the payout control can be made to misstate a payout's
//! amount, so that a client can prove it notices.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::balance;
use crate::ctx::Ctx;
use crate::currency::Currency;
use crate::error::{below_one, invalid, missing_param, missing_required, StripeErr};
use crate::lists::{range, within, ListQuery, LIST_PARAMS};
use crate::objects::balance::{self as shapes, NewPayout};
use crate::objects::new_id;
use crate::params::{apply_metadata, integer_param, known_with, string_param, update_metadata};
use crate::route::{field, Action, Call, Handler, Route};
use crate::store::{now, Kind};

pub(crate) const ROUTES: &[Route] = &[
    Route::post("/v1/payouts", Handler::Run(create)),
    Route::get("/v1/payouts", Handler::Run(list)),
    Route::get("/v1/payouts/:id", Handler::Retrieve(Kind::Payout)),
    Route::post("/v1/payouts/:id", Handler::Run(update)),
    Route::post("/v1/payouts/:id/cancel", Handler::Run(cancel)),
    Route::post("/_sandbox/payouts", Handler::Run(pay_out_everything)),
    Route::post("/_sandbox/payouts/:id/fail", Handler::Run(fail_control)),
];

pub(crate) const ACTIONS: &[Action] = &[Action {
    name: "payout_paid",
    run: |ctx, action| {
        let pending = ctx
            .find(Kind::Payout, field(action, "payout"))
            .filter(|p| p["status"] == "pending")
            .cloned();
        if let Some(payout) = pending {
            paid(ctx, payout);
        }
    },
}];

/// Stripe's payout failure codes the sandbox can give, with Stripe's explanations.
const FAILURES: &[(&str, &str)] = &[
    ("account_closed", "The bank account has been closed."),
    ("account_frozen", "The bank account has been frozen."),
    (
        "bank_account_restricted",
        "The bank account has restrictions on either the type, or the number, of payouts \
         allowed. This normally indicates that the bank account is a savings or other \
         non-checking account.",
    ),
    (
        "could_not_process",
        "The bank could not process this payout.",
    ),
    (
        "declined",
        "The bank has declined this transfer. Please contact the bank before retrying.",
    ),
    (
        "insufficient_funds",
        "Your Stripe account has insufficient funds to cover the payout.",
    ),
    (
        "invalid_account_number",
        "The routing number seems correct, but the account number is invalid.",
    ),
    (
        "no_account",
        "The bank account details on file are probably incorrect. No bank account could be \
         located with those details.",
    ),
];

/// The failure code of `params` (`failure_code`), `account_closed` when not given.
fn failure(params: &Map<String, Value>) -> Result<(&'static str, &'static str), StripeErr> {
    let code = string_param(params, "failure_code")?.unwrap_or("account_closed");
    FAILURES
        .iter()
        .find(|(c, _)| *c == code)
        .copied()
        .ok_or_else(|| {
            let known: Vec<&str> = FAILURES.iter().map(|(c, _)| *c).collect();
            invalid(
                format!(
                    "failure_code must be one of {} (got {code})",
                    known.join(", ")
                ),
                Some("failure_code"),
                None,
            )
        })
}

/// The account acted for may receive payouts: the platform always; a connected account once
/// `payouts_enabled`. Returns the bank account they go to (none for the platform).
fn destination(ctx: &Ctx<'_>) -> Result<Value, StripeErr> {
    let Some(id) = ctx.account() else {
        return Ok(Value::Null);
    };
    let account = ctx.connected_account(id).cloned().unwrap_or(Value::Null);
    if account["payouts_enabled"] != true {
        return Err(invalid(
            format!(
                "Payouts are not enabled for account {id}: it has not finished onboarding \
                 (see requirements.currently_due on /v1/accounts/{id})."
            ),
            None,
            None,
        ));
    }
    Ok(account["external_accounts"]["data"][0]["id"].clone())
}

/// Saves a new payout, takes its amount out of the balance and announces it.
fn open(ctx: &mut Ctx<'_>, new: NewPayout<'_>) -> (Value, Value) {
    let payout = shapes::payout(new);
    ctx.put(Kind::Payout, payout.clone());
    let txn = balance::payout(ctx, &payout);
    ctx.emit("payout.created", payout.clone());
    (payout, txn)
}

/// The payout reaches the bank: `in_transit` (`payout.updated`), then `paid` (`payout.paid`).
fn paid(ctx: &mut Ctx<'_>, mut payout: Value) -> Value {
    payout["status"] = json!("in_transit");
    ctx.put(Kind::Payout, payout.clone());
    ctx.emit_change(
        "payout.updated",
        payout.clone(),
        Some(json!({"status": "pending"})),
    );
    payout["status"] = json!("paid");
    ctx.put(Kind::Payout, payout.clone());
    ctx.emit("payout.paid", payout.clone());
    payout
}

/// The payout comes back: `failed` with the code and Stripe's explanation (`payout.failed`),
/// or `canceled` (`payout.canceled`); its money is back in the balance.
fn returned(ctx: &mut Ctx<'_>, mut payout: Value, failed: Option<(&str, &str)>) -> Value {
    payout["failure_balance_transaction"] = json!(new_id("txn"));
    let kind = match failed {
        Some((code, message)) => {
            payout["status"] = json!("failed");
            payout["failure_code"] = json!(code);
            payout["failure_message"] = json!(message);
            "payout_failure"
        }
        None => {
            payout["status"] = json!("canceled");
            "payout_cancel"
        }
    };
    balance::payout_returned(ctx, &payout, kind);
    ctx.put(Kind::Payout, payout.clone());
    let event = if failed.is_some() {
        "payout.failed"
    } else {
        "payout.canceled"
    };
    ctx.emit(event, payout.clone());
    payout
}

/// `POST /v1/payouts`: a manual payout of `amount` `currency` from the available balance
/// (`description`, `destination`, `metadata`, `method=standard`, `source_type=card`,
/// `statement_descriptor`). It is paid after the sandbox's delay.
fn create(ctx: &mut Ctx<'_>, call: &Call<'_>) -> Result<Value, StripeErr> {
    let params = call.params;
    ctx.secret_call(
        params,
        &[
            "amount",
            "currency",
            "description",
            "destination",
            "metadata",
            "method",
            "source_type",
            "statement_descriptor",
            "expand",
        ],
    )?;
    let amount: i64 = integer_param(params, "amount")?.ok_or_else(|| missing_required("amount"))?;
    if amount < 1 {
        return Err(below_one("amount"));
    }
    let given = string_param(params, "currency")?.ok_or_else(|| missing_required("currency"))?;
    let currency = Currency::parse(given)
        .ok_or_else(|| invalid(format!("Invalid currency: {given}"), Some("currency"), None))?;
    if let Some(method) = string_param(params, "method")?.filter(|m| *m != "standard") {
        return Err(invalid(
            format!("The sandbox makes standard payouts only (not {method})."),
            Some("method"),
            None,
        ));
    }
    if let Some(kind) = string_param(params, "source_type")?.filter(|k| *k != "card") {
        return Err(invalid(
            format!("The sandbox keeps one balance, of source type card (not {kind})."),
            Some("source_type"),
            None,
        ));
    }
    let bank = destination(ctx)?;
    if let Some(asked) = string_param(params, "destination")? {
        if bank != asked {
            return Err(missing_param("external account", asked, "destination"));
        }
    }
    let mut metadata = Map::new();
    apply_metadata(&mut metadata, params)?;
    let available = balance::sums(ctx)
        .0
        .get(currency.code)
        .copied()
        .unwrap_or(0);
    if amount > available {
        return Err(invalid(
            "You have insufficient funds in your Stripe account for this transfer. Your card \
             balance is too low. You can use the /v1/balance endpoint to view your Stripe \
             balance (for more details, see stripe.com/docs/api#balance).",
            Some("amount"),
            Some("balance_insufficient"),
        ));
    }
    let arrival_date = balance::clock_now(ctx);
    let (payout, _) = open(
        ctx,
        NewPayout {
            amount,
            currency: currency.code,
            automatic: false,
            arrival_date,
            destination: bank,
            description: string_param(params, "description")?.map(str::to_string),
            statement_descriptor: string_param(params, "statement_descriptor")?.map(str::to_string),
            metadata,
            created: now(),
        },
    );
    ctx.schedule(json!({"do": "payout_paid", "payout": payout["id"]}));
    Ok(payout)
}

/// `GET /v1/payouts`: filters `status`, `destination`, `arrival_date` (as `created`).
fn list(ctx: &mut Ctx<'_>, call: &Call<'_>) -> Result<Value, StripeErr> {
    let params = call.params;
    ctx.secret_call(
        params,
        &known_with(LIST_PARAMS, &["status", "destination", "arrival_date"]),
    )?;
    let query = ListQuery::parse(params)?;
    let status = string_param(params, "status")?;
    let bank = string_param(params, "destination")?;
    let arrival = range(params, "arrival_date")?;
    ctx.page(&query, Kind::Payout, "/v1/payouts", |p| {
        status.is_none_or(|s| p["status"] == s)
            && bank.is_none_or(|b| p["destination"] == b)
            && within(&arrival, p["arrival_date"].as_i64().unwrap_or(0))
    })
}

/// `POST /v1/payouts/:id`: its `metadata` (`payout.updated`).
fn update(ctx: &mut Ctx<'_>, call: &Call<'_>) -> Result<Value, StripeErr> {
    ctx.secret_call(call.params, &["metadata", "expand"])?;
    let before = ctx.object(Kind::Payout, call.id(), "payout")?;
    let mut payout = before.clone();
    update_metadata(&mut payout, call.params)?;
    if payout != before {
        ctx.put(Kind::Payout, payout.clone());
        let previous = json!({"metadata": before["metadata"]});
        ctx.emit_change("payout.updated", payout.clone(), Some(previous));
    }
    Ok(payout)
}

/// `POST /v1/payouts/:id/cancel`: a manual payout still `pending` is canceled.
fn cancel(ctx: &mut Ctx<'_>, call: &Call<'_>) -> Result<Value, StripeErr> {
    ctx.secret_call(call.params, &["expand"])?;
    let payout = ctx.object(Kind::Payout, call.id(), "payout")?;
    if payout["automatic"] == true {
        return Err(invalid(
            "Automatic payouts cannot be canceled: only payouts you created can be.",
            None,
            None,
        ));
    }
    if payout["status"] != "pending" {
        return Err(invalid(
            format!(
                "Payouts can only be canceled while they are pending; this one is {}.",
                payout["status"].as_str().unwrap_or_default()
            ),
            None,
            None,
        ));
    }
    Ok(returned(ctx, payout, None))
}

/// `POST /_sandbox/payouts/:id/fail` (`failure_code`, default `account_closed`): the bank
/// returns the payout, whatever its status short of failed or canceled; Stripe also lets a
/// payout fail after it showed as paid.
fn fail_control(ctx: &mut Ctx<'_>, call: &Call<'_>) -> Result<Value, StripeErr> {
    ctx.secret_call(call.params, &["failure_code"])?;
    let failed = failure(call.params)?;
    let payout = ctx.object(Kind::Payout, call.id(), "payout")?;
    if matches!(payout["status"].as_str(), Some("failed" | "canceled")) {
        return Err(invalid(
            format!(
                "This payout is already {}.",
                payout["status"].as_str().unwrap_or_default()
            ),
            None,
            None,
        ));
    }
    Ok(returned(ctx, payout, Some(failed)))
}

/// `POST /_sandbox/payouts`: the payout schedule runs now for the platform, or for the
/// connected account `account` (or `Stripe-Account`): everything in the balance that no
/// automatic payout has paid out, pending included, goes out, one automatic payout per
/// currency (only `currency`, when given) whose balance is positive. Each is paid at once, or
/// fails with `failure_code`; its items can be listed at once
/// (`payout.reconciliation_completed`). With `mismatch=N` each payout's amount is N more than
/// the nets of its items add up to (a lie, for testing that a client notices).
fn pay_out_everything(ctx: &mut Ctx<'_>, call: &Call<'_>) -> Result<Value, StripeErr> {
    let params = call.params;
    ctx.secret_call(params, &["account", "currency", "mismatch", "failure_code"])?;
    let account = match (string_param(params, "account")?, ctx.account()) {
        (Some(given), Some(header)) if given != header => {
            return Err(invalid(
                "account names another account than Stripe-Account.",
                Some("account"),
                None,
            ))
        }
        (Some(given), _) => {
            if ctx.connected_account(given).is_none() {
                return Err(missing_param("account", given, "account"));
            }
            Some(given.to_string())
        }
        (None, header) => header.map(str::to_string),
    };
    let only = string_param(params, "currency")?.map(str::to_ascii_lowercase);
    let mismatch: i64 = integer_param(params, "mismatch")?.unwrap_or(0);
    let failed = match params.contains_key("failure_code") {
        true => Some(failure(params)?),
        false => None,
    };
    let payouts = ctx.on(account.as_deref(), |ctx| {
        run_schedule(ctx, only.as_deref(), mismatch, failed)
    })?;
    Ok(json!({"object": "sandbox.payouts", "account": account, "data": payouts}))
}

/// The payout schedule of the account acted for (see [`pay_out_everything`]).
fn run_schedule(
    ctx: &mut Ctx<'_>,
    only: Option<&str>,
    mismatch: i64,
    failed: Option<(&str, &str)>,
) -> Result<Vec<Value>, StripeErr> {
    let bank = destination(ctx)?;
    let mut by_currency: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for txn in balance::unpaid(ctx) {
        let currency = txn["currency"].as_str().unwrap_or_default().to_string();
        if only.is_none_or(|c| c == currency) {
            by_currency.entry(currency).or_default().push(txn);
        }
    }
    let mut made = Vec::new();
    for (currency, items) in by_currency {
        let nets: i64 = items.iter().map(|t| t["net"].as_i64().unwrap_or(0)).sum();
        let amount = nets + mismatch;
        if nets <= 0 || amount < 1 {
            continue;
        }
        let arrival_date = balance::clock_now(ctx);
        let (payout, txn) = open(
            ctx,
            NewPayout {
                amount,
                currency: &currency,
                automatic: true,
                arrival_date,
                destination: bank.clone(),
                description: Some("STRIPE PAYOUT".into()),
                statement_descriptor: None,
                metadata: Map::new(),
                created: now(),
            },
        );
        let id = payout["id"].as_str().unwrap_or_default().to_string();
        let mut items = items;
        items.push(txn);
        balance::paid_out(ctx, &items, &id);
        let mut payout = match failed {
            Some(failure) => returned(ctx, payout, Some(failure)),
            None => paid(ctx, payout),
        };
        payout["reconciliation_status"] = json!("completed");
        ctx.put(Kind::Payout, payout.clone());
        ctx.emit("payout.reconciliation_completed", payout.clone());
        made.push(payout);
    }
    Ok(made)
}
