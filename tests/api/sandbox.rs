//! The service's offline flow through its embedded sandbox (the `stripe-sandbox` crate, whose
//! own tests cover the emulator): success, decline, 3DS, the sandbox at `/v1` on the service's
//! own port, and none of it with a real key.

use serde_json::{json, Value};
use tmt_payments::ledger::{EventRow, Ledger};

use crate::helpers::*;

async fn sandbox_app() -> TestApp {
    spawn_app_with(|c| {
        c.stripe.secret_key = None;
        c.stripe.webhook.secrets.clear();
    })
    .await
}

/// What Stripe.js does in the browser: confirm with a publishable key and the client secret.
async fn browser_confirm(app: &TestApp, id: &str, secret: &str, pm: &str) -> (u16, Value) {
    let r = app
        .http
        .post(format!(
            "{}/sandbox/v1/payment_intents/{id}/confirm",
            app.address
        ))
        .basic_auth("pk_test_checkout", Some(""))
        .form(&[("payment_method", pm), ("client_secret", secret)])
        .send()
        .await
        .unwrap();
    let (status, _, body) = read(r).await;
    (status, body)
}

/// Creates a payment through the service: its id and client secret.
async fn create(app: &TestApp) -> (String, String) {
    let created = app
        .create(json!({"amount": "42.00", "currency": "mxn", "metadata": {"order": "X1"}}))
        .await;
    let secret = created.2["data"]["clientSecret"].as_str().unwrap();
    (created_id(&created), secret.to_string())
}

/// Waits for the ledger to show the status of the event `(event_type, status)`, with that event
/// applied.
async fn ledger_reaches(app: &TestApp, id: &str, (event_type, status): (&str, &str)) {
    reaches(&app.ledger().await, id, status, Some(event_type)).await;
}

/// Waits for `ledger` to show `status` for `id`, and the event `event_type` applied if given.
async fn reaches(ledger: &Ledger, id: &str, status: &str, event_type: Option<&str>) {
    let what = format!("the ledger reaches {status}/{event_type:?} for {id}");
    eventually(&what, PATIENCE, || async {
        let row = ledger.payment(id).await.unwrap();
        let events = ledger.of_payment::<EventRow>(id).await.unwrap();
        let applied = event_type.is_none_or(|event_type| {
            events
                .iter()
                .any(|e| e.event_type == event_type && e.outcome == "applied")
        });
        if row.as_ref().is_some_and(|r| r.status == status) && applied {
            Ok(())
        } else {
            Err(format!("{row:?} {events:?}"))
        }
    })
    .await;
}

#[tokio::test]
async fn offline_success_flow() {
    let app = sandbox_app().await;
    let (id, secret) = create(&app).await;
    assert!(secret.starts_with(&format!("{id}_secret_")));
    ledger_reaches(&app, &id, CREATED).await;
    let (status, pi) = browser_confirm(&app, &id, &secret, "pm_card_visa").await;
    assert_eq!((status, pi["status"].as_str()), (200, Some("succeeded")));
    ledger_reaches(&app, &id, SUCCEEDED).await;
    let (status, _, body) = app.confirm(&id).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["amount"].to_string(), "42.00");
    assert_eq!(body["data"]["currency"], "mxn");
    let charges = body["data"]["charges"].as_array().unwrap();
    assert_eq!(charges.len(), 1);
    assert_eq!(
        (charges[0]["status"].as_str(), charges[0]["amount"].as_i64()),
        (Some("succeeded"), Some(4200))
    );
    assert_eq!(
        app.events_of(&id, |e| [e.event_type.as_str(), e.outcome.as_str()])
            .await,
        [
            ["payment_intent.created", "applied"],
            ["charge.succeeded", "applied"],
            ["payment_intent.succeeded", "applied"]
        ]
    );
    let row = app.payment(&id).await;
    assert_eq!(
        (row.amount, row.metadata["order"].as_str()),
        (4200, Some("X1"))
    );
}

#[tokio::test]
async fn offline_decline_flow() {
    let app = sandbox_app().await;
    let (id, secret) = create(&app).await;
    let (status, error) = browser_confirm(&app, &id, &secret, "pm_card_visa_chargeDeclined").await;
    assert_eq!(status, 402);
    assert_eq!(error["error"]["decline_code"], "generic_decline");
    ledger_reaches(&app, &id, FAILED).await;
    let (status, _, body) = app.confirm(&id).await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "payment_not_completed");
    assert_eq!(
        body["error"],
        "El pago no fue completado. Estado: requires_payment_method"
    );
    // The customer tries another card: the same PaymentIntent succeeds.
    let (status, _) = browser_confirm(&app, &id, &secret, "pm_card_mastercard").await;
    assert_eq!(status, 200);
    ledger_reaches(&app, &id, SUCCEEDED).await;
}

