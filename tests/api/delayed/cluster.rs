//! Three instances on one PostgreSQL ledger: creates for one buyer spread over them make one
//! Customer, and a transfer paid in two parts, with every one of Stripe's events delivered
//! again to every instance in any order, tells the platform each step once and in order.

use serde_json::json;

use super::{told_exactly, CREATE};
use crate::connect::{deliver_shuffled, PostgresCluster, StripeSide};
use crate::helpers::*;

#[tokio::test]
#[ignore = "needs PostgreSQL at TMT_TEST_POSTGRES_URL"]
async fn a_transfer_in_two_parts_on_three_instances() {
    let platform = Receiver::start(0).await;
    let cluster = PostgresCluster::start(&platform.env()).await;
    let data = json!({"amount": "500.00", "currency": "mxn", "holdSeconds": 600,
                      "paymentMethodTypes": ["customer_balance"],
                      "customerEmail": "ana@example.mx"});
    let creates = (0..3).map(|n| cluster.call(n, CREATE, data.clone()));
    let mut pis = Vec::new();
    for (status, _, body) in futures_util::future::join_all(creates).await {
        assert_eq!(status, 200, "{body}");
        pis.push(
            body["data"]["paymentIntentId"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let mut customers = std::collections::BTreeSet::new();
    for pi in &pis {
        let at_stripe = cluster
            .at_stripe(&format!("/v1/payment_intents/{pi}"), None)
            .await;
        customers.insert(at_stripe["customer"].as_str().unwrap().to_string());
    }
    assert_eq!(customers.len(), 1, "one Customer per e-mail: {customers:?}");
    let customer = customers.into_iter().next().unwrap();
    // The oldest payment is paid first, in two parts; then the next ones.
    let fund = |amount: &'static str| {
        let path = format!("/v1/test_helpers/customers/{customer}/fund_cash_balance");
        let cluster = &cluster;
        async move {
            let form = [("amount", amount), ("currency", "mxn")];
            let (status, _, body) = cluster
                .stripe(reqwest::Method::POST, &path, &form, None)
                .await;
            assert_eq!(status, 200, "{body}");
        }
    };
    fund("20000").await;
    // The platform hears of the first part before the rest arrives (a payment whose rest came
    // first is simply paid: it is not told it was paid in part after it succeeded).
    let paid = eventually("one payment paid in part", PATIENCE * 2, || async {
        pis.iter()
            .find(|pi| !platform.of(pi, "payment.partially_funded").is_empty())
            .cloned()
    })
    .await;
    fund("30000").await;
    cluster.reaches(&paid, "succeeded").await;
    let addresses: Vec<String> = cluster.servers.iter().map(|s| s.address.clone()).collect();
    let events = cluster.events(None).await;
    deliver_shuffled(&addresses, &events, 2).await;
    told_exactly(
        &platform,
        &paid,
        &[
            "payment.awaiting_payment",
            "payment.partially_funded",
            "payment.succeeded",
        ],
    )
    .await;
    for pi in pis.iter().filter(|pi| **pi != paid) {
        told_exactly(&platform, pi, &["payment.awaiting_payment"]).await;
    }
}
