//! An embedded Stripe-compatible emulator (SPEC §10): its own axum Router over in-memory state,
//! speaking Stripe's wire protocol closely enough for Stripe's official SDKs, and sending
//! signed webhook events for every state change.
//!
//! Every request is handled entirely under one lock, with no await inside it, so requests are
//! atomic with respect to each other (which is also what makes `Idempotency-Key` exact).

pub mod objects;
pub mod params;
pub mod webhooks;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine;
use serde_json::{json, Map, Value};

use crate::money::{Currency, MAX_MINOR};
use objects::{CardResult, NewPaymentIntent, TestCard};
pub use webhooks::{Delivery, WebhookTarget};

/// A Stripe error: HTTP status and the `{"error": {...}}` envelope.
#[derive(Debug)]
struct StripeErr {
    status: StatusCode,
    error: Value,
}

fn invalid(message: impl Into<String>, param: Option<&str>, code: Option<&str>) -> StripeErr {
    let mut error = json!({"type": "invalid_request_error", "message": message.into()});
    if let Some(p) = param {
        error["param"] = json!(p);
    }
    if let Some(c) = code {
        error["code"] = json!(c);
        error["doc_url"] = json!(format!(
            "https://stripe.com/docs/error-codes/{}",
            c.replace('_', "-")
        ));
    }
    StripeErr {
        status: StatusCode::BAD_REQUEST,
        error,
    }
}

fn missing(kind: &str, id: &str, param: &str) -> StripeErr {
    StripeErr {
        status: StatusCode::NOT_FOUND,
        ..invalid(
            format!("No such {kind}: '{id}'"),
            Some(param),
            Some("resource_missing"),
        )
    }
}

fn unauthorized(message: impl Into<String>) -> StripeErr {
    StripeErr {
        status: StatusCode::UNAUTHORIZED,
        error: json!({"type": "invalid_request_error", "message": message.into()}),
    }
}

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

struct SavedResponse {
    fingerprint: String,
    status: StatusCode,
    body: Value,
}

#[derive(Default)]
struct Store {
    payment_intents: HashMap<String, Value>,
    /// Creation order, for lists (newest last).
    charges: Vec<Value>,
    charge_index: HashMap<String, usize>,
    events: Vec<Value>,
    event_index: HashMap<String, usize>,
    /// PaymentMethod id → the test card behind it.
    payment_methods: HashMap<String, (TestCard, Value)>,
    /// (API key, Idempotency-Key) → the first response.
    idempotency: HashMap<(String, String), SavedResponse>,
}

struct Inner {
    store: Mutex<Store>,
    delivery: Option<Delivery>,
}

/// A running sandbox. Cloning shares the same state.
#[derive(Clone)]
pub struct Sandbox {
    inner: Arc<Inner>,
}

impl Sandbox {
    /// Must be called inside a Tokio runtime when `webhook` is set (it starts the sender).
    pub fn new(webhook: Option<WebhookTarget>) -> Self {
        let inner = Arc::new_cyclic(|weak| Inner {
            store: Mutex::new(Store::default()),
            delivery: webhook.map(|target| Delivery::start(target, weak.clone())),
        });
        Sandbox { inner }
    }

    pub fn router(&self) -> Router {
        Router::new().fallback(handle).with_state(self.clone())
    }
}

