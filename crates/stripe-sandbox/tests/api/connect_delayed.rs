//! Connect with the payment methods whose money comes later (OXXO vouchers, bank transfers into
//! a cash balance, SEPA Direct Debit): their Customers, cash balances, pages and timers live on
//! the account `Stripe-Account` names, as PaymentIntents do; a direct or destination charge
//! paid by one of them moves its Connect money (the transfer, the application fee) when the
//! money arrives, never at confirmation.

use std::time::Duration;

use serde_json::Value;

use crate::connect::{express, money_of, onboarded};
use crate::helpers::*;

/// A 404 `resource_missing`, as a request that names another account's object gets.
fn missing((status, body): (u16, Value)) {
    assert_eq!(
        (status, s(&body["error"]["code"])),
        (404, "resource_missing"),
        "{body}"
    );
}

/// What `/v1/transfers` and `/v1/application_fees` list: the platform's transfers and fees.
async fn moved(a: &Api) -> (Vec<String>, Vec<String>) {
    (
        ids(&a.get_ok("/v1/transfers").await),
        ids(&a.get_ok("/v1/application_fees").await),
    )
}

/// The platform's application fee of a charge, retrieved.
pub(crate) async fn fee_of(a: &Api, charge: &Value) -> Value {
    a.get_ok(&format!(
        "/v1/application_fees/{}",
        s(&charge["application_fee"])
    ))
    .await
}

#[tokio::test]
async fn customers_their_cash_balances_and_refunds_live_on_their_account() {
    let a = api(None).await;
    let org = s(&express(&a, "").await["id"]).to_string();
    let on_org = a.on(&org);
    let platforms = a.customer("platform@example.com").await;
    let accounts = on_org.customer("buyer@example.com").await;
    let (p, c) = (s(&platforms["id"]), s(&accounts["id"]));
    // Each is unknown to the other side, whatever is asked of it.
    for (other, id) in [(&on_org, p), (&a, c)] {
        for path in [
            format!("/v1/customers/{id}"),
            format!("/v1/customers/{id}/cash_balance"),
            format!("/v1/customers/{id}/cash_balance_transactions"),
        ] {
            missing(other.get(&path).await);
        }
        missing(other.post(&format!("/v1/customers/{id}"), "name=X").await);
        missing(
            other
                .post(
                    &format!("/v1/test_helpers/customers/{id}/fund_cash_balance"),
                    "amount=1000&currency=mxn",
                )
                .await,
        );
        let (status, body) = other
            .post(
                "/v1/payment_intents",
                &format!("amount=1000&currency=mxn&customer={id}"),
            )
            .await;
        assert_eq!(
            (
                status,
                s(&body["error"]["code"]),
                s(&body["error"]["param"])
            ),
            (400, "resource_missing", "customer"),
            "{body}"
        );
    }
    assert_eq!(ids(&a.get_ok("/v1/customers").await), [p]);
    assert_eq!(ids(&on_org.get_ok("/v1/customers").await), [c]);
    // Stripe's test helper funds the account's customer with the header.
    let funded = on_org.fund(c, 5000, "mxn", "").await;
    assert_eq!((s(&funded["type"]), s(&funded["customer"])), ("funded", c));
    assert_eq!(on_org.cash(c, "mxn").await, 5000);
    let listed = on_org
        .get_ok(&format!("/v1/customers/{c}/cash_balance_transactions"))
        .await;
    assert_eq!(ids(&listed), [s(&funded["id"])]);
    // Money of the account's cash balance goes back with the header only, and the refund
    // settles by itself on the account.
    let form = format!("customer={c}&origin=customer_balance&amount=2000&currency=mxn");
    let (status, body) = a.post("/v1/refunds", &form).await;
    assert_eq!(
        (status, s(&body["error"]["param"])),
        (400, "customer"),
        "{body}"
    );
    let refund = on_org.post_ok("/v1/refunds", &form).await;
    assert_eq!(refund["status"], "pending");
    let settled = on_org.wait_event("refund.updated", s(&refund["id"])).await;
    assert_eq!(settled["status"], "succeeded");
    assert_eq!(on_org.cash(c, "mxn").await, 3000);
    missing(a.get(&format!("/v1/refunds/{}", s(&refund["id"]))).await);
    // Their events are the account's, naming it; the platform sees only its own customer's.
    let events = on_org.get_ok("/v1/events?limit=100").await;
    let seen = types(&events);
    for wanted in [
        "customer.created",
        "customer_cash_balance_transaction.created",
        "cash_balance.funds_available",
        "refund.created",
        "refund.updated",
    ] {
        assert!(seen.contains(&wanted), "{wanted} not among {seen:?}");
    }
    let all = events["data"].as_array().unwrap();
    assert!(all.iter().all(|e| e["account"] == org.as_str()), "{events}");
    let platform = a.get_ok("/v1/events?limit=100").await;
    assert_eq!(types(&platform), ["customer.created"]);
    assert_eq!(platform["data"][0]["data"]["object"]["id"], p);
}

