//! How the pages show amounts and times. Text only: escaping is the templates' job.

use crate::money::Major;

/// `170000` `mxn` → `1,700.00 MXN`; `14000` `jpy` → `14,000 JPY`: the currency's own decimals
/// (the same table as every API response), thousands grouped.
pub fn money(minor: i64, currency: &str) -> String {
    let text = Major::of(minor, currency).to_string();
    let (sign, digits) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text.as_str()),
    };
    let (whole, fraction) = match digits.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (digits, None),
    };
    let mut grouped = String::with_capacity(whole.len() + whole.len() / 3);
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match fraction {
        Some(f) => format!("{sign}{grouped}.{f} {}", currency.to_ascii_uppercase()),
        None => format!("{sign}{grouped} {}", currency.to_ascii_uppercase()),
    }
}

/// Unix seconds as `2026-01-31 12:00:00 UTC`.
pub fn unix(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| secs.to_string())
}

/// Unix milliseconds as `2026-01-31 12:00:00.123 UTC`.
pub fn unix_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// An ISO 8601 time as the ledger writes it, in Unix milliseconds (0 when unreadable, so that
/// such a row sorts first rather than vanishing).
pub fn iso_ms(iso: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(iso)
        .map(|t| t.timestamp_millis())
        .unwrap_or(0)
}

/// Days since the Unix epoch as `2026-01-31`.
pub fn day(day: i64) -> String {
    chrono::DateTime::from_timestamp(day * 86400, 0)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| day.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_keep_their_currencys_decimals_and_group_thousands() {
        assert_eq!(money(9900, "eur"), "99.00 EUR");
        assert_eq!(money(170000, "mxn"), "1,700.00 MXN");
        assert_eq!(money(14000, "jpy"), "14,000 JPY");
        assert_eq!(money(50, "jpy"), "50 JPY");
        assert_eq!(money(123456789, "usd"), "1,234,567.89 USD");
        assert_eq!(money(1230, "kwd"), "1.230 KWD");
        assert_eq!(money(-2500, "usd"), "-25.00 USD");
        assert_eq!(money(0, "usd"), "0.00 USD");
    }

    #[test]
    fn times() {
        assert_eq!(unix(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(unix_ms(1_700_000_000_123), "2023-11-14 22:13:20.123 UTC");
        assert_eq!(iso_ms("2023-11-14T22:13:20.123Z"), 1_700_000_000_123);
        assert_eq!(iso_ms("nonsense"), 0);
        assert_eq!(day(19_675), "2023-11-14");
    }
}
