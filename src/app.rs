//! Building and running the service: one `Application` used by `main` and by the tests.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpListener;

use crate::config::Config;
use crate::http::access::Access;
use crate::http::bodies::BodyLimits;
use crate::http::server::ConnectionLimits;
use crate::http::{self, AppState};
use crate::ledger::{EventWriter, Ledger, Outbox};
use crate::payments::{Payments, WebhookSettings};
use crate::stripe::client::SANDBOX_SECRET_KEY;
use crate::stripe::{Budget, StripeClient};
use crate::workers;
use crate::workers::notifier::Fulfilment;
use stripe_sandbox::{Sandbox, Storage, WebhookTarget};

pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    /// The path of every route the router has.
    paths: Vec<String>,
    ledger: Ledger,
    access: Arc<Access>,
    connections: ConnectionLimits,
    workers: Workers,
    budget: Budget,
}

/// What runs in the background beside the HTTP surface.
struct Workers {
    context: workers::Context,
    fulfilment: Option<Fulfilment>,
    reconcile_interval: Option<std::time::Duration>,
    settlement_interval: Option<std::time::Duration>,
    /// Whether Connect is on (its worker runs).
    connect: bool,
}

impl Workers {
    fn start(self) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = Vec::new();
        let ctx = self.context.clone();
        tasks.push(tokio::spawn(workers::every(
            "holds",
            workers::HOLD_CHECK,
            move || {
                let ctx = ctx.clone();
                async move { workers::holds::round(&ctx).await }
            },
        )));
        if self.connect {
            let ctx = self.context.clone();
            tasks.push(tokio::spawn(workers::every(
                "connect",
                workers::CONNECT_CHECK,
                move || {
                    let ctx = ctx.clone();
                    async move { workers::connect::round(&ctx).await }
                },
            )));
        }
        if let Some(interval) = self.reconcile_interval {
            let ctx = self.context.clone();
            tasks.push(tokio::spawn(workers::every(
                "reconcile",
                interval,
                move || {
                    let ctx = ctx.clone();
                    async move { workers::reconcile::round(&ctx, interval).await }
                },
            )));
        }
        if let Some(interval) = self.settlement_interval {
            let ctx = self.context.clone();
            tasks.push(tokio::spawn(workers::every(
                "settlement",
                interval,
                move || {
                    let ctx = ctx.clone();
                    async move { workers::settlement::round(&ctx, interval).await }
                },
            )));
        }
        if let Some(target) = self.fulfilment {
            let ledger = self.context.payments.ledger.clone();
            match workers::notifier::Notifier::new(ledger, target, self.context.instance) {
                Ok(notifier) => tasks.push(tokio::spawn(notifier.run())),
                Err(e) => tracing::error!(error = %e, "cannot start the notifier"),
            }
        }
        tasks
    }
}

/// The address this machine reaches a listener on, for a listener bound to `bind`.
fn loopback_for(bind: IpAddr) -> IpAddr {
    match bind {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        other => other,
    }
}

impl Application {
    /// Binds the listener (port 0 picks a free port; [`Application::port`] tells which), opens
    /// and migrates the ledger, and builds the Stripe client. Without a secret key the embedded
    /// sandbox answers at `/sandbox/...`, and at `/v1/...` and `/_sandbox/...` for SDKs that take
    /// no path prefix, on the same listener; the client talks to it over loopback HTTP, exactly
    /// as it would talk to Stripe. Its state is a SQLite file beside the ledger's.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.listen).await?;
        let local = listener.local_addr()?;
        let outbox = Outbox {
            enabled: config.fulfilment.is_some(),
            late: config.late_payment_policy,
        };
        let ledger = Ledger::connect(&config.database_url, config.database_pool)
            .await?
            .with_outbox(outbox);
        ledger.migrate().await?;
        ledger.save_outbox(outbox).await?;

