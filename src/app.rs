//! Building and running the service: one `Application` used by `main` and by the tests.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::config::Config;
use crate::http::{self, AppState};
use crate::ledger::Ledger;
use crate::payments::{Payments, WebhookSettings};
use crate::stripe::{ClientSettings, StripeClient};

pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    ledger: Ledger,
}

impl Application {
    /// Opens and migrates the ledger, builds the Stripe client and binds the listener (port 0
    /// picks a free port; [`Application::port`] tells which).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let ledger = Ledger::connect(&config.database_url, config.database_max_connections).await?;
        ledger.migrate().await?;
        let stripe = StripeClient::new(ClientSettings {
            api_base: config.stripe_api_base.clone(),
            secret_key: config.stripe_secret_key.clone(),
            api_version: config.stripe_api_version.clone(),
            max_retries: config.stripe_max_retries,
            timeout: config.stripe_timeout,
            initial_retry_delay: config.stripe_initial_retry_delay,
        })?;
        if config.stripe_webhook_secrets.is_empty() {
            tracing::warn!(
                "STRIPE_WEBHOOK_SECRET is not set: /stripe_webhook answers 503 until it is"
            );
        }
        let payments = Payments {
            stripe,
            ledger: ledger.clone(),
            webhook: WebhookSettings {
                secrets: config.stripe_webhook_secrets.clone(),
                tolerance_secs: config.webhook_tolerance_secs,
            },
        };
        let state = AppState {
            payments: Arc::new(payments),
            cors: Arc::new(config.cors.clone()),
        };
        let listener = TcpListener::bind(SocketAddr::new(config.bind, config.port)).await?;
        tracing::info!(
            address = %listener.local_addr()?,
            stripe_api_base = %config.stripe_api_base,
            stripe_api_version = %config.stripe_api_version,
            live = is_live(&config),
            "tmt-payments listening"
        );
        Ok(Self {
            listener,
            router: http::router(state),
            ledger,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Serves until `shutdown` resolves, then finishes in-flight requests and closes the pool.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let result = axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await;
        self.ledger.close().await;
        result
    }
}

fn is_live(config: &Config) -> bool {
    use secrecy::ExposeSecret;
    let key = config.stripe_secret_key.expose_secret();
    key.starts_with("sk_live_") || key.starts_with("rk_live_")
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
