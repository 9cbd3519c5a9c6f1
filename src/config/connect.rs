//! The settings of Stripe Connect (docs/contract.md, "Connect"; README, "Paying organisers"):
//! each read into its type by its own parser, as every setting is. Connect is off unless
//! `CONNECT_CHARGE_TYPE` is set.

use clap::Args;
use rust_decimal::Decimal;
use serde_json::Value;

use super::parsers::{boolean, optional};
use crate::ledger::ChargeType;
use crate::payments::connect::{country, fee, Connect, FeePolicy, PerCurrency};

#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    /// `destination` (the platform's PaymentIntent, transferred to the organiser) or `direct`
    /// (a PaymentIntent on the organiser's account); unset: Connect is off and the platform is
    /// the merchant of every payment.
    #[arg(long, env = "CONNECT_CHARGE_TYPE", default_value = "", hide_default_value = true,
          value_parser = optional(charge_type))]
    pub connect_charge_type: std::option::Option<ChargeType>,
    /// The country of an organiser's account when onboarding names none (ISO 3166-1 alpha-2).
    #[arg(long, env = "CONNECT_DEFAULT_COUNTRY", default_value = "MX", value_parser = country_code)]
    pub connect_default_country: String,
    /// Destination charges name the organiser as the settlement merchant (`on_behalf_of`).
    #[arg(long, env = "CONNECT_ON_BEHALF_OF", default_value = "true", value_parser = boolean,
          action = clap::ArgAction::Set)]
    pub connect_on_behalf_of: bool,
    /// The platform's fee: percent of each payment, 0 to 50, up to two decimals.
    #[arg(long, env = "PLATFORM_FEE_PERCENT", default_value = "0", value_parser = fee_percent)]
    pub platform_fee_percent: Decimal,
    /// The platform's fee per ticket, per currency: `eur:0.50,mxn:10,usd:0.50`.
    #[arg(long, env = "PLATFORM_FEE_FIXED", default_value = "", hide_default_value = true,
          value_parser = optional(per_currency))]
    pub platform_fee_fixed: std::option::Option<PerCurrency>,
    /// The least fee of a payment, per currency (same form).
    #[arg(long, env = "PLATFORM_FEE_MIN", default_value = "", hide_default_value = true,
          value_parser = optional(per_currency))]
    pub platform_fee_min: std::option::Option<PerCurrency>,
    /// The most fee of a payment, per currency (same form).
    #[arg(long, env = "PLATFORM_FEE_MAX", default_value = "", hide_default_value = true,
          value_parser = optional(per_currency))]
    pub platform_fee_max: std::option::Option<PerCurrency>,
    /// Whether a refund gives back the platform's fee in proportion, unless the request says.
    #[arg(long, env = "REFUND_APPLICATION_FEE", default_value = "true", value_parser = boolean,
          action = clap::ArgAction::Set)]
    pub refund_application_fee: bool,
    /// Whether a dispute on a destination charge reverses the organiser's transfer (and a won
    /// one gives it back).
    #[arg(long, env = "DISPUTE_REVERSE_TRANSFER", default_value = "true", value_parser = boolean,
          action = clap::ArgAction::Set)]
    pub dispute_reverse_transfer: bool,
}

impl ConnectArgs {
    /// The settings, once the checks across them pass; else the variable at fault and what is
    /// wrong with it.
    pub fn settings(&self) -> Result<Connect, (&'static str, String)> {
        let fee = FeePolicy {
            percent: Some(self.platform_fee_percent),
            fixed: self.platform_fee_fixed.clone(),
            min: self.platform_fee_min.clone(),
            max: self.platform_fee_max.clone(),
        };
        fee.check().map_err(|e| ("PLATFORM_FEE_MIN", e.0))?;
        Ok(Connect {
            charge_type: self.connect_charge_type,
            default_country: self.connect_default_country.clone(),
            on_behalf_of: self.connect_on_behalf_of,
            fee,
            refund_application_fee: self.refund_application_fee,
            dispute_reverse_transfer: self.dispute_reverse_transfer,
        })
    }
}

fn charge_type(text: &str) -> Result<ChargeType, String> {
    ChargeType::parse(text.trim())
        .map_err(|_| format!("'{}' is not destination or direct", text.trim()))
}

fn country_code(text: &str) -> Result<String, String> {
    country(text.trim()).ok_or_else(|| {
        format!(
            "'{}' is not a country Stripe opens connected accounts in (ISO 3166-1 alpha-2)",
            text.trim()
        )
    })
}

fn fee_percent(text: &str) -> Result<Decimal, String> {
    fee::percent(&Value::String(text.trim().to_string()))
        .ok_or_else(|| format!("'{}' is not 0 to 50 with up to two decimals", text.trim()))
}

fn per_currency(text: &str) -> Result<PerCurrency, String> {
    PerCurrency::parse_setting(text)
}
