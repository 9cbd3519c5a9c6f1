//! Payment method types other than cards, as Stripe states their rules: OXXO (`oxxo`), bank
//! transfers into the customer's cash balance (`customer_balance`) and SEPA Direct Debit
//! (`sepa_debit`). Which currencies and amounts each takes and that none can be captured
//! manually; their `payment_method_options` on a PaymentIntent; their PaymentMethods (made from
//! `type` and its details, with the billing details every PaymentMethod takes); what a charge
//! paid by one shows; and which cannot be refunded.

use serde_json::{json, Map, Value};

use crate::cards::{self, MethodType, TestCard};
use crate::ctx::{Caller, Ctx};
use crate::currency::Currency;
use crate::error::{
    invalid, invalid_hash, invalid_integer, missing_required, unknown_parameter, StripeErr,
};
use crate::iban;
use crate::objects::{self, random_alnum};
use crate::params::{check_known_as, string_param, update_metadata};
use crate::store::now;

/// A payment method type's rules: the currencies it takes, and its largest amount when Stripe
/// publishes one lower than the general maximum.
struct Rule {
    name: &'static str,
    currencies: &'static [&'static str],
    max_amount: Option<i64>,
}

const RULES: &[Rule] = &[
    Rule {
        name: "oxxo",
        currencies: &["mxn"],
        // 10,000.00 MXN; its minimum, 10.00 MXN, is MXN's own.
        max_amount: Some(1_000_000),
    },
    // Stripe also takes usd, gbp and jpy transfers; the sandbox emulates SPEI and SEPA ones.
    Rule {
        name: "customer_balance",
        currencies: &["mxn", "eur"],
        max_amount: None,
    },
    Rule {
        name: "sepa_debit",
        currencies: &["eur"],
        max_amount: None,
    },
];

/// The countries of `eu_bank_transfer` instructions.
pub const EU_TRANSFER_COUNTRIES: &[&str] = &["BE", "DE", "ES", "FR", "IE", "NL"];

/// The number of days an OXXO voucher lives when `expires_after_days` is not given.
pub const OXXO_DEFAULT_DAYS: i64 = 3;

fn intent_invalid(message: String, param: &str) -> StripeErr {
    invalid(
        message,
        Some(param),
        Some("payment_intent_invalid_parameter"),
    )
}

/// Stripe's checks of the payment method types a PaymentIntent lists (or the one it is
/// confirmed with) against its currency, amount and capture method.
pub(crate) fn check_types(
    types: &[&str],
    currency: &str,
    amount: i64,
    capture_method: &str,
) -> Result<(), StripeErr> {
    for rule in RULES.iter().filter(|r| types.contains(&r.name)) {
        if !rule.currencies.contains(&currency) {
            return Err(intent_invalid(
                format!(
                    "The currency provided ({currency}) is invalid for one or more payment method \
                     types on this PaymentIntent. The payment method type {} supports: {}.",
                    rule.name,
                    rule.currencies.join(", ")
                ),
                "currency",
            ));
        }
        if let Some(max) = rule.max_amount.filter(|max| amount > *max) {
            let shown = Currency::parse(currency)
                .map(|c| c.major(max))
                .unwrap_or_else(|| max.to_string());
            return Err(invalid(
                format!(
                    "Amount must be no more than {shown} {currency} for the payment method type {}.",
                    rule.name
                ),
                Some("amount"),
                Some("amount_too_large"),
            ));
        }
        if capture_method == "manual" {
            return Err(intent_invalid(
                format!(
                    "`capture_method=manual` is not supported by payment method type `{}`. Use a \
                     different capture method.",
                    rule.name
                ),
                "capture_method",
            ));
        }
    }
    Ok(())
}

/// A hash parameter's entries, or Stripe's refusal naming it.
fn hash<'a>(value: &'a Value, param: &str) -> Result<&'a Map<String, Value>, StripeErr> {
    value.as_object().ok_or_else(|| invalid_hash(param))
}

