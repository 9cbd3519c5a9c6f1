//! The sandbox's state: every object it has issued, the responses saved for idempotency keys
//! and the webhook deliveries still owed, in memory for reading and written through to a
//! SQLite file so that a restart loses nothing.
//!
//! Changes are journalled while a request runs under the sandbox's lock and written in one
//! transaction before the lock is released, so what a client was told survives the process being
//! killed (`synchronous=NORMAL`: not necessarily a power cut).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde_json::Value;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{Connection, Row, SqliteConnection};

/// Where the state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// Gone when the process ends.
    Memory,
    /// A SQLite file, created when missing.
    File(PathBuf),
}

impl Storage {
    /// `:memory:` (or an empty string) for a throwaway sandbox, else a file path.
    pub fn parse(text: &str) -> Storage {
        match text.trim() {
            "" | ":memory:" => Storage::Memory,
            path => Storage::File(PathBuf::from(path)),
        }
    }
}

impl std::fmt::Display for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Storage::Memory => f.write_str(":memory:"),
            Storage::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// The kinds of object the sandbox keeps; a new Stripe resource adds its kind here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    PaymentIntent,
    Charge,
    PaymentMethod,
    Event,
    Refund,
    Dispute,
    Customer,
    CashBalanceTransaction,
    Account,
    /// An Account Link, kept with what its onboarding page needs (Stripe cannot retrieve one).
    AccountLink,
    Transfer,
    TransferReversal,
    ApplicationFee,
    FeeRefund,
    BalanceTransaction,
    Payout,
    /// What the sandbox keeps of its own (its clock, the platform's country), which Stripe
    /// does not show as objects.
    Setting,
}

impl Kind {
    const ALL: [Kind; 17] = [
        Kind::PaymentIntent,
        Kind::Charge,
        Kind::PaymentMethod,
        Kind::Event,
        Kind::Refund,
        Kind::Dispute,
        Kind::Customer,
        Kind::CashBalanceTransaction,
        Kind::Account,
        Kind::AccountLink,
        Kind::Transfer,
        Kind::TransferReversal,
        Kind::ApplicationFee,
        Kind::FeeRefund,
        Kind::BalanceTransaction,
        Kind::Payout,
        Kind::Setting,
    ];

    /// The `object` value of Stripe's objects of this kind.
    pub fn name(self) -> &'static str {
        match self {
            Kind::PaymentIntent => "payment_intent",
            Kind::Charge => "charge",
            Kind::PaymentMethod => "payment_method",
            Kind::Event => "event",
            Kind::Refund => "refund",
            Kind::Dispute => "dispute",
            Kind::Customer => "customer",
            Kind::CashBalanceTransaction => "customer_cash_balance_transaction",
            Kind::Account => "account",
            Kind::AccountLink => "account_link",
            Kind::Transfer => "transfer",
            Kind::TransferReversal => "transfer_reversal",
            Kind::ApplicationFee => "application_fee",
            Kind::FeeRefund => "fee_refund",
            Kind::BalanceTransaction => "balance_transaction",
            Kind::Payout => "payout",
            Kind::Setting => "sandbox_setting",
        }
    }

    /// The path of Stripe's list of this kind.
    pub fn list_url(self) -> String {
        format!("/v1/{}s", self.name())
    }

    fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

pub struct Record {
    pub kind: Kind,
    /// Issue order across all objects: breaks ties between objects created in the same second.
    pub seq: i64,
    pub created: i64,
    pub value: Value,
    /// What the sandbox keeps about the object that Stripe does not show: for PaymentMethods,
    /// the test alias (`pm_card_visa`) that says how the card behaves; for balance
    /// transactions, the automatic payout that paid them out.
    pub alias: Option<String>,
    /// The connected account the object lives on (`Stripe-Account`); `None` for the platform's
    /// own. An account the platform no longer controls (deauthorised, deleted) lives on itself.
    pub account: Option<String>,
}

pub struct SavedResponse {
    pub fingerprint: String,
    pub status: u16,
    pub body: Value,
    pub request_id: String,
    pub created: i64,
}

/// Stripe forgets idempotency keys after 24 hours.
pub const IDEMPOTENCY_TTL_SECS: i64 = 24 * 60 * 60;

enum Change {
    Object(String),
    Idempotency(String, String),
    DeliveryAdded(String),
    DeliveryDone(String),
    TimerAdded(String),
    TimerDone(String),
}

