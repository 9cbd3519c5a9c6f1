//! What the sandbox's own HTML pages share (the 3-D Secure page, the OXXO voucher and bank
//! transfer instruction pages, the onboarding page): their frame and style, escaping, and the
//! redirect a page's form ends with.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};

pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A page titled `title` around `body` (HTML, escaped by the caller), in English. Its buttons
/// are styled by class: `complete` (green) and `fail` (red outline).
pub fn page(status: StatusCode, title: &str, body: &str) -> Response {
    page_in("en", status, title, body)
}

/// [`page`] in the language `lang`; a definition list in it shows its values large, in a
/// monospaced font (numbers to copy).
pub fn page_in(lang: &str, status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>\
         body{{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;color:#222}}\
         .box{{border:1px solid #ccc;border-radius:8px;padding:1.5rem}}\
         button{{font-size:1rem;padding:.6rem 1rem;margin:.3rem .3rem 0 0;border-radius:6px;border:1px solid #888;cursor:pointer}}\
         .complete{{background:#1a7f37;color:#fff;border-color:#1a7f37}}\
         .fail{{background:#fff;color:#b42318;border-color:#b42318}}\
         small{{color:#666}}dt{{color:#666;margin-top:.6rem}}dd{{margin:0;font-size:1.15rem;font-family:ui-monospace,monospace}}</style></head><body><div class=\"box\">{body}</div></body></html>\n",
        title = escape(title),
    );
    (status, Html(html)).into_response()
}

/// A page that only says `message` under `title`.
pub fn message(status: StatusCode, title: &str, message: &str) -> Response {
    page(
        status,
        title,
        &format!("<h1>{}</h1><p>{}</p>", escape(title), escape(message)),
    )
}

/// `303 See Other` to `location`, where a page's form sends the browser on.
pub fn redirect(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(location) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}