/// `payment_method_options[…]` as given to create or confirm, checked against the currency,
/// written over `options` (a PaymentIntent's). Types listed in `types` that have options get
/// Stripe's defaults when none are given.
pub(crate) fn apply_options(
    options: &mut Value,
    given: Option<&Value>,
    currency: &str,
    types: &[&str],
) -> Result<(), StripeErr> {
    const PARAM: &str = "payment_method_options";
    let empty = Map::new();
    let given = match given {
        None => &empty,
        Some(v) => hash(v, PARAM)?,
    };
    let name = |key: &str| format!("{PARAM}[{key}]");
    check_known_as(given, &["oxxo", "customer_balance", "sepa_debit"], name)?;
    if let Some(oxxo) = given.get("oxxo") {
        let oxxo = hash(oxxo, &name("oxxo"))?;
        check_known_as(oxxo, &["expires_after_days"], |k| {
            format!("{PARAM}[oxxo][{k}]")
        })?;
        let param = format!("{PARAM}[oxxo][expires_after_days]");
        let days = match string_param(oxxo, "expires_after_days")? {
            None => OXXO_DEFAULT_DAYS,
            Some(text) => text
                .parse::<i64>()
                .map_err(|_| invalid_integer(text, &param))?,
        };
        if !(1..=7).contains(&days) {
            return Err(invalid(
                "expires_after_days must be between 1 and 7.",
                Some(&param),
                None,
            ));
        }
        options["oxxo"] = json!({"expires_after_days": days});
    } else if types.contains(&"oxxo") && options.get("oxxo").is_none() {
        options["oxxo"] = json!({"expires_after_days": OXXO_DEFAULT_DAYS});
    }
    if let Some(balance) = given.get("customer_balance") {
        options["customer_balance"] = customer_balance_options(balance, currency)?;
    } else if types.contains(&"customer_balance") && options.get("customer_balance").is_none() {
        options["customer_balance"] = json!({"funding_type": null});
    }
    if let Some(sepa) = given.get("sepa_debit") {
        check_known_as(hash(sepa, &name("sepa_debit"))?, &[], |k| {
            format!("{PARAM}[sepa_debit][{k}]")
        })?;
    }
    if (given.contains_key("sepa_debit") || types.contains(&"sepa_debit"))
        && options.get("sepa_debit").is_none()
    {
        options["sepa_debit"] = json!({});
    }
    Ok(())
}

/// `payment_method_options[customer_balance]`: `funding_type=bank_transfer` and the transfer's
/// type, which must fit the currency (`mx_bank_transfer` for mxn, `eu_bank_transfer` with a
/// country for eur).
fn customer_balance_options(given: &Value, currency: &str) -> Result<Value, StripeErr> {
    const PARAM: &str = "payment_method_options[customer_balance]";
    let given = hash(given, PARAM)?;
    check_known_as(given, &["funding_type", "bank_transfer"], |k| {
        format!("{PARAM}[{k}]")
    })?;
    let funding_type = string_param(given, "funding_type")?;
    if funding_type.is_some_and(|f| f != "bank_transfer") {
        return Err(invalid(
            "Invalid funding_type: must be bank_transfer",
            Some(&format!("{PARAM}[funding_type]")),
            None,
        ));
    }
    let mut options = json!({"funding_type": funding_type});
    let Some(transfer) = given.get("bank_transfer") else {
        return Ok(options);
    };
    let param = format!("{PARAM}[bank_transfer]");
    let transfer = hash(transfer, &param)?;
    check_known_as(
        transfer,
        &["type", "eu_bank_transfer", "requested_address_types"],
        |k| format!("{param}[{k}]"),
    )?;
    let kind = string_param(transfer, "type")?
        .ok_or_else(|| missing_required(&format!("{param}[type]")))?;
    let needs = match kind {
        "mx_bank_transfer" => "mxn",
        "eu_bank_transfer" => "eur",
        "gb_bank_transfer" | "jp_bank_transfer" | "us_bank_transfer" => {
            return Err(intent_invalid(
                format!(
                    "The sandbox emulates mx_bank_transfer and eu_bank_transfer only, not {kind}."
                ),
                &format!("{param}[type]"),
            ))
        }
        other => {
            return Err(invalid(
                format!("Invalid type: {other}"),
                Some(&format!("{param}[type]")),
                None,
            ))
        }
    };
    if currency != needs {
        return Err(intent_invalid(
            format!("A {kind} needs the currency {needs}, not {currency}."),
            &format!("{param}[type]"),
        ));
    }
    options["bank_transfer"] = json!({"type": kind});
    if kind == "eu_bank_transfer" {
        let eu_param = format!("{param}[eu_bank_transfer]");
        let eu = transfer
            .get("eu_bank_transfer")
            .ok_or_else(|| missing_required(&format!("{eu_param}[country]")))?;
        let eu = hash(eu, &eu_param)?;
        check_known_as(eu, &["country"], |k| format!("{eu_param}[{k}]"))?;
        let country = string_param(eu, "country")?
            .ok_or_else(|| missing_required(&format!("{eu_param}[country]")))?;
        if !EU_TRANSFER_COUNTRIES.contains(&country) {
            return Err(invalid(
                format!(
                    "Invalid country: must be one of {}",
                    EU_TRANSFER_COUNTRIES.join(", ")
                ),
                Some(&format!("{eu_param}[country]")),
                None,
            ));
        }
        options["bank_transfer"]["eu_bank_transfer"] = json!({"country": country});
    }
    match transfer.get("requested_address_types") {
        None => {}
        Some(Value::Array(types)) => {
            options["bank_transfer"]["requested_address_types"] = json!(types)
        }
        Some(_) => {
            return Err(invalid(
                "Invalid array",
                Some(&format!("{param}[requested_address_types]")),
                None,
            ))
        }
    }
    Ok(options)
}

