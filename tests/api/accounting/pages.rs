//! The dashboard's accounting pages: a period's statement with the CSV download (the same file
//! the command writes), payouts with the payments each settled, and a payment's fee, net and
//! payout.

use reqwest::Method;
use serde_json::json;

use super::*;

async fn page(m: &Market, path: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let r = reqwest::get(format!("{}{path}", m.server.address))
        .await
        .unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    (status, headers, r.text().await.unwrap())
}

#[tokio::test]
async fn statements_payouts_and_a_payments_fee_net_and_payout_on_the_pages() {
    let m = shop(&[("SETTLEMENT_INTERVAL_SECS", "1")]).await;
    let pi = paid(
        &m,
        "20.00",
        "usd",
        json!({"organizer": "org_pages"}),
        "pm_card_visa",
    )
    .await;
    let ledger = m.ledger().await;

    // Before any round: the fee is not known, and the page says so rather than 0.
    let (status, _, before) = page(&m, &format!("/dashboard/payments/{pi}")).await;
    assert_eq!(status, 200);
    assert!(
        before.contains("not known yet") || before.contains("0.88 USD"),
        "{before}"
    );

    let (status, _, made) = m.stripe(Method::POST, "/_sandbox/payouts", &[], None).await;
    assert_eq!(status, 200, "{made}");
    let po = made["data"][0]["id"].as_str().unwrap().to_string();
    eventually("the payout is itemised", PATIENCE, || async {
        ledger
            .payout(&po)
            .await
            .unwrap()
            .filter(|p| p.items.is_some())
    })
    .await;

    let (_, _, payment) = page(&m, &format!("/dashboard/payments/{pi}")).await;
    assert!(payment.contains("id=\"stripe-fee\">0.88 USD"), "{payment}");
    assert!(payment.contains("19.12 USD"), "the net: {payment}");
    assert!(payment.contains(&po), "the payout: {payment}");

    let (status, _, payouts) = page(&m, "/dashboard/payouts").await;
    assert_eq!(status, 200);
    assert!(payouts.contains(&format!("data-id=\"{po}\"")), "{payouts}");
    assert!(
        payouts.contains(&format!("data-payment=\"{pi}\"")),
        "{payouts}"
    );
    assert!(payouts.contains("items add up"), "{payouts}");

    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let query = format!("from={today}&to={today}&organizer=org_pages");
    let (status, _, statements) = page(&m, &format!("/dashboard/statements?{query}")).await;
    assert_eq!(status, 200);
    assert!(statements.contains("data-currency=\"usd\""), "{statements}");
    assert!(
        statements.contains("data-minor=\"1912\""),
        "net after fees: {statements}"
    );
    let link = format!("/dashboard/statements.csv?{}", query.replace('&', "&amp;"));
    assert!(statements.contains(&link), "{statements}");

    let (status, headers, csv) = page(&m, &format!("/dashboard/statements.csv?{query}")).await;
    assert_eq!(status, 200);
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert!(headers["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    let by_command = m.cli(
        &[
            "statement",
            "--from",
            &today,
            "--to",
            &today,
            "--organizer",
            "org_pages",
            "--format",
            "csv",
        ],
        &[],
    );
    assert_exit(&by_command, 0, "statement --format csv");
    assert_eq!(
        csv.as_bytes(),
        by_command.stdout,
        "the download is the command's file"
    );
    assert!(csv.contains(&format!("{pi},")), "{csv}");

    // The dashboard's own totals do not call gross less refunds "net".
    let (_, _, dashboard) = page(&m, "/dashboard").await;
    assert!(dashboard.contains("After refunds"), "{dashboard}");
    assert!(!dashboard.contains(">Net<"), "{dashboard}");
}
