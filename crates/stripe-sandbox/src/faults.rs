//! Failures switched on by tests through `POST /_sandbox/faults`: refunds refused with Stripe's
//! `balance_insufficient`, and Stripe's 429 for the next requests. Kept in memory only.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::error::StripeErr;

#[derive(Debug, Default)]
pub struct Faults {
    /// PaymentIntents whose refunds are refused with `balance_insufficient`.
    pub refund_balance_insufficient: BTreeSet<String>,
    pub rate_limit: Option<RateLimit>,
}

#[derive(Debug, Clone)]
pub struct RateLimit {
    /// How many more requests are refused.
    pub remaining: u64,
    /// Only requests whose path starts with this (`/v1/refunds`); all API requests when `None`.
    pub path_prefix: Option<String>,
    /// The `Stripe-Should-Retry` header to send, if any.
    pub should_retry: Option<bool>,
}

impl Faults {
    /// Whether this request is to be refused with a 429 (counting it when it is).
    pub fn rate_limited(&mut self, path: &str) -> Option<Option<bool>> {
        let limit = self.rate_limit.as_mut()?;
        if limit
            .path_prefix
            .as_deref()
            .is_some_and(|prefix| !path.starts_with(prefix))
        {
            return None;
        }
        limit.remaining -= 1;
        let should_retry = limit.should_retry;
        if limit.remaining == 0 {
            self.rate_limit = None;
        }
        Some(should_retry)
    }

    pub fn describe(&self) -> Value {
        json!({
            "object": "sandbox.faults",
            "refund_balance_insufficient": self.refund_balance_insufficient,
            "rate_limit": self.rate_limit.as_ref().map(|r| json!({
                "remaining": r.remaining,
                "path_prefix": r.path_prefix,
                "should_retry": r.should_retry,
            })),
        })
    }
}

/// Stripe's answer to too many requests.
pub fn rate_limit_error() -> StripeErr {
    StripeErr {
        status: StatusCode::TOO_MANY_REQUESTS,
        error: json!({
            "type": "invalid_request_error",
            "code": "rate_limit",
            "doc_url": "https://stripe.com/docs/error-codes/rate-limit",
            "message": "Request rate limit exceeded. Learn more about rate limits here \
                        https://stripe.com/docs/rate-limits.",
        }),
    }
}

/// Stripe's refusal of a refund the account's balance cannot cover.
pub fn balance_insufficient() -> StripeErr {
    crate::error::invalid(
        "Insufficient funds in your Stripe balance to refund this amount.",
        None,
        Some("balance_insufficient"),
    )
}
