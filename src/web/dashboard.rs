//! The operators' dashboard: payments by status and metadata, totals per currency, payments per
//! day, and each payment's timeline. It only reads the ledger. Every value from the ledger goes
//! through maud's escaping (metadata and descriptions are whatever the caller sent).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, Extensions, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup, DOCTYPE};
use serde_json::Value;

use super::auth::{clear_cookie, requested_host, secure_cookie, set_cookie};
use super::{awaiting, chart, connect, format, grid::grid, settled, Web};
use crate::ledger::{BalanceRow, LedgerError, PaymentFilter, PaymentRow};
use crate::stripe::types::PaymentIntentStatus;

/// How many payments the list shows unless asked for more, and the most it shows.
const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;
/// The days the chart covers, today included.
const CHART_DAYS: i64 = 30;
/// How often the pages ask for themselves again (milliseconds), for `dashboard.js`.
const LIST_REFRESH_MS: u32 = 5000;
const TIMELINE_REFRESH_MS: u32 = 2000;

pub(super) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The page around `content`. `live` makes `dashboard.js` refresh `#live` every so many
/// milliseconds; `signed_in` offers to sign out.
pub(super) fn layout(
    web: &Web,
    title: &str,
    live: Option<u32>,
    signed_in: bool,
    content: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · TMT payments" }
                link rel="stylesheet" href="/assets/pages.css";
                script src="/assets/dashboard.js" defer {}
            }
            body.dashboard data-refresh-ms=[live] {
                header.top {
                    a.brand href="/dashboard" { "TMT payments" }
                    nav {
                        a href="/dashboard" { "Payments" }
                        a href="/dashboard/organizers" { "Organisers" }
                        a href="/dashboard/statements" { "Statements" }
                        a href="/dashboard/payouts" { "Payouts" }
                        @if web.sandbox { a href="/demo" { "Checkout demo" } }
                        @if signed_in && web.auth.required() {
                            form.inline method="post" action="/dashboard/logout" {
                                button.link type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                @if web.sandbox {
                    p.banner { "Sandbox mode: Stripe is emulated; no real card is charged." }
                }
                @if !web.auth.required() {
                    p.banner.warn {
                        "Open dashboard: API_TOKENS is not set, so anyone who can reach this \
                         service can read it."
                    }
                }
                main { (content) }
            }
        }
    }
}

pub(super) fn html_response(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        markup.into_string(),
    )
        .into_response()
}

pub(super) fn unavailable(web: &Web, e: LedgerError) -> Response {
    tracing::error!(error = %e, "the dashboard could not read the ledger");
    html_response(
        StatusCode::SERVICE_UNAVAILABLE,
        layout(
            web,
            "Unavailable",
            None,
            true,
            html! {
                h1 { "The ledger cannot be read right now" }
                p { "Try again in a moment; the service's log says why." }
            },
        ),
    )
}

/// Where a login goes back to: a dashboard page, never anywhere else.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if (n == "/dashboard"
                || n.starts_with("/dashboard/")
                || n.starts_with("/dashboard?"))
                && !n.contains("//")
                && !n.contains('\\')
                && n.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            n.to_string()
        }
        _ => "/dashboard".to_string(),
    }
}

fn login_page(web: &Web, status: StatusCode, next: &str, failed: bool) -> Response {
    html_response(
        status,
        layout(
            web,
            "Sign in",
            None,
            false,
            html! {
                section.login {
                    h1 { "Operators' dashboard" }
                    p { "Sign in with one of the service's API tokens (API_TOKENS)." }
                    @if failed {
                        p.error role="alert" { "That token is not accepted." }
                    }
                    form method="post" action="/dashboard/login" {
                        input type="hidden" name="next" value=(next);
                        label for="token" { "API token" }
                        input #token type="password" name="token" required
                            autocomplete="current-password" autofocus;
                        button.primary type="submit" { "Sign in" }
                    }
                }
            },
        ),
    )
}

/// The path and query of the request, for coming back after a login.
pub(super) fn here(path: &str, query: &HashMap<String, String>) -> String {
    if query.is_empty() {
        return path.to_string();
    }
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    let mut keys: Vec<_> = query.iter().collect();
    keys.sort();
    for (k, v) in keys {
        q.append_pair(k, v);
    }
    format!("{path}?{}", q.finish())
}

/// The 404 page of a dashboard page whose `what` (`payment`, `organiser`) the ledger has no
/// row `id` of, with a link `back` (href, label) to the list.
pub(super) fn not_found(web: &Web, what: &str, id: &str, back: (&str, &str)) -> Response {
    let (href, label) = back;
    let content = html! {
        h1 { "No such " (what) }
        p { "The ledger has no " (what) " " code { (id) } "." }
        p { a href=(href) { (label) } }
    };
    html_response(
        StatusCode::NOT_FOUND,
        layout(web, "Not found", None, true, content),
    )
}

