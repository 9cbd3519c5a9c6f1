//! The sandbox's money arithmetic: what Stripe keeps of a charge or a dispute, by the country of
//! the account whose balance it moves (the sandbox's own schedule, shaped like Stripe's
//! published prices but not a price list), and a fixed table of exchange rates for an account
//! that settles in another currency than it charged. Everything is integer minor units, rounded
//! one way (half away from zero), so that a test can predict every amount exactly.

use serde_json::{Number, Value};

use crate::currency::Currency;

/// An exchange rate's scale: rates are kept in millionths.
pub const RATE_SCALE: i64 = 1_000_000;

/// How many units of each currency one US dollar buys, in millionths: the sandbox's fixed
/// table (not a market's). It covers the default currency of every country the sandbox opens
/// accounts in.
pub const PER_USD: &[(&str, i64)] = &[
    ("aed", 3_670_000),
    ("aud", 1_500_000),
    ("bgn", 1_750_000),
    ("brl", 5_000_000),
    ("cad", 1_350_000),
    ("chf", 900_000),
    ("czk", 22_500_000),
    ("dkk", 6_700_000),
    ("eur", 900_000),
    ("gbp", 800_000),
    ("hkd", 7_800_000),
    ("huf", 360_000_000),
    ("inr", 83_000_000),
    ("jpy", 150_000_000),
    ("mxn", 20_000_000),
    ("myr", 4_700_000),
    ("nok", 10_500_000),
    ("nzd", 1_650_000),
    ("pln", 4_000_000),
    ("ron", 4_500_000),
    ("sek", 10_500_000),
    ("sgd", 1_350_000),
    ("thb", 36_000_000),
    ("usd", 1_000_000),
];

/// `n / d` rounded half away from zero (`d` > 0): 2.5 → 3, −2.5 → −3, so that an amount and its
/// opposite round to opposites.
pub fn div_round(n: i128, d: i128) -> i128 {
    let q = (2 * n.abs() + d) / (2 * d);
    if n < 0 {
        -q
    } else {
        q
    }
}

/// `amount × bps / 10000`, rounded half away from zero.
fn percent(amount: i64, bps: i64) -> i64 {
    i64::try_from(div_round(i128::from(amount) * i128::from(bps), 10_000)).unwrap_or(i64::MAX)
}

fn per_usd(currency: &str) -> Option<i64> {
    PER_USD
        .iter()
        .find(|(c, _)| *c == currency)
        .map(|(_, units)| *units)
}

/// The rate from `from` to `to`, in millionths: how many `to` one `from` buys (major units),
/// the quotient of the table's entries rounded to six decimals. `None` when either currency is
/// not in the table.
pub fn rate(from: &str, to: &str) -> Option<i64> {
    let (a, b) = (per_usd(from)?, per_usd(to)?);
    i64::try_from(div_round(
        i128::from(b) * i128::from(RATE_SCALE),
        i128::from(a),
    ))
    .ok()
}

/// A rate in millionths as the JSON number Stripe gives (`exchange_rate: 0.05`). The number is
/// made from its decimal digits, so it prints as they read.
pub fn rate_json(rate: i64) -> Value {
    let whole = rate / RATE_SCALE;
    let text = format!("{whole}.{:06}", rate % RATE_SCALE);
    text.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

/// `amount` (minor units of `from`) in `to`: the amount in `to`'s minor units and the rate used
/// (`None` when they are the same currency). `None` when there is no rate between them.
pub fn convert(amount: i64, from: &str, to: &str) -> Option<(i64, Option<i64>)> {
    if from == to {
        return Some((amount, None));
    }
    let rate = rate(from, to)?;
    let places = |code: &str| Currency::parse(code).map_or(2, |c| c.places());
    let scale = |p: u32| 10i128.pow(p);
    let converted = div_round(
        i128::from(amount) * i128::from(rate) * scale(places(to)),
        scale(places(from)) * i128::from(RATE_SCALE),
    );
    Some((i64::try_from(converted).ok()?, Some(rate)))
}

/// What Stripe keeps, in the sandbox, of the payments and disputes of accounts of some
/// countries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Which countries: `US`, `MX`, `EEA`, `GB`, or `other`.
    pub name: &'static str,
    /// Of a charge, in hundredths of a percent (290 = 2.9%).
    pub percent_bps: i64,
    /// Plus this per charge, in minor units of `currency`.
    pub fixed: i64,
    /// A dispute's fee, in minor units of `currency`.
    pub dispute: i64,
    /// The currency of `fixed` and `dispute`; converted to the settlement currency when it
    /// differs.
    pub currency: &'static str,
    /// The tax on Stripe's fees, in hundredths of a percent (0: none).
    pub tax_bps: i64,
    /// How the tax is named in `fee_details`.
    pub tax_name: &'static str,
}

