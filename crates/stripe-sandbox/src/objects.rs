//! Stripe objects as the sandbox returns them: every field of Stripe's published examples, with
//! values that tell a consistent story (checked against Stripe's own fixtures and OpenAPI
//! schemas by the crate's tests).

use rand::distributions::Alphanumeric;
use rand::Rng;
use serde_json::{json, Map, Value};

/// Stripe-style id: prefix plus 24 random letters and digits.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", random_alnum(24))
}

pub fn random_alnum(n: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

/// What a test payment method does when charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardResult {
    Succeeds,
    Declines {
        code: &'static str,
        decline_code: &'static str,
        message: &'static str,
    },
    RequiresAuthentication,
    /// A delayed method (ACH debit): `processing`, then `succeeded` a little later.
    Processing,
}

/// What happens after a successful payment, as Stripe's test methods document it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    Nothing,
    /// A dispute (reason `fraudulent`) opens shortly after the charge.
    Dispute,
    /// Refunds start `succeeded` and turn `failed` a little later.
    RefundFails,
    /// Refunds start `pending` and turn `succeeded` a little later.
    RefundPending,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodType {
    Card,
    UsBankAccount,
}

impl MethodType {
    pub fn name(self) -> &'static str {
        match self {
            MethodType::Card => "card",
            MethodType::UsBankAccount => "us_bank_account",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestCard {
    pub method: MethodType,
    pub brand: &'static str,
    pub last4: String,
    pub funding: &'static str,
    pub result: CardResult,
    pub after: After,
}

const fn declines(
    code: &'static str,
    decline_code: &'static str,
    message: &'static str,
) -> CardResult {
    CardResult::Declines {
        code,
        decline_code,
        message,
    }
}

const DECLINED: &str = "Your card was declined.";
const GENERIC_DECLINE: CardResult = declines("card_declined", "generic_decline", DECLINED);
const INSUFFICIENT_FUNDS: CardResult = declines(
    "card_declined",
    "insufficient_funds",
    "Your card has insufficient funds.",
);
const EXPIRED: CardResult = declines("expired_card", "expired_card", "Your card has expired.");
const INCORRECT_CVC: CardResult = declines(
    "incorrect_cvc",
    "incorrect_cvc",
    "Your card's security code is incorrect.",
);
const LOST: CardResult = declines("card_declined", "lost_card", DECLINED);
const STOLEN: CardResult = declines("card_declined", "stolen_card", DECLINED);
/// A card number that is not one of Stripe's test numbers, used with a test key.
const LIVE_CARD: CardResult = declines(
    "card_declined",
    "test_mode_live_card",
    "Your card was declined. Your request was in test mode, but used a non test (live) \
     card. For a list of valid test cards, visit: https://stripe.com/docs/testing.",
);

/// The prefix of the alias kept for a PaymentMethod made from one of Stripe's test numbers.
pub const NUMBER_ALIAS: &str = "card:";
/// The prefix of the alias kept for any other card number: only its brand and last four
/// digits, so that the sandbox never stores a real card number.
pub const LIVE_ALIAS: &str = "live:";

/// The alias that records how a card number behaves.
pub fn alias_for_number(number: &str) -> String {
    if TEST_NUMBERS.iter().any(|(n, _)| *n == number) {
        format!("{NUMBER_ALIAS}{number}")
    } else {
        format!("{LIVE_ALIAS}{}:{}", brand_of(number), last4(number))
    }
}

/// The last four characters, counted as characters: text that reaches here may not be ASCII,
/// and a byte offset could fall inside a character.
fn last4(number: &str) -> String {
    let skip = number.chars().count().saturating_sub(4);
    number.chars().skip(skip).collect()
}

/// Stripe's documented test card numbers, by the test PaymentMethod that behaves the same.
pub const TEST_NUMBERS: &[(&str, &str)] = &[
    ("4242424242424242", "pm_card_visa"),
    ("4000056655665556", "pm_card_visa_debit"),
    ("5555555555554444", "pm_card_mastercard"),
    ("2223003122003222", "pm_card_mastercard"),
    ("378282246310005", "pm_card_amex"),
    ("371449635398431", "pm_card_amex"),
    ("6011111111111117", "pm_card_discover"),
    ("4000000000000002", "pm_card_chargeDeclined"),
    (
        "4000000000009995",
        "pm_card_chargeDeclinedInsufficientFunds",
    ),
    ("4000000000000069", "pm_card_chargeDeclinedExpiredCard"),
    ("4000000000000127", "pm_card_chargeDeclinedIncorrectCvc"),
    ("4000000000009987", "pm_card_chargeDeclinedLostCard"),
    ("4000000000009979", "pm_card_chargeDeclinedStolenCard"),
    ("4000002760003184", "pm_card_authenticationRequired"),
    ("4000000000003220", "pm_card_threeDSecure2Required"),
    ("4000000000005126", "pm_card_refundFail"),
    ("4000000000007726", "pm_card_pendingRefund"),
    ("4000000000000259", "pm_card_createDispute"),
];

/// A credit card that does nothing after it is paid with.
fn card(brand: &'static str, last4: &str, result: CardResult) -> TestCard {
    TestCard {
        method: MethodType::Card,
        brand,
        last4: last4.to_string(),
        funding: "credit",
        result,
        after: After::Nothing,
    }
}

/// How the PaymentMethod the sandbox stored with `alias` behaves: a test PaymentMethod's name,
/// or `card:NUMBER` and `live:BRAND:LAST4` for one made from a card number. Only the sandbox
/// writes aliases; what a caller names goes through [`test_card`], so that a caller cannot
/// pass an alias of its own making.
pub fn card_of_alias(alias: &str) -> Option<TestCard> {
    if let Some(number) = alias.strip_prefix(NUMBER_ALIAS) {
        return Some(card_by_number(number));
    }
    if let Some(rest) = alias.strip_prefix(LIVE_ALIAS) {
        let (brand, last4) = rest.split_once(':')?;
        let brand = ["visa", "mastercard", "amex", "discover"]
            .into_iter()
            .find(|b| *b == brand)
            .unwrap_or("unknown");
        return Some(card(brand, last4, LIVE_CARD));
    }
    test_card(alias)
}

/// Stripe's documented test PaymentMethods (`pm_card_visa`, …) and what they do.
pub fn test_card(name: &str) -> Option<TestCard> {
    Some(match name {
        "pm_card_visa" => card("visa", "4242", CardResult::Succeeds),
        "pm_card_visa_debit" => TestCard {
            funding: "debit",
            ..card("visa", "5556", CardResult::Succeeds)
        },
        "pm_card_mastercard" => card("mastercard", "4444", CardResult::Succeeds),
        "pm_card_amex" => card("amex", "8431", CardResult::Succeeds),
        "pm_card_discover" => card("discover", "1117", CardResult::Succeeds),
        "pm_card_visa_chargeDeclined" | "pm_card_chargeDeclined" => {
            card("visa", "0002", GENERIC_DECLINE)
        }
        "pm_card_visa_chargeDeclinedInsufficientFunds"
        | "pm_card_chargeDeclinedInsufficientFunds" => card("visa", "9995", INSUFFICIENT_FUNDS),
        "pm_card_chargeDeclinedExpiredCard" | "pm_card_visa_chargeDeclinedExpiredCard" => {
            card("visa", "0069", EXPIRED)
        }
        "pm_card_chargeDeclinedIncorrectCvc" => card("visa", "0127", INCORRECT_CVC),
        "pm_card_chargeDeclinedLostCard" => card("visa", "9987", LOST),
        "pm_card_chargeDeclinedStolenCard" => card("visa", "9979", STOLEN),
        "pm_card_authenticationRequired" | "pm_card_threeDSecureRequired" => {
            card("visa", "3184", CardResult::RequiresAuthentication)
        }
        "pm_card_threeDSecure2Required" => card("visa", "3220", CardResult::RequiresAuthentication),
        "pm_card_refundFail" => TestCard {
            after: After::RefundFails,
            ..card("visa", "5126", CardResult::Succeeds)
        },
        "pm_card_pendingRefund" => TestCard {
            after: After::RefundPending,
            ..card("visa", "7726", CardResult::Succeeds)
        },
        "pm_card_createDispute" => TestCard {
            after: After::Dispute,
            ..card("visa", "0259", CardResult::Succeeds)
        },
        "pm_usBankAccount_success" => TestCard {
            method: MethodType::UsBankAccount,
            brand: "",
            last4: "6789".into(),
            funding: "",
            result: CardResult::Processing,
            after: After::Nothing,
        },
        _ => return None,
    })
}

/// A card number, already checked to be well formed: Stripe's test numbers behave as their
/// PaymentMethods; any other number is a live card, declined in test mode.
pub fn card_by_number(number: &str) -> TestCard {
    let last4 = last4(number);
    if let Some((_, alias)) = TEST_NUMBERS.iter().find(|(n, _)| *n == number) {
        if let Some(card) = test_card(alias) {
            return TestCard { last4, ..card };
        }
    }
    TestCard {
        brand: brand_of(number),
        ..card_of_alias(&format!("{LIVE_ALIAS}x:{last4}")).expect("a live alias always parses")
    }
}

fn brand_of(number: &str) -> &'static str {
    let prefix = |n: usize| {
        number
            .get(..n)
            .and_then(|p| p.parse::<u32>().ok())
            .unwrap_or(0)
    };
    if number.starts_with('4') {
        "visa"
    } else if (51..=55).contains(&prefix(2)) || (2221..=2720).contains(&prefix(4)) {
        "mastercard"
    } else if matches!(prefix(2), 34 | 37) {
        "amex"
    } else if number.starts_with("6011") || number.starts_with("65") {
        "discover"
    } else {
        "unknown"
    }
}

/// Why a card number is refused, as Stripe answers: (`code`, message).
pub fn check_card_number(number: &str) -> Result<(), (&'static str, &'static str)> {
    let digits: Vec<u32> = number.chars().filter_map(|c| c.to_digit(10)).collect();
    if digits.len() != number.chars().count() || !(12..=19).contains(&digits.len()) {
        return Err(("invalid_number", "Your card number is invalid."));
    }
    // Luhn: doubling every second digit from the right.
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| match (i % 2, d * 2) {
            (1, twice) if twice > 9 => twice - 9,
            (1, twice) => twice,
            _ => *d,
        })
        .sum();
    if !sum.is_multiple_of(10) {
        return Err(("incorrect_number", "Your card number is incorrect."));
    }
    Ok(())
}

