//! `ApiError`: the one place that decides status, code and Spanish message for every failure,
//! whether it comes from the HTTP layer itself or from a use case (`payments::Error`).

use std::collections::BTreeMap;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
use utoipa::openapi::{self, ContentBuilder, Ref, RefOr, ResponseBuilder, Schema};
use utoipa::{PartialSchema, ToSchema};

use crate::payments::{Error as PaymentsError, StripeRefusal};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("body is not {{\"data\": {{...}}}}")]
    InvalidBody,
    #[error("body over the size limit")]
    BodyTooLarge,
    #[error("Content-Type is not application/json")]
    UnsupportedMediaType,
    /// Carries the `Allow` header's value.
    #[error("method not allowed")]
    MethodNotAllowed(&'static str),
    #[error("no such route")]
    NotFound,
    /// A request the service cannot read for another reason than its body (a path it cannot
    /// decode).
    #[error("unreadable request")]
    InvalidRequest,
    /// A dashboard sign-in or sign-out sent from another site.
    #[error("request from another site")]
    ForbiddenOrigin,
    #[error("Idempotency-Key header invalid")]
    IdempotencyKeyInvalid,
    #[error("missing or wrong API token")]
    Unauthorized,
    #[error("too many requests; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// `/readyz`: what is not ready, for operators.
    #[error("not ready: {0}")]
    NotReady(&'static str),
    /// The request's body did not arrive within `BODY_TIMEOUT_SECS`.
    #[error("request body too slow")]
    RequestTimeout,
    /// Bodies being received already use `MAX_INFLIGHT_BODY_BYTES`.
    #[error("too many bodies in flight; retry in {retry_after_secs} s")]
    Overloaded { retry_after_secs: u64 },
    #[error(transparent)]
    Payments(#[from] PaymentsError),
}

/// Status, code and Spanish message of one failure: the code and message of every failure in
/// one match; each code's status is in the `codes!` table.
fn describe(error: &ApiError) -> (StatusCode, &'static str, String) {
    use ApiError as A;
    use Code as C;
    use PaymentsError as P;
    let (code, message): (Code, String) = match error {
        A::InvalidBody => (
            C::InvalidBody,
            "El cuerpo debe ser JSON con la forma {\"data\": {...}}".into(),
        ),
        A::BodyTooLarge => (
            C::BodyTooLarge,
            "El cuerpo excede el tamaño máximo permitido".into(),
        ),
        A::UnsupportedMediaType => (
            C::UnsupportedMediaType,
            "El Content-Type debe ser application/json".into(),
        ),
        A::MethodNotAllowed(_) => (C::MethodNotAllowed, "Método no permitido".into()),
        A::NotFound => (C::NotFound, "Ruta no encontrada".into()),
        A::InvalidRequest => (C::InvalidRequest, "Solicitud inválida".into()),
        A::ForbiddenOrigin => (C::ForbiddenOrigin, "Origen no permitido".into()),
        A::IdempotencyKeyInvalid => (
            C::IdempotencyKeyInvalid,
            "Idempotency-Key inválida: de 1 a 255 caracteres ASCII imprimibles".into(),
        ),
        A::Unauthorized => (C::Unauthorized, "No autorizado".into()),
        A::RateLimited { .. } => (C::RateLimited, "Demasiadas solicitudes".into()),
        A::NotReady(_) => (C::NotReady, "Servicio no disponible".into()),
        A::RequestTimeout => (C::RequestTimeout, "La solicitud tardó demasiado".into()),
        A::Overloaded { .. } => (
            C::Overloaded,
            "Servicio sobrecargado; intente de nuevo en unos segundos".into(),
        ),
        A::Payments(e) => match e {
            P::AmountInvalid => (
                C::AmountInvalid,
                "El monto es requerido y debe ser mayor a 0".into(),
            ),
            P::CurrencyInvalid(c) => (C::CurrencyInvalid, format!("Moneda no soportada: {c}")),
            P::AmountTooSmall { currency, minimum } => (
                C::AmountTooSmall,
                format!("El monto mínimo para {currency} es {minimum}"),
            ),
            P::AmountTooLarge => (
                C::AmountTooLarge,
                "El monto excede el máximo permitido".into(),
            ),
            P::DescriptionInvalid => (C::DescriptionInvalid, "Descripción inválida".into()),
            P::MetadataInvalid(detail) => {
                (C::MetadataInvalid, format!("Metadata inválida: {detail}"))
            }
            P::HoldInvalid => (
                C::HoldInvalid,
                "Tiempo de reserva inválido (60–86400 segundos)".into(),
            ),
            P::CaptureMethodInvalid => {
                (C::CaptureMethodInvalid, "Método de captura inválido".into())
            }
            P::CaptureAmountInvalid => (
                C::AmountInvalid,
                "El monto a capturar debe ser mayor a 0".into(),
            ),
            P::PaymentNotCapturable(status) => (
                C::PaymentNotCapturable,
                format!("El pago no puede ser capturado. Estado: {status}"),
            ),
            P::AmountExceedsAuthorized => (
                C::AmountExceedsAuthorized,
                "El monto excede lo autorizado".into(),
            ),
            P::PaymentIntentIdRequired => (
                C::PaymentIntentIdRequired,
                "ID de Payment Intent es requerido".into(),
            ),
            P::PaymentIntentIdInvalid => (
                C::PaymentIntentIdInvalid,
                "ID de Payment Intent inválido".into(),
            ),
            P::PaymentNotCompleted(status) => (
                C::PaymentNotCompleted,
                format!("El pago no fue completado. Estado: {status}"),
            ),
            P::RefundAmountInvalid => (
                C::AmountInvalid,
                "El monto del reembolso debe ser mayor a 0".into(),
            ),
            P::RefundReasonInvalid => (C::ReasonInvalid, "Motivo de reembolso inválido".into()),
            P::CancelReasonInvalid => (C::ReasonInvalid, "Motivo de cancelación inválido".into()),
            P::PaymentNotRefundable(status) => (
                C::PaymentNotRefundable,
                format!("El pago no puede ser reembolsado. Estado: {status}"),
            ),
            P::RefundExceedsRemaining {
                remaining,
                currency,
            } => (
                C::RefundExceedsRemaining,
                format!("El monto excede lo que queda por reembolsar: {remaining} {currency}"),
            ),
            P::PaymentAlreadySucceeded => (
                C::PaymentAlreadySucceeded,
                "El pago ya fue completado; use un reembolso".into(),
            ),
            P::PaymentProcessing => (
                C::PaymentProcessing,
                "El pago está en proceso y no puede cancelarse".into(),
            ),
            P::HoldExpired => (
                C::HoldExpired,
                "La reserva expiró; el pago no puede ser capturado".into(),
            ),
            P::PaymentRefunded => (C::PaymentRefunded, "El pago fue reembolsado".into()),
            P::ConnectDisabled => (C::ConnectDisabled, "Stripe Connect no está activado".into()),
            P::OrganizerIdInvalid => (C::OrganizerIdInvalid, "ID de organizador inválido".into()),
            P::CountryInvalid => (C::CountryInvalid, "País inválido".into()),
            P::UrlInvalid(_) => (C::UrlInvalid, "URL inválida".into()),
            P::EmailInvalid => (C::EmailInvalid, "Correo electrónico inválido".into()),
            P::FeeInvalid(_) => (C::FeeInvalid, "Comisión inválida".into()),
            P::OrganizerNotFound => (C::OrganizerNotFound, "Organizador no encontrado".into()),
            P::OrganizerInvalid => (C::OrganizerInvalid, "Organizador inválido".into()),
            P::OrganizerNotReady => (
                C::OrganizerNotReady,
                "El organizador aún no puede recibir pagos".into(),
            ),
            P::OrganizerRequired => (C::OrganizerRequired, "El organizador es requerido".into()),
            P::RefundOptionInvalid(field) => (
                C::RefundOptionInvalid,
                format!("Opción de reembolso inválida: {field} debe ser true o false"),
            ),
            P::TicketsInvalid => (
                C::TicketsInvalid,
                "Número de tickets inválido (1–1000)".into(),
            ),
            P::PaymentMethodInvalid => (
                C::PaymentMethodInvalid,
                "Método de pago no disponible para esta moneda o monto".into(),
            ),
            P::CustomerEmailRequired => (
                C::CustomerEmailRequired,
                "El correo del cliente es requerido".into(),
            ),
            P::RefundNotSupported => (
                C::RefundNotSupported,
                "Este método de pago no admite reembolsos".into(),
            ),
            P::Refused(refusal, _) => match refusal {
                StripeRefusal::PaymentMissing => (C::PaymentNotFound, "El pago no existe".into()),
                StripeRefusal::Disputed => (C::PaymentDisputed, "El pago está en disputa".into()),
                StripeRefusal::BalanceInsufficient => (
                    C::BalanceInsufficient,
                    "Saldo insuficiente en Stripe para el reembolso".into(),
                ),
            },
            P::IdempotencyKeyReused => (
                C::IdempotencyKeyReused,
                "La Idempotency-Key ya fue usada con otros parámetros".into(),
            ),
            P::IdempotencyKeyInProgress => (
                C::IdempotencyKeyInProgress,
                "Una solicitud con la misma Idempotency-Key está en curso".into(),
            ),
            P::SignatureMissing => (
                C::SignatureMissing,
                "Falta la cabecera Stripe-Signature".into(),
            ),
            P::SignatureMalformed => (
                C::SignatureMalformed,
                "Cabecera Stripe-Signature ilegible".into(),
            ),
            P::SignatureNoV1 => (
                C::SignatureNoV1,
                "La cabecera Stripe-Signature no tiene firma v1".into(),
            ),
            P::SignatureMismatch => (C::SignatureMismatch, "Ninguna firma coincide".into()),
            P::SignatureExpired => (
                C::SignatureExpired,
                "La marca de tiempo de la firma está fuera de la tolerancia".into(),
            ),
            P::EventInvalid => (
                C::EventInvalid,
                "El cuerpo no es un evento de Stripe".into(),
            ),
            P::WebhookNotRecorded(_) => (
                C::WebhookNotRecorded,
                "No se pudo registrar el evento".into(),
            ),
            // The seed's rule: Stripe's own message, when it gave one.
            P::StripeRefused(said) => (
                C::StripeError,
                said.message.clone().unwrap_or_else(|| {
                    format!("Stripe respondió con el estado HTTP {}", said.status)
                }),
            ),
            P::StripeUnreadable { .. } => (C::StripeError, "Respuesta de Stripe ilegible".into()),
            P::StripeUnreachable { .. } => (
                C::StripeUnreachable,
                "No se pudo contactar con Stripe".into(),
            ),
            // Stripe's rate limit, or this instance's share of it, is what ran out: a buyer
            // told when to come back retries; a 500 would read as a broken payment.
            P::StripeBusy { retry_after, .. } => (
                C::StripeBusy,
                format!(
                    "Demasiadas solicitudes; intente de nuevo en {} segundos",
                    retry_after.as_secs()
                ),
            ),
            P::LedgerNotWritable(_) => (
                C::LedgerNotWritable,
                "No se puede escribir en el registro de pagos; intente de nuevo más tarde".into(),
            ),
            P::LedgerUnavailable(_) => (
                C::DatabaseUnavailable,
                "Servicio no disponible temporalmente".into(),
            ),
            P::Internal(_) => (C::InternalError, "Error interno del servicio".into()),
        },
    };
    (code.status(), code.as_str(), message)
}

impl ApiError {
    /// The error of the table that a bare answer of `status` stands for (see
    /// [`super::json_errors`]); a 405's `Allow` is the answer's own.
    pub fn of_status(status: StatusCode) -> ApiError {
        match status {
            StatusCode::NOT_FOUND => ApiError::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed(""),
            StatusCode::REQUEST_TIMEOUT => ApiError::RequestTimeout,
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::BodyTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType,
            s if s.is_client_error() => ApiError::InvalidRequest,
            s => ApiError::Payments(PaymentsError::Internal(format!(
                "answered {s} without an error body"
            ))),
        }
    }

    pub fn status(&self) -> StatusCode {
        describe(self).0
    }

    pub fn code(&self) -> &'static str {
        describe(self).1
    }

    pub fn message(&self) -> String {
        describe(self).2
    }

    /// Seconds after which the request may be made again, for a `Retry-After` header.
    fn retry_after_secs(&self) -> Option<u64> {
        match self {
            ApiError::RateLimited { retry_after_secs }
            | ApiError::Overloaded { retry_after_secs } => Some(*retry_after_secs),
            ApiError::Payments(PaymentsError::StripeBusy { retry_after, .. }) => {
                Some(retry_after.as_secs())
            }
            _ => None,
        }
    }

    fn stripe_details(&self) -> Option<StripeDetails> {
        let ApiError::Payments(payments) = self else {
            return None;
        };
        let said = payments.stripe_refusal()?;
        Some(StripeDetails {
            error_type: said.error_type.as_ref().map(ToString::to_string),
            code: said.code.as_ref().map(ToString::to_string),
            decline_code: said.decline_code.clone(),
            request_id: said.request_id.clone(),
        })
    }

    /// For operators, on `/readyz` and write failures: what is not working.
    fn reason(&self) -> Option<&'static str> {
        match self {
            ApiError::NotReady(reason) => Some(reason),
            ApiError::Payments(PaymentsError::LedgerNotWritable(_)) => Some("ledger not writable"),
            _ => None,
        }
    }

    pub fn body(&self) -> ErrorBody {
        let (status, code, error) = describe(self);
        ErrorBody {
            status: status.as_u16(),
            error,
            code: ErrorCode(code),
            stripe: self.stripe_details(),
            reason: self.reason(),
        }
    }
}

