//! Charges: retrieved and listed; they are made by paying (`pay`), and their refunds are
//! `refunds`'.

use crate::route::{Handler, Route};
use crate::store::Kind;

pub(crate) const ROUTES: &[Route] = &[
    Route::get(
        "/v1/charges",
        Handler::List(Kind::Charge, &["payment_intent", "customer"]),
    ),
    Route::get("/v1/charges/:id", Handler::Retrieve(Kind::Charge)),
];
