//! What the ledger's unit tests share: a fresh ledger in memory, and a PaymentIntent of ours.

use serde_json::json;

use super::{Ledger, PoolSettings};
use crate::stripe::types::PaymentIntent;

/// A migrated ledger in memory, of its own.
pub async fn ledger() -> Ledger {
    let ledger = Ledger::connect(
        "sqlite::memory:",
        PoolSettings {
            max_connections: 1,
            ..PoolSettings::default()
        },
    )
    .await
    .unwrap();
    ledger.migrate().await.unwrap();
    ledger
}

/// The PaymentIntent `pi_matrix` of ours (500 USD) in `status`.
pub fn pi(status: &str) -> PaymentIntent {
    PaymentIntent::from_value(&json!({
        "id": "pi_matrix", "object": "payment_intent", "amount": 500, "currency": "usd",
        "status": status, "created": 1_700_000_000, "metadata": {"platform": "TMT"},
    }))
    .unwrap()
}