/// Declares [`Code`] and [`ERROR_CODES`] from one list: each code, and the status it is answered
/// with.
macro_rules! codes {
    ($($code:ident = $text:literal: $status:ident,)+) => {
        /// The `code` of a failure's answer.
        #[derive(Debug, Clone, Copy)]
        enum Code {
            $($code,)+
        }

        impl Code {
            fn as_str(self) -> &'static str {
                match self {
                    $(Code::$code => $text,)+
                }
            }

            fn status(self) -> StatusCode {
                match self {
                    $(Code::$code => StatusCode::$status,)+
                }
            }
        }

        /// Every `code` the service answers with (the OpenAPI document lists them; a test checks
        /// that each error produces one of these and each of these is produced).
        pub const ERROR_CODES: &[&str] = &[$($text,)+];

        /// Every code with its status, for comparing with docs/contract.md's table.
        #[cfg(test)]
        fn code_statuses() -> Vec<(&'static str, u16)> {
            vec![$(($text, StatusCode::$status.as_u16()),)+]
        }
    };
}

codes! {
    InvalidBody = "invalid_body": BAD_REQUEST,
    BodyTooLarge = "body_too_large": PAYLOAD_TOO_LARGE,
    UnsupportedMediaType = "unsupported_media_type": UNSUPPORTED_MEDIA_TYPE,
    MethodNotAllowed = "method_not_allowed": METHOD_NOT_ALLOWED,
    NotFound = "not_found": NOT_FOUND,
    InvalidRequest = "invalid_request": BAD_REQUEST,
    ForbiddenOrigin = "forbidden_origin": FORBIDDEN,
    AmountInvalid = "amount_invalid": BAD_REQUEST,
    CurrencyInvalid = "currency_invalid": BAD_REQUEST,
    AmountTooSmall = "amount_too_small": BAD_REQUEST,
    AmountTooLarge = "amount_too_large": BAD_REQUEST,
    DescriptionInvalid = "description_invalid": BAD_REQUEST,
    MetadataInvalid = "metadata_invalid": BAD_REQUEST,
    HoldInvalid = "hold_invalid": BAD_REQUEST,
    CaptureMethodInvalid = "capture_method_invalid": BAD_REQUEST,
    PaymentNotCapturable = "payment_not_capturable": BAD_REQUEST,
    AmountExceedsAuthorized = "amount_exceeds_authorized": BAD_REQUEST,
    IdempotencyKeyInvalid = "idempotency_key_invalid": BAD_REQUEST,
    IdempotencyKeyReused = "idempotency_key_reused": UNPROCESSABLE_ENTITY,
    IdempotencyKeyInProgress = "idempotency_key_in_progress": CONFLICT,
    Unauthorized = "unauthorized": UNAUTHORIZED,
    RateLimited = "rate_limited": TOO_MANY_REQUESTS,
    PaymentIntentIdRequired = "payment_intent_id_required": BAD_REQUEST,
    PaymentIntentIdInvalid = "payment_intent_id_invalid": BAD_REQUEST,
    PaymentNotCompleted = "payment_not_completed": BAD_REQUEST,
    ReasonInvalid = "reason_invalid": BAD_REQUEST,
    PaymentNotRefundable = "payment_not_refundable": BAD_REQUEST,
    RefundExceedsRemaining = "refund_exceeds_remaining": BAD_REQUEST,
    PaymentAlreadySucceeded = "payment_already_succeeded": BAD_REQUEST,
    PaymentProcessing = "payment_processing": BAD_REQUEST,
    PaymentRefunded = "payment_refunded": BAD_REQUEST,
    HoldExpired = "hold_expired": CONFLICT,
    PaymentNotFound = "payment_not_found": NOT_FOUND,
    PaymentDisputed = "payment_disputed": CONFLICT,
    BalanceInsufficient = "balance_insufficient": CONFLICT,
    ConnectDisabled = "connect_disabled": CONFLICT,
    OrganizerIdInvalid = "organizer_id_invalid": BAD_REQUEST,
    CountryInvalid = "country_invalid": BAD_REQUEST,
    UrlInvalid = "url_invalid": BAD_REQUEST,
    EmailInvalid = "email_invalid": BAD_REQUEST,
    FeeInvalid = "fee_invalid": BAD_REQUEST,
    OrganizerNotFound = "organizer_not_found": NOT_FOUND,
    OrganizerInvalid = "organizer_invalid": BAD_REQUEST,
    OrganizerNotReady = "organizer_not_ready": CONFLICT,
    PaymentMethodInvalid = "payment_method_invalid": BAD_REQUEST,
    CustomerEmailRequired = "customer_email_required": BAD_REQUEST,
    RefundNotSupported = "refund_not_supported": CONFLICT,
    OrganizerRequired = "organizer_required": BAD_REQUEST,
    TicketsInvalid = "tickets_invalid": BAD_REQUEST,
    RefundOptionInvalid = "refund_option_invalid": BAD_REQUEST,
    StripeError = "stripe_error": INTERNAL_SERVER_ERROR,
    StripeUnreachable = "stripe_unreachable": INTERNAL_SERVER_ERROR,
    StripeBusy = "stripe_busy": SERVICE_UNAVAILABLE,
    SignatureMissing = "signature_missing": BAD_REQUEST,
    SignatureMalformed = "signature_malformed": BAD_REQUEST,
    SignatureNoV1 = "signature_no_v1": BAD_REQUEST,
    SignatureMismatch = "signature_mismatch": BAD_REQUEST,
    SignatureExpired = "signature_expired": BAD_REQUEST,
    EventInvalid = "event_invalid": BAD_REQUEST,
    WebhookNotRecorded = "webhook_not_recorded": INTERNAL_SERVER_ERROR,
    DatabaseUnavailable = "database_unavailable": SERVICE_UNAVAILABLE,
    LedgerNotWritable = "ledger_not_writable": SERVICE_UNAVAILABLE,
    InternalError = "internal_error": INTERNAL_SERVER_ERROR,
    RequestTimeout = "request_timeout": REQUEST_TIMEOUT,
    Overloaded = "overloaded": SERVICE_UNAVAILABLE,
    NotReady = "not_ready": SERVICE_UNAVAILABLE,
}

