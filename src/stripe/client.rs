//! One pooled HTTPS client for Stripe's API, with the retry rules of Stripe's official libraries.

use std::time::Duration;

use rand::Rng;
use reqwest::{header, Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::fmt;
use tokio::time::Instant;

use super::budget::{Budget, BudgetSettings};

use super::form::Form;
use super::types::{
    ErrorCode, ErrorType, EventType, HasId, List, PaymentIntent, PaymentIntentId, Refund,
};

/// Stripe's own API, where calls go unless `STRIPE_API_BASE` names another.
pub const DEFAULT_API_BASE: &str = "https://api.stripe.com";

/// The Stripe API version this service is written against, sent as `Stripe-Version`.
pub const DEFAULT_API_VERSION: &str = "2025-03-31.basil";

/// The key the service calls its embedded sandbox with (docs/sandbox.md): the same on every
/// start, because the sandbox keeps idempotency keys per API key across restarts, and the same
/// for the commands that use a running service's sandbox.
pub const SANDBOX_SECRET_KEY: &str = "sk_test_tmt_payments_sandbox";

#[derive(Clone)]
pub struct ClientSettings {
    /// `https://api.stripe.com`, or an emulator's base (its path prefix is kept).
    pub api_base: String,
    pub secret_key: SecretString,
    pub api_version: String,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Budget for one call, retries and their waits included.
    pub timeout: Duration,
    /// First retry waits about this long; each later one twice as long, up to 5 s.
    pub initial_retry_delay: Duration,
    /// The instance's budget of calls (`STRIPE_MAX_RPS`, `STRIPE_QUEUE_TIMEOUT_SECS`).
    pub budget: BudgetSettings,
}

/// Why no answer came back from Stripe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// No connection could be made: the request never left this machine.
    Connect,
    /// The call's time budget ran out.
    Timeout,
    /// A request was (or may have been) sent, and no answer came back.
    NoAnswer,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Connect => "connection failed",
            Transport::Timeout => "timeout",
            Transport::NoAnswer => "no answer",
        })
    }
}

/// What Stripe said when it answered a call with an error: the HTTP status, its error object
/// (`{"error": {"type", "code", "decline_code", "message"}}`, each field as it was sent) and the
/// request's id.
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
#[error("Stripe answered HTTP {status}: {}", message.as_deref().unwrap_or("(no message)"))]
pub struct ApiRefusal {
    pub status: u16,
    pub error_type: Option<ErrorType>,
    pub code: Option<ErrorCode>,
    pub decline_code: Option<String>,
    /// Stripe's own message, when its error envelope carried one.
    pub message: Option<String>,
    pub request_id: Option<String>,
}

/// A failed call: Stripe answered with an error, answered with something unreadable, or did
/// not answer. What each means for the payment functions is decided in `payments::Error`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StripeError {
    #[error(transparent)]
    Api(Box<ApiRefusal>),
    /// A success status whose body is not what was asked for.
    #[error("Stripe answered HTTP {status} with a body that is not the expected object")]
    Unreadable {
        status: u16,
        request_id: Option<String>,
    },
    #[error("Stripe could not be reached: {0}")]
    Unreachable(Transport),
    /// The instance's Stripe budget had no turn for the call in time, or Stripe kept answering
    /// 429 until the call's time ran out. A 429 means Stripe did nothing with the request.
    #[error("Stripe call budget exhausted; retry in {} s", retry_after.as_secs())]
    Busy {
        retry_after: Duration,
        /// An earlier attempt of the same call got no answer, so it may have been carried out.
        maybe_reached: bool,
    },
}

impl StripeError {
    /// True when no request could have reached Stripe (no attempt ever connected), so nothing
    /// can have happened there.
    pub fn never_reached_stripe(&self) -> bool {
        matches!(
            self,
            StripeError::Unreachable(Transport::Connect)
                | StripeError::Busy {
                    maybe_reached: false,
                    ..
                }
        )
    }
}

const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);
/// The longest `Retry-After` of a 429 that is honoured as such (Stripe's libraries cap it too).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// What can be done to a PaymentIntent once it exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Cancel it (release an authorisation).
    Cancel,
    /// Capture an authorised amount.
    Capture,
}

#[derive(Clone)]
pub struct StripeClient {
    http: reqwest::Client,
    settings: ClientSettings,
    budget: Budget,
    /// The connected account every call acts for (`Stripe-Account`), if any.
    account: Option<String>,
    /// Background work: its calls take the budget's background turns.
    background: bool,
}

