//! The instance's budget of Stripe calls (docs/contract.md, "Sale day"): at most
//! `STRIPE_MAX_RPS` call starts in any one-second window, the rest waiting in arrival order for
//! up to `STRIPE_QUEUE_TIMEOUT_SECS`. A 429 from Stripe halves the rate (not below 1/s); each
//! second without one gives back a tenth of the maximum.
//!
//! Why not governor here, which the per-client create limit uses: its quota is fixed when the
//! limiter is built, and this rate moves with Stripe's 429s; rebuilding a limiter on every
//! change would forget the last start and let a burst through at each change. What is needed
//! is small: a fair (FIFO) semaphore of one permit for the order, and the time of the last
//! start for the pacing.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

/// The rate a run of 429s cannot push the budget below.
const MIN_RPS: f64 = 1.0;
/// What each second without a 429 gives back, as a share of the maximum.
const RECOVERY_PER_SEC: f64 = 0.1;
/// Starts are spaced 2 % wider than the rate asks: calls leave evenly, but the network may
/// bring two of them closer together, and Stripe counts by arrival. Measured on a sale-day
/// rush (bench/saleday.sh), exact spacing let a stand-in see 9 calls in one second at 8/s.
const PACE_MARGIN: f64 = 1.02;
/// 429s that arrive together (calls that were already in flight) are one signal, not several:
/// the rate is cut at most once per this.
const CUT_SPACING: Duration = Duration::from_secs(1);
/// Background work (the settlement round) has at most one start in this many of the budget's.
const BACKGROUND_SHARE: f64 = 5.0;
/// How often a background call that gave way to buyers' calls looks again.
const YIELD_POLL: Duration = Duration::from_millis(20);

#[derive(Debug, Clone, Copy)]
pub struct BudgetSettings {
    /// Call starts allowed per second; `None` turns the budget off (benchmarks of the service
    /// alone against a stand-in that has no limit).
    pub max_rps: Option<u32>,
    /// How long a call may wait for its turn.
    pub queue_timeout: Duration,
}

/// No turn could be had in time: how long the caller should wait before trying again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy {
    pub retry_after: Duration,
}

/// A cheap handle on one instance's budget.
#[derive(Clone)]
pub struct Budget {
    inner: Arc<Inner>,
}

struct Inner {
    max_rps: Option<f64>,
    queue_timeout: Duration,
    /// Tokio's semaphore hands out permits in the order they were asked for: holding the only
    /// permit makes a call the head of the queue.
    door: Semaphore,
    pace: Mutex<Pace>,
    waiting: AtomicUsize,
    entered: AtomicU64,
    rate_limited: AtomicU64,
}

struct Pace {
    rate: f64,
    last_start: Option<Instant>,
    /// When the rate last changed (a cut or a recovery step).
    changed_at: Instant,
    last_cut: Option<Instant>,
    /// The last start of a background call.
    last_background: Option<Instant>,
}

impl Pace {
    /// Gives back what the seconds since the last change have earned.
    fn recover(&mut self, max: f64, now: Instant) {
        if self.rate >= max {
            return;
        }
        let steps = now.saturating_duration_since(self.changed_at).as_secs();
        if steps > 0 {
            self.rate = (self.rate + steps as f64 * max * RECOVERY_PER_SEC).min(max);
            self.changed_at += Duration::from_secs(steps);
        }
    }

    fn next_start(&self, now: Instant) -> Instant {
        match self.last_start {
            Some(last) => (last + Duration::from_secs_f64(PACE_MARGIN / self.rate)).max(now),
            None => now,
        }
    }
}

impl Budget {
    pub fn new(settings: BudgetSettings) -> Self {
        let max_rps = settings.max_rps.map(|n| f64::from(n.max(1)));
        let now = Instant::now();
        if let Some(max) = max_rps {
            metrics::gauge!("tmt_stripe_budget_rps").set(max);
        }
        Budget {
            inner: Arc::new(Inner {
                max_rps,
                queue_timeout: settings.queue_timeout,
                door: Semaphore::new(1),
                pace: Mutex::new(Pace {
                    rate: max_rps.unwrap_or(f64::INFINITY),
                    last_start: None,
                    changed_at: now,
                    last_cut: None,
                    last_background: None,
                }),
                waiting: AtomicUsize::new(0),
                entered: AtomicU64::new(0),
                rate_limited: AtomicU64::new(0),
            }),
        }
    }

