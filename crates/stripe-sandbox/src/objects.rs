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

/// What a test card does when charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardResult {
    Succeeds,
    Declines {
        code: &'static str,
        decline_code: &'static str,
        message: &'static str,
    },
    RequiresAuthentication,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestCard {
    pub brand: &'static str,
    pub last4: &'static str,
    pub funding: &'static str,
    pub result: CardResult,
}

const GENERIC_DECLINE: CardResult = CardResult::Declines {
    code: "card_declined",
    decline_code: "generic_decline",
    message: "Your card was declined.",
};
const INSUFFICIENT_FUNDS: CardResult = CardResult::Declines {
    code: "card_declined",
    decline_code: "insufficient_funds",
    message: "Your card has insufficient funds.",
};
const EXPIRED: CardResult = CardResult::Declines {
    code: "expired_card",
    decline_code: "expired_card",
    message: "Your card has expired.",
};

/// Stripe's documented test PaymentMethods and what they do.
pub fn test_card(alias: &str) -> Option<TestCard> {
    let card = |brand, last4, result| TestCard {
        brand,
        last4,
        funding: "credit",
        result,
    };
    Some(match alias {
        "pm_card_visa" => card("visa", "4242", CardResult::Succeeds),
        "pm_card_visa_debit" => TestCard {
            funding: "debit",
            ..card("visa", "5556", CardResult::Succeeds)
        },
        "pm_card_mastercard" => card("mastercard", "4444", CardResult::Succeeds),
        "pm_card_amex" => card("amex", "8431", CardResult::Succeeds),
        "pm_card_visa_chargeDeclined" | "pm_card_chargeDeclined" => {
            card("visa", "0002", GENERIC_DECLINE)
        }
        "pm_card_visa_chargeDeclinedInsufficientFunds"
        | "pm_card_chargeDeclinedInsufficientFunds" => card("visa", "9995", INSUFFICIENT_FUNDS),
        "pm_card_chargeDeclinedExpiredCard" | "pm_card_visa_chargeDeclinedExpiredCard" => {
            card("visa", "0069", EXPIRED)
        }
        "pm_card_authenticationRequired" | "pm_card_threeDSecureRequired" => {
            card("visa", "3184", CardResult::RequiresAuthentication)
        }
        _ => return None,
    })
}

pub fn payment_method(id: &str, card: &TestCard, created: i64) -> Value {
    json!({
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
    })
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
    let (status, paid, failure_code, failure_message, outcome) = match card.result {
        CardResult::Declines {
            code,
            decline_code,
            message,
        } => (
            "failed",
            false,
            Value::from(code),
            Value::from(message),
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
    json!({
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
        "receipt_url": null,
        "refunded": false,
        "refunds": {"data": [], "has_more": false, "object": "list",
                    "url": format!("/v1/charges/{id}/refunds")},
        "review": null,
        "shipping": null,
        "source": null,
        "source_transfer": null,
        "statement_descriptor": null,
        "statement_descriptor_suffix": null,
        "status": status,
        "transfer_data": null,
        "transfer_group": null
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
