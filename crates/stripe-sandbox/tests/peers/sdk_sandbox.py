"""Stripe's official Python SDK against the Stripe sandbox.

Usage: sdk_sandbox.py API_BASE [RECEIVER_PORT WEBHOOK_SECRET]

Drives the sandbox at API_BASE through the SDK. With a receiver port, runs a webhook receiver
there that verifies every delivery with stripe.Webhook.construct_event and checks at the end
which events arrived. Prints one line per check and ends with 'N passed, N failed'; exits 1 on
any failure.
"""
import sys
import time
import uuid

import stripe

from peer import Receiver, check, oxxo_payment, refused, report, spei_payment

API_BASE = sys.argv[1]
RECEIVER_PORT = int(sys.argv[2]) if len(sys.argv) > 3 else None
SECRET = sys.argv[3] if len(sys.argv) > 3 else None

# (event id, type, object id) of each verified delivery
receiver = (
    Receiver(RECEIVER_PORT, SECRET, lambda e: (e.id, e.type, getattr(e.data.object, "id", None)))
    if RECEIVER_PORT
    else None
)

client = stripe.StripeClient(
    "sk_test_sdk_" + uuid.uuid4().hex, base_addresses={"api": API_BASE}, max_network_retries=0
)


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
    e = refused(
        stripe.CardError, "no CardError",
        lambda: client.v1.payment_intents.confirm(pi.id, params={"payment_method": pm}),
    )
    assert e.http_status == 402
    assert e.code == code, e.code
    assert e.error.decline_code == decline_code, e.error.decline_code
    assert e.error.payment_intent.id == pi.id
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
    e = refused(
        stripe.InvalidRequestError, "a canceled PaymentIntent was canceled again",
        lambda: client.v1.payment_intents.cancel(pi.id),
    )
    assert e.code == "payment_intent_unexpected_state"


@check("retrieve a missing id")
def _():
    e = refused(
        stripe.InvalidRequestError, "no InvalidRequestError",
        lambda: client.v1.payment_intents.retrieve("pi_doesnotexist"),
    )
    assert e.http_status == 404
    assert e.code == "resource_missing"
    assert "pi_doesnotexist" in e.user_message


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
    e = refused(
        stripe.IdempotencyError, "no IdempotencyError",
        lambda: client.v1.payment_intents.create(
            params={"amount": 2000, "currency": "eur"}, options={"idempotency_key": key}
        ),
    )
    assert e.http_status == 400


@check("bad key")
def _():
    bad = stripe.StripeClient("sk_live_nope", base_addresses={"api": API_BASE}, max_network_retries=0)
    e = refused(
        stripe.AuthenticationError, "no AuthenticationError",
        lambda: bad.v1.payment_intents.retrieve(state["pi"].id),
    )
    assert e.http_status == 401


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
    e = refused(
        stripe.InvalidRequestError, "limit=0 accepted",
        lambda: client.v1.events.list(params={"limit": 0}),
    )
    assert e.param == "limit"


def eventually(what, fn, timeout=20):
    """Polls fn until it returns something truthy; fails after timeout seconds."""
    deadline = time.time() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.05)


REFUND_FIELDS = ("id", "object", "amount", "currency", "status", "payment_intent", "charge", "reason",
                 "metadata", "created", "balance_transaction")


@check("refunds: partial then the rest with stripe's Refund API, fields as documented")
def _():
    pi = create(payment_method="pm_card_visa", confirm=True)
    assert pi.status == "succeeded"
    partial = client.v1.refunds.create(
        params={"payment_intent": pi.id, "amount": 1000, "reason": "requested_by_customer",
                "metadata": {"ticket": "T-9"}}
    )
    for field in REFUND_FIELDS:
        assert field in partial, field
    assert partial.id.startswith("re_") and partial.object == "refund"
    assert (partial.amount, partial.currency, partial.status) == (1000, "usd", "succeeded")
    assert partial.payment_intent == pi.id and partial.charge == pi.latest_charge
    assert partial.reason == "requested_by_customer" and partial.metadata["ticket"] == "T-9"
    rest = client.v1.refunds.create(params={"payment_intent": pi.id})
    assert rest.amount == 1500, rest.amount
    charge = client.v1.charges.retrieve(pi.latest_charge, params={"expand": ["refunds"]})
    assert charge.amount_refunded == 2500 and charge.refunded is True
    assert [r.id for r in charge.refunds.data] == [rest.id, partial.id]
    e = refused(
        stripe.InvalidRequestError, "a refunded charge was refunded again",
        lambda: client.v1.refunds.create(params={"payment_intent": pi.id}),
    )
    assert e.code == "charge_already_refunded", e.code
    got = client.v1.refunds.retrieve(partial.id)
    assert got.id == partial.id and got.amount == 1000
    state["refunded"] = pi


