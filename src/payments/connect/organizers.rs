//! Organisers' connected accounts (docs/contract.md §15): onboarding creates an Express account
//! once per organiser (the ledger row is claimed first and Stripe's key derives from the
//! organiser, so concurrent first calls on any number of instances make one account) and a
//! fresh Account Link on every call; the organiser's status is read from the ledger, kept by
//! the account's events.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::country;
use super::fee::FeePolicy;
use crate::ledger::OrganizerRow;
use crate::payments::email::email;
use crate::payments::idempotent::{derived_key, random_stripe_key};
use crate::payments::request::{input, organizer_id, ORGANIZER_KEY};
use crate::payments::{Error, Payments};
use crate::stripe::form::Form;
use crate::stripe::types::{OWNER_KEY, OWNER_TAG};

/// `data` of an onboarding request, as sent.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct OnboardInput {
    /// The platform's id of the organiser: 1-64 of `A-Z a-z 0-9 _ . -`.
    #[serde(rename = "organizerId")]
    #[schema(value_type = String, example = "org_madrid_42")]
    pub organizer_id: Option<Value>,
    /// ISO 3166-1 alpha-2; default `CONNECT_DEFAULT_COUNTRY`. Only the first onboarding's
    /// country (and email) make the account.
    #[schema(value_type = Option<String>, example = "MX")]
    pub country: Option<Value>,
    #[schema(value_type = Option<String>, example = "boletos@example.com")]
    pub email: Option<Value>,
    /// Where Stripe sends the organiser once onboarding ends: `https://`, or `http://localhost`
    /// and `http://127.0.0.1`.
    #[serde(rename = "returnUrl")]
    #[schema(value_type = String, example = "https://tickets.example/organizers/42/stripe-done")]
    pub return_url: Option<Value>,
    /// Where Stripe sends the organiser when the link has expired or was used: make a new one.
    #[serde(rename = "refreshUrl")]
    #[schema(value_type = String, example = "https://tickets.example/organizers/42/stripe-again")]
    pub refresh_url: Option<Value>,
    /// The organiser's own fee policy, `{"percent", "fixed", "min", "max"}`: each field given
    /// replaces the platform's whole.
    #[schema(value_type = Option<Object>)]
    pub fee: Option<Value>,
}

/// `data` of a request about one organiser, as sent.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct OrganizerInput {
    #[serde(rename = "organizerId")]
    #[schema(value_type = String, example = "org_madrid_42")]
    pub organizer_id: Option<Value>,
}

/// `data` of a successful onboarding.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OnboardedData {
    pub success: bool,
    pub organizer_id: String,
    /// The organiser's connected account.
    pub account_id: String,
    /// Where to send the organiser to onboard (a Stripe page; it works once, for minutes).
    pub onboarding_url: String,
    /// When the link expires, ISO 8601 UTC.
    pub expires_at: String,
    pub charges_enabled: bool,
    pub payouts_enabled: bool,
}

/// `data` of a read of an organiser.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrganizerData {
    pub organizer_id: String,
    pub account_id: Option<String>,
    pub charges_enabled: bool,
    pub payouts_enabled: bool,
    /// What Stripe still needs of the organiser (`requirements.currently_due`).
    pub requirements_due: Vec<String>,
    pub disabled_reason: Option<String>,
    /// False once the organiser's account disconnected from the platform.
    pub connected: bool,
    /// The fee policy in force for the organiser: its own fields over the platform's.
    #[schema(value_type = Object)]
    pub fee: Value,
}

/// An onboarding request that passed every check.
#[derive(Debug, Clone, PartialEq)]
struct OnboardRequest {
    organizer_id: String,
    country: String,
    email: Option<String>,
    return_url: String,
    refresh_url: String,
    fee: Option<FeePolicy>,
}

/// A URL Stripe may send the organiser back to: `https://`, or `http://` on this machine.
fn back_url(value: Option<&Value>, field: &'static str) -> Result<String, Error> {
    let text = value
        .and_then(Value::as_str)
        .ok_or(Error::UrlInvalid(field))?;
    let url = url::Url::parse(text).map_err(|_| Error::UrlInvalid(field))?;
    let local = matches!(url.host_str(), Some("localhost" | "127.0.0.1"));
    match url.scheme() {
        "https" if url.host_str().is_some() => Ok(text.to_string()),
        "http" if local => Ok(text.to_string()),
        _ => Err(Error::UrlInvalid(field)),
    }
}

impl OnboardRequest {
    fn parse(data: &Map<String, Value>, default_country: &str) -> Result<Self, Error> {
        let input: OnboardInput = input(data);
        let organizer_id =
            organizer_id(input.organizer_id.as_ref()).ok_or(Error::OrganizerIdInvalid)?;
        let country = match input.country.as_ref().filter(|v| !v.is_null()) {
            None => default_country.to_string(),
            Some(value) => value
                .as_str()
                .and_then(country)
                .ok_or(Error::CountryInvalid)?,
        };
        let email = email(input.email.as_ref())?;
        let return_url = back_url(input.return_url.as_ref(), "returnUrl")?;
        let refresh_url = back_url(input.refresh_url.as_ref(), "refreshUrl")?;
        let fee = match input.fee.as_ref().filter(|v| !v.is_null()) {
            None => None,
            Some(value) => Some(FeePolicy::from_json(value).map_err(|e| Error::FeeInvalid(e.0))?),
        };
        Ok(OnboardRequest {
            organizer_id,
            country,
            email,
            return_url,
            refresh_url,
            fee,
        })
    }
}

