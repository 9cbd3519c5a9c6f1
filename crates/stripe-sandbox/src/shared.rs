//! What the requests, timers and webhook deliveries of one sandbox share: the state behind its
//! one lock, the switches the control endpoints turn, and where what a request produced goes
//! once its changes are written (events to the delivery queue, a nudge to the timer task).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Mutex, MutexGuard, Notify};

use crate::faults::Faults;
use crate::store::State;

/// The queue of event ids the webhook delivery task sends, oldest first.
pub(crate) type Deliveries = mpsc::UnboundedSender<String>;

pub(crate) struct Shared {
    pub state: Mutex<State>,
    /// `None` when there is no webhook target: events are then only listable.
    deliveries: Option<Deliveries>,
    pub webhook_url: Option<String>,
    /// While set, events are created but never delivered (lost webhooks, for tests).
    drop_webhooks: AtomicBool,
    /// The wait before delayed transitions, in milliseconds.
    delay_ms: AtomicU64,
    /// Wakes the timer task when a timer is added or hurried.
    pub timer_wake: Arc<Notify>,
    /// Failures switched on for tests; kept in memory only.
    pub faults: std::sync::Mutex<Faults>,
}

/// What a request (or a timer's action) leaves to do once its changes are written.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    /// Events to deliver.
    pub outbox: Vec<String>,
    /// Whether a timer was scheduled or hurried.
    pub scheduled: bool,
}

impl Shared {
    pub fn new(
        state: State,
        deliveries: Option<Deliveries>,
        webhook_url: Option<String>,
        delay: Duration,
    ) -> Shared {
        Shared {
            state: Mutex::new(state),
            deliveries,
            webhook_url,
            drop_webhooks: AtomicBool::new(false),
            delay_ms: AtomicU64::new(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX)),
            timer_wake: Arc::new(Notify::new()),
            faults: std::sync::Mutex::new(Faults::default()),
        }
    }

    /// Whether events are sent anywhere (a webhook target was given).
    pub fn delivers(&self) -> bool {
        self.deliveries.is_some()
    }

    pub fn dropping(&self) -> bool {
        self.drop_webhooks.load(Ordering::SeqCst)
    }

    pub fn set_dropping(&self, drop: bool) {
        self.drop_webhooks.store(drop, Ordering::SeqCst);
    }

    pub fn delay_ms(&self) -> i64 {
        i64::try_from(self.delay_ms.load(Ordering::SeqCst)).unwrap_or(i64::MAX)
    }

    pub fn set_delay_ms(&self, ms: u64) {
        self.delay_ms.store(ms, Ordering::SeqCst);
    }

    /// Queues events for delivery, in order.
    pub fn enqueue(&self, events: impl IntoIterator<Item = String>) {
        if let Some(queue) = &self.deliveries {
            for event in events {
                // The delivery task ends only with the sandbox; nothing is lost by ignoring this.
                let _ = queue.send(event);
            }
        }
    }

    /// Writes what changed under `state` and releases the lock; then wakes the timer task and
    /// queues the events, so that nothing is delivered or done that is not on disk. When the
    /// write fails nothing is delivered, and the error is returned for the caller to answer.
    pub async fn commit(
        &self,
        mut state: MutexGuard<'_, State>,
        effects: Effects,
    ) -> Result<(), sqlx::Error> {
        let written = state.persist().await;
        drop(state);
        if effects.scheduled {
            self.timer_wake.notify_one();
        }
        match written {
            Ok(()) => {
                self.enqueue(effects.outbox);
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "the sandbox could not write its state");
                Err(e)
            }
        }
    }
}
