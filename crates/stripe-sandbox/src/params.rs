//! Stripe's request parameters: form bodies (and query strings) with bracket nesting, decoded
//! into a JSON tree. `metadata[k]=v` becomes `{"metadata": {"k": "v"}}`; both `expand[]=x` and
//! `expand[0]=x` become `{"expand": ["x"]}`. Every leaf stays a string, as it was sent.
//!
//! Then the endpoints' readers of that tree, which answer Stripe's errors: unknown parameters,
//! strings, flags, integers and metadata.

use serde_json::{json, Map, Value};

use crate::error::{
    invalid, invalid_boolean, invalid_hash, invalid_integer, invalid_string, unknown_parameter,
    StripeErr,
};

/// Why a parameter string could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamError(pub String);

/// Stripe's own nesting never goes deeper than a few levels; deeper keys are refused before any
/// recursion can exhaust the stack.
pub const MAX_DEPTH: usize = 5;
/// More parameters than any Stripe call takes.
pub const MAX_PARAMS: usize = 1000;

pub fn parse(encoded: &[u8]) -> Result<Map<String, Value>, ParamError> {
    let mut root = Map::new();
    for (n, (key, value)) in url::form_urlencoded::parse(encoded).enumerate() {
        if n >= MAX_PARAMS {
            return Err(ParamError(format!(
                "Too many parameters (at most {MAX_PARAMS})"
            )));
        }
        let (base, path) = split_key(&key)?;
        if path.len() > MAX_DEPTH {
            return Err(ParamError(format!(
                "Parameter {base} is nested too deeply (at most {MAX_DEPTH} levels)"
            )));
        }
        insert(&mut root, base, &path, value.into_owned())?;
    }
    normalise(&mut root);
    Ok(root)
}

/// `a[b][]` → (`a`, [`b`, ``]).
fn split_key(key: &str) -> Result<(&str, Vec<&str>), ParamError> {
    let Some(open) = key.find('[') else {
        return Ok((key, Vec::new()));
    };
    let base = &key[..open];
    if base.is_empty() {
        return Err(ParamError(format!("Invalid parameter name: {key}")));
    }
    let mut rest = &key[open..];
    let mut path = Vec::new();
    while !rest.is_empty() {
        let close = rest
            .strip_prefix('[')
            .and_then(|r| r.find(']'))
            .ok_or_else(|| ParamError(format!("Invalid parameter name: {key}")))?;
        path.push(&rest[1..close + 1]);
        rest = &rest[close + 2..];
    }
    Ok((base, path))
}

fn insert(
    map: &mut Map<String, Value>,
    key: &str,
    path: &[&str],
    value: String,
) -> Result<(), ParamError> {
    let conflict = || ParamError(format!("Invalid array or hash for parameter {key}"));
    let Some((first, rest)) = path.split_first() else {
        map.insert(key.to_string(), Value::String(value));
        return Ok(());
    };
    if first.is_empty() {
        // `key[]`: append to a list.
        let entry = map
            .entry(key.to_string())
            .or_insert_with(|| Value::Array(Vec::new()));
        let Value::Array(list) = entry else {
            return Err(conflict());
        };
        if rest.is_empty() {
            list.push(Value::String(value));
        } else {
            let mut inner = Map::new();
            insert(&mut inner, rest[0], &rest[1..], value)?;
            list.push(Value::Object(inner));
        }
        return Ok(());
    }
    let entry = map
        .entry(key.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(inner) = entry else {
        return Err(conflict());
    };
    insert(inner, first, rest, value)
}

/// Objects whose keys are all indexes (`expand[0]`, `expand[1]`) become arrays, in index order.
fn normalise(map: &mut Map<String, Value>) {
    for value in map.values_mut() {
        normalise_value(value);
    }
}

/// A text for parameters that ignores the order they were sent in, so that the same request
/// sent again with another key order is recognised for `Idempotency-Key`.
pub fn canonical(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let inner: Vec<String> = entries
                .into_iter()
                .map(|(k, v)| format!("{}:{}", Value::String(k.clone()), canonical(v)))
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(canonical).collect();
            format!("[{}]", inner.join(","))
        }
        other => other.to_string(),
    }
}

fn normalise_value(value: &mut Value) {
    match value {
        Value::Object(inner) => {
            normalise(inner);
            let indexed = !inner.is_empty() && inner.keys().all(|k| k.parse::<usize>().is_ok());
            if indexed {
                let mut items: Vec<(usize, Value)> = std::mem::take(inner)
                    .into_iter()
                    .map(|(k, v)| (k.parse().unwrap_or(0), v))
                    .collect();
                items.sort_by_key(|(i, _)| *i);
                *value = Value::Array(items.into_iter().map(|(_, v)| v).collect());
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalise_value),
        _ => {}
    }
}

/// Stripe's refusal of the first parameter that is not one of those `known`.
pub(crate) fn check_known(params: &Map<String, Value>, known: &[&str]) -> Result<(), StripeErr> {
    check_known_as(params, known, str::to_string)
}

/// [`check_known`] for parameters nested in another, which `name` names in full.
pub(crate) fn check_known_as(
    params: &Map<String, Value>,
    known: &[&str],
    name: impl Fn(&str) -> String,
) -> Result<(), StripeErr> {
    match params.keys().find(|k| !known.contains(&k.as_str())) {
        Some(unknown) => Err(unknown_parameter(&name(unknown))),
        None => Ok(()),
    }
}

/// The parameters an endpoint takes: those of its kind (`LIST_PARAMS` of every list) and its own.
pub(crate) fn known_with(common: &[&'static str], own: &[&'static str]) -> Vec<&'static str> {
    common.iter().chain(own).copied().collect()
}

