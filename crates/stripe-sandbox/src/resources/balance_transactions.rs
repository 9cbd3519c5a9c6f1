//! Balance transactions: what moved an account's balance (see `balance`), retrieved and listed,
//! newest first, filtered by `payout` (the items of an automatic payout), `type`, `source`,
//! `currency` and `created`.

use serde_json::Value;

use crate::balance;
use crate::ctx::Ctx;
use crate::error::{invalid, missing_param, StripeErr};
use crate::lists::{ListQuery, LIST_PARAMS};
use crate::params::{known_with, string_param};
use crate::route::{Call, Handler, Route};
use crate::store::Kind;

pub(crate) const ROUTES: &[Route] = &[
    Route::get("/v1/balance_transactions", Handler::Run(list)),
    Route::get(
        "/v1/balance_transactions/:id",
        Handler::Retrieve(Kind::BalanceTransaction),
    ),
];

/// `GET /v1/balance_transactions`. With `payout`, the transactions an automatic payout paid
/// out and its own; a manual payout cannot be itemised (Stripe's refusal).
fn list(ctx: &mut Ctx<'_>, call: &Call<'_>) -> Result<Value, StripeErr> {
    let params = call.params;
    ctx.secret_call(
        params,
        &known_with(LIST_PARAMS, &["payout", "type", "source", "currency"]),
    )?;
    let query = ListQuery::parse(params)?;
    let kind = string_param(params, "type")?;
    let source = string_param(params, "source")?;
    let currency = string_param(params, "currency")?.map(str::to_ascii_lowercase);
    let payout = match string_param(params, "payout")? {
        None => None,
        Some(id) => {
            let found = ctx
                .find(Kind::Payout, id)
                .ok_or_else(|| missing_param("payout", id, "payout"))?;
            if found["automatic"] != true {
                return Err(invalid(
                    "Balance transaction history can only be filtered on automatic transfers, \
                     not manual.",
                    Some("payout"),
                    None,
                ));
            }
            Some(id)
        }
    };
    let text = |t: &Value, field: &str| t[field].as_str().map(str::to_string);
    ctx.page(
        &query,
        Kind::BalanceTransaction,
        "/v1/balance_transactions",
        |t| {
            kind.is_none_or(|k| text(t, "type").as_deref() == Some(k))
                && source.is_none_or(|s| text(t, "source").as_deref() == Some(s))
                && currency
                    .as_deref()
                    .is_none_or(|c| text(t, "currency").as_deref() == Some(c))
                && payout.is_none_or(|p| balance::paid_by(ctx, t, p))
        },
    )
}
