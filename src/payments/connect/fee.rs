//! The platform's application fee (docs/contract.md, "Connect"): a percentage of the amount, a
//! fixed part per ticket in each currency, a floor and a ceiling per currency, and never as much
//! as the payment itself. Computed in minor units with the currency rules of [`crate::money`]:
//! a three-decimal currency's fee ends in 0 and an ISK or UGX fee in 00, as every amount Stripe
//! takes in them must.

use std::collections::BTreeMap;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Map, Value};

use crate::money::{decimal_to_json, Currency, Exponent};

/// The largest percentage a policy may take.
const MAX_PERCENT: u32 = 50;
/// The most decimals a percentage may have (`2.25`).
const PERCENT_DECIMALS: u32 = 2;

/// Amounts in major units, per currency (lowercase ISO code): `eur: 0.50, mxn: 10`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PerCurrency(BTreeMap<&'static str, Decimal>);

impl PerCurrency {
    /// `eur:0.50,mxn:10`, as the settings give it; a blank text is empty.
    pub fn parse_setting(text: &str) -> Result<PerCurrency, String> {
        let mut amounts = BTreeMap::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (code, amount) = entry
                .split_once(':')
                .ok_or_else(|| format!("'{entry}' is not currency:amount (eur:0.50)"))?;
            let currency = Currency::parse(code.trim())
                .ok_or_else(|| format!("'{}' is not a currency Stripe charges in", code.trim()))?;
            let amount = non_negative(&Value::String(amount.trim().to_string()))
                .ok_or_else(|| format!("'{}' is not an amount of 0 or more", amount.trim()))?;
            if amounts.insert(currency.code(), amount).is_some() {
                return Err(format!("{} is given twice", currency.code()));
            }
        }
        Ok(PerCurrency(amounts))
    }

    /// `{"eur": "0.50", "mxn": 10}`: an object of currencies to amounts (numbers or decimal
    /// strings, 0 or more).
    fn from_json(value: &Value) -> Option<PerCurrency> {
        let mut amounts = BTreeMap::new();
        for (code, amount) in value.as_object()? {
            let currency = Currency::parse(code)?;
            if amounts
                .insert(currency.code(), non_negative(amount)?)
                .is_some()
            {
                return None;
            }
        }
        Some(PerCurrency(amounts))
    }

    fn to_json(&self) -> Value {
        let amounts: Map<String, Value> = self
            .0
            .iter()
            .map(|(code, amount)| {
                let shown = Currency::parse(code)
                    .and_then(|c| c.to_minor(*amount).map(|m| c.to_major(m)))
                    .unwrap_or(*amount);
                (code.to_string(), decimal_to_json(shown))
            })
            .collect();
        Value::Object(amounts)
    }

    /// The amount for `currency`, in its minor units (rounded as every amount is), if given.
    fn minor(&self, currency: Currency) -> Option<i64> {
        let amount = self.0.get(currency.code())?;
        Some(currency.to_minor(*amount).unwrap_or(i64::MAX))
    }

    pub fn currencies(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.keys().copied()
    }
}

/// A fee policy: the platform's (`PLATFORM_FEE_*`), or an organiser's own, whose fields each
/// replace the platform's whole when given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeePolicy {
    /// Percent of the amount, 0 to 50, up to two decimals.
    pub percent: Option<Decimal>,
    /// Per ticket, per currency.
    pub fixed: Option<PerCurrency>,
    /// Per payment, per currency: the fee is raised to it.
    pub min: Option<PerCurrency>,
    /// Per payment, per currency: the fee is lowered to it.
    pub max: Option<PerCurrency>,
}

/// Why a fee policy cannot be read; the text says which part, in English, for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("fee policy invalid: {0}")]
pub struct FeeInvalid(pub String);

/// A percentage of 0 to 50 with at most two decimals.
pub fn percent(value: &Value) -> Option<Decimal> {
    let percent = non_negative(value)?.normalize();
    (percent <= Decimal::from(MAX_PERCENT) && percent.scale() <= PERCENT_DECIMALS)
        .then_some(percent)
}

/// A number (or a string holding a decimal number) of 0 or more.
fn non_negative(value: &Value) -> Option<Decimal> {
    let text = match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        _ => return None,
    };
    let ok = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    ok.then(|| Decimal::from_str(&text).ok()).flatten()
}

impl FeePolicy {
    /// An organiser's `fee` object: `{"percent", "fixed", "min", "max"}`, each optional; any
    /// other field, or a value that is not what its field takes, is refused.
    pub fn from_json(value: &Value) -> Result<FeePolicy, FeeInvalid> {
        let object = value
            .as_object()
            .ok_or_else(|| FeeInvalid("not an object".into()))?;
        let mut policy = FeePolicy::default();
        for (field, value) in object {
            let amounts = || {
                PerCurrency::from_json(value).ok_or_else(|| {
                    FeeInvalid(format!("{field}: not currencies with amounts of 0 or more"))
                })
            };
            match field.as_str() {
                "percent" => {
                    policy.percent = Some(percent(value).ok_or_else(|| {
                        FeeInvalid("percent: not 0 to 50 with up to two decimals".into())
                    })?)
                }
                "fixed" => policy.fixed = Some(amounts()?),
                "min" => policy.min = Some(amounts()?),
                "max" => policy.max = Some(amounts()?),
                other => return Err(FeeInvalid(format!("unknown field {other}"))),
            }
        }
        policy.check()?;
        Ok(policy)
    }

