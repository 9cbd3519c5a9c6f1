//! The sandbox's 3-D Secure challenge page, which a PaymentIntent confirmed with a `return_url`
//! and a card that requires authentication redirects to (`next_action.redirect_to_url.url`), as
//! Stripe's test mode redirects to its own test page. Two buttons: complete or fail the
//! authentication; either way the browser goes back to the `return_url` with
//! `payment_intent`, `payment_intent_client_secret` and `redirect_status`, as from Stripe.

use axum::http::{Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::{json, Value};

use crate::ctx::{Ctx, Origin};
use crate::currency::Currency;
use crate::pages::{self, escape};
use crate::pay::pay;
use crate::shared::Shared;
use crate::store::Kind;

pub const PREFIX: &str = "/_sandbox/3ds";

fn problem(status: StatusCode, message: &str) -> Response {
    pages::message(status, "3D Secure test page", message)
}

/// The PaymentIntent waiting for this page, if the client secret is its own.
fn waiting(pi: Option<&Value>, secret: Option<&str>) -> Result<Value, (StatusCode, String)> {
    let Some(pi) = pi.filter(|pi| secret.is_some() && pi["client_secret"].as_str() == secret)
    else {
        return Err((
            StatusCode::NOT_FOUND,
            "No PaymentIntent with this id and client secret.".to_string(),
        ));
    };
    if pi["status"] != "requires_action" || pi["next_action"]["type"] != "redirect_to_url" {
        return Err((
            StatusCode::CONFLICT,
            format!(
                "This PaymentIntent is not waiting for authentication (its status is {}).",
                pi["status"].as_str().unwrap_or_default()
            ),
        ));
    }
    Ok(pi.clone())
}

pub(crate) async fn handle(
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    body: &[u8],
    base: &str,
) -> Response {
    let Some(pi_id) = uri
        .path()
        .strip_prefix(PREFIX)
        .and_then(|rest| rest.strip_prefix('/'))
        .filter(|id| !id.is_empty() && !id.contains('/'))
    else {
        return problem(StatusCode::NOT_FOUND, "Unknown page.");
    };
    let query = crate::params::parse(uri.query().unwrap_or("").as_bytes()).unwrap_or_default();
    let form = crate::params::parse(body).unwrap_or_default();
    let mut state = shared.state.lock().await;
    if *method == Method::GET {
        let secret = query.get("client_secret").and_then(Value::as_str);
        let pi = match waiting(state.store.value(Kind::PaymentIntent, pi_id), secret) {
            Ok(pi) => pi,
            Err((status, message)) => return problem(status, &message),
        };
        let amount = pi["amount"].as_i64().unwrap_or(0);
        let currency = pi["currency"].as_str().unwrap_or_default();
        let shown = Currency::parse(currency)
            .map(|c| c.major(amount))
            .unwrap_or_else(|| amount.to_string());
        let action = format!("{base}{PREFIX}/{pi_id}");
        let hidden = format!(
            "<input type=\"hidden\" name=\"client_secret\" value=\"{}\">",
            escape(secret.unwrap_or_default())
        );
        let body = format!(
            "<h1>3D Secure test page</h1>\
             <p>A payment of <strong>{} {}</strong> asks you to authenticate. This page stands \
             in for the card issuer's check, as Stripe's test page does.</p>\
             <form method=\"post\" action=\"{action}\">{hidden}\
             <button class=\"complete\" type=\"submit\" name=\"outcome\" value=\"complete\">Complete authentication</button>\
             <button class=\"fail\" type=\"submit\" name=\"outcome\" value=\"fail\">Fail authentication</button>\
             </form><p><small>{} · Stripe sandbox</small></p>",
            escape(&shown),
            escape(&currency.to_ascii_uppercase()),
            escape(pi_id),
            action = escape(&action),
        );
        return pages::page(StatusCode::OK, "3D Secure test page", &body);
    }
    if *method != Method::POST {
        return problem(StatusCode::METHOD_NOT_ALLOWED, "Use GET or POST.");
    }
    let secret = form.get("client_secret").and_then(Value::as_str);
    let mut pi = match waiting(state.store.value(Kind::PaymentIntent, pi_id), secret) {
        Ok(pi) => pi,
        Err((status, message)) => return problem(status, &message),
    };
    let complete = match form.get("outcome").and_then(Value::as_str) {
        Some("complete") => true,
        Some("fail") => false,
        _ => return problem(StatusCode::BAD_REQUEST, "Choose Complete or Fail."),
    };
    let return_url = pi["next_action"]["redirect_to_url"]["return_url"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let secret = pi["client_secret"].as_str().unwrap_or_default().to_string();
    // A direct charge's PaymentIntent lives on its connected account, with its PaymentMethod.
    let account = state
        .store
        .get(Kind::PaymentIntent, pi_id)
        .and_then(|r| r.account.clone());
    let mut ctx = Ctx::new(
        &mut state.store,
        shared,
        Origin::sandbox(account.as_deref()),
    );
    let pm_id = pi["payment_method"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let redirect_status = match ctx.card_of(&pm_id).filter(|_| complete) {
        Some(card) => match pay(&mut ctx, pi, &pm_id, &card) {
            Ok(_) => "succeeded",
            Err(_) => "failed",
        },
        None => {
            let pm_object = ctx
                .find(Kind::PaymentMethod, &pm_id)
                .cloned()
                .unwrap_or(Value::Null);
            pi["status"] = json!("requires_payment_method");
            pi["payment_method"] = Value::Null;
            pi["next_action"] = Value::Null;
            pi["last_payment_error"] = json!({
                "code": "payment_intent_authentication_failure",
                "doc_url": "https://stripe.com/docs/error-codes/payment-intent-authentication-failure",
                "message": "We are unable to authenticate your payment method. Please choose a \
                            different payment method and try again.",
                "payment_method": pm_object,
                "type": "invalid_request_error"
            });
            ctx.save_pi(&pi);
            ctx.emit("payment_intent.payment_failed", pi);
            "failed"
        }
    };
    let effects = ctx.finish();
    if let Err(e) = shared.commit(state, effects).await {
        return problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("The sandbox could not save its state: {e}"),
        );
    }
    let mut target = match url::Url::parse(&return_url) {
        Ok(u) => u,
        Err(_) => return problem(StatusCode::OK, "Done; the return_url is not a URL."),
    };
    target
        .query_pairs_mut()
        .append_pair("payment_intent", pi_id)
        .append_pair("payment_intent_client_secret", &secret)
        .append_pair("redirect_status", redirect_status);
    pages::redirect(target.as_str())
}
