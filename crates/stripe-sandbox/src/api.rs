//! Requests: authentication, idempotency, routing and the handlers of Stripe's endpoints, plus
//! the sandbox's own control endpoints under [`crate::CONTROL_PREFIX`].

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{json, Map, Value};

use crate::currency::Currency;
use crate::error::{internal, invalid, missing, missing_param, unauthorized, StripeErr};
use crate::lists::{ListQuery, LIST_PARAMS};
use crate::objects::{self, CardResult, NewPaymentIntent, TestCard};
use crate::store::{now, Kind, SavedResponse, Store};
use crate::{params, Inner, Sandbox};

/// Who is calling: a secret key can do everything; a publishable key only what Stripe.js does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Secret,
    Publishable,
}

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
    /// Events to deliver once the lock is released.
    outbox: Vec<String>,
}

pub(crate) async fn handle(
    State(sandbox): State<Sandbox>,
    method: Method,
    uri: Uri,
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
    let request_id = format!("req_{}", objects::random_alnum(14));
    let inner = &sandbox.inner;
    let mut state = inner.state.lock().await;
    let mut outcome = process(
        inner,
        &mut state.store,
        &method,
        &uri,
        &headers,
        &body,
        request_id,
    );
    if let Err(e) = state.persist().await {
        tracing::error!(error = %e, "the sandbox could not write its state");
        let failed = internal(format!("The sandbox could not save its state: {e}"));
        outcome.status = failed.status;
        outcome.body = json!({"error": failed.error});
        outcome.outbox.clear();
    }
    drop(state);
    if let Some(delivery) = &inner.delivery {
        for event in std::mem::take(&mut outcome.outbox) {
            delivery.enqueue(event);
        }
    }
    let mut response = (outcome.status, axum::Json(outcome.body)).into_response();
    let h = response.headers_mut();
    h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    if let Ok(v) = HeaderValue::from_str(&outcome.request_id) {
        h.insert("request-id", v);
    }
    let version = headers
        .get("stripe-version")
        .cloned()
        .unwrap_or(HeaderValue::from_static(crate::DEFAULT_API_VERSION));
    h.insert("stripe-version", version);
    if outcome.replayed {
        h.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

fn process(
    inner: &Inner,
    store: &mut Store,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    request_id: String,
) -> Outcome {
    let failed = |e: StripeErr, request_id: String| Outcome {
        status: e.status,
        body: json!({"error": e.error}),
        request_id,
        replayed: false,
        outbox: Vec::new(),
    };
    let mut params = match params::parse(uri.query().unwrap_or("").as_bytes()) {
        Ok(p) => p,
        Err(e) => return failed(invalid(e.0, None, None), request_id),
    };
    if *method == Method::POST {
        match params::parse(body) {
            Ok(p) => params.extend(p),
            Err(e) => return failed(invalid(e.0, None, None), request_id),
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
        Err(e) => return failed(e, request_id),
    };
    if caller == Caller::Publishable {
        // What Stripe.js adds to its calls and the sandbox has no use for.
        params.retain(|k, _| {
            !k.starts_with('_')
                && !matches!(
                    k.as_str(),
                    "expected_payment_method_type" | "use_stripe_sdk"
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
                    status: StatusCode::from_u16(saved.status).unwrap_or(StatusCode::OK),
                    body: saved.body.clone(),
                    request_id: saved.request_id.clone(),
                    replayed: true,
                    outbox: Vec::new(),
                };
            }
            return failed(
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
    let mut ctx = Ctx {
        store,
        inner,
        caller,
        request_id: request_id.clone(),
        idempotency_key: idempotency_key.clone(),
        outbox: Vec::new(),
    };
    let result = route(&mut ctx, method, uri.path(), &params);
    let outbox = std::mem::take(&mut ctx.outbox);
    let (status, body) = match result {
        Ok(v) => (StatusCode::OK, v),
        Err(e) => (e.status, json!({"error": e.error})),
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
        status,
        body,
        request_id,
        replayed: false,
        outbox,
    }
}

struct Ctx<'a> {
    store: &'a mut Store,
    inner: &'a Inner,
    caller: Caller,
    request_id: String,
    idempotency_key: Option<String>,
    /// Events created by this request that are to be delivered.
    outbox: Vec<String>,
}

impl Ctx<'_> {
    fn require_secret(&self) -> Result<(), StripeErr> {
        if self.caller == Caller::Secret {
            Ok(())
        } else {
            Err(unauthorized(
                "This API call cannot be made with a publishable API key. Please use a secret API key.",
            ))
        }
    }

    fn emit(&mut self, event_type: &str, object: Value) {
        // Stripe counts endpoints that have not received the event yet; a dropped delivery is
        // one that never will.
        let endpoint = self.inner.delivery.is_some();
        let event = objects::event(
            event_type,
            object,
            now(),
            i64::from(endpoint),
            Some(&self.request_id),
            self.idempotency_key.as_deref(),
        );
        let id = event["id"].as_str().unwrap_or_default().to_string();
        self.store.put(Kind::Event, event, None);
        if endpoint && !self.inner.dropping() {
            self.store.add_delivery(&id);
            self.outbox.push(id);
        }
    }

    fn payment_intent(&self, id: &str) -> Result<Value, StripeErr> {
        self.store
            .value(Kind::PaymentIntent, id)
            .cloned()
            .ok_or_else(|| missing("payment_intent", id, "intent"))
    }

    fn save_pi(&mut self, pi: &Value) {
        self.store.put(Kind::PaymentIntent, pi.clone(), None);
    }

    fn card_of(&self, pm_id: &str) -> Option<TestCard> {
        self.store
            .get(Kind::PaymentMethod, pm_id)
            .and_then(|r| r.alias.as_deref())
            .and_then(objects::test_card)
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
        ("GET", ["v1", "payment_intents"]) => list_payment_intents(ctx, params),
        ("GET", ["v1", "payment_intents", id]) => retrieve_payment_intent(ctx, id, params),
        ("POST", ["v1", "payment_intents", id]) => update_payment_intent(ctx, id, params),
        ("POST", ["v1", "payment_intents", id, "confirm"]) => {
            confirm_payment_intent(ctx, id, params)
        }
        ("POST", ["v1", "payment_intents", id, "cancel"]) => cancel_payment_intent(ctx, id, params),
        ("GET", ["v1", "charges"]) => list_charges(ctx, params),
        ("GET", ["v1", "charges", id]) => retrieve(ctx, Kind::Charge, id, params),
        ("GET", ["v1", "payment_methods", id]) => retrieve(ctx, Kind::PaymentMethod, id, params),
        ("GET", ["v1", "events"]) => list_events(ctx, params),
        ("GET", ["v1", "events", id]) => retrieve(ctx, Kind::Event, id, params),
        ("GET" | "POST", ["_sandbox", "webhooks"]) => control_webhooks(ctx, method, params),
        _ => Err(StripeErr {
            status: StatusCode::NOT_FOUND,
            error: json!({"type": "invalid_request_error",
                          "message": format!("Unrecognized request URL ({method}: {path}). The sandbox \
                                              supports PaymentIntents, Charges, PaymentMethods and Events.")}),
        }),
    };
    let mut value = result?;
    expand(ctx, &mut value, params);
    Ok(value)
}

fn retrieve(
    ctx: &mut Ctx<'_>,
    kind: Kind,
    id: &str,
    params: &Map<String, Value>,
) -> Result<Value, StripeErr> {
    ctx.require_secret()?;
    check_known(params, &["expand"])?;
    let name = match kind {
        Kind::PaymentMethod => "PaymentMethod",
        other => other.name(),
    };
    ctx.store
        .value(kind, id)
        .cloned()
        .ok_or_else(|| missing(name, id, "id"))
}

/// `expand[]=latest_charge` and `expand[]=payment_method` on PaymentIntents (and
/// `data.latest_charge` on their lists).
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
        let kind = match *field {
            "latest_charge" => Kind::Charge,
            "payment_method" => Kind::PaymentMethod,
            "payment_intent" => Kind::PaymentIntent,
            _ => continue,
        };
        if let Some(found) = value[*field]
            .as_str()
            .and_then(|id| ctx.store.value(kind, id))
        {
            value[*field] = found.clone();
        }
    }
}

fn check_known(params: &Map<String, Value>, known: &[&str]) -> Result<(), StripeErr> {
    match params.keys().find(|k| !known.contains(&k.as_str())) {
        Some(unknown) => Err(invalid(
            format!("Received unknown parameter: {unknown}"),
            Some(unknown),
            Some("parameter_unknown"),
        )),
        None => Ok(()),
    }
}

fn known_with_lists(extra: &[&'static str]) -> Vec<&'static str> {
    LIST_PARAMS.iter().chain(extra).copied().collect()
}

fn string_param<'a>(
    params: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, StripeErr> {
    match params.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(
            format!("Invalid string: {name}"),
            Some(name),
            Some("parameter_invalid_string"),
        )),
    }
}

fn bool_param(params: &Map<String, Value>, name: &str) -> Result<bool, StripeErr> {
    match string_param(params, name)? {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(invalid(
            format!("Invalid boolean: {other}"),
            Some(name),
            Some("parameter_invalid_boolean"),
        )),
    }
}

/// Stripe's metadata rules: at most 50 keys, keys up to 40 characters, values up to 500;
/// an empty value deletes the key on update.
fn apply_metadata(
    target: &mut Map<String, Value>,
    params: &Map<String, Value>,
) -> Result<(), StripeErr> {
    let Some(given) = params.get("metadata") else {
        return Ok(());
    };
    let Value::Object(given) = given else {
        if given.as_str() == Some("") {
            target.clear();
            return Ok(());
        }
        return Err(invalid(
            "Invalid hash",
            Some("metadata"),
            Some("parameter_invalid_hash"),
        ));
    };
    for (k, v) in given {
        let Some(v) = v.as_str() else {
            return Err(invalid(
                "Invalid metadata value",
                Some(&format!("metadata[{k}]")),
                None,
            ));
        };
        if k.chars().count() > 40 {
            return Err(invalid(
                format!("Metadata keys can have up to 40 characters. Key '{k}' is too long."),
                Some("metadata"),
                None,
            ));
        }
        if v.chars().count() > 500 {
            return Err(invalid(
                format!("Metadata values can have up to 500 characters, but you passed in a value that is {} characters. Invalid value: {k}", v.chars().count()),
                Some(&format!("metadata[{k}]")),
                None,
            ));
        }
        if v.is_empty() {
            target.remove(k);
        } else {
            target.insert(k.clone(), json!(v));
        }
    }
    if target.len() > 50 {
        return Err(invalid(
            "Metadata can have up to 50 keys.",
            Some("metadata"),
            None,
        ));
    }
    Ok(())
}

fn create_payment_intent(
    ctx: &mut Ctx<'_>,
    params: &Map<String, Value>,
) -> Result<Value, StripeErr> {
    ctx.require_secret()?;
    check_known(
        params,
        &[
            "amount",
            "currency",
            "description",
            "metadata",
            "automatic_payment_methods",
            "payment_method",
            "payment_method_types",
            "confirm",
            "expand",
            "return_url",
            "use_stripe_sdk",
        ],
    )?;
    let amount_text = string_param(params, "amount")?.ok_or_else(|| {
        invalid(
            "Missing required param: amount.",
            Some("amount"),
            Some("parameter_missing"),
        )
    })?;
    let amount: i64 = amount_text.parse().map_err(|_| {
        invalid(
            format!("Invalid integer: {amount_text}"),
            Some("amount"),
            Some("parameter_invalid_integer"),
        )
    })?;
    let currency_text = string_param(params, "currency")?.ok_or_else(|| {
        invalid(
            "Missing required param: currency.",
            Some("currency"),
            Some("parameter_missing"),
        )
    })?;
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
    let confirm = bool_param(params, "confirm")?;
    if let Some(pm) = string_param(params, "payment_method")? {
        let (id, _) = resolve_payment_method(ctx, pm)?;
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
        return confirm_payment_intent(ctx, &id, &Map::new());
    }
    Ok(pi)
}

/// A test alias (`pm_card_visa`) becomes a new PaymentMethod, as at Stripe; an id the sandbox
/// issued earlier is looked up.
fn resolve_payment_method(ctx: &mut Ctx<'_>, given: &str) -> Result<(String, TestCard), StripeErr> {
    if let Some(card) = ctx.card_of(given) {
        return Ok((given.to_string(), card));
    }
    let card = objects::test_card(given)
        .ok_or_else(|| missing_param("PaymentMethod", given, "payment_method"))?;
    let id = objects::new_id("pm");
    let object = objects::payment_method(&id, &card, now());
    ctx.store
        .put(Kind::PaymentMethod, object, Some(given.to_string()));
    Ok((id, card))
}

fn client_secret_matches(pi: &Value, params: &Map<String, Value>) -> bool {
    params.get("client_secret").and_then(Value::as_str) == pi["client_secret"].as_str()
}

fn retrieve_payment_intent(
    ctx: &mut Ctx<'_>,
    id: &str,
    params: &Map<String, Value>,
) -> Result<Value, StripeErr> {
    let pi = ctx.payment_intent(id)?;
    if ctx.caller == Caller::Publishable && !client_secret_matches(&pi, params) {
        return Err(missing("payment_intent", id, "intent"));
    }
    Ok(pi)
}

fn update_payment_intent(
    ctx: &mut Ctx<'_>,
    id: &str,
    params: &Map<String, Value>,
) -> Result<Value, StripeErr> {
    ctx.require_secret()?;
    check_known(
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
    let mut metadata = pi["metadata"].as_object().cloned().unwrap_or_default();
    apply_metadata(&mut metadata, params)?;
    pi["metadata"] = Value::Object(metadata);
    if let Some(pm) = string_param(params, "payment_method")? {
        let status = pi["status"].as_str().unwrap_or_default();
        if !matches!(
            status,
            "requires_payment_method" | "requires_confirmation" | "requires_action"
        ) {
            return Err(unexpected_state(
                "update the payment method of",
                status,
                &[
                    "requires_payment_method",
                    "requires_confirmation",
                    "requires_action",
                ],
            ));
        }
        let (pm_id, _) = resolve_payment_method(ctx, pm)?;
        pi["payment_method"] = json!(pm_id);
        pi["status"] = json!("requires_confirmation");
    }
    ctx.save_pi(&pi);
    Ok(pi)
}

fn unexpected_state(action: &str, status: &str, allowed: &[&str]) -> StripeErr {
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
    match ctx.caller {
        Caller::Secret => {}
        // Stripe.js confirms with the publishable key and the client secret.
        Caller::Publishable if client_secret_matches(&pi, params) => {}
        Caller::Publishable => return Err(missing("payment_intent", id, "intent")),
    }
    check_known(
        params,
        &[
            "payment_method",
            "client_secret",
            "return_url",
            "expand",
            "use_stripe_sdk",
        ],
    )?;
    let status = pi["status"].as_str().unwrap_or_default().to_string();
    let allowed = [
        "requires_payment_method",
        "requires_confirmation",
        "requires_action",
    ];
    if !allowed.contains(&status.as_str()) {
        return Err(unexpected_state("confirm", &status, &allowed));
    }
    let (pm_id, card) = match string_param(params, "payment_method")? {
        Some(given) => resolve_payment_method(ctx, given)?,
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
            let source = objects::new_id("src");
            pi["status"] = json!("requires_action");
            pi["next_action"] = json!({
                "type": "use_stripe_sdk",
                "use_stripe_sdk": {"type": "three_d_secure_redirect",
                                   "stripe_js": format!("https://hooks.stripe.com/redirect/authenticate/{source}"),
                                   "source": source}
            });
            ctx.save_pi(&pi);
            ctx.emit("payment_intent.requires_action", pi.clone());
            Ok(pi)
        }
        CardResult::Succeeds => {
            let charge = objects::charge(&pi, &pm_id, &card, created);
            ctx.store.put(Kind::Charge, charge.clone(), None);
            pi["status"] = json!("succeeded");
            pi["amount_received"] = pi["amount"].clone();
            pi["latest_charge"] = charge["id"].clone();
            ctx.save_pi(&pi);
            ctx.emit("charge.succeeded", charge);
            ctx.emit("payment_intent.succeeded", pi.clone());
            Ok(pi)
        }
        CardResult::Declines {
            code,
            decline_code,
            message,
        } => {
            let charge = objects::charge(&pi, &pm_id, &card, created);
            ctx.store.put(Kind::Charge, charge.clone(), None);
            let pm_object = ctx
                .store
                .value(Kind::PaymentMethod, &pm_id)
                .cloned()
                .unwrap_or(Value::Null);
            let error = json!({
                "charge": charge["id"],
                "code": code,
                "decline_code": decline_code,
                "doc_url": format!("https://stripe.com/docs/error-codes/{}", code.replace('_', "-")),
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
                ctx.request_id
            ));
            Err(StripeErr {
                status: StatusCode::PAYMENT_REQUIRED,
                error: envelope,
            })
        }
    }
}

fn cancel_payment_intent(
    ctx: &mut Ctx<'_>,
    id: &str,
    params: &Map<String, Value>,
) -> Result<Value, StripeErr> {
    ctx.require_secret()?;
    check_known(params, &["cancellation_reason", "expand"])?;
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
    pi["status"] = json!("canceled");
    pi["canceled_at"] = json!(now());
    pi["cancellation_reason"] = json!(reason);
    pi["next_action"] = Value::Null;
    ctx.save_pi(&pi);
    ctx.emit("payment_intent.canceled", pi.clone());
    Ok(pi)
}

/// `field` filter: absent matches everything; present must equal the object's field.
fn field_filter<'a>(
    params: &'a Map<String, Value>,
    name: &str,
) -> Result<impl Fn(&Value) -> bool + 'a, StripeErr> {
    let wanted = string_param(params, name)?;
    let field = name.to_string();
    Ok(move |v: &Value| wanted.is_none_or(|w| v[&field].as_str() == Some(w)))
}