pub fn payment_method(id: &str, card: &TestCard, created: i64) -> Value {
    let mut pm = json!({
        "allow_redisplay": "unspecified",
        "billing_details": {
            "address": {"city": null, "country": null, "line1": null, "line2": null,
                        "postal_code": null, "state": null},
            "email": null, "name": null, "phone": null, "tax_id": null
        },
        "card": {
            "brand": card.brand,
            "checks": {"address_line1_check": null, "address_postal_code_check": null,
                       "cvc_check": "pass"},
            "country": "US",
            "display_brand": card.brand,
            "exp_month": 12,
            "exp_year": 2034,
            "fingerprint": random_alnum(16),
            "funding": card.funding,
            "generated_from": null,
            "last4": card.last4,
            "networks": {"available": [card.brand], "preferred": null},
            "regulated_status": "unregulated",
            "three_d_secure_usage": {"supported": true},
            "wallet": null
        },
        "created": created,
        "customer": null,
        "customer_account": null,
        "id": id,
        "livemode": false,
        "metadata": {},
        "object": "payment_method",
        "type": "card"
    });
    if card.method == MethodType::UsBankAccount {
        let object = pm.as_object_mut().expect("an object");
        object.remove("card");
        object.insert("type".into(), json!("us_bank_account"));
        object.insert(
            "us_bank_account".into(),
            json!({
                "account_holder_type": "individual",
                "account_type": "checking",
                "bank_name": "STRIPE TEST BANK",
                "financial_connections_account": null,
                "fingerprint": random_alnum(16),
                "last4": card.last4,
                "networks": {"preferred": "ach", "supported": ["ach"]},
                "routing_number": "110000000",
                "status_details": {}
            }),
        );
    }
    pm
}

