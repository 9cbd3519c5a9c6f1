//! Requests: authentication, idempotency, routing and the handlers of Stripe's endpoints, plus
//! the sandbox's own control endpoints under [`crate::CONTROL_PREFIX`].

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{NestedPath, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{json, Map, Value};

use crate::cards::{self, CardResult, TestCard};
use crate::ctx::{Caller, Ctx, Origin};
use crate::currency::Currency;
use crate::error::{
    below_one, doc_url, internal, invalid, invalid_array, invalid_hash, invalid_integer,
    invalid_string, missing, missing_param, missing_required, unauthorized, unknown_parameter,
    StripeErr,
};
use crate::lists::{ListQuery, LIST_PARAMS};
use crate::objects::{self, NewPaymentIntent};
use crate::params::{
    apply_metadata, bool_param, check_known, check_known_as, flag_param, integer_param, known_with,
    string_param, update_metadata,
};
use crate::shared::{Effects, Shared};
use crate::store::{now, Kind, SavedResponse, Store};
use crate::{money, params};

fn authenticate(headers: &HeaderMap) -> Result<(Caller, String), StripeErr> {
    let Some(value) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return Err(unauthorized(
            "You did not provide an API key. You need to provide your API key in the \
             Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
        ));
    };
    let key = if let Some(token) = value.strip_prefix("Bearer ") {
        token.trim().to_string()
    } else if let Some(encoded) = value.strip_prefix("Basic ") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .unwrap_or_default();
        decoded.split(':').next().unwrap_or("").to_string()
    } else {
        String::new()
    };
    authenticate_key(key)
}

fn authenticate_key(key: String) -> Result<(Caller, String), StripeErr> {
    let well_formed = |prefix: &str| {
        key.strip_prefix(prefix).is_some_and(|rest| {
            !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        })
    };
    if well_formed("sk_test_") || well_formed("rk_test_") {
        Ok((Caller::Secret, key))
    } else if well_formed("pk_test_") {
        Ok((Caller::Publishable, key))
    } else {
        // Masked by characters: a key need not be ASCII, and slicing bytes could split one.
        let chars: Vec<char> = key.chars().collect();
        let shown = if chars.len() > 12 {
            let head: String = chars[..8].iter().collect();
            let tail: String = chars[chars.len() - 4..].iter().collect();
            format!("{head}****{tail}")
        } else {
            "****".to_string()
        };
        Err(unauthorized(format!(
            "Invalid API Key provided: {shown}. The sandbox accepts any sk_test_… key."
        )))
    }
}

/// What one request produced.
struct Outcome {
    status: StatusCode,
    body: Value,
    /// The id of the request that produced the body: a replay keeps the original's.
    request_id: String,
    replayed: bool,
    effects: Effects,
}

impl Outcome {
    /// An answer that was not replayed and leaves nothing to deliver or schedule.
    fn plain(status: StatusCode, body: Value, request_id: String) -> Outcome {
        Outcome {
            status,
            body,
            request_id,
            replayed: false,
            effects: Effects::default(),
        }
    }

    fn failed(e: StripeErr, request_id: String) -> Outcome {
        Outcome::plain(e.status, e.body(), request_id)
    }
}

/// A JSON answer with the headers every API answer has: any origin may read it, and the id of
/// the request that produced it.
fn answer(status: StatusCode, body: Value, request_id: &str) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    let h = response.headers_mut();
    h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("request-id", v);
    }
    response
}

/// Where a browser reaches this sandbox: the request's scheme and host, and the path under
/// which it is mounted (`/sandbox` when nested in another application, nothing at the root).
fn public_base(mount: &str, headers: &HeaderMap) -> String {
    let host = headers
        .get("x-forwarded-host")
        .or_else(|| headers.get("host"))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .filter(|p| matches!(*p, "http" | "https"))
        .unwrap_or("http");
    format!("{scheme}://{host}{mount}")
}

