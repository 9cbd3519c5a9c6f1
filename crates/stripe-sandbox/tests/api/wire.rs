//! Stripe's wire protocol: authentication, errors, objects, expansion, publishable keys,
//! idempotency and the request ids that events carry.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn auth_request_ids_and_errors_speak_stripes_protocol() {
    let a = api(None).await;
    for auth in [
        None,
        Some("Bearer sk_live_real"),
        Some("Bearer nonsense"),
        Some("Basic !!!"),
    ] {
        let mut r = a.http.get(format!("{}/v1/payment_intents/pi_1", a.base));
        if let Some(h) = auth {
            r = r.header("authorization", h);
        }
        let (status, headers, body) = read(r.send().await.unwrap()).await;
        assert_eq!(status, 401, "{auth:?}");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert!(headers["request-id"].to_str().unwrap().starts_with("req_"));
    }
    // Basic auth with the key as user name, as curl -u and the SDKs send it.
    let r = a
        .http
        .get(format!("{}/v1/payment_intents/pi_1", a.base))
        .basic_auth("sk_test_basic", Some(""))
        .send()
        .await
        .unwrap();
    let (status, headers, body) = read(r).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "resource_missing");
    assert_eq!(body["error"]["message"], "No such payment_intent: 'pi_1'");
    assert!(headers["request-id"].to_str().unwrap().starts_with("req_"));
    let (status, body) = a
        .post("/v1/payment_intents", "amount=100&currency=usd&colour=red")
        .await;
    assert_eq!(
        (status, body["error"]["param"].as_str()),
        (400, Some("colour"))
    );
    for (form, code) in [
        ("currency=usd", "parameter_missing"),
        ("amount=10&currency=usd", "amount_too_small"),
    ] {
        let answer = a.post("/v1/payment_intents", form).await;
        assert_eq!(code_of(&answer), (400, code), "{form}");
    }
    let (status, body) = a.get("/v1/invoices").await;
    assert_eq!(status, 404);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("Unrecognized request URL"));
}

#[tokio::test]
async fn objects_and_expansion() {
    let a = api(None).await;
    let pi = a
        .create(
            "amount=5000&currency=usd&metadata[order]=7&payment_method=pm_card_visa&confirm=true",
        )
        .await;
    let id = pi["id"].as_str().unwrap();
    assert_eq!(pi["status"], "succeeded");
    for (query, expanded) in [
        ("expand[]=latest_charge", true),
        ("expand[0]=latest_charge", true),
        ("", false),
    ] {
        let (_, got) = a.get(&format!("/v1/payment_intents/{id}?{query}")).await;
        assert_eq!(got["latest_charge"].is_object(), expanded, "{query}");
    }
    let (_, charges) = a.get(&format!("/v1/charges?payment_intent={id}")).await;
    assert_eq!(charges["object"], "list");
    assert_eq!(charges["data"][0]["payment_intent"], id);
    let (_, events) = a.get("/v1/events?type=payment_intent.*").await;
    assert_eq!(
        types(&events),
        ["payment_intent.succeeded", "payment_intent.created"]
    );
    assert_eq!(
        events["data"][0]["pending_webhooks"], 0,
        "no endpoint configured"
    );
}

#[tokio::test]
async fn publishable_key_confirms_with_the_client_secret_only() {
    let a = api(None).await;
    let pi = a.create("amount=5000&currency=usd").await;
    let id = pi["id"].as_str().unwrap();
    let secret = pi["client_secret"].as_str().unwrap();
    let browser = Api {
        key: "pk_test_browser".into(),
        ..a
    };
    let (status, _) = browser
        .confirm(id, "payment_method=pm_card_visa&client_secret=wrong")
        .await;
    assert_eq!(status, 404);
    let (status, _) = browser
        .post("/v1/payment_intents", "amount=5000&currency=usd")
        .await;
    assert_eq!(status, 401, "a publishable key cannot create");
    let (status, confirmed) = browser
        .confirm(
            id,
            &format!("payment_method=pm_card_visa&client_secret={secret}"),
        )
        .await;
    assert_eq!(
        (status, confirmed["status"].as_str()),
        (200, Some("succeeded"))
    );
}

