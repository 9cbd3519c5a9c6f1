//! Stripe's test payment methods and card numbers: what each does when charged and afterwards
//! (declines, 3-D Secure, refunds that fail, disputes), how a card number is checked (digits,
//! length, Luhn) and the alias the sandbox keeps for a PaymentMethod made from one. Also the
//! payment methods that are not cards (OXXO, bank transfers, Stripe's SEPA test IBANs), which
//! the sandbox keeps behind aliases of the same kind.

/// What a test payment method does when charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardResult {
    Succeeds,
    Declines(Decline),
    RequiresAuthentication,
    /// A delayed method (ACH debit): `processing`, then `succeeded` a little later.
    Processing,
    /// A bank debit that is `processing`, then fails a little later as the decline says.
    ProcessingFails(Decline),
    /// OXXO: a voucher the customer pays in cash at a store (`requires_action`), or that expires.
    Voucher,
    /// A bank transfer into the customer's cash balance (`requires_action` until it is funded).
    BankTransfer,
}

/// How a card declines, as Stripe's error says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decline {
    pub code: &'static str,
    pub decline_code: &'static str,
    pub message: &'static str,
}

/// What happens after a successful payment, as Stripe's test methods document it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    Nothing,
    /// A dispute (reason `fraudulent`) opens shortly after the charge.
    Dispute,
    /// Refunds start `succeeded` and turn `failed` a little later.
    RefundFails,
    /// Refunds start `pending` and turn `succeeded` a little later.
    RefundPending,
    /// A dispute (reason `debit_not_authorized`) opens shortly after the debit succeeds.
    DisputeDebitNotAuthorized,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodType {
    Card,
    UsBankAccount,
    Oxxo,
    CustomerBalance,
    SepaDebit,
}

