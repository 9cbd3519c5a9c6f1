//! A round that holds its lease for as long as it runs: taken first, renewed while the round
//! waits (for the Stripe budget, for pages of a long listing), so that a slow round is never
//! overlapped by another instance's.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::ledger::Ledger;

/// Runs `round` under the lease `name` of `owner`, `ttl_ms` long; `None` when another instance
/// holds it (nothing ran). While `round` runs the lease is renewed every quarter of `ttl_ms`. If
/// another instance has taken it meanwhile, or the ledger could not renew it before it ran out,
/// `round` is stopped where it stands, as the round of an instance that died would be: every
/// step of a round is idempotent, so the next holder picks the work up again (the settlement
/// round from the last page it saved, reconciliation from the cursor of its last whole round).
pub async fn held<T>(
    ledger: &Ledger,
    name: &str,
    owner: &str,
    ttl_ms: i64,
    round: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<Option<T>> {
    let ttl = Duration::from_millis(ttl_ms.max(1) as u64);
    let every = (ttl / 4).max(Duration::from_millis(1));
    // When the lease runs out unless renewed: counted from before each try that took or renewed
    // it, so never later than the ledger's own reckoning.
    let asked = Instant::now();
    if !ledger.try_lease(name, owner, ttl_ms).await? {
        return Ok(None);
    }
    let mut held_until = asked + ttl;
    let renew = async {
        loop {
            tokio::time::sleep(every).await;
            let asked = Instant::now();
            let deadline = tokio::time::Instant::from_std(held_until);
            let renewed = tokio::time::timeout_at(deadline, ledger.try_lease(name, owner, ttl_ms));
            let error = match renewed.await {
                Ok(Ok(true)) => {
                    held_until = asked + ttl;
                    continue;
                }
                Ok(Ok(false)) => {
                    return anyhow::anyhow!(
                        "the lease {name} was taken by another instance: the round stopped"
                    )
                }
                Ok(Err(e)) => e.to_string(),
                Err(_) => "no answer from the ledger".to_string(),
            };
            if Instant::now() + every >= held_until {
                return anyhow::anyhow!(
                    "the lease {name} could not be renewed before it ran out ({error}): the round \
                     stopped"
                );
            }
            tracing::warn!(lease = name, %error, "a lease could not be renewed; trying again");
        }
    };
    tokio::select! {
        done = round => done.map(Some),
        lost = renew => Err(lost),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::testing::ledger;

    const TTL_MS: i64 = 1_000;

    #[tokio::test]
    async fn a_round_longer_than_its_lease_keeps_it_until_it_ends() {
        let ledger = ledger().await;
        let others_took_it = async {
            let mut took = 0;
            // Other instances try all along a round that lasts 2.5 leases.
            for _ in 0..20 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                took += i32::from(ledger.try_lease("job", "other", TTL_MS).await.unwrap());
            }
            took
        };
        let round = async {
            tokio::time::sleep(Duration::from_millis(2_500)).await;
            Ok(7)
        };
        let (ran, took) = tokio::join!(held(&ledger, "job", "me", TTL_MS, round), others_took_it);
        assert_eq!(ran.unwrap(), Some(7), "the round ran to its end");
        assert_eq!(
            took, 0,
            "no other instance took the lease while the round ran"
        );

        // Another holder keeps it from this one: nothing runs.
        assert!(ledger.try_lease("job2", "other", TTL_MS).await.unwrap());
        let ran = held(&ledger, "job2", "me", TTL_MS, async { Ok(()) }).await;
        assert_eq!(ran.unwrap(), None);
    }

    #[tokio::test]
    async fn a_round_whose_lease_was_taken_is_stopped() {
        let ledger = ledger().await;
        let round = async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(())
        };
        let take_it = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            // As if this instance had stalled past its lease and another took it.
            sqlx::query("UPDATE leases SET owner = 'other' WHERE name = 'job'")
                .execute(ledger.pool())
                .await
                .unwrap();
        };
        let (ran, ()) = tokio::join!(held(&ledger, "job", "me", TTL_MS, round), take_it);
        let error = ran.expect_err("the round stops once its lease is lost");
        assert!(
            error.to_string().contains("taken by another instance"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_round_whose_lease_cannot_be_renewed_is_stopped_before_it_runs_out() {
        let ledger = ledger().await;
        let round = async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(())
        };
        let lose_the_ledger = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            ledger.pool().close().await;
        };
        let (ran, ()) = tokio::join!(held(&ledger, "job", "me", TTL_MS, round), lose_the_ledger);
        let error = ran.expect_err("the round stops once its lease would run out");
        assert!(
            error.to_string().contains("could not be renewed"),
            "{error}"
        );
    }
}
