//! The ledger: every PaymentIntent and every webhook event, in SQLite or PostgreSQL (sqlx's Any
//! driver, one SQL dialect, migrations per backend).
//!
//! Rules (docs/contract.md, "The ledger"): `succeeded` and `canceled` are final; otherwise the
//! newest information wins, and a read from the Stripe API is newer than any event already
//! received. An event is recorded and applied in one transaction. No Stripe call ever happens
//! while a transaction is open: the callers hand in what Stripe said, already fetched.
//!
//! The modules, from the top down; each uses only those below it (and this one):
//!
//! - [`events`]: the webhook events, recorded and applied once each, each applied by the
//!   module of its object;
//! - [`organizers`]: organisers paid through Stripe Connect, moved by their accounts' events;
//! - [`payments`]: payment rows, brought up to date by reads and by events;
//! - [`refunds`]: refunds, disputes and the Charge objects, and refund reservations;
//! - [`connect`]: what a payment made for an organiser (Stripe Connect) keeps besides;
//! - [`payouts`]: payouts, moved by their events and itemised by the settlement round;
//! - [`settlement`]: Stripe's balance transactions, and where each account's listing stands;
//! - [`holds`]: seat holds, and what a payment's change means for its hold;
//! - [`notifications`]: the fulfilment outbox, written in the transaction of the change it
//!   announces, and its delivery leases;
//! - [`sql`]: the SQL those kinds of change share (what a payment charged, what it refunded),
//!   and where a piece of information came from;
//! - [`stored`]: every state, kind and outcome the ledger writes, read back exactly (unknown
//!   text is [`LedgerError::Corrupt`]);
//! - [`rows`]: single statements on the pool, their rows read back by column name, and the
//!   lists of each kind of row.
//!
//! Beside them: [`actions`] (the Stripe calls dispute events call for, made by the Connect
//! worker), [`idempotency`] (the callers' Idempotency-Keys), [`jobs`] (bulk refund jobs),
//! [`dashboard`] (the pages' reads), [`statement`] (the statements' read), [`leases`] (which instance does a periodic job) and
//! [`writer`] (group commit of concurrent webhook events).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};

mod actions;
mod connect;
mod customers;
mod dashboard;
mod delayed;
mod events;
mod holds;
mod idempotency;
mod jobs;
mod leases;
mod notifications;
mod organizers;
mod payments;
mod payouts;
mod refunds;
mod rows;
mod settlement;
mod sql;
mod statement;
mod stored;
#[cfg(test)]
pub(crate) mod testing;
mod writer;

pub use actions::{action_id, ActionRow};
pub use connect::{ConnectNote, ConnectPayment, ReversalRow, DISPUTE_KEY};
pub use customers::{AwaitingRow, CustomerRow};
pub use dashboard::{CurrencyTotal, DayCount, PaymentDetail, PaymentFilter};
pub use delayed::{next_action_of, NextActionData, HOLD_CAP_KEY, PAY_BY_KEY};
pub use events::{Effect, EventRow, IncomingEvent};
pub use holds::{Hold, HoldCheck, HOLD_KEY};
pub use idempotency::{Claim, IdempotencyKey, OwnedKey, Scope, IDEMPOTENCY_TTL};
pub use jobs::{Job, JobItem};
pub use notifications::{Delivery, Leased, NotificationRow};
pub use organizers::{OrganizerRow, OrganizerTotal};
pub use payments::PaymentRow;
pub use payouts::{itemise, Flag, Itemised, PayoutRow};
pub use refunds::{
    DisputeColumns, DisputeRow, MovementRow, RefundColumns, RefundRow, Refusal, Reservation,
    Standing, RESERVATION_KEY,
};
pub use settlement::{BalanceRow, Cursor, PayoutNet, Progress, UnderWay, PLATFORM};
pub use statement::{Figures, StatementRow};
pub use stored::{
    ActionKind, ActionState, ChargeType, EventSource, HoldState, ItemState, Kind, LatePolicy,
    NotificationStatus, Outbox, Outcome, Unknown,
};
pub use writer::EventWriter;

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("database URL not usable: {0}")]
    Url(String),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Writes fail (disk full, I/O error, read-only database): the ledger can be read, and it
    /// is reachable, but nothing can be made durable until the cause goes away.
    #[error("ledger not writable: {0}")]
    NotWritable(String),
    /// A stored row that cannot be read back as what was written.
    #[error("ledger row unreadable: {0}")]
    Corrupt(String),
}

/// A failed statement; a column whose text the ledger never writes ([`stored::Unknown`]) makes
/// the row corrupt rather than the database faulty.
impl From<sqlx::Error> for LedgerError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::ColumnDecode { index, source } if source.is::<stored::Unknown>() => {
                LedgerError::Corrupt(format!("column {index}: {source}"))
            }
            e => LedgerError::Database(e),
        }
    }
}

