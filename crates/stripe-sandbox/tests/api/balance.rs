//! Balances through the sandbox's HTTP surface: the balance transaction of every movement of
//! money, on the account whose balance it moves, with the sandbox's fee schedule by country
//! and its exchange rates; `GET /v1/balance`; the clock; payouts (manual, and the payout
//! control's automatic ones with their items, a misstated amount and failures); lists and
//! filters; the delayed methods; and a restart.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;

const DAYS_2: i64 = 2 * 24 * 60 * 60;

/// A balance transaction, retrieved.
async fn txn(a: &Api, id: &Value) -> Value {
    a.get_ok(&format!("/v1/balance_transactions/{}", s(id)))
        .await
}

/// The transaction's `(type, reporting_category, amount, fee, net, currency)`.
fn shape(t: &Value) -> (&str, &str, i64, i64, i64, &str) {
    (
        s(&t["type"]),
        s(&t["reporting_category"]),
        t["amount"].as_i64().unwrap(),
        t["fee"].as_i64().unwrap(),
        t["net"].as_i64().unwrap(),
        s(&t["currency"]),
    )
}

/// `fee_details` as `(type, amount)` pairs.
fn fee_lines(t: &Value) -> Vec<(String, i64)> {
    t["fee_details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (s(&f["type"]).to_string(), f["amount"].as_i64().unwrap()))
        .collect()
}

/// Every balance transaction of the account `a` acts for with `filter`, newest first.
async fn all_txns(a: &Api, filter: &str) -> Vec<Value> {
    let list = a
        .get_ok(&format!("/v1/balance_transactions?limit=100&{filter}"))
        .await;
    assert_eq!(list["has_more"], false, "{list}");
    list["data"].as_array().unwrap().clone()
}

/// The balance's `(available, pending)` in `currency`.
async fn balance_in(a: &Api, currency: &str) -> (i64, i64) {
    let balance = a.get_ok("/v1/balance").await;
    let find = |side: &str| {
        balance[side]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["currency"] == currency)
            .map_or(0, |b| b["amount"].as_i64().unwrap())
    };
    (find("available"), find("pending"))
}

/// A card payment of `amount` `currency` on the account `a` acts for.
async fn card(a: &Api, amount: i64, currency: &str, extra: &str) -> Value {
    let pi = a
        .create(&format!(
            "amount={amount}&currency={currency}&payment_method=pm_card_visa&confirm=true{extra}"
        ))
        .await;
    assert_eq!(pi["status"], "succeeded", "{pi}");
    pi
}

/// The balance transaction of the PaymentIntent's charge.
async fn charge_txn(a: &Api, pi: &Value) -> Value {
    let charge = a.charge_of(pi).await;
    txn(a, &charge["balance_transaction"]).await
}

/// The payout control; answers the payouts it made.
async fn pay_out(a: &Api, form: &str) -> Vec<Value> {
    let made = a.post_ok("/_sandbox/payouts", form).await;
    assert_eq!(made["object"], "sandbox.payouts");
    made["data"].as_array().unwrap().clone()
}

/// The sum of the nets of a payout's items, its own `payout` entry left out, and that entry.
async fn items_of(a: &Api, payout: &Value) -> (i64, Vec<Value>, Value) {
    let items = all_txns(a, &format!("payout={}", s(&payout["id"]))).await;
    let own: Vec<&Value> = items.iter().filter(|t| t["type"] == "payout").collect();
    assert_eq!(own.len(), 1, "{items:?}");
    let sum = items
        .iter()
        .filter(|t| t["type"] != "payout")
        .map(|t| t["net"].as_i64().unwrap())
        .sum();
    (sum, items.clone(), own[0].clone())
}