#[tokio::test]
async fn offline_3ds_flow() {
    let app = sandbox_app().await;
    let (id, secret) = create(&app).await;
    let (status, pi) = browser_confirm(&app, &id, &secret, "pm_card_authenticationRequired").await;
    assert_eq!(
        (status, pi["status"].as_str()),
        (200, Some("requires_action"))
    );
    ledger_reaches(&app, &id, REQUIRES_ACTION).await;
    let (status, _, body) = app.get_pi(&id).await;
    assert_eq!(
        (status, body["data"]["status"].as_str()),
        (200, Some("requires_action"))
    );
    let (status, _, body) = app.confirm(&id).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (
            400,
            Some("El pago no fue completado. Estado: requires_action")
        )
    );
    // After authenticating, Stripe.js confirms again with the same payment method.
    let pm = pi["payment_method"].as_str().unwrap().to_string();
    let (status, pi) = browser_confirm(&app, &id, &secret, &pm).await;
    assert_eq!((status, pi["status"].as_str()), (200, Some("succeeded")));
    ledger_reaches(&app, &id, SUCCEEDED).await;
}

#[tokio::test]
async fn with_a_real_key_there_is_no_sandbox() {
    let app = spawn_app().await;
    for path in [
        "/sandbox/v1/payment_intents/pi_1",
        "/v1/payment_intents",
        "/v1/payment_intents/pi_1",
        "/_sandbox/webhooks",
    ] {
        let r = app
            .http
            .get(format!("{}{path}", app.address))
            .basic_auth("sk_test_x", Some(""))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{path}");
        let (_, _, body) = read(r).await;
        assert_eq!(
            body["code"], "not_found",
            "{path}: the service's own 404, not the sandbox's"
        );
    }
}

#[tokio::test]
async fn in_sandbox_mode_v1_and_controls_answer_on_the_services_own_port() {
    let app = sandbox_app().await;
    let (id, _) = create(&app).await;
    let (status, headers, pi) = sandbox_get(&app, &format!("/v1/payment_intents/{id}")).await;
    assert_eq!((status, pi["id"].as_str()), (200, Some(id.as_str())));
    assert!(headers["request-id"].to_str().unwrap().starts_with("req_"));
    let (_, _, via_prefix) = sandbox_get(&app, &format!("/sandbox/v1/payment_intents/{id}")).await;
    assert_eq!(via_prefix, pi, "one sandbox behind both paths");
    let (status, _, list) = sandbox_get(&app, "/v1/payment_intents?limit=1").await;
    assert_eq!(
        (status, list["data"][0]["id"].as_str()),
        (200, Some(id.as_str()))
    );
    let (status, _, control) = sandbox_get(&app, "/_sandbox/webhooks").await;
    assert_eq!(status, 200, "{control}");
    assert_eq!(control["url"], format!("{}/stripe_webhook", app.address));
    assert_eq!(control["drop"], false);
    // The service's own routes are untouched.
    let (status, _, _) = app.get("/healthz").await;
    assert_eq!(status, 200);
}

/// `GET path` of the sandbox on the service's port, with a secret key.
async fn sandbox_get(app: &TestApp, path: &str) -> Answer {
    let r = app
        .http
        .get(app.url(path))
        .basic_auth("sk_test_any", Some(""));
    read(r.send().await.unwrap()).await
}

