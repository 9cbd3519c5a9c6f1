//! Stripe's error envelope: an HTTP status and `{"error": {...}}`, and the errors Stripe gives
//! for parameters, worded as Stripe words them.

use axum::http::StatusCode;
use serde_json::{json, Value};

#[derive(Debug)]
pub struct StripeErr {
    pub status: StatusCode,
    pub error: Value,
}

impl StripeErr {
    /// The response body: `{"error": {...}}`.
    pub fn body(self) -> Value {
        json!({"error": self.error})
    }
}

/// Stripe's page about an error code.
pub fn doc_url(code: &str) -> String {
    format!(
        "https://stripe.com/docs/error-codes/{}",
        code.replace('_', "-")
    )
}

pub fn invalid(message: impl Into<String>, param: Option<&str>, code: Option<&str>) -> StripeErr {
    let mut error = json!({"type": "invalid_request_error", "message": message.into()});
    if let Some(p) = param {
        error["param"] = json!(p);
    }
    if let Some(c) = code {
        error["code"] = json!(c);
        error["doc_url"] = json!(doc_url(c));
    }
    StripeErr {
        status: StatusCode::BAD_REQUEST,
        error,
    }
}

/// A parameter the endpoint does not take.
pub fn unknown_parameter(param: &str) -> StripeErr {
    invalid(
        format!("Received unknown parameter: {param}"),
        Some(param),
        Some("parameter_unknown"),
    )
}

/// A required parameter that was not given.
pub fn missing_required(param: &str) -> StripeErr {
    invalid(
        format!("Missing required param: {param}."),
        Some(param),
        Some("parameter_missing"),
    )
}

/// A number parameter below 1.
pub fn below_one(param: &str) -> StripeErr {
    invalid(
        "This value must be greater than or equal to 1.",
        Some(param),
        None,
    )
}

/// A parameter that is not of the `kind` the endpoint takes (`Invalid {kind}`, then `: {shown}`
/// when given), with the code `parameter_invalid_{kind}`.
fn not_a(kind: &str, shown: Option<&str>, param: &str) -> StripeErr {
    let message = match shown {
        Some(shown) => format!("Invalid {kind}: {shown}"),
        None => format!("Invalid {kind}"),
    };
    invalid(
        message,
        Some(param),
        Some(&format!("parameter_invalid_{kind}")),
    )
}

/// Not a string: Stripe names the parameter.
pub fn invalid_string(param: &str) -> StripeErr {
    not_a("string", Some(param), param)
}

/// Not an integer: Stripe shows what was given.
pub fn invalid_integer(given: &str, param: &str) -> StripeErr {
    not_a("integer", Some(given), param)
}

/// Neither `true` nor `false`: Stripe shows what was given.
pub fn invalid_boolean(given: &str, param: &str) -> StripeErr {
    not_a("boolean", Some(given), param)
}

pub fn invalid_hash(param: &str) -> StripeErr {
    not_a("hash", None, param)
}

pub fn invalid_array(param: &str) -> StripeErr {
    not_a("array", None, param)
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

/// Stripe's answer to a request for a connected account the platform does not control: one it
/// never had, one that was deauthorised or deleted (`Stripe-Account`, or the account's own
/// endpoints). `key` is the API key, shown masked as Stripe shows it, when at hand.
pub fn no_access(account: &str, key: Option<&str>) -> StripeErr {
    let key = key
        .map(|k| {
            let chars: Vec<char> = k.chars().collect();
            let tail: String = chars[chars.len().saturating_sub(4)..].iter().collect();
            let head = if k.starts_with("rk_test_") {
                "rk_test_"
            } else {
                "sk_test_"
            };
            format!(" '{head}****{tail}'")
        })
        .unwrap_or_default();
    StripeErr {
        status: StatusCode::FORBIDDEN,
        error: json!({
            "type": "invalid_request_error",
            "code": "account_invalid",
            "doc_url": doc_url("account_invalid"),
            "message": format!(
                "The provided key{key} does not have access to account '{account}' (or that account \
                 does not exist). Application access may have been revoked."
            ),
        }),
    }
}

/// What only the platform may do, refused to a request on behalf of a connected account.
pub fn platform_only(what: &str) -> StripeErr {
    invalid(
        format!("{what} is for the platform: send this request without the Stripe-Account header."),
        None,
        None,
    )
}
