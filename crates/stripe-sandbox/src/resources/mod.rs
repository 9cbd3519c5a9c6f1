//! Stripe's resources, a module each as Stripe's API reference is organised. Each lists its
//! endpoints as [`Route`]s and the later transitions it schedules as [`Action`]s; a new
//! resource is a new module and a line in each table below that applies.

mod account_links;
pub(crate) mod accounts;
mod application_fees;
mod charges;
mod disputes;
mod events;
mod payment_intents;
pub(crate) mod payment_methods;
mod refunds;
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
    accounts::ROUTES,
    account_links::ROUTES,
    transfers::ROUTES,
    application_fees::ROUTES,
];

/// Every action the sandbox's timers run.
pub(crate) const ACTIONS: &[&[Action]] = &[
    payment_intents::ACTIONS,
    refunds::ACTIONS,
    disputes::ACTIONS,
];
