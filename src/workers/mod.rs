//! Background work of an instance: fulfilment notifications, seat-hold expiry, reconciliation,
//! the settlement round and the Stripe calls Connect's dispute events call for. One pattern for all: a lease row (or, for notifications, a lease per
//! row) decides which instance works, every step is idempotent so that a dead instance's work
//! is simply picked up again, and no Stripe call is made while a transaction is open.

pub mod connect;
pub mod holds;
mod lease;
pub mod notifier;
pub mod reconcile;
pub mod settlement;

use std::sync::Arc;
use std::time::Duration;

use crate::payments::Payments;

/// This instance's name in leases: random, so that two instances never share one.
pub fn instance_id() -> String {
    format!("inst_{:016x}", rand::random::<u64>())
}

/// How often an idle worker looks for work again.
pub const HOLD_CHECK: Duration = Duration::from_secs(5);

/// How often the Connect worker looks for Stripe calls that events wrote down (a read).
pub const CONNECT_CHECK: Duration = Duration::from_secs(1);

/// Runs `round` every `every` until the task is aborted; a failed round is logged and retried
/// at the next tick.
pub(crate) async fn every<F, Fut>(name: &'static str, every: Duration, mut round: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = round().await {
            tracing::warn!(worker = name, error = %format!("{e:#}"), "background round failed");
        }
    }
}

/// What the workers share.
#[derive(Clone)]
pub struct Context {
    pub payments: Arc<Payments>,
    pub instance: String,
}
