//! What an operator needs (issue 5): health, readiness, metrics, the OpenAPI document, request
//! ids, API tokens, the create rate limit, and robustness against arbitrary input.

use proptest::prelude::*;
use secrecy::SecretString;
use serde_json::{json, Value};
use tmt_payments::http::access::{Network, RateLimit};
use wiremock::matchers::method;
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;

#[tokio::test]
async fn health_and_readiness() {
    let app = spawn_app().await;
    let (status, _, body) = app.get("/healthz").await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));
    let (status, _, body) = app.get("/readyz").await;
    assert_eq!(status, 200);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        body,
        json!({"status": "ready", "database": "ok", "stripe": "configured"})
    );
    let sandbox = spawn_app_with(|c| c.stripe.secret_key = None).await;
    let (_, _, body) = sandbox.get("/readyz").await;
    assert!(body.contains(r#""stripe":"sandbox""#), "{body}");
}

#[tokio::test]
async fn openapi_document_describes_every_function() {
    let app = spawn_app().await;
    let (status, _, body) = app.get("/openapi.json").await;
    assert_eq!(status, 200);
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let mut paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "/stripe_cancel_payment_intent",
            "/stripe_capture_payment",
            "/stripe_confirm_payment",
            "/stripe_create_payment_intent",
            "/stripe_get_organizer",
            "/stripe_get_payment_intent",
            "/stripe_onboard_organizer",
            "/stripe_refund_payment",
            "/stripe_webhook"
        ]
    );
    let create = &doc["paths"]["/stripe_create_payment_intent"]["post"];
    let params: Vec<&str> = create["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(params, ["Idempotency-Key"]);
    for status in [
        "200", "400", "409", "413", "415", "422", "429", "500", "503",
    ] {
        assert!(create["responses"][status].is_object(), "create {status}");
    }
    for path in [
        "/stripe_confirm_payment",
        "/stripe_get_payment_intent",
        "/stripe_refund_payment",
        "/stripe_cancel_payment_intent",
        "/stripe_capture_payment",
        "/stripe_onboard_organizer",
        "/stripe_get_organizer",
    ] {
        assert!(
            doc["paths"][path]["post"]["responses"]["415"].is_object(),
            "{path} 415"
        );
    }
    // The seat hold and Stripe's refusals on the routes that answer them; both 409s of a
    // write under an Idempotency-Key are named.
    let described = |path: &str, status: &str| {
        let post = &doc["paths"][path]["post"]["responses"][status];
        post["description"].as_str().unwrap_or_default().to_string()
    };
    // The delayed methods' refusals, and nextAction in create's and get's answers.
    let create_400 = described("/stripe_create_payment_intent", "400");
    for code in ["payment_method_invalid", "customer_email_required"] {
        assert!(create_400.contains(code), "{create_400}");
    }
    let refund_409 = described("/stripe_refund_payment", "409");
    assert!(refund_409.contains("refund_not_supported"), "{refund_409}");
    let schemas = &doc["components"]["schemas"];
    // Create's input is described inline, within its envelope.
    for field in ["\"paymentMethodTypes\"", "\"customerEmail\""] {
        assert!(body.contains(field), "{field}");
    }
    for schema in ["CreatedData", "PaymentIntentData"] {
        assert!(
            schemas[schema]["properties"]["nextAction"].is_object(),
            "{schema}: {}",
            schemas[schema]
        );
    }
    let next = &schemas["NextActionData"]["properties"];
    for field in [
        "type",
        "expiresAt",
        "hostedUrl",
        "number",
        "clabe",
        "iban",
        "bic",
        "reference",
        "amountRemaining",
    ] {
        assert!(next[field].is_object(), "nextAction.{field}: {next}");
    }
    let capture_409 = described("/stripe_capture_payment", "409");
    for code in ["hold_expired", "idempotency_key_in_progress"] {
        assert!(capture_409.contains(code), "{capture_409}");
    }
    for path in [
        "/stripe_refund_payment",
        "/stripe_cancel_payment_intent",
        "/stripe_capture_payment",
    ] {
        assert!(
            described(path, "404").contains("payment_not_found"),
            "{path}"
        );
    }
    let refund_409 = described("/stripe_refund_payment", "409");
    for code in [
        "payment_disputed",
        "balance_insufficient",
        "idempotency_key_in_progress",
    ] {
        assert!(refund_409.contains(code), "{refund_409}");
    }
    assert!(described("/stripe_confirm_payment", "400").contains("payment_refunded"));
    for (schema, fields) in [
        ("ConfirmedData", ["amountRefunded", "late"]),
        ("PaymentIntentData", ["amountRefunded", "late"]),
    ] {
        for field in fields {
            let property = &doc["components"]["schemas"][schema]["properties"][field];
            assert!(property.is_object(), "{schema}.{field}");
        }
    }
    let hook = &doc["paths"]["/stripe_webhook"]["post"];
    assert!(
        hook["responses"]["415"].is_null(),
        "the webhook takes any Content-Type"
    );
    assert_eq!(hook["parameters"][0]["name"], "Stripe-Signature");
    assert!(doc["components"]["securitySchemes"]["api_token"].is_object());
    assert_eq!(
        doc["components"]["schemas"]["ErrorBody"]["properties"]["code"]["$ref"],
        "#/components/schemas/ErrorCode"
    );
    let codes: Vec<&str> = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(codes, tmt_payments::http::error::ERROR_CODES);
}