#[tokio::test]
async fn idempotency_keys_replay_and_refuse_other_parameters() {
    let a = api(None).await;
    let (status, first) = a
        .replayed(
            "/v1/payment_intents",
            "amount=700&currency=eur&metadata[a]=1&metadata[b]=2",
            "metadata[b]=2&currency=eur&metadata[a]=1&amount=700",
            "k1",
        )
        .await;
    assert_eq!(status, 200, "{first}");
    let (status, _, third) = a
        .post_keyed("/v1/payment_intents", "amount=701&currency=eur", "k1")
        .await;
    assert_eq!(
        (status, third["error"]["type"].as_str()),
        (400, Some("idempotency_error"))
    );
    // A declined confirmation is replayed as the same 402.
    let pi = a.create("amount=700&currency=eur").await;
    let path = format!("/v1/payment_intents/{}/confirm", pi["id"].as_str().unwrap());
    let declined = "payment_method=pm_card_visa_chargeDeclined";
    let (status, _) = a.replayed(&path, declined, declined, "k2").await;
    assert_eq!(status, 402);
    let (_, charges) = a
        .get(&format!(
            "/v1/charges?payment_intent={}",
            pi["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        charges["data"].as_array().unwrap().len(),
        1,
        "the replay charged nothing"
    );
}

#[tokio::test]
async fn events_name_the_request_that_caused_them() {
    let a = api(None).await;
    let paying = "amount=900&currency=usd&payment_method=pm_card_visa&confirm=true";
    let (status, headers, pi) = a
        .post_keyed("/v1/payment_intents", paying, "order-77")
        .await;
    assert_eq!((status, pi["status"].as_str()), (200, Some("succeeded")));
    let request_id = headers["request-id"].to_str().unwrap().to_string();
    let (_, events) = a.get("/v1/events").await;
    let caused: Vec<&serde_json::Value> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["request"]["id"] == request_id.as_str())
        .collect();
    let types: Vec<&str> = caused.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "payment_intent.succeeded",
            "charge.succeeded",
            "payment_intent.created"
        ]
    );
    assert!(caused
        .iter()
        .all(|e| e["request"]["idempotency_key"] == "order-77"));
    // A replay answers with the original request's id, the one its events carry.
    let (_, replay_headers, _) = a
        .post_keyed("/v1/payment_intents", paying, "order-77")
        .await;
    assert_eq!(replay_headers["request-id"], request_id.as_str());
    assert_eq!(replay_headers["idempotent-replayed"], "true");
    // A request without a key: the id, and a null key.
    let (_, headers, created) = a
        .call(
            reqwest::Method::POST,
            "/v1/payment_intents",
            "amount=900&currency=usd",
            None,
        )
        .await;
    let (_, events) = a.get("/v1/events?limit=1").await;
    assert_eq!(events["data"][0]["data"]["object"]["id"], created["id"]);
    assert_eq!(
        events["data"][0]["request"],
        json!({"id": headers["request-id"].to_str().unwrap(), "idempotency_key": null})
    );
}

#[tokio::test]
async fn amounts_follow_the_sandboxs_own_currency_rules() {
    let a = api(None).await;
    for (form, status, code) in [
        ("amount=49&currency=usd", 400, Some("amount_too_small")),
        ("amount=50&currency=USD", 200, None),
        (
            "amount=100000000&currency=usd",
            400,
            Some("amount_too_large"),
        ),
        ("amount=99999999&currency=usd", 200, None),
        ("amount=999&currency=mxn", 400, Some("amount_too_small")),
        ("amount=1235&currency=kwd", 400, None),
        ("amount=1230&currency=kwd", 200, None),
        ("amount=150&currency=isk", 400, None),
        ("amount=200&currency=isk", 200, None),
        ("amount=50&currency=jpy", 200, None),
        ("amount=500&currency=xyz", 400, None),
    ] {
        let (got, body) = a.post("/v1/payment_intents", form).await;
        assert_eq!(got, status, "{form}: {body}");
        if status == 400 {
            assert_eq!(body["error"]["code"].as_str(), code, "{form}: {body}");
            assert!(body["error"]["param"] == "amount" || body["error"]["param"] == "currency");
        }
    }
    let (_, body) = a
        .post("/v1/payment_intents", "amount=50&currency=USD")
        .await;
    assert_eq!(body["currency"], "usd");
}
