//! Pages for people: the checkout demo (`GET /demo`, sandbox mode only), the reference example
//! of a front end, and the operators' dashboard (`GET /dashboard`), which reads the ledger.
//! Their static files are compiled into the binary and served under `/assets/`.

mod accounts;
pub mod auth;
mod awaiting;
mod chart;
mod connect;
mod dashboard;
mod demo;
mod format;
mod grid;
mod organizers;
mod settled;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use secrecy::SecretString;

use crate::http::access::Access;
use crate::http::error::ApiError;
use crate::http::Routes;
use crate::ledger::Ledger;
use crate::payments::connect::Connect;
use auth::DashboardAuth;

pub struct Web {
    ledger: Ledger,
    auth: DashboardAuth,
    /// Who the client is, and how many sign-ins it may still try.
    access: Arc<Access>,
    /// Whether the embedded sandbox runs: the checkout demo exists only then.
    sandbox: bool,
    /// How payments are made for organisers (Stripe Connect), and the platform's fee policy
    /// (what statements say is owed to organisers without Connect).
    connect: Arc<Connect>,
}

/// A login form is a token and a path; nothing more needs room.
const FORM_LIMIT: usize = 4096;

/// Scripts, styles and forms of these pages come from this service only, and no other site may
/// frame them (a framed checkout or dashboard invites clickjacking).
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// The pages' routes, and their paths; `tokens` are `API_TOKENS`, `sandbox` whether Stripe is
/// emulated here, `connect` the Connect settings (how payments are made for organisers, if they
/// are, and the platform's fee policy).
pub fn routes(
    ledger: Ledger,
    tokens: &[SecretString],
    access: Arc<Access>,
    sandbox: bool,
    connect: Arc<Connect>,
) -> (Router, Vec<String>) {
    let web = Arc::new(Web {
        ledger,
        auth: DashboardAuth::new(tokens),
        access,
        sandbox,
        connect,
    });
    let same_site = || middleware::from_fn(same_site_only);
    let only_get = || async { ApiError::MethodNotAllowed("GET") };
    let mut routes = Routes::new()
        .route("/dashboard", get(dashboard::list).fallback(only_get))
        .route(
            "/dashboard/payments/{id}",
            get(dashboard::payment).fallback(only_get),
        )
        .route(
            "/dashboard/organizers",
            get(organizers::list).fallback(only_get),
        )
        .route(
            "/dashboard/organizers/{id}",
            get(organizers::page).fallback(only_get),
        )
        .route(
            "/dashboard/statements",
            get(accounts::statements).fallback(only_get),
        )
        .route(
            "/dashboard/statements.csv",
            get(accounts::statement_csv).fallback(only_get),
        )
        .route(
            "/dashboard/payouts",
            get(accounts::payouts).fallback(only_get),
        )
        .route(
            "/dashboard/login",
            post(dashboard::login)
                .route_layer(same_site())
                .get(dashboard::login_form)
                .fallback(|| async { ApiError::MethodNotAllowed("GET, POST") }),
        )
        .route(
            "/dashboard/logout",
            post(dashboard::logout)
                .route_layer(same_site())
                .fallback(|| async { ApiError::MethodNotAllowed("POST") }),
        );
    if sandbox {
        routes = routes.route("/demo/organizers", get(demo::organizers).fallback(only_get));
    }
    let files = STATIC_FILES
        .iter()
        .chain(if sandbox { CHECKOUT_FILES } else { &[] });
    for &(path, content_type, body) in files {
        routes = routes.route(
            path,
            get(move || asset(content_type, body)).fallback(only_get),
        );
    }
    let (router, paths) = routes.into_parts();
    let router = router
        .layer(DefaultBodyLimit::max(FORM_LIMIT))
        .layer(middleware::from_fn(page_headers))
        .with_state(web);
    (router, paths)
}

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// The compiled-in files: path, content type and body.
type StaticFile = (&'static str, &'static str, &'static str);

const STATIC_FILES: &[StaticFile] = &[
    ("/assets/pages.css", CSS, include_str!("static/pages.css")),
    (
        "/assets/dashboard.js",
        JS,
        include_str!("static/dashboard.js"),
    ),
];

/// The checkout demo's files, served in sandbox mode only.
const CHECKOUT_FILES: &[StaticFile] = &[
    ("/demo", HTML, include_str!("static/checkout.html")),
    (
        "/assets/checkout.js",
        JS,
        include_str!("static/checkout.js"),
    ),
];

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // Small files: revalidating each time keeps a new build's files from being mixed
            // with an old one's.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// Signing in and out are for the dashboard's own pages: a browser that sends either from
/// another site (a forged form, a login CSRF) is refused before anything is read.
async fn same_site_only(request: Request, next: Next) -> Response {
    let host = auth::requested_host(request.headers(), request.uri());
    if auth::from_another_site(request.headers(), host.as_ref()) {
        return ApiError::ForbiddenOrigin.into_response();
    }
    next.run(request).await
}

async fn page_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}