#[tokio::test]
async fn charges_pay_the_fee_of_their_accounts_country() {
    let a = api(None).await;
    // The platform is a US account unless told otherwise: 2.9% + 0.30 USD.
    let pi = card(&a, 2000, "usd", "&description=Concierto").await;
    let charge = a.charge_of(&pi).await;
    let t = txn(&a, &charge["balance_transaction"]).await;
    assert_eq!(shape(&t), ("charge", "charge", 2000, 88, 1912, "usd"));
    assert_eq!(
        t["fee_details"],
        json!([{"amount": 88, "application": null, "currency": "usd",
                "description": "Stripe processing fees", "type": "stripe_fee"}])
    );
    assert_eq!(t["source"], charge["id"]);
    assert_eq!(t["id"], charge["balance_transaction"]);
    assert_eq!(t["exchange_rate"], Value::Null);
    assert_eq!(t["description"], "Concierto");
    assert_eq!(t["status"], "pending");
    assert_eq!(
        t["available_on"].as_i64().unwrap(),
        t["created"].as_i64().unwrap() + DAYS_2
    );
    let expanded = a
        .get_ok(&format!(
            "/v1/charges/{}?expand[]=balance_transaction",
            s(&charge["id"])
        ))
        .await;
    assert_eq!(expanded["balance_transaction"]["net"], 1912);

    // Connected accounts pay their own country's: Mexico 3.6% + 3.00 MXN and 16% IVA on the
    // fee, the EEA 1.5% + 0.25 EUR, elsewhere the US row with its fixed part converted.
    for (country, amount, currency, lines) in [
        ("MX", 10_000, "mxn", vec![("stripe_fee", 660), ("tax", 106)]),
        ("ES", 2_000, "eur", vec![("stripe_fee", 55)]),
        ("US", 2_000, "usd", vec![("stripe_fee", 88)]),
        ("CA", 1_000, "cad", vec![("stripe_fee", 70)]),
    ] {
        let org = a.on(&a.onboarded_in(country).await);
        let t = charge_txn(&org, &card(&org, amount, currency, "").await).await;
        let fee: i64 = lines.iter().map(|(_, f)| f).sum();
        assert_eq!(
            shape(&t),
            ("charge", "charge", amount, fee, amount - fee, currency),
            "{country}"
        );
        let want: Vec<(String, i64)> = lines.iter().map(|(k, f)| (k.to_string(), *f)).collect();
        assert_eq!(fee_lines(&t), want, "{country}");
        if country == "MX" {
            assert_eq!(t["fee_details"][1]["description"], "IVA (16%)");
        }
        // The account's transaction is its own.
        assert_eq!(
            a.get(&format!("/v1/balance_transactions/{}", s(&t["id"])))
                .await
                .0,
            404
        );
    }

    // The platform itself in Mexico.
    let platform = a.post_ok("/_sandbox/platform", "country=MX").await;
    assert_eq!(
        (s(&platform["country"]), s(&platform["default_currency"])),
        ("MX", "mxn")
    );
    let t = charge_txn(&a, &card(&a, 10_000, "mxn", "").await).await;
    assert_eq!(shape(&t), ("charge", "charge", 10_000, 766, 9_234, "mxn"));
    assert_eq!(
        code_of(&a.post("/_sandbox/platform", "country=ZZ").await),
        (400, "")
    );
    assert_eq!(a.get_ok("/_sandbox/platform").await["country"], "MX");
}

#[tokio::test]
async fn another_settlement_currency_is_converted_at_the_sandboxs_rate() {
    let a = api(None).await;
    // A US platform charged 100.00 MXN settles 5.00 USD (1 USD = 20 MXN) and pays its fee on
    // the dollars: 2.9% of 5.00 is 0.145, rounded to 0.15, plus 0.30.
    let mxn = card(&a, 10_000, "mxn", "").await;
    let t = charge_txn(&a, &mxn).await;
    assert_eq!(shape(&t), ("charge", "charge", 500, 45, 455, "usd"));
    assert_eq!(t["exchange_rate"].to_string(), "0.05");
    // ¥1000 at 150 yen a dollar is 6.67 USD (6.666… rounded half up), at the rate 0.006667.
    let t = charge_txn(&a, &card(&a, 1_000, "jpy", "").await).await;
    assert_eq!(shape(&t), ("charge", "charge", 667, 49, 618, "usd"));
    assert_eq!(t["exchange_rate"].to_string(), "0.006667");
    // A refund converts at the same rate.
    let refund = a.refund(s(&mxn["id"]), "&amount=5000").await.1;
    let r = txn(&a, &refund["balance_transaction"]).await;
    assert_eq!(shape(&r), ("refund", "refund", -250, 0, -250, "usd"));
    assert_eq!(r["exchange_rate"].to_string(), "0.05");

    // A Mexican account that settles in USD: Mexico's schedule on the dollars, its fixed 3.00
    // MXN converted to 0.15 USD: 0.18 + 0.15 = 0.33, IVA 0.05.
    let id = a.onboarded_in("MX").await;
    a.post_ok(&format!("/v1/accounts/{id}"), "default_currency=usd")
        .await;
    let org = a.on(&id);
    let t = charge_txn(&org, &card(&org, 10_000, "mxn", "").await).await;
    assert_eq!(shape(&t), ("charge", "charge", 500, 38, 462, "usd"));
    assert_eq!(
        fee_lines(&t),
        [("stripe_fee".into(), 33), ("tax".into(), 5)]
    );
    assert_eq!(t["exchange_rate"].to_string(), "0.05");
    // The balance is in the settlement currency only.
    let balance = org.get_ok("/v1/balance").await;
    assert_eq!(
        balance["pending"],
        json!([{"amount": 462, "currency": "usd", "source_types": {"card": 462}}])
    );
}

#[tokio::test]
async fn refunds_take_money_out_at_once_and_a_failed_refund_brings_it_back() {
    let a = api(None).await;
    let pi = card(&a, 2000, "usd", "&description=Boletos").await;
    let refund = a.refund(s(&pi["id"]), "&amount=500").await.1;
    let t = txn(&a, &refund["balance_transaction"]).await;
    assert_eq!(shape(&t), ("refund", "refund", -500, 0, -500, "usd"));
    assert_eq!(t["source"], refund["id"]);
    assert_eq!(t["description"], "REFUND FOR CHARGE (Boletos)");
    // Money out is available (gone) at once.
    assert_eq!(t["status"], "available");
    assert_eq!(t["available_on"], t["created"]);
    assert_eq!(balance_in(&a, "usd").await, (-500, 1912));

    let failing = a.paid(3000, "pm_card_refundFail", "").await;
    let refund = a.refund(s(&failing["id"]), "").await.1;
    let out = txn(&a, &refund["balance_transaction"]).await;
    assert_eq!(shape(&out), ("refund", "refund", -3000, 0, -3000, "usd"));
    let failed = a.wait_event("refund.failed", s(&refund["id"])).await;
    let back = txn(&a, &failed["failure_balance_transaction"]).await;
    assert_eq!(
        shape(&back),
        ("refund_failure", "refund_failure", 3000, 0, 3000, "usd")
    );
    assert_eq!(back["source"], refund["id"]);
    let by_source = all_txns(&a, &format!("source={}", s(&refund["id"]))).await;
    assert_eq!(ids_of(&by_source), [s(&back["id"]), s(&out["id"])]);
}

