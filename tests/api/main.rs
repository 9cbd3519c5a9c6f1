//! The service through its HTTP surface and its binary: one test crate, a module per area, the
//! shared helpers in `helpers` (read its module doc before adding a test). Tests that need a
//! peer from outside the repository (PostgreSQL, root for a tmpfs, the Python peers) are
//! `#[ignore]`d with that need as the reason; `scripts/test.sh` runs them (`--include-ignored`).

mod helpers;

mod accounting;
mod after_the_fact;
mod browser;
mod cli;
mod connect;
mod connections;
mod corrupt;
mod crash;
mod create;
mod delayed;
mod http_surface;
mod idempotency;
mod instances;
mod layers;
mod ledger_faults;
mod lifecycle;
mod metrics;
mod money_flows;
mod operations;
mod outage;
mod peers;
mod read;
mod refunds;
mod saleday;
mod sandbox;
mod schema;
mod schemathesis;
mod web;
mod webhook;
