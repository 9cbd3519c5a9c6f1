//! A round that holds its lease for as long as it runs: taken first, renewed while the round
//! waits (for the Stripe budget, for pages of a long listing), so that a slow round is never
//! overlapped by another instance's.

use std::future::Future;
use std::time::Duration;

use crate::ledger::Ledger;

/// Runs `round` under the lease `name` of `owner`, `ttl_ms` long; `None` when another instance
/// holds it (nothing ran). While `round` runs the lease is renewed every quarter of `ttl_ms`. If
/// another instance has taken it meanwhile (this one could not renew it in time), `round` is
/// stopped where it stands, as a round that died would be: the rounds keep their place in the
/// ledger, so the new holder goes on from there.
pub async fn held<T>(
    ledger: &Ledger,
    name: &str,
    owner: &str,
    ttl_ms: i64,
    round: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<Option<T>> {
    if !ledger.try_lease(name, owner, ttl_ms).await? {
        return Ok(None);
    }
    let every = Duration::from_millis((ttl_ms / 4).max(1) as u64);
    let renew = async {
        loop {
            tokio::time::sleep(every).await;
            match ledger.try_lease(name, owner, ttl_ms).await {
                Ok(true) => {}
                Ok(false) => {
                    return anyhow::anyhow!(
                        "the lease {name} was taken by another instance: the round stopped"
                    )
                }
                // The ledger could not be reached: the lease has three quarters of its time left
                // to be renewed at the next try.
                Err(e) => {
                    tracing::warn!(lease = name, error = %e, "a lease could not be renewed")
                }
            }
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
}
