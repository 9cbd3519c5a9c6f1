//! Currencies and exact conversion between major units (what people type, `50.00`) and Stripe's
//! minor units (what Stripe stores, `5000`). All arithmetic is `rust_decimal`: an amount never
//! passes through binary floating point once it has left the JSON text.

use std::fmt;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};

/// Stripe's largest amount for a single charge, in minor units (eight digits).
pub const MAX_MINOR: i64 = 99_999_999;

/// How a currency's major units map onto Stripe's integer amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Exponent {
    /// `¥500` is sent as `500`.
    Zero,
    /// `$50.00` is sent as `5000`.
    Two,
    /// `1.234 KWD` is sent as `1230`: Stripe wants the last digit 0.
    Three,
    /// ISK and UGX: zero-decimal at Stripe, but the API wants a two-decimal value ending in `00`.
    WholeTimesHundred,
}

const ZERO_DECIMAL: &[&str] = &[
    "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "vnd", "vuv", "xaf",
    "xof", "xpf",
];
const THREE_DECIMAL: &[&str] = &["bhd", "jod", "kwd", "omr", "tnd"];
const WHOLE_TIMES_HUNDRED: &[&str] = &["isk", "ugx"];

/// Two-decimal currencies Stripe charges in (its presentment currencies).
const TWO_DECIMAL: &[&str] = &[
    "usd", "aed", "afn", "all", "amd", "ang", "aoa", "ars", "aud", "awg", "azn", "bam", "bbd",
    "bdt", "bgn", "bmd", "bnd", "bob", "brl", "bsd", "bwp", "byn", "bzd", "cad", "cdf", "chf",
    "cny", "cop", "crc", "cve", "czk", "dkk", "dop", "dzd", "egp", "etb", "eur", "fjd", "fkp",
    "gbp", "gel", "gip", "gmd", "gtq", "gyd", "hkd", "hnl", "htg", "huf", "idr", "ils", "inr",
    "jmd", "kes", "kgs", "khr", "kyd", "kzt", "lak", "lbp", "lkr", "lrd", "lsl", "mad", "mdl",
    "mkd", "mmk", "mnt", "mop", "mur", "mvr", "mwk", "mxn", "myr", "mzn", "nad", "ngn", "nio",
    "nok", "npr", "nzd", "pab", "pen", "pgk", "php", "pkr", "pln", "qar", "ron", "rsd", "rub",
    "sar", "sbd", "scr", "sek", "sgd", "shp", "sle", "sos", "srd", "std", "szl", "thb", "tjs",
    "top", "try", "ttd", "twd", "tzs", "uah", "uyu", "uzs", "wst", "xcd", "yer", "zar", "zmw",
];

/// Stripe's published minimum charge per currency, in minor units. Currencies not listed here
/// have a minimum that Stripe defines as "the equivalent of USD 0.50", which needs an exchange
/// rate; for those only the smallest positive amount is enforced here and Stripe has the last word.
const MINIMUMS: &[(&str, i64)] = &[
    ("usd", 50),
    ("aed", 200),
    ("aud", 50),
    ("bgn", 100),
    ("brl", 50),
    ("cad", 50),
    ("chf", 50),
    ("czk", 1500),
    ("dkk", 250),
    ("eur", 50),
    ("gbp", 30),
    ("hkd", 400),
    ("huf", 17500),
    ("inr", 50),
    ("jpy", 50),
    ("mxn", 1000),
    ("myr", 200),
    ("nok", 300),
    ("nzd", 50),
    ("pln", 200),
    ("ron", 200),
    ("sek", 300),
    ("sgd", 50),
    ("thb", 1000),
];

/// A currency Stripe charges in. Constructed only through [`Currency::parse`], so holding one
/// means the code is supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency {
    code: &'static str,
    exponent: Exponent,
}