#[tokio::test]
async fn an_oxxo_destination_charge_moves_its_money_only_once_the_voucher_is_paid() {
    let a = api(None).await;
    let org = onboarded(&a).await;
    let routed = format!("&transfer_data[destination]={org}&application_fee_amount=1500");
    let pi = a.oxxo(20000, "ana@example.com", &routed).await;
    assert_eq!(
        (s(&pi["status"]), &pi["transfer_data"]["destination"]),
        ("requires_action", &Value::from(org.as_str()))
    );
    // A voucher is a promise of cash: nothing is transferred and no fee taken yet.
    assert_eq!(moved(&a).await, (vec![], vec![]));
    assert!(ids(&a.on(&org).get_ok("/v1/charges").await).is_empty());
    let (status, paid) = control(&a, &pi, "pay_voucher").await;
    assert_eq!((status, s(&paid["status"])), (200, "succeeded"), "{paid}");
    let (charge, transfer, fee) = money_of(&a, &paid).await;
    assert_eq!(charge["payment_method_details"]["type"], "oxxo");
    assert_eq!(
        (
            transfer["amount"].as_i64(),
            s(&transfer["currency"]),
            s(&transfer["destination"]),
            &transfer["source_transaction"]
        ),
        (Some(20000), "mxn", org.as_str(), &charge["id"])
    );
    assert_eq!(
        (fee["amount"].as_i64(), s(&fee["account"])),
        (Some(1500), org.as_str())
    );
    assert_eq!(fee["originating_transaction"], charge["id"]);
    let payment = a
        .on(&org)
        .get_ok(&format!(
            "/v1/charges/{}",
            s(&transfer["destination_payment"])
        ))
        .await;
    assert_eq!(
        (payment["amount"].as_i64(), &payment["source_transfer"]),
        (Some(20000), &transfer["id"])
    );
    // The platform's events say so in that order: the voucher, then the money and the payment.
    let events = a.get_ok("/v1/events?limit=100").await;
    let mut order = types(&events);
    order.reverse();
    let at = |t: &str| order.iter().position(|o| *o == t).unwrap();
    assert!(
        at("payment_intent.requires_action") < at("transfer.created")
            && at("transfer.created") < at("payment_intent.succeeded")
            && at("application_fee.created") < at("payment_intent.succeeded"),
        "{order:?}"
    );
    // A voucher that expires unpaid moves nothing.
    let lapsed = a.oxxo(20000, "ana@example.com", &routed).await;
    let (status, expired) = control(&a, &lapsed, "expire_voucher").await;
    assert_eq!(
        (status, s(&expired["status"])),
        (200, "requires_payment_method")
    );
    assert_eq!(
        moved(&a).await,
        (vec![s(&transfer["id"]).into()], vec![s(&fee["id"]).into()])
    );
}