pub struct NewPaymentIntent<'a> {
    pub amount: i64,
    pub currency: &'a str,
    pub description: Option<String>,
    pub metadata: Map<String, Value>,
    pub automatic_payment_methods: bool,
    pub payment_method_types: Vec<Value>,
    pub created: i64,
}

pub fn payment_intent(p: NewPaymentIntent<'_>) -> Value {
    let id = new_id("pi");
    let secret = format!("{id}_secret_{}", random_alnum(25));
    json!({
        "amount": p.amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": 0,
        "application": null,
        "application_fee_amount": null,
        "automatic_payment_methods": if p.automatic_payment_methods {
            json!({"allow_redirects": "always", "enabled": true})
        } else {
            Value::Null
        },
        "canceled_at": null,
        "cancellation_reason": null,
        "capture_method": "automatic_async",
        "client_secret": secret,
        "confirmation_method": "automatic",
        "created": p.created,
        "currency": p.currency,
        "customer": null,
        "customer_account": null,
        "description": p.description,
        "excluded_payment_method_types": null,
        "id": id,
        "last_payment_error": null,
        "latest_charge": null,
        "livemode": false,
        "managed_payments": null,
        "metadata": p.metadata,
        "next_action": null,
        "object": "payment_intent",
        "on_behalf_of": null,
        "payment_method": null,
        "payment_method_configuration_details": null,
        "payment_method_options": {"card": {"installments": null, "mandate_options": null,
                                            "network": null, "request_three_d_secure": "automatic"}},
        "payment_method_types": p.payment_method_types,
        "processing": null,
        "receipt_email": null,
        "review": null,
        "setup_future_usage": null,
        "shipping": null,
        "source": null,
        "statement_descriptor": null,
        "statement_descriptor_suffix": null,
        "status": "requires_payment_method",
        "transfer_data": null,
        "transfer_group": null
    })
}