impl Payments {
    /// Onboards an organiser: its connected account (made once), and a fresh onboarding link.
    pub async fn onboard_organizer(
        &self,
        data: &Map<String, Value>,
    ) -> Result<OnboardedData, Error> {
        let request = OnboardRequest::parse(data, &self.connect.default_country)?;
        if self.connect.charge_type.is_none() {
            return Err(Error::ConnectDisabled);
        }
        self.ledger.ensure_writable().await?;
        let id = &request.organizer_id;
        let fee = request.fee.as_ref().map(FeePolicy::to_json);
        let mut row = self
            .ledger
            .claim_organizer(id, &request.country, request.email.as_deref(), fee.as_ref())
            .await?;
        let account_id = match &row.account_id {
            Some(account) if row.connected => account.clone(),
            // No account yet, or the one it had left the platform: a new one, from what the
            // row holds, so that every concurrent call asks Stripe for the very same.
            previous => {
                let previous = previous.clone();
                let form = account_form(&row);
                let key = match &previous {
                    None => derived_key(&[b"connect-account", id.as_bytes()]),
                    Some(old) => derived_key(&[b"connect-account", id.as_bytes(), old.as_bytes()]),
                };
                let read_at = chrono::Utc::now().timestamp();
                let account = self.stripe.create_account(&form, &key).await?;
                row = self
                    .ledger
                    .set_organizer_account(id, previous.as_deref(), &account, read_at)
                    .await?;
                tracing::info!(organizer_id = %id, account_id = %account.id, "connected account created");
                row.account_id.clone().unwrap_or(account.id)
            }
        };
        let mut form = Form::new();
        form.push("account", account_id.as_str())
            .push("type", "account_onboarding")
            .push("return_url", request.return_url.as_str())
            .push("refresh_url", request.refresh_url.as_str());
        let link = self
            .stripe
            .create_account_link(&form, &random_stripe_key())
            .await?;
        let expires_at = chrono::DateTime::from_timestamp(link.expires_at, 0)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        Ok(OnboardedData {
            success: true,
            organizer_id: row.id,
            account_id,
            onboarding_url: link.url,
            expires_at,
            charges_enabled: row.charges_enabled,
            payouts_enabled: row.payouts_enabled,
        })
    }

    /// An organiser as the ledger knows it, with the fee policy in force for it.
    pub async fn organizer(&self, data: &Map<String, Value>) -> Result<OrganizerData, Error> {
        let input: OrganizerInput = input(data);
        let id = organizer_id(input.organizer_id.as_ref()).ok_or(Error::OrganizerIdInvalid)?;
        let row = self
            .ledger
            .organizer(&id)
            .await?
            .ok_or(Error::OrganizerNotFound)?;
        let fee = super::fee_policy(&row, &self.connect.fee)?;
        Ok(OrganizerData {
            organizer_id: row.id,
            account_id: row.account_id,
            charges_enabled: row.charges_enabled,
            payouts_enabled: row.payouts_enabled,
            requirements_due: row.requirements_due,
            disabled_reason: row.disabled_reason,
            connected: row.connected,
            fee: fee.complete().to_json(),
        })
    }
}

/// `POST /v1/accounts` for the organiser of `row`: an Express account that can take card
/// payments and receive transfers, tagged with the organiser and the platform.
fn account_form(row: &OrganizerRow) -> Form {
    let mut form = Form::new();
    form.push("type", "express")
        .push("country", row.country.as_str())
        .nested("capabilities[card_payments]", "requested", "true")
        .nested("capabilities[transfers]", "requested", "true")
        .nested("metadata", ORGANIZER_KEY, row.id.as_str())
        .nested("metadata", OWNER_KEY, OWNER_TAG);
    if let Some(email) = &row.email {
        form.push("email", email.as_str());
    }
    form
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<OnboardRequest, Error> {
        OnboardRequest::parse(v.as_object().unwrap(), "MX")
    }

    fn good() -> Value {
        json!({"organizerId": "org_1", "returnUrl": "https://t.example/done",
               "refreshUrl": "http://localhost:3000/again"})
    }

    #[test]
    fn onboarding_requests_are_checked_in_order() {
        let ok = parse(good()).unwrap();
        assert_eq!((ok.country.as_str(), ok.email, ok.fee), ("MX", None, None));
        let with = |field: &str, value: Value| {
            let mut v = good();
            v[field] = value;
            parse(v).unwrap_err().to_string()
        };
        for bad in [
            json!(""),
            json!("a b"),
            json!("x".repeat(65)),
            json!(7),
            json!("ñ"),
        ] {
            assert_eq!(with("organizerId", bad), "organizerId invalid");
        }
        assert_eq!(with("country", json!("XX")), "country invalid");
        assert_eq!(with("country", json!(52)), "country invalid");
        assert_eq!(
            parse({
                let mut v = good();
                v["country"] = json!("es");
                v
            })
            .unwrap()
            .country,
            "ES"
        );
        assert_eq!(with("email", json!("nobody")), "email invalid");
        for bad in [
            json!("http://t.example/x"),
            json!("ftp://x"),
            json!("not a url"),
            json!(null),
        ] {
            assert_eq!(with("returnUrl", bad), "returnUrl invalid");
        }
        assert_eq!(
            with("refreshUrl", json!("http://127.0.0.2/")),
            "refreshUrl invalid"
        );
        assert!(with("fee", json!({"percent": 60})).starts_with("fee invalid"));
    }
}
