//! Application Fees: what the platform took from its connected accounts' charges (see
//! `connect`), retrieved, listed, and refunded in whole or in part.

use serde_json::{Map, Value};

use crate::connect;
use crate::ctx::Ctx;
use crate::error::StripeErr;
use crate::params::apply_metadata;
use crate::route::{Handler, Route};
use crate::store::Kind;

pub(crate) const ROUTES: &[Route] = &[
    Route::get(
        "/v1/application_fees",
        Handler::List(Kind::ApplicationFee, &["charge"]),
    ),
    Route::get(
        "/v1/application_fees/:id",
        Handler::Retrieve(Kind::ApplicationFee),
    ),
    Route::post(
        "/v1/application_fees/:id/refunds",
        Handler::Run(|ctx, call| refund(ctx, call.id(), call.params)),
    ),
    Route::get(
        "/v1/application_fees/:id/refunds",
        Handler::Nested(Kind::ApplicationFee, Kind::FeeRefund, "fee"),
    ),
    Route::get(
        "/v1/application_fees/:id/refunds/:refund",
        Handler::NestedRetrieve(Kind::ApplicationFee, Kind::FeeRefund, "fee"),
    ),
];

/// `POST /v1/application_fees/:id/refunds`: `amount` (default: what is left), `metadata`.
fn refund(ctx: &mut Ctx<'_>, id: &str, params: &Map<String, Value>) -> Result<Value, StripeErr> {
    ctx.secret_call(params, &["amount", "metadata", "expand"])?;
    let fee = ctx.object(Kind::ApplicationFee, id, "id")?;
    let left = fee["amount"].as_i64().unwrap_or(0) - fee["amount_refunded"].as_i64().unwrap_or(0);
    let amount = connect::amount_back(
        params,
        left,
        format!("Application fee {id} has already been refunded."),
        &format!("application fee {id}"),
    )?;
    let mut metadata = Map::new();
    apply_metadata(&mut metadata, params)?;
    Ok(connect::refund_fee(ctx, id, amount, metadata))
}
