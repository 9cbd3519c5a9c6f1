//! `trigger <event type>`: makes a running sandbox produce an event by doing, through its API,
//! what would cause it at Stripe, like the Stripe CLI's `stripe trigger`.

use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use serde_json::Value;

/// The event types `trigger` knows how to cause.
pub const EVENTS: &[&str] = &[
    "payment_intent.created",
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.canceled",
    "payment_intent.requires_action",
    "charge.succeeded",
    "charge.failed",
    "charge.refunded",
    "refund.created",
    "refund.failed",
    "charge.dispute.created",
    "payment_intent.amount_capturable_updated",
    "charge.captured",
    "payment_intent.processing",
    "payment_intent.partially_funded",
    "cash_balance.funds_available",
    "account.updated",
    "payout.created",
    "payout.updated",
    "payout.paid",
    "payout.failed",
    "payout.reconciliation_completed",
];

/// How long to wait for an event that the sandbox produces some time after the request (a
/// refund failing, a dispute opening).
const LATER_EVENT_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct Trigger {
    pub event: String,
    /// Act on this PaymentIntent instead of creating one.
    pub payment_intent: Option<String>,
    /// The connected account: the one `account.updated` is about (a new Express account when
    /// not given), or the one a payment event happens on (`Stripe-Account`).
    pub account: Option<String>,
    /// The sandbox's API base, without `/v1`.
    pub api_base: String,
    pub api_key: String,
    pub amount: i64,
    pub currency: String,
    pub metadata: Vec<(String, String)>,
}

/// What a trigger did: the objects it created or changed, and the events they produced.
#[derive(Debug, Default)]
pub struct Report {
    /// (object, id, status)
    pub objects: Vec<(String, String, String)>,
    /// (id, type), oldest first
    pub events: Vec<(String, String)>,
}

impl Report {
    /// Records an object the trigger made or changed; returns its id.
    fn note(&mut self, object: &str, value: &Value) -> String {
        let text = |field: &str| value[field].as_str().unwrap_or_default().to_string();
        self.objects
            .push((object.to_string(), text("id"), text("status")));
        text("id")
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (object, id, status) in &self.objects {
            writeln!(f, "{object:<15} {id:<32} {status}")?;
        }
        for (id, event_type) in &self.events {
            writeln!(f, "{:<15} {id:<32} {event_type}", "event")?;
        }
        Ok(())
    }
}

struct Api {
    http: reqwest::Client,
    base: String,
    key: String,
    /// Sent as `Stripe-Account` when set.
    account: Option<String>,
    request_ids: Vec<String>,
}

impl Api {
    async fn call(
        &mut self,
        method: reqwest::Method,
        path: &str,
        form: &[(String, String)],
    ) -> anyhow::Result<(u16, Value)> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, &url).bearer_auth(&self.key);
        if let Some(account) = &self.account {
            request = request.header("Stripe-Account", account);
        }
        if !form.is_empty() {
            request = request.form(form);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach the sandbox at {url}"))?;
        let status = response.status().as_u16();
        if let Some(id) = response
            .headers()
            .get("request-id")
            .and_then(|v| v.to_str().ok())
        {
            self.request_ids.push(id.to_string());
        }
        let bytes = response
            .bytes()
            .await
            .with_context(|| format!("cannot read the answer of {url}"))?;
        let body: Value = serde_json::from_slice(&bytes)
            .with_context(|| format!("{url} did not answer with JSON: is it a Stripe sandbox?"))?;
        Ok((status, body))
    }

    /// The call must have answered `expected`; otherwise Stripe's error message says why.
    async fn expect(
        &mut self,
        expected: u16,
        method: reqwest::Method,
        path: &str,
        form: &[(String, String)],
    ) -> anyhow::Result<Value> {
        let (status, body) = self.call(method.clone(), path, form).await?;
        if status != expected {
            let message = body["error"]["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| body.to_string());
            bail!("{method} {path} answered {status}: {message}");
        }
        Ok(body)
    }

    async fn get(&mut self, path: &str) -> anyhow::Result<Value> {
        self.expect(200, reqwest::Method::GET, path, &[]).await
    }

    async fn post(&mut self, path: &str, form: &[(String, String)]) -> anyhow::Result<Value> {
        self.expect(200, reqwest::Method::POST, path, form).await
    }
}

fn pair(k: &str, v: &str) -> (String, String) {
    (k.to_string(), v.to_string())
}

