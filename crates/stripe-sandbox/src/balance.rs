//! The books: the balance transaction each movement of money makes on the account whose balance
//! it moves (a charge, a refund and its failure, a failed debit, a dispute and its reversal, a
//! transfer and its reversal on both sides, an application fee and its refund on both sides, a
//! payout and its failure), in that account's settlement currency, with what Stripe keeps
//! (`fees`). Money in (a positive net) becomes available two days after it came; money out
//! leaves at once. The sandbox's clock, which only this and payouts read, can be moved ahead
//! to make money available sooner. Paying, refunds, disputes, Connect's money and payouts call
//! in here; this module calls none of them.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::ctx::Ctx;
use crate::fees::{self, FeeLine};
use crate::objects::balance::{self as shapes, fee_detail, NewTransaction};
use crate::objects::connect::APPLICATION;
use crate::store::{now, Kind};

/// How long money that came in waits before it is available: two days.
pub(crate) const AVAILABLE_AFTER: i64 = 2 * 24 * 60 * 60;

/// The platform's country and settlement currency unless `POST /_sandbox/platform` says
/// otherwise: a US platform, as Stripe's own examples are.
pub(crate) const PLATFORM: (&str, &str) = ("US", "usd");

/// A setting of the sandbox's own (`clock`, `platform`), kept with the platform's objects.
fn setting(ctx: &mut Ctx<'_>, id: &str) -> Value {
    ctx.on(None, |ctx| ctx.find(Kind::Setting, id).cloned())
        .unwrap_or_else(|| json!({"id": id}))
}

fn save_setting(ctx: &mut Ctx<'_>, value: Value) {
    ctx.on(None, |ctx| ctx.put(Kind::Setting, value));
}

/// How far the sandbox's clock is ahead of the real one, in seconds.
pub(crate) fn clock_offset(ctx: &mut Ctx<'_>) -> i64 {
    setting(ctx, "clock")["offset"].as_i64().unwrap_or(0)
}

/// The sandbox's time (Unix seconds): the real time, moved ahead by the clock control.
pub(crate) fn clock_now(ctx: &mut Ctx<'_>) -> i64 {
    now().saturating_add(clock_offset(ctx))
}

/// Moves the sandbox's clock `seconds` ahead.
pub(crate) fn advance_clock(ctx: &mut Ctx<'_>, seconds: i64) {
    let offset = clock_offset(ctx).saturating_add(seconds);
    save_setting(
        ctx,
        json!({"id": "clock", "offset": offset, "created": now()}),
    );
}

/// Where an account settles: its country (for the fee schedule) and currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settlement {
    pub country: String,
    pub currency: String,
}

/// The platform's settlement.
pub(crate) fn platform(ctx: &mut Ctx<'_>) -> Settlement {
    let saved = setting(ctx, "platform");
    let text = |key: &str, default: &str| saved[key].as_str().unwrap_or(default).to_string();
    Settlement {
        country: text("country", PLATFORM.0),
        currency: text("currency", PLATFORM.1),
    }
}

pub(crate) fn set_platform(ctx: &mut Ctx<'_>, settlement: &Settlement) {
    let value = json!({"id": "platform", "country": settlement.country,
                       "currency": settlement.currency, "created": now()});
    save_setting(ctx, value);
}

/// Where the account acted for settles: the platform's, or a connected account's country and
/// `default_currency`.
pub(crate) fn settlement(ctx: &mut Ctx<'_>) -> Settlement {
    let Some(id) = ctx.account().map(str::to_string) else {
        return platform(ctx);
    };
    // An account the platform no longer reaches still has its own books.
    let account = ctx
        .connected_account(&id)
        .or_else(|| ctx.find(Kind::Account, &id))
        .cloned()
        .unwrap_or(Value::Null);
    Settlement {
        country: account["country"]
            .as_str()
            .unwrap_or(PLATFORM.0)
            .to_string(),
        currency: account["default_currency"]
            .as_str()
            .unwrap_or(PLATFORM.1)
            .to_string(),
    }
}

/// What Stripe keeps of a movement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fees {
    None,
    /// A charge's processing fee (and its tax), by the schedule of the account's country.
    Processing,
    /// A dispute's fee (and its tax).
    Dispute,
}

/// A movement of the balance of the account acted for.
pub(crate) struct Movement<'a> {
    /// The id the causing object names in its `balance_transaction`, if it names one.
    pub id: Option<&'a str>,
    pub kind: &'a str,
    pub category: &'a str,
    pub source: &'a str,
    /// In `currency`, the causing object's: converted to the account's settlement currency
    /// when `settle` and there is a rate.
    pub amount: i64,
    pub currency: &'a str,
    pub settle: bool,
    pub fees: Fees,
    pub description: Option<String>,
}

