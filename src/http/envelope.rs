//! The request envelope `{"data": {...}}` and the success envelope
//! `{"message": "Procesado", "status": 200, "data": {...}}`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::error::ApiError;

/// Bodies of the three client endpoints are at most this big (docs/contract.md §2).
pub const CLIENT_BODY_LIMIT: usize = 64 * 1024;

/// A request: `{"data": {...}}`. Anything else (not JSON, not an object, no object under `data`)
/// is refused with `invalid_body`, and an oversized body with `body_too_large`. The Content-Type
/// was checked before (`is_json`, applied to every client route by the router). Handlers receive
/// the `data` object as sent; the OpenAPI document shows it with the use case's input type.
#[derive(ToSchema)]
pub struct Envelope<T = Map<String, Value>> {
    pub data: T,
}

impl<S: Send + Sync> FromRequest<S> for Envelope {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|rejection| unreadable_body(rejection, ApiError::InvalidBody))?;
        parse_envelope(&bytes).map(|data| Envelope { data })
    }
}

/// A body that could not be read: `body_too_large` past the route's limit (a declared
/// Content-Length or a chunked body that grows past it), else `otherwise`.
pub fn unreadable_body(rejection: BytesRejection, otherwise: ApiError) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::BodyTooLarge
    } else {
        otherwise
    }
}

/// Whether the request declares exactly one Content-Type and it is `application/json`
/// (compared case-insensitively, parameters such as `charset=utf-8` allowed).
pub fn is_json(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(header::CONTENT_TYPE).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return false;
    };
    value
        .to_str()
        .ok()
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
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

    #[test]
    fn only_application_json_is_json() {
        let with = |values: &[&str]| {
            let mut h = HeaderMap::new();
            for v in values {
                h.append(header::CONTENT_TYPE, v.parse().unwrap());
            }
            is_json(&h)
        };
        for good in [
            "application/json",
            "application/json; charset=utf-8",
            "application/json;charset=UTF-8",
            "Application/JSON",
            " application/json ; foo=bar",
        ] {
            assert!(with(&[good]), "{good}");
        }
        for bad in [
            "text/plain",
            "text/plain; charset=utf-8",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "text/json",
            "application/jsonp",
            "application/merge-patch+json",
            "application/json-seq",
            "",
        ] {
            assert!(!with(&[bad]), "{bad:?}");
        }
        assert!(!with(&[]), "a missing Content-Type is not JSON");
        assert!(
            !with(&["application/json", "text/plain"]),
            "two Content-Types are ambiguous"
        );
    }
}
