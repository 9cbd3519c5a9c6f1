//! The sandbox in this process (in memory, on port 0) or as the `stripe-sandbox` binary (for
//! restarts and for the SDK peers), a small Stripe API client, and waiting on conditions.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use stripe_sandbox::{Options, Sandbox, Storage, WebhookTarget};

pub const BIN: &str = env!("CARGO_BIN_EXE_stripe-sandbox");
pub const KEY: &str = "sk_test_sandbox_tests";

/// A string field's text, empty when it is not a string.
pub fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

pub async fn serve(sandbox: Sandbox) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, sandbox.router()).await });
    address
}

/// A sandbox in this process, in memory.
pub async fn api(webhook: Option<WebhookTarget>) -> Api {
    api_with_delay(webhook, Duration::from_millis(50)).await
}

/// A sandbox in this process, in memory, whose delayed transitions wait `delay`.
pub async fn api_with_delay(webhook: Option<WebhookTarget>, delay: Duration) -> Api {
    let sandbox = Sandbox::open(Options {
        storage: Storage::Memory,
        webhook,
    })
    .await
    .unwrap();
    sandbox.set_delay(delay);
    Api::new(serve(sandbox).await)
}

pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
    pub key: String,
    /// Sent as `Stripe-Account`: the connected account the calls act for.
    pub account: Option<String>,
}

impl Api {
    pub fn new(base: String) -> Api {
        Api {
            base,
            http: reqwest::Client::new(),
            key: KEY.into(),
            account: None,
        }
    }

    /// The same sandbox, acting for the connected account `account` (`Stripe-Account`).
    pub fn on(&self, account: &str) -> Api {
        Api {
            account: Some(account.to_string()),
            ..Api::new(self.base.clone())
        }
    }

    /// A client of the same sandbox with another key (a publishable one, as Stripe.js has).
    pub fn with_key(&self, key: &str) -> Api {
        Api {
            key: key.into(),
            ..Api::new(self.base.clone())
        }
    }

    pub async fn call(
        &self,
        m: reqwest::Method,
        path: &str,
        form: &str,
        idem: Option<&str>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut r = self
            .http
            .request(m, format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.to_string());
        if let Some(k) = idem {
            r = r.header("Idempotency-Key", k);
        }
        if let Some(account) = &self.account {
            r = r.header("Stripe-Account", account);
        }
        read(r.send().await.unwrap()).await
    }

    pub async fn post(&self, path: &str, form: &str) -> (u16, Value) {
        let (s, _, b) = self.call(reqwest::Method::POST, path, form, None).await;
        (s, b)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let (s, _, b) = self.call(reqwest::Method::GET, path, "", None).await;
        (s, b)
    }

    /// A `POST` that must answer 200; returns the body.
    pub async fn post_ok(&self, path: &str, form: &str) -> Value {
        let (status, body) = self.post(path, form).await;
        assert_eq!(status, 200, "{path} {form}: {body}");
        body
    }

    /// A `GET` that must answer 200; returns the body.
    pub async fn get_ok(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        body
    }

    /// A `POST` with an `Idempotency-Key`.
    pub async fn post_keyed(
        &self,
        path: &str,
        form: &str,
        key: &str,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        self.call(reqwest::Method::POST, path, form, Some(key))
            .await
    }

    /// Sends `form`, then `again` (the same parameters), with one `Idempotency-Key`: the second
    /// answer must replay the first, status, body and all. Returns the first.
    pub async fn replayed(&self, path: &str, form: &str, again: &str, key: &str) -> (u16, Value) {
        let (status, _, first) = self.post_keyed(path, form, key).await;
        let (replay_status, headers, replay) = self.post_keyed(path, again, key).await;
        assert_eq!((replay_status, &replay), (status, &first), "{key}");
        assert_eq!(headers["idempotent-replayed"], "true", "{key}");
        (status, first)
    }

    /// `POST /v1/payment_intents/{id}/confirm`.
    pub async fn confirm(&self, id: &str, form: &str) -> (u16, Value) {
        self.intent_action(id, "confirm", form).await
    }

    /// `POST /v1/disputes/{id}`: evidence, metadata, `submit`.
    pub async fn update_dispute(&self, id: &str, form: &str) -> (u16, Value) {
        self.post(&format!("/v1/disputes/{id}"), form).await
    }

    /// Submits Stripe's winning test evidence for `dispute` and waits until it is won and its
    /// funds reinstated.
    pub async fn win_dispute(&self, dispute: &Value) {
        let id = s(&dispute["id"]);
        let (status, body) = self
            .update_dispute(id, "evidence[uncategorized_text]=winning_evidence")
            .await;
        assert_eq!(status, 200, "{body}");
        self.wait_event("charge.dispute.funds_reinstated", id).await;
    }