    /// A floor above the ceiling, in any currency, is refused.
    pub fn check(&self) -> Result<(), FeeInvalid> {
        let (Some(min), Some(max)) = (&self.min, &self.max) else {
            return Ok(());
        };
        for (code, floor) in &min.0 {
            if max.0.get(code).is_some_and(|ceiling| floor > ceiling) {
                return Err(FeeInvalid(format!("min above max for {code}")));
            }
        }
        Ok(())
    }

    /// The fields given, as the `fee` object takes them (amounts with their currency's
    /// decimals): what the ledger keeps and the functions answer.
    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        if let Some(percent) = self.percent {
            object.insert("percent".into(), decimal_to_json(percent.normalize()));
        }
        for (field, amounts) in [
            ("fixed", &self.fixed),
            ("min", &self.min),
            ("max", &self.max),
        ] {
            if let Some(amounts) = amounts {
                object.insert(field.into(), amounts.to_json());
            }
        }
        Value::Object(object)
    }

    /// This policy over `base`: each field given here replaces `base`'s whole.
    pub fn over(&self, base: &FeePolicy) -> FeePolicy {
        FeePolicy {
            percent: self.percent.or(base.percent),
            fixed: self.fixed.clone().or_else(|| base.fixed.clone()),
            min: self.min.clone().or_else(|| base.min.clone()),
            max: self.max.clone().or_else(|| base.max.clone()),
        }
    }

    /// The policy with every field present (a percentage of 0 and no amounts where unset), as
    /// the functions show the one in force.
    pub fn complete(&self) -> FeePolicy {
        self.over(&FeePolicy {
            percent: Some(Decimal::ZERO),
            fixed: Some(PerCurrency::default()),
            min: Some(PerCurrency::default()),
            max: Some(PerCurrency::default()),
        })
    }

    /// The fee of a payment of `amount` minor units of `currency` for `tickets` tickets, in
    /// minor units: `round_half_up(amount × percent / 100) + fixed × tickets`, raised to `min`
    /// and lowered to `max` where they are set, and at most `amount` less one minor unit
    /// (Stripe wants a fee below the amount). Rounded to what the currency's amounts can be.
    pub fn fee(&self, amount: i64, currency: Currency, tickets: i64) -> i64 {
        let step = step(currency);
        let share = Decimal::from(amount) * self.percent.unwrap_or_default() / Decimal::ONE_HUNDRED;
        let rounded = (share / Decimal::from(step))
            .round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero);
        let mut fee = i64::try_from(rounded)
            .unwrap_or(i64::MAX)
            .saturating_mul(step);
        if let Some(fixed) = self.fixed.as_ref().and_then(|f| f.minor(currency)) {
            fee = fee.saturating_add(fixed.saturating_mul(tickets.max(0)));
        }
        if let Some(floor) = self.min.as_ref().and_then(|m| m.minor(currency)) {
            fee = fee.max(floor);
        }
        if let Some(ceiling) = self.max.as_ref().and_then(|m| m.minor(currency)) {
            fee = fee.min(ceiling);
        }
        fee.min(amount - step).max(0)
    }
}

