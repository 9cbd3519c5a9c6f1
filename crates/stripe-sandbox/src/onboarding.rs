//! The onboarding page an Account Link's `url` leads to, standing for Stripe's hosted
//! onboarding: the account, what it still has to give, and two buttons, **Complete** and
//! **Leave incomplete**. They post to the onboarding control (`POST
//! /_sandbox/accounts/:id/onboard`, which scripts call with a secret key) with the link in
//! place of a key; the browser then goes to the link's `return_url` (complete) or its
//! `refresh_url` (incomplete). A link works once and for a few minutes: after that its page
//! sends the browser to `refresh_url`, as Stripe's does.

use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::{json, Value};

use crate::ctx::{Ctx, Origin};
use crate::pages::{self, escape};
use crate::params;
use crate::resources::accounts;
use crate::shared::Shared;
use crate::store::{now, Kind, Store};

pub const PREFIX: &str = "/_sandbox/onboarding";

const TITLE: &str = "Onboarding test page";

/// The account of a path `/_sandbox/accounts/:id/onboard`.
fn onboarded_account(path: &str) -> Option<&str> {
    path.strip_prefix("/_sandbox/accounts/")?
        .strip_suffix("/onboard")
        .filter(|id| !id.is_empty() && !id.contains('/'))
}

/// Whether this request is the page's: a link's page, or the page's form (a post to the
/// onboarding control with a `link` and no API key).
pub(crate) fn takes(method: &Method, path: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    if path.starts_with(PREFIX) {
        return true;
    }
    *method == Method::POST
        && headers.get("authorization").is_none()
        && onboarded_account(path).is_some()
        && params::parse(body).is_ok_and(|form| form.contains_key("link"))
}

fn problem(status: StatusCode, message: &str) -> Response {
    pages::message(status, TITLE, message)
}

/// The link `token`, if the sandbox made it, and whether it still works.
fn link(store: &Store, token: &str) -> Option<(Value, bool)> {
    let link = store.value(Kind::AccountLink, token)?.clone();
    let usable = link["used"] != true && link["expires_at"].as_i64().unwrap_or(0) > now();
    Some((link, usable))
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

pub(crate) async fn handle(
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    body: &[u8],
    base: &str,
) -> Response {
    let mut state = shared.state.lock().await;
    if let Some(account_id) = onboarded_account(uri.path()) {
        let form = params::parse(body).unwrap_or_default();
        let token = form.get("link").and_then(Value::as_str).unwrap_or_default();
        let Some((mut link, usable)) =
            link(&state.store, token).filter(|(link, _)| link["account"] == account_id)
        else {
            return problem(StatusCode::NOT_FOUND, "This onboarding link is unknown.");
        };
        if !usable {
            return pages::redirect(text(&link["refresh_url"]));
        }
        let complete = match form.get("outcome").and_then(Value::as_str) {
            Some("complete") => true,
            Some("incomplete") => false,
            _ => {
                return problem(
                    StatusCode::BAD_REQUEST,
                    "Choose Complete or Leave incomplete.",
                )
            }
        };
        let mut ctx = Ctx::new(&mut state.store, shared, Origin::sandbox(None));
        if let Err(e) = accounts::onboard(&mut ctx, account_id, complete) {
            let message = e.error["message"].as_str().unwrap_or("refused").to_string();
            return problem(StatusCode::CONFLICT, &message);
        }
        link["used"] = json!(true);
        ctx.put(Kind::AccountLink, link.clone());
        let effects = ctx.finish();
        if let Err(e) = shared.commit(state, effects).await {
            return problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("The sandbox could not save its state: {e}"),
            );
        }
        let back = if complete {
            "return_url"
        } else {
            "refresh_url"
        };
        return pages::redirect(text(&link[back]));
    }
    if *method != Method::GET {
        return problem(StatusCode::METHOD_NOT_ALLOWED, "Use GET.");
    }
    let token = uri
        .path()
        .strip_prefix(PREFIX)
        .and_then(|rest| rest.strip_prefix('/'))
        .unwrap_or_default();
    let Some((link, usable)) = link(&state.store, token) else {
        return problem(StatusCode::NOT_FOUND, "This onboarding link is unknown.");
    };
    if !usable {
        return pages::redirect(text(&link["refresh_url"]));
    }
    let account_id = text(&link["account"]);
    let Some(account) = state.store.get_on(None, Kind::Account, account_id) else {
        return problem(
            StatusCode::GONE,
            "This account is no longer connected to the platform.",
        );
    };
    let account = &account.value;
    let due: Vec<String> = account["requirements"]["currently_due"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| format!("<li><code>{}</code></li>", escape(text(f))))
        .collect();
    let due = if due.is_empty() {
        "<p>Nothing is due.</p>".to_string()
    } else {
        format!("<p>Stripe would ask for:</p><ul>{}</ul>", due.join(""))
    };
    let action = format!("{base}/_sandbox/accounts/{account_id}/onboard");
    let body = format!(
        "<h1>{TITLE}</h1>\
         <p>Connected account <strong>{}</strong> ({} account in {}{}). This page stands in for \
         Stripe's hosted onboarding.</p>{due}\
         <form method=\"post\" action=\"{}\">\
         <input type=\"hidden\" name=\"link\" value=\"{}\">\
         <button class=\"complete\" type=\"submit\" name=\"outcome\" value=\"complete\">Complete</button>\
         <button class=\"fail\" type=\"submit\" name=\"outcome\" value=\"incomplete\">Leave incomplete</button>\
         </form><p><small>Complete submits everything; Leave incomplete leaves requirements due. \
         Stripe sandbox</small></p>",
        escape(account_id),
        escape(text(&account["type"])),
        escape(text(&account["country"])),
        account["email"]
            .as_str()
            .map(|e| format!(", {}", escape(e)))
            .unwrap_or_default(),
        escape(&action),
        escape(token),
    );
    pages::page(StatusCode::OK, TITLE, &body)
}
