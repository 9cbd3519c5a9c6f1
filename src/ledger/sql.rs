//! What the ledger's kinds of change share below them: SQL over a payment's row and its refunds
//! that payments, refunds, holds and notifications each need, the statuses of Stripe's objects
//! as SQL (built from their [`Lifecycle`] and their variants, never spelled by hand), and where
//! a piece of information came from. Nothing here knows of events, refunds or notifications as
//! such: they build on it.

use std::sync::LazyLock;

use sqlx::any::AnyRow;

use super::{Ledger, LedgerError};
use crate::stripe::types::{Lifecycle, RefundStatus};

/// `'text'`: a value as an SQL string literal.
pub(super) fn literal(value: &impl AsRef<str>) -> String {
    format!("'{}'", value.as_ref().replace('\'', "''"))
}

/// `('a', 'b')`: values as an SQL list, for `IN`.
pub(super) fn list<T: AsRef<str>>(values: &[T]) -> String {
    let quoted: Vec<String> = values.iter().map(literal).collect();
    format!("({})", quoted.join(", "))
}

/// `('succeeded', 'canceled')`: the final statuses of a kind of object, as an SQL list.
pub(super) fn final_sql<S: Lifecycle>() -> String {
    list(S::FINAL)
}

/// An SQL condition that holds when a row's `{column}` must keep its status rather than take
/// `{incoming}`: it is final, and the change is not one of the kind's late changes.
pub(super) fn keeps_final_sql<S: Lifecycle>(column: &str, incoming: &str) -> String {
    let mut condition = format!("{column} IN {}", final_sql::<S>());
    for (from, to) in S::LATE_CHANGES {
        let (from, to) = (literal(from), literal(to));
        condition.push_str(&format!(
            " AND NOT ({column} = {from} AND {incoming} = {to})"
        ));
    }
    format!("({condition})")
}

/// What a payment charged, as an SQL expression over its row: what a refund can give back.
pub(super) const CHARGED: &str = "CAST(COALESCE(amount_received, amount) AS BIGINT)";

/// What a payment ($1) has refunded or is refunding, minor units, as an SQL expression.
pub(super) static REFUNDED_OF_PAYMENT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "CAST((SELECT COALESCE(SUM(amount), 0) FROM refunds
               WHERE payment_intent_id = $1 AND status IN {}) AS BIGINT)",
        list(RefundStatus::COUNTED)
    )
});

/// What a payment ($1) has refunded or is refunding, minor units.
pub(super) static AMOUNT_REFUNDED: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {}", *REFUNDED_OF_PAYMENT));

/// Where a payment's status, a refund, a dispute or a charge came from: an event (its id and
/// creation time) or an API answer (the time the request was sent).
#[derive(Debug, Clone, Copy)]
pub(super) struct Source<'a> {
    pub event_id: Option<&'a str>,
    /// Unix seconds of the information.
    pub at: i64,
}

/// Inside a transaction: the `columns` (comma-separated) of a payment's row, if the ledger has
/// the payment.
pub(super) async fn payment_columns(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: &str,
    columns: &str,
) -> Result<Option<AnyRow>, sqlx::Error> {
    sqlx::query(&format!("SELECT {columns} FROM payments WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await
}

impl Ledger {
    /// The ids of the payments that `condition` (SQL, whose `$1` is `value`) chooses, in
    /// `order`, `limit` at the most.
    pub(super) async fn payment_ids<T>(
        &self,
        condition: &str,
        value: T,
        order: &str,
        limit: i64,
    ) -> Result<Vec<String>, LedgerError>
    where
        T: 'static + Send + for<'q> sqlx::Encode<'q, sqlx::Any> + sqlx::Type<sqlx::Any>,
    {
        let sql = format!("SELECT id FROM payments WHERE {condition} ORDER BY {order} LIMIT $2");
        Ok(sqlx::query_scalar(&sql)
            .bind(value)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
    }
}

/// The accounts of organisers the ledger knows were disconnected (deauthorised: the platform can
/// no longer read them), as an SQL list.
pub(super) const DISCONNECTED: &str =
    "(SELECT account_id FROM organizers WHERE account_id IS NOT NULL AND connected = 0)";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stripe::types::{DisputeStatus, PaymentIntentStatus};

    #[test]
    fn statuses_become_sql_from_their_variants() {
        assert_eq!(
            final_sql::<PaymentIntentStatus>(),
            "('succeeded', 'canceled')"
        );
        assert_eq!(
            final_sql::<RefundStatus>(),
            "('succeeded', 'failed', 'canceled')"
        );
        assert_eq!(final_sql::<DisputeStatus>(), "('won', 'lost')");
        assert_eq!(list(RefundStatus::COUNTED), "('pending', 'succeeded')");
        assert_eq!(
            list(RefundStatus::COMMITTED),
            "('pending', 'succeeded', 'requires_action')"
        );
        assert_eq!(
            keeps_final_sql::<RefundStatus>("r.status", "x.status"),
            "(r.status IN ('succeeded', 'failed', 'canceled') \
             AND NOT (r.status = 'succeeded' AND x.status = 'failed'))"
        );
        assert_eq!(
            keeps_final_sql::<DisputeStatus>("d.status", "x.status"),
            "(d.status IN ('won', 'lost'))"
        );
        // A quote in a value cannot end the literal.
        assert_eq!(literal(&"it's"), "'it''s'");
    }
}
