//! Group commit for webhook events: concurrent deliveries queue here and one task records them
//! in shared transactions, so that a burst costs one fsync per batch instead of one per event.
//! Each delivery is answered only after the commit that holds it.

use tokio::sync::{mpsc, oneshot};

use super::{IncomingEvent, Ledger, LedgerError, Outcome};

/// The most events one transaction takes.
const MAX_BATCH: usize = 256;

type Reply = oneshot::Sender<Result<Outcome, LedgerError>>;

#[derive(Clone)]
pub struct EventWriter {
    queue: mpsc::Sender<(IncomingEvent, Reply)>,
}

impl EventWriter {
    /// Starts the writer task (inside a Tokio runtime). It ends when every handle is dropped.
    pub fn start(ledger: Ledger) -> Self {
        let (queue, mut pending) = mpsc::channel::<(IncomingEvent, Reply)>(4 * MAX_BATCH);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            while pending.recv_many(&mut batch, MAX_BATCH).await > 0 {
                write(&ledger, std::mem::take(&mut batch)).await;
            }
        });
        EventWriter { queue }
    }

    /// Records and applies one event; returns once it is committed (or failed).
    pub async fn apply(&self, event: IncomingEvent) -> Result<Outcome, LedgerError> {
        let (reply, answer) = oneshot::channel();
        if self.queue.send((event, reply)).await.is_err() {
            return Err(LedgerError::Unavailable(
                "the event writer has stopped".into(),
            ));
        }
        answer.await.unwrap_or_else(|_| {
            Err(LedgerError::Unavailable(
                "the event writer has stopped".into(),
            ))
        })
    }
}

async fn write(ledger: &Ledger, mut batch: Vec<(IncomingEvent, Reply)>) {
    // One PaymentIntent's events keep their arrival order; different PaymentIntents are taken
    // in id order, so that concurrent batches on several instances lock rows in the same order.
    batch.sort_by(|a, b| a.0.payment_intent_id.cmp(&b.0.payment_intent_id));
    let events: Vec<IncomingEvent> = batch.iter().map(|(e, _)| e.clone()).collect();
    metrics::histogram!("tmt_webhook_commit_batch_size").record(events.len() as f64);
    match ledger.apply_events(&events).await {
        Ok(outcomes) => {
            for ((_, reply), outcome) in batch.into_iter().zip(outcomes) {
                let _ = reply.send(Ok(outcome));
            }
        }
        Err(shared) if batch.len() == 1 => {
            let (_, reply) = batch.pop().expect("one job");
            let _ = reply.send(Err(shared));
        }
        // The database itself is away: one try each would only wait out the pool timeout
        // again and again. Everyone gets the failure now (webhooks answer 500; Stripe retries).
        Err(LedgerError::Database(
            e @ (sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_)),
        )) => {
            let reason = e.to_string();
            for (_, reply) in batch {
                let _ = reply.send(Err(LedgerError::Unavailable(reason.clone())));
            }
        }
        // Something in the batch failed the shared transaction (a deadlock with another
        // instance, one bad row): nothing of it was kept, so each event gets its own try and
        // its own answer.
        Err(shared) => {
            tracing::warn!(error = %shared, events = batch.len(), "group commit failed; writing events one by one");
            for (event, reply) in batch {
                let _ = reply.send(ledger.apply_event(&event).await);
            }
        }
    }
}
