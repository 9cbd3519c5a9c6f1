//! Connect's objects: connected accounts and their bank accounts, Account Links, Transfers and
//! their reversals, the payment a transfer makes on its account, Application Fees and their
//! refunds, and the platform's application.

use serde_json::{json, Map, Value};

use super::{new_id, random_alnum};

/// The platform's Connect application, as the sandbox names it: the `application` of what the
/// platform makes on its connected accounts, and what a deauthorisation is about.
pub const APPLICATION: &str = "ca_SandboxPlatformApplication00001";

/// The platform's Connect application as an object (`account.application.deauthorized`).
pub fn application() -> Value {
    json!({"id": APPLICATION, "name": "Stripe sandbox platform", "object": "application"})
}

/// A connected account's id: `acct_` and 16 letters and digits, as Stripe's.
pub fn account_id() -> String {
    format!("acct_{}", random_alnum(16))
}

/// A list embedded in an object (`reversals` of a Transfer, `refunds` of an Application Fee):
/// the ten newest of `items` (newest first), as Stripe embeds them.
pub fn embedded_list(url: String, items: Vec<Value>) -> Value {
    let has_more = items.len() > 10;
    json!({"object": "list", "data": items.into_iter().take(10).collect::<Vec<_>>(),
           "has_more": has_more, "url": url})
}

/// What `account.requirements` (and `future_requirements`) say: the fields due, and why the
/// account is disabled while they are.
pub fn requirements(currently_due: &[String], disabled_reason: Option<&str>) -> Value {
    json!({
        "alternatives": [],
        "current_deadline": null,
        "currently_due": currently_due,
        "disabled_reason": disabled_reason,
        "errors": [],
        "eventually_due": currently_due,
        "past_due": [],
        "pending_verification": []
    })
}

/// A new connected account of `country`, with nothing submitted: its type, controller,
/// capabilities, requirements and the rest are filled in by whoever creates it.
pub fn account(id: &str, country: &str, default_currency: &str, created: i64) -> Value {
    json!({
        "business_profile": {
            "annual_revenue": null,
            "estimated_worker_count": null,
            "mcc": null,
            "minority_owned_business_designation": null,
            "name": null,
            "product_description": null,
            "support_address": null,
            "support_email": null,
            "support_phone": null,
            "support_url": null,
            "url": null
        },
        "business_type": null,
        "capabilities": {},
        "charges_enabled": false,
        "controller": {"is_controller": true, "type": "application"},
        "country": country,
        "created": created,
        "default_currency": default_currency,
        "details_submitted": false,
        "email": null,
        "external_accounts": embedded_list(format!("/v1/accounts/{id}/external_accounts"), vec![]),
        "future_requirements": requirements(&[], None),
        "id": id,
        "metadata": {},
        "object": "account",
        "payouts_enabled": false,
        "requirements": requirements(&[], None),
        "settings": {
            "branding": {"icon": null, "logo": null, "primary_color": null,
                         "secondary_color": null},
            "card_issuing": {"tos_acceptance": {"date": null, "ip": null}},
            "card_payments": {
                "decline_on": {"avs_failure": false, "cvc_failure": false},
                "statement_descriptor_prefix": null,
                "statement_descriptor_prefix_kana": null,
                "statement_descriptor_prefix_kanji": null
            },
            "dashboard": {"display_name": null, "timezone": "Etc/UTC"},
            "invoices": {"default_account_tax_ids": null, "hosted_payment_method_save": null},
            "payments": {
                "statement_descriptor": null,
                "statement_descriptor_kana": null,
                "statement_descriptor_kanji": null,
                "statement_descriptor_prefix_kana": null,
                "statement_descriptor_prefix_kanji": null
            },
            "payouts": {
                "debit_negative_balances": true,
                "schedule": {"delay_days": 2, "interval": "daily"},
                "statement_descriptor": null
            },
            "sepa_debit_payments": {}
        },
        "tos_acceptance": {"date": null, "ip": null, "user_agent": null},
        "type": "express"
    })
}

/// The account as Stripe answers its deletion.
pub fn deleted_account(id: &str) -> Value {
    json!({"deleted": true, "id": id, "object": "account"})
}

/// The test bank account a completed onboarding leaves on `account`, for its payouts.
pub fn bank_account(account: &str, country: &str, currency: &str) -> Value {
    json!({
        "account": account,
        "account_holder_name": null,
        "account_holder_type": null,
        "account_type": null,
        "available_payout_methods": ["standard"],
        "bank_name": "STRIPE TEST BANK",
        "country": country,
        "currency": currency,
        "default_for_currency": true,
        "fingerprint": random_alnum(16),
        "future_requirements": {"currently_due": [], "errors": [], "past_due": [],
                                "pending_verification": []},
        "id": new_id("ba"),
        "last4": "6789",
        "metadata": {},
        "object": "bank_account",
        "requirements": {"currently_due": [], "errors": [], "past_due": [],
                         "pending_verification": []},
        "routing_number": "110000000",
        "status": "new"
    })
}

