//! Shared helpers: the real application on port 0, Stripe played by wiremock serving the
//! published fixture objects, and a handle on the ledger the app writes.
#![allow(dead_code)]

pub mod process;

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use serde_json::{json, Value};
use tmt_payments::app::Application;
use tmt_payments::config::Config;
use tmt_payments::http::CorsOrigins;
use tmt_payments::ledger::{Ledger, PoolSettings};
use tmt_payments::stripe::client::DEFAULT_API_VERSION;
use tmt_payments::stripe::signature;
use wiremock::{MockServer, Request, Respond, ResponseTemplate};

pub const SECRET_KEY: &str = "sk_test_4eC39HqLyjWDarjtT1zdp7dc";
pub const WEBHOOK_SECRET: &str = "whsec_test_primary";

pub fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/stripe")
        .join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

pub struct TestApp {
    pub address: String,
    pub stripe: MockServer,
    pub http: reqwest::Client,
    pub db_url: String,
    pub dir: tempfile::TempDir,
    /// The instance's budget of Stripe calls, to watch its queue.
    pub budget: tmt_payments::stripe::Budget,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
}

pub fn base_config(db_url: &str, stripe_base: &str) -> Config {
    Config {
        database_url: db_url.to_string(),
        database_pool: PoolSettings {
            max_connections: 4,
            acquire_timeout: Duration::from_secs(5),
        },
        idempotency_stale: Duration::from_secs(60),
        stripe_secret_key: Some(SecretString::from(SECRET_KEY.to_string())),
        stripe_webhook_secrets: vec![SecretString::from(WEBHOOK_SECRET.to_string())],
        stripe_api_base: stripe_base.to_string(),
        stripe_api_version: DEFAULT_API_VERSION.to_string(),
        stripe_timeout: Duration::from_secs(10),
        stripe_max_retries: 2,
        stripe_initial_retry_delay: Duration::from_millis(20),
        // Far above what any test asks of Stripe, so that only tests/saleday.rs meets the
        // budget.
        stripe_max_rps: 1000,
        stripe_queue_timeout: Duration::from_secs(10),
        bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port: 0,
        cors: CorsOrigins::Any,
        webhook_tolerance_secs: 300,
        api_tokens: Vec::new(),
        create_rate_limit: None,
        trusted_proxies: Vec::new(),
        shutdown_timeout: Duration::from_secs(20),
        header_timeout: Duration::from_secs(10),
        body_timeout: Duration::from_secs(15),
        idle_timeout: Duration::from_secs(60),
        max_connections: 10_000,
        max_inflight_body_bytes: 64 * 1024 * 1024,
        fulfilment: None,
        late_payment_policy: tmt_payments::ledger::LatePolicy::Notify,
        reconcile_interval: None,
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(change: impl FnOnce(&mut Config)) -> TestApp {
    let stripe = MockServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db_url = test_database_url(dir.path()).await;
    let mut config = base_config(&db_url, &stripe.uri());
    change(&mut config);
    let app = Application::build(config).await.expect("app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let budget = app.stripe_budget();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        let _ = app
            .run_until(async {
                let _ = rx.await;
            })
            .await;
    });
    TestApp {
        address,
        stripe,
        http: reqwest::Client::new(),
        db_url,
        dir,
        budget,
        shutdown: Some(tx),
        handle: Some(handle),
    }
}

impl TestApp {
    pub async fn post(&self, path: &str, body: Value) -> (u16, reqwest::header::HeaderMap, Value) {
        self.post_raw(path, body.to_string().into_bytes()).await
    }

    pub async fn post_raw(
        &self,
        path: &str,
        body: Vec<u8>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.address))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        read(response).await
    }

    /// `GET path`: status, headers and the body as text.
    pub async fn get(&self, path: &str) -> (u16, reqwest::header::HeaderMap, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        (status, headers, r.text().await.unwrap())
    }

    pub async fn webhook(&self, body: &str, header: Option<&str>) -> (u16, Value) {
        let mut request = self
            .http
            .post(format!("{}/stripe_webhook", self.address))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(h) = header {
            request = request.header("Stripe-Signature", h);
        }
        let (status, _, body) = read(request.send().await.unwrap()).await;
        (status, body)
    }

    /// Sends `event` signed with the test secret at the current time.
    pub async fn deliver(&self, event: &Value) -> (u16, Value) {
        let body = event.to_string();
        let header = signature::sign(body.as_bytes(), WEBHOOK_SECRET, now());
        self.webhook(&body, Some(&header)).await
    }

    /// Sends a signed delivery of `body` from a task of its own; the answer's status.
    pub fn deliver_in_background(&self, body: String) -> tokio::task::JoinHandle<u16> {
        let header = signature::sign(body.as_bytes(), WEBHOOK_SECRET, now());
        let (http, url) = (
            self.http.clone(),
            format!("{}/stripe_webhook", self.address),
        );
        tokio::spawn(async move {
            let r = http
                .post(url)
                .header("Stripe-Signature", header)
                .body(body)
                .send();
            r.await.unwrap().status().as_u16()
        })
    }

    pub async fn ledger(&self) -> Ledger {
        open_ledger(&self.db_url).await
    }

    pub async fn stripe_requests(&self) -> Vec<Request> {
        self.stripe.received_requests().await.unwrap_or_default()
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            let _ = h.await;
        }
    }
}

