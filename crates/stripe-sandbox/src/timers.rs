//! What Stripe does some time after a request, by itself: a task that sleeps until the next
//! timer is due, then runs it under the sandbox's lock like a request (its changes and events
//! written before the lock is released). Timers live in the state file, so a restart resumes
//! them; one overdue at start fires at once.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::Notify;

use crate::store::now_ms;
use crate::Inner;

pub(crate) fn start(sandbox: Weak<Inner>, wake: Arc<Notify>) {
    tokio::spawn(async move {
        loop {
            let next = {
                let Some(inner) = sandbox.upgrade() else {
                    return;
                };
                let mut state = inner.state.lock().await;
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
                        outbox.extend(crate::money::fire(&inner, &mut state.store, &timer.action));
                    }
                }
                if let Err(e) = state.persist().await {
                    tracing::error!(error = %e, "the sandbox could not write what its timers did");
                    outbox.clear();
                }
                let next = state.store.timers().first().map(|(_, t)| t.due_ms);
                drop(state);
                if let Some(delivery) = &inner.delivery {
                    for event in outbox {
                        delivery.enqueue(event);
                    }
                }
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
