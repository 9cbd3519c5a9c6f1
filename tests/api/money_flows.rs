//! Refunds, disputes, seat holds, manual capture, fulfilment notifications and reconciliation
//! end to end (docs/contract.md §9–§12): the real binary in sandbox mode, its embedded Stripe
//! answering at `/v1` on the same port, exactly as a front end and Stripe would use them.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};
use tmt_payments::ledger::{DisputeRow, PaymentRow, RefundRow};

use crate::helpers::*;

/// The shop: the service in sandbox mode, and what the test needs to play Stripe's other side
/// (the buyer's browser confirming, the Dashboard refunding).
struct Shop {
    server: Server,
    db: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// Any test key works with the sandbox.
const SANDBOX_KEY: &str = "sk_test_money_flows";

impl Shop {
    async fn start(envs: &[(&str, &str)]) -> Shop {
        let dir = tempfile::tempdir().unwrap();
        let db = sqlite_url(dir.path());
        let mut all = vec![
            // The sandbox's later steps (a refund failing, a dispute opening) come quickly.
            ("STRIPE_SANDBOX_DELAY_MS", "200"),
            ("RECONCILE_INTERVAL_SECS", "0"),
        ];
        all.extend_from_slice(envs);
        let server = Server::start(&db, &all).await;
        Shop {
            server,
            db,
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.address)
    }

    /// A call to the service's own endpoints.
    async fn call(&self, path: &str, data: Value) -> Answer {
        let r = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(json!({ "data": data }).to_string())
            .send()
            .await
            .unwrap();
        read(r).await
    }

    /// A call to the sandbox, as Stripe's API (`form` encoded as Stripe wants it).
    async fn stripe(&self, method: reqwest::Method, path: &str, form: &[(&str, &str)]) -> Answer {
        let mut r = self
            .http
            .request(method.clone(), self.url(path))
            .bearer_auth(SANDBOX_KEY);
        if method == reqwest::Method::GET {
            r = r.query(form);
        } else {
            r = r.form(form);
        }
        read(r.send().await.unwrap()).await
    }

    /// Creates a payment through the service; its id.
    async fn create(&self, data: Value) -> String {
        created_id(&self.call("/stripe_create_payment_intent", data).await)
    }

    /// The buyer pays with `payment_method`, as Stripe.js would.
    async fn pay(&self, pi: &str, payment_method: &str) -> Answer {
        self.stripe(
            reqwest::Method::POST,
            &format!("/v1/payment_intents/{pi}/confirm"),
            &[("payment_method", payment_method)],
        )
        .await
    }

    /// The refunds Stripe (the sandbox) lists for a PaymentIntent.
    async fn refunds_at_stripe(&self, pi: &str) -> Vec<Value> {
        let (_, _, listed) = self
            .stripe(
                reqwest::Method::GET,
                "/v1/refunds",
                &[("payment_intent", pi)],
            )
            .await;
        listed["data"].as_array().unwrap().clone()
    }

    /// What Stripe (the sandbox) says a PaymentIntent's status is.
    async fn stripe_status(&self, pi: &str) -> String {
        let (_, _, body) = self
            .stripe(
                reqwest::Method::GET,
                &format!("/v1/payment_intents/{pi}"),
                &[],
            )
            .await;
        body["status"].as_str().unwrap_or_default().to_string()
    }

    async fn ledger(&self) -> tmt_payments::ledger::Ledger {
        open_ledger(&self.db).await
    }

    async fn status(&self, pi: &str) -> Option<String> {
        self.ledger()
            .await
            .payment(pi)
            .await
            .unwrap()
            .map(|p| p.status.to_string())
    }

