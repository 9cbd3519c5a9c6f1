//! tmt-payments: card payments for the TMT ticket platform through Stripe PaymentIntents.
//! The contract is SPEC.md; the README says how to run it.

#![recursion_limit = "256"]

pub mod app;
pub mod canonical;
pub mod cli;
pub mod config;
pub mod http;
pub mod ledger;
pub mod money;
pub mod payments;
pub mod prometheus;
pub mod stripe;
pub mod telemetry;
