//! Connect through the sandbox's HTTP surface: connected accounts and their onboarding (by the
//! control and by the onboarding page's form), `Stripe-Account` scoping both ways, destination
//! and direct charges with their transfers and application fees, refunds that return the fee
//! and reverse the transfer in proportion, reversals and fee refunds, idempotent replays,
//! Connect's events, deauthorisation, and a restart.

use serde_json::Value;
use stripe_sandbox::WebhookTarget;

use crate::helpers::*;

/// An Express account in Mexico with both capabilities requested; `extra` adds parameters.
pub(crate) async fn express(a: &Api, extra: &str) -> Value {
    a.post_ok(
        "/v1/accounts",
        &format!(
            "type=express&country=MX&email=organiser%40example.com\
             &capabilities[card_payments][requested]=true&capabilities[transfers][requested]=true{extra}"
        ),
    )
    .await
}

/// `POST /_sandbox/accounts/{id}/onboard` with `outcome`; answers the account.
async fn onboard(a: &Api, id: &str, outcome: &str) -> Value {
    a.post_ok(
        &format!("/_sandbox/accounts/{id}/onboard"),
        &format!("outcome={outcome}"),
    )
    .await
}

/// A new Express account onboarded in full through the control; its id.
pub(crate) async fn onboarded(a: &Api) -> String {
    let id = s(&express(a, "").await["id"]).to_string();
    onboard(a, &id, "complete").await;
    id
}

/// A destination charge of `amount` USD to `destination`, paid with `pm_card_visa`; `extra`
/// adds parameters (`&application_fee_amount=…`).
async fn destination_charge(a: &Api, amount: i64, destination: &str, extra: &str) -> Value {
    a.paid(
        amount,
        "pm_card_visa",
        &format!("&transfer_data[destination]={destination}{extra}"),
    )
    .await
}

/// The PaymentIntent's charge, transfer and application fee, as the platform sees them.
pub(crate) async fn money_of(a: &Api, pi: &Value) -> (Value, Value, Value) {
    let charge = a.charge_of(pi).await;
    let transfer = a
        .get_ok(&format!("/v1/transfers/{}", s(&charge["transfer"])))
        .await;
    let fee = a
        .get_ok(&format!(
            "/v1/application_fees/{}",
            s(&charge["application_fee"])
        ))
        .await;
    (charge, transfer, fee)
}

#[tokio::test]
async fn a_new_express_account_cannot_charge_or_pay_out_until_onboarded() {
    let a = api(None).await;
    let account = express(&a, "&metadata[organizer_id]=org-1&business_type=individual").await;
    assert!(s(&account["id"]).starts_with("acct_"), "{account}");
    assert_eq!(account["object"], "account");
    assert_eq!(account["type"], "express");
    assert_eq!(account["country"], "MX");
    assert_eq!(account["default_currency"], "mxn");
    assert_eq!(account["email"], "organiser@example.com");
    assert_eq!(account["metadata"]["organizer_id"], "org-1");
    assert_eq!(account["business_type"], "individual");
    for flag in ["charges_enabled", "payouts_enabled", "details_submitted"] {
        assert_eq!(account[flag], false, "{flag}: {account}");
    }
    let due = account["requirements"]["currently_due"].as_array().unwrap();
    assert!(
        due.iter().any(|f| f == "external_account")
            && due.iter().any(|f| f == "tos_acceptance.date"),
        "{due:?}"
    );
    assert_eq!(
        account["requirements"]["disabled_reason"],
        "requirements.past_due"
    );
    assert_eq!(
        account["capabilities"],
        serde_json::json!({"card_payments": "inactive", "transfers": "inactive"})
    );
    assert_eq!(
        account["controller"]["stripe_dashboard"]["type"], "express",
        "{account}"
    );
    let id = s(&account["id"]);
    assert_eq!(a.get_ok(&format!("/v1/accounts/{id}")).await, account);
    let listed = a.get_ok("/v1/accounts").await;
    assert_eq!(ids(&listed), vec![id.to_string()]);
}

#[tokio::test]
async fn accounts_come_in_every_form_stripe_takes_and_are_refused_as_stripe_refuses() {
    let a = api(None).await;
    for (form, kind, dashboard) in [
        ("type=standard", "standard", "full"),
        ("type=custom&capabilities[transfers][requested]=true", "custom", "none"),
        (
            "controller[fees][payer]=application&controller[losses][payments]=application\
             &controller[stripe_dashboard][type]=express",
            "express",
            "express",
        ),
        (
            "controller[fees][payer]=application&controller[losses][payments]=application\
             &controller[requirement_collection]=application&controller[stripe_dashboard][type]=none",
            "custom",
            "none",
        ),
        ("controller[stripe_dashboard][type]=none", "none", "none"),
        ("", "standard", "full"),
    ] {
        let account = a.post_ok("/v1/accounts", form).await;
        assert_eq!(account["type"], kind, "{form}: {account}");
        assert_eq!(
            account["controller"]["stripe_dashboard"]["type"], dashboard,
            "{form}"
        );
        assert_eq!(account["controller"]["type"], "application");
        assert_eq!(account["charges_enabled"], false);
    }
    let refused = [
        (
            "type=express&controller[stripe_dashboard][type]=express",
            "controller",
        ),
        ("type=platinum", "type"),
        ("type=express&country=XX", "country"),
        ("type=express&email=not-an-email", "email"),
        (
            "type=express&capabilities[card_payments][requested]=true",
            "capabilities[card_payments]",
        ),
        (
            "type=express&capabilities[klarna_payments][requested]=true",
            "capabilities[klarna_payments]",
        ),
        (
            "controller[requirement_collection]=application",
            "controller[requirement_collection]",
        ),
        ("type=express&individual[first_name]=Ana", "individual"),
    ];
    for (form, param) in refused {
        let (status, body) = a.post("/v1/accounts", form).await;
        assert_eq!(status, 400, "{form}: {body}");
        assert_eq!(body["error"]["param"], param, "{form}: {body}");
    }
    assert_eq!(ids(&a.get_ok("/v1/accounts?limit=100").await).len(), 6);
    let (status, body) = a.get("/v1/accounts/acct_unknown").await;
    assert_eq!(
        (status, s(&body["error"]["code"])),
        (403, "account_invalid")
    );
}

