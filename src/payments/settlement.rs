//! The settlement round (docs/contract.md §17): Stripe's balance transactions of the platform
//! (and, under direct charges, of each organiser's connected account) listed into the ledger,
//! one call per 100, from each account's saved cursor; then the automatic payouts whose
//! reconciliation Stripe has completed itemised and checked. Every call is a background call:
//! at most a fifth of the budget, and never ahead of a buyer's.

use std::collections::BTreeSet;

use serde::Serialize;

use super::reconcile::next_after;
use super::{round, Error, Payments};
use crate::ledger::{itemise, ChargeType, Cursor, PayoutRow, Progress, UnderWay, PLATFORM};
use crate::stripe::balance::BalanceTransaction;
use crate::stripe::StripeClient;

/// Listed again by every round: transactions that appear in a listing a little late.
pub const OVERLAP_SECS: i64 = 600;
/// Where an account's first listing starts.
pub const FIRST_LOOKBACK_SECS: i64 = 90 * 86_400;
/// The most payouts one round itemises.
const ITEMISE_BATCH: i64 = 50;
/// The round's name in logs and metrics.
const ROUND: &str = "settlement";

/// What a round did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct SyncReport {
    /// Accounts listed (the platform's first).
    pub accounts: usize,
    /// Connected accounts Stripe refused for good (a 4xx other than 429), to list or to itemise
    /// a payout of: left out of the round, which went on with the others. Accounts of
    /// organisers the ledger knows were disconnected are not asked for at all.
    pub accounts_left_out: usize,
    /// Listings that went on from where a stopped round left them.
    pub resumed: usize,
    /// Pages read (one Stripe call each).
    pub pages: usize,
    /// Balance transactions read.
    pub transactions: usize,
    /// Payouts itemised.
    pub payouts_itemised: usize,
    /// Of those, payouts whose items do not add up to their amount.
    pub payouts_mismatched: usize,
}

impl Payments {
    /// One round. `since` (Unix seconds) lists every account from then on as well, whatever
    /// its cursor says.
    pub async fn settle(&self, since: Option<i64>) -> Result<SyncReport, Error> {
        let mut report = SyncReport::default();
        let stripe = self.stripe.in_background();
        // Under direct charges each organiser's account holds its payments' money; an account
        // that took direct charges before a change of setting is still listed.
        let mut connected = self.ledger.direct_charge_accounts().await?;
        if self.connect.charge_type == Some(ChargeType::Direct) {
            connected.extend(self.ledger.organizer_accounts().await?);
        }
        connected.sort();
        connected.dedup();
        let accounts = std::iter::once(None).chain(connected.into_iter().map(Some));
        // The connected accounts Stripe refused this round: each is left out once.
        let mut left_out = BTreeSet::new();
        for account in accounts {
            let on_account = stripe.on_account(account.as_deref());
            match self.list_account(&on_account, since, &mut report).await {
                Ok(()) => report.accounts += 1,
                Err(e)
                    if account
                        .as_deref()
                        .is_some_and(|a| round::leaves_account_out(ROUND, a, &e)) =>
                {
                    left_out.extend(account);
                }
                Err(e) => return Err(e),
            }
        }
        self.itemise_payouts(&stripe, &mut left_out, &mut report)
            .await?;
        report.accounts_left_out = left_out.len();
        round::succeeded(
            ROUND,
            "tmt_settlement_last_success_timestamp_seconds",
            &report,
        );
        Ok(report)
    }

