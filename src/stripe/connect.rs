//! Stripe Connect's objects and calls, as far as this service uses them: connected accounts and
//! their onboarding links, the transfers of destination charges and their reversals, and the
//! platform's application fees. Read leniently, as every object is (`types`).

use serde::Deserialize;
use serde_json::{Map, Value};

use super::client::{Readable, StripeClient, StripeError};
use super::form::Form;
use super::types::{lenient_map, null_as_default, HasId};

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

impl StripeClient {
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
