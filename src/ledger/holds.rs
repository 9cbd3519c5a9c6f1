//! Seat holds (docs/contract.md §10): a payment created with `holdSeconds` holds its seats until
//! a time its create wrote into its metadata. What became of the hold is decided once, when the
//! payment is first seen succeeded (in time, or late), canceled when the hold ends, or marked by
//! a capture asked for in time; the hold worker and captures read it here.

use std::sync::LazyLock;

use super::delayed::metadata_ms;
use super::notifications::announce;
use super::sql::{final_sql, literal, payment_columns};
use super::stored::{HoldState, Kind, LatePolicy, Outbox};
use super::{column, Ledger, LedgerError};
use crate::stripe::types::{Lifecycle, PaymentIntent, PaymentIntentStatus};

/// The metadata key under which a create records its seat hold's end (ISO 8601 UTC).
pub const HOLD_KEY: &str = "hold_expires_at";

/// A hold nothing has been decided about yet, as SQL: undecided, or a capture asked for in time.
static OPEN_HOLD: LazyLock<String> = LazyLock::new(|| {
    format!(
        "(hold_state IS NULL OR hold_state = {})",
        literal(&HoldState::Capturing.as_str())
    )
});

/// When the payment's seat hold ends (Unix milliseconds), from the mark its create left in the
/// metadata.
pub(super) fn hold_expires_ms(pi: &PaymentIntent) -> Option<i64> {
    metadata_ms(pi, HOLD_KEY)
}

/// Inside the transaction that wrote a payment's row, with information dated `info_at` (Unix
/// seconds): the first time it is seen succeeded, whether it is late (its hold had expired,
/// and no capture was asked for before it did); then the notification its status calls for. A
/// late payment under `LATE_PAYMENT_POLICY=refund` is marked for the hold worker to refund, and
/// not announced.
pub(super) async fn after_payment_change(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    outbox: Outbox,
    id: &str,
    info_at: i64,
) -> Result<(), sqlx::Error> {
    let columns = "status, hold_expires_ms, hold_state, method";
    let Some(row) = payment_columns(tx, id, columns).await? else {
        return Ok(());
    };
    let status = PaymentIntentStatus::parse(&column::<String>(&row, "status")?);
    let hold: Option<i64> = column(&row, "hold_expires_ms")?;
    let mut hold_state: Option<HoldState> = column(&row, "hold_state")?;
    match status {
        PaymentIntentStatus::Succeeded => {
            // A capture asked for while the hold held is in time, whenever the news of its
            // success arrives (a webhook or a hold worker's read may tell of it first, dated
            // after the hold's end): the platform was told it succeeded.
            // An OXXO voucher cannot be paid after it expires, and its hold lasts until then.
            let in_time = matches!(hold_state, Some(HoldState::Capturing | HoldState::Debiting))
                || column::<Option<String>>(&row, "method")?.as_deref() == Some("oxxo");
            // Its seats were released when its debit failed: a new attempt is late.
            let released = hold_state == Some(HoldState::Released);
            let open = HoldState::is_open(hold_state) || released;
            if let (Some(expires), true) = (hold, open) {
                let after_the_hold =
                    released || (!in_time && info_at.saturating_mul(1000) > expires);
                let decided = match (after_the_hold, outbox.late) {
                    (false, _) => HoldState::Kept,
                    (true, LatePolicy::Notify) => HoldState::Late,
                    (true, LatePolicy::Refund) => HoldState::RefundDue,
                };
                sqlx::query("UPDATE payments SET hold_state = $2, late = $3 WHERE id = $1")
                    .bind(id)
                    .bind(decided)
                    .bind(i64::from(decided != HoldState::Kept))
                    .execute(&mut **tx)
                    .await?;
                hold_state = Some(decided);
            }
            let refunding = matches!(hold_state, Some(HoldState::RefundDue | HoldState::Refunded));
            if !refunding {
                announce(tx, outbox, id, Kind::Succeeded, None).await?;
            }
        }
        PaymentIntentStatus::Canceled => announce(tx, outbox, id, Kind::Canceled, None).await?,
        _ => {}
    }
    Ok(())
}