/// A transfer from the platform's balance to a connected account.
pub struct NewTransfer<'a> {
    pub amount: i64,
    pub currency: &'a Value,
    pub destination: &'a str,
    /// The platform's charge it comes from, if any.
    pub source_transaction: Option<&'a str>,
    pub transfer_group: Value,
    pub description: Option<String>,
    pub metadata: Map<String, Value>,
}

/// The Transfer `t`, which makes the payment `destination_payment` (`py_…`) on its destination.
pub fn transfer(t: NewTransfer<'_>, destination_payment: &str, created: i64) -> Value {
    let id = new_id("tr");
    json!({
        "amount": t.amount,
        "amount_reversed": 0,
        "balance_transaction": new_id("txn"),
        "created": created,
        "currency": t.currency,
        "description": t.description,
        "destination": t.destination,
        "destination_payment": destination_payment,
        "id": id,
        "livemode": false,
        "metadata": t.metadata,
        "object": "transfer",
        "reversals": embedded_list(format!("/v1/transfers/{id}/reversals"), vec![]),
        "reversed": false,
        "source_transaction": t.source_transaction,
        "source_type": "card",
        "transfer_group": t.transfer_group
    })
}

pub struct NewReversal<'a> {
    pub transfer: &'a Value,
    pub amount: i64,
    /// The refund of the platform's charge that caused it, if one did.
    pub source_refund: Option<&'a str>,
    /// The refund it makes of the transfer's payment on the destination account.
    pub destination_payment_refund: Option<&'a str>,
    pub metadata: Map<String, Value>,
    pub created: i64,
}

pub fn transfer_reversal(r: NewReversal<'_>) -> Value {
    json!({
        "amount": r.amount,
        "balance_transaction": new_id("txn"),
        "created": r.created,
        "currency": r.transfer["currency"],
        "destination_payment_refund": r.destination_payment_refund,
        "id": new_id("trr"),
        "metadata": r.metadata,
        "object": "transfer_reversal",
        "source_refund": r.source_refund,
        "transfer": r.transfer["id"]
    })
}

/// The payment a transfer makes on its destination account: a Charge (`py_…`) whose source is
/// the transfer.
pub fn destination_payment(
    id: &str,
    amount: i64,
    currency: &Value,
    transfer: &str,
    created: i64,
) -> Value {
    json!({
        "amount": amount,
        "amount_captured": amount,
        "amount_refunded": 0,
        "application": APPLICATION,
        "application_fee": null,
        "application_fee_amount": null,
        "balance_transaction": new_id("txn"),
        "billing_details": {
            "address": {"city": null, "country": null, "line1": null, "line2": null,
                        "postal_code": null, "state": null},
            "email": null, "name": null, "phone": null, "tax_id": null
        },
        "calculated_statement_descriptor": null,
        "captured": true,
        "created": created,
        "currency": currency,
        "customer": null,
        "description": null,
        "disputed": false,
        "failure_balance_transaction": null,
        "failure_code": null,
        "failure_message": null,
        "fraud_details": {},
        "id": id,
        "livemode": false,
        "metadata": {},
        "object": "charge",
        "on_behalf_of": null,
        "outcome": null,
        "paid": true,
        "payment_intent": null,
        "payment_method": null,
        "payment_method_details": {"stripe_account": {}, "type": "stripe_account"},
        "receipt_email": null,
        "receipt_number": null,
        "receipt_url": null,
        "refunded": false,
        "review": null,
        "shipping": null,
        "source": null,
        "source_transfer": transfer,
        "statement_descriptor": null,
        "statement_descriptor_suffix": null,
        "status": "succeeded",
        "transfer_data": null,
        "transfer_group": null
    })
}

pub struct NewFee<'a> {
    pub amount: i64,
    pub currency: &'a Value,
    /// The connected account the fee is taken from.
    pub account: &'a str,
    /// The charge on that account it is taken from (a direct charge, or a destination
    /// charge's `py_…` payment).
    pub charge: &'a str,
    /// For a destination charge: the platform's charge.
    pub originating_transaction: Option<&'a str>,
    pub created: i64,
}

pub fn application_fee(f: NewFee<'_>) -> Value {
    let id = new_id("fee");
    json!({
        "account": f.account,
        "amount": f.amount,
        "amount_refunded": 0,
        "application": APPLICATION,
        "balance_transaction": new_id("txn"),
        "charge": f.charge,
        "created": f.created,
        "currency": f.currency,
        "fee_source": {"charge": f.charge, "type": "charge"},
        "id": id,
        "livemode": false,
        "object": "application_fee",
        "originating_transaction": f.originating_transaction,
        "refunded": false,
        "refunds": embedded_list(format!("/v1/application_fees/{id}/refunds"), vec![]),
    })
}

pub fn fee_refund(fee: &Value, amount: i64, metadata: Map<String, Value>, created: i64) -> Value {
    json!({
        "amount": amount,
        "balance_transaction": new_id("txn"),
        "created": created,
        "currency": fee["currency"],
        "fee": fee["id"],
        "id": new_id("fr"),
        "metadata": metadata,
        "object": "fee_refund"
    })
}
