//! Refunding a whole event (docs/contract.md §9): every succeeded payment whose metadata has
//! the given `KEY=VALUE` pairs is refunded what is left of it, by a job kept in the ledger.
//!
//! Exactly once, whatever happens: each payment's refund goes to Stripe under a key derived
//! from the job, the payment and the number of refusals so far, and under the reservation that
//! key derives, which fixes the amount at the first try. A run killed at any point is resumed by
//! the next: a refund Stripe made but the ledger did not record is replayed by Stripe and
//! recorded then. A refusal leaves the payment pending (`balance_insufficient`) or failed, and
//! the next run tries both again, as a new request. A 429 slows the job down; nothing stops it
//! but the caller.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::Serialize;

use super::idempotent::derived_key;
use super::refunds::refund_at_stripe;
use super::request::{RefundReason, RefundRequest};
use super::{Error, Payments, StripeRefusal};
use crate::ledger::{ItemState, Job, JobItem};
use crate::money::Major;
use crate::stripe::client::ApiRefusal;
use crate::stripe::types::PaymentIntentId;

/// The metadata that names the job on every refund it makes.
const JOB_KEY: &str = "tmt_job";

/// `KEY=VALUE` pairs, in a canonical order, and the organiser the payments were made for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector(Vec<(String, String)>, Option<String>);

impl Selector {
    /// The payments made for `organizer` (Stripe Connect), among those `self` selects.
    pub fn of_organizer(self, organizer: String) -> Selector {
        Selector(self.0, Some(organizer))
    }

    /// Every payment (before `of_organizer` narrows them).
    pub fn every() -> Selector {
        Selector(Vec::new(), None)
    }

    /// From `KEY=VALUE` arguments; `None` names the first that is not one.
    pub fn parse(args: &[String]) -> Result<Selector, String> {
        let mut pairs = Vec::new();
        for arg in args {
            match arg.split_once('=') {
                Some((k, v)) if !k.is_empty() && !v.is_empty() => {
                    pairs.push((k.to_string(), v.to_string()))
                }
                _ => return Err(arg.clone()),
            }
        }
        if pairs.is_empty() {
            return Err(String::new());
        }
        pairs.sort();
        pairs.dedup();
        Ok(Selector(pairs, None))
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    pub fn organizer(&self) -> Option<&str> {
        self.1.as_deref()
    }

    /// The selector as jobs keep it: `organizer:ID` first when there is one (an organiser id
    /// holds no `=`, so it can never read as a pair), then the pairs.
    pub fn text(&self) -> String {
        let organizer = self.1.iter().map(|id| format!("organizer:{id}"));
        let pairs = self.0.iter().map(|(k, v)| format!("{k}={v}"));
        organizer.chain(pairs).collect::<Vec<_>>().join(",")
    }
}

/// A job as it stands: its items and what they add up to.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub job: Job,
    /// Whether this run took up an earlier, unfinished job.
    pub resumed: bool,
    pub items: Vec<JobItem>,
    pub totals: Vec<CurrencyTotal>,
    pub counts: Counts,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    pub refunded: usize,
    pub skipped: usize,
    /// Skipped because their method cannot be refunded (OXXO), reported apart.
    pub not_supported: usize,
    pub pending: usize,
    pub failed: usize,
}

/// Refunded per currency, in major units.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CurrencyTotal {
    pub currency: String,
    pub refunded: Major,
    pub payments: usize,
}

impl CurrencyTotal {
    /// The totals of `(currency, minor units)`, one a payment, by currency in its order.
    fn sum(amounts: impl Iterator<Item = (String, i64)>) -> Vec<CurrencyTotal> {
        let mut totals: BTreeMap<String, (i64, usize)> = BTreeMap::new();
        for (currency, minor) in amounts {
            let total = totals.entry(currency).or_default();
            total.0 += minor;
            total.1 += 1;
        }
        totals
            .into_iter()
            .map(|(currency, (minor, payments))| CurrencyTotal {
                refunded: Major::of(minor, &currency),
                currency,
                payments,
            })
            .collect()
    }
}

impl Report {
    fn of(job: Job, resumed: bool, items: Vec<JobItem>) -> Report {
        let mut counts = Counts::default();
        for item in &items {
            match item.state {
                ItemState::Refunded => counts.refunded += 1,
                ItemState::Skipped if item.error.as_deref() == Some(NOT_SUPPORTED) => {
                    counts.not_supported += 1
                }
                ItemState::Skipped => counts.skipped += 1,
                ItemState::Pending => counts.pending += 1,
                ItemState::Failed => counts.failed += 1,
            }
        }
        let refunded = items
            .iter()
            .filter(|item| item.state == ItemState::Refunded)
            .map(|item| (item.currency.clone(), item.amount.unwrap_or(0)));
        Report {
            job,
            resumed,
            totals: CurrencyTotal::sum(refunded),
            items,
            counts,
        }
    }

