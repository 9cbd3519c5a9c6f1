//! How the ledger runs a single statement on its pool (either backend, through sqlx's Any
//! driver): reads whose rows come back as the ledger's own types, columns by name (and the
//! lists the kinds of row come in: [`Ledger::list`] by status, [`Ledger::of_payment`] a
//! payment's), and writes that tell [`Ledger::watch`] what they found about the database's
//! ability to write.

use serde_json::Value;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::{Any, FromRow};

use super::{column, Ledger, LedgerError};

/// A statement with its values bound, ready to run.
pub(super) type Statement<'q> = sqlx::query::Query<'q, Any, AnyArguments<'q>>;

/// What a row reads back as. Most of the ledger's rows derive sqlx's [`FromRow`] (every field
/// from the column of its name, a missing or mistyped one an error, never a panic); the ones
/// holding a JSON document read it by hand, so that a document that no longer parses is
/// [`LedgerError::Corrupt`]. Public only as the bound of [`Listed`]: it cannot be named outside
/// the ledger, so that only the ledger's own rows can be listed.
pub trait FromLedgerRow: Sized {
    fn from_ledger_row(row: &AnyRow) -> Result<Self, LedgerError>;
}

impl<T> FromLedgerRow for T
where
    T: for<'r> FromRow<'r, AnyRow>,
{
    fn from_ledger_row(row: &AnyRow) -> Result<Self, LedgerError> {
        Ok(T::from_row(row)?)
    }
}

/// The order in which a kind of row happened, which lists of it follow: one payment's rows
/// oldest first, listings newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chronology {
    /// Stripe's objects (payments, refunds, disputes): by the time Stripe created them, then id.
    Created,
    /// The ledger's own records (events, notifications): by `seq`, the order it wrote them.
    Written,
}

impl Chronology {
    /// As an `ORDER BY` list, oldest first.
    pub(super) fn oldest_first(self) -> &'static str {
        match self {
            Chronology::Created => "created, id",
            Chronology::Written => "seq",
        }
    }

    /// As an `ORDER BY` list, newest first.
    pub(super) fn newest_first(self) -> &'static str {
        match self {
            Chronology::Created => "created DESC, id DESC",
            Chronology::Written => "seq DESC",
        }
    }
}

/// A kind of row the ledger hands out in lists: the statement that reads it, and its order.
pub trait Listed: FromLedgerRow {
    /// `SELECT` of the row's columns `FROM` its table.
    const SELECT: &'static str;
    /// The order the rows happened in.
    const ORDER: Chronology;
}

/// Rows with a `status` column, listed by it: [`Ledger::list`].
pub trait ByStatus: Listed {}

/// Rows that belong to a payment (a `payment_intent_id` column): [`Ledger::of_payment`].
pub trait OfPayment: Listed {}

/// A column holding a JSON document; one that no longer parses makes the row corrupt. `of` says
/// whose column it is, for the error ("a payment").
pub(super) fn json_column(row: &AnyRow, name: &str, of: &str) -> Result<Value, LedgerError> {
    let text: String = column(row, name)?;
    serde_json::from_str(&text).map_err(|e| LedgerError::Corrupt(format!("{name} of {of}: {e}")))
}

/// Every row read, or the first that cannot be.
pub(super) fn read_all<T: FromLedgerRow>(rows: &[AnyRow]) -> Result<Vec<T>, LedgerError> {
    rows.iter().map(T::from_ledger_row).collect()
}

impl Ledger {
    /// The rows a read returns.
    pub(super) async fn fetch_all<T: FromLedgerRow>(
        &self,
        statement: Statement<'_>,
    ) -> Result<Vec<T>, LedgerError> {
        read_all(&statement.fetch_all(&self.pool).await?)
    }

    /// The row a read returns, if it returns one.
    pub(super) async fn fetch_optional<T: FromLedgerRow>(
        &self,
        statement: Statement<'_>,
    ) -> Result<Option<T>, LedgerError> {
        let row = statement.fetch_optional(&self.pool).await?;
        row.as_ref().map(T::from_ledger_row).transpose()
    }

    /// The rows of a kind with the status `status`, or all of them, newest first, `limit` at
    /// the most: `ledger.list::<RefundRow>(Some("pending"), 50)`.
    pub async fn list<T: ByStatus>(
        &self,
        status: Option<&str>,
        limit: i64,
    ) -> Result<Vec<T>, LedgerError> {
        let sql = format!(
            "{} WHERE ($1 IS NULL OR status = $1) ORDER BY {} LIMIT $2",
            T::SELECT,
            T::ORDER.newest_first()
        );
        self.fetch_all(sqlx::query(&sql).bind(status).bind(limit))
            .await
    }

    /// A payment's rows of a kind, in the order they happened:
    /// `ledger.of_payment::<RefundRow>(payment_intent_id)`.
    pub async fn of_payment<T: OfPayment>(
        &self,
        payment_intent_id: &str,
    ) -> Result<Vec<T>, LedgerError> {
        let sql = format!(
            "{} WHERE payment_intent_id = $1 ORDER BY {}",
            T::SELECT,
            T::ORDER.oldest_first()
        );
        self.fetch_all(sqlx::query(&sql).bind(payment_intent_id))
            .await
    }

    /// Runs one write outside any transaction, noting what it found about the database's
    /// ability to write; how many rows it changed.
    pub(super) async fn write(&self, statement: Statement<'_>) -> Result<u64, LedgerError> {
        let result = statement.execute(&self.pool).await;
        self.watch(result.map(|done| done.rows_affected()).map_err(Into::into))
    }
}