#[test]
#[ignore = "needs Python peers in .venv (openapi-spec-validator)"]
fn the_openapi_document_is_valid_for_an_independent_validator() {
    let python = python_peer(&["openapi_spec_validator"]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("openapi.json");
    std::fs::write(&path, tmt_payments::http::openapi::document_json()).unwrap();
    let out = std::process::Command::new(python)
        .args(["-m", "openapi_spec_validator", "--schema", "3.1.0"])
        .arg(&path)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("OK"), "{text}");
}

#[tokio::test]
async fn request_ids_are_taken_or_made_and_echoed() {
    let app = spawn_app().await;
    let echoed = |id: Option<String>| {
        let mut r = app.http.get(app.url("/healthz"));
        if let Some(id) = id {
            r = r.header("X-Request-Id", id);
        }
        async move {
            let r = r.send().await.unwrap();
            r.headers()["x-request-id"].to_str().unwrap().to_string()
        }
    };
    assert_eq!(echoed(Some("front-abc-123".into())).await, "front-abc-123");
    let made = echoed(None).await;
    assert_eq!(made.len(), 32);
    assert_eq!(
        echoed(Some("x".repeat(300))).await.len(),
        32,
        "an unusable id is replaced"
    );
}

const TOKEN: &str = "tok_0123456789abcdef";

