//! PaymentIntents: create, retrieve, update, list, confirm, capture and cancel. What confirming
//! and capturing do to the money (charging, authorising, declining) is `pay`'s.

use serde_json::{json, Map, Value};

use crate::cards::CardResult;
use crate::connect;
use crate::ctx::{Caller, Ctx};
use crate::currency::Currency;
use crate::error::{
    below_one, invalid, invalid_integer, missing, missing_param, missing_required, StripeErr,
};
use crate::methods;
use crate::objects::{self, NewPaymentIntent};
use crate::params::{
    apply_metadata, bool_param, check_known, integer_param, known_with, string_param,
    update_metadata,
};
use crate::pay;
use crate::resources::payment_methods;
use crate::route::{field, Action, Handler, Route};
use crate::store::{now, Kind};

pub(crate) const ROUTES: &[Route] = &[
    Route::post(
        "/v1/payment_intents",
        Handler::Run(|ctx, call| create(ctx, call.params)),
    ),
    Route::get(
        "/v1/payment_intents",
        Handler::List(Kind::PaymentIntent, &["customer"]),
    ),
    Route::get(
        "/v1/payment_intents/:id",
        Handler::Run(|ctx, call| retrieve(ctx, call.id(), call.params)),
    ),
    Route::post(
        "/v1/payment_intents/:id",
        Handler::Run(|ctx, call| update(ctx, call.id(), call.params)),
    ),
    Route::post(
        "/v1/payment_intents/:id/confirm",
        Handler::Run(|ctx, call| confirm(ctx, call.id(), call.params)),
    ),
    Route::post(
        "/v1/payment_intents/:id/cancel",
        Handler::Run(|ctx, call| cancel(ctx, call.id(), call.params)),
    ),
    Route::post(
        "/v1/payment_intents/:id/capture",
        Handler::Run(|ctx, call| capture(ctx, call.id(), call.params)),
    ),
];

pub(crate) const ACTIONS: &[Action] = &[Action {
    name: "processing_succeed",
    run: |ctx, action| {
        pay::processing_succeeds(
            ctx,
            field(action, "payment_intent"),
            field(action, "charge"),
        )
    },
}];

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
    "payment_method_options",
];

fn create(ctx: &mut Ctx<'_>, params: &Map<String, Value>) -> Result<Value, StripeErr> {
    let mut known = known_with(
        CONFIRM_PARAMS,
        &[
            "amount",
            "currency",
            "description",
            "metadata",
            "automatic_payment_methods",
            "payment_method_types",
            "confirm",
            "customer",
        ],
    );
    known.extend(connect::INTENT_PARAMS);
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
    let type_names: Vec<&str> = types.iter().filter_map(Value::as_str).collect();
    methods::check_types(&type_names, currency.code, amount, capture_method)?;
    let mut metadata = Map::new();
    apply_metadata(&mut metadata, params)?;
    let mut pi = objects::payment_intent(NewPaymentIntent {
        amount,
        currency: currency.code,
        description: string_param(params, "description")?.map(str::to_string),
        metadata,
        automatic_payment_methods: automatic,
        payment_method_types: types.clone(),
        created: now(),
    });
    pi["capture_method"] = json!(capture_method);
    if let Some(customer) = string_param(params, "customer")? {
        if ctx.find(Kind::Customer, customer).is_none() {
            return Err(missing_param("customer", customer, "customer"));
        }
        pi["customer"] = json!(customer);
    }
    methods::apply_options(
        &mut pi["payment_method_options"],
        params.get("payment_method_options"),
        currency.code,
        &type_names,
    )?;
    connect::route_intent(ctx, params, &mut pi)?;
    let confirming = bool_param(params, "confirm")?;
    if let Some((id, _)) = payment_methods::given(ctx, params)? {
        pi["payment_method"] = json!(id);
        pi["status"] = json!("requires_confirmation");
    } else if confirming {
        return Err(invalid(
            "You cannot confirm this PaymentIntent because it's missing a payment method. \
             To confirm the PaymentIntent with the sandbox, pass a payment_method such as pm_card_visa.",
            Some("payment_method"),
            Some("payment_intent_unexpected_state"),
        ));
    }
    ctx.save_pi(&pi);
    ctx.emit("payment_intent.created", pi.clone());
    if confirming {
        let id = pi["id"].as_str().unwrap_or_default().to_string();
        let mut confirm_params = Map::new();
        for key in ["return_url", "mandate_data"] {
            if let Some(value) = params.get(key) {
                confirm_params.insert(key.into(), value.clone());
            }
        }
        return confirm(ctx, &id, &confirm_params);
    }
    Ok(pi)
}

fn client_secret_matches(pi: &Value, params: &Map<String, Value>) -> bool {
    params.get("client_secret").and_then(Value::as_str) == pi["client_secret"].as_str()
}

fn retrieve(ctx: &mut Ctx<'_>, id: &str, params: &Map<String, Value>) -> Result<Value, StripeErr> {
    let pi = ctx.payment_intent(id)?;
    if ctx.caller() == Caller::Publishable && !client_secret_matches(&pi, params) {
        return Err(missing("payment_intent", id, "intent"));
    }
    Ok(pi)
}

fn update(ctx: &mut Ctx<'_>, id: &str, params: &Map<String, Value>) -> Result<Value, StripeErr> {
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
        let (pm_id, _) = payment_methods::resolve(ctx, pm)?;
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

fn confirm(ctx: &mut Ctx<'_>, id: &str, params: &Map<String, Value>) -> Result<Value, StripeErr> {
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
    if let Some(given) = params.get("payment_method_options") {
        let currency = pi["currency"].as_str().unwrap_or_default().to_string();
        methods::apply_options(
            &mut pi["payment_method_options"],
            Some(given),
            &currency,
            &[],
        )?;
    }
    connect::check_can_charge(ctx, &pi)?;
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
    let (pm_id, card) = match payment_methods::given(ctx, params)? {
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
    methods::check_confirm(ctx, &pi, &card, params)?;
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
        CardResult::Succeeds | CardResult::Processing | CardResult::ProcessingFails(_) => {
            pay::pay(ctx, pi, &pm_id, &card)
        }
        CardResult::Voucher => crate::resources::oxxo::issue(ctx, pi, &pm_id),
        CardResult::BankTransfer => {
            crate::resources::bank_transfers::await_transfer(ctx, pi, &pm_id)
        }
        CardResult::Declines(decline) => Err(pay::decline(ctx, pi, &pm_id, &card, &decline)),
    }
}

/// `POST /v1/payment_intents/:id/capture`: all of the authorisation or `amount_to_capture` of
/// it; the rest is released.
fn capture(ctx: &mut Ctx<'_>, id: &str, params: &Map<String, Value>) -> Result<Value, StripeErr> {
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
    pay::capture(ctx, pi, amount)
}

fn cancel(ctx: &mut Ctx<'_>, id: &str, params: &Map<String, Value>) -> Result<Value, StripeErr> {
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
    if status == "requires_capture" {
        pay::release(ctx, &pi);
    }
    ctx.emit("payment_intent.canceled", pi.clone());
    crate::resources::cash_balance::release(ctx, &pi)?;
    Ok(pi)
}