fn ids_of(items: &[Value]) -> Vec<&str> {
    items.iter().map(|t| s(&t["id"])).collect()
}

#[tokio::test]
async fn a_dispute_withdraws_the_amount_and_its_fee_and_a_won_one_gives_them_back() {
    let a = api(None).await;
    let pi = a.paid(7000, "pm_card_createDispute", "").await;
    let dispute = a
        .dispute_of(&format!("payment_intent={}", s(&pi["id"])))
        .await;
    let withdrawal = &dispute["balance_transactions"][0];
    let stored = txn(&a, &withdrawal["id"]).await;
    assert_eq!(&stored, withdrawal);
    assert_eq!(
        shape(&stored),
        ("adjustment", "dispute", -7000, 1500, -8500, "usd")
    );
    assert_eq!(
        stored["fee_details"][0]["description"], "Dispute fee",
        "{stored}"
    );
    assert_eq!(stored["source"], dispute["id"]);
    a.win_dispute(&dispute).await;
    let moved = all_txns(&a, &format!("source={}", s(&dispute["id"]))).await;
    assert_eq!(moved.len(), 2);
    assert_eq!(
        shape(&moved[0]),
        ("adjustment", "dispute_reversal", 7000, -1500, 8500, "usd")
    );
    let got = a
        .get_ok(&format!("/v1/disputes/{}", s(&dispute["id"])))
        .await;
    assert_eq!(got["balance_transactions"][1]["id"], moved[0]["id"]);
    // In all, the charge's net is left: the dispute took nothing for good.
    let (available, pending) = balance_in(&a, "usd").await;
    assert_eq!(available + pending, 7000 - 233);

    // A Mexican account pays its own dispute fee, with IVA.
    let org = a.on(&a.onboarded_in("MX").await);
    let pi = org
        .create("amount=50000&currency=mxn&payment_method=pm_card_createDispute&confirm=true")
        .await;
    let dispute = org
        .dispute_of(&format!("payment_intent={}", s(&pi["id"])))
        .await;
    let t = &dispute["balance_transactions"][0];
    assert_eq!(
        shape(t),
        ("adjustment", "dispute", -50_000, 29_000, -79_000, "mxn")
    );
    assert_eq!(
        fee_lines(t),
        [("stripe_fee".into(), 25_000), ("tax".into(), 4_000)]
    );
}

