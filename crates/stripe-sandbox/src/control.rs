//! The sandbox's own controls under `/_sandbox/`, which Stripe does not have: webhook
//! dropping, faults on demand, timers, the clock balances go by, the platform's country, and
//! what a connected account's person does on Stripe's side (onboarding, deauthorising the
//! platform), for the secret key only. (The payout controls are `payouts`'.) (The 3-D Secure and
//! onboarding pages, also under `/_sandbox/`, are `threeds` and `onboarding`.)

use axum::http::Method;
use serde_json::{json, Map, Value};

use crate::balance;
use crate::ctx::Ctx;
use crate::currency::Currency;
use crate::error::{internal, invalid, invalid_array, missing_param, missing_required, StripeErr};
use crate::faults::{Faults, RateLimit};
use crate::params::{bool_param, flag_param, integer_param, string_param};
use crate::resources::accounts;
use crate::route::{Call, Handler, Route};

pub(crate) const ROUTES: &[Route] = &[
    Route::get("/_sandbox/webhooks", Handler::Run(webhooks)),
    Route::post("/_sandbox/webhooks", Handler::Run(webhooks)),
    Route::get("/_sandbox/faults", Handler::Run(faults)),
    Route::post("/_sandbox/faults", Handler::Run(faults)),
    Route::get("/_sandbox/timers", Handler::Run(timers)),
    Route::post("/_sandbox/timers", Handler::Run(timers)),
    Route::get("/_sandbox/clock", Handler::Run(clock)),
    Route::post("/_sandbox/clock", Handler::Run(clock)),
    Route::get("/_sandbox/platform", Handler::Run(platform)),
    Route::post("/_sandbox/platform", Handler::Run(platform)),
    Route::post("/_sandbox/accounts/:id/onboard", Handler::Run(onboard)),
    Route::post(
        "/_sandbox/accounts/:id/deauthorize",
        Handler::Run(deauthorize),
    ),
];

/// A GET takes no parameters and shows the control's state; a POST takes those `known`, which
/// are returned to change the state by before it is shown.
fn change<'p>(
    ctx: &Ctx<'_>,
    call: &Call<'p>,
    known: &[&str],
) -> Result<Option<&'p Map<String, Value>>, StripeErr> {
    let posted = *call.method == Method::POST;
    ctx.secret_call(call.params, if posted { known } else { &[] })?;
    Ok(posted.then_some(call.params))
}

/// `GET|POST /_sandbox/webhooks`: where events go and whether they are being dropped
/// (`drop=true|false`).
fn webhooks(ctx: &mut Ctx<'_>, call: &Call<'_>) -> Result<Value, StripeErr> {
    if let Some(change) = change(ctx, call, &["drop"])? {
        if let Some(drop) = flag_param(change, "drop")? {
            ctx.shared.set_dropping(drop);
            tracing::warn!(drop, "sandbox webhook dropping switched");
        }
    }
    Ok(json!({
        "object": "sandbox.webhooks",
        "url": ctx.shared.webhook_url,
        "drop": ctx.shared.dropping(),
        "pending": ctx.pending_deliveries(),
    }))
}

/// `GET|POST /_sandbox/faults`: failures on demand, for tests.
///
/// `clear=true` switches everything off first; `refund_balance_insufficient[]=pi_…` makes
/// refunds of that PaymentIntent fail with `balance_insufficient` until cleared;
/// `rate_limit_requests=N` answers the next N API requests (those under
/// `rate_limit_path_prefix` only, when given) with Stripe's 429, sending `Stripe-Should-Retry`
/// when `rate_limit_should_retry` is given.
fn faults(ctx: &mut Ctx<'_>, call: &Call<'_>) -> Result<Value, StripeErr> {
    let changed = change(
        ctx,
        call,
        &[
            "clear",
            "refund_balance_insufficient",
            "rate_limit_requests",
            "rate_limit_path_prefix",
            "rate_limit_should_retry",
        ],
    )?;
    let mut faults = ctx
        .shared
        .faults
        .lock()
        .map_err(|_| internal("the fault switches are unusable"))?;
    let Some(params) = changed else {
        return Ok(faults.describe());
    };
    let mut pis = Vec::new();
    let listed: &[Value] = match params.get("refund_balance_insufficient") {
        None => &[],
        Some(Value::Array(items)) => items,
        Some(_) => return Err(invalid_array("refund_balance_insufficient")),
    };
    for item in listed {
        let id = item
            .as_str()
            .ok_or_else(|| invalid_array("refund_balance_insufficient"))?;
        ctx.payment_intent(id)
            .map_err(|_| missing_param("payment_intent", id, "refund_balance_insufficient"))?;
        pis.push(id.to_string());
    }
    let rate_limit = match integer_param::<u64>(params, "rate_limit_requests")? {
        None => None,
        Some(remaining) => {
            let should_retry = flag_param(params, "rate_limit_should_retry")?;
            let path_prefix = string_param(params, "rate_limit_path_prefix")?
                .filter(|p| !p.is_empty())
                .map(str::to_string);
            Some((remaining > 0).then_some(RateLimit {
                remaining,
                path_prefix,
                should_retry,
            }))
        }
    };
    if bool_param(params, "clear")? {
        *faults = Faults::default();
    }
    faults.refund_balance_insufficient.extend(pis);
    if let Some(limit) = rate_limit {
        faults.rate_limit = limit;
    }
    tracing::warn!(faults = %faults.describe(), "sandbox faults switched");
    Ok(faults.describe())
}

