//! What the tests of this crate share: the real application on port 0 with Stripe played by
//! wiremock ([`TestApp`]), the real binary as a child process ([`Server`], [`spawn_binary`]),
//! Stripe's objects from the published fixtures, the ledger the service writes, the external
//! peers some tests need, and [`eventually`], the one way a test waits for something.
//!
//! # Writing a test here
//!
//! A module of `tests/api/` starts with `use crate::helpers::*;` and is declared in `main.rs`.
//! A test file written for the old layout (`tests/<area>.rs` with `mod common;`) moves to
//! `tests/api/<area>.rs`: drop `mod common;`, replace `use common::*;` and
//! `use common::process::*;` by `use crate::helpers::*;`, add `mod <area>;` to `main.rs`, and
//! await [`Server::start`] (it is async now). Every helper here is used by some test: one that
//! nothing uses any more is deleted, not silenced.
//!
//! - Start: [`spawn_app`] / [`spawn_app_with`] (in process, with a `Config` to adjust);
//!   [`spawn_binary`] (the binary as a child, for what is process-wide such as the Prometheus
//!   recorder; the same `TestApp` calls work on it; [`spawn_binary_with`] with settings of
//!   its own); [`Server::start`] / [`Server::keyed`] (the binary with the environment a test
//!   gives it; [`Server::port`], [`Server::sigterm`], [`Server::exit_code`]); [`command`] and
//!   [`run`] (its command line), [`assert_exit`] and [`printed_json`] (what a run of it must
//!   end with and printed). [`TestApp::paths`]: every route of an instance started in process.
//! - Call: [`TestApp::create`], [`TestApp::create_with_key`], [`TestApp::confirm`],
//!   [`TestApp::get_pi`], [`TestApp::refund`], [`TestApp::cancel`], [`TestApp::post_with`]
//!   (other headers: `Authorization`, `X-Forwarded-For`, …), [`TestApp::post`],
//!   [`TestApp::post_raw`], [`TestApp::post_in_background`], [`TestApp::get`]. Each answers an
//!   [`Answer`]: status, headers and the body as JSON (`Null` when it is not JSON). Check a
//!   refusal with `assert_eq!(code(status, &body), (400, "amount_invalid"))` or [`refusal`]
//!   (with the message); [`ID_REQUIRED`] and [`ID_INVALID`] are the two `payment_intent_id`
//!   refusals. [`created_id`] is a successful create's id; [`content_type`] an answer's type.
//! - Webhooks: [`TestApp::deliver`] (signed now with the test secret), [`TestApp::delivered`]
//!   (the event built, and answered 200), [`TestApp::deliver_in_background`],
//!   [`TestApp::webhook`] (any header or none); [`CREATED`], [`SUCCEEDED`], … are
//!   PaymentIntent event types with the status they carry.
//! - The ledger: [`TestApp::ledger`], [`TestApp::payment`] (the row, or a panic naming it),
//!   [`TestApp::status_of`] (`None` without a row), [`TestApp::outcomes`] and
//!   [`TestApp::events_of`] (of a payment's events), [`ledger_events`] (all of them, newest
//!   first), [`TestApp::event_count`], [`TestApp::key_state`] (an Idempotency-Key's).
//! - The platform: [`Receiver`] records the fulfilment notifications it acknowledges
//!   ([`Receiver::expect`], [`Receiver::expect_each_once`]).
//! - Stripe (wiremock at `app.stripe`): [`TestApp::mount_create`], [`TestApp::mount_pi`],
//!   [`stub`], [`stub_first`] (the first request only, e.g. a 500 before a success),
//!   [`stub_reads`], [`stripe_error`], [`unreachable_base`]; then [`TestApp::stripe_calls`]
//!   (what it received, by method and path) or [`TestApp::stripe_requests`] (all of it).
//! - Waiting: [`eventually`]`(what, within, || async { … })` polls until the condition holds
//!   (`true`, `Some(value)` or `Ok(value)`) and fails the test with `what` (and the last `Err`)
//!   when `within` ([`PATIENCE`] unless the test has its own reason) passes first. A test never
//!   sleeps to let something happen: it waits for the sign that it did (wiremock has the
//!   request, the ledger has the row, the log has the line, the process has exited:
//!   [`exited`], [`listening`]).
//! - Peers: a test that needs something outside this repository is `#[ignore = "needs …"]`
//!   and calls [`postgres_peer`] or [`python_peer`], which fail with the reason when the peer
//!   is missing (ignored tests run only when asked: `--include-ignored`). Tests that need
//!   PostgreSQL have `postgres` in their name: `scripts/test.sh` skips them by that word on a
//!   machine without a server. [`KillOnDrop`] ends a peer's process with the test.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use reqwest::RequestBuilder;
use secrecy::SecretString;
use serde_json::{json, Value};
use tmt_payments::app::Application;
use tmt_payments::config::{Config, StripeSettings};
use tmt_payments::http::access::AccessSettings;
use tmt_payments::http::server::ConnectionLimits;
use tmt_payments::http::CorsOrigins;
use tmt_payments::ledger::{EventRow, Ledger, PaymentRow, PoolSettings};
use tmt_payments::payments::WebhookSettings;
use tmt_payments::stripe::client::DEFAULT_API_VERSION;
use tmt_payments::stripe::{signature, BudgetSettings};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub const SECRET_KEY: &str = "sk_test_4eC39HqLyjWDarjtT1zdp7dc";
pub const WEBHOOK_SECRET: &str = "whsec_test_primary";