    /// Every payment ended refunded or skipped.
    pub fn complete(&self) -> bool {
        self.counts.pending == 0 && self.counts.failed == 0
    }
}

/// What a dry run would do: each payment and what is left of it, minor units.
#[derive(Debug, Clone, Serialize)]
pub struct Preview {
    /// The unfinished job a real run would resume, if any.
    pub resumes: Option<Job>,
    pub payments: Vec<PreviewItem>,
    pub totals: Vec<CurrencyTotal>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PreviewItem {
    pub payment_intent_id: String,
    pub currency: String,
    /// Left to refund, minor units, as the ledger knows it.
    pub remaining: i64,
}

/// How long the job waits after Stripe's 429 at first, and at most.
const FIRST_PAUSE: Duration = Duration::from_millis(500);
const LONGEST_PAUSE: Duration = Duration::from_secs(30);

impl Payments {
    /// What a run would refund, without changing anything.
    pub async fn bulk_preview(&self, selector: &Selector) -> Result<Preview, Error> {
        let resumes = self.ledger.unfinished_job(&selector.text()).await?;
        let mut payments = Vec::new();
        for payment in self
            .ledger
            .succeeded_payments_with(selector.pairs(), selector.organizer())
            .await?
        {
            let remaining = self.ledger.refundable(&payment.id).await?;
            payments.push(PreviewItem {
                payment_intent_id: payment.id,
                currency: payment.currency,
                remaining,
            });
        }
        let left = payments
            .iter()
            .filter(|p| p.remaining > 0)
            .map(|p| (p.currency.clone(), p.remaining));
        Ok(Preview {
            resumes,
            totals: CurrencyTotal::sum(left),
            payments,
        })
    }

    /// The job for `selector`: the unfinished one (unless `new_job`), or a new one; either way
    /// it covers every matching succeeded payment, those that succeeded since included.
    pub async fn bulk_job(
        &self,
        selector: &Selector,
        reason: RefundReason,
        new_job: bool,
    ) -> Result<(Job, bool), Error> {
        self.ledger.ensure_writable().await?;
        let existing = match new_job {
            true => None,
            false => self.ledger.unfinished_job(&selector.text()).await?,
        };
        let resumed = existing.is_some();
        let job = match existing {
            Some(job) => job,
            None => {
                self.ledger
                    .create_job(&selector.text(), reason.as_str())
                    .await?
            }
        };
        let payments = self
            .ledger
            .succeeded_payments_with(selector.pairs(), selector.organizer())
            .await?;
        self.ledger.add_job_items(&job.id, &payments).await?;
        Ok((job, resumed))
    }

    /// Works through the job's payments that are not done (pending, and failed ones, which a
    /// new run tries again as a new request), one at a time, calling `progress` after each;
    /// stops early when `stop` is set (Ctrl-C). The report says where everything stands.
    pub async fn bulk_run(
        &self,
        job: Job,
        resumed: bool,
        stop: &AtomicBool,
        mut progress: impl FnMut(&JobItem, &[JobItem]),
    ) -> Result<Report, Error> {
        let reason = RefundReason::parse(&job.reason).unwrap_or(RefundReason::EventCanceled);
        let mut items = self.ledger.job_items(&job.id).await?;
        let mut pause = Duration::ZERO;
        for i in 0..items.len() {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            if !items[i].state.to_try() {
                continue;
            }
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            let item = loop {
                match self.bulk_refund_one(&job, reason, &items[i]).await {
                    Attempt::Done(item) => {
                        pause /= 2;
                        break item;
                    }
                    Attempt::RateLimited => {
                        pause = (pause * 2).clamp(FIRST_PAUSE, LONGEST_PAUSE);
                        tracing::warn!(
                            pause_ms = pause.as_millis() as u64,
                            "Stripe answered 429; slowing down"
                        );
                        tokio::time::sleep(pause).await;
                        if stop.load(Ordering::Relaxed) {
                            break items[i].clone();
                        }
                    }
                    Attempt::Fatal(e) => return Err(e),
                }
            };
            self.ledger.update_job_item(&job.id, &item).await?;
            items[i] = item;
            progress(&items[i], &items);
        }
        let mut report = Report::of(job, resumed, items);
        if report.complete() {
            self.ledger.finish_job(&report.job.id).await?;
            report.job.finished_at = Some(crate::ledger::now_iso());
        }
        Ok(report)
    }