    /// `POST /v1/payment_intents/{id}/{action}`: `confirm`, `capture` or `cancel`.
    pub async fn intent_action(&self, id: &str, action: &str, form: &str) -> (u16, Value) {
        self.post(&format!("/v1/payment_intents/{id}/{action}"), form)
            .await
    }

    /// A refund of the PaymentIntent `id`; `extra` (`&amount=…`) follows `payment_intent=…`.
    pub async fn refund(&self, id: &str, extra: &str) -> (u16, Value) {
        self.post("/v1/refunds", &format!("payment_intent={id}{extra}"))
            .await
    }

    /// The PaymentIntent's `latest_charge`, retrieved.
    pub async fn charge_of(&self, pi: &Value) -> Value {
        self.get_ok(&format!("/v1/charges/{}", s(&pi["latest_charge"])))
            .await
    }

    /// The PaymentIntent's (or charge's) `payment_method`, retrieved.
    pub async fn payment_method_of(&self, object: &Value) -> Value {
        self.get_ok(&format!(
            "/v1/payment_methods/{}",
            s(&object["payment_method"])
        ))
        .await
    }

    /// Waits until `/v1/disputes?{filter}` lists a dispute; returns the newest.
    pub async fn dispute_of(&self, filter: &str) -> Value {
        eventually(&format!("a dispute of {filter}"), || async {
            let (_, list) = self.get(&format!("/v1/disputes?{filter}")).await;
            list["data"].as_array()?.first().cloned()
        })
        .await
    }

    /// Creates a PaymentIntent and returns it, asserting it was created.
    pub async fn create(&self, form: &str) -> Value {
        self.post_ok("/v1/payment_intents", form).await
    }

    /// A PaymentIntent of `amount` USD paid with `payment_method`, asserting the answer.
    pub async fn paid(&self, amount: i64, payment_method: &str, extra: &str) -> Value {
        let pi = self
            .create(&format!(
                "amount={amount}&currency=usd&payment_method={payment_method}&confirm=true{extra}"
            ))
            .await;
        assert!(
            matches!(
                pi["status"].as_str(),
                Some("succeeded" | "requires_capture" | "processing")
            ),
            "{pi}"
        );
        pi
    }

    /// A PaymentIntent of `amount` USD paid by Stripe's test bank account: `processing` until
    /// the sandbox's timer makes it succeed.
    pub async fn bank_debit(&self, amount: i64) -> Value {
        self.paid(
            amount,
            "pm_usBankAccount_success",
            "&payment_method_types[]=us_bank_account",
        )
        .await
    }

    /// An OXXO payment of `amount` MXN by a buyer with this e-mail, created and confirmed;
    /// `extra` (`&payment_method_options[oxxo][expires_after_days]=1`) is added to the form.
    pub async fn oxxo(&self, amount: i64, email: &str, extra: &str) -> Value {
        self.create(&format!(
            "amount={amount}&currency=mxn&payment_method_types[]=oxxo&confirm=true\
             &payment_method_data[type]=oxxo&payment_method_data[billing_details][name]=Ana+López\
             &payment_method_data[billing_details][email]={email}{extra}"
        ))
        .await
    }

    /// A Customer with this e-mail and name.
    pub async fn customer(&self, email: &str) -> Value {
        self.post_ok("/v1/customers", &format!("email={email}&name=Ana+López"))
            .await
    }

    /// A payment of `amount` by bank transfer from `customer`: SPEI in mxn, a transfer to a
    /// Spanish IBAN in eur; created and confirmed.
    pub async fn transfer(&self, customer: &str, amount: i64, currency: &str) -> Value {
        self.transfer_with(customer, amount, currency, "").await
    }

    /// [`Api::transfer`] with `extra` added to the form (`&application_fee_amount=…`).
    pub async fn transfer_with(
        &self,
        customer: &str,
        amount: i64,
        currency: &str,
        extra: &str,
    ) -> Value {
        let kind = if currency == "mxn" {
            "mx_bank_transfer".to_string()
        } else {
            "eu_bank_transfer&payment_method_options[customer_balance][bank_transfer]\
             [eu_bank_transfer][country]=ES"
                .to_string()
        };
        self.create(&format!(
            "amount={amount}&currency={currency}&customer={customer}&confirm=true\
             &payment_method_types[]=customer_balance&payment_method_data[type]=customer_balance\
             &payment_method_options[customer_balance][funding_type]=bank_transfer\
             &payment_method_options[customer_balance][bank_transfer][type]={kind}{extra}"
        ))
        .await
    }

