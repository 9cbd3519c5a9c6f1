//! Delayed payment methods (docs/contract.md, "Cash and bank transfers") through the service's
//! HTTP surface: the binary in sandbox mode, its embedded Stripe answering at `/v1` on the same
//! port, the platform's fulfilment endpoint in the test. The buyer's side (confirming with a
//! voucher, a debit, paying at the store, a bank transfer arriving) is played with the
//! sandbox's API and controls, as Stripe.js and Stripe's test helpers would.

mod cluster;
mod connect;
mod debits;
mod transfers;
mod vouchers;

use serde_json::{json, Value};

use crate::connect::{Market, StripeSide, CREATE, REFUND};
use crate::helpers::*;

pub const GET: &str = "/stripe_get_payment_intent";

/// The service with a fulfilment endpoint (Connect off), and what a test needs to play the
/// buyer; the rest is [`Market`]'s.
pub struct Shop {
    pub market: Market,
    pub platform: Receiver,
}

impl std::ops::Deref for Shop {
    type Target = Market;
    fn deref(&self) -> &Market {
        &self.market
    }
}

impl Shop {
    pub async fn start(envs: &[(&str, &str)]) -> Shop {
        let platform = Receiver::start(0).await;
        let mut all = platform.env().to_vec();
        all.extend_from_slice(envs);
        Shop {
            market: Market::open(&all).await,
            platform,
        }
    }

    /// The payment as `stripe_get_payment_intent` answers it.
    pub async fn get(&self, pi: &str) -> Value {
        let (status, _, body) = self.call(GET, json!({"payment_intent_id": pi})).await;
        assert_eq!(status, 200, "{body}");
        body["data"].clone()
    }

