//! Calendar dates from Unix time, for what the sandbox shows and checks in days (card expiry,
//! an OXXO voucher's last day).

/// Mexico City's offset from UTC, in seconds (the city keeps no daylight saving time since
/// 2022): where OXXO vouchers are dated.
pub const MEXICO_CITY: i64 = -6 * 3600;

/// The (year, month, day) of the day `days` after 1970-01-01 (Howard Hinnant's
/// civil-from-days).
pub fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The (year, month, day) at Unix time `secs` in a zone `offset_secs` east of UTC.
pub fn date_at(secs: i64, offset_secs: i64) -> (i64, i64, i64) {
    civil((secs + offset_secs).div_euclid(86_400))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(date_at(951_782_400, 0), (2000, 2, 29));
        // 2021-04-09 04:59:59 UTC is still the 8th in Mexico City (then UTC-5).
        assert_eq!(date_at(1_617_944_399, -5 * 3600), (2021, 4, 8));
        assert_eq!(date_at(1_617_944_399, 0), (2021, 4, 9));
    }
}