/// A text, if given; anything else (a hash, a list) is refused.
pub(crate) fn string_param<'a>(
    params: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, StripeErr> {
    match params.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid_string(name)),
    }
}

/// `true` or `false`, if given.
pub(crate) fn flag_param(
    params: &Map<String, Value>,
    name: &str,
) -> Result<Option<bool>, StripeErr> {
    match string_param(params, name)? {
        None => Ok(None),
        Some("false") => Ok(Some(false)),
        Some("true") => Ok(Some(true)),
        Some(other) => Err(invalid_boolean(other, name)),
    }
}

/// `true` or `false`; false when not given.
pub(crate) fn bool_param(params: &Map<String, Value>, name: &str) -> Result<bool, StripeErr> {
    Ok(flag_param(params, name)?.unwrap_or(false))
}

/// A whole number, if given.
pub(crate) fn integer_param<T: std::str::FromStr>(
    params: &Map<String, Value>,
    name: &str,
) -> Result<Option<T>, StripeErr> {
    string_param(params, name)?
        .map(|text| text.parse().map_err(|_| invalid_integer(text, name)))
        .transpose()
}

/// Stripe's metadata rules: at most 50 keys, keys up to 40 characters, values up to 500;
/// an empty value deletes the key on update.
pub(crate) fn apply_metadata(
    target: &mut Map<String, Value>,
    params: &Map<String, Value>,
) -> Result<(), StripeErr> {
    let Some(given) = params.get("metadata") else {
        return Ok(());
    };
    let Value::Object(given) = given else {
        if given.as_str() == Some("") {
            target.clear();
            return Ok(());
        }
        return Err(invalid_hash("metadata"));
    };
    for (k, v) in given {
        let Some(v) = v.as_str() else {
            return Err(invalid(
                "Invalid metadata value",
                Some(&format!("metadata[{k}]")),
                None,
            ));
        };
        if k.chars().count() > 40 {
            return Err(invalid(
                format!("Metadata keys can have up to 40 characters. Key '{k}' is too long."),
                Some("metadata"),
                None,
            ));
        }
        if v.chars().count() > 500 {
            return Err(invalid(
                format!("Metadata values can have up to 500 characters, but you passed in a value that is {} characters. Invalid value: {k}", v.chars().count()),
                Some(&format!("metadata[{k}]")),
                None,
            ));
        }
        if v.is_empty() {
            target.remove(k);
        } else {
            target.insert(k.clone(), json!(v));
        }
    }
    if target.len() > 50 {
        return Err(invalid(
            "Metadata can have up to 50 keys.",
            Some("metadata"),
            None,
        ));
    }
    Ok(())
}

/// Applies the request's `metadata` to the object's.
pub(crate) fn update_metadata(
    object: &mut Value,
    params: &Map<String, Value>,
) -> Result<(), StripeErr> {
    let mut metadata = object["metadata"].as_object().cloned().unwrap_or_default();
    apply_metadata(&mut metadata, params)?;
    object["metadata"] = Value::Object(metadata);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nesting() {
        let p = parse(
            b"amount=5000&metadata[order+id]=A%26B&automatic_payment_methods[enabled]=true\
              &expand[]=latest_charge&expand[]=payment_method",
        )
        .unwrap();
        assert_eq!(
            Value::Object(p),
            json!({"amount": "5000", "metadata": {"order id": "A&B"},
                   "automatic_payment_methods": {"enabled": "true"},
                   "expand": ["latest_charge", "payment_method"]})
        );
    }

    #[test]
    fn indexed_lists_and_literal_percent_brackets() {
        let p = parse(b"expand%5B1%5D=b&expand%5B0%5D=a&items[0][price]=p1").unwrap();
        assert_eq!(
            Value::Object(p),
            json!({"expand": ["a", "b"], "items": [{"price": "p1"}]})
        );
    }

    #[test]
    fn deep_or_many_parameters_are_refused_without_recursing() {
        let deep = format!("a{}=1", "[x]".repeat(5000));
        assert!(parse(deep.as_bytes())
            .unwrap_err()
            .0
            .contains("nested too deeply"));
        assert!(parse(format!("a{}=1", "[x]".repeat(MAX_DEPTH)).as_bytes()).is_ok());
        let many: Vec<String> = (0..=MAX_PARAMS).map(|i| format!("k{i}=v")).collect();
        assert!(parse(many.join("&").as_bytes()).is_err());
    }

    #[test]
    fn canonical_ignores_order_but_not_values() {
        let a = parse(b"amount=1&metadata[b]=2&metadata[a]=1&expand[]=x").unwrap();
        let b = parse(b"metadata[a]=1&expand[]=x&amount=1&metadata[b]=2").unwrap();
        let c = parse(b"metadata[a]=1&expand[]=x&amount=2&metadata[b]=2").unwrap();
        let text = |m: Map<String, Value>| canonical(&Value::Object(m));
        assert_eq!(text(a.clone()), text(b));
        assert_ne!(text(a), text(c));
    }

    #[test]
    fn malformed_names() {
        assert!(parse(b"[a]=1").is_err());
        assert!(parse(b"a[b=1").is_err());
        assert!(parse(b"a=1&a[b]=2").is_err());
        assert!(parse(b"").unwrap().is_empty());
    }
}
