//! Stripe's resources, a module each as Stripe's API reference is organised. Each lists its
//! endpoints as [`Route`]s and the later transitions it schedules as [`Action`]s; a new
//! resource is a new module and a line in each table below that applies. The payment methods
//! whose money comes after the request (OXXO vouchers, bank transfers, SEPA debits) have a
//! module each too, with the controls that stand for the buyer.

mod account_links;
pub(crate) mod accounts;
mod application_fees;
mod balance;
mod balance_transactions;
mod bank_transfers;
mod cash_balance;
mod charges;
mod customers;
mod disputes;
mod events;
mod oxxo;
mod payment_intents;
pub(crate) mod payment_methods;
mod payouts;
mod refunds;
mod sepa_debit;
mod transfers;

use crate::route::{Action, Route};

/// Every endpoint of Stripe's that the sandbox answers.
pub(crate) const ROUTES: &[&[Route]] = &[
    payment_intents::ROUTES,
    payment_methods::ROUTES,
    charges::ROUTES,
    refunds::ROUTES,
    disputes::ROUTES,
    events::ROUTES,
    customers::ROUTES,
    cash_balance::ROUTES,
    oxxo::ROUTES,
    accounts::ROUTES,
    account_links::ROUTES,
    transfers::ROUTES,
    application_fees::ROUTES,
    balance::ROUTES,
    balance_transactions::ROUTES,
    payouts::ROUTES,
];

/// Every action the sandbox's timers run.
pub(crate) const ACTIONS: &[&[Action]] = &[
    payment_intents::ACTIONS,
    refunds::ACTIONS,
    disputes::ACTIONS,
    oxxo::ACTIONS,
    sepa_debit::ACTIONS,
    payouts::ACTIONS,
];