fn list_payment_intents(
    ctx: &mut Ctx<'_>,
    params: &Map<String, Value>,
) -> Result<Value, StripeErr> {
    ctx.require_secret()?;
    check_known(params, &known_with_lists(&["customer"]))?;
    let query = ListQuery::parse(params)?;
    let customer = field_filter(params, "customer")?;
    query.page(
        ctx.store,
        Kind::PaymentIntent,
        "/v1/payment_intents",
        customer,
    )
}

fn list_charges(ctx: &mut Ctx<'_>, params: &Map<String, Value>) -> Result<Value, StripeErr> {
    ctx.require_secret()?;
    check_known(params, &known_with_lists(&["payment_intent", "customer"]))?;
    let query = ListQuery::parse(params)?;
    let payment_intent = field_filter(params, "payment_intent")?;
    let customer = field_filter(params, "customer")?;
    query.page(ctx.store, Kind::Charge, "/v1/charges", |c| {
        payment_intent(c) && customer(c)
    })
}

fn list_events(ctx: &mut Ctx<'_>, params: &Map<String, Value>) -> Result<Value, StripeErr> {
    ctx.require_secret()?;
    check_known(params, &known_with_lists(&["type", "types"]))?;
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
        Some(_) => {
            return Err(invalid(
                "Invalid array",
                Some("types"),
                Some("parameter_invalid_array"),
            ))
        }
    };
    if single.is_some() && many.is_some() {
        return Err(invalid(
            "You may only specify one of these parameters: type, types.",
            None,
            None,
        ));
    }
    query.page(ctx.store, Kind::Event, "/v1/events", |e| {
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

/// `GET|POST /_sandbox/webhooks`: where events go and whether they are being dropped. Not a
/// Stripe endpoint.
fn control_webhooks(
    ctx: &mut Ctx<'_>,
    method: &Method,
    params: &Map<String, Value>,
) -> Result<Value, StripeErr> {
    ctx.require_secret()?;
    if *method == Method::POST {
        check_known(params, &["drop"])?;
        if params.contains_key("drop") {
            let drop = bool_param(params, "drop")?;
            ctx.inner
                .drop_webhooks
                .store(drop, std::sync::atomic::Ordering::SeqCst);
            tracing::warn!(drop, "sandbox webhook dropping switched");
        }
    } else {
        check_known(params, &[])?;
    }
    Ok(json!({
        "object": "sandbox.webhooks",
        "url": ctx.inner.webhook_url,
        "drop": ctx.inner.dropping(),
        "pending": ctx.store.pending_deliveries().len(),
    }))
}