pub(crate) async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Like api.stripe.com, any origin may call: Stripe.js confirms from the browser.
    if method == Method::OPTIONS {
        let mut response = StatusCode::NO_CONTENT.into_response();
        let h = response.headers_mut();
        h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
        h.insert(
            "access-control-allow-methods",
            HeaderValue::from_static("GET, POST, DELETE, OPTIONS"),
        );
        h.insert(
            "access-control-allow-headers",
            HeaderValue::from_static(
                "Authorization, Content-Type, Idempotency-Key, Stripe-Version",
            ),
        );
        h.insert("access-control-max-age", HeaderValue::from_static("86400"));
        return response;
    }
    let mount = extensions
        .get::<NestedPath>()
        .map(|n| n.as_str().trim_end_matches('/').to_string())
        .unwrap_or_default();
    let base = public_base(&mount, &headers);
    if uri.path().starts_with(crate::threeds::PREFIX) {
        return crate::threeds::handle(&shared, &method, &uri, &body, &base).await;
    }
    let request_id = format!("req_{}", objects::random_alnum(14));
    // Refused before anything else, so that a refused request changes nothing and leaves no
    // idempotent result behind.
    if uri.path().starts_with("/v1/") {
        let limited = shared
            .faults
            .lock()
            .map(|mut f| f.rate_limited(uri.path()))
            .unwrap_or(None);
        if let Some(should_retry) = limited {
            let refused = crate::faults::rate_limit_error();
            let mut response = answer(refused.status, refused.body(), &request_id);
            if let Some(flag) = should_retry {
                response.headers_mut().insert(
                    "stripe-should-retry",
                    HeaderValue::from_static(if flag { "true" } else { "false" }),
                );
            }
            return response;
        }
    }
    let mut state = shared.state.lock().await;
    // A fault of the sandbox's own is answered as Stripe answers one (500 `api_error`) rather
    // than by dropping the client's connection.
    let processed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        process(
            &shared,
            &mut state.store,
            &method,
            &uri,
            &headers,
            &body,
            request_id.clone(),
            base,
        )
    }));
    let mut outcome = processed.unwrap_or_else(|_| {
        tracing::error!(%method, path = uri.path(), "the sandbox failed on a request");
        Outcome::failed(internal("The sandbox failed on this request."), request_id)
    });
    let effects = std::mem::take(&mut outcome.effects);
    if let Err(e) = shared.commit(state, effects).await {
        let failed = internal(format!("The sandbox could not save its state: {e}"));
        outcome.status = failed.status;
        outcome.body = failed.body();
    }
    let mut response = answer(outcome.status, outcome.body, &outcome.request_id);
    let h = response.headers_mut();
    let version = headers
        .get("stripe-version")
        .cloned()
        .unwrap_or(HeaderValue::from_static(objects::DEFAULT_API_VERSION));
    h.insert("stripe-version", version);
    if outcome.replayed {
        h.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

#[allow(clippy::too_many_arguments)]
fn process(
    shared: &Shared,
    store: &mut Store,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    request_id: String,
    base: String,
) -> Outcome {
    let mut params = match params::parse(uri.query().unwrap_or("").as_bytes()) {
        Ok(p) => p,
        Err(e) => return Outcome::failed(invalid(e.0, None, None), request_id),
    };
    if *method == Method::POST {
        match params::parse(body) {
            Ok(p) => params.extend(p),
            Err(e) => return Outcome::failed(invalid(e.0, None, None), request_id),
        }
    }
    // Stripe.js sends its publishable key as a `key` parameter rather than a header.
    let key_param = params.remove("key");
    let auth = match (
        headers.get("authorization"),
        key_param.as_ref().and_then(Value::as_str),
    ) {
        (None, Some(key)) => authenticate_key(key.to_string()),
        _ => authenticate(headers),
    };
    let (caller, api_key) = match auth {
        Ok(c) => c,
        Err(e) => return Outcome::failed(e, request_id),
    };
    if caller == Caller::Publishable {
        // What Stripe.js adds to its calls and the sandbox has no use for.
        params.retain(|k, _| {
            !k.starts_with('_')
                && !matches!(
                    k.as_str(),
                    "expected_payment_method_type"
                        | "use_stripe_sdk"
                        | "guid"
                        | "muid"
                        | "sid"
                        | "payment_user_agent"
                        | "time_on_page"
                        | "referrer"
                        | "pasted_fields"
                        | "client_attribution_metadata"
                )
        });
    }
    let idempotency_key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .filter(|_| *method == Method::POST)
        .map(str::to_string);
    let fingerprint = format!(
        "{method} {} {}",
        uri.path(),
        params::canonical(&Value::Object(params.clone()))
    );
    if let Some(key) = &idempotency_key {
        if let Some(saved) = store.saved_response(&api_key, key) {
            if saved.fingerprint == fingerprint {
                return Outcome {
                    replayed: true,
                    ..Outcome::plain(
                        StatusCode::from_u16(saved.status).unwrap_or(StatusCode::OK),
                        saved.body.clone(),
                        saved.request_id.clone(),
                    )
                };
            }
            return Outcome::failed(
                StripeErr {
                    status: StatusCode::BAD_REQUEST,
                    error: json!({
                        "type": "idempotency_error",
                        "message": format!(
                            "Keys for idempotent requests can only be used with the same parameters \
                             they were first used with. Try using a key other than '{key}' if you meant \
                             to execute a different request."),
                    }),
                },
                request_id,
            );
        }
    }
    let origin = Origin {
        caller,
        request_id: Some(request_id.clone()),
        idempotency_key: idempotency_key.clone(),
        base,
    };
    let mut ctx = Ctx::new(store, shared, origin);
    let result = route(&mut ctx, method, uri.path(), &params);
    let effects = ctx.finish();
    let (status, body) = match result {
        Ok(v) => (StatusCode::OK, v),
        Err(e) => (e.status, e.body()),
    };
    // Stripe keeps the result of every request that started executing; validation failures
    // (400) are not kept, so a corrected retry with the same key goes through.
    if let Some(key) = idempotency_key {
        if status == StatusCode::OK || status == StatusCode::PAYMENT_REQUIRED {
            store.save_response(
                api_key,
                key,
                SavedResponse {
                    fingerprint,
                    status: status.as_u16(),
                    body: body.clone(),
                    request_id: request_id.clone(),
                    created: now(),
                },
            );
        }
    }
    Outcome {
        effects,
        ..Outcome::plain(status, body, request_id)
    }
}

fn route(
    ctx: &mut Ctx<'_>,
    method: &Method,
    path: &str,
    params: &Map<String, Value>,
) -> Result<Value, StripeErr> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let result = match (method.as_str(), segments.as_slice()) {
        ("POST", ["v1", "payment_intents"]) => create_payment_intent(ctx, params),
        ("GET", ["v1", "payment_intents"]) => {
            list_by_fields(ctx, params, Kind::PaymentIntent, &["customer"])
        }
        ("GET", ["v1", "payment_intents", id]) => retrieve_payment_intent(ctx, id, params),
        ("POST", ["v1", "payment_intents", id]) => update_payment_intent(ctx, id, params),
        ("POST", ["v1", "payment_intents", id, "confirm"]) => {
            confirm_payment_intent(ctx, id, params)
        }
        ("POST", ["v1", "payment_intents", id, "cancel"]) => cancel_payment_intent(ctx, id, params),
        ("POST", ["v1", "payment_intents", id, "capture"]) => {
            capture_payment_intent(ctx, id, params)
        }
        ("GET", ["v1", "charges"]) => {
            list_by_fields(ctx, params, Kind::Charge, &["payment_intent", "customer"])
        }
        ("GET", ["v1", "charges", id]) => retrieve(ctx, Kind::Charge, id, params),
        ("GET", ["v1", "charges", id, "refunds"]) => money::list_charge_refunds(ctx, id, params),
        ("POST", ["v1", "payment_methods"]) => create_payment_method(ctx, params),
        ("GET", ["v1", "payment_methods", id]) => retrieve(ctx, Kind::PaymentMethod, id, params),
        ("POST", ["v1", "refunds"]) => money::create_refund(ctx, params),
        ("GET", ["v1", "refunds"]) => {
            list_by_fields(ctx, params, Kind::Refund, &["payment_intent", "charge"])
        }
        ("GET", ["v1", "refunds", id]) => retrieve(ctx, Kind::Refund, id, params),
        ("POST", ["v1", "refunds", id]) => money::update_refund(ctx, id, params),
        ("GET", ["v1", "disputes"]) => {
            list_by_fields(ctx, params, Kind::Dispute, &["payment_intent", "charge"])
        }
        ("GET", ["v1", "disputes", id]) => retrieve(ctx, Kind::Dispute, id, params),
        ("POST", ["v1", "disputes", id]) => money::update_dispute(ctx, id, params),
        ("POST", ["v1", "disputes", id, "close"]) => money::close_dispute(ctx, id, params),
        ("GET", ["v1", "events"]) => list_events(ctx, params),
        ("GET", ["v1", "events", id]) => retrieve(ctx, Kind::Event, id, params),
        ("GET" | "POST", ["_sandbox", "webhooks"]) => control_webhooks(ctx, method, params),
        ("GET" | "POST", ["_sandbox", "faults"]) => control_faults(ctx, method, params),
        ("GET" | "POST", ["_sandbox", "timers"]) => control_timers(ctx, method, params),
        _ => Err(StripeErr {
            status: StatusCode::NOT_FOUND,
            error: json!({"type": "invalid_request_error",
                          "message": format!("Unrecognized request URL ({method}: {path}). The sandbox \
                                              supports PaymentIntents, Charges, PaymentMethods, Refunds, \
                                              Disputes and Events.")}),
        }),
    };
    let mut value = result?;
    expand(ctx, &mut value, params);
    Ok(value)
}

