//! tmt-payments: card payments for the TMT ticket platform through Stripe PaymentIntents.
//! The contract is SPEC.md; the README says how to run it.

pub mod app;
pub mod cli;
pub mod config;
pub mod http;
pub mod ledger;
pub mod money;
pub mod payments;
pub mod stripe;
pub mod telemetry;