pub async fn read(response: reqwest::Response) -> (u16, reqwest::header::HeaderMap, Value) {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, body)
}

pub async fn open_ledger(url: &str) -> Ledger {
    Ledger::connect(
        url,
        PoolSettings {
            max_connections: 2,
            ..PoolSettings::default()
        },
    )
    .await
    .unwrap()
}

/// `TMT_TEST_BACKEND=postgres` runs the suite on PostgreSQL (a database of its own per test);
/// otherwise each test gets a SQLite file in `dir`.
pub async fn test_database_url(dir: &Path) -> String {
    if std::env::var("TMT_TEST_BACKEND").as_deref() == Ok("postgres") {
        fresh_postgres_database(&postgres_admin_url()).await
    } else {
        format!("sqlite://{}", dir.join("ledger.db").display())
    }
}

pub fn on_postgres() -> bool {
    std::env::var("TMT_TEST_BACKEND").as_deref() == Ok("postgres")
}

/// Where tests create their PostgreSQL databases (`TMT_TEST_POSTGRES_URL`).
pub fn postgres_admin_url() -> String {
    std::env::var("TMT_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/postgres".into())
}

/// A new, empty database on the admin server; its URL.
pub async fn fresh_postgres_database(admin: &str) -> String {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin)
        .await
        .expect("PostgreSQL reachable");
    let name = format!("tmt_test_{:016x}", rand::random::<u64>());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let mut url = url::Url::parse(admin).unwrap();
    url.set_path(&name);
    url.to_string()
}

/// The PostgreSQL server for tests that need one, or `None` with the reason printed. Under
/// `CI=true` an unreachable server fails the test instead.
pub async fn postgres_peer() -> Option<String> {
    use sqlx::Connection;
    let admin = postgres_admin_url();
    match sqlx::PgConnection::connect(&admin).await {
        Ok(_) => Some(admin),
        Err(e) => {
            let reason =
                format!("PostgreSQL at {admin} unreachable ({e}); set TMT_TEST_POSTGRES_URL");
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("peer required under CI=true: {reason}");
            }
            eprintln!("SKIPPED: {reason}");
            None
        }
    }
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Stripe's form fields of a request, decoded.
pub fn form(request: &Request) -> Vec<(String, String)> {
    url::form_urlencoded::parse(&request.body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub fn form_value(request: &Request, key: &str) -> Option<String> {
    form(request)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

/// A PaymentIntent built from the published fixture.
pub fn payment_intent(id: &str, amount: i64, currency: &str, status: &str) -> Value {
    let mut pi = fixture("payment_intent");
    pi["id"] = json!(id);
    pi["amount"] = json!(amount);
    pi["currency"] = json!(currency);
    pi["status"] = json!(status);
    pi["client_secret"] = json!(format!("{id}_secret_abc123"));
    pi["created"] = json!(1_700_000_000);
    pi["metadata"] = json!({"platform": "TMT"});
    pi
}

/// Plays Stripe's `POST /v1/payment_intents`: answers with the fixture object carrying the
/// amount, currency, description and metadata that were sent.
pub struct CreateResponder;

impl Respond for CreateResponder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        ResponseTemplate::new(200)
            .insert_header("Request-Id", "req_create_1")
            .set_body_json(created_payment_intent(request))
    }
}

/// The PaymentIntent Stripe would create for this `POST /v1/payment_intents` form.
pub fn created_payment_intent(request: &Request) -> Value {
    let fields = form(request);
    let get = |k: &str| {
        fields
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let mut metadata = serde_json::Map::new();
    for (k, v) in &fields {
        if let Some(inner) = k
            .strip_prefix("metadata[")
            .and_then(|r| r.strip_suffix(']'))
        {
            metadata.insert(inner.to_string(), json!(v));
        }
    }
    let amount: i64 = get("amount").and_then(|a| a.parse().ok()).unwrap_or(0);
    let mut pi = payment_intent(
        "pi_3TestCreated000001",
        amount,
        &get("currency").unwrap_or_default(),
        "requires_payment_method",
    );
    pi["description"] = json!(get("description"));
    pi["metadata"] = Value::Object(metadata);
    pi
}

pub fn event(id: &str, event_type: &str, object: Value, created: i64) -> Value {
    let mut e = fixture("event");
    e["id"] = json!(id);
    e["type"] = json!(event_type);
    e["created"] = json!(created);
    e["data"]["object"] = object;
    e
}

/// Where the repository's Python peers live (created by `.ci/run`, or by hand: see the README).
pub fn venv_python() -> PathBuf {
    match std::env::var_os("TMT_PEER_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"),
    }
}

/// A Python with `modules` importable, or `None` with the reason printed. Under `CI=true` a
/// missing peer fails the test instead.
pub fn python_peer(modules: &[&str]) -> Option<PathBuf> {
    let python = venv_python();
    let import = format!("import {}", modules.join(", "));
    let ok = std::process::Command::new(&python)
        .args(["-c", &import])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        return Some(python);
    }
    let reason = format!(
        "{} cannot import {} (create it with: python3 -m venv .venv && \
         .venv/bin/pip install -r tests/peers/requirements.txt)",
        python.display(),
        modules.join(", ")
    );
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("peer required under CI=true: {reason}");
    }
    eprintln!("SKIPPED: {reason}");
    None
}
