//! Any input is answered: arbitrary text in the string parameters, parameter names and paths of
//! the endpoints, and arbitrary bytes as a body, always get a JSON answer below 500 (Stripe's
//! error or an object), never a dropped connection.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;

use crate::helpers::*;

/// Where the generated text goes in a request.
#[derive(Debug, Clone, Copy)]
enum Slot {
    /// The value of this parameter.
    Value(&'static str),
    /// The name of a parameter (`{}` is replaced by the text).
    Name(&'static str),
    /// `{x}` in the path.
    Path,
    /// The `key` parameter Stripe.js sends instead of an `Authorization` header.
    Key,
}

#[derive(Debug, Clone, Copy)]
struct Probe {
    method: &'static str,
    /// `{pi}` is a PaymentIntent that exists; `{paid}` one that succeeded; `{held}` one that
    /// awaits capture.
    path: &'static str,
    key: &'static str,
    form: &'static [(&'static str, &'static str)],
    slot: Slot,
}

const PK: &str = "pk_test_inputs";
const CARD: &[(&str, &str)] = &[
    ("type", "card"),
    ("card[number]", "4242424242424242"),
    ("card[exp_month]", "12"),
    ("card[exp_year]", "2040"),
    ("card[cvc]", "123"),
];
const INTENT: &[(&str, &str)] = &[("amount", "2000"), ("currency", "usd")];
const CONFIRMED: &[(&str, &str)] = &[("amount", "2000"), ("currency", "usd"), ("confirm", "true")];

const fn probe(
    method: &'static str,
    path: &'static str,
    key: &'static str,
    form: &'static [(&'static str, &'static str)],
    slot: Slot,
) -> Probe {
    Probe {
        method,
        path,
        key,
        form,
        slot,
    }
}

const PROBES: &[Probe] = &[
    probe(
        "POST",
        "/v1/payment_methods",
        PK,
        CARD,
        Slot::Value("card[number]"),
    ),
    probe(
        "POST",
        "/v1/payment_methods",
        PK,
        CARD,
        Slot::Value("card[exp_month]"),
    ),
    probe(
        "POST",
        "/v1/payment_methods",
        PK,
        CARD,
        Slot::Value("card[exp_year]"),
    ),
    probe(
        "POST",
        "/v1/payment_methods",
        PK,
        CARD,
        Slot::Value("card[cvc]"),
    ),
    probe("POST", "/v1/payment_methods", PK, CARD, Slot::Value("type")),
    probe(
        "POST",
        "/v1/payment_methods",
        PK,
        CARD,
        Slot::Value("billing_details[name]"),
    ),
    probe(
        "POST",
        "/v1/payment_methods",
        PK,
        CARD,
        Slot::Name("billing_details[address][{}]"),
    ),
    probe("POST", "/v1/payment_methods", "", CARD, Slot::Key),
    probe(
        "POST",
        "/v1/payment_intents",
        KEY,
        INTENT,
        Slot::Value("amount"),
    ),
    probe(
        "POST",
        "/v1/payment_intents",
        KEY,
        INTENT,
        Slot::Value("currency"),
    ),
    probe(
        "POST",
        "/v1/payment_intents",
        KEY,
        INTENT,
        Slot::Value("description"),
    ),
    probe(
        "POST",
        "/v1/payment_intents",
        KEY,
        INTENT,
        Slot::Value("capture_method"),
    ),
    probe(
        "POST",
        "/v1/payment_intents",
        KEY,
        INTENT,
        Slot::Value("metadata[order]"),
    ),
    probe(
        "POST",
        "/v1/payment_intents",
        KEY,
        INTENT,
        Slot::Name("metadata[{}]"),
    ),
    probe("POST", "/v1/payment_intents", KEY, INTENT, Slot::Name("{}")),
    probe(
        "POST",
        "/v1/payment_intents",
        KEY,
        CONFIRMED,
        Slot::Value("payment_method"),
    ),
    probe(
        "POST",
        "/v1/payment_intents/{pi}",
        KEY,
        &[],
        Slot::Value("description"),
    ),
    probe(
        "POST",
        "/v1/payment_intents/{pi}/confirm",
        KEY,
        &[],
        Slot::Value("payment_method"),
    ),
    probe(
        "POST",
        "/v1/payment_intents/{pi}/confirm",
        KEY,
        &[("payment_method", "pm_card_authenticationRequired")],
        Slot::Value("return_url"),
    ),
    probe(
        "POST",
        "/v1/payment_intents/{pi}/confirm",
        KEY,
        &[
            ("payment_method_data[type]", "card"),
            ("payment_method_data[card][exp_month]", "12"),
            ("payment_method_data[card][exp_year]", "2040"),
        ],
        Slot::Value("payment_method_data[card][number]"),
    ),
    probe(
        "POST",
        "/v1/payment_intents/{pi}/cancel",
        KEY,
        &[],
        Slot::Value("cancellation_reason"),
    ),
    probe(
        "POST",
        "/v1/payment_intents/{held}/capture",
        KEY,
        &[],
        Slot::Value("amount_to_capture"),
    ),
    probe(
        "POST",
        "/v1/refunds",
        KEY,
        &[],
        Slot::Value("payment_intent"),
    ),
    probe(
        "POST",
        "/v1/refunds",
        KEY,
        &[("payment_intent", "{paid}")],
        Slot::Value("amount"),
    ),
    probe(
        "POST",
        "/v1/refunds",
        KEY,
        &[("payment_intent", "{paid}")],
        Slot::Value("reason"),
    ),
    probe("GET", "/v1/events", KEY, &[], Slot::Value("type")),
    probe("GET", "/v1/events", KEY, &[], Slot::Value("types[]")),
    probe("GET", "/v1/payment_intents", KEY, &[], Slot::Value("limit")),
    probe(
        "GET",
        "/v1/payment_intents",
        KEY,
        &[],
        Slot::Value("starting_after"),
    ),
    probe("GET", "/v1/charges", KEY, &[], Slot::Value("created")),
    probe("GET", "/v1/refunds", KEY, &[], Slot::Name("created[{}]")),
    probe(
        "GET",
        "/v1/payment_intents/{pi}",
        KEY,
        &[],
        Slot::Value("expand[]"),
    ),
    probe("GET", "/v1/payment_intents/{x}", KEY, &[], Slot::Path),
    probe("GET", "/v1/charges/{x}/refunds", KEY, &[], Slot::Path),
    probe("POST", "/v1/disputes/{x}", KEY, &[], Slot::Path),
    probe("GET", "/v1/{x}", KEY, &[], Slot::Path),
    probe(
        "POST",
        "/_sandbox/faults",
        KEY,
        &[],
        Slot::Value("refund_balance_insufficient[]"),
    ),
    probe("POST", "/_sandbox/webhooks", KEY, &[], Slot::Value("drop")),
];

/// Text that reaches the places where the sandbox reads characters: anything at all, numbers
/// with a stray character, and names close to the sandbox's own aliases.
fn text() -> impl Strategy<Value = String> {
    let outside_ascii = "[^\\x00-\\x7F]";
    let regex = |pattern: String| proptest::string::string_regex(&pattern).unwrap();
    prop_oneof![
        any::<String>(),
        regex(format!("[0-9 -]{{0,20}}{outside_ascii}{{0,3}}[0-9]{{0,3}}")),
        regex(format!(
            "(card:|live:|live:visa:|pm_card_)[0-9]{{0,4}}{outside_ascii}{{0,4}}"
        )),
        regex("\\PC{0,3}".to_string()),
    ]
}

fn form(pairs: &[(String, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// Sends one request; its status and body, or why it got no answer.
async fn send(
    http: &reqwest::Client,
    base: &str,
    method: &str,
    path: &str,
    key: &str,
    body: Vec<u8>,
) -> Result<(u16, Value), String> {
    let method: reqwest::Method = method.parse().unwrap();
    let get = method == reqwest::Method::GET;
    let url = if get {
        let separator = if path.contains('?') { '&' } else { '?' };
        format!("{base}{path}{separator}{}", String::from_utf8_lossy(&body))
    } else {
        format!("{base}{path}")
    };
    let mut request = http
        .request(method, url)
        .header("content-type", "application/x-www-form-urlencoded");
    if !key.is_empty() {
        request = request.bearer_auth(key);
    }
    if !get {
        request = request.body(body);
    }
    let response = request
        .send()
        .await
        .map_err(|e| format!("no answer: {e}"))?;
    let status = response.status().as_u16();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| format!("answer cut: {e}"))?;
    let body = serde_json::from_slice(&bytes)
        .map_err(|_| format!("not JSON: {}", String::from_utf8_lossy(&bytes)))?;
    Ok((status, body))
}

/// An answer the sandbox may give to anything: below 500, and either Stripe's error envelope or
/// an object.
fn well_formed(status: u16, body: &Value) -> bool {
    let error = &body["error"];
    let stripe_error = error["type"].is_string() && error["message"].is_string();
    status < 500 && (stripe_error || body["object"].is_string())
}

#[test]
fn arbitrary_text_in_parameters_names_and_paths_is_always_answered() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let a = runtime.block_on(api(None));
    let (pi, paid, held) = runtime.block_on(async {
        let pi = a.create("amount=2000&currency=usd").await;
        let paid = a.paid(2000, "pm_card_visa", "").await;
        let held = a.paid(2000, "pm_card_visa", "&capture_method=manual").await;
        let id = |v: &Value| s(&v["id"]).to_string();
        (id(&pi), id(&paid), id(&held))
    });
    let mut runner = TestRunner::new(Config {
        cases: 96,
        failure_persistence: None,
        ..Config::default()
    });
    let fill = |s: &str| {
        s.replace("{pi}", &pi)
            .replace("{paid}", &paid)
            .replace("{held}", &held)
    };
    // Every probe gets every text, so that a failure shrinks to the text alone.
    runner
        .run(&text(), |text| {
            let in_path: String = url::form_urlencoded::byte_serialize(text.as_bytes()).collect();
            for probe in PROBES {
                let mut path = fill(probe.path);
                let mut pairs: Vec<(String, String)> = probe
                    .form
                    .iter()
                    .map(|(k, v)| (k.to_string(), fill(v)))
                    .collect();
                match probe.slot {
                    Slot::Value(name) => {
                        pairs.retain(|(k, _)| k != name);
                        pairs.push((name.to_string(), text.clone()));
                    }
                    Slot::Name(pattern) => pairs.push((pattern.replace("{}", &text), "1".into())),
                    Slot::Path => path = path.replace("{x}", &in_path),
                    Slot::Key => pairs.push(("key".into(), text.clone())),
                }
                let answer = runtime.block_on(send(
                    &a.http,
                    &a.base,
                    probe.method,
                    &path,
                    probe.key,
                    form(&pairs).into_bytes(),
                ));
                let (status, body) = answer.map_err(|e| {
                    TestCaseError::fail(format!("{} {path} {pairs:?}: {e}", probe.method))
                })?;
                prop_assert!(
                    well_formed(status, &body),
                    "{} {path} {pairs:?}: {status} {body}",
                    probe.method
                );
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn arbitrary_bytes_as_a_body_are_always_answered() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let a = runtime.block_on(api(None));
    let mut runner = TestRunner::new(Config {
        cases: 200,
        failure_persistence: None,
        ..Config::default()
    });
    let bodies = proptest::collection::vec(any::<u8>(), 0..300);
    runner
        .run(&bodies, |body| {
            for path in ["/v1/payment_intents", "/v1/payment_methods"] {
                let answer =
                    runtime.block_on(send(&a.http, &a.base, "POST", path, KEY, body.clone()));
                let (status, reply) =
                    answer.map_err(|e| TestCaseError::fail(format!("{path} {body:?}: {e}")))?;
                prop_assert!(
                    well_formed(status, &reply),
                    "{path} {body:?}: {status} {reply}"
                );
            }
            Ok(())
        })
        .unwrap();
}
