//! What a PaymentIntent of a delayed payment method (OXXO, a bank transfer into the customer's
//! cash balance) waits for: its `next_action`, a voucher or bank transfer instructions, and
//! why its last attempt failed. Read leniently, as every object is (`types`): a `next_action`
//! that cannot be read is no `next_action`, never a failed request.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// What a PaymentIntent in `requires_action` waits for, for the methods whose money comes
/// later; any other kind of action (3-D Secure, a redirect) reads as `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextAction {
    /// An OXXO voucher to pay at a store.
    Oxxo(OxxoDetails),
    /// A bank transfer to make into the customer's virtual account.
    BankTransfer(BankTransferInstructions),
}

/// `next_action.oxxo_display_details`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct OxxoDetails {
    pub number: Option<String>,
    /// Unix seconds: the voucher's last second.
    pub expires_after: Option<i64>,
    pub hosted_voucher_url: Option<String>,
}

/// `next_action.display_bank_transfer_instructions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct BankTransferInstructions {
    /// Minor units still owed.
    pub amount_remaining: Option<i64>,
    pub reference: Option<String>,
    pub hosted_instructions_url: Option<String>,
    pub financial_addresses: Option<Vec<FinancialAddress>>,
}

/// One account the transfer may be made to: SPEI's CLABE or an IBAN.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct FinancialAddress {
    pub spei: Option<Spei>,
    pub iban: Option<Iban>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Spei {
    pub clabe: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Iban {
    pub iban: Option<String>,
    pub bic: Option<String>,
}

impl BankTransferInstructions {
    /// The CLABE of a SPEI transfer.
    pub fn clabe(&self) -> Option<&str> {
        self.addresses()
            .find_map(|a| a.spei.as_ref()?.clabe.as_deref())
    }

    /// The IBAN account of a euro transfer.
    pub fn iban(&self) -> Option<&Iban> {
        self.addresses().find_map(|a| a.iban.as_ref())
    }

    fn addresses(&self) -> impl Iterator<Item = &FinancialAddress> {
        self.financial_addresses.iter().flatten()
    }
}

/// Reads `next_action` leniently: absent, `null`, another type or an unreadable one is `None`.
pub fn lenient_next_action<'de, D>(d: D) -> Result<Option<NextAction>, D::Error>
where
    D: Deserializer<'de>,
{
    let value = Option::<Value>::deserialize(d)?.unwrap_or(Value::Null);
    let read = |field: &str| value.get(field).filter(|v| v.is_object());
    Ok(match value.get("type").and_then(Value::as_str) {
        Some("oxxo_display_details") => read("oxxo_display_details")
            .and_then(|v| OxxoDetails::deserialize(v).ok())
            .map(NextAction::Oxxo),
        Some("display_bank_transfer_instructions") => read("display_bank_transfer_instructions")
            .and_then(|v| BankTransferInstructions::deserialize(v).ok())
            .map(NextAction::BankTransfer),
        _ => None,
    })
}

/// A PaymentIntent's `last_payment_error`, as far as its code.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct PaymentError {
    pub code: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Deserialize)]
    struct Object {
        #[serde(default, deserialize_with = "lenient_next_action")]
        next_action: Option<NextAction>,
    }

    #[test]
    fn next_actions_are_read_leniently() {
        let pi = |next: Value| -> Object {
            serde_json::from_value(json!({"id": "pi_1", "next_action": next})).unwrap()
        };
        let oxxo = pi(
            json!({"type": "oxxo_display_details", "oxxo_display_details": {
            "number": "1234", "expires_after": 1_900_000_000, "hosted_voucher_url": "http://v"}}),
        );
        let Some(NextAction::Oxxo(details)) = oxxo.next_action else {
            panic!("{:?}", oxxo.next_action)
        };
        assert_eq!(details.expires_after, Some(1_900_000_000));
        let spei = pi(json!({"type": "display_bank_transfer_instructions",
            "display_bank_transfer_instructions": {"amount_remaining": 500, "reference": "12",
            "financial_addresses": [{"type": "spei", "spei": {"clabe": "646180"}},
                                    {"type": "unknown", "other": 1}]}}));
        let Some(NextAction::BankTransfer(instructions)) = spei.next_action else {
            panic!("{:?}", spei.next_action)
        };
        assert_eq!(instructions.clabe(), Some("646180"));
        assert_eq!(instructions.amount_remaining, Some(500));
        // 3-D Secure, nonsense and null are no delayed action; none fails the object.
        for other in [
            json!({"type": "use_stripe_sdk", "use_stripe_sdk": {}}),
            json!({"type": "oxxo_display_details", "oxxo_display_details": 7}),
            json!("x"),
            Value::Null,
        ] {
            assert_eq!(pi(other).next_action, None);
        }
    }
}