/// A dashboard page's guard: the request carries a valid session (or token), else it is
/// answered with the login page (401), which comes back to the page asked for.
pub(super) struct SignedIn;

impl FromRequestParts<Arc<Web>> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, web: &Arc<Web>) -> Result<Self, Response> {
        if web.auth.allows(&parts.headers, now()) {
            return Ok(SignedIn);
        }
        metrics::counter!("tmt_unauthorized_total").increment(1);
        let next = parts.uri.path_and_query().map(|p| p.as_str());
        Err(login_page(
            web,
            StatusCode::UNAUTHORIZED,
            &safe_next(next),
            false,
        ))
    }
}

pub async fn login_form(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let next = safe_next(query.get("next").map(String::as_str));
    if web.auth.allows(&headers, now()) {
        return Redirect::to(&next).into_response();
    }
    login_page(&web, StatusCode::OK, &next, false)
}

/// `token` and `next`, form-encoded. The token is never logged, echoed or put in a URL. Each
/// try takes one of the client's turns ([`crate::http::access::LOGIN_RATE_LIMIT`]) before the
/// token is looked at, so that a client out of turns learns nothing, whatever it sends; other
/// clients keep theirs. A sign-in that succeeds gives its turn back: only failures count.
pub async fn login(
    State(web): State<Arc<Web>>,
    extensions: Extensions,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let mut token = None;
    let mut next = None;
    for (k, v) in url::form_urlencoded::parse(&body) {
        match k.as_ref() {
            "token" => token = Some(v.into_owned()),
            "next" => next = Some(v.into_owned()),
            _ => {}
        }
    }
    let next = safe_next(next.as_deref());
    if !web.auth.required() {
        return Redirect::to(&next).into_response();
    }
    let client = web.access.client(&extensions, &headers);
    if let Err(refused) = web.access.check_login(client) {
        return refused.into_response();
    }
    let Some(session) = token.and_then(|t| web.auth.login(&t, now())) else {
        metrics::counter!("tmt_unauthorized_total").increment(1);
        return login_page(&web, StatusCode::UNAUTHORIZED, &next, true);
    };
    web.access.signed_in(client);
    let secure = secure_cookie(requested_host(&headers, &uri).as_ref());
    (
        [(header::SET_COOKIE, set_cookie(&session, secure))],
        Redirect::to(&next),
    )
        .into_response()
}

pub async fn logout(headers: HeaderMap, uri: Uri) -> Response {
    let secure = secure_cookie(requested_host(&headers, &uri).as_ref());
    (
        [(header::SET_COOKIE, clear_cookie(secure))],
        Redirect::to("/dashboard/login"),
    )
        .into_response()
}

/// What the list's filter form says, checked.
struct ListQuery {
    filter: PaymentFilter,
    status_text: String,
    metadata_text: String,
    organizer_text: String,
    limit: i64,
    error: Option<String>,
}

fn list_query(query: &HashMap<String, String>) -> ListQuery {
    let status_text = query
        .get("status")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let metadata_text = query
        .get("metadata")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let limit = query
        .get("limit")
        .and_then(|l| l.parse::<i64>().ok())
        .unwrap_or(DEFAULT_LIMIT)
        .clamp(1, MAX_LIMIT);
    let organizer_text = query
        .get("organizer")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let mut error = None;
    let mut filter = PaymentFilter::default();
    if !organizer_text.is_empty() {
        filter.organizer = Some(organizer_text.clone());
    }
    if !status_text.is_empty() {
        if PaymentIntentStatus::KNOWN.contains(&status_text.as_str()) {
            filter.status = Some(status_text.clone());
        } else {
            error = Some(format!("Unknown status: {status_text}"));
        }
    }
    if !metadata_text.is_empty() {
        match metadata_text.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                filter
                    .metadata
                    .push((k.trim().to_string(), v.trim().to_string()));
            }
            _ => error = Some("The metadata filter is KEY=VALUE".to_string()),
        }
    }
    ListQuery {
        filter,
        status_text,
        metadata_text,
        organizer_text,
        limit,
        error,
    }
}

pub(super) fn status_badge(status: &str) -> Markup {
    let tone = match status {
        "succeeded" | "won" | "delivered" => "ok",
        "canceled" | "failed" | "lost" | "requires_payment_method" => "bad",
        "needs_response" | "warning_needs_response" => "warn",
        _ => "wait",
    };
    html! { span class={ "badge " (tone) } data-status=(status) { (status) } }
}

