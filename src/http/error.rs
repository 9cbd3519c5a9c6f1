//! `ApiError`: the one place that decides status, code and Spanish message for every failure.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

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
            IdempotencyKeyInProgress => StatusCode::CONFLICT,
            BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            NotFound => StatusCode::NOT_FOUND,
            Stripe(_) | WebhookNotRecorded(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Ledger(_) => StatusCode::SERVICE_UNAVAILABLE,
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
        }
    }

    fn stripe_details(&self) -> Option<Value> {
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
        let mut details = Map::new();
        for (key, value) in [
            ("type", error_type),
            ("code", code),
            ("decline_code", decline_code),
            ("request_id", request_id),
        ] {
            if let Some(v) = value {
                details.insert(key.into(), Value::String(v.clone()));
            }
        }
        Some(Value::Object(details))
    }
}

impl From<StripeError> for ApiError {
    fn from(e: StripeError) -> Self {
        ApiError::Stripe(Box::new(e))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            // The cause chain goes to the log only; the caller sees the generic message.
            tracing::error!(code = self.code(), error = %DisplayChain(&self), "request failed");
        }
        let mut body = json!({
            "status": status.as_u16(),
            "error": self.message(),
            "code": self.code(),
        });
        if let Some(details) = self.stripe_details() {
            body["stripe"] = details;
        }
        let mut response = (status, axum::Json(body)).into_response();
        if let ApiError::MethodNotAllowed(allow) = self {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
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