/// Turns the sandbox's loss of webhooks on or off (its control endpoint).
async fn drop_webhooks(app: &TestApp, drop: bool) {
    let r = app
        .http
        .post(app.url("/_sandbox/webhooks"))
        .basic_auth("sk_test_any", Some(""))
        .form(&[("drop", drop.to_string())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn dropped_webhooks_leave_the_ledger_behind_the_sandbox() {
    let app = sandbox_app().await;
    let (id, secret) = create(&app).await;
    ledger_reaches(&app, &id, CREATED).await;
    drop_webhooks(&app, true).await;
    let (status, pi) = browser_confirm(&app, &id, &secret, "pm_card_visa").await;
    assert_eq!((status, pi["status"].as_str()), (200, Some("succeeded")));
    // The sandbox lists the event; the ledger never hears of it.
    let (_, _, events) = sandbox_get(&app, "/v1/events?type=payment_intent.succeeded").await;
    assert_eq!(events["data"][0]["data"]["object"]["id"], id.as_str());
    drop_webhooks(&app, false).await;
    // First deliveries go out in order: once a later event has landed, a lost one that had been
    // sent would have landed before it.
    let (later, _) = create(&app).await;
    ledger_reaches(&app, &later, CREATED).await;
    let row = app.payment(&id).await;
    assert_eq!(row.status, "requires_payment_method");
    assert_eq!(
        app.events_of(&id, |e| [e.event_type.as_str()]).await,
        [["payment_intent.created"]]
    );
}

/// The service binary in sandbox mode, on a ledger in `dir`.
async fn sandbox_server(dir: &std::path::Path) -> Server {
    Server::start(&sqlite_url(dir), &[]).await
}

#[tokio::test]
async fn the_sandbox_state_survives_a_restart_of_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let call = |server: &Server, path: &str, data: Value| {
        let request = http
            .post(format!("{}{path}", server.address))
            .header("content-type", "application/json")
            .body(json!({ "data": data }).to_string());
        async move { read(request.send().await.unwrap()).await }
    };
    let first = sandbox_server(dir.path()).await;
    let created = call(
        &first,
        "/stripe_create_payment_intent",
        json!({"amount": "12.00", "currency": "eur"}),
    )
    .await;
    let id = created_id(&created);
    drop(first);
    assert!(
        dir.path().join("ledger-stripe.db").exists(),
        "the sandbox's file sits beside the ledger"
    );
    let second = sandbox_server(dir.path()).await;
    let (status, _, got) = call(
        &second,
        "/stripe_get_payment_intent",
        json!({"payment_intent_id": id}),
    )
    .await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["data"]["status"], "requires_payment_method");
}

#[tokio::test]
async fn sandbox_trigger_reaches_the_services_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let server = sandbox_server(dir.path()).await;
    let api_base = format!("{}/sandbox", server.address);
    let output = tokio::task::spawn_blocking(move || {
        command("sqlite://unused.db")
            .args([
                "sandbox",
                "trigger",
                "payment_intent.succeeded",
                "--api-base",
                &api_base,
                "--metadata",
                "platform=TMT",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let id = stdout
        .lines()
        .find_map(|l| l.strip_prefix("payment_intent"))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no PaymentIntent printed: {stdout}"))
        .to_string();
    assert!(stdout.contains("payment_intent.succeeded"), "{stdout}");
    let ledger = open_ledger(&sqlite_url(dir.path())).await;
    reaches(&ledger, &id, "succeeded", None).await;
}

#[tokio::test]
async fn tmt_payments_sandbox_runs_the_sandbox_alone() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let state = dir.path().join("alone.db");
    let sandbox = KillOnDrop(
        command("sqlite://unused.db")
            .args(["sandbox", "--port", &port.to_string(), "--state"])
            .arg(&state)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let address = format!("http://127.0.0.1:{port}");
    listening(&address).await;
    let r = reqwest::Client::new()
        .post(format!("{address}/v1/payment_intents"))
        .basic_auth("sk_test_alone", Some(""))
        .form(&[("amount", "700"), ("currency", "eur")])
        .send()
        .await
        .unwrap();
    let (status, _, pi) = read(r).await;
    drop(sandbox);
    assert_eq!(
        (status, pi["status"].as_str()),
        (200, Some("requires_payment_method"))
    );
    assert!(state.exists(), "--state names the file it keeps");
}

#[tokio::test]
#[ignore = "needs Stripe's Node SDK (scripts/test.sh installs it)"]
async fn stripe_node_sdk_reaches_the_sandbox_at_the_services_host_and_port() {
    let peer =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/stripe-sandbox/tests/node");
    assert!(
        peer.join("node_modules/stripe/package.json").exists(),
        "Stripe's Node SDK is not installed: run scripts/test.sh"
    );
    let dir = tempfile::tempdir().unwrap();
    let server = sandbox_server(dir.path()).await;
    let output = std::process::Command::new("node")
        .arg(peer.join("sdk_sandbox.mjs"))
        .args(["127.0.0.1", server.port()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "Node SDK checks failed:\n{stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("ok ")), "{stdout}");
}

#[tokio::test]
#[ignore = "needs Stripe's Python SDK (scripts/test.sh installs it)"]
async fn stripe_python_sdk_reaches_the_sandbox_under_the_sandbox_prefix() {
    let python = python_peer(&["stripe"]);
    let dir = tempfile::tempdir().unwrap();
    let server = sandbox_server(dir.path()).await;
    let output = std::process::Command::new(python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/crates/stripe-sandbox/tests/peers/sdk_sandbox.py"
        ))
        .arg(format!("{}/sandbox", server.address))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success(),
        "Python SDK checks failed:\n{stdout}"
    );
    assert!(stdout.lines().any(|l| l.starts_with("ok ")), "{stdout}");
}