/// How long a condition may take to come true before the test fails. Generous: a failure
/// means "never", not "slow".
pub const PATIENCE: Duration = Duration::from_secs(15);

/// An HTTP answer: status, headers, and the body as JSON (`Null` when it is not JSON).
pub type Answer = (u16, HeaderMap, Value);

// ---------------------------------------------------------------------------------------------
// Waiting

/// What a condition polled by [`eventually`] may answer: `true`, `Some(value)` or `Ok(value)`
/// when it holds; `Err(state)` says what was seen instead, for the failure message.
pub trait Settled {
    type Value;
    fn settled(self) -> Result<Self::Value, String>;
}

impl Settled for bool {
    type Value = ();
    fn settled(self) -> Result<(), String> {
        if self {
            Ok(())
        } else {
            Err(String::new())
        }
    }
}

impl<T> Settled for Option<T> {
    type Value = T;
    fn settled(self) -> Result<T, String> {
        self.ok_or_else(String::new)
    }
}

impl<T> Settled for Result<T, String> {
    type Value = T;
    fn settled(self) -> Result<T, String> {
        self
    }
}

impl<T> Settled for std::io::Result<T> {
    type Value = T;
    fn settled(self) -> Result<T, String> {
        self.map_err(|e| e.to_string())
    }
}

