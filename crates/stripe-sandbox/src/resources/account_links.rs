//! Account Links: a single-use URL, valid for a few minutes, where a connected account's person
//! onboards. Its `url` is the sandbox's onboarding page (`onboarding`), which stands for
//! Stripe's hosted onboarding.

use serde_json::{json, Map, Value};

use crate::ctx::Ctx;
use crate::error::{invalid, missing_param, missing_required, platform_only, StripeErr};
use crate::objects::random_alnum;
use crate::onboarding;
use crate::params::string_param;
use crate::route::{Handler, Route};
use crate::store::{now, Kind};

pub(crate) const ROUTES: &[Route] = &[Route::post(
    "/v1/account_links",
    Handler::Run(|ctx, call| create(ctx, call.params)),
)];

/// How long a link works: Stripe's expire a few minutes after they are made.
pub const LIFETIME_SECS: i64 = 300;

/// A URL parameter: absolute, `http` or `https`.
fn url_param<'a>(params: &'a Map<String, Value>, name: &str) -> Result<&'a str, StripeErr> {
    let url = string_param(params, name)?.ok_or_else(|| missing_required(name))?;
    if url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host()) {
        Ok(url)
    } else {
        Err(invalid(
            format!("Invalid URL: {url}. The URL must be absolute, with http or https."),
            Some(name),
            Some("url_invalid"),
        ))
    }
}

/// `POST /v1/account_links`: `account`, `type` (`account_onboarding`, or `account_update` for
/// accounts whose requirements the platform collects), `refresh_url`, `return_url`; `collect`
/// and `collection_options` are accepted and change nothing.
fn create(ctx: &mut Ctx<'_>, params: &Map<String, Value>) -> Result<Value, StripeErr> {
    ctx.secret_call(
        params,
        &[
            "account",
            "type",
            "refresh_url",
            "return_url",
            "collect",
            "collection_options",
            "expand",
        ],
    )?;
    if ctx.account().is_some() {
        return Err(platform_only("Creating Account Links"));
    }
    let account_id = string_param(params, "account")?.ok_or_else(|| missing_required("account"))?;
    let account = ctx
        .connected_account(account_id)
        .ok_or_else(|| missing_param("account", account_id, "account"))?;
    let kind = string_param(params, "type")?.ok_or_else(|| missing_required("type"))?;
    match kind {
        "account_onboarding" => {}
        "account_update" if account["controller"]["requirement_collection"] == "application" => {}
        "account_update" => {
            return Err(invalid(
                "account_update links are for accounts whose requirements the platform collects \
                 (Custom accounts); use account_onboarding.",
                Some("type"),
                None,
            ))
        }
        other => {
            return Err(invalid(
                format!(
                "Invalid type: must be one of account_onboarding or account_update (got {other})"
            ),
                Some("type"),
                None,
            ))
        }
    }
    let refresh_url = url_param(params, "refresh_url")?;
    let return_url = url_param(params, "return_url")?;
    let token = random_alnum(24);
    let created = now();
    let url = format!("{}{}/{token}", ctx.origin.base, onboarding::PREFIX);
    // What the page needs, kept under the link's token (Stripe has no way to read a link back).
    ctx.put(
        Kind::AccountLink,
        json!({
            "id": token,
            "object": "account_link",
            "account": account_id,
            "type": kind,
            "created": created,
            "expires_at": created + LIFETIME_SECS,
            "url": url,
            "refresh_url": refresh_url,
            "return_url": return_url,
            "used": false,
        }),
    );
    Ok(json!({
        "created": created,
        "expires_at": created + LIFETIME_SECS,
        "object": "account_link",
        "url": url,
    }))
}
