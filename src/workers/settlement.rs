//! The settlement round (`SETTLEMENT_INTERVAL_SECS`, docs/contract.md §17), by one instance at
//! a time: a lease row decides which; where each account's listing stands is kept in the
//! ledger page by page, so that a round that dies is taken up where it stopped.

use super::Context;

const LEASE: &str = "settlement";

pub async fn round(ctx: &Context, interval: std::time::Duration) -> anyhow::Result<()> {
    // Held for two intervals: one round, with room to spare, and then some.
    let lease_ms = 2 * interval.as_millis() as i64;
    if !ctx
        .payments
        .ledger
        .try_lease(LEASE, &ctx.instance, lease_ms)
        .await?
    {
        return Ok(());
    }
    ctx.payments.settle(None).await?;
    Ok(())
}
