"""Stripe's official Python SDK against the Stripe sandbox.

Usage: sdk_sandbox.py API_BASE [RECEIVER_PORT WEBHOOK_SECRET]

Drives the sandbox at API_BASE through the SDK. With a receiver port, runs a webhook receiver
there that verifies every delivery with stripe.Webhook.construct_event and checks at the end
which events arrived. Prints one line per check and ends with 'N passed, N failed'; exits 1 on
any failure.
"""
import http.server
import json
import sys
import threading
import time
import traceback
import uuid

import stripe

API_BASE = sys.argv[1]
RECEIVER_PORT = int(sys.argv[2]) if len(sys.argv) > 3 else None
SECRET = sys.argv[3] if len(sys.argv) > 3 else None

received = []  # (event id, type, object id) of verified deliveries
rejected = []


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        payload = self.rfile.read(int(self.headers["Content-Length"]))
        try:
            event = stripe.Webhook.construct_event(
                payload.decode("utf-8"), self.headers.get("Stripe-Signature"), SECRET, tolerance=300
            )
            received.append((event.id, event.type, event.data.object.id))
            self.send_response(200)
        except Exception as e:  # noqa: BLE001 - any failure is a rejected delivery
            rejected.append(repr(e))
            self.send_response(400)
        self.end_headers()

    def log_message(self, *args):
        pass


server = None
if RECEIVER_PORT:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", RECEIVER_PORT), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()

client = stripe.StripeClient(
    "sk_test_sdk_" + uuid.uuid4().hex, base_addresses={"api": API_BASE}, max_network_retries=0
)
results = []


def check(name):
    def wrap(fn):
        try:
            fn()
            results.append((name, None))
        except Exception:  # noqa: BLE001
            results.append((name, traceback.format_exc()))
        return fn

    return wrap


def create(**extra):
    params = {
        "amount": 2500,
        "currency": "usd",
        "metadata": {"platform": "TMT", "order": "A-1"},
        "automatic_payment_methods": {"enabled": True},
    }
    params.update(extra)
    return client.v1.payment_intents.create(params=params)


state = {}


ours = []


@check("25 PaymentIntents: auto_paging_iter with limit 10 sees each once, newest first")
def _():
    for i in range(25):
        ours.append(client.v1.payment_intents.create(params={"amount": 1000 + i, "currency": "usd"}).id)
    first = client.v1.payment_intents.list(params={"limit": 10})
    assert first.has_more and len(first.data) == 10 and first.url == "/v1/payment_intents"
    seen = [pi.id for pi in first.auto_paging_iter()]
    assert len(seen) == len(set(seen)), "a PaymentIntent seen twice"
    assert [i for i in seen if i in ours] == list(reversed(ours)), seen


@check("auto_paging_iter backwards with ending_before walks towards the newest")
def _():
    page = client.v1.payment_intents.list(params={"limit": 10, "ending_before": ours[0]})
    assert [pi.id for pi in page.data] == list(reversed(ours[1:11])), "the page just newer, newest first"
    seen = [pi.id for pi in page.auto_paging_iter()]
    assert seen[:24] == ours[1:], seen
    assert len(seen) == len(set(seen))


@check("create with metadata and automatic_payment_methods")
def _():
    pi = create(description="Compra de tickets")
    assert pi.id.startswith("pi_"), pi.id
    assert pi.object == "payment_intent"
    assert pi.client_secret.startswith(pi.id + "_secret_")
    assert pi.status == "requires_payment_method"
    assert pi.amount == 2500 and pi.currency == "usd"
    assert pi.metadata["order"] == "A-1"
    assert pi.automatic_payment_methods.enabled is True
    assert pi.description == "Compra de tickets"
    assert pi.livemode is False
    state["pi"] = pi


@check("retrieve")
def _():
    pi = client.v1.payment_intents.retrieve(state["pi"].id)
    assert pi.id == state["pi"].id and pi.amount == 2500


