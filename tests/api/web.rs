//! The pages over HTTP, without a browser (browser.rs clicks through them in Chromium):
//! the checkout demo exists in sandbox mode only; the dashboard's filters, totals and chart on
//! the ledger's own backend, its escaping of what callers put in the ledger, and its login when
//! API_TOKENS is set (the cookie, the limit on failed sign-ins, the refusal of other sites).

use crate::helpers::*;
use serde_json::{json, Value};
use sha2::Digest;
use tmt_payments::http::access::Network;
use tmt_payments::ledger::{CurrencyTotal, PaymentFilter};

/// A payment of ours made `days_ago` with the metadata `meta`, in the ledger as its webhook
/// event leaves it.
async fn stored(
    app: &TestApp,
    id: &str,
    amount: i64,
    currency: &str,
    status: &str,
    days_ago: i64,
    meta: Value,
) {
    let mut pi = payment_intent(id, amount, currency, status);
    let mut metadata = json!({"platform": "TMT"});
    for (k, v) in meta.as_object().unwrap() {
        metadata[k] = v.clone();
    }
    pi["metadata"] = metadata;
    pi["created"] = json!(now() - days_ago * 86400);
    let kind = match status {
        "succeeded" => "payment_intent.succeeded",
        "canceled" => "payment_intent.canceled",
        _ => "payment_intent.payment_failed",
    };
    app.delivered(&format!("evt_{id}"), kind, pi, now()).await;
}

async fn refunded(app: &TestApp, id: &str, pi: &str, amount: i64, currency: &str) {
    let mut r = fixture("refund");
    r["id"] = json!(id);
    r["amount"] = json!(amount);
    r["currency"] = json!(currency);
    r["payment_intent"] = json!(pi);
    r["status"] = json!("succeeded");
    r["created"] = json!(now());
    app.delivered(&format!("evt_{id}"), "refund.created", r, now())
        .await;
}

const HOSTILE: &str = "\"><script>alert(1)</script>";
const ODD_KEY: &str = "we'ird \"key";

/// Five payments in three currencies, one of them refunded in part, one too old for the chart.
async fn ledger_of_payments(app: &TestApp) {
    for (id, amount, currency, status, days_ago, meta) in [
        (
            "pi_dashA",
            4500,
            "eur",
            "succeeded",
            2,
            json!({"event_id": "rock"}),
        ),
        (
            "pi_dashB",
            3000,
            "eur",
            "requires_payment_method",
            1,
            json!({"event_id": "jazz"}),
        ),
        (
            "pi_dashC",
            7000,
            "jpy",
            "succeeded",
            0,
            json!({"event_id": "rock"}),
        ),
        (
            "pi_dashD",
            1000,
            "usd",
            "canceled",
            0,
            json!({"event_id": HOSTILE, ODD_KEY: "x"}),
        ),
        ("pi_dashE", 2000, "usd", "succeeded", 40, json!({})),
    ] {
        stored(app, id, amount, currency, status, days_ago, meta).await;
    }
    refunded(app, "re_dashC", "pi_dashC", 2000, "jpy").await;
}

fn total(
    currency: &str,
    payments: i64,
    succeeded: i64,
    amount: i64,
    refunded: i64,
) -> CurrencyTotal {
    CurrencyTotal {
        currency: currency.into(),
        payments,
        succeeded,
        succeeded_amount: amount,
        refunded_amount: refunded,
    }
}

fn filter(status: Option<&str>, metadata: &[(&str, &str)]) -> PaymentFilter {
    PaymentFilter {
        status: status.map(str::to_string),
        metadata: metadata
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        organizer: None,
    }
}