/// Metadata as `key=value` chips, in the object's order.
fn metadata_chips(metadata: &Value) -> Markup {
    html! {
        @if let Some(map) = metadata.as_object() {
            ul.chips {
                @for (k, v) in map {
                    li { (k) "=" (v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())) }
                }
            }
        }
    }
}

/// The most payments awaiting money the list shows.
const AWAITING_LIMIT: i64 = 50;

pub async fn list(
    _: SignedIn,
    State(web): State<Arc<Web>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let q = list_query(&query);
    let today = now().div_euclid(86400);
    let (payments, count, totals, days) = if q.error.is_some() {
        (Vec::new(), 0, Vec::new(), Vec::new())
    } else {
        let since = (today - CHART_DAYS + 1) * 86400;
        let read = async {
            let (payments, count) = web.ledger.dashboard_payments(&q.filter, q.limit).await?;
            let totals = web.ledger.dashboard_totals(&q.filter).await?;
            let days = web.ledger.dashboard_days(&q.filter, since).await?;
            Ok::<_, LedgerError>((payments, count, totals, days))
        };
        match read.await {
            Ok(r) => r,
            Err(e) => return unavailable(&web, e),
        }
    };
    let awaiting = match web.ledger.awaiting_money(AWAITING_LIMIT).await {
        Ok(rows) => rows,
        Err(e) => return unavailable(&web, e),
    };
    let more = {
        let mut more = query.clone();
        more.insert("limit".into(), (q.limit * 2).min(MAX_LIMIT).to_string());
        here("/dashboard", &more)
    };
    let content = html! {
        h1 { "Payments" }
        form.filters method="get" action="/dashboard" {
            label {
                "Status"
                select name="status" {
                    option value="" selected[q.status_text.is_empty()] { "any" }
                    @for s in PaymentIntentStatus::KNOWN {
                        option value=(s) selected[q.status_text == *s] { (s) }
                    }
                }
            }
            label {
                "Metadata"
                input type="text" name="metadata" value=(q.metadata_text)
                    placeholder="KEY=VALUE" autocomplete="off" spellcheck="false";
            }
            label {
                "Organiser"
                input type="text" name="organizer" value=(q.organizer_text)
                    placeholder="organizer id" autocomplete="off" spellcheck="false";
            }
            div.actions {
                button.primary type="submit" { "Filter" }
                a href="/dashboard" { "Clear" }
            }
        }
        @if let Some(error) = &q.error {
            p.error role="alert" { (error) }
        }
        div #live {
            section.totals {
                h2 { "Totals per currency" }
                (grid(
                    "totals",
                    "No payments.",
                    html! {
                        th { "Currency" } th.num { "Payments" } th.num { "Succeeded" }
                        th.num { "Amount succeeded" } th.num { "Refunded" }
                        th.num { "After refunds" }
                    },
                    totals.iter().map(|t| html! {
                        tr data-currency=(t.currency) {
                            td data-label="Currency" { (t.currency.to_ascii_uppercase()) }
                            td.num data-label="Payments" { (t.payments) }
                            td.num data-label="Succeeded" { (t.succeeded) }
                            td.num data-label="Amount succeeded" {
                                (format::money(t.succeeded_amount, &t.currency))
                            }
                            td.num data-label="Refunded" {
                                (format::money(t.refunded_amount, &t.currency))
                            }
                            td.num data-label="After refunds" {
                                (format::money(t.succeeded_amount - t.refunded_amount, &t.currency))
                            }
                        }
                    }),
                ))
                p.muted {
                    "Net after Stripe's fees, where they are known: "
                    a href="/dashboard/statements" { "Statements" } "."
                }
            }
            (awaiting::section(&awaiting))
            section {
                h2 { "Payments per day" }
                (chart::payments_per_day(&days, today, CHART_DAYS))
                p.legend {
                    span.key.all {} " all payments " span.key.ok {} " succeeded"
                }
            }
            section {
                h2 { "Latest payments" }
                p.muted #count { "Showing " (payments.len()) " of " (count) "." }
                (payments_table(&payments))
                @if (payments.len() as i64) < count && q.limit < MAX_LIMIT {
                    p { a href=(more) { "Show more" } }
                }
            }
        }
    };
    html_response(
        StatusCode::OK,
        layout(&web, "Payments", Some(LIST_REFRESH_MS), true, content),
    )
}

/// What a payment charged, and what was authorised beside it when a capture took less.
fn charged(p: &PaymentRow) -> Markup {
    html! {
        span.charged { (format::money(p.charged(), &p.currency)) }
        @if let Some(authorised) = p.authorised_beyond_charged() {
            br;
            span.muted.authorised { "authorised " (format::money(authorised, &p.currency)) }
        }
    }
}