@check("refunds: Refund.list(payment_intent=…) auto-paginates across pages")
def _():
    pi = create(payment_method="pm_card_visa", confirm=True)
    made = [client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 100}).id for _ in range(7)]
    first = client.v1.refunds.list(params={"payment_intent": pi.id, "limit": 3})
    assert first.has_more and len(first.data) == 3 and first.url == "/v1/refunds"
    seen = [r.id for r in first.auto_paging_iter()]
    assert seen == list(reversed(made)), seen
    e = refused(
        stripe.InvalidRequestError, "more than what is left was refunded",
        lambda: client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 2000}),
    )
    assert e.code == "amount_too_large" and e.param == "amount", (e.code, e.param)


@check("refunds: pm_card_refundFail succeeds at first, then refund.failed")
def _():
    pi = create(payment_method="pm_card_refundFail", confirm=True)
    refund = client.v1.refunds.create(params={"payment_intent": pi.id})
    assert refund.status == "succeeded"
    failed = eventually("the refund to fail",
                        lambda: (lambda r: r if r.status == "failed" else None)(client.v1.refunds.retrieve(refund.id)))
    assert failed.failure_reason == "expired_or_canceled_card"
    events = client.v1.events.list(params={"type": "refund.failed"})
    assert any(e.data.object.id == refund.id for e in events.data)
    state["refund_failed"] = refund.id


@check("disputes: pm_card_createDispute opens one; list, retrieve, winning evidence wins it")
def _():
    pi = create(payment_method="pm_card_createDispute", confirm=True)
    dispute = eventually(
        "the dispute", lambda: next(iter(client.v1.disputes.list(params={"payment_intent": pi.id}).data), None)
    )
    for field in ("id", "object", "amount", "currency", "status", "reason", "charge", "payment_intent",
                  "evidence", "evidence_details", "balance_transactions", "is_charge_refundable",
                  "metadata", "created", "livemode"):
        assert field in dispute, field
    assert dispute.object == "dispute" and dispute.status == "needs_response"
    assert dispute.reason == "fraudulent" and dispute.amount == 2500
    assert dispute.charge == pi.latest_charge
    assert dispute.evidence_details.due_by > dispute.created
    assert dispute.evidence_details.has_evidence is False
    assert client.v1.disputes.retrieve(dispute.id).id == dispute.id
    assert client.v1.charges.retrieve(pi.latest_charge).disputed is True
    updated = client.v1.disputes.update(
        dispute.id, params={"evidence": {"uncategorized_text": "winning_evidence"}}
    )
    assert updated.status == "under_review", updated.status
    won = eventually("the dispute to be won",
                     lambda: (lambda d: d if d.status == "won" else None)(client.v1.disputes.retrieve(dispute.id)))
    assert won.evidence.uncategorized_text == "winning_evidence"
    types = {e.type for e in client.v1.events.list(params={"type": "charge.dispute.*", "limit": 100}).data
             if e.data.object.id == dispute.id}
    assert {"charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed",
            "charge.dispute.funds_withdrawn", "charge.dispute.funds_reinstated"} <= types, types


@check("manual capture: requires_capture, then PaymentIntent.capture(amount_to_capture=…)")
def _():
    pi = create(payment_method="pm_card_visa", confirm=True, capture_method="manual")
    assert pi.status == "requires_capture" and pi.amount_capturable == 2500
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert charge.captured is False and charge.amount_captured == 0 and charge.status == "succeeded"
    e = refused(
        stripe.InvalidRequestError, "more than authorised was captured",
        lambda: client.v1.payment_intents.capture(pi.id, params={"amount_to_capture": 2501}),
    )
    assert e.param == "amount_to_capture", e.param
    captured = client.v1.payment_intents.capture(pi.id, params={"amount_to_capture": 2000})
    assert captured.status == "succeeded" and captured.amount_received == 2000
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert charge.captured is True and charge.amount_captured == 2000
    e = refused(
        stripe.InvalidRequestError, "captured twice",
        lambda: client.v1.payment_intents.capture(pi.id),
    )
    assert e.code == "payment_intent_unexpected_state", e.code


def sandbox_control(path):
    """POSTs to one of the sandbox's own controls (not Stripe's) through the SDK's raw request."""
    response = client.raw_request("post", path)
    return client.deserialize(response, api_mode="V1")


def retrieved_until(pi_id, status):
    return eventually(
        pi_id + " " + status,
        lambda: (lambda p: p if p.status == status else None)(client.v1.payment_intents.retrieve(pi_id)),
    )