/// `Ok` when `id` may go into a URL's path or query: Stripe's `prefix_…` of letters, digits and
/// `_`; otherwise the call is refused before it is made.
pub(super) fn safe_id(id: &str) -> Result<(), StripeError> {
    let safe = !id.is_empty()
        && id.len() <= 255
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if safe {
        return Ok(());
    }
    Err(StripeError::Unreadable {
        status: 0,
        request_id: Some(format!("not an id: {id}")),
    })
}

impl StripeClient {
    pub fn new(settings: ClientSettings) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("tmt-payments/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()?;
        let budget = Budget::new(settings.budget);
        Ok(Self {
            http,
            settings,
            budget,
            account: None,
            background: false,
        })
    }

    /// The same client, its calls acting for the connected `account` (`Stripe-Account`), or
    /// for the platform itself when `None`; the budget stays shared.
    pub fn on_account(&self, account: Option<&str>) -> StripeClient {
        StripeClient {
            account: account.map(str::to_string),
            ..self.clone()
        }
    }

    /// The same client for background work (the settlement round): each call waits for a
    /// background turn in the shared budget, which gives way to buyers' calls.
    pub fn in_background(&self) -> StripeClient {
        StripeClient {
            background: true,
            ..self.clone()
        }
    }

    /// The connected account the calls act for, if any.
    pub fn account(&self) -> Option<&str> {
        self.account.as_deref()
    }

    /// The instance's budget of Stripe calls, shared by every clone of this client.
    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    /// `POST /v1/payment_intents`.
    pub async fn create_payment_intent(
        &self,
        form: &Form,
        idempotency_key: &str,
    ) -> Result<PaymentIntent, StripeError> {
        self.post(
            "create_payment_intent",
            "/v1/payment_intents",
            form,
            idempotency_key,
        )
        .await
    }

    /// `GET /v1/payment_intents/{id}`.
    pub async fn retrieve_payment_intent(
        &self,
        id: &PaymentIntentId,
    ) -> Result<PaymentIntent, StripeError> {
        let path = format!("/v1/payment_intents/{id}");
        self.get("retrieve_payment_intent", &path).await
    }

    /// `POST /v1/refunds`.
    pub async fn create_refund(
        &self,
        form: &Form,
        idempotency_key: &str,
    ) -> Result<Refund, StripeError> {
        self.post("create_refund", "/v1/refunds", form, idempotency_key)
            .await
    }

    /// `POST /v1/payment_intents/{id}/cancel` or `.../capture`.
    pub async fn act_on_payment_intent(
        &self,
        id: &PaymentIntentId,
        action: Action,
        form: &Form,
        idempotency_key: &str,
    ) -> Result<PaymentIntent, StripeError> {
        let (operation, verb) = match action {
            Action::Cancel => ("cancel_payment_intent", "cancel"),
            Action::Capture => ("capture_payment_intent", "capture"),
        };
        let path = format!("/v1/payment_intents/{id}/{verb}");
        self.post(operation, &path, form, idempotency_key).await
    }

    /// `GET /v1/events`: one page of events created at or after `since` (Unix seconds), of
    /// `types`, newest first, after `starting_after` when given.
    pub async fn list_events(
        &self,
        since: i64,
        types: &[EventType],
        starting_after: Option<&str>,
    ) -> Result<List<Value>, StripeError> {
        let types: Vec<_> = types.iter().map(|t| ("types[]", t.as_str())).collect();
        self.page(
            "list_events",
            "/v1/events",
            Some(since),
            &types,
            starting_after,
        )
        .await
    }

    /// `GET /v1/payment_intents`: one page of PaymentIntents created at or after `since`.
    pub async fn list_payment_intents(
        &self,
        since: i64,
        starting_after: Option<&str>,
    ) -> Result<List<Value>, StripeError> {
        self.page(
            "list_payment_intents",
            "/v1/payment_intents",
            Some(since),
            &[],
            starting_after,
        )
        .await
    }

    /// `GET /v1/charges?payment_intent={id}`: the PaymentIntent's charges, newest first, as
    /// Stripe sent them.
    pub async fn list_charges(&self, id: &PaymentIntentId) -> Result<Vec<Value>, StripeError> {
        let path = format!("/v1/charges?payment_intent={id}&limit=100");
        let list: List<Value> = self.get("list_charges", &path).await?;
        Ok(list.data)
    }

