//! List endpoints: order, limit, cursors both ways, created filters, per-endpoint filters and
//! Stripe's errors for bad values.

use serde_json::Value;

use crate::helpers::*;

/// Walks every page forwards with `starting_after`, as the SDKs' auto-pagination does.
async fn walk(a: &Api, path_and_query: &str) -> (Vec<String>, usize) {
    let mut seen = Vec::new();
    let mut pages = 0;
    let mut cursor: Option<String> = None;
    loop {
        let sep = if path_and_query.contains('?') {
            '&'
        } else {
            '?'
        };
        let url = match &cursor {
            Some(c) => format!("{path_and_query}{sep}starting_after={c}"),
            None => path_and_query.to_string(),
        };
        let (status, page) = a.get(&url).await;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        let page_ids = ids(&page);
        seen.extend(page_ids.iter().cloned());
        if page["has_more"] != true {
            return (seen, pages);
        }
        cursor = page_ids.last().cloned();
    }
}

#[tokio::test]
async fn pages_forwards_and_backwards_newest_first() {
    let a = api(None).await;
    let mut created = Vec::new();
    for i in 0..25 {
        let pi = a.create(&format!("amount={}&currency=usd", 100 + i)).await;
        created.push(pi["id"].as_str().unwrap().to_string());
    }
    let newest_first: Vec<String> = created.iter().rev().cloned().collect();
    let (status, first) = a.get("/v1/payment_intents").await;
    assert_eq!(status, 200);
    assert_eq!(
        (first["object"].as_str(), first["url"].as_str()),
        (Some("list"), Some("/v1/payment_intents"))
    );
    assert_eq!(ids(&first), newest_first[..10], "default limit 10");
    assert_eq!(first["has_more"], true);
    let (seen, pages) = walk(&a, "/v1/payment_intents?limit=10").await;
    assert_eq!((seen.clone(), pages), (newest_first.clone(), 3));
    // Backwards from the oldest: each page is the one just newer, still newest first.
    let (_, back) = a
        .get(&format!(
            "/v1/payment_intents?limit=10&ending_before={}",
            created[0]
        ))
        .await;
    assert_eq!(ids(&back), newest_first[14..24]);
    assert_eq!(back["has_more"], true);
    let (_, back2) = a
        .get(&format!(
            "/v1/payment_intents?limit=10&ending_before={}",
            ids(&back)[0]
        ))
        .await;
    assert_eq!(ids(&back2), newest_first[4..14]);
    let (_, back3) = a
        .get(&format!(
            "/v1/payment_intents?limit=10&ending_before={}",
            ids(&back2)[0]
        ))
        .await;
    assert_eq!(ids(&back3), newest_first[..4]);
    assert_eq!(back3["has_more"], false);
    let (_, all) = a.get("/v1/payment_intents?limit=100").await;
    assert_eq!(
        (ids(&all), all["has_more"].as_bool()),
        (newest_first, Some(false))
    );
}

#[tokio::test]
async fn created_filters_and_endpoint_filters() {
    let a = api(None).await;
    let one = a.paid(500, "pm_card_visa", "").await;
    let two = a.paid(600, "pm_card_mastercard", "").await;
    let created = one["created"].as_i64().unwrap();
    let (_, all) = a
        .get(&format!("/v1/payment_intents?created[gte]={created}"))
        .await;
    assert!(ids(&all).contains(&one["id"].as_str().unwrap().to_string()));
    let (_, none) = a
        .get(&format!("/v1/payment_intents?created[lt]={created}"))
        .await;
    assert_eq!(ids(&none), Vec::<String>::new());
    let (_, future) = a
        .get(&format!(
            "/v1/payment_intents?created[gt]={}",
            created + 3600
        ))
        .await;
    assert!(ids(&future).is_empty());
    let (_, exact) = a
        .get(&format!(
            "/v1/payment_intents?created={}",
            two["created"].as_i64().unwrap()
        ))
        .await;
    assert!(ids(&exact).contains(&two["id"].as_str().unwrap().to_string()));
    let (_, charges) = a
        .get(&format!(
            "/v1/charges?payment_intent={}",
            one["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(ids(&charges), [one["latest_charge"].as_str().unwrap()]);
    assert_eq!(charges["url"], "/v1/charges");
    let (_, expanded) = a
        .get("/v1/payment_intents?expand[]=data.latest_charge&limit=1")
        .await;
    assert_eq!(expanded["data"][0]["latest_charge"]["object"], "charge");
    // Events: exact type, wildcard, several types.
    let (_, succeeded) = a.get("/v1/events?type=payment_intent.succeeded").await;
    assert_eq!(ids(&succeeded).len(), 2);
    let (_, charge_events) = a.get("/v1/events?type=charge.*").await;
    assert!(types(&charge_events)
        .iter()
        .all(|t| *t == "charge.succeeded"));
    let (_, several) = a
        .get("/v1/events?types[]=payment_intent.created&types[]=charge.succeeded")
        .await;
    let several = types(&several);
    assert_eq!(several.len(), 4);
    assert!(several
        .iter()
        .all(|t| ["payment_intent.created", "charge.succeeded"].contains(t)));
    // A cursor taken from the unfiltered list still places a filtered one.
    let (_, events) = a.get("/v1/events?limit=100").await;
    let newest = ids(&events)[0].clone();
    let (_, after) = a
        .get(&format!(
            "/v1/events?type=payment_intent.created&starting_after={newest}"
        ))
        .await;
    assert_eq!(ids(&after).len(), 2);
}

#[tokio::test]
async fn bad_list_parameters_get_stripes_errors() {
    let a = api(None).await;
    let cases: [(&str, Option<&str>, &str); 9] = [
        ("limit=0", Some("limit"), "greater than or equal to 1"),
        ("limit=101", Some("limit"), "less than or equal to 100"),
        ("limit=ten", Some("limit"), "Invalid integer: ten"),
        (
            "created[gte]=soon",
            Some("created[gte]"),
            "Invalid integer: soon",
        ),
        (
            "created[after]=1",
            Some("created[after]"),
            "unknown parameter",
        ),
        (
            "starting_after=pi_missing",
            Some("starting_after"),
            "No such payment_intent: 'pi_missing'",
        ),
        (
            "ending_before=pi_missing",
            Some("ending_before"),
            "No such payment_intent",
        ),
        ("starting_after=a&ending_before=b", None, "only specify one"),
        ("colour=red", Some("colour"), "unknown parameter"),
    ];
    for (query, param, message) in cases {
        let (status, body) = a.get(&format!("/v1/payment_intents?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        let error = &body["error"];
        assert_eq!(error["type"], "invalid_request_error", "{query}");
        assert_eq!(error["param"].as_str(), param, "{query}: {body}");
        assert!(
            error["message"].as_str().unwrap().contains(message),
            "{query}: {body}"
        );
    }
    let (status, body) = a
        .get("/v1/events?type=charge.succeeded&types[]=charge.failed")
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body): (u16, Value) = a.get("/v1/charges?payment_intent=pi_none").await;
    assert_eq!((status, ids(&body).len()), (200, 0));
}
