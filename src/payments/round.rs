//! What the background rounds over Stripe's accounts share (reconciliation, §12, and settlement,
//! §17): which refusals leave one account out of a round, and how a round that succeeded ends.

use std::fmt::Debug;

use super::Error;

/// Whether `error`, met on the connected account `account`, leaves that account out of the round
/// rather than failing it, and says so in the log (the platform's own account is never left out:
/// a round without it has not succeeded). An account that left the platform (its
/// deauthorisation not heard of yet) or that Stripe no longer has must not stop the round for
/// every other account: Stripe refused it for good (a 4xx). Being told to slow down (429) or a
/// fault on Stripe's side ends the round instead; the next one starts over.
pub(super) fn leaves_account_out(account: &str, error: &Error) -> bool {
    let Error::StripeRefused(refused) = error else {
        return false;
    };
    let for_good = (400..500).contains(&refused.status) && refused.status != 429;
    if for_good {
        tracing::warn!(
            account_id = account,
            status = refused.status,
            "an account cannot be read; left out of the round"
        );
    }
    for_good
}

/// Ends a round that succeeded: sets its gauge `last_success` (operators alert when it grows
/// old) and logs what it did.
pub(super) fn succeeded(round: &'static str, last_success: &'static str, report: &impl Debug) {
    metrics::gauge!(last_success).set(chrono::Utc::now().timestamp() as f64);
    tracing::info!(round, ?report, "round succeeded");
}
