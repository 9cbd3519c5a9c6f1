//! The settings of the delayed payment methods (docs/contract.md, "Cash and bank transfers";
//! README, "Cash and bank transfers"), each read into its type by its own parser.

use std::time::Duration;

use clap::builder::PossibleValue;
use clap::{Args, ValueEnum};

use super::parsers::{choice, within, WHOLE};
use crate::payments::delayed::{Delayed, EuCountry};

#[derive(Debug, Clone, Args)]
pub struct DelayedArgs {
    /// Days an OXXO voucher can be paid, 1 to 7 (never beyond DELAYED_HOLD_MAX_HOURS).
    #[arg(long, env = "OXXO_EXPIRES_AFTER_DAYS", default_value = "2",
          value_parser = within::<u32, _>(WHOLE, 1..=7))]
    pub oxxo_expires_after_days: u32,
    /// Hours a bank transfer may take before the service cancels its payment.
    #[arg(long, env = "BANK_TRANSFER_EXPIRES_AFTER_HOURS", default_value = "72",
          value_parser = within::<u64, _>(WHOLE, 1..=720))]
    pub bank_transfer_expires_after_hours: u64,
    /// Hours from its create that a seat hold may be extended to while the money is on its way.
    #[arg(long, env = "DELAYED_HOLD_MAX_HOURS", default_value = "72",
          value_parser = within::<u64, _>(WHOLE, 1..=720))]
    pub delayed_hold_max_hours: u64,
    /// The country of a euro bank transfer's account: DE, FR, IE or NL.
    #[arg(long, env = "EU_BANK_TRANSFER_COUNTRY", default_value = "NL", ignore_case = true,
          value_parser = choice::<EuCountry>())]
    pub eu_bank_transfer_country: EuCountry,
}

impl DelayedArgs {
    /// The settings, once the checks across them pass; else the variable at fault and what is
    /// wrong with it.
    pub fn settings(&self) -> Result<Delayed, (&'static str, String)> {
        let hours = |h: u64| Duration::from_secs(h * 3600);
        let delayed = Delayed {
            oxxo_expires_after_days: self.oxxo_expires_after_days,
            bank_transfer_expires_after: hours(self.bank_transfer_expires_after_hours),
            hold_max: hours(self.delayed_hold_max_hours),
            eu_country: self.eu_bank_transfer_country,
        };
        delayed.check()?;
        Ok(delayed)
    }
}

impl ValueEnum for EuCountry {
    fn value_variants<'a>() -> &'a [Self] {
        EuCountry::ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.as_str()))
    }
}