/// A Charge for one confirmation attempt of `pi` with `card`.
pub fn charge(pi: &Value, payment_method_id: &str, card: &TestCard, created: i64) -> Value {
    let id = new_id("ch");
    let (status, paid, failure_code, failure_message, outcome) = match &card.result {
        CardResult::Declines {
            code,
            decline_code,
            message,
        } => (
            "failed",
            false,
            Value::from(*code),
            Value::from(*message),
            json!({"advice_code": "try_again_later", "network_advice_code": null,
                   "network_decline_code": null, "network_status": "declined_by_network",
                   "reason": decline_code, "risk_level": "normal", "risk_score": 20,
                   "seller_message": "The bank did not return any further details with this decline.",
                   "type": "issuer_declined"}),
        ),
        _ => (
            "succeeded",
            true,
            Value::Null,
            Value::Null,
            json!({"advice_code": null, "network_advice_code": null, "network_decline_code": null,
                   "network_status": "approved_by_network", "reason": null, "risk_level": "normal",
                   "risk_score": 20, "seller_message": "Payment complete.", "type": "authorized"}),
        ),
    };
    let amount = pi["amount"].as_i64().unwrap_or(0);
    let mut charge = json!({
        "amount": amount,
        "amount_captured": if paid { amount } else { 0 },
        "amount_refunded": 0,
        "application": null,
        "application_fee": null,
        "application_fee_amount": null,
        "balance_transaction": if paid { Value::from(new_id("txn")) } else { Value::Null },
        "billing_details": {
            "address": {"city": null, "country": null, "line1": null, "line2": null,
                        "postal_code": null, "state": null},
            "email": null, "name": null, "phone": null, "tax_id": null
        },
        "calculated_statement_descriptor": "SANDBOX",
        "captured": paid,
        "created": created,
        "currency": pi["currency"],
        "customer": null,
        "description": pi["description"],
        "disputed": false,
        "failure_balance_transaction": null,
        "failure_code": failure_code,
        "failure_message": failure_message,
        "fraud_details": {},
        "id": id,
        "livemode": false,
        "metadata": {},
        "object": "charge",
        "on_behalf_of": null,
        "outcome": outcome,
        "paid": paid,
        "payment_intent": pi["id"],
        "payment_method": payment_method_id,
        "payment_method_details": {
            "card": {
                "amount_authorized": if paid { Value::from(amount) } else { Value::Null },
                "authorization_code": null,
                "brand": card.brand,
                "checks": {"address_line1_check": null, "address_postal_code_check": null,
                           "cvc_check": "pass"},
                "country": "US",
                "exp_month": 12,
                "exp_year": 2034,
                "extended_authorization": {"status": "disabled"},
                "fingerprint": random_alnum(16),
                "funding": card.funding,
                "incremental_authorization": {"status": "unavailable"},
                "installments": null,
                "last4": card.last4,
                "mandate": null,
                "multicapture": {"status": "unavailable"},
                "network": card.brand,
                "network_token": {"used": false},
                "network_transaction_id": null,
                "overcapture": {"maximum_amount_capturable": amount, "status": "unavailable"},
                "regulated_status": "unregulated",
                "three_d_secure": null,
                "transaction_link_id": null,
                "wallet": null
            },
            "type": "card"
        },
        "receipt_email": null,
        "receipt_number": null,
        "receipt_url": if paid { Value::from(format!("https://pay.stripe.com/receipts/payment/{}", random_alnum(40))) } else { Value::Null },
        "refunded": false,
        "review": null,
        "shipping": null,
        "source": null,
        "source_transfer": null,
        "statement_descriptor": null,
        "statement_descriptor_suffix": null,
        "status": status,
        "transfer_data": null,
        "transfer_group": null
    });
    if card.method == MethodType::UsBankAccount {
        charge["payment_method_details"] = json!({
            "type": "us_bank_account",
            "us_bank_account": {
                "account_holder_type": "individual",
                "account_type": "checking",
                "bank_name": "STRIPE TEST BANK",
                "fingerprint": random_alnum(16),
                "last4": card.last4,
                "mandate": null,
                "payment_reference": null,
                "routing_number": "110000000"
            }
        });
    }
    charge
}