        let (api_base, secret_key, webhook, sandbox) = match &config.stripe.secret_key {
            Some(key) => (
                config.stripe.api_base.clone(),
                key.clone(),
                config.stripe.webhook.clone(),
                None,
            ),
            None => {
                let origin = format!(
                    "http://{}",
                    SocketAddr::new(loopback_for(config.listen.ip()), local.port())
                );
                let secret = match config.stripe.webhook.secrets.first() {
                    Some(s) => s.expose_secret().to_string(),
                    None => format!("whsec_{}", random_alnum(32)),
                };
                let sandbox = Sandbox::open(stripe_sandbox::Options {
                    storage: sandbox_state_beside(&config.database_url),
                    webhook: Some(WebhookTarget::new(
                        format!("{origin}/stripe_webhook"),
                        secret.clone(),
                    )),
                })
                .await?;
                (
                    format!("{origin}/sandbox"),
                    // The same key on every start: the sandbox keeps idempotency keys per API
                    // key across restarts.
                    SecretString::from(SANDBOX_SECRET_KEY.to_string()),
                    WebhookSettings {
                        secrets: vec![SecretString::from(secret)],
                        tolerance_secs: config.stripe.webhook.tolerance_secs,
                    },
                    Some(sandbox),
                )
            }
        };
        let stripe = StripeClient::new(config.stripe.client(api_base.clone(), secret_key.clone()))?;
        let budget = stripe.budget().clone();
        let connect = Arc::new(config.connect.clone());
        let payments = Payments {
            stripe,
            events: EventWriter::start(ledger.clone()),
            ledger: ledger.clone(),
            webhook,
            idempotency_stale: config.idempotency_stale,
            connect: connect.clone(),
            delayed: Arc::new(config.delayed.clone()),
        };
        let access = Arc::new(Access::new(&config.access));
        if !access.tokens_required() {
            let open = http::open_without_tokens().join(", ");
            tracing::warn!(
                "API_TOKENS is not set: {open} and the dashboard answer anyone who can reach them"
            );
        }
        let payments = Arc::new(payments);
        let workers = Workers {
            context: workers::Context {
                payments: payments.clone(),
                instance: workers::instance_id(),
            },
            fulfilment: config.fulfilment.clone(),
            reconcile_interval: config.reconcile_interval,
            settlement_interval: config.settlement_interval,
            connect: config.connect.charge_type.is_some(),
        };
        let state = AppState {
            payments,
            cors: Arc::new(config.cors.clone()),
            access: access.clone(),
            stripe_mode: if sandbox.is_some() {
                "sandbox"
            } else {
                "configured"
            },
        };
        crate::prometheus::handle();
        let bodies = BodyLimits::new(
            config.connections.max_inflight_body_bytes,
            config.connections.body_timeout,
        );
        let (mut router, mut paths) = http::router(state, bodies.clone());
        // The pages: the dashboard always, the checkout demo with the sandbox only.
        let (pages, page_paths) = crate::web::routes(
            ledger.clone(),
            &config.access.tokens,
            access.clone(),
            sandbox.is_some(),
            connect,
        );
        paths.extend(page_paths);
        router = router.merge(
            pages
                .layer(axum::middleware::from_fn_with_state(
                    bodies.clone(),
                    http::bodies::limit_bodies,
                ))
                .layer(axum::middleware::from_fn(http::observe)),
        );
        match sandbox {
            Some(sandbox) => {
                // The emulator's bodies are bounded like the service's own.
                let limits =
                    axum::middleware::from_fn_with_state(bodies, http::bodies::limit_bodies);
                router = router
                    .nest("/sandbox", sandbox.router().layer(limits.clone()))
                    .merge(sandbox.api_routes().layer(limits));
                // Where the sandbox answers (`api_routes` has the last two).
                paths.extend(
                    ["/sandbox/{*path}", "/v1/{*path}", "/_sandbox/{*path}"].map(String::from),
                );
                tracing::warn!(
                    address = %local,
                    stripe_api_base = %api_base,
                    "SANDBOX MODE: no STRIPE_SECRET_KEY, so Stripe is emulated at {api_base} \
                     (and at /v1 on this port; any sk_test_… key works there); its webhooks are signed and delivered to \
                     /stripe_webhook. No real card is ever charged. Set STRIPE_SECRET_KEY to use Stripe."
                );
            }
            None => tracing::info!(
                address = %local,
                stripe_api_base = %crate::config::redact_url(&api_base),
                stripe_api_version = %config.stripe.api_version,
                live = is_live(&secret_key),
                "tmt-payments listening"
            ),
        }
        let router = router.layer(axum::middleware::from_fn(http::json_errors));
        Ok(Self {
            listener,
            router,
            paths,
            ledger,
            access,
            connections: config.connections,
            workers,
            budget,
        })
    }

    /// The instance's budget of Stripe calls, for operators' tooling and tests to watch.
    pub fn stripe_budget(&self) -> Budget {
        self.budget.clone()
    }

    /// The path of every route the service answers on (in axum's syntax: `{id}`, `{*path}`);
    /// any other path is the JSON 404.
    pub fn paths(&self) -> &[String] {
        &self.paths
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Serves until `shutdown` resolves; then stops accepting, closes the connections that have
    /// no request under way, gives requests in flight up to `SHUTDOWN_TIMEOUT_SECS` to finish,
    /// and closes the pool. A request still running at the deadline is dropped: a webhook's
    /// transaction is then rolled back and no 200 is sent, so Stripe delivers it again.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        // Idempotency keys live 24 hours: clear the dead ones hourly; forget idle rate-limit
        // clients every minute.
        let background = self.workers.start();
        let (ledger, access) = (self.ledger.clone(), self.access.clone());
        let housekeeping = tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            for n in 0u64.. {
                tick.tick().await;
                access.forget_idle_clients();
                if n % 60 != 0 {
                    continue;
                }
                match ledger.purge_expired_keys().await {
                    Ok(0) => {}
                    Ok(purged) => tracing::info!(purged, "expired idempotency keys removed"),
                    Err(e) => {
                        tracing::warn!(error = %e, "could not purge expired idempotency keys")
                    }
                }
            }
        });
        http::server::serve(self.listener, self.router, self.connections, shutdown).await;
        housekeeping.abort();
        for task in background {
            task.abort();
        }
        self.ledger.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

