//! `expand[]`: the ids an answer names, replaced by the objects they name.

use serde_json::{Map, Value};

use crate::balance::source_kind;
use crate::ctx::Ctx;
use crate::pay::charge_refunds_list;
use crate::store::Kind;

/// The fields that name an object by its id, and the kind of that object.
const ID_FIELDS: &[(&str, Kind)] = &[
    ("latest_charge", Kind::Charge),
    ("charge", Kind::Charge),
    ("payment_method", Kind::PaymentMethod),
    ("payment_intent", Kind::PaymentIntent),
    ("customer", Kind::Customer),
    ("transfer", Kind::Transfer),
    ("application_fee", Kind::ApplicationFee),
    ("source_transaction", Kind::Charge),
    ("transfer_reversal", Kind::TransferReversal),
    ("source_refund", Kind::Refund),
    ("fee", Kind::ApplicationFee),
    ("balance_transaction", Kind::BalanceTransaction),
    ("failure_balance_transaction", Kind::BalanceTransaction),
];

/// `expand[]=…` of the ids an object names (`latest_charge`, `payment_method`, `payment_intent`,
/// `charge`, `customer`, and Connect's `transfer`, `application_fee`, `source_transaction`,
/// `transfer_reversal`, `source_refund`, `fee`, and `balance_transaction` and
/// `failure_balance_transaction` of what moved a balance) among the objects of the account the
/// request acts for, `source` of a balance transaction (whatever kind it is), and `refunds` of a
/// Charge, which API versions since 2022-11-15 include only when expanded; with `data.` in
/// front of them on lists.
pub(crate) fn expand(ctx: &Ctx<'_>, value: &mut Value, params: &Map<String, Value>) {
    let Some(Value::Array(fields)) = params.get("expand") else {
        return;
    };
    let fields: Vec<&str> = fields.iter().filter_map(Value::as_str).collect();
    if value["object"] == "list" {
        let inner: Vec<&str> = fields
            .iter()
            .filter_map(|f| f.strip_prefix("data."))
            .collect();
        if let Some(items) = value["data"].as_array_mut() {
            for item in items {
                expand_fields(ctx, item, &inner);
            }
        }
    } else {
        expand_fields(ctx, value, &fields);
    }
}

fn expand_fields(ctx: &Ctx<'_>, value: &mut Value, fields: &[&str]) {
    for field in fields {
        if *field == "refunds" && value["object"] == "charge" {
            let id = value["id"].as_str().unwrap_or_default().to_string();
            value["refunds"] = charge_refunds_list(ctx, &id);
            continue;
        }
        if *field == "source" && value["object"] == "balance_transaction" {
            let found = value["source"]
                .as_str()
                .and_then(|id| Some((id, source_kind(id)?)))
                .and_then(|(id, kind)| ctx.find(kind, id));
            if let Some(found) = found {
                value["source"] = found.clone();
            }
            continue;
        }
        let Some((_, kind)) = ID_FIELDS.iter().find(|(name, _)| name == field) else {
            continue;
        };
        if let Some(found) = value[*field].as_str().and_then(|id| ctx.find(*kind, id)) {
            value[*field] = found.clone();
        }
    }
}