#[tokio::test]
async fn a_destination_charge_moves_both_balances_and_a_refund_moves_them_back() {
    let a = api(None).await;
    let org_id = a.onboarded_in("US").await;
    let org = a.on(&org_id);
    let pi = a
        .paid(
            4000,
            "pm_card_visa",
            &format!("&transfer_data[destination]={org_id}&application_fee_amount=400"),
        )
        .await;
    let (charge, transfer, fee) = crate::connect::money_of(&a, &pi).await;
    // The platform: the charge with Stripe's fee, the transfer out, the application fee in.
    assert_eq!(
        shape(&txn(&a, &charge["balance_transaction"]).await),
        ("charge", "charge", 4000, 146, 3854, "usd")
    );
    let out = txn(&a, &transfer["balance_transaction"]).await;
    assert_eq!(
        shape(&out),
        ("transfer", "transfer", -4000, 0, -4000, "usd")
    );
    assert_eq!(out["source"], transfer["id"]);
    let earned = txn(&a, &fee["balance_transaction"]).await;
    assert_eq!(
        shape(&earned),
        ("application_fee", "platform_earning", 400, 0, 400, "usd")
    );
    assert_eq!(earned["source"], fee["id"]);
    // The organiser: the transfer's payment, less the application fee.
    let payment = org
        .get_ok(&format!(
            "/v1/charges/{}",
            s(&transfer["destination_payment"])
        ))
        .await;
    let paid = txn(&org, &payment["balance_transaction"]).await;
    assert_eq!(shape(&paid), ("payment", "charge", 4000, 400, 3600, "usd"));
    assert_eq!(
        paid["fee_details"],
        json!([{"amount": 400, "application": "ca_SandboxPlatformApplication00001",
                "currency": "usd", "description": "Application fee",
                "type": "application_fee"}])
    );
    assert_eq!(paid["source"], payment["id"]);

    // Half refunded, with the fee and the transfer in proportion.
    let refund = a
        .post_ok(
            "/v1/refunds",
            &format!(
                "payment_intent={}&amount=2000&refund_application_fee=true&reverse_transfer=true",
                s(&pi["id"])
            ),
        )
        .await;
    assert_eq!(
        shape(&txn(&a, &refund["balance_transaction"]).await),
        ("refund", "refund", -2000, 0, -2000, "usd")
    );
    let reversal = a
        .get_ok(&format!(
            "/v1/transfers/{}/reversals/{}",
            s(&transfer["id"]),
            s(&refund["transfer_reversal"])
        ))
        .await;
    let back = txn(&a, &reversal["balance_transaction"]).await;
    assert_eq!(
        shape(&back),
        ("transfer_refund", "transfer_reversal", 2000, 0, 2000, "usd")
    );
    let fee = crate::connect_delayed::fee_of(&a, &charge).await;
    let returned = txn(&a, &fee["refunds"]["data"][0]["balance_transaction"]).await;
    assert_eq!(
        shape(&returned),
        (
            "application_fee_refund",
            "platform_earning_refund",
            -200,
            0,
            -200,
            "usd"
        )
    );
    let taken = org
        .get_ok(&format!(
            "/v1/balance_transactions?type=payment_refund&source={}",
            s(&reversal["destination_payment_refund"])
        ))
        .await;
    assert_eq!(
        shape(&taken["data"][0]),
        ("payment_refund", "refund", -2000, 0, -2000, "usd")
    );
    let given = all_txns(&org, "type=application_fee_refund").await;
    assert_eq!(
        shape(&given[0]),
        (
            "application_fee_refund",
            "platform_earning_refund",
            200,
            0,
            200,
            "usd"
        )
    );
    // What each keeps: the platform its fee less Stripe's and the half it gave back; the
    // organiser half of its payment less half the fee.
    let (available, pending) = balance_in(&a, "usd").await;
    assert_eq!(available + pending, 3854 - 4000 + 400 - 2000 + 2000 - 200);
    let (available, pending) = balance_in(&org, "usd").await;
    assert_eq!((available, pending), (-2000, 3800));

    // A direct charge: the account pays Stripe's fee and the platform's, in one transaction.
    let direct = card(&org, 2000, "usd", "&application_fee_amount=100").await;
    let t = charge_txn(&org, &direct).await;
    assert_eq!(shape(&t), ("charge", "charge", 2000, 188, 1812, "usd"));
    assert_eq!(
        fee_lines(&t),
        [("stripe_fee".into(), 88), ("application_fee".into(), 100)]
    );
    let fee = crate::connect_delayed::fee_of(&a, &org.charge_of(&direct).await).await;
    assert_eq!(
        shape(&txn(&a, &fee["balance_transaction"]).await),
        ("application_fee", "platform_earning", 100, 0, 100, "usd")
    );
}

#[tokio::test]
async fn the_payout_control_pays_out_everything_and_its_items_add_up() {
    let (receiver, a) = delivering().await;
    let first = card(&a, 2000, "usd", "").await;
    card(&a, 3000, "usd", "").await;
    a.refund(s(&first["id"]), "&amount=500").await;
    let expected = 1912 + 2883 - 500;
    assert_eq!(balance_in(&a, "usd").await, (-500, 1912 + 2883));

    let made = pay_out(&a, "").await;
    assert_eq!(made.len(), 1);
    let payout = &made[0];
    assert_eq!(
        (
            payout["amount"].as_i64(),
            s(&payout["currency"]),
            s(&payout["status"]),
            s(&payout["reconciliation_status"])
        ),
        (Some(expected), "usd", "paid", "completed")
    );
    assert_eq!(payout["automatic"], true);
    assert_eq!(payout["description"], "STRIPE PAYOUT");
    let (sum, items, own) = items_of(&a, payout).await;
    assert_eq!(sum, expected);
    assert_eq!(items.len(), 4);
    assert_eq!(own["id"], payout["balance_transaction"]);
    assert_eq!(
        shape(&own),
        ("payout", "payout", -expected, 0, -expected, "usd")
    );
    assert!(
        items.iter().all(|t| t["status"] == "available"),
        "{items:?}"
    );
    assert_eq!(balance_in(&a, "usd").await, (0, 0));
    let id = s(&payout["id"]);
    assert_eq!(
        a.event_types(id).await,
        [
            "payout.created",
            "payout.updated",
            "payout.paid",
            "payout.reconciliation_completed"
        ]
    );
    let created = a.wait_event("payout.created", id).await;
    assert_eq!(
        (s(&created["status"]), s(&created["reconciliation_status"])),
        ("pending", "in_progress")
    );
    let delivered = eventually("the payout's events delivered", || async {
        let types: Vec<String> = receiver
            .received_requests()
            .await?
            .iter()
            .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap())
            .filter(|e| e["data"]["object"]["id"] == id)
            .map(|e| s(&e["type"]).to_string())
            .collect();
        (types.len() == 4).then_some(types)
    })
    .await;
    assert_eq!(delivered[2], "payout.paid");
    assert_eq!(a.get_ok(&format!("/v1/payouts/{id}")).await, *payout);
    assert_eq!(ids(&a.get_ok("/v1/payouts?status=paid").await), [id]);
    assert!(ids(&a.get_ok("/v1/payouts?status=failed").await).is_empty());
    // Nothing is left to pay out.
    assert!(pay_out(&a, "").await.is_empty());

    // One payout per currency; `currency` picks one.
    card(&a, 1000, "usd", "").await;
    a.post_ok("/_sandbox/platform", "default_currency=eur")
        .await;
    card(&a, 2000, "eur", "").await;
    let eur = pay_out(&a, "currency=eur").await;
    assert_eq!(
        (eur.len(), s(&eur[0]["currency"]), eur[0]["amount"].as_i64()),
        (1, "eur", Some(2000 - 85))
    );
    let rest = pay_out(&a, "").await;
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0]["currency"], "usd");
    assert_eq!(rest[0]["amount"], 1000 - 59);
}