/// When money with this net, moved at `created`, is available: two days later when it came
/// in, at once when it went out (or when `at_once`).
fn available_on(created: i64, net: i64, at_once: bool) -> i64 {
    if net > 0 && !at_once {
        created + AVAILABLE_AFTER
    } else {
        created
    }
}

fn detail(line: &FeeLine, currency: &str) -> Value {
    fee_detail(line.kind, line.amount, currency, &line.description, None)
}

/// Records `m` on the account acted for; returns its balance transaction.
pub(crate) fn record(ctx: &mut Ctx<'_>, m: Movement<'_>) -> Value {
    let home = settlement(ctx);
    let converted = m
        .settle
        .then(|| fees::convert(m.amount, m.currency, &home.currency))
        .flatten();
    let (amount, currency, rate) = match converted {
        Some((amount, rate)) => (amount, home.currency.as_str(), rate),
        None => (m.amount, m.currency, None),
    };
    let lines = match m.fees {
        Fees::None => Vec::new(),
        Fees::Processing => fees::processing(&home.country, amount, currency),
        Fees::Dispute => fees::dispute(&home.country, currency),
    };
    let fee: i64 = lines.iter().map(|l| l.amount).sum();
    let created = now();
    let available = available_on(created, amount - fee, false);
    let txn = shapes::balance_transaction(NewTransaction {
        id: m.id.map(str::to_string),
        kind: m.kind,
        reporting_category: m.category,
        source: m.source,
        amount,
        currency,
        exchange_rate: rate.map_or(Value::Null, fees::rate_json),
        fee_details: lines.iter().map(|l| detail(l, currency)).collect(),
        description: m.description,
        created,
        available_on: available,
        status: "pending",
    });
    let mut txn = txn;
    txn["status"] = json!(status(ctx, &txn));
    ctx.put(Kind::BalanceTransaction, txn.clone());
    txn
}

/// What undoes the balance transaction `original` of the account acted for: the opposite
/// amount and fees, in the same currency at the same rate, as a transaction of `kind`. `None`
/// when there is no such transaction.
pub(crate) fn undo(
    ctx: &mut Ctx<'_>,
    original: &str,
    id: Option<&str>,
    (kind, category, source): (&str, &str, &str),
    at_once: bool,
) -> Option<Value> {
    let first = ctx.find(Kind::BalanceTransaction, original)?.clone();
    let fee_details: Vec<Value> = first["fee_details"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|line| {
            let mut line = line.clone();
            line["amount"] = json!(-line["amount"].as_i64().unwrap_or(0));
            line
        })
        .collect();
    let amount = -first["amount"].as_i64().unwrap_or(0);
    let created = now();
    let net = -first["net"].as_i64().unwrap_or(0);
    let mut txn = shapes::balance_transaction(NewTransaction {
        id: id.map(str::to_string),
        kind,
        reporting_category: category,
        source,
        amount,
        currency: first["currency"].as_str().unwrap_or_default(),
        exchange_rate: first["exchange_rate"].clone(),
        fee_details,
        description: None,
        created,
        available_on: available_on(created, net, at_once),
        status: "pending",
    });
    txn["status"] = json!(status(ctx, &txn));
    ctx.put(Kind::BalanceTransaction, txn.clone());
    Some(txn)
}

