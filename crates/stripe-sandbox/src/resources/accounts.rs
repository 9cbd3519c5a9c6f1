//! Connected accounts: created by the platform (Express, Standard, Custom, or by `controller`
//! properties), retrieved, updated, listed and deleted; onboarded through an Account Link's
//! page or the sandbox's control (which stand for Stripe's hosted onboarding), and deauthorised
//! by the control. What is due, and when an account may charge, follows what onboarding did.

use serde_json::{json, Map, Value};

use crate::connect::active;
use crate::ctx::Ctx;
use crate::currency::Currency;
use crate::error::{invalid, invalid_hash, no_access, platform_only, StripeErr};
use crate::objects::connect::{self as shapes, application};
use crate::params::{check_known, check_known_as, known_with, string_param, update_metadata};
use crate::route::{Handler, Route};
use crate::store::{now, Kind};

pub(crate) const ROUTES: &[Route] = &[
    Route::post(
        "/v1/accounts",
        Handler::Run(|ctx, call| create(ctx, call.params)),
    ),
    Route::get("/v1/accounts", Handler::List(Kind::Account, &[])),
    Route::get(
        "/v1/accounts/:id",
        Handler::Run(|ctx, call| retrieve(ctx, call.id(), call.params)),
    ),
    Route::post(
        "/v1/accounts/:id",
        Handler::Run(|ctx, call| update(ctx, call.id(), call.params)),
    ),
    Route::delete(
        "/v1/accounts/:id",
        Handler::Run(|ctx, call| delete(ctx, call.id(), call.params)),
    ),
];

/// The capabilities the sandbox emulates.
const CAPABILITIES: &[&str] = &["card_payments", "transfers"];

/// What an account can be told at creation and later.
const CHANGEABLE: &[&str] = &[
    "email",
    "metadata",
    "business_type",
    "business_profile",
    "capabilities",
    "default_currency",
    "expand",
];

const BUSINESS_PROFILE: &[&str] = &[
    "mcc",
    "name",
    "product_description",
    "support_email",
    "support_phone",
    "support_url",
    "url",
];

/// The countries the sandbox opens accounts in, with their default currency.
const COUNTRIES: &[(&str, &str)] = &[
    ("AE", "aed"),
    ("AT", "eur"),
    ("AU", "aud"),
    ("BE", "eur"),
    ("BG", "bgn"),
    ("BR", "brl"),
    ("CA", "cad"),
    ("CH", "chf"),
    ("CY", "eur"),
    ("CZ", "czk"),
    ("DE", "eur"),
    ("DK", "dkk"),
    ("EE", "eur"),
    ("ES", "eur"),
    ("FI", "eur"),
    ("FR", "eur"),
    ("GB", "gbp"),
    ("GI", "gbp"),
    ("GR", "eur"),
    ("HK", "hkd"),
    ("HR", "eur"),
    ("HU", "huf"),
    ("IE", "eur"),
    ("IN", "inr"),
    ("IT", "eur"),
    ("JP", "jpy"),
    ("LI", "chf"),
    ("LT", "eur"),
    ("LU", "eur"),
    ("LV", "eur"),
    ("MT", "eur"),
    ("MX", "mxn"),
    ("MY", "myr"),
    ("NL", "eur"),
    ("NO", "nok"),
    ("NZ", "nzd"),
    ("PL", "pln"),
    ("PT", "eur"),
    ("RO", "ron"),
    ("SE", "sek"),
    ("SG", "sgd"),
    ("SI", "eur"),
    ("SK", "eur"),
    ("TH", "thb"),
    ("US", "usd"),
];

/// The default currency of accounts of `country` (an ISO code, any case), if the sandbox opens
/// accounts there.
pub(crate) fn default_currency(country: &str) -> Option<&'static str> {
    COUNTRIES
        .iter()
        .find(|(c, _)| c.eq_ignore_ascii_case(country))
        .map(|(_, currency)| *currency)
}

/// What a person has left to give after leaving onboarding unfinished.
const LEFT_WHEN_INCOMPLETE: &[&str] = &[
    "external_account",
    "tos_acceptance.date",
    "tos_acceptance.ip",
];