/// A webhook endpoint that accepts everything, and a sandbox delivering to it.
async fn delivering() -> (wiremock::MockServer, Api) {
    let receiver = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    let a = api(Some(WebhookTarget::new(
        receiver.uri(),
        "whsec_connect".into(),
    )))
    .await;
    (receiver, a)
}

/// Waits until `receiver` has been sent `n` events that `keep` accepts; returns them.
async fn delivered(
    receiver: &wiremock::MockServer,
    n: usize,
    keep: impl Fn(&Value) -> bool,
) -> Vec<Value> {
    eventually(&format!("{n} events delivered"), || async {
        let bodies: Vec<Value> = receiver
            .received_requests()
            .await?
            .iter()
            .map(|r| serde_json::from_slice(&r.body).unwrap())
            .filter(|e| keep(e))
            .collect();
        (bodies.len() == n).then_some(bodies)
    })
    .await
}

#[tokio::test]
async fn onboarding_through_the_control_completes_the_account_once() {
    let (receiver, a) = delivering().await;
    let id = s(&express(&a, "").await["id"]).to_string();
    let left = onboard(&a, &id, "incomplete").await;
    assert_eq!(left["details_submitted"], false);
    assert_eq!(left["charges_enabled"], false);
    assert_eq!(
        left["requirements"]["currently_due"],
        serde_json::json!([
            "external_account",
            "tos_acceptance.date",
            "tos_acceptance.ip"
        ])
    );
    // Leaving it incomplete again changes nothing and tells nobody.
    assert_eq!(onboard(&a, &id, "incomplete").await, left);
    let done = onboard(&a, &id, "complete").await;
    for flag in ["charges_enabled", "payouts_enabled", "details_submitted"] {
        assert_eq!(done[flag], true, "{flag}: {done}");
    }
    assert_eq!(done["requirements"]["currently_due"], serde_json::json!([]));
    assert_eq!(done["requirements"]["disabled_reason"], Value::Null);
    assert_eq!(
        done["capabilities"],
        serde_json::json!({"card_payments": "active", "transfers": "active"})
    );
    assert_eq!(
        done["external_accounts"]["data"][0]["object"],
        "bank_account"
    );
    assert_eq!(done["external_accounts"]["data"][0]["currency"], "mxn");
    assert_eq!(onboard(&a, &id, "complete").await, done);
    // The platform hears of each change, as an event of the connected account.
    let platform = a.get_ok("/v1/events?type=account.updated").await;
    assert_eq!(ids(&platform), Vec::<String>::new());
    let events = a.on(&id).get_ok("/v1/events?type=account.updated").await;
    assert_eq!(types(&events), vec!["account.updated", "account.updated"]);
    let last = &events["data"][0];
    assert_eq!(last["account"], id.as_str());
    assert_eq!(last["data"]["object"]["charges_enabled"], true);
    assert_eq!(
        last["data"]["previous_attributes"]["charges_enabled"],
        false
    );
    let (status, body) = a
        .post(&format!("/_sandbox/accounts/{id}/onboard"), "outcome=maybe")
        .await;
    assert_eq!((status, s(&body["error"]["param"])), (400, "outcome"));
    let event_ids = ids(&events);
    let sent = delivered(&receiver, 2, |e| {
        event_ids.iter().any(|id| e["id"] == id.as_str())
    })
    .await;
    assert!(sent.iter().all(|e| e["account"] == id.as_str()));
}

/// An Account Link for `account` back to `https://organiser.example/{back,again}`.
async fn link(a: &Api, account: &str) -> Value {
    a.post_ok(
        "/v1/account_links",
        &format!(
            "account={account}&type=account_onboarding\
             &return_url=https://organiser.example/back&refresh_url=https://organiser.example/again"
        ),
    )
    .await
}

/// The `value` of the page's hidden input `name`.
fn hidden<'h>(html: &'h str, name: &str) -> &'h str {
    let at = html
        .find(&format!("name=\"{name}\" value=\""))
        .unwrap_or_else(|| panic!("no {name} in {html}"));
    let rest = &html[at + name.len() + 15..];
    &rest[..rest.find('"').unwrap()]
}

/// The `action` of the page's form.
fn form_action(html: &str) -> &str {
    let at = html
        .find("action=\"")
        .unwrap_or_else(|| panic!("no form in {html}"));
    let rest = &html[at + 8..];
    &rest[..rest.find('"').unwrap()]
}