    pub fn queue_timeout(&self) -> Duration {
        self.inner.queue_timeout
    }

    /// The rate calls may start at now, per second (`None`: no budget).
    pub fn current_rps(&self) -> Option<f64> {
        let max = self.inner.max_rps?;
        let mut pace = self.pace();
        pace.recover(max, Instant::now());
        Some(pace.rate)
    }

    /// Calls waiting for their turn now.
    pub fn queue_length(&self) -> usize {
        self.inner.waiting.load(Ordering::SeqCst)
    }

    /// Calls that have asked for a turn since start (those admitted at once included).
    pub fn entered(&self) -> u64 {
        self.inner.entered.load(Ordering::SeqCst)
    }

    /// 429s Stripe has answered this instance with.
    pub fn rate_limited(&self) -> u64 {
        self.inner.rate_limited.load(Ordering::SeqCst)
    }

    fn pace(&self) -> std::sync::MutexGuard<'_, Pace> {
        self.inner.pace.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for this call's turn, in arrival order, until `deadline` at the latest (and never
    /// past the queue timeout). A call that cannot have a turn by then gets [`Busy`] at once
    /// when that is already plain on arrival (the queue ahead of it is too long), else at the
    /// deadline.
    pub async fn admit(&self, deadline: Instant) -> Result<(), Busy> {
        let Some(max) = self.inner.max_rps else {
            return Ok(());
        };
        let arrived = Instant::now();
        // A deadline the caller computed a moment ago still admits a call that needs no wait.
        let deadline = deadline
            .max(arrived)
            .min(arrived + self.inner.queue_timeout);
        self.inner.entered.fetch_add(1, Ordering::SeqCst);
        let ahead = self.inner.waiting.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&self.inner);
        metrics::gauge!("tmt_stripe_queue_length").set((ahead + 1) as f64);

