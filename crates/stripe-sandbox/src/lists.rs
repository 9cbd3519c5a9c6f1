//! Stripe's list endpoints: newest first, `limit`, cursors (`starting_after`, `ending_before`)
//! and `created` filters, answered as `{"object": "list", "data", "has_more", "url"}`, which is
//! what the SDKs' auto-pagination walks.

use std::cmp::Reverse;

use serde_json::{json, Map, Value};

use crate::error::{
    below_one, invalid, invalid_integer, missing_param, unknown_parameter, StripeErr,
};
use crate::params::string_param;
use crate::store::{Kind, Store};

/// The parameters every list endpoint takes; endpoints add their own filters to this.
pub const LIST_PARAMS: &[&str] = &[
    "limit",
    "starting_after",
    "ending_before",
    "created",
    "expand",
];

enum Cursor {
    None,
    StartingAfter(String),
    EndingBefore(String),
}

pub struct ListQuery {
    limit: usize,
    cursor: Cursor,
    created: Vec<(&'static str, i64)>,
}

/// Lists read integers with white space around them too.
fn integer(text: &str, param: &str) -> Result<i64, StripeErr> {
    text.trim()
        .parse()
        .map_err(|_| invalid_integer(text, param))
}

impl ListQuery {
    pub fn parse(params: &Map<String, Value>) -> Result<ListQuery, StripeErr> {
        let limit = match string_param(params, "limit")? {
            None => 10,
            Some(t) => match integer(t, "limit")? {
                n if n < 1 => return Err(below_one("limit")),
                n if n > 100 => {
                    return Err(invalid(
                        format!(
                            "This value must be less than or equal to 100 (it currently is '{n}')."
                        ),
                        Some("limit"),
                        None,
                    ))
                }
                n => n as usize,
            },
        };
        let non_empty = |name: &str| -> Result<Option<String>, StripeErr> {
            Ok(string_param(params, name)?
                .filter(|s| !s.is_empty())
                .map(str::to_string))
        };
        let cursor =
            match (non_empty("starting_after")?, non_empty("ending_before")?) {
                (Some(_), Some(_)) => return Err(invalid(
                    "You may only specify one of these parameters: ending_before, starting_after.",
                    None,
                    None,
                )),
                (Some(id), None) => Cursor::StartingAfter(id),
                (None, Some(id)) => Cursor::EndingBefore(id),
                (None, None) => Cursor::None,
            };
        let created = range(params, "created")?;
        Ok(ListQuery {
            limit,
            cursor,
            created,
        })
    }

    fn created_matches(&self, created: i64) -> bool {
        within(&self.created, created)
    }

    /// One page of the objects of `kind` on `account` (`None`: the platform) that `keep`
    /// accepts. A cursor is placed by its own position in the list of all objects of its kind,
    /// so a cursor taken under one filter still works under another, as at Stripe.
    pub fn page(
        &self,
        store: &Store,
        account: Option<&str>,
        kind: Kind,
        url: &str,
        keep: impl Fn(&Value) -> bool,
    ) -> Result<Value, StripeErr> {
        let position = |id: &str, param: &str| {
            store
                .get_on(account, kind, id)
                .map(|r| (r.created, r.seq))
                .ok_or_else(|| missing_param(kind.name(), id, param))
        };
        let mut items: Vec<(i64, i64, &Value)> = store
            .all(kind)
            .filter(|r| {
                r.account.as_deref() == account && self.created_matches(r.created) && keep(&r.value)
            })
            .map(|r| (r.created, r.seq, &r.value))
            .collect();
        let (data, has_more): (Vec<&Value>, bool) = match &self.cursor {
            Cursor::None | Cursor::StartingAfter(_) => {
                if let Cursor::StartingAfter(id) = &self.cursor {
                    let after = position(id, "starting_after")?;
                    items.retain(|(c, s, _)| (*c, *s) < after);
                }
                items.sort_by_key(|(c, s, _)| Reverse((*c, *s)));
                let has_more = items.len() > self.limit;
                (
                    items.into_iter().take(self.limit).map(|i| i.2).collect(),
                    has_more,
                )
            }
            Cursor::EndingBefore(id) => {
                // The page just newer than the cursor, still shown newest first.
                let before = position(id, "ending_before")?;
                items.retain(|(c, s, _)| (*c, *s) > before);
                items.sort_by_key(|(c, s, _)| (*c, *s));
                let has_more = items.len() > self.limit;
                let mut page: Vec<&Value> =
                    items.into_iter().take(self.limit).map(|i| i.2).collect();
                page.reverse();
                (page, has_more)
            }
        };
        Ok(list(url, data.into_iter().cloned().collect(), has_more))
    }
}

/// The bounds a Unix-seconds filter `name` sets: `name=T` (equal), or `name[gt]`, `[gte]`, `[lt]`,
/// `[lte]`; none when it is not given.
pub fn range(
    params: &Map<String, Value>,
    name: &str,
) -> Result<Vec<(&'static str, i64)>, StripeErr> {
    Ok(match params.get(name) {
        None => Vec::new(),
        Some(Value::String(t)) => vec![("eq", integer(t, name)?)],
        Some(Value::Object(given)) => {
            let mut bounds = Vec::new();
            for (op, v) in given {
                let param = format!("{name}[{op}]");
                let op = match op.as_str() {
                    "gt" => "gt",
                    "gte" => "gte",
                    "lt" => "lt",
                    "lte" => "lte",
                    _ => return Err(unknown_parameter(&param)),
                };
                let t = v
                    .as_str()
                    .ok_or_else(|| invalid_integer(&v.to_string(), &param))?;
                bounds.push((op, integer(t, &param)?));
            }
            bounds
        }
        Some(other) => return Err(invalid_integer(&other.to_string(), name)),
    })
}

/// Whether `value` is within every one of `bounds` (see [`range`]).
pub fn within(bounds: &[(&'static str, i64)], value: i64) -> bool {
    bounds.iter().all(|(op, bound)| match *op {
        "eq" => value == *bound,
        "gt" => value > *bound,
        "gte" => value >= *bound,
        "lt" => value < *bound,
        _ => value <= *bound,
    })
}

pub fn list(url: &str, data: Vec<Value>, has_more: bool) -> Value {
    json!({"object": "list", "data": data, "has_more": has_more, "url": url})
}