    /// Stripe's test helper: a transfer of `amount` arrives for `customer`; `extra`
    /// (`&reference=…`) is added. Returns the `funded` transaction.
    pub async fn fund(&self, customer: &str, amount: i64, currency: &str, extra: &str) -> Value {
        self.post_ok(
            &format!("/v1/test_helpers/customers/{customer}/fund_cash_balance"),
            &format!("amount={amount}&currency={currency}{extra}"),
        )
        .await
    }

    /// What `customer` has in the cash balance in `currency`.
    pub async fn cash(&self, customer: &str, currency: &str) -> i64 {
        let balance = self
            .get_ok(&format!("/v1/customers/{customer}/cash_balance"))
            .await;
        balance["available"][currency].as_i64().unwrap_or(0)
    }

    /// A SEPA Direct Debit of `amount` EUR from `iban`, created and confirmed with an online
    /// mandate; the answer as it came.
    pub async fn sepa(&self, iban: &str, amount: i64, extra: &str) -> (u16, Value) {
        self.post(
            "/v1/payment_intents",
            &format!(
                "amount={amount}&currency=eur&payment_method_types[]=sepa_debit&confirm=true\
                 &payment_method_data[type]=sepa_debit&payment_method_data[sepa_debit][iban]={iban}\
                 &payment_method_data[billing_details][name]=Jenny+Rosen\
                 &payment_method_data[billing_details][email]=jenny@example.com\
                 &mandate_data[customer_acceptance][type]=online\
                 &mandate_data[customer_acceptance][online][ip_address]=127.0.0.1\
                 &mandate_data[customer_acceptance][online][user_agent]=tests{extra}"
            ),
        )
        .await
    }

    /// A new Express account of `country` with both capabilities, onboarded in full through
    /// the control; its id.
    pub async fn onboarded_in(&self, country: &str) -> String {
        let account = self
            .post_ok(
                "/v1/accounts",
                &format!(
                    "type=express&country={country}&capabilities[card_payments][requested]=true\
                     &capabilities[transfers][requested]=true"
                ),
            )
            .await;
        let id = s(&account["id"]).to_string();
        self.post_ok(
            &format!("/_sandbox/accounts/{id}/onboard"),
            "outcome=complete",
        )
        .await;
        id
    }

    /// The types of the events about the object `id` (as `data.object.id`), oldest first.
    pub async fn event_types(&self, id: &str) -> Vec<String> {
        let (status, events) = self.get("/v1/events?limit=100").await;
        assert_eq!(status, 200, "{events}");
        let mut types: Vec<String> = events["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["data"]["object"]["id"] == id)
            .map(|e| e["type"].as_str().unwrap().to_string())
            .collect();
        types.reverse();
        types
    }

    /// Waits until an event of `event_type` about the object `id` exists; returns its object.
    pub async fn wait_event(&self, event_type: &str, id: &str) -> Value {
        eventually(&format!("{event_type} of {id}"), || async {
            let (_, events) = self
                .get(&format!("/v1/events?type={event_type}&limit=100"))
                .await;
            events["data"]
                .as_array()?
                .iter()
                .find(|e| e["data"]["object"]["id"] == id)
                .map(|e| e["data"]["object"].clone())
        })
        .await
    }
}

/// A page of the sandbox's at `url`, fetched as a browser would (no key, no `Stripe-Account`):
/// its status and text.
pub async fn page(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// `POST /_sandbox/payment_intents/{id}/{what}` (`pay_voucher`, `expire_voucher`) as `a`.
pub async fn control(a: &Api, pi: &Value, what: &str) -> (u16, Value) {
    a.post(
        &format!("/_sandbox/payment_intents/{}/{what}", s(&pi["id"])),
        "",
    )
    .await
}

/// One keep-alive HTTP/1.1 connection to a sandbox, spoken by hand, so that a test sees whether
/// the sandbox answered on it and kept it open (a client library would quietly reconnect).
pub struct Connection {
    stream: tokio::io::BufReader<tokio::net::TcpStream>,
    host: String,
}

impl Connection {
    pub async fn open(base: &str) -> Connection {
        let host = base.trim_start_matches("http://").to_string();
        let stream = tokio::net::TcpStream::connect(&host).await.unwrap();
        Connection {
            stream: tokio::io::BufReader::new(stream),
            host,
        }
    }

    /// Sends `form` with Basic auth for `key`; the answer's status and JSON body, or `None`
    /// when the sandbox closed the connection instead of answering.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        key: &str,
        form: &str,
    ) -> Option<(u16, Value)> {
        use base64::Engine;
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{key}:"));
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Basic {auth}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            self.host,
            form.len()
        );
        self.stream
            .get_mut()
            .write_all(request.as_bytes())
            .await
            .ok()?;
        let mut status_line = String::new();
        if self.stream.read_line(&mut status_line).await.ok()? == 0 {
            return None;
        }
        let status = status_line.split(' ').nth(1)?.parse().ok()?;
        let mut length = 0;
        loop {
            let mut line = String::new();
            if self.stream.read_line(&mut line).await.ok()? == 0 {
                return None;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().ok()?;
                }
            }
        }
        let mut body = vec![0; length];
        self.stream.read_exact(&mut body).await.ok()?;
        Some((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
    }
}

/// An HTTP client that shows redirects instead of following them, as a test of a page needs.
pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub async fn read(response: reqwest::Response) -> (u16, reqwest::header::HeaderMap, Value) {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, body)
}

