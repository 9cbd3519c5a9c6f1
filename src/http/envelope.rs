//! The request envelope `{"data": {...}}` and the success envelope
//! `{"message": "Procesado", "status": 200, "data": {...}}`.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::error::ApiError;

/// Bodies of the three client endpoints are at most this big (SPEC §2).
pub const CLIENT_BODY_LIMIT: usize = 64 * 1024;

/// A request: `{"data": {...}}`. Anything else (not JSON, not an object, no object under `data`)
/// is refused with `invalid_body`, and an oversized body with `body_too_large`. Handlers receive
/// the `data` object as sent; the OpenAPI document shows it with the use case's input type.
#[derive(ToSchema)]
pub struct Envelope<T = Map<String, Value>> {
    pub data: T,
}

impl<S: Send + Sync> FromRequest<S> for Envelope {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::BodyTooLarge
            } else {
                ApiError::InvalidBody
            }
        })?;
        parse_envelope(&bytes).map(|data| Envelope { data })
    }
}

pub fn parse_envelope(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(mut top)) => match top.remove("data") {
            Some(Value::Object(data)) => Ok(data),
            _ => Err(ApiError::InvalidBody),
        },
        _ => Err(ApiError::InvalidBody),
    }
}

/// A 200 answer in the success envelope: `{"message": "Procesado", "status": 200, "data"}`.
#[derive(Serialize, ToSchema)]
pub struct Success<T> {
    #[schema(example = "Procesado")]
    message: &'static str,
    #[schema(example = 200)]
    status: u16,
    data: T,
}

impl<T> Success<T> {
    pub fn new(data: T) -> Self {
        Success {
            message: "Procesado",
            status: 200,
            data,
        }
    }
}

impl<T: Serialize> IntoResponse for Success<T> {
    fn into_response(self) -> Response {
        axum::Json(self).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn envelopes() {
        assert!(parse_envelope(br#"{"data": {}}"#).is_ok());
        assert_eq!(
            parse_envelope(br#"{"data": {"a": 1}, "extra": true}"#).unwrap()["a"],
            json!(1)
        );
        for bad in [
            &b""[..],
            b"null",
            b"[]",
            b"\"data\"",
            b"{}",
            b"{\"data\": null}",
            b"{\"data\": []}",
            b"{\"data\": \"x\"}",
            b"{\"data\": {}",
            b"\xff\xfe",
        ] {
            assert_eq!(parse_envelope(bad).unwrap_err().code(), "invalid_body");
        }
    }
}
