//! The ledger from the command line: payments, events, refunds, disputes and notifications, as
//! tables for people or as JSON (`--json`, amounts in minor units) for scripts.

use serde::Serialize;

use crate::ledger::Ledger;
use crate::money::Major;

/// Prints `rows` under `headers`, each column as wide as its widest cell (the last one as is).
fn table(headers: &[&str], rows: &[Vec<String>]) {
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

fn json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn money(minor: i64, currency: &str) -> String {
    format!("{} {currency}", Major::of(minor, currency))
}

pub async fn payments(
    ledger: &Ledger,
    status: Option<&str>,
    limit: i64,
    as_json: bool,
) -> anyhow::Result<()> {
    let rows = ledger.list_payments(status, limit.max(0)).await?;
    if as_json {
        return json(&rows);
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|p| {
            vec![
                p.id.clone(),
                p.status.to_string(),
                money(p.amount, &p.currency),
                p.created.to_string(),
                p.updated_at.clone(),
            ]
        })
        .collect();
    table(&["ID", "STATUS", "AMOUNT", "CREATED", "UPDATED"], &cells);
    Ok(())
}

pub async fn payment(ledger: &Ledger, id: &str, as_json: bool) -> anyhow::Result<()> {
    let Some(row) = ledger.payment(id).await? else {
        anyhow::bail!("no payment {id} in the ledger");
    };
    let events = ledger.events_for(id).await?;
    let refunds = ledger.refunds_for(id).await?;
    let disputes = ledger.disputes_for(id).await?;
    let notifications = ledger.notifications_for(id).await?;
    let refunded = ledger.amount_refunded(id).await?;
    let hold = ledger.hold_of(id).await?;
    if as_json {
        let mut object = serde_json::to_value(&row)?;
        object["amount_refunded"] = refunded.into();
        object["disputed"] = (!disputes.is_empty()).into();
        if let Some((expires, state, late)) = &hold {
            object["hold_expires_at"] = (*expires).into();
            object["hold_state"] = serde_json::to_value(state)?;
            object["late"] = (*late).into();
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
    let line = |label: &str, value: String| println!("{label:<16}{value}");
    line("id", row.id.clone());
    line("status", row.status.to_string());
    line(
        "amount",
        format!(
            "{} ({} minor units)",
            money(row.amount, &row.currency),
            row.amount
        ),
    );
    line("amount_refunded", money(refunded, &row.currency));
    line("description", row.description.clone().unwrap_or_default());
    line("metadata", row.metadata.to_string());
    line("created", row.created.to_string());
    line("updated_at", row.updated_at.clone());
    if let Some((expires, state, late)) = hold {
        line(
            "hold",
            format!(
                "until {expires} ({}){}",
                state.as_deref().unwrap_or("open"),
                if late { ", late" } else { "" }
            ),
        );
    }
    line("refunds", refunds.len().to_string());
    for r in &refunds {
        println!(
            "  {} {} {} {}",
            r.id,
            r.status,
            money(r.amount, &r.currency),
            r.failure_reason.as_deref().unwrap_or("")
        );
    }
    line("disputes", disputes.len().to_string());
    for d in &disputes {
        println!(
            "  {} {} {} {}",
            d.id,
            d.status,
            money(d.amount, &d.currency),
            d.reason.as_deref().unwrap_or("")
        );
    }
    line("events", events.len().to_string());
    for e in &events {
        println!(
            "  {} {} {} {} ({})",
            e.received_at, e.id, e.event_type, e.outcome, e.source
        );
    }
    if !notifications.is_empty() {
        line("notifications", notifications.len().to_string());
        for n in &notifications {
            println!("  {} {} {} ({} tries)", n.id, n.kind, n.status, n.attempts);
        }
    }
    Ok(())
}

pub async fn events(ledger: &Ledger, limit: i64, as_json: bool) -> anyhow::Result<()> {
    let events = ledger.list_events(limit.max(0)).await?;
    if as_json {
        return json(&events);
    }
    let cells: Vec<Vec<String>> = events
        .into_iter()
        .map(|e| {
            vec![
                e.id,
                e.event_type,
                e.payment_intent_id.unwrap_or_else(|| "-".into()),
                e.outcome,
                e.source,
                e.received_at,
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "TYPE",
            "PAYMENT INTENT",
            "OUTCOME",
            "SOURCE",
            "RECEIVED",
        ],
        &cells,
    );
    Ok(())
}

pub async fn refunds(
    ledger: &Ledger,
    status: Option<&str>,
    limit: i64,
    as_json: bool,
) -> anyhow::Result<()> {
    let rows = ledger.list_refunds(status, limit.max(0)).await?;
    if as_json {
        return json(&rows);
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.id.clone(),
                r.payment_intent_id.clone(),
                r.status.to_string(),
                money(r.amount, &r.currency),
                r.reason.clone().unwrap_or_else(|| "-".into()),
                r.created.to_string(),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "PAYMENT INTENT",
            "STATUS",
            "AMOUNT",
            "REASON",
            "CREATED",
        ],
        &cells,
    );
    Ok(())
}

pub async fn disputes(
    ledger: &Ledger,
    status: Option<&str>,
    limit: i64,
    as_json: bool,
) -> anyhow::Result<()> {
    let rows = ledger.list_disputes(status, limit.max(0)).await?;
    if as_json {
        return json(&rows);
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|d| {
            vec![
                d.id.clone(),
                d.payment_intent_id.clone(),
                d.status.to_string(),
                money(d.amount, &d.currency),
                d.reason.clone().unwrap_or_else(|| "-".into()),
                d.evidence_due_by
                    .map(|t| t.to_string())
                    .unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "PAYMENT INTENT",
            "STATUS",
            "AMOUNT",
            "REASON",
            "EVIDENCE DUE",
        ],
        &cells,
    );
    Ok(())
}

pub async fn notifications(
    ledger: &Ledger,
    status: Option<&str>,
    limit: i64,
    as_json: bool,
) -> anyhow::Result<()> {
    if let Some(s) = status {
        if !matches!(s, "pending" | "delivered" | "failed") {
            anyhow::bail!("--status must be pending, delivered or failed");
        }
    }
    let rows = ledger.list_notifications(status, limit.max(0)).await?;
    if as_json {
        return json(&rows);
    }
    let cells: Vec<Vec<String>> = rows
        .into_iter()
        .map(|n| {
            vec![
                n.id,
                n.kind,
                n.payment_intent_id,
                n.status,
                n.attempts.to_string(),
                n.last_error.unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "TYPE",
            "PAYMENT INTENT",
            "STATUS",
            "TRIES",
            "LAST ERROR",
        ],
        &cells,
    );
    Ok(())
}

pub async fn retry_notifications(ledger: &Ledger, id: Option<&str>) -> anyhow::Result<()> {
    let retried = ledger.retry_notifications(id).await?;
    match (id, retried) {
        (Some(id), 0) => anyhow::bail!("no failed notification {id}"),
        _ => println!("{retried} notification(s) pending again; the service sends them next"),
    }
    Ok(())
}
