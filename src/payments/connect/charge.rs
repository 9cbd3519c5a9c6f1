//! A payment for an organiser (docs/contract.md §15, "Create with an organiser"): checked
//! against the ledger before Stripe is called (no Stripe call on a buyer's path but the create
//! itself), its application fee computed, and the create's form given what its charge type
//! needs: a destination charge's `transfer_data` and `on_behalf_of`, a direct charge's account.

use super::Connect;
use crate::ledger::{ChargeType, ConnectNote, Ledger, OrganizerRow};
use crate::money::{Money, MAX_MINOR};
use crate::payments::request::OrganizerChoice;
use crate::payments::Error;
use crate::stripe::form::Form;

/// How one payment is made for its organiser.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectCharge {
    pub organizer_id: String,
    pub charge_type: ChargeType,
    /// The organiser's connected account.
    pub account: String,
    /// The platform's fee, minor units.
    pub fee: i64,
    /// What the buyer is charged, minor units: the amount, plus the fee when the buyer pays it.
    pub charged: i64,
    on_behalf_of: bool,
}

impl ConnectCharge {
    /// The charge for `organizer` (its ledger row, if any) of `money`, under `connect`; the
    /// refusals come before anything reaches Stripe. `None` when Connect is off and no
    /// organiser was named.
    pub fn decide(
        connect: &Connect,
        choice: Option<&OrganizerChoice>,
        organizer: Option<&OrganizerRow>,
        money: Money,
    ) -> Result<Option<ConnectCharge>, Error> {
        let (charge_type, choice) = match (connect.charge_type, choice) {
            (None, None) => return Ok(None),
            (None, Some(_)) => return Err(Error::ConnectDisabled),
            (Some(_), None) => return Err(Error::OrganizerRequired),
            (Some(charge_type), Some(choice)) => (charge_type, choice),
        };
        let organizer = organizer.ok_or(Error::OrganizerInvalid)?;
        let account = match &organizer.account_id {
            Some(account) if organizer.ready() => account.clone(),
            _ => return Err(Error::OrganizerNotReady),
        };
        let policy = super::fee_policy(organizer, &connect.fee)?;
        let fee = policy.fee(money.minor, money.currency, choice.tickets);
        let charged = match choice.buyer_pays_fee {
            true => money.minor + fee,
            false => money.minor,
        };
        if charged > MAX_MINOR {
            return Err(Error::AmountTooLarge);
        }
        Ok(Some(ConnectCharge {
            organizer_id: organizer.id.clone(),
            charge_type,
            account,
            fee,
            charged,
            on_behalf_of: connect.on_behalf_of,
        }))
    }

    /// What create's form needs for the charge type (the amount is the form's own).
    pub fn add_to(&self, form: &mut Form) {
        if self.charge_type == ChargeType::Destination {
            form.nested("transfer_data", "destination", self.account.as_str());
            if self.on_behalf_of {
                form.push("on_behalf_of", self.account.as_str());
            }
        }
        if self.fee > 0 {
            form.push("application_fee_amount", self.fee.to_string());
        }
    }

    /// The account create's call acts for: a direct charge's.
    pub fn direct_account(&self) -> Option<&str> {
        (self.charge_type == ChargeType::Direct).then_some(self.account.as_str())
    }

    /// What the ledger keeps of it.
    pub fn note(&self) -> ConnectNote<'_> {
        ConnectNote {
            organizer_id: &self.organizer_id,
            charge_type: self.charge_type,
            stripe_account: self.direct_account(),
            application_fee: self.fee,
        }
    }
}

/// The charge for a create's organiser (read from the ledger when one is named).
pub async fn prepare(
    connect: &Connect,
    ledger: &Ledger,
    choice: Option<&OrganizerChoice>,
    money: Money,
) -> Result<Option<ConnectCharge>, Error> {
    let organizer = match choice {
        Some(choice) if connect.charge_type.is_some() => {
            ledger.organizer(&choice.organizer_id).await?
        }
        _ => None,
    };
    ConnectCharge::decide(connect, choice, organizer.as_ref(), money)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;
    use crate::payments::connect::FeePolicy;
    use serde_json::json;

    fn organizer(ready: bool, connected: bool) -> OrganizerRow {
        OrganizerRow {
            id: "org_1".into(),
            account_id: Some("acct_1".into()),
            country: "MX".into(),
            email: None,
            fee: Some(json!({"percent": 10})),
            charges_enabled: ready,
            payouts_enabled: ready,
            details_submitted: ready,
            requirements_due: Vec::new(),
            disabled_reason: None,
            connected,
            created: 0,
            updated_at: String::new(),
        }
    }

    fn choice(buyer_pays_fee: bool) -> OrganizerChoice {
        OrganizerChoice {
            organizer_id: "org_1".into(),
            tickets: 2,
            buyer_pays_fee,
        }
    }

    #[test]
    fn charges_are_decided_before_stripe() {
        let money = Money {
            minor: 10_000,
            currency: Currency::parse("mxn").unwrap(),
        };
        let mut connect = Connect {
            charge_type: Some(ChargeType::Destination),
            ..Connect::default()
        };
        connect.fee = FeePolicy::from_json(&json!({"percent": 5, "fixed": {"mxn": 10}})).unwrap();
        let ready = organizer(true, true);
        let decide =
            |connect: &Connect, choice: Option<&OrganizerChoice>, row: Option<&OrganizerRow>| {
                ConnectCharge::decide(connect, choice, row, money).map_err(|e| e.to_string())
            };
        // The organiser's percentage over the platform's fixed part: 10% + 2 × 10.00.
        let charge = decide(&connect, Some(&choice(false)), Some(&ready))
            .unwrap()
            .unwrap();
        assert_eq!((charge.fee, charge.charged), (3000, 10_000));
        let mut form = Form::new();
        charge.add_to(&mut form);
        let pairs: Vec<(&str, &str)> = form
            .pairs()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("transfer_data[destination]", "acct_1"),
                ("on_behalf_of", "acct_1"),
                ("application_fee_amount", "3000")
            ]
        );
        let buyer = decide(&connect, Some(&choice(true)), Some(&ready))
            .unwrap()
            .unwrap();
        assert_eq!((buyer.fee, buyer.charged), (3000, 13_000));
        let direct = Connect {
            charge_type: Some(ChargeType::Direct),
            on_behalf_of: false,
            ..connect.clone()
        };
        let charge = decide(&direct, Some(&choice(false)), Some(&ready))
            .unwrap()
            .unwrap();
        assert_eq!(charge.direct_account(), Some("acct_1"));
        let mut form = Form::new();
        charge.add_to(&mut form);
        assert_eq!(form.encode(), "application_fee_amount=3000");

        assert_eq!(
            decide(&connect, None, None).unwrap_err(),
            "organizerId missing"
        );
        assert_eq!(
            decide(&connect, Some(&choice(false)), None).unwrap_err(),
            "organiser unknown"
        );
        for row in [organizer(false, true), organizer(true, false)] {
            assert_eq!(
                decide(&connect, Some(&choice(false)), Some(&row)).unwrap_err(),
                "organiser cannot take payments"
            );
        }
        let off = Connect::default();
        assert_eq!(decide(&off, None, None), Ok(None));
        assert_eq!(
            decide(&off, Some(&choice(false)), Some(&ready)).unwrap_err(),
            "Stripe Connect is off"
        );
    }
}
