//! A Stripe API emulator for offline development and tests.
//!
//! It speaks Stripe's wire protocol closely enough for Stripe's official SDKs (form bodies with
//! bracket nesting, Bearer or Basic auth with test keys, Stripe's error envelope,
//! `Idempotency-Key`, `Request-Id`, `Stripe-Account`, list pagination), keeps PaymentIntents,
//! Charges, PaymentMethods, Refunds, Disputes, Connect's accounts, transfers and application
//! fees, balance transactions (with a fee schedule by country), payouts, and Events in a SQLite
//! file, and sends signed webhook events for every state change.
//! See `docs/sandbox.md` of the repository for what it supports.
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use stripe_sandbox::{Options, Sandbox, Storage};
//! let sandbox = Sandbox::open(Options {
//!     storage: Storage::Memory,
//!     webhook: None,
//! })
//! .await?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:12111").await?;
//! axum::serve(listener, sandbox.router()).await?;
//! # Ok(()) }
//! ```
//!
//! Every request is handled under one lock, its changes written to SQLite before the lock is
//! released, so requests are atomic with respect to each other (which is also what makes
//! `Idempotency-Key` exact) and what a client was told survives a restart.

#![recursion_limit = "256"]

mod api;
mod balance;
pub mod cards;
pub mod cli;
mod clock;
mod connect;
mod control;
mod ctx;
pub mod currency;
mod error;
mod expand;
mod faults;
mod fees;
mod hosted;
mod iban;
mod lists;
mod methods;
pub mod objects;
mod onboarding;
mod pages;
pub mod params;
mod pay;
mod resources;
mod route;
mod shared;
mod store;
mod threeds;
mod timers;
pub mod trigger;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;

pub use objects::DEFAULT_API_VERSION;
use shared::Shared;
pub use store::Storage;
pub use webhooks::WebhookTarget;

/// The prefix of the sandbox's own control endpoints, which Stripe does not have.
pub const CONTROL_PREFIX: &str = "/_sandbox";

/// The environment variable that sets how long the sandbox waits before what Stripe does some
/// time after a request (a refund failing, a dispute opening, a payment finishing
/// `processing`), in milliseconds.
pub const DELAY_ENV: &str = "STRIPE_SANDBOX_DELAY_MS";

/// That wait when [`DELAY_ENV`] is not set: short, so that a person trying the sandbox sees it
/// happen, and long enough for a client to read the state before it changes.
pub const DEFAULT_DELAY: Duration = Duration::from_millis(1000);

/// [`DELAY_ENV`] if set to a number of milliseconds, else [`DEFAULT_DELAY`].
pub fn delay_from_env() -> Duration {
    std::env::var(DELAY_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_millis)
        .unwrap_or(DEFAULT_DELAY)
}

pub struct Options {
    pub storage: Storage,
    /// Where events are delivered; `None` keeps them only listable.
    pub webhook: Option<WebhookTarget>,
}

/// A running sandbox. Cloning shares the same state.
#[derive(Clone)]
pub struct Sandbox {
    shared: Arc<Shared>,
}

impl Sandbox {
    /// Opens the state (reading back a file's objects, keys and pending deliveries) and, when a
    /// webhook target is given, starts delivering: first the deliveries a previous run left
    /// pending, in order. Must be called inside a Tokio runtime.
    pub async fn open(options: Options) -> anyhow::Result<Sandbox> {
        let state = store::State::open(&options.storage).await.map_err(|e| {
            anyhow::anyhow!("cannot open the sandbox state at {}: {e}", options.storage)
        })?;
        let pending = state.store.pending_deliveries();
        let webhook_url = options.webhook.as_ref().map(|w| w.url.clone());
        let shared = Arc::new_cyclic(|weak| {
            let deliveries = options
                .webhook
                .map(|target| webhooks::start(target, weak.clone()));
            Shared::new(state, deliveries, webhook_url, delay_from_env())
        });
        // Timers a previous run left pending fire as soon as they are due (at once if overdue).
        timers::start(Arc::downgrade(&shared), shared.timer_wake.clone());
        if shared.delivers() && !pending.is_empty() {
            tracing::info!(pending = pending.len(), "resuming webhook deliveries");
            shared.enqueue(pending);
        }
        Ok(Sandbox { shared })
    }

    /// Answers every path itself: `/v1/...` as Stripe, `/_sandbox/...` for its own controls.
    pub fn router(&self) -> Router {
        Router::new()
            .fallback(api::handle)
            .with_state(self.shared.clone())
    }

    /// Only `/v1/...` and `/_sandbox/...`, for merging into another application's router, so
    /// that SDKs which take a host and port but no path prefix reach the sandbox there.
    pub fn api_routes(&self) -> Router {
        Router::new()
            .route("/v1/{*path}", axum::routing::any(api::handle))
            .route(
                &format!("{CONTROL_PREFIX}/{{*path}}"),
                axum::routing::any(api::handle),
            )
            .with_state(self.shared.clone())
    }

    /// Sets the wait before delayed transitions scheduled from now on (refunds of
    /// `pm_card_refundFail` failing, disputes of `pm_card_createDispute` opening and closing,
    /// `processing` payments succeeding), as `POST /_sandbox/timers delay_ms=…` does.
    pub fn set_delay(&self, delay: Duration) {
        self.shared
            .set_delay_ms(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX));
    }

    /// Stops (or resumes) delivering webhook events, as `POST /_sandbox/webhooks` does.
    pub fn drop_webhooks(&self, drop: bool) {
        self.shared.set_dropping(drop);
    }
}

/// Serves `sandbox` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    sandbox: Sandbox,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, sandbox.router())
        .with_graceful_shutdown(shutdown)
        .await
}
