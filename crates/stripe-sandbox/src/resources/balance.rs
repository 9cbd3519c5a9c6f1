//! The Balance: what an account has, available and pending, per currency (`GET /v1/balance`,
//! the account's with `Stripe-Account`), summed from its balance transactions.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::balance;
use crate::ctx::Ctx;
use crate::objects::balance::{self as shapes, balance_amount};
use crate::route::{Handler, Route};

pub(crate) const ROUTES: &[Route] = &[Route::get(
    "/v1/balance",
    Handler::Run(|ctx, call| {
        ctx.secret_call(call.params, &["expand"])?;
        Ok(retrieve(ctx))
    }),
)];

/// The balance of the account acted for; its settlement currency is always shown, at 0 when
/// nothing moved it.
fn retrieve(ctx: &mut Ctx<'_>) -> Value {
    let home = balance::settlement(ctx).currency;
    let (mut available, mut pending) = balance::sums(ctx);
    available.entry(home.clone()).or_insert(0);
    pending.entry(home.clone()).or_insert(0);
    let amounts = |sums: BTreeMap<String, i64>| -> Vec<Value> {
        sums.iter()
            .map(|(currency, amount)| balance_amount(*amount, currency))
            .collect()
    };
    shapes::balance(
        amounts(available),
        amounts(pending),
        vec![json!({"amount": 0, "currency": home})],
    )
}
