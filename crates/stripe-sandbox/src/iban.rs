//! Bank account numbers, as arithmetic: an IBAN's form and ISO 13616 check digits (mod 97),
//! and a Mexican CLABE's check digit. The sandbox checks the IBANs it is given with these, and
//! makes the virtual accounts it hands out for bank transfers with them.

/// The IBAN length of each SEPA country.
const LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AT", 20),
    ("BE", 16),
    ("BG", 22),
    ("CH", 21),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DK", 18),
    ("EE", 20),
    ("ES", 24),
    ("FI", 18),
    ("FR", 27),
    ("GB", 22),
    ("GI", 23),
    ("GR", 27),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IS", 26),
    ("IT", 27),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("MC", 27),
    ("MT", 31),
    ("NL", 18),
    ("NO", 15),
    ("PL", 28),
    ("PT", 25),
    ("RO", 24),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("VA", 22),
];

/// The IBAN as it is kept: without spaces, in capitals.
pub fn normalise(iban: &str) -> String {
    iban.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// The remainder modulo 97 of the number an alphanumeric text stands for, letters counting
/// A = 10 … Z = 35; `None` for any other character.
fn mod97(text: &str) -> Option<u32> {
    let mut remainder = 0u32;
    for c in text.chars() {
        let value = c.to_digit(36)?;
        remainder = if value < 10 {
            (remainder * 10 + value) % 97
        } else {
            (remainder * 100 + value) % 97
        };
    }
    Some(remainder)
}

/// Whether `iban` (normalised) is a well-formed IBAN of a SEPA country: its country, its length
/// there, letters and digits only, and check digits that make it 1 modulo 97.
pub fn valid(iban: &str) -> bool {
    let Some(country) = iban.get(..2) else {
        return false;
    };
    let Some(&(_, length)) = LENGTHS.iter().find(|(c, _)| *c == country) else {
        return false;
    };
    if iban.len() != length || !iban[2..4].bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let rearranged = format!("{}{}", &iban[4..], &iban[..4]);
    mod97(&rearranged) == Some(1)
}

/// The IBAN of `country` for the national account number `bban`, with its check digits.
pub fn make(country: &str, bban: &str) -> String {
    let remainder = mod97(&format!("{bban}{country}00")).unwrap_or(0);
    format!("{country}{:02}{bban}", 98 - remainder)
}

/// The CLABE of 17 digits (bank, branch, account) with its control digit: each digit times 3,
/// 7, 1, 3, 7, 1, …, those products modulo 10 summed, and the digit that brings the sum to a
/// multiple of 10.
pub fn clabe(first17: &str) -> String {
    let sum: u32 = first17
        .chars()
        .filter_map(|c| c.to_digit(10))
        .zip([3, 7, 1].into_iter().cycle())
        .map(|(d, w)| (d * w) % 10)
        .sum();
    format!("{first17}{}", (10 - sum % 10) % 10)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn stripe_test_ibans_and_known_ones_are_valid() {
        for iban in [
            "AT611904300234573201",
            "AT861904300235473202",
            "AT591904300235473203",
            "DE89370400440532013000",
            "FR1420041010050500013M02606",
            "NL39RABO0300065264",
            "BE68539007547034",
        ] {
            assert!(valid(iban), "{iban}");
        }
        for bad in [
            "AT611904300234573202",
            "AT61190430023457320",
            "XX611904300234573201",
            "AT6119043002345732€1",
            "",
            "A",
        ] {
            assert!(!valid(bad), "{bad}");
        }
        assert_eq!(
            normalise(" at61 1904 3002 3457 3201 "),
            "AT611904300234573201"
        );
    }

    #[test]
    fn clabe_control_digit() {
        // Banxico's published example: 032180000118359719.
        assert_eq!(clabe("03218000011835971"), "032180000118359719");
    }

    proptest! {
        #[test]
        fn made_ibans_are_valid(digits in "[0-9]{18}") {
            let iban = make("DE", &digits);
            prop_assert_eq!(iban.len(), 22);
            prop_assert!(valid(&iban));
        }

        #[test]
        fn changing_one_digit_breaks_the_check(digits in "[0-9]{18}", at in 4usize..22, by in 1u32..10) {
            let iban = make("DE", &digits);
            let mut chars: Vec<char> = iban.chars().collect();
            let d = chars[at].to_digit(10).unwrap();
            chars[at] = char::from_digit((d + by) % 10, 10).unwrap();
            let changed: String = chars.into_iter().collect();
            prop_assert!(!valid(&changed));
        }
    }
}