    /// Waits until the ledger says `status` for `pi`.
    async fn reaches(&self, pi: &str, status: &str) {
        eventually(
            &format!("{pi} is {status} in the ledger"),
            PATIENCE,
            || async {
                match self.status(pi).await {
                    Some(s) if s == status => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            },
        )
        .await;
    }

    /// Makes the payment's hold end now, as if its time had come.
    async fn expire_hold(&self, pi: &str) {
        let ledger = self.ledger().await;
        end_hold_now(&ledger, pi).await;
    }

    /// `reconcile --since 1h --json` against the sandbox: its report.
    fn reconcile(&self) -> Value {
        let out = command(&self.db)
            .args(["reconcile", "--since", "1h", "--json"])
            .env("PORT", self.server.port())
            .output()
            .unwrap();
        printed_json(&out, 0)
    }

    /// Stops the sandbox's deliveries to the service (lost webhooks).
    async fn drop_webhooks(&self) {
        let (status, _, body) = self
            .stripe(
                reqwest::Method::POST,
                "/_sandbox/webhooks",
                &[("drop", "true")],
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
}

/// The distinct notifications the platform acknowledged for `pi`, in the order it got them:
/// `(type, data)`.
fn told(receiver: &Receiver, pi: &str) -> Vec<(String, Value)> {
    let mut seen = BTreeSet::new();
    let acknowledged = receiver.acknowledged.lock().unwrap().clone();
    acknowledged
        .into_iter()
        .filter(|n| n["data"]["paymentIntentId"] == pi)
        .filter(|n| seen.insert(n["id"].as_str().unwrap_or_default().to_string()))
        .map(|n| (n["type"].as_str().unwrap().to_string(), n["data"].clone()))
        .collect()
}

/// The types of what the platform was told of `pi`, once `last` has arrived.
async fn told_until(receiver: &Receiver, pi: &str, last: &str) -> Vec<(String, Value)> {
    receiver.expect(pi, last).await;
    told(receiver, pi)
}

fn types(told: &[(String, Value)]) -> Vec<&str> {
    told.iter().map(|(t, _)| t.as_str()).collect()
}

#[tokio::test]
async fn a_refund_that_fails_later_and_disputes_won_and_lost_reach_the_ledger_and_the_platform() {
    let receiver = Receiver::start(0).await;
    let shop = Shop::start(&receiver.env()).await;
    let refunded = shop.create(json!({"amount": 40})).await;
    assert_eq!(shop.pay(&refunded, "pm_card_refundFail").await.0, 200);
    shop.reaches(&refunded, "succeeded").await;
    let (status, _, body) = shop
        .call(
            "/stripe_refund_payment",
            json!({"payment_intent_id": refunded, "amount": 15}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let refund_id = body["data"]["refundId"].as_str().unwrap().to_string();
    // Stripe says succeeded at first, then the bank returns it: refund.failed.
    let ledger = shop.ledger().await;
    eventually("the refund failed in the ledger", PATIENCE, || async {
        let row = ledger.refund(&refund_id).await.unwrap();
        row.filter(|r| r.status == "failed")
    })
    .await;
    assert_eq!(ledger.amount_refunded(&refunded).await.unwrap(), 0);
    // The platform was told it was refunded; it is told it failed, once, after that.
    let told = told_until(&receiver, &refunded, "payment.refund_failed").await;
    assert_eq!(
        types(&told),
        [
            "payment.succeeded",
            "payment.refunded",
            "payment.refund_failed"
        ]
    );
    let (was, failed) = (&told[1].1, &told[2].1);
    assert_eq!(was["refundId"], refund_id.as_str());
    assert_eq!(was["refundAmount"].to_string(), "15.00");
    assert_eq!(was["amountRefunded"].to_string(), "15.00");
    assert_eq!(failed["refundId"], refund_id.as_str());
    assert_eq!(failed["refundAmount"].to_string(), "15.00");
    assert_eq!(failed["failureReason"], "expired_or_canceled_card");
    assert_eq!(failed["amountRefunded"].to_string(), "0.00");
    assert_eq!(failed["status"], "succeeded");

    for (evidence, outcome) in [("winning_evidence", "won"), ("losing_evidence", "lost")] {
        let disputed = shop.create(json!({"amount": 25})).await;
        assert_eq!(shop.pay(&disputed, "pm_card_createDispute").await.0, 200);
        let dispute = eventually("a dispute opens", PATIENCE, || async {
            let rows = ledger.of_payment::<DisputeRow>(&disputed).await.unwrap();
            rows.into_iter().next()
        })
        .await;
        assert_eq!(dispute.status, "needs_response");
        assert_eq!(dispute.amount, 2500);
        let (status, _, body) = shop
            .stripe(
                reqwest::Method::POST,
                &format!("/v1/disputes/{}", dispute.id),
                &[("evidence[uncategorized_text]", evidence)],
            )
            .await;
        assert_eq!(status, 200, "{body}");
        eventually(&format!("the dispute is {outcome}"), PATIENCE, || async {
            let rows = ledger.of_payment::<DisputeRow>(&disputed).await.unwrap();
            rows.into_iter().find(|d| d.status == outcome)
        })
        .await;
        let told = told_until(&receiver, &disputed, "payment.dispute_closed").await;
        assert_eq!(
            types(&told),
            [
                "payment.succeeded",
                "payment.disputed",
                "payment.dispute_closed"
            ]
        );
        let closed = &told[2].1;
        assert_eq!(closed["disputeId"], dispute.id.as_str());
        assert_eq!(closed["disputeStatus"], outcome);
    }
    // Exactly once each: one notification of each kind written per payment.
    let written = ledger
        .list::<tmt_payments::ledger::NotificationRow>(None, 100)
        .await
        .unwrap();
    let kinds: Vec<(String, String)> = written
        .iter()
        .map(|n| (n.payment_intent_id.clone(), n.kind.to_string()))
        .collect();
    let distinct: BTreeSet<&(String, String)> = kinds.iter().collect();
    assert_eq!(distinct.len(), kinds.len(), "{kinds:?}");
    assert_eq!(written.len(), 9, "{kinds:?}");
}

#[tokio::test]
async fn a_hold_that_expires_cancels_the_payment_and_the_buyer_can_no_longer_pay() {
    let receiver = Receiver::start(0).await;
    let shop = Shop::start(&receiver.env()).await;
    let created = shop
        .call(
            "/stripe_create_payment_intent",
            json!({"amount": 30, "holdSeconds": 60}),
        )
        .await;
    let pi = created_id(&created);
    let expires = created.2["data"]["holdExpiresAt"].as_str().unwrap();
    let expires = chrono::DateTime::parse_from_rfc3339(expires).unwrap();
    assert!((expires.timestamp() - now() - 60).abs() <= 5, "{expires}");

    shop.expire_hold(&pi).await;
    shop.reaches(&pi, "canceled").await;
    assert_eq!(shop.stripe_status(&pi).await, "canceled");
    // The buyer who comes back to pay gets Stripe's own refusal.
    let (status, _, body) = shop.pay(&pi, "pm_card_visa").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "payment_intent_unexpected_state");
    let canceled = receiver.expect(&pi, "payment.canceled").await;
    assert_eq!(canceled["data"]["late"], false);
    assert!(receiver.of(&pi, "payment.succeeded").is_empty());
}

#[tokio::test]
async fn a_payment_made_at_the_last_second_is_announced_late() {
    let receiver = Receiver::start(0).await;
    let shop = Shop::start(&receiver.env()).await;
    let pi = shop
        .create(json!({"amount": 30, "holdSeconds": 60, "metadata": {"order": "L-1"}}))
        .await;
    // The webhook of the payment never arrives: the hold's expiry is what finds it.
    shop.drop_webhooks().await;
    assert_eq!(shop.pay(&pi, "pm_card_visa").await.0, 200);
    assert_eq!(
        shop.status(&pi).await.as_deref(),
        Some("requires_payment_method")
    );
    shop.expire_hold(&pi).await;
    let announced = receiver.expect(&pi, "payment.succeeded").await;
    assert_eq!(announced["data"]["late"], true);
    assert_eq!(announced["data"]["metadata"]["order"], "L-1");
    assert_eq!(shop.status(&pi).await.as_deref(), Some("succeeded"));
    assert_eq!(shop.stripe_status(&pi).await, "succeeded", "not canceled");
}

#[tokio::test]
async fn under_the_refund_policy_a_late_payment_is_refunded_instead() {
    let receiver = Receiver::start(0).await;
    let mut envs = receiver.env().to_vec();
    envs.push(("LATE_PAYMENT_POLICY", "refund"));
    let shop = Shop::start(&envs).await;
    let pi = shop.create(json!({"amount": 45, "holdSeconds": 60})).await;
    shop.drop_webhooks().await;
    assert_eq!(shop.pay(&pi, "pm_card_visa").await.0, 200);
    shop.expire_hold(&pi).await;
    let ledger = shop.ledger().await;
    let refund = eventually("the late payment is refunded", PATIENCE, || async {
        let rows = ledger.of_payment::<RefundRow>(&pi).await.unwrap();
        rows.into_iter().next()
    })
    .await;
    assert_eq!(refund.amount, 4500);
    assert_eq!(refund.own.metadata["tmt_reason"], "hold_expired");
    assert_eq!(refund.reason.as_deref(), Some("requested_by_customer"));
    assert_eq!(
        shop.refunds_at_stripe(&pi).await.len(),
        1,
        "one refund at Stripe"
    );
    receiver.expect(&pi, "payment.refunded").await;
    assert!(
        receiver.of(&pi, "payment.succeeded").is_empty(),
        "refunded instead of announced"
    );
    // The platform that asks is told the same: the money went back.
    let (status, _, body) = shop
        .call("/stripe_confirm_payment", json!({"payment_intent_id": pi}))
        .await;
    assert_eq!(
        refusal(status, &body),
        (400, "payment_refunded", "El pago fue reembolsado")
    );
    let (status, _, body) = shop
        .call(
            "/stripe_get_payment_intent",
            json!({"payment_intent_id": pi}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["status"], "succeeded");
    assert_eq!(body["data"]["amountRefunded"].to_string(), "45.00");
    assert_eq!(body["data"]["late"], true);
}

#[tokio::test]
async fn under_the_refund_policy_a_payment_processing_when_its_hold_ends_is_refunded_once_it_succeeds(
) {
    let receiver = Receiver::start(0).await;
    let mut envs = receiver.env().to_vec();
    envs.push(("LATE_PAYMENT_POLICY", "refund"));
    // The bank debit stays processing long enough for the hold worker (every 5 s) to find it.
    envs.push(("STRIPE_SANDBOX_DELAY_MS", "12000"));
    let shop = Shop::start(&envs).await;
    let pi = shop.create(json!({"amount": 25, "holdSeconds": 60})).await;
    let (status, _, body) = shop.pay(&pi, "pm_usBankAccount_success").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("processing")));
    shop.reaches(&pi, "processing").await;
    shop.expire_hold(&pi).await;
    let ledger = shop.ledger().await;
    eventually("the hold's end is dealt with", PATIENCE, || async {
        match ledger.hold_of(&pi).await.unwrap() {
            Some(hold) if hold.late && hold.state.is_some_and(|s| s == "refund_due") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let refunds: Vec<RefundRow> = ledger.of_payment(&pi).await.unwrap();
    assert!(
        refunds.is_empty(),
        "nothing to refund while it is processing"
    );
    shop.reaches(&pi, "succeeded").await;
    let refund = eventually("the late payment is refunded", PATIENCE * 2, || async {
        let rows = ledger.of_payment::<RefundRow>(&pi).await.unwrap();
        rows.into_iter().next()
    })
    .await;
    assert_eq!(refund.amount, 2500);
    assert_eq!(refund.own.metadata["tmt_reason"], "hold_expired");
    receiver.expect(&pi, "payment.refunded").await;
    assert!(
        receiver.of(&pi, "payment.succeeded").is_empty(),
        "refunded instead of announced"
    );
}

#[tokio::test]
async fn manual_capture_partial_and_an_authorisation_released_when_its_hold_expires() {
    let receiver = Receiver::start(0).await;
    let shop = Shop::start(&receiver.env()).await;
    let pi = shop
        .create(json!({"amount": 80, "captureMethod": "manual"}))
        .await;
    let (status, _, body) = shop.pay(&pi, "pm_card_visa").await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("requires_capture"))
    );
    shop.reaches(&pi, "requires_capture").await;
    // confirm keeps its rule: only succeeded is success.
    let (status, _, body) = shop
        .call("/stripe_confirm_payment", json!({"payment_intent_id": pi}))
        .await;
    assert_eq!(code(status, &body), (400, "payment_not_completed"));
    for (amount, code_expected) in [
        (json!(0), "amount_invalid"),
        (json!(80.01), "amount_exceeds_authorized"),
    ] {
        let (status, _, body) = shop
            .call(
                "/stripe_capture_payment",
                json!({"payment_intent_id": pi, "amount": amount}),
            )
            .await;
        assert_eq!(code(status, &body), (400, code_expected));
    }
    let (status, _, body) = shop
        .call(
            "/stripe_capture_payment",
            json!({"payment_intent_id": pi, "amount": "60.00"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["status"], "succeeded");
    assert_eq!(body["data"]["amount"].to_string(), "60.00");
    shop.reaches(&pi, "succeeded").await;
    // What can be refunded is what was captured, not what was authorised.
    let (status, _, body) = shop
        .call("/stripe_refund_payment", json!({"payment_intent_id": pi}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["amount"].to_string(), "60.00");
    assert_eq!(body["data"]["amountRefunded"].to_string(), "60.00");
    assert_eq!(body["data"]["fullyRefunded"], true);
    let (status, _, body) = shop
        .call(
            "/stripe_refund_payment",
            json!({"payment_intent_id": pi, "amount": "0.01"}),
        )
        .await;
    assert_eq!(code(status, &body), (400, "refund_exceeds_remaining"));
    assert_eq!(
        shop.refunds_at_stripe(&pi).await.len(),
        1,
        "nothing more sent"
    );
    let row = shop.ledger().await.payment(&pi).await.unwrap().unwrap();
    assert_eq!((row.amount, row.amount_received), (8000, Some(6000)));
    // The platform is told what was charged, not what was authorised.
    let announced = receiver.expect(&pi, "payment.succeeded").await;
    assert_eq!(announced["data"]["amount"].to_string(), "60.00");
    let (status, _, body) = shop
        .call("/stripe_capture_payment", json!({"payment_intent_id": pi}))
        .await;
    assert_eq!(
        refusal(status, &body),
        (
            400,
            "payment_not_capturable",
            "El pago no puede ser capturado. Estado: succeeded"
        )
    );

    let held = shop
        .create(json!({"amount": 50, "captureMethod": "manual", "holdSeconds": 60}))
        .await;
    assert_eq!(shop.pay(&held, "pm_card_visa").await.0, 200);
    shop.reaches(&held, "requires_capture").await;
    shop.expire_hold(&held).await;
    shop.reaches(&held, "canceled").await;
    assert_eq!(
        shop.stripe_status(&held).await,
        "canceled",
        "released at Stripe"
    );
}

#[tokio::test]
async fn reconciliation_alone_brings_fifty_payments_to_their_true_status() {
    let receiver = Receiver::start(0).await;
    let shop = Shop::start(&receiver.env()).await;
    // Every webhook is lost, from the start.
    shop.drop_webhooks().await;
    let mut payments = Vec::new();
    for n in 0..50 {
        payments.push(shop.create(json!({"amount": 10 + n})).await);
    }
    for (n, pi) in payments.iter().enumerate() {
        let method = match n % 10 {
            8 => Some("pm_card_visa_chargeDeclined"),
            9 => None,
            _ => Some("pm_card_visa"),
        };
        if let Some(method) = method {
            shop.pay(pi, method).await;
        }
    }
    // A PaymentIntent of ours that Stripe made but the ledger never heard of (its create
    // answered an error after Stripe made it).
    let (status, _, orphan) = shop
        .stripe(
            reqwest::Method::POST,
            "/v1/payment_intents",
            &[
                ("amount", "700"),
                ("currency", "usd"),
                ("metadata[platform]", "TMT"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{orphan}");
    let orphan = orphan["id"].as_str().unwrap().to_string();
    for pi in &payments {
        assert_eq!(
            shop.status(pi).await.as_deref(),
            Some("requires_payment_method"),
            "the ledger has heard of nothing yet"
        );
    }

    let report = shop.reconcile();
    // 40 successes, 5 declines, 50 creates and the orphan's own creation: the orphan may be
    // adopted by its payment_intent.created event or by the listing of PaymentIntents.
    assert!(report["events_applied"].as_u64().unwrap() >= 40, "{report}");

    for pi in &payments {
        assert_eq!(
            shop.status(pi).await.unwrap(),
            shop.stripe_status(pi).await,
            "{pi} is where Stripe says"
        );
    }
    assert!(
        shop.status(&orphan).await.is_some(),
        "the orphan is adopted"
    );
    let succeeded: Vec<String> = payments
        .iter()
        .enumerate()
        .filter(|(n, _)| n % 10 < 8)
        .map(|(_, pi)| pi.clone())
        .collect();
    receiver
        .expect_each_once(&succeeded, "payment.succeeded", PATIENCE * 2)
        .await;
    // A second round repairs nothing more.
    let again = shop.reconcile();
    assert_eq!(
        (
            again["events_recorded"].as_u64(),
            again["orphans_adopted"].as_u64()
        ),
        (Some(0), Some(0)),
        "{again}"
    );
}

/// `stripe.WebhookSignature.verify_header` of Stripe's own Python library checks every
/// notification; the receiver refuses each one three times before it takes it.
#[tokio::test]
#[ignore = "needs Python peers in .venv (stripe)"]
async fn a_receiver_that_fails_three_times_gets_each_notification_once_verified_by_stripes_code() {
    let python = python_peer(&["stripe"]);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("received.jsonl");
    let secret = "whsec_verified_by_stripe_python_0001";
    let mut receiver = std::process::Command::new(&python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/peers/fulfilment_receiver.py"
        ))
        .args([
            "--port",
            "0",
            "--secret",
            secret,
            "--fail-first",
            "3",
            "--log",
        ])
        .arg(&log)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let port = {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(receiver.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        line.trim().trim_start_matches("listening on ").to_string()
    };
    let _receiver = KillOnDrop(receiver);
    let url = format!("http://127.0.0.1:{port}/");
    let shop = Shop::start(&[("FULFILMENT_URL", &url), ("FULFILMENT_SECRET", secret)]).await;
    let mut paid = Vec::new();
    for amount in [20, 30, 40] {
        let pi = shop.create(json!({"amount": amount})).await;
        assert_eq!(shop.pay(&pi, "pm_card_visa").await.0, 200);
        shop.reaches(&pi, "succeeded").await;
        paid.push(pi);
    }
    let (status, _, body) = shop
        .call(
            "/stripe_refund_payment",
            json!({"payment_intent_id": paid[0], "amount": 5}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let read_log = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .collect::<Vec<_>>()
    };
    let received = eventually(
        "four notifications acknowledged",
        Duration::from_secs(90),
        || {
            let lines = read_log();
            async move { (lines.len() >= 4).then_some(lines) }
        },
    )
    .await;
    assert!(
        received.iter().all(|n| n.get("bad_signature").is_none()),
        "every signature verified: {received:?}"
    );
    let ids: Vec<&str> = received.iter().map(|n| n["id"].as_str().unwrap()).collect();
    let distinct: BTreeSet<&&str> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len(), "each acknowledged once: {ids:?}");
    assert!(received.iter().all(|n| n["attempt"] == 4), "{received:?}");
    for pi in &paid {
        let kinds: Vec<&str> = received
            .iter()
            .filter(|n| n["paymentIntentId"] == pi.as_str())
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        let expected: &[&str] = if pi == &paid[0] {
            &["payment.succeeded", "payment.refunded"]
        } else {
            &["payment.succeeded"]
        };
        assert_eq!(kinds, expected, "{pi}: in the order of the changes");
    }
    let refunded = received
        .iter()
        .find(|n| n["type"] == "payment.refunded")
        .unwrap();
    // The amounts as sent, with the currency's decimals (the receiver's own JSON would not keep
    // them).
    let raw = refunded["raw"].as_str().unwrap();
    assert!(raw.contains(r#""amountRefunded":5.00"#), "{raw}");
}

#[tokio::test]
async fn a_whole_event_is_refunded_once_through_a_kill_and_a_refusal() {
    let shop = Shop::start(&[]).await;
    let mut payments = Vec::new();
    for n in 0..200 {
        let pi = shop
            .create(json!({"amount": 20 + (n % 3), "metadata": {"event": "E-CANCELED"}}))
            .await;
        assert_eq!(shop.pay(&pi, "pm_card_visa").await.0, 200);
        payments.push(pi);
    }
    // Another event's buyer is not touched.
    let other = shop
        .create(json!({"amount": 20, "metadata": {"event": "E-ON"}}))
        .await;
    shop.pay(&other, "pm_card_visa").await;
    let ledger = shop.ledger().await;
    eventually(
        "every payment succeeded in the ledger",
        PATIENCE * 2,
        || async {
            let rows: Vec<PaymentRow> = ledger.list(Some("succeeded"), 1000).await.unwrap();
            rows.len() == 201
        },
    )
    .await;
    let starved = &payments[137];
    let (status, _, body) = shop
        .stripe(
            reqwest::Method::POST,
            "/_sandbox/faults",
            &[("refund_balance_insufficient[]", starved.as_str())],
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let bulk = || {
        let mut c = command(&shop.db);
        c.args([
            "refunds",
            "bulk",
            "--metadata",
            "event=E-CANCELED",
            "--json",
        ])
        .env("PORT", shop.server.port())
        .env("STRIPE_MAX_RPS", "0");
        c
    };
    // The first run is killed with SIGKILL half way.
    let mut first = bulk()
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    eventually("half the event is refunded", PATIENCE * 4, || async {
        ledger.list::<RefundRow>(None, 1000).await.unwrap().len() >= 80
    })
    .await;
    first.kill().unwrap();
    first.wait().unwrap();

    // The second resumes and stops at the refusal.
    let report = printed_json(&bulk().output().unwrap(), 3);
    assert_eq!(report["resumed"], true);
    assert_eq!(report["counts"]["pending"], 1, "{}", report["counts"]);
    assert_eq!(report["counts"]["refunded"], 199);
    let pending: Vec<&Value> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["state"] == "pending")
        .collect();
    assert_eq!(pending[0]["payment_intent_id"], starved.as_str());
    assert!(
        pending[0]["error"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("insufficient"),
        "{}",
        pending[0]
    );

    // The balance is topped up; the next run finishes the job.
    shop.stripe(
        reqwest::Method::POST,
        "/_sandbox/faults",
        &[("clear", "true")],
    )
    .await;
    let report = printed_json(&bulk().output().unwrap(), 0);
    assert_eq!(report["counts"]["refunded"], 200);
    let expected_total: i64 = (0..200).map(|n| 2000 + (n % 3) * 100).sum();
    assert_eq!(
        report["totals"],
        json!([{"currency": "usd", "refunded": serde_json::Number::from_string_unchecked(format!("{}.{:02}", expected_total / 100, expected_total % 100)), "payments": 200}])
    );

    // At Stripe: every payment of the event refunded exactly once, in full; the other not.
    for (n, pi) in payments.iter().enumerate() {
        let refunds = shop.refunds_at_stripe(pi).await;
        assert_eq!(refunds.len(), 1, "{pi}: {refunds:?}");
        assert_eq!(refunds[0]["amount"], 2000 + (n as i64 % 3) * 100);
    }
    assert!(shop.refunds_at_stripe(&other).await.is_empty());
    // Once finished, running it again starts nothing.
    let preview = printed_json(&bulk().arg("--dry-run").output().unwrap(), 0);
    assert!(preview["resumes"].is_null(), "{preview}");
    assert!(
        preview["totals"].as_array().unwrap().is_empty(),
        "{preview}"
    );
}