/// A sandbox delivering its webhooks to a receiver that accepts them all.
async fn delivering() -> (wiremock::MockServer, Api) {
    let receiver = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    let target = stripe_sandbox::WebhookTarget::new(receiver.uri(), "whsec_balance".into());
    (receiver, api(Some(target)).await)
}

#[tokio::test]
async fn the_payout_control_can_misstate_a_payouts_amount() {
    let a = api(None).await;
    card(&a, 2000, "usd", "").await;
    let made = pay_out(&a, "mismatch=25").await;
    let payout = &made[0];
    assert_eq!(payout["amount"], 1912 + 25);
    let (sum, _, own) = items_of(&a, payout).await;
    assert_eq!(sum, 1912);
    assert_ne!(sum, payout["amount"].as_i64().unwrap());
    // The payout's own entry says what the payout says.
    assert_eq!(own["amount"], -(1912 + 25));
    assert_eq!(balance_in(&a, "usd").await, (-25, 0));
    // Less than the nets, too (what was paid out before is not paid again).
    card(&a, 2000, "usd", "").await;
    let made = pay_out(&a, "mismatch=-12").await;
    assert_eq!(made[0]["amount"], 1912 - 12);
    assert_eq!(
        code_of(&a.post("/_sandbox/payouts", "mismatch=x").await),
        (400, "parameter_invalid_integer")
    );
}

#[tokio::test]
async fn a_payout_that_fails_gives_its_money_back() {
    let a = api(None).await;
    card(&a, 2000, "usd", "").await;
    let made = pay_out(&a, "failure_code=no_account").await;
    let payout = &made[0];
    assert_eq!(
        (
            s(&payout["status"]),
            s(&payout["failure_code"]),
            s(&payout["reconciliation_status"])
        ),
        ("failed", "no_account", "completed")
    );
    assert!(s(&payout["failure_message"]).contains("No bank account could be located"));
    let back = txn(&a, &payout["failure_balance_transaction"]).await;
    assert_eq!(
        shape(&back),
        ("payout_failure", "payout_reversal", 1912, 0, 1912, "usd")
    );
    assert_eq!(back["status"], "available");
    assert_eq!(
        a.event_types(s(&payout["id"])).await,
        [
            "payout.created",
            "payout.failed",
            "payout.reconciliation_completed"
        ]
    );
    // Its items stay its own; the money is back, and the next payout takes the return.
    let (sum, _, _) = items_of(&a, payout).await;
    assert_eq!(sum, 1912);
    assert_eq!(balance_in(&a, "usd").await, (1912, 0));
    let again = pay_out(&a, "").await;
    let (sum, items, _) = items_of(&a, &again[0]).await;
    assert_eq!(sum, 1912);
    assert_eq!(items[1]["type"], "payout_failure", "{items:?}");

    // A paid payout may still fail later.
    let failed = a
        .post_ok(
            &format!("/_sandbox/payouts/{}/fail", s(&again[0]["id"])),
            "failure_code=account_closed",
        )
        .await;
    assert_eq!(
        (s(&failed["status"]), s(&failed["failure_message"])),
        ("failed", "The bank account has been closed.")
    );
    assert_eq!(balance_in(&a, "usd").await, (1912, 0));
    assert_eq!(
        code_of(
            &a.post(&format!("/_sandbox/payouts/{}/fail", s(&failed["id"])), "")
                .await
        ),
        (400, "")
    );
    assert_eq!(
        a.post("/_sandbox/payouts", "failure_code=lost_in_the_mail")
            .await
            .0,
        400
    );
    assert_eq!(a.post("/_sandbox/payouts/po_nope/fail", "").await.0, 404);
}

