//! Stripe's error envelope: an HTTP status and `{"error": {...}}`.

use axum::http::StatusCode;
use serde_json::{json, Value};

#[derive(Debug)]
pub struct StripeErr {
    pub status: StatusCode,
    pub error: Value,
}

pub fn invalid(message: impl Into<String>, param: Option<&str>, code: Option<&str>) -> StripeErr {
    let mut error = json!({"type": "invalid_request_error", "message": message.into()});
    if let Some(p) = param {
        error["param"] = json!(p);
    }
    if let Some(c) = code {
        error["code"] = json!(c);
        error["doc_url"] = json!(format!(
            "https://stripe.com/docs/error-codes/{}",
            c.replace('_', "-")
        ));
    }
    StripeErr {
        status: StatusCode::BAD_REQUEST,
        error,
    }
}

/// An object named in the URL that does not exist: 404.
pub fn missing(kind: &str, id: &str, param: &str) -> StripeErr {
    StripeErr {
        status: StatusCode::NOT_FOUND,
        ..missing_param(kind, id, param)
    }
}

/// An object named by a parameter that does not exist: Stripe answers 400 for those.
pub fn missing_param(kind: &str, id: &str, param: &str) -> StripeErr {
    invalid(
        format!("No such {kind}: '{id}'"),
        Some(param),
        Some("resource_missing"),
    )
}

pub fn unauthorized(message: impl Into<String>) -> StripeErr {
    StripeErr {
        status: StatusCode::UNAUTHORIZED,
        error: json!({"type": "invalid_request_error", "message": message.into()}),
    }
}

pub fn internal(message: impl Into<String>) -> StripeErr {
    StripeErr {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        error: json!({"type": "api_error", "message": message.into()}),
    }
}