    /// The buyer confirms `pi` with `form` (a PaymentMethod's data), as Stripe.js would.
    pub async fn confirm(&self, pi: &str, form: &[(&str, &str)]) -> Value {
        let path = format!("/v1/payment_intents/{pi}/confirm");
        let (status, _, body) = self.stripe(reqwest::Method::POST, &path, form, None).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// One of the sandbox's OXXO controls (`pay_voucher`, `expire_voucher`).
    pub async fn voucher(&self, pi: &str, what: &str) -> Answer {
        let path = format!("/_sandbox/payment_intents/{pi}/{what}");
        self.stripe(reqwest::Method::POST, &path, &[], None).await
    }

    /// A bank transfer of `amount` (minor units) reaches `customer`'s cash balance.
    pub async fn fund(&self, customer: &str, amount: i64, currency: &str) -> Value {
        let path = format!("/v1/test_helpers/customers/{customer}/fund_cash_balance");
        let amount = amount.to_string();
        let form = [("amount", amount.as_str()), ("currency", currency)];
        let (status, _, body) = self.stripe(reqwest::Method::POST, &path, &form, None).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// The types of the notifications the platform acknowledged for `pi`, in order.
    pub fn told(&self, pi: &str) -> Vec<String> {
        told(&self.platform, pi)
    }

    /// Waits until the platform was told `kinds` about `pi`, in that order and nothing else
    /// (each once).
    pub async fn told_exactly(&self, pi: &str, kinds: &[&str]) {
        told_exactly(&self.platform, pi, kinds).await
    }

    pub async fn refund(&self, pi: &str) -> Answer {
        self.call(REFUND, json!({"payment_intent_id": pi})).await
    }
}

/// The types of the notifications `platform` acknowledged for `pi`, in order (one per id).
pub fn told(platform: &Receiver, pi: &str) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    platform
        .acknowledged
        .lock()
        .unwrap()
        .iter()
        .filter(|n| n["data"]["paymentIntentId"] == pi)
        .filter(|n| seen.insert(n["id"].as_str().unwrap_or_default().to_string()))
        .map(|n| n["type"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Waits until `platform` was told `kinds` about `pi`, then checks nothing else came.
pub async fn told_exactly(platform: &Receiver, pi: &str, kinds: &[&str]) {
    eventually(&format!("{pi}: {kinds:?}"), PATIENCE * 2, || async {
        let told = told(platform, pi);
        match told.len() >= kinds.len() {
            true => Some(told),
            false => None,
        }
    })
    .await;
    assert_eq!(told(platform, pi), kinds, "{pi}");
}

/// The first notification of `kind` about `pi`.
pub fn notification(platform: &Receiver, pi: &str, kind: &str) -> Value {
    platform.of(pi, kind).into_iter().next().unwrap()
}

/// An OXXO voucher's PaymentMethod data, as Stripe.js sends it.
pub const OXXO: &[(&str, &str)] = &[
    ("payment_method_data[type]", "oxxo"),
    ("payment_method_data[billing_details][name]", "Ana López"),
    (
        "payment_method_data[billing_details][email]",
        "ana@example.mx",
    ),
];

/// A SEPA Direct Debit from `iban`, with an offline mandate.
pub fn sepa(iban: &str) -> Vec<(&str, &str)> {
    vec![
        ("payment_method_data[type]", "sepa_debit"),
        ("payment_method_data[sepa_debit][iban]", iban),
        ("payment_method_data[billing_details][name]", "Jenny Rosen"),
        (
            "payment_method_data[billing_details][email]",
            "jenny@example.com",
        ),
        ("mandate_data[customer_acceptance][type]", "offline"),
    ]
}

pub fn id_of(created: &Value) -> String {
    created["paymentIntentId"].as_str().unwrap().to_string()
}

/// The payments' checks before Stripe: each method must fit the currency and the amount, none
/// of the delayed ones can be captured manually, a bank transfer needs the buyer's e-mail; and
/// nothing reaches Stripe when they do not.
#[tokio::test]
async fn methods_that_do_not_fit_are_refused_before_stripe() {
    let shop = Shop::start(&[]).await;
    for (data, expected) in [
        (
            json!({"amount": 500, "currency": "eur", "paymentMethodTypes": ["oxxo"]}),
            "payment_method_invalid",
        ),
        (
            json!({"amount": 10001, "currency": "mxn", "paymentMethodTypes": ["oxxo"]}),
            "payment_method_invalid",
        ),
        (
            json!({"amount": 500, "currency": "usd", "paymentMethodTypes": ["customer_balance"], "customerEmail": "a@b.mx"}),
            "payment_method_invalid",
        ),
        (
            json!({"amount": 500, "currency": "mxn", "paymentMethodTypes": ["sepa_debit"]}),
            "payment_method_invalid",
        ),
        (
            json!({"amount": 500, "currency": "mxn", "paymentMethodTypes": ["wire"]}),
            "payment_method_invalid",
        ),
        (
            json!({"amount": 500, "currency": "mxn", "paymentMethodTypes": ["card", "oxxo"], "captureMethod": "manual"}),
            "capture_method_invalid",
        ),
        (
            json!({"amount": 500, "currency": "mxn", "paymentMethodTypes": ["customer_balance"]}),
            "customer_email_required",
        ),
        (
            json!({"amount": 500, "currency": "mxn", "paymentMethodTypes": ["customer_balance"], "customerEmail": "nope"}),
            "email_invalid",
        ),
    ] {
        let (status, _, body) = shop.call(CREATE, data.clone()).await;
        assert_eq!(code(status, &body), (400, expected), "{data}");
    }
    let listed = shop.at_stripe("/v1/payment_intents", None).await;
    assert_eq!(listed["data"], json!([]), "nothing reached Stripe");
    let customers = shop.at_stripe("/v1/customers", None).await;
    assert_eq!(customers["data"], json!([]));
    // A card may still be captured manually.
    let data = json!({"amount": 500, "currency": "mxn", "paymentMethodTypes": ["card"], "captureMethod": "manual"});
    let created = shop.create(data).await;
    let pi = shop
        .at_stripe(&format!("/v1/payment_intents/{}", id_of(&created)), None)
        .await;
    assert_eq!(pi["payment_method_types"], json!(["card"]));
    assert_eq!(pi["capture_method"], "manual");
}