/// An answer's status and Stripe error code (empty when it has none).
pub fn code_of((status, body): &(u16, Value)) -> (u16, &str) {
    (*status, s(&body["error"]["code"]))
}

/// The `type` of each event of a list, in its order.
pub fn types(list: &Value) -> Vec<&str> {
    list["data"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect()
}

/// A charge's `amount_refunded` and `refunded`.
pub fn assert_refunded(charge: &Value, amount: i64, refunded: bool) {
    assert_eq!(
        (
            charge["amount_refunded"].as_i64(),
            charge["refunded"].as_bool()
        ),
        (Some(amount), Some(refunded)),
        "{charge}"
    );
}

pub fn ids(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_string())
        .collect()
}

/// Polls `check` until it gives a value, failing after 20 seconds with `what`.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A state file for the sandbox binary, in a directory removed when the guard is dropped.
pub fn state_file() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    (dir, state)
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The `stripe-sandbox` binary running on a free port; killed (SIGKILL) when dropped.
pub struct Process {
    child: Child,
    pub base: String,
}

impl Process {
    pub fn start(state: &Path, webhook: Option<(&str, &str)>) -> Process {
        Process::start_with(state, webhook, &["--delay-ms", "50"])
    }

    pub fn start_with(state: &Path, webhook: Option<(&str, &str)>, extra: &[&str]) -> Process {
        Process::start_env(state, webhook, extra, &[])
    }

    pub fn start_env(
        state: &Path,
        webhook: Option<(&str, &str)>,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Process {
        let port = free_port();
        let mut c = Command::new(BIN);
        c.args(["--port", &port.to_string(), "--state"])
            .arg(state)
            .args(extra)
            .envs(env.iter().copied())
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if let Some((url, secret)) = webhook {
            c.args(["--webhook-url", url, "--webhook-secret", secret]);
        }
        let child = c.spawn().unwrap();
        let address = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&address).is_err() {
            assert!(Instant::now() < deadline, "stripe-sandbox did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Process {
            child,
            base: format!("http://{address}"),
        }
    }

    /// A client of this sandbox with the tests' key.
    pub fn api(&self) -> Api {
        Api::new(self.base.clone())
    }

    pub fn port(&self) -> u16 {
        self.base.rsplit(':').next().unwrap().parse().unwrap()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The directory of the workspace (where `.venv` lives).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The Python with Stripe's SDK that `scripts/test.sh` installs (or `TMT_PEER_PYTHON`).
pub fn python_with_stripe() -> PathBuf {
    let python = std::env::var_os("TMT_PEER_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv/bin/python"));
    let ok = Command::new(&python)
        .args(["-c", "import stripe"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{} cannot import stripe: run scripts/test.sh, or python3 -m venv .venv && \
         .venv/bin/pip install -r tests/peers/requirements.txt",
        python.display()
    );
    python
}

/// The folder with Stripe's Node SDK installed (by `scripts/test.sh`, or `npm ci` there).
pub fn node_peer() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node");
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(node, "node is not installed");
    assert!(
        dir.join("node_modules/stripe/package.json").exists(),
        "Stripe's Node SDK is not installed: run scripts/test.sh, or npm ci in {}",
        dir.display()
    );
    dir
}

/// Runs a peer script to its end, printing what it printed; it must exit 0.
pub fn run_peer(mut command: Command, what: &str) {
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{what} failed:\n{stdout}");
    assert!(
        stdout.lines().any(|l| l.starts_with("ok ")),
        "{what} ran no check:\n{stdout}"
    );
}