        let expected = self.expected_wait(max, ahead, arrived);
        if arrived + expected > deadline {
            return Err(self.busy(expected));
        }
        let Ok(Ok(_head)) = tokio::time::timeout_at(deadline, self.inner.door.acquire()).await
        else {
            let ahead = self.queue_length().saturating_sub(1);
            return Err(self.busy(self.expected_wait(max, ahead, Instant::now())));
        };
        // The head waits for the pace; a cut made meanwhile pushes its start further out.
        loop {
            let now = Instant::now();
            let start = {
                let mut pace = self.pace();
                pace.recover(max, now);
                let start = pace.next_start(now);
                if start <= now {
                    pace.last_start = Some(now);
                    metrics::gauge!("tmt_stripe_budget_rps").set(pace.rate);
                    break;
                }
                start
            };
            if start > deadline {
                return Err(self.busy(start.saturating_duration_since(now)));
            }
            tokio::time::sleep_until(start).await;
        }
        metrics::histogram!("tmt_stripe_queue_wait_seconds")
            .record(arrived.elapsed().as_secs_f64());
        Ok(())
    }

    /// Waits for a background call's turn (docs/contract.md §17): never while a buyer's call is
    /// waiting for its own, and at most a fifth of the current rate, so that the starts it takes
    /// are a share of the budget, never more. It does not queue with buyers' calls and has no
    /// deadline: background work can wait.
    pub async fn admit_background(&self) {
        let Some(max) = self.inner.max_rps else {
            return;
        };
        loop {
            let now = Instant::now();
            let wait = {
                let mut pace = self.pace();
                pace.recover(max, now);
                if self.queue_length() > 0 {
                    YIELD_POLL
                } else {
                    let share = Duration::from_secs_f64(PACE_MARGIN * BACKGROUND_SHARE / pace.rate);
                    let own = pace.last_background.map_or(now, |last| last + share);
                    let start = pace.next_start(now).max(own);
                    if start <= now {
                        pace.last_start = Some(now);
                        pace.last_background = Some(now);
                        break;
                    }
                    start.saturating_duration_since(now).min(YIELD_POLL)
                }
            };
            tokio::time::sleep(wait).await;
        }
        metrics::counter!("tmt_stripe_background_calls_total").increment(1);
    }

    /// A call asking now would be refused: for a use case to shed a request before doing any
    /// work of its own (a create claims its Idempotency-Key in the ledger, which costs a
    /// write, before it calls Stripe).
    pub fn refuses_now(&self) -> Option<Busy> {
        let max = self.inner.max_rps?;
        let now = Instant::now();
        let expected = self.expected_wait(max, self.queue_length(), now);
        (expected > self.inner.queue_timeout).then(|| self.busy(expected))
    }

    /// How long a call with `ahead` calls before it would wait at the current rate.
    fn expected_wait(&self, max: f64, ahead: usize, now: Instant) -> Duration {
        let mut pace = self.pace();
        pace.recover(max, now);
        let head = pace.next_start(now).saturating_duration_since(now);
        head + Duration::from_secs_f64(ahead as f64 / pace.rate)
    }

    /// `wait` is what the refused call would have waited: by then the calls ahead of it have
    /// had their turns. Anything shorter brings every refused buyer back while the queue is
    /// still full (a sale-day rush measured about 36 refusals per buyer when told "1 s").
    fn busy(&self, wait: Duration) -> Busy {
        metrics::counter!("tmt_stripe_busy_total").increment(1);
        // Whole seconds, as Retry-After counts them; never "0", which invites an instant retry.
        let secs = wait.as_secs_f64().ceil().clamp(1.0, 60.0);
        Busy {
            retry_after: Duration::from_secs(secs as u64),
        }
    }

    /// Stripe answered 429: the rate is halved, unless it was cut less than a second ago (the
    /// other 429s of calls already in flight say the same thing).
    pub fn note_rate_limited(&self) {
        self.inner.rate_limited.fetch_add(1, Ordering::SeqCst);
        metrics::counter!("tmt_stripe_rate_limited_total").increment(1);
        let Some(max) = self.inner.max_rps else {
            return;
        };
        let now = Instant::now();
        let mut pace = self.pace();
        pace.recover(max, now);
        if pace
            .last_cut
            .is_some_and(|at| now.saturating_duration_since(at) < CUT_SPACING)
        {
            return;
        }
        pace.rate = (pace.rate / 2.0).max(MIN_RPS);
        pace.changed_at = now;
        pace.last_cut = Some(now);
        metrics::gauge!("tmt_stripe_budget_rps").set(pace.rate);
        tracing::warn!(
            rate = pace.rate,
            "Stripe answered 429: Stripe call budget lowered"
        );
    }
}

