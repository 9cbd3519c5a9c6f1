//! Create's `paymentMethodTypes` and `customerEmail` (docs/contract.md, "Cash and bank
//! transfers"): each method must fit the currency and the amount, none of the delayed ones can
//! be captured manually, and a bank transfer needs the buyer's e-mail, all refused before
//! Stripe. What the create's form then says to Stripe: the methods, their options (the
//! voucher's days, the transfer's type and country), the Customer, and the deadlines the ledger
//! reads back from the metadata.

use serde_json::Value;

use super::Delayed;
use crate::ledger::{iso_ms, HOLD_CAP_KEY, PAY_BY_KEY};
use crate::money::Money;
use crate::payments::email::email;
use crate::payments::Error;
use crate::stripe::form::Form;

/// A payment method a create may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodType {
    Card,
    Oxxo,
    /// A bank transfer into the buyer's cash balance: SPEI (`mxn`) or SEPA (`eur`).
    CustomerBalance,
    SepaDebit,
}

impl MethodType {
    pub fn parse(text: &str) -> Option<MethodType> {
        Some(match text {
            "card" => MethodType::Card,
            "oxxo" => MethodType::Oxxo,
            "customer_balance" => MethodType::CustomerBalance,
            "sepa_debit" => MethodType::SepaDebit,
            _ => return None,
        })
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            MethodType::Card => "card",
            MethodType::Oxxo => "oxxo",
            MethodType::CustomerBalance => "customer_balance",
            MethodType::SepaDebit => "sepa_debit",
        }
    }

    /// Whether it can pay `money`: OXXO takes 10.00 to 10,000.00 MXN, a transfer MXN or EUR,
    /// SEPA Debit EUR.
    fn fits(&self, money: Money) -> bool {
        let currency = money.currency.code();
        match self {
            MethodType::Card => true,
            MethodType::Oxxo => currency == "mxn" && (1_000..=1_000_000).contains(&money.minor),
            MethodType::CustomerBalance => matches!(currency, "mxn" | "eur"),
            MethodType::SepaDebit => currency == "eur",
        }
    }
}

/// The methods a create chose, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodChoice {
    pub types: Vec<MethodType>,
    /// Lower case; present whenever a bank transfer is among the types.
    pub customer_email: Option<String>,
}

/// Create's `paymentMethodTypes` and `customerEmail`, for `money`, checked in that order;
/// `None` when no methods were named (Stripe's automatic payment methods apply).
pub fn parse(
    types: Option<&Value>,
    customer_email: Option<&Value>,
    money: Money,
    manual_capture: bool,
) -> Result<Option<MethodChoice>, Error> {
    let list = match types {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(list)) if !list.is_empty() => list,
        Some(_) => return Err(Error::PaymentMethodInvalid),
    };
    let mut chosen = Vec::with_capacity(list.len());
    for value in list {
        let method = value
            .as_str()
            .and_then(MethodType::parse)
            .filter(|m| m.fits(money))
            .ok_or(Error::PaymentMethodInvalid)?;
        if !chosen.contains(&method) {
            chosen.push(method);
        }
    }
    if manual_capture && chosen.iter().any(|m| *m != MethodType::Card) {
        return Err(Error::CaptureMethodInvalid);
    }
    let customer_email = match chosen.contains(&MethodType::CustomerBalance) {
        false => None,
        true => Some(
            email(customer_email)?
                .ok_or(Error::CustomerEmailRequired)?
                .to_lowercase(),
        ),
    };
    Ok(Some(MethodChoice {
        types: chosen,
        customer_email,
    }))
}

/// What the create's form needs besides its own fields.
pub struct Deadlines {
    /// When the create was first tried, Unix milliseconds.
    pub first_use: i64,
    /// Whether the payment holds seats.
    pub held: bool,
}

impl MethodChoice {
    /// Only a bank transfer: it needs nothing of the buyer, so the create confirms it and its
    /// answer carries the transfer instructions at once.
    pub fn confirms_at_create(&self) -> bool {
        self.types == [MethodType::CustomerBalance]
    }

    /// Whether any method's money comes later (all but cards).
    pub fn delayed(&self) -> bool {
        self.types.iter().any(|m| *m != MethodType::Card)
    }

