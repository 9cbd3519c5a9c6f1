//! `ApiError`: the one place that decides status, code and Spanish message for every failure.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use crate::ledger::LedgerError;
use crate::stripe::signature::SignatureError;
use crate::stripe::StripeError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("body is not {{\"data\": {{...}}}}")]
    InvalidBody,
    #[error("body over the size limit")]
    BodyTooLarge,
    /// Carries the `Allow` header's value.
    #[error("method not allowed")]
    MethodNotAllowed(&'static str),
    #[error("no such route")]
    NotFound,
    #[error("amount invalid")]
    AmountInvalid,
    #[error("currency not supported: {0}")]
    CurrencyInvalid(String),
    #[error("amount below the minimum for {currency}")]
    AmountTooSmall { currency: String, minimum: String },
    #[error("amount above the maximum")]
    AmountTooLarge,
    #[error("description invalid")]
    DescriptionInvalid,
    #[error("metadata invalid: {0}")]
    MetadataInvalid(String),
    #[error("Idempotency-Key header invalid")]
    IdempotencyKeyInvalid,
    #[error("Idempotency-Key reused with other data")]
    IdempotencyKeyReused,
    #[error("Idempotency-Key in use by a request in flight")]
    IdempotencyKeyInProgress,
    #[error("missing or wrong API token")]
    Unauthorized,
    #[error("too many requests; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("payment_intent_id missing")]
    PaymentIntentIdRequired,
    #[error("payment_intent_id invalid")]
    PaymentIntentIdInvalid,
    #[error("payment not completed: {0}")]
    PaymentNotCompleted(String),
    #[error(transparent)]
    Stripe(Box<StripeError>),
    #[error("webhook signature rejected: {0}")]
    Signature(#[from] SignatureError),
    #[error("webhook body is not a Stripe event")]
    EventInvalid,
    #[error("webhook event could not be recorded: {0}")]
    WebhookNotRecorded(#[source] LedgerError),
    #[error("ledger unavailable: {0}")]
    Ledger(#[from] LedgerError),
    /// The body did not arrive within `BODY_TIMEOUT_SECS`; the connection is closed.
    #[error("request body not received in time")]
    RequestTimeout,
    /// Bodies being received already hold `MAX_INFLIGHT_BODY_BYTES`.
    #[error("request bodies in flight over their memory budget")]
    Overloaded { retry_after_secs: u64 },
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        use ApiError::*;
        match self {
            InvalidBody
            | AmountInvalid
            | CurrencyInvalid(_)
            | AmountTooSmall { .. }
            | AmountTooLarge
            | DescriptionInvalid
            | MetadataInvalid(_)
            | PaymentIntentIdRequired
            | PaymentIntentIdInvalid
            | PaymentNotCompleted(_)
            | Signature(_)
            | EventInvalid
            | IdempotencyKeyInvalid => StatusCode::BAD_REQUEST,
            IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Unauthorized => StatusCode::UNAUTHORIZED,
            RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            IdempotencyKeyInProgress => StatusCode::CONFLICT,
            BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            NotFound => StatusCode::NOT_FOUND,
            Stripe(_) | WebhookNotRecorded(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Ledger(_) | Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
            RequestTimeout => StatusCode::REQUEST_TIMEOUT,
        }
    }

    pub fn code(&self) -> &'static str {
        use ApiError::*;
        match self {
            InvalidBody => "invalid_body",
            BodyTooLarge => "body_too_large",
            MethodNotAllowed(_) => "method_not_allowed",
            NotFound => "not_found",
            AmountInvalid => "amount_invalid",
            CurrencyInvalid(_) => "currency_invalid",
            AmountTooSmall { .. } => "amount_too_small",
            AmountTooLarge => "amount_too_large",
            DescriptionInvalid => "description_invalid",
            MetadataInvalid(_) => "metadata_invalid",
            IdempotencyKeyInvalid => "idempotency_key_invalid",
            IdempotencyKeyReused => "idempotency_key_reused",
            IdempotencyKeyInProgress => "idempotency_key_in_progress",
            Unauthorized => "unauthorized",
            RateLimited { .. } => "rate_limited",
            PaymentIntentIdRequired => "payment_intent_id_required",
            PaymentIntentIdInvalid => "payment_intent_id_invalid",
            PaymentNotCompleted(_) => "payment_not_completed",
            Stripe(e) if matches!(**e, StripeError::Api { .. }) => "stripe_error",
            Stripe(_) => "stripe_unreachable",
            Signature(SignatureError::MissingHeader) => "signature_missing",
            Signature(SignatureError::MalformedHeader) => "signature_malformed",
            Signature(SignatureError::NoV1) => "signature_no_v1",
            Signature(SignatureError::NoMatch) => "signature_mismatch",
            Signature(SignatureError::OutsideTolerance) => "signature_expired",
            EventInvalid => "event_invalid",
            WebhookNotRecorded(_) => "webhook_not_recorded",
            Ledger(_) => "database_unavailable",
            RequestTimeout => "request_timeout",
            Overloaded { .. } => "overloaded",
        }
    }

    pub fn message(&self) -> String {
        use ApiError::*;
        match self {
            InvalidBody => "El cuerpo debe ser JSON con la forma {\"data\": {...}}".into(),
            BodyTooLarge => "El cuerpo excede el tamaño máximo permitido".into(),
            MethodNotAllowed(_) => "Método no permitido".into(),
            NotFound => "Ruta no encontrada".into(),
            AmountInvalid => "El monto es requerido y debe ser mayor a 0".into(),
            CurrencyInvalid(c) => format!("Moneda no soportada: {c}"),
            AmountTooSmall { currency, minimum } => {
                format!("El monto mínimo para {currency} es {minimum}")
            }
            AmountTooLarge => "El monto excede el máximo permitido".into(),
            DescriptionInvalid => "Descripción inválida".into(),
            MetadataInvalid(detail) => format!("Metadata inválida: {detail}"),
            IdempotencyKeyInvalid => {
                "Idempotency-Key inválida: de 1 a 255 caracteres ASCII imprimibles".into()
            }
            IdempotencyKeyReused => "La Idempotency-Key ya fue usada con otros parámetros".into(),
            IdempotencyKeyInProgress => {
                "Una solicitud con la misma Idempotency-Key está en curso".into()
            }
            Unauthorized => "No autorizado".into(),
            RateLimited { .. } => "Demasiadas solicitudes".into(),
            PaymentIntentIdRequired => "ID de Payment Intent es requerido".into(),
            PaymentIntentIdInvalid => "ID de Payment Intent inválido".into(),
            PaymentNotCompleted(status) => format!("El pago no fue completado. Estado: {status}"),
            Stripe(e) => match e.as_ref() {
                StripeError::Api { message, .. } => message.clone(),
                StripeError::Unreachable(_) => "No se pudo contactar con Stripe".into(),
            },
            Signature(SignatureError::MissingHeader) => "Falta la cabecera Stripe-Signature".into(),
            Signature(SignatureError::MalformedHeader) => {
                "Cabecera Stripe-Signature ilegible".into()
            }
            Signature(SignatureError::NoV1) => {
                "La cabecera Stripe-Signature no tiene firma v1".into()
            }
            Signature(SignatureError::NoMatch) => "Ninguna firma coincide".into(),
            Signature(SignatureError::OutsideTolerance) => {
                "La marca de tiempo de la firma está fuera de la tolerancia".into()
            }
            EventInvalid => "El cuerpo no es un evento de Stripe".into(),
            WebhookNotRecorded(_) => "No se pudo registrar el evento".into(),
            Ledger(_) => "Servicio no disponible temporalmente".into(),
            RequestTimeout => "La solicitud tardó demasiado".into(),
            Overloaded { .. } => "Servicio sobrecargado; intente de nuevo en unos segundos".into(),
        }
    }

    fn stripe_details(&self) -> Option<StripeDetails> {
        let ApiError::Stripe(error) = self else {
            return None;
        };
        let StripeError::Api {
            error_type,
            code,
            decline_code,
            request_id,
            ..
        } = error.as_ref()
        else {
            return None;
        };
        Some(StripeDetails {
            error_type: error_type.clone(),
            code: code.clone(),
            decline_code: decline_code.clone(),
            request_id: request_id.clone(),
        })
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            status: self.status().as_u16(),
            error: self.message(),
            code: ErrorCode(self.code()),
            stripe: self.stripe_details(),
        }
    }
}

/// Every `code` the service answers with (the OpenAPI document lists them; a test checks that
/// each error produces one of these).
pub const ERROR_CODES: &[&str] = &[
    "invalid_body",
    "body_too_large",
    "method_not_allowed",
    "not_found",
    "amount_invalid",
    "currency_invalid",
    "amount_too_small",
    "amount_too_large",
    "description_invalid",
    "metadata_invalid",
    "idempotency_key_invalid",
    "idempotency_key_reused",
    "idempotency_key_in_progress",
    "unauthorized",
    "rate_limited",
    "payment_intent_id_required",
    "payment_intent_id_invalid",
    "payment_not_completed",
    "stripe_error",
    "stripe_unreachable",
    "signature_missing",
    "signature_malformed",
    "signature_no_v1",
    "signature_mismatch",
    "signature_expired",
    "event_invalid",
    "webhook_not_recorded",
    "database_unavailable",
    "request_timeout",
    "overloaded",
    "not_ready",
];

/// The error envelope of SPEC §2.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The HTTP status, repeated.
    pub status: u16,
    /// What went wrong, in Spanish, for people; Stripe's own message for Stripe errors.
    pub error: String,
    pub code: ErrorCode,
    /// Present when the error came from Stripe: whatever Stripe gave.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stripe: Option<StripeDetails>,
}