@check("update metadata and description")
def _():
    pi = client.v1.payment_intents.update(
        state["pi"].id, params={"metadata": {"seat": "12B", "order": ""}, "description": "VIP"}
    )
    assert pi.metadata["seat"] == "12B"
    assert "order" not in pi.metadata
    assert pi.description == "VIP"


@check("confirm succeeds with pm_card_visa and creates a charge")
def _():
    pi = client.v1.payment_intents.confirm(state["pi"].id, params={"payment_method": "pm_card_visa"})
    assert pi.status == "succeeded", pi.status
    assert pi.amount_received == 2500
    assert pi.payment_method.startswith("pm_")
    charges = client.v1.charges.list(params={"payment_intent": pi.id})
    assert len(charges.data) == 1
    charge = charges.data[0]
    assert charge.id.startswith("ch_") and charge.status == "succeeded" and charge.paid
    assert charge.payment_intent == pi.id and charge.amount == 2500
    assert pi.latest_charge == charge.id
    assert client.v1.charges.retrieve(charge.id).id == charge.id


@check("confirm succeeds with pm_card_mastercard at create (confirm=true)")
def _():
    pi = create(payment_method="pm_card_mastercard", confirm=True)
    assert pi.status == "succeeded"
    charge = client.v1.charges.list(params={"payment_intent": pi.id}).data[0]
    assert charge.payment_method_details.card.brand == "mastercard"


def expect_decline(pm, code, decline_code):
    pi = create()
    try:
        client.v1.payment_intents.confirm(pi.id, params={"payment_method": pm})
    except stripe.CardError as e:
        assert e.http_status == 402
        assert e.code == code, e.code
        assert e.error.decline_code == decline_code, e.error.decline_code
        assert e.error.payment_intent.id == pi.id
    else:
        raise AssertionError("no CardError")
    after = client.v1.payment_intents.retrieve(pi.id)
    assert after.status == "requires_payment_method", after.status
    assert after.last_payment_error.code == code
    assert after.last_payment_error.decline_code == decline_code
    failed = client.v1.charges.list(params={"payment_intent": pi.id}).data
    assert len(failed) == 1 and failed[0].status == "failed" and failed[0].failure_code == code
    state.setdefault("declined", []).append(pi.id)


@check("decline: pm_card_visa_chargeDeclined")
def _():
    expect_decline("pm_card_visa_chargeDeclined", "card_declined", "generic_decline")


@check("decline: pm_card_visa_chargeDeclinedInsufficientFunds")
def _():
    expect_decline("pm_card_visa_chargeDeclinedInsufficientFunds", "card_declined", "insufficient_funds")


@check("decline: pm_card_chargeDeclinedExpiredCard")
def _():
    expect_decline("pm_card_chargeDeclinedExpiredCard", "expired_card", "expired_card")


@check("3DS: pm_card_authenticationRequired requires action")
def _():
    pi = create()
    pi = client.v1.payment_intents.confirm(pi.id, params={"payment_method": "pm_card_authenticationRequired"})
    assert pi.status == "requires_action", pi.status
    assert pi.next_action.type == "use_stripe_sdk"
    state["3ds"] = pi.id


@check("cancel")
def _():
    pi = client.v1.payment_intents.cancel(state["3ds"], params={"cancellation_reason": "abandoned"})
    assert pi.status == "canceled" and pi.cancellation_reason == "abandoned"
    try:
        client.v1.payment_intents.cancel(pi.id)
    except stripe.InvalidRequestError as e:
        assert e.code == "payment_intent_unexpected_state"
    else:
        raise AssertionError("a canceled PaymentIntent was canceled again")


@check("retrieve a missing id")
def _():
    try:
        client.v1.payment_intents.retrieve("pi_doesnotexist")
    except stripe.InvalidRequestError as e:
        assert e.http_status == 404
        assert e.code == "resource_missing"
        assert "pi_doesnotexist" in e.user_message
    else:
        raise AssertionError("no InvalidRequestError")


