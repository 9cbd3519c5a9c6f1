//! The Customer a bank transfer needs: one per buyer's e-mail on each account (a direct
//! charge's lives on the organiser's), made once across instances and retries. The ledger
//! answers for e-mails it knows; Stripe's idempotency key derives from the account and the
//! e-mail, so that two instances making the first one at once get the same Customer.

use crate::ledger::Ledger;
use crate::payments::idempotent::derived_key;
use crate::payments::Error;
use crate::stripe::StripeClient;

/// The Customer of `email` on the account `stripe` acts for, made if there is none yet.
pub async fn customer_for(
    stripe: &StripeClient,
    ledger: &Ledger,
    email: &str,
) -> Result<String, Error> {
    let account = stripe.account().unwrap_or("");
    if let Some(known) = ledger.customer(account, email).await? {
        return Ok(known);
    }
    let key = derived_key(&[b"customer", account.as_bytes(), email.as_bytes()]);
    let made = stripe.create_customer(email, &key).await?;
    Ok(ledger.keep_customer(account, email, &made.id).await?)
}