#[tokio::test]
async fn the_ledgers_dashboard_queries_filter_count_and_total() {
    let app = spawn_app().await;
    ledger_of_payments(&app).await;
    let ledger = app.ledger().await;

    assert_eq!(
        ledger
            .dashboard_totals(&PaymentFilter::default())
            .await
            .unwrap(),
        [
            total("eur", 2, 1, 4500, 0),
            total("jpy", 1, 1, 7000, 2000),
            total("usd", 2, 1, 2000, 0),
        ]
    );
    let ids = |rows: Vec<tmt_payments::ledger::PaymentRow>| -> Vec<String> {
        rows.into_iter().map(|p| p.id).collect()
    };
    let (rows, count) = ledger
        .dashboard_payments(&filter(None, &[("event_id", "rock")]), 10)
        .await
        .unwrap();
    assert_eq!(
        (ids(rows), count),
        (vec!["pi_dashC".into(), "pi_dashA".into()], 2)
    );
    let (rows, count) = ledger
        .dashboard_payments(&filter(Some("succeeded"), &[]), 2)
        .await
        .unwrap();
    assert_eq!((rows.len(), count), (2, 3), "a limit, and the count of all");
    let (rows, _) = ledger
        .dashboard_payments(&filter(None, &[(ODD_KEY, "x"), ("event_id", HOSTILE)]), 10)
        .await
        .unwrap();
    assert_eq!(ids(rows), ["pi_dashD"], "keys and values with quotes");
    let (rows, _) = ledger
        .dashboard_payments(&filter(Some("succeeded"), &[("event_id", "jazz")]), 10)
        .await
        .unwrap();
    assert!(rows.is_empty());
    assert_eq!(
        ledger
            .dashboard_totals(&filter(None, &[("event_id", "rock")]))
            .await
            .unwrap(),
        [total("eur", 1, 1, 4500, 0), total("jpy", 1, 1, 7000, 2000)]
    );

    let days = ledger
        .dashboard_days(&PaymentFilter::default(), now() - 30 * 86400)
        .await
        .unwrap();
    assert_eq!(days.iter().map(|d| d.payments).sum::<i64>(), 4, "{days:?}");
    assert_eq!(days.iter().map(|d| d.succeeded).sum::<i64>(), 2, "{days:?}");
    assert!(days.windows(2).all(|w| w[0].day < w[1].day), "{days:?}");
    assert_eq!(days.last().unwrap().day, now() / 86400);
}

#[tokio::test]
async fn the_dashboard_lists_filters_and_escapes() {
    let app = spawn_app().await;
    ledger_of_payments(&app).await;

    let (status, headers, page) = app.get("/dashboard").await;
    assert_eq!(status, 200);
    assert!(content_type(&headers).starts_with("text/html"));
    assert_eq!(headers["cache-control"], "no-store");
    for id in ["pi_dashA", "pi_dashB", "pi_dashC", "pi_dashD", "pi_dashE"] {
        assert!(page.contains(&format!("data-id=\"{id}\"")), "{id}");
    }
    assert!(
        !page.contains("<script>alert"),
        "caller-controlled metadata is escaped"
    );
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains("we'ird &quot;key=x"));
    assert!(
        page.contains("2,000 JPY") && page.contains("5,000 JPY"),
        "refunded and net"
    );
    assert!(
        page.contains("API_TOKENS is not set"),
        "an open dashboard says so"
    );

    let (_, _, succeeded) = app.get("/dashboard?status=succeeded").await;
    for (id, listed) in [
        ("pi_dashA", true),
        ("pi_dashB", false),
        ("pi_dashC", true),
        ("pi_dashD", false),
    ] {
        assert_eq!(
            succeeded.contains(&format!("data-id=\"{id}\"")),
            listed,
            "{id}"
        );
    }
    let (_, _, jazz) = app.get("/dashboard?metadata=event_id%3Djazz").await;
    assert!(jazz.contains("data-id=\"pi_dashB\"") && !jazz.contains("data-id=\"pi_dashA\""));
    assert!(jazz.contains("Showing 1 of 1."));
    let (status, _, bad) = app.get("/dashboard?status=paid").await;
    assert_eq!(status, 200);
    assert!(bad.contains("Unknown status: paid") && !bad.contains("data-id="));

    let (status, _, timeline) = app.get("/dashboard/payments/pi_dashC").await;
    assert_eq!(status, 200);
    assert!(timeline.contains("Event payment_intent.succeeded"));
    assert!(timeline.contains("data-kind=\"refund\"") && timeline.contains("re_dashC"));
    let created = timeline.find("Payment created at Stripe").unwrap();
    let event = timeline.find("Event payment_intent.succeeded").unwrap();
    let refund_event = timeline.find("Event refund.created").unwrap();
    assert!(created < event && event < refund_event, "in order of time");
    assert!(timeline.contains("2,000 JPY"), "the refund's amount");
    let (status, _, missing) = app.get("/dashboard/payments/pi_nothere").await;
    assert_eq!(status, 404);
    assert!(missing.contains("No such payment"));
    let (status, _, other) = app.get("/dashboard/payments/%3Cb%3Ex").await;
    assert_eq!(status, 404);
    assert!(other.contains("&lt;b&gt;x") && !other.contains("<b>x"));

    let (_, _, metrics) = app.get("/metrics").await;
    assert!(
        metrics.contains("route=\"/dashboard\""),
        "pages have their own label"
    );
    // A payment's page counts under its route as declared, never under the payment's id.
    assert!(metrics.contains("route=\"/dashboard/payments/{id}\""));
    assert!(!metrics.contains("pi_dashC"), "{metrics}");
}