/// A balance transaction, as embedded in a dispute's `balance_transactions`.
pub fn balance_transaction(
    amount: i64,
    fee: i64,
    currency: &Value,
    source: &str,
    description: String,
    reporting_category: &str,
    created: i64,
) -> Value {
    let fee_details = if fee == 0 {
        json!([])
    } else {
        json!([{"amount": fee, "application": null, "currency": currency,
                "description": "Dispute fee", "type": "stripe_fee"}])
    };
    json!({
        "amount": amount,
        "available_on": created,
        "created": created,
        "currency": currency,
        "description": description,
        "exchange_rate": null,
        "fee": fee,
        "fee_details": fee_details,
        "id": new_id("txn"),
        "net": amount - fee,
        "object": "balance_transaction",
        "reporting_category": reporting_category,
        "source": source,
        "status": "available",
        "type": "adjustment"
    })
}

pub struct NewRefund<'a> {
    pub charge: &'a Value,
    pub amount: i64,
    pub reason: Option<&'a str>,
    pub metadata: Map<String, Value>,
    pub status: &'a str,
    pub created: i64,
}

pub fn refund(r: NewRefund<'_>) -> Value {
    let card = r.charge["payment_method_details"]["type"] == "card";
    json!({
        "amount": r.amount,
        "balance_transaction": new_id("txn"),
        "charge": r.charge["id"],
        "created": r.created,
        "currency": r.charge["currency"],
        "customer": null,
        "customer_account": null,
        "destination_details": if card {
            json!({"card": {"reference": null, "reference_status": "pending",
                            "reference_type": "acquirer_reference_number", "type": "refund"},
                   "type": "card"})
        } else {
            json!({"type": r.charge["payment_method_details"]["type"],
                   "us_bank_transfer": {"reference": null, "reference_status": "pending"}})
        },
        "id": new_id("re"),
        "metadata": r.metadata,
        "object": "refund",
        "payment_intent": r.charge["payment_intent"],
        "payment_method": r.charge["payment_method"],
        "reason": r.reason,
        "receipt_number": null,
        "source_transfer_reversal": null,
        "status": r.status,
        "transfer_reversal": null
    })
}

