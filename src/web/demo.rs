//! What the checkout demo (sandbox mode only) reads besides the service's functions: the
//! organisers it can sell for, from the ledger (Stripe Connect). A production front end knows
//! its organisers from the platform itself.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::Web;

/// `GET /demo/organizers`: `{"connect": "destination" | "direct" | null, "organizers": [{"id",
/// "accountId", "ready"}]}`, newest first.
pub async fn organizers(State(web): State<Arc<Web>>) -> Response {
    let Some(charge_type) = web.connect.charge_type else {
        return axum::Json(json!({"connect": null, "organizers": []})).into_response();
    };
    match web.ledger.organizers(100).await {
        Ok(rows) => {
            let organizers: Vec<_> = rows
                .iter()
                .map(|o| json!({"id": o.id, "accountId": o.account_id, "ready": o.ready()}))
                .collect();
            axum::Json(json!({"connect": charge_type, "organizers": organizers})).into_response()
        }
        Err(e) => {
            crate::http::error::ApiError::from(crate::payments::Error::from(e)).into_response()
        }
    }
}
