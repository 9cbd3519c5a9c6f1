//! The periodic reconciliation round (`RECONCILE_INTERVAL_SECS`), by one instance at a time: a
//! lease row, held for as long as the round runs, whose state is the cursor the next round
//! lists from (less 10 minutes of overlap, for events Stripe lists late).

use super::{lease, Context};

const LEASE: &str = "reconcile";
/// Listed again by every round: events that appear in Stripe's log a little late.
pub const OVERLAP_SECS: i64 = 600;
/// Where the first round ever starts.
const FIRST_LOOKBACK_SECS: i64 = 72 * 3600;

pub async fn round(ctx: &Context, interval: std::time::Duration) -> anyhow::Result<()> {
    let ledger = &ctx.payments.ledger;
    // Two intervals, renewed while the round runs: an instance that dies midway hands the round
    // on within two intervals.
    let lease_ms = 2 * interval.as_millis() as i64;
    let reconcile = async {
        let started = chrono::Utc::now().timestamp();
        let cursor = ledger
            .lease_state(LEASE)
            .await?
            .and_then(|s| s.parse::<i64>().ok())
            .unwrap_or(started - FIRST_LOOKBACK_SECS);
        ctx.payments.reconcile(cursor - OVERLAP_SECS).await?;
        ledger
            .set_lease_state(LEASE, &ctx.instance, &started.to_string())
            .await?;
        Ok(())
    };
    lease::held(ledger, LEASE, &ctx.instance, lease_ms, reconcile).await?;
    Ok(())
}
