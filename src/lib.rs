//! tmt-payments: card payments for the TMT ticket platform through Stripe PaymentIntents.
//! The contract as built is docs/contract.md; the README says how to run and operate it.

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
mod text;
mod tokens;
pub mod web;
pub mod workers;