/// Every evidence field a dispute has, all empty.
pub const EVIDENCE_FIELDS: &[&str] = &[
    "access_activity_log",
    "billing_address",
    "cancellation_policy",
    "cancellation_policy_disclosure",
    "cancellation_rebuttal",
    "customer_communication",
    "customer_email_address",
    "customer_name",
    "customer_purchase_ip",
    "customer_signature",
    "duplicate_charge_documentation",
    "duplicate_charge_explanation",
    "duplicate_charge_id",
    "product_description",
    "receipt",
    "refund_policy",
    "refund_policy_disclosure",
    "refund_refusal_explanation",
    "service_date",
    "service_documentation",
    "shipping_address",
    "shipping_carrier",
    "shipping_date",
    "shipping_documentation",
    "shipping_tracking_number",
    "uncategorized_file",
    "uncategorized_text",
];

/// Stripe's fee for a dispute in the sandbox (USD 15.00 in the charge's currency units).
pub const DISPUTE_FEE: i64 = 1500;

/// A dispute of `charge` (reason `fraudulent`) opened at `created`, with its evidence due a week
/// later and the withdrawal of the disputed amount plus the dispute fee.
pub fn dispute(charge: &Value, created: i64) -> Value {
    let id = new_id("dp");
    let amount = charge["amount_captured"].as_i64().unwrap_or(0);
    let mut evidence: Map<String, Value> = EVIDENCE_FIELDS
        .iter()
        .map(|f| (f.to_string(), Value::Null))
        .collect();
    evidence.insert("enhanced_evidence".into(), json!({}));
    let withdrawal = balance_transaction(
        -amount,
        DISPUTE_FEE,
        &charge["currency"],
        &id,
        format!(
            "Chargeback withdrawal for {}",
            charge["id"].as_str().unwrap_or_default()
        ),
        "dispute",
        created,
    );
    json!({
        "amount": amount,
        "balance_transactions": [withdrawal],
        "charge": charge["id"],
        "created": created,
        "currency": charge["currency"],
        "enhanced_eligibility_types": [],
        "evidence": evidence,
        "evidence_details": {
            "due_by": created + 7 * 24 * 60 * 60,
            "enhanced_eligibility": {},
            "has_evidence": false,
            "past_due": false,
            "submission_count": 0
        },
        "id": id,
        "is_charge_refundable": false,
        "livemode": false,
        "metadata": {},
        "object": "dispute",
        "payment_intent": charge["payment_intent"],
        "payment_method_details": {
            "card": {
                "brand": charge["payment_method_details"]["card"]["brand"],
                "case_type": "chargeback",
                "network_reason_code": "10.4"
            },
            "type": "card"
        },
        "reason": "fraudulent",
        "status": "needs_response"
    })
}

/// An Event; `request_id` and `idempotency_key` name the API request that caused it.
pub fn event(
    event_type: &str,
    object: Value,
    created: i64,
    pending_webhooks: i64,
    request_id: Option<&str>,
    idempotency_key: Option<&str>,
) -> Value {
    json!({
        "api_version": crate::DEFAULT_API_VERSION,
        "created": created,
        "data": {"object": object},
        "id": new_id("evt"),
        "livemode": false,
        "object": "event",
        "pending_webhooks": pending_webhooks,
        "request": {"id": request_id, "idempotency_key": idempotency_key},
        "type": event_type
    })
}