impl Inner {
    /// Marks a stored event as delivered (`pending_webhooks` 0).
    fn mark_delivered(&self, event_id: &str) {
        let mut store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(&i) = store.event_index.get(event_id) {
            store.events[i]["pending_webhooks"] = json!(0);
        }
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn handle(
    State(sandbox): State<Sandbox>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_id = format!("req_{}", objects::random_alnum(14));
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
    let (status, body, replayed) = process(&sandbox, &method, &uri, &headers, &body);
    let mut response = (status, axum::Json(body)).into_response();
    let h = response.headers_mut();
    h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert("request-id", v);
    }
    let version = headers
        .get("stripe-version")
        .cloned()
        .unwrap_or(HeaderValue::from_static(
            crate::stripe::client::DEFAULT_API_VERSION,
        ));
    h.insert("stripe-version", version);
    if replayed {
        h.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

fn process(
    sandbox: &Sandbox,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> (StatusCode, Value, bool) {
    let failed = |e: StripeErr| (e.status, json!({"error": e.error}), false);
    let mut params = match params::parse(uri.query().unwrap_or("").as_bytes()) {
        Ok(p) => p,
        Err(e) => return failed(invalid(e.0, None, None)),
    };
    if *method == Method::POST {
        match params::parse(body) {
            Ok(p) => params.extend(p),
            Err(e) => return failed(invalid(e.0, None, None)),
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
    let (caller, key) = match auth {
        Ok(c) => c,
        Err(e) => return failed(e),
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
    let mut store = sandbox
        .inner
        .store
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let idempotency_key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .filter(|_| *method == Method::POST)
        .map(|k| (key.clone(), k.to_string()));
    let fingerprint = format!(
        "{method} {} {}",
        uri.path(),
        crate::canonical::canonical(&Value::Object(params.clone()))
    );
    if let Some(slot) = &idempotency_key {
        if let Some(saved) = store.idempotency.get(slot) {
            if saved.fingerprint == fingerprint {
                return (saved.status, saved.body.clone(), true);
            }
            return failed(StripeErr {
                status: StatusCode::BAD_REQUEST,
                error: json!({
                    "type": "idempotency_error",
                    "message": format!(
                        "Keys for idempotent requests can only be used with the same parameters \
                         they were first used with. Try using a key other than '{}' if you meant \
                         to execute a different request.", slot.1),
                }),
            });
        }
    }
    let mut ctx = Ctx {
        store: &mut store,
        caller,
        webhooks: sandbox.inner.delivery.is_some(),
        outbox: Vec::new(),
    };
    let outcome = route(&mut ctx, method, uri.path(), &params);
    let outbox = std::mem::take(&mut ctx.outbox);
    let (status, body) = match outcome {
        Ok(v) => (StatusCode::OK, v),
        Err(e) => (e.status, json!({"error": e.error})),
    };
    // Stripe keeps the result of every request that started executing; validation failures
    // (400) are not kept, so a corrected retry with the same key goes through.
    if let Some(slot) = idempotency_key {
        if status == StatusCode::OK || status == StatusCode::PAYMENT_REQUIRED {
            store.idempotency.insert(
                slot,
                SavedResponse {
                    fingerprint,
                    status,
                    body: body.clone(),
                },
            );
        }
    }
    drop(store);
    if let Some(delivery) = &sandbox.inner.delivery {
        for event in outbox {
            delivery.enqueue(event);
        }
    }
    (status, body, false)
}

struct Ctx<'a> {
    store: &'a mut Store,
    caller: Caller,
    /// Whether events are delivered anywhere (then `pending_webhooks` starts at 1).
    webhooks: bool,
    /// Events created by this request, sent once the lock is released.
    outbox: Vec<Value>,
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
        let pending = i64::from(self.webhooks);
        let event = objects::event(event_type, object, now(), pending);
        let id = event["id"].as_str().unwrap_or_default().to_string();
        self.store.event_index.insert(id, self.store.events.len());
        self.store.events.push(event.clone());
        self.outbox.push(event);
    }

    fn payment_intent(&self, id: &str) -> Result<Value, StripeErr> {
        self.store
            .payment_intents
            .get(id)
            .cloned()
            .ok_or_else(|| missing("payment_intent", id, "intent"))
    }

    fn save_pi(&mut self, pi: &Value) {
        let id = pi["id"].as_str().unwrap_or_default().to_string();
        self.store.payment_intents.insert(id, pi.clone());
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
        ("GET", ["v1", "payment_intents", id]) => retrieve_payment_intent(ctx, id, params),
        ("POST", ["v1", "payment_intents", id]) => update_payment_intent(ctx, id, params),
        ("POST", ["v1", "payment_intents", id, "confirm"]) => {
            confirm_payment_intent(ctx, id, params)
        }
        ("POST", ["v1", "payment_intents", id, "cancel"]) => cancel_payment_intent(ctx, id, params),
        ("GET", ["v1", "charges"]) => list_charges(ctx, params),
        ("GET", ["v1", "charges", id]) => {
            ctx.require_secret()?;
            let i = ctx
                .store
                .charge_index
                .get(*id)
                .ok_or_else(|| missing("charge", id, "id"))?;
            Ok(ctx.store.charges[*i].clone())
        }
        ("GET", ["v1", "events"]) => list_events(ctx, params),
        ("GET", ["v1", "events", id]) => {
            ctx.require_secret()?;
            let i = ctx
                .store
                .event_index
                .get(*id)
                .ok_or_else(|| missing("event", id, "id"))?;
            Ok(ctx.store.events[*i].clone())
        }
        _ => Err(StripeErr {
            status: StatusCode::NOT_FOUND,
            error: json!({"type": "invalid_request_error",
                          "message": format!("Unrecognized request URL ({method}: {path}). The sandbox \
                                              supports PaymentIntents, Charges and Events.")}),
        }),
    };
    let mut value = result?;
    expand(ctx, &mut value, params);
    Ok(value)
}

/// `expand[]=latest_charge` and `expand[]=payment_method` on PaymentIntents.
fn expand(ctx: &Ctx<'_>, value: &mut Value, params: &Map<String, Value>) {
    let Some(Value::Array(fields)) = params.get("expand") else {
        return;
    };
    for field in fields.iter().filter_map(Value::as_str) {
        match field {
            "latest_charge" => {
                if let Some(i) = value["latest_charge"]
                    .as_str()
                    .and_then(|id| ctx.store.charge_index.get(id))
                {
                    value["latest_charge"] = ctx.store.charges[*i].clone();
                }
            }
            "payment_method" => {
                if let Some((_, pm)) = value["payment_method"]
                    .as_str()
                    .and_then(|id| ctx.store.payment_methods.get(id))
                {
                    value["payment_method"] = pm.clone();
                }
            }
            _ => {}
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
            format!("Invalid currency: {currency_text}. Stripe currently supports these currencies: usd, eur, gbp, jpy, mxn, …"),
            Some("currency"),
            None,
        )
    })?;
    let minimum = currency.minimum_minor();
    if amount < minimum {
        return Err(invalid(
            format!(
                "Amount must be at least {} {}",
                currency.to_major(minimum),
                currency.code()
            ),
            Some("amount"),
            Some("amount_too_small"),
        ));
    }
    if amount > MAX_MINOR {
        return Err(invalid(
            format!(
                "Amount must be no more than {} {}",
                currency.to_major(MAX_MINOR),
                currency.code()
            ),
            Some("amount"),
            Some("amount_too_large"),
        ));
    }
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
        currency: currency.code(),
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
    if let Some((card, _)) = ctx.store.payment_methods.get(given) {
        return Ok((given.to_string(), *card));
    }
    let card = objects::test_card(given).ok_or_else(|| StripeErr {
        status: StatusCode::BAD_REQUEST,
        ..missing("PaymentMethod", given, "payment_method")
    })?;
    let id = objects::new_id("pm");
    let object = objects::payment_method(&id, &card, now());
    ctx.store.payment_methods.insert(id.clone(), (card, object));
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
            match existing.and_then(|id| ctx.store.payment_methods.get(&id).map(|(c, _)| (id, *c)))
            {
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
            pi["status"] = json!("requires_action");
            pi["next_action"] = json!({
                "type": "use_stripe_sdk",
                "use_stripe_sdk": {"type": "three_d_secure_redirect",
                                   "stripe_js": format!("/sandbox/3ds/{id}"),
                                   "source": objects::new_id("src")}
            });
            ctx.save_pi(&pi);
            ctx.emit("payment_intent.requires_action", pi.clone());
            Ok(pi)
        }
        CardResult::Succeeds => {
            let charge = objects::charge(&pi, &pm_id, &card, created);
            store_charge(ctx, &charge);
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
            store_charge(ctx, &charge);
            let pm_object = ctx
                .store
                .payment_methods
                .get(&pm_id)
                .map(|(_, o)| o.clone())
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
            Err(StripeErr {
                status: StatusCode::PAYMENT_REQUIRED,
                error: envelope,
            })
        }
    }
}

fn store_charge(ctx: &mut Ctx<'_>, charge: &Value) {
    let id = charge["id"].as_str().unwrap_or_default().to_string();
    ctx.store.charge_index.insert(id, ctx.store.charges.len());
    ctx.store.charges.push(charge.clone());
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

fn limit(params: &Map<String, Value>) -> Result<usize, StripeErr> {
    match string_param(params, "limit")? {
        None => Ok(10),
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=100).contains(&n) => Ok(n),
            _ => Err(invalid(
                "Invalid limit: must be an integer between 1 and 100",
                Some("limit"),
                None,
            )),
        },
    }
}

fn list_charges(ctx: &mut Ctx<'_>, params: &Map<String, Value>) -> Result<Value, StripeErr> {
    ctx.require_secret()?;
    check_known(params, &["payment_intent", "limit", "expand"])?;
    let limit = limit(params)?;
    let filter = string_param(params, "payment_intent")?;
    let matching: Vec<Value> = ctx
        .store
        .charges
        .iter()
        .rev()
        .filter(|c| filter.is_none_or(|pi| c["payment_intent"].as_str() == Some(pi)))
        .cloned()
        .collect();
    let has_more = matching.len() > limit;
    Ok(objects::list(
        "/v1/charges",
        matching.into_iter().take(limit).collect(),
        has_more,
    ))
}

fn list_events(ctx: &mut Ctx<'_>, params: &Map<String, Value>) -> Result<Value, StripeErr> {
    ctx.require_secret()?;
    check_known(params, &["type", "limit", "expand"])?;
    let limit = limit(params)?;
    let filter = string_param(params, "type")?;
    let matching: Vec<Value> = ctx
        .store
        .events
        .iter()
        .rev()
        .filter(|e| filter.is_none_or(|t| type_matches(t, e["type"].as_str().unwrap_or(""))))
        .cloned()
        .collect();
    let has_more = matching.len() > limit;
    Ok(objects::list(
        "/v1/events",
        matching.into_iter().take(limit).collect(),
        has_more,
    ))
}

/// Stripe's `type` filter takes an exact type or a `*` wildcard (`payment_intent.*`).
fn type_matches(filter: &str, event_type: &str) -> bool {
    match filter.strip_suffix('*') {
        Some(prefix) => event_type.starts_with(prefix),
        None => filter == event_type,
    }
}