/// Without API_TOKENS the service warns at start-up, naming every function that then answers
/// anyone: each one that a service with tokens refuses to a caller without one (asked of every
/// function the OpenAPI document describes), and none of the others.
#[tokio::test]
async fn the_warning_without_api_tokens_names_every_function_it_leaves_open() {
    let guarded =
        spawn_app_with(|c| c.access.tokens = vec![SecretString::from(TOKEN.to_string())]).await;
    let (_, _, doc) = guarded.get("/openapi.json").await;
    let doc: Value = serde_json::from_str(&doc).unwrap();
    let (mut needs_token, mut open_anyway) = (Vec::new(), Vec::new());
    for path in doc["paths"].as_object().unwrap().keys() {
        if path == "/stripe_webhook" {
            continue;
        }
        let (status, _, _) = guarded.post(path, json!({"data": {}})).await;
        let name = path.trim_start_matches('/').to_string();
        if status == 401 {
            needs_token.push(name);
        } else {
            open_anyway.push(name);
        }
    }
    for name in [
        "stripe_confirm_payment",
        "stripe_get_payment_intent",
        "stripe_refund_payment",
        "stripe_cancel_payment_intent",
        "stripe_capture_payment",
    ] {
        assert!(
            needs_token.iter().any(|n| n == name),
            "{name}: {needs_token:?}"
        );
    }
    assert_eq!(open_anyway, ["stripe_create_payment_intent"]);

    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("service.log");
    let _server = Server::keyed_logging(
        &sqlite_url(dir.path()),
        &guarded.stripe.uri(),
        &[("LOG_FORMAT", "json")],
        Some(&log),
    )
    .await;
    let warning = eventually("the start-up warning", PATIENCE, || async {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|l| {
                l["level"] == "WARN"
                    && l["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("API_TOKENS"))
            })
            .ok_or(text)
    })
    .await;
    let message = warning["message"].as_str().unwrap();
    for name in &needs_token {
        assert!(message.contains(name.as_str()), "{name} in: {message}");
    }
    for name in &open_anyway {
        assert!(!message.contains(name.as_str()), "{name} in: {message}");
    }
}

