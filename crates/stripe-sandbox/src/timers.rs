//! What Stripe does some time after a request, by itself: a task that sleeps until the next
//! timer is due, then runs it under the sandbox's lock like a request (its changes and events
//! written before the lock is released). Timers live in the state file, so a restart resumes
//! them; one overdue at start fires at once.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::Notify;

use serde_json::Value;

use crate::ctx::{Ctx, Origin};
use crate::resources::ACTIONS;
use crate::shared::{Effects, Shared};
use crate::store::{now_ms, Store};

pub(crate) fn start(sandbox: Weak<Shared>, wake: Arc<Notify>) {
    tokio::spawn(async move {
        loop {
            let next = {
                let Some(shared) = sandbox.upgrade() else {
                    return;
                };
                let mut state = shared.state.lock().await;
                let now = now_ms();
                let due: Vec<String> = state
                    .store
                    .timers()
                    .into_iter()
                    .take_while(|(_, t)| t.due_ms <= now)
                    .map(|(id, _)| id)
                    .collect();
                let mut outbox = Vec::new();
                for id in due {
                    if let Some(timer) = state.store.remove_timer(&id) {
                        let done = fire(&shared, &mut state.store, &timer.action);
                        outbox.extend(done.outbox);
                    }
                }
                let next = state.store.timers().first().map(|(_, t)| t.due_ms);
                // A timer scheduled by an action is already in `next`: no need to be woken.
                let effects = Effects {
                    outbox,
                    scheduled: false,
                };
                // commit logs a failure; the events of what was not written are not sent.
                let _ = shared.commit(state, effects).await;
                next
            };
            match next {
                // Woken by a new timer, or at the latest a minute later to notice the sandbox
                // was dropped.
                None => {
                    let _ = tokio::time::timeout(Duration::from_secs(60), wake.notified()).await;
                }
                Some(due) => {
                    let wait = Duration::from_millis(u64::try_from(due - now_ms()).unwrap_or(0));
                    let _ = tokio::time::timeout(wait, wake.notified()).await;
                }
            }
        }
    });
}

/// Runs a timer's action (`{"do": name, …}`, one of [`ACTIONS`]); returns what it left to do.
/// An action whose object has moved on (a refund already failed, a dispute already closed)
/// does nothing.
fn fire(shared: &Shared, store: &mut Store, action: &Value) -> Effects {
    // An action about a connected account's objects runs on that account.
    let mut ctx = Ctx::new(store, shared, Origin::sandbox(action["account"].as_str()));
    let name = action["do"].as_str().unwrap_or_default();
    match ACTIONS
        .iter()
        .flat_map(|table| table.iter())
        .find(|a| a.name == name)
    {
        Some(found) => (found.run)(&mut ctx, action),
        None => tracing::warn!(action = name, "unknown sandbox timer skipped"),
    }
    ctx.finish()
}