/// What confirming `pi` with a payment method that is not a card needs besides: rules of its
/// type; for a bank transfer, a customer and `funding_type=bank_transfer` with a transfer type;
/// for SEPA Direct Debit, `mandate_data`. A PaymentIntent already funded in part keeps its
/// instructions.
pub(crate) fn check_confirm(
    ctx: &Ctx<'_>,
    pi: &Value,
    card: &TestCard,
    params: &Map<String, Value>,
) -> Result<(), StripeErr> {
    let text = |field: &str| pi[field].as_str().unwrap_or_default();
    check_types(
        &[card.method.name()],
        text("currency"),
        pi["amount"].as_i64().unwrap_or(0),
        text("capture_method"),
    )?;
    let remaining =
        pi["next_action"]["display_bank_transfer_instructions"]["amount_remaining"].as_i64();
    if remaining.is_some_and(|left| Some(left) < pi["amount"].as_i64()) {
        return Err(invalid(
            format!(
                "This PaymentIntent ({}) has been funded in part by a bank transfer and awaits the \
                 rest; cancel it to return the funds to the customer's cash balance.",
                text("id")
            ),
            None,
            Some("payment_intent_unexpected_state"),
        ));
    }
    match card.method {
        MethodType::CustomerBalance => {
            if pi["customer"].as_str().is_none() {
                return Err(invalid(
                    "A PaymentIntent paid by bank transfer (customer_balance) needs a customer: \
                     create it with customer=cus_….",
                    Some("customer"),
                    Some("parameter_missing"),
                ));
            }
            let options = &pi["payment_method_options"]["customer_balance"];
            if options["funding_type"] != "bank_transfer" {
                return Err(missing_required(
                    "payment_method_options[customer_balance][funding_type]",
                ));
            }
            if options["bank_transfer"]["type"].as_str().is_none() {
                return Err(missing_required(
                    "payment_method_options[customer_balance][bank_transfer][type]",
                ));
            }
        }
        MethodType::SepaDebit => check_mandate(ctx, params)?,
        _ => {}
    }
    Ok(())
}