/// `account.updated`: the platform updates the account's metadata (after creating an Express
/// account when none is given); the event is the account's.
async fn account_updated(api: &mut Api, mut report: Report) -> anyhow::Result<Report> {
    // The platform makes the change; the event is then listed on the account.
    let id = match api.account.take() {
        Some(id) => id,
        None => {
            let form = [
                pair("type", "express"),
                pair("capabilities[card_payments][requested]", "true"),
                pair("capabilities[transfers][requested]", "true"),
            ];
            let account = api.post("/v1/accounts", &form).await?;
            report.note("account", &account)
        }
    };
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos().to_string())
        .unwrap_or_default();
    let updated = api
        .post(
            &format!("/v1/accounts/{id}"),
            &[pair("metadata[sandbox_trigger]", &stamp)],
        )
        .await?;
    report.note("account", &updated);
    let request = api.request_ids.last().cloned().unwrap_or_default();
    api.account = Some(id);
    let listed = api.get("/v1/events?type=account.updated&limit=100").await?;
    report.events = listed["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["request"]["id"] == request.as_str())
        .map(|e| {
            (
                e["id"].as_str().unwrap_or_default().to_string(),
                "account.updated".to_string(),
            )
        })
        .collect();
    if report.events.is_empty() {
        bail!("the sandbox did not produce account.updated");
    }
    Ok(report)
}