/// A payment's seat hold: when it ends and what became of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hold {
    /// When the hold ends, Unix milliseconds.
    pub expires_ms: i64,
    /// What became of it; `None` while nothing has been decided.
    pub state: Option<HoldState>,
    /// Whether the payment succeeded (or was still processing) after the hold ended.
    pub late: bool,
}

/// Whether a capture may go to Stripe as far as the payment's seat hold goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldCheck {
    /// No hold stands in the way: the payment has none, or is final (Stripe says why it
    /// cannot be captured), or another capture of it was asked for in time.
    Clear,
    /// The hold holds: the capture is marked as asked for in time ([`HoldState::Capturing`]).
    InTime,
    /// The hold has ended. `release`: nothing has released the authorisation yet.
    Expired { release: bool },
}

impl Ledger {
    /// Payments whose seat hold ended at or before `now_ms` (Unix milliseconds) and that
    /// nothing has been done about yet: not final, hold undecided (or a capture asked for in
    /// time that has not gone through). Oldest first.
    pub async fn expired_holds(&self, now_ms: i64, limit: i64) -> Result<Vec<String>, LedgerError> {
        let condition = format!(
            "hold_expires_ms <= $1 AND {} AND status NOT IN {}",
            *OPEN_HOLD,
            final_sql::<PaymentIntentStatus>()
        );
        self.payment_ids(&condition, now_ms, "hold_expires_ms", limit)
            .await
    }

    /// Where a payment's seat hold stands at `now_ms` (the service's clock, Unix
    /// milliseconds) for a capture of it: ended (at or after its end), or not in the way.
    pub async fn hold_for_capture(&self, id: &str, now_ms: i64) -> Result<HoldCheck, LedgerError> {
        let row =
            sqlx::query("SELECT hold_expires_ms, hold_state, status FROM payments WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        let Some(row) = row else {
            return Ok(HoldCheck::Clear);
        };
        let expires: Option<i64> = column(&row, "hold_expires_ms")?;
        let state: Option<HoldState> = column(&row, "hold_state")?;
        let status = PaymentIntentStatus::parse(&column::<String>(&row, "status")?);
        let ended = expires.is_some_and(|e| e <= now_ms);
        Ok(match state {
            Some(HoldState::Released) => HoldCheck::Expired { release: false },
            open if ended && HoldState::is_open(open) && !status.is_final() => {
                HoldCheck::Expired { release: true }
            }
            _ => HoldCheck::Clear,
        })
    }

    /// Right before a capture of an authorisation is sent to Stripe, at `now_ms`: while the
    /// hold holds, the capture is marked as asked for in time, in one statement, so that its
    /// success is never taken for a late payment, whichever path (webhook, read, hold worker)
    /// tells the ledger of it first. Otherwise, as [`Ledger::hold_for_capture`].
    pub async fn claim_hold_for_capture(
        &self,
        id: &str,
        now_ms: i64,
    ) -> Result<HoldCheck, LedgerError> {
        static CLAIM: LazyLock<String> = LazyLock::new(|| {
            format!(
                "UPDATE payments SET hold_state = $3
                 WHERE id = $1 AND hold_expires_ms > $2 AND hold_state IS NULL
                   AND status NOT IN {}",
                final_sql::<PaymentIntentStatus>()
            )
        });
        let claim = sqlx::query(&CLAIM)
            .bind(id)
            .bind(now_ms)
            .bind(HoldState::Capturing);
        if self.write(claim).await? == 1 {
            return Ok(HoldCheck::InTime);
        }
        self.hold_for_capture(id, now_ms).await
    }

    /// Late payments to refund under `LATE_PAYMENT_POLICY=refund`: those that have succeeded
    /// (one still processing when its hold ended waits for its outcome).
    pub async fn late_refunds_due(&self, limit: i64) -> Result<Vec<String>, LedgerError> {
        let succeeded = literal(&PaymentIntentStatus::Succeeded);
        let condition = format!("hold_state = $1 AND status = {succeeded}");
        self.payment_ids(&condition, HoldState::RefundDue, "hold_expires_ms", limit)
            .await
    }

