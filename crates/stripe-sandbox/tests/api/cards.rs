//! Card PaymentMethods made from card numbers as Stripe.js makes them (publishable key), their
//! behaviour by Stripe's test numbers, Stripe's card errors, `payment_method_data` on confirm,
//! and the 3-D Secure test page driven by plain HTTP as a browser would.

use serde_json::Value;

use crate::helpers::*;

fn browser(a: &Api) -> Api {
    Api {
        http: no_redirects(),
        key: "pk_test_checkout".into(),
        ..Api::new(a.base.clone())
    }
}

fn card(number: &str) -> String {
    format!("type=card&card[number]={number}&card[exp_month]=12&card[exp_year]=2040&card[cvc]=123")
}

/// Confirms `pi` as Stripe.js does: with the publishable key, `form` and the client secret.
async fn confirm_in_browser(js: &Api, pi: &Value, form: &str) -> (u16, Value) {
    js.confirm(
        s(&pi["id"]),
        &format!("{form}&client_secret={}", s(&pi["client_secret"])),
    )
    .await
}

#[tokio::test]
async fn card_numbers_behave_as_stripes_test_cards() {
    let a = api(None).await;
    let js = browser(&a);
    for (number, outcome) in [
        ("4242424242424242", "succeeded"),
        ("4242 4242 4242 4242", "succeeded"),
        ("5555555555554444", "succeeded"),
        ("4000000000000002", "generic_decline"),
        ("4000000000009995", "insufficient_funds"),
        ("4000002760003184", "requires_action"),
        ("4111111111111111", "test_mode_live_card"),
    ] {
        let (status, pm) = js.post("/v1/payment_methods", &card(number)).await;
        assert_eq!(status, 200, "{number}: {pm}");
        assert!(s(&pm["id"]).starts_with("pm_"));
        assert_eq!(pm["type"], "card");
        let digits: String = number.chars().filter(|c| c.is_ascii_digit()).collect();
        assert_eq!(s(&pm["card"]["last4"]), &digits[12..]);
        assert_eq!(
            (
                pm["card"]["exp_month"].as_i64(),
                pm["card"]["exp_year"].as_i64()
            ),
            (Some(12), Some(2040))
        );
        let pi = a.create("amount=2000&currency=usd").await;
        let (status, body) =
            confirm_in_browser(&js, &pi, &format!("payment_method={}", s(&pm["id"]))).await;
        match outcome {
            "succeeded" | "requires_action" => {
                assert_eq!(
                    (status, s(&body["status"])),
                    (200, outcome),
                    "{number}: {body}"
                )
            }
            decline => {
                assert_eq!(status, 402, "{number}: {body}");
                assert_eq!(body["error"]["decline_code"], decline, "{number}");
            }
        }
    }
    let (_, pm) = js
        .post("/v1/payment_methods", &card("5555555555554444"))
        .await;
    assert_eq!(pm["card"]["brand"], "mastercard");
    // The same PaymentMethod, read with the secret key.
    let (status, read) = a
        .get(&format!("/v1/payment_methods/{}", s(&pm["id"])))
        .await;
    assert_eq!((status, &read), (200, &pm));
}

