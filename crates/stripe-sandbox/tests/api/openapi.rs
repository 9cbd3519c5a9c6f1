//! The sandbox's objects against Stripe's own description of them (`tests/fixtures/stripe/`):
//! every property a schema requires is there, every property it knows has the JSON type it
//! gives (nullable only where it says so, enums only with listed values), down through nested
//! objects; and every field of Stripe's published example object is present.

use std::sync::OnceLock;

use serde_json::Value;

use crate::helpers::*;

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/stripe/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn schemas() -> &'static Value {
    static SCHEMAS: OnceLock<Value> = OnceLock::new();
    SCHEMAS.get_or_init(|| fixture("schemas.json")["components"]["schemas"].clone())
}

/// Values this schema version (API 2023-08-16) predates: Stripe has since added them, and the
/// sandbox answers as the current API version does.
const NEWER_THAN_THE_SCHEMA: &[(&str, &str)] = &[];

/// Checks `value` against `schema`; problems are pushed with their JSON path.
fn check(value: &Value, schema: &Value, path: &str, problems: &mut Vec<String>) {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap();
        // Schemas outside the vendored subset (reachable only through expandable ids) are not
        // checked.
        if let Some(target) = schemas().get(name) {
            check(value, target, path, problems);
        }
        return;
    }
    if value.is_null() {
        if schema["nullable"] != true {
            problems.push(format!("{path}: null, and the schema does not allow null"));
        }
        return;
    }
    if let Some(branches) = schema["anyOf"].as_array() {
        let fits = branches.iter().any(|b| {
            let mut inner = Vec::new();
            check(value, b, path, &mut inner);
            inner.is_empty()
        });
        if !fits {
            problems.push(format!("{path}: {value} fits none of anyOf"));
        }
        return;
    }
    if let Some(allowed) = schema["enum"].as_array() {
        let exempt = NEWER_THAN_THE_SCHEMA
            .iter()
            .any(|(p, v)| path.ends_with(p) && value == v);
        if !allowed.contains(value) && !exempt {
            problems.push(format!("{path}: {value} is not one of {allowed:?}"));
        }
    }
    let fits = match schema["type"].as_str() {
        None => true,
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean(),
        Some("array") => value.is_array(),
        Some("object") => value.is_object(),
        Some(other) => {
            problems.push(format!("{path}: unknown schema type {other}"));
            true
        }
    };
    if !fits {
        problems.push(format!("{path}: {value} is not of type {}", schema["type"]));
        return;
    }
    if let (Some(items), Some(schema_items)) = (value.as_array(), schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            check(item, schema_items, &format!("{path}[{i}]"), problems);
        }
    }
    if let Some(object) = value.as_object() {
        for required in schema["required"].as_array().into_iter().flatten() {
            let name = required.as_str().unwrap();
            if !object.contains_key(name) {
                problems.push(format!("{path}.{name}: required, and missing"));
            }
        }
        let properties = schema["properties"].as_object();
        for (name, v) in object {
            match properties.and_then(|p| p.get(name)) {
                Some(property) => check(v, property, &format!("{path}.{name}"), problems),
                None => {
                    if let Some(extra) =
                        schema.get("additionalProperties").filter(|e| e.is_object())
                    {
                        check(v, extra, &format!("{path}.{name}"), problems);
                    }
                }
            }
        }
    }
}

fn assert_fits(value: &Value, schema_name: &str) {
    let schema = schemas()
        .get(schema_name)
        .unwrap_or_else(|| panic!("no schema {schema_name}"));
    let mut problems = Vec::new();
    check(value, schema, schema_name, &mut problems);
    assert!(
        problems.is_empty(),
        "{schema_name} does not fit Stripe's schema:\n{}\n{value:#}",
        problems.join("\n")
    );
    if let Some(example) = fixture("examples.json").get(schema_name) {
        for key in example.as_object().unwrap().keys() {
            assert!(
                value.get(key).is_some(),
                "{schema_name} lacks {key}, which Stripe's example has"
            );
        }
    }
}

#[test]
fn the_checker_finds_what_it_should() {
    let mut problems = Vec::new();
    let mut pi = fixture("examples.json")["payment_intent"].clone();
    check(&pi, &schemas()["payment_intent"], "pi", &mut problems);
    assert!(problems.is_empty(), "Stripe's own example: {problems:?}");
    pi.as_object_mut().unwrap().remove("currency");
    pi["amount"] = Value::from("5000");
    pi["status"] = Value::from("paid");
    pi["livemode"] = Value::Null;
    check(&pi, &schemas()["payment_intent"], "pi", &mut problems);
    let text = problems.join("\n");
    for expected in [
        "pi.currency: required",
        "pi.amount",
        "pi.status",
        "pi.livemode: null",
    ] {
        assert!(
            text.contains(expected),
            "{expected} not reported in:\n{text}"
        );
    }
}

#[tokio::test]
async fn every_object_the_sandbox_returns_fits_stripes_schemas() {
    let a = api(None).await;
    let created = a
        .create("amount=2500&currency=usd&metadata[order]=1&description=x&automatic_payment_methods[enabled]=true")
        .await;
    assert_fits(&created, "payment_intent");
    let paid = a
        .create("amount=2500&currency=usd&payment_method=pm_card_visa&confirm=true")
        .await;
    assert_fits(&paid, "payment_intent");
    let id = paid["id"].as_str().unwrap();
    let (_, expanded) = a
        .get(&format!(
            "/v1/payment_intents/{id}?expand[]=latest_charge&expand[]=payment_method"
        ))
        .await;
    assert_fits(&expanded, "payment_intent");
    assert_fits(&expanded["latest_charge"], "charge");
    assert_fits(&expanded["payment_method"], "payment_method");
    let three_ds = a.create("amount=2500&currency=usd").await;
    let (_, requires_action) = a
        .post(
            &format!(
                "/v1/payment_intents/{}/confirm",
                three_ds["id"].as_str().unwrap()
            ),
            "payment_method=pm_card_authenticationRequired",
        )
        .await;
    assert_eq!(requires_action["status"], "requires_action");
    assert_fits(&requires_action, "payment_intent");
    let (_, canceled) = a
        .post(
            &format!(
                "/v1/payment_intents/{}/cancel",
                three_ds["id"].as_str().unwrap()
            ),
            "cancellation_reason=abandoned",
        )
        .await;
    assert_fits(&canceled, "payment_intent");
    let declined = a.create("amount=2500&currency=usd").await;
    let (status, error) = a
        .post(
            &format!(
                "/v1/payment_intents/{}/confirm",
                declined["id"].as_str().unwrap()
            ),
            "payment_method=pm_card_visa_chargeDeclined",
        )
        .await;
    assert_eq!(status, 402);
    assert_fits(&error["error"]["payment_intent"], "payment_intent");
    let (_, failed) = a
        .get(&format!(
            "/v1/charges?payment_intent={}",
            declined["id"].as_str().unwrap()
        ))
        .await;
    assert_fits(&failed, "charge_list");
    assert_eq!(failed["data"][0]["status"], "failed");
    for (path, schema) in [
        ("/v1/payment_intents", "payment_intent_list"),
        ("/v1/charges", "charge_list"),
        ("/v1/events?limit=100", "event_list"),
    ] {
        let (status, list) = a.get(path).await;
        assert_eq!(status, 200);
        assert_fits(&list, schema);
        for item in list["data"].as_array().unwrap() {
            if item["object"] == "event" {
                assert_fits(item, "event");
                let inner = &item["data"]["object"];
                assert_fits(inner, inner["object"].as_str().unwrap());
            }
        }
    }
}