/// The European Economic Area.
const EEA: &[&str] = &[
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IS",
    "IT", "LI", "LT", "LU", "LV", "MT", "NL", "NO", "PL", "PT", "RO", "SE", "SI", "SK",
];

const US: Schedule = Schedule {
    name: "US",
    percent_bps: 290,
    fixed: 30,
    dispute: 1500,
    currency: "usd",
    tax_bps: 0,
    tax_name: "",
};

const SCHEDULES: &[Schedule] = &[
    US,
    Schedule {
        name: "MX",
        percent_bps: 360,
        fixed: 300,
        dispute: 25_000,
        currency: "mxn",
        tax_bps: 1600,
        tax_name: "IVA (16%)",
    },
    Schedule {
        name: "EEA",
        percent_bps: 150,
        fixed: 25,
        dispute: 2000,
        currency: "eur",
        tax_bps: 0,
        tax_name: "",
    },
    Schedule {
        name: "GB",
        percent_bps: 150,
        fixed: 20,
        dispute: 2000,
        currency: "gbp",
        tax_bps: 0,
        tax_name: "",
    },
];

/// The schedule of an account of `country` (an ISO code): the United States', Mexico's, the
/// EEA's, the United Kingdom's, or for any other country the US one under the name `other`.
pub fn schedule(country: &str) -> Schedule {
    let country = country.to_ascii_uppercase();
    let name = if EEA.contains(&country.as_str()) {
        "EEA"
    } else {
        country.as_str()
    };
    SCHEDULES
        .iter()
        .find(|s| s.name == name)
        .copied()
        .unwrap_or(Schedule {
            name: "other",
            ..US
        })
}

/// One line of a balance transaction's `fee_details`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeeLine {
    /// `stripe_fee`, `tax` or `application_fee`.
    pub kind: &'static str,
    pub amount: i64,
    pub description: String,
}

/// `fixed` of the schedule's currency in `currency`; nothing when there is no rate.
fn fixed_in(schedule: &Schedule, fixed: i64, currency: &str) -> i64 {
    convert(fixed, schedule.currency, currency).map_or(0, |(amount, _)| amount)
}

/// Stripe's fee `amount` and the tax on it, as fee lines (the tax only where there is one).
fn with_tax(schedule: &Schedule, amount: i64, description: &str) -> Vec<FeeLine> {
    let mut lines = vec![FeeLine {
        kind: "stripe_fee",
        amount,
        description: description.to_string(),
    }];
    if schedule.tax_bps > 0 {
        lines.push(FeeLine {
            kind: "tax",
            amount: percent(amount, schedule.tax_bps),
            description: schedule.tax_name.to_string(),
        });
    }
    lines
}

/// What Stripe keeps of a charge that settles as `amount` of `currency` on an account of
/// `country`: `percent` of the amount plus the fixed part (both rounded half away from zero),
/// and the tax on that.
pub fn processing(country: &str, amount: i64, currency: &str) -> Vec<FeeLine> {
    let schedule = schedule(country);
    let fee = percent(amount, schedule.percent_bps) + fixed_in(&schedule, schedule.fixed, currency);
    with_tax(&schedule, fee, "Stripe processing fees")
}

