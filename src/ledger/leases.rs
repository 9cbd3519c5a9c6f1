//! Which instance does a periodic job: a lease row per job, taken when it has lapsed (its
//! holder died or stopped renewing) and renewed by its holder. A job's state between rounds
//! (the reconciliation's cursor) is kept beside it.

use super::{Ledger, LedgerError};

impl Ledger {
    /// Takes or renews the lease `name` for `owner` for `ttl_ms`; whether `owner` holds it now.
    pub async fn try_lease(
        &self,
        name: &str,
        owner: &str,
        ttl_ms: i64,
    ) -> Result<bool, LedgerError> {
        let now = chrono::Utc::now().timestamp_millis();
        let result = sqlx::query(
            "INSERT INTO leases (name, owner, until) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until
             WHERE leases.until < $4 OR leases.owner = excluded.owner
             RETURNING owner",
        )
        .bind(name)
        .bind(owner)
        .bind(now + ttl_ms)
        .bind(now)
        .fetch_optional(&self.pool)
        .await;
        Ok(self.watch(result.map_err(LedgerError::from))?.is_some())
    }

    /// What the job keeps between rounds.
    pub async fn lease_state(&self, name: &str) -> Result<Option<String>, LedgerError> {
        let state: Option<Option<String>> =
            sqlx::query_scalar("SELECT state FROM leases WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        Ok(state.flatten())
    }

    /// Saves the job's state; only its holder can.
    pub async fn set_lease_state(
        &self,
        name: &str,
        owner: &str,
        state: &str,
    ) -> Result<bool, LedgerError> {
        let save = sqlx::query("UPDATE leases SET state = $3 WHERE name = $1 AND owner = $2")
            .bind(name)
            .bind(owner)
            .bind(state);
        Ok(self.write(save).await? == 1)
    }
}