#[tokio::test]
async fn onboarding_through_the_page_sends_the_browser_back_as_chosen() {
    let a = api(None).await;
    let id = s(&express(&a, "").await["id"]).to_string();
    let made = link(&a, &id).await;
    assert_eq!(made["object"], "account_link");
    let expires = made["expires_at"].as_i64().unwrap() - made["created"].as_i64().unwrap();
    assert!((60..=900).contains(&expires), "{made}");
    let url = s(&made["url"]).to_string();
    assert!(
        url.starts_with(&format!("{}/_sandbox/onboarding/", a.base)),
        "{url}"
    );
    let web = no_redirects();
    let page = web.get(&url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains(">Complete</button>") && html.contains(">Leave incomplete</button>"));
    assert!(
        html.contains(&id) && html.contains("external_account"),
        "{html}"
    );
    let action = form_action(&html).to_string();
    assert_eq!(action, format!("{}/_sandbox/accounts/{id}/onboard", a.base));
    let token = hidden(&html, "link").to_string();
    // Leave incomplete: back to refresh_url, requirements still due.
    let left = web
        .post(&action)
        .form(&[("link", token.as_str()), ("outcome", "incomplete")])
        .send()
        .await
        .unwrap();
    assert_eq!(left.status(), 303);
    assert_eq!(
        left.headers()["location"],
        "https://organiser.example/again"
    );
    let account = a.get_ok(&format!("/v1/accounts/{id}")).await;
    assert_eq!(account["charges_enabled"], false);
    assert!(!account["requirements"]["currently_due"]
        .as_array()
        .unwrap()
        .is_empty());
    // The link worked once: its page now sends the browser to refresh_url.
    let again = web.get(&url).send().await.unwrap();
    assert_eq!(again.status(), 303);
    assert_eq!(
        again.headers()["location"],
        "https://organiser.example/again"
    );
    let reused = web
        .post(&action)
        .form(&[("link", token.as_str()), ("outcome", "complete")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        reused.headers()["location"],
        "https://organiser.example/again"
    );
    assert_eq!(a.get_ok(&format!("/v1/accounts/{id}")).await, account);
    // A fresh link, Complete: back to return_url, the account can charge.
    let html = web
        .get(s(&link(&a, &id).await["url"]))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let done = web
        .post(form_action(&html))
        .form(&[("link", hidden(&html, "link")), ("outcome", "complete")])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 303);
    assert_eq!(done.headers()["location"], "https://organiser.example/back");
    let account = a.get_ok(&format!("/v1/accounts/{id}")).await;
    assert_eq!(account["charges_enabled"], true);
    assert_eq!(account["details_submitted"], true);
    // Unknown links, and forms without a key or a link, get no further.
    let unknown = web
        .get(format!("{}/_sandbox/onboarding/nope", a.base))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let keyless = web
        .post(&action)
        .form(&[("outcome", "complete")])
        .send()
        .await
        .unwrap();
    assert_eq!(keyless.status(), 401);
    for (form, param) in [
        (format!("account={id}&type=account_onboarding&return_url=x&refresh_url=https://a.example"), "return_url"),
        (format!("account={id}&type=account_onboarding&return_url=https://a.example"), "refresh_url"),
        (format!("account={id}&type=account_update&return_url=https://a.example&refresh_url=https://a.example"), "type"),
        ("account=acct_nope&type=account_onboarding&return_url=https://a.example&refresh_url=https://a.example".to_string(), "account"),
    ] {
        let (status, body) = a.post("/v1/account_links", &form).await;
        assert_eq!((status, s(&body["error"]["param"])), (400, param), "{form}: {body}");
    }
}

