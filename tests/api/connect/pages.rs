//! The pages of Stripe Connect over HTTP (docs/pages.md): the dashboard's organisers, a
//! payment's organiser and fee, the payments of one organiser, and what the checkout demo
//! reads to sell for one. In Chromium: tests/browser/pages.mjs.

use serde_json::{json, Value};

use super::*;

async fn page(url: String) -> (u16, String) {
    let r = reqwest::get(url).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn the_dashboard_shows_organisers_their_payments_and_fees() {
    let market = Market::start("destination", &[("PLATFORM_FEE_PERCENT", "10")]).await;
    let base = market.server.address.clone();
    market.ready_organizer("org_ready", json!({})).await;
    market.onboard("org_waiting", json!({})).await;
    let pi = market
        .create(json!({"amount": 20, "currency": "eur", "organizerId": "org_ready"}))
        .await["paymentIntentId"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _, paid) = market.pay(&pi, "pm_card_visa", None).await;
    assert_eq!(status, 200, "{paid}");
    market.reaches(&pi, "succeeded").await;
    let (status, body) = page(format!("{base}/dashboard/organizers")).await;
    assert_eq!(status, 200);
    assert!(
        body.contains(r#"href="/dashboard/organizers/org_ready""#),
        "{body}"
    );
    assert!(
        body.contains("org_waiting") && body.contains("external_account"),
        "{body}"
    );
    let (status, body) = page(format!("{base}/dashboard/organizers/org_ready")).await;
    assert_eq!(status, 200);
    assert!(
        body.contains(&format!(r#"data-id="{pi}""#)),
        "its payment: {body}"
    );
    assert!(body.contains("2.00 EUR"), "its fees: {body}");
    let (status, _) = page(format!("{base}/dashboard/organizers/org_nobody")).await;
    assert_eq!(status, 404);
    let (_, body) = page(format!("{base}/dashboard/payments/{pi}")).await;
    assert!(
        body.contains(r#"<a href="/dashboard/organizers/org_ready">org_ready</a>"#),
        "{body}"
    );
    assert!(body.contains("2.00 EUR"), "the fee: {body}");
    let (_, body) = page(format!("{base}/dashboard?organizer=org_waiting")).await;
    assert!(!body.contains(&pi), "another organiser's list: {body}");
    let (_, body) = page(format!("{base}/dashboard?organizer=org_ready")).await;
    assert!(body.contains(&pi), "{body}");

    let (status, body) = page(format!("{base}/demo/organizers")).await;
    assert_eq!(status, 200);
    let demo: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(demo["connect"], "destination");
    let ready: Vec<(&str, bool)> = demo["organizers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["id"].as_str().unwrap(), o["ready"].as_bool().unwrap()))
        .collect();
    assert_eq!(ready, [("org_waiting", false), ("org_ready", true)]);
}

#[tokio::test]
async fn the_organisers_pages_want_a_token_like_the_rest_of_the_dashboard() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        &sqlite_url(dir.path()),
        &[
            ("API_TOKENS", "organisers-pages-token-0001"),
            ("CONNECT_CHARGE_TYPE", "direct"),
        ],
    )
    .await;
    for path in ["/dashboard/organizers", "/dashboard/organizers/org_1"] {
        let (status, body) = page(format!("{}{path}", server.address)).await;
        assert_eq!(status, 401, "{path}");
        assert!(!body.contains("Totals"), "{body}");
    }
}
