//! Bank transfers (`customer_balance` with `funding_type=bank_transfer`). Confirming a
//! PaymentIntent with one gives the customer's transfer instructions
//! (`requires_action`, `next_action.display_bank_transfer_instructions`): the virtual account the
//! customer sends money to (a CLABE for `mx_bank_transfer` in mxn, an IBAN and BIC of the chosen
//! country for `eu_bank_transfer` in eur), always the same for one customer, the amount still
//! owed, and a reference that names this PaymentIntent. What the customer already has in the
//! cash balance is applied at once; what arrives later is `cash_balance`'s.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::ctx::Ctx;
use crate::error::{missing_param, StripeErr};
use crate::iban;
use crate::objects::random_alnum;
use crate::resources::cash_balance;
use crate::store::Kind;

/// The national account number formats of the `eu_bank_transfer` countries: a bank code in
/// letters where the country has one, then so many digits.
const EU_ACCOUNTS: &[(&str, &str, usize)] = &[
    ("BE", "", 12),
    ("DE", "", 18),
    ("ES", "", 20),
    ("FR", "", 23),
    ("IE", "SNDB", 14),
    ("NL", "SNDB", 10),
];

/// `n` digits that depend only on `seed`.
fn digits(seed: &str, n: usize) -> String {
    Sha256::digest(seed.as_bytes())
        .iter()
        .cycle()
        .take(n)
        .map(|b| char::from(b'0' + b % 10))
        .collect()
}

/// The virtual account of `customer` for `kind` transfers (and `country`, for a European one),
/// as Stripe shapes one of `financial_addresses`.
fn financial_address(customer: &str, kind: &str, country: &str) -> Value {
    let seed = format!("{customer}/{kind}/{country}");
    if kind == "mx_bank_transfer" {
        return json!({
            "spei": {
                "bank_code": "646",
                "bank_name": "STP",
                "clabe": iban::clabe(&format!("646180{}", digits(&seed, 11))),
            },
            "supported_networks": ["spei"],
            "type": "spei",
        });
    }
    let (_, bank, length) = EU_ACCOUNTS
        .iter()
        .find(|(c, _, _)| *c == country)
        .copied()
        .unwrap_or(("NL", "SNDB", 10));
    json!({
        "iban": {
            "account_holder_name": "Stripe Sandbox",
            "bic": format!("SNDB{country}M1"),
            "country": country,
            "iban": iban::make(country, &format!("{bank}{}", digits(&seed, length))),
        },
        "supported_networks": ["sepa"],
        "type": "iban",
    })
}

/// A transfer's reference: seven digits for SPEI (its numeric reference), twelve letters and
/// digits for SEPA.
fn reference(kind: &str) -> String {
    if kind == "mx_bank_transfer" {
        digits(&random_alnum(16), 7)
    } else {
        random_alnum(12).to_ascii_uppercase()
    }
}

/// Confirming with `customer_balance`: the PaymentIntent waits for a transfer of its amount,
/// less what the customer's cash balance already holds.
pub(crate) fn await_transfer(
    ctx: &mut Ctx<'_>,
    mut pi: Value,
    pm_id: &str,
) -> Result<Value, StripeErr> {
    let customer = pi["customer"].as_str().unwrap_or_default().to_string();
    if ctx.find(Kind::Customer, &customer).is_none() {
        return Err(missing_param("customer", &customer, "customer"));
    }
    let options = &pi["payment_method_options"]["customer_balance"]["bank_transfer"];
    let kind = options["type"].as_str().unwrap_or_default().to_string();
    let country = options["eu_bank_transfer"]["country"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let id = pi["id"].as_str().unwrap_or_default().to_string();
    let currency = pi["currency"].as_str().unwrap_or_default().to_string();
    pi["payment_method"] = json!(pm_id);
    pi["status"] = json!("requires_action");
    pi["next_action"] = json!({
        "type": "display_bank_transfer_instructions",
        "display_bank_transfer_instructions": {
            "amount_remaining": pi["amount"],
            "currency": currency,
            "financial_addresses": [financial_address(&customer, &kind, &country)],
            "hosted_instructions_url":
                format!("{}{}/bank_transfer/{id}", ctx.origin.base, crate::hosted::PREFIX),
            "reference": reference(&kind),
            "type": kind,
        }
    });
    ctx.save_pi(&pi);
    ctx.emit("payment_intent.requires_action", pi);
    cash_balance::reconcile(ctx, &customer, &currency, None, false)?;
    ctx.payment_intent(&id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_customer_keeps_one_valid_account_per_kind_and_country() {
        let clabe = financial_address("cus_a", "mx_bank_transfer", "");
        let number = clabe["spei"]["clabe"].as_str().unwrap();
        assert_eq!((number.len(), &number[..6]), (18, "646180"));
        assert_eq!(iban::clabe(&number[..17]), number);
        assert_eq!(clabe, financial_address("cus_a", "mx_bank_transfer", ""));
        assert_ne!(clabe, financial_address("cus_b", "mx_bank_transfer", ""));
        for (country, _, _) in EU_ACCOUNTS {
            let address = financial_address("cus_a", "eu_bank_transfer", country);
            let iban = address["iban"]["iban"].as_str().unwrap();
            assert!(iban::valid(iban), "{iban}");
            assert_eq!(&iban[..2], *country);
        }
    }
}