/// A balance transaction's status now: `available` once the sandbox's clock has reached its
/// `available_on`, or once an automatic payout has paid it out (the payout control pays out
/// pending money too); `pending` before.
fn status(ctx: &mut Ctx<'_>, txn: &Value) -> &'static str {
    let id = txn["id"].as_str().unwrap_or_default();
    let paid_out = ctx.note(Kind::BalanceTransaction, id).is_some();
    let due = txn["available_on"].as_i64().unwrap_or(0);
    if paid_out || due <= clock_now(ctx) {
        "available"
    } else {
        "pending"
    }
}

/// Sets the `status` of every balance transaction in an answer (events aside: they show what
/// was), as it is now.
pub(crate) fn present(ctx: &mut Ctx<'_>, value: &mut Value) {
    match value {
        Value::Object(object) => {
            if object.get("object").and_then(Value::as_str) == Some("event") {
                return;
            }
            if object.get("object").and_then(Value::as_str) == Some("balance_transaction") {
                let txn = Value::Object(object.clone());
                let now = status(ctx, &txn);
                object.insert("status".into(), json!(now));
                return;
            }
            for inner in object.values_mut() {
                present(ctx, inner);
            }
        }
        Value::Array(items) => {
            for item in items {
                present(ctx, item);
            }
        }
        _ => {}
    }
}

/// The kind of object a balance transaction's `source` names, by its id's prefix.
pub(crate) fn source_kind(id: &str) -> Option<Kind> {
    let prefix = id.split('_').next().unwrap_or_default();
    Some(match prefix {
        "ch" | "py" => Kind::Charge,
        "re" | "pyr" => Kind::Refund,
        "dp" | "du" => Kind::Dispute,
        "fee" => Kind::ApplicationFee,
        "fr" => Kind::FeeRefund,
        "tr" => Kind::Transfer,
        "trr" => Kind::TransferReversal,
        "po" => Kind::Payout,
        _ => return None,
    })
}

/// The balance transaction a captured (or `processing`) charge names, with Stripe's fee by
/// the account's schedule; once per charge.
pub(crate) fn charge(ctx: &mut Ctx<'_>, charge: &Value) {
    let Some(id) = charge["balance_transaction"].as_str() else {
        return;
    };
    if ctx.find(Kind::BalanceTransaction, id).is_some() {
        return;
    }
    let amount = charge["amount_captured"]
        .as_i64()
        .filter(|a| *a > 0)
        .or(charge["amount"].as_i64())
        .unwrap_or(0);
    record(
        ctx,
        Movement {
            id: Some(id),
            kind: "charge",
            category: "charge",
            source: charge["id"].as_str().unwrap_or_default(),
            amount,
            currency: charge["currency"].as_str().unwrap_or_default(),
            settle: true,
            fees: Fees::Processing,
            description: charge["description"].as_str().map(str::to_string),
        },
    );
}

/// A debit that was `processing` failed: its charge's transaction is undone
/// (`payment_failure_refund`, its `failure_balance_transaction`), fee included.
pub(crate) fn charge_failed(ctx: &mut Ctx<'_>, charge: &Value) {
    let (Some(original), Some(id)) = (
        charge["balance_transaction"].as_str(),
        charge["failure_balance_transaction"].as_str(),
    ) else {
        return;
    };
    let source = charge["id"].as_str().unwrap_or_default();
    let kind = ("payment_failure_refund", "charge_failure", source);
    undo(ctx, original, Some(id), kind, true);
}

/// A refund of a charge: the money goes back to the customer (Stripe keeps its fee).
pub(crate) fn refund(ctx: &mut Ctx<'_>, refund: &Value, charge: &Value) {
    let Some(id) = refund["balance_transaction"].as_str() else {
        return;
    };
    let description = match charge["description"].as_str() {
        Some(what) => format!("REFUND FOR CHARGE ({what})"),
        None => "REFUND FOR CHARGE".to_string(),
    };
    record(
        ctx,
        Movement {
            id: Some(id),
            kind: "refund",
            category: "refund",
            source: refund["id"].as_str().unwrap_or_default(),
            amount: -refund["amount"].as_i64().unwrap_or(0),
            currency: refund["currency"].as_str().unwrap_or_default(),
            settle: true,
            fees: Fees::None,
            description: Some(description),
        },
    );
}

/// A refund failed: its money comes back (`refund_failure`, its
/// `failure_balance_transaction`).
pub(crate) fn refund_failed(ctx: &mut Ctx<'_>, refund: &Value) {
    let (Some(original), Some(id)) = (
        refund["balance_transaction"].as_str(),
        refund["failure_balance_transaction"].as_str(),
    ) else {
        return;
    };
    let source = refund["id"].as_str().unwrap_or_default();
    undo(
        ctx,
        original,
        Some(id),
        ("refund_failure", "refund_failure", source),
        false,
    );
}

/// A dispute opened: the disputed amount is withdrawn, with the dispute fee. Returns the
/// transaction, which the dispute embeds.
pub(crate) fn dispute_withdrawal(ctx: &mut Ctx<'_>, dispute: &Value) -> Value {
    record(
        ctx,
        Movement {
            id: None,
            kind: "adjustment",
            category: "dispute",
            source: dispute["id"].as_str().unwrap_or_default(),
            amount: -dispute["amount"].as_i64().unwrap_or(0),
            currency: dispute["currency"].as_str().unwrap_or_default(),
            settle: true,
            fees: Fees::Dispute,
            description: Some(format!(
                "Chargeback withdrawal for {}",
                dispute["charge"].as_str().unwrap_or_default()
            )),
        },
    )
}

/// A dispute won: its withdrawal is undone, fee included. Returns the transaction.
pub(crate) fn dispute_reinstatement(ctx: &mut Ctx<'_>, dispute: &Value) -> Option<Value> {
    let original = dispute["balance_transactions"][0]["id"].as_str()?;
    let source = dispute["id"].as_str().unwrap_or_default();
    let mut txn = undo(
        ctx,
        original,
        None,
        ("adjustment", "dispute_reversal", source),
        false,
    )?;
    txn["description"] = json!(format!(
        "Chargeback reversal for {}",
        dispute["charge"].as_str().unwrap_or_default()
    ));
    ctx.put(Kind::BalanceTransaction, txn.clone());
    Some(txn)
}

/// A transfer to a connected account: out of the platform's balance (`transfer`), into the
/// account's as the payment `paid` (`payment`).
pub(crate) fn transfer(ctx: &mut Ctx<'_>, transfer: &Value, paid: &Value) {
    let amount = transfer["amount"].as_i64().unwrap_or(0);
    let currency = transfer["currency"].as_str().unwrap_or_default();
    ctx.on(None, |ctx| {
        record(
            ctx,
            Movement {
                id: transfer["balance_transaction"].as_str(),
                kind: "transfer",
                category: "transfer",
                source: transfer["id"].as_str().unwrap_or_default(),
                amount: -amount,
                currency,
                settle: true,
                fees: Fees::None,
                description: transfer["description"].as_str().map(str::to_string),
            },
        )
    });
    ctx.on(transfer["destination"].as_str(), |ctx| {
        record(
            ctx,
            Movement {
                id: paid["balance_transaction"].as_str(),
                kind: "payment",
                category: "charge",
                source: paid["id"].as_str().unwrap_or_default(),
                amount,
                currency,
                settle: true,
                fees: Fees::None,
                description: None,
            },
        )
    });
}

/// A transfer reversed: back into the platform's balance (`transfer_refund`), out of the
/// account's as the refund `refunded` of its payment (`payment_refund`).
pub(crate) fn reversal(
    ctx: &mut Ctx<'_>,
    reversal: &Value,
    destination: &str,
    refunded: Option<&Value>,
) {
    let amount = reversal["amount"].as_i64().unwrap_or(0);
    let currency = reversal["currency"].as_str().unwrap_or_default();
    ctx.on(None, |ctx| {
        record(
            ctx,
            Movement {
                id: reversal["balance_transaction"].as_str(),
                kind: "transfer_refund",
                category: "transfer_reversal",
                source: reversal["id"].as_str().unwrap_or_default(),
                amount,
                currency,
                settle: true,
                fees: Fees::None,
                description: None,
            },
        )
    });
    let Some(refunded) = refunded else {
        return;
    };
    ctx.on(Some(destination), |ctx| {
        record(
            ctx,
            Movement {
                id: refunded["balance_transaction"].as_str(),
                kind: "payment_refund",
                category: "refund",
                source: refunded["id"].as_str().unwrap_or_default(),
                amount: -amount,
                currency,
                settle: true,
                fees: Fees::None,
                description: None,
            },
        )
    });
}

/// The platform took the application fee `fee`: into its balance (`application_fee`), and out
/// of the connected account's as a fee of the account's transaction `txn_id` (the direct
/// charge's, or the destination charge's payment's): an `application_fee` line of its
/// `fee_details`.
pub(crate) fn application_fee(ctx: &mut Ctx<'_>, fee: &Value, txn_id: &str) {
    let amount = fee["amount"].as_i64().unwrap_or(0);
    let currency = fee["currency"].as_str().unwrap_or_default();
    ctx.on(None, |ctx| {
        record(
            ctx,
            Movement {
                id: fee["balance_transaction"].as_str(),
                kind: "application_fee",
                category: "platform_earning",
                source: fee["id"].as_str().unwrap_or_default(),
                amount,
                currency,
                settle: true,
                fees: Fees::None,
                description: Some("Application fee".into()),
            },
        )
    });
    ctx.on(fee["account"].as_str(), |ctx| {
        let Some(mut txn) = ctx.find(Kind::BalanceTransaction, txn_id).cloned() else {
            return;
        };
        let home = txn["currency"].as_str().unwrap_or_default().to_string();
        let taken = fees::convert(amount, currency, &home).map_or(amount, |(a, _)| a);
        let line = fee_detail(
            "application_fee",
            taken,
            &home,
            "Application fee",
            Some(APPLICATION),
        );
        if let Some(lines) = txn["fee_details"].as_array_mut() {
            lines.push(line);
        }
        txn["fee"] = json!(txn["fee"].as_i64().unwrap_or(0) + taken);
        txn["net"] = json!(txn["net"].as_i64().unwrap_or(0) - taken);
        ctx.put(Kind::BalanceTransaction, txn);
    });
}

/// Part of an application fee refunded (`refunded`, a fee refund of `fee`): out of the
/// platform's balance, back into the connected account's, both as `application_fee_refund`.
pub(crate) fn fee_refund(ctx: &mut Ctx<'_>, refunded: &Value, fee: &Value) {
    let amount = refunded["amount"].as_i64().unwrap_or(0);
    let currency = refunded["currency"].as_str().unwrap_or_default();
    let source = refunded["id"].as_str().unwrap_or_default();
    let movement = |id, amount| Movement {
        id,
        kind: "application_fee_refund",
        category: "platform_earning_refund",
        source,
        amount,
        currency,
        settle: true,
        fees: Fees::None,
        description: Some("Application fee refund".into()),
    };
    ctx.on(None, |ctx| {
        record(
            ctx,
            movement(refunded["balance_transaction"].as_str(), -amount),
        )
    });
    ctx.on(fee["account"].as_str(), |ctx| {
        record(ctx, movement(None, amount))
    });
}

/// A payout leaves the balance of the account acted for, in its own currency, at once.
pub(crate) fn payout(ctx: &mut Ctx<'_>, payout: &Value) -> Value {
    record(
        ctx,
        Movement {
            id: payout["balance_transaction"].as_str(),
            kind: "payout",
            category: "payout",
            source: payout["id"].as_str().unwrap_or_default(),
            amount: -payout["amount"].as_i64().unwrap_or(0),
            currency: payout["currency"].as_str().unwrap_or_default(),
            settle: false,
            fees: Fees::None,
            description: Some("STRIPE PAYOUT".into()),
        },
    )
}

/// A payout failed or was canceled (`kind`: `payout_failure`, `payout_cancel`): its money is
/// back in the balance at once (its `failure_balance_transaction`).
pub(crate) fn payout_returned(ctx: &mut Ctx<'_>, payout: &Value, kind: &str) {
    let (Some(original), Some(id)) = (
        payout["balance_transaction"].as_str(),
        payout["failure_balance_transaction"].as_str(),
    ) else {
        return;
    };
    let source = payout["id"].as_str().unwrap_or_default();
    undo(
        ctx,
        original,
        Some(id),
        (kind, "payout_reversal", source),
        true,
    );
}

/// The balance transactions of the account acted for that no automatic payout has paid out,
/// oldest first.
pub(crate) fn unpaid(ctx: &Ctx<'_>) -> Vec<Value> {
    ctx.all(Kind::BalanceTransaction)
        .filter(|t| {
            let id = t["id"].as_str().unwrap_or_default();
            ctx.note(Kind::BalanceTransaction, id).is_none()
        })
        .cloned()
        .collect()
}

/// Notes that the automatic payout `payout` paid out these transactions.
pub(crate) fn paid_out(ctx: &mut Ctx<'_>, txns: &[Value], payout: &str) {
    for txn in txns {
        ctx.put_noted(Kind::BalanceTransaction, txn.clone(), payout.to_string());
    }
}

/// Whether the automatic payout `payout` paid out the transaction `txn`.
pub(crate) fn paid_by(ctx: &Ctx<'_>, txn: &Value, payout: &str) -> bool {
    ctx.note(
        Kind::BalanceTransaction,
        txn["id"].as_str().unwrap_or_default(),
    ) == Some(payout)
}

/// The balance of the account acted for, per currency: the nets of its transactions that are
/// available now, and of those still pending.
pub(crate) fn sums(ctx: &mut Ctx<'_>) -> (BTreeMap<String, i64>, BTreeMap<String, i64>) {
    let (mut available, mut pending) = (BTreeMap::new(), BTreeMap::new());
    let txns: Vec<Value> = ctx.all(Kind::BalanceTransaction).cloned().collect();
    for txn in txns {
        let currency = txn["currency"].as_str().unwrap_or_default().to_string();
        let net = txn["net"].as_i64().unwrap_or(0);
        let side = if status(ctx, &txn) == "available" {
            &mut available
        } else {
            &mut pending
        };
        *side.entry(currency).or_insert(0) += net;
    }
    (available, pending)
}