    /// `GET /v1/refunds?payment_intent={id}`: the PaymentIntent's refunds (the 100 newest:
    /// more than any payment has), those that can be read.
    pub async fn list_refunds(&self, id: &PaymentIntentId) -> Result<Vec<Refund>, StripeError> {
        let path = format!("/v1/refunds?payment_intent={id}&limit=100");
        let list: List<Value> = self.get("list_refunds", &path).await?;
        Ok(list.data.iter().filter_map(Refund::from_value).collect())
    }

    /// A GET of `path`, which carries any query.
    pub(super) async fn get<T: DeserializeOwned + Readable>(
        &self,
        operation: &'static str,
        path: &str,
    ) -> Result<T, StripeError> {
        self.call(operation, Method::GET, path, None).await
    }

    /// A POST of `form`, every attempt with the same idempotency key.
    pub(super) async fn post<T: DeserializeOwned + Readable>(
        &self,
        operation: &'static str,
        path: &str,
        form: &Form,
        idempotency_key: &str,
    ) -> Result<T, StripeError> {
        let body = Some((form, idempotency_key));
        self.call(operation, Method::POST, path, body).await
    }

    /// One page of a list endpoint, newest first: the objects created at or after `since`
    /// (Unix seconds, when given) that match `filters`, after `starting_after` when given.
    pub(super) async fn page(
        &self,
        operation: &'static str,
        path: &str,
        since: Option<i64>,
        filters: &[(&str, &str)],
        starting_after: Option<&str>,
    ) -> Result<List<Value>, StripeError> {
        let mut query = Form::new();
        query.push("limit", "100");
        if let Some(since) = since {
            query.push("created[gte]", since.to_string());
        }
        for (key, value) in filters {
            query.push(*key, *value);
        }
        if let Some(after) = starting_after {
            query.push("starting_after", after);
        }
        self.get(operation, &format!("{path}?{}", query.encode()))
            .await
    }

