//! Organisers paid through Stripe Connect (docs/contract.md, "Connect"): their settings, the
//! platform's application fee, and (in the modules below) onboarding, charges on behalf of an
//! organiser, refunds that give back the fee and the transfer, and disputes that take the
//! transfer back. Off unless `CONNECT_CHARGE_TYPE` is set.

pub mod fee;
mod organizers;

pub use fee::{FeePolicy, PerCurrency};
pub use organizers::{
    organizer_id, OnboardInput, OnboardedData, OrganizerData, OrganizerInput, ORGANIZER_KEY,
};

use crate::ledger::ChargeType;

/// The Connect settings of a deployment (`CONNECT_*`, `PLATFORM_FEE_*`,
/// `REFUND_APPLICATION_FEE`, `DISPUTE_REVERSE_TRANSFER`).
#[derive(Debug, Clone, PartialEq)]
pub struct Connect {
    /// `None`: Connect is off, and the platform is the merchant of every payment.
    pub charge_type: Option<ChargeType>,
    /// ISO 3166-1 alpha-2, upper case.
    pub default_country: String,
    /// Destination charges carry `on_behalf_of`.
    pub on_behalf_of: bool,
    /// The platform's fee policy.
    pub fee: FeePolicy,
    /// What a refund does with the fee when the request does not say.
    pub refund_application_fee: bool,
    /// Disputes on destination charges reverse the organiser's transfer.
    pub dispute_reverse_transfer: bool,
}

impl Default for Connect {
    /// Off, with the contract's defaults for the rest.
    fn default() -> Self {
        Connect {
            charge_type: None,
            default_country: "MX".into(),
            on_behalf_of: true,
            fee: FeePolicy {
                percent: Some(rust_decimal::Decimal::ZERO),
                ..FeePolicy::default()
            },
            refund_application_fee: true,
            dispute_reverse_transfer: true,
        }
    }
}

/// The countries Stripe opens connected accounts in (Stripe's global availability list).
const COUNTRIES: &[&str] = &[
    "AE", "AT", "AU", "BE", "BG", "BR", "CA", "CH", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR",
    "GB", "GI", "GR", "HK", "HR", "HU", "IE", "IN", "IT", "JP", "LI", "LT", "LU", "LV", "MT", "MX",
    "MY", "NL", "NO", "NZ", "PL", "PT", "RO", "SE", "SG", "SI", "SK", "TH", "US",
];

/// An ISO 3166-1 alpha-2 code (any case) of a country Stripe opens connected accounts in, in
/// upper case.
pub fn country(text: &str) -> Option<String> {
    let upper = text.to_ascii_uppercase();
    COUNTRIES.contains(&upper.as_str()).then_some(upper)
}