pub(crate) fn retrieve(
    ctx: &mut Ctx<'_>,
    kind: Kind,
    id: &str,
    params: &Map<String, Value>,
) -> Result<Value, StripeErr> {
    ctx.secret_call(params, &["expand"])?;
    ctx.object(kind, id, "id")
}

/// `expand[]=…` of the ids an object names (`latest_charge`, `payment_method`, `payment_intent`,
/// `charge`), and `refunds` of a Charge, which API versions since 2022-11-15 include only when
/// expanded; with `data.` in front of them on lists.
fn expand(ctx: &Ctx<'_>, value: &mut Value, params: &Map<String, Value>) {
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
            value["refunds"] = money::charge_refunds_list(ctx, &id);
            continue;
        }
        let kind = match *field {
            "latest_charge" | "charge" => Kind::Charge,
            "payment_method" => Kind::PaymentMethod,
            "payment_intent" => Kind::PaymentIntent,
            _ => continue,
        };
        if let Some(found) = value[*field].as_str().and_then(|id| ctx.find(kind, id)) {
            value[*field] = found.clone();
        }
    }
}

/// What a confirmation takes, and so creating a PaymentIntent with `confirm=true` too; the
/// publishable key confirms with `client_secret` besides.
const CONFIRM_PARAMS: &[&str] = &[
    "payment_method",
    "payment_method_data",
    "return_url",
    "expand",
    "use_stripe_sdk",
    "mandate_data",
    "capture_method",
];

