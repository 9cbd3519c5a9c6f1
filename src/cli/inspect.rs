//! The ledger from the command line: payments, events, refunds, disputes and notifications, as
//! tables for people or as JSON (`--json`, amounts in minor units) for scripts.

use serde::Serialize;

use super::ListArgs;
use crate::ledger::{
    DisputeRow, Ledger, MovementRow, NotificationRow, NotificationStatus, PaymentDetail,
    PaymentRow, RefundRow,
};
use crate::money::Major;

/// Prints `rows` under `headers`, each column as wide as its widest cell (the last one as is).
pub(super) fn table(headers: &[&str], rows: &[Vec<String>]) {
    let columns = headers.len();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(columns) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        println!("{}", out.trim_end());
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

pub(super) fn json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub(super) fn money(minor: i64, currency: &str) -> String {
    format!("{} {currency}", Major::of(minor, currency))
}

/// What a payment charged, for people: after a partial capture, what was authorised beside it.
fn charged(p: &PaymentRow) -> String {
    let charged = money(p.charged(), &p.currency);
    match p.authorised_beyond_charged() {
        Some(authorised) => format!("{charged} (authorised {})", money(authorised, &p.currency)),
        None => charged,
    }
}

/// A payment as `--json` prints it: `amount` is what it charged (minor units), with
/// `amount_authorized` beside it when a partial capture charged less than was authorised.
fn payment_json(p: &PaymentRow) -> anyhow::Result<serde_json::Value> {
    let mut object = serde_json::to_value(p)?;
    object["amount"] = p.charged().into();
    if let Some(authorised) = p.authorised_beyond_charged() {
        object["amount_authorized"] = authorised.into();
    }
    Ok(object)
}

/// `rows` as JSON, or as a table under `headers` with the cells `cells` gives each row.
pub(super) fn listing<T: Serialize>(
    rows: &[T],
    as_json: bool,
    headers: &[&str],
    cells: impl Fn(&T) -> Vec<String>,
) -> anyhow::Result<()> {
    if as_json {
        return json(&rows);
    }
    let cells: Vec<Vec<String>> = rows.iter().map(cells).collect();
    table(headers, &cells);
    Ok(())
}

/// Prints one field of a record: `label`, then `value` in the column after it.
pub(super) fn field(label: &str, value: impl std::fmt::Display) {
    println!("{label:<16}{value}");
}

/// Prints `label` with how many `items` there are, then a line for each.
pub(super) fn items<T>(label: &str, items: &[T], item: impl Fn(&T) -> String) {
    field(label, items.len());
    for each in items {
        println!("  {}", item(each));
    }
}

pub async fn payments(ledger: &Ledger, list: &ListArgs) -> anyhow::Result<()> {
    let rows: Vec<PaymentRow> = ledger.list(list.status(), list.limit()).await?;
    if list.json {
        let rows = rows
            .iter()
            .map(payment_json)
            .collect::<anyhow::Result<Vec<_>>>()?;
        return json(&rows);
    }
    let headers = ["ID", "STATUS", "AMOUNT", "CREATED", "UPDATED"];
    listing(&rows, false, &headers, |p| {
        vec![
            p.id.clone(),
            p.status.to_string(),
            charged(p),
            p.created.to_string(),
            p.updated_at.clone(),
        ]
    })
}

pub async fn payment(ledger: &Ledger, id: &str, as_json: bool) -> anyhow::Result<()> {
    let Some(detail) = ledger.payment_detail(id).await? else {
        anyhow::bail!("no payment {id} in the ledger");
    };
    let PaymentDetail {
        payment: row,
        refunded,
        hold,
        events,
        refunds,
        disputes,
        notifications,
        connect,
        reversals,
        actions,
    } = detail;
    if as_json {
        let mut object = payment_json(&row)?;
        object["amount_refunded"] = refunded.into();
        object["disputed"] = (!disputes.is_empty()).into();
        if let Some(hold) = &hold {
            object["hold_expires_at"] = hold.expires_ms.div_euclid(1000).into();
            object["hold_expires_at_ms"] = hold.expires_ms.into();
            object["hold_state"] = serde_json::to_value(hold.state)?;
            object["late"] = hold.late.into();
        }
        if let Some(connect) = &connect {
            // Stripe Connect: the organiser, the fee and the transfer, beside the payment's own.
            for (k, v) in serde_json::to_value(connect)?
                .as_object()
                .into_iter()
                .flatten()
            {
                object[k] = v.clone();
            }
            object["transfer_reversals"] = serde_json::to_value(&reversals)?;
            object["connect_actions"] = serde_json::to_value(&actions)?;
        }
        object["refunds"] = serde_json::to_value(&refunds)?;
        object["disputes"] = serde_json::to_value(&disputes)?;
        object["events"] = serde_json::to_value(&events)?;
        object["notifications"] = serde_json::to_value(
            notifications
                .iter()
                .map(|n| {
                    serde_json::json!({
                        "id": n.id, "type": n.kind, "status": n.status,
                        "attempts": n.attempts, "created": n.created,
                    })
                })
                .collect::<Vec<_>>(),
        )?;
        return json(&object);
    }
    field("id", row.id.clone());
    field("status", row.status.to_string());
    field(
        "amount",
        format!("{} ({} minor units)", charged(&row), row.charged()),
    );
    field("amount_refunded", money(refunded, &row.currency));
    field("description", row.description.clone().unwrap_or_default());
    field("metadata", row.metadata.to_string());
    field("created", row.created.to_string());
    field("updated_at", row.updated_at.clone());
    if let Some(hold) = hold {
        let until = chrono::DateTime::from_timestamp_millis(hold.expires_ms)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .unwrap_or_else(|| hold.expires_ms.to_string());
        field(
            "hold",
            format!(
                "until {until} ({}){}",
                hold.state.map_or("open", |s| s.as_str()),
                if hold.late { ", late" } else { "" }
            ),
        );
    }
    if let Some(c) = &connect {
        field("organizer", c.organizer_id.as_deref().unwrap_or("-"));
        let how = c.charge_type.map_or("-", |t| t.as_str());
        field(
            "charge",
            match &c.stripe_account {
                Some(account) => format!("{how} on {account}"),
                None => how.to_string(),
            },
        );
        let fee = |minor| money(minor, &row.currency);
        field(
            "application_fee",
            format!(
                "{} ({} refunded)",
                fee(c.application_fee.unwrap_or(0)),
                fee(c.application_fee_refunded)
            ),
        );
        if let Some(transfer) = &c.transfer_id {
            field(
                "transfer",
                format!("{transfer} ({} reversed)", fee(c.transfer_reversed)),
            );
        }
        items("reversals", &reversals, |r| {
            let cause = match (&r.refund_id, &r.dispute_id) {
                (Some(refund), _) => format!("refund {refund}"),
                (_, Some(dispute)) => format!("dispute {dispute}"),
                _ => "-".into(),
            };
            format!("{} {} {cause}", r.id, money(r.amount, &row.currency))
        });
        items("connect_actions", &actions, |a| {
            let made = a.result_id.as_deref().unwrap_or("-");
            format!("{} {} {made}", a.id, a.state)
        });
    }
    items("refunds", &refunds, |r| {
        let amount = money(r.amount, &r.currency);
        let failure = r.own.failure_reason.as_deref().unwrap_or("");
        format!("{} {} {amount} {failure}", r.id, r.status)
    });
    items("disputes", &disputes, |d| {
        let amount = money(d.amount, &d.currency);
        let reason = d.reason.as_deref().unwrap_or("");
        format!("{} {} {amount} {reason}", d.id, d.status)
    });
    items("events", &events, |e| {
        let (received, id, kind) = (&e.received_at, &e.id, &e.event_type);
        format!("{received} {id} {kind} {} ({})", e.outcome, e.source)
    });
    if !notifications.is_empty() {
        items("notifications", &notifications, |n| {
            format!("{} {} {} ({} tries)", n.id, n.kind, n.status, n.attempts)
        });
    }
    Ok(())
}

pub async fn events(ledger: &Ledger, limit: i64, as_json: bool) -> anyhow::Result<()> {
    let rows = ledger.list_events(limit).await?;
    let headers = [
        "ID",
        "TYPE",
        "PAYMENT INTENT",
        "OUTCOME",
        "SOURCE",
        "RECEIVED",
    ];
    listing(&rows, as_json, &headers, |e| {
        vec![
            e.id.clone(),
            e.event_type.to_string(),
            e.payment_intent_id.clone().unwrap_or_else(|| "-".into()),
            e.outcome.to_string(),
            e.source.to_string(),
            e.received_at.clone(),
        ]
    })
}

/// The columns refunds and disputes share, then the one of their own (`last`).
fn movement_headers(last: &'static str) -> [&'static str; 6] {
    ["ID", "PAYMENT INTENT", "STATUS", "AMOUNT", "REASON", last]
}

/// A refund's or dispute's row under `movement_headers`, `last` its own column.
fn movement<S: std::fmt::Display, X>(row: &MovementRow<S, X>, last: String) -> Vec<String> {
    vec![
        row.id.clone(),
        row.payment_intent_id.clone(),
        row.status.to_string(),
        money(row.amount, &row.currency),
        row.reason.clone().unwrap_or_else(|| "-".into()),
        last,
    ]
}

pub async fn refunds(ledger: &Ledger, list: &ListArgs) -> anyhow::Result<()> {
    let rows: Vec<RefundRow> = ledger.list(list.status(), list.limit()).await?;
    listing(&rows, list.json, &movement_headers("CREATED"), |r| {
        movement(r, r.created.to_string())
    })
}

pub async fn disputes(ledger: &Ledger, list: &ListArgs) -> anyhow::Result<()> {
    let rows: Vec<DisputeRow> = ledger.list(list.status(), list.limit()).await?;
    listing(&rows, list.json, &movement_headers("EVIDENCE DUE"), |d| {
        let due = d.own.evidence_due_by;
        movement(d, due.map_or_else(|| "-".into(), |t| t.to_string()))
    })
}

pub async fn notifications(ledger: &Ledger, list: &ListArgs) -> anyhow::Result<()> {
    if let Some(s) = list.status() {
        if NotificationStatus::parse(s).is_err() {
            let (last, others) = NotificationStatus::ALL.split_last().expect("statuses");
            let others: Vec<&str> = others.iter().map(|s| s.as_str()).collect();
            anyhow::bail!("--status must be {} or {last}", others.join(", "));
        }
    }
    let rows: Vec<NotificationRow> = ledger.list(list.status(), list.limit()).await?;
    let headers = [
        "ID",
        "TYPE",
        "PAYMENT INTENT",
        "STATUS",
        "TRIES",
        "LAST ERROR",
    ];
    listing(&rows, list.json, &headers, |n| {
        vec![
            n.id.clone(),
            n.kind.to_string(),
            n.payment_intent_id.clone(),
            n.status.to_string(),
            n.attempts.to_string(),
            n.last_error.clone().unwrap_or_else(|| "-".into()),
        ]
    })
}

pub async fn retry_notifications(ledger: &Ledger, id: Option<&str>) -> anyhow::Result<()> {
    let retried = ledger.retry_notifications(id).await?;
    match (id, retried) {
        (Some(id), 0) => anyhow::bail!("no failed notification {id}"),
        _ => println!("{retried} notification(s) pending again; the service sends them next"),
    }
    Ok(())
}
