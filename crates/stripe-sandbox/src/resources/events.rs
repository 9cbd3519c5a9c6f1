//! Events: retrieved, and listed with Stripe's `type` and `types` filters.

use serde_json::{Map, Value};

use crate::ctx::Ctx;
use crate::error::{invalid, invalid_array, StripeErr};
use crate::lists::{ListQuery, LIST_PARAMS};
use crate::params::{known_with, string_param};
use crate::route::{Handler, Route};
use crate::store::Kind;

pub(crate) const ROUTES: &[Route] = &[
    Route::get(
        "/v1/events",
        Handler::Run(|ctx, call| list(ctx, call.params)),
    ),
    Route::get("/v1/events/:id", Handler::Retrieve(Kind::Event)),
];

fn list(ctx: &mut Ctx<'_>, params: &Map<String, Value>) -> Result<Value, StripeErr> {
    ctx.secret_call(params, &known_with(LIST_PARAMS, &["type", "types"]))?;
    let query = ListQuery::parse(params)?;
    let single = string_param(params, "type")?;
    let many: Option<Vec<&str>> = match params.get("types") {
        None => None,
        Some(Value::Array(items)) => {
            let names: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
            if names.len() != items.len() || names.is_empty() || names.len() > 20 {
                return Err(invalid(
                    "types must be an array of 1 to 20 event types",
                    Some("types"),
                    None,
                ));
            }
            Some(names)
        }
        Some(_) => return Err(invalid_array("types")),
    };
    if single.is_some() && many.is_some() {
        return Err(invalid(
            "You may only specify one of these parameters: type, types.",
            None,
            None,
        ));
    }
    ctx.page(&query, Kind::Event, &Kind::Event.list_url(), |e| {
        let t = e["type"].as_str().unwrap_or("");
        single.is_none_or(|f| type_matches(f, t))
            && many
                .as_ref()
                .is_none_or(|fs| fs.iter().any(|f| type_matches(f, t)))
    })
}

/// Stripe's `type` filter takes an exact type or a `*` wildcard (`payment_intent.*`).
fn type_matches(filter: &str, event_type: &str) -> bool {
    match filter.strip_suffix('*') {
        Some(prefix) => event_type.starts_with(prefix),
        None => filter == event_type,
    }
}