/// Leaves the queue however the wait ends (a turn, a timeout, or a caller that went away).
struct Waiting<'a>(&'a Inner);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let left = self.0.waiting.fetch_sub(1, Ordering::SeqCst) - 1;
        metrics::gauge!("tmt_stripe_queue_length").set(left as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(rps: u32, queue_secs: u64) -> Budget {
        Budget::new(BudgetSettings {
            max_rps: Some(rps),
            queue_timeout: Duration::from_secs(queue_secs),
        })
    }

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(3600)
    }

    /// The largest number of starts inside any half-open window of one second.
    fn busiest_second(starts: &[Instant]) -> usize {
        starts
            .iter()
            .map(|from| {
                starts
                    .iter()
                    .filter(|t| **t >= *from && **t < *from + Duration::from_secs(1))
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    #[tokio::test(start_paused = true)]
    async fn turns_come_in_arrival_order_and_never_above_the_rate() {
        let b = budget(5, 60);
        let starts = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..23 {
            let (b2, starts) = (b.clone(), starts.clone());
            tasks.push(tokio::spawn(async move {
                b2.admit(far()).await.unwrap();
                starts.lock().unwrap().push((i, Instant::now()));
            }));
            // The next call is only made once this one has asked for its turn.
            while b.entered() < i + 1 {
                tokio::task::yield_now().await;
            }
        }
        for t in tasks {
            t.await.unwrap();
        }
        let starts = starts.lock().unwrap().clone();
        let order: Vec<u64> = starts.iter().map(|(i, _)| *i).collect();
        assert_eq!(order, (0..23).collect::<Vec<_>>());
        let times: Vec<Instant> = starts.iter().map(|(_, t)| *t).collect();
        assert_eq!(busiest_second(&times), 5);
        assert_eq!(b.queue_length(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_queue_longer_than_the_timeout_is_refused_at_once() {
        let b = budget(2, 1);
        b.admit(far()).await.unwrap();
        // One turn about every 500 ms: one more fits within a second, the next does not.
        let queued: Vec<_> = (0..1)
            .map(|_| {
                let b = b.clone();
                tokio::spawn(async move { b.admit(far()).await })
            })
            .collect();
        while b.entered() < 2 {
            tokio::task::yield_now().await;
        }
        let before = Instant::now();
        let refused = b.admit(far()).await.unwrap_err();
        assert_eq!(Instant::now(), before, "refused without waiting");
        assert!(refused.retry_after >= Duration::from_secs(1));
        for q in queued {
            q.await.unwrap().unwrap();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_halves_the_rate_once_and_seconds_without_one_restore_it() {
        let b = budget(20, 10);
        b.note_rate_limited();
        b.note_rate_limited();
        assert_eq!(b.current_rps(), Some(10.0), "in-flight 429s are one signal");
        assert_eq!(b.rate_limited(), 2);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(b.current_rps(), Some(12.0));
        b.note_rate_limited();
        assert_eq!(b.current_rps(), Some(6.0));
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(b.current_rps(), Some(20.0), "never above the maximum");
    }

    #[tokio::test(start_paused = true)]
    async fn cuts_stop_at_one_call_a_second() {
        let b = budget(2, 10);
        for _ in 0..4 {
            b.note_rate_limited();
            assert_eq!(b.current_rps(), Some(1.0));
            tokio::time::advance(Duration::from_secs(1)).await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_halved_rate_spaces_starts_twice_as_far() {
        let b = budget(10, 60);
        b.note_rate_limited();
        let mut starts = Vec::new();
        for _ in 0..6 {
            b.admit(far()).await.unwrap();
            starts.push(Instant::now());
        }
        // Within the first second after the cut: 5/s, so 5 starts in the busiest second.
        assert_eq!(busiest_second(&starts[..5]), 5);
        assert!(starts[1] - starts[0] >= Duration::from_millis(200));
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_queue_a_call_after_the_pace_is_admitted() {
        let b = budget(1, 0);
        assert_eq!(b.refuses_now(), None);
        b.admit(far()).await.unwrap();
        assert!(b.refuses_now().is_some());
        assert!(b.admit(far()).await.is_err());
        tokio::time::advance(Duration::from_millis(1100)).await;
        b.admit(far()).await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn background_calls_take_a_fifth_of_the_rate() {
        let b = budget(10, 60);
        let mut starts = Vec::new();
        for _ in 0..8 {
            b.admit_background().await;
            starts.push(Instant::now());
        }
        assert_eq!(busiest_second(&starts), 2, "a fifth of 10/s");
        // The buyers' share is untouched: 8 of them fit in the next second beside the work.
        let before = Instant::now();
        for _ in 0..8 {
            b.admit(far()).await.unwrap();
        }
        assert!(Instant::now() - before < Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn background_calls_wait_while_a_buyer_waits() {
        let b = budget(1, 60);
        b.admit(far()).await.unwrap();
        // A buyer waits about a second for the pace; background work arrives after it and
        // must start after it, although it asked while the buyer was still waiting.
        let buyer = {
            let b = b.clone();
            tokio::spawn(async move {
                b.admit(far()).await.unwrap();
                Instant::now()
            })
        };
        while b.entered() < 2 {
            tokio::task::yield_now().await;
        }
        let background = {
            let b = b.clone();
            tokio::spawn(async move {
                b.admit_background().await;
                Instant::now()
            })
        };
        let (buyer, background) = (buyer.await.unwrap(), background.await.unwrap());
        assert!(background > buyer, "the buyer went first");
    }

    #[tokio::test(start_paused = true)]
    async fn no_budget_admits_everything_at_once() {
        let b = Budget::new(BudgetSettings {
            max_rps: None,
            queue_timeout: Duration::from_secs(0),
        });
        let before = Instant::now();
        for _ in 0..1000 {
            b.admit(before).await.unwrap();
        }
        assert_eq!(Instant::now(), before);
        assert_eq!(b.current_rps(), None);
    }
}