#[tokio::test]
async fn api_tokens_guard_every_client_endpoint_but_create() {
    let app = spawn_app_with(|c| {
        c.access.tokens = vec![
            SecretString::from("tok_old_0123456789ab".to_string()),
            SecretString::from(TOKEN.to_string()),
        ]
    })
    .await;
    stub_reads(
        &app.stripe,
        payment_intent("pi_tok1", 500, "usd", "succeeded"),
    )
    .await;
    stub(&app.stripe, "POST", CreateResponder).await;
    let call = |path: &'static str, auth: Option<&'static str>| {
        let data = json!({"data": {"payment_intent_id": "pi_tok1", "amount": 5}});
        let headers: Vec<_> = auth.map(|a| ("Authorization", a)).into_iter().collect();
        let app = &app;
        async move { app.post_with(path, data, &headers).await }
    };
    for path in ["/stripe_refund_payment", "/stripe_cancel_payment_intent"] {
        let (status, _, _) = call(path, None).await;
        assert_eq!(status, 401, "{path} needs a token");
        let (status, _, body) = call(path, Some("Bearer tok_0123456789abcdef")).await;
        assert_ne!(status, 401, "{path} with a token: {body}");
    }
    for path in ["/stripe_confirm_payment", "/stripe_get_payment_intent"] {
        for auth in [
            None,
            Some("Bearer wrong-token-0123456789"),
            Some("Basic dG9rOg=="),
            Some(TOKEN),
        ] {
            let (status, headers, body) = call(path, auth).await;
            assert_eq!(status, 401, "{path} {auth:?}");
            assert_eq!(
                body,
                json!({"status": 401, "error": "No autorizado", "code": "unauthorized"})
            );
            assert_eq!(headers["www-authenticate"], "Bearer");
        }
        let (status, _, _) = call(path, Some("Bearer tok_0123456789abcdef")).await;
        assert_eq!(status, 200, "{path}");
        let (status, _, _) = call(path, Some("Bearer tok_old_0123456789ab")).await;
        assert_eq!(status, 200, "{path}: every token of a rotation works");
        // Preflight needs no token.
        let r = app
            .http
            .request(reqwest::Method::OPTIONS, app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
    }
    let (status, _, _) = call("/stripe_create_payment_intent", None).await;
    assert_eq!(status, 200, "create stays public");
    let pi = payment_intent("pi_tok1", 500, "usd", "succeeded");
    assert_eq!(
        app.deliver(&event("evt_tok", "payment_intent.succeeded", pi, now()))
            .await
            .0,
        200,
        "webhooks are signature-only"
    );
    // No API call made it to Stripe without a token.
    let reads = app
        .stripe_requests()
        .await
        .iter()
        .filter(|r| r.url.path() == "/v1/payment_intents/pi_tok1")
        .count();
    // The refund's read only: it left the payment settled in the ledger, so the cancel, and
    // confirm and get with a token, were answered from there.
    assert_eq!(reads, 1, "only the authorised calls reached Stripe");
}

/// An app allowing 3 creates a minute per client, behind a trusted proxy at 127.0.0.1.
async fn behind_a_proxy_with_3_creates_a_minute() -> TestApp {
    let app = spawn_app_with(|c| {
        c.access.create_rate_limit = RateLimit::parse("3/min");
        c.access.trusted_proxies = vec![Network::parse("127.0.0.1").unwrap()];
    })
    .await;
    app.mount_create().await;
    app
}

/// A create of 5.00 from `client`, as the proxy in front says (`X-Forwarded-For`).
async fn create_from(app: &TestApp, client: &str) -> Answer {
    let data = json!({"data": {"amount": 5}});
    app.post_with(
        "/stripe_create_payment_intent",
        data,
        &[("X-Forwarded-For", client)],
    )
    .await
}

#[tokio::test]
async fn create_rate_limit_per_client() {
    let app = behind_a_proxy_with_3_creates_a_minute().await;
    let create = |client: &'static str| create_from(&app, client);
    for _ in 0..3 {
        assert_eq!(create("198.51.100.1").await.0, 200);
    }
    let (status, headers, body) = create("198.51.100.1").await;
    assert_eq!(status, 429);
    assert_eq!(
        body,
        json!({"status": 429, "error": "Demasiadas solicitudes", "code": "rate_limited"})
    );
    let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert_eq!(
        create("198.51.100.2").await.0,
        200,
        "another client has its own budget"
    );
    // Invalid requests count too: card testers send many.
    assert_eq!(app.stripe_requests().await.len(), 4);
}

#[tokio::test]
async fn create_rate_limit_counts_an_ipv6_client_by_its_64() {
    let app = behind_a_proxy_with_3_creates_a_minute().await;
    let create = |client: String| {
        let app = &app;
        async move { create_from(app, &client).await.0 }
    };
    // A card tester with one /64 picks a new address for every attempt.
    for i in 1..=3 {
        assert_eq!(create(format!("2001:db8:1:2::{i}")).await, 200);
    }
    assert_eq!(
        create("2001:db8:1:2:ffff:ffff:ffff:ffff".into()).await,
        429,
        "the whole /64 is one client"
    );
    assert_eq!(
        create("2001:db8:1:3::1".into()).await,
        200,
        "the next /64 is another client"
    );
    for _ in 0..3 {
        assert_eq!(create("::ffff:198.51.100.9".into()).await, 200);
    }
    assert_eq!(
        create("198.51.100.9".into()).await,
        429,
        "an IPv4-mapped address is its IPv4 client"
    );
    assert_eq!(create("198.51.100.10".into()).await, 200, "IPv4 by address");
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let app =
        spawn_app_with(|c| c.access.tokens = vec![SecretString::from(TOKEN.to_string())]).await;
    stub_reads(
        &app.stripe,
        payment_intent("pi_tok1", 500, "usd", "succeeded"),
    )
    .await;
    let get = |authorization: String| {
        let app = &app;
        async move {
            let data = json!({"data": {"payment_intent_id": "pi_tok1"}});
            let auth = [("Authorization", authorization.as_str())];
            app.post_with("/stripe_get_payment_intent", data, &auth)
                .await
                .0
        }
    };
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        assert_eq!(get(format!("{scheme} {TOKEN}")).await, 200, "{scheme}");
    }
    for refused in [
        format!("Basic {TOKEN}"),
        format!("Bearer{TOKEN}"),
        TOKEN.to_string(),
    ] {
        assert_eq!(get(refused.clone()).await, 401, "{refused}");
    }
}