/// The error envelope: `{"status", "error", "code"}` and, where they apply, `stripe` and
/// `reason`.
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
    /// On `/readyz` and write failures: what is not working, for operators.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

/// Error answers for the OpenAPI document: each status with its description, all of them
/// `ErrorBody`.
pub fn documented(answers: &[(u16, &str)]) -> BTreeMap<String, RefOr<openapi::Response>> {
    answers
        .iter()
        .map(|&(status, description)| {
            let body = ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(ErrorBody::name())))
                .build();
            let response = ResponseBuilder::new()
                .description(description)
                .content("application/json", body)
                .build();
            (status.to_string(), response.into())
        })
        .collect()
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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        // A refusal under load (bodies in flight, Stripe's budget) is the service protecting
        // itself, not a failure; under a flood of them an error line each would bury the log
        // (the access line records them).
        if status.is_server_error() && self.retry_after_secs().is_none() {
            // The cause chain goes to the log only; the caller sees the generic message.
            tracing::error!(code = self.code(), error = %DisplayChain(&self), "request failed");
        }
        let mut response = (status, axum::Json(self.body())).into_response();
        let headers = response.headers_mut();
        if let Some(secs) = self.retry_after_secs() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        match self {
            ApiError::MethodNotAllowed(allow) if !allow.is_empty() => {
                headers.insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            ApiError::Unauthorized => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
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
mod tests;
