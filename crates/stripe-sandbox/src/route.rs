//! The tables requests and timers are dispatched by. A resource module lists its endpoints as
//! [`Route`]s (method, path, handler) and the later transitions it schedules as [`Action`]s;
//! `resources` gathers the tables, so that a new resource adds its module and one line there.

use axum::http::Method;
use serde_json::{Map, Value};

use crate::ctx::Ctx;
use crate::error::{missing, StripeErr};
use crate::lists::{ListQuery, LIST_PARAMS};
use crate::params::{known_with, string_param};
use crate::store::Kind;

/// What an endpoint's function is given besides the context.
pub(crate) struct Call<'a> {
    pub method: &'a Method,
    /// The path's `:…` segments, in order.
    pub ids: Vec<&'a str>,
    pub params: &'a Map<String, Value>,
}

impl Call<'_> {
    /// The path's first `:…` segment (the object's id), empty when it has none.
    pub fn id(&self) -> &str {
        self.ids.first().copied().unwrap_or_default()
    }
}

pub(crate) type Endpoint = fn(&mut Ctx<'_>, &Call<'_>) -> Result<Value, StripeErr>;

pub(crate) enum Handler {
    /// An endpoint of its own.
    Run(Endpoint),
    /// `GET …/:id`: the object of this kind, for the secret key.
    Retrieve(Kind),
    /// `GET …`: the list of this kind, where each of these parameters keeps the objects whose
    /// field of that name has the value given.
    List(Kind, &'static [&'static str]),
    /// `GET /v1/{parents}/:id/{children}`: the objects of the second kind whose field of that
    /// name is the parent (of the first kind), for the secret key.
    Nested(Kind, Kind, &'static str),
    /// `GET /v1/{parents}/:id/{children}/:child`: one of those.
    NestedRetrieve(Kind, Kind, &'static str),
}

pub(crate) struct Route {
    pub method: &'static str,
    /// `/v1/payment_intents/:id/confirm`: a segment starting with `:` matches any one segment.
    pub path: &'static str,
    pub handler: Handler,
}

impl Route {
    pub const fn get(path: &'static str, handler: Handler) -> Route {
        Route {
            method: "GET",
            path,
            handler,
        }
    }

    pub const fn post(path: &'static str, handler: Handler) -> Route {
        Route {
            method: "POST",
            path,
            handler,
        }
    }

    pub const fn delete(path: &'static str, handler: Handler) -> Route {
        Route {
            method: "DELETE",
            path,
            handler,
        }
    }

    /// The `:…` segments of `segments` (a path split at `/`, without its outer slashes) when
    /// this route answers `method` there.
    pub fn matches<'p>(&self, method: &Method, segments: &[&'p str]) -> Option<Vec<&'p str>> {
        if method.as_str() != self.method {
            return None;
        }
        let pattern: Vec<&str> = self.path.trim_matches('/').split('/').collect();
        if pattern.len() != segments.len() {
            return None;
        }
        let mut ids = Vec::new();
        for (want, got) in pattern.iter().zip(segments) {
            if want.starts_with(':') {
                ids.push(*got);
            } else if want != got {
                return None;
            }
        }
        Some(ids)
    }

    pub fn run(&self, ctx: &mut Ctx<'_>, call: &Call<'_>) -> Result<Value, StripeErr> {
        match self.handler {
            Handler::Run(endpoint) => endpoint(ctx, call),
            Handler::Retrieve(kind) => retrieve(ctx, kind, call.id(), call.params),
            Handler::List(kind, fields) => list_by_fields(ctx, call.params, kind, fields),
            Handler::Nested(parent, kind, field) => {
                let url = self.url(&call.ids);
                nested(ctx, call, (parent, kind, field), &url)
            }
            Handler::NestedRetrieve(parent, kind, field) => {
                nested_retrieve(ctx, call, (parent, kind, field))
            }
        }
    }

    /// The route's path with its `:…` segments replaced by `ids`, in order.
    fn url(&self, ids: &[&str]) -> String {
        let mut ids = ids.iter();
        self.path
            .split('/')
            .map(|segment| match segment.starts_with(':') {
                true => ids.next().copied().unwrap_or_default(),
                false => segment,
            })
            .collect::<Vec<_>>()
            .join("/")
    }
}

/// Something the sandbox does later by itself, scheduled with `{"do": name, …}` (see
/// `Ctx::schedule`) and run by the timers with that object.
pub(crate) struct Action {
    pub name: &'static str,
    pub run: fn(&mut Ctx<'_>, &Value),
}

/// A text field of a scheduled action, empty when missing.
pub(crate) fn field<'v>(action: &'v Value, key: &str) -> &'v str {
    action[key].as_str().unwrap_or_default()
}

/// `GET /v1/{kind}s/:id` for the secret key.
fn retrieve(
    ctx: &mut Ctx<'_>,
    kind: Kind,
    id: &str,
    params: &Map<String, Value>,
) -> Result<Value, StripeErr> {
    ctx.secret_call(params, &["expand"])?;
    ctx.object(kind, id, "id")
}

/// The parent (of kind, its children's kind, the children's field naming it) of a nested route.
type Nesting = (Kind, Kind, &'static str);

/// `GET /v1/{parents}/:id/{children}`.
fn nested(
    ctx: &mut Ctx<'_>,
    call: &Call<'_>,
    (parent, kind, field): Nesting,
    url: &str,
) -> Result<Value, StripeErr> {
    ctx.secret_call(call.params, LIST_PARAMS)?;
    let id = call.id();
    ctx.object(parent, id, parent.name())?;
    let query = ListQuery::parse(call.params)?;
    ctx.page(&query, kind, url, |child| child[field] == id)
}

/// `GET /v1/{parents}/:id/{children}/:child`.
fn nested_retrieve(
    ctx: &mut Ctx<'_>,
    call: &Call<'_>,
    (parent, kind, field): Nesting,
) -> Result<Value, StripeErr> {
    ctx.secret_call(call.params, &["expand"])?;
    let (id, child) = (call.id(), call.ids.get(1).copied().unwrap_or_default());
    ctx.object(parent, id, parent.name())?;
    ctx.find(kind, child)
        .filter(|c| c[field] == id)
        .cloned()
        .ok_or_else(|| missing(kind.name(), child, "id"))
}

/// `GET /v1/{kind}s`: the list of `kind`, where each parameter named in `fields` keeps the
/// objects whose field of that name is the value given.
fn list_by_fields(
    ctx: &mut Ctx<'_>,
    params: &Map<String, Value>,
    kind: Kind,
    fields: &[&'static str],
) -> Result<Value, StripeErr> {
    ctx.secret_call(params, &known_with(LIST_PARAMS, fields))?;
    let query = ListQuery::parse(params)?;
    let mut wanted = Vec::new();
    for field in fields {
        if let Some(value) = string_param(params, field)? {
            wanted.push((*field, value));
        }
    }
    ctx.page(&query, kind, &kind.list_url(), |object| {
        wanted
            .iter()
            .all(|(field, value)| object[*field].as_str() == Some(*value))
    })
}