impl LedgerError {
    /// Whether the error says something about the database's ability to write (as opposed to a
    /// bad query or an unreadable row): those are what readiness reports.
    fn is_storage_fault(&self) -> bool {
        !self.is_transient_conflict()
            && matches!(
                self,
                LedgerError::Database(
                    sqlx::Error::Database(_)
                        | sqlx::Error::Io(_)
                        | sqlx::Error::PoolTimedOut
                        | sqlx::Error::PoolClosed
                        | sqlx::Error::Protocol(_)
                        | sqlx::Error::WorkerCrashed
                ) | LedgerError::NotWritable(_)
                    | LedgerError::Unavailable(_)
            )
    }

    /// A conflict with another transaction that the database settled by aborting this one
    /// (PostgreSQL's `deadlock_detected` or `serialization_failure`): nothing of it was kept,
    /// and the same transaction tried again can succeed. It says nothing about the storage.
    pub fn is_transient_conflict(&self) -> bool {
        match self {
            LedgerError::Database(sqlx::Error::Database(e)) => {
                matches!(e.code().as_deref(), Some("40P01" | "40001"))
            }
            _ => false,
        }
    }
}

/// Which database the ledger lives in. The SQL is shared (`$n` parameters, `ON CONFLICT`,
/// `CASE`), the migrations are kept per backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of(url: &str) -> Option<Backend> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }
}

/// Pool settings.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    pub max_connections: u32,
    /// How long a request waits for a connection before it fails (503) instead of hanging.
    pub acquire_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Clone)]
pub struct Ledger {
    pool: AnyPool,
    backend: Backend,
    outbox: Outbox,
    health: Arc<WriteHealth>,
    settled: Arc<payments::Settled>,
}

/// What the ledger's own writes and probes have found about its ability to write.
#[derive(Default)]
struct WriteHealth {
    /// Set by a write that failed for a storage reason, cleared by one that succeeded.
    failing: AtomicBool,
    /// The last probe's time and result, so that a burst of readiness checks costs one write.
    last_probe: tokio::sync::Mutex<Option<(Instant, Result<(), String>)>>,
}

/// How long a probe's answer stands for the next readiness checks.
const PROBE_REUSE: Duration = Duration::from_secs(1);

/// What a probe writes: as much as a typical webhook event, so that it needs new pages (and
/// room in the write-ahead log) just as real writes do.
const PROBE_BYTES: usize = 16 * 1024;

pub const DEFAULT_DATABASE_URL: &str = "sqlite://tmt-payments.db";

/// Now, as ISO 8601 UTC with milliseconds (`2026-01-31T12:00:00.000Z`).
pub fn now_iso() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// `ms` (Unix milliseconds) as [`now_iso`] writes times; `None` out of chrono's range.
pub fn iso_ms(ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// The migrations of a backend: one definition, for migrating and for checking.
fn migrator(backend: Backend) -> &'static sqlx::migrate::Migrator {
    static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
    static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");
    match backend {
        Backend::Sqlite => &SQLITE,
        Backend::Postgres => &POSTGRES,
    }
}

/// A column read by name; a missing or mistyped one is an error, never a panic.
fn column<'r, T>(row: &'r AnyRow, name: &str) -> Result<T, sqlx::Error>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get(name)
}

