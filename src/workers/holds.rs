//! Seat-hold expiry, every few seconds, by one instance at a time (a lease row): expired holds
//! are dealt with (`Payments::expire_hold`), and late payments refunded where the policy says
//! so. Every step is idempotent, so that a round interrupted anywhere is finished by the next,
//! on this instance or another.

use super::Context;

const LEASE: &str = "holds";
/// Held well beyond a round, renewed by each; another instance takes over once it lapses.
const LEASE_MS: i64 = 30_000;
const BATCH: i64 = 50;

pub async fn round(ctx: &Context) -> anyhow::Result<()> {
    let ledger = &ctx.payments.ledger;
    if !ledger.try_lease(LEASE, &ctx.instance, LEASE_MS).await? {
        return Ok(());
    }
    let now_ms = chrono::Utc::now().timestamp_millis();
    for id in ledger.expired_holds(now_ms, BATCH).await? {
        if let Err(e) = ctx.payments.expire_hold(&id).await {
            tracing::warn!(payment_intent_id = %id, error = %e, "could not deal with an expired hold; next round");
        }
    }
    for id in ledger.late_refunds_due(BATCH).await? {
        if let Err(e) = ctx.payments.refund_late_payment(&id).await {
            tracing::warn!(payment_intent_id = %id, error = %e, "could not refund a late payment; next round");
        }
    }
    Ok(())
}
