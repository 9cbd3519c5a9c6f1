//! What a handler works with: the store (reached only through [`Ctx`], so that whatever scopes
//! a request's objects has one place to live), who is calling, and what the request produces
//! besides its answer: events to deliver and actions to run later. Timers and the 3-D Secure
//! page run through one too, as the sandbox itself.

use serde_json::{Map, Value};

use crate::cards::{self, TestCard};
use crate::error::{missing, unauthorized, StripeErr};
use crate::lists::ListQuery;
use crate::objects;
use crate::params::check_known;
use crate::shared::{Effects, Shared};
use crate::store::{now, now_ms, Kind, Store, Timer};

/// Who is calling: a secret key can do everything; a publishable key only what Stripe.js does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Caller {
    Secret,
    Publishable,
}

/// Where a request came from: what its events record, and what its answers link to.
///
/// A header that scopes a request (Stripe's `Stripe-Account`) belongs here, and the store
/// accessors of [`Ctx`] are where it would apply.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    pub caller: Caller,
    pub request_id: Option<String>,
    pub idempotency_key: Option<String>,
    /// Where a browser reaches the sandbox (for the 3-D Secure page).
    pub base: String,
}

impl Origin {
    /// The sandbox itself, outside any request (a timer, the 3-D Secure page).
    pub fn sandbox() -> Origin {
        Origin {
            caller: Caller::Secret,
            request_id: None,
            idempotency_key: None,
            base: String::new(),
        }
    }
}

pub(crate) struct Ctx<'a> {
    store: &'a mut Store,
    pub shared: &'a Shared,
    pub origin: Origin,
    effects: Effects,
}

impl<'a> Ctx<'a> {
    pub fn new(store: &'a mut Store, shared: &'a Shared, origin: Origin) -> Ctx<'a> {
        Ctx {
            store,
            shared,
            origin,
            effects: Effects::default(),
        }
    }

    /// What the request left to do once its changes are written.
    pub fn finish(self) -> Effects {
        self.effects
    }
}

impl Ctx<'_> {
    pub fn caller(&self) -> Caller {
        self.origin.caller
    }

    /// What an endpoint for the secret key checks first: the key, then that it was given no
    /// parameter but those `known`.
    pub fn secret_call(
        &self,
        params: &Map<String, Value>,
        known: &[&str],
    ) -> Result<(), StripeErr> {
        self.require_secret()?;
        check_known(params, known)
    }

    pub fn require_secret(&self) -> Result<(), StripeErr> {
        if self.origin.caller == Caller::Secret {
            Ok(())
        } else {
            Err(unauthorized(
                "This API call cannot be made with a publishable API key. Please use a secret API key.",
            ))
        }
    }

    /// Creates an event about `object`, delivered once the request's changes are written.
    pub fn emit(&mut self, event_type: &str, object: Value) {
        // Stripe counts endpoints that have not received the event yet; a dropped delivery is
        // one that never will.
        let endpoint = self.shared.delivers();
        let event = objects::event(
            event_type,
            object,
            now(),
            i64::from(endpoint),
            self.origin.request_id.as_deref(),
            self.origin.idempotency_key.as_deref(),
        );
        let id = event["id"].as_str().unwrap_or_default().to_string();
        self.store.put(Kind::Event, event, None);
        if endpoint && !self.shared.dropping() {
            self.store.add_delivery(&id);
            self.effects.outbox.push(id);
        }
    }

    /// Runs `action` (see `timers`) after the sandbox's delay.
    pub fn schedule(&mut self, action: Value) {
        self.schedule_at(now_ms().saturating_add(self.shared.delay_ms()), action);
    }

    /// Runs `action` at `due_ms` (milliseconds since the epoch), whatever the delay.
    pub fn schedule_at(&mut self, due_ms: i64, action: Value) {
        self.store.add_timer(due_ms, action);
        self.effects.scheduled = true;
    }

    /// The object of `kind` with this id, if there is one.
    pub fn find(&self, kind: Kind, id: &str) -> Option<&Value> {
        self.store.value(kind, id)
    }

    /// Every object of `kind`, oldest first.
    pub fn all(&self, kind: Kind) -> impl Iterator<Item = &Value> {
        self.store.all(kind).map(|r| &r.value)
    }

    /// The object of `kind` the URL names, or Stripe's 404 naming `param`.
    pub fn object(&self, kind: Kind, id: &str, param: &str) -> Result<Value, StripeErr> {
        let name = match kind {
            Kind::PaymentMethod => "PaymentMethod",
            other => other.name(),
        };
        self.find(kind, id)
            .cloned()
            .ok_or_else(|| missing(name, id, param))
    }

    /// Inserts or replaces the object with `value["id"]`.
    pub fn put(&mut self, kind: Kind, value: Value) {
        self.store.put(kind, value, None);
    }

    /// Saves a PaymentMethod with the alias that records how it behaves (see [`cards`]).
    pub fn put_payment_method(&mut self, value: Value, alias: String) {
        self.store.put(Kind::PaymentMethod, value, Some(alias));
    }

    /// One page of the objects of `kind` that `keep` accepts, as `query` asks.
    pub fn page(
        &self,
        query: &ListQuery,
        kind: Kind,
        url: &str,
        keep: impl Fn(&Value) -> bool,
    ) -> Result<Value, StripeErr> {
        query.page(self.store, kind, url, keep)
    }

    pub fn payment_intent(&self, id: &str) -> Result<Value, StripeErr> {
        self.object(Kind::PaymentIntent, id, "intent")
    }

    pub fn save_pi(&mut self, pi: &Value) {
        self.put(Kind::PaymentIntent, pi.clone());
    }

    /// How the PaymentMethod `pm_id` behaves, if the sandbox issued it.
    pub fn card_of(&self, pm_id: &str) -> Option<TestCard> {
        self.store
            .get(Kind::PaymentMethod, pm_id)
            .and_then(|r| r.alias.as_deref())
            .and_then(cards::card_of_alias)
    }

    /// How many events are still owed to the webhook endpoint.
    pub fn pending_deliveries(&self) -> usize {
        self.store.pending_deliveries().len()
    }

    /// Every pending timer, soonest first.
    pub fn timers(&self) -> Vec<(String, Timer)> {
        self.store.timers()
    }

    /// Makes every pending timer due now.
    pub fn hurry_timers(&mut self) {
        self.store.hurry_timers(now_ms());
        self.effects.scheduled = true;
    }
}