#[tokio::test]
async fn every_object_is_scoped_to_the_account_it_was_made_on() {
    let a = api(None).await;
    let (one, two) = (onboarded(&a).await, onboarded(&a).await);
    let on_one = a.on(&one);
    let direct = on_one.paid(3000, "pm_card_visa", "").await;
    let platform = a.paid(1000, "pm_card_visa", "").await;
    let refund = on_one.refund(s(&direct["id"]), "&amount=100").await.1;
    let charge = s(&direct["latest_charge"]).to_string();
    let paths = [
        format!("/v1/payment_intents/{}", s(&direct["id"])),
        format!("/v1/charges/{charge}"),
        format!("/v1/refunds/{}", s(&refund["id"])),
        format!("/v1/payment_methods/{}", s(&direct["payment_method"])),
    ];
    for path in &paths {
        on_one.get_ok(path).await;
        for other in [&a, &a.on(&two)] {
            let (status, body) = other.get(path).await;
            assert_eq!(
                (status, s(&body["error"]["code"])),
                (404, "resource_missing"),
                "{path}"
            );
        }
    }
    let (status, body) = on_one
        .get(&format!("/v1/payment_intents/{}", s(&platform["id"])))
        .await;
    assert_eq!(
        (status, s(&body["error"]["code"])),
        (404, "resource_missing")
    );
    // A connected account's refund or capture cannot reach the platform's objects either.
    let (status, _) = on_one.refund(s(&platform["id"]), "").await;
    assert_eq!(status, 400);
    a.refund(s(&platform["id"]), "&amount=100").await;
    // Lists list only the account's own.
    for list in ["/v1/payment_intents", "/v1/charges", "/v1/refunds"] {
        let mine = ids(&on_one.get_ok(list).await);
        let theirs = ids(&a.get_ok(list).await);
        assert!(!mine.is_empty() && !theirs.is_empty(), "{list}");
        assert!(mine.iter().all(|id| !theirs.contains(id)), "{list}");
        assert!(ids(&a.on(&two).get_ok(list).await).is_empty(), "{list}");
    }
    let events = on_one.get_ok("/v1/events?limit=100").await;
    assert!(types(&events).contains(&"payment_intent.succeeded"));
    assert!(events["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["account"] == one.as_str()));
    let platform_events = a.get_ok("/v1/events?limit=100").await;
    assert!(platform_events["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e.get("account").is_none()));
    let (status, body) = a
        .get(&format!(
            "/v1/events?starting_after={}",
            s(&events["data"][0]["id"])
        ))
        .await;
    assert_eq!(
        (status, s(&body["error"]["code"])),
        (400, "resource_missing"),
        "{body}"
    );
    // An account the platform does not control is Stripe's 403, before anything else.
    for stranger in ["acct_1NotTheirsAtAll00", "pi_not_an_account"] {
        let (status, body) = a.on(stranger).get("/v1/payment_intents").await;
        assert_eq!(
            (status, s(&body["error"]["code"])),
            (403, "account_invalid"),
            "{body}"
        );
        assert!(s(&body["error"]["message"]).contains(stranger), "{body}");
    }
    // The account may read itself, not another.
    on_one.get_ok(&format!("/v1/accounts/{one}")).await;
    let (status, _) = on_one.get(&format!("/v1/accounts/{two}")).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn a_destination_charge_transfers_to_the_organiser_and_takes_the_fee_back() {
    let a = api(None).await;
    let org = onboarded(&a).await;
    let pi = destination_charge(
        &a,
        5000,
        &org,
        &format!("&application_fee_amount=450&on_behalf_of={org}"),
    )
    .await;
    assert_eq!(pi["transfer_data"]["destination"], org.as_str());
    assert_eq!(pi["application_fee_amount"], 450);
    assert_eq!(pi["on_behalf_of"], org.as_str());
    assert_eq!(pi["transfer_group"], format!("group_{}", s(&pi["id"])));
    let (charge, transfer, fee) = money_of(&a, &pi).await;
    assert_eq!(charge["transfer_data"]["destination"], org.as_str());
    assert_eq!(charge["application_fee_amount"], 450);
    assert_eq!(charge["on_behalf_of"], org.as_str());
    assert!(s(&charge["transfer"]).starts_with("tr_"));
    assert!(s(&charge["application_fee"]).starts_with("fee_"));
    // The whole amount goes to the organiser, who pays the fee back to the platform.
    assert_eq!(transfer["amount"], 5000);
    assert_eq!(transfer["destination"], org.as_str());
    assert_eq!(transfer["source_transaction"], charge["id"]);
    assert_eq!(
        (
            transfer["amount_reversed"].as_i64(),
            transfer["reversed"].as_bool()
        ),
        (Some(0), Some(false))
    );
    let payment = s(&transfer["destination_payment"]).to_string();
    assert!(payment.starts_with("py_"), "{transfer}");
    assert_eq!(fee["amount"], 450);
    assert_eq!(fee["account"], org.as_str());
    assert_eq!(fee["charge"], payment.as_str());
    assert_eq!(fee["originating_transaction"], charge["id"]);
    assert_eq!(
        (fee["amount_refunded"].as_i64(), fee["refunded"].as_bool()),
        (Some(0), Some(false))
    );
    // The organiser's side: the payment, which the platform cannot see.
    let paid = a.on(&org).get_ok(&format!("/v1/charges/{payment}")).await;
    assert_eq!(paid["amount"], 5000);
    assert_eq!(paid["source_transfer"], transfer["id"]);
    assert_eq!(paid["application_fee"], fee["id"]);
    assert_eq!(a.get(&format!("/v1/charges/{payment}")).await.0, 404);
    let events = a.get_ok("/v1/events?limit=100").await;
    let seen = types(&events);
    assert!(
        seen.contains(&"transfer.created") && seen.contains(&"application_fee.created"),
        "{seen:?}"
    );
    assert_eq!(
        ids(&a.get_ok(&format!("/v1/transfers?destination={org}")).await),
        vec![s(&transfer["id"]).to_string()]
    );
    assert_eq!(
        ids(&a
            .get_ok(&format!("/v1/application_fees?charge={payment}"))
            .await),
        vec![s(&fee["id"]).to_string()]
    );
    let expanded = a
        .get_ok(&format!(
            "/v1/charges/{}?expand[]=transfer&expand[]=application_fee",
            s(&charge["id"])
        ))
        .await;
    assert_eq!(expanded["transfer"]["id"], transfer["id"]);
    assert_eq!(expanded["application_fee"]["id"], fee["id"]);
    // With transfer_data[amount], only that much goes.
    let part = destination_charge(&a, 3000, &org, "&transfer_data[amount]=2500").await;
    let charge = a.charge_of(&part).await;
    assert_eq!(charge["transfer_data"]["amount"], 2500);
    let transfer = a
        .get_ok(&format!("/v1/transfers/{}", s(&charge["transfer"])))
        .await;
    assert_eq!(transfer["amount"], 2500);
    assert_eq!(charge["application_fee"], Value::Null);
}

#[tokio::test]
async fn manual_capture_transfers_what_is_captured_when_it_is_captured() {
    let a = api(None).await;
    let org = onboarded(&a).await;
    let held = destination_charge(
        &a,
        4000,
        &org,
        "&application_fee_amount=400&capture_method=manual",
    )
    .await;
    assert_eq!(held["status"], "requires_capture");
    assert_eq!(a.charge_of(&held).await["transfer"], Value::Null);
    assert!(ids(&a.get_ok("/v1/transfers").await).is_empty());
    a.intent_action(s(&held["id"]), "capture", "amount_to_capture=3000")
        .await;
    let (_, transfer, fee) = money_of(&a, &held).await;
    assert_eq!(transfer["amount"], 3000);
    assert_eq!(fee["amount"], 400);
}

#[tokio::test]
async fn a_direct_charge_lives_on_the_account_and_its_fee_on_the_platform() {
    let a = api(None).await;
    let org = onboarded(&a).await;
    let on_org = a.on(&org);
    let pi = on_org
        .paid(2000, "pm_card_visa", "&application_fee_amount=150")
        .await;
    assert_eq!(pi["application_fee_amount"], 150);
    assert!(s(&pi["application"]).starts_with("ca_"), "{pi}");
    let charge = on_org.charge_of(&pi).await;
    let fee_id = s(&charge["application_fee"]).to_string();
    let fee = a.get_ok(&format!("/v1/application_fees/{fee_id}")).await;
    assert_eq!(fee["amount"], 150);
    assert_eq!(fee["account"], org.as_str());
    assert_eq!(fee["charge"], charge["id"]);
    assert_eq!(fee["originating_transaction"], Value::Null);
    assert_eq!(
        on_org
            .get(&format!("/v1/application_fees/{fee_id}"))
            .await
            .0,
        404
    );
    assert!(ids(&a.get_ok("/v1/transfers").await).is_empty());
    // A refund on the account may return the fee; half of the charge, half of the fee.
    let refund = on_org
        .post_ok(
            "/v1/refunds",
            &format!(
                "payment_intent={}&amount=1000&refund_application_fee=true",
                s(&pi["id"])
            ),
        )
        .await;
    assert_eq!(refund["transfer_reversal"], Value::Null);
    let fee = a.get_ok(&format!("/v1/application_fees/{fee_id}")).await;
    assert_eq!(
        (fee["amount_refunded"].as_i64(), fee["refunded"].as_bool()),
        (Some(75), Some(false))
    );
    assert_eq!(fee["refunds"]["data"][0]["amount"], 75);
    let platform = types(&a.get_ok("/v1/events?limit=100").await).join(",");
    assert!(
        platform.contains("application_fee.created")
            && platform.contains("application_fee.refunded"),
        "{platform}"
    );
    let theirs = on_org.get_ok("/v1/events?limit=100").await;
    assert!(types(&theirs).contains(&"charge.refunded"));
    // Through the 3-D Secure page, the payment is still made on the account.
    let pi = on_org
        .create("amount=1500&currency=usd&application_fee_amount=100")
        .await;
    let (_, waiting) = on_org
        .confirm(
            s(&pi["id"]),
            "payment_method=pm_card_authenticationRequired&return_url=https://shop.example/done",
        )
        .await;
    let url = s(&waiting["next_action"]["redirect_to_url"]["url"]);
    let web = no_redirects();
    let html = web.get(url).send().await.unwrap().text().await.unwrap();
    let done = web
        .post(form_action(&html))
        .form(&[
            ("client_secret", hidden(&html, "client_secret")),
            ("outcome", "complete"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 303);
    let paid = on_org
        .get_ok(&format!("/v1/payment_intents/{}", s(&pi["id"])))
        .await;
    assert_eq!(paid["status"], "succeeded");
    let charge = on_org.charge_of(&paid).await;
    let fee = a
        .get_ok(&format!(
            "/v1/application_fees/{}",
            s(&charge["application_fee"])
        ))
        .await;
    assert_eq!(
        (fee["amount"].as_i64(), s(&fee["account"])),
        (Some(100), org.as_str())
    );
}

#[tokio::test]
async fn connect_payments_are_refused_as_stripe_refuses_them() {
    let a = api(None).await;
    let ready = onboarded(&a).await;
    let pending = s(&express(&a, "").await["id"]).to_string();
    let recipient = s(&a
        .post_ok(
            "/v1/accounts",
            "type=custom&capabilities[transfers][requested]=true",
        )
        .await["id"])
    .to_string();
    onboard(&a, &recipient, "complete").await;
    let create = |form: String| {
        let a = &a;
        async move {
            a.post(
                "/v1/payment_intents",
                &format!("amount=1000&currency=usd{form}"),
            )
            .await
        }
    };
    for (form, param, code) in [
        ("&application_fee_amount=100".to_string(), "application_fee_amount", ""),
        ("&transfer_data[destination]=acct_nope".to_string(), "transfer_data[destination]", "resource_missing"),
        (format!("&transfer_data[destination]={pending}"), "transfer_data[destination]", "insufficient_capabilities_for_transfer"),
        (format!("&transfer_data[destination]={ready}&application_fee_amount=1001"), "application_fee_amount", ""),
        (format!("&transfer_data[destination]={ready}&transfer_data[amount]=1001"), "transfer_data[amount]", ""),
        (format!("&transfer_data[destination]={ready}&transfer_data[amount]=900&application_fee_amount=10"), "application_fee_amount", ""),
        (format!("&transfer_data[destination]={ready}&on_behalf_of={recipient}"), "on_behalf_of", ""),
        (format!("&transfer_data[destination]={ready}&application_fee_amount=-1"), "application_fee_amount", ""),
        (format!("&transfer_data[account]={ready}"), "transfer_data[account]", "parameter_unknown"),
    ] {
        let (status, body) = create(form.clone()).await;
        assert_eq!(status, 400, "{form}: {body}");
        assert_eq!(body["error"]["param"], param, "{form}: {body}");
        assert_eq!(s(&body["error"]["code"]), code, "{form}: {body}");
    }
    // A destination charge's fee may be all of it; a direct charge's must be less.
    let (status, _) = create(format!(
        "&transfer_data[destination]={ready}&application_fee_amount=1000"
    ))
    .await;
    assert_eq!(status, 200);
    let (status, body) = a
        .on(&ready)
        .post(
            "/v1/payment_intents",
            "amount=1000&currency=usd&application_fee_amount=1000",
        )
        .await;
    assert_eq!(
        (status, s(&body["error"]["param"])),
        (400, "application_fee_amount")
    );
    let (status, _) = a
        .on(&ready)
        .post(
            "/v1/payment_intents",
            &format!("amount=1000&currency=usd&transfer_data[destination]={ready}"),
        )
        .await;
    assert_eq!(status, 400);
    // An account that cannot take charges yet refuses them at confirmation, as Stripe does:
    // directly, or as on_behalf_of.
    let on_pending = a.on(&pending);
    let pi = on_pending
        .create("amount=1000&currency=usd&application_fee_amount=10")
        .await;
    let (status, body) = on_pending
        .confirm(s(&pi["id"]), "payment_method=pm_card_visa")
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        s(&body["error"]["message"]).starts_with("Your account cannot currently make charges"),
        "{body}"
    );
    let pi = a
        .create(&format!("amount=1000&currency=usd&transfer_data[destination]={recipient}&on_behalf_of={recipient}"))
        .await;
    let (status, _) = a.confirm(s(&pi["id"]), "payment_method=pm_card_visa").await;
    assert_eq!(status, 400);
    assert!(ids(&a.get_ok("/v1/charges").await).is_empty());
    // A transfer's payment on the account is not refunded: its transfer is reversed.
    let paid = destination_charge(&a, 1000, &ready, "").await;
    let transfer = a
        .get_ok(&format!(
            "/v1/transfers/{}",
            s(&a.charge_of(&paid).await["transfer"])
        ))
        .await;
    let (status, body) = a
        .on(&ready)
        .post(
            "/v1/refunds",
            &format!("charge={}", s(&transfer["destination_payment"])),
        )
        .await;
    assert_eq!(
        (status, s(&body["error"]["param"])),
        (400, "charge"),
        "{body}"
    );
}

#[tokio::test]
async fn refunds_return_the_fee_and_reverse_the_transfer_in_proportion() {
    let a = api(None).await;
    let org = onboarded(&a).await;
    let pi = destination_charge(&a, 2000, &org, "&application_fee_amount=200").await;
    let both = "&refund_application_fee=true&reverse_transfer=true";
    let (status, half) = a.refund(s(&pi["id"]), &format!("&amount=1000{both}")).await;
    assert_eq!(status, 200, "{half}");
    let (_, transfer, fee) = money_of(&a, &pi).await;
    assert_eq!(transfer["amount_reversed"], 1000);
    assert_eq!(transfer["reversed"], false);
    assert_eq!(fee["amount_refunded"], 100);
    let reversal = &transfer["reversals"]["data"][0];
    assert_eq!(half["transfer_reversal"], reversal["id"]);
    assert_eq!(reversal["amount"], 1000);
    assert_eq!(reversal["source_refund"], half["id"]);
    // The organiser's payment is refunded by as much.
    let payment_refund = s(&reversal["destination_payment_refund"]).to_string();
    let back = a
        .on(&org)
        .get_ok(&format!("/v1/refunds/{payment_refund}"))
        .await;
    assert_eq!(back["amount"], 1000);
    let paid = a
        .on(&org)
        .get_ok(&format!(
            "/v1/charges/{}",
            s(&transfer["destination_payment"])
        ))
        .await;
    assert_eq!(paid["amount_refunded"], 1000);
    let seen = types(&a.get_ok("/v1/events?limit=100").await).join(",");
    assert!(
        seen.contains("transfer.reversed") && seen.contains("application_fee.refunded"),
        "{seen}"
    );

    // Odd amounts in three parts add up to exactly the fee and the transfer.
    let pi = destination_charge(&a, 1001, &org, "&application_fee_amount=101").await;
    for amount in [333, 334] {
        a.refund(s(&pi["id"]), &format!("&amount={amount}{both}"))
            .await;
    }
    let (_, transfer, fee) = money_of(&a, &pi).await;
    assert_eq!(
        (
            transfer["amount_reversed"].as_i64(),
            fee["amount_refunded"].as_i64()
        ),
        (Some(667), Some(67))
    );
    let (status, last) = a.refund(s(&pi["id"]), both).await;
    assert_eq!((status, last["amount"].as_i64()), (200, Some(334)));
    let (_, transfer, fee) = money_of(&a, &pi).await;
    assert_eq!(
        (
            transfer["amount_reversed"].as_i64(),
            transfer["reversed"].as_bool()
        ),
        (Some(1001), Some(true))
    );
    assert_eq!(
        (fee["amount_refunded"].as_i64(), fee["refunded"].as_bool()),
        (Some(101), Some(true))
    );
    let parts: Vec<i64> = fee["refunds"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["amount"].as_i64().unwrap())
        .collect();
    assert_eq!(parts.iter().sum::<i64>(), 101, "{parts:?}");
    assert_eq!(transfer["reversals"]["data"].as_array().unwrap().len(), 3);

    // Without the flags, a refund leaves the transfer and the fee alone.
    let pi = destination_charge(&a, 1000, &org, "&application_fee_amount=100").await;
    let (_, plain) = a.refund(s(&pi["id"]), "&amount=500").await;
    assert_eq!(plain["transfer_reversal"], Value::Null);
    let (_, transfer, fee) = money_of(&a, &pi).await;
    assert_eq!(
        (
            transfer["amount_reversed"].as_i64(),
            fee["amount_refunded"].as_i64()
        ),
        (Some(0), Some(0))
    );
}

#[tokio::test]
async fn reversals_and_fee_refunds_stop_at_what_is_left_and_replay_by_key() {
    let a = api(None).await;
    let org = onboarded(&a).await;
    let pi = destination_charge(&a, 3000, &org, "&application_fee_amount=300").await;
    let (_, transfer, fee) = money_of(&a, &pi).await;
    let reversals = format!("/v1/transfers/{}/reversals", s(&transfer["id"]));
    let (status, first) = a
        .replayed(
            &reversals,
            "amount=1000&refund_application_fee=true&metadata[why]=dispute",
            "amount=1000&metadata[why]=dispute&refund_application_fee=true",
            "rev-1",
        )
        .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["object"], "transfer_reversal");
    assert_eq!(first["metadata"]["why"], "dispute");
    let (_, transfer, fee_after) = money_of(&a, &pi).await;
    assert_eq!(
        transfer["amount_reversed"], 1000,
        "replayed, not reversed twice"
    );
    assert_eq!(fee_after["amount_refunded"], 100);
    let (status, body) = a.post(&reversals, "amount=2001").await;
    assert_eq!(
        (status, s(&body["error"]["param"])),
        (400, "amount"),
        "{body}"
    );
    a.post_ok(&reversals, "").await;
    let (status, body) = a.post(&reversals, "amount=1").await;
    assert_eq!(status, 400, "{body}");
    let listed = a.get_ok(&reversals).await;
    assert_eq!(ids(&listed).len(), 2);
    assert_eq!(
        a.get_ok(&format!("{reversals}/{}", s(&first["id"]))).await,
        first
    );

    let refunds = format!("/v1/application_fees/{}/refunds", s(&fee["id"]));
    let (status, refund) = a
        .replayed(&refunds, "amount=50", "amount=50", "fee-1")
        .await;
    assert_eq!((status, refund["amount"].as_i64()), (200, Some(50)));
    assert_eq!(refund["fee"], fee["id"]);
    let fee = a
        .get_ok(&format!("/v1/application_fees/{}", s(&fee["id"])))
        .await;
    assert_eq!(fee["amount_refunded"], 150);
    let (status, body) = a.post(&refunds, "amount=151").await;
    assert_eq!(
        (status, s(&body["error"]["code"])),
        (400, "amount_too_large"),
        "{body}"
    );
    a.post_ok(&refunds, "").await;
    let (status, _) = a.post(&refunds, "").await;
    assert_eq!(status, 400);
    assert_eq!(ids(&a.get_ok(&refunds).await).len(), 3);

    // Transfers of the platform's own, and their keys.
    let direct =
        format!("amount=700&currency=usd&destination={org}&transfer_group=ORDER-1&metadata[k]=v");
    let (status, made) = a.replayed("/v1/transfers", &direct, &direct, "tr-1").await;
    assert_eq!(status, 200, "{made}");
    assert_eq!(made["transfer_group"], "ORDER-1");
    assert_eq!(
        ids(&a.get_ok("/v1/transfers?transfer_group=ORDER-1").await),
        vec![s(&made["id"]).to_string()]
    );
    let updated = a
        .post_ok(
            &format!("/v1/transfers/{}", s(&made["id"])),
            "description=Prize",
        )
        .await;
    assert_eq!(updated["description"], "Prize");
    assert!(types(&a.get_ok("/v1/events?type=transfer.updated").await).len() == 1);
    let (status, body) = a
        .post(
            "/v1/transfers",
            "amount=700&currency=usd&destination=acct_nope",
        )
        .await;
    assert_eq!((status, s(&body["error"]["param"])), (400, "destination"));
    let (status, _) = a
        .on(&org)
        .post(
            "/v1/transfers",
            &format!("amount=1&currency=usd&destination={org}"),
        )
        .await;
    assert_eq!(status, 400);
    // The same key on another account is another request.
    let (status, _, other) = a
        .on(&org)
        .post_keyed("/v1/payment_intents", "amount=500&currency=usd", "tr-1")
        .await;
    assert_eq!(
        (status, other["object"].as_str()),
        (200, Some("payment_intent"))
    );
}

#[tokio::test]
async fn a_dispute_of_a_destination_charge_reverses_nothing_by_itself() {
    let a = api(None).await;
    let org = onboarded(&a).await;
    let pi = a
        .paid(
            2500,
            "pm_card_createDispute",
            &format!("&transfer_data[destination]={org}&application_fee_amount=250"),
        )
        .await;
    let dispute = a
        .dispute_of(&format!("payment_intent={}", s(&pi["id"])))
        .await;
    assert_eq!(dispute["amount"], 2500);
    let (_, transfer, fee) = money_of(&a, &pi).await;
    assert_eq!(
        (
            transfer["amount_reversed"].as_i64(),
            fee["amount_refunded"].as_i64()
        ),
        (Some(0), Some(0))
    );
    // A direct charge's dispute opens on the connected account.
    let on_org = a.on(&org);
    let direct = on_org.paid(1200, "pm_card_createDispute", "").await;
    let dispute = on_org
        .dispute_of(&format!("payment_intent={}", s(&direct["id"])))
        .await;
    assert_eq!(dispute["amount"], 1200);
    assert!(ids(&a.get_ok("/v1/disputes").await)
        .iter()
        .all(|id| id != s(&dispute["id"])));
    let events = on_org
        .get_ok("/v1/events?type=charge.dispute.created")
        .await;
    assert_eq!(events["data"][0]["account"], org.as_str());
}

#[tokio::test]
async fn deauthorising_cuts_the_platform_off_from_the_account() {
    let (receiver, a) = delivering().await;
    let org = onboarded(&a).await;
    let direct = a.on(&org).paid(1000, "pm_card_visa", "").await;
    let answer = a
        .post_ok(&format!("/_sandbox/accounts/{org}/deauthorize"), "")
        .await;
    assert_eq!(answer["deauthorized"], true);
    let (status, body) = a
        .on(&org)
        .get(&format!("/v1/payment_intents/{}", s(&direct["id"])))
        .await;
    assert_eq!(
        (status, s(&body["error"]["code"])),
        (403, "account_invalid"),
        "{body}"
    );
    assert_eq!(a.get(&format!("/v1/accounts/{org}")).await.0, 403);
    assert!(ids(&a.get_ok("/v1/accounts").await).is_empty());
    let (status, body) = a
        .post(
            "/v1/payment_intents",
            &format!("amount=1000&currency=usd&transfer_data[destination]={org}"),
        )
        .await;
    assert_eq!(
        (status, s(&body["error"]["code"])),
        (400, "resource_missing"),
        "{body}"
    );
    let (status, _) = a
        .post(&format!("/_sandbox/accounts/{org}/deauthorize"), "")
        .await;
    assert_eq!(status, 403);
    // The event is the account's, about the platform's application; only its webhook tells of
    // it, since the platform can no longer list the account's events.
    let sent = delivered(&receiver, 1, |e| {
        e["type"] == "account.application.deauthorized"
    })
    .await;
    assert_eq!(sent[0]["account"], org.as_str());
    assert_eq!(sent[0]["data"]["object"]["object"], "application");
    // Deleting lets an account go the same way.
    let other = onboarded(&a).await;
    let deleted = a
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/accounts/{other}"),
            "",
            None,
        )
        .await
        .2;
    assert_eq!(
        deleted,
        serde_json::json!({"deleted": true, "id": other, "object": "account"})
    );
    assert_eq!(a.on(&other).get("/v1/charges").await.0, 403);
}

#[tokio::test]
async fn accounts_and_their_objects_survive_a_restart_where_they_were() {
    let (_dir, state) = state_file();
    let first = Process::start(&state, None);
    let a = first.api();
    let org = onboarded(&a).await;
    let direct = a
        .on(&org)
        .paid(1800, "pm_card_visa", "&application_fee_amount=180")
        .await;
    let pi = destination_charge(&a, 2000, &org, "&application_fee_amount=200").await;
    let reversals = format!(
        "/v1/transfers/{}/reversals",
        s(&a.charge_of(&pi).await["transfer"])
    );
    let (status, _, reversal) = a.post_keyed(&reversals, "amount=500", "restart-rev").await;
    assert_eq!(status, 200);
    let direct_path = format!("/v1/payment_intents/{}", s(&direct["id"]));
    let before = a.on(&org).get_ok(&direct_path).await;
    let account = a.get_ok(&format!("/v1/accounts/{org}")).await;
    drop(first);
    let second = Process::start(&state, None);
    let b = second.api();
    assert_eq!(b.on(&org).get_ok(&direct_path).await, before);
    assert_eq!(b.get(&direct_path).await.0, 404);
    assert_eq!(b.get_ok(&format!("/v1/accounts/{org}")).await, account);
    assert_eq!(ids(&b.get_ok("/v1/application_fees").await).len(), 2);
    let (status, headers, replay) = b.post_keyed(&reversals, "amount=500", "restart-rev").await;
    assert_eq!((status, &replay), (200, &reversal));
    assert_eq!(headers["idempotent-replayed"], "true");
    let events = b.on(&org).get_ok("/v1/events?limit=100").await;
    assert!(events["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["account"] == org.as_str()));
}

#[tokio::test]
async fn a_state_file_from_before_accounts_opens_with_its_objects_the_platforms() {
    use sqlx::Connection;
    let (_dir, state) = state_file();
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&state)
        .create_if_missing(true);
    let mut old = sqlx::SqliteConnection::connect_with(&options)
        .await
        .unwrap();
    // The objects table as it was before objects had an account.
    sqlx::raw_sql(
        "CREATE TABLE objects (id TEXT PRIMARY KEY, kind TEXT NOT NULL, seq INTEGER NOT NULL,
                               created INTEGER NOT NULL, alias TEXT, body TEXT NOT NULL);
         INSERT INTO objects VALUES ('pi_old', 'payment_intent', 1, 1700000000, NULL,
             '{\"id\": \"pi_old\", \"object\": \"payment_intent\", \"amount\": 700, \"created\": 1700000000}');",
    )
    .execute(&mut old)
    .await
    .unwrap();
    old.close().await.unwrap();
    let sandbox = Process::start(&state, None);
    let a = sandbox.api();
    assert_eq!(a.get_ok("/v1/payment_intents/pi_old").await["amount"], 700);
    let org = onboarded(&a).await;
    assert_eq!(a.on(&org).get("/v1/payment_intents/pi_old").await.0, 404);
    assert_eq!(
        ids(&a.get_ok("/v1/payment_intents").await),
        vec!["pi_old".to_string()]
    );
}