fn is_live(key: &SecretString) -> bool {
    let key = key.expose_secret();
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

/// The sandbox's state file for a ledger at `database_url`: `x.db` → `x-stripe.db`, so each
/// ledger (and each test's temporary one) has its own; an in-memory or non-SQLite ledger gets
/// an in-memory sandbox.
fn sandbox_state_beside(database_url: &str) -> Storage {
    // A ledger elsewhere has no file to stand beside.
    let Some(rest) = database_url.strip_prefix("sqlite:") else {
        return Storage::Memory;
    };
    let path = rest.trim_start_matches("//");
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Storage::Memory;
    }
    let beside = match path.strip_suffix(".db") {
        Some(stem) => format!("{stem}-stripe.db"),
        None => format!("{path}-stripe.db"),
    };
    Storage::File(beside.into())
}

/// A random whsec_… body for the sandbox's signing secret.
fn random_alnum(n: usize) -> String {
    use rand::distributions::Alphanumeric;
    use rand::Rng;
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_state_lives_beside_the_ledger() {
        let file = |p: &str| Storage::File(p.into());
        assert_eq!(
            sandbox_state_beside("sqlite://tmt-payments-sandbox.db"),
            file("tmt-payments-sandbox-stripe.db")
        );
        assert_eq!(
            sandbox_state_beside("sqlite:///tmp/x/ledger.db?mode=rwc"),
            file("/tmp/x/ledger-stripe.db")
        );
        assert_eq!(sandbox_state_beside("sqlite:data"), file("data-stripe.db"));
        assert_eq!(sandbox_state_beside("sqlite::memory:"), Storage::Memory);
        assert_eq!(sandbox_state_beside("postgres://u@h/db"), Storage::Memory);
    }
}
