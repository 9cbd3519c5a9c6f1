//! Delayed and local payment methods (docs/contract.md, "Cash and bank transfers"): OXXO
//! vouchers, bank transfers into the buyer's cash balance (SPEI, SEPA credit transfer) and
//! SEPA Direct Debit. Their settings, the methods a create may choose ([`methods`]), the
//! Customer a bank transfer needs ([`customers`]) and money left in a cash balance returned to
//! the buyer ([`funds`]). What their payments' changes mean for seat holds and notifications is
//! the ledger's (`ledger::delayed`).

pub mod customers;
pub mod funds;
pub mod methods;

use std::time::Duration;

/// The country a euro bank transfer's account is in (`EU_BANK_TRANSFER_COUNTRY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EuCountry {
    De,
    Fr,
    Ie,
    #[default]
    Nl,
}

impl EuCountry {
    pub const ALL: &'static [EuCountry] =
        &[EuCountry::De, EuCountry::Fr, EuCountry::Ie, EuCountry::Nl];

    pub fn as_str(&self) -> &'static str {
        match self {
            EuCountry::De => "DE",
            EuCountry::Fr => "FR",
            EuCountry::Ie => "IE",
            EuCountry::Nl => "NL",
        }
    }
}

/// The settings of the delayed methods.
#[derive(Debug, Clone, PartialEq)]
pub struct Delayed {
    /// `OXXO_EXPIRES_AFTER_DAYS`: 1 to 7.
    pub oxxo_expires_after_days: u32,
    /// `BANK_TRANSFER_EXPIRES_AFTER_HOURS`: the service's own deadline for a transfer.
    pub bank_transfer_expires_after: Duration,
    /// `DELAYED_HOLD_MAX_HOURS`: how long a seat hold may be extended to, from the create.
    pub hold_max: Duration,
    pub eu_country: EuCountry,
}

impl Default for Delayed {
    fn default() -> Self {
        Delayed {
            oxxo_expires_after_days: 2,
            bank_transfer_expires_after: Duration::from_secs(72 * 3600),
            hold_max: Duration::from_secs(72 * 3600),
            eu_country: EuCountry::Nl,
        }
    }
}

impl Delayed {
    /// The checks across the settings: an OXXO voucher must not outlive the longest hold. A
    /// voucher lasts until the end of its last day in Mexico City, so a voucher of `n` days
    /// issued just after midnight there lives almost `n + 1` days.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let voucher = (u64::from(self.oxxo_expires_after_days) + 1) * 24 * 3600;
        if voucher > self.hold_max.as_secs() {
            return Err((
                "OXXO_EXPIRES_AFTER_DAYS",
                format!(
                    "a voucher of {} days lives until the end of its last day, beyond \
                     DELAYED_HOLD_MAX_HOURS ({} hours): a seat hold could not last as long",
                    self.oxxo_expires_after_days,
                    self.hold_max.as_secs() / 3600
                ),
            ));
        }
        Ok(())
    }
}
