//! How the ledger runs a single statement on its pool (either backend, through sqlx's Any
//! driver): reads whose rows come back as the ledger's own types, columns by name, and writes
//! that tell [`Ledger::watch`] what they found about the database's ability to write.

use serde_json::Value;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::{Any, FromRow};

use super::{column, Ledger, LedgerError};

/// Stripe's objects (payments, refunds, disputes) in the order Stripe created them, as an
/// `ORDER BY` list, and the other way round.
pub(super) const OLDEST_FIRST: &str = "created, id";
pub(super) const NEWEST_FIRST: &str = "created DESC, id DESC";

/// A statement with its values bound, ready to run.
pub(super) type Statement<'q> = sqlx::query::Query<'q, Any, AnyArguments<'q>>;

/// What a row reads back as. Most of the ledger's rows derive sqlx's [`FromRow`] (every field
/// from the column of its name, a missing or mistyped one an error, never a panic); the ones
/// holding a JSON document read it by hand, so that a document that no longer parses is
/// [`LedgerError::Corrupt`].
pub(super) trait FromLedgerRow: Sized {
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

    /// The rows of `select` (a `SELECT … FROM` of `T`'s columns) with the status `status`, or
    /// all of them, in `order`, `limit` at the most.
    pub(super) async fn fetch_by_status<T: FromLedgerRow>(
        &self,
        select: &str,
        status: Option<&str>,
        order: &str,
        limit: i64,
    ) -> Result<Vec<T>, LedgerError> {
        let sql = format!("{select} WHERE ($1 IS NULL OR status = $1) ORDER BY {order} LIMIT $2");
        self.fetch_all(sqlx::query(&sql).bind(status).bind(limit))
            .await
    }

    /// The rows of `select` (a `SELECT … FROM` of `T`'s columns) that belong to a payment, in
    /// `order`.
    pub(super) async fn fetch_of_payment<T: FromLedgerRow>(
        &self,
        select: &str,
        payment_intent_id: &str,
        order: &str,
    ) -> Result<Vec<T>, LedgerError> {
        let sql = format!("{select} WHERE payment_intent_id = $1 ORDER BY {order}");
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
