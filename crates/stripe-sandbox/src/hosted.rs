//! The pages a buyer is sent to, which Stripe hosts and the sandbox serves in their place: an
//! OXXO voucher (`next_action.oxxo_display_details.hosted_voucher_url`) and bank transfer
//! instructions (`next_action.display_bank_transfer_instructions.hosted_instructions_url`).
//! They only show: the number, amount and expiry of a voucher; the account, amount still owed
//! and reference of a transfer; or that the payment was made, expired or canceled. In Spanish,
//! as the buyers these methods serve read them. Under the sandbox's mount, so they work at
//! `/sandbox/…` in the service and at the root of a standalone sandbox.

use axum::http::{Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::Value;

use crate::clock::{date_at, MEXICO_CITY};
use crate::currency::Currency;
use crate::pages::{escape, page_in};
use crate::shared::Shared;
use crate::store::Kind;

pub const PREFIX: &str = "/_sandbox/hosted";

fn show(status: StatusCode, title: &str, body: &str) -> Response {
    page_in(
        "es",
        status,
        title,
        &format!(
            "<h1>{}</h1>{body}<p><small>Stripe sandbox</small></p>",
            escape(title)
        ),
    )
}

/// `1234.50 MXN` for 123450 in mxn.
fn money(amount: i64, currency: &str) -> String {
    let major = Currency::parse(currency)
        .map(|c| c.major(amount))
        .unwrap_or_else(|| amount.to_string());
    format!("{major} {}", currency.to_ascii_uppercase())
}

/// Digits in groups of four, as a cashier reads them.
fn grouped(digits: &str) -> String {
    let chars: Vec<char> = digits.chars().collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A definition list of (term, value) rows, escaped.
fn rows(items: &[(&str, String)]) -> String {
    let inner: String = items
        .iter()
        .map(|(term, value)| format!("<dt>{}</dt><dd>{}</dd>", escape(term), escape(value)))
        .collect();
    format!("<dl>{inner}</dl>")
}

/// How a payment that no longer waits ended, in a sentence.
fn ended(pi: &Value) -> String {
    match pi["status"].as_str().unwrap_or_default() {
        "succeeded" => "Pagado. Gracias.".into(),
        "canceled" => "Este pago fue cancelado.".into(),
        "requires_payment_method"
            if pi["last_payment_error"]["code"] == "payment_intent_payment_attempt_expired" =>
        {
            "Esta ficha venció sin pagarse.".into()
        }
        other => format!("Este pago ya no espera el dinero (estado: {other})."),
    }
}

fn voucher(pi: &Value) -> Response {
    let title = "Ficha de pago OXXO";
    let details = &pi["next_action"]["oxxo_display_details"];
    if !details.is_object() {
        return show(
            StatusCode::OK,
            title,
            &format!("<p>{}</p>", escape(&ended(pi))),
        );
    }
    let expires = details["expires_after"].as_i64().unwrap_or(0);
    let (y, m, d) = date_at(expires, MEXICO_CITY);
    let amount = money(
        pi["amount"].as_i64().unwrap_or(0),
        pi["currency"].as_str().unwrap_or_default(),
    );
    let body = format!(
        "<p>Paga en efectivo en cualquier tienda OXXO antes de que venza.</p>{}",
        rows(&[
            ("Monto a pagar", amount),
            (
                "Número de referencia",
                grouped(details["number"].as_str().unwrap_or_default()),
            ),
            (
                "Vence",
                format!("{y:04}-{m:02}-{d:02} 23:59 (hora de la Ciudad de México)"),
            ),
        ])
    );
    show(StatusCode::OK, title, &body)
}

fn instructions(pi: &Value) -> Response {
    let title = "Instrucciones de transferencia";
    let details = &pi["next_action"]["display_bank_transfer_instructions"];
    if !details.is_object() {
        return show(
            StatusCode::OK,
            title,
            &format!("<p>{}</p>", escape(&ended(pi))),
        );
    }
    let currency = details["currency"].as_str().unwrap_or_default();
    let mut items = vec![(
        "Monto pendiente",
        money(details["amount_remaining"].as_i64().unwrap_or(0), currency),
    )];
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    for address in details["financial_addresses"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if address["type"] == "spei" {
            items.push(("Banco", text(&address["spei"]["bank_name"])));
            items.push(("CLABE", text(&address["spei"]["clabe"])));
        } else if address["type"] == "iban" {
            items.push(("Titular", text(&address["iban"]["account_holder_name"])));
            items.push((
                "IBAN",
                grouped(address["iban"]["iban"].as_str().unwrap_or_default()),
            ));
            items.push(("BIC", text(&address["iban"]["bic"])));
        }
    }
    items.push((
        "Referencia (inclúyela en la transferencia)",
        text(&details["reference"]),
    ));
    let network = if details["type"] == "mx_bank_transfer" {
        "SPEI"
    } else {
        "SEPA"
    };
    let body = format!(
        "<p>Haz una transferencia {network} con estos datos. Si envías menos, el resto queda \
         pendiente; si envías de más, el excedente queda a tu favor.</p>{}",
        rows(&items)
    );
    show(StatusCode::OK, title, &body)
}

/// `GET /_sandbox/hosted/oxxo/:pi` and `GET /_sandbox/hosted/bank_transfer/:pi`.
pub(crate) async fn handle(shared: &Shared, method: &Method, uri: &Uri) -> Response {
    let not_found = || show(StatusCode::NOT_FOUND, "Página no encontrada", "");
    if *method != Method::GET {
        return show(StatusCode::METHOD_NOT_ALLOWED, "Usa GET", "");
    }
    let rest = uri.path().strip_prefix(PREFIX).unwrap_or_default();
    let Some((which, id)) = rest.trim_start_matches('/').split_once('/') else {
        return not_found();
    };
    let pi = {
        let state = shared.state.lock().await;
        state.store.value(Kind::PaymentIntent, id).cloned()
    };
    match (which, pi) {
        ("oxxo", Some(pi)) => voucher(&pi),
        ("bank_transfer", Some(pi)) => instructions(&pi),
        _ => not_found(),
    }
}