/// A dispute's fee on an account of `country` settling in `currency`, and the tax on it.
pub fn dispute(country: &str, currency: &str) -> Vec<FeeLine> {
    let schedule = schedule(country);
    let fee = fixed_in(&schedule, schedule.dispute, currency);
    with_tax(&schedule, fee, "Dispute fee")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn total(lines: &[FeeLine]) -> i64 {
        lines.iter().map(|l| l.amount).sum()
    }

    #[test]
    fn rounding_is_half_away_from_zero() {
        assert_eq!(div_round(5, 2), 3);
        assert_eq!(div_round(-5, 2), -3);
        assert_eq!(div_round(4, 3), 1);
        assert_eq!(div_round(-4, 3), -1);
        assert_eq!(div_round(0, 7), 0);
    }

    #[test]
    fn rates_come_from_the_table() {
        assert_eq!(rate("mxn", "usd"), Some(50_000));
        assert_eq!(rate("usd", "mxn"), Some(20_000_000));
        assert_eq!(rate("eur", "usd"), Some(1_111_111));
        assert_eq!(rate("mxn", "eur"), Some(45_000));
        assert_eq!(rate("usd", "xof"), None);
        assert_eq!(rate_json(50_000).to_string(), "0.05");
        assert_eq!(rate_json(1_111_111).to_string(), "1.111111");
        assert_eq!(rate_json(20_000_000).to_string(), "20.0");
    }

    #[test]
    fn conversions_respect_each_currencys_decimals() {
        // 100.00 MXN is 5.00 USD; 10.00 USD is ¥1500; ¥1000 is 6.67 USD.
        assert_eq!(convert(10_000, "mxn", "usd"), Some((500, Some(50_000))));
        assert_eq!(
            convert(1_000, "usd", "jpy"),
            Some((1_500, Some(150_000_000)))
        );
        assert_eq!(convert(1_000, "jpy", "usd"), Some((667, Some(6_667))));
        assert_eq!(convert(1_234, "eur", "eur"), Some((1_234, None)));
        assert_eq!(convert(1_234, "eur", "xof"), None);
    }

    #[test]
    fn the_schedule_by_country() {
        // Mexico: 3.6% + 3.00 MXN, plus 16% IVA on the fee. 100.00 MXN: 3.60 + 3.00 = 6.60,
        // IVA 1.06 (1.056 rounded).
        let mx = processing("MX", 10_000, "mxn");
        assert_eq!(
            mx.iter().map(|l| (l.kind, l.amount)).collect::<Vec<_>>(),
            [("stripe_fee", 660), ("tax", 106)]
        );
        // The EEA: 1.5% + 0.25 EUR. 20.00 EUR: 0.30 + 0.25.
        assert_eq!(total(&processing("ES", 2_000, "eur")), 55);
        // The US: 2.9% + 0.30 USD. 20.00 USD: 0.58 + 0.30.
        assert_eq!(total(&processing("US", 2_000, "usd")), 88);
        // A US account settling a Mexican charge in USD pays on the dollars.
        assert_eq!(total(&processing("US", 500, "usd")), 45);
        // Elsewhere the US row, its fixed part converted: 10.00 CAD is 0.29 + 0.41 CAD.
        assert_eq!(schedule("CA").name, "other");
        assert_eq!(total(&processing("CA", 1_000, "cad")), 70);
        assert_eq!(schedule("de").name, "EEA");
        // Disputes: 15.00 USD, 20.00 EUR, 250.00 MXN plus IVA.
        assert_eq!(total(&dispute("US", "usd")), 1_500);
        assert_eq!(total(&dispute("FR", "eur")), 2_000);
        assert_eq!(total(&dispute("MX", "mxn")), 29_000);
    }

    proptest! {
        /// An amount and its opposite convert to opposites, and converting keeps the sign.
        #[test]
        fn conversion_is_symmetric(
            amount in 0i64..10_000_000_000,
            from in 0usize..PER_USD.len(),
            to in 0usize..PER_USD.len(),
        ) {
            let (from, to) = (PER_USD[from].0, PER_USD[to].0);
            let (up, rate) = convert(amount, from, to).unwrap();
            let (down, _) = convert(-amount, from, to).unwrap();
            prop_assert_eq!(up, -down);
            prop_assert!(up >= 0);
            prop_assert_eq!(rate.is_none(), from == to);
        }

        /// The fee is the percent plus the fixed part, never less than the fixed part, never
        /// falling as the amount grows, and its tax is the tax rate of it, rounded.
        #[test]
        fn fees_grow_with_the_amount(
            amount in 0i64..10_000_000_000,
            more in 0i64..1_000_000,
            country in prop::sample::select(vec!["US", "MX", "ES", "GB", "CA", "JP"]),
        ) {
            let currency = match country {
                "US" | "CA" => "usd",
                "MX" => "mxn",
                "GB" => "gbp",
                "JP" => "jpy",
                _ => "eur",
            };
            let schedule = schedule(country);
            let lines = processing(country, amount, currency);
            let fee = lines[0].amount;
            prop_assert!(fee >= fixed_in(&schedule, schedule.fixed, currency));
            prop_assert!(total(&processing(country, amount + more, currency)) >= total(&lines));
            let expected = percent(amount, schedule.percent_bps)
                + fixed_in(&schedule, schedule.fixed, currency);
            prop_assert_eq!(fee, expected);
            if let Some(tax) = lines.get(1) {
                prop_assert_eq!(tax.amount, (fee * schedule.tax_bps + 5_000) / 10_000);
            }
        }
    }
}
