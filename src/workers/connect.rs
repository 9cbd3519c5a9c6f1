//! The Connect worker (docs/contract.md §15, "Disputes"): the Stripe calls dispute events wrote
//! down are made here, by one instance at a time (a lease row), outside any transaction. Idle,
//! it only reads; a call that fails is tried again with backoff (1 s, doubling, at most an hour
//! apart) for 3 days, then given up on (`failed`, for operators to see).

use super::notifier::backoff;
use super::Context;

const LEASE: &str = "connect";
/// Held well beyond a round, renewed by each; another instance takes over once it lapses.
const LEASE_MS: i64 = 60_000;
const BATCH: i64 = 20;
const GIVE_UP_AFTER_SECS: i64 = 3 * 24 * 3600;

pub async fn round(ctx: &Context) -> anyhow::Result<()> {
    let ledger = &ctx.payments.ledger;
    if !ledger.connect_actions_due().await? {
        return Ok(());
    }
    if !ledger.try_lease(LEASE, &ctx.instance, LEASE_MS).await? {
        return Ok(());
    }
    for action in ledger.due_connect_actions(BATCH).await? {
        if let Err(e) = ctx.payments.carry_out(&action).await {
            let now = chrono::Utc::now();
            let give_up = now.timestamp() - action.created > GIVE_UP_AFTER_SECS;
            let next = now.timestamp_millis() + backoff(action.attempts).as_millis() as i64;
            tracing::warn!(action = %action.id, attempts = action.attempts + 1, give_up, error = %e, "Connect action failed; tried again later");
            ledger
                .retry_connect_action(&action.id, &e.to_string(), next, give_up)
                .await?;
        }
    }
    Ok(())
}
