//! Only the fields the service reads, read leniently: unknown fields are ignored and unknown
//! status strings are kept as they are, so API-version drift and emulators never fail a request.

use std::fmt;

use serde::Deserialize;
use serde_json::{Map, Value};

/// `pi_` followed by 1–250 ASCII letters or digits. It goes into a URL path, so nothing else is
/// accepted: `pi_1/../x` or `pi_1?expand[]=x` never reach Stripe.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PaymentIntentId(String);

impl PaymentIntentId {
    pub fn parse(input: &str) -> Option<Self> {
        let rest = input.strip_prefix("pi_")?;
        let ok = (1..=250).contains(&rest.len()) && rest.bytes().all(|b| b.is_ascii_alphanumeric());
        ok.then(|| PaymentIntentId(input.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PaymentIntentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A PaymentIntent as far as this service cares. The full object is kept in `raw`.
#[derive(Debug, Clone, Deserialize)]
pub struct PaymentIntent {
    pub id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub amount: i64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub currency: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub status: String,
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub created: i64,
    #[serde(default, deserialize_with = "null_as_empty_map")]
    pub metadata: Map<String, Value>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub payment_method: Option<Value>,
    #[serde(default)]
    pub charges: Option<Value>,
}

/// `null` (which emulators send for fields they do not fill) reads as the type's default.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn null_as_empty_map<'de, D>(d: D) -> Result<Map<String, Value>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    })
}

impl PaymentIntent {
    /// Reads the fields we need from any JSON value Stripe (or an emulator) called a PaymentIntent.
    pub fn from_value(value: &Value) -> Option<Self> {
        // Reads through the borrowed tree: only the fields kept here are copied.
        PaymentIntent::deserialize(value).ok()
    }

    pub fn is_final(&self) -> bool {
        is_final_status(&self.status)
    }

    /// The payment method's id, whether Stripe sent the id or an expanded object.
    pub fn payment_method_id(&self) -> Option<String> {
        match &self.payment_method {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Object(o)) => o.get("id").and_then(Value::as_str).map(str::to_string),
            _ => None,
        }
    }

    /// Charges embedded in the object (older API versions, emulators), if it carries a list.
    pub fn embedded_charges(&self) -> Option<Vec<Value>> {
        match self.charges.as_ref()?.get("data")? {
            Value::Array(list) => Some(list.clone()),
            _ => None,
        }
    }
}

/// `succeeded` and `canceled` never change again.
pub fn is_final_status(status: &str) -> bool {
    matches!(status, "succeeded" | "canceled")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(PaymentIntentId::parse("pi_1PgafyB7WZ01zgkWSjxsAJo3").is_some());
        assert!(PaymentIntentId::parse(&format!("pi_{}", "a".repeat(250))).is_some());
        for bad in [
            "",
            "pi_",
            "pi_1/../x",
            "pi_1?expand[]=x",
            "pi_1%2F",
            "ch_123",
            "PI_123",
            "pi_1 ",
            "pi_ñ",
        ] {
            assert!(PaymentIntentId::parse(bad).is_none(), "{bad}");
        }
        assert!(PaymentIntentId::parse(&format!("pi_{}", "a".repeat(251))).is_none());
    }

    #[test]
    fn reads_the_published_fixture_leniently() {
        let raw: Value = serde_json::from_str(include_str!(
            "../../tests/fixtures/stripe/payment_intent.json"
        ))
        .unwrap();
        let pi = PaymentIntent::from_value(&raw).unwrap();
        assert_eq!(pi.id, "pi_1PgafyB7WZ01zgkWSjxsAJo3");
        assert_eq!(pi.amount, 1099);
        assert_eq!(pi.status, "requires_payment_method");
        assert!(pi.embedded_charges().is_none());
        assert_eq!(pi.payment_method_id(), None);
    }

    #[test]
    fn unknown_status_and_partial_objects() {
        let v = serde_json::json!({"id": "pi_1", "status": "some_future_status", "metadata": null});
        let pi = PaymentIntent::from_value(&v).unwrap();
        assert_eq!(pi.status, "some_future_status");
        assert!(pi.metadata.is_empty());
        let v = serde_json::json!({"id": "pi_1", "amount": null, "currency": null, "created": null, "status": null});
        let pi = PaymentIntent::from_value(&v).unwrap();
        assert_eq!((pi.amount, pi.created, pi.status.as_str()), (0, 0, ""));
        let v = serde_json::json!({"id": "pi_1", "payment_method": {"id": "pm_1"}, "charges": {"data": [{"id": "ch_1"}]}});
        let pi = PaymentIntent::from_value(&v).unwrap();
        assert_eq!(pi.payment_method_id().as_deref(), Some("pm_1"));
        assert_eq!(pi.embedded_charges().unwrap().len(), 1);
    }
}
