//! Customers: create, retrieve (with `expand[]=cash_balance`), update, and list (filter
//! `email`, as Stripe's: exact and case-sensitive). A bank transfer needs one; its cash balance
//! is `cash_balance`'s.

use serde_json::{json, Map, Value};

use crate::ctx::Ctx;
use crate::error::StripeErr;
use crate::methods::check_email;
use crate::objects::random_alnum;
use crate::params::{string_param, update_metadata};
use crate::resources::cash_balance;
use crate::route::{Handler, Route};
use crate::store::{now, Kind};

pub(crate) const ROUTES: &[Route] = &[
    Route::post(
        "/v1/customers",
        Handler::Run(|ctx, call| create(ctx, call.params)),
    ),
    Route::get("/v1/customers", Handler::List(Kind::Customer, &["email"])),
    Route::get(
        "/v1/customers/:id",
        Handler::Run(|ctx, call| retrieve(ctx, call.id(), call.params)),
    ),
    Route::post(
        "/v1/customers/:id",
        Handler::Run(|ctx, call| update(ctx, call.id(), call.params)),
    ),
];

/// The text fields a request may set; an empty value unsets one.
const FIELDS: &[&str] = &["email", "name", "description", "phone"];

/// What create and update take.
const PARAMS: &[&str] = &[
    "email",
    "name",
    "description",
    "phone",
    "metadata",
    "expand",
];

/// Sets the customer's text fields and metadata from the request.
fn apply(customer: &mut Value, params: &Map<String, Value>) -> Result<(), StripeErr> {
    for field in FIELDS {
        if let Some(text) = string_param(params, field)? {
            if *field == "email" && !text.is_empty() {
                check_email(text, "email")?;
            }
            customer[*field] = if text.is_empty() {
                Value::Null
            } else {
                json!(text)
            };
        }
    }
    update_metadata(customer, params)
}

/// `POST /v1/customers`.
fn create(ctx: &mut Ctx<'_>, params: &Map<String, Value>) -> Result<Value, StripeErr> {
    ctx.secret_call(params, PARAMS)?;
    let mut customer = json!({
        "address": null,
        "balance": 0,
        "created": now(),
        "currency": null,
        "default_source": null,
        "delinquent": false,
        "description": null,
        "discount": null,
        "email": null,
        "id": format!("cus_{}", random_alnum(14)),
        "invoice_prefix": random_alnum(8).to_ascii_uppercase(),
        "invoice_settings": {
            "custom_fields": null,
            "default_payment_method": null,
            "footer": null,
            "rendering_options": null
        },
        "livemode": false,
        "metadata": {},
        "name": null,
        "next_invoice_sequence": 1,
        "object": "customer",
        "phone": null,
        "preferred_locales": [],
        "shipping": null,
        "tax_exempt": "none",
        "test_clock": null
    });
    apply(&mut customer, params)?;
    ctx.put(Kind::Customer, customer.clone());
    ctx.emit("customer.created", customer.clone());
    Ok(customer)
}

/// Whether the request asks for `field` expanded.
fn expanded(params: &Map<String, Value>, field: &str) -> bool {
    params
        .get("expand")
        .and_then(Value::as_array)
        .is_some_and(|fields| fields.iter().any(|f| f == field))
}

/// `GET /v1/customers/:id`; its `cash_balance` only when expanded, as at Stripe.
fn retrieve(ctx: &mut Ctx<'_>, id: &str, params: &Map<String, Value>) -> Result<Value, StripeErr> {
    ctx.secret_call(params, &["expand"])?;
    let mut customer = ctx.object(Kind::Customer, id, "customer")?;
    if expanded(params, "cash_balance") {
        customer["cash_balance"] = cash_balance::object(ctx, id);
    }
    Ok(customer)
}

/// `POST /v1/customers/:id`.
fn update(ctx: &mut Ctx<'_>, id: &str, params: &Map<String, Value>) -> Result<Value, StripeErr> {
    ctx.secret_call(params, PARAMS)?;
    let mut customer = ctx.object(Kind::Customer, id, "customer")?;
    let before = customer.clone();
    apply(&mut customer, params)?;
    if customer != before {
        ctx.put(Kind::Customer, customer.clone());
        ctx.emit("customer.updated", customer.clone());
    }
    Ok(customer)
}