/// Who does what for an account: Stripe's `controller` properties, and the account type they
/// amount to.
struct Controller {
    fees: &'static str,
    losses: &'static str,
    collection: &'static str,
    dashboard: &'static str,
}

impl Controller {
    fn of_type(kind: &str) -> Option<Controller> {
        let (fees, losses, collection, dashboard) = match kind {
            "standard" => ("account", "stripe", "stripe", "full"),
            "express" => ("application_express", "application", "stripe", "express"),
            "custom" => ("application_custom", "application", "application", "none"),
            _ => return None,
        };
        Some(Controller {
            fees,
            losses,
            collection,
            dashboard,
        })
    }

    /// The account type these properties amount to, `none` when they match none.
    fn account_type(&self) -> &'static str {
        match (self.fees, self.losses, self.collection, self.dashboard) {
            ("account", "stripe", "stripe", "full") => "standard",
            ("application_express", "application", "stripe", "express") => "express",
            ("application_custom", "application", "application", "none") => "custom",
            _ => "none",
        }
    }

    fn value(&self) -> Value {
        json!({
            "fees": {"payer": self.fees},
            "is_controller": true,
            "losses": {"payments": self.losses},
            "requirement_collection": self.collection,
            "stripe_dashboard": {"type": self.dashboard},
            "type": "application"
        })
    }
}

/// One `controller[…]` choice: its value among `allowed`, `default` when not given.
fn choice(
    given: Option<&Value>,
    param: &str,
    allowed: &[&'static str],
    default: &'static str,
) -> Result<&'static str, StripeErr> {
    let Some(given) = given else {
        return Ok(default);
    };
    let text = given.as_str().unwrap_or_default();
    allowed
        .iter()
        .find(|a| **a == text)
        .copied()
        .ok_or_else(|| {
            invalid(
                format!("Invalid {param}: must be one of {}", allowed.join(", ")),
                Some(param),
                None,
            )
        })
}

/// `controller[fees][payer]`, `[losses][payments]`, `[requirement_collection]` and
/// `[stripe_dashboard][type]`; what is not given takes Stripe's default (the least the
/// platform is responsible for).
fn controller_from(params: &Map<String, Value>) -> Result<Controller, StripeErr> {
    check_known_as(
        params,
        &[
            "fees",
            "losses",
            "requirement_collection",
            "stripe_dashboard",
        ],
        |k| format!("controller[{k}]"),
    )?;
    let nested = |outer: &str, inner: &str| params.get(outer).and_then(|o| o.get(inner));
    let payer = choice(
        nested("fees", "payer"),
        "controller[fees][payer]",
        &["account", "application"],
        "account",
    )?;
    let losses = choice(
        nested("losses", "payments"),
        "controller[losses][payments]",
        &["application", "stripe"],
        "stripe",
    )?;
    let collection = choice(
        params.get("requirement_collection"),
        "controller[requirement_collection]",
        &["application", "stripe"],
        "stripe",
    )?;
    let dashboard = choice(
        nested("stripe_dashboard", "type"),
        "controller[stripe_dashboard][type]",
        &["express", "full", "none"],
        "full",
    )?;
    if collection == "application" && (dashboard != "none" || losses != "application") {
        return Err(invalid(
            "When the platform collects requirements (controller[requirement_collection]=application), \
             the account can have no Stripe Dashboard (controller[stripe_dashboard][type]=none) and \
             the platform must be liable for its losses (controller[losses][payments]=application).",
            Some("controller[requirement_collection]"),
            None,
        ));
    }
    if dashboard == "express" && (losses != "application" || payer != "application") {
        return Err(invalid(
            "An account with the Express Dashboard needs the platform to pay its fees \
             (controller[fees][payer]=application) and be liable for its losses \
             (controller[losses][payments]=application).",
            Some("controller[stripe_dashboard][type]"),
            None,
        ));
    }
    let fees = match (payer, dashboard) {
        ("account", _) => "account",
        (_, "express") => "application_express",
        (_, "none") => "application_custom",
        _ => "application",
    };
    Ok(Controller {
        fees,
        losses,
        collection,
        dashboard,
    })
}