impl Currency {
    /// Accepts any case (`"USD"`, `"usd"`); returns `None` for anything Stripe does not charge in.
    pub fn parse(input: &str) -> Option<Currency> {
        if input.len() != 3 || !input.bytes().all(|b| b.is_ascii_alphabetic()) {
            return None;
        }
        let lower = input.to_ascii_lowercase();
        let tables: [(&[&str], Exponent); 4] = [
            (TWO_DECIMAL, Exponent::Two),
            (ZERO_DECIMAL, Exponent::Zero),
            (THREE_DECIMAL, Exponent::Three),
            (WHOLE_TIMES_HUNDRED, Exponent::WholeTimesHundred),
        ];
        tables.iter().find_map(|(codes, exponent)| {
            codes.iter().find(|c| **c == lower).map(|code| Currency {
                code,
                exponent: *exponent,
            })
        })
    }

    /// Every supported currency, for tests and documentation.
    pub fn all() -> impl Iterator<Item = Currency> {
        TWO_DECIMAL
            .iter()
            .chain(ZERO_DECIMAL)
            .chain(THREE_DECIMAL)
            .chain(WHOLE_TIMES_HUNDRED)
            .filter_map(|c| Currency::parse(c))
    }

    /// Lowercase ISO code, as Stripe wants it.
    pub fn code(&self) -> &'static str {
        self.code
    }

    pub fn exponent(&self) -> Exponent {
        self.exponent
    }

    /// Smallest amount Stripe accepts, in minor units.
    pub fn minimum_minor(&self) -> i64 {
        MINIMUMS
            .iter()
            .find(|(c, _)| *c == self.code)
            .map(|(_, m)| *m)
            .unwrap_or(match self.exponent {
                Exponent::Zero => 1,
                Exponent::Two => 1,
                Exponent::Three => 10,
                Exponent::WholeTimesHundred => 100,
            })
    }

    /// Exact major → minor conversion, rounding half away from zero as docs/contract.md §3 gives it.
    /// `None` when the result does not fit in an `i64`.
    pub fn to_minor(&self, major: Decimal) -> Option<i64> {
        let away = RoundingStrategy::MidpointAwayFromZero;
        let minor = match self.exponent {
            Exponent::Zero => major.round_dp_with_strategy(0, away),
            Exponent::Two => major
                .checked_mul(Decimal::ONE_HUNDRED)?
                .round_dp_with_strategy(0, away),
            Exponent::Three => major
                .checked_mul(Decimal::ONE_HUNDRED)?
                .round_dp_with_strategy(0, away)
                .checked_mul(Decimal::TEN)?,
            Exponent::WholeTimesHundred => major
                .round_dp_with_strategy(0, away)
                .checked_mul(Decimal::ONE_HUNDRED)?,
        };
        i64::try_from(minor).ok()
    }

    /// Exact minor → major conversion, with the currency's own number of decimals
    /// (`5000` USD → `50.00`, `500` JPY → `500`, `1230` KWD → `1.230`, `500` ISK → `5.00`).
    pub fn to_major(&self, minor: i64) -> Decimal {
        let scale = match self.exponent {
            Exponent::Zero => 0,
            Exponent::Two | Exponent::WholeTimesHundred => 2,
            Exponent::Three => 3,
        };
        Decimal::new(minor, scale)
    }

    /// The major-unit amount as a JSON number with exactly the currency's decimals.
    pub fn to_major_json(&self, minor: i64) -> serde_json::Value {
        decimal_to_json(self.to_major(minor))
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

/// An amount in a currency's minor units, as Stripe counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

/// Major units for a response (`25.50`): written as a JSON number with exactly the currency's
/// decimals, never through binary floating point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Major(pub Decimal);

impl Major {
    /// `minor` in a currency given as Stripe sent it; one this build does not know gets
    /// Stripe's default of two decimals.
    pub fn of(minor: i64, currency: &str) -> Major {
        match Currency::parse(currency) {
            Some(c) => Major(c.to_major(minor)),
            None => Major(Decimal::new(minor, 2)),
        }
    }
}

impl fmt::Display for Major {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl serde::Serialize for Major {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        decimal_to_json(self.0).serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Major {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        let text = match &value {
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::String(s) => s.clone(),
            _ => return Err(serde::de::Error::custom("an amount must be a number")),
        };
        Decimal::from_str(&text)
            .or_else(|_| Decimal::from_scientific(&text))
            .map(Major)
            .map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for Major {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::SchemaType::Type(
                utoipa::openapi::schema::Type::Number,
            ))
            .description(Some(
                "Major units (25.50 is 25.50 of the currency), with exactly the currency's decimals",
            ))
            .examples([serde_json::json!(25.5)])
            .into()
    }
}

impl utoipa::ToSchema for Major {}

/// A JSON number carrying the decimal's exact digits (serde_json keeps the text as is because
/// the crate is built with `arbitrary_precision`).
pub fn decimal_to_json(value: Decimal) -> serde_json::Value {
    serde_json::Number::from_str(&value.to_string())
        .map(serde_json::Value::Number)
        .unwrap_or(serde_json::Value::Null)
}

/// Why an amount could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AmountError {
    /// Not a number, not positive, or not something a person would call an amount.
    Invalid,
    /// A positive number too large to represent at all.
    TooLarge,
}

/// Reads a major-unit amount from the JSON value a caller sent: a JSON number (exactly as it
/// was written) or a string holding a decimal number. It must be greater than zero.
pub fn parse_amount(value: &serde_json::Value) -> Result<Decimal, AmountError> {
    let text = match value {
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::String(s) => s.trim().to_string(),
        _ => return Err(AmountError::Invalid),
    };
    parse_decimal_text(&text)
}

/// The grammar of a decimal amount: optional sign, digits with an optional fraction (at least
/// one digit in all), optional exponent. No `NaN`, `Infinity`, hex or thousands separators.
fn parse_decimal_text(text: &str) -> Result<Decimal, AmountError> {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], Some(&text[i + 1..])),
        None => (text, None),
    };
    let (negative, digits) = match mantissa.as_bytes().first() {
        Some(b'-') => (true, &mantissa[1..]),
        Some(b'+') => (false, &mantissa[1..]),
        _ => (false, mantissa),
    };
    let (int_part, frac_part) = match digits.split_once('.') {
        Some((i, f)) => (i, f),
        None => (digits, ""),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int_part.len() + frac_part.len() == 0 || !all_digits(int_part) || !all_digits(frac_part) {
        return Err(AmountError::Invalid);
    }
    let exp: i64 = match exponent {
        None => 0,
        Some(e) => {
            let unsigned = e.strip_prefix(['+', '-']).unwrap_or(e);
            if unsigned.is_empty() || !all_digits(unsigned) {
                return Err(AmountError::Invalid);
            }
            // Far beyond any amount either way; clamping keeps the arithmetic below in range.
            let magnitude = unsigned
                .parse::<i64>()
                .unwrap_or(i64::MAX)
                .min(MAX_EXPONENT);
            if e.starts_with('-') {
                -magnitude
            } else {
                magnitude
            }
        }
    };
    let nonzero = int_part.bytes().chain(frac_part.bytes()).any(|b| b != b'0');
    if negative || !nonzero {
        return Err(AmountError::Invalid);
    }
    // The value is `significant × 10^power`, computed on the digits so that no step rounds.
    let all = format!("{int_part}{frac_part}");
    let significant = all.trim_start_matches('0');
    let trailing_zeros = significant.len() - significant.trim_end_matches('0').len();
    let significant = &significant[..significant.len() - trailing_zeros];
    let mut power = exp - frac_part.len() as i64 + trailing_zeros as i64;
    // value < 10^order; 10^28 is beyond what Decimal holds and far beyond any amount.
    let order = power + significant.len() as i64;
    if order > 28 {
        return Err(AmountError::TooLarge);
    }
    // Keep at most 28 significant digits. Dropping digits only matters below 10^-4 as long as
    // the value is under 10^24, and rounding to at most three decimals never looks that far;
    // a value of 10^24 or more is too large whatever its last digits are.
    let mut digits = significant;
    if digits.len() > 28 {
        power += (digits.len() - 28) as i64;
        digits = &digits[..28];
    }
    // Below 10^-28 (Decimal's finest scale) only "positive but negligible" matters.
    if power < -28 {
        let drop = (-28 - power) as usize;
        if drop >= digits.len() {
            return Ok(Decimal::new(1, 28));
        }
        digits = &digits[..digits.len() - drop];
        power = -28;
    }
    let mantissa: i128 = digits.parse().map_err(|_| AmountError::Invalid)?;
    let value = if power >= 0 {
        // order <= 28, so the product stays below 10^28.
        mantissa
            .checked_mul(10i128.pow(power as u32))
            .and_then(|m| Decimal::try_from_i128_with_scale(m, 0).ok())
    } else {
        Decimal::try_from_i128_with_scale(mantissa, (-power) as u32).ok()
    };
    match value {
        Some(v) if v.is_zero() => Ok(Decimal::new(1, 28)),
        Some(v) => Ok(v),
        None => Err(AmountError::TooLarge),
    }
}

