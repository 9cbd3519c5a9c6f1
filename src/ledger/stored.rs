//! The ledger's own words: every state, kind and outcome it writes into a column, as an enum
//! that reads back exactly what it wrote. Text this service never writes (a row edited by hand,
//! a newer build's value read by an older one) is [`LedgerError::Corrupt`], never a default.
//! Stripe's statuses and event types are not here: they are what Stripe sends, kept leniently
//! (`stripe::types`).
//!
//! A new state or kind is a new line in its [`stored!`] list; a new column of the kind is a new
//! `stored!` enum, with its table and column for the error that names it.

use sqlx::any::{AnyTypeInfo, AnyValueRef};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Any, Database};

use super::LedgerError;

/// Text in a column that is not one of the values the ledger writes there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{column} holds {text:?}, which this service never writes there")]
pub struct Unknown {
    /// `table.column`.
    pub column: &'static str,
    pub text: String,
}

impl From<Unknown> for LedgerError {
    fn from(e: Unknown) -> Self {
        LedgerError::Corrupt(e.to_string())
    }
}

/// Declares an enum the ledger writes into the column `$column` (`table.column`) as the texts
/// given, and reads back from it: bound and decoded by sqlx as that text (an unknown text fails
/// the read as [`Unknown`], which the ledger reports as corrupt), shown, serialized and
/// compared as it.
macro_rules! stored {
    (
        $(#[$meta:meta])*
        pub enum $name:ident in $column:literal {
            $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in the order declared.
            #[allow(dead_code)] // Some of them are listed by tests only.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(&self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// The value written as `text`; any other text is not one.
            pub fn parse(text: &str) -> Result<Self, Unknown> {
                match text {
                    $($text => Ok($name::$variant),)+
                    other => Err(Unknown {
                        column: $column,
                        text: other.to_string(),
                    }),
                }
            }
        }

        crate::as_text!($name);

        impl sqlx::Type<Any> for $name {
            fn type_info() -> AnyTypeInfo {
                <String as sqlx::Type<Any>>::type_info()
            }

            fn compatible(ty: &AnyTypeInfo) -> bool {
                <String as sqlx::Type<Any>>::compatible(ty)
            }
        }

        impl<'r> sqlx::Decode<'r, Any> for $name {
            fn decode(value: AnyValueRef<'r>) -> Result<Self, BoxDynError> {
                let text = <String as sqlx::Decode<'r, Any>>::decode(value)?;
                Ok($name::parse(&text)?)
            }
        }

        impl<'q> sqlx::Encode<'q, Any> for $name {
            fn encode_by_ref(
                &self,
                buf: &mut <Any as Database>::ArgumentBuffer<'q>,
            ) -> Result<IsNull, BoxDynError> {
                <&str as sqlx::Encode<'q, Any>>::encode(self.as_str(), buf)
            }
        }
    };
}

stored! {
    /// What became of a webhook event.
    pub enum Outcome in "webhook_events.outcome" {
        /// The ledger row took the event's status (or was created from it).
        Applied = "applied",
        /// Recorded, but the row did not change: it was already final, or newer information
        /// was in.
        Ignored = "ignored",
        /// A PaymentIntent of another application on the same Stripe account.
        Foreign = "foreign",
        /// A type this service does not act on.
        Unhandled = "unhandled",
        /// Seen before: nothing was written (so never found in the column).
        Duplicate = "duplicate",
    }
}

impl Outcome {
    /// A recorded change's outcome: `Applied` when the row took what it was told, `Ignored`
    /// when it kept what it had.
    pub(super) fn took(took: bool) -> Outcome {
        if took {
            Outcome::Applied
        } else {
            Outcome::Ignored
        }
    }
}

stored! {
    /// Where an event came from.
    pub enum EventSource in "webhook_events.source" {
        /// Stripe delivered it to the webhook.
        Webhook = "webhook",
        /// The reconciliation found it in Stripe's event log.
        Reconcile = "reconcile",
    }
}

stored! {
    /// Why the platform is told: a notification's `type`.
    pub enum Kind in "notifications.type" {
        Succeeded = "payment.succeeded",
        Canceled = "payment.canceled",
        /// A refund reached `succeeded` (its id).
        Refunded = "payment.refunded",
        /// A refund ended `failed`: after it succeeded (the bank returned it), or before (its
        /// id).
        RefundFailed = "payment.refund_failed",
        /// A dispute was opened (its id).
        Disputed = "payment.disputed",
        /// A dispute was won or lost (its id).
        DisputeClosed = "payment.dispute_closed",
        /// A voucher or bank transfer instructions were issued: the buyer has to pay.
        AwaitingPayment = "payment.awaiting_payment",
        /// A bank transfer paid part of what is owed (what remains).
        PartiallyFunded = "payment.partially_funded",
        /// A debit failed after `processing`.
        Failed = "payment.failed",
        /// A customer's cash balance holds money no payment took (its event and currency).
        UnappliedFunds = "customer.unapplied_funds",
    }
}

stored! {
    /// Where a notification's delivery stands.
    pub enum NotificationStatus in "notifications.status" {
        /// Not delivered yet: due now, or retried later.
        Pending = "pending",
        Delivered = "delivered",
        /// Given up on after its retries; `notifications retry` makes it pending again.
        Failed = "failed",
    }
}

stored! {
    /// What became of a payment's seat hold.
    pub enum HoldState in "payments.hold_state" {
        /// It succeeded before the hold expired.
        Kept = "kept",
        /// It was canceled (released), or found canceled, when the hold expired.
        Released = "released",
        /// It succeeded (or was processing) after the hold expired, and goes on.
        Late = "late",
        /// It succeeded after the hold expired and is to be refunded.
        RefundDue = "refund_due",
        /// Its late refund was made.
        Refunded = "refunded",
        /// A capture was asked for before the hold ended: if it succeeds, it is in time. The
        /// hold worker still looks at the payment once the hold ends, until it is final: a
        /// capture that never went through is released like any other unpaid hold.
        Capturing = "capturing",
        /// A debit was `processing` while its hold held: its outcome decides, whenever it
        /// comes (the hold worker leaves it alone); a success is in time, a failure releases.
        Debiting = "debiting",
    }
}

impl HoldState {
    /// Whether a hold in `state` is still open: nothing decided about it, or a capture asked
    /// for in time that has not gone through yet.
    pub(super) fn is_open(state: Option<HoldState>) -> bool {
        matches!(
            state,
            None | Some(HoldState::Capturing | HoldState::Debiting)
        )
    }
}

stored! {
    /// Where a payment of a bulk refund job stands.
    pub enum ItemState in "refund_job_items.state" {
        /// Not refunded yet: never tried, interrupted, or refused for a reason that may pass
        /// (`balance_insufficient`).
        Pending = "pending",
        Refunded = "refunded",
        /// Nothing was left to refund.
        Skipped = "skipped",
        /// Stripe refused it for a reason that does not pass by itself; its message is kept,
        /// and the next run tries it again.
        Failed = "failed",
    }
}

impl ItemState {
    /// Whether a run of the job tries the payment: it is not refunded and not skipped.
    pub fn to_try(&self) -> bool {
        matches!(self, ItemState::Pending | ItemState::Failed)
    }
}

stored! {
    /// How a payment's money reaches its organiser (`CONNECT_CHARGE_TYPE`).
    pub enum ChargeType in "payments.charge_type" {
        /// The platform's PaymentIntent, its money transferred to the organiser's account.
        Destination = "destination",
        /// A PaymentIntent on the organiser's own account (`Stripe-Account`).
        Direct = "direct",
    }
}

stored! {
    /// A Stripe call an event calls for, made later by the Connect worker.
    pub enum ActionKind in "connect_actions.kind" {
        /// A dispute opened on a destination charge: the organiser's transfer is reversed.
        DisputeReversal = "dispute_reversal",
        /// The dispute was won: what was reversed, less the fee, goes back to the organiser.
        DisputeReturn = "dispute_return",
    }
}

stored! {
    /// Where such a call stands.
    pub enum ActionState in "connect_actions.state" {
        /// Not made yet: due now, or tried again later.
        Pending = "pending",
        Done = "done",
        /// Nothing to do (no transfer, nothing left of it, `DISPUTE_REVERSE_TRANSFER=false`).
        Skipped = "skipped",
        /// Given up on after its retries.
        Failed = "failed",
    }
}

stored! {
    /// Where a caller's Idempotency-Key stands.
    pub enum KeyState in "idempotency_keys.state" {
        /// A request holds it (or held it, and died).
        InProgress = "in_progress",
        /// Its request succeeded; the response is saved for replays.
        Done = "done",
    }
}

stored! {
    /// What happens to a payment that succeeds after its hold expired
    /// (`LATE_PAYMENT_POLICY`).
    #[derive(Default)]
    pub enum LatePolicy in "settings.outbox" {
        /// It goes on; its notification says `"late": true`.
        #[default]
        Notify = "notify",
        /// It is refunded (by the hold worker) instead of announced.
        Refund = "refund",
    }
}

/// What the ledger does about notifications.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outbox {
    /// Whether notifications are written at all (`FULFILMENT_URL` set).
    pub enabled: bool,
    pub late: LatePolicy,
}