/// A list of payments, as the dashboard and an organiser's page show it: nothing when empty.
pub(super) fn payments_table(payments: &[PaymentRow]) -> Markup {
    html! {
        @if !payments.is_empty() {
            table.grid.payments #payments {
                thead { tr {
                    th { "Created" } th { "Payment" } th { "Status" }
                    th.num { "Amount" } th { "Metadata" }
                } }
                tbody {
                    @for p in payments { (payment_line(p)) }
                }
            }
        }
    }
}

fn payment_line(p: &PaymentRow) -> Markup {
    html! {
        tr data-id=(p.id) {
            td data-label="Created" { (format::unix(p.created)) }
            td data-label="Payment" {
                div {
                    a.mono href={ "/dashboard/payments/" (p.id) } { (p.id) }
                    @if let Some(d) = &p.description { br; span.muted { (d) } }
                }
            }
            td data-label="Status" { (status_badge(p.status.as_str())) }
            td.num data-label="Amount" { (charged(p)) }
            td data-label="Metadata" { (metadata_chips(&p.metadata)) }
        }
    }
}

/// One line of a payment's timeline.
struct Entry {
    at_ms: i64,
    /// Whether `at_ms` is known to the millisecond (arrivals here) or only to the second
    /// (Stripe's `created`).
    precise: bool,
    what: String,
    status: Option<String>,
    detail: String,
    id: String,
    kind: &'static str,
}

impl Entry {
    /// A refund or dispute: `(kind, what)` names it, `details` are what it says of itself
    /// (those it has), joined.
    fn stripe_object(
        (kind, what): (&'static str, &str),
        id: &str,
        created: i64,
        status: &str,
        details: [Option<String>; 3],
    ) -> Entry {
        Entry {
            at_ms: created * 1000,
            precise: false,
            what: what.into(),
            status: Some(status.to_string()),
            detail: details
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" · "),
            id: id.to_string(),
            kind,
        }
    }
}

