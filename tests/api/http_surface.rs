//! The rules that hold for every client endpoint (docs/contract.md §2): envelope, CORS,
//! methods, size, media type; and the one that holds for every route: its errors are JSON.

use serde_json::{json, Value};
use tmt_payments::http::access::RateLimit;
use tmt_payments::http::CorsOrigins;
use tmt_payments::ledger::PaymentRow;
use wiremock::matchers::method;
use wiremock::Mock;

use crate::helpers::*;

const CLIENT_PATHS: [&str; 3] = [
    "/stripe_create_payment_intent",
    "/stripe_confirm_payment",
    "/stripe_get_payment_intent",
];

#[tokio::test]
async fn bodies_that_are_not_an_envelope_are_invalid_body() {
    let app = spawn_app().await;
    let bad: [&[u8]; 9] = [
        b"",
        b"not json",
        b"[]",
        b"42",
        b"{}",
        b"{\"amount\": 50}",
        b"{\"data\": null}",
        b"{\"data\": [1]}",
        b"{\"data\": {\"amount\": 50}",
    ];
    for path in CLIENT_PATHS {
        for body in bad {
            let (status, headers, response) = app.post_raw(path, body.to_vec()).await;
            assert_eq!(status, 400, "{path} {:?}", String::from_utf8_lossy(body));
            assert_eq!(response["code"], "invalid_body");
            assert_eq!(response["status"], 400);
            assert!(response["error"].as_str().unwrap().contains("data"));
            assert_eq!(headers["access-control-allow-origin"], "*");
        }
    }
    assert!(app.stripe_requests().await.is_empty());
}

#[tokio::test]
async fn bodies_over_64_kib_are_413() {
    let app = spawn_app().await;
    let filler = "x".repeat(64 * 1024);
    for path in CLIENT_PATHS {
        let body = json!({"data": {"amount": 50, "description": filler}}).to_string();
        let (status, headers, response) = app.post_raw(path, body.into_bytes()).await;
        assert_eq!(status, 413, "{path}");
        assert_eq!(response["code"], "body_too_large");
        assert_eq!(headers["access-control-allow-origin"], "*");
    }
    // Just under the limit is read (and then judged on its content).
    let body = format!(
        r#"{{"data": {{"amount": 0, "d": "{}"}}}}"#,
        "x".repeat(60 * 1024)
    );
    let (status, _, response) = app
        .post_raw("/stripe_create_payment_intent", body.into_bytes())
        .await;
    assert_eq!(code(status, &response), (400, "amount_invalid"));
    assert!(app.stripe_requests().await.is_empty());
}

#[tokio::test]
async fn preflight_and_other_methods() {
    let app = spawn_app().await;
    for path in CLIENT_PATHS {
        let url = format!("{}{path}", app.address);
        let r = app
            .http
            .request(reqwest::Method::OPTIONS, &url)
            .header("Origin", "https://tickets.example")
            .header("Access-Control-Request-Method", "POST")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204, "{path}");
        let h = r.headers();
        assert_eq!(h["access-control-allow-origin"], "*");
        assert_eq!(h["access-control-allow-methods"], "POST, OPTIONS");
        assert_eq!(
            h["access-control-allow-headers"],
            "Content-Type, Authorization, Idempotency-Key"
        );
        assert_eq!(h["access-control-max-age"], "86400");
        for m in [
            reqwest::Method::GET,
            reqwest::Method::PUT,
            reqwest::Method::DELETE,
        ] {
            let (status, headers, body) =
                read(app.http.request(m.clone(), &url).send().await.unwrap()).await;
            assert_eq!(status, 405, "{m} {path}");
            assert_eq!(headers["allow"], "POST, OPTIONS");
            assert_eq!(body["code"], "method_not_allowed");
            assert_eq!(headers["access-control-allow-origin"], "*");
        }
    }
    let (status, _, body) = read(
        app.http
            .get(format!("{}/nowhere", app.address))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(code(status, &body), (404, "not_found"));
}