#[tokio::test]
async fn bad_cards_get_stripes_errors() {
    let a = api(None).await;
    let js = browser(&a);
    for (form, status, code, param) in [
        (
            card("4242424242424241"),
            402,
            "incorrect_number",
            "card[number]",
        ),
        (card("4242"), 402, "invalid_number", "card[number]"),
        (
            card("4242x24242424242"),
            402,
            "invalid_number",
            "card[number]",
        ),
        (
            card("4242424242424242").replace("exp_month]=12", "exp_month]=13"),
            402,
            "invalid_expiry_month",
            "card[exp_month]",
        ),
        (
            card("4242424242424242").replace("exp_year]=2040", "exp_year]=2001"),
            402,
            "invalid_expiry_year",
            "card[exp_year]",
        ),
        (
            card("4242424242424242").replace("cvc]=123", "cvc]=12"),
            402,
            "invalid_cvc",
            "card[cvc]",
        ),
        (
            "type=card&card[exp_month]=1&card[exp_year]=2040".to_string(),
            400,
            "parameter_missing",
            "card[number]",
        ),
        (
            card("4242424242424242").replace("type=card", "type=ideal"),
            400,
            "parameter_invalid_string",
            "type",
        ),
    ] {
        let (got, body) = js.post("/v1/payment_methods", &form).await;
        assert_eq!(got, status, "{form}: {body}");
        assert_eq!(
            (s(&body["error"]["code"]), s(&body["error"]["param"])),
            (code, param),
            "{form}"
        );
        if status == 402 {
            assert_eq!(body["error"]["type"], "card_error");
        }
    }
    let (status, body) = js
        .post(
            "/v1/payment_methods",
            &format!(
                "{}&muid=x&guid=y&payment_user_agent=stripe.js",
                card("4242424242424242")
            ),
        )
        .await;
    assert_eq!(
        status, 200,
        "Stripe.js's own parameters are accepted: {body}"
    );
}