/// `GET|POST /_sandbox/timers`: what the sandbox will do by itself, and when. `delay_ms=N` sets
/// the wait for timers scheduled from now on; `run=true` makes every pending timer due now.
fn timers(ctx: &mut Ctx<'_>, call: &Call<'_>) -> Result<Value, StripeErr> {
    if let Some(change) = change(ctx, call, &["delay_ms", "run"])? {
        if let Some(ms) = integer_param(change, "delay_ms")? {
            ctx.shared.set_delay_ms(ms);
        }
        if bool_param(change, "run")? {
            ctx.hurry_timers();
        }
    }
    let pending: Vec<Value> = ctx
        .timers()
        .into_iter()
        .map(|(id, t)| json!({"id": id, "due_ms": t.due_ms, "action": t.action}))
        .collect();
    Ok(json!({
        "object": "sandbox.timers",
        "delay_ms": ctx.shared.delay_ms(),
        "pending": pending,
    }))
}

/// `GET|POST /_sandbox/clock`: the sandbox's time, which balances and payouts go by;
/// `advance=SECONDS` moves it ahead (never back), so that pending money becomes available.
fn clock(ctx: &mut Ctx<'_>, call: &Call<'_>) -> Result<Value, StripeErr> {
    if let Some(change) = change(ctx, call, &["advance"])? {
        let seconds: i64 =
            integer_param(change, "advance")?.ok_or_else(|| missing_required("advance"))?;
        if !(0..=10 * 366 * 24 * 60 * 60).contains(&seconds) {
            return Err(invalid(
                "advance must be a number of seconds from 0 to ten years: the sandbox's clock \
                 only goes forward.",
                Some("advance"),
                None,
            ));
        }
        balance::advance_clock(ctx, seconds);
    }
    Ok(json!({
        "object": "sandbox.clock",
        "now": balance::clock_now(ctx),
        "offset": balance::clock_offset(ctx),
    }))
}

/// `GET|POST /_sandbox/platform`: the platform's country (its fee schedule) and settlement
/// currency; `country=MX` sets both (`mxn`), `default_currency` another currency.
fn platform(ctx: &mut Ctx<'_>, call: &Call<'_>) -> Result<Value, StripeErr> {
    if let Some(change) = change(ctx, call, &["country", "default_currency"])? {
        let mut settlement = balance::platform(ctx);
        if let Some(country) = string_param(change, "country")? {
            let currency = accounts::default_currency(country).ok_or_else(|| {
                invalid(
                    format!("The sandbox knows no country '{country}'."),
                    Some("country"),
                    None,
                )
            })?;
            settlement.country = country.to_ascii_uppercase();
            settlement.currency = currency.to_string();
        }
        if let Some(given) = string_param(change, "default_currency")? {
            let currency = Currency::parse(given).ok_or_else(|| {
                invalid(
                    format!("Invalid currency: {given}"),
                    Some("default_currency"),
                    None,
                )
            })?;
            settlement.currency = currency.code.to_string();
        }
        balance::set_platform(ctx, &settlement);
    }
    let settlement = balance::platform(ctx);
    Ok(json!({
        "object": "sandbox.platform",
        "country": settlement.country,
        "default_currency": settlement.currency,
    }))
}

/// `POST /_sandbox/accounts/:id/onboard` with `outcome=complete` or `outcome=incomplete`: what
/// the onboarding page's buttons do (see `accounts::onboard`); answers the account.
fn onboard(ctx: &mut Ctx<'_>, call: &Call<'_>) -> Result<Value, StripeErr> {
    ctx.secret_call(call.params, &["outcome"])?;
    let complete = match string_param(call.params, "outcome")? {
        Some("complete") => true,
        Some("incomplete") => false,
        Some(other) => {
            return Err(invalid(
                format!("outcome must be complete or incomplete (got {other})"),
                Some("outcome"),
                None,
            ))
        }
        None => return Err(missing_required("outcome")),
    };
    accounts::onboard(ctx, call.id(), complete)
}

/// `POST /_sandbox/accounts/:id/deauthorize`: the account disconnects from the platform
/// (`account.application.deauthorized`); the platform can no longer reach it.
fn deauthorize(ctx: &mut Ctx<'_>, call: &Call<'_>) -> Result<Value, StripeErr> {
    ctx.secret_call(call.params, &[])?;
    accounts::deauthorize(ctx, call.id())
}
