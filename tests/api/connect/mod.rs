//! Organisers paid through Stripe Connect (docs/contract.md §15), through the service's HTTP
//! surface: the binary in sandbox mode, its embedded Stripe (Connect included) answering at
//! `/v1` on the same port, as the platform's back end, the buyer's browser and Stripe use them;
//! and three instances on PostgreSQL against the standalone sandbox where concurrency matters.

mod charges;
mod disputes;
mod organizers;
mod pages;
mod reconcile;
mod refunds;

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;

/// Any test key works with the sandbox.
pub const SANDBOX_KEY: &str = "sk_test_connect_market";

/// The marketplace: the service in sandbox mode with Connect on, and what a test needs to play
/// the platform's back end, the organisers, the buyers and Stripe's other side.
pub struct Market {
    pub server: Server,
    pub db: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Market {
    /// The service with `CONNECT_CHARGE_TYPE=charge_type` and `envs`.
    pub async fn start(charge_type: &str, envs: &[(&str, &str)]) -> Market {
        let mut all = vec![("CONNECT_CHARGE_TYPE", charge_type)];
        all.extend_from_slice(envs);
        Market::open(&all).await
    }

    /// The service in sandbox mode with `envs` (Connect off unless they turn it on).
    pub async fn open(envs: &[(&str, &str)]) -> Market {
        let dir = tempfile::tempdir().unwrap();
        let db = sqlite_url(dir.path());
        let mut all = vec![
            // What the embedded sandbox signs with, so that tests can deliver its events too.
            ("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET),
            ("STRIPE_SANDBOX_DELAY_MS", "200"),
            ("RECONCILE_INTERVAL_SECS", "0"),
        ];
        all.extend_from_slice(envs);
        let server = Server::start(&db, &all).await;
        Market {
            server,
            db,
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    /// A call to one of the service's functions.
    pub async fn call(&self, path: &str, data: Value) -> Answer {
        call(&self.http, &self.server.address, path, data).await
    }

    pub async fn ledger(&self) -> tmt_payments::ledger::Ledger {
        open_ledger(&self.db).await
    }

    /// Creates a payment through the service; the answer's `data`.
    pub async fn create(&self, data: Value) -> Value {
        let (status, _, body) = self.call(CREATE, data).await;
        assert_eq!(status, 200, "{body}");
        body["data"].clone()
    }

    /// Waits until the ledger says `status` for `pi`.
    pub async fn reaches(&self, pi: &str, status: &str) {
        reaches(&self.ledger().await, pi, status).await;
    }

    /// `tmt-payments args…` on the service's ledger, with its sandbox as Stripe.
    pub fn cli(&self, args: &[&str], envs: &[(&str, &str)]) -> std::process::Output {
        command(&self.db)
            .args(args)
            .env("PORT", self.server.port())
            .envs(envs.iter().copied())
            .output()
            .unwrap()
    }

    /// Onboards `organizer`; the answer's `data`.
    pub async fn onboard(&self, organizer: &str, extra: Value) -> Value {
        let (status, _, body) = self.call(ONBOARD, onboarding(organizer, extra)).await;
        assert_eq!(status, 200, "{body}");
        body["data"].clone()
    }

    /// The organiser as `stripe_get_organizer` answers it.
    pub async fn organizer(&self, organizer: &str) -> Answer {
        self.call(GET_ORGANIZER, json!({"organizerId": organizer}))
            .await
    }

    /// The organiser finishes Stripe's onboarding (the sandbox's control, as its page's
    /// **Complete** button does).
    pub async fn complete_onboarding(&self, account: &str) {
        let (status, _, body) = self
            .stripe(
                reqwest::Method::POST,
                &format!("/_sandbox/accounts/{account}/onboard"),
                &[("outcome", "complete")],
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }

    /// An organiser onboarded in full, once the service knows it can take payments; its
    /// account.
    pub async fn ready_organizer(&self, organizer: &str, extra: Value) -> String {
        let account = self.onboard(organizer, extra).await["accountId"]
            .as_str()
            .unwrap()
            .to_string();
        self.complete_onboarding(&account).await;
        eventually(
            &format!("{organizer} can take payments"),
            PATIENCE,
            || async {
                let (_, _, body) = self.organizer(organizer).await;
                match body["data"]["chargesEnabled"].as_bool() {
                    Some(true) => Ok(()),
                    _ => Err(body.to_string()),
                }
            },
        )
        .await;
        account
    }
}

/// Stripe's side of a test (the sandbox the market embeds, or the cluster's standalone one),
/// as the tests play it: the buyer's browser, the organiser finishing onboarding, the Stripe
/// Dashboard.
pub trait StripeSide {
    fn http(&self) -> &reqwest::Client;
    /// Where the sandbox answers Stripe's API.
    fn stripe_base(&self) -> &str;

    /// A call to the sandbox as Stripe's API, for the platform or (`account`) a connected
    /// account.
    async fn stripe(
        &self,
        method: reqwest::Method,
        path: &str,
        form: &[(&str, &str)],
        account: Option<&str>,
    ) -> Answer {
        stripe_call(self.http(), self.stripe_base(), method, path, form, account).await
    }

    /// `GET` of a Stripe object as the sandbox has it (on `account`, if given).
    async fn at_stripe(&self, path: &str, account: Option<&str>) -> Value {
        let (status, _, body) = self.stripe(reqwest::Method::GET, path, &[], account).await;
        assert_eq!(status, 200, "{path}: {body}");
        body
    }

    /// The buyer pays `pi` (on `account`, for a direct charge) with `payment_method`, as
    /// Stripe.js would.
    async fn pay(&self, pi: &str, payment_method: &str, account: Option<&str>) -> Answer {
        let path = format!("/v1/payment_intents/{pi}/confirm");
        let form = [("payment_method", payment_method)];
        self.stripe(reqwest::Method::POST, &path, &form, account)
            .await
    }

    /// The platform's application fee on `charge` (a Charge object), as Stripe has it.
    async fn fee_of(&self, charge: &Value) -> Value {
        let fee = charge["application_fee"].as_str().unwrap();
        self.at_stripe(&format!("/v1/application_fees/{fee}"), None)
            .await
    }

    /// The connected accounts Stripe has for `organizer` (by the metadata the service tags
    /// them with).
    async fn accounts_of(&self, organizer: &str) -> Vec<Value> {
        let listed = self.at_stripe("/v1/accounts?limit=100", None).await;
        listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["metadata"]["organizer_id"] == organizer)
            .cloned()
            .collect()
    }

    /// From now on Stripe's webhook deliveries are lost (the sandbox's control).
    async fn drop_webhooks(&self) {
        let form = [("drop", "true")];
        let (status, _, body) = self
            .stripe(reqwest::Method::POST, "/_sandbox/webhooks", &form, None)
            .await;
        assert_eq!(status, 200, "{body}");
    }

    /// Every event the sandbox lists (for `account`, or the platform's), oldest first.
    async fn events(&self, account: Option<&str>) -> Vec<Value> {
        listed_events(self.http(), self.stripe_base(), account).await
    }
}

impl StripeSide for Market {
    fn http(&self) -> &reqwest::Client {
        &self.http
    }
    fn stripe_base(&self) -> &str {
        &self.server.address
    }
}

impl StripeSide for PostgresCluster {
    fn http(&self) -> &reqwest::Client {
        &self.http
    }
    fn stripe_base(&self) -> &str {
        &self.sandbox.base
    }
}

pub const CREATE: &str = "/stripe_create_payment_intent";
pub const REFUND: &str = "/stripe_refund_payment";

/// Waits until `ledger` says `status` for `pi`.
pub async fn reaches(ledger: &tmt_payments::ledger::Ledger, pi: &str, status: &str) {
    eventually(&format!("{pi} is {status}"), PATIENCE, || async {
        match ledger.payment(pi).await.unwrap() {
            Some(row) if row.status == status => Ok(()),
            other => Err(format!("{:?}", other.map(|r| r.status))),
        }
    })
    .await;
}
pub const ONBOARD: &str = "/stripe_onboard_organizer";
pub const GET_ORGANIZER: &str = "/stripe_get_organizer";

/// An onboarding request's `data` for `organizer`, with `extra`'s fields over it.
pub fn onboarding(organizer: &str, extra: Value) -> Value {
    let mut data = json!({
        "organizerId": organizer,
        "returnUrl": "https://tickets.example/organizers/done",
        "refreshUrl": "https://tickets.example/organizers/again",
    });
    for (k, v) in extra.as_object().into_iter().flatten() {
        data[k] = v.clone();
    }
    data
}

/// A call to a service at `address`.
pub async fn call(http: &reqwest::Client, address: &str, path: &str, data: Value) -> Answer {
    let r = http
        .post(format!("{address}{path}"))
        .header("content-type", "application/json")
        .timeout(Duration::from_secs(60))
        .body(json!({ "data": data }).to_string())
        .send()
        .await
        .unwrap();
    read(r).await
}

/// A call to the Stripe API at `base` (the sandbox), for the platform or a connected account.
pub async fn stripe_call(
    http: &reqwest::Client,
    base: &str,
    method: reqwest::Method,
    path: &str,
    form: &[(&str, &str)],
    account: Option<&str>,
) -> Answer {
    let mut r = http
        .request(method.clone(), format!("{base}{path}"))
        .bearer_auth(SANDBOX_KEY);
    if let Some(account) = account {
        r = r.header("Stripe-Account", account);
    }
    r = match method {
        reqwest::Method::GET => r.query(form),
        _ => r.form(form),
    };
    read(r.send().await.unwrap()).await
}

/// The standalone sandbox (`tmt-payments sandbox`) on `port`, in memory, delivering its events
/// (signed with the tests' secret) to `webhook`.
pub struct StandaloneSandbox {
    _process: KillOnDrop,
    pub base: String,
}

impl StandaloneSandbox {
    pub async fn start(port: u16, webhook: &str) -> StandaloneSandbox {
        let process = KillOnDrop(
            command("sqlite://unused.db")
                .args([
                    "sandbox",
                    "--port",
                    &port.to_string(),
                    "--state",
                    ":memory:",
                ])
                .args(["--delay-ms", "200", "--webhook-url", webhook])
                .args(["--webhook-secret", WEBHOOK_SECRET])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        );
        let base = format!("http://127.0.0.1:{port}");
        listening(&base).await;
        StandaloneSandbox {
            _process: process,
            base,
        }
    }
}

/// Three instances of the service on one fresh PostgreSQL database, with Stripe played by a
/// standalone sandbox (its webhooks to the first instance) and `envs` besides.
pub struct PostgresCluster {
    pub sandbox: StandaloneSandbox,
    pub servers: Vec<Server>,
    pub db: String,
    pub http: reqwest::Client,
}

impl PostgresCluster {
    pub async fn start(envs: &[(&str, &str)]) -> PostgresCluster {
        let db = fresh_postgres_database(&postgres_peer().await).await;
        let port = free_port();
        let stripe = format!("http://127.0.0.1:{port}");
        let mut servers = Vec::new();
        for _ in 0..3 {
            let mut all = vec![
                ("DATABASE_MAX_CONNECTIONS", "5"),
                ("RECONCILE_INTERVAL_SECS", "0"),
            ];
            all.extend_from_slice(envs);
            servers.push(Server::keyed(&db, &stripe, &all).await);
        }
        let webhook = format!("{}/stripe_webhook", servers[0].address);
        let sandbox = StandaloneSandbox::start(port, &webhook).await;
        PostgresCluster {
            sandbox,
            servers,
            db,
            http: reqwest::Client::new(),
        }
    }

    /// A call to instance `n`.
    pub async fn call(&self, n: usize, path: &str, data: Value) -> Answer {
        call(&self.http, &self.servers[n].address, path, data).await
    }

    /// The ledger the instances share.
    pub async fn ledger(&self) -> tmt_payments::ledger::Ledger {
        open_ledger(&self.db).await
    }

    /// An organiser onboarded in full (through instance 0), once the ledger knows it can take
    /// payments; its account.
    pub async fn ready_organizer(&self, organizer: &str) -> String {
        let (status, _, body) = self
            .call(0, ONBOARD, onboarding(organizer, json!({})))
            .await;
        assert_eq!(status, 200, "{body}");
        let account = body["data"]["accountId"].as_str().unwrap().to_string();
        let path = format!("/_sandbox/accounts/{account}/onboard");
        let (status, _, body) = self
            .stripe(
                reqwest::Method::POST,
                &path,
                &[("outcome", "complete")],
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let ledger = self.ledger().await;
        eventually(&format!("{organizer} is ready"), PATIENCE, || async {
            let row = ledger.organizer(organizer).await.unwrap().unwrap();
            row.ready().then_some(())
        })
        .await;
        account
    }

    /// Waits until the ledger says `status` for `pi`.
    pub async fn reaches(&self, pi: &str, status: &str) {
        reaches(&self.ledger().await, pi, status).await;
    }

    /// A payment of `amount` EUR for `organizer`, created through instance `n` and paid with
    /// `payment_method`; its id.
    pub async fn paid(
        &self,
        n: usize,
        organizer: &str,
        amount: &str,
        payment_method: &str,
    ) -> String {
        let data = json!({"amount": amount, "currency": "eur", "organizerId": organizer});
        let (status, _, created) = self.call(n, CREATE, data).await;
        assert_eq!(status, 200, "{created}");
        let pi = created["data"]["paymentIntentId"]
            .as_str()
            .unwrap()
            .to_string();
        let (status, _, body) = self.pay(&pi, payment_method, None).await;
        assert_eq!(status, 200, "{body}");
        pi
    }
}

/// Every event Stripe at `base` lists (for `account`, or the platform's), oldest first.
pub async fn listed_events(
    http: &reqwest::Client,
    base: &str,
    account: Option<&str>,
) -> Vec<Value> {
    let mut events = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut query = vec![("limit", "100".to_string())];
        if let Some(after) = &after {
            query.push(("starting_after", after.clone()));
        }
        let form: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, _, page) = stripe_call(
            http,
            base,
            reqwest::Method::GET,
            "/v1/events",
            &form,
            account,
        )
        .await;
        assert_eq!(status, 200, "{page}");
        let data = page["data"].as_array().unwrap();
        events.extend(data.iter().cloned());
        match (page["has_more"].as_bool(), data.last()) {
            (Some(true), Some(last)) => after = last["id"].as_str().map(str::to_string),
            _ => break,
        }
    }
    events.reverse();
    events
}

/// Delivers `copies` copies of each of `events`, shuffled, concurrently, spread over the
/// services at `addresses`, signed with the tests' secret; each must be answered 200.
pub async fn deliver_shuffled(addresses: &[String], events: &[Value], copies: usize) {
    use rand::seq::SliceRandom;
    let mut deliveries: Vec<(usize, String)> = Vec::new();
    for (n, e) in events.iter().enumerate() {
        for copy in 0..copies {
            deliveries.push(((n + copy) % addresses.len(), e.to_string()));
        }
    }
    deliveries.shuffle(&mut rand::thread_rng());
    let http = reqwest::Client::new();
    let sends = deliveries.into_iter().map(|(to, body)| {
        let (http, url) = (http.clone(), format!("{}/stripe_webhook", addresses[to]));
        async move {
            let header =
                tmt_payments::stripe::signature::sign(body.as_bytes(), WEBHOOK_SECRET, now());
            let r = http
                .post(url)
                .header("Stripe-Signature", header)
                .body(body)
                .send();
            let status = r.await.unwrap().status().as_u16();
            assert_eq!(status, 200);
        }
    });
    futures_util::future::join_all(sends).await;
}
