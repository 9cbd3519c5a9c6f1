//! Onboarding organisers and following their accounts (docs/contract.md §15, "Organisers"):
//! one Express account per organiser however many first calls race (on one instance and on
//! three sharing PostgreSQL), a fresh onboarding link each call, and the account's status kept
//! by its events, each applied once, the newest winning.

use serde_json::{json, Value};
use tmt_payments::ledger::{ChargeType, EventRow};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use super::*;

#[tokio::test]
async fn onboarding_creates_one_express_account_and_a_fresh_link_on_every_call() {
    let market = Market::start("destination", &[("PLATFORM_FEE_PERCENT", "3")]).await;
    let first = market
        .onboard(
            "org_madrid",
            json!({"country": "es", "email": "taquilla@example.com"}),
        )
        .await;
    let account = first["accountId"].as_str().unwrap().to_string();
    assert!(account.starts_with("acct_"), "{first}");
    assert_eq!(first["organizerId"], "org_madrid");
    assert_eq!(
        (
            first["chargesEnabled"].as_bool(),
            first["payoutsEnabled"].as_bool()
        ),
        (Some(false), Some(false))
    );
    assert!(
        first["expiresAt"].as_str().unwrap().ends_with('Z'),
        "{first}"
    );
    let (_, _, at_stripe) = market
        .stripe(
            reqwest::Method::GET,
            &format!("/v1/accounts/{account}"),
            &[],
            None,
        )
        .await;
    assert_eq!(at_stripe["type"], "express");
    assert_eq!(at_stripe["country"], "ES");
    assert_eq!(at_stripe["email"], "taquilla@example.com");
    assert_eq!(
        at_stripe["metadata"],
        json!({"organizer_id": "org_madrid", "platform": "TMT"})
    );
    for capability in ["card_payments", "transfers"] {
        assert!(
            at_stripe["capabilities"][capability].is_string(),
            "{at_stripe}"
        );
    }
    // Again, with another country: the same account (made by the first call), a new link.
    let second = market.onboard("org_madrid", json!({"country": "MX"})).await;
    assert_eq!(second["accountId"], account.as_str());
    assert_ne!(second["onboardingUrl"], first["onboardingUrl"]);
    assert_eq!(market.accounts_of("org_madrid").await.len(), 1);
    // The link is the sandbox's onboarding page.
    let page = reqwest::get(second["onboardingUrl"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains(&account));

    let (status, _, read) = market.organizer("org_madrid").await;
    assert_eq!(status, 200, "{read}");
    let data = &read["data"];
    assert_eq!(data["accountId"], account.as_str());
    assert_eq!(
        (
            data["chargesEnabled"].as_bool(),
            data["connected"].as_bool()
        ),
        (Some(false), Some(true))
    );
    assert!(
        !data["requirementsDue"].as_array().unwrap().is_empty(),
        "{data}"
    );
    assert_eq!(data["disabledReason"], "requirements.past_due");
    assert_eq!(
        data["fee"].to_string(),
        r#"{"percent":3,"fixed":{},"min":{},"max":{}}"#
    );

    let shown = printed_json(
        &run(&market.db, &["organizers", "show", "org_madrid", "--json"]),
        0,
    );
    assert_eq!(
        (shown["account_id"].as_str(), shown["country"].as_str()),
        (Some(account.as_str()), Some("ES"))
    );
    let listed = printed_json(&run(&market.db, &["organizers", "list", "--json"]), 0);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_exit(
        &run(&market.db, &["organizers", "show", "org_nobody"]),
        1,
        "an unknown organiser",
    );
}

#[tokio::test]
async fn concurrent_first_onboardings_make_one_account() {
    let market = Market::start("direct", &[]).await;
    let calls = (0..8).map(|_| market.onboard("org_rush", json!({})));
    let answers = futures_util::future::join_all(calls).await;
    let accounts: std::collections::BTreeSet<&str> = answers
        .iter()
        .map(|a| a["accountId"].as_str().unwrap())
        .collect();
    assert_eq!(accounts.len(), 1, "{answers:?}");
    assert_eq!(market.accounts_of("org_rush").await.len(), 1);
}

#[tokio::test]
async fn onboarding_completes_by_the_accounts_event_and_deauthorisation_disconnects() {
    let market = Market::start("destination", &[]).await;
    let account = market
        .ready_organizer("org_lima", json!({"country": "US"}))
        .await;
    let (_, _, read) = market.organizer("org_lima").await;
    let data = &read["data"];
    assert_eq!(data["payoutsEnabled"], true);
    assert_eq!(data["requirementsDue"], json!([]));
    assert_eq!(data["disabledReason"], Value::Null);
    let onboarded = market.onboard("org_lima", json!({})).await;
    assert_eq!(
        (
            onboarded["accountId"].as_str(),
            onboarded["chargesEnabled"].as_bool()
        ),
        (Some(account.as_str()), Some(true))
    );

    let (status, _, body) = market
        .stripe(
            reqwest::Method::POST,
            &format!("/_sandbox/accounts/{account}/deauthorize"),
            &[],
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    eventually("the organiser is disconnected", PATIENCE, || async {
        let (_, _, read) = market.organizer("org_lima").await;
        (read["data"]["connected"] == false).then_some(())
    })
    .await;
    let events = market.ledger().await.list_events(100).await.unwrap();
    let outcome = |kind: &str| {
        events
            .iter()
            .filter(|e| e.event_type.as_str() == kind)
            .map(|e| e.outcome.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(outcome("account.application.deauthorized"), ["applied"]);
    assert!(outcome("account.updated").contains(&"applied".to_string()));
    // Onboarding again gives the organiser a new account: the old one is gone for good.
    let again = market.onboard("org_lima", json!({})).await;
    assert_ne!(again["accountId"], account.as_str());
    assert_eq!(again["chargesEnabled"], false);
    let (_, _, read) = market.organizer("org_lima").await;
    assert_eq!(read["data"]["connected"], true);
}

#[tokio::test]
async fn onboarding_refuses_what_it_cannot_use_before_stripe() {
    let app = spawn_app_with(|c| c.connect.charge_type = Some(ChargeType::Destination)).await;
    let refused = |extra: Value| {
        let data = onboarding("org_1", extra);
        let app = &app;
        async move {
            let (status, _, body) = app.post(ONBOARD, json!({ "data": data })).await;
            (
                status,
                body["code"].as_str().unwrap_or_default().to_string(),
                body["error"].clone(),
            )
        }
    };
    for (extra, code) in [
        (json!({"organizerId": "org 1"}), "organizer_id_invalid"),
        (
            json!({"organizerId": "x".repeat(65)}),
            "organizer_id_invalid",
        ),
        (json!({"organizerId": null}), "organizer_id_invalid"),
        (json!({"country": "ZZ"}), "country_invalid"),
        (json!({"email": "not an email"}), "email_invalid"),
        (
            json!({"returnUrl": "http://tickets.example/done"}),
            "url_invalid",
        ),
        (json!({"refreshUrl": "javascript:alert(1)"}), "url_invalid"),
        (json!({"refreshUrl": null}), "url_invalid"),
        (json!({"fee": {"percent": 75}}), "fee_invalid"),
        (json!({"fee": {"fixed": {"eur": "-1"}}}), "fee_invalid"),
    ] {
        let (status, got, _) = refused(extra.clone()).await;
        assert_eq!((status, got.as_str()), (400, code), "{extra}");
    }
    let (_, _, error) = refused(json!({"country": "ZZ"})).await;
    assert_eq!(error, "País inválido");
    assert!(
        app.stripe_requests().await.is_empty(),
        "nothing reached Stripe"
    );
    let (status, _, body) = app
        .post(GET_ORGANIZER, json!({"data": {"organizerId": "org_none"}}))
        .await;
    assert_eq!(code(status, &body), (404, "organizer_not_found"));
    assert_eq!(body["error"], "Organizador no encontrado");

    let off = spawn_app().await;
    let (status, _, body) = off
        .post(ONBOARD, json!({ "data": onboarding("org_1", json!({})) }))
        .await;
    assert_eq!(code(status, &body), (409, "connect_disabled"));
    assert!(off.stripe_requests().await.is_empty());
}

/// An account as Stripe sends it in `account.updated`.
fn account(id: &str, charges: bool, due: &[&str]) -> Value {
    json!({"id": id, "object": "account", "type": "express", "charges_enabled": charges,
           "payouts_enabled": charges, "details_submitted": charges,
           "requirements": {"currently_due": due,
                            "disabled_reason": if charges { Value::Null } else { json!("requirements.past_due") }},
           "metadata": {"organizer_id": "org_events", "platform": "TMT"}})
}

/// The organiser `org_events` as `stripe_get_organizer` answers it: its `data`.
async fn read(app: &TestApp) -> Value {
    let (status, _, body) = app
        .post(
            GET_ORGANIZER,
            json!({"data": {"organizerId": "org_events"}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["data"].clone()
}

/// A Connect event: `object` on the connected account `account`.
fn connect_event(id: &str, kind: &str, object: Value, created: i64, account: &str) -> Value {
    let mut e = event(id, kind, object, created);
    e["account"] = json!(account);
    e
}

#[tokio::test]
async fn account_events_are_applied_once_and_the_newest_wins() {
    let app = spawn_app_with(|c| c.connect.charge_type = Some(ChargeType::Direct)).await;
    Mock::given(method("POST"))
        .and(path("/v1/accounts"))
        .respond_with(ResponseTemplate::new(200).set_body_json(account(
            "acct_1Events",
            false,
            &["external_account"],
        )))
        .mount(&app.stripe)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/account_links"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "account_link", "created": now(), "expires_at": now() + 300,
            "url": "https://connect.stripe.com/setup/e/acct_1Events/abc"})))
        .mount(&app.stripe)
        .await;
    let (status, _, body) = app
        .post(
            ONBOARD,
            json!({"data": onboarding("org_events", json!({}))}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["onboardingUrl"],
        "https://connect.stripe.com/setup/e/acct_1Events/abc"
    );
    let created = app.stripe_calls("POST", "/v1/accounts").await;
    assert_eq!(created.len(), 1);
    let sent = form(&created[0]);
    for pair in [
        ("type", "express"),
        ("country", "MX"),
        ("capabilities[card_payments][requested]", "true"),
        ("capabilities[transfers][requested]", "true"),
        ("metadata[organizer_id]", "org_events"),
        ("metadata[platform]", "TMT"),
    ] {
        assert!(
            sent.contains(&(pair.0.to_string(), pair.1.to_string())),
            "{pair:?} in {sent:?}"
        );
    }
    let key = created[0]
        .headers
        .get("idempotency-key")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        key.starts_with("tmt-"),
        "a key derived from the organiser: {key}"
    );
    let links = app.stripe_calls("POST", "/v1/account_links").await;
    assert_eq!(
        form_value(&links[0], "type").as_deref(),
        Some("account_onboarding")
    );
    assert_eq!(
        form_value(&links[0], "account").as_deref(),
        Some("acct_1Events")
    );

    let t = now() + 10;
    let ready = connect_event(
        "evt_acct_2",
        "account.updated",
        account("acct_1Events", true, &[]),
        t + 2,
        "acct_1Events",
    );
    let older = connect_event(
        "evt_acct_1",
        "account.updated",
        account("acct_1Events", false, &["tos_acceptance.date"]),
        t,
        "acct_1Events",
    );
    let stranger = connect_event(
        "evt_acct_x",
        "account.updated",
        account("acct_1Other", true, &[]),
        t,
        "acct_1Other",
    );
    for e in [&ready, &ready, &older, &stranger] {
        let (status, body) = app.deliver(e).await;
        assert_eq!(status, 200, "{body}");
    }
    let data = read(&app).await;
    assert_eq!(
        (
            data["chargesEnabled"].as_bool(),
            data["requirementsDue"].clone()
        ),
        (Some(true), json!([]))
    );
    let outcomes: Vec<(String, String)> = app
        .ledger()
        .await
        .list_events(10)
        .await
        .unwrap()
        .into_iter()
        .rev()
        .map(|e: EventRow| (e.id, e.outcome.to_string()))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("evt_acct_2".to_string(), "applied".to_string()),
            ("evt_acct_1".into(), "ignored".into()),
            ("evt_acct_x".into(), "foreign".into()),
        ]
    );
    // Deauthorised: disconnected for good, whatever comes after.
    let gone = connect_event(
        "evt_acct_3",
        "account.application.deauthorized",
        json!({"id": "ca_platform", "object": "application"}),
        t + 3,
        "acct_1Events",
    );
    let later = connect_event(
        "evt_acct_4",
        "account.updated",
        account("acct_1Events", true, &[]),
        t + 9,
        "acct_1Events",
    );
    for e in [&gone, &later, &gone] {
        let (status, body) = app.deliver(e).await;
        assert_eq!(status, 200, "{body}");
    }
    let data = read(&app).await;
    assert_eq!(
        (
            data["connected"].as_bool(),
            data["chargesEnabled"].as_bool()
        ),
        (Some(false), Some(true))
    );
}

#[tokio::test]
#[ignore = "needs PostgreSQL at TMT_TEST_POSTGRES_URL"]
async fn concurrent_first_onboardings_on_three_postgres_instances_make_one_account() {
    let cluster = PostgresCluster::start(&[("CONNECT_CHARGE_TYPE", "destination")]).await;
    let calls = (0..12).map(|n| {
        let cluster = &cluster;
        async move {
            cluster
                .call(n % 3, ONBOARD, onboarding("org_three", json!({})))
                .await
        }
    });
    let answers = futures_util::future::join_all(calls).await;
    let mut accounts = std::collections::BTreeSet::new();
    for (status, _, body) in &answers {
        assert_eq!(*status, 200, "{body}");
        accounts.insert(body["data"]["accountId"].as_str().unwrap().to_string());
    }
    assert_eq!(accounts.len(), 1, "{accounts:?}");
    assert_eq!(cluster.accounts_of("org_three").await.len(), 1);
    let ledger = open_ledger(&cluster.db).await;
    let row = ledger.organizer("org_three").await.unwrap().unwrap();
    assert_eq!(row.account_id.as_ref(), accounts.iter().next());
}

#[tokio::test]
async fn the_openapi_document_describes_connect() {
    let app = spawn_app().await;
    let (status, _, body) = app.get("/openapi.json").await;
    assert_eq!(status, 200);
    let doc: Value = serde_json::from_str(&body).unwrap();
    for path in [ONBOARD, GET_ORGANIZER] {
        let post = &doc["paths"][path]["post"];
        assert_eq!(post["tags"], json!(["organizers"]), "{path}");
        assert!(post["security"].to_string().contains("api_token"), "{path}");
    }
    let schemas = &doc["components"]["schemas"];
    for (schema, fields) in [
        ("CreateInput", &["organizerId", "tickets", "feePaidBy"][..]),
        (
            "RefundInput",
            &["refundApplicationFee", "reverseTransfer"][..],
        ),
        (
            "CreatedData",
            &["organizerId", "applicationFee", "stripeAccount"][..],
        ),
        ("RefundedData", &["applicationFeeRefunded"][..]),
        (
            "OnboardInput",
            &[
                "organizerId",
                "country",
                "email",
                "returnUrl",
                "refreshUrl",
                "fee",
            ][..],
        ),
        (
            "OnboardedData",
            &["accountId", "onboardingUrl", "expiresAt", "chargesEnabled"][..],
        ),
        (
            "OrganizerData",
            &["requirementsDue", "disabledReason", "connected", "fee"][..],
        ),
    ] {
        // A schema with a flattened part is an allOf; the fields are in one of its parts.
        let parts = match schemas[schema]["allOf"].as_array() {
            Some(parts) => parts.clone(),
            None => vec![schemas[schema].clone()],
        };
        for field in fields {
            let found = parts.iter().any(|p| p["properties"][field].is_object());
            assert!(found, "{schema}.{field}");
        }
    }
    let codes = schemas["ErrorCode"]["enum"].to_string();
    for code in [
        "organizer_not_ready",
        "organizer_required",
        "connect_disabled",
        "refund_option_invalid",
    ] {
        assert!(codes.contains(code), "{code}");
    }
    let create = &doc["paths"][CREATE]["post"]["responses"]["409"]["description"];
    assert!(
        create.as_str().unwrap().contains("organizer_not_ready"),
        "{create}"
    );
}
