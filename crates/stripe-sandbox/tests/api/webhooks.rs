//! Webhook delivery: signatures, retries until the endpoint accepts, the drop switch, and
//! deliveries owed before a restart resumed after it.

use std::time::Duration;

use serde_json::Value;
use stripe_sandbox::webhooks::sign;
use stripe_sandbox::WebhookTarget;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::*;

fn assert_signed(request: &wiremock::Request, secret: &str) {
    let header = request.headers["stripe-signature"].to_str().unwrap();
    let t: i64 = header
        .split(',')
        .find_map(|p| p.strip_prefix("t="))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(header, sign(&request.body, secret, t));
}

async fn accepting() -> MockServer {
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    receiver
}

async fn delivered_ids(receiver: &MockServer) -> Vec<String> {
    receiver
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| {
            serde_json::from_slice::<Value>(&r.body).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[tokio::test]
async fn webhook_delivery_retries_until_the_endpoint_accepts_once() {
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&receiver)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .with_priority(2)
        .mount(&receiver)
        .await;
    let target = WebhookTarget {
        max_attempts: 5,
        first_retry: Duration::from_millis(50),
        ..WebhookTarget::new(format!("{}/hook", receiver.uri()), "whsec_retry".into())
    };
    let a = api(Some(target)).await;
    let pi = a.create("amount=700&currency=eur").await;
    let (_, events) = a.get("/v1/events").await;
    let event_id = events["data"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(events["data"][0]["pending_webhooks"], 1);
    eventually("the delivery", || async {
        let (_, e) = a.get(&format!("/v1/events/{event_id}")).await;
        (e["pending_webhooks"] == 0).then_some(())
    })
    .await;
    let requests = receiver.received_requests().await.unwrap();
    assert_eq!(requests.len(), 3, "two failures, then the one delivery");
    for r in &requests {
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["id"], event_id.as_str());
        assert_eq!(body["data"]["object"]["id"], pi["id"]);
        assert_signed(r, "whsec_retry");
    }
}

#[tokio::test]
async fn dropped_webhooks_are_listed_but_never_delivered() {
    let receiver = accepting().await;
    let a = api(Some(WebhookTarget::new(
        format!("{}/hook", receiver.uri()),
        "whsec_drop".into(),
    )))
    .await;
    let (status, control) = a.post("/_sandbox/webhooks", "drop=true").await;
    assert_eq!(status, 200, "{control}");
    assert_eq!(control["drop"], true);
    let lost = a.create("amount=700&currency=eur").await;
    let (status, control) = a.post("/_sandbox/webhooks", "drop=false").await;
    assert_eq!((status, control["drop"].as_bool()), (200, Some(false)));
    let kept = a.create("amount=800&currency=eur").await;
    let (_, events) = a.get("/v1/events?type=payment_intent.created").await;
    let listed: Vec<&Value> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["data"]["object"]["id"])
        .collect();
    assert_eq!(listed, [&kept["id"], &lost["id"]], "both events exist");
    let kept_event = events["data"][0]["id"].as_str().unwrap().to_string();
    let lost_event = events["data"][1]["id"].as_str().unwrap().to_string();
    let delivered = eventually("the kept event's delivery", || async {
        let ids = delivered_ids(&receiver).await;
        ids.contains(&kept_event).then_some(ids)
    })
    .await;
    // Deliveries go out in order: had the lost one been sent, it would have arrived first.
    assert_eq!(delivered, [kept_event]);
    assert!(!delivered.contains(&lost_event));
    let (_, lost) = a.get(&format!("/v1/events/{lost_event}")).await;
    assert_eq!(
        lost["pending_webhooks"], 1,
        "never received by the endpoint"
    );
    let (status, control) = a.get("/_sandbox/webhooks").await;
    assert_eq!(status, 200);
    assert_eq!(control["url"], format!("{}/hook", receiver.uri()));
    let (status, body) = a.post("/_sandbox/webhooks", "drop=maybe").await;
    assert_eq!(
        (status, body["error"]["param"].as_str()),
        (400, Some("drop"))
    );
}

#[tokio::test]
async fn deliveries_owed_before_a_restart_are_made_after_it() {
    let (_dir, state) = state_file();
    let refusing = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&refusing)
        .await;
    let first = Process::start(
        &state,
        Some((&format!("{}/hook", refusing.uri()), "whsec_resume")),
    );
    let a = Api::new(first.base.clone());
    let pi = a
        .create("amount=700&currency=eur&payment_method=pm_card_visa&confirm=true")
        .await;
    let (_, events) = a.get("/v1/events").await;
    let mut owed = ids(&events);
    owed.sort();
    assert_eq!(owed.len(), 3);
    eventually("a refused attempt", || async {
        (!delivered_ids(&refusing).await.is_empty()).then_some(())
    })
    .await;
    drop(first);

    let receiver = accepting().await;
    let second = Process::start(
        &state,
        Some((&format!("{}/hook", receiver.uri()), "whsec_resume")),
    );
    let b = Api::new(second.base.clone());
    let mut delivered = eventually("the resumed deliveries", || async {
        let ids = delivered_ids(&receiver).await;
        (ids.len() >= 3).then_some(ids)
    })
    .await;
    delivered.sort();
    assert_eq!(delivered, owed, "each owed event once");
    for r in receiver.received_requests().await.unwrap() {
        assert_signed(&r, "whsec_resume");
    }
    eventually("pending_webhooks 0 everywhere", || async {
        let (_, events) = b.get("/v1/events").await;
        events["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["pending_webhooks"] == 0)
            .then_some(())
    })
    .await;
    let (_, again) = b
        .get(&format!(
            "/v1/payment_intents/{}",
            pi["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(again["status"], "succeeded");
}