/// Exponents beyond this are treated as this: 10^±100000 is nowhere near an amount either way.
const MAX_EXPONENT: i64 = 100_000;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn minor(cur: &str, amount: &str) -> i64 {
        Currency::parse(cur).unwrap().to_minor(d(amount)).unwrap()
    }

    #[test]
    fn spec_examples() {
        assert_eq!(minor("usd", "50"), 5000);
        assert_eq!(minor("usd", "19.999"), 2000);
        assert_eq!(minor("usd", "1.005"), 101);
        assert_eq!(minor("jpy", "500"), 500);
        assert_eq!(minor("isk", "5"), 500);
        assert_eq!(minor("kwd", "1.234"), 1230);
        assert_eq!(minor("kwd", "1.235"), 1240);
        assert_eq!(minor("ugx", "1000.5"), 100100);
    }

    #[test]
    fn case_insensitive_lookup_and_rejects() {
        assert_eq!(Currency::parse("USD").unwrap().code(), "usd");
        assert!(Currency::parse("xyz").is_none());
        assert!(Currency::parse("us").is_none());
        assert!(Currency::parse("usdd").is_none());
        assert!(Currency::parse("u$d").is_none());
        assert!(Currency::parse("ÜSD").is_none());
    }

    #[test]
    fn parse_amount_exact_from_json_text() {
        let v: serde_json::Value = serde_json::from_str(r#"{"a": 1.005}"#).unwrap();
        assert_eq!(parse_amount(&v["a"]).unwrap(), d("1.005"));
        assert_eq!(parse_amount(&json!("19.999")).unwrap(), d("19.999"));
        assert_eq!(parse_amount(&json!(" 50 ")).unwrap(), d("50"));
        assert_eq!(parse_amount(&json!("5e1")).unwrap(), d("50"));
        assert_eq!(parse_amount(&json!(".5")).unwrap(), d("0.5"));
        let e: serde_json::Value = serde_json::from_str(r#"{"a": 2.5E-1}"#).unwrap();
        assert_eq!(parse_amount(&e["a"]).unwrap(), d("0.25"));
    }

    #[test]
    fn parse_amount_rejects() {
        for bad in [
            json!(null),
            json!(true),
            json!([]),
            json!({}),
            json!(""),
            json!("abc"),
            json!("NaN"),
            json!("Infinity"),
            json!("0x10"),
            json!("1,000"),
            json!("0"),
            json!("-5"),
            json!(0),
            json!(-1.5),
            json!("."),
            json!("1e"),
            json!("--1"),
        ] {
            assert_eq!(parse_amount(&bad), Err(AmountError::Invalid), "{bad}");
        }
        assert_eq!(parse_amount(&json!("1e400")), Err(AmountError::TooLarge));
        assert_eq!(
            parse_amount(&json!("123456789012345678901234567890")),
            Err(AmountError::TooLarge)
        );
        for huge in [
            "10e9223372036854775807",
            "1e99999999999999999999",
            "9e28",
            "1e100001",
        ] {
            assert_eq!(
                parse_amount(&json!(huge)),
                Err(AmountError::TooLarge),
                "{huge}"
            );
        }
    }

    #[test]
    fn extreme_exponents_and_long_fractions_stay_exact_enough() {
        for tiny in [
            "1e-9223372036854775808",
            "1e-99999999999999999999",
            "0.5e-40",
        ] {
            let v = parse_amount(&json!(tiny)).unwrap();
            assert!(v > Decimal::ZERO && v < Decimal::new(1, 20), "{tiny}");
        }
        let long = parse_amount(&json!("50.000000000000000000000000001")).unwrap();
        assert_eq!(Currency::parse("usd").unwrap().to_minor(long), Some(5000));
        let long = parse_amount(&json!("1.0049999999999999999999999999999999")).unwrap();
        assert_eq!(Currency::parse("usd").unwrap().to_minor(long), Some(100));
        let long = parse_amount(&json!("1.00500000000000000000000000000000001")).unwrap();
        assert_eq!(Currency::parse("usd").unwrap().to_minor(long), Some(101));
    }

    #[test]
    fn tiny_positive_amount_is_positive() {
        let tiny = parse_amount(&json!("1e-40")).unwrap();
        assert!(tiny > Decimal::ZERO);
        assert_eq!(Currency::parse("usd").unwrap().to_minor(tiny), Some(0));
    }

    #[test]
    fn to_major_uses_currency_decimals() {
        let usd = Currency::parse("usd").unwrap();
        assert_eq!(usd.to_major(5000).to_string(), "50.00");
        assert_eq!(usd.to_major_json(101).to_string(), "1.01");
        assert_eq!(
            Currency::parse("jpy").unwrap().to_major(500).to_string(),
            "500"
        );
        assert_eq!(
            Currency::parse("kwd").unwrap().to_major(1230).to_string(),
            "1.230"
        );
        assert_eq!(
            Currency::parse("isk").unwrap().to_major(500).to_string(),
            "5.00"
        );
    }

    #[test]
    fn minimums() {
        assert_eq!(Currency::parse("usd").unwrap().minimum_minor(), 50);
        assert_eq!(Currency::parse("gbp").unwrap().minimum_minor(), 30);
        assert_eq!(Currency::parse("mxn").unwrap().minimum_minor(), 1000);
        assert_eq!(Currency::parse("jpy").unwrap().minimum_minor(), 50);
    }

    /// A minor amount that Stripe would accept in this currency.
    fn valid_minor(cur: Currency, raw: i64) -> i64 {
        match cur.exponent() {
            Exponent::Three => raw / 10 * 10,
            Exponent::WholeTimesHundred => raw / 100 * 100,
            _ => raw,
        }
    }

    fn any_currency() -> impl Strategy<Value = Currency> {
        let all: Vec<Currency> = Currency::all().collect();
        proptest::sample::select(all)
    }

    proptest! {
        #[test]
        fn minor_major_minor_is_identity(cur in any_currency(), raw in 0i64..=MAX_MINOR) {
            let m = valid_minor(cur, raw);
            prop_assert_eq!(cur.to_minor(cur.to_major(m)), Some(m));
        }

        #[test]
        fn two_decimal_rounds_half_away_from_zero(cents in 0i64..10_000_000, thousandth in 0i64..10) {
            let usd = Currency::parse("usd").unwrap();
            // cents + thousandth/10 of a cent
            let major = Decimal::new(cents * 10 + thousandth, 3);
            let expected = if thousandth >= 5 { cents + 1 } else { cents };
            prop_assert_eq!(usd.to_minor(major), Some(expected));
        }

        #[test]
        fn three_decimal_results_end_in_zero(cur in proptest::sample::select(THREE_DECIMAL.to_vec()),
                                              units in 0i64..1_000_000_000, scale in 0u32..6) {
            let c = Currency::parse(cur).unwrap();
            let m = c.to_minor(Decimal::new(units, scale)).unwrap();
            prop_assert_eq!(m % 10, 0);
        }

        #[test]
        fn arbitrary_text_never_panics(text in ".{0,80}", exp in any::<i64>()) {
            let _ = parse_amount(&serde_json::Value::String(text.clone()));
            let _ = parse_amount(&serde_json::Value::String(format!("{text}e{exp}")));
            let _ = parse_amount(&serde_json::Value::String(format!("1.5e{exp}")));
        }

        #[test]
        fn parsed_text_equals_decimal(units in 1i64..i64::MAX, scale in 0u32..10) {
            let value = Decimal::new(units, scale);
            prop_assert_eq!(parse_amount(&serde_json::Value::String(value.to_string())), Ok(value));
        }
    }
}
