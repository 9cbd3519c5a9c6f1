//! Stripe Connect's objects and calls, as far as this service uses them: connected accounts and
//! their onboarding links, the transfers of destination charges and their reversals, and the
//! platform's application fees. Read leniently, as every object is (`types`).

use serde::Deserialize;
use serde_json::{Map, Value};

use super::client::{safe_id, Readable, StripeClient, StripeError};
use super::form::Form;
use super::types::{
    lenient_expandable, lenient_map, null_as_default, Expandable, HasId, List, ObjectRef,
};

/// A connected account.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Account {
    pub id: String,
    #[serde(deserialize_with = "null_as_default")]
    pub charges_enabled: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub payouts_enabled: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub details_submitted: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub requirements: Requirements,
    #[serde(deserialize_with = "lenient_map")]
    pub metadata: Map<String, Value>,
}

/// What Stripe still needs of an account.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Requirements {
    #[serde(deserialize_with = "null_as_default")]
    pub currently_due: Vec<String>,
    pub disabled_reason: Option<String>,
}

impl HasId for Account {
    fn id(&self) -> &str {
        &self.id
    }
}

impl Account {
    /// Reads an account from any JSON Stripe sent for one; `None` without a usable id.
    pub fn from_value(value: &Value) -> Option<Account> {
        Account::deserialize(value)
            .ok()
            .filter(|a| a.id.starts_with("acct_"))
    }
}

/// An onboarding link: where to send the organiser, until when.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AccountLink {
    pub url: String,
    /// Unix seconds.
    #[serde(deserialize_with = "null_as_default")]
    pub expires_at: i64,
}

/// A link without a URL is not one.
impl Readable for AccountLink {
    fn is_usable(&self) -> bool {
        !self.url.is_empty()
    }
}

/// The platform's fee on a payment.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ApplicationFee {
    pub id: String,
    #[serde(deserialize_with = "null_as_default")]
    pub amount: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub amount_refunded: i64,
}

/// A destination charge's transfer to its connected account.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Transfer {
    pub id: String,
    #[serde(deserialize_with = "null_as_default")]
    pub amount: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub amount_reversed: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub currency: String,
    /// The connected account it went to.
    #[serde(deserialize_with = "lenient_expandable")]
    pub destination: Option<Expandable<ObjectRef>>,
    #[serde(deserialize_with = "null_as_default")]
    pub reversals: List<TransferReversal>,
}

/// Money taken back from a transfer.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TransferReversal {
    pub id: String,
    #[serde(deserialize_with = "null_as_default")]
    pub amount: i64,
    /// The refund that made it (`reverse_transfer`), if one did.
    pub source_refund: Option<String>,
    #[serde(deserialize_with = "lenient_map")]
    pub metadata: Map<String, Value>,
    #[serde(deserialize_with = "null_as_default")]
    pub created: i64,
}

impl HasId for ApplicationFee {
    fn id(&self) -> &str {
        &self.id
    }
}

impl HasId for Transfer {
    fn id(&self) -> &str {
        &self.id
    }
}

impl HasId for TransferReversal {
    fn id(&self) -> &str {
        &self.id
    }
}

/// What a payment's charge says of the money Connect moved: its fee and its transfer, read
/// from the charge with both expanded. The charge is what can be read of it when they are ids.
#[derive(Debug, Clone, Default)]
pub struct ConnectMoney {
    pub fee: Option<ApplicationFee>,
    pub transfer: Option<Transfer>,
}

/// A charge read for its fee and transfer, as expanded (or as ids).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct ChargeMoney {
    id: String,
    application_fee: Value,
    transfer: Value,
}

impl HasId for ChargeMoney {
    fn id(&self) -> &str {
        &self.id
    }
}

/// The object an expandable field holds, when it was expanded.
fn expanded<T: for<'de> Deserialize<'de> + HasId>(field: &Value) -> Option<T> {
    match field {
        Value::Object(_) => T::deserialize(field).ok().filter(|o| !o.id().is_empty()),
        _ => None,
    }
}

