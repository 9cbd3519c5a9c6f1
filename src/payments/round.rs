//! What the background rounds over Stripe's accounts share (reconciliation, §12, and settlement,
//! §17): which refusals leave one connected account out of a round, and how a round that
//! succeeded ends.

use serde::Serialize;

use super::Error;
use crate::ledger::PLATFORM;

/// Whether `error`, met on the connected account `account` by the round `round`, leaves that
/// account out of the round rather than failing it; if so it is logged and counted
/// (`tmt_accounts_left_out_total{round}`). An account that left the platform (its
/// deauthorisation not heard of yet) or that Stripe no longer has must not stop the round for
/// every other account: Stripe refused it for good (a 4xx). Being told to slow down (429) or a
/// fault on Stripe's side ends the round instead. The platform's own account is never left
/// out: a round without it has not succeeded.
pub(super) fn leaves_account_out(round: &'static str, account: &str, error: &Error) -> bool {
    let Error::StripeRefused(refused) = error else {
        return false;
    };
    let for_good =
        account != PLATFORM && (400..500).contains(&refused.status) && refused.status != 429;
    if for_good {
        metrics::counter!("tmt_accounts_left_out_total", "round" => round).increment(1);
        tracing::warn!(
            round,
            account_id = account,
            status = refused.status,
            "a connected account cannot be read; left out of the round"
        );
    }
    for_good
}

/// Ends a round that succeeded: sets its gauge `last_success` (operators alert when it grows
/// old) and logs its report, as the JSON its command prints with `--json`.
pub(super) fn succeeded(round: &'static str, last_success: &'static str, report: &impl Serialize) {
    metrics::gauge!(last_success).set(chrono::Utc::now().timestamp() as f64);
    let report = serde_json::to_string(report).unwrap_or_default();
    tracing::info!(round, %report, "round succeeded");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stripe::client::ApiRefusal;

    #[test]
    fn only_a_connected_accounts_refusal_for_good_leaves_it_out() {
        let refused = |status: u16| {
            Error::StripeRefused(Box::new(ApiRefusal {
                status,
                ..ApiRefusal::default()
            }))
        };
        for (status, left_out) in [
            (400, true),
            (401, true),
            (403, true),
            (404, true),
            (429, false),
            (500, false),
            (503, false),
        ] {
            assert_eq!(
                leaves_account_out("test", "acct_1", &refused(status)),
                left_out,
                "{status} on a connected account"
            );
            assert!(
                !leaves_account_out("test", PLATFORM, &refused(status)),
                "{status} on the platform's own account"
            );
        }
        for other in crate::payments::one_of_each()
            .into_iter()
            .filter(|e| !matches!(e, Error::StripeRefused(_)))
        {
            assert!(!leaves_account_out("test", "acct_1", &other), "{other:?}");
        }
    }
}