#[tokio::test]
async fn configured_origins_are_echoed_and_others_get_nothing() {
    let app =
        spawn_app_with(|c| c.cors = CorsOrigins::List(vec!["https://tickets.example".into()]))
            .await;
    let url = format!("{}/stripe_get_payment_intent", app.address);
    let allowed = app
        .http
        .post(&url)
        .header("Origin", "https://tickets.example")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 400);
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://tickets.example"
    );
    assert!(allowed.headers()["vary"]
        .to_str()
        .unwrap()
        .contains("Origin"));
    let other = app
        .http
        .request(reqwest::Method::OPTIONS, &url)
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    assert!(other
        .headers()
        .get("access-control-allow-methods")
        .is_none());
}

#[tokio::test]
async fn client_endpoints_take_only_application_json() {
    let app = spawn_app().await;
    Mock::given(method("POST"))
        .respond_with(CreateResponder)
        .mount(&app.stripe)
        .await;
    let send = |path: &str, content_type: Option<&str>, key: &str| {
        let mut r = app
            .http
            .post(format!("{}{path}", app.address))
            .header("Origin", "https://elsewhere.example")
            .header("Idempotency-Key", key)
            .body(json!({"data": {"amount": 5, "payment_intent_id": "pi_3Ct0000001"}}).to_string());
        if let Some(ct) = content_type {
            r = r.header("content-type", ct);
        }
        async move { read(r.send().await.unwrap()).await }
    };
    // What a page on any site can send without a preflight, and a few near misses.
    let refused = [
        Some("text/plain"),
        Some("text/plain;charset=UTF-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("text/json"),
        Some("application/jsonp"),
        None,
    ];
    for path in CLIENT_PATHS {
        for content_type in refused {
            let (status, headers, body) = send(path, content_type, "ct-key-1").await;
            assert_eq!(status, 415, "{path} {content_type:?}");
            assert_eq!(
                body,
                json!({
                    "status": 415,
                    "error": "El Content-Type debe ser application/json",
                    "code": "unsupported_media_type"
                })
            );
            assert_eq!(headers["access-control-allow-origin"], "*");
        }
    }
    assert!(
        app.stripe_requests().await.is_empty(),
        "nothing reached Stripe"
    );
    let ledger = app.ledger().await;
    let payments: Vec<PaymentRow> = ledger.list(None, 10).await.unwrap();
    assert!(payments.is_empty());
    // Nor the idempotency table: the key is still free, so this is a first create, not a replay.
    let (status, headers, _) = send(CLIENT_PATHS[0], Some("application/json"), "ct-key-1").await;
    assert_eq!(status, 200);
    assert!(headers.get("idempotent-replayed").is_none());
    for (i, content_type) in [
        "application/json; charset=utf-8",
        "Application/JSON;Charset=UTF-8",
    ]
    .into_iter()
    .enumerate()
    {
        let (status, _, body) =
            send(CLIENT_PATHS[0], Some(content_type), &format!("ct-ok-{i}")).await;
        assert_eq!(status, 200, "{content_type}: {body}");
    }
    assert_eq!(app.stripe_requests().await.len(), 3);
}

#[tokio::test]
async fn refused_media_types_do_not_count_against_the_rate_limit() {
    let app = spawn_app_with(|c| c.access.create_rate_limit = RateLimit::parse("1/min")).await;
    Mock::given(method("POST"))
        .respond_with(CreateResponder)
        .mount(&app.stripe)
        .await;
    let create = |content_type: &str| {
        let r = app
            .http
            .post(format!("{}/stripe_create_payment_intent", app.address))
            .header("content-type", content_type)
            .body(json!({"data": {"amount": 5}}).to_string());
        async move { r.send().await.unwrap().status().as_u16() }
    };
    for _ in 0..3 {
        assert_eq!(create("text/plain").await, 415);
    }
    assert_eq!(
        create("application/json").await,
        200,
        "the budget is intact"
    );
    assert_eq!(create("application/json").await, 429);
}

/// A route's path (axum's syntax) with every parameter filled in.
fn concrete(route: &str) -> String {
    route
        .split('/')
        .map(|part| if part.starts_with('{') { "walk" } else { part })
        .collect::<Vec<_>>()
        .join("/")
}

/// Every route the application has (client functions, webhook, operational endpoints, pages
/// and, in sandbox mode, the emulator's mounts), asked with every method and with a body over
/// any route's limit: each error is the JSON error of docs/contract.md §2 with a code of the
/// table, whoever answered it. The routes are the application's own list, so a new route is
/// walked too. Two kinds of error are not the service's JSON by design: a dashboard page for a
/// person (the login form, a missing payment's page) and the Stripe emulator's own errors,
/// which are Stripe's JSON.
#[tokio::test]
async fn every_error_on_every_route_is_a_json_error_with_a_code() {
    let app = spawn_app_with(|c| {
        c.stripe.secret_key = None;
        c.stripe.webhook.secrets.clear();
    })
    .await;
    let routes = app.paths().to_vec();
    for expected in [
        "/stripe_create_payment_intent",
        "/stripe_webhook",
        "/healthz",
        "/openapi.json",
        "/dashboard/login",
        "/dashboard/payments/{id}",
        "/demo",
        "/sandbox/{*path}",
    ] {
        assert!(
            routes.iter().any(|r| r == expected),
            "{expected}: {routes:?}"
        );
    }
    // Past every route's limit: 64 KiB, 1 MiB on the webhook, 4 KiB on the pages, and the
    // 2 MiB the framework applies where a route sets none.
    let oversize = vec![b'x'; 2 * 1024 * 1024 + 1];
    let methods = [
        reqwest::Method::GET,
        reqwest::Method::POST,
        reqwest::Method::PUT,
        reqwest::Method::PATCH,
        reqwest::Method::DELETE,
        reqwest::Method::OPTIONS,
    ];
    let mut asked = Vec::new();
    for route in &routes {
        let path = concrete(route);
        for method in &methods {
            asked.push((route, path.clone(), method.clone(), Vec::new()));
        }
        asked.push((route, path, reqwest::Method::POST, oversize.clone()));
    }
    let mut errors = 0;
    for (route, path, method, body) in asked {
        let what = format!("{method} {path} with {} bytes", body.len());
        let response = app
            .http
            .request(method.clone(), app.url(&path))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        if status < 400 {
            continue;
        }
        errors += 1;
        let text = String::from_utf8_lossy(&bytes);
        let what = format!("{what}: {status} {text}");
        let media = headers
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        if media.starts_with("text/html") {
            assert!(
                method == reqwest::Method::GET && route.starts_with("/dashboard"),
                "only a dashboard page answers a person in HTML: {what}"
            );
            continue;
        }
        assert!(media.starts_with("application/json"), "{what}: {media:?}");
        let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let emulator = ["/sandbox/", "/v1/", "/_sandbox/"]
            .iter()
            .any(|mount| route.starts_with(mount));
        if emulator && answer["error"]["type"].is_string() {
            continue;
        }
        let code = answer["code"].as_str().unwrap_or_else(|| panic!("{what}"));
        assert!(
            tmt_payments::http::error::ERROR_CODES.contains(&code),
            "{what}"
        );
        assert_eq!(answer["status"], status, "{what}");
        assert!(answer["error"].is_string(), "{what}");
        match status {
            405 => {
                assert_eq!(code, "method_not_allowed", "{what}");
                let allow = headers.get("allow").map(|v| v.to_str().unwrap());
                assert!(allow.is_some_and(|a| !a.is_empty()), "{what}: Allow");
            }
            413 => assert_eq!(code, "body_too_large", "{what}"),
            _ => {}
        }
    }
    assert!(errors > routes.len() * 3, "the walk met errors: {errors}");

    // The two the issue names.
    let (status, headers, body) =
        read(app.http.post(app.url("/healthz")).send().await.unwrap()).await;
    assert_eq!(
        refusal(status, &body),
        (405, "method_not_allowed", "Método no permitido")
    );
    assert_eq!(headers["allow"], "GET,HEAD");
    let (status, _, body) = read(
        app.http
            .post(app.url("/dashboard/login"))
            .form(&[("token", "x".repeat(5000))])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(code(status, &body), (413, "body_too_large"));
    for (path, expected) in [
        ("/nowhere", (404, "not_found")),
        ("/dashboard/payments/%FF", (400, "invalid_request")),
    ] {
        let (status, _, body) = read(app.http.get(app.url(path)).send().await.unwrap()).await;
        assert_eq!(code(status, &body), expected, "{path}");
    }
}