    /// One logical call: the first attempt plus retries, every attempt of a POST carrying the
    /// same idempotency key, and every attempt (retries included) taking its turn in the budget.
    ///
    /// Time: the first turn may take up to the queue timeout (`STRIPE_QUEUE_TIMEOUT_SECS`);
    /// the call's own budget (`STRIPE_TIMEOUT_SECS`) starts with that turn and covers the
    /// attempts, the waits between them and the turns of the retries. A 429 is retried for as
    /// long as that budget allows, without using up `max_retries`: Stripe did nothing with the
    /// request, and giving up would turn Stripe's back-pressure into a failed purchase.
    async fn call<T: DeserializeOwned + Readable>(
        &self,
        operation: &'static str,
        method: Method,
        path: &str,
        body: Option<(&Form, &str)>,
    ) -> Result<T, StripeError> {
        let url = format!("{}{}", self.settings.api_base.trim_end_matches('/'), path);
        let encoded = body.map(|(form, _)| form.encode());
        self.admit(
            operation,
            Instant::now() + self.budget.queue_timeout(),
            false,
        )
        .await?;
        let started = Instant::now();
        let deadline = started + self.settings.timeout;
        let mut retries = 0u32;
        // Whether any attempt may have reached Stripe (anything but a refused connection or a
        // 429, which Stripe answers without doing anything).
        let mut maybe_reached = false;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(StripeError::Unreachable(Transport::Timeout));
            }
            let mut request = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(self.settings.secret_key.expose_secret())
                .header("Stripe-Version", &self.settings.api_version)
                .timeout(remaining);
            if let Some(account) = &self.account {
                request = request.header("Stripe-Account", account);
            }
            if let (Some(encoded), Some((_, key))) = (&encoded, body) {
                request = request
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .header("Idempotency-Key", key)
                    .body(encoded.clone());
            }
            let attempt_started = Instant::now();
            let outcome = attempt(request).await;
            let label = match &outcome {
                Ok(_) => "ok",
                Err(Failure::Answer { .. }) => "api_error",
                Err(Failure::Transport(_)) => "unreachable",
            };
            metrics::counter!("tmt_stripe_requests_total", "operation" => operation, "outcome" => label)
                .increment(1);
            metrics::histogram!("tmt_stripe_request_duration_seconds", "operation" => operation)
                .record(attempt_started.elapsed().as_secs_f64());
            let rate_limited = matches!(&outcome, Err(Failure::Answer { status, .. })
                if *status == StatusCode::TOO_MANY_REQUESTS);
            if rate_limited {
                self.budget.note_rate_limited();
            }
            maybe_reached |=
                !rate_limited && !matches!(&outcome, Err(Failure::Transport(Transport::Connect)));
            let retry_wanted = match &outcome {
                Ok(_) => false,
                Err(Failure::Transport(_)) => true,
                Err(Failure::Answer {
                    status,
                    should_retry,
                    ..
                }) => match should_retry {
                    Some(flag) => *flag,
                    None => {
                        *status == StatusCode::CONFLICT
                            || *status == StatusCode::TOO_MANY_REQUESTS
                            || status.is_server_error()
                    }
                },
            };
            let elapsed_ms = started.elapsed().as_millis() as u64;
            match &outcome {
                Ok((status, request_id, _)) => tracing::info!(
                    operation,
                    stripe_account = self.account.as_deref(),
                    status = status.as_u16(),
                    stripe_request_id = request_id.as_deref(),
                    retries,
                    elapsed_ms,
                    "stripe call"
                ),
                Err(Failure::Answer {
                    status, request_id, ..
                }) => tracing::warn!(
                    operation,
                    status = status.as_u16(),
                    stripe_request_id = request_id.as_deref(),
                    retries,
                    elapsed_ms,
                    "stripe call failed"
                ),
                Err(Failure::Transport(reason)) => tracing::warn!(
                    operation,
                    retries,
                    elapsed_ms,
                    reason = %reason,
                    "stripe unreachable"
                ),
            }
            if retry_wanted && (rate_limited || retries < self.settings.max_retries) {
                retries += 1;
                metrics::counter!("tmt_stripe_retries_total", "operation" => operation)
                    .increment(1);
                let mut wait = self.retry_delay(retries);
                if let Err(Failure::Answer {
                    retry_after: Some(asked),
                    ..
                }) = &outcome
                {
                    wait = wait.max((*asked).min(MAX_RETRY_AFTER));
                }
                if Instant::now() + wait < deadline {
                    tokio::time::sleep(wait).await;
                    match self.admit(operation, deadline, maybe_reached).await {
                        Ok(()) => continue,
                        Err(busy) if rate_limited => return Err(busy),
                        // No turn in time: the call ends with what the last attempt got.
                        Err(_) => {}
                    }
                } else if rate_limited {
                    return Err(StripeError::Busy {
                        retry_after: Duration::from_secs(wait.as_secs_f64().ceil().max(1.0) as u64),
                        maybe_reached,
                    });
                }
            }
            return match outcome {
                Ok((status, request_id, bytes)) => serde_json::from_slice::<T>(&bytes)
                    .ok()
                    .filter(Readable::is_usable)
                    .ok_or(StripeError::Unreadable {
                        status: status.as_u16(),
                        request_id,
                    }),
                Err(Failure::Transport(Transport::Connect)) if maybe_reached => {
                    Err(StripeError::Unreachable(Transport::NoAnswer))
                }
                Err(Failure::Transport(reason)) => Err(StripeError::Unreachable(reason)),
                Err(Failure::Answer {
                    status,
                    request_id,
                    body,
                    ..
                }) => Err(api_error(status, request_id, &body)),
            };
        }
    }

    /// Waits for a turn in the budget, until `deadline` at the latest.
    async fn admit(
        &self,
        operation: &'static str,
        deadline: Instant,
        maybe_reached: bool,
    ) -> Result<(), StripeError> {
        if self.background {
            self.budget.admit_background().await;
            return Ok(());
        }
        self.budget.admit(deadline).await.map_err(|busy| {
            tracing::warn!(
                operation,
                retry_after_s = busy.retry_after.as_secs(),
                queue = self.budget.queue_length(),
                "no turn in the Stripe call budget"
            );
            StripeError::Busy {
                retry_after: busy.retry_after,
                maybe_reached,
            }
        })
    }

    fn retry_delay(&self, retry: u32) -> Duration {
        let base = self.settings.initial_retry_delay;
        let exp = base
            .saturating_mul(1u32 << (retry - 1).min(16))
            .min(MAX_RETRY_DELAY);
        // Stripe's libraries wait between half and all of the exponential delay, never less
        // than the initial delay.
        let jitter = 0.5 * (1.0 + rand::thread_rng().gen::<f64>());
        exp.mul_f64(jitter).max(base)
    }
}

/// What a successful answer must be to count as read.
pub trait Readable {
    fn is_usable(&self) -> bool {
        true
    }
}

/// An object, when it has an id.
impl<T: HasId> Readable for T {
    fn is_usable(&self) -> bool {
        !self.id().is_empty()
    }
}