    /// The methods, their options and the customer on create's `form` for `money`; the
    /// deadlines the ledger reads back go in the metadata.
    pub fn add_to(
        &self,
        form: &mut Form,
        settings: &Delayed,
        money: Money,
        customer: Option<&str>,
        deadlines: Deadlines,
    ) {
        for method in &self.types {
            form.push("payment_method_types[]", method.as_str());
        }
        let options = "payment_method_options";
        if self.types.contains(&MethodType::Oxxo) {
            let days = settings.oxxo_expires_after_days.to_string();
            form.push(format!("{options}[oxxo][expires_after_days]"), days);
        }
        if self.types.contains(&MethodType::CustomerBalance) {
            let balance = format!("{options}[customer_balance]");
            form.push(format!("{balance}[funding_type]"), "bank_transfer");
            let transfer = format!("{balance}[bank_transfer]");
            match money.currency.code() {
                "eur" => form
                    .push(format!("{transfer}[type]"), "eu_bank_transfer")
                    .push(
                        format!("{transfer}[eu_bank_transfer][country]"),
                        settings.eu_country.as_str(),
                    ),
                _ => form.push(format!("{transfer}[type]"), "mx_bank_transfer"),
            };
            let pay_by = deadlines.first_use
                + i64::try_from(settings.bank_transfer_expires_after.as_millis()).unwrap_or(0);
            form.nested("metadata", PAY_BY_KEY, iso_ms(pay_by).unwrap_or_default());
        }
        if deadlines.held && self.delayed() {
            let cap =
                deadlines.first_use + i64::try_from(settings.hold_max.as_millis()).unwrap_or(0);
            form.nested("metadata", HOLD_CAP_KEY, iso_ms(cap).unwrap_or_default());
        }
        if let Some(customer) = customer {
            form.push("customer", customer);
        }
        if self.confirms_at_create() {
            form.push("confirm", "true")
                .push("payment_method_data[type]", "customer_balance");
        }
    }
}

/// Unix milliseconds as ISO 8601 UTC, as the metadata keeps times.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;
    use serde_json::json;

    fn money(minor: i64, currency: &str) -> Money {
        Money {
            minor,
            currency: Currency::parse(currency).unwrap(),
        }
    }

    fn code(result: Result<Option<MethodChoice>, Error>) -> String {
        match result {
            Ok(choice) => format!("{choice:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn methods_must_fit_the_currency_and_amount() {
        let parse = |types: Value, email: Value, m: Money, manual: bool| {
            code(parse(Some(&types), Some(&email), m, manual))
        };
        let mxn = money(50_000, "mxn");
        let none = Value::Null;
        let invalid = Error::PaymentMethodInvalid.to_string();
        assert_eq!(
            parse(json!(["oxxo"]), none.clone(), money(50_000, "eur"), false),
            invalid
        );
        assert_eq!(
            parse(json!(["oxxo"]), none.clone(), money(999, "mxn"), false),
            invalid
        );
        assert_eq!(
            parse(
                json!(["oxxo"]),
                none.clone(),
                money(1_000_001, "mxn"),
                false
            ),
            invalid
        );
        assert_eq!(
            parse(json!(["sepa_debit"]), none.clone(), mxn, false),
            invalid
        );
        assert_eq!(
            parse(
                json!(["customer_balance"]),
                none.clone(),
                money(500, "usd"),
                false
            ),
            invalid
        );
        for bad in [json!([]), json!("oxxo"), json!(["bitcoin"]), json!([7])] {
            assert_eq!(parse(bad, none.clone(), mxn, false), invalid);
        }
        assert_eq!(
            parse(json!(["card", "oxxo"]), none.clone(), mxn, true),
            Error::CaptureMethodInvalid.to_string()
        );
        assert!(!parse(json!(["card"]), none.clone(), mxn, true).contains("invalid"));
        assert_eq!(
            parse(json!(["customer_balance"]), none.clone(), mxn, false),
            Error::CustomerEmailRequired.to_string()
        );
        assert_eq!(
            parse(json!(["customer_balance"]), json!("no-at"), mxn, false),
            Error::EmailInvalid.to_string()
        );
        let ok = parse(
            json!(["customer_balance", "oxxo", "oxxo"]),
            json!("Ana@Example.MX"),
            mxn,
            false,
        );
        assert!(
            ok.contains("ana@example.mx") && ok.contains("[CustomerBalance, Oxxo]"),
            "{ok}"
        );
        assert_eq!(code(super::parse(None, None, mxn, false)), "None");
    }

    #[test]
    fn the_form_names_methods_options_and_deadlines() {
        let choice = MethodChoice {
            types: vec![MethodType::CustomerBalance],
            customer_email: Some("ana@example.mx".into()),
        };
        let mut form = Form::new();
        let settings = Delayed::default();
        let deadlines = Deadlines {
            first_use: 1_800_000_000_000,
            held: true,
        };
        choice.add_to(
            &mut form,
            &settings,
            money(500, "eur"),
            Some("cus_1"),
            deadlines,
        );
        let encoded = form.encode();
        for part in [
            "payment_method_types[]=customer_balance",
            "payment_method_options[customer_balance][bank_transfer][type]=eu_bank_transfer",
            "[eu_bank_transfer][country]=NL",
            "metadata[pay_by]=2027-01-18T08%3A00%3A00.000Z",
            "metadata[hold_cap]=2027-01-18T08%3A00%3A00.000Z",
            "customer=cus_1",
            "confirm=true",
        ] {
            assert!(encoded.contains(part), "{part} in {encoded}");
        }
    }
}