    async fn bulk_refund_one(&self, job: &Job, reason: RefundReason, item: &JobItem) -> Attempt {
        let Some(id) = PaymentIntentId::parse(&item.payment_intent_id) else {
            return Attempt::Done(JobItem {
                state: ItemState::Failed,
                error: Some("not a PaymentIntent id".into()),
                ..item.clone()
            });
        };
        let request = RefundRequest {
            payment_intent_id: id,
            amount: None,
            reason: Some(reason),
            metadata: vec![(JOB_KEY.to_string(), job.id.clone())],
            service_reason: None,
            refund_application_fee: None,
            reverse_transfer: None,
        };
        let key = bulk_stripe_key(&job.id, &item.payment_intent_id, item.attempts);
        let outcome =
            refund_at_stripe(&self.stripe, &self.ledger, &self.connect, &request, &key).await;
        let mut next = item.clone();
        match outcome {
            Ok(done) => {
                next.state = ItemState::Refunded;
                next.amount = Some(done.refund.amount);
                next.refund_id = Some(done.refund.id);
                next.error = None;
            }
            Err(Error::RefundExceedsRemaining { .. }) => {
                next.state = ItemState::Skipped;
                next.error = None;
            }
            // Nothing can be done about it: the buyer paid cash at a store.
            Err(Error::RefundNotSupported) => {
                next.state = ItemState::Skipped;
                next.error = Some(NOT_SUPPORTED.into());
            }
            Err(Error::PaymentNotRefundable(status)) => {
                next.state = ItemState::Failed;
                next.error = Some(format!("the payment is {status}"));
            }
            // A balance that cannot cover it may be topped up before the next run.
            Err(Error::Refused(refusal, said)) => refused(
                &mut next,
                &said,
                refusal == StripeRefusal::BalanceInsufficient,
            ),
            Err(Error::StripeBusy { .. }) => return Attempt::RateLimited,
            Err(Error::StripeRefused(said)) if said.status == 429 => return Attempt::RateLimited,
            Err(Error::StripeRefused(said)) => refused(&mut next, &said, false),
            // No answer: the same request again next time, which Stripe replays if it got it.
            Err(e @ (Error::StripeUnreachable { .. } | Error::StripeUnreadable { .. })) => {
                next.error = Some(e.to_string());
            }
            Err(e) if e.is_ledger_fault() => return Attempt::Fatal(e),
            Err(other) => {
                next.state = ItemState::Failed;
                next.error = Some(other.to_string());
            }
        }
        Attempt::Done(next)
    }
}

/// Stripe refused `item`'s refund: nothing happened, and the next try is a new request. It is
/// `pending` when the refusal may pass by itself, `failed` otherwise, with Stripe's message.
fn refused(item: &mut JobItem, said: &ApiRefusal, may_pass: bool) {
    item.attempts += 1;
    item.error = Some(match &said.message {
        Some(message) => message.clone(),
        None => said.to_string(),
    });
    item.state = match may_pass {
        true => ItemState::Pending,
        false => ItemState::Failed,
    };
}

/// What a payment skipped because its method cannot be refunded (OXXO) says.
const NOT_SUPPORTED: &str = "refund_not_supported: OXXO payments cannot be refunded";

enum Attempt {
    Done(JobItem),
    RateLimited,
    Fatal(Error),
}

/// The Stripe-side key of a job's refund of one payment, at its `attempts`-th try.
fn bulk_stripe_key(job_id: &str, payment_intent_id: &str, attempts: i64) -> String {
    derived_key(&[
        b"bulk",
        job_id.as_bytes(),
        payment_intent_id.as_bytes(),
        &attempts.to_be_bytes(),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors() {
        let s =
            Selector::parse(&["event=E2".into(), "city=Lima".into(), "event=E2".into()]).unwrap();
        assert_eq!(s.text(), "city=Lima,event=E2");
        assert_eq!(Selector::parse(&["event".into()]), Err("event".into()));
        assert_eq!(Selector::parse(&["=x".into()]), Err("=x".into()));
        assert_eq!(Selector::parse(&[]), Err(String::new()));
        // A value may hold '='.
        assert_eq!(
            Selector::parse(&["k=a=b".into()]).unwrap().pairs(),
            &[("k".to_string(), "a=b".to_string())]
        );
        // An organiser's payments, alone or with metadata.
        assert_eq!(
            Selector::every().of_organizer("org_1".into()).text(),
            "organizer:org_1"
        );
        assert_eq!(
            s.of_organizer("org_1".into()).text(),
            "organizer:org_1,city=Lima,event=E2"
        );
    }

    #[test]
    fn keys_change_only_with_a_new_try() {
        let a = bulk_stripe_key("job_1", "pi_1", 0);
        assert_eq!(a, bulk_stripe_key("job_1", "pi_1", 0));
        assert_ne!(a, bulk_stripe_key("job_1", "pi_1", 1));
        assert_ne!(a, bulk_stripe_key("job_2", "pi_1", 0));
        assert_ne!(a, bulk_stripe_key("job_1", "pi_2", 0));
        // As derived since the first release: a resumed job must meet its own refunds again.
        assert_eq!(
            bulk_stripe_key("job_1", "pi_1", 2),
            "tmt-9792eaa1720b611d9e1c6c801b9367ed5d18cfbd7088cacf"
        );
    }
}
