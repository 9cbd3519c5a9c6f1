//! Money left in a buyer's cash balance (a transfer beyond what was owed, or for a canceled
//! payment) returned to them: `tmt-payments customers return-funds EMAIL`. Each Customer of the
//! e-mail (on every account) has its balance read from Stripe, and what each currency holds is
//! returned with a refund from the balance (`origin=customer_balance`), keyed on the customer,
//! the currency, the amount and the newest cash balance transaction the ledger knows of: run
//! again, or by two operators at once, the same amount is returned once.

use serde::Serialize;

use crate::ledger::Ledger;
use crate::money::Major;
use crate::payments::idempotent::derived_key;
use crate::payments::Error;
use crate::stripe::StripeClient;

/// One return of money to the buyer.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReturnedFunds {
    pub customer_id: String,
    /// The connected account the Customer lives on, if not the platform.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    pub refund_id: String,
    pub status: String,
    pub amount: Major,
    pub currency: String,
}

/// Returns what the cash balances of `email`'s Customers hold; what was returned.
pub async fn return_funds(
    stripe: &StripeClient,
    ledger: &Ledger,
    email: &str,
) -> Result<Vec<ReturnedFunds>, Error> {
    let email = email.trim().to_lowercase();
    let mut returned = Vec::new();
    for customer in ledger.customers_of(&email).await? {
        let account = (!customer.account.is_empty()).then_some(customer.account.as_str());
        let stripe = stripe.on_account(account);
        let balance = stripe.cash_balance(&customer.customer_id).await?;
        for (currency, amount) in balance.available.iter().filter(|(_, a)| **a > 0) {
            let newest = ledger
                .newest_cash_transaction(&customer.customer_id, currency)
                .await?
                .unwrap_or_default();
            let key = derived_key(&[
                b"return-funds",
                customer.customer_id.as_bytes(),
                currency.as_bytes(),
                amount.to_string().as_bytes(),
                newest.as_bytes(),
            ]);
            let refund = stripe
                .return_cash_balance(&customer.customer_id, *amount, currency, &key)
                .await?;
            tracing::info!(customer = %customer.customer_id, refund = %refund.id, amount, currency = %currency, "cash balance returned");
            returned.push(ReturnedFunds {
                customer_id: customer.customer_id.clone(),
                account: account.map(str::to_string),
                refund_id: refund.id.clone(),
                status: refund.status.as_str().to_string(),
                amount: Major::of(*amount, currency),
                currency: currency.clone(),
            });
        }
    }
    Ok(returned)
}
