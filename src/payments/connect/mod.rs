//! Organisers paid through Stripe Connect (docs/contract.md, "Connect"): their settings, the
//! platform's application fee, and (in the modules below) onboarding, charges on behalf of an
//! organiser, refunds that give back the fee and the transfer, and disputes that take the
//! transfer back. Off unless `CONNECT_CHARGE_TYPE` is set.

pub mod charge;
mod disputes;
pub mod fee;
mod organizers;
pub mod refunds;

pub use fee::{FeePolicy, PerCurrency};
pub use organizers::{OnboardInput, OnboardedData, OrganizerData, OrganizerInput};

use crate::ledger::{ChargeType, Ledger, OrganizerRow};
use crate::payments::Error;
use crate::stripe::StripeClient;

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

/// The fee policy in force for `organizer`: its own fields over the platform's.
pub fn fee_policy(organizer: &OrganizerRow, platform: &FeePolicy) -> Result<FeePolicy, Error> {
    let own = match &organizer.fee {
        None => FeePolicy::default(),
        Some(saved) => FeePolicy::from_json(saved).map_err(|e| {
            Error::Internal(format!("fee policy of organiser {}: {e}", organizer.id))
        })?,
    };
    Ok(own.over(platform))
}

/// `stripe`, acting for the account the payment `id` lives on: a direct charge's connected
/// account (`Stripe-Account` on every call about it), else the platform.
pub async fn client_for(
    stripe: &StripeClient,
    ledger: &Ledger,
    id: &str,
) -> Result<StripeClient, Error> {
    let account = ledger.payment_account(id).await?;
    Ok(stripe.on_account(account.as_deref()))
}
