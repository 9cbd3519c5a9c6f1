//! The OpenAPI 3.1 description of the four functions, generated from the Rust types.

use std::sync::OnceLock;

use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use super::error::{ErrorBody, StripeDetails};
use crate::payments::{ConfirmedData, CreatedData, PaymentIntentData};

/// `data` of a create request (SPEC §3).
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct CreateData {
    /// Major units (`50.00` is $50.00): a number, or a string holding a decimal number. > 0.
    #[schema(example = "25.50")]
    amount: Amount,
    /// ISO 4217, any case; default `usd`.
    #[schema(example = "eur")]
    currency: Option<String>,
    /// Default `Compra de tickets`; at most 1000 characters.
    description: Option<String>,
    /// String, number or boolean values; at most 48 keys of at most 40 characters (no `[`/`]`),
    /// values of at most 500. `platform` and `timestamp` are set by the service.
    #[schema(value_type = Option<Object>)]
    metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A number or a string holding a decimal number.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum Amount {
    Number(f64),
    Text(String),
}

#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct CreateRequest {
    data: CreateData,
}

/// `data` of a confirm or get request.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct PaymentIntentId {
    /// `pi_` followed by 1-250 letters or digits.
    #[schema(pattern = "^pi_[A-Za-z0-9]{1,250}$", example = "pi_3PxyzABC")]
    payment_intent_id: String,
}

#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct PaymentIntentRequest {
    data: PaymentIntentId,
}

macro_rules! envelope {
    ($name:ident, $data:ty) => {
        /// The success envelope: `{"message": "Procesado", "status": 200, "data": {...}}`.
        #[derive(Serialize, ToSchema)]
        #[allow(dead_code)]
        pub struct $name {
            #[schema(example = "Procesado")]
            message: String,
            #[schema(example = 200)]
            status: u16,
            data: $data,
        }
    };
}

envelope!(CreatedEnvelope, CreatedData);
envelope!(ConfirmedEnvelope, ConfirmedData);
envelope!(PaymentIntentEnvelope, PaymentIntentData);

/// The webhook's answer.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct Received {
    received: bool,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tmt-payments",
        description = "Card payments for the TMT ticket platform through Stripe PaymentIntents. \
                       Error messages are Spanish; `code` is stable English for programs."
    ),
    paths(
        super::create,
        super::confirm,
        super::get_payment_intent,
        super::webhook
    ),
    components(schemas(ErrorBody, StripeDetails, CreatedData, ConfirmedData, PaymentIntentData)),
    modifiers(&BearerToken),
    tags(
        (name = "payments", description = "Called by the platform's front ends and back end"),
        (name = "webhooks", description = "Called by Stripe")
    )
)]
pub struct ApiDoc;

struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("One of API_TOKENS; required only when it is set"))
                    .build(),
            ),
        );
    }
}

/// The document as JSON, built once.
pub fn document_json() -> String {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = ApiDoc::openapi();
        doc.info.version = env!("CARGO_PKG_VERSION").to_string();
        doc.to_pretty_json().unwrap_or_else(|_| "{}".into())
    })
    .clone()
}
