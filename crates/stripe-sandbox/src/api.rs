//! Requests: CORS, the sandbox's pages (3-D Secure, OXXO vouchers and transfer instructions,
//! onboarding) handed over, faults refusing first, authentication, the account a request acts for (`Stripe-Account`), idempotency, then
//! routing by the tables of `resources` and `control` under the sandbox's one lock, and writing
//! what changed before the answer goes out.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{NestedPath, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{json, Map, Value};

use crate::control;
use crate::ctx::{Caller, Ctx, Origin};
use crate::error::{internal, invalid, no_access, unauthorized, StripeErr};
use crate::expand::expand;
use crate::objects;
use crate::params;
use crate::resources;
use crate::route::Call;
use crate::shared::{Effects, Shared};
use crate::store::{now, Kind, SavedResponse, Store};

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
                "Authorization, Content-Type, Idempotency-Key, Stripe-Version, Stripe-Account",
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
    if uri.path().starts_with(crate::hosted::PREFIX) {
        return crate::hosted::handle(&shared, &method, &uri).await;
    }
    if crate::onboarding::takes(&method, uri.path(), &headers, &body) {
        return crate::onboarding::handle(&shared, &method, &uri, &body, &base).await;
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
    // The connected account the request acts for: one the platform controls, or Stripe's 403.
    let account = match headers
        .get("stripe-account")
        .map(|v| v.to_str().map(str::trim))
    {
        None | Some(Ok("")) => None,
        Some(Ok(id)) if store.get_on(None, Kind::Account, id).is_some() => Some(id.to_string()),
        Some(given) => {
            let shown = given.unwrap_or("(not text)");
            return Outcome::failed(no_access(shown, Some(&api_key)), request_id);
        }
    };
    // Idempotency keys are the account's own, as at Stripe: the same key sent for two accounts
    // names two requests.
    let key_owner = match &account {
        Some(id) => format!("{api_key} {id}"),
        None => api_key.clone(),
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
        if let Some(saved) = store.saved_response(&key_owner, key) {
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
        account,
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
                key_owner,
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

/// Runs the endpoint the method and path name (see `resources` and `control`), then expands
/// what its answer names as `expand[]` asks.
fn route(
    ctx: &mut Ctx<'_>,
    method: &Method,
    path: &str,
    params: &Map<String, Value>,
) -> Result<Value, StripeErr> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let found = resources::ROUTES
        .iter()
        .chain(&[control::ROUTES])
        .flat_map(|table| table.iter())
        .find_map(|route| Some((route, route.matches(method, &segments)?)));
    let Some((route, ids)) = found else {
        return Err(StripeErr {
            status: StatusCode::NOT_FOUND,
            error: json!({"type": "invalid_request_error",
                          "message": format!("Unrecognized request URL ({method}: {path}). The sandbox \
                                              supports PaymentIntents, Charges, PaymentMethods, Refunds, \
                                              Disputes, Events, Customers and cash balances, Accounts, \
                                              Account Links, Transfers, Application Fees, \
                                              Balance, Balance Transactions and Payouts.")}),
        });
    };
    let mut value = route.run(
        ctx,
        &Call {
            method,
            ids,
            params,
        },
    )?;
    expand(ctx, &mut value, params);
    crate::balance::present(ctx, &mut value);
    Ok(value)
}