@check("OXXO: the voucher in next_action.oxxo_display_details, paid at the store")
def _():
    pi = client.v1.payment_intents.create(params=oxxo_payment(20000))
    assert pi.status == "requires_action" and pi.next_action.type == "oxxo_display_details", pi.status
    details = pi.next_action.oxxo_display_details
    assert len(details.number) == 32 and details.expires_after > time.time(), details
    assert details.hosted_voucher_url.startswith(API_BASE), details.hosted_voucher_url
    assert pi.payment_method_options.oxxo.expires_after_days == 3
    paid = sandbox_control(f"/_sandbox/payment_intents/{pi.id}/pay_voucher")
    assert paid.status == "succeeded", paid.status
    charge = client.v1.charges.retrieve(paid.latest_charge)
    assert charge.payment_method_details.type == "oxxo"
    assert charge.payment_method_details.oxxo.number == details.number
    e = refused(
        stripe.InvalidRequestError, "an OXXO payment was refunded",
        lambda: client.v1.refunds.create(params={"payment_intent": pi.id}),
    )
    assert e.code == "charge_not_refundable", e.code


@check("bank transfer: instructions, funded in part with test_helpers.customers.fund_cash_balance")
def _():
    customer = client.v1.customers.create(params={"email": "ana@example.com", "name": "Ana López"})
    assert customer.id.startswith("cus_") and customer.email == "ana@example.com"
    assert [c.id for c in client.v1.customers.list(params={"email": "ana@example.com"}).auto_paging_iter()][0] == customer.id
    pi = client.v1.payment_intents.create(params=spei_payment(customer.id, 10000))
    assert pi.next_action.type == "display_bank_transfer_instructions", pi.next_action
    instructions = pi.next_action.display_bank_transfer_instructions
    assert instructions.type == "mx_bank_transfer" and instructions.amount_remaining == 10000
    assert len(instructions.financial_addresses[0].spei.clabe) == 18
    funded = client.v1.test_helpers.customers.fund_cash_balance(
        customer.id, params={"amount": 4000, "currency": "mxn", "reference": instructions.reference}
    )
    assert funded.object == "customer_cash_balance_transaction" and funded.type == "funded", funded
    part = client.v1.payment_intents.retrieve(pi.id)
    assert part.status == "requires_action"
    assert part.next_action.display_bank_transfer_instructions.amount_remaining == 6000
    events = client.v1.events.list(params={"type": "payment_intent.partially_funded"}).data
    assert any(e.data.object.id == pi.id for e in events)
    client.v1.test_helpers.customers.fund_cash_balance(customer.id, params={"amount": 7000, "currency": "mxn"})
    assert client.v1.payment_intents.retrieve(pi.id).status == "succeeded"
    balance = client.v1.customers.cash_balance.retrieve(customer.id)
    assert balance.available["mxn"] == 1000, balance
    refund = client.v1.refunds.create(params={"customer": customer.id, "origin": "customer_balance",
                                              "amount": 1000, "currency": "mxn"})
    assert refund.status == "pending" and refund.next_action.type == "display_details", refund


@check("SEPA Direct Debit: processing, then succeeded; the failing test IBAN fails")
def _():
    def debit(iban):
        return client.v1.payment_intents.create(params={
            "amount": 4200, "currency": "eur", "payment_method_types": ["sepa_debit"], "confirm": True,
            "payment_method_data": {"type": "sepa_debit", "sepa_debit": {"iban": iban},
                                    "billing_details": {"name": "Jenny Rosen", "email": "jenny@example.com"}},
            "mandate_data": {"customer_acceptance": {"type": "online", "online": {
                "ip_address": "127.0.0.1", "user_agent": "stripe-python"}}},
        })
    ok = debit("AT611904300234573201")
    assert ok.status == "processing", ok.status
    assert retrieved_until(ok.id, "succeeded").amount_received == 4200
    bad = debit("AT861904300235473202")
    failed = retrieved_until(bad.id, "requires_payment_method")
    assert failed.last_payment_error.code == "insufficient_funds", failed.last_payment_error


if receiver is not None:

    @check("webhooks arrive verified by stripe.Webhook.construct_event, once each, pending_webhooks 0")
    def _():
        listed = list(client.v1.events.list(params={"limit": 100}).auto_paging_iter())
        deadline = time.time() + 20
        while time.time() < deadline and len(receiver.received) < len(listed):
            time.sleep(0.1)
        assert not receiver.rejected, receiver.rejected
        ids = [r[0] for r in receiver.received]
        assert sorted(ids) == sorted(e.id for e in listed), (len(ids), len(listed))
        assert len(ids) == len(set(ids)), "an event arrived twice"
        types = {r[1] for r in receiver.received}
        assert {"payment_intent.succeeded", "payment_intent.payment_failed", "charge.failed"} <= types
        # The sandbox records a delivery once the receiver has answered: poll for it.
        def pending():
            events = client.v1.events.list(params={"limit": 100}).auto_paging_iter()
            return [e.id for e in events if e.pending_webhooks != 0]

        while time.time() < deadline and pending():
            time.sleep(0.05)
        assert not pending(), pending()


if receiver is not None:
    receiver.close()
report()