impl StripeClient {
    /// The fee and transfer of the charge `charge` (`GET /v1/charges/{id}` with both expanded):
    /// a destination charge's, which are the platform's.
    pub async fn charge_money(&self, charge: &str) -> Result<ConnectMoney, StripeError> {
        safe_id(charge)?;
        let path = format!("/v1/charges/{charge}?expand[]=application_fee&expand[]=transfer");
        let charge: ChargeMoney = self.get("retrieve_charge", &path).await?;
        let mut transfer: Option<Transfer> = expanded(&charge.transfer);
        if let Some(t) = transfer.as_mut().filter(|t| t.reversals.has_more) {
            t.reversals = self.list_reversals(&t.id).await?;
        }
        Ok(ConnectMoney {
            fee: expanded(&charge.application_fee),
            transfer,
        })
    }

    /// The platform's fee on the charge `charge` of a connected account (a direct charge's),
    /// if it has one (`GET /v1/application_fees?charge=`).
    pub async fn fee_of_charge(&self, charge: &str) -> Result<Option<ApplicationFee>, StripeError> {
        safe_id(charge)?;
        let path = format!("/v1/application_fees?charge={charge}&limit=1");
        let list: List<ApplicationFee> = self.get("list_application_fees", &path).await?;
        Ok(list.data.into_iter().next())
    }

    /// `GET /v1/transfers/{id}`.
    pub async fn retrieve_transfer(&self, id: &str) -> Result<Transfer, StripeError> {
        safe_id(id)?;
        let mut transfer: Transfer = self
            .get("retrieve_transfer", &format!("/v1/transfers/{id}"))
            .await?;
        if transfer.reversals.has_more {
            transfer.reversals = self.list_reversals(id).await?;
        }
        Ok(transfer)
    }

    /// `GET /v1/application_fees/{id}`.
    pub async fn retrieve_application_fee(&self, id: &str) -> Result<ApplicationFee, StripeError> {
        safe_id(id)?;
        self.get(
            "retrieve_application_fee",
            &format!("/v1/application_fees/{id}"),
        )
        .await
    }

    /// A transfer's reversals, the 100 newest (more than any payment has).
    async fn list_reversals(&self, transfer: &str) -> Result<List<TransferReversal>, StripeError> {
        let path = format!("/v1/transfers/{transfer}/reversals?limit=100");
        self.get("list_transfer_reversals", &path).await
    }

    /// `POST /v1/transfers/{id}/reversals`.
    pub async fn reverse_transfer(
        &self,
        transfer: &str,
        form: &Form,
        key: &str,
    ) -> Result<TransferReversal, StripeError> {
        safe_id(transfer)?;
        let path = format!("/v1/transfers/{transfer}/reversals");
        self.post("create_transfer_reversal", &path, form, key)
            .await
    }

    /// `POST /v1/transfers`.
    pub async fn create_transfer(&self, form: &Form, key: &str) -> Result<Transfer, StripeError> {
        self.post("create_transfer", "/v1/transfers", form, key)
            .await
    }

    /// `POST /v1/accounts`.
    pub async fn create_account(&self, form: &Form, key: &str) -> Result<Account, StripeError> {
        self.post("create_account", "/v1/accounts", form, key).await
    }

    /// `POST /v1/account_links`.
    pub async fn create_account_link(
        &self,
        form: &Form,
        key: &str,
    ) -> Result<AccountLink, StripeError> {
        self.post("create_account_link", "/v1/account_links", form, key)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accounts_are_read_leniently() {
        let account = Account::from_value(&json!({
            "id": "acct_1", "object": "account", "charges_enabled": true,
            "payouts_enabled": null, "requirements": {"currently_due": ["external_account"],
            "disabled_reason": "requirements.past_due"}, "metadata": null, "future": 1
        }))
        .unwrap();
        assert!(account.charges_enabled && !account.payouts_enabled);
        assert_eq!(account.requirements.currently_due, ["external_account"]);
        assert_eq!(
            account.requirements.disabled_reason.as_deref(),
            Some("requirements.past_due")
        );
        assert!(Account::from_value(&json!({"id": "ca_1", "object": "application"})).is_none());
        let bare = Account::from_value(&json!({"id": "acct_2", "requirements": null})).unwrap();
        assert!(bare.requirements.currently_due.is_empty() && !bare.charges_enabled);
    }
}