    /// Lists one account's transactions from its cursor (or goes on with a listing a stopped
    /// round left under way), saving its place with every page.
    async fn list_account(
        &self,
        stripe: &StripeClient,
        since: Option<i64>,
        report: &mut SyncReport,
    ) -> Result<(), Error> {
        let account = stripe.account().unwrap_or(PLATFORM);
        let now = chrono::Utc::now().timestamp();
        let cursor = self.ledger.settlement_cursor(account).await?;
        let fresh = |from: i64| UnderWay {
            from,
            after: String::new(),
            started: now,
        };
        let mut place = match (cursor, since) {
            (
                Some(Cursor {
                    under_way: Some(u), ..
                }),
                None,
            ) => {
                report.resumed += 1;
                u
            }
            (Some(c), None) => fresh(c.created_gte),
            (Some(c), Some(since)) => fresh(since.min(c.created_gte)),
            (None, since) => fresh(since.unwrap_or(now - FIRST_LOOKBACK_SECS)),
        };
        loop {
            let after = (!place.after.is_empty()).then_some(place.after.as_str());
            let page = stripe.list_balance_transactions(place.from, after).await?;
            report.pages += 1;
            let txns: Vec<BalanceTransaction> = page
                .data
                .iter()
                .filter_map(BalanceTransaction::from_value)
                .collect();
            report.transactions += txns.len();
            let progress = match next_after(&page) {
                Some(last) => {
                    place.after = last;
                    Progress::Page(place.clone())
                }
                None => Progress::Done {
                    created_gte: place.started - OVERLAP_SECS,
                },
            };
            self.ledger
                .record_balance_transactions(account, &txns, &progress)
                .await?;
            if matches!(progress, Progress::Done { .. }) {
                return Ok(());
            }
        }
    }

    /// Itemises up to [`ITEMISE_BATCH`] of the automatic payouts Stripe has finished
    /// reconciling, oldest first, and checks each. A payout of an account left out of the round
    /// (`left_out`, which grows with any refusal met here) waits, unitemised, for a round that
    /// can read it, and the round goes on past it.
    async fn itemise_payouts(
        &self,
        stripe: &StripeClient,
        left_out: &mut BTreeSet<String>,
        report: &mut SyncReport,
    ) -> Result<(), Error> {
        let mut last: Option<PayoutRow> = None;
        loop {
            let due = self
                .ledger
                .payouts_to_itemise(last.as_ref(), ITEMISE_BATCH)
                .await?;
            let Some(end) = due.last().cloned() else {
                return Ok(());
            };
            for payout in due {
                if report.payouts_itemised >= ITEMISE_BATCH as usize {
                    return Ok(());
                }
                if !left_out.contains(&payout.account) {
                    self.itemise_payout(stripe, &payout, left_out, report)
                        .await?;
                }
            }
            last = Some(end);
        }
    }

    /// Itemises `payout` and checks it; an account Stripe refuses for good joins `left_out`.
    async fn itemise_payout(
        &self,
        stripe: &StripeClient,
        payout: &PayoutRow,
        left_out: &mut BTreeSet<String>,
        report: &mut SyncReport,
    ) -> Result<(), Error> {
        let account = (!payout.account.is_empty()).then_some(payout.account.as_str());
        let on_account = stripe.on_account(account);
        let listed = async {
            let mut txns = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let page = on_account
                    .list_payout_items(&payout.id, after.as_deref())
                    .await?;
                report.pages += 1;
                txns.extend(page.data.iter().filter_map(BalanceTransaction::from_value));
                after = next_after(&page);
                if after.is_none() {
                    return Ok::<_, Error>(txns);
                }
            }
        };
        // A payout of an account Stripe no longer lets the platform read waits, unitemised,
        // for a round that can read it; the others are itemised.
        let txns = match listed.await {
            Ok(txns) => txns,
            Err(e) if round::leaves_account_out(ROUND, &payout.account, &e) => {
                left_out.insert(payout.account.clone());
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let itemised = itemise(payout, &txns);
        self.ledger
            .record_itemisation(payout, &txns, itemised)
            .await?;
        report.payouts_itemised += 1;
        if itemised.mismatch != 0 {
            report.payouts_mismatched += 1;
            metrics::counter!("tmt_payout_mismatches_total").increment(1);
            tracing::error!(
                payout_id = %payout.id,
                account_id = %payout.account,
                amount = payout.amount,
                items_sum = itemised.items_sum,
                mismatch = itemised.mismatch,
                currency = %payout.currency,
                "a payout's items do not add up to its amount"
            );
        }
        Ok(())
    }
}