/// What is due of an account not yet onboarded, given what it was told.
fn due(account: &Value) -> Vec<String> {
    let mut fields: Vec<&str> = vec![
        "business_profile.mcc",
        "business_profile.url",
        "external_account",
        "tos_acceptance.date",
        "tos_acceptance.ip",
    ];
    match account["business_type"].as_str() {
        None => fields.push("business_type"),
        Some("individual") => fields.extend([
            "individual.address.city",
            "individual.address.line1",
            "individual.address.postal_code",
            "individual.dob.day",
            "individual.dob.month",
            "individual.dob.year",
            "individual.email",
            "individual.first_name",
            "individual.last_name",
            "individual.phone",
        ]),
        Some(_) => fields.extend([
            "company.address.city",
            "company.address.line1",
            "company.address.postal_code",
            "company.name",
            "company.tax_id",
            "representative.dob.day",
            "representative.dob.month",
            "representative.dob.year",
            "representative.first_name",
            "representative.last_name",
        ]),
    }
    let profile = &account["business_profile"];
    fields.retain(|f| match *f {
        "business_profile.mcc" => profile["mcc"].is_null(),
        "business_profile.url" => {
            profile["url"].is_null() && profile["product_description"].is_null()
        }
        "individual.email" => account["email"].is_null(),
        _ => true,
    });
    fields.sort_unstable();
    fields.into_iter().map(str::to_string).collect()
}

/// Applies `email`, `metadata`, `business_type`, `business_profile`, `capabilities` and
/// `default_currency` of `params` to the account.
fn apply(account: &mut Value, params: &Map<String, Value>) -> Result<(), StripeErr> {
    if let Some(email) = string_param(params, "email")? {
        let plausible = email
            .split_once('@')
            .is_some_and(|(user, domain)| !user.is_empty() && domain.contains('.'));
        if !email.is_empty() && !plausible {
            return Err(invalid(
                format!("Invalid email address: {email}"),
                Some("email"),
                Some("email_invalid"),
            ));
        }
        account["email"] = if email.is_empty() {
            Value::Null
        } else {
            json!(email)
        };
    }
    update_metadata(account, params)?;
    if let Some(kind) = string_param(params, "business_type")? {
        if !["individual", "company", "non_profit", "government_entity"].contains(&kind) {
            return Err(invalid(
                format!(
                    "Invalid business_type: must be one of individual, company, non_profit, or \
                     government_entity (got {kind})"
                ),
                Some("business_type"),
                None,
            ));
        }
        account["business_type"] = json!(kind);
    }
    match params.get("business_profile") {
        None => {}
        Some(Value::Object(profile)) => {
            check_known_as(profile, BUSINESS_PROFILE, |k| {
                format!("business_profile[{k}]")
            })?;
            for (k, v) in profile {
                let Some(text) = v.as_str() else {
                    return Err(invalid_hash(&format!("business_profile[{k}]")));
                };
                account["business_profile"][k.as_str()] = if text.is_empty() {
                    Value::Null
                } else {
                    json!(text)
                };
            }
        }
        Some(_) => return Err(invalid_hash("business_profile")),
    }
    if let Some(currency) = string_param(params, "default_currency")? {
        let currency = Currency::parse(currency).ok_or_else(|| {
            invalid(
                format!("Invalid currency: {currency}"),
                Some("default_currency"),
                None,
            )
        })?;
        account["default_currency"] = json!(currency.code);
    }
    match params.get("capabilities") {
        None => {}
        Some(Value::Object(given)) => {
            let onboarded = account["details_submitted"] == true;
            for (name, request) in given {
                let param = format!("capabilities[{name}]");
                if !CAPABILITIES.contains(&name.as_str()) {
                    return Err(invalid(
                        format!(
                            "The sandbox emulates the card_payments and transfers capabilities \
                             only, not {name}."
                        ),
                        Some(&param),
                        None,
                    ));
                }
                let Some(request) = request.as_object() else {
                    return Err(invalid_hash(&param));
                };
                check_known_as(request, &["requested"], |k| format!("{param}[{k}]"))?;
                match request.get("requested").and_then(Value::as_str) {
                    Some("true") => {
                        if account["capabilities"].get(name).is_none() {
                            account["capabilities"][name.as_str()] =
                                json!(if onboarded { "active" } else { "inactive" });
                        }
                    }
                    Some("false") => {
                        if let Some(all) = account["capabilities"].as_object_mut() {
                            all.remove(name);
                        }
                    }
                    _ => {
                        return Err(invalid(
                            "requested must be true or false",
                            Some(&format!("{param}[requested]")),
                            None,
                        ))
                    }
                }
            }
        }
        Some(_) => return Err(invalid_hash("capabilities")),
    }
    let capabilities = &account["capabilities"];
    if capabilities.get("card_payments").is_some() && capabilities.get("transfers").is_none() {
        return Err(invalid(
            "The card_payments capability cannot be requested without the transfers \
             capability: request capabilities[transfers][requested]=true as well.",
            Some("capabilities[card_payments]"),
            None,
        ));
    }
    if account["details_submitted"] != true {
        let fields = due(account);
        account["requirements"] = shapes::requirements(&fields, Some("requirements.past_due"));
    }
    Ok(())
}

