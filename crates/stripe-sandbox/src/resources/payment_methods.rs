//! PaymentMethods: made from a card as Stripe.js sends it (number, expiry, CVC, checked as
//! Stripe checks them), of the types that are not cards (`methods`), or from one of Stripe's
//! test PaymentMethods named by a request; and retrieved.

use axum::http::StatusCode;
use serde_json::{json, Map, Value};

use crate::cards::{self, TestCard};
use crate::ctx::Ctx;
use crate::error::{
    doc_url, internal, invalid, invalid_hash, invalid_string, missing_param, missing_required,
    StripeErr,
};
use crate::objects;
use crate::params::{check_known_as, string_param, update_metadata};
use crate::route::{Handler, Route};
use crate::store::{now, Kind};

pub(crate) const ROUTES: &[Route] = &[
    // As Stripe.js calls it, with a publishable key.
    Route::post(
        "/v1/payment_methods",
        Handler::Run(|ctx, call| from_params(ctx, call.params, "")),
    ),
    Route::get(
        "/v1/payment_methods/:id",
        Handler::Retrieve(Kind::PaymentMethod),
    ),
];

/// The PaymentMethod a request names: `payment_method` (an id or a test alias) or
/// `payment_method_data` (a card as Stripe.js sends it), made into a PaymentMethod.
pub(crate) fn given(
    ctx: &mut Ctx<'_>,
    params: &Map<String, Value>,
) -> Result<Option<(String, TestCard)>, StripeErr> {
    if let Some(pm) = string_param(params, "payment_method")? {
        return resolve(ctx, pm).map(Some);
    }
    match params.get("payment_method_data") {
        None => Ok(None),
        Some(Value::Object(data)) => {
            let pm = from_params(ctx, data, "payment_method_data")?;
            let id = pm["id"].as_str().unwrap_or_default().to_string();
            let card = ctx
                .card_of(&id)
                .ok_or_else(|| internal("a new PaymentMethod is unknown"))?;
            Ok(Some((id, card)))
        }
        Some(_) => Err(invalid_hash("payment_method_data")),
    }
}

fn card_error(code: &str, message: &str, param: &str) -> StripeErr {
    StripeErr {
        status: StatusCode::PAYMENT_REQUIRED,
        error: json!({
            "type": "card_error",
            "code": code,
            "message": message,
            "param": param,
            "doc_url": doc_url(code),
        }),
    }
}

/// The current (year, month) in UTC.
fn year_month_now() -> (i64, i64) {
    let (year, month, _) = crate::clock::date_at(now(), 0);
    (year, month)
}

/// A PaymentMethod from `type` and `card[…]` (and `billing_details`, `metadata`), checked as
/// Stripe checks a card: number (digits, length, Luhn), expiry, CVC. `prefix` names the
/// parameters in errors (`payment_method_data[card][number]`).
fn from_params(
    ctx: &mut Ctx<'_>,
    data: &Map<String, Value>,
    prefix: &str,
) -> Result<Value, StripeErr> {
    let name = |field: &str| {
        if prefix.is_empty() {
            field.to_string()
        } else {
            let mut parts = field.splitn(2, '[');
            let head = parts.next().unwrap_or_default();
            match parts.next() {
                Some(rest) => format!("{prefix}[{head}][{rest}"),
                None => format!("{prefix}[{head}]"),
            }
        }
    };
    if let Some(pm) = crate::methods::create(ctx, data, &name)? {
        return Ok(pm);
    }
    let card_param = |key: &str| name(&format!("card[{key}]"));
    crate::methods::check_payment_method_params(data, "card", &name)?;
    match data.get("type").and_then(Value::as_str) {
        Some("card") => {}
        Some(other) => {
            return Err(invalid(
                format!("The sandbox makes PaymentMethods of type card, oxxo, customer_balance and sepa_debit only, not {other}; use a test PaymentMethod such as pm_usBankAccount_success for a US bank account."),
                Some(&name("type")),
                Some("parameter_invalid_string"),
            ))
        }
        None => return Err(missing_required(&name("type"))),
    }
    let Some(Value::Object(card)) = data.get("card") else {
        return Err(missing_required(&name("card")));
    };
    let field = |key: &str| -> Result<Option<String>, StripeErr> {
        match card.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
            Some(_) => Err(invalid_string(&card_param(key))),
        }
    };
    check_known_as(
        card,
        &["number", "exp_month", "exp_year", "cvc", "networks"],
        card_param,
    )?;
    let required =
        |key: &str, value: Option<String>| value.ok_or_else(|| missing_required(&card_param(key)));
    let number: String = required("number", field("number")?)?
        .chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .collect();
    cards::check_card_number(&number)
        .map_err(|(code, message)| card_error(code, message, &name("card[number]")))?;
    let exp_month_text = required("exp_month", field("exp_month")?)?;
    let exp_year_text = required("exp_year", field("exp_year")?)?;
    let exp_month: i64 = exp_month_text
        .parse()
        .ok()
        .filter(|m| (1..=12).contains(m))
        .ok_or_else(|| {
            card_error(
                "invalid_expiry_month",
                "Your card's expiration month is invalid.",
                &name("card[exp_month]"),
            )
        })?;
    let exp_year: i64 = match exp_year_text.parse::<i64>() {
        Ok(y) if (0..100).contains(&y) => 2000 + y,
        Ok(y) => y,
        Err(_) => -1,
    };
    let (year, month) = year_month_now();
    if exp_year < year || exp_year > year + 50 {
        return Err(card_error(
            "invalid_expiry_year",
            "Your card's expiration year is invalid.",
            &name("card[exp_year]"),
        ));
    }
    if exp_year == year && exp_month < month {
        return Err(card_error(
            "invalid_expiry_month",
            "Your card's expiration month is invalid.",
            &name("card[exp_month]"),
        ));
    }
    let cvc = field("cvc")?;
    if let Some(c) = &cvc {
        if !(3..=4).contains(&c.len()) || !c.bytes().all(|b| b.is_ascii_digit()) {
            return Err(card_error(
                "invalid_cvc",
                "Your card's security code is invalid.",
                &name("card[cvc]"),
            ));
        }
    }
    let alias = cards::alias_for_number(&number);
    let behaviour =
        cards::card_of_alias(&alias).ok_or_else(|| internal("a card number has no behaviour"))?;
    let id = objects::new_id("pm");
    let mut pm = objects::payment_method(&id, &behaviour, now());
    pm["card"]["exp_month"] = json!(exp_month);
    pm["card"]["exp_year"] = json!(exp_year);
    pm["card"]["checks"]["cvc_check"] = if cvc.is_some() {
        json!("unchecked")
    } else {
        Value::Null
    };
    crate::methods::billing_details(&mut pm, data, &name)?;
    update_metadata(&mut pm, data)?;
    ctx.put_payment_method(pm.clone(), alias);
    Ok(pm)
}

/// A test alias (`pm_card_visa`) becomes a new PaymentMethod, as at Stripe; an id the sandbox
/// issued earlier is looked up.
pub(crate) fn resolve(ctx: &mut Ctx<'_>, given: &str) -> Result<(String, TestCard), StripeErr> {
    if let Some(card) = ctx.card_of(given) {
        return Ok((given.to_string(), card));
    }
    let card = cards::test_card(given)
        .ok_or_else(|| missing_param("PaymentMethod", given, "payment_method"))?;
    let id = objects::new_id("pm");
    let object = objects::payment_method(&id, &card, now());
    ctx.put_payment_method(object, given.to_string());
    Ok((id, card))
}