pub async fn payment(_: SignedIn, State(web): State<Arc<Web>>, Path(id): Path<String>) -> Response {
    let read = async {
        let detail = web.ledger.payment_detail(&id).await?;
        Ok::<_, LedgerError>((detail, web.ledger.of_payment::<BalanceRow>(&id).await?))
    };
    let (detail, settled) = match read.await {
        Ok((Some(found), settled)) => (found, settled),
        Ok((None, _)) => return not_found(&web, "payment", &id, ("/dashboard", "All payments")),
        Err(e) => return unavailable(&web, e),
    };
    let p = &detail.payment;
    let mut timeline = vec![Entry {
        at_ms: p.created * 1000,
        precise: false,
        what: "Payment created at Stripe".into(),
        status: None,
        detail: format::money(p.amount, &p.currency),
        id: p.id.clone(),
        kind: "payment",
    }];
    timeline.extend(detail.events.iter().map(|e| Entry {
        at_ms: format::iso_ms(&e.received_at),
        precise: true,
        what: format!("Event {}", e.event_type),
        status: None,
        detail: format!("{} (by {})", e.outcome, e.source),
        id: e.id.clone(),
        kind: "event",
    }));
    const REFUND: (&str, &str) = ("refund", "Refund");
    const DISPUTE: (&str, &str) = ("dispute", "Dispute");
    let money = |amount, currency: &str| Some(format::money(amount, currency));
    timeline.extend(detail.refunds.iter().map(|r| {
        let failure = r
            .own
            .failure_reason
            .as_ref()
            .map(|f| format!("failure: {f}"));
        let details = [money(r.amount, &r.currency), r.reason.clone(), failure];
        Entry::stripe_object(REFUND, &r.id, r.created, r.status.as_str(), details)
    }));
    timeline.extend(detail.disputes.iter().map(|d| {
        let due = d
            .own
            .evidence_due_by
            .map(|t| format!("evidence due {}", format::unix(t)));
        let details = [money(d.amount, &d.currency), d.reason.clone(), due];
        Entry::stripe_object(DISPUTE, &d.id, d.created, d.status.as_str(), details)
    }));
    // A notification is written by the change it announces, so it goes after whatever else
    // happened in its second; Stripe's objects above were made before anything here heard of
    // them, so they go first in theirs.
    timeline.extend(detail.notifications.iter().map(|n| Entry {
        at_ms: n.created * 1000 + 999,
        precise: false,
        what: format!("Notification {}", n.kind),
        status: Some(n.status.to_string()),
        detail: {
            let attempts = match n.attempts {
                1 => "1 attempt".to_string(),
                n => format!("{n} attempts"),
            };
            match &n.last_error {
                Some(e) => format!("{attempts} · last error: {e}"),
                None => attempts,
            }
        },
        id: n.id.clone(),
        kind: "notification",
    }));
    // Stable: what has the same time keeps the order above (the payment, then what it caused).
    timeline.sort_by_key(|e| e.at_ms);

    let content = html! {
        p.crumbs { a href="/dashboard" { "Payments" } " / " span.mono { (p.id) } }
        div #live {
            h1 { "Payment " span.mono { (p.id) } }
            dl.facts #facts {
                dt { "Status" } dd #status { (status_badge(p.status.as_str())) }
                dt { "Amount" } dd #amount { (charged(p)) }
                dt { "Refunded" } dd #refunded { (format::money(detail.refunded, &p.currency)) }
                dt { "Description" } dd { (p.description.as_deref().unwrap_or("—")) }
                dt { "Created" } dd { (format::unix(p.created)) }
                dt { "Last change here" } dd { (format::unix_ms(format::iso_ms(&p.updated_at))) }
                @if let Some(hold) = &detail.hold {
                    dt { "Seat hold" }
                    dd {
                        "until " (format::unix_ms(hold.expires_ms))
                        @if let Some(s) = hold.state { " · " (s) }
                        @if hold.late { " · late" }
                    }
                }
                (connect::payment_facts(&detail))
                (settled::payment_facts(&settled))
                dt { "Metadata" } dd { (metadata_chips(&p.metadata)) }
            }
            (connect::payment_movements(&detail))
            h2 { "Timeline" }
            ol.timeline #timeline {
                @for e in &timeline {
                    li data-kind=(e.kind) {
                        time {
                            @if e.precise { (format::unix_ms(e.at_ms)) }
                            @else { (format::unix(e.at_ms / 1000)) }
                        }
                        div {
                            strong { (e.what) }
                            @if let Some(s) = &e.status { " " (status_badge(s)) }
                            br;
                            span.muted { (e.detail) }
                            " "
                            span.mono.muted { (e.id) }
                        }
                    }
                }
            }
        }
    };
    html_response(
        StatusCode::OK,
        layout(
            &web,
            &format!("Payment {}", p.id),
            Some(TIMELINE_REFRESH_MS),
            true,
            content,
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_only_go_back_to_dashboard_pages() {
        assert_eq!(
            safe_next(Some("/dashboard?status=succeeded")),
            "/dashboard?status=succeeded"
        );
        assert_eq!(
            safe_next(Some("/dashboard/payments/pi_1")),
            "/dashboard/payments/pi_1"
        );
        for elsewhere in [
            "https://evil.example/",
            "//evil.example/dashboard",
            "/dashboard//evil",
            "/dashboardx",
            "/dashboard/\\evil",
            "/dashboard\r\nSet-Cookie: x=1",
            "/demo",
        ] {
            assert_eq!(safe_next(Some(elsewhere)), "/dashboard", "{elsewhere}");
        }
        assert_eq!(safe_next(None), "/dashboard");
    }

    #[test]
    fn filters_are_checked() {
        let q = |pairs: &[(&str, &str)]| {
            list_query(
                &pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        let ok = q(&[("status", "succeeded"), ("metadata", " event = rock 2026 ")]);
        assert!(ok.error.is_none());
        assert_eq!(ok.filter.status.as_deref(), Some("succeeded"));
        assert_eq!(
            ok.filter.metadata,
            vec![("event".into(), "rock 2026".into())]
        );
        assert_eq!(ok.limit, DEFAULT_LIMIT);
        assert!(q(&[("status", "paid")]).error.is_some());
        assert!(q(&[("metadata", "novalue")]).error.is_some());
        assert!(q(&[("metadata", "=x")]).error.is_some());
        assert_eq!(q(&[("limit", "999999")]).limit, MAX_LIMIT);
        assert_eq!(q(&[("limit", "0")]).limit, 1);
    }

    #[test]
    fn ledger_values_are_escaped() {
        let row = PaymentRow {
            id: "pi_1".into(),
            status: PaymentIntentStatus::Succeeded,
            amount: 100,
            amount_received: Some(100),
            currency: "usd".into(),
            description: Some("<script>alert(1)</script>".into()),
            metadata: serde_json::json!({"<b>k</b>": "\"><img src=x onerror=alert(1)>"}),
            created: 0,
            updated_at: String::new(),
            payment_method: None,
            settled: true,
            method: None,
        };
        let html = payment_line(&row).into_string();
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("<b>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
    }
}