    /// A payment still processing when its hold ended: whatever it becomes is late, so that
    /// when it succeeds it is announced late (`LATE_PAYMENT_POLICY=notify`) or refunded
    /// (`refund`), never announced as if it had been in time.
    pub async fn mark_late(&self, id: &str) -> Result<(), LedgerError> {
        let state = match self.outbox.late {
            LatePolicy::Notify => HoldState::Late,
            LatePolicy::Refund => HoldState::RefundDue,
        };
        self.set_hold_state(id, state, true).await
    }

    /// Records what became of a payment's hold. `late` marks the payment late too (it was
    /// still processing when its hold ended).
    pub async fn set_hold_state(
        &self,
        id: &str,
        state: HoldState,
        late: bool,
    ) -> Result<(), LedgerError> {
        let update = sqlx::query(
            "UPDATE payments SET hold_state = $2, late = CASE WHEN $3 = 1 THEN 1 ELSE late END
             WHERE id = $1",
        )
        .bind(id)
        .bind(state)
        .bind(i64::from(late));
        self.write(update).await.map(drop)
    }

    /// A payment's hold, if it has one.
    pub async fn hold_of(&self, id: &str) -> Result<Option<Hold>, LedgerError> {
        let row = sqlx::query(
            "SELECT hold_expires_ms, hold_state, late FROM payments
             WHERE id = $1 AND hold_expires_ms IS NOT NULL",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(Hold {
                expires_ms: column(&r, "hold_expires_ms")?,
                state: column(&r, "hold_state")?,
                late: column::<i64>(&r, "late")? != 0,
            })
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::testing::{ledger, pi};
    use serde_json::json;

    /// An authorisation whose seats are held until `hold_ms`, as the ledger reads it.
    fn held(hold_ms: i64) -> PaymentIntent {
        let until = chrono::DateTime::from_timestamp_millis(hold_ms)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut pi = pi("requires_capture");
        pi.metadata.insert(HOLD_KEY.into(), json!(until));
        pi
    }

    #[tokio::test]
    async fn a_capture_is_in_time_until_the_millisecond_the_hold_ends() {
        // 2030-01-01T00:00:00.500Z: half way through its second.
        let ends = 1_893_456_000_500;
        let captured = ledger().await;
        captured.record_from_api(&held(ends), 1).await.unwrap();
        let check = |at| captured.hold_for_capture("pi_matrix", at);
        let claim = |at| captured.claim_hold_for_capture("pi_matrix", at);
        assert_eq!(check(ends - 1).await.unwrap(), HoldCheck::Clear);
        assert_eq!(claim(ends - 1).await.unwrap(), HoldCheck::InTime);
        // Asked for in time: another capture meanwhile goes on, until the hold ends.
        assert_eq!(claim(ends - 1).await.unwrap(), HoldCheck::Clear);
        for ended in [check(ends).await.unwrap(), claim(ends).await.unwrap()] {
            assert_eq!(ended, HoldCheck::Expired { release: true });
        }
        // Its success, whenever the news of it is dated, is in time.
        let mut paid = held(ends);
        paid.status = PaymentIntentStatus::Succeeded;
        let news_at = ends / 1000 + 60;
        captured.record_from_api(&paid, news_at).await.unwrap();
        let hold = captured.hold_of("pi_matrix").await.unwrap().unwrap();
        assert_eq!((hold.state, hold.late), (Some(HoldState::Kept), false));

        let released = ledger().await;
        released.record_from_api(&held(ends), 1).await.unwrap();
        let check = |at| released.claim_hold_for_capture("pi_matrix", at);
        assert_eq!(
            check(ends).await.unwrap(),
            HoldCheck::Expired { release: true }
        );
        released
            .set_hold_state("pi_matrix", HoldState::Released, false)
            .await
            .unwrap();
        assert_eq!(
            check(ends).await.unwrap(),
            HoldCheck::Expired { release: false }
        );
        // Without a capture asked for in time, the same news of success is late.
        paid.id = "pi_late".into();
        released.record_from_api(&paid, news_at).await.unwrap();
        let hold = released.hold_of("pi_late").await.unwrap().unwrap();
        assert_eq!((hold.state, hold.late), (Some(HoldState::Late), true));
    }
}