#[tokio::test]
async fn a_direct_oxxo_charge_is_paid_or_expires_on_its_account() {
    let a = api(None).await;
    let org = onboarded(&a).await;
    let on_org = a.on(&org);
    let pi = on_org
        .oxxo(20000, "ana@example.com", "&application_fee_amount=1000")
        .await;
    assert_eq!(pi["status"], "requires_action");
    assert!(s(&pi["application"]).starts_with("ca_"), "{pi}");
    missing(
        a.get(&format!("/v1/payment_intents/{}", s(&pi["id"])))
            .await,
    );
    // The voucher's page needs no key and finds the PaymentIntent on its account.
    let url = s(&pi["next_action"]["oxxo_display_details"]["hosted_voucher_url"]).to_string();
    let (status, html) = page(&url).await;
    assert_eq!(status, 200);
    assert!(html.contains("200.00 MXN"), "{html}");
    // The store's control is a request like any other: it acts for the account it names.
    missing(control(&a, &pi, "pay_voucher").await);
    assert_eq!(moved(&a).await, (vec![], vec![]));
    let (status, paid) = control(&on_org, &pi, "pay_voucher").await;
    assert_eq!((status, s(&paid["status"])), (200, "succeeded"), "{paid}");
    let charge = on_org.charge_of(&paid).await;
    let fee = fee_of(&a, &charge).await;
    assert_eq!(
        (fee["amount"].as_i64(), s(&fee["account"]), &fee["charge"]),
        (Some(1000), org.as_str(), &charge["id"])
    );
    assert_eq!(fee["originating_transaction"], Value::Null);
    let (_, html) = page(&url).await;
    assert!(html.contains("Pagado"), "{html}");
    let theirs = on_org.get_ok("/v1/events?limit=100").await;
    assert!(types(&theirs).contains(&"payment_intent.succeeded"));
    assert!(theirs["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["account"] == org.as_str()));
    assert_eq!(
        types(&a.get_ok("/v1/events?limit=100").await),
        ["application_fee.created"]
    );
    // Stripe's test e-mails act by themselves, on the account: one voucher is paid (its fee
    // taken), the other expires.
    let quick = on_org
        .oxxo(
            20000,
            "ana.succeed_immediately@example.com",
            "&application_fee_amount=500",
        )
        .await;
    let slow = on_org
        .oxxo(20000, "ana.expire_with_delay@example.com", "")
        .await;
    let done = on_org
        .wait_event("payment_intent.succeeded", s(&quick["id"]))
        .await;
    let fee = fee_of(&a, &on_org.charge_of(&done).await).await;
    assert_eq!(fee["amount"], 500);
    let failed = on_org
        .wait_event("payment_intent.payment_failed", s(&slow["id"]))
        .await;
    assert_eq!(
        failed["last_payment_error"]["code"],
        "payment_intent_payment_attempt_expired"
    );
    assert_eq!(moved(&a).await.1.len(), 2);
}

#[tokio::test]
async fn a_bank_transfer_pays_a_direct_or_destination_charge_once_fully_funded() {
    let a = api(None).await;
    let org = onboarded(&a).await;
    let on_org = a.on(&org);
    // A direct charge: the account's customer sends money to the account's instructions.
    let buyer = on_org.customer("buyer@example.com").await;
    let c = s(&buyer["id"]);
    let pi = on_org
        .transfer_with(c, 10000, "mxn", "&application_fee_amount=500")
        .await;
    let id = s(&pi["id"]);
    let instructions = &pi["next_action"]["display_bank_transfer_instructions"];
    let (status, html) = page(s(&instructions["hosted_instructions_url"])).await;
    assert_eq!(status, 200);
    let clabe = s(&instructions["financial_addresses"][0]["spei"]["clabe"]);
    assert!(
        html.contains(clabe) && html.contains("100.00 MXN"),
        "{html}"
    );
    on_org
        .fund(
            c,
            4000,
            "mxn",
            &format!("&reference={}", s(&instructions["reference"])),
        )
        .await;
    let part = on_org.get_ok(&format!("/v1/payment_intents/{id}")).await;
    assert_eq!(
        part["next_action"]["display_bank_transfer_instructions"]["amount_remaining"],
        6000
    );
    assert_eq!(moved(&a).await, (vec![], vec![]));
    on_org.fund(c, 6000, "mxn", "").await;
    let paid = on_org.get_ok(&format!("/v1/payment_intents/{id}")).await;
    assert_eq!(paid["status"], "succeeded");
    let fee = fee_of(&a, &on_org.charge_of(&paid).await).await;
    assert_eq!(
        (fee["amount"].as_i64(), s(&fee["account"])),
        (Some(500), org.as_str())
    );
    let events = on_org
        .get_ok("/v1/events?type=payment_intent.partially_funded")
        .await;
    assert_eq!(events["data"][0]["data"]["object"]["id"], id);
    assert_eq!(events["data"][0]["account"], org.as_str());
    // A destination charge: the platform's customer pays the platform, in two transfers.
    let payer = a.customer("payer@example.com").await;
    let p = s(&payer["id"]);
    let pi = a
        .transfer_with(
            p,
            8000,
            "eur",
            &format!("&transfer_data[destination]={org}&application_fee_amount=300"),
        )
        .await;
    a.fund(p, 5000, "eur", "").await;
    assert_eq!(moved(&a).await.0, Vec::<String>::new());
    a.fund(p, 3000, "eur", "").await;
    let paid = a
        .get_ok(&format!("/v1/payment_intents/{}", s(&pi["id"])))
        .await;
    assert_eq!(paid["status"], "succeeded");
    let (_, transfer, fee) = money_of(&a, &paid).await;
    assert_eq!(
        (
            transfer["amount"].as_i64(),
            s(&transfer["currency"]),
            s(&transfer["destination"])
        ),
        (Some(8000), "eur", org.as_str())
    );
    assert_eq!(fee["amount"], 300);
}

#[tokio::test]
async fn sepa_debits_for_or_on_an_account_move_money_when_the_debit_succeeds() {
    // A long delay: nothing happens until the test runs the timers.
    let a = api_with_delay(None, Duration::from_secs(3600)).await;
    let org = onboarded(&a).await;
    let on_org = a.on(&org);
    let routed = format!("&transfer_data[destination]={org}&application_fee_amount=200");
    let (_, good) = a.sepa("AT611904300234573201", 4200, &routed).await;
    let (_, bad) = a.sepa("AT861904300235473202", 4200, &routed).await;
    let (_, direct) = on_org
        .sepa("AT591904300235473203", 4200, "&application_fee_amount=100")
        .await;
    for pi in [&good, &bad, &direct] {
        assert_eq!(pi["status"], "processing", "{pi}");
    }
    assert_eq!(moved(&a).await, (vec![], vec![]));
    // The direct debit's timer is the account's.
    let timers = a.get_ok("/_sandbox/timers").await;
    let pending = timers["pending"].as_array().unwrap();
    let of = |pi: &Value| {
        pending
            .iter()
            .find(|t| t["action"]["payment_intent"] == pi["id"])
            .map(|t| t["action"]["account"].clone())
    };
    assert_eq!(of(&direct), Some(Value::from(org.as_str())), "{timers}");
    assert_eq!(of(&good), Some(Value::Null), "{timers}");
    a.post_ok("/_sandbox/timers", "run=true").await;
    let done = a
        .wait_event("payment_intent.succeeded", s(&good["id"]))
        .await;
    let (_, transfer, fee) = money_of(&a, &done).await;
    assert_eq!(
        (transfer["amount"].as_i64(), fee["amount"].as_i64()),
        (Some(4200), Some(200))
    );
    a.wait_event("payment_intent.payment_failed", s(&bad["id"]))
        .await;
    let debited = on_org
        .wait_event("payment_intent.succeeded", s(&direct["id"]))
        .await;
    let charge = on_org.charge_of(&debited).await;
    assert_eq!(fee_of(&a, &charge).await["amount"], 100);
    assert_eq!(moved(&a).await.0.len(), 1, "the failed debit transferred");
    assert_eq!(moved(&a).await.1.len(), 2);
    // The disputed test IBAN's dispute opens on the account, by the account's timer.
    a.post_ok("/_sandbox/timers", "run=true").await;
    let dispute = on_org
        .dispute_of(&format!("payment_intent={}", s(&direct["id"])))
        .await;
    assert_eq!(
        (s(&dispute["reason"]), &dispute["charge"]),
        ("debit_not_authorized", &charge["id"])
    );
    assert!(ids(&a.get_ok("/v1/disputes").await).is_empty());
    // A refund of the destination debit may reverse the transfer and return the fee.
    let refund = a
        .post_ok(
            "/v1/refunds",
            &format!(
                "payment_intent={}&amount=2100&reverse_transfer=true&refund_application_fee=true",
                s(&good["id"])
            ),
        )
        .await;
    assert!(
        s(&refund["transfer_reversal"]).starts_with("trr_"),
        "{refund}"
    );
    let (_, transfer, fee) = money_of(&a, &done).await;
    assert_eq!(
        (
            transfer["amount_reversed"].as_i64(),
            fee["amount_refunded"].as_i64()
        ),
        (Some(2100), Some(100))
    );
}