/// `POST /v1/accounts`.
fn create(ctx: &mut Ctx<'_>, params: &Map<String, Value>) -> Result<Value, StripeErr> {
    ctx.secret_call(
        params,
        &known_with(CHANGEABLE, &["type", "controller", "country"]),
    )?;
    if ctx.account().is_some() {
        return Err(platform_only("Creating connected accounts"));
    }
    let controller = match (string_param(params, "type")?, params.get("controller")) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "You can specify either type or controller, not both.",
                Some("controller"),
                None,
            ))
        }
        (Some(kind), None) => Controller::of_type(kind).ok_or_else(|| {
            invalid(
                format!("Invalid type: must be one of custom, express, or standard (got {kind})"),
                Some("type"),
                None,
            )
        })?,
        (None, Some(Value::Object(given))) => controller_from(given)?,
        (None, Some(_)) => return Err(invalid_hash("controller")),
        (None, None) => Controller::of_type("standard").expect("a known type"),
    };
    let country = string_param(params, "country")?
        .unwrap_or("US")
        .to_ascii_uppercase();
    let currency = COUNTRIES
        .iter()
        .find(|(c, _)| *c == country)
        .map(|(_, currency)| *currency)
        .ok_or_else(|| {
            invalid(
                format!(
                    "Country '{country}' is unknown. Try using a 2-character alphanumeric country \
                     code instead, such as 'US', 'EG', or 'GB'."
                ),
                Some("country"),
                None,
            )
        })?;
    let id = shapes::account_id();
    let mut account = shapes::account(&id, &country, currency, now());
    account["type"] = json!(controller.account_type());
    account["controller"] = controller.value();
    if controller.dashboard == "full" {
        // An account with the full Dashboard is given both capabilities, as Standard ones are.
        account["capabilities"] = json!({"card_payments": "inactive", "transfers": "inactive"});
    }
    apply(&mut account, params)?;
    ctx.put(Kind::Account, account.clone());
    Ok(account)
}

/// The platform's connected account `id`, or Stripe's refusal.
fn controlled(ctx: &Ctx<'_>, id: &str) -> Result<Value, StripeErr> {
    ctx.connected_account(id)
        .cloned()
        .ok_or_else(|| no_access(id, None))
}

/// `GET /v1/accounts/:id`: one of the platform's accounts, or with `Stripe-Account` the account
/// itself.
fn retrieve(ctx: &mut Ctx<'_>, id: &str, params: &Map<String, Value>) -> Result<Value, StripeErr> {
    ctx.secret_call(params, &["expand"])?;
    match ctx.account() {
        Some(own) if own != id => Err(no_access(id, None)),
        _ => controlled(ctx, id),
    }
}

/// The top-level fields of `after` that differ from `before`, with their old values (an
/// event's `previous_attributes`); `None` when nothing changed.
fn changes(before: &Value, after: &Value) -> Option<Value> {
    let (Some(before), Some(after)) = (before.as_object(), after.as_object()) else {
        return None;
    };
    let previous: Map<String, Value> = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .map(|(k, _)| (k.clone(), before.get(k).cloned().unwrap_or(Value::Null)))
        .collect();
    (!previous.is_empty()).then_some(Value::Object(previous))
}