/// Something the sandbox does later by itself (a refund failing, a dispute opening, a payment
/// finishing processing): what to do, and when, in milliseconds since the epoch.
#[derive(Debug, Clone)]
pub struct Timer {
    pub due_ms: i64,
    pub action: Value,
}

#[derive(Default)]
pub struct Store {
    next_seq: i64,
    records: HashMap<String, Record>,
    order: HashMap<Kind, Vec<String>>,
    idempotency: HashMap<(String, String), SavedResponse>,
    /// Events still to be delivered, in the order they were created.
    deliveries: BTreeMap<i64, String>,
    timers: HashMap<String, Timer>,
    journal: Vec<Change>,
}

impl Store {
    /// The object of `kind` with this id, on whichever account it lives.
    pub fn get(&self, kind: Kind, id: &str) -> Option<&Record> {
        self.records.get(id).filter(|r| r.kind == kind)
    }

    /// The object of `kind` with this id if it lives on `account` (`None`: the platform).
    pub fn get_on(&self, account: Option<&str>, kind: Kind, id: &str) -> Option<&Record> {
        self.get(kind, id)
            .filter(|r| r.account.as_deref() == account)
    }

    pub fn value(&self, kind: Kind, id: &str) -> Option<&Value> {
        self.get(kind, id).map(|r| &r.value)
    }

    /// Every object of `kind`, oldest first.
    pub fn all(&self, kind: Kind) -> impl Iterator<Item = &Record> {
        self.order
            .get(&kind)
            .into_iter()
            .flatten()
            .filter_map(|id| self.records.get(id))
    }

    /// Inserts the object with `value["id"]` on `account`, or replaces it where it lives.
    pub fn put(&mut self, kind: Kind, value: Value, alias: Option<String>, account: Option<&str>) {
        let id = value["id"].as_str().unwrap_or_default().to_string();
        let created = value["created"].as_i64().unwrap_or(0);
        match self.records.get_mut(&id) {
            Some(existing) => {
                existing.value = value;
                if alias.is_some() {
                    existing.alias = alias;
                }
            }
            None => {
                self.next_seq += 1;
                self.order.entry(kind).or_default().push(id.clone());
                self.records.insert(
                    id.clone(),
                    Record {
                        kind,
                        seq: self.next_seq,
                        created,
                        value,
                        alias,
                        account: account.map(str::to_string),
                    },
                );
            }
        }
        self.journal.push(Change::Object(id));
    }

    /// Moves the object with this id to `account` (`None`: the platform).
    pub fn move_to(&mut self, id: &str, account: Option<&str>) {
        if let Some(record) = self.records.get_mut(id) {
            record.account = account.map(str::to_string);
            self.journal.push(Change::Object(id.to_string()));
        }
    }

    pub fn saved_response(&self, api_key: &str, key: &str) -> Option<&SavedResponse> {
        self.idempotency
            .get(&(api_key.to_string(), key.to_string()))
            .filter(|s| s.created > now() - IDEMPOTENCY_TTL_SECS)
    }

    pub fn save_response(&mut self, api_key: String, key: String, saved: SavedResponse) {
        self.journal
            .push(Change::Idempotency(api_key.clone(), key.clone()));
        self.idempotency.insert((api_key, key), saved);
    }

    pub fn add_delivery(&mut self, event_id: &str) {
        if let Some(seq) = self.records.get(event_id).map(|r| r.seq) {
            self.deliveries.insert(seq, event_id.to_string());
            self.journal
                .push(Change::DeliveryAdded(event_id.to_string()));
        }
    }

    pub fn remove_delivery(&mut self, event_id: &str) {
        if let Some(seq) = self.records.get(event_id).map(|r| r.seq) {
            if self.deliveries.remove(&seq).is_some() {
                self.journal
                    .push(Change::DeliveryDone(event_id.to_string()));
            }
        }
    }

    /// Event ids still to be delivered, oldest first.
    pub fn pending_deliveries(&self) -> Vec<String> {
        self.deliveries.values().cloned().collect()
    }

    pub fn set_pending_webhooks(&mut self, event_id: &str, pending: i64) {
        if let Some(record) = self.records.get_mut(event_id) {
            record.value["pending_webhooks"] = Value::from(pending);
            self.journal.push(Change::Object(event_id.to_string()));
        }
    }
}

