//! The settlement round (`SETTLEMENT_INTERVAL_SECS`, docs/contract.md §17), by one instance at
//! a time: a lease row decides which, held for as long as the round runs; where each account's
//! listing stands is kept in the ledger page by page, so that a round that dies is taken up
//! where it stopped.

use super::{lease, Context};

const LEASE: &str = "settlement";

pub async fn round(ctx: &Context, interval: std::time::Duration) -> anyhow::Result<()> {
    // Two intervals, renewed while the round runs: an instance that dies midway hands the round
    // on within two intervals.
    let lease_ms = 2 * interval.as_millis() as i64;
    let ledger = &ctx.payments.ledger;
    let settle = async { Ok(ctx.payments.settle(None).await?) };
    lease::held(ledger, LEASE, &ctx.instance, lease_ms, settle).await?;
    Ok(())
}