impl<T> Readable for List<T> {}

enum Failure {
    Transport(Transport),
    Answer {
        status: StatusCode,
        request_id: Option<String>,
        should_retry: Option<bool>,
        /// A 429's `Retry-After`, when it carried whole seconds.
        retry_after: Option<Duration>,
        body: bytes::Bytes,
    },
}

async fn attempt(
    request: reqwest::RequestBuilder,
) -> Result<(StatusCode, Option<String>, bytes::Bytes), Failure> {
    let response = request.send().await.map_err(transport)?;
    let status = response.status();
    let headers = response.headers();
    let request_id = headers
        .get("request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let should_retry = headers
        .get("stripe-should-retry")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| match v {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        });
    let retry_after = headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = response.bytes().await.map_err(transport)?;
    if status.is_success() {
        Ok((status, request_id, body))
    } else {
        Err(Failure::Answer {
            status,
            request_id,
            should_retry,
            retry_after,
            body,
        })
    }
}

fn transport(err: reqwest::Error) -> Failure {
    Failure::Transport(if err.is_timeout() {
        Transport::Timeout
    } else if err.is_connect() {
        Transport::Connect
    } else {
        Transport::NoAnswer
    })
}

/// Stripe's error envelope: `{"error": {"type", "code", "decline_code", "message"}}`.
fn api_error(status: StatusCode, request_id: Option<String>, body: &[u8]) -> StripeError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let error = parsed.as_ref().and_then(|v| v.get("error"));
    let field = |name: &str| {
        error
            .and_then(|e| e.get(name))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    StripeError::Api(Box::new(ApiRefusal {
        status: status.as_u16(),
        error_type: field("type").map(|t| ErrorType::parse(&t)),
        code: field("code").map(|c| ErrorCode::parse(&c)),
        decline_code: field("decline_code"),
        message: field("message"),
        request_id,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(initial_ms: u64) -> StripeClient {
        StripeClient::new(ClientSettings {
            api_base: "http://127.0.0.1:9".into(),
            secret_key: SecretString::from("sk_test_x".to_string()),
            api_version: DEFAULT_API_VERSION.into(),
            max_retries: 2,
            timeout: Duration::from_secs(30),
            initial_retry_delay: Duration::from_millis(initial_ms),
            budget: BudgetSettings {
                max_rps: None,
                queue_timeout: Duration::from_secs(10),
            },
        })
        .unwrap()
    }

    #[test]
    fn backoff_follows_stripe_libraries() {
        let c = client(500);
        for _ in 0..200 {
            let first = c.retry_delay(1);
            assert!(first >= Duration::from_millis(500) && first <= Duration::from_millis(500));
            let second = c.retry_delay(2);
            assert!(second >= Duration::from_millis(500) && second <= Duration::from_millis(1000));
            let tenth = c.retry_delay(10);
            assert!(tenth >= Duration::from_millis(2500) && tenth <= MAX_RETRY_DELAY);
        }
    }

    #[test]
    fn error_envelope_parsed() {
        let body = br#"{"error":{"type":"card_error","code":"card_declined","decline_code":"generic_decline","message":"Your card was declined."}}"#;
        let refusal = |e: StripeError| match e {
            StripeError::Api(refusal) => *refusal,
            other => panic!("{other:?}"),
        };
        let declined = api_error(StatusCode::PAYMENT_REQUIRED, Some("req_1".into()), body);
        assert_eq!(
            refusal(declined),
            ApiRefusal {
                status: 402,
                error_type: Some(ErrorType::CardError),
                code: Some(ErrorCode::CardDeclined),
                decline_code: Some("generic_decline".into()),
                message: Some("Your card was declined.".into()),
                request_id: Some("req_1".into()),
            }
        );
        // A code (or type) this build does not know is kept as Stripe sent it.
        let body = br#"{"error":{"type":"future_error","code":"some_new_code"}}"#;
        let newer = refusal(api_error(StatusCode::BAD_REQUEST, None, body));
        assert_eq!(newer.code, Some(ErrorCode::Other("some_new_code".into())));
        assert_eq!(newer.code.unwrap().as_str(), "some_new_code");
        assert_eq!(newer.error_type.unwrap().as_str(), "future_error");
        let html = refusal(api_error(StatusCode::BAD_GATEWAY, None, b"<html>"));
        assert_eq!((html.status, html.message, html.code), (502, None, None));
    }
}