#[tokio::test]
async fn manual_payouts_come_from_the_available_balance() {
    // Long enough that nothing is paid until the test says so.
    let a = api_with_delay(None, Duration::from_secs(600)).await;
    card(&a, 2000, "usd", "").await;
    assert_eq!(balance_in(&a, "usd").await, (0, 1912));
    assert_eq!(
        code_of(&a.post("/v1/payouts", "amount=1000&currency=usd").await),
        (400, "balance_insufficient")
    );
    let clock = a.get_ok("/_sandbox/clock").await;
    assert_eq!(clock["offset"], 0);
    let moved = a
        .post_ok("/_sandbox/clock", &format!("advance={DAYS_2}"))
        .await;
    assert_eq!(moved["offset"], DAYS_2);
    assert!(moved["now"].as_i64().unwrap() >= clock["now"].as_i64().unwrap() + DAYS_2);
    assert_eq!(
        code_of(&a.post("/_sandbox/clock", "advance=-1").await),
        (400, "")
    );
    assert_eq!(balance_in(&a, "usd").await, (1912, 0));

    let payout = a
        .post_ok(
            "/v1/payouts",
            "amount=1000&currency=usd&description=Semana&metadata[week]=12",
        )
        .await;
    assert_eq!(
        (
            s(&payout["status"]),
            s(&payout["reconciliation_status"]),
            payout["automatic"].as_bool()
        ),
        ("pending", "not_applicable", Some(false))
    );
    assert_eq!(payout["metadata"]["week"], "12");
    assert_eq!(
        shape(&txn(&a, &payout["balance_transaction"]).await),
        ("payout", "payout", -1000, 0, -1000, "usd")
    );
    assert_eq!(balance_in(&a, "usd").await, (912, 0));
    // Stripe cannot say what a manual payout holds.
    let refused = a
        .get(&format!(
            "/v1/balance_transactions?payout={}",
            s(&payout["id"])
        ))
        .await;
    assert_eq!(refused.0, 400);
    assert_eq!(
        refused.1["error"]["message"],
        "Balance transaction history can only be filtered on automatic transfers, not manual."
    );
    a.post_ok("/_sandbox/timers", "run=true").await;
    let paid = a.wait_event("payout.paid", s(&payout["id"])).await;
    assert_eq!(paid["status"], "paid");
    assert_eq!(
        code_of(
            &a.post(&format!("/v1/payouts/{}/cancel", s(&payout["id"])), "")
                .await
        ),
        (400, "")
    );

    // A pending one can be canceled: its money comes back.
    let second = a.post_ok("/v1/payouts", "amount=500&currency=usd").await;
    let canceled = a
        .post_ok(&format!("/v1/payouts/{}/cancel", s(&second["id"])), "")
        .await;
    assert_eq!(canceled["status"], "canceled");
    assert_eq!(
        shape(&txn(&a, &canceled["failure_balance_transaction"]).await),
        ("payout_cancel", "payout_reversal", 500, 0, 500, "usd")
    );
    a.wait_event("payout.canceled", s(&second["id"])).await;
    assert_eq!(balance_in(&a, "usd").await, (912, 0));
    let updated = a
        .post_ok(
            &format!("/v1/payouts/{}", s(&second["id"])),
            "metadata[note]=x",
        )
        .await;
    assert_eq!(updated["metadata"]["note"], "x");
    for (form, code) in [
        ("amount=100&currency=usd&method=instant", ""),
        ("amount=0&currency=usd", ""),
        ("amount=100", "parameter_missing"),
        (
            "amount=100&currency=usd&destination=ba_nope",
            "resource_missing",
        ),
    ] {
        assert_eq!(code_of(&a.post("/v1/payouts", form).await).0, 400, "{form}");
        assert_eq!(
            code_of(&a.post("/v1/payouts", form).await).1,
            code,
            "{form}"
        );
    }
    let automatic = pay_out(&a, "").await;
    assert_eq!(
        code_of(
            &a.post(
                &format!("/v1/payouts/{}/cancel", s(&automatic[0]["id"])),
                ""
            )
            .await
        ),
        (400, "")
    );
}