/// A stable, English, machine-readable error code.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(transparent)]
pub struct ErrorCode(pub &'static str);

impl PartialSchema for ErrorCode {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::String))
            .enum_values(Some(ERROR_CODES.iter().copied()))
            .description(Some("Stable machine-readable code"))
            .into()
    }
}

impl ToSchema for ErrorCode {}

#[derive(Debug, Serialize, ToSchema)]
pub struct StripeDetails {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decline_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl From<StripeError> for ApiError {
    fn from(e: StripeError) -> Self {
        ApiError::Stripe(Box::new(e))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        // An overloaded refusal is the service protecting itself, not a failure; under a flood
        // of them an error line each would bury the log (the access line records them).
        if status.is_server_error() && !matches!(self, ApiError::Overloaded { .. }) {
            // The cause chain goes to the log only; the caller sees the generic message.
            tracing::error!(code = self.code(), error = %DisplayChain(&self), "request failed");
        }
        let mut response = (status, axum::Json(self.body())).into_response();
        let headers = response.headers_mut();
        match self {
            ApiError::MethodNotAllowed(allow) => {
                headers.insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            ApiError::Unauthorized => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::RateLimited { retry_after_secs }
            | ApiError::Overloaded { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            }
            // The rest of the body may still be on its way: the connection cannot carry
            // another request.
            ApiError::RequestTimeout => {
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        response
    }
}

struct DisplayChain<'a>(&'a dyn std::error::Error);

impl std::fmt::Display for DisplayChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stripe::signature::SignatureError;

    /// Every error the service can produce carries a code the OpenAPI document lists.
    #[test]
    fn every_code_is_documented() {
        let stripe = StripeError::Api {
            status: 402,
            error_type: None,
            code: None,
            decline_code: None,
            message: "m".into(),
            request_id: None,
        };
        let ledger = || LedgerError::Url("x".into());
        let all = vec![
            ApiError::InvalidBody,
            ApiError::BodyTooLarge,
            ApiError::MethodNotAllowed("POST"),
            ApiError::NotFound,
            ApiError::AmountInvalid,
            ApiError::CurrencyInvalid("x".into()),
            ApiError::AmountTooSmall {
                currency: "USD".into(),
                minimum: "0.50".into(),
            },
            ApiError::AmountTooLarge,
            ApiError::DescriptionInvalid,
            ApiError::MetadataInvalid("x".into()),
            ApiError::IdempotencyKeyInvalid,
            ApiError::IdempotencyKeyReused,
            ApiError::IdempotencyKeyInProgress,
            ApiError::Unauthorized,
            ApiError::RateLimited {
                retry_after_secs: 1,
            },
            ApiError::PaymentIntentIdRequired,
            ApiError::PaymentIntentIdInvalid,
            ApiError::PaymentNotCompleted("processing".into()),
            ApiError::from(stripe),
            ApiError::from(StripeError::Unreachable("timeout".into())),
            ApiError::Signature(SignatureError::MissingHeader),
            ApiError::Signature(SignatureError::MalformedHeader),
            ApiError::Signature(SignatureError::NoV1),
            ApiError::Signature(SignatureError::NoMatch),
            ApiError::Signature(SignatureError::OutsideTolerance),
            ApiError::EventInvalid,
            ApiError::WebhookNotRecorded(ledger()),
            ApiError::Ledger(ledger()),
            ApiError::RequestTimeout,
            ApiError::Overloaded {
                retry_after_secs: 5,
            },
        ];
        for e in &all {
            assert!(
                ERROR_CODES.contains(&e.code()),
                "{} is not in ERROR_CODES",
                e.code()
            );
            assert!(!e.message().is_empty());
        }
        // And every listed code (but readyz's own) is produced by some error.
        for code in ERROR_CODES.iter().filter(|c| **c != "not_ready") {
            assert!(
                all.iter().any(|e| e.code() == *code),
                "{code} is never produced"
            );
        }
    }
}