#[tokio::test]
async fn forwarded_for_is_ignored_without_trusted_proxies() {
    let app = spawn_app_with(|c| c.access.create_rate_limit = RateLimit::parse("2/min")).await;
    app.mount_create().await;
    let mut statuses = Vec::new();
    for i in 0..3 {
        statuses.push(create_from(&app, &format!("203.0.113.{i}")).await.0);
    }
    assert_eq!(
        statuses,
        [200, 200, 429],
        "a spoofed header does not buy a new budget"
    );
}

/// A status and body the OpenAPI document allows for this path.
fn documented(path: &str, status: u16, body: &Value) -> bool {
    let code = body["code"].as_str().unwrap_or("");
    match status {
        200 => true,
        500 => matches!(code, "stripe_error" | "stripe_unreachable"),
        400 | 405 | 409 | 413 | 415 | 422 | 429 | 503 => {
            tmt_payments::http::error::ERROR_CODES.contains(&code)
        }
        401 => path != "/stripe_webhook" && code == "unauthorized",
        _ => false,
    }
}

const PATHS: [&str; 4] = [
    "/stripe_create_payment_intent",
    "/stripe_confirm_payment",
    "/stripe_get_payment_intent",
    "/stripe_webhook",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "-?[0-9]{1,30}(\\.[0-9]{0,30})?(e-?[0-9]{1,6})?"
            .prop_map(|s| serde_json::from_str(&s).unwrap_or(Value::Null)),
        ".{0,40}".prop_map(Value::String),
        Just(json!("pi_123")),
        Just(json!("usd")),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("amount".to_string()),
                    Just("currency".to_string()),
                    Just("metadata".to_string()),
                    Just("description".to_string()),
                    Just("payment_intent_id".to_string()),
                    ".{0,8}".prop_map(|s| s)
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[test]
fn arbitrary_input_never_panics_nor_answers_an_undocumented_status() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let app = runtime.block_on(async {
        let app = spawn_app_with(|c| c.stripe.max_retries = 0).await;
        Mock::given(method("POST")).respond_with(CreateResponder).mount(&app.stripe).await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(404).set_body_json(json!({"error": {"type": "invalid_request_error", "code": "resource_missing", "message": "No such payment_intent"}})))
            .mount(&app.stripe)
            .await;
        app
    });
    let send = |path: &str, body: Vec<u8>, signature: Option<String>| {
        runtime.block_on(async {
            let mut r = app
                .http
                .post(format!("{}{path}", app.address))
                .header("content-type", "application/json")
                .body(body);
            if let Some(s) = signature {
                r = r.header("Stripe-Signature", s);
            }
            read(r.send().await.expect("the server answers")).await
        })
    };
    let config = ProptestConfig {
        cases: 96,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(bytes in proptest::collection::vec(any::<u8>(), 0..300), p in 0usize..4)| {
        let (status, _, body) = send(PATHS[p], bytes, None);
        prop_assert!(documented(PATHS[p], status, &body), "{} {} {}", PATHS[p], status, body);
    });
    proptest!(config, |(data in json_value(), p in 0usize..3, wrap in any::<bool>())| {
        let body = if wrap { json!({"data": data}) } else { data };
        let (status, _, response) = send(PATHS[p], body.to_string().into_bytes(), None);
        prop_assert!(documented(PATHS[p], status, &response), "{} {} {} -> {}", PATHS[p], body, status, response);
        if status != 200 {
            prop_assert_eq!(response["status"].as_u64(), Some(u64::from(status)));
        }
    });
    proptest!(config, |(header in "[ -~]{0,120}", t in proptest::option::of(any::<i64>()), body in ".{0,64}")| {
        let header = match t {
            Some(t) => format!("t={t},{header}"),
            None => header,
        };
        let (status, _, response) = send("/stripe_webhook", body.into_bytes(), Some(header));
        prop_assert_eq!(status, 400, "{}", response);
        prop_assert!(response["code"].as_str().unwrap_or("").starts_with("signature_"), "{}", response);
    });
}