fn create_payment_intent(
    ctx: &mut Ctx<'_>,
    params: &Map<String, Value>,
) -> Result<Value, StripeErr> {
    let known = known_with(
        CONFIRM_PARAMS,
        &[
            "amount",
            "currency",
            "description",
            "metadata",
            "automatic_payment_methods",
            "payment_method_types",
            "confirm",
        ],
    );
    ctx.secret_call(params, &known)?;
    let capture_method = match string_param(params, "capture_method")? {
        None => "automatic_async",
        Some(m @ ("automatic" | "automatic_async" | "manual")) => m,
        Some(other) => {
            return Err(invalid(
                format!("Invalid capture_method: must be one of automatic, automatic_async, or manual (got {other})"),
                Some("capture_method"),
                None,
            ))
        }
    };
    let amount: i64 = integer_param(params, "amount")?.ok_or_else(|| missing_required("amount"))?;
    let currency_text =
        string_param(params, "currency")?.ok_or_else(|| missing_required("currency"))?;
    let currency = Currency::parse(currency_text).ok_or_else(|| {
        invalid(
            format!("Invalid currency: {}. Stripe currently supports these currencies: usd, eur, gbp, jpy, mxn, …",
                    currency_text.to_ascii_lowercase()),
            Some("currency"),
            None,
        )
    })?;
    currency
        .check_amount(amount)
        .map_err(|refused| invalid(refused.message, Some("amount"), refused.code))?;
    let automatic = match params.get("automatic_payment_methods") {
        Some(Value::Object(apm)) => apm.get("enabled").and_then(Value::as_str) == Some("true"),
        _ => false,
    };
    let types = match params.get("payment_method_types") {
        Some(Value::Array(t)) => t.clone(),
        _ => vec![json!("card")],
    };
    let mut metadata = Map::new();
    apply_metadata(&mut metadata, params)?;
    let mut pi = objects::payment_intent(NewPaymentIntent {
        amount,
        currency: currency.code,
        description: string_param(params, "description")?.map(str::to_string),
        metadata,
        automatic_payment_methods: automatic,
        payment_method_types: types,
        created: now(),
    });
    pi["capture_method"] = json!(capture_method);
    let confirm = bool_param(params, "confirm")?;
    if let Some((id, _)) = given_payment_method(ctx, params)? {
        pi["payment_method"] = json!(id);
        pi["status"] = json!("requires_confirmation");
    } else if confirm {
        return Err(invalid(
            "You cannot confirm this PaymentIntent because it's missing a payment method. \
             To confirm the PaymentIntent with the sandbox, pass a payment_method such as pm_card_visa.",
            Some("payment_method"),
            Some("payment_intent_unexpected_state"),
        ));
    }
    ctx.save_pi(&pi);
    ctx.emit("payment_intent.created", pi.clone());
    if confirm {
        let id = pi["id"].as_str().unwrap_or_default().to_string();
        let mut confirm_params = Map::new();
        if let Some(url) = params.get("return_url") {
            confirm_params.insert("return_url".into(), url.clone());
        }
        return confirm_payment_intent(ctx, &id, &confirm_params);
    }
    Ok(pi)
}