/// Saves the account and, when it changed, tells the platform with `account.updated` (an event
/// of the connected account).
fn save(ctx: &mut Ctx<'_>, before: &Value, account: Value) -> Value {
    let id = account["id"].as_str().unwrap_or_default().to_string();
    if let Some(previous) = changes(before, &account) {
        ctx.on(None, |ctx| ctx.put(Kind::Account, account.clone()));
        ctx.on(Some(&id), |ctx| {
            ctx.emit_change("account.updated", account.clone(), Some(previous))
        });
    }
    account
}

/// `POST /v1/accounts/:id`.
fn update(ctx: &mut Ctx<'_>, id: &str, params: &Map<String, Value>) -> Result<Value, StripeErr> {
    ctx.secret_call(params, CHANGEABLE)?;
    if ctx.account().is_some() {
        return Err(platform_only("Updating connected accounts"));
    }
    let before = controlled(ctx, id)?;
    let mut account = before.clone();
    apply(&mut account, params)?;
    Ok(save(ctx, &before, account))
}

/// `DELETE /v1/accounts/:id`: the platform lets the account go; it keeps its objects, out of
/// the platform's reach.
fn delete(ctx: &mut Ctx<'_>, id: &str, params: &Map<String, Value>) -> Result<Value, StripeErr> {
    check_known(params, &[])?;
    ctx.require_secret()?;
    if ctx.account().is_some() {
        return Err(platform_only("Deleting connected accounts"));
    }
    controlled(ctx, id)?;
    ctx.move_to(id, Some(id));
    Ok(shapes::deleted_account(id))
}

/// Onboarding ends, as the person chose on Stripe's hosted pages: `complete` submits
/// everything (charges and payouts enabled, nothing due, the requested capabilities active, a
/// test bank account for payouts); otherwise what is left stays due. Sends `account.updated`
/// when the account changed.
pub(crate) fn onboard(ctx: &mut Ctx<'_>, id: &str, complete: bool) -> Result<Value, StripeErr> {
    let before = controlled(ctx, id)?;
    let mut account = before.clone();
    if complete {
        account["details_submitted"] = json!(true);
        if account["business_type"].is_null() {
            account["business_type"] = json!("individual");
        }
        if let Some(all) = account["capabilities"].as_object_mut() {
            for status in all.values_mut() {
                *status = json!("active");
            }
        }
        account["charges_enabled"] = json!(active(&account, "card_payments"));
        account["payouts_enabled"] = json!(true);
        account["requirements"] = shapes::requirements(&[], None);
        account["tos_acceptance"] = json!({"date": now(), "ip": "127.0.0.1",
                                           "user_agent": "Stripe sandbox onboarding"});
        if account["external_accounts"]["data"]
            .as_array()
            .is_some_and(Vec::is_empty)
        {
            let bank = shapes::bank_account(
                id,
                account["country"].as_str().unwrap_or("US"),
                account["default_currency"].as_str().unwrap_or("usd"),
            );
            account["external_accounts"]["data"] = json!([bank]);
        }
    } else if account["details_submitted"] != true {
        let left: Vec<String> = account["requirements"]["currently_due"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter(|f| LEFT_WHEN_INCOMPLETE.contains(f))
            .map(str::to_string)
            .collect();
        account["requirements"] = shapes::requirements(&left, Some("requirements.past_due"));
    }
    Ok(save(ctx, &before, account))
}

/// The account disconnects from the platform (`account.application.deauthorized`, an event of
/// the account): from then on the platform can no longer reach it or its objects.
pub(crate) fn deauthorize(ctx: &mut Ctx<'_>, id: &str) -> Result<Value, StripeErr> {
    controlled(ctx, id)?;
    ctx.on(Some(id), |ctx| {
        ctx.emit("account.application.deauthorized", application())
    });
    ctx.move_to(id, Some(id));
    Ok(json!({"object": "sandbox.deauthorization", "account": id, "deauthorized": true}))
}