@check("idempotent create: replay and mismatch")
def _():
    key = "idem-" + uuid.uuid4().hex
    first = client.v1.payment_intents.create(
        params={"amount": 1000, "currency": "eur"}, options={"idempotency_key": key}
    )
    again = client.v1.payment_intents.create(
        params={"amount": 1000, "currency": "eur"}, options={"idempotency_key": key}
    )
    assert again.id == first.id
    assert again.last_response.headers.get("Idempotent-Replayed") == "true"
    assert again.last_response.request_id == first.last_response.request_id
    state["keyed"] = (first, key)
    try:
        client.v1.payment_intents.create(
            params={"amount": 2000, "currency": "eur"}, options={"idempotency_key": key}
        )
    except stripe.IdempotencyError as e:
        assert e.http_status == 400
    else:
        raise AssertionError("no IdempotencyError")


@check("bad key")
def _():
    bad = stripe.StripeClient("sk_live_nope", base_addresses={"api": API_BASE}, max_network_retries=0)
    try:
        bad.v1.payment_intents.retrieve(state["pi"].id)
    except stripe.AuthenticationError as e:
        assert e.http_status == 401
    else:
        raise AssertionError("no AuthenticationError")


@check("events are listed and retrievable")
def _():
    events = client.v1.events.list(params={"limit": 100})
    types = [e.type for e in events.data]
    for t in ("payment_intent.created", "payment_intent.succeeded", "payment_intent.payment_failed",
              "payment_intent.requires_action", "payment_intent.canceled", "charge.succeeded",
              "charge.failed"):
        assert t in types, t
    assert client.v1.events.retrieve(events.data[0].id).id == events.data[0].id


@check("events carry request.id and idempotency_key of the request that caused them")
def _():
    pi, key = state["keyed"]
    events = client.v1.events.list(params={"type": "payment_intent.created", "limit": 100})
    event = next(e for e in events.data if e.data.object.id == pi.id)
    assert event.request.id == pi.last_response.request_id, (event.request, pi.last_response.request_id)
    assert event.request.idempotency_key == key


@check("events: created[gte] with starting_after pages without overlap, newest first")
def _():
    newest = client.v1.events.list(params={"limit": 100}).data
    since = newest[-1].created
    page1 = client.v1.events.list(params={"created": {"gte": since}, "limit": 3})
    page2 = client.v1.events.list(
        params={"created": {"gte": since}, "limit": 3, "starting_after": page1.data[-1].id}
    )
    both = page1.data + page2.data
    assert [e.id for e in both] == [e.id for e in newest[:6]]
    assert all(e.created >= since for e in both)
    created = list(
        client.v1.events.list(params={"type": "payment_intent.created", "limit": 10}).auto_paging_iter()
    )
    assert len(created) >= 29 and len({e.id for e in created}) == len(created), len(created)
    try:
        client.v1.events.list(params={"limit": 0})
    except stripe.InvalidRequestError as e:
        assert e.param == "limit"
    else:
        raise AssertionError("limit=0 accepted")


if server is not None:

    @check("webhooks arrive verified by stripe.Webhook.construct_event, once each, pending_webhooks 0")
    def _():
        listed = list(client.v1.events.list(params={"limit": 100}).auto_paging_iter())
        deadline = time.time() + 20
        while time.time() < deadline and len(received) < len(listed):
            time.sleep(0.1)
        assert not rejected, rejected
        ids = [r[0] for r in received]
        assert sorted(ids) == sorted(e.id for e in listed), (len(ids), len(listed))
        assert len(ids) == len(set(ids)), "an event arrived twice"
        types = {r[1] for r in received}
        assert {"payment_intent.succeeded", "payment_intent.payment_failed", "charge.failed"} <= types
        # The sandbox records a delivery once the receiver has answered: poll for it.
        def pending():
            events = client.v1.events.list(params={"limit": 100}).auto_paging_iter()
            return [e.id for e in events if e.pending_webhooks != 0]

        while time.time() < deadline and pending():
            time.sleep(0.05)
        assert not pending(), pending()


failed = [(n, tb) for n, tb in results if tb]
for name, tb in results:
    print(("ok   " if tb is None else "FAIL ") + name)
    if tb:
        print(tb)
print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
if server is not None:
    server.shutdown()
sys.exit(1 if failed else 0)