/// The PaymentMethod a request names: `payment_method` (an id or a test alias) or
/// `payment_method_data` (a card as Stripe.js sends it), made into a PaymentMethod.
fn given_payment_method(
    ctx: &mut Ctx<'_>,
    params: &Map<String, Value>,
) -> Result<Option<(String, TestCard)>, StripeErr> {
    if let Some(pm) = string_param(params, "payment_method")? {
        return resolve_payment_method(ctx, pm).map(Some);
    }
    match params.get("payment_method_data") {
        None => Ok(None),
        Some(Value::Object(data)) => {
            let pm = payment_method_from(ctx, data, "payment_method_data")?;
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
    // Howard Hinnant's civil-from-days.
    let days = now().div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month)
}

/// A PaymentMethod from `type` and `card[…]` (and `billing_details`, `metadata`), checked as
/// Stripe checks a card: number (digits, length, Luhn), expiry, CVC. `prefix` names the
/// parameters in errors (`payment_method_data[card][number]`).
fn payment_method_from(
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
    let card_param = |key: &str| name(&format!("card[{key}]"));
    check_known_as(
        data,
        &[
            "type",
            "card",
            "billing_details",
            "metadata",
            "allow_redisplay",
            "expand",
        ],
        name,
    )?;
    match data.get("type").and_then(Value::as_str) {
        Some("card") => {}
        Some(other) => {
            return Err(invalid(
                format!("The sandbox makes PaymentMethods of type card only, not {other}; use a test PaymentMethod such as pm_usBankAccount_success for other types."),
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
    if let Some(Value::Object(given)) = data.get("billing_details") {
        for (k, v) in given {
            match (k.as_str(), v) {
                ("name" | "email" | "phone", Value::String(text)) => {
                    pm["billing_details"][k.as_str()] = json!(text)
                }
                ("address", Value::Object(address)) => {
                    for (part, text) in address {
                        if pm["billing_details"]["address"].get(part).is_some() {
                            pm["billing_details"]["address"][part.as_str()] = text.clone();
                        }
                    }
                }
                _ => return Err(unknown_parameter(&name(&format!("billing_details[{k}]")))),
            }
        }
    }
    update_metadata(&mut pm, data)?;
    ctx.put_payment_method(pm.clone(), alias);
    Ok(pm)
}

/// `POST /v1/payment_methods`, as Stripe.js calls it with a publishable key.
fn create_payment_method(
    ctx: &mut Ctx<'_>,
    params: &Map<String, Value>,
) -> Result<Value, StripeErr> {
    payment_method_from(ctx, params, "")
}

/// A test alias (`pm_card_visa`) becomes a new PaymentMethod, as at Stripe; an id the sandbox
/// issued earlier is looked up.
fn resolve_payment_method(ctx: &mut Ctx<'_>, given: &str) -> Result<(String, TestCard), StripeErr> {
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

pub(crate) fn client_secret_matches(pi: &Value, params: &Map<String, Value>) -> bool {
    params.get("client_secret").and_then(Value::as_str) == pi["client_secret"].as_str()
}

fn retrieve_payment_intent(
    ctx: &mut Ctx<'_>,
    id: &str,
    params: &Map<String, Value>,
) -> Result<Value, StripeErr> {
    let pi = ctx.payment_intent(id)?;
    if ctx.caller() == Caller::Publishable && !client_secret_matches(&pi, params) {
        return Err(missing("payment_intent", id, "intent"));
    }
    Ok(pi)
}

fn update_payment_intent(
    ctx: &mut Ctx<'_>,
    id: &str,
    params: &Map<String, Value>,
) -> Result<Value, StripeErr> {
    ctx.secret_call(
        params,
        &["metadata", "description", "payment_method", "expand"],
    )?;
    let mut pi = ctx.payment_intent(id)?;
    if let Some(description) = string_param(params, "description")? {
        pi["description"] = if description.is_empty() {
            Value::Null
        } else {
            json!(description)
        };
    }
    update_metadata(&mut pi, params)?;
    if let Some(pm) = string_param(params, "payment_method")? {
        let status = pi["status"].as_str().unwrap_or_default();
        if !CONFIRMABLE.contains(&status) {
            return Err(unexpected_state(
                "update the payment method of",
                status,
                CONFIRMABLE,
            ));
        }
        let (pm_id, _) = resolve_payment_method(ctx, pm)?;
        pi["payment_method"] = json!(pm_id);
        pi["status"] = json!("requires_confirmation");
    }
    ctx.save_pi(&pi);
    Ok(pi)
}

/// The statuses in which a PaymentIntent can be confirmed, or given another payment method.
const CONFIRMABLE: &[&str] = &[
    "requires_payment_method",
    "requires_confirmation",
    "requires_action",
];

pub(crate) fn unexpected_state(action: &str, status: &str, allowed: &[&str]) -> StripeErr {
    invalid(
        format!(
            "You cannot {action} this PaymentIntent because it has a status of {status}. \
             Only a PaymentIntent with one of the following statuses may be used: {}.",
            allowed.join(", ")
        ),
        None,
        Some("payment_intent_unexpected_state"),
    )
}

fn confirm_payment_intent(
    ctx: &mut Ctx<'_>,
    id: &str,
    params: &Map<String, Value>,
) -> Result<Value, StripeErr> {
    let mut pi = ctx.payment_intent(id)?;
    match ctx.caller() {
        Caller::Secret => {}
        // Stripe.js confirms with the publishable key and the client secret.
        Caller::Publishable if client_secret_matches(&pi, params) => {}
        Caller::Publishable => return Err(missing("payment_intent", id, "intent")),
    }
    check_known(params, &known_with(CONFIRM_PARAMS, &["client_secret"]))?;
    let status = pi["status"].as_str().unwrap_or_default().to_string();
    if !CONFIRMABLE.contains(&status.as_str()) {
        return Err(unexpected_state("confirm", &status, CONFIRMABLE));
    }
    if let Some(method) = string_param(params, "capture_method")? {
        if !matches!(method, "automatic" | "automatic_async" | "manual") {
            return Err(invalid(
                "Invalid capture_method: must be one of automatic, automatic_async, or manual",
                Some("capture_method"),
                None,
            ));
        }
        pi["capture_method"] = json!(method);
    }
    let return_url = string_param(params, "return_url")?.map(str::to_string);
    if let Some(url) = &return_url {
        if !url::Url::parse(url).is_ok_and(|u| u.has_host()) {
            return Err(invalid(
                "Invalid URL: return_url must be an absolute URL",
                Some("return_url"),
                Some("url_invalid"),
            ));
        }
    }
    let (pm_id, card) = match given_payment_method(ctx, params)? {
        Some(given) => given,
        None => {
            let existing = pi["payment_method"].as_str().map(str::to_string);
            match existing.and_then(|id| ctx.card_of(&id).map(|c| (id, c))) {
                Some(found) => found,
                None => return Err(invalid(
                    "You cannot confirm this PaymentIntent because it's missing a payment method. \
                         Pass payment_method, for example pm_card_visa.",
                    Some("payment_method"),
                    Some("payment_intent_unexpected_state"),
                )),
            }
        }
    };
    let accepted = pi["automatic_payment_methods"]["enabled"] == true
        || pi["payment_method_types"]
            .as_array()
            .is_some_and(|types| types.iter().any(|t| t == card.method.name()));
    if !accepted {
        return Err(invalid(
            format!(
                "The PaymentMethod provided ({}) is not allowed for this PaymentIntent. Please attach a \
                 PaymentMethod of one of the following types: {}. Alternatively, update the allowed \
                 payment_method_types for this PaymentIntent to include \"{}\".",
                card.method.name(),
                pi["payment_method_types"]
                    .as_array()
                    .map(|t| t.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "))
                    .unwrap_or_default(),
                card.method.name()
            ),
            Some("payment_method"),
            Some("payment_intent_incompatible_payment_method"),
        ));
    }
    let authenticated =
        status == "requires_action" && pi["payment_method"].as_str() == Some(pm_id.as_str());
    pi["payment_method"] = json!(pm_id);
    pi["next_action"] = Value::Null;
    pi["last_payment_error"] = Value::Null;
    let result = match card.result {
        // Confirming again after the customer authenticated completes the payment.
        CardResult::RequiresAuthentication if authenticated => CardResult::Succeeds,
        other => other,
    };
    let created = now();
    match result {
        CardResult::RequiresAuthentication => {
            pi["status"] = json!("requires_action");
            pi["next_action"] = match return_url {
                // A redirect to the sandbox's own challenge page, as Stripe's test mode redirects
                // to its test page.
                Some(url) => json!({
                    "type": "redirect_to_url",
                    "redirect_to_url": {
                        "url": format!(
                            "{}{}/{}?client_secret={}",
                            ctx.origin.base,
                            crate::threeds::PREFIX,
                            pi["id"].as_str().unwrap_or_default(),
                            pi["client_secret"].as_str().unwrap_or_default()
                        ),
                        "return_url": url
                    }
                }),
                None => {
                    let source = objects::new_id("src");
                    json!({
                        "type": "use_stripe_sdk",
                        "use_stripe_sdk": {"type": "three_d_secure_redirect",
                                           "stripe_js": format!("https://hooks.stripe.com/redirect/authenticate/{source}"),
                                           "source": source}
                    })
                }
            };
            ctx.save_pi(&pi);
            ctx.emit("payment_intent.requires_action", pi.clone());
            Ok(pi)
        }
        CardResult::Succeeds | CardResult::Processing => pay(ctx, pi, &pm_id, &card),
        CardResult::Declines {
            code,
            decline_code,
            message,
        } => {
            let charge = objects::charge(&pi, &pm_id, &card, created);
            ctx.put(Kind::Charge, charge.clone());
            let pm_object = ctx
                .find(Kind::PaymentMethod, &pm_id)
                .cloned()
                .unwrap_or(Value::Null);
            let error = json!({
                "charge": charge["id"],
                "code": code,
                "decline_code": decline_code,
                "doc_url": doc_url(code),
                "message": message,
                "payment_method": pm_object,
                "type": "card_error"
            });
            pi["status"] = json!("requires_payment_method");
            pi["payment_method"] = Value::Null;
            pi["latest_charge"] = charge["id"].clone();
            pi["last_payment_error"] = error.clone();
            ctx.save_pi(&pi);
            ctx.emit("charge.failed", charge);
            ctx.emit("payment_intent.payment_failed", pi.clone());
            let mut envelope = error;
            envelope["payment_intent"] = pi;
            envelope["request_log_url"] = json!(format!(
                "https://dashboard.stripe.com/test/logs/{}",
                ctx.origin.request_id.as_deref().unwrap_or_default()
            ));
            Err(StripeErr {
                status: StatusCode::PAYMENT_REQUIRED,
                error: envelope,
            })
        }
    }
}

/// The payment method is accepted (and authenticated where it had to be): a delayed method
/// starts `processing`; a card is charged, or only authorised when `capture_method` is manual.
pub(crate) fn pay(
    ctx: &mut Ctx<'_>,
    mut pi: Value,
    pm_id: &str,
    card: &TestCard,
) -> Result<Value, StripeErr> {
    let created = now();
    let mut charge = objects::charge(&pi, pm_id, card, created);
    if let Some(pm) = ctx.find(Kind::PaymentMethod, pm_id) {
        if let Some(details) = charge
            .pointer_mut("/payment_method_details/card")
            .and_then(Value::as_object_mut)
        {
            details.insert("exp_month".into(), pm["card"]["exp_month"].clone());
            details.insert("exp_year".into(), pm["card"]["exp_year"].clone());
        }
    }
    let amount = pi["amount"].clone();
    pi["payment_method"] = json!(pm_id);
    pi["latest_charge"] = charge["id"].clone();
    pi["next_action"] = Value::Null;
    pi["last_payment_error"] = Value::Null;
    if card.result == CardResult::Processing {
        charge["status"] = json!("pending");
        charge["paid"] = json!(false);
        charge["outcome"]["seller_message"] = json!("Payment processing.");
        ctx.put(Kind::Charge, charge.clone());
        pi["status"] = json!("processing");
        ctx.save_pi(&pi);
        ctx.emit("charge.pending", charge.clone());
        ctx.emit("payment_intent.processing", pi.clone());
        ctx.schedule(
            json!({"do": "processing_succeed", "payment_intent": pi["id"],
                            "charge": charge["id"]}),
        );
        return Ok(pi);
    }
    if pi["capture_method"] == "manual" {
        charge["captured"] = json!(false);
        charge["amount_captured"] = json!(0);
        charge["balance_transaction"] = Value::Null;
        if let Some(details) = charge
            .pointer_mut("/payment_method_details/card")
            .and_then(Value::as_object_mut)
        {
            details.insert("capture_before".into(), json!(created + 7 * 24 * 60 * 60));
        }
        ctx.put(Kind::Charge, charge.clone());
        pi["status"] = json!("requires_capture");
        pi["amount_capturable"] = amount;
        ctx.save_pi(&pi);
        ctx.emit("charge.succeeded", charge);
        ctx.emit("payment_intent.amount_capturable_updated", pi.clone());
        return Ok(pi);
    }
    ctx.put(Kind::Charge, charge.clone());
    pi["status"] = json!("succeeded");
    pi["amount_received"] = amount;
    ctx.save_pi(&pi);
    ctx.emit("charge.succeeded", charge.clone());
    ctx.emit("payment_intent.succeeded", pi.clone());
    if card.after == cards::After::Dispute {
        ctx.schedule(json!({"do": "dispute_open", "charge": charge["id"]}));
    }
    Ok(pi)
}

/// `POST /v1/payment_intents/:id/capture`: all of the authorisation or `amount_to_capture` of
/// it; the rest is released.
fn capture_payment_intent(
    ctx: &mut Ctx<'_>,
    id: &str,
    params: &Map<String, Value>,
) -> Result<Value, StripeErr> {
    ctx.secret_call(
        params,
        &["amount_to_capture", "metadata", "expand", "final_capture"],
    )?;
    let mut pi = ctx.payment_intent(id)?;
    let status = pi["status"].as_str().unwrap_or_default().to_string();
    if status != "requires_capture" {
        return Err(invalid(
            format!(
                "This PaymentIntent could not be captured because it has a status of {status}. \
                 Only a PaymentIntent with one of the following statuses may be captured: requires_capture."
            ),
            None,
            Some("payment_intent_unexpected_state"),
        ));
    }
    let capturable = pi["amount_capturable"].as_i64().unwrap_or(0);
    let amount = match string_param(params, "amount_to_capture")? {
        None => capturable,
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|a| *a >= 0)
            .ok_or_else(|| invalid_integer(text, "amount_to_capture"))?,
    };
    if amount > capturable {
        return Err(invalid(
            format!(
                "The amount_to_capture ({amount}) must be less than or equal to the PaymentIntent's \
                 amount_capturable ({capturable})."
            ),
            Some("amount_to_capture"),
            Some("amount_too_large"),
        ));
    }
    if amount == 0 {
        return Err(below_one("amount_to_capture"));
    }
    update_metadata(&mut pi, params)?;
    let charge_id = pi["latest_charge"].as_str().unwrap_or_default().to_string();
    let mut charge = ctx
        .find(Kind::Charge, &charge_id)
        .cloned()
        .ok_or_else(|| internal("a PaymentIntent awaiting capture has no charge"))?;
    charge["captured"] = json!(true);
    charge["amount_captured"] = json!(amount);
    charge["balance_transaction"] = json!(objects::new_id("txn"));
    ctx.put(Kind::Charge, charge);
    // What was not captured is released, and counts as refunded on the charge, as at Stripe.
    let charge = money::recompute_charge(ctx, &charge_id);
    pi["status"] = json!("succeeded");
    pi["amount_capturable"] = json!(0);
    pi["amount_received"] = json!(amount);
    ctx.save_pi(&pi);
    if let Some(charge) = charge {
        ctx.emit("charge.captured", charge.clone());
        let pm = pi["payment_method"].as_str().unwrap_or_default();
        if ctx
            .card_of(pm)
            .is_some_and(|c| c.after == cards::After::Dispute)
        {
            ctx.schedule(json!({"do": "dispute_open", "charge": charge["id"]}));
        }
    }
    ctx.emit("payment_intent.succeeded", pi.clone());
    Ok(pi)
}

fn cancel_payment_intent(
    ctx: &mut Ctx<'_>,
    id: &str,
    params: &Map<String, Value>,
) -> Result<Value, StripeErr> {
    ctx.secret_call(params, &["cancellation_reason", "expand"])?;
    let mut pi = ctx.payment_intent(id)?;
    let reason = string_param(params, "cancellation_reason")?;
    if let Some(r) = reason {
        if ![
            "duplicate",
            "fraudulent",
            "requested_by_customer",
            "abandoned",
        ]
        .contains(&r)
        {
            return Err(invalid(
                format!("Invalid cancellation_reason: {r}"),
                Some("cancellation_reason"),
                None,
            ));
        }
    }
    let status = pi["status"].as_str().unwrap_or_default().to_string();
    let allowed = [
        "requires_payment_method",
        "requires_capture",
        "requires_confirmation",
        "requires_action",
        "processing",
    ];
    if !allowed.contains(&status.as_str()) {
        return Err(unexpected_state("cancel", &status, &allowed));
    }
    if status == "processing" {
        // Stripe refuses to cancel most delayed methods once the debit is on its way.
        return Err(unexpected_state(
            "cancel",
            &status,
            &allowed[..allowed.len() - 1],
        ));
    }
    pi["status"] = json!("canceled");
    pi["canceled_at"] = json!(now());
    pi["cancellation_reason"] = json!(reason);
    pi["next_action"] = Value::Null;
    if status == "requires_capture" {
        pi["amount_capturable"] = json!(0);
    }
    ctx.save_pi(&pi);
    let released = if status == "requires_capture" {
        // Cancelling an authorisation releases it: the uncaptured charge shows as refunded.
        pi["latest_charge"]
            .as_str()
            .map(str::to_string)
            .and_then(|charge| money::recompute_charge(ctx, &charge))
    } else {
        None
    };
    if let Some(charge) = released {
        ctx.emit("charge.refunded", charge);
    }
    ctx.emit("payment_intent.canceled", pi.clone());
    Ok(pi)
}

/// `GET /v1/{kind}s`: the list of `kind`, where each parameter named in `fields` keeps the
/// objects whose field of that name is the value given.
fn list_by_fields(
    ctx: &mut Ctx<'_>,
    params: &Map<String, Value>,
    kind: Kind,
    fields: &[&'static str],
) -> Result<Value, StripeErr> {
    ctx.secret_call(params, &known_with(LIST_PARAMS, fields))?;
    let query = ListQuery::parse(params)?;
    let mut wanted = Vec::new();
    for field in fields {
        if let Some(value) = string_param(params, field)? {
            wanted.push((*field, value));
        }
    }
    ctx.page(&query, kind, &kind.list_url(), |object| {
        wanted
            .iter()
            .all(|(field, value)| object[*field].as_str() == Some(*value))
    })
}

fn list_events(ctx: &mut Ctx<'_>, params: &Map<String, Value>) -> Result<Value, StripeErr> {
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

/// The sandbox's own controls under `/_sandbox/`, which Stripe does not have, for the secret key
/// only: a GET takes no parameters and shows the control's state; a POST takes those `known`,
/// which are returned to change the state by before it is shown.
fn control_change<'p>(
    ctx: &Ctx<'_>,
    method: &Method,
    params: &'p Map<String, Value>,
    known: &[&str],
) -> Result<Option<&'p Map<String, Value>>, StripeErr> {
    let posted = *method == Method::POST;
    ctx.secret_call(params, if posted { known } else { &[] })?;
    Ok(posted.then_some(params))
}

/// `GET|POST /_sandbox/webhooks`: where events go and whether they are being dropped
/// (`drop=true|false`).
fn control_webhooks(
    ctx: &mut Ctx<'_>,
    method: &Method,
    params: &Map<String, Value>,
) -> Result<Value, StripeErr> {
    if let Some(change) = control_change(ctx, method, params, &["drop"])? {
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
fn control_faults(
    ctx: &mut Ctx<'_>,
    method: &Method,
    params: &Map<String, Value>,
) -> Result<Value, StripeErr> {
    let change = control_change(
        ctx,
        method,
        params,
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
    let Some(params) = change else {
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
            Some((remaining > 0).then_some(crate::faults::RateLimit {
                remaining,
                path_prefix,
                should_retry,
            }))
        }
    };
    if bool_param(params, "clear")? {
        *faults = crate::faults::Faults::default();
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
fn control_timers(
    ctx: &mut Ctx<'_>,
    method: &Method,
    params: &Map<String, Value>,
) -> Result<Value, StripeErr> {
    if let Some(change) = control_change(ctx, method, params, &["delay_ms", "run"])? {
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