/// Polls `check` until it holds and returns what it gave; fails the test, saying `what` (and
/// the last state `check` reported), if `within` passes first.
pub async fn eventually<S, F, Fut>(what: &str, within: Duration, mut check: F) -> S::Value
where
    S: Settled,
    F: FnMut() -> Fut,
    Fut: Future<Output = S>,
{
    let deadline = Instant::now() + within;
    loop {
        match check().await.settled() {
            Ok(value) => return value,
            Err(last) => {
                if Instant::now() >= deadline {
                    let sep = if last.is_empty() { "" } else { ": " };
                    panic!("{what}: not within {within:?}{sep}{last}");
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Stripe's objects

pub fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/stripe")
        .join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
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

/// PaymentIntent event types, each with the status its PaymentIntent has when Stripe sends it.
pub const CREATED: (&str, &str) = ("payment_intent.created", "requires_payment_method");
pub const REQUIRES_ACTION: (&str, &str) = ("payment_intent.requires_action", "requires_action");
pub const FAILED: (&str, &str) = ("payment_intent.payment_failed", "requires_payment_method");
pub const PROCESSING: (&str, &str) = ("payment_intent.processing", "processing");
pub const SUCCEEDED: (&str, &str) = ("payment_intent.succeeded", "succeeded");
pub const CANCELED: (&str, &str) = ("payment_intent.canceled", "canceled");

pub fn event(id: &str, event_type: &str, object: Value, created: i64) -> Value {
    let mut e = fixture("event");
    e["id"] = json!(id);
    e["type"] = json!(event_type);
    e["created"] = json!(created);
    e["data"]["object"] = object;
    e
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

/// The `metadata[k]` fields of a form, as a JSON object.
pub fn form_metadata(request: &Request) -> Value {
    let mut metadata = serde_json::Map::new();
    for (k, v) in form(request) {
        if let Some(key) = k
            .strip_prefix("metadata[")
            .and_then(|k| k.strip_suffix(']'))
        {
            metadata.insert(key.to_string(), json!(v));
        }
    }
    Value::Object(metadata)
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
    let amount: i64 = form_value(request, "amount")
        .and_then(|a| a.parse().ok())
        .unwrap_or(0);
    let mut pi = payment_intent(
        "pi_3TestCreated000001",
        amount,
        &form_value(request, "currency").unwrap_or_default(),
        "requires_payment_method",
    );
    pi["description"] = json!(form_value(request, "description"));
    pi["metadata"] = form_metadata(request);
    pi
}

/// `stripe` answers every `method` request, whatever its path, with `response`.
pub async fn stub(stripe: &MockServer, method_name: &str, response: impl Respond + 'static) {
    Mock::given(method(method_name))
        .respond_with(response)
        .mount(stripe)
        .await;
}

/// `stripe` answers every GET, whatever its path, with the PaymentIntent `pi`.
pub async fn stub_reads(stripe: &MockServer, pi: Value) {
    stub(stripe, "GET", ResponseTemplate::new(200).set_body_json(pi)).await;
}

/// `stripe` answers the first `method` request, whatever its path, with `response`, before any
/// other stub (stubs mounted this way answer in the order they were mounted); the requests after
/// it go to the other stubs.
pub async fn stub_first(stripe: &MockServer, method_name: &str, response: ResponseTemplate) {
    Mock::given(method(method_name))
        .respond_with(response)
        .up_to_n_times(1)
        .with_priority(1)
        .mount(stripe)
        .await;
}

/// Stripe's answer for an error of `kind` (`api_error`, …) with this HTTP status.
pub fn stripe_error(status: u16, kind: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .set_body_json(json!({"error": {"type": kind, "message": message}}))
}

/// A base URL where nothing listens: every connection to it is refused at once.
pub fn unreachable_base() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    base
}

/// The requests `stripe` received with this method and path.
pub async fn received(stripe: &MockServer, method: &str, path: &str) -> Vec<Request> {
    stripe
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.method.as_str() == method && r.url.path() == path)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The application in this process

pub struct TestApp {
    pub address: String,
    pub stripe: MockServer,
    pub http: reqwest::Client,
    pub db_url: String,
    _dir: tempfile::TempDir,
    running: Option<Running>,
    ledger: tokio::sync::OnceCell<Ledger>,
    /// The in-process instance's budget of Stripe calls, to watch its queue.
    budget: Option<tmt_payments::stripe::Budget>,
    /// The in-process instance's routes, by path.
    paths: Vec<String>,
}

enum Running {
    Task {
        shutdown: tokio::sync::oneshot::Sender<()>,
        handle: tokio::task::JoinHandle<()>,
    },
    Process(Server),
}

pub fn base_config(db_url: &str, stripe_base: &str) -> Config {
    Config {
        database_url: db_url.to_string(),
        database_pool: PoolSettings {
            max_connections: 4,
            acquire_timeout: Duration::from_secs(5),
        },
        idempotency_stale: Duration::from_secs(60),
        stripe: StripeSettings {
            secret_key: Some(SecretString::from(SECRET_KEY.to_string())),
            api_base: stripe_base.to_string(),
            api_version: DEFAULT_API_VERSION.to_string(),
            timeout: Duration::from_secs(10),
            max_retries: 2,
            initial_retry_delay: Duration::from_millis(20),
            budget: BudgetSettings {
                // Far above what any test asks of Stripe, so that only the sale-day tests meet
                // the budget.
                max_rps: Some(1000),
                queue_timeout: Duration::from_secs(10),
            },
            webhook: WebhookSettings {
                secrets: vec![SecretString::from(WEBHOOK_SECRET.to_string())],
                tolerance_secs: 300,
            },
        },
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        cors: CorsOrigins::Any,
        access: AccessSettings::default(),
        connections: ConnectionLimits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 10_000,
            body_timeout: Duration::from_secs(15),
            max_inflight_body_bytes: 64 * 1024 * 1024,
            shutdown_timeout: Duration::from_secs(20),
        },
        fulfilment: None,
        late_payment_policy: tmt_payments::ledger::LatePolicy::Notify,
        reconcile_interval: None,
        settlement_interval: None,
        connect: Default::default(),
        delayed: Default::default(),
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
    let paths = app.paths().to_vec();
    let (shutdown, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        let _ = app
            .run_until(async {
                let _ = rx.await;
            })
            .await;
    });
    let mut app = TestApp::new(
        address,
        stripe,
        db_url,
        dir,
        Running::Task { shutdown, handle },
    );
    app.budget = Some(budget);
    app.paths = paths;
    app
}

/// The real binary as a child process, with the keys of [`base_config`], Stripe played by
/// wiremock, a ledger of its own and (as in [`base_config`]) no reconciliation rounds. What is
/// process-wide (the Prometheus recorder) is then the test's alone.
pub async fn spawn_binary() -> TestApp {
    spawn_binary_with(&[]).await
}

/// [`spawn_binary`] with these settings besides (`LATE_PAYMENT_POLICY`, `FULFILMENT_URL`, …).
pub async fn spawn_binary_with(settings: &[(&str, &str)]) -> TestApp {
    let stripe = MockServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db_url = test_database_url(dir.path()).await;
    let mut envs = vec![("RECONCILE_INTERVAL_SECS", "0")];
    envs.extend_from_slice(settings);
    let server = Server::keyed(&db_url, &stripe.uri(), &envs).await;
    TestApp::new(
        server.address.clone(),
        stripe,
        db_url,
        dir,
        Running::Process(server),
    )
}

impl TestApp {
    fn new(
        address: String,
        stripe: MockServer,
        db_url: String,
        dir: tempfile::TempDir,
        running: Running,
    ) -> TestApp {
        TestApp {
            address,
            stripe,
            http: reqwest::Client::new(),
            db_url,
            _dir: dir,
            running: Some(running),
            ledger: tokio::sync::OnceCell::new(),
            budget: None,
            paths: Vec::new(),
        }
    }

    /// The path of every route of an instance started in process (axum's syntax: `{id}`,
    /// `{*path}`).
    pub fn paths(&self) -> &[String] {
        assert!(
            !self.paths.is_empty(),
            "the routes are listed for an instance started in process"
        );
        &self.paths
    }

    /// The budget of Stripe calls of an instance started in process.
    pub fn budget(&self) -> &tmt_payments::stripe::Budget {
        self.budget
            .as_ref()
            .expect("the budget is watched on an instance started in process")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.post_raw(path, body.to_string().into_bytes()).await
    }

    pub async fn post_raw(&self, path: &str, body: Vec<u8>) -> Answer {
        self.send(path, body, &[]).await
    }

    /// `POST path` with `body` and these headers besides `Content-Type: application/json`.
    pub async fn post_with(&self, path: &str, body: Value, headers: &[(&str, &str)]) -> Answer {
        self.send(path, body.to_string().into_bytes(), headers)
            .await
    }

    async fn send(&self, path: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> Answer {
        read(self.request(path, body, headers).send().await.unwrap()).await
    }

    fn request(&self, path: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> RequestBuilder {
        let mut request = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request
    }

    /// [`TestApp::post_with`] from a task of its own (one caller among many at once); its
    /// answer.
    pub fn post_in_background(
        &self,
        path: &str,
        body: Value,
        headers: &[(&str, &str)],
    ) -> tokio::task::JoinHandle<Answer> {
        let request = self.request(path, body.to_string().into_bytes(), headers);
        tokio::spawn(async move { read(request.send().await.unwrap()).await })
    }

    /// `GET path`: status, headers and the body as text.
    pub async fn get(&self, path: &str) -> (u16, HeaderMap, String) {
        let r = self.http.get(self.url(path)).send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        (status, headers, r.text().await.unwrap())
    }

    /// `POST /stripe_create_payment_intent` with `{"data": data}`.
    pub async fn create(&self, data: Value) -> Answer {
        self.post("/stripe_create_payment_intent", json!({ "data": data }))
            .await
    }

    /// A create under an `Idempotency-Key`.
    pub async fn create_with_key(&self, key: &str, data: Value) -> Answer {
        self.post_with(
            "/stripe_create_payment_intent",
            json!({ "data": data }),
            &[("Idempotency-Key", key)],
        )
        .await
    }

    /// `POST /stripe_confirm_payment` for the PaymentIntent `id`.
    pub async fn confirm(&self, id: &str) -> Answer {
        self.post(
            "/stripe_confirm_payment",
            json!({"data": {"payment_intent_id": id}}),
        )
        .await
    }

    /// `POST /stripe_get_payment_intent` for the PaymentIntent `id`.
    pub async fn get_pi(&self, id: &str) -> Answer {
        self.post(
            "/stripe_get_payment_intent",
            json!({"data": {"payment_intent_id": id}}),
        )
        .await
    }

    /// `POST /stripe_refund_payment` with `{"data": data}`.
    pub async fn refund(&self, data: Value) -> Answer {
        self.post("/stripe_refund_payment", json!({ "data": data }))
            .await
    }

    /// `POST /stripe_cancel_payment_intent` with `{"data": data}`.
    pub async fn cancel(&self, data: Value) -> Answer {
        self.post("/stripe_cancel_payment_intent", json!({ "data": data }))
            .await
    }

    /// `POST /stripe_webhook` with `body` and, if given, this `Stripe-Signature`.
    pub async fn webhook(&self, body: &str, header: Option<&str>) -> (u16, Value) {
        let mut request = self
            .http
            .post(self.url("/stripe_webhook"))
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

    /// Delivers the event `id` of type `kind` about `object`, created at `created`, as
    /// [`TestApp::deliver`] does; it must be answered 200.
    pub async fn delivered(&self, id: &str, kind: &str, object: Value, created: i64) {
        let (status, body) = self.deliver(&event(id, kind, object, created)).await;
        assert_eq!(status, 200, "{id}: {body}");
    }

    /// Sends a signed delivery of `body` from a task of its own; the answer's status.
    pub fn deliver_in_background(&self, body: String) -> tokio::task::JoinHandle<u16> {
        let header = signature::sign(body.as_bytes(), WEBHOOK_SECRET, now());
        let (http, url) = (self.http.clone(), self.url("/stripe_webhook"));
        tokio::spawn(async move {
            let r = http
                .post(url)
                .header("Stripe-Signature", header)
                .body(body)
                .send();
            r.await.unwrap().status().as_u16()
        })
    }

    /// The ledger the app writes (one pool per test app, opened on first use).
    pub async fn ledger(&self) -> Ledger {
        self.ledger
            .get_or_init(|| open_ledger(&self.db_url))
            .await
            .clone()
    }

    /// The ledger's row for `pi`; fails the test when there is none.
    pub async fn payment(&self, pi: &str) -> PaymentRow {
        self.ledger()
            .await
            .payment(pi)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("the ledger has no row for {pi}"))
    }

    /// The status of the ledger's row for `pi`, or `None` without a row.
    pub async fn status_of(&self, pi: &str) -> Option<String> {
        let row = self.ledger().await.payment(pi).await.unwrap();
        row.map(|r| r.status.as_str().to_string())
    }

    /// The outcomes of the events recorded for `pi`, in the ledger's order.
    pub async fn outcomes(&self, pi: &str) -> Vec<String> {
        let events: Vec<EventRow> = self.ledger().await.of_payment(pi).await.unwrap();
        events.into_iter().map(|e| e.outcome.to_string()).collect()
    }

    /// The events recorded for `pi`, in the ledger's order, each as the `fields` chosen, e.g.
    /// `|e| [&e.id, e.outcome.as_str()]`.
    pub async fn events_of<const N: usize>(
        &self,
        pi: &str,
        fields: fn(&EventRow) -> [&str; N],
    ) -> Vec<[String; N]> {
        let events: Vec<EventRow> = self.ledger().await.of_payment(pi).await.unwrap();
        events
            .iter()
            .map(|e| fields(e).map(str::to_string))
            .collect()
    }

    /// How many webhook events the ledger has recorded.
    pub async fn event_count(&self) -> usize {
        self.ledger().await.list_events(1000).await.unwrap().len()
    }

    /// The state (`in_progress`, `done`) of the create's Idempotency-Key `key`, if held.
    pub async fn key_state(&self, key: &str) -> Option<String> {
        sqlx::query_scalar("SELECT state FROM idempotency_keys WHERE key = $1")
            .bind(format!("create:{key}"))
            .fetch_optional(self.ledger().await.pool())
            .await
            .unwrap()
    }

    /// Every request wiremock received, in order.
    pub async fn stripe_requests(&self) -> Vec<Request> {
        self.stripe.received_requests().await.unwrap_or_default()
    }

    /// The requests wiremock received with this method and path, in order.
    pub async fn stripe_calls(&self, method: &str, path: &str) -> Vec<Request> {
        received(&self.stripe, method, path).await
    }

    /// Stripe's create (`POST /v1/payment_intents`) answered by [`CreateResponder`].
    pub async fn mount_create(&self) {
        Mock::given(method("POST"))
            .and(path("/v1/payment_intents"))
            .respond_with(CreateResponder)
            .mount(&self.stripe)
            .await;
    }

    /// Stripe's `GET /v1/payment_intents/{id}` answering `pi`.
    pub async fn mount_pi(&self, pi: Value) {
        Mock::given(method("GET"))
            .and(path(format!(
                "/v1/payment_intents/{}",
                pi["id"].as_str().unwrap()
            )))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("Request-Id", "req_read")
                    .set_body_json(pi),
            )
            .mount(&self.stripe)
            .await;
    }

    pub async fn stop(mut self) {
        match self.running.take() {
            Some(Running::Task { shutdown, handle }) => {
                let _ = shutdown.send(());
                let _ = handle.await;
            }
            Some(Running::Process(server)) => drop(server),
            None => {}
        }
    }
}

/// The refusal of a missing `payment_intent_id`: its code and message.
pub const ID_REQUIRED: (&str, &str) = (
    "payment_intent_id_required",
    "ID de Payment Intent es requerido",
);

/// The refusal of a `payment_intent_id` that is not one: its code and message.
pub const ID_INVALID: (&str, &str) = ("payment_intent_id_invalid", "ID de Payment Intent inválido");

/// An error answer's status and `code`, to compare with `(400, "amount_invalid")`.
pub fn code(status: u16, body: &Value) -> (u16, &str) {
    let (status, code, _) = refusal(status, body);
    (status, code)
}

/// An error answer's status, `code` and `error` (the message).
pub fn refusal(status: u16, body: &Value) -> (u16, &str, &str) {
    let text = |field: &str| body[field].as_str().unwrap_or_default();
    (status, text("code"), text("error"))
}

/// The `paymentIntentId` of a create's answer, which must be a 200 (else the test fails,
/// showing the body).
pub fn created_id((status, _, body): &Answer) -> String {
    assert_eq!(*status, 200, "{body}");
    body["data"]["paymentIntentId"]
        .as_str()
        .unwrap()
        .to_string()
}

/// An answer's `Content-Type`.
pub fn content_type(headers: &HeaderMap) -> &str {
    headers["content-type"].to_str().unwrap()
}

pub async fn read(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, body)
}

// ---------------------------------------------------------------------------------------------
// The ledger and its database

/// Makes `pi`'s seat hold (or its deadline) end now, as if its time had come: the hold worker
/// deals with it at its next round.
pub async fn end_hold_now(ledger: &Ledger, pi: &str) {
    sqlx::query("UPDATE payments SET hold_expires_ms = $1 WHERE id = $2")
        .bind(chrono::Utc::now().timestamp_millis() - 1000)
        .bind(pi)
        .execute(ledger.pool())
        .await
        .unwrap();
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

/// Every webhook event `ledger` has recorded, newest first, each as the `fields` chosen, e.g.
/// `|e| [&e.id]`.
pub async fn ledger_events<const N: usize>(
    ledger: &Ledger,
    fields: fn(&EventRow) -> [&str; N],
) -> Vec<[String; N]> {
    let events = ledger.list_events(1000).await.unwrap();
    events
        .iter()
        .map(|e| fields(e).map(str::to_string))
        .collect()
}

/// `TMT_TEST_BACKEND=postgres` runs the suite on PostgreSQL (a database of its own per test);
/// otherwise each test gets a SQLite file in `dir`.
pub async fn test_database_url(dir: &Path) -> String {
    if on_postgres() {
        fresh_postgres_database(&postgres_admin_url()).await
    } else {
        sqlite_url(dir)
    }
}

pub fn on_postgres() -> bool {
    std::env::var("TMT_TEST_BACKEND").as_deref() == Ok("postgres")
}

/// Where tests create their PostgreSQL databases (`TMT_TEST_POSTGRES_URL`).
fn postgres_admin_url() -> String {
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

/// The database name of a PostgreSQL URL.
pub fn database_name(url: &str) -> String {
    url::Url::parse(url)
        .unwrap()
        .path()
        .trim_start_matches('/')
        .to_string()
}

pub fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("ledger.db").display())
}

// ---------------------------------------------------------------------------------------------
// The platform

/// The platform's fulfilment endpoint, in the test: records what it acknowledges; the first
/// `fail_first` deliveries of each notification are answered 500.
pub struct Receiver {
    pub url: String,
    pub secret: String,
    pub acknowledged: Arc<Mutex<Vec<Value>>>,
}

impl Receiver {
    pub async fn start(fail_first: usize) -> Receiver {
        Self::start_slow(fail_first, Duration::ZERO).await
    }

    /// Like `start`, answering each delivery after `delay` (deliveries stay in flight longer).
    pub async fn start_slow(fail_first: usize, delay: Duration) -> Receiver {
        use axum::routing::post;
        let acknowledged: Arc<Mutex<Vec<Value>>> = Arc::default();
        let tries: Arc<Mutex<std::collections::BTreeMap<String, usize>>> = Arc::default();
        let (kept, seen) = (acknowledged.clone(), tries.clone());
        let app = axum::Router::new().route(
            "/",
            post(move |body: axum::body::Bytes| {
                let (kept, seen) = (kept.clone(), seen.clone());
                async move {
                    tokio::time::sleep(delay).await;
                    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let id = body["id"].as_str().unwrap_or_default().to_string();
                    let n = {
                        let mut seen = seen.lock().unwrap();
                        let n = seen.entry(id).or_insert(0);
                        *n += 1;
                        *n
                    };
                    if n <= fail_first {
                        return axum::http::StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    kept.lock().unwrap().push(body);
                    axum::http::StatusCode::OK
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver {
            url,
            secret: "whsec_fulfilment_test_0123456789".into(),
            acknowledged,
        }
    }

    pub fn env(&self) -> [(&str, &str); 2] {
        [
            ("FULFILMENT_URL", self.url.as_str()),
            ("FULFILMENT_SECRET", self.secret.as_str()),
        ]
    }

    /// The acknowledged notifications of `kind` for `pi`.
    pub fn of(&self, pi: &str, kind: &str) -> Vec<Value> {
        self.acknowledged
            .lock()
            .unwrap()
            .iter()
            .filter(|n| n["type"] == kind && n["data"]["paymentIntentId"] == pi)
            .cloned()
            .collect()
    }

    pub async fn expect(&self, pi: &str, kind: &str) -> Value {
        eventually(
            &format!("a {kind} notification for {pi}"),
            PATIENCE * 2,
            || async { self.of(pi, kind).into_iter().next() },
        )
        .await
    }

    /// Waits (for at most `within`) until every payment of `pis` has a `kind` notification,
    /// then checks that each has exactly one (one notification id, however often delivered).
    pub async fn expect_each_once(&self, pis: &[String], kind: &str, within: Duration) {
        eventually(&format!("every {kind} announced"), within, || async {
            pis.iter().all(|pi| !self.of(pi, kind).is_empty())
        })
        .await;
        for pi in pis {
            let ids: std::collections::BTreeSet<String> = self
                .of(pi, kind)
                .iter()
                .map(|n| n["id"].as_str().unwrap().to_string())
                .collect();
            assert_eq!(ids.len(), 1, "{pi}: one {kind}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Peers outside the repository

/// The PostgreSQL server of the tests that need one (`TMT_TEST_POSTGRES_URL`): its admin URL.
/// Such tests are `#[ignore = "needs PostgreSQL at TMT_TEST_POSTGRES_URL"]`; run, they fail
/// here when the server does not answer.
pub async fn postgres_peer() -> String {
    use sqlx::Connection;
    let admin = postgres_admin_url();
    if let Err(e) = sqlx::PgConnection::connect(&admin).await {
        panic!("needs PostgreSQL at {admin} (set TMT_TEST_POSTGRES_URL): {e}");
    }
    admin
}

/// Where the repository's Python peers live (`scripts/test.sh` installs them).
pub fn venv_python() -> PathBuf {
    match std::env::var_os("TMT_PEER_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"),
    }
}

/// A Python with `modules` importable. Tests that need one are
/// `#[ignore = "needs Python peers in .venv (…)"]`; run, they fail here when it is missing.
pub fn python_peer(modules: &[&str]) -> PathBuf {
    let python = venv_python();
    let import = format!("import {}", modules.join(", "));
    let ok = Command::new(&python)
        .args(["-c", &import])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "needs Python peers: {} cannot import {} (install them with scripts/test.sh, or: \
         python3 -m venv .venv && .venv/bin/pip install -r tests/peers/requirements.txt)",
        python.display(),
        modules.join(", ")
    );
    python
}

/// A child process killed (and reaped) when the test is done with it, passed or failed.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// The binary

pub const BIN: &str = env!("CARGO_BIN_EXE_tmt-payments");

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A command with a clean environment: only what the test sets reaches the binary.
pub fn command(db_url: &str) -> Command {
    let mut c = Command::new(BIN);
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("DATABASE_URL", db_url)
        .env("RUST_LOG", "warn");
    c
}

pub fn run(db_url: &str, args: &[&str]) -> Output {
    command(db_url).args(args).output().unwrap()
}

/// Fails the test, saying `what` and showing standard error, unless the command that gave
/// `output` exited with `code`.
pub fn assert_exit(output: &Output, code: i32, what: &str) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "{what}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The JSON a command printed, once it exited with `code` (see [`assert_exit`]).
pub fn printed_json(output: &Output, code: i32) -> Value {
    assert_exit(output, code, "the command's exit code");
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Waits until something accepts connections at `address` (`http://host:port`); the first
/// connection it accepted.
pub async fn listening(address: &str) -> tokio::net::TcpStream {
    let host = address.trim_start_matches("http://");
    eventually(&format!("{host} accepts connections"), PATIENCE * 2, || {
        tokio::net::TcpStream::connect(host.to_string())
    })
    .await
}

/// The settings that give the binary the tests' Stripe key and webhook secret, and Stripe at
/// `stripe_base`.
pub fn keyed_env(stripe_base: &str) -> Vec<(&'static str, &str)> {
    vec![
        ("STRIPE_SECRET_KEY", SECRET_KEY),
        ("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET),
        ("STRIPE_API_BASE", stripe_base),
    ]
}

/// `serve` running as a child process; killed when dropped.
pub struct Server {
    pub child: Child,
    pub address: String,
}

impl Server {
    /// Starts `serve` on a free port with `envs` and waits until it accepts connections.
    pub async fn start(db_url: &str, envs: &[(&str, &str)]) -> Server {
        Self::start_logging(db_url, envs, None).await
    }

    /// Like `start`, with standard error (the log) written to `log`.
    pub async fn start_logging(db_url: &str, envs: &[(&str, &str)], log: Option<&Path>) -> Server {
        let port = free_port();
        let mut c = command(db_url);
        // No settlement rounds unless a test asks for them: a round's Stripe calls are not
        // what other tests count.
        c.env("PORT", port.to_string())
            .env("BIND", "127.0.0.1")
            .env("SETTLEMENT_INTERVAL_SECS", "0")
            .envs(envs.iter().copied())
            .stdout(Stdio::null())
            .stderr(match log {
                Some(path) => Stdio::from(std::fs::File::create(path).unwrap()),
                None => Stdio::null(),
            });
        let server = Server {
            child: c.spawn().unwrap(),
            address: format!("http://127.0.0.1:{port}"),
        };
        // The port accepts connections as soon as it is bound, before the ledger is opened and
        // migrated: the server is up once it answers.
        listening(&server.address).await;
        let health = format!("{}/healthz", server.address);
        eventually(&format!("{health} answers"), PATIENCE * 2, || async {
            match reqwest::get(&health).await {
                Ok(r) if r.status().is_success() => Ok(()),
                Ok(r) => Err(r.status().to_string()),
                Err(e) => Err(e.to_string()),
            }
        })
        .await;
        server
    }

    /// `start` with the test key and webhook secret, Stripe at `stripe_base`, and `envs`.
    pub async fn keyed(db_url: &str, stripe_base: &str, envs: &[(&str, &str)]) -> Server {
        Self::keyed_logging(db_url, stripe_base, envs, None).await
    }

    /// `keyed`, with the log written to `log`.
    pub async fn keyed_logging(
        db_url: &str,
        stripe_base: &str,
        envs: &[(&str, &str)],
        log: Option<&Path>,
    ) -> Server {
        let mut all = keyed_env(stripe_base);
        all.extend_from_slice(envs);
        Self::start_logging(db_url, &all, log).await
    }

    /// The port it listens on.
    pub fn port(&self) -> &str {
        self.address.rsplit(':').next().unwrap()
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits (bounded) for the process to exit; its exit code.
    pub async fn exit_code(&mut self) -> Option<i32> {
        exited(&mut self.child, Duration::from_secs(30)).await
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `child` exits, for at most `within`; its exit code.
pub async fn exited(child: &mut Child, within: Duration) -> Option<i32> {
    eventually("the process exits", within, || {
        let status = child.try_wait().unwrap();
        async move { status.map(|s| s.code()) }
    })
    .await
}

/// The value of one Prometheus sample (a line that starts with `series`), 0 when absent.
pub fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}