impl Outbox {
    /// As the `outbox` setting keeps it: `on:notify`, `off:refund`, ….
    pub(super) fn text(&self) -> String {
        let enabled = if self.enabled { "on" } else { "off" };
        format!("{enabled}:{}", self.late)
    }

    /// The `outbox` setting as [`Outbox::text`] wrote it.
    pub(super) fn parse(text: &str) -> Result<Outbox, Unknown> {
        let unknown = || Unknown {
            column: "settings.outbox",
            text: text.to_string(),
        };
        let (enabled, late) = text.split_once(':').ok_or_else(unknown)?;
        let enabled = match enabled {
            "on" => true,
            "off" => false,
            _ => return Err(unknown()),
        };
        let late = LatePolicy::parse(late).map_err(|_| unknown())?;
        Ok(Outbox { enabled, late })
    }
}

#[cfg(test)]
mod tests {
    use std::fmt;

    use serde::Serialize;

    use super::*;

    /// A column of its own in an in-memory database.
    async fn scratch() -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (v TEXT)")
            .execute(&pool)
            .await
            .unwrap();
        pool
    }

    /// Every value of `T`, written to a column as sqlx binds it, reads back as itself, and its
    /// text is what it shows and serializes as; text it is never written as fails the read as a
    /// corrupt row naming `column`.
    async fn round_trips<T>(all: &[T], column: &str)
    where
        T: Copy + PartialEq + fmt::Debug + fmt::Display + Serialize + Send + Unpin + 'static,
        T: for<'q> sqlx::Encode<'q, Any> + for<'r> sqlx::Decode<'r, Any> + sqlx::Type<Any>,
    {
        assert!(!all.is_empty());
        let pool = scratch().await;
        for value in all {
            sqlx::query("DELETE FROM t").execute(&pool).await.unwrap();
            let insert = sqlx::query("INSERT INTO t (v) VALUES ($1)").bind(*value);
            insert.execute(&pool).await.unwrap();
            let text: String = sqlx::query_scalar("SELECT v FROM t")
                .fetch_one(&pool)
                .await
                .unwrap();
            assert_eq!(text, value.to_string());
            let json = serde_json::to_value(value).unwrap();
            assert_eq!(json, serde_json::Value::String(text));
            let back: T = sqlx::query_scalar("SELECT v FROM t")
                .fetch_one(&pool)
                .await
                .unwrap();
            assert_eq!(back, *value);
        }
        for bad in ["", "APPLIED", "bogus", " pending"] {
            sqlx::query("UPDATE t SET v = $1")
                .bind(bad)
                .execute(&pool)
                .await
                .unwrap();
            let read = sqlx::query_scalar::<_, T>("SELECT v FROM t")
                .fetch_one(&pool)
                .await;
            let e = LedgerError::from(read.unwrap_err());
            assert!(
                matches!(&e, LedgerError::Corrupt(m) if m.contains(column)),
                "{column}: {e}"
            );
        }
    }

    #[tokio::test]
    async fn every_stored_value_round_trips_and_nothing_else_reads() {
        round_trips(Outcome::ALL, "webhook_events.outcome").await;
        round_trips(EventSource::ALL, "webhook_events.source").await;
        round_trips(Kind::ALL, "notifications.type").await;
        round_trips(NotificationStatus::ALL, "notifications.status").await;
        round_trips(HoldState::ALL, "payments.hold_state").await;
        round_trips(ItemState::ALL, "refund_job_items.state").await;
        round_trips(KeyState::ALL, "idempotency_keys.state").await;
        round_trips(LatePolicy::ALL, "settings.outbox").await;
        round_trips(ChargeType::ALL, "payments.charge_type").await;
        round_trips(ActionKind::ALL, "connect_actions.kind").await;
        round_trips(ActionState::ALL, "connect_actions.state").await;
    }

    #[test]
    fn the_outbox_setting_round_trips_and_nothing_else_reads() {
        for enabled in [true, false] {
            for &late in LatePolicy::ALL {
                let outbox = Outbox { enabled, late };
                assert_eq!(Outbox::parse(&outbox.text()), Ok(outbox));
            }
        }
        for bad in ["", "on", "on:", "yes:notify", "on:refund:x", "ON:notify"] {
            assert_eq!(Outbox::parse(bad).unwrap_err().column, "settings.outbox");
        }
    }
}
