//! What a handler works with: the store (reached only through [`Ctx`], which keeps a request to
//! the objects of the account it acts for), who is calling and for which account, and what the
//! request produces besides its answer: events to deliver and actions to run later. Timers and
//! the sandbox's pages run through one too, as the sandbox itself.

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

/// Where a request came from: what its events record, what its answers link to, and the
/// account it acts for.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    pub caller: Caller,
    pub request_id: Option<String>,
    pub idempotency_key: Option<String>,
    /// Where a browser reaches the sandbox (for the 3-D Secure and onboarding pages).
    pub base: String,
    /// The connected account named by `Stripe-Account`; `None` for the platform itself. Every
    /// store accessor of [`Ctx`] keeps to this account's objects.
    pub account: Option<String>,
}

impl Origin {
    /// The sandbox itself, outside any request (a timer, a page), acting on the objects of
    /// `account` (`None`: the platform's).
    pub fn sandbox(account: Option<&str>) -> Origin {
        Origin {
            caller: Caller::Secret,
            request_id: None,
            idempotency_key: None,
            base: String::new(),
            account: account.map(str::to_string),
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

    /// The connected account this request acts for; `None` for the platform.
    pub fn account(&self) -> Option<&str> {
        self.origin.account.as_deref()
    }

    /// Runs `f` acting for `account` (`None`: the platform), as Connect's money moves between
    /// the platform and its accounts: what `f` finds, saves and emits is that account's.
    pub fn on<T>(&mut self, account: Option<&str>, f: impl FnOnce(&mut Self) -> T) -> T {
        let saved = std::mem::replace(&mut self.origin.account, account.map(str::to_string));
        let result = f(self);
        self.origin.account = saved;
        result
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

    /// Creates an event about `object`, delivered once the request's changes are written. An
    /// event of a connected account names it in `account`, as Connect's events do.
    pub fn emit(&mut self, event_type: &str, object: Value) {
        self.emit_change(event_type, object, None);
    }

    /// [`Ctx::emit`] for an `*.updated` event: `previous` holds the old values of the fields
    /// that changed (`data.previous_attributes`).
    pub fn emit_change(&mut self, event_type: &str, object: Value, previous: Option<Value>) {
        // Stripe counts endpoints that have not received the event yet; a dropped delivery is
        // one that never will.
        let endpoint = self.shared.delivers();
        let mut event = objects::event(
            event_type,
            object,
            now(),
            i64::from(endpoint),
            self.origin.request_id.as_deref(),
            self.origin.idempotency_key.as_deref(),
        );
        if let Some(previous) = previous {
            event["data"]["previous_attributes"] = previous;
        }
        if let Some(account) = self.account() {
            event["account"] = account.into();
        }
        let id = event["id"].as_str().unwrap_or_default().to_string();
        let account = self.origin.account.clone();
        self.store.put(Kind::Event, event, None, account.as_deref());
        if endpoint && !self.shared.dropping() {
            self.store.add_delivery(&id);
            self.effects.outbox.push(id);
        }
    }

    /// Runs `action` (see `timers`) after the sandbox's delay, for the account this request
    /// acts for.
    pub fn schedule(&mut self, action: Value) {
        self.schedule_at(now_ms().saturating_add(self.shared.delay_ms()), action);
    }

    /// Runs `action` at `due_ms` (milliseconds since the epoch), whatever the delay, for the
    /// account this request acts for.
    pub fn schedule_at(&mut self, due_ms: i64, mut action: Value) {
        if let Some(account) = self.account() {
            action["account"] = account.into();
        }
        self.store.add_timer(due_ms, action);
        self.effects.scheduled = true;
    }

    /// The object of `kind` with this id, if the account acted for has one.
    pub fn find(&self, kind: Kind, id: &str) -> Option<&Value> {
        self.store
            .get_on(self.account(), kind, id)
            .map(|r| &r.value)
    }

    /// Every object of `kind` of the account acted for, oldest first.
    pub fn all(&self, kind: Kind) -> impl Iterator<Item = &Value> {
        let account = self.account();
        self.store
            .all(kind)
            .filter(move |r| r.account.as_deref() == account)
            .map(|r| &r.value)
    }

    /// The connected account `id` if the platform controls it (whichever account this request
    /// acts for).
    pub fn connected_account(&self, id: &str) -> Option<&Value> {
        self.store.get_on(None, Kind::Account, id).map(|r| &r.value)
    }

    /// Moves the object with this id to `account` (`None`: the platform).
    pub fn move_to(&mut self, id: &str, account: Option<&str>) {
        self.store.move_to(id, account);
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

    /// Inserts the object with `value["id"]` on the account acted for, or replaces it where
    /// it lives.
    pub fn put(&mut self, kind: Kind, value: Value) {
        let account = self.origin.account.clone();
        self.store.put(kind, value, None, account.as_deref());
    }

    /// Saves a PaymentMethod with the alias that records how it behaves (see [`cards`]).
    pub fn put_payment_method(&mut self, value: Value, alias: String) {
        let account = self.origin.account.clone();
        self.store
            .put(Kind::PaymentMethod, value, Some(alias), account.as_deref());
    }

    /// One page of the objects of `kind` that `keep` accepts, as `query` asks.
    pub fn page(
        &self,
        query: &ListQuery,
        kind: Kind,
        url: &str,
        keep: impl Fn(&Value) -> bool,
    ) -> Result<Value, StripeErr> {
        query.page(self.store, self.account(), kind, url, keep)
    }

    pub fn payment_intent(&self, id: &str) -> Result<Value, StripeErr> {
        self.object(Kind::PaymentIntent, id, "intent")
    }

    pub fn save_pi(&mut self, pi: &Value) {
        self.put(Kind::PaymentIntent, pi.clone());
    }

    /// Saves an object of the account acted for with a note of the sandbox's own, which Stripe
    /// does not show (the payout that paid out a balance transaction).
    pub fn put_noted(&mut self, kind: Kind, value: Value, note: String) {
        let account = self.origin.account.clone();
        self.store.put(kind, value, Some(note), account.as_deref());
    }

    /// The sandbox's note on an object of the account acted for, if it has one.
    pub fn note(&self, kind: Kind, id: &str) -> Option<&str> {
        self.store
            .get_on(self.account(), kind, id)
            .and_then(|r| r.alias.as_deref())
    }

    /// How the PaymentMethod `pm_id` behaves, if the sandbox issued it to the account acted for.
    pub fn card_of(&self, pm_id: &str) -> Option<TestCard> {
        self.store
            .get_on(self.account(), Kind::PaymentMethod, pm_id)
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
