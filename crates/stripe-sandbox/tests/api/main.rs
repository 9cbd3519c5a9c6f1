//! The sandbox through its HTTP surface: one test crate, a module per area. The modules in
//! `peers` need Stripe's official SDKs (installed by `scripts/test.sh`) and are `#[ignore]`d
//! so that a plain `cargo test` says it did not run them.

mod balance;
mod bank_transfers;
mod cards;
mod connect;
mod connect_delayed;
mod faults;
mod helpers;
mod inputs;
mod lists;
mod money;
mod openapi;
mod oxxo;
mod peers;
mod persistence;
mod sepa;
mod trigger;
mod webhooks;
mod wire;
