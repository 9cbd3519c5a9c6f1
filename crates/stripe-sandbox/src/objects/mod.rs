//! Stripe objects as the sandbox returns them: every field of Stripe's published examples, with
//! values that tell a consistent story (checked against Stripe's own fixtures and OpenAPI
//! schemas by the crate's tests). Payments' objects are here; each further area of Stripe's
//! API has a module of its own below.

pub mod balance;
pub mod connect;

use rand::distributions::Alphanumeric;
use rand::Rng;
use serde_json::{json, Map, Value};

use crate::cards::{CardResult, MethodType, TestCard};

/// The Stripe API version the sandbox answers with when a client does not send one, and that
/// its events are written in.
pub const DEFAULT_API_VERSION: &str = "2025-03-31.basil";

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
        CardResult::Declines(decline) => (
            "failed",
            false,
            Value::from(decline.code),
            Value::from(decline.message),
            json!({"advice_code": "try_again_later", "network_advice_code": null,
                   "network_decline_code": null, "network_status": "declined_by_network",
                   "reason": decline.decline_code, "risk_level": "normal", "risk_score": 20,
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
    // What a Connect charge says of where its money goes; its Transfer and Application Fee
    // are made when it is captured.
    let transfer_data = match pi["transfer_data"].as_object() {
        Some(data) => json!({"amount": data.get("amount"), "destination": data.get("destination")}),
        None => Value::Null,
    };
    let mut charge = json!({
        "amount": amount,
        "amount_captured": if paid { amount } else { 0 },
        "amount_refunded": 0,
        "application": pi["application"],
        "application_fee": null,
        "application_fee_amount": pi["application_fee_amount"],
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
        "on_behalf_of": pi["on_behalf_of"],
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
        "transfer_data": transfer_data,
        "transfer_group": pi["transfer_group"]
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

/// A dispute of `charge` (reason `fraudulent`) opened at `created`, with its evidence due a week
/// later; the withdrawal of the disputed amount (with the dispute fee) is added to its
/// `balance_transactions` by whoever opens it.
pub fn dispute(charge: &Value, created: i64) -> Value {
    let id = new_id("dp");
    let amount = charge["amount_captured"].as_i64().unwrap_or(0);
    let mut evidence: Map<String, Value> = EVIDENCE_FIELDS
        .iter()
        .map(|f| (f.to_string(), Value::Null))
        .collect();
    evidence.insert("enhanced_evidence".into(), json!({}));
    json!({
        "amount": amount,
        "balance_transactions": [],
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

/// An Event; `request_id` and `idempotency_key` name the API request that caused it. (An event
/// of a connected account also names it in `account`: see `Ctx::emit`.)
pub fn event(
    event_type: &str,
    object: Value,
    created: i64,
    pending_webhooks: i64,
    request_id: Option<&str>,
    idempotency_key: Option<&str>,
) -> Value {
    json!({
        "api_version": DEFAULT_API_VERSION,
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
