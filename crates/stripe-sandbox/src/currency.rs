//! The amount rules Stripe applies when a PaymentIntent is created, as its documentation states
//! them ("Supported currencies", "Zero-decimal currencies", "Minimum and maximum charge
//! amounts"). The sandbox keeps its own copy on purpose: a client with wrong rules must be told
//! so by the sandbox, as Stripe would tell it.

/// Stripe's largest amount for one charge, in the smallest unit: eight digits.
pub const MAX_AMOUNT: i64 = 99_999_999;

/// How many decimals a currency's amounts carry in the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decimals {
    /// `amount=500` is ¥500.
    Zero,
    /// `amount=5000` is $50.00.
    Two,
    /// `amount=1230` is 1.230 KWD; Stripe requires the last digit to be 0.
    Three,
    /// ISK and UGX: zero-decimal currencies that the API still takes as two-decimal amounts,
    /// which must then be whole (a multiple of 100).
    TwoButWhole,
}

const ZERO_DECIMAL: &[&str] = &[
    "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "vnd", "vuv", "xaf",
    "xof", "xpf",
];
const THREE_DECIMAL: &[&str] = &["bhd", "jod", "kwd", "omr", "tnd"];
const TWO_BUT_WHOLE: &[&str] = &["isk", "ugx"];
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

/// Stripe's published minimum per settlement currency, in the smallest unit. Elsewhere the
/// minimum is "the equivalent of 0.50 USD", which needs an exchange rate the sandbox does not
/// have: there only a positive amount is required.
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Currency {
    pub code: &'static str,
    pub decimals: Decimals,
}

/// Why an amount is refused: Stripe's error code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmountRefused {
    pub code: Option<&'static str>,
    pub message: String,
}

impl Currency {
    /// Any case is accepted, as Stripe does; the code is kept lowercase.
    pub fn parse(input: &str) -> Option<Currency> {
        let lower = input.to_ascii_lowercase();
        let tables: [(&[&str], Decimals); 4] = [
            (TWO_DECIMAL, Decimals::Two),
            (ZERO_DECIMAL, Decimals::Zero),
            (THREE_DECIMAL, Decimals::Three),
            (TWO_BUT_WHOLE, Decimals::TwoButWhole),
        ];
        tables.iter().find_map(|(codes, decimals)| {
            codes.iter().find(|c| **c == lower).map(|code| Currency {
                code,
                decimals: *decimals,
            })
        })
    }

    pub fn minimum(&self) -> i64 {
        MINIMUMS
            .iter()
            .find(|(c, _)| *c == self.code)
            .map(|(_, m)| *m)
            .unwrap_or(match self.decimals {
                Decimals::Zero | Decimals::Two => 1,
                Decimals::Three => 10,
                Decimals::TwoButWhole => 100,
            })
    }

    /// How many decimals an amount has as a person reads it: ¥500 has none, $50.00 two.
    pub fn places(&self) -> u32 {
        match self.decimals {
            Decimals::Zero => 0,
            Decimals::Two | Decimals::TwoButWhole => 2,
            Decimals::Three => 3,
        }
    }

    /// `amount` as a person reads it: `5000` usd is `50.00`.
    pub fn major(&self, amount: i64) -> String {
        let places = self.places();
        if places == 0 {
            return amount.to_string();
        }
        let unit = 10i64.pow(places);
        let sign = if amount < 0 { "-" } else { "" };
        let abs = amount.unsigned_abs();
        format!(
            "{sign}{}.{:0width$}",
            abs / unit as u64,
            abs % unit as u64,
            width = places as usize
        )
    }

    /// Stripe's checks of a PaymentIntent amount in this currency.
    pub fn check_amount(&self, amount: i64) -> Result<(), AmountRefused> {
        let minimum = self.minimum();
        if amount < minimum {
            return Err(AmountRefused {
                code: Some("amount_too_small"),
                message: format!(
                    "Amount must be at least {} {}",
                    self.major(minimum),
                    self.code
                ),
            });
        }
        if amount > MAX_AMOUNT {
            return Err(AmountRefused {
                code: Some("amount_too_large"),
                message: format!(
                    "Amount must be no more than {} {}",
                    self.major(MAX_AMOUNT),
                    self.code
                ),
            });
        }
        match self.decimals {
            Decimals::Three if amount % 10 != 0 => Err(AmountRefused {
                code: None,
                message: format!(
                    "Invalid amount: {} amounts must be a multiple of 10 (the last digit must be 0)",
                    self.code.to_uppercase()
                ),
            }),
            Decimals::TwoButWhole if amount % 100 != 0 => Err(AmountRefused {
                code: None,
                message: format!(
                    "Invalid amount: {} is a zero-decimal currency sent as a two-decimal amount, \
                     so the amount must be a multiple of 100",
                    self.code.to_uppercase()
                ),
            }),
            _ => Ok(()),
        }
    }
}

/// An amount as Stripe writes it in messages: `$12.50`, `€3.00`, `¥500`, else `12.50 MXN`.
pub fn money(currency: &str, amount: i64) -> String {
    let major = Currency::parse(currency)
        .map(|c| c.major(amount))
        .unwrap_or_else(|| amount.to_string());
    match currency {
        "usd" => format!("${major}"),
        "eur" => format!("€{major}"),
        "gbp" => format!("£{major}"),
        "jpy" => format!("¥{major}"),
        other => format!("{major} {}", other.to_ascii_uppercase()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_rules() {
        let usd = Currency::parse("USD").unwrap();
        assert_eq!((usd.code, usd.major(5000)), ("usd", "50.00".to_string()));
        assert_eq!(
            usd.check_amount(49).unwrap_err().code,
            Some("amount_too_small")
        );
        assert!(usd.check_amount(50).is_ok());
        assert!(usd.check_amount(MAX_AMOUNT).is_ok());
        assert_eq!(
            usd.check_amount(MAX_AMOUNT + 1).unwrap_err().message,
            "Amount must be no more than 999999.99 usd"
        );
        let jpy = Currency::parse("jpy").unwrap();
        assert_eq!(jpy.major(500), "500");
        assert!(jpy.check_amount(49).is_err() && jpy.check_amount(50).is_ok());
        let kwd = Currency::parse("kwd").unwrap();
        assert_eq!(kwd.major(1230), "1.230");
        assert!(kwd.check_amount(1235).is_err() && kwd.check_amount(1230).is_ok());
        let isk = Currency::parse("isk").unwrap();
        assert!(isk.check_amount(150).is_err() && isk.check_amount(200).is_ok());
        assert_eq!(isk.major(500), "5.00");
        assert_eq!(
            Currency::parse("mxn")
                .unwrap()
                .check_amount(999)
                .unwrap_err()
                .message,
            "Amount must be at least 10.00 mxn"
        );
        assert!(Currency::parse("xxx").is_none() && Currency::parse("").is_none());
    }
}
