//! Organisers paid through Stripe Connect, from the command line (`organizers list|show`), as
//! tables for people or as JSON (`--json`) for scripts.

use super::inspect::{field, json, listing};
use crate::ledger::Ledger;

pub async fn list(ledger: &Ledger, limit: i64, as_json: bool) -> anyhow::Result<()> {
    let rows = ledger.organizers(limit).await?;
    let headers = ["ID", "ACCOUNT", "CHARGES", "PAYOUTS", "CONNECTED", "DUE"];
    let yes = |b: bool| if b { "yes" } else { "no" }.to_string();
    listing(&rows, as_json, &headers, |o| {
        vec![
            o.id.clone(),
            o.account_id.clone().unwrap_or_else(|| "-".into()),
            yes(o.charges_enabled),
            yes(o.payouts_enabled),
            yes(o.connected),
            o.requirements_due.join(", "),
        ]
    })
}

pub async fn show(ledger: &Ledger, id: &str, as_json: bool) -> anyhow::Result<()> {
    let Some(row) = ledger.organizer(id).await? else {
        anyhow::bail!("no organiser {id} in the ledger");
    };
    if as_json {
        return json(&row);
    }
    field("id", &row.id);
    field("account", row.account_id.as_deref().unwrap_or("-"));
    field("country", &row.country);
    field("email", row.email.as_deref().unwrap_or("-"));
    field("charges_enabled", row.charges_enabled);
    field("payouts_enabled", row.payouts_enabled);
    field(
        "details",
        if row.details_submitted {
            "submitted"
        } else {
            "not submitted"
        },
    );
    field("requirements", row.requirements_due.join(", "));
    field(
        "disabled_reason",
        row.disabled_reason.as_deref().unwrap_or("-"),
    );
    field("connected", row.connected);
    field(
        "fee",
        row.fee
            .as_ref()
            .map_or("the platform's".to_string(), |f| f.to_string()),
    );
    field("created", row.created);
    field("updated_at", &row.updated_at);
    Ok(())
}