#[tokio::test]
async fn the_checkout_demo_exists_in_sandbox_mode_only() {
    let real = spawn_app().await;
    for path in ["/demo", "/assets/checkout.js"] {
        let (status, _, body) = real.get(path).await;
        assert_eq!(status, 404, "{path}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["code"], "not_found", "{path}: like any unknown route");
    }
    let (status, _, _) = real.get("/dashboard").await;
    assert_eq!(status, 200, "the dashboard works with a real key too");

    let sandbox = spawn_app_with(|c| {
        c.stripe.secret_key = None;
        c.stripe.webhook.secrets.clear();
    })
    .await;
    let (status, headers, page) = sandbox.get("/demo").await;
    assert_eq!(status, 200);
    assert!(page.contains("/assets/checkout.js"));
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"));
    assert_eq!(headers["x-frame-options"], "DENY");
    let (status, headers, script) = sandbox.get("/assets/checkout.js").await;
    assert_eq!(status, 200);
    assert!(content_type(&headers).starts_with("text/javascript"));
    assert!(script.contains("/stripe_create_payment_intent") && script.contains("Idempotency-Key"));
    assert_eq!(sandbox.post_raw("/demo", Vec::new()).await.0, 405);
}

const TOKEN: &str = "dashboard-operator-token-0001";

#[tokio::test]
async fn with_api_tokens_the_dashboard_wants_a_login_whose_cookie_is_not_the_token() {
    let app = spawn_app_with(|c| c.access.tokens = vec![TOKEN.to_string().into()]).await;
    stored(&app, "pi_locked1", 4500, "eur", "succeeded", 0, json!({})).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = |p: &str| format!("{}{p}", app.address);

    for path in ["/dashboard", "/dashboard/payments/pi_locked1"] {
        let r = http.get(url(path)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
        let page = r.text().await.unwrap();
        assert!(page.contains("name=\"token\""), "a login form");
        assert!(
            !page.contains("data-id=") && !page.contains("45.00"),
            "nothing of the ledger"
        );
    }
    let bearer = http
        .get(url("/dashboard"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(
        bearer.status(),
        200,
        "scripts may send the token as a header"
    );

    let wrong = http
        .post(url("/dashboard/login"))
        .form(&[
            ("token", "not-the-token-at-all-0001"),
            ("next", "/dashboard"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(wrong.headers().get("set-cookie").is_none());
    assert!(wrong.text().await.unwrap().contains("not accepted"));

    let login = http
        .post(url("/dashboard/login"))
        .form(&[("token", TOKEN), ("next", "/dashboard?status=succeeded")])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303);
    assert_eq!(login.headers()["location"], "/dashboard?status=succeeded");
    let set = login.headers()["set-cookie"].to_str().unwrap().to_string();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/dashboard", "Max-Age="] {
        assert!(set.contains(attribute), "{attribute} in {set}");
    }
    let cookie = set.split(';').next().unwrap().to_string();
    assert!(!cookie.contains(TOKEN), "the session is not the token");
    let digest = hex::encode(sha2::Sha256::digest(TOKEN.as_bytes()));
    assert!(!cookie.contains(&digest), "nor its digest");
    let page = http
        .get(url("/dashboard"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("data-id=\"pi_locked1\"") && page.contains("Sign out"));
    assert!(!page.contains(TOKEN));
    let tampered = cookie.replace(|c: char| c.is_ascii_digit(), "9");
    let r = http
        .get(url("/dashboard"))
        .header("cookie", tampered)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "a changed cookie is refused");

    for elsewhere in ["https://evil.example/", "//evil.example/x", "/demo"] {
        let r = http
            .post(url("/dashboard/login"))
            .form(&[("token", TOKEN), ("next", elsewhere)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["location"], "/dashboard", "{elsewhere}");
    }
    let out = http.post(url("/dashboard/logout")).send().await.unwrap();
    assert_eq!(out.status(), 303);
    assert!(out.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
}

/// A service with API_TOKENS whose requests all come through a proxy (the test) that names
/// each client in `X-Forwarded-For`.
async fn locked_behind_a_proxy() -> TestApp {
    spawn_app_with(|c| {
        c.access.tokens = vec![TOKEN.to_string().into()];
        c.access.trusted_proxies = vec![Network::parse("127.0.0.1").unwrap()];
    })
    .await
}

/// A client that follows no redirect, to see each answer of the login itself.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn failed_sign_ins_are_limited_per_client_and_others_still_sign_in() {
    let app = locked_behind_a_proxy().await;
    let http = no_redirects();
    let sign_in = |client: &'static str, token: &'static str| {
        let request = http
            .post(app.url("/dashboard/login"))
            .header("x-forwarded-for", client)
            .form(&[("token", token), ("next", "/dashboard")]);
        async move { read(request.send().await.unwrap()).await }
    };
    const WRONG: &str = "not-the-token-at-all-0001";
    for (guesser, neighbour, elsewhere) in [
        ("203.0.113.7", "203.0.113.7", "203.0.113.8"),
        ("2001:db8:1:2::1", "2001:db8:1:2:ffff::9", "2001:db8:1:3::1"),
    ] {
        for n in 1..=10 {
            let (status, headers, _) = sign_in(guesser, WRONG).await;
            assert_eq!(status, 401, "{guesser}: failed sign-in {n} is answered");
            assert!(headers.get("set-cookie").is_none());
        }
        for (client, token) in [(guesser, WRONG), (neighbour, TOKEN)] {
            let (status, headers, body) = sign_in(client, token).await;
            assert_eq!(
                refusal(status, &body),
                (429, "rate_limited", "Demasiadas solicitudes"),
                "{client}: out of sign-ins, even with the right token"
            );
            let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
            assert!((1..=60).contains(&wait), "Retry-After {wait}");
            assert!(headers.get("set-cookie").is_none());
        }
        let (status, headers, _) = sign_in(elsewhere, TOKEN).await;
        assert_eq!(
            status, 303,
            "{elsewhere}: failures elsewhere refuse nobody here"
        );
        assert!(headers["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("tmt_dashboard="));
    }
}

#[tokio::test]
async fn sign_ins_that_succeed_are_never_limited_and_hide_no_failure() {
    let app = locked_behind_a_proxy().await;
    let http = no_redirects();
    let sign_in = |token: &'static str| {
        let request = http
            .post(app.url("/dashboard/login"))
            .header("x-forwarded-for", "198.51.100.4")
            .form(&[("token", token), ("next", "/dashboard")]);
        async move { read(request.send().await.unwrap()).await.0 }
    };
    const WRONG: &str = "not-the-token-at-all-0002";
    for n in 1..=25 {
        assert_eq!(sign_in(TOKEN).await, 303, "right sign-in {n} in a minute");
    }
    // Failures between successes still count: ten of them, and the client is out of turns.
    for n in 1..=9 {
        assert_eq!(sign_in(WRONG).await, 401, "failed sign-in {n}");
        assert_eq!(sign_in(TOKEN).await, 303, "a right one after failure {n}");
    }
    assert_eq!(sign_in(WRONG).await, 401, "failed sign-in 10");
    assert_eq!(sign_in(WRONG).await, 429, "an eleventh failure is refused");
    assert_eq!(
        sign_in(TOKEN).await,
        429,
        "and so is the right token, once out of turns"
    );
}

#[tokio::test]
async fn sign_ins_and_sign_outs_from_another_site_are_refused() {
    let app = spawn_app_with(|c| c.access.tokens = vec![TOKEN.to_string().into()]).await;
    let http = no_redirects();
    let own = app.address.clone();
    for path in ["/dashboard/login", "/dashboard/logout"] {
        for (header, value) in [
            ("origin", "https://evil.example"),
            ("origin", "null"),
            ("origin", "http://127.0.0.1:1"),
            ("sec-fetch-site", "cross-site"),
        ] {
            let (status, headers, body) = read(
                http.post(app.url(path))
                    .header(header, value)
                    .form(&[("token", TOKEN), ("next", "/dashboard")])
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(
                refusal(status, &body),
                (403, "forbidden_origin", "Origen no permitido"),
                "{path} {header}: {value}"
            );
            assert!(headers.get("set-cookie").is_none(), "{path} {value}");
        }
        // The dashboard's own form (as Chromium sends it), and a script that sends no Origin.
        for headers in [
            vec![("origin", own.as_str()), ("sec-fetch-site", "same-origin")],
            vec![],
        ] {
            let mut request = http
                .post(app.url(path))
                .form(&[("token", TOKEN), ("next", "/dashboard")]);
            for (name, value) in &headers {
                request = request.header(*name, *value);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 303, "{path} {headers:?}");
            assert!(response.headers().get("set-cookie").is_some());
        }
    }
}

#[tokio::test]
async fn the_session_cookie_is_secure_unless_the_page_was_asked_for_by_this_machine() {
    let app = locked_behind_a_proxy().await;
    let http = no_redirects();
    // Each sign-in from a client of its own, so that none meets the limit on sign-ins.
    let port = app.address.rsplit(':').next().unwrap().to_string();
    let mut clients = (1..).map(|n| format!("198.51.100.{n}"));
    for (host, secure) in [
        ("pay.tmt.example".to_string(), true),
        (format!("10.1.2.3:{port}"), true),
        (format!("localhost:{port}"), false),
        (format!("127.0.0.1:{port}"), false),
        (format!("[::1]:{port}"), false),
    ] {
        // What a client says of the scheme changes nothing.
        for proto in [None, Some("http"), Some("https")] {
            for (path, form) in [
                ("/dashboard/login", vec![("token", TOKEN)]),
                ("/dashboard/logout", vec![]),
            ] {
                let mut request = http
                    .post(app.url(path))
                    .header("host", &host)
                    .header("x-forwarded-for", clients.next().unwrap())
                    .form(&form);
                if let Some(proto) = proto {
                    request = request.header("x-forwarded-proto", proto);
                }
                let response = request.send().await.unwrap();
                assert_eq!(response.status(), 303, "{path} {host}");
                let cookie = response.headers()["set-cookie"].to_str().unwrap();
                assert_eq!(
                    cookie.ends_with("; Secure"),
                    secure,
                    "{path} asked for by {host} (X-Forwarded-Proto {proto:?}): {cookie}"
                );
                assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
            }
        }
    }
}