/// The smallest difference between two amounts Stripe takes in `currency`, minor units.
pub fn step(currency: Currency) -> i64 {
    match currency.exponent() {
        Exponent::Zero | Exponent::Two => 1,
        Exponent::Three => 10,
        Exponent::WholeTimesHundred => 100,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn policy(value: Value) -> FeePolicy {
        FeePolicy::from_json(&value).unwrap()
    }

    fn cur(code: &str) -> Currency {
        Currency::parse(code).unwrap()
    }

    /// docs/contract.md's table of the formula: each case's policy (the platform's, and the
    /// organiser's over it), the payment and the fee in minor units.
    #[test]
    fn the_formula_table() {
        let platform = policy(json!({
            "percent": "5", "fixed": {"eur": "0.50", "mxn": 10, "jpy": 30, "kwd": "0.105"},
            "min": {"usd": "1.00"}, "max": {"mxn": 50}
        }));
        let organiser = policy(json!({"percent": 2.5, "fixed": {"eur": "0.25"}}));
        let none = FeePolicy::default();
        #[rustfmt::skip]
        let cases: [(&str, &FeePolicy, &FeePolicy, i64, &str, i64, i64); 14] = [
            ("percent and fixed, EUR", &platform, &none, 2000, "eur", 1, 150),
            ("fixed per ticket", &platform, &none, 2000, "eur", 3, 250),
            ("half a cent rounds up", &platform, &none, 1010, "eur", 1, 101),
            ("JPY: no decimals", &platform, &none, 1000, "jpy", 2, 110),
            ("JPY: half a yen rounds up", &platform, &none, 1010, "jpy", 1, 81),
            ("KWD: ends in 0, 0.105 fixed is 0.110", &platform, &none, 12340, "kwd", 1, 730),
            ("ISK: whole units, × 100", &policy(json!({"percent": 10})), &none, 55500, "isk", 1, 5600),
            ("min raises it", &platform, &none, 1000, "usd", 1, 100),
            ("max lowers it", &platform, &none, 100_000, "mxn", 1, 5000),
            ("cap: below the amount", &policy(json!({"fixed": {"usd": 5}})), &none, 300, "usd", 1, 299),
            ("cap in KWD keeps the last 0", &policy(json!({"percent": 50, "fixed": {"kwd": 1}})), &none, 1000, "kwd", 1, 990),
            ("override: percent and fixed replaced", &platform, &organiser, 2000, "eur", 2, 100),
            ("override keeps the platform's max", &platform, &organiser, 1_000_000, "mxn", 1, 5000),
            ("override to zero", &platform, &policy(json!({"percent": 0, "fixed": {}, "min": {}})), 5000, "usd", 1, 0),
        ];
        for (name, base, own, amount, currency, tickets, expected) in cases {
            let fee = own.over(base).fee(amount, cur(currency), tickets);
            assert_eq!(fee, expected, "{name}");
        }
    }

    #[test]
    fn fee_objects_are_read_strictly() {
        for bad in [
            json!([]),
            json!({"percent": 51}),
            json!({"percent": "2.125"}),
            json!({"percent": -1}),
            json!({"percent": "x"}),
            json!({"fixed": {"zzz": 1}}),
            json!({"fixed": {"eur": -1}}),
            json!({"fixed": {"eur": "1e3"}}),
            json!({"fixed": [1]}),
            json!({"min": {"eur": 2}, "max": {"eur": 1}}),
            json!({"percentage": 5}),
            json!({"fixed": {"eur": 1, "EUR": 2}}),
        ] {
            assert!(FeePolicy::from_json(&bad).is_err(), "{bad}");
        }
        let read = policy(json!({"percent": "2.50", "fixed": {"EUR": "0.5"}, "max": {}}));
        assert_eq!(
            read.to_json().to_string(),
            r#"{"percent":2.5,"fixed":{"eur":0.50},"max":{}}"#
        );
        assert_eq!(FeePolicy::from_json(&read.to_json()), Ok(read));
    }

    #[test]
    fn settings_per_currency() {
        let fixed = PerCurrency::parse_setting(" eur:0.50, mxn:10 ,jpy:30").unwrap();
        assert_eq!(
            fixed.currencies().collect::<Vec<_>>(),
            ["eur", "jpy", "mxn"]
        );
        assert_eq!(fixed.minor(cur("mxn")), Some(1000));
        assert_eq!(PerCurrency::parse_setting(""), Ok(PerCurrency::default()));
        for bad in ["eur", "eur:x", "zzz:1", "eur:1,eur:2", "eur:-1"] {
            assert!(PerCurrency::parse_setting(bad).is_err(), "{bad}");
        }
    }

    fn any_currency() -> impl Strategy<Value = Currency> {
        proptest::sample::select(Currency::all().collect::<Vec<_>>())
    }

    fn any_amounts() -> impl Strategy<Value = Option<PerCurrency>> {
        proptest::option::of(
            proptest::collection::btree_map(
                proptest::sample::select(Currency::all().map(|c| c.code()).collect::<Vec<_>>()),
                0i64..10_000_000,
                0..4,
            )
            .prop_map(|amounts| {
                PerCurrency(
                    amounts
                        .into_iter()
                        .map(|(code, units)| (code, Decimal::new(units, 2)))
                        .collect(),
                )
            }),
        )
    }

    proptest! {
        /// Whatever the policy and the payment, the fee is 0 or more, below what is charged,
        /// and an amount the currency can have.
        #[test]
        fn the_fee_is_never_negative_and_always_below_the_amount(
            currency in any_currency(),
            raw in 1i64..=crate::money::MAX_MINOR,
            percent in 0u32..=5000,
            fixed in any_amounts(),
            min in any_amounts(),
            max in any_amounts(),
            tickets in 1i64..=1000,
        ) {
            let step = step(currency);
            let amount = (raw / step).max(1) * step;
            let policy = FeePolicy { percent: Some(Decimal::new(percent.into(), 2)), fixed, min, max };
            let fee = policy.fee(amount, currency, tickets);
            prop_assert!(fee >= 0);
            prop_assert!(fee < amount);
            prop_assert_eq!(fee % step, 0);
        }
    }
}