impl Store {
    /// Schedules `action` at `due_ms`; returns the timer's id.
    pub fn add_timer(&mut self, due_ms: i64, action: Value) -> String {
        let id = format!("tmr_{}", crate::objects::random_alnum(16));
        self.timers.insert(id.clone(), Timer { due_ms, action });
        self.journal.push(Change::TimerAdded(id.clone()));
        id
    }

    pub fn remove_timer(&mut self, id: &str) -> Option<Timer> {
        let timer = self.timers.remove(id)?;
        self.journal.push(Change::TimerDone(id.to_string()));
        Some(timer)
    }

    /// Every pending timer, soonest first.
    pub fn timers(&self) -> Vec<(String, Timer)> {
        let mut all: Vec<(String, Timer)> = self
            .timers
            .iter()
            .map(|(id, t)| (id.clone(), t.clone()))
            .collect();
        all.sort_by(|a, b| (a.1.due_ms, &a.0).cmp(&(b.1.due_ms, &b.0)));
        all
    }

    /// Makes every pending timer due at `due_ms` at the latest.
    pub fn hurry_timers(&mut self, due_ms: i64) {
        for (id, timer) in self.timers.iter_mut() {
            if timer.due_ms > due_ms {
                timer.due_ms = due_ms;
                self.journal.push(Change::TimerAdded(id.clone()));
            }
        }
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The SQLite file behind a [`Store`].
pub struct Db {
    conn: SqliteConnection,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS objects (
    id      TEXT PRIMARY KEY,
    kind    TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    created INTEGER NOT NULL,
    alias   TEXT,
    body    TEXT NOT NULL,
    account TEXT
);
CREATE TABLE IF NOT EXISTS idempotency (
    api_key     TEXT NOT NULL,
    key         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status      INTEGER NOT NULL,
    body        TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    created     INTEGER NOT NULL,
    PRIMARY KEY (api_key, key)
);
CREATE TABLE IF NOT EXISTS deliveries (
    event_id TEXT PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS timers (
    id     TEXT PRIMARY KEY,
    due_ms INTEGER NOT NULL,
    action TEXT NOT NULL
);
";

impl Db {
    /// Opens (or creates) the file and reads everything back into a store.
    pub async fn open(path: &Path) -> Result<(Db, Store), sqlx::Error> {
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .create_if_missing(true)
            // WAL with NORMAL sync: a crash may lose the last moments, never corrupt the file,
            // which is all an emulator needs.
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(std::time::Duration::from_secs(10));
        let mut conn = SqliteConnection::connect_with(&options).await?;
        sqlx::raw_sql(SCHEMA).execute(&mut conn).await?;
        // Files written before objects were scoped to accounts lack the column: theirs are all
        // the platform's.
        let scoped: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pragma_table_info('objects') WHERE name = 'account'",
        )
        .fetch_one(&mut conn)
        .await?;
        if scoped == 0 {
            sqlx::query("ALTER TABLE objects ADD COLUMN account TEXT")
                .execute(&mut conn)
                .await?;
        }
        sqlx::query("DELETE FROM idempotency WHERE created <= ?")
            .bind(now() - IDEMPOTENCY_TTL_SECS)
            .execute(&mut conn)
            .await?;
        let mut store = Store::default();
        let rows = sqlx::query(
            "SELECT id, kind, seq, created, alias, body, account FROM objects ORDER BY seq",
        )
        .fetch_all(&mut conn)
        .await?;
        for row in rows {
            let id: String = row.try_get("id")?;
            let kind_name: String = row.try_get("kind")?;
            let Some(kind) = Kind::parse(&kind_name) else {
                tracing::warn!(
                    id,
                    kind = kind_name,
                    "unknown kind of stored object skipped"
                );
                continue;
            };
            let body: String = row.try_get("body")?;
            let value: Value =
                serde_json::from_str(&body).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
            let seq: i64 = row.try_get("seq")?;
            store.next_seq = store.next_seq.max(seq);
            store.order.entry(kind).or_default().push(id.clone());
            store.records.insert(
                id,
                Record {
                    kind,
                    seq,
                    created: row.try_get("created")?,
                    value,
                    alias: row.try_get("alias")?,
                    account: row.try_get("account")?,
                },
            );
        }
        let rows = sqlx::query(
            "SELECT api_key, key, fingerprint, status, body, request_id, created FROM idempotency",
        )
        .fetch_all(&mut conn)
        .await?;
        for row in rows {
            let body: String = row.try_get("body")?;
            let status: i64 = row.try_get("status")?;
            store.idempotency.insert(
                (row.try_get("api_key")?, row.try_get("key")?),
                SavedResponse {
                    fingerprint: row.try_get("fingerprint")?,
                    status: u16::try_from(status).unwrap_or(500),
                    body: serde_json::from_str(&body)
                        .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                    request_id: row.try_get("request_id")?,
                    created: row.try_get("created")?,
                },
            );
        }
        let rows = sqlx::query("SELECT event_id FROM deliveries")
            .fetch_all(&mut conn)
            .await?;
        for row in rows {
            let id: String = row.try_get("event_id")?;
            if let Some(seq) = store.records.get(&id).map(|r| r.seq) {
                store.deliveries.insert(seq, id);
            }
        }
        let rows = sqlx::query("SELECT id, due_ms, action FROM timers")
            .fetch_all(&mut conn)
            .await?;
        for row in rows {
            let action: String = row.try_get("action")?;
            store.timers.insert(
                row.try_get("id")?,
                Timer {
                    due_ms: row.try_get("due_ms")?,
                    action: serde_json::from_str(&action)
                        .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                },
            );
        }
        Ok((Db { conn }, store))
    }

    async fn write(&mut self, store: &Store, journal: Vec<Change>) -> Result<(), sqlx::Error> {
        let mut tx = self.conn.begin().await?;
        for change in journal {
            let query = match change {
                Change::Object(id) => {
                    let Some(r) = store.records.get(&id) else {
                        continue;
                    };
                    sqlx::query(
                        "INSERT INTO objects (id, kind, seq, created, alias, body, account)
                         VALUES (?, ?, ?, ?, ?, ?, ?)
                         ON CONFLICT (id) DO UPDATE SET body = excluded.body, alias = excluded.alias,
                                                        account = excluded.account",
                    )
                    .bind(id)
                    .bind(r.kind.name())
                    .bind(r.seq)
                    .bind(r.created)
                    .bind(&r.alias)
                    .bind(r.value.to_string())
                    .bind(&r.account)
                }
                Change::Idempotency(api_key, key) => {
                    let Some(s) = store.idempotency.get(&(api_key.clone(), key.clone())) else {
                        continue;
                    };
                    sqlx::query(
                        "INSERT OR REPLACE INTO idempotency
                         (api_key, key, fingerprint, status, body, request_id, created)
                         VALUES (?, ?, ?, ?, ?, ?, ?)",
                    )
                    .bind(api_key)
                    .bind(key)
                    .bind(&s.fingerprint)
                    .bind(i64::from(s.status))
                    .bind(s.body.to_string())
                    .bind(&s.request_id)
                    .bind(s.created)
                }
                Change::DeliveryAdded(id) => {
                    sqlx::query("INSERT OR IGNORE INTO deliveries (event_id) VALUES (?)").bind(id)
                }
                Change::DeliveryDone(id) => {
                    sqlx::query("DELETE FROM deliveries WHERE event_id = ?").bind(id)
                }
                Change::TimerAdded(id) => {
                    let Some(t) = store.timers.get(&id) else {
                        continue;
                    };
                    sqlx::query(
                        "INSERT OR REPLACE INTO timers (id, due_ms, action) VALUES (?, ?, ?)",
                    )
                    .bind(id)
                    .bind(t.due_ms)
                    .bind(t.action.to_string())
                }
                Change::TimerDone(id) => sqlx::query("DELETE FROM timers WHERE id = ?").bind(id),
            };
            query.execute(&mut *tx).await?;
        }
        tx.commit().await
    }
}

/// The store with its file, behind the sandbox's one lock.
pub struct State {
    pub store: Store,
    pub db: Option<Db>,
}

impl State {
    pub async fn open(storage: &Storage) -> Result<State, sqlx::Error> {
        Ok(match storage {
            Storage::Memory => State {
                store: Store::default(),
                db: None,
            },
            Storage::File(path) => {
                let (db, store) = Db::open(path).await?;
                State {
                    store,
                    db: Some(db),
                }
            }
        })
    }

    /// Writes what changed since the last call.
    pub async fn persist(&mut self) -> Result<(), sqlx::Error> {
        let journal = std::mem::take(&mut self.store.journal);
        match &mut self.db {
            Some(db) if !journal.is_empty() => db.write(&self.store, journal).await,
            _ => Ok(()),
        }
    }
}