/// `mandate_data[customer_acceptance]` as Stripe takes it for a SEPA debit: `type` `online`
/// (with the customer's `ip_address` and `user_agent`, or, from Stripe.js with a publishable
/// key, `infer_from_client=true`) or `offline`.
fn check_mandate(ctx: &Ctx<'_>, params: &Map<String, Value>) -> Result<(), StripeErr> {
    const PARAM: &str = "mandate_data[customer_acceptance]";
    let Some(mandate) = params.get("mandate_data") else {
        return Err(invalid(
            "When confirming a PaymentIntent with a sepa_debit PaymentMethod, mandate_data is \
             required: mandate_data[customer_acceptance][type]=online with the customer's \
             ip_address and user_agent, or offline.",
            Some("mandate_data"),
            Some("parameter_missing"),
        ));
    };
    let mandate = hash(mandate, "mandate_data")?;
    check_known_as(mandate, &["customer_acceptance"], |k| {
        format!("mandate_data[{k}]")
    })?;
    let acceptance = hash(
        mandate
            .get("customer_acceptance")
            .ok_or_else(|| missing_required(PARAM))?,
        PARAM,
    )?;
    check_known_as(
        acceptance,
        &["type", "online", "offline", "accepted_at"],
        |k| format!("{PARAM}[{k}]"),
    )?;
    match string_param(acceptance, "type")? {
        Some("offline") => Ok(()),
        Some("online") => {
            let param = format!("{PARAM}[online]");
            let online = hash(
                acceptance
                    .get("online")
                    .ok_or_else(|| missing_required(&param))?,
                &param,
            )?;
            check_known_as(
                online,
                &["ip_address", "user_agent", "infer_from_client"],
                |k| format!("{param}[{k}]"),
            )?;
            let inferred = ctx.caller() == Caller::Publishable
                && string_param(online, "infer_from_client")? == Some("true");
            if !inferred {
                for field in ["ip_address", "user_agent"] {
                    string_param(online, field)?
                        .filter(|v| !v.is_empty())
                        .ok_or_else(|| missing_required(&format!("{param}[{field}]")))?;
                }
            }
            Ok(())
        }
        Some(other) => Err(invalid(
            format!("Invalid type: {other}; must be online or offline"),
            Some(&format!("{PARAM}[type]")),
            None,
        )),
        None => Err(missing_required(&format!("{PARAM}[type]"))),
    }
}

/// `billing_details[…]` of a new PaymentMethod: `name`, `email`, `phone`, `address[…]`.
/// `name` names the parameters in errors.
pub(crate) fn billing_details(
    pm: &mut Value,
    data: &Map<String, Value>,
    name: &dyn Fn(&str) -> String,
) -> Result<(), StripeErr> {
    let Some(Value::Object(given)) = data.get("billing_details") else {
        return Ok(());
    };
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
    Ok(())
}

/// Stripe's refusal of a text that does not look like an e-mail address.
pub(crate) fn check_email(email: &str, param: &str) -> Result<(), StripeErr> {
    let looks_right = match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
                && !email.chars().any(char::is_whitespace)
        }
        None => false,
    };
    if looks_right {
        Ok(())
    } else {
        Err(invalid(
            format!("Invalid email address: {email}"),
            Some(param),
            Some("email_invalid"),
        ))
    }
}

/// The billing name and e-mail that OXXO and SEPA Direct Debit PaymentMethods require.
fn require_name_and_email(pm: &Value, name: &dyn Fn(&str) -> String) -> Result<(), StripeErr> {
    for field in ["name", "email"] {
        let given = pm["billing_details"][field].as_str().unwrap_or_default();
        if given.trim().is_empty() {
            return Err(missing_required(&name(&format!(
                "billing_details[{field}]"
            ))));
        }
    }
    check_email(
        pm["billing_details"]["email"].as_str().unwrap_or_default(),
        &name("billing_details[email]"),
    )
}

/// Stripe's refusal of a parameter a new PaymentMethod of type `kind` does not take: it takes
/// the details of its type (`card[…]`, `sepa_debit[…]`), billing details and metadata.
pub(crate) fn check_payment_method_params(
    data: &Map<String, Value>,
    kind: &str,
    name: &dyn Fn(&str) -> String,
) -> Result<(), StripeErr> {
    check_known_as(
        data,
        &[
            "type",
            kind,
            "billing_details",
            "metadata",
            "allow_redisplay",
            "expand",
        ],
        name,
    )
}

