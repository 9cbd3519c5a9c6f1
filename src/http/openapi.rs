//! The OpenAPI 3.1 description of the service's functions, generated from the types the code
//! really parses and serialises.

use std::sync::OnceLock;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::error::{ErrorBody, StripeDetails};
use crate::payments::connect::{OnboardedData, OrganizerData};
use crate::payments::{
    CanceledData, CapturedData, ConfirmedData, CreatedData, PaymentIntentData, RefundedData,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tmt-payments",
        description = "Card payments for the TMT ticket platform through Stripe PaymentIntents. \
                       Error messages are Spanish; `code` is stable English for programs."
    ),
    paths(
        super::payments::create,
        super::payments::confirm,
        super::payments::get_payment_intent,
        super::payments::refund,
        super::payments::cancel,
        super::payments::capture,
        super::organizers::onboard,
        super::organizers::get_organizer,
        super::webhook::webhook
    ),
    components(schemas(
        ErrorBody,
        StripeDetails,
        CreatedData,
        ConfirmedData,
        PaymentIntentData,
        RefundedData,
        CanceledData,
        CapturedData,
        OnboardedData,
        OrganizerData
    )),
    modifiers(&BearerToken),
    tags(
        (name = "payments", description = "Called by the platform's front ends and back end"),
        (name = "organizers", description = "Organisers paid through Stripe Connect; called by the platform's back end"),
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
