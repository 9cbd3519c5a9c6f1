//! The thin Stripe client: four calls, lenient reads, Stripe's retry rules.

pub mod balance;
pub mod budget;
pub mod client;
pub mod connect;
pub mod customers;
pub mod form;
pub mod next_action;
pub mod signature;
pub mod types;

pub use budget::{Budget, BudgetSettings};
pub use client::{ClientSettings, StripeClient, StripeError};
pub use types::{PaymentIntent, PaymentIntentId};