#[tokio::test]
async fn a_connected_accounts_payouts_are_its_own() {
    let a = api(None).await;
    let pending = a.post_ok("/v1/accounts", "type=express&country=MX").await;
    assert_eq!(
        a.post(
            "/_sandbox/payouts",
            &format!("account={}", s(&pending["id"]))
        )
        .await
        .0,
        400
    );
    assert_eq!(
        a.post("/_sandbox/payouts", "account=acct_nope").await.0,
        400
    );
    let id = a.onboarded_in("MX").await;
    let org = a.on(&id);
    card(&org, 10_000, "mxn", "").await;
    card(&a, 2000, "usd", "").await;
    let made = pay_out(&a, &format!("account={id}")).await;
    assert_eq!(made.len(), 1);
    assert_eq!(made[0]["amount"], 10_000 - 766);
    let bank =
        a.get_ok(&format!("/v1/accounts/{id}")).await["external_accounts"]["data"][0]["id"].clone();
    assert_eq!(made[0]["destination"], bank);
    // The payout and its events are the account's; the platform's balance is untouched.
    let events = org.get_ok("/v1/events?type=payout.*").await;
    assert_eq!(events["data"].as_array().unwrap().len(), 4);
    assert!(events["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["account"] == id.as_str()));
    assert_eq!(
        a.get(&format!("/v1/payouts/{}", s(&made[0]["id"]))).await.0,
        404
    );
    assert_eq!(balance_in(&a, "usd").await, (0, 1912));
    let (sum, _, _) = items_of(&org, &made[0]).await;
    assert_eq!(sum, 10_000 - 766);
    // Stripe-Account does the same as `account`.
    card(&org, 10_000, "mxn", "").await;
    assert_eq!(pay_out(&org, "").await.len(), 1);
}

#[tokio::test]
async fn lists_page_and_filter_as_stripes_do() {
    let a = api(None).await;
    let mut charges = Vec::new();
    for n in 0..12 {
        charges.push(card(&a, 1000 + n, "usd", "").await);
    }
    for pi in &charges[..3] {
        a.refund(s(&pi["id"]), "&amount=100").await;
    }
    let everything = all_txns(&a, "").await;
    assert_eq!(everything.len(), 15);
    // Newest first: the refunds, then the charges from the last.
    assert!(everything[..3].iter().all(|t| t["type"] == "refund"));
    assert_eq!(everything[3]["amount"], 1011);
    let mut walked = Vec::new();
    let mut page = a.get_ok("/v1/balance_transactions?limit=4").await;
    loop {
        walked.extend(ids(&page));
        if page["has_more"] == false {
            break;
        }
        let last = walked.last().unwrap().clone();
        page = a
            .get_ok(&format!(
                "/v1/balance_transactions?limit=4&starting_after={last}"
            ))
            .await;
    }
    assert_eq!(walked, ids_of(&everything));
    let before = a
        .get_ok(&format!(
            "/v1/balance_transactions?limit=4&ending_before={}",
            walked[8]
        ))
        .await;
    assert_eq!(ids(&before), &walked[4..8]);
    assert_eq!(before["url"], "/v1/balance_transactions");

    assert_eq!(all_txns(&a, "type=refund").await.len(), 3);
    assert_eq!(all_txns(&a, "type=charge").await.len(), 12);
    let charge = a.charge_of(&charges[5]).await;
    let one = all_txns(&a, &format!("source={}", s(&charge["id"]))).await;
    assert_eq!(ids_of(&one), [s(&charge["balance_transaction"])]);
    assert_eq!(all_txns(&a, "currency=USD").await.len(), 15);
    assert!(all_txns(&a, "currency=eur").await.is_empty());
    let created = everything[0]["created"].as_i64().unwrap();
    assert!(all_txns(&a, &format!("created[gt]={created}"))
        .await
        .is_empty());
    assert_eq!(
        all_txns(&a, &format!("created[lte]={created}")).await.len(),
        15
    );
    let expanded = a
        .get_ok("/v1/balance_transactions?limit=2&expand[]=data.source")
        .await;
    assert_eq!(expanded["data"][0]["source"]["object"], "refund");
    let expanded = a
        .get_ok(&format!(
            "/v1/balance_transactions/{}?expand[]=source",
            s(&charge["balance_transaction"])
        ))
        .await;
    assert_eq!(expanded["source"]["payment_intent"], charges[5]["id"]);

    for (query, code) in [
        ("payout=po_nope", "resource_missing"),
        ("limit=101", ""),
        ("status=available", "parameter_unknown"),
        ("starting_after=txn_nope", "resource_missing"),
    ] {
        let answer = a.get(&format!("/v1/balance_transactions?{query}")).await;
        assert_eq!(code_of(&answer), (400, code), "{query}");
    }
    assert_eq!(a.get("/v1/balance_transactions/txn_nope").await.0, 404);
    // A connected account lists its own only.
    let org = a.on(&a.onboarded_in("US").await);
    assert!(all_txns(&org, "").await.is_empty());
    card(&org, 1000, "usd", "").await;
    assert_eq!(all_txns(&org, "").await.len(), 1);
    assert_eq!(all_txns(&a, "").await.len(), 15);
    let payouts = a.get_ok("/v1/payouts?limit=3").await;
    assert_eq!(payouts["url"], "/v1/payouts");
    pay_out(&a, "").await;
    let now = a.get_ok("/_sandbox/clock").await["now"].as_i64().unwrap();
    assert_eq!(
        ids(&a
            .get_ok(&format!("/v1/payouts?arrival_date[gte]={}", now - 60))
            .await)
        .len(),
        1
    );
    assert!(ids(&a
        .get_ok(&format!("/v1/payouts?arrival_date[gt]={}", now + 60))
        .await)
    .is_empty());
}

#[tokio::test]
async fn delayed_methods_move_the_balance_when_their_money_arrives() {
    let a = api(None).await;
    a.post_ok("/_sandbox/platform", "country=MX").await;
    // An OXXO voucher moves nothing until it is paid.
    let voucher = a.oxxo(20_000, "ana@example.com", "").await;
    assert!(all_txns(&a, "").await.is_empty());
    let paid = control(&a, &voucher, "pay_voucher").await.1;
    let t = charge_txn(&a, &paid).await;
    // 3.6% of 200.00 is 7.20, plus 3.00; IVA 1.63 (1.632).
    assert_eq!(shape(&t), ("charge", "charge", 20_000, 1183, 18_817, "mxn"));

    // A bank transfer: the customer's cash balance is not the account's; the payment it pays
    // is.
    let customer = a.customer("ana@example.com").await;
    let cus = s(&customer["id"]).to_string();
    let owed = a.transfer(&cus, 10_000, "mxn").await;
    a.fund(&cus, 4_000, "mxn", "").await;
    assert_eq!(all_txns(&a, "").await.len(), 1);
    a.fund(&cus, 7_000, "mxn", "").await;
    let owed = a
        .get_ok(&format!("/v1/payment_intents/{}", s(&owed["id"])))
        .await;
    assert_eq!(owed["status"], "succeeded");
    let t = charge_txn(&a, &owed).await;
    assert_eq!(shape(&t), ("charge", "charge", 10_000, 766, 9_234, "mxn"));
    assert_eq!(a.cash(&cus, "mxn").await, 1_000);
    assert_eq!(all_txns(&a, "").await.len(), 2);
    // Money returned from the cash balance never was the account's.
    let returned = a
        .post_ok(
            "/v1/refunds",
            &format!("customer={cus}&origin=customer_balance&amount=1000&currency=mxn"),
        )
        .await;
    assert_eq!(returned["balance_transaction"], Value::Null);
    assert_eq!(all_txns(&a, "").await.len(), 2);
}

#[tokio::test]
async fn a_sepa_debit_is_pending_from_the_start_and_a_failed_one_is_undone() {
    let a = api(None).await;
    a.post_ok("/_sandbox/platform", "country=ES").await;
    let (_, debit) = a.sepa("AT611904300234573201", 4200, "").await;
    assert_eq!(debit["status"], "processing");
    // 1.5% of 42.00 is 0.63, plus 0.25.
    let t = charge_txn(&a, &debit).await;
    assert_eq!(shape(&t), ("charge", "charge", 4200, 88, 4112, "eur"));
    a.wait_event("payment_intent.succeeded", s(&debit["id"]))
        .await;
    assert_eq!(all_txns(&a, "").await.len(), 1);

    let (_, failing) = a.sepa("AT861904300235473202", 4200, "").await;
    let first = charge_txn(&a, &failing).await;
    a.wait_event("payment_intent.payment_failed", s(&failing["id"]))
        .await;
    let charge = a.charge_of(&failing).await;
    let undone = txn(&a, &charge["failure_balance_transaction"]).await;
    assert_eq!(
        shape(&undone),
        (
            "payment_failure_refund",
            "charge_failure",
            -4200,
            -88,
            -4112,
            "eur"
        )
    );
    assert_eq!(undone["source"], charge["id"]);
    assert_eq!(
        first["net"].as_i64().unwrap() + undone["net"].as_i64().unwrap(),
        0
    );
    let (available, pending) = balance_in(&a, "eur").await;
    assert_eq!(available + pending, 4112);
}

#[tokio::test]
async fn balance_transactions_payouts_and_the_clock_survive_a_restart() {
    let (_dir, state) = state_file();
    let first = Process::start(&state, None);
    let a = first.api();
    a.post_ok("/_sandbox/platform", "country=MX").await;
    let pi = card(&a, 10_000, "mxn", "").await;
    a.refund(s(&pi["id"]), "&amount=1000").await;
    card(&a, 5_000, "mxn", "").await;
    let payout = pay_out(&a, "").await.remove(0);
    card(&a, 2_000, "mxn", "").await;
    a.post_ok("/_sandbox/clock", "advance=3600").await;
    let before = all_txns(&a, "").await;
    let (_, items_before, _) = items_of(&a, &payout).await;
    drop(first);

    let second = Process::start(&state, None);
    let b = second.api();
    assert_eq!(all_txns(&b, "").await, before);
    let (_, items_after, _) = items_of(&b, &payout).await;
    assert_eq!(items_after, items_before);
    assert_eq!(b.get_ok("/_sandbox/clock").await["offset"], 3600);
    assert_eq!(b.get_ok("/_sandbox/platform").await["country"], "MX");
    // What was paid out stays paid out; the charge after it is still pending.
    let (available, pending) = balance_in(&b, "mxn").await;
    assert_eq!((available, pending), (0, 2_000 - 72 - 300 - 60));
    b.post_ok("/_sandbox/clock", &format!("advance={DAYS_2}"))
        .await;
    assert_eq!(balance_in(&b, "mxn").await, (1_568, 0));
}

#[tokio::test]
async fn the_balance_shows_each_currency_available_and_pending() {
    let a = api(None).await;
    let empty = a.get_ok("/v1/balance").await;
    assert_eq!(
        empty,
        json!({"available": [{"amount": 0, "currency": "usd", "source_types": {"card": 0}}],
               "connect_reserved": [{"amount": 0, "currency": "usd"}],
               "livemode": false, "object": "balance",
               "pending": [{"amount": 0, "currency": "usd", "source_types": {"card": 0}}]})
    );
    card(&a, 2000, "usd", "").await;
    a.post_ok("/_sandbox/platform", "default_currency=eur")
        .await;
    card(&a, 2000, "eur", "").await;
    let balance = a.get_ok("/v1/balance").await;
    let pending: Vec<(&str, i64)> = balance["pending"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (s(&b["currency"]), b["amount"].as_i64().unwrap()))
        .collect();
    assert_eq!(pending, [("eur", 2000 - 85), ("usd", 1912)]);
    assert_eq!(a.get("/v1/balance?limit=3").await.0, 400);
    let key = a.with_key("pk_test_balance");
    assert_eq!(key.get("/v1/balance").await.0, 401);
}