impl MethodType {
    pub fn name(self) -> &'static str {
        match self {
            MethodType::Card => "card",
            MethodType::UsBankAccount => "us_bank_account",
            MethodType::Oxxo => "oxxo",
            MethodType::CustomerBalance => "customer_balance",
            MethodType::SepaDebit => "sepa_debit",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestCard {
    pub method: MethodType,
    pub brand: &'static str,
    pub last4: String,
    pub funding: &'static str,
    pub result: CardResult,
    pub after: After,
}

const fn declines(
    code: &'static str,
    decline_code: &'static str,
    message: &'static str,
) -> CardResult {
    CardResult::Declines(Decline {
        code,
        decline_code,
        message,
    })
}

const DECLINED: &str = "Your card was declined.";
const GENERIC_DECLINE: CardResult = declines("card_declined", "generic_decline", DECLINED);
const INSUFFICIENT_FUNDS: CardResult = declines(
    "card_declined",
    "insufficient_funds",
    "Your card has insufficient funds.",
);
const EXPIRED: CardResult = declines("expired_card", "expired_card", "Your card has expired.");
const INCORRECT_CVC: CardResult = declines(
    "incorrect_cvc",
    "incorrect_cvc",
    "Your card's security code is incorrect.",
);
const LOST: CardResult = declines("card_declined", "lost_card", DECLINED);
const STOLEN: CardResult = declines("card_declined", "stolen_card", DECLINED);
/// A card number that is not one of Stripe's test numbers, used with a test key.
const LIVE_CARD: CardResult = declines(
    "card_declined",
    "test_mode_live_card",
    "Your card was declined. Your request was in test mode, but used a non test (live) \
     card. For a list of valid test cards, visit: https://stripe.com/docs/testing.",
);

/// The prefix of the alias kept for a PaymentMethod made from one of Stripe's test numbers.
pub const NUMBER_ALIAS: &str = "card:";
/// The prefix of the alias kept for any other card number: only its brand and last four
/// digits, so that the sandbox never stores a real card number.
pub const LIVE_ALIAS: &str = "live:";

/// The alias of an OXXO PaymentMethod (what it does depends on its billing e-mail).
pub const OXXO_ALIAS: &str = "oxxo:";
/// The alias of a `customer_balance` PaymentMethod.
pub const CUSTOMER_BALANCE_ALIAS: &str = "customer_balance:";
/// The prefix of the alias of a SEPA Direct Debit PaymentMethod, followed by its test IBAN.
pub const SEPA_ALIAS: &str = "sepa:";

/// The alias that records how a card number behaves.
pub fn alias_for_number(number: &str) -> String {
    if TEST_NUMBERS.iter().any(|(n, _)| *n == number) {
        format!("{NUMBER_ALIAS}{number}")
    } else {
        format!("{LIVE_ALIAS}{}:{}", brand_of(number), last4(number))
    }
}

/// The last four characters, counted as characters: text that reaches here may not be ASCII,
/// and a byte offset could fall inside a character.
fn last4(number: &str) -> String {
    let skip = number.chars().count().saturating_sub(4);
    number.chars().skip(skip).collect()
}

/// Stripe's documented test card numbers, by the test PaymentMethod that behaves the same.
pub const TEST_NUMBERS: &[(&str, &str)] = &[
    ("4242424242424242", "pm_card_visa"),
    ("4000056655665556", "pm_card_visa_debit"),
    ("5555555555554444", "pm_card_mastercard"),
    ("2223003122003222", "pm_card_mastercard"),
    ("378282246310005", "pm_card_amex"),
    ("371449635398431", "pm_card_amex"),
    ("6011111111111117", "pm_card_discover"),
    ("4000000000000002", "pm_card_chargeDeclined"),
    (
        "4000000000009995",
        "pm_card_chargeDeclinedInsufficientFunds",
    ),
    ("4000000000000069", "pm_card_chargeDeclinedExpiredCard"),
    ("4000000000000127", "pm_card_chargeDeclinedIncorrectCvc"),
    ("4000000000009987", "pm_card_chargeDeclinedLostCard"),
    ("4000000000009979", "pm_card_chargeDeclinedStolenCard"),
    ("4000002760003184", "pm_card_authenticationRequired"),
    ("4000000000003220", "pm_card_threeDSecure2Required"),
    ("4000000000005126", "pm_card_refundFail"),
    ("4000000000007726", "pm_card_pendingRefund"),
    ("4000000000000259", "pm_card_createDispute"),
];

/// A credit card that does nothing after it is paid with.
fn card(brand: &'static str, last4: &str, result: CardResult) -> TestCard {
    TestCard {
        method: MethodType::Card,
        brand,
        last4: last4.to_string(),
        funding: "credit",
        result,
        after: After::Nothing,
    }
}

/// How the PaymentMethod the sandbox stored with `alias` behaves: a test PaymentMethod's name,
/// or `card:NUMBER` and `live:BRAND:LAST4` for one made from a card number. Only the sandbox
/// writes aliases; what a caller names goes through [`test_card`], so that a caller cannot
/// pass an alias of its own making.
pub fn card_of_alias(alias: &str) -> Option<TestCard> {
    if let Some(iban) = alias.strip_prefix(SEPA_ALIAS) {
        return sepa_test_iban(iban);
    }
    match alias {
        OXXO_ALIAS => return Some(not_a_card(MethodType::Oxxo, "", CardResult::Voucher)),
        CUSTOMER_BALANCE_ALIAS => {
            return Some(not_a_card(
                MethodType::CustomerBalance,
                "",
                CardResult::BankTransfer,
            ))
        }
        _ => {}
    }
    if let Some(number) = alias.strip_prefix(NUMBER_ALIAS) {
        return Some(card_by_number(number));
    }
    if let Some(rest) = alias.strip_prefix(LIVE_ALIAS) {
        let (brand, last4) = rest.split_once(':')?;
        let brand = ["visa", "mastercard", "amex", "discover"]
            .into_iter()
            .find(|b| *b == brand)
            .unwrap_or("unknown");
        return Some(card(brand, last4, LIVE_CARD));
    }
    test_card(alias)
}

/// Stripe's documented test PaymentMethods (`pm_card_visa`, …) and what they do.
pub fn test_card(name: &str) -> Option<TestCard> {
    Some(match name {
        "pm_card_visa" => card("visa", "4242", CardResult::Succeeds),
        "pm_card_visa_debit" => TestCard {
            funding: "debit",
            ..card("visa", "5556", CardResult::Succeeds)
        },
        "pm_card_mastercard" => card("mastercard", "4444", CardResult::Succeeds),
        "pm_card_amex" => card("amex", "8431", CardResult::Succeeds),
        "pm_card_discover" => card("discover", "1117", CardResult::Succeeds),
        "pm_card_visa_chargeDeclined" | "pm_card_chargeDeclined" => {
            card("visa", "0002", GENERIC_DECLINE)
        }
        "pm_card_visa_chargeDeclinedInsufficientFunds"
        | "pm_card_chargeDeclinedInsufficientFunds" => card("visa", "9995", INSUFFICIENT_FUNDS),
        "pm_card_chargeDeclinedExpiredCard" | "pm_card_visa_chargeDeclinedExpiredCard" => {
            card("visa", "0069", EXPIRED)
        }
        "pm_card_chargeDeclinedIncorrectCvc" => card("visa", "0127", INCORRECT_CVC),
        "pm_card_chargeDeclinedLostCard" => card("visa", "9987", LOST),
        "pm_card_chargeDeclinedStolenCard" => card("visa", "9979", STOLEN),
        "pm_card_authenticationRequired" | "pm_card_threeDSecureRequired" => {
            card("visa", "3184", CardResult::RequiresAuthentication)
        }
        "pm_card_threeDSecure2Required" => card("visa", "3220", CardResult::RequiresAuthentication),
        "pm_card_refundFail" => TestCard {
            after: After::RefundFails,
            ..card("visa", "5126", CardResult::Succeeds)
        },
        "pm_card_pendingRefund" => TestCard {
            after: After::RefundPending,
            ..card("visa", "7726", CardResult::Succeeds)
        },
        "pm_card_createDispute" => TestCard {
            after: After::Dispute,
            ..card("visa", "0259", CardResult::Succeeds)
        },
        "pm_usBankAccount_success" => TestCard {
            method: MethodType::UsBankAccount,
            brand: "",
            last4: "6789".into(),
            funding: "",
            result: CardResult::Processing,
            after: After::Nothing,
        },
        _ => return None,
    })
}

/// A payment method that is not a card: no brand or funding.
fn not_a_card(method: MethodType, last4: &str, result: CardResult) -> TestCard {
    TestCard {
        method,
        brand: "",
        last4: last4.to_string(),
        funding: "",
        result,
        after: After::Nothing,
    }
}

/// A bank debit that fails after `processing` with this failure code and message.
const fn debit_fails(code: &'static str, message: &'static str) -> CardResult {
    CardResult::ProcessingFails(Decline {
        code,
        decline_code: code,
        message,
    })
}

const DEBIT_INSUFFICIENT_FUNDS: CardResult = debit_fails(
    "insufficient_funds",
    "The customer's account has insufficient funds to cover this payment.",
);

/// Stripe's SEPA Direct Debit test IBAN that PaymentMethod creation refuses
/// (`bank_account_unusable`).
pub const SEPA_UNUSABLE_IBAN: &str = "AT511904300000066666";

/// Stripe's SEPA Direct Debit test IBANs (Austrian ones, as Stripe's testing page lists them)
/// and what a debit from each does. Stripe's "after at least three minutes" variants wait the
/// sandbox's delay like the others.
pub fn sepa_test_iban(iban: &str) -> Option<TestCard> {
    let (result, after) = match iban {
        "AT611904300234573201" | "AT321904300235473204" => (CardResult::Processing, After::Nothing),
        "AT861904300235473202" | "AT051904300235473205" => {
            (DEBIT_INSUFFICIENT_FUNDS, After::Nothing)
        }
        "AT591904300235473203" => (CardResult::Processing, After::DisputeDebitNotAuthorized),
        "AT981904300000343434" => (
            debit_fails(
                "charge_exceeds_source_limit",
                "This payment would exceed the account's weekly payment volume limit.",
            ),
            After::Nothing,
        ),
        "AT601904300000121212" => (
            debit_fails(
                "charge_exceeds_weekly_limit",
                "This payment exceeds the account's transaction volume limit.",
            ),
            After::Nothing,
        ),
        _ => return None,
    };
    Some(TestCard {
        after,
        ..not_a_card(MethodType::SepaDebit, &last4(iban), result)
    })
}

/// A card number, already checked to be well formed: Stripe's test numbers behave as their
/// PaymentMethods; any other number is a live card, declined in test mode.
pub fn card_by_number(number: &str) -> TestCard {
    let last4 = last4(number);
    if let Some((_, alias)) = TEST_NUMBERS.iter().find(|(n, _)| *n == number) {
        if let Some(card) = test_card(alias) {
            return TestCard { last4, ..card };
        }
    }
    TestCard {
        brand: brand_of(number),
        ..card_of_alias(&format!("{LIVE_ALIAS}x:{last4}")).expect("a live alias always parses")
    }
}

fn brand_of(number: &str) -> &'static str {
    let prefix = |n: usize| {
        number
            .get(..n)
            .and_then(|p| p.parse::<u32>().ok())
            .unwrap_or(0)
    };
    if number.starts_with('4') {
        "visa"
    } else if (51..=55).contains(&prefix(2)) || (2221..=2720).contains(&prefix(4)) {
        "mastercard"
    } else if matches!(prefix(2), 34 | 37) {
        "amex"
    } else if number.starts_with("6011") || number.starts_with("65") {
        "discover"
    } else {
        "unknown"
    }
}

/// Why a card number is refused, as Stripe answers: (`code`, message).
pub fn check_card_number(number: &str) -> Result<(), (&'static str, &'static str)> {
    let digits: Vec<u32> = number.chars().filter_map(|c| c.to_digit(10)).collect();
    if digits.len() != number.chars().count() || !(12..=19).contains(&digits.len()) {
        return Err(("invalid_number", "Your card number is invalid."));
    }
    // Luhn: doubling every second digit from the right.
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| match (i % 2, d * 2) {
            (1, twice) if twice > 9 => twice - 9,
            (1, twice) => twice,
            _ => *d,
        })
        .sum();
    if !sum.is_multiple_of(10) {
        return Err(("incorrect_number", "Your card number is incorrect."));
    }
    Ok(())
}