impl Ledger {
    /// Opens the database (a SQLite file is created if missing). Every commit is durable before
    /// it returns: SQLite runs with `synchronous=FULL` in WAL mode, PostgreSQL with
    /// `synchronous_commit=on`. A webhook answered 200 must survive a power cut.
    pub async fn connect(url: &str, settings: PoolSettings) -> Result<Self, LedgerError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of(url)
            .ok_or_else(|| LedgerError::Url("expected sqlite:// or postgres://".into()))?;
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
            }
            _ => url.to_string(),
        };
        let pool = AnyPoolOptions::new()
            .max_connections(settings.max_connections.max(1))
            .acquire_timeout(settings.acquire_timeout)
            // A connection must come back to the pool outside any transaction. When a COMMIT
            // fails because the disk is full, SQLite rolls the transaction back by itself; the
            // driver's ROLLBACK then fails, its transaction counter stays at 1, and from then on
            // it "begins" with SAVEPOINTs inside a transaction that never ends: every later write
            // on that connection would be answered as committed and never reach the disk. Such
            // a connection (or one whose rollback could not be sent) is closed, which rolls back
            // whatever it still holds, instead of being used again.
            .after_release(|conn, _| {
                Box::pin(async move {
                    use sqlx::Connection;
                    if conn.is_in_transaction() {
                        // A dropped transaction's ROLLBACK may still be queued: let it run.
                        conn.ping().await?;
                    }
                    if conn.is_in_transaction() {
                        tracing::warn!(
                            "closing a database connection left inside a failed transaction"
                        );
                        return Ok(false);
                    }
                    Ok(true)
                })
            })
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    let setup = match backend {
                        Backend::Sqlite => {
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                             PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;"
                        }
                        Backend::Postgres => "SET synchronous_commit = on",
                    };
                    conn.execute(setup).await?;
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        Ok(Self {
            pool,
            backend,
            outbox: Outbox::default(),
            health: Arc::new(WriteHealth::default()),
            settled: Arc::new(payments::Settled::default()),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The same ledger, writing fulfilment notifications as `outbox` says.
    pub fn with_outbox(mut self, outbox: Outbox) -> Self {
        self.outbox = outbox;
        self
    }

    /// The pool itself, for tests that inject faults into its connections.
    #[doc(hidden)]
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub async fn migrate(&self) -> Result<(), LedgerError> {
        migrator(self.backend).run(&self.pool).await?;
        Ok(())
    }

    /// Which of this program's migrations the database at `url` lacks, without changing it:
    /// `None` when it holds no ledger at all.
    pub async fn missing_migrations(url: &str) -> Result<Option<Vec<i64>>, LedgerError> {
        use sqlx::Connection;
        let backend = Backend::of(url)
            .ok_or_else(|| LedgerError::Url("expected sqlite:// or postgres://".into()))?;
        let has_table = match backend {
            Backend::Sqlite => {
                "SELECT COUNT(*) FROM sqlite_master \
                 WHERE type = 'table' AND name = '_sqlx_migrations'"
            }
            Backend::Postgres => {
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'"
            }
        };
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(url).await?;
        let tables: i64 = sqlx::query_scalar(has_table).fetch_one(&mut conn).await?;
        let applied: Vec<i64> = match tables {
            0 => Vec::new(),
            _ => {
                sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
                    .fetch_all(&mut conn)
                    .await?
            }
        };
        conn.close().await?;
        if applied.is_empty() {
            return Ok(None);
        }
        Ok(Some(
            migrator(backend)
                .iter()
                .filter(|m| !m.migration_type.is_down_migration())
                .map(|m| m.version)
                .filter(|v| !applied.contains(v))
                .collect(),
        ))
    }

    /// Whether the database answers now.
    pub async fn ping(&self) -> Result<(), LedgerError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Notes what a write found out about the database's ability to write.
    fn watch<T>(&self, result: Result<T, LedgerError>) -> Result<T, LedgerError> {
        match &result {
            Ok(_) => self.health.failing.store(false, Ordering::Relaxed),
            Err(e) if e.is_storage_fault() => {
                if !self.health.failing.swap(true, Ordering::Relaxed) {
                    tracing::error!(error = %e, "ledger writes are failing");
                }
            }
            Err(_) => {}
        }
        result
    }

    /// Whether the ledger can make a write durable now: writes a scratch row as big as a typical
    /// event and deletes it again, in one committed transaction. The answer is reused for a
    /// second, so that readiness checks in a burst cost one write.
    pub async fn probe_write(&self) -> Result<(), LedgerError> {
        let mut last = self.health.last_probe.lock().await;
        if let Some((at, result)) = last.as_ref() {
            if at.elapsed() < PROBE_REUSE {
                return result.clone().map_err(LedgerError::NotWritable);
            }
        }
        let result = self.watch(self.write_probe_row().await);
        if let Err(e) = &result {
            tracing::warn!(error = %e, "ledger write probe failed");
        }
        let result = result.map_err(|e| e.to_string());
        *last = Some((Instant::now(), result.clone()));
        result.map_err(LedgerError::NotWritable)
    }

    async fn write_probe_row(&self) -> Result<(), LedgerError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO write_probe (id, filler) VALUES (1, $1)
             ON CONFLICT (id) DO UPDATE SET filler = excluded.filler",
        )
        .bind("x".repeat(PROBE_BYTES))
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM write_probe WHERE id = 1")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Before a call whose result must be recorded (a create at Stripe): the ledger can make a
    /// write durable, as a write probe found at most a second ago. A create that Stripe carries
    /// out but the ledger cannot record would leave a PaymentIntent only reconciliation can
    /// find. The probe's answer is shared by every create of that second, so a sale-day rush
    /// costs one extra write a second, not one per buyer.
    /// An unreachable database is told apart first (503 `database_unavailable`, not
    /// `ledger_not_writable`).
    pub async fn ensure_writable(&self) -> Result<(), LedgerError> {
        self.ping().await?;
        self.probe_write().await
    }

    /// The durability settings a pooled connection runs with, as the database reports them:
    /// SQLite `synchronous` and `journal_mode`, PostgreSQL `synchronous_commit` and `fsync`.
    pub async fn durability(&self) -> Result<(String, String), LedgerError> {
        let mut conn = self.pool.acquire().await?;
        let (a, b) = match self.backend {
            Backend::Sqlite => ("PRAGMA synchronous", "PRAGMA journal_mode"),
            Backend::Postgres => ("SHOW synchronous_commit", "SHOW fsync"),
        };
        let first = sqlx::query(a).fetch_one(&mut *conn).await?;
        let second = sqlx::query(b).fetch_one(&mut *conn).await?;
        let text = |row: &AnyRow| {
            row.try_get::<String, _>(0)
                .or_else(|_| row.try_get::<i64, _>(0).map(|n| n.to_string()))
                .unwrap_or_default()
        };
        Ok((text(&first), text(&second)))
    }
}