/// A form body with each value percent-encoded, as a client sends text outside ASCII.
fn encoded(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

#[tokio::test]
async fn card_input_outside_ascii_is_refused_as_stripe_does_on_a_connection_that_stays_open() {
    let a = api(None).await;
    let mut connection = Connection::open(&a.base).await;
    let card_fields = [
        ("card[exp_month]", "12"),
        ("card[exp_year]", "2040"),
        ("card[cvc]", "123"),
    ];
    for number in [
        "4242424242424242é",
        "٤٢٤٢٤٢٤٢٤٢٤٢٤٢٤٢",
        "4242 4242 4242 424€",
        "€€",
    ] {
        let mut form = vec![("type", "card"), ("card[number]", number)];
        form.extend(card_fields);
        let (status, body) = connection
            .send(
                "POST",
                "/v1/payment_methods",
                "pk_test_checkout",
                &encoded(&form),
            )
            .await
            .unwrap_or_else(|| panic!("{number}: the connection was dropped"));
        assert_eq!(status, 402, "{number}: {body}");
        assert_eq!(
            (
                s(&body["error"]["type"]),
                s(&body["error"]["code"]),
                s(&body["error"]["param"])
            ),
            ("card_error", "invalid_number", "card[number]"),
            "{number}"
        );
    }
    // The same through `payment_method_data` on a confirmation, and names of PaymentMethods
    // that are the sandbox's own aliases (never Stripe's): Stripe knows no such PaymentMethod.
    let pi = a.create("amount=2000&currency=usd").await;
    let confirm = format!("/v1/payment_intents/{}/confirm", s(&pi["id"]));
    let data = encoded(&[
        ("payment_method_data[type]", "card"),
        ("payment_method_data[card][number]", "٤٢٤٢٤٢٤٢٤٢٤٢٤٢٤٢"),
        ("payment_method_data[card][exp_month]", "12"),
        ("payment_method_data[card][exp_year]", "2040"),
    ]);
    let (status, body) = connection
        .send("POST", &confirm, KEY, &data)
        .await
        .expect("the connection was dropped");
    assert_eq!(
        (
            status,
            s(&body["error"]["code"]),
            s(&body["error"]["param"])
        ),
        (402, "invalid_number", "payment_method_data[card][number]"),
        "{body}"
    );
    for name in ["card:€€", "card:4242424242424242", "live:visa:42€"] {
        let form = encoded(&[
            ("amount", "2000"),
            ("currency", "usd"),
            ("confirm", "true"),
            ("payment_method", name),
        ]);
        let (status, body) = connection
            .send("POST", "/v1/payment_intents", KEY, &form)
            .await
            .unwrap_or_else(|| panic!("{name}: the connection was dropped"));
        assert_eq!(
            (
                status,
                s(&body["error"]["code"]),
                s(&body["error"]["param"])
            ),
            (400, "resource_missing", "payment_method"),
            "{name}: {body}"
        );
        assert_eq!(
            s(&body["error"]["message"]),
            format!("No such PaymentMethod: '{name}'")
        );
    }
    let (status, list) = connection
        .send("GET", "/v1/payment_intents?limit=1", KEY, "")
        .await
        .expect("the connection was dropped");
    assert_eq!((status, &list["object"]), (200, &Value::from("list")));
}

#[tokio::test]
async fn payment_method_data_on_confirm() {
    let a = api(None).await;
    let js = browser(&a);
    let pi = a.create("amount=3100&currency=eur").await;
    let card_data = |number: &str| {
        format!(
            "payment_method_data[type]=card&payment_method_data[card][number]={number}\
             &payment_method_data[card][exp_month]=4&payment_method_data[card][exp_year]=2041"
        )
    };
    let form = format!(
        "{}&payment_method_data[card][cvc]=999&payment_method_data[billing_details][name]=Ana",
        card_data("4242424242424242")
    );
    let (status, paid) = confirm_in_browser(&js, &pi, &form).await;
    assert_eq!((status, s(&paid["status"])), (200, "succeeded"), "{paid}");
    let pm = a.payment_method_of(&paid).await;
    assert_eq!(
        (s(&pm["card"]["last4"]), s(&pm["billing_details"]["name"])),
        ("4242", "Ana")
    );
    let charge = a.charge_of(&paid).await;
    assert_eq!(charge["payment_method_details"]["card"]["exp_year"], 2041);
    let other = a.create("amount=3100&currency=eur").await;
    let (status, body) = confirm_in_browser(&js, &other, &card_data("4242424242424241")).await;
    assert_eq!(
        (status, s(&body["error"]["param"])),
        (402, "payment_method_data[card][number]"),
        "{body}"
    );
}

/// Confirms a 3-D Secure card with a return URL; returns (PaymentIntent, challenge URL).
async fn challenged(a: &Api, js: &Api, number: &str, extra: &str) -> (Value, String) {
    let pi = a.create(&format!("amount=4200&currency=usd{extra}")).await;
    let (_, pm) = js.post("/v1/payment_methods", &card(number)).await;
    let (status, pi) = confirm_in_browser(
        js,
        &pi,
        &format!(
            "payment_method={}&return_url=https://shop.example/done%3Forder%3D9",
            s(&pm["id"])
        ),
    )
    .await;
    assert_eq!((status, s(&pi["status"])), (200, "requires_action"), "{pi}");
    assert_eq!(pi["next_action"]["type"], "redirect_to_url");
    assert_eq!(
        pi["next_action"]["redirect_to_url"]["return_url"],
        "https://shop.example/done?order=9"
    );
    let url = s(&pi["next_action"]["redirect_to_url"]["url"]).to_string();
    assert!(
        url.starts_with(&format!("{}/_sandbox/3ds/{}", a.base, s(&pi["id"]))),
        "{url}"
    );
    (pi, url)
}

/// Opens the challenge page as a browser, presses a button by its form, and returns the
/// redirect's location.
async fn press(js: &Api, url: &str, button: &str) -> url::Url {
    let page = js.http.get(url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Complete authentication") && html.contains("Fail authentication"),
        "{html}"
    );
    let action = html
        .split("action=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .replace("&amp;", "&");
    let secret = html
        .split("name=\"client_secret\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_string();
    let outcome = if button == "Complete authentication" {
        "complete"
    } else {
        "fail"
    };
    assert!(
        html.contains(&format!("value=\"{outcome}\">{button}</button>")),
        "{html}"
    );
    let response = js
        .http
        .post(&action)
        .form(&[("client_secret", secret.as_str()), ("outcome", outcome)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap()
}

fn query(url: &url::Url, name: &str) -> String {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn three_d_secure_page_completes_or_fails_and_redirects_back() {
    let a = api(None).await;
    let js = browser(&a);
    let (pi, url) = challenged(&a, &js, "4000002760003184", "").await;
    let id = s(&pi["id"]).to_string();
    let back = press(&js, &url, "Complete authentication").await;
    assert_eq!(
        (back.host_str(), back.path()),
        (Some("shop.example"), "/done")
    );
    assert_eq!(query(&back, "order"), "9");
    assert_eq!(query(&back, "payment_intent"), id);
    assert_eq!(
        query(&back, "payment_intent_client_secret"),
        s(&pi["client_secret"])
    );
    assert_eq!(query(&back, "redirect_status"), "succeeded");
    let (_, after) = a.get(&format!("/v1/payment_intents/{id}")).await;
    assert_eq!(after["status"], "succeeded");
    assert!(s(&after["latest_charge"]).starts_with("ch_"));
    assert_eq!(
        a.event_types(&id).await,
        [
            "payment_intent.created",
            "payment_intent.requires_action",
            "payment_intent.succeeded"
        ]
    );
    // The page is done with this PaymentIntent.
    let again = js.http.get(&url).send().await.unwrap();
    assert_eq!(again.status(), 409);
    let wrong = js
        .http
        .get(url.replace("client_secret=", "client_secret=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 404);

    let (pi, url) = challenged(&a, &js, "4000002760003184", "").await;
    let id = s(&pi["id"]).to_string();
    let back = press(&js, &url, "Fail authentication").await;
    assert_eq!(query(&back, "redirect_status"), "failed");
    let (_, after) = a.get(&format!("/v1/payment_intents/{id}")).await;
    assert_eq!(after["status"], "requires_payment_method");
    assert_eq!(
        after["last_payment_error"]["code"],
        "payment_intent_authentication_failure"
    );
    assert_eq!(after["latest_charge"], Value::Null);
    assert_eq!(
        a.event_types(&id).await.last().map(String::as_str),
        Some("payment_intent.payment_failed")
    );

    // A manual-capture PaymentIntent is only authorised once authenticated.
    let (pi, url) = challenged(&a, &js, "4000002760003184", "&capture_method=manual").await;
    let back = press(&js, &url, "Complete authentication").await;
    assert_eq!(query(&back, "redirect_status"), "succeeded");
    let (_, after) = a
        .get(&format!("/v1/payment_intents/{}", s(&pi["id"])))
        .await;
    assert_eq!(after["status"], "requires_capture");
}

#[tokio::test]
async fn the_challenge_url_follows_the_mount_and_host() {
    let sandbox = stripe_sandbox::Sandbox::open(stripe_sandbox::Options {
        storage: stripe_sandbox::Storage::Memory,
        webhook: None,
    })
    .await
    .unwrap();
    let app = axum::Router::new()
        .nest("/sandbox", sandbox.router())
        .merge(sandbox.api_routes());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    for mount in ["/sandbox", ""] {
        let a = Api::new(format!("{address}{mount}"));
        let js = browser(&a);
        let (_, url) = challenged(&a, &js, "4000002760003184", "").await;
        assert!(
            url.starts_with(&format!("{address}{mount}/_sandbox/3ds/pi_")),
            "{mount}: {url}"
        );
        let back = press(&js, &url, "Complete authentication").await;
        assert_eq!(query(&back, "redirect_status"), "succeeded", "{mount}");
    }
    // Without a return URL, Stripe.js's flow as before: confirming again passes.
    let a = Api::new(address.clone());
    let pi = a.create("amount=900&currency=usd").await;
    let id = s(&pi["id"]);
    let (_, first) = a
        .confirm(id, "payment_method=pm_card_authenticationRequired")
        .await;
    assert_eq!(
        (s(&first["status"]), s(&first["next_action"]["type"])),
        ("requires_action", "use_stripe_sdk")
    );
    let (_, second) = a
        .confirm(
            id,
            &format!("payment_method={}", s(&first["payment_method"])),
        )
        .await;
    assert_eq!(second["status"], "succeeded");
}