/// A PaymentMethod of a type that is not a card (`oxxo`, `customer_balance`, `sepa_debit`),
/// made from `data` and saved; `None` when `data` is of another type, which the caller makes.
pub(crate) fn create(
    ctx: &mut Ctx<'_>,
    data: &Map<String, Value>,
    name: &dyn Fn(&str) -> String,
) -> Result<Option<Value>, StripeErr> {
    let (method, alias_prefix) = match data.get("type").and_then(Value::as_str) {
        Some("oxxo") => (MethodType::Oxxo, cards::OXXO_ALIAS),
        Some("customer_balance") => (MethodType::CustomerBalance, cards::CUSTOMER_BALANCE_ALIAS),
        Some("sepa_debit") => (MethodType::SepaDebit, cards::SEPA_ALIAS),
        _ => return Ok(None),
    };
    let kind = method.name();
    check_payment_method_params(data, kind, name)?;
    let details = match data.get(kind) {
        None => Map::new(),
        Some(v) => hash(v, &name(kind))?.clone(),
    };
    let mut alias = alias_prefix.to_string();
    let mut own = json!({});
    if method == MethodType::SepaDebit {
        check_known_as(&details, &["iban"], |k| name(&format!("{kind}[{k}]")))?;
        let param = name("sepa_debit[iban]");
        let given = string_param(&details, "iban")?.ok_or_else(|| missing_required(&param))?;
        let iban = sepa_iban(given, &param)?;
        own = json!({
            "bank_code": iban.get(4..9),
            "branch_code": "",
            "country": iban.get(..2),
            "fingerprint": random_alnum(16),
            "generated_from": null,
            "last4": iban.get(iban.len().saturating_sub(4)..),
        });
        alias.push_str(&iban);
    } else {
        check_known_as(&details, &[], |k| name(&format!("{kind}[{k}]")))?;
    }
    let behaviour = cards::card_of_alias(&alias)
        .ok_or_else(|| crate::error::internal("a payment method has no behaviour"))?;
    let mut pm = objects::payment_method(&objects::new_id("pm"), &behaviour, now());
    if let Some(object) = pm.as_object_mut() {
        object.remove("card");
        object.insert("type".into(), json!(kind));
        object.insert(kind.into(), own);
    }
    billing_details(&mut pm, data, name)?;
    if method != MethodType::CustomerBalance {
        require_name_and_email(&pm, name)?;
    }
    update_metadata(&mut pm, data)?;
    ctx.put_payment_method(pm.clone(), alias);
    Ok(Some(pm))
}

/// A SEPA Direct Debit IBAN as the sandbox takes one: well formed, and one of Stripe's test
/// IBANs, as test mode takes no live account; returned normalised.
fn sepa_iban(given: &str, param: &str) -> Result<String, StripeErr> {
    let iban = iban::normalise(given);
    if !iban::valid(&iban) {
        return Err(invalid(
            "The IBAN you provided is invalid.",
            Some(param),
            Some("payment_method_invalid_parameter"),
        ));
    }
    if iban == cards::SEPA_UNUSABLE_IBAN {
        return Err(invalid(
            "This bank account cannot be used for SEPA Direct Debit payments.",
            Some(param),
            Some("bank_account_unusable"),
        ));
    }
    if cards::sepa_test_iban(&iban).is_none() {
        return Err(invalid(
            "You cannot use a live bank account number when making transfers or debits in test \
             mode. Use one of Stripe's test IBANs, such as AT611904300234573201.",
            Some(param),
            Some("payment_method_invalid_parameter_testmode"),
        ));
    }
    Ok(iban)
}

/// Fills in what a charge paid by `pm` shows: its customer, and for the types that are not
/// cards their `payment_method_details` and billing details.
pub(crate) fn charge_details(charge: &mut Value, pi: &Value, pm: &Value, card: &TestCard) {
    charge["customer"] = pi["customer"].clone();
    let details = match card.method {
        MethodType::Oxxo => json!({
            "number": pi["next_action"]["oxxo_display_details"]["number"],
        }),
        MethodType::CustomerBalance => json!({}),
        MethodType::SepaDebit => {
            let mut own = pm["sepa_debit"].clone();
            if let Some(object) = own.as_object_mut() {
                object.remove("generated_from");
                object.insert("mandate".into(), json!(objects::new_id("mandate")));
            }
            own
        }
        MethodType::Card | MethodType::UsBankAccount => return,
    };
    let kind = card.method.name();
    charge["payment_method_details"] = json!({"type": kind, kind: details});
    charge["billing_details"] = pm["billing_details"].clone();
}

/// Stripe's refusal to refund a charge whose payment method cannot be refunded (OXXO).
pub(crate) fn check_refundable(charge: &Value) -> Result<(), StripeErr> {
    if charge["payment_method_details"]["type"] == "oxxo" {
        return Err(invalid(
            format!(
                "Charge {} cannot be refunded: OXXO payments cannot be refunded.",
                charge["id"].as_str().unwrap_or_default()
            ),
            Some("charge"),
            Some("charge_not_refundable"),
        ));
    }
    Ok(())
}
