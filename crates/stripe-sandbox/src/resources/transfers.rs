//! Transfers from the platform to its connected accounts: made by destination charges (see
//! `connect`) or directly, retrieved, listed, updated, and reversed in whole or in part.

use serde_json::{json, Map, Value};

use crate::connect;
use crate::ctx::Ctx;
use crate::currency::Currency;
use crate::error::{below_one, invalid, missing_param, missing_required, platform_only, StripeErr};
use crate::objects::connect::NewTransfer;
use crate::params::{apply_metadata, bool_param, integer_param, string_param, update_metadata};
use crate::route::{Handler, Route};
use crate::store::Kind;

pub(crate) const ROUTES: &[Route] = &[
    Route::post(
        "/v1/transfers",
        Handler::Run(|ctx, call| create(ctx, call.params)),
    ),
    Route::get(
        "/v1/transfers",
        Handler::List(Kind::Transfer, &["destination", "transfer_group"]),
    ),
    Route::get("/v1/transfers/:id", Handler::Retrieve(Kind::Transfer)),
    Route::post(
        "/v1/transfers/:id",
        Handler::Run(|ctx, call| update(ctx, call.id(), call.params)),
    ),
    Route::post(
        "/v1/transfers/:id/reversals",
        Handler::Run(|ctx, call| reverse(ctx, call.id(), call.params)),
    ),
    Route::get(
        "/v1/transfers/:id/reversals",
        Handler::Nested(Kind::Transfer, Kind::TransferReversal, "transfer"),
    ),
    Route::get(
        "/v1/transfers/:id/reversals/:reversal",
        Handler::NestedRetrieve(Kind::Transfer, Kind::TransferReversal, "transfer"),
    ),
];

/// `POST /v1/transfers`: `amount`, `currency` and `destination` (a connected account whose
/// `transfers` capability is active), `source_transaction` (a charge of the platform's, in the
/// same currency, of at least the amount), `transfer_group`, `description`, `metadata`.
fn create(ctx: &mut Ctx<'_>, params: &Map<String, Value>) -> Result<Value, StripeErr> {
    ctx.secret_call(
        params,
        &[
            "amount",
            "currency",
            "destination",
            "source_transaction",
            "transfer_group",
            "description",
            "metadata",
            "expand",
        ],
    )?;
    if ctx.account().is_some() {
        return Err(platform_only("Transferring to connected accounts"));
    }
    let amount: i64 = integer_param(params, "amount")?.ok_or_else(|| missing_required("amount"))?;
    if amount < 1 {
        return Err(below_one("amount"));
    }
    let currency_text =
        string_param(params, "currency")?.ok_or_else(|| missing_required("currency"))?;
    let currency = Currency::parse(currency_text).ok_or_else(|| {
        invalid(
            format!("Invalid currency: {currency_text}"),
            Some("currency"),
            None,
        )
    })?;
    let destination =
        string_param(params, "destination")?.ok_or_else(|| missing_required("destination"))?;
    connect::check_destination(ctx, destination, "destination")?;
    let source = string_param(params, "source_transaction")?;
    if let Some(source) = source {
        let charge = ctx
            .find(Kind::Charge, source)
            .ok_or_else(|| missing_param("charge", source, "source_transaction"))?;
        if charge["status"] != "succeeded" || charge["currency"] != currency.code {
            return Err(invalid(
                format!(
                    "The source_transaction {source} must be a succeeded charge in {}.",
                    currency.code
                ),
                Some("source_transaction"),
                None,
            ));
        }
        if amount > charge["amount_captured"].as_i64().unwrap_or(0) {
            return Err(invalid(
                format!("The transfer amount ({amount}) exceeds the amount of its source_transaction {source}."),
                Some("amount"),
                None,
            ));
        }
    }
    let mut metadata = Map::new();
    apply_metadata(&mut metadata, params)?;
    Ok(connect::send(
        ctx,
        NewTransfer {
            amount,
            currency: &json!(currency.code),
            destination,
            source_transaction: source,
            transfer_group: json!(string_param(params, "transfer_group")?),
            description: string_param(params, "description")?.map(str::to_string),
            metadata,
        },
    ))
}

/// `POST /v1/transfers/:id`: `description` and `metadata` (event `transfer.updated`).
fn update(ctx: &mut Ctx<'_>, id: &str, params: &Map<String, Value>) -> Result<Value, StripeErr> {
    ctx.secret_call(params, &["description", "metadata", "expand"])?;
    let before = ctx.object(Kind::Transfer, id, "transfer")?;
    let mut transfer = before.clone();
    if let Some(description) = string_param(params, "description")? {
        transfer["description"] = if description.is_empty() {
            Value::Null
        } else {
            json!(description)
        };
    }
    update_metadata(&mut transfer, params)?;
    if transfer != before {
        let previous =
            json!({"description": before["description"], "metadata": before["metadata"]});
        ctx.put(Kind::Transfer, transfer.clone());
        ctx.emit_change("transfer.updated", transfer.clone(), Some(previous));
    }
    Ok(transfer)
}

/// `POST /v1/transfers/:id/reversals`: `amount` (default: what is left), `metadata`, and
/// `refund_application_fee`, which refunds the fee of the transfer's charge in proportion to
/// what is reversed.
fn reverse(ctx: &mut Ctx<'_>, id: &str, params: &Map<String, Value>) -> Result<Value, StripeErr> {
    ctx.secret_call(
        params,
        &[
            "amount",
            "description",
            "metadata",
            "refund_application_fee",
            "expand",
        ],
    )?;
    let transfer = ctx.object(Kind::Transfer, id, "id")?;
    let total = transfer["amount"].as_i64().unwrap_or(0);
    let before = transfer["amount_reversed"].as_i64().unwrap_or(0);
    let left = total - before;
    let amount = connect::amount_back(
        params,
        left,
        format!("Transfer {id} has already been fully reversed."),
        &format!("transfer {id}"),
    )?;
    let refund_fee = bool_param(params, "refund_application_fee")?;
    let mut metadata = Map::new();
    apply_metadata(&mut metadata, params)?;
    let reversal = connect::reverse(ctx, id, amount, None, metadata);
    let fee_id = transfer["source_transaction"]
        .as_str()
        .and_then(|charge| ctx.find(Kind::Charge, charge))
        .and_then(|charge| charge["application_fee"].as_str())
        .map(str::to_string);
    if let (true, Some(fee_id)) = (refund_fee, fee_id) {
        connect::refund_fee_share(ctx, &fee_id, before, before + amount, total);
    }
    Ok(reversal)
}