pub async fn trigger(t: &Trigger) -> anyhow::Result<Report> {
    if !EVENTS.contains(&t.event.as_str()) {
        bail!(
            "cannot trigger '{}'; supported events: {}",
            t.event,
            EVENTS.join(", ")
        );
    }
    if t.event == "payment_intent.created" && t.payment_intent.is_some() {
        bail!("payment_intent.created makes a new PaymentIntent: --payment-intent does not apply");
    }
    let mut api = Api {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?,
        base: t.api_base.trim_end_matches('/').to_string(),
        key: t.api_key.clone(),
        account: t.account.clone(),
        request_ids: Vec::new(),
    };
    let mut report = Report::default();
    let event = t.event.as_str();
    if event == "account.updated" {
        if t.payment_intent.is_some() {
            bail!("account.updated is about an account: --payment-intent does not apply");
        }
        return account_updated(&mut api, report).await;
    }
    let ours = match event {
        "payment_intent.partially_funded" | "cash_balance.funds_available" => {
            transfer_flow(&mut api, t, &mut report).await?
        }
        _ if event.starts_with("payout.") => payout_flow(&mut api, t, &mut report).await?,
        _ => card_flow(&mut api, t, &mut report).await?,
    };
    // The events this run caused: those of its requests, and those the sandbox produced later
    // about its objects (a refund failing, a dispute opening).
    let later = matches!(event, "refund.failed" | "charge.dispute.created");
    let deadline = std::time::Instant::now() + LATER_EVENT_TIMEOUT;
    let events = loop {
        let requests = api.request_ids.clone();
        let listed = api.get("/v1/events?limit=100").await?;
        let about_ours = |e: &Value| {
            let object = &e["data"]["object"];
            ["id", "charge", "payment_intent"].iter().any(|field| {
                object[*field]
                    .as_str()
                    .is_some_and(|v| ours.iter().any(|o| o == v))
            })
        };
        let mut events: Vec<(String, String)> = listed["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| match e["request"]["id"].as_str() {
                Some(r) => requests.iter().any(|o| o == r),
                None => about_ours(e),
            })
            .map(|e| {
                (
                    e["id"].as_str().unwrap_or_default().to_string(),
                    e["type"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        events.reverse();
        let seen = events.iter().any(|(_, ty)| ty == event);
        if seen || !later || std::time::Instant::now() > deadline {
            break events;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    if !events.iter().any(|(_, ty)| ty == event) {
        return Err(anyhow!(
            "the sandbox did not produce {} (events seen: {:?})",
            t.event,
            events
        ));
    }
    report.events = events;
    Ok(report)
}

/// Pays (or declines, authorises, refunds…) with the test card whose behaviour produces the
/// event; returns the ids of the objects it made or changed.
async fn card_flow(api: &mut Api, t: &Trigger, report: &mut Report) -> anyhow::Result<Vec<String>> {
    let event = t.event.as_str();
    // The test payment method whose behaviour produces the event.
    let method = match event {
        "payment_intent.payment_failed" | "charge.failed" => "pm_card_visa_chargeDeclined",
        "payment_intent.requires_action" => "pm_card_authenticationRequired",
        "refund.failed" => "pm_card_refundFail",
        "charge.dispute.created" => "pm_card_createDispute",
        "payment_intent.processing" => "pm_usBankAccount_success",
        _ => "pm_card_visa",
    };
    let pi = match &t.payment_intent {
        Some(id) => api.get(&format!("/v1/payment_intents/{id}")).await?,
        None => {
            let mut form = vec![
                pair("amount", &t.amount.to_string()),
                pair("currency", &t.currency),
            ];
            match event {
                "payment_intent.amount_capturable_updated" | "charge.captured" => {
                    form.push(pair("capture_method", "manual"))
                }
                "payment_intent.processing" => {
                    form.push(pair("payment_method_types[]", "us_bank_account"))
                }
                _ => {}
            }
            for (k, v) in &t.metadata {
                form.push((format!("metadata[{k}]"), v.clone()));
            }
            let pi = api.post("/v1/payment_intents", &form).await?;
            report.note("payment_intent", &pi);
            pi
        }
    };
    let id = pi["id"].as_str().unwrap_or_default().to_string();
    let status = pi["status"].as_str().unwrap_or_default().to_string();
    let confirm = format!("/v1/payment_intents/{id}/confirm");
    let confirmable = matches!(
        status.as_str(),
        "requires_payment_method" | "requires_confirmation" | "requires_action"
    );
    let mut outcome = None;
    let mut ours: Vec<String> = vec![id.clone()];
    match event {
        "payment_intent.created" => {}
        "payment_intent.canceled" => {
            outcome = Some(
                api.post(&format!("/v1/payment_intents/{id}/cancel"), &[])
                    .await?,
            )
        }
        "payment_intent.payment_failed" | "charge.failed" => {
            let error = api
                .expect(
                    402,
                    reqwest::Method::POST,
                    &confirm,
                    &[pair("payment_method", method)],
                )
                .await?;
            outcome = Some(error["error"]["payment_intent"].clone());
        }
        _ => {
            // Pay first unless the given PaymentIntent already is where the event starts from.
            let paid_enough = match event {
                "charge.captured" => status == "requires_capture",
                "charge.refunded" | "refund.created" | "refund.failed" => status == "succeeded",
                _ => false,
            };
            let mut current = pi.clone();
            if !paid_enough {
                if !confirmable {
                    bail!(
                        "PaymentIntent {id} has status {status}: {event} cannot be triggered on it"
                    );
                }
                current = api
                    .post(&confirm, &[pair("payment_method", method)])
                    .await?;
            }
            match event {
                "charge.captured" => {
                    current = api
                        .post(&format!("/v1/payment_intents/{id}/capture"), &[])
                        .await?;
                }
                "charge.refunded" | "refund.created" | "refund.failed" => {
                    let refund = api
                        .post("/v1/refunds", &[pair("payment_intent", &id)])
                        .await?;
                    ours.push(report.note("refund", &refund));
                }
                _ => {}
            }
            outcome = Some(current);
        }
    }
    if let Some(pi) = &outcome {
        report.note("payment_intent", pi);
        if let Some(charge) = pi["latest_charge"].as_str() {
            let charge = api.get(&format!("/v1/charges/{charge}")).await?;
            ours.push(report.note("charge", &charge));
        }
    }
    Ok(ours)
}

/// A payout event: a card payment (on `--account` when given) so that there is money, then the
/// sandbox's payout control pays out the whole balance (and, for `payout.failed`, the payouts
/// fail). Returns the ids of the payouts.
async fn payout_flow(
    api: &mut Api,
    t: &Trigger,
    report: &mut Report,
) -> anyhow::Result<Vec<String>> {
    if t.payment_intent.is_some() {
        bail!(
            "{} pays out the balance: --payment-intent does not apply",
            t.event
        );
    }
    let mut form = vec![
        pair("amount", &t.amount.to_string()),
        pair("currency", &t.currency),
        pair("payment_method", "pm_card_visa"),
        pair("confirm", "true"),
    ];
    for (k, v) in &t.metadata {
        form.push((format!("metadata[{k}]"), v.clone()));
    }
    let pi = api.post("/v1/payment_intents", &form).await?;
    report.note("payment_intent", &pi);
    let mut control = Vec::new();
    if t.event == "payout.failed" {
        control.push(pair("failure_code", "account_closed"));
    }
    let made = api.post("/_sandbox/payouts", &control).await?;
    let mut ours = Vec::new();
    for payout in made["data"].as_array().into_iter().flatten() {
        ours.push(report.note("payout", payout));
    }
    if ours.is_empty() {
        bail!("the sandbox made no payout: the balance has nothing to pay out");
    }
    Ok(ours)
}

/// A Customer for a bank transfer; returns its id.
async fn new_customer(api: &mut Api, report: &mut Report) -> anyhow::Result<String> {
    let customer = api
        .post(
            "/v1/customers",
            &[
                pair("email", "trigger@example.com"),
                pair("name", "Trigger"),
            ],
        )
        .await?;
    Ok(report.note("customer", &customer))
}

/// A bank transfer arrives: half of what a PaymentIntent awaits (`payment_intent.partially_funded`),
/// or more than it awaits, or money for no payment (`cash_balance.funds_available`). Without
/// `--payment-intent` it first makes a customer and, for the first, a PaymentIntent awaiting a
/// transfer: SPEI in mxn, or a SEPA transfer in eur with `--currency eur`.
async fn transfer_flow(
    api: &mut Api,
    t: &Trigger,
    report: &mut Report,
) -> anyhow::Result<Vec<String>> {
    let partial = t.event == "payment_intent.partially_funded";
    let currency = if t.currency.eq_ignore_ascii_case("eur") {
        "eur"
    } else {
        "mxn"
    };
    let waiting = match &t.payment_intent {
        Some(id) => Some(api.get(&format!("/v1/payment_intents/{id}")).await?),
        None if partial => {
            let customer = new_customer(api, report).await?;
            let mut form = vec![
                pair("amount", &t.amount.to_string()),
                pair("currency", currency),
                pair("customer", &customer),
                pair("confirm", "true"),
                pair("payment_method_types[]", "customer_balance"),
                pair("payment_method_data[type]", "customer_balance"),
                pair(
                    "payment_method_options[customer_balance][funding_type]",
                    "bank_transfer",
                ),
            ];
            let kind = "payment_method_options[customer_balance][bank_transfer][type]";
            if currency == "mxn" {
                form.push(pair(kind, "mx_bank_transfer"));
            } else {
                form.push(pair(kind, "eu_bank_transfer"));
                form.push(pair(
                    "payment_method_options[customer_balance][bank_transfer][eu_bank_transfer][country]",
                    "NL",
                ));
            }
            for (k, v) in &t.metadata {
                form.push((format!("metadata[{k}]"), v.clone()));
            }
            Some(api.post("/v1/payment_intents", &form).await?)
        }
        None => None,
    };
    let (customer, amount, currency, reference, id) = match &waiting {
        Some(pi) => {
            let instructions = &pi["next_action"]["display_bank_transfer_instructions"];
            let Some(remaining) = instructions["amount_remaining"].as_i64() else {
                bail!(
                    "PaymentIntent {} is not awaiting a bank transfer (its status is {})",
                    pi["id"].as_str().unwrap_or_default(),
                    pi["status"].as_str().unwrap_or_default()
                );
            };
            if partial && remaining < 2 {
                bail!(
                    "PaymentIntent {} awaits too little to be funded in part",
                    pi["id"]
                );
            }
            let amount = if partial {
                remaining / 2
            } else {
                remaining + t.amount
            };
            (
                pi["customer"].as_str().unwrap_or_default().to_string(),
                amount,
                pi["currency"].as_str().unwrap_or_default().to_string(),
                instructions["reference"].as_str().map(str::to_string),
                pi["id"].as_str().map(str::to_string),
            )
        }
        None => {
            let customer = new_customer(api, report).await?;
            (customer, t.amount, currency.to_string(), None, None)
        }
    };
    let mut form = vec![
        pair("amount", &amount.to_string()),
        pair("currency", &currency),
    ];
    if let Some(reference) = &reference {
        form.push(pair("reference", reference));
    }
    let funded = api
        .post(
            &format!("/v1/test_helpers/customers/{customer}/fund_cash_balance"),
            &form,
        )
        .await?;
    report.note("cash_balance_transaction", &funded);
    let mut ours = vec![customer];
    if let Some(id) = id {
        let pi = api.get(&format!("/v1/payment_intents/{id}")).await?;
        report.note("payment_intent", &pi);
        ours.push(id);
    }
    Ok(ours)
}
